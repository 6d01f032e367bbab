//! What the container's filesystem should look like, as plain values: the
//! mounts in order and the device nodes, computed from config.json without
//! touching the system. `rootfs` applies them.

use std::path::{Component, Path, PathBuf};

use crate::mount_options::{self, MountOptions};
use crate::spec::{Device, Spec};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path (absolute; relative sources are taken from the bundle).
    Bind { source: PathBuf },
    /// A view of the container's own cgroups.
    Cgroup,
    /// Any other filesystem type.
    Fs { fstype: String, source: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStep {
    /// Normalised absolute path inside the container.
    pub destination: PathBuf,
    pub kind: MountKind,
    pub options: MountOptions,
}

/// A device node to create inside the container's /dev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub path: PathBuf,
    /// 'c', 'b', 'u' (unbuffered char) or 'p' (fifo).
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

pub fn plan_mounts(spec: &Spec, bundle: &Path) -> Result<Vec<MountStep>, String> {
    spec.mounts
        .iter()
        .map(|m| {
            let destination = normalise(&m.destination);
            let options = mount_options::parse(&m.options)
                .map_err(|e| format!("mount on {}: {e}", m.destination.display()))?;
            let kind = match m.kind.as_deref() {
                _ if options.bind || m.kind.as_deref() == Some("bind") => {
                    let source = m.source.as_ref().ok_or_else(|| {
                        format!("bind mount on {} has no source", m.destination.display())
                    })?;
                    MountKind::Bind { source: bundle.join(source) }
                }
                Some("cgroup") | Some("cgroup2") => MountKind::Cgroup,
                Some(fstype) if !fstype.is_empty() => MountKind::Fs {
                    fstype: fstype.to_owned(),
                    source: m
                        .source
                        .as_ref()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| fstype.to_owned()),
                },
                _ => return Err(format!("mount on {} has no type", m.destination.display())),
            };
            Ok(MountStep { destination, kind, options })
        })
        .collect()
}

/// Makes a container path absolute and lexically clean ("a/./b/" → "/a/b").
/// `..` is kept: it is resolved inside the rootfs, never above it.
pub fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => out.push(".."),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The device nodes to create: the spec's default set (unless /dev is a bind
/// mount of the host's) and `linux.devices`, which win on the same path.
pub fn plan_devices(spec: &Spec, steps: &[MountStep]) -> Result<Vec<DeviceNode>, String> {
    let dev_is_bound = steps
        .iter()
        .any(|s| s.destination == Path::new("/dev") && matches!(s.kind, MountKind::Bind { .. }));
    let mut nodes: Vec<DeviceNode> = if dev_is_bound {
        Vec::new()
    } else {
        DEFAULT_DEVICES
            .iter()
            .map(|(path, major, minor)| DeviceNode {
                path: PathBuf::from(path),
                kind: 'c',
                major: *major,
                minor: *minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
            })
            .collect()
    };
    for d in &spec.linux().devices {
        let node = device_node(d)?;
        nodes.retain(|n| n.path != node.path);
        nodes.push(node);
    }
    Ok(nodes)
}

/// The device cgroup rules a container gets: the spec's own, then access
/// to the devices every container has (and to those it lists), so that a
/// "deny all" in config.json cannot lock the container out of /dev/null.
pub fn device_rules(spec: &Spec) -> Vec<kiln_cgroups::DeviceRule> {
    let rule = |kind: &str, major: Option<i64>, minor: Option<i64>, access: &str| {
        kiln_cgroups::DeviceRule {
            allow: true,
            r#type: Some(kind.to_owned()),
            major,
            minor,
            access: Some(access.to_owned()),
        }
    };
    let mut rules = spec.linux().resources.as_ref().map(|r| r.devices.clone()).unwrap_or_default();
    if rules.is_empty() {
        return rules;
    }
    let mut extra = vec![rule("c", None, None, "m"), rule("b", None, None, "m")];
    for (_, major, minor) in DEFAULT_DEVICES {
        extra.push(rule("c", Some(major as i64), Some(minor as i64), "rwm"));
    }
    extra.push(rule("c", Some(5), Some(1), "rwm")); // /dev/console
    extra.push(rule("c", Some(5), Some(2), "rwm")); // /dev/ptmx
    extra.push(rule("c", Some(136), None, "rwm")); // /dev/pts/*
    for d in &spec.linux().devices {
        if matches!(d.kind.as_str(), "c" | "b" | "u") {
            let kind = if d.kind == "b" { "b" } else { "c" };
            extra.push(rule(kind, Some(d.major), Some(d.minor), "rwm"));
        }
    }
    // A rule the spec already allows after its last deny changes nothing:
    // skip it (Docker's specs list them all; each write costs a syscall trip
    // per container start).
    let last_deny = rules.iter().rposition(|r| !r.allow);
    for r in extra {
        let given = rules.iter().rposition(|x| *x == r);
        if given.is_none() || given < last_deny {
            rules.push(r);
        }
    }
    rules
}

fn device_node(d: &Device) -> Result<DeviceNode, String> {
    let kind = match d.kind.as_str() {
        "c" | "b" | "u" | "p" => d.kind.chars().next().unwrap_or('c'),
        other => return Err(format!("device {}: unknown type {other:?}", d.path.display())),
    };
    let path = normalise(&d.path);
    if !path.starts_with("/dev") {
        return Err(format!("device {} is not under /dev", d.path.display()));
    }
    let number = |n: i64, what: &str| {
        u64::try_from(n).map_err(|_| format!("device {}: negative {what}", d.path.display()))
    };
    Ok(DeviceNode {
        path,
        kind,
        major: number(d.major, "major")?,
        minor: number(d.minor, "minor")?,
        mode: d.file_mode.unwrap_or(0o666) & 0o7777,
        uid: d.uid.unwrap_or(0),
        gid: d.gid.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Mount;

    fn spec_with(mounts: Vec<Mount>) -> Spec {
        Spec { oci_version: "1.0.0".into(), mounts, ..Default::default() }
    }

    fn mount(dest: &str, kind: Option<&str>, source: Option<&str>, opts: &[&str]) -> Mount {
        Mount {
            destination: dest.into(),
            kind: kind.map(Into::into),
            source: source.map(Into::into),
            options: opts.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn mounts_are_planned_in_order_with_bundle_relative_bind_sources() {
        let spec = spec_with(vec![
            mount("/proc", Some("proc"), Some("proc"), &[]),
            mount("dev/", Some("tmpfs"), None, &["nosuid", "mode=755"]),
            mount("/data", None, Some("data"), &["rbind", "ro"]),
            mount("/sys/fs/cgroup", Some("cgroup"), Some("cgroup"), &["ro"]),
        ]);
        let steps = plan_mounts(&spec, Path::new("/b")).unwrap();
        assert_eq!(steps[0].kind, MountKind::Fs { fstype: "proc".into(), source: "proc".into() });
        assert_eq!(steps[1].destination, PathBuf::from("/dev"));
        assert_eq!(steps[1].kind, MountKind::Fs { fstype: "tmpfs".into(), source: "tmpfs".into() });
        assert_eq!(steps[1].options.data, "mode=755");
        assert_eq!(steps[2].kind, MountKind::Bind { source: "/b/data".into() });
        assert_eq!(steps[3].kind, MountKind::Cgroup);
    }

    #[test]
    fn absolute_bind_sources_stay_absolute() {
        let spec = spec_with(vec![mount("/etc/hosts", Some("bind"), Some("/etc/hosts"), &[])]);
        let steps = plan_mounts(&spec, Path::new("/b")).unwrap();
        assert_eq!(steps[0].kind, MountKind::Bind { source: "/etc/hosts".into() });
    }

    #[test]
    fn a_mount_without_type_or_bind_is_refused() {
        let spec = spec_with(vec![mount("/x", None, Some("x"), &[])]);
        assert!(plan_mounts(&spec, Path::new("/b")).unwrap_err().contains("no type"));
    }

    #[test]
    fn default_devices_unless_dev_is_bound_and_spec_devices_override() {
        let spec = spec_with(vec![]);
        let nodes = plan_devices(&spec, &[]).unwrap();
        assert_eq!(nodes.len(), 6);
        assert!(nodes
            .iter()
            .any(|n| n.path == Path::new("/dev/null") && n.major == 1 && n.minor == 3));

        let bound = vec![MountStep {
            destination: "/dev".into(),
            kind: MountKind::Bind { source: "/dev".into() },
            options: MountOptions::default(),
        }];
        assert!(plan_devices(&spec, &bound).unwrap().is_empty());

        let mut spec = spec_with(vec![]);
        spec.linux = Some(crate::spec::Linux {
            devices: vec![Device {
                kind: "c".into(),
                path: "/dev/null".into(),
                major: 1,
                minor: 3,
                file_mode: Some(0o600),
                uid: Some(5),
                gid: None,
            }],
            ..Default::default()
        });
        let nodes = plan_devices(&spec, &[]).unwrap();
        let null = nodes.iter().find(|n| n.path == Path::new("/dev/null")).unwrap();
        assert_eq!((null.mode, null.uid), (0o600, 5));
        assert_eq!(nodes.len(), 6);
    }

    #[test]
    fn device_rules_keep_the_standard_devices_usable() {
        let mut spec = spec_with(vec![]);
        assert!(device_rules(&spec).is_empty());
        spec.linux = Some(crate::spec::Linux {
            resources: Some(kiln_cgroups::Resources {
                devices: vec![kiln_cgroups::DeviceRule {
                    allow: false,
                    access: Some("rwm".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            devices: vec![Device {
                kind: "c".into(),
                path: "/dev/fuse".into(),
                major: 10,
                minor: 229,
                ..Default::default()
            }],
            ..Default::default()
        });
        let rules = device_rules(&spec);
        assert!(!rules[0].allow);
        let allows = |major: i64, minor: i64| {
            rules.iter().any(|r| r.allow && r.major == Some(major) && r.minor == Some(minor))
        };
        assert!(allows(1, 3) && allows(5, 0) && allows(10, 229));

        // What the spec already allows after its deny is not written twice;
        // an allow that a later deny cancels is added again after it.
        let null = kiln_cgroups::DeviceRule {
            allow: true,
            r#type: Some("c".into()),
            major: Some(1),
            minor: Some(3),
            access: Some("rwm".into()),
        };
        let deny = kiln_cgroups::DeviceRule {
            allow: false,
            access: Some("rwm".into()),
            ..Default::default()
        };
        let with = |devices: Vec<kiln_cgroups::DeviceRule>| {
            let mut spec = spec.clone();
            if let Some(r) = spec.linux.as_mut().and_then(|l| l.resources.as_mut()) {
                r.devices = devices;
            }
            device_rules(&spec).into_iter().filter(|r| *r == null).count()
        };
        assert_eq!(with(vec![deny.clone(), null.clone()]), 1);
        assert_eq!(with(vec![null.clone(), deny]), 2);
    }

    #[test]
    fn devices_outside_dev_are_refused() {
        let mut spec = spec_with(vec![]);
        spec.linux = Some(crate::spec::Linux {
            devices: vec![Device { kind: "c".into(), path: "/etc/x".into(), ..Default::default() }],
            ..Default::default()
        });
        assert!(plan_devices(&spec, &[]).is_err());
    }

    #[test]
    fn normalise_cleans_paths() {
        assert_eq!(normalise(Path::new("a/./b/")), PathBuf::from("/a/b"));
        assert_eq!(normalise(Path::new("/../etc")), PathBuf::from("/../etc"));
    }
}
