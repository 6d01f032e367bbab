//! The kernel switches bridge networking needs: IPv4 forwarding,
//! `route_localnet` on bridges so that published ports answer on
//! `127.0.0.1`, and IPv6 off on the host ends of veths.
//!
//! Both are per network namespace: the engine sets them in the host's, once
//! its first network comes up, and [`restore_ip_forward`] puts forwarding
//! back as it found it when the last network goes.

use std::io;
use std::path::{Path, PathBuf};

use kiln_types::{ErrorKind, HasKind};

/// The switch for IPv4 forwarding between interfaces.
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// A sysctl file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} holds {value:?}, not 0 or 1", .path.display())]
    NotAFlag { path: PathBuf, value: String },
    #[error("invalid interface name {name:?}")]
    InvalidInterface { name: String },
}

impl HasKind for SysctlError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Read { source, .. } | Self::Write { source, .. }
                if source.kind() == io::ErrorKind::PermissionDenied =>
            {
                ErrorKind::PermissionDenied
            }
            Self::Read { .. } | Self::Write { .. } | Self::NotAFlag { .. } => ErrorKind::Internal,
            Self::InvalidInterface { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// Turns IPv4 forwarding on; returns whether it was already on, for
/// [`restore_ip_forward`].
pub fn enable_ip_forward() -> Result<bool, SysctlError> {
    set_flag(Path::new(IP_FORWARD), true)
}

/// Puts IPv4 forwarding back to what [`enable_ip_forward`] found.
pub fn restore_ip_forward(was_on: bool) -> Result<(), SysctlError> {
    set_flag(Path::new(IP_FORWARD), was_on).map(drop)
}

/// Lets `bridge` carry packets with a loopback source. The `output` DNAT of
/// a connection to `127.0.0.1:PORT` sends it out of the bridge still from
/// 127.0.0.1 (masquerade rewrites it after routing); without this the
/// kernel drops it as a martian. Gone with the bridge, nothing to restore.
pub fn enable_route_localnet(bridge: &str) -> Result<(), SysctlError> {
    check_interface(bridge)?;
    set_flag(&Path::new("/proc/sys/net/ipv4/conf").join(bridge).join("route_localnet"), true)
        .map(drop)
}

/// Turns IPv6 off on `interface`, a bridge port that needs none (Kiln's
/// networks are IPv4 only, and a bridge forwards IPv6 frames between its
/// ports all the same). Set while the interface is down, it never gets a
/// link-local address: no duplicate address detection or multicast
/// reports when it comes up, and no address to take away when it goes,
/// which the kernel's NAT would answer with a walk of the whole connection
/// tracking table. A kernel without IPv6 has nothing to turn off.
pub fn disable_ipv6(interface: &str) -> Result<(), SysctlError> {
    check_interface(interface)?;
    let conf = Path::new("/proc/sys/net/ipv6/conf");
    if !conf.exists() {
        return Ok(());
    }
    set_flag(&conf.join(interface).join("disable_ipv6"), true).map(drop)
}

/// An interface name becomes a path component: it must be one.
fn check_interface(name: &str) -> Result<(), SysctlError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(SysctlError::InvalidInterface { name: name.to_owned() });
    }
    Ok(())
}

/// Writes `on` to a 0/1 sysctl file; returns the previous value. Writes
/// nothing when it already holds the value.
fn set_flag(path: &Path, on: bool) -> Result<bool, SysctlError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| SysctlError::Read { path: path.to_owned(), source })?;
    let was_on = match text.trim() {
        "0" => false,
        "1" => true,
        other => {
            return Err(SysctlError::NotAFlag { path: path.to_owned(), value: other.to_owned() })
        }
    };
    if was_on != on {
        std::fs::write(path, if on { "1\n" } else { "0\n" })
            .map_err(|source| SysctlError::Write { path: path.to_owned(), source })?;
    }
    Ok(was_on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_flag_returns_the_old_value_and_writes_the_new() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ip_forward");
        std::fs::write(&path, "0\n").expect("write");
        assert!(!set_flag(&path, true).expect("enable"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "1\n");
        assert!(set_flag(&path, true).expect("enable again"));
        assert!(set_flag(&path, false).expect("restore"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "0\n");
    }

    #[test]
    fn set_flag_refuses_what_is_not_a_flag_and_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("odd");
        std::fs::write(&path, "2\n").expect("write");
        let err = set_flag(&path, true).unwrap_err();
        assert_eq!(err.to_string(), format!("{} holds \"2\", not 0 or 1", path.display()));
        let err = set_flag(&dir.path().join("missing"), true).unwrap_err();
        assert!(err.to_string().starts_with("cannot read "), "{err}");
        assert_eq!(err.kind(), ErrorKind::Internal);
    }

    #[test]
    fn route_localnet_refuses_names_that_are_not_one_path_component() {
        for bad in ["", ".", "..", "../all", "a/b"] {
            let err = enable_route_localnet(bad).unwrap_err();
            assert!(matches!(err, SysctlError::InvalidInterface { .. }), "{bad:?}: {err}");
            let err = disable_ipv6(bad).unwrap_err();
            assert!(matches!(err, SysctlError::InvalidInterface { .. }), "{bad:?}: {err}");
        }
    }
}
