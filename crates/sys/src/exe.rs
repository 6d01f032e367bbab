//! Re-executing from a sealed in-memory copy of our own binary.
//!
//! A process that enters a container is visible there until it calls execve,
//! and a container process that reaches `/proc/<pid>/exe` of it (or makes it
//! execute `/proc/self/exe` through a `#!` line) could open the host's binary
//! and overwrite it (CVE-2019-5736). Running from a sealed memfd means that
//! link leads to an unwritable copy, never to the file on the host.

use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

const MEMFD_NAME: &str = "kiln-sealed";

/// True when this process already runs from the sealed copy.
pub fn is_sealed_copy() -> bool {
    std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().starts_with(&format!("/memfd:{MEMFD_NAME}")))
        .unwrap_or(false)
}

/// Re-executes the current program, with the same arguments and environment,
/// from a sealed memfd copy of its binary. Returns only on failure; returns
/// `Ok(())` at once when already running from such a copy.
pub fn reexec_sealed() -> io::Result<()> {
    if is_sealed_copy() {
        return Ok(());
    }
    let mut exe = std::fs::File::open("/proc/self/exe")?;
    let memfd = memfd_create(MEMFD_NAME, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let mut copy = std::fs::File::from(memfd);
    io::copy(&mut exe, &mut copy)?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(copy.as_fd(), FcntlArg::F_ADD_SEALS(seals))?;
    let args = to_cstrings(std::env::args_os().map(OsStringExt::into_vec))?;
    let env = to_cstrings(std::env::vars_os().map(|(k, v)| {
        let mut kv = k.into_vec();
        kv.push(b'=');
        kv.extend(v.into_vec());
        kv
    }))?;
    match nix::unistd::fexecve(copy.as_fd(), &args, &env) {
        Ok(never) => match never {},
        Err(e) => Err(e.into()),
    }
}

fn to_cstrings(items: impl Iterator<Item = Vec<u8>>) -> io::Result<Vec<CString>> {
    items
        .map(|b| CString::new(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e)))
        .collect()
}
