//! Mount options of config.json (`"ro"`, `"rbind"`, `"rslave"`, `"size=64k"`)
//! turned into mount(2) flags, propagation changes and a data string.

use nix::mount::MsFlags;

/// Parsed options of one mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount call itself.
    pub flags: MsFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options, comma-joined.
    pub data: String,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// Options accepted but not applied (named in a warning).
    pub ignored: Vec<String>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
            bind: false,
            ignored: Vec::new(),
        }
    }
}

impl MountOptions {
    /// Flags to apply with a bind remount after a bind mount: everything but
    /// the bind itself.
    pub fn remount_flags(&self) -> MsFlags {
        self.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

pub fn parse(options: &[String]) -> Result<MountOptions, String> {
    let mut out = MountOptions::default();
    let mut data = Vec::new();
    for opt in options {
        if let Some((set, flag)) = flag_option(opt) {
            if set {
                out.flags |= flag;
            } else {
                out.flags &= !flag;
            }
            if opt == "bind" || opt == "rbind" {
                out.bind = true;
            }
        } else if let Some(flag) = propagation_option(opt) {
            out.propagation.push(flag);
        } else {
            match opt.as_str() {
                "defaults" => {}
                "tmpcopyup" => out.ignored.push(opt.clone()),
                // Recursive mount attributes (mount_setattr) are applied to the
                // top mount only for now.
                "rro" => out.flags |= MsFlags::MS_RDONLY,
                "rnosuid" => out.flags |= MsFlags::MS_NOSUID,
                "rnodev" => out.flags |= MsFlags::MS_NODEV,
                "rnoexec" => out.flags |= MsFlags::MS_NOEXEC,
                "rrw" | "rsuid" | "rdev" | "rexec" => {}
                "idmap" | "ridmap" => {
                    return Err(format!("mount option {opt:?} (id-mapped mounts) is not supported"))
                }
                _ => data.push(opt.as_str()),
            }
        }
    }
    out.data = data.join(",");
    Ok(out)
}

fn flag_option(opt: &str) -> Option<(bool, MsFlags)> {
    use MsFlags as F;
    Some(match opt {
        "ro" => (true, F::MS_RDONLY),
        "rw" => (false, F::MS_RDONLY),
        "nosuid" => (true, F::MS_NOSUID),
        "suid" => (false, F::MS_NOSUID),
        "nodev" => (true, F::MS_NODEV),
        "dev" => (false, F::MS_NODEV),
        "noexec" => (true, F::MS_NOEXEC),
        "exec" => (false, F::MS_NOEXEC),
        "sync" => (true, F::MS_SYNCHRONOUS),
        "async" => (false, F::MS_SYNCHRONOUS),
        "dirsync" => (true, F::MS_DIRSYNC),
        "remount" => (true, F::MS_REMOUNT),
        "mand" => (true, F::MS_MANDLOCK),
        "nomand" => (false, F::MS_MANDLOCK),
        "atime" => (false, F::MS_NOATIME),
        "noatime" => (true, F::MS_NOATIME),
        "diratime" => (false, F::MS_NODIRATIME),
        "nodiratime" => (true, F::MS_NODIRATIME),
        "bind" => (true, F::MS_BIND),
        "rbind" => (true, F::MS_BIND | F::MS_REC),
        "relatime" => (true, F::MS_RELATIME),
        "norelatime" => (false, F::MS_RELATIME),
        "strictatime" => (true, F::MS_STRICTATIME),
        "nostrictatime" => (false, F::MS_STRICTATIME),
        "silent" => (true, F::MS_SILENT),
        "loud" => (false, F::MS_SILENT),
        "lazytime" => (true, F::MS_LAZYTIME),
        "nolazytime" => (false, F::MS_LAZYTIME),
        _ => return None,
    })
}

/// The mount(2) flags of a propagation name (`rslave`, `private`, ...).
pub fn propagation_option(opt: &str) -> Option<MsFlags> {
    use MsFlags as F;
    Some(match opt {
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        _ => return None,
    })
}

/// Flags a bind remount must keep because the kernel locks them (in a user
/// namespace a mount may not shed nosuid/nodev/noexec/ro/atime flags of its
/// source), from statvfs' f_flag.
pub fn locked_flags(statvfs_flags: u64) -> MsFlags {
    use MsFlags as F;
    let table: [(u64, MsFlags); 7] = [
        (libc::ST_RDONLY, F::MS_RDONLY),
        (libc::ST_NOSUID, F::MS_NOSUID),
        (libc::ST_NODEV, F::MS_NODEV),
        (libc::ST_NOEXEC, F::MS_NOEXEC),
        (libc::ST_NOATIME, F::MS_NOATIME),
        (libc::ST_NODIRATIME, F::MS_NODIRATIME),
        (libc::ST_RELATIME, F::MS_RELATIME),
    ];
    table.iter().filter(|(st, _)| statvfs_flags & st != 0).fold(F::empty(), |acc, (_, f)| acc | *f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_data_and_propagation_are_split() {
        let o =
            parse(&opts(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"])).unwrap();
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert!(!o.bind);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = parse(&opts(&["ro", "rw", "noexec", "exec", "nodev"])).unwrap();
        assert_eq!(o.flags, MsFlags::MS_NODEV);
    }

    #[test]
    fn rbind_is_a_recursive_bind_and_remount_flags_drop_it() {
        let o = parse(&opts(&["rbind", "ro", "nosuid"])).unwrap();
        assert!(o.bind);
        assert!(o.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC));
        assert_eq!(o.remount_flags(), MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
    }

    #[test]
    fn idmap_is_refused_and_tmpcopyup_ignored() {
        assert!(parse(&opts(&["idmap"])).unwrap_err().contains("idmap"));
        assert_eq!(parse(&opts(&["tmpcopyup"])).unwrap().ignored, vec!["tmpcopyup"]);
    }

    #[test]
    fn locked_flags_map_statvfs_bits() {
        let f = locked_flags(libc::ST_RDONLY | libc::ST_NOSUID | libc::ST_RELATIME);
        assert_eq!(f, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_RELATIME);
    }
}
