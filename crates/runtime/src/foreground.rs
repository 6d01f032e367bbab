//! Waiting in the foreground for a container's process, as `run` and `exec`
//! do: signals reach the process, its terminal is relayed to ours, and its
//! exit status becomes our exit code.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::RuntimeError;

const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Blocks the signals we relay, so they queue on a signalfd instead of
/// killing us. Call before the process starts, so none is missed.
pub(crate) fn block_signals() -> Result<SignalFd, RuntimeError> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| RuntimeError::System { what: "sigprocmask", source: e.into() })?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| RuntimeError::System { what: "signalfd", source: e.into() })
}

/// Puts our terminal in raw mode while alive, and back when dropped.
pub(crate) struct RawTerminal {
    saved: Option<Termios>,
}

impl RawTerminal {
    pub(crate) fn enter() -> RawTerminal {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawTerminal { saved }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

fn copy_size(master: BorrowedFd<'_>) {
    if let Ok(size) = kiln_sys::tty::window_size(std::io::stdin().as_fd()) {
        let _ = kiln_sys::tty::set_window_size(master, size);
    }
}

/// Waits for `pid` (our child, or a descendant while we are a subreaper) to
/// exit; returns its exit code, 128+N when killed by signal N.
pub(crate) fn wait(
    pid: i32,
    signals: SignalFd,
    master: Option<OwnedFd>,
) -> Result<i32, RuntimeError> {
    let _raw = master.as_ref().map(|m| {
        copy_size(m.as_fd());
        RawTerminal::enter()
    });
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if let Some(code) = reap(pid) {
            if let Some(m) = master.as_ref().filter(|_| master_open) {
                drain(m.as_fd(), &mut buf);
            }
            return Ok(code);
        }
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &master {
            if master_open {
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            }
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(RuntimeError::System { what: "poll", source: e.into() }),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);
        if ready[0] {
            while let Ok(Some(info)) = signals.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == Signal::SIGCHLD as i32 {
                    continue;
                }
                if signo == Signal::SIGWINCH as i32 {
                    if let Some(m) = &master {
                        copy_size(m.as_fd());
                    }
                    continue;
                }
                let _ = kiln_sys::process::send_signal(pid, signo);
            }
        }
        let Some(m) = &master else { continue };
        let mut i = 1;
        if master_open {
            if ready[i] && !relay(m.as_fd(), std::io::stdout().as_fd(), &mut buf) {
                master_open = false;
            }
            i += 1;
        }
        if stdin_open && ready[i] && !relay(stdin.as_fd(), m.as_fd(), &mut buf) {
            stdin_open = false;
        }
    }
}

/// Copies what is readable now; false at end of file or on error.
fn relay(from: BorrowedFd<'_>, to: BorrowedFd<'_>, buf: &mut [u8]) -> bool {
    match nix::unistd::read(from, buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => write_all(to, &buf[..n]),
    }
}

fn write_all(to: BorrowedFd<'_>, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(to, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(_) => return false,
        }
    }
    true
}

/// After the process exits, copies what is left in the terminal's buffer.
fn drain(master: BorrowedFd<'_>, buf: &mut [u8]) {
    loop {
        let mut fds = [PollFd::new(master, PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
            return;
        }
        if !relay(master, std::io::stdout().as_fd(), buf) {
            return;
        }
    }
}

/// Reaps exited children; returns `pid`'s exit code once it has exited.
fn reap(pid: i32) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                return Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}
