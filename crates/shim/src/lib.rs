//! The per-container supervisor (`kiln shim`).
//!
//! The daemon starts one shim per container and reads one ready line from
//! its stdout ([`protocol::Reply`]). The shim is detached (own session,
//! child subreaper, not the daemon's child), so containers outlive daemon
//! restarts. It mounts the rootfs, creates the container through
//! `kiln-runtime`, holds its stdio (pipes or a pty), writes its log
//! ([`logfile`], Docker's json-file format), serves the control socket
//! `<state-dir>/shim.sock` ([`protocol`]: start, attach, wait, resize,
//! exec), reaps the container and writes `<state-dir>/exit.json`, deletes
//! the container and exits.
//!
//! The shim is one thread running a poll(2) loop, because the runtime forks.
//! The daemon uses [`protocol`] and [`logfile`]; [`ShimArgs::to_args`]
//! builds its command line.

mod args;
mod client;
mod exit;
pub mod logfile;
pub mod protocol;
mod rootfs;
mod stdio;
mod supervisor;

use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kiln_sys::process::{fork_single_threaded, Forked};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

pub use args::ShimArgs;
pub use exit::read_record;
pub use rootfs::{
    clear_volatile_mark, mount as mount_rootfs, unmount as unmount_rootfs, RootfsError,
    RootfsMount, ROOTFS_FILE, VOLATILE,
};

use protocol::{Reply, EXIT_FAILED, LOG_FILE, PID_FILE};
use supervisor::{Failure, Supervisor};

/// Runs `kiln shim`. The process that calls this returns at once (exit 0)
/// after forking the real shim, which reports on the inherited stdout.
pub fn main(args: ShimArgs) -> ExitCode {
    // Like `kiln runtime create`: nothing in the container may reach a
    // writable /proc/<pid>/exe of ours (CVE-2019-5736).
    if let Err(e) = kiln_sys::exe::reexec_protected() {
        return fail_early(&format!("cannot re-execute from a read-only view of kiln: {e}"));
    }
    let (state_dir, args) = match resolve(args) {
        Ok(resolved) => resolved,
        Err(message) => return fail_early(&message),
    };
    match fork_single_threaded() {
        Ok(Forked::Parent { .. }) => ExitCode::SUCCESS,
        Ok(Forked::Child) => {
            shim(&args, state_dir);
            ExitCode::SUCCESS
        }
        Err(e) => fail_early(&format!("cannot fork the shim: {e}")),
    }
}

/// Makes the state dir and turns the paths absolute (the shim changes
/// directory).
fn resolve(mut args: ShimArgs) -> Result<(PathBuf, ShimArgs), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&args.state_dir)
        .map_err(|e| format!("cannot create state dir {}: {e}", args.state_dir.display()))?;
    let absolute = |p: &Path| -> Result<PathBuf, String> {
        std::path::absolute(p).map_err(|e| format!("invalid path {}: {e}", p.display()))
    };
    let state_dir = std::fs::canonicalize(&args.state_dir)
        .map_err(|e| format!("cannot resolve {}: {e}", args.state_dir.display()))?;
    args.state_dir.clone_from(&state_dir);
    args.bundle = absolute(&args.bundle)?;
    args.runtime_root = absolute(&args.runtime_root)?;
    args.log_path = absolute(&args.log_path)?;
    Ok((state_dir, args))
}

/// A failure before the fork: the ready line, from the first process.
fn fail_early(message: &str) -> ExitCode {
    let reply = Reply::failed_to_run(message, EXIT_FAILED);
    let _ = std::io::stdout().write_all(&protocol::encode_line(&reply));
    let _ = std::io::stdout().flush();
    ExitCode::from(1)
}

/// Where the ready line goes, closed after.
///
/// The container's init is forked from the shim before the line is written
/// and keeps a copy of every descriptor until it is started; so the line
/// goes through a private pipe to a tiny relay process that holds the
/// daemon's stdout alone, writes the line there and exits. The daemon sees
/// the end of file right after the line, started or not.
struct ReadyLine {
    out: Option<File>,
    relay: Option<nix::unistd::Pid>,
}

impl ReadyLine {
    fn relay() -> ReadyLine {
        let direct = || ReadyLine {
            out: std::io::stdout().as_fd().try_clone_to_owned().ok().map(File::from),
            relay: None,
        };
        let Ok((r, w)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
            return direct();
        };
        match fork_single_threaded() {
            Ok(Forked::Child) => {
                drop(w);
                relay_line(File::from(r));
                kiln_sys::process::exit_now(0)
            }
            Ok(Forked::Parent { child }) => {
                ReadyLine { out: Some(File::from(w)), relay: Some(child) }
            }
            Err(_) => direct(),
        }
    }

    /// Writes the line and waits until the relay has passed it on.
    fn send(&mut self, reply: &Reply) {
        if let Some(mut out) = self.out.take() {
            let _ = out.write_all(&protocol::encode_line(reply));
        }
        if let Some(relay) = self.relay.take() {
            let _ = nix::sys::wait::waitpid(relay, None);
        }
    }
}

/// The relay: one line from `from` to stdout. It dies with the shim.
fn relay_line(mut from: File) {
    use std::io::Read as _;
    let parent = nix::unistd::getppid();
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() || nix::unistd::getppid() != parent
    {
        return;
    }
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    while !line.ends_with(b"\n") && line.len() <= protocol::MAX_REQUEST_LINE {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => line.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if let Ok(out) = std::io::stdout().as_fd().try_clone_to_owned() {
        let _ = File::from(out).write_all(&line);
    }
}

/// The real shim, in the forked child.
fn shim(args: &ShimArgs, state_dir: PathBuf) {
    // Nothing the daemon leaked to us may live on in the shim (or reach the
    // container): nothing of ours is open above stdio yet.
    let _ = kiln_sys::process::close_fds_from(3);
    let mut ready = ReadyLine::relay();
    match prepare_process(&state_dir) {
        Ok((devnull, signals)) => match Supervisor::start_up(args, state_dir, devnull, signals) {
            Ok(supervisor) => {
                ready.send(&Reply::with_pid(supervisor.init_pid()));
                drop(ready);
                supervisor.run();
            }
            Err(Failure { message, exit_code }) => {
                tracing::error!(container = %args.id, "{message}");
                ready.send(&Reply::failed_to_run(message, exit_code));
            }
        },
        Err(message) => ready.send(&Reply::failed_to_run(message, EXIT_FAILED)),
    }
}

/// Detaches from the daemon and sets the process up: own session, child
/// subreaper, cwd in the state dir, stdio on /dev/null, diagnostics in
/// shim.log, pid file, signals through a signalfd.
fn prepare_process(state_dir: &Path) -> Result<(std::os::fd::OwnedFd, SignalFd), String> {
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| format!("cannot become a child subreaper: {e}"))?;
    std::env::set_current_dir(state_dir)
        .map_err(|e| format!("cannot change to {}: {e}", state_dir.display()))?;
    let devnull = stdio::open_devnull().map_err(|e| format!("cannot open /dev/null: {e}"))?;
    stdio::stdio_to_devnull(devnull.as_fd()).map_err(|e| format!("cannot redirect stdio: {e}"))?;
    init_diagnostics(&state_dir.join(LOG_FILE));
    std::fs::write(PID_FILE, std::process::id().to_string())
        .map_err(|e| format!("cannot write {}: {e}", state_dir.join(PID_FILE).display()))?;
    let mut mask = SigSet::empty();
    for signal in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        mask.add(signal);
    }
    mask.thread_block().map_err(|e| format!("cannot block signals: {e}"))?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("signalfd: {e}"))?;
    Ok((devnull, signals))
}

/// The shim's own log (and the runtime's warnings): `<state-dir>/shim.log`.
fn init_diagnostics(path: &Path) {
    let Ok(file) = std::fs::OpenOptions::new().create(true).append(true).open(path) else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}
