//! Named network namespaces: a namespace bind-mounted on a file (as `ip
//! netns add` does under /run/netns), so that it outlives the thread that
//! made it and containers, sockets and helpers can join it by path.
//!
//! The daemon is multi-threaded and must never fork, so every namespace
//! switch here happens on a short-lived thread of our own: `unshare` and
//! `setns` of a network namespace change only the calling thread, and that
//! thread ends when the work is done. The caller's threads stay where they
//! were.
//!
//! A namespace can also be made without a name ([`create`]): it lives as
//! long as its file descriptor (or a socket made in it), and is named later
//! ([`mount_named`]) or never. Made ahead of need, that takes the namespace's
//! creation (about a millisecond of kernel work, plus a thread) off the path
//! of whoever names it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::fd::{AsFd, AsRawFd as _, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::statfs::FsType;

/// `NSFS_MAGIC` (linux/magic.h): the file system of namespace files. The
/// width of `f_type` differs between architectures, hence `as _`.
const NSFS_MAGIC: FsType = FsType(0x6e73_6673 as _);

/// The calling thread's own network namespace, as a path that stays right
/// in a thread that has unshared it (`/proc/self` would be the main thread's).
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// A namespace operation failed (on `path`, for a named namespace); the
/// source says why.
#[derive(Debug, thiserror::Error)]
#[error("{what}{}", .path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
pub struct NetnsError {
    what: &'static str,
    path: Option<PathBuf>,
    #[source]
    source: io::Error,
}

fn failed(what: &'static str, path: &Path, source: io::Error) -> io::Error {
    io::Error::new(source.kind(), NetnsError { what, path: Some(path.to_owned()), source })
}

/// Creates a new network namespace and bind-mounts it at `path`, a file
/// that must not exist yet (its directory must). Refusing an existing path
/// keeps two containers from ever sharing a namespace by accident; after a
/// crash, [`remove_named`] the leftover first.
pub fn create_named(path: &Path) -> io::Result<()> {
    create_mount_point(path)?;
    let made = on_own_thread(|| {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
        nix::mount::mount(Some(THREAD_NETNS), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
        Ok(())
    });
    if let Err(err) = made {
        // The namespace died with the thread; only the file is left.
        let _ = std::fs::remove_file(path);
        return Err(failed("cannot create network namespace at", path, err));
    }
    Ok(())
}

/// Creates a new network namespace without a name and returns it open,
/// with what `inside` made in it (a netlink socket, `lo` up, ...). `inside`
/// runs on the short-lived thread that made the namespace, so nothing else
/// has to enter it for that. The namespace lives while the returned file,
/// or anything `inside` made there, stays open; [`mount_named`] names it.
pub fn create<T: Send>(inside: impl FnOnce() -> io::Result<T> + Send) -> io::Result<(File, T)> {
    on_own_thread(|| {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
        let netns = File::open(THREAD_NETNS)?;
        Ok((netns, inside()?))
    })
    .map_err(|source| {
        io::Error::new(
            source.kind(),
            NetnsError { what: "cannot create a network namespace", path: None, source },
        )
    })
}

/// Bind-mounts the namespace `netns` refers to (from [`create`] or
/// [`open`]) at `path`, a file that must not exist yet, as
/// [`create_named`] would have: no thread, no namespace switch.
pub fn mount_named(netns: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    create_mount_point(path)?;
    // The descriptor's magic link resolves to the namespace itself; its
    // own thread's table, as the caller's may be unshared.
    let source = format!("/proc/thread-self/fd/{}", netns.as_raw_fd());
    let mounted = nix::mount::mount(
        Some(source.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    );
    if let Err(err) = mounted {
        let _ = std::fs::remove_file(path);
        return Err(failed("cannot mount network namespace at", path, err.into()));
    }
    Ok(())
}

/// The file a namespace is mounted on; an existing one is refused (see
/// [`create_named`]).
fn create_mount_point(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
        .map(drop)
        .map_err(|err| failed("cannot create network namespace file", path, err))
}

/// Unmounts the namespace at `path` and deletes the file. The namespace
/// itself goes when nothing else holds it (no process, socket or open fd),
/// taking its interfaces with it. A path that is absent, or a file that is
/// no longer mounted, is fine.
pub fn remove_named(path: &Path) -> io::Result<()> {
    // Detach only while a namespace is mounted there: a wrong path (a
    // directory, "/") must never have its mount taken away. Mounting twice
    // stacks, so repeat until the file underneath shows.
    for _ in 0..16 {
        match nix::sys::statfs::statfs(path) {
            Ok(fs) if fs.filesystem_type() == NSFS_MAGIC => {}
            Ok(_) => break,
            Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(err) => return Err(failed("cannot inspect network namespace", path, err.into())),
        }
        if let Err(err) = nix::mount::umount2(path, MntFlags::MNT_DETACH) {
            return Err(failed("cannot unmount network namespace", path, err.into()));
        }
    }
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            Err(failed("cannot remove network namespace file", path, err))
        }
        _ => Ok(()),
    }
}

/// Opens the namespace at `path` (for [`crate::netlink::Netlink::open_in`],
/// a veth peer's destination, or `setns`).
pub fn open(path: &Path) -> io::Result<File> {
    File::open(path).map_err(|err| failed("cannot open network namespace", path, err))
}

/// Runs `f` on a short-lived thread inside the namespace at `path` (bring
/// up `lo`, set its sysctls, open a socket that belongs there) and returns
/// what it returns. Sockets made in `f` stay in that namespace after it.
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    let netns = open(path)?;
    on_own_thread(|| {
        enter(netns.as_fd()).map_err(|err| failed("cannot enter network namespace", path, err))?;
        f()
    })
}

/// [`run_in`] for a namespace already open.
pub(crate) fn run_in_fd<T: Send>(
    netns: BorrowedFd<'_>,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    on_own_thread(|| {
        enter(netns)?;
        f()
    })
}

fn enter(netns: BorrowedFd<'_>) -> io::Result<()> {
    nix::sched::setns(netns, CloneFlags::CLONE_NEWNET).map_err(|err| match err {
        // What setns says for a file that is not a network namespace.
        nix::errno::Errno::EINVAL => {
            io::Error::new(io::ErrorKind::InvalidInput, "not a network namespace")
        }
        other => other.into(),
    })
}

/// Runs `f` on a new thread and waits for it. The thread's namespace
/// changes end with it. A panic in `f` becomes an error, not ours.
fn on_own_thread<T: Send>(f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    std::thread::scope(|scope| {
        let thread =
            std::thread::Builder::new().name("kiln-netns".to_owned()).spawn_scoped(scope, f)?;
        thread.join().unwrap_or_else(|_| Err(io::Error::other("network namespace thread panicked")))
    })
}

/// Writes `value` to the sysctl `key` of the calling thread's network
/// namespace (inside [`run_in`]: of that namespace). `key` is dotted
/// (`net.ipv4.ip_forward`) or a path under /proc/sys
/// (`net/ipv4/conf/eth0.100/route_localnet`, for names with dots), and must
/// be under `net`: other sysctls are global to the host.
pub fn set_sysctl(key: &str, value: &str) -> io::Result<()> {
    let path = sysctl_path(key)?;
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|err| failed("cannot set sysctl", &path, err))
}

fn sysctl_path(key: &str) -> io::Result<PathBuf> {
    let relative = if key.contains('/') { key.to_owned() } else { key.replace('.', "/") };
    let parts: Vec<&str> = relative.split('/').collect();
    let bad = parts.first() != Some(&"net")
        || parts.len() < 2
        || parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..");
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid network sysctl {key:?}: must name a key under net"),
        ));
    }
    Ok(Path::new("/proc/sys").join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_keys_map_to_proc_sys_net_paths() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward").expect("dotted"),
            Path::new("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.100/route_localnet").expect("slashed"),
            Path::new("/proc/sys/net/ipv4/conf/eth0.100/route_localnet")
        );
    }

    #[test]
    fn sysctls_outside_net_or_escaping_it_are_refused() {
        for key in ["kernel.hostname", "net", "", "net/../kernel/hostname", "/net/ipv4", "net..x"] {
            let err = sysctl_path(key).expect_err(key);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{key}");
        }
        let err = set_sysctl("vm.overcommit_memory", "1").expect_err("not net");
        assert!(err.to_string().contains("vm.overcommit_memory"), "{err}");
    }

    #[test]
    fn create_named_refuses_an_existing_file_and_leaves_it_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("taken");
        std::fs::write(&path, "mine").expect("write");
        let err = create_named(&path).expect_err("exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("still there"), "mine");
    }

    #[test]
    fn mount_named_refuses_an_existing_file_and_leaves_it_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("taken");
        std::fs::write(&path, "mine").expect("write");
        let netns = File::open("/proc/self/ns/net").expect("own namespace");
        let err = mount_named(netns.as_fd(), &path).expect_err("exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("still there"), "mine");
    }

    #[test]
    fn remove_named_of_a_plain_file_or_nothing_is_fine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ns");
        remove_named(&path).expect("absent");
        std::fs::write(&path, "").expect("write");
        remove_named(&path).expect("plain file");
        assert!(!path.exists());
        // A directory is not a namespace file: it is neither unmounted nor removed.
        let err = remove_named(dir.path()).expect_err("directory");
        assert!(err.to_string().contains(&*dir.path().to_string_lossy()), "{err}");
        assert!(dir.path().exists());
    }

    #[test]
    fn run_in_a_file_that_is_not_a_namespace_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plain");
        std::fs::write(&path, "").expect("write");
        let err = run_in(&path, || Ok(())).expect_err("not a netns");
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        let missing = dir.path().join("missing");
        let err = run_in(&missing, || Ok(())).expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_panic_on_the_namespace_thread_is_an_error() {
        let result: io::Result<()> = on_own_thread(|| panic!("boom"));
        assert!(result.is_err());
    }
}
