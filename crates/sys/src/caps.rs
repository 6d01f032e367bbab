//! Linux capabilities: names, the bounding and ambient sets, and `capset`.

use std::fmt;
use std::io;
use std::str::FromStr;

/// Capability names in kernel order: the index is the capability number.
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// One capability, by kernel number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Capability(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability {name:?}")]
pub struct UnknownCapability {
    pub name: String,
}

impl Capability {
    pub fn number(self) -> u8 {
        self.0
    }

    pub fn name(self) -> &'static str {
        NAMES[usize::from(self.0)]
    }

    /// Every capability this crate knows by name.
    pub fn all() -> impl Iterator<Item = Capability> {
        (0..NAMES.len() as u8).map(Capability)
    }
}

impl FromStr for Capability {
    type Err = UnknownCapability;

    /// Accepts `CAP_SYS_ADMIN` and, like Docker, `SYS_ADMIN` or any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
        NAMES
            .iter()
            .position(|n| *n == full)
            .map(|i| Capability(i as u8))
            .ok_or_else(|| UnknownCapability { name: s.to_owned() })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of capabilities as the kernel's 64-bit mask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSet(pub u64);

impl CapSet {
    pub fn contains(self, cap: Capability) -> bool {
        self.0 & (1 << cap.0) != 0
    }

    pub fn insert(&mut self, cap: Capability) {
        self.0 |= 1 << cap.0;
    }
}

impl FromIterator<Capability> for CapSet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut set = CapSet::default();
        iter.into_iter().for_each(|c| set.insert(c));
        set
    }
}

/// The highest capability number the running kernel knows.
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Drops from the bounding set every capability (up to `last`) not in `keep`.
/// Needs CAP_SETPCAP.
pub fn limit_bounding_set(keep: CapSet, last: u8) -> io::Result<()> {
    for n in 0..=last {
        if keep.0 & (1 << n) == 0 {
            // SAFETY: PR_CAPBSET_DROP takes the capability number by value.
            check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(n), 0, 0, 0) })?;
        }
    }
    Ok(())
}

/// Sets the effective, permitted and inheritable sets of the calling thread.
pub fn set_process_caps(
    effective: CapSet,
    permitted: CapSet,
    inheritable: CapSet,
) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header { version: VERSION_3, pid: 0 };
    let half = |set: CapSet, hi: bool| if hi { (set.0 >> 32) as u32 } else { set.0 as u32 };
    let data = [false, true].map(|hi| Data {
        effective: half(effective, hi),
        permitted: half(permitted, hi),
        inheritable: half(inheritable, hi),
    });
    // SAFETY: header and a two-element data array in the version-3 layout the
    // kernel expects; both live across the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    check(rc as libc::c_int)
}

/// Raises `cap` in the ambient set (it must be permitted and inheritable).
pub fn raise_ambient(cap: Capability) -> io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT_RAISE takes the capability number by value.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            libc::c_ulong::from(cap.0),
            0,
            0,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_accept_docker_spellings() {
        for cap in Capability::all() {
            assert_eq!(cap.name().parse::<Capability>().unwrap(), cap);
        }
        assert_eq!("sys_admin".parse::<Capability>().unwrap().number(), 21);
        assert_eq!("CAP_CHECKPOINT_RESTORE".parse::<Capability>().unwrap().number(), 40);
        assert!("CAP_FLY".parse::<Capability>().is_err());
    }

    #[test]
    fn capset_collects_bits() {
        let set: CapSet = ["CAP_CHOWN", "CAP_KILL", "CAP_BPF"]
            .iter()
            .map(|n| n.parse::<Capability>().unwrap())
            .collect();
        assert_eq!(set.0, 1 | (1 << 5) | (1 << 39));
    }
}
