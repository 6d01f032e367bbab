//! The OCI runtime spec's `config.json`, ociVersion 1.0.0 through 1.3.x.
//!
//! Field names follow the spec's JSON. Unknown fields are ignored, as the
//! spec asks; unknown values of closed sets (namespace types) are errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub oci_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Root>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux: Option<Linux>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Root {
    pub path: PathBuf,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub destination: PathBuf,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uid_mappings: Vec<IdMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gid_mappings: Vec<IdMapping>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    #[serde(default)]
    pub terminal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<ConsoleSize>,
    #[serde(default)]
    pub user: User,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<Rlimit>,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apparmor_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux_label: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSize {
    pub height: u16,
    pub width: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umask: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bounding: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effective: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inheritable: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permitted: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ambient: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prestart: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_runtime: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_container: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start_container: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststart: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststop: Vec<Hook>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hook {
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<Namespace>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uid_mappings: Vec<IdMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gid_mappings: Vec<IdMapping>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub time_offsets: BTreeMap<String, TimeOffset>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<kiln_cgroups::Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_propagation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<kiln_seccomp::Profile>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctl: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_paths: Vec<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readonly_paths: Vec<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_label: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceType {
    Pid,
    Network,
    Mount,
    Ipc,
    Uts,
    User,
    Cgroup,
    Time,
}

impl NamespaceType {
    pub const ALL: [NamespaceType; 8] = [
        Self::Pid,
        Self::Network,
        Self::Mount,
        Self::Ipc,
        Self::Uts,
        Self::User,
        Self::Cgroup,
        Self::Time,
    ];

    /// The clone flag of this namespace type.
    pub fn clone_flag(self) -> nix::sched::CloneFlags {
        use nix::sched::CloneFlags as F;
        match self {
            Self::Pid => F::CLONE_NEWPID,
            Self::Network => F::CLONE_NEWNET,
            Self::Mount => F::CLONE_NEWNS,
            Self::Ipc => F::CLONE_NEWIPC,
            Self::Uts => F::CLONE_NEWUTS,
            Self::User => F::CLONE_NEWUSER,
            Self::Cgroup => F::CLONE_NEWCGROUP,
            Self::Time => F::from_bits_retain(libc::CLONE_NEWTIME),
        }
    }

    /// The file name under /proc/PID/ns.
    pub fn proc_name(self) -> &'static str {
        match self {
            Self::Pid => "pid",
            Self::Network => "net",
            Self::Mount => "mnt",
            Self::Ipc => "ipc",
            Self::Uts => "uts",
            Self::User => "user",
            Self::Cgroup => "cgroup",
            Self::Time => "time",
        }
    }

    /// The name used in config.json.
    pub fn spec_name(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Mount => "mount",
            other => other.proc_name(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: NamespaceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeOffset {
    #[serde(default)]
    pub secs: i64,
    #[serde(default)]
    pub nanosecs: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: PathBuf,
    #[serde(default)]
    pub major: i64,
    #[serde(default)]
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

impl Spec {
    /// Reads and checks `config.json` in a bundle directory.
    pub fn load(bundle: &Path) -> Result<Spec, RuntimeError> {
        let path = bundle.join("config.json");
        let text = std::fs::read(&path)
            .map_err(|source| RuntimeError::ReadConfig { path: path.clone(), source })?;
        Self::parse(&text).map_err(|reason| RuntimeError::InvalidConfig { path, reason })
    }

    /// Parses and checks config.json text; the error is the reason.
    pub fn parse(text: &[u8]) -> Result<Spec, String> {
        let spec: Spec = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        spec.check()?;
        Ok(spec)
    }

    fn check(&self) -> Result<(), String> {
        check_version(&self.oci_version)?;
        if let Some(linux) = &self.linux {
            let mut seen = Vec::new();
            for ns in &linux.namespaces {
                if seen.contains(&ns.kind) {
                    return Err(format!("namespace {} is listed twice", ns.kind.spec_name()));
                }
                seen.push(ns.kind);
            }
            let has_userns = seen.contains(&NamespaceType::User);
            if !has_userns && (!linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty()) {
                return Err("uid/gid mappings need a user namespace".into());
            }
            if !seen.contains(&NamespaceType::Uts) && self.hostname.is_some() {
                return Err("a hostname needs its own uts namespace".into());
            }
            for key in linux.sysctl.keys() {
                if key.contains('/') || key.split('.').any(|p| p.is_empty() || p == "..") {
                    return Err(format!("invalid sysctl name {key:?}"));
                }
            }
        }
        if let Some(process) = &self.process {
            if process.args.is_empty() && process.command_line.is_none() {
                return Err("process.args must not be empty".into());
            }
            if !process.cwd.as_os_str().is_empty() && !process.cwd.is_absolute() {
                return Err(format!("process.cwd {:?} is not an absolute path", process.cwd));
            }
        }
        Ok(())
    }

    pub fn linux(&self) -> &Linux {
        static EMPTY: Linux = Linux {
            namespaces: Vec::new(),
            uid_mappings: Vec::new(),
            gid_mappings: Vec::new(),
            time_offsets: BTreeMap::new(),
            devices: Vec::new(),
            cgroups_path: None,
            resources: None,
            rootfs_propagation: None,
            seccomp: None,
            sysctl: BTreeMap::new(),
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            mount_label: None,
        };
        self.linux.as_ref().unwrap_or(&EMPTY)
    }

    pub fn hooks(&self) -> Hooks {
        self.hooks.clone().unwrap_or_default()
    }

    pub fn namespace(&self, kind: NamespaceType) -> Option<&Namespace> {
        self.linux().namespaces.iter().find(|n| n.kind == kind)
    }
}

/// Accepts 1.0.0 through 1.3.x, with pre-release suffixes (`1.0.2-dev`).
pub fn check_version(version: &str) -> Result<(), String> {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let nums: Option<Vec<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
    match nums.as_deref() {
        Some([1, minor, _patch]) if *minor <= 3 => Ok(()),
        _ => Err(format!("unsupported ociVersion {version:?} (supported: 1.0.0 through 1.3.x)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_1_0_through_1_3_are_accepted() {
        for v in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0", "1.3.7+x"] {
            assert!(check_version(v).is_ok(), "{v}");
        }
        for v in ["", "2.0.0", "1.4.0", "0.9.0", "1.0", "one"] {
            assert!(check_version(v).is_err(), "{v}");
        }
    }

    #[test]
    fn unknown_namespace_type_is_an_error() {
        let text = br#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"pidd"}]}}"#;
        let err = Spec::parse(text).unwrap_err();
        assert!(err.contains("pidd"), "{err}");
    }

    #[test]
    fn duplicate_namespace_is_an_error() {
        let text =
            br#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}"#;
        assert!(Spec::parse(text).unwrap_err().contains("twice"));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let text = br#"{"ociVersion":"1.2.0","vm":{"x":1},"root":{"path":"rootfs"},"linux":{"intelRdt":{}}}"#;
        let spec = Spec::parse(text).unwrap();
        assert_eq!(spec.root.unwrap().path, PathBuf::from("rootfs"));
    }

    #[test]
    fn relative_cwd_is_an_error() {
        let text = br#"{"ociVersion":"1.0.0","process":{"args":["sh"],"cwd":"tmp"}}"#;
        assert!(Spec::parse(text).unwrap_err().contains("cwd"));
    }
}
