//! Re-executing from a copy of our own binary that cannot be written.
//!
//! A process that enters a container is visible there until it calls execve,
//! and a container process that reaches `/proc/<pid>/exe` of it (or makes it
//! execute `/proc/self/exe` through a `#!` line) could open the host's binary
//! and overwrite it (CVE-2019-5736). Running from a read-only view of the
//! binary means that link leads to something no one can write.
//!
//! The cheap view is a read-only bind mount of the binary, made in a private
//! mount namespace and detached at once: the kernel keeps the mount alive
//! for the exec'd image, and the runtime returns to its own mount namespace
//! before exec. Where mounts are not allowed, a sealed memfd copy serves
//! (slower: the whole binary is copied).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, OFlag, SealFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{statvfs, FsFlags};

const MEMFD_NAME: &str = "kiln-sealed";

/// True when this process's binary cannot be written through /proc/self/exe:
/// it is our sealed copy, or it lies on a read-only mount.
pub fn is_protected() -> bool {
    let sealed = std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().starts_with(&format!("/memfd:{MEMFD_NAME}")))
        .unwrap_or(false);
    sealed || statvfs("/proc/self/exe").is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY))
}

/// Re-executes the current program, with the same arguments and
/// environment, from an unwritable view of its binary. Returns `Ok(())` at
/// once when already protected; otherwise returns only on failure.
pub fn reexec_protected() -> io::Result<()> {
    if is_protected() {
        return Ok(());
    }
    let image = match readonly_view() {
        Ok(fd) => fd,
        Err(_) => sealed_copy()?,
    };
    let args = to_cstrings(std::env::args_os().map(OsStringExt::into_vec))?;
    let env = to_cstrings(std::env::vars_os().map(|(k, v)| {
        let mut kv = k.into_vec();
        kv.push(b'=');
        kv.extend(v.into_vec());
        kv
    }))?;
    match nix::unistd::fexecve(image.as_fd(), &args, &env) {
        Ok(never) => match never {},
        Err(e) => Err(e.into()),
    }
}

/// This process's binary, opened (`O_PATH`) through a read-only bind mount
/// that is already detached: a program started from `/proc/self/fd/N` of it
/// runs protected at once, with no re-exec. The view lives as long as the
/// descriptor. Call it while the process is single-threaded (it briefly
/// enters a private mount namespace).
pub fn readonly_binary() -> io::Result<OwnedFd> {
    readonly_view()
}

/// The binary opened through a read-only bind mount that is already
/// detached; our mount namespace is left as it was.
fn readonly_view() -> io::Result<OwnedFd> {
    let path = std::fs::read_link("/proc/self/exe")?;
    if !path.is_file() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "binary was replaced"));
    }
    let own_ns = std::fs::File::open("/proc/self/ns/mnt")?;
    // setns into a mount namespace moves the cwd to its root: keep ours, so
    // relative paths in the re-executed arguments still resolve.
    let cwd = std::fs::File::open(".")?;
    unshare(CloneFlags::CLONE_NEWNS)?;
    let view = bind_readonly(&path);
    // Back to the namespace we came from, whatever happened.
    setns(own_ns.as_fd(), CloneFlags::CLONE_NEWNS)?;
    nix::unistd::fchdir(cwd.as_fd())?;
    view
}

fn bind_readonly(path: &Path) -> io::Result<OwnedFd> {
    // Our copies of the mounts must not send the bind back to the host.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)?;
    mount(Some(path), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)?;
    let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?;
    umount2(path, MntFlags::MNT_DETACH)?;
    Ok(fd)
}

/// A sealed in-memory copy of the binary.
fn sealed_copy() -> io::Result<OwnedFd> {
    let mut exe = std::fs::File::open("/proc/self/exe")?;
    let memfd = memfd_create(MEMFD_NAME, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let mut copy = std::fs::File::from(memfd);
    io::copy(&mut exe, &mut copy)?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(copy.as_fd(), FcntlArg::F_ADD_SEALS(seals))?;
    Ok(copy.into())
}

fn to_cstrings(items: impl Iterator<Item = Vec<u8>>) -> io::Result<Vec<CString>> {
    items
        .map(|b| CString::new(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e)))
        .collect()
}
