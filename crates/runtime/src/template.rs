//! Kiln's defaults for a container: Docker's capability set, masked and
//! read-only paths, mounts and seccomp profile. `kiln runtime spec` writes
//! them; the engine builds its containers from them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::spec::{
    Capabilities, Linux, Mount, Namespace, NamespaceType, Process, Rlimit, Root, Spec, User,
};

/// The OCI runtime spec version Kiln writes.
pub const OCI_VERSION: &str = "1.2.0";

/// The capabilities Docker gives a container by default.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths hidden from the container, as Docker hides them.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the container may read but not write, as in Docker.
pub const READONLY_PATHS: [&str; 5] =
    ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

pub fn default_capabilities() -> Vec<String> {
    DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect()
}

fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: dest.into(),
        kind: Some(kind.into()),
        source: Some(source.into()),
        options: options.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// The mounts every container gets: /proc, /dev, /dev/pts, /dev/shm,
/// /dev/mqueue, /sys and its cgroups.
pub fn default_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

/// A complete config.json for a container running `sh` in `rootfs`, with
/// Docker's defaults and its seccomp profile, like `runc spec` writes.
pub fn default_spec() -> Spec {
    let caps = default_capabilities();
    let namespaces = [
        NamespaceType::Pid,
        NamespaceType::Network,
        NamespaceType::Ipc,
        NamespaceType::Uts,
        NamespaceType::Mount,
        NamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|kind| Namespace { kind, path: None })
    .collect();
    Spec {
        oci_version: OCI_VERSION.into(),
        root: Some(Root { path: PathBuf::from("rootfs"), readonly: true }),
        mounts: default_mounts(),
        process: Some(Process {
            terminal: true,
            user: User { uid: 0, gid: 0, ..Default::default() },
            args: vec!["sh".into()],
            env: vec![format!("PATH={}", crate::process::DEFAULT_PATH), "TERM=xterm".into()],
            cwd: PathBuf::from("/"),
            capabilities: Some(Capabilities {
                bounding: caps.clone(),
                effective: caps.clone(),
                permitted: caps,
                ..Default::default()
            }),
            rlimits: vec![Rlimit { kind: "RLIMIT_NOFILE".into(), soft: 1024, hard: 1024 }],
            no_new_privileges: true,
            ..Default::default()
        }),
        hostname: Some("kiln".into()),
        linux: Some(Linux {
            namespaces,
            seccomp: Some(kiln_seccomp::default_profile(&default_capabilities())),
            masked_paths: MASKED_PATHS.iter().map(PathBuf::from).collect(),
            readonly_paths: READONLY_PATHS.iter().map(PathBuf::from).collect(),
            ..Default::default()
        }),
        annotations: BTreeMap::new(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_passes_our_own_checks_and_round_trips() {
        let spec = default_spec();
        let text = serde_json::to_vec_pretty(&spec).unwrap();
        let back = Spec::parse(&text).unwrap();
        assert_eq!(back, spec);
        assert!(back.linux().seccomp.is_some());
        assert_eq!(back.process.unwrap().capabilities.unwrap().bounding.len(), 14);
    }
}
