//! The lifecycle operations after `create`: start, state, kill, delete,
//! pause, resume, list and ps.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kiln_types::ContainerId;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::create::kill_cgroup;
use crate::error::RuntimeError;
use crate::hooks;
use crate::signal::parse_signal;
use crate::state::{ContainerState, OciState, Status, Store, EXEC_FIFO};

fn wrong_status(id: &ContainerId, action: &'static str, status: Status) -> RuntimeError {
    RuntimeError::WrongStatus { id: id.clone(), action, status: status.as_str() }
}

pub fn state(store: &Store, id: &str) -> Result<OciState, RuntimeError> {
    let state = store.load(id)?;
    Ok(store.oci_state(&state))
}

/// Lets a created container's process exec its program.
pub fn start(store: &Store, id: &str) -> Result<(), RuntimeError> {
    let state = store.load(id)?;
    let status = store.status(&state);
    if status != Status::Created {
        return Err(wrong_status(&state.id, "start", status));
    }
    let fifo_path = store.dir(&state.id).join(EXEC_FIFO);
    let fifo = nix::fcntl::open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RuntimeError::StateFile {
        action: "open",
        path: fifo_path.clone(),
        source: e.into(),
    })?;
    // From here on the container is running, not created: its process may
    // print before we read its byte. The init already holds the fifo open.
    let _ = std::fs::remove_file(&fifo_path);
    // The init opens the fifo for writing as soon as we opened it for
    // reading, and writes one byte; wait for it while the init lives.
    let mut buf = [0u8; 1];
    loop {
        match nix::unistd::read(&fifo, &mut buf) {
            Ok(1) => break,
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => {
                if !crate::state::process_alive(state.pid, state.pid_start) {
                    // A quick process may have said go, run and exited
                    // between our read and this check: its byte is still here.
                    if nix::unistd::read(&fifo, &mut buf) == Ok(1) {
                        break;
                    }
                    return Err(RuntimeError::Init {
                        message: "container process exited before start".into(),
                        exit_code: 1,
                    });
                }
                let pfd = nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&fifo),
                    nix::poll::PollFlags::POLLIN,
                );
                let _ = nix::poll::poll(&mut [pfd], nix::poll::PollTimeout::from(50u16));
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(RuntimeError::StateFile {
                    action: "read",
                    path: fifo_path,
                    source: e.into(),
                })
            }
        }
    }
    let poststart = state.config.hooks().poststart;
    if !poststart.is_empty() {
        let json = serde_json::to_string(&store.oci_state(&state)).unwrap_or_default();
        if let Err((hook, why)) = hooks::run_hooks(&poststart, &json) {
            tracing::warn!(container = %state.id, hook = %hook.path.display(), "poststart hook failed: {why}");
        }
    }
    Ok(())
}

pub fn kill(store: &Store, id: &str, signal: &str, all: bool) -> Result<(), RuntimeError> {
    let state = store.load(id)?;
    let signo = parse_signal(signal)?;
    let status = store.status(&state);
    if status == Status::Stopped && !all {
        return Err(wrong_status(&state.id, "kill", status));
    }
    let send = |pid: i32| -> Result<(), RuntimeError> {
        match kiln_sys::process::send_signal(pid, signo) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(e) => Err(RuntimeError::Signal {
                id: state.id.clone(),
                signal: signal.to_owned(),
                source: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            }),
        }
    };
    if all {
        let cgroup = &state.cgroup;
        let pids = cgroup
            .pids()
            .map_err(|source| RuntimeError::Cgroup { id: state.id.clone(), source })?;
        for pid in pids {
            send(pid)?;
        }
        if status == Status::Paused && signo == libc::SIGKILL {
            let _ = cgroup.thaw();
        }
        Ok(())
    } else {
        send(state.pid)
    }
}

/// Removes a container. A running one needs `force`, which kills it first.
pub fn delete(store: &Store, id: &str, force: bool) -> Result<(), RuntimeError> {
    let state = match store.load(id) {
        Err(RuntimeError::NotFound { .. }) if force => return Ok(()),
        other => other?,
    };
    let status = store.status(&state);
    match status {
        Status::Running | Status::Paused if !force => {
            return Err(wrong_status(&state.id, "delete", status))
        }
        _ => {}
    }
    destroy(store, &state)
}

/// Kills whatever is left of the container, removes its cgroup and state,
/// and runs its poststop hooks.
pub(crate) fn destroy(store: &Store, state: &ContainerState) -> Result<(), RuntimeError> {
    let status = store.status(state);
    if status != Status::Stopped {
        let _ = kiln_sys::process::send_signal(state.pid, libc::SIGKILL);
    }
    let cgroup = &state.cgroup;
    kill_cgroup(cgroup);
    wait_gone(state, Duration::from_secs(5));
    cgroup.destroy().map_err(|source| RuntimeError::Cgroup { id: state.id.clone(), source })?;
    let poststop = state.config.hooks().poststop;
    if !poststop.is_empty() {
        let mut oci = store.oci_state(state);
        oci.status = Status::Stopped.as_str().to_owned();
        let json = serde_json::to_string(&oci).unwrap_or_default();
        if let Err((hook, why)) = hooks::run_hooks(&poststop, &json) {
            tracing::warn!(container = %state.id, hook = %hook.path.display(), "poststop hook failed: {why}");
        }
    }
    store.remove(&state.id)
}

fn wait_gone(state: &ContainerState, limit: Duration) {
    let deadline = Instant::now() + limit;
    while crate::state::process_alive(state.pid, state.pid_start) && Instant::now() < deadline {
        crate::create::reap_children();
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn pause(store: &Store, id: &str) -> Result<(), RuntimeError> {
    let mut state = store.load(id)?;
    let status = store.status(&state);
    if status != Status::Running {
        return Err(wrong_status(&state.id, "pause", status));
    }
    state
        .cgroup
        .freeze()
        .map_err(|source| RuntimeError::Cgroup { id: state.id.clone(), source })?;
    state.paused = true;
    store.save(&state)
}

pub fn resume(store: &Store, id: &str) -> Result<(), RuntimeError> {
    let mut state = store.load(id)?;
    let status = store.status(&state);
    if status != Status::Paused {
        return Err(wrong_status(&state.id, "resume", status));
    }
    state.cgroup.thaw().map_err(|source| RuntimeError::Cgroup { id: state.id.clone(), source })?;
    state.paused = false;
    store.save(&state)
}

/// The state of every container in the store.
pub fn list(store: &Store) -> Vec<OciState> {
    store
        .ids()
        .iter()
        .filter_map(|id| store.load(id.as_str()).ok())
        .map(|s| store.oci_state(&s))
        .collect()
}

/// The host pids of every process in the container.
pub fn pids(store: &Store, id: &str) -> Result<Vec<i32>, RuntimeError> {
    let state = store.load(id)?;
    let mut pids = state
        .cgroup
        .pids()
        .map_err(|source| RuntimeError::Cgroup { id: state.id.clone(), source })?;
    pids.sort_unstable();
    Ok(pids)
}

/// The bundle directory of a container (for tools that want its config).
pub fn bundle(store: &Store, id: &str) -> Result<PathBuf, RuntimeError> {
    Ok(store.load(id)?.bundle)
}
