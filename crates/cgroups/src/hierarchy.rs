//! Which cgroup hierarchies a host has, and where they are mounted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::CgroupError;

/// Where the host's cgroup filesystems live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// cgroup v1, possibly hybrid: a cgroup2 mount next to the v1 controllers.
    V1 {
        /// Controller name (`cpu`, `memory`) or named hierarchy
        /// (`name=systemd`) → mountpoint. Co-mounted controllers
        /// (`cpu,cpuacct`) share one path.
        controllers: BTreeMap<String, PathBuf>,
        /// Hybrid hosts: the cgroup2 mount (`/sys/fs/cgroup/unified`).
        unified: Option<PathBuf>,
        /// The controllers the cgroup2 mount holds (`hugetlb`).
        unified_controllers: Vec<String>,
    },
    /// Pure cgroup v2: one hierarchy.
    V2 { root: PathBuf },
}

/// Where every distro mounts the cgroup hierarchies.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// v1 super options that are mount flags, not hierarchy names.
const NOT_CONTROLLERS: [&str; 9] = [
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
    "none",
    "all",
];

impl Hierarchy {
    /// The hierarchies of this process's mount namespace.
    ///
    /// Detected once per process and remembered: `/sys/fs/cgroup` is checked
    /// with `statfs` first, and only v1 and hybrid hosts read
    /// `/proc/self/mountinfo`.
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        static DETECTED: OnceLock<Hierarchy> = OnceLock::new();
        if let Some(h) = DETECTED.get() {
            return Ok(h.clone());
        }
        let h = detect_uncached()?;
        Ok(DETECTED.get_or_init(|| h).clone())
    }

    /// The hierarchies described by the text of a `/proc/<pid>/mountinfo`.
    ///
    /// Pure: on hybrid hosts `unified_controllers` is left empty, since only
    /// the mounted `cgroup.controllers` file knows it.
    pub fn from_mountinfo(text: &str) -> Result<Hierarchy, CgroupError> {
        let mut controllers = BTreeMap::new();
        let mut unified: Option<PathBuf> = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mount = parse_mountinfo_line(line)?;
            match mount.fstype {
                "cgroup2" => {
                    if mount.mountpoint == Path::new(CGROUP_ROOT) {
                        return Ok(Hierarchy::V2 { root: mount.mountpoint });
                    }
                    unified.get_or_insert(mount.mountpoint);
                }
                "cgroup" => {
                    let names: Vec<&str> = mount
                        .super_options
                        .split(',')
                        .filter(|o| {
                            !NOT_CONTROLLERS.contains(o) && !o.starts_with("release_agent=")
                        })
                        .collect();
                    // The first mount of a hierarchy is the host's; later ones
                    // are bind mounts, often into other containers' roots.
                    if names.is_empty() || names.iter().any(|n| controllers.contains_key(*n)) {
                        continue;
                    }
                    for name in names {
                        controllers.insert(name.to_owned(), mount.mountpoint.clone());
                    }
                }
                _ => {}
            }
        }
        match (controllers.is_empty(), unified) {
            (true, None) => Err(CgroupError::NoCgroupFs),
            (true, Some(root)) => Ok(Hierarchy::V2 { root }),
            (false, unified) => {
                Ok(Hierarchy::V1 { controllers, unified, unified_controllers: Vec::new() })
            }
        }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Hierarchy::V2 { .. })
    }

    /// Each v1 hierarchy once, as (mount options, host mountpoint): `("cpu,cpuacct",
    /// "/sys/fs/cgroup/cpu")`, `("name=systemd", "/sys/fs/cgroup/systemd")`.
    ///
    /// Empty on v2; a hybrid host's cgroup2 mount is `unified`, not listed here.
    pub fn mounts(&self) -> Vec<(String, PathBuf)> {
        let Hierarchy::V1 { controllers, .. } = self else {
            return Vec::new();
        };
        let mut by_path: BTreeMap<&Path, Vec<&str>> = BTreeMap::new();
        for (name, path) in controllers {
            by_path.entry(path).or_default().push(name);
        }
        by_path.into_iter().map(|(path, names)| (names.join(","), path.to_owned())).collect()
    }
}

fn detect_uncached() -> Result<Hierarchy, CgroupError> {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    let root = Path::new(CGROUP_ROOT);
    if statfs(root).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC) {
        return Ok(Hierarchy::V2 { root: root.to_owned() });
    }
    let path = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(path)
        .map_err(|source| CgroupError::Read { path: path.to_owned(), source })?;
    let mut h = Hierarchy::from_mountinfo(&text)?;
    if let Hierarchy::V1 { unified: Some(dir), unified_controllers, .. } = &mut h {
        let file = dir.join("cgroup.controllers");
        let text = std::fs::read_to_string(&file)
            .map_err(|source| CgroupError::Read { path: file, source })?;
        *unified_controllers = text.split_whitespace().map(str::to_owned).collect();
    }
    Ok(h)
}

struct MountinfoLine<'a> {
    mountpoint: PathBuf,
    fstype: &'a str,
    super_options: &'a str,
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
fn parse_mountinfo_line(line: &str) -> Result<MountinfoLine<'_>, CgroupError> {
    let malformed = || CgroupError::Mountinfo { line: line.to_owned() };
    let (head, tail) = line.split_once(" - ").ok_or_else(malformed)?;
    let mountpoint = head.split(' ').nth(4).ok_or_else(malformed)?;
    let mut tail = tail.split(' ');
    let fstype = tail.next().ok_or_else(malformed)?;
    let _source = tail.next().ok_or_else(malformed)?;
    let super_options = tail.next().unwrap_or("");
    Ok(MountinfoLine { mountpoint: PathBuf::from(unescape(mountpoint)), fstype, super_options })
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_SEPARATE: &str = "\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
";

    const V1_COMOUNTED: &str = "\
25 0 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,net_cls,net_prio
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,memory
37 30 0:33 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,cpuset,clone_children
120 25 0:32 /docker/abc /var/lib/docker/overlay2/x/merged/sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
";

    const HYBRID: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
";

    const V2: &str = "\
25 0 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    fn paths(pairs: &[(&str, &str)]) -> BTreeMap<String, PathBuf> {
        pairs.iter().map(|(k, v)| (k.to_string(), PathBuf::from(v))).collect()
    }

    #[test]
    fn separate_v1_mounts_give_one_path_per_controller() {
        let h = Hierarchy::from_mountinfo(V1_SEPARATE).expect("parse");
        let Hierarchy::V1 { controllers, unified, .. } = &h else { panic!("not v1: {h:?}") };
        assert_eq!(controllers.len(), 9);
        assert_eq!(controllers["cpu"], Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(controllers["cpuacct"], Path::new("/sys/fs/cgroup/cpuacct"));
        assert_eq!(controllers["name=systemd"], Path::new("/sys/fs/cgroup/systemd"));
        assert_eq!(*unified, None);
        assert!(!h.is_v2());
        let mounts = h.mounts();
        assert_eq!(mounts.len(), 9);
        assert!(mounts.contains(&("name=systemd".into(), "/sys/fs/cgroup/systemd".into())));
    }

    #[test]
    fn comounted_controllers_share_a_path_and_later_bind_mounts_are_ignored() {
        let h = Hierarchy::from_mountinfo(V1_COMOUNTED).expect("parse");
        let Hierarchy::V1 { controllers, .. } = &h else { panic!("not v1: {h:?}") };
        assert_eq!(
            *controllers,
            paths(&[
                ("cpu", "/sys/fs/cgroup/cpu,cpuacct"),
                ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
                ("cpuset", "/sys/fs/cgroup/cpuset"),
                ("memory", "/sys/fs/cgroup/memory"),
                ("name=systemd", "/sys/fs/cgroup/systemd"),
                ("net_cls", "/sys/fs/cgroup/net_cls,net_prio"),
                ("net_prio", "/sys/fs/cgroup/net_cls,net_prio"),
            ])
        );
        let mounts = h.mounts();
        assert_eq!(mounts.len(), 5);
        assert!(mounts.contains(&("cpu,cpuacct".into(), "/sys/fs/cgroup/cpu,cpuacct".into())));
        assert!(
            mounts.contains(&("net_cls,net_prio".into(), "/sys/fs/cgroup/net_cls,net_prio".into()))
        );
    }

    #[test]
    fn hybrid_hosts_keep_the_unified_mount() {
        let h = Hierarchy::from_mountinfo(HYBRID).expect("parse");
        assert_eq!(
            h,
            Hierarchy::V1 {
                controllers: paths(&[
                    ("memory", "/sys/fs/cgroup/memory"),
                    ("name=systemd", "/sys/fs/cgroup/systemd"),
                    ("pids", "/sys/fs/cgroup/pids"),
                ]),
                unified: Some("/sys/fs/cgroup/unified".into()),
                unified_controllers: vec![],
            }
        );
        assert_eq!(h.mounts().len(), 3);
    }

    #[test]
    fn cgroup2_at_the_root_is_v2() {
        let h = Hierarchy::from_mountinfo(V2).expect("parse");
        assert_eq!(h, Hierarchy::V2 { root: "/sys/fs/cgroup".into() });
        assert!(h.is_v2());
        assert!(h.mounts().is_empty());
    }

    #[test]
    fn no_cgroup_mounts_is_an_error() {
        let err = Hierarchy::from_mountinfo("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
        assert!(matches!(err, Err(CgroupError::NoCgroupFs)), "{err:?}");
        let err = Hierarchy::from_mountinfo("garbage\n");
        assert!(matches!(err, Err(CgroupError::Mountinfo { .. })), "{err:?}");
    }

    #[test]
    fn escaped_mountpoints_are_decoded() {
        let text = "30 24 0:26 / /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n";
        let h = Hierarchy::from_mountinfo(text).expect("parse");
        assert_eq!(h, Hierarchy::V2 { root: "/sys/fs/my cgroup".into() });
    }

    #[test]
    fn detect_agrees_with_this_hosts_mountinfo() {
        let text = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        match (Hierarchy::detect(), Hierarchy::from_mountinfo(&text)) {
            (Ok(h), Ok(parsed)) => {
                assert_eq!(h.is_v2(), parsed.is_v2());
                assert_eq!(Hierarchy::detect().expect("second detect"), h);
            }
            (Err(CgroupError::NoCgroupFs), Err(CgroupError::NoCgroupFs)) => {}
            (detected, parsed) => panic!("detect {detected:?} but mountinfo {parsed:?}"),
        }
    }
}
