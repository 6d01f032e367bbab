//! `run` (create, start, wait, delete in one) and `exec` (a new process in a
//! running container).

use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use crate::create::{self, spawn_init, Cleanup, Console, CreateOptions};
use crate::error::RuntimeError;
use crate::foreground;
use crate::init::{InitConfig, InitMode};
use crate::ops;
use crate::spec::{NamespaceType, Process};
use crate::state::{Status, Store};

#[derive(Debug, Default)]
pub struct RunOptions {
    pub create: CreateOptions,
    /// Return once the process runs instead of waiting for it.
    pub detach: bool,
    /// Keep the stopped container instead of deleting it after it exits.
    pub keep: bool,
}

/// Runs a container to completion; returns its exit code (128+N when killed
/// by signal N), or 0 at once with `detach`.
pub fn run(store: &Store, id: &str, mut opts: RunOptions) -> Result<i32, RuntimeError> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| RuntimeError::System { what: "prctl", source: e.into() })?;
    let signals = if opts.detach { None } else { Some(foreground::block_signals()?) };
    let mut own_console = None;
    if opts.create.console.is_none() && !opts.detach {
        let (ours, theirs) = UnixStream::pair().map_err(RuntimeError::system("socketpair"))?;
        opts.create.console = Some(Console::Connected(theirs.into()));
        own_console = Some(ours);
    }
    let state = create::create(store, id, opts.create)?;
    let terminal = state.config.process.as_ref().is_some_and(|p| p.terminal);
    let started = (|| {
        let master = match own_console.filter(|_| terminal) {
            Some(socket) => Some(
                crate::console::receive_master(&socket)
                    .map_err(RuntimeError::system("receive the terminal"))?,
            ),
            None => None,
        };
        ops::start(store, id)?;
        Ok(master)
    })();
    let master = match started {
        Ok(m) => m,
        Err(e) => {
            let _ = ops::destroy(store, &state);
            return Err(e);
        }
    };
    let Some(signals) = signals else { return Ok(0) };
    let code = foreground::wait(state.pid, signals, master)?;
    if !opts.keep {
        ops::destroy(store, &state)?;
    }
    Ok(code)
}

#[derive(Debug, Default)]
pub struct ExecOptions {
    pub process: Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console: Option<Console>,
    pub preserve_fds: i32,
}

/// Starts `process` inside a running container; returns its exit code, or
/// 0 at once with `detach`.
pub fn exec(store: &Store, id: &str, mut opts: ExecOptions) -> Result<i32, RuntimeError> {
    let state = store.load(id)?;
    let status = store.status(&state);
    if !matches!(status, Status::Running | Status::Created) {
        return Err(RuntimeError::WrongStatus {
            id: state.id.clone(),
            action: "exec in",
            status: status.as_str(),
        });
    }
    let process = opts.process.clone();
    if process.args.is_empty() {
        return Err(RuntimeError::InvalidProcess { reason: "args must not be empty".into() });
    }
    crate::create::warn_unapplied_labels(&state.id, &process);
    let invalid = |reason: String| RuntimeError::InvalidProcess { reason };
    crate::process::check_rlimits(&process.rlimits).map_err(invalid)?;
    let caps = crate::process::parse_caps(&process.capabilities.clone().unwrap_or_default())
        .map_err(invalid)?;
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| RuntimeError::System { what: "prctl", source: e.into() })?;
    let join = join_container(&state.config, state.pid)?;
    let seccomp = match &state.config.linux().seccomp {
        Some(profile) => Some(
            kiln_seccomp::compile(profile)
                .map_err(|source| RuntimeError::Seccomp { id: state.id.clone(), source })?,
        ),
        None => None,
    };
    let signals = if opts.detach { None } else { Some(foreground::block_signals()?) };
    let mut own_console = None;
    let console = match opts.console.take() {
        _ if !process.terminal => None,
        Some(Console::Socket(path)) => Some(
            crate::console::connect(&path)
                .map_err(|source| RuntimeError::ConsoleSocket { path, source })?,
        ),
        Some(Console::Connected(fd)) => Some(fd),
        None if opts.detach => return Err(RuntimeError::ConsoleSocketMissing),
        None => {
            let (ours, theirs) = UnixStream::pair().map_err(RuntimeError::system("socketpair"))?;
            own_console = Some(ours);
            Some(theirs.into())
        }
    };
    let cfg = InitConfig {
        spec: state.config.clone(),
        process,
        mode: InitMode::Exec,
        join,
        unshare: nix::sched::CloneFlags::empty(),
        new_userns: false,
        caps,
        cgroup: state.cgroup.clone(),
        seccomp,
        console,
        preserve_fds: opts.preserve_fds,
    };
    let mut cleanup = Cleanup {
        store: None,
        id: state.id.clone(),
        cgroup: None,
        children: Vec::new(),
        armed: true,
    };
    let (pid, chan) = spawn_init(cfg, &mut cleanup, |_, msg, _| {
        Err(RuntimeError::Init {
            message: format!("unexpected message from exec: {msg:?}"),
            exit_code: 1,
        })
    })?;
    drop(chan);
    cleanup.armed = false;
    if let Some(pid_file) = &opts.pid_file {
        create::write_pid_file(pid_file, pid)?;
    }
    let master = match own_console {
        Some(socket) => Some(
            crate::console::receive_master(&socket)
                .map_err(RuntimeError::system("receive the terminal"))?,
        ),
        None => None,
    };
    match signals {
        Some(signals) => foreground::wait(pid, signals, master),
        None => Ok(0),
    }
}

/// Opens the container's namespaces that differ from ours, user first.
fn join_container(
    spec: &crate::spec::Spec,
    pid: i32,
) -> Result<Vec<(NamespaceType, std::os::fd::OwnedFd)>, RuntimeError> {
    let mut kinds: Vec<NamespaceType> = spec.linux().namespaces.iter().map(|n| n.kind).collect();
    kinds.sort_by_key(|k| *k != NamespaceType::User);
    let mut out = Vec::new();
    for kind in kinds {
        let theirs = PathBuf::from(format!("/proc/{pid}/ns/{}", kind.proc_name()));
        let ours = PathBuf::from(format!("/proc/self/ns/{}", kind.proc_name()));
        if std::fs::read_link(&theirs).ok() == std::fs::read_link(&ours).ok() {
            continue;
        }
        let fd = nix::fcntl::open(
            &theirs,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| RuntimeError::System {
            what: "open the container's namespace",
            source: e.into(),
        })?;
        out.push((kind, fd));
    }
    Ok(out)
}
