//! Process creation and descriptor hygiene.

use std::io;
use std::os::fd::RawFd;

use nix::unistd::{ForkResult, Pid};

/// Which side of a fork this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent { child: Pid },
    Child,
}

/// Forks the calling process.
///
/// Callers must be single-threaded (the runtime never starts threads): in a
/// multi-threaded process the child could inherit locks held by threads that
/// no longer exist. The `kiln runtime` entry points run before any thread is
/// created, which is what makes this sound.
pub fn fork_single_threaded() -> io::Result<Forked> {
    // SAFETY: documented contract above: the caller is single-threaded, so the
    // child is a faithful copy with no locks held by vanished threads.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        ForkResult::Parent { child } => Ok(Forked::Parent { child }),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// Closes every file descriptor numbered `first` or above.
pub fn close_fds_from(first: RawFd) -> io::Result<()> {
    close_range(first, 0)
}

/// Marks every file descriptor numbered `first` or above close-on-exec.
pub fn cloexec_fds_from(first: RawFd) -> io::Result<()> {
    close_range(first, libc::CLOSE_RANGE_CLOEXEC)
}

fn close_range(first: RawFd, flags: libc::c_uint) -> io::Result<()> {
    let first =
        libc::c_uint::try_from(first).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: close_range only touches this process's descriptor table; no Rust
    // object is left owning a closed fd because callers run it right before
    // exec, when nothing but the standard streams is still in use.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, flags) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) && err.raw_os_error() != Some(libc::EINVAL) {
        return Err(err);
    }
    // Kernels before 5.9 (or 5.11 for CLOEXEC): walk /proc/self/fd instead.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first as RawFd)
        .collect();
    for fd in fds {
        if flags & libc::CLOSE_RANGE_CLOEXEC != 0 {
            // SAFETY: F_SETFD on an fd number only changes its flags.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        } else {
            // SAFETY: see close_range above; the read_dir fd is already closed.
            unsafe { libc::close(fd) };
        }
    }
    Ok(())
}

/// Sets the NIS domain name of the current UTS namespace.
pub fn set_domainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ends the process at once, without running destructors or atexit handlers:
/// the right exit for a forked child.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// Sends signal number `signal` (real-time ones included) to `pid`.
pub fn send_signal(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Puts every signal whose action can be changed back to its default, as a
/// new program expects. Rust's start-up leaves SIGPIPE ignored, and ignored
/// signals stay ignored across `execve`: without this a container's
/// `yes | head` would see EPIPE instead of dying of SIGPIPE.
pub fn reset_signal_dispositions() {
    let (_, last) = realtime_signals();
    for signal in 1..=last {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // The raw call: libc's wrapper refuses the two signals it keeps
        // for itself (32, 33), which an ignoring parent may still have set.
        // An all-zero kernel sigaction is SIG_DFL, no flags, empty mask.
        let action = [0u64; 4];
        // SAFETY: rt_sigaction reads `action` (valid for its size, larger
        // than the kernel's struct) and writes nothing back (old = null).
        // SIG_DFL installs no handler of ours, so no code of this process
        // can run on a signal. Refused numbers fail harmlessly.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                action.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            );
        }
    }
}

/// The lowest and highest real-time signal numbers.
pub fn realtime_signals() -> (i32, i32) {
    (libc::SIGRTMIN(), libc::SIGRTMAX())
}

/// Makes `fd` the process's stdin, stdout and stderr.
pub fn dup_onto_stdio(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    for target in 0..3 {
        // SAFETY: dup2 onto 0..2 replaces the standard streams, which no Rust
        // object owns as an OwnedFd; the source fd stays valid for the call.
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
