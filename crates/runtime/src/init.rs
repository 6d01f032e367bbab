//! The container side of creation and exec: runs in forked children of the
//! runtime, never returns, and talks to the runtime over a [`Channel`].
//!
//! Stage 1 joins namespaces given by path, unshares a user namespace (the
//! runtime writes its id maps), then the other new namespaces, and forks
//! stage 2, which becomes the container's process: it builds the rootfs,
//! reports ready, waits for `start`, drops privileges and execs.

use std::ffi::CString;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use kiln_sys::process::{exit_now, fork_single_threaded, Forked};
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;

use crate::process::{self as proc_setup, CapSets};
use crate::rootfs::{self, CgroupView};
use crate::rootfs_plan::{DeviceNode, MountStep};
use crate::setup_error::{Context, SetupError, SetupResult};
use crate::spec::{NamespaceType, Process, Spec};
use crate::sync::{Channel, Msg};

/// What the container's process needs, computed by the runtime before fork.
#[derive(Debug)]
pub(crate) struct InitConfig {
    pub spec: Spec,
    pub process: Process,
    pub mode: InitMode,
    /// Namespaces to join, opened before any is joined; user first.
    pub join: Vec<(NamespaceType, OwnedFd)>,
    /// New namespaces to create (without the user namespace).
    pub unshare: CloneFlags,
    pub new_userns: bool,
    pub caps: CapSets,
    /// The cgroup stage 1 moves itself into before anything else.
    pub cgroup: kiln_cgroups::Cgroup,
    pub seccomp: Option<kiln_seccomp::Filter>,
    /// A connected console socket, when process.terminal is set.
    pub console: Option<OwnedFd>,
    pub preserve_fds: i32,
}

#[derive(Debug)]
pub(crate) enum InitMode {
    /// A new container: build its rootfs, then wait for `start` on the fifo.
    Create {
        rootfs: PathBuf,
        steps: Vec<MountStep>,
        devices: Vec<DeviceNode>,
        cgroup: CgroupView,
        no_pivot: bool,
        fifo: OwnedFd,
    },
    /// A process joining a running container. Joining its mount namespace
    /// puts us at the namespace's topmost root, which is the rootfs after
    /// pivot_root and after --no-pivot's move alike.
    Exec,
}

/// Stage 1. Never returns.
pub(crate) fn stage1(cfg: InitConfig, chan: Channel) -> ! {
    let code = match stage1_inner(cfg, &chan) {
        Ok(()) => 0,
        Err(e) => {
            let _ = chan.send(&Msg::Failed { message: e.message, exit_code: e.exit_code });
            1
        }
    };
    exit_now(code)
}

fn stage1_inner(cfg: InitConfig, chan: &Channel) -> SetupResult<()> {
    cfg.cgroup.enter().context(|| "cannot enter the container's cgroup".to_owned())?;
    for (kind, fd) in &cfg.join {
        nix::sched::setns(fd, kind.clone_flag())
            .context(|| format!("cannot join {} namespace", kind.spec_name()))?;
    }
    if cfg.new_userns {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
            .context(|| "cannot create user namespace".to_owned())?;
        chan.send(&Msg::NeedIdMaps).context(|| "sync".to_owned())?;
        chan.expect(&Msg::IdMapsDone).context(|| "waiting for id maps".to_owned())?;
        let root = nix::unistd::Uid::from_raw(0);
        let gid = nix::unistd::Gid::from_raw(0);
        nix::unistd::setresgid(gid, gid, gid)
            .context(|| "cannot become gid 0 in the user namespace".to_owned())?;
        nix::unistd::setresuid(root, root, root)
            .context(|| "cannot become root in the user namespace".to_owned())?;
    }
    let time = NamespaceType::Time.clone_flag();
    if cfg.unshare.contains(time) {
        nix::sched::unshare(time).context(|| "cannot create time namespace".to_owned())?;
        let offsets = &cfg.spec.linux().time_offsets;
        if !offsets.is_empty() {
            let text: String = offsets
                .iter()
                .map(|(clock, o)| format!("{clock} {} {}\n", o.secs, o.nanosecs))
                .collect();
            std::fs::write("/proc/self/timens_offsets", text)
                .context(|| "cannot set time namespace offsets".to_owned())?;
        }
    }
    let rest = cfg.unshare & !time;
    if !rest.is_empty() {
        nix::sched::unshare(rest).context(|| "cannot create namespaces".to_owned())?;
    }
    match fork_single_threaded().context(|| "cannot fork the container process".to_owned())? {
        Forked::Child => stage2(cfg, chan),
        Forked::Parent { child } => {
            chan.send(&Msg::InitPid(child.as_raw())).context(|| "sync".to_owned())?;
            Ok(())
        }
    }
}

/// Stage 2: the container's process. Never returns.
fn stage2(cfg: InitConfig, chan: &Channel) -> ! {
    let mut reported = false;
    // `cfg` is borrowed, never dropped: its descriptors may already be
    // closed by `close_fds_from` when a late step fails, and dropping an
    // OwnedFd twice aborts instead of reporting the error.
    let err = match stage2_inner(&cfg, chan, &mut reported) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if reported {
        // The runtime has gone; the process's own stderr is all that is left.
        let _ = writeln!(std::io::stderr(), "kiln: {}", err.message);
    } else {
        let _ = chan.send(&Msg::Failed { message: err.message, exit_code: err.exit_code });
    }
    exit_now(err.exit_code)
}

enum Never {}

fn stage2_inner(cfg: &InitConfig, chan: &Channel, reported: &mut bool) -> SetupResult<Never> {
    nix::unistd::setsid().context(|| "setsid".to_owned())?;
    // Not dumpable while we are the runtime's binary inside the container:
    // its processes cannot open /proc/<us>/exe or /proc/<us>/fd.
    nix::sys::prctl::set_dumpable(false)
        .context(|| "cannot make the process non-dumpable".to_owned())?;
    nix::sys::stat::umask(Mode::empty());
    let process = &cfg.process;
    let mut console_peer = None;
    let mut fifo = None;
    match cfg.mode {
        InitMode::Create {
            ref rootfs,
            ref steps,
            ref devices,
            ref cgroup,
            no_pivot,
            fifo: ref f,
        } => {
            let root = rootfs::prepare_root(rootfs)?;
            rootfs::mount_all(root.as_fd(), rootfs, steps, cgroup)?;
            rootfs::create_devices(root.as_fd(), devices, cfg.new_userns)?;
            let has_devpts = steps.iter().any(|s| s.destination == Path::new("/dev/pts"));
            rootfs::link_dev(root.as_fd(), has_devpts)?;
            if let Some(socket) = &cfg.console {
                console_peer = Some(open_console(Some(root.as_fd()), socket, process)?);
            }
            let hooks = cfg.spec.hooks.clone().unwrap_or_default();
            if !(hooks.prestart.is_empty()
                && hooks.create_runtime.is_empty()
                && hooks.create_container.is_empty())
            {
                chan.send(&Msg::NeedHooks).context(|| "sync".to_owned())?;
                let state = match chan.recv().context(|| "sync".to_owned())? {
                    Some(Msg::HooksDone(state)) => state,
                    _ => return Err(SetupError::new("the runtime went away during hooks")),
                };
                crate::hooks::run_hooks(&hooks.create_container, &state).map_err(
                    |(hook, why)| {
                        SetupError::new(format!(
                            "createContainer hook {} failed: {why}",
                            hook.path.display()
                        ))
                    },
                )?;
            }
            fifo = Some(f.try_clone().context(|| "cannot keep the exec fifo".to_owned())?);
            rootfs::enter_root(root, no_pivot)?;
            let linux = cfg.spec.linux();
            for (key, value) in &linux.sysctl {
                rootfs::write_sysctl(key, value)?;
            }
            rootfs::mask_paths(&linux.masked_paths)?;
            rootfs::readonly_paths(&linux.readonly_paths)?;
            if cfg.spec.root.as_ref().is_some_and(|r| r.readonly) {
                rootfs::make_root_readonly()?;
            }
            if let Some(propagation) = &linux.rootfs_propagation {
                rootfs::set_root_propagation(propagation)?;
            }
            if let Some(name) = &cfg.spec.hostname {
                nix::unistd::sethostname(name).context(|| format!("cannot set hostname {name}"))?;
            }
            // A network namespace made for the container has its loopback
            // down: set it up, so that 127.0.0.1 works as with Docker's
            // `--network none`.
            let own_netns = linux
                .namespaces
                .iter()
                .any(|ns| ns.kind == NamespaceType::Network && ns.path.is_none());
            if own_netns {
                kiln_sys::netlink::Netlink::open()
                    .and_then(|nl| nl.set_up("lo"))
                    .context(|| "cannot set the loopback interface up".to_owned())?;
            }
            if let Some(name) = &cfg.spec.domainname {
                kiln_sys::process::set_domainname(name)
                    .context(|| format!("cannot set domainname {name}"))?;
            }
        }
        InitMode::Exec => {
            if let Some(socket) = &cfg.console {
                console_peer = Some(open_console(None, socket, process)?);
            }
        }
    }
    proc_setup::apply_rlimits(&process.rlimits)?;
    if let Some(adj) = process.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .context(|| format!("cannot set oom_score_adj to {adj}"))?;
    }
    let env = proc_setup::environment(process);
    let exe = proc_setup::find_executable(&process.args[0], &env)?;
    let cwd =
        if process.cwd.as_os_str().is_empty() { PathBuf::from("/") } else { process.cwd.clone() };
    check_cwd(&cwd)?;

    chan.send(&Msg::Ready).context(|| "sync".to_owned())?;
    if let Some(fifo) = fifo {
        let state = match chan.recv().context(|| "sync".to_owned())? {
            Some(Msg::Created(state)) => state,
            _ => {
                return Err(SetupError::new(
                    "the runtime went away before the container was created",
                ))
            }
        };
        *reported = true;
        // startContainer runs between `start` opening the fifo and our reply,
        // so that `start` fails when it fails, and poststart runs after it.
        wait_for_start(fifo, || {
            let hooks = cfg.spec.hooks.clone().unwrap_or_default();
            let state = state.replacen("\"status\":\"created\"", "\"status\":\"running\"", 1);
            crate::hooks::run_hooks(&hooks.start_container, &state).map_err(|(hook, why)| {
                SetupError::new(format!(
                    "startContainer hook {} failed: {why}",
                    hook.path.display()
                ))
            })
        })?;
    }
    *reported = true;

    if let Some(peer) = console_peer {
        kiln_sys::process::dup_onto_stdio(peer.as_fd())
            .context(|| "cannot attach the console".to_owned())?;
        kiln_sys::tty::set_controlling(peer.as_fd())
            .context(|| "cannot set the controlling terminal".to_owned())?;
    }
    let wants_init = matches!(cfg.mode, InitMode::Create { .. })
        && cfg.spec.annotations.get(crate::reaper::INIT_ANNOTATION).is_some_and(|v| v == "true");
    if wants_init {
        // Before seccomp and the user switch may forbid it: what `ps` in the container
        // shows for PID 1, instead of the runtime's own host command line.
        crate::reaper::name_init(&process.args);
    }
    nix::sys::stat::umask(Mode::from_bits_truncate(process.user.umask.unwrap_or(0o022)));
    let nnp = process.no_new_privileges;
    if !nnp {
        install_seccomp(cfg.seccomp.as_ref())?;
    }
    let set_groups = !cfg.new_userns || !cfg.spec.linux().gid_mappings.is_empty();
    proc_setup::switch_user(process, &cfg.caps, set_groups)?;
    if nnp {
        nix::sys::prctl::set_no_new_privs().context(|| "cannot set no_new_privs".to_owned())?;
        install_seccomp(cfg.seccomp.as_ref())?;
    }
    // Nothing of the runtime may reach the process: close every descriptor
    // but stdio and the preserved ones before the cwd is even looked at.
    kiln_sys::process::close_fds_from(3 + cfg.preserve_fds)
        .context(|| "cannot close file descriptors".to_owned())?;
    nix::unistd::chdir(&cwd).context(|| format!("cannot change to directory {}", cwd.display()))?;
    check_cwd_inside()?;
    if wants_init {
        kiln_sys::process::reset_signal_dispositions();
        crate::reaper::fork_init(process.terminal)?;
    }
    reset_signals();
    let argv = cstrings(&process.args)?;
    let envp = cstrings(&env)?;
    let path = CString::new(exe.as_os_str().as_encoded_bytes())
        .map_err(|_| SetupError::new("executable path contains a NUL byte"))?;
    let err = match nix::unistd::execve(&path, &argv, &envp) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let code = if err == nix::errno::Errno::ENOENT { 127 } else { 126 };
    Err(SetupError { message: format!("exec {}: {err}", exe.display()), exit_code: code })
}

fn install_seccomp(filter: Option<&kiln_seccomp::Filter>) -> SetupResult<()> {
    match filter {
        Some(f) => f.install().context(|| "cannot install the seccomp filter".to_owned()),
        None => Ok(()),
    }
}

/// Fails early, with the path, when the working directory is missing.
fn check_cwd(cwd: &Path) -> SetupResult<()> {
    match std::fs::metadata(cwd) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(SetupError::new(format!("cwd {} is not a directory", cwd.display()))),
        Err(e) => {
            Err(SetupError::new(format!("cannot change to directory {}: {e}", cwd.display())))
        }
    }
}

/// A working directory outside the root shows as "(unreachable)/..." in
/// getcwd: refuse to run there (the CVE-2024-21626 class).
fn check_cwd_inside() -> SetupResult<()> {
    let cwd = nix::unistd::getcwd().context(|| "getcwd".to_owned())?;
    if cwd.is_absolute() {
        Ok(())
    } else {
        Err(SetupError::new(format!(
            "working directory {} is outside the container",
            cwd.display()
        )))
    }
}

/// Blocks until `start` opens the fifo for reading, runs `before_go`, then
/// tells it we go; when `before_go` fails, `start` reads end of file instead.
fn wait_for_start(fifo: OwnedFd, before_go: impl FnOnce() -> SetupResult<()>) -> SetupResult<()> {
    let path = rootfs::fd_path(fifo.as_fd());
    let writer = nix::fcntl::open(&path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
        .context(|| "cannot open the exec fifo".to_owned())?;
    drop(fifo);
    before_go()?;
    nix::unistd::write(&writer, b"0").context(|| "cannot write the exec fifo".to_owned())?;
    Ok(())
}

fn open_console(
    root: Option<std::os::fd::BorrowedFd<'_>>,
    socket: &OwnedFd,
    process: &Process,
) -> SetupResult<OwnedFd> {
    let master = match root {
        Some(root) => {
            let ptmx = rootfs::open_in_root(root, Path::new("/dev/pts/ptmx"))
                .or_else(|_| rootfs::open_in_root(root, Path::new("/dev/ptmx")))
                .context(|| "cannot find /dev/pts/ptmx in the container".to_owned())?;
            rootfs::reopen(ptmx.as_fd(), OFlag::O_RDWR | OFlag::O_NOCTTY)
        }
        None => nix::fcntl::open(
            "/dev/ptmx",
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ),
    }
    .context(|| "cannot open a pseudo-terminal".to_owned())?;
    kiln_sys::tty::unlock(master.as_fd())
        .context(|| "cannot unlock the pseudo-terminal".to_owned())?;
    let peer = kiln_sys::tty::open_peer(master.as_fd())
        .context(|| "cannot open the terminal peer".to_owned())?;
    if let Some(size) = process.console_size {
        let size = kiln_sys::tty::WindowSize { rows: size.height, cols: size.width };
        kiln_sys::tty::set_window_size(peer.as_fd(), size)
            .context(|| "cannot set the console size".to_owned())?;
    }
    if let Some(root) = root {
        let console = rootfs::ensure_in_root(root, Path::new("/dev/console"), true)?;
        nix::mount::mount(
            Some(&rootfs::fd_path(peer.as_fd())),
            &rootfs::fd_path(console.as_fd()),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .context(|| "cannot bind the console on /dev/console".to_owned())?;
    }
    let n = kiln_sys::tty::pty_number(master.as_fd()).unwrap_or_default();
    crate::console::send_master(socket.as_fd(), master.as_fd(), &format!("/dev/pts/{n}"))
        .context(|| "cannot send the terminal to the console socket".to_owned())?;
    Ok(peer)
}

fn reset_signals() {
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
    kiln_sys::process::reset_signal_dispositions();
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

fn cstrings(items: &[String]) -> SetupResult<Vec<CString>> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .map_err(|_| SetupError::new(format!("{s:?} contains a NUL byte")))
        })
        .collect()
}
