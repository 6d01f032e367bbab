//! `create`: everything the runtime does on the host side to bring a
//! container to the "created" state, and to undo it all when a step fails.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use kiln_cgroups::{Cgroup, CgroupPath, Hierarchy};
use kiln_sys::process::{fork_single_threaded, Forked};
use kiln_types::ContainerId;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::error::RuntimeError;
use crate::init::{self, InitConfig, InitMode};
use crate::rootfs::CgroupView;
use crate::spec::{NamespaceType, Spec};
use crate::state::{self, ContainerState, Store, EXEC_FIFO};
use crate::sync::{Channel, Msg};
use crate::{hooks, process, rootfs_plan};

/// Where the container's terminal goes when process.terminal is set.
#[derive(Debug)]
pub enum Console {
    /// A unix socket path that receives the pty master (runc's --console-socket).
    Socket(PathBuf),
    /// An already connected socket.
    Connected(OwnedFd),
}

#[derive(Debug, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console: Option<Console>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
}

/// Undoes a half-made container (or exec'd process) when dropped, unless disarmed.
pub(crate) struct Cleanup<'a> {
    /// The state directory to remove; `None` for exec.
    pub store: Option<&'a Store>,
    pub id: ContainerId,
    /// The cgroup to empty and remove; `None` for exec.
    pub cgroup: Option<Cgroup>,
    pub children: Vec<Pid>,
    pub armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for pid in &self.children {
            let _ = nix::sys::signal::kill(*pid, Signal::SIGKILL);
        }
        if let Some(cg) = &self.cgroup {
            kill_cgroup(cg);
            let _ = cg.destroy();
        }
        if let Some(store) = self.store {
            let _ = store.remove(&self.id);
        }
    }
}

/// Kills every process in a cgroup and waits (briefly) for them to go.
pub(crate) fn kill_cgroup(cg: &Cgroup) {
    for _ in 0..200 {
        let pids = cg.pids().unwrap_or_default();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = cg.thaw();
        reap_children();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Reaps any of our exited children without blocking.
pub(crate) fn reap_children() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

pub fn create(
    store: &Store,
    id: &str,
    opts: CreateOptions,
) -> Result<ContainerState, RuntimeError> {
    let id: ContainerId = id.parse()?;
    let bundle = std::fs::canonicalize(&opts.bundle).map_err(|source| {
        RuntimeError::ReadConfig { path: opts.bundle.join("config.json"), source }
    })?;
    let spec = Spec::load(&bundle)?;
    let config_path = bundle.join("config.json");
    let invalid =
        |reason: String| RuntimeError::InvalidConfig { path: config_path.clone(), reason };
    let process = spec.process.clone().ok_or_else(|| invalid("process is missing".into()))?;
    process::check_rlimits(&process.rlimits).map_err(invalid)?;
    let caps =
        process::parse_caps(&process.capabilities.clone().unwrap_or_default()).map_err(invalid)?;
    let root = spec.root.as_ref().ok_or_else(|| invalid("root is missing".into()))?;
    let rootfs = bundle.join(&root.path);
    let rootfs = match std::fs::canonicalize(&rootfs) {
        Ok(p) if p.is_dir() => p,
        _ => return Err(RuntimeError::RootfsMissing { path: rootfs }),
    };
    if spec.namespace(NamespaceType::Mount).is_none_or(|ns| ns.path.is_some()) {
        return Err(invalid("a new mount namespace is required".into()));
    }
    let steps = rootfs_plan::plan_mounts(&spec, &bundle).map_err(invalid)?;
    let devices = rootfs_plan::plan_devices(&spec, &steps).map_err(invalid)?;
    let seccomp = compile_seccomp(&spec, &id)?;
    warn_unapplied_labels(&id, &process);
    if process.terminal && opts.console.is_none() {
        return Err(RuntimeError::ConsoleSocketMissing);
    }
    // Open every namespace to join before claiming the id: a bad path fails early.
    let join = open_namespaces(&spec).map_err(invalid)?;
    let (unshare, new_userns) = new_namespaces(&spec);

    let dir = store.reserve(&id)?;
    let mut cleanup = Cleanup {
        store: Some(store),
        id: id.clone(),
        cgroup: None,
        children: Vec::new(),
        armed: true,
    };

    let console = match opts.console {
        Some(Console::Socket(path)) if process.terminal => Some(
            crate::console::connect(&path)
                .map_err(|source| RuntimeError::ConsoleSocket { path, source })?,
        ),
        Some(Console::Connected(fd)) if process.terminal => Some(fd),
        _ => None,
    };
    let fifo_path = dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622)).map_err(|e| {
        RuntimeError::StateFile { action: "create", path: fifo_path.clone(), source: e.into() }
    })?;
    // Like runc: the container's root opens the fifo to wait for `start`, and
    // in a user namespace that is a host id other than ours.
    let host_id = |maps: &[crate::spec::IdMapping]| {
        maps.iter().find(|m| m.container_id == 0).map(|m| m.host_id)
    };
    let (fifo_uid, fifo_gid) =
        (host_id(&spec.linux().uid_mappings), host_id(&spec.linux().gid_mappings));
    if fifo_uid.is_some() || fifo_gid.is_some() {
        nix::unistd::chown(
            &fifo_path,
            fifo_uid.map(nix::unistd::Uid::from_raw),
            fifo_gid.map(nix::unistd::Gid::from_raw),
        )
        .map_err(|e| RuntimeError::StateFile {
            action: "chown",
            path: fifo_path.clone(),
            source: e.into(),
        })?;
    }
    let fifo = nix::fcntl::open(&fifo_path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| RuntimeError::StateFile {
            action: "open",
            path: fifo_path.clone(),
            source: e.into(),
        })?;

    let cgroup_err = |source| RuntimeError::Cgroup { id: id.clone(), source };
    let hierarchy = Hierarchy::detect().map_err(cgroup_err)?;
    let cg_path =
        CgroupPath::parse(spec.linux().cgroups_path.as_deref(), id.as_str()).map_err(cgroup_err)?;
    let cgroup = Cgroup::new(&hierarchy, &cg_path).map_err(cgroup_err)?;
    cgroup.create().map_err(cgroup_err)?;
    cleanup.cgroup = Some(cgroup.clone());
    if let Some(resources) = &spec.linux().resources {
        let mut resources = resources.clone();
        resources.devices = rootfs_plan::device_rules(&spec);
        for warning in cgroup.apply(&resources).map_err(cgroup_err)? {
            tracing::warn!(container = %id, "{warning}");
        }
    }
    let view = cgroup_view(&hierarchy, &cgroup, unshare.contains(CloneFlags::CLONE_NEWCGROUP));

    let cfg = InitConfig {
        spec: spec.clone(),
        process,
        mode: InitMode::Create {
            rootfs: rootfs.clone(),
            steps,
            devices,
            cgroup: view,
            no_pivot: opts.no_pivot,
            fifo,
        },
        join,
        unshare,
        new_userns,
        caps,
        cgroup: cgroup.clone(),
        seccomp,
        console,
        preserve_fds: opts.preserve_fds,
    };
    let mut state = ContainerState {
        id: id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs,
        created: state::now_rfc3339(),
        paused: false,
        cgroup: cgroup.clone(),
        config: spec,
    };
    let (pid, chan) = spawn_init(cfg, &mut cleanup, |chan, msg, pid| match msg {
        Msg::NeedHooks => {
            let hooks = state.config.hooks();
            let json = oci_state_json(store, &state, pid, "creating");
            hooks::run_hooks(&hooks.prestart, &json)
                .and_then(|()| hooks::run_hooks(&hooks.create_runtime, &json))
                .map_err(|(hook, reason)| RuntimeError::Hook {
                    what: "prestart/createRuntime",
                    path: hook.path,
                    reason,
                })?;
            chan.send(&Msg::HooksDone(json))
                .map_err(RuntimeError::system("sync with container init"))
        }
        other => Err(unexpected(other)),
    })?;
    let (_, start) = state::proc_stat(pid).ok_or_else(|| RuntimeError::Init {
        message: "container init exited during create".into(),
        exit_code: 1,
    })?;
    state.pid = pid;
    state.pid_start = start;
    store.save(&state)?;
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, pid)?;
    }
    let json = oci_state_json(store, &state, pid, "created");
    chan.send(&Msg::Created(json)).map_err(RuntimeError::system("sync with container init"))?;
    cleanup.armed = false;
    Ok(state)
}

fn cgroup_view(hierarchy: &Hierarchy, cgroup: &Cgroup, new_namespace: bool) -> CgroupView {
    let hierarchies = hierarchy
        .mounts()
        .into_iter()
        .filter_map(|(options, mountpoint)| {
            let first = options.split(',').next().unwrap_or_default().to_owned();
            let dir = cgroup.dir(&first)?.to_path_buf();
            Some((options, mountpoint, dir))
        })
        .collect();
    let v2_dir = hierarchy.is_v2().then(|| cgroup.dir("").map(Path::to_path_buf)).flatten();
    CgroupView { v2_dir, hierarchies, new_namespace }
}

fn unexpected(msg: Msg) -> RuntimeError {
    RuntimeError::Init {
        message: format!("unexpected message from container init: {msg:?}"),
        exit_code: 1,
    }
}

fn oci_state_json(store: &Store, state: &ContainerState, pid: i32, status: &str) -> String {
    let mut oci = store.oci_state(state);
    oci.pid = pid;
    oci.status = status.to_owned();
    serde_json::to_string(&oci).unwrap_or_default()
}

/// Forks stage 1 and drives the set-up protocol until the init is ready;
/// returns the host pid of the container's process.
pub(crate) fn spawn_init(
    cfg: InitConfig,
    cleanup: &mut Cleanup<'_>,
    mut on_message: impl FnMut(&Channel, Msg, i32) -> Result<(), RuntimeError>,
) -> Result<(i32, Channel), RuntimeError> {
    let uid_maps = cfg.spec.linux().uid_mappings.clone();
    let gid_maps = cfg.spec.linux().gid_mappings.clone();
    let (parent, child) = Channel::pair().map_err(RuntimeError::system("socketpair"))?;
    let stage1 = match fork_single_threaded().map_err(RuntimeError::system("fork"))? {
        Forked::Child => {
            drop(parent);
            init::stage1(cfg, child)
        }
        Forked::Parent { child: pid } => pid,
    };
    drop(child);
    drop(cfg);
    cleanup.children.push(stage1);
    let mut init_pid = None;
    // Stage 2 may speak before stage 1 has reported stage 2's pid (both
    // share the socket): hold its requests until the pid is known.
    let mut deferred: Vec<Msg> = Vec::new();
    loop {
        // Lazily: `and` would pop (and lose) a held message before the pid
        // is known. Held messages go out in the order they came.
        let held = if init_pid.is_some() && !deferred.is_empty() {
            Some(deferred.remove(0))
        } else {
            None
        };
        let msg = match held {
            Some(msg) => Some(msg),
            None => parent.recv().map_err(RuntimeError::system("sync with container init"))?,
        };
        match msg {
            None => {
                let how = |pid: Pid| match nix::sys::wait::waitpid(
                    pid,
                    Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                ) {
                    Ok(status) => format!("{status:?}"),
                    Err(e) => e.to_string(),
                };
                let detail = format!(
                    "stage1 {}; init {}",
                    how(stage1),
                    init_pid.map_or("unknown".to_owned(), |p| how(Pid::from_raw(p)))
                );
                return Err(RuntimeError::Init {
                    message: format!("container init exited unexpectedly ({detail})"),
                    exit_code: 1,
                });
            }
            Some(Msg::NeedIdMaps) => {
                write_id_maps(stage1, &uid_maps, &gid_maps)?;
                parent
                    .send(&Msg::IdMapsDone)
                    .map_err(RuntimeError::system("sync with container init"))?;
            }
            Some(Msg::InitPid(pid)) => {
                cleanup.children.push(Pid::from_raw(pid));
                let _ = nix::sys::wait::waitpid(stage1, None);
                init_pid = Some(pid);
            }
            Some(Msg::Ready) if init_pid.is_some() => break,
            Some(Msg::Failed { message, exit_code }) => {
                return Err(RuntimeError::Init { message, exit_code })
            }
            Some(other) => match init_pid {
                Some(pid) => on_message(&parent, other, pid)?,
                None => deferred.push(other),
            },
        }
    }
    let pid = init_pid.ok_or_else(|| RuntimeError::Init {
        message: "container init never reported its pid".into(),
        exit_code: 1,
    })?;
    Ok((pid, parent))
}

fn write_id_maps(
    pid: Pid,
    uid_maps: &[crate::spec::IdMapping],
    gid_maps: &[crate::spec::IdMapping],
) -> Result<(), RuntimeError> {
    let text = |maps: &[crate::spec::IdMapping]| -> String {
        maps.iter().map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size)).collect()
    };
    for (file, maps) in [("uid_map", uid_maps), ("gid_map", gid_maps)] {
        if maps.is_empty() {
            continue;
        }
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, text(maps)).map_err(|source| RuntimeError::StateFile {
            action: "write",
            path,
            source,
        })?;
    }
    Ok(())
}

/// AppArmor profiles and SELinux labels are not applied by Kiln yet; say so
/// rather than pretend.
pub(crate) fn warn_unapplied_labels(id: &ContainerId, process: &crate::spec::Process) {
    if let Some(profile) = process.apparmor_profile.as_deref().filter(|p| !p.is_empty()) {
        tracing::warn!(container = %id, profile, "apparmor profile not applied: kiln does not support AppArmor yet");
    }
    if let Some(label) = process.selinux_label.as_deref().filter(|l| !l.is_empty()) {
        tracing::warn!(container = %id, label, "selinux label not applied: kiln does not support SELinux yet");
    }
}

fn compile_seccomp(
    spec: &Spec,
    id: &ContainerId,
) -> Result<Option<kiln_seccomp::Filter>, RuntimeError> {
    let Some(profile) = &spec.linux().seccomp else { return Ok(None) };
    let filter = kiln_seccomp::compile(profile)
        .map_err(|source| RuntimeError::Seccomp { id: id.clone(), source })?;
    if !filter.unknown_syscalls().is_empty() {
        tracing::warn!(container = %id, syscalls = ?filter.unknown_syscalls(), "seccomp profile names syscalls this kernel does not have; skipped");
    }
    Ok(Some(filter))
}

/// Opens the namespace files to join, user namespace first.
pub(crate) fn open_namespaces(spec: &Spec) -> Result<Vec<(NamespaceType, OwnedFd)>, String> {
    let mut out = Vec::new();
    let mut namespaces: Vec<_> =
        spec.linux().namespaces.iter().filter(|n| n.path.is_some()).collect();
    namespaces.sort_by_key(|n| n.kind != NamespaceType::User);
    for ns in namespaces {
        let Some(path) = &ns.path else { continue };
        let fd =
            nix::fcntl::open(path.as_path(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .map_err(|e| {
                    format!("cannot open {} namespace {}: {e}", ns.kind.spec_name(), path.display())
                })?;
        out.push((ns.kind, fd));
    }
    Ok(out)
}

/// The namespaces to create: every listed one without a path.
fn new_namespaces(spec: &Spec) -> (CloneFlags, bool) {
    let mut flags = CloneFlags::empty();
    let mut user = false;
    for ns in spec.linux().namespaces.iter().filter(|n| n.path.is_none()) {
        if ns.kind == NamespaceType::User {
            user = true;
        } else {
            flags |= ns.kind.clone_flag();
        }
    }
    (flags, user)
}

pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), RuntimeError> {
    state::write_atomically(path, pid.to_string().as_bytes()).map_err(|source| {
        RuntimeError::StateFile { action: "write pid file", path: path.to_path_buf(), source }
    })
}
