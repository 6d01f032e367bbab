//! `docker run --init`: a tiny init as the container's PID 1.
//!
//! Docker bind-mounts a static `tini` into the container for this. Kiln needs
//! no extra binary: the container's process, already inside every namespace
//! and past every security step, forks once more right before `execve`. The
//! child becomes the user's command; the parent stays behind as PID 1 with
//! the runtime's code already in memory, so nothing has to exist in the
//! image. As PID 1 it reaps every orphan that the kernel hands it, forwards
//! the signals it gets to the command, and exits as the command did
//! (128 + signal when the command was killed), which ends the namespace.
//!
//! Asked for with the annotation [`INIT_ANNOTATION`] set to `"true"`.

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use kiln_sys::process::{exit_now, fork_single_threaded, Forked};

use crate::setup_error::{Context, SetupResult};

/// The annotation that asks the runtime for an init as PID 1.
pub const INIT_ANNOTATION: &str = "org.kiln.init";

/// Makes PID 1's command line read `kiln-init -- CMD...` (best effort: it
/// needs CAP_SYS_RESOURCE, which a rootless runtime lacks).
pub(crate) fn name_init(args: &[String]) {
    let shown: Vec<&str> =
        ["kiln-init", "--"].into_iter().chain(args.iter().map(String::as_str)).collect();
    let _ = kiln_sys::process::set_cmdline(&shown);
}

/// Forks the init. Returns in the child, which goes on to exec the command
/// with all signals still blocked (the caller unblocks them just before
/// `execve`); the parent never returns.
///
/// `tty` says whether stdin is the container's terminal: the command then
/// gets its own process group as the terminal's foreground, so that Ctrl-C
/// reaches it once (from the terminal), not twice (again via the init).
pub(crate) fn fork_init(tty: bool) -> SetupResult<()> {
    let all = SigSet::all();
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&all), None)
        .context(|| "cannot block signals for the init".to_owned())?;
    match fork_single_threaded().context(|| "cannot fork the init's child".to_owned())? {
        Forked::Child => {
            // While signals are blocked, tcsetpgrp from the new background
            // group is not stopped by SIGTTOU.
            nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))
                .context(|| "cannot make the command's process group".to_owned())?;
            if tty {
                let stdin = std::io::stdin();
                nix::unistd::tcsetpgrp(&stdin, nix::unistd::getpid())
                    .context(|| "cannot give the terminal to the command".to_owned())?;
            }
            Ok(())
        }
        Forked::Parent { child } => supervise(child, &all),
    }
}

/// PID 1's loop: every signal is blocked and taken with sigwait.
fn supervise(child: Pid, all: &SigSet) -> ! {
    // The name `ps` shows for PID 1 (its comm).
    let _ = nix::sys::prctl::set_name(c"kiln-init");
    loop {
        let signal = match kiln_sys::process::wait_signal(all) {
            Ok(s) => s,
            Err(_) => continue,
        };
        if signal == libc::SIGCHLD {
            if let Some(code) = reap(child) {
                exit_now(code);
            }
        } else {
            // The command may be gone already (its exit is reaped on the
            // SIGCHLD that follows); nothing to do then.
            let _ = kiln_sys::process::send_signal(child.as_raw(), signal);
        }
    }
}

/// Reaps every exited child; the command's exit code once it is among them.
fn reap(command: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => result = Some(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == command => {
                result = Some(128 + signal as i32);
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}
