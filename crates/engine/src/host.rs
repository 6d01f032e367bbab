//! Facts about the machine the engine runs on, read from the kernel.

use std::path::Path;

/// The cgroup hierarchy the host mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// cgroup v1, or the v1/v2 hybrid (controllers still on v1).
    V1,
    /// The unified v2 hierarchy.
    V2,
}

/// What `info` reports about the host. Fields that cannot be read are empty
/// or zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    pub hostname: String,
    /// `uname -r`.
    pub kernel_version: String,
    /// `uname -m`, such as `x86_64`.
    pub machine: String,
    /// `PRETTY_NAME` of /etc/os-release.
    pub operating_system: String,
    pub ncpu: u64,
    /// Bytes of RAM (`MemTotal` of /proc/meminfo).
    pub mem_total: u64,
    pub cgroup_version: CgroupVersion,
}

impl HostFacts {
    pub fn read() -> HostFacts {
        let uts = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uts.as_ref().map(|u| f(u).to_string_lossy().into_owned()).unwrap_or_default()
        };
        HostFacts {
            hostname: field(nix::sys::utsname::UtsName::nodename),
            kernel_version: field(nix::sys::utsname::UtsName::release),
            machine: field(nix::sys::utsname::UtsName::machine),
            operating_system: std::fs::read_to_string("/etc/os-release")
                .ok()
                .and_then(|text| pretty_name(&text))
                .unwrap_or_else(|| "Linux".to_owned()),
            ncpu: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
            mem_total: std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|text| mem_total(&text))
                .unwrap_or(0),
            cgroup_version: cgroup_version(Path::new("/sys/fs/cgroup")),
        }
    }
}

/// `PRETTY_NAME` of an os-release file, unquoted.
fn pretty_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|line| {
        let value = line.strip_prefix("PRETTY_NAME=")?;
        Some(value.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
    })
}

/// `MemTotal` of /proc/meminfo, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// v2 when the cgroup mount point is the unified hierarchy itself.
fn cgroup_version(mount_point: &Path) -> CgroupVersion {
    if mount_point.join("cgroup.controllers").exists() {
        CgroupVersion::V2
    } else {
        CgroupVersion::V1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_name_is_unquoted() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        assert_eq!(pretty_name(text).as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(pretty_name("ID=x\n"), None);
    }

    #[test]
    fn mem_total_is_in_bytes() {
        let text = "MemTotal:        8131876 kB\nMemFree:  1 kB\n";
        assert_eq!(mem_total(text), Some(8_131_876 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn a_directory_with_cgroup_controllers_is_v2() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        assert_eq!(cgroup_version(dir.path()), CgroupVersion::V1);
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu io memory\n").expect("write");
        assert_eq!(cgroup_version(dir.path()), CgroupVersion::V2);
    }
}
