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

/// Makes `/proc/self/cmdline` read as `args` from now on (it keeps showing
/// the arguments the process was started with otherwise, even after fork).
///
/// Uses `PR_SET_MM_MAP`, which needs no capability (unlike the single-field
/// `PR_SET_MM` calls, which need CAP_SYS_RESOURCE): every other field is
/// handed back as the kernel reports it. The new text lives until the
/// process exits.
pub fn set_cmdline(args: &[&str]) -> io::Result<()> {
    let mut text = Vec::new();
    for arg in args {
        text.extend_from_slice(arg.as_bytes());
        text.push(0);
    }
    // Leaked on purpose: the kernel reads the arguments from this memory for
    // as long as the process lives. Allocated before the break is read.
    let text: &'static mut [u8] = Vec::leak(text);
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(") ")
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("bad /proc/self/stat"))?;
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // Field n of proc(5) is fields[n - 3]: state is field 3.
    let field = |n: usize| {
        fields.get(n - 3).copied().ok_or_else(|| io::Error::other("short /proc/self/stat"))
    };
    // SAFETY: sbrk(0) only reads the current program break.
    let brk = unsafe { libc::sbrk(0) } as u64;
    let start = text.as_ptr() as u64;
    let map = MmMap {
        start_code: field(26)?,
        end_code: field(27)?,
        start_data: field(45)?,
        end_data: field(46)?,
        start_brk: field(47)?,
        brk,
        start_stack: field(28)?,
        arg_start: start,
        arg_end: start + text.len() as u64,
        env_start: field(50)?,
        env_end: field(51)?,
        auxv: 0,
        auxv_size: 0,
        exe_fd: u32::MAX,
    };
    // SAFETY: the kernel reads `map` (valid, of the size passed) during the
    // call. It records the addresses as this process's memory layout; all but
    // the argument area are the kernel's own current values, and that area is
    // leaked memory that is never freed or written again.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_MM,
            PR_SET_MM_MAP,
            &map as *const MmMap as libc::c_ulong,
            std::mem::size_of::<MmMap>() as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

const PR_SET_MM_MAP: libc::c_ulong = 14;

/// The kernel's `struct prctl_mm_map` (linux/prctl.h).
#[repr(C)]
struct MmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: u64,
    auxv_size: u32,
    exe_fd: u32,
}

/// Waits for one of the signals in `set` (which the caller has blocked) and
/// returns its number, real-time signals included.
pub fn wait_signal(set: &nix::sys::signal::SigSet) -> io::Result<i32> {
    let mut signal: libc::c_int = 0;
    // SAFETY: `set` is a valid sigset_t for the call's duration and `signal`
    // a valid place for the kernel's answer; sigwait touches nothing else.
    let rc = unsafe { libc::sigwait(set.as_ref(), &mut signal) };
    if rc == 0 {
        Ok(signal)
    } else {
        Err(io::Error::from_raw_os_error(rc))
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
