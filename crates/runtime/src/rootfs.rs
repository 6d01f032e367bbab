//! Builds the container's filesystem inside its new mount namespace: the
//! rootfs made a mount, every mount of config.json, device nodes, the
//! console, then pivot_root and the masked and read-only paths.
//!
//! Every path inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT), and
//! mounts target `/proc/self/fd/N` of what was resolved, so a symlink in the
//! image can never send a mount or a new file outside the rootfs.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fchmodat, mkdirat, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};

use crate::mount_options::{self, MountOptions};
use crate::rootfs_plan::{DeviceNode, MountKind, MountStep};
use crate::setup_error::{Context, SetupError, SetupResult};

/// How the container sees cgroups, decided by the runtime before the fork.
#[derive(Debug, Clone)]
pub(crate) struct CgroupView {
    /// cgroup v2: the container's cgroup directory on the host.
    pub v2_dir: Option<PathBuf>,
    /// v1: each hierarchy's mount options ("cpu,cpuacct", "name=systemd"),
    /// host mountpoint, and the container's directory in it.
    pub hierarchies: Vec<(String, PathBuf, PathBuf)>,
    pub new_namespace: bool,
}

pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// Opens `path` inside `root` as if `root` were `/`, without following
/// magic links: the result is always inside the rootfs.
pub(crate) fn open_in_root(root: BorrowedFd<'_>, path: &Path) -> nix::Result<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    loop {
        match openat2(root, rel, how) {
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Resolves `path` inside `root`, creating missing directories (and the last
/// component as an empty file when `file` is set) on the way. A dangling
/// symlink on the way is followed inside `root`, and what it names created
/// there, as runc does.
pub(crate) fn ensure_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    file: bool,
) -> SetupResult<OwnedFd> {
    ensure_in_root_following(root, path, file, 40)
}

fn ensure_in_root_following(
    root: BorrowedFd<'_>,
    path: &Path,
    file: bool,
    links_left: u32,
) -> SetupResult<OwnedFd> {
    match open_in_root(root, path) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(SetupError::new(format!("cannot resolve {}: {e}", path.display()))),
    }
    let parts: Vec<&OsStr> = relative(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::ParentDir => Some(OsStr::new("..")),
            _ => None,
        })
        .collect();
    // The deepest ancestor that exists (usually the parent), resolved in the root.
    let mut depth = parts.len().saturating_sub(1);
    let mut dir = loop {
        let prefix: PathBuf = parts[..depth].iter().collect();
        match open_in_root(root, &prefix) {
            Ok(fd) => break fd,
            Err(Errno::ENOENT) if depth > 0 => depth -= 1,
            Err(e) => {
                return Err(SetupError::new(format!("cannot resolve {}: {e}", prefix.display())))
            }
        }
    };
    // The first missing component may be a dangling symlink: follow it
    // inside the root, as the container would see it.
    if let Ok(target) = nix::fcntl::readlinkat(&dir, parts[depth]) {
        if links_left == 0 {
            return Err(SetupError::new(format!(
                "cannot resolve {}: too many symlinks",
                path.display()
            )));
        }
        let mut rest: PathBuf = parts[..depth].iter().collect();
        rest.push(target);
        rest.extend(&parts[depth + 1..]);
        return ensure_in_root_following(root, &rest, file, links_left - 1);
    }
    // Create the rest downwards, each component in the directory made just
    // before it, never following a symlink.
    for (i, part) in parts.iter().enumerate().skip(depth) {
        let last = i + 1 == parts.len();
        let created = if last && file {
            openat(
                &dir,
                *part,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .map(drop)
        } else {
            mkdirat(&dir, *part, Mode::from_bits_truncate(0o755))
        };
        let prefix: PathBuf = parts[..=i].iter().collect();
        dir = match created {
            Ok(()) => openat(
                &dir,
                *part,
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .context(|| format!("cannot open {}", prefix.display()))?,
            // Made meanwhile, or "..": resolve it as the container would.
            Err(Errno::EEXIST) => open_in_root(root, &prefix)
                .context(|| format!("cannot resolve {} in the rootfs", prefix.display()))?,
            Err(e) => {
                return Err(SetupError::new(format!("cannot create {}: {e}", prefix.display())))
            }
        };
    }
    Ok(dir)
}

/// Opens an O_PATH descriptor again with real access flags.
pub(crate) fn reopen(fd: BorrowedFd<'_>, flags: OFlag) -> nix::Result<OwnedFd> {
    nix::fcntl::open(&fd_path(fd), flags | OFlag::O_CLOEXEC, Mode::empty())
}

fn do_mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: &str,
) -> nix::Result<()> {
    let data = (!data.is_empty()).then_some(data);
    mount(source, target, fstype, flags, data)
}

/// Makes the host's mounts invisible to propagation and the rootfs a mount
/// of its own; returns the rootfs opened O_PATH.
pub(crate) fn prepare_root(rootfs: &Path) -> SetupResult<OwnedFd> {
    do_mount(None, Path::new("/"), None, MsFlags::MS_SLAVE | MsFlags::MS_REC, "")
        .context(|| "cannot make / a slave mount".to_owned())?;
    do_mount(Some(rootfs), rootfs, None, MsFlags::MS_BIND | MsFlags::MS_REC, "")
        .context(|| format!("cannot bind mount rootfs {}", rootfs.display()))?;
    nix::fcntl::open(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .context(|| format!("cannot open rootfs {}", rootfs.display()))
}

/// Applies the planned mounts in order.
pub(crate) fn mount_all(
    root: BorrowedFd<'_>,
    rootfs: &Path,
    steps: &[MountStep],
    cgroup: &CgroupView,
) -> SetupResult<()> {
    for step in steps {
        let dest = &step.destination;
        match &step.kind {
            MountKind::Bind { source } => bind_mount(root, rootfs, source, dest, &step.options)?,
            MountKind::Fs { fstype, source } => {
                let target = ensure_in_root(root, dest, false)?;
                let flags = step.options.flags & !MsFlags::MS_REMOUNT;
                let result = do_mount(
                    Some(Path::new(source)),
                    &fd_path(target.as_fd()),
                    Some(fstype),
                    flags,
                    &step.options.data,
                );
                match result {
                    // sysfs cannot be mounted without our own network namespace
                    // in a user namespace: show the host's, read-only, instead.
                    Err(Errno::EPERM) if fstype == "sysfs" => {
                        let mut opts = step.options.clone();
                        opts.flags |= MsFlags::MS_RDONLY | MsFlags::MS_REC;
                        bind_mount(root, rootfs, Path::new("/sys"), dest, &opts)?;
                    }
                    other => {
                        other.context(|| format!("cannot mount {fstype} on {}", dest.display()))?
                    }
                }
            }
            MountKind::Cgroup => mount_cgroup(root, dest, &step.options, cgroup)?,
        }
        apply_propagation(root, dest, &step.options)?;
    }
    Ok(())
}

fn apply_propagation(root: BorrowedFd<'_>, dest: &Path, opts: &MountOptions) -> SetupResult<()> {
    for flag in &opts.propagation {
        let target =
            open_in_root(root, dest).context(|| format!("cannot resolve {}", dest.display()))?;
        do_mount(None, &fd_path(target.as_fd()), None, *flag, "")
            .context(|| format!("cannot change propagation of {}", dest.display()))?;
    }
    Ok(())
}

fn bind_mount(
    root: BorrowedFd<'_>,
    rootfs: &Path,
    source: &Path,
    dest: &Path,
    opts: &MountOptions,
) -> SetupResult<()> {
    let source_fd = open_bind_source(root, rootfs, source)?;
    let is_dir = nix::sys::stat::fstat(&source_fd)
        .map(|st| SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR)
        .context(|| format!("cannot stat bind source {}", source.display()))?;
    let target = ensure_in_root(root, dest, !is_dir)?;
    let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    do_mount(Some(&fd_path(source_fd.as_fd())), &fd_path(target.as_fd()), None, flags, "")
        .context(|| format!("cannot bind mount {} on {}", source.display(), dest.display()))?;
    let extra = opts.remount_flags();
    if !extra.is_empty() {
        let mounted =
            open_in_root(root, dest).context(|| format!("cannot resolve {}", dest.display()))?;
        remount_bind(mounted.as_fd(), extra)
            .context(|| format!("cannot remount {} with its options", dest.display()))?;
    }
    Ok(())
}

/// A bind source is a host path, except that a source inside the rootfs is
/// resolved as the container would see it, so an image's symlink cannot
/// point it at the host.
fn open_bind_source(root: BorrowedFd<'_>, rootfs: &Path, source: &Path) -> SetupResult<OwnedFd> {
    if let Ok(inside) = source.strip_prefix(rootfs) {
        return open_in_root(root, inside)
            .context(|| format!("cannot open bind source {}", source.display()));
    }
    nix::fcntl::open(source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .context(|| format!("cannot open bind source {}", source.display()))
}

/// Remounts a bind mount with `flags`, keeping the flags the kernel locks.
fn remount_bind(target: BorrowedFd<'_>, flags: MsFlags) -> nix::Result<()> {
    let path = fd_path(target);
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match do_mount(None, &path, None, base | flags, "") {
        Err(Errno::EPERM) => {
            let current = nix::sys::statvfs::fstatvfs(target)?.flags().bits();
            let locked = mount_options::locked_flags(current);
            do_mount(None, &path, None, base | flags | locked, "")
        }
        other => other,
    }
}

/// Adds `flags` to a mount, keeping every flag it has now (nosuid, noexec…).
fn remount_adding(target: BorrowedFd<'_>, flags: MsFlags) -> nix::Result<()> {
    let current = nix::sys::statvfs::fstatvfs(target)?.flags().bits();
    remount_bind(target, flags | mount_options::locked_flags(current))
}

fn mount_cgroup(
    root: BorrowedFd<'_>,
    dest: &Path,
    opts: &MountOptions,
    view: &CgroupView,
) -> SetupResult<()> {
    let flags = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    let target = ensure_in_root(root, dest, false)?;
    if let Some(host) = &view.v2_dir {
        if view.new_namespace {
            return do_mount(
                Some(Path::new("cgroup2")),
                &fd_path(target.as_fd()),
                Some("cgroup2"),
                flags,
                "",
            )
            .context(|| format!("cannot mount cgroup2 on {}", dest.display()));
        }
        let src = nix::fcntl::open(host.as_path(), OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .context(|| format!("cannot open {}", host.display()))?;
        do_mount(Some(&fd_path(src.as_fd())), &fd_path(target.as_fd()), None, MsFlags::MS_BIND, "")
            .context(|| format!("cannot bind cgroup on {}", dest.display()))?;
        let mounted =
            open_in_root(root, dest).context(|| format!("cannot resolve {}", dest.display()))?;
        return remount_bind(mounted.as_fd(), flags)
            .context(|| format!("cannot remount cgroup on {}", dest.display()));
    }
    // cgroup v1: a tmpfs holding one directory per hierarchy.
    let tmpfs_flags = flags & !MsFlags::MS_RDONLY;
    do_mount(
        Some(Path::new("tmpfs")),
        &fd_path(target.as_fd()),
        Some("tmpfs"),
        tmpfs_flags,
        "mode=755",
    )
    .context(|| format!("cannot mount tmpfs on {}", dest.display()))?;
    for (options, host_mount, host) in &view.hierarchies {
        let name = host_mount.file_name().map(PathBuf::from).unwrap_or_else(|| options.into());
        let sub = dest.join(&name);
        let sub_fd = ensure_in_root(root, &sub, false)?;
        if view.new_namespace {
            do_mount(
                Some(Path::new("cgroup")),
                &fd_path(sub_fd.as_fd()),
                Some("cgroup"),
                flags,
                options,
            )
            .context(|| format!("cannot mount cgroup {options} on {}", sub.display()))?;
        } else {
            let src =
                nix::fcntl::open(host.as_path(), OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                    .context(|| format!("cannot open {}", host.display()))?;
            do_mount(
                Some(&fd_path(src.as_fd())),
                &fd_path(sub_fd.as_fd()),
                None,
                MsFlags::MS_BIND,
                "",
            )
            .context(|| format!("cannot bind cgroup {} on {}", host.display(), sub.display()))?;
            let mounted =
                open_in_root(root, &sub).context(|| format!("cannot resolve {}", sub.display()))?;
            remount_bind(mounted.as_fd(), flags)
                .context(|| format!("cannot remount cgroup on {}", sub.display()))?;
        }
        // Co-mounted controllers ("cpu,cpuacct") are also reachable by each name.
        if options.contains(',') {
            let parent = reopen(target.as_fd(), OFlag::O_DIRECTORY | OFlag::O_RDONLY)
                .context(|| format!("cannot open {}", dest.display()))?;
            for single in options.split(',').filter(|s| !s.contains('=')) {
                if Path::new(single) != name {
                    match symlinkat(&name, &parent, single) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => {
                            return Err(SetupError::new(format!("cannot link {single}: {e}")))
                        }
                    }
                }
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let mounted =
            open_in_root(root, dest).context(|| format!("cannot resolve {}", dest.display()))?;
        do_mount(None, &fd_path(mounted.as_fd()), None, MsFlags::MS_REMOUNT | flags, "mode=755")
            .context(|| format!("cannot make {} read-only", dest.display()))?;
    }
    Ok(())
}

/// Creates device nodes, or bind mounts the host's where mknod is not
/// allowed (inside a user namespace).
pub(crate) fn create_devices(
    root: BorrowedFd<'_>,
    nodes: &[DeviceNode],
    bind: bool,
) -> SetupResult<()> {
    for node in nodes {
        let parent_path = node.path.parent().unwrap_or(Path::new("/dev"));
        let name = node.path.file_name().unwrap_or_default();
        if bind {
            let host =
                nix::fcntl::open(&node.path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                    .context(|| format!("cannot open host device {}", node.path.display()))?;
            let target = ensure_in_root(root, &node.path, true)?;
            do_mount(
                Some(&fd_path(host.as_fd())),
                &fd_path(target.as_fd()),
                None,
                MsFlags::MS_BIND,
                "",
            )
            .context(|| format!("cannot bind device {}", node.path.display()))?;
            continue;
        }
        let parent = ensure_in_root(root, parent_path, false)?;
        let dir = reopen(parent.as_fd(), OFlag::O_DIRECTORY | OFlag::O_RDONLY)
            .context(|| format!("cannot open {}", parent_path.display()))?;
        let kind = match node.kind {
            'b' => SFlag::S_IFBLK,
            'p' => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let dev = nix::sys::stat::makedev(node.major, node.minor);
        let mode = Mode::from_bits_truncate(node.mode);
        let mut result = mknodat(&dir, name, kind, mode, dev);
        if result == Err(Errno::EEXIST) {
            let _ = nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
            result = mknodat(&dir, name, kind, mode, dev);
        }
        result.context(|| format!("cannot create device {}", node.path.display()))?;
        fchownat(
            &dir,
            name,
            Some(Uid::from_raw(node.uid)),
            Some(Gid::from_raw(node.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .context(|| format!("cannot chown device {}", node.path.display()))?;
        fchmodat(&dir, name, mode, FchmodatFlags::NoFollowSymlink)
            .or_else(|e| if e == Errno::EOPNOTSUPP { Ok(()) } else { Err(e) })
            .context(|| format!("cannot chmod device {}", node.path.display()))?;
    }
    Ok(())
}

/// The standard links of /dev: fd, stdin, stdout, stderr, ptmx, core.
pub(crate) fn link_dev(root: BorrowedFd<'_>, has_devpts: bool) -> SetupResult<()> {
    let Ok(dev) = open_in_root(root, Path::new("/dev")) else { return Ok(()) };
    let dir = reopen(dev.as_fd(), OFlag::O_DIRECTORY | OFlag::O_RDONLY)
        .context(|| "cannot open /dev".to_owned())?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if has_devpts {
        links.push(("pts/ptmx", "ptmx"));
    }
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        if name == "ptmx" {
            let _ = nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        match symlinkat(target, &dir, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(SetupError::new(format!("cannot create /dev/{name}: {e}"))),
        }
    }
    Ok(())
}

/// Makes the rootfs `/` and drops the old root, or with `no_pivot` moves
/// the rootfs over `/` and chroots into it.
pub(crate) fn enter_root(root: OwnedFd, no_pivot: bool) -> SetupResult<()> {
    nix::unistd::fchdir(&root).context(|| "cannot enter the rootfs".to_owned())?;
    drop(root);
    if no_pivot {
        do_mount(Some(Path::new(".")), Path::new("/"), None, MsFlags::MS_MOVE, "")
            .context(|| "cannot move the rootfs to /".to_owned())?;
        nix::unistd::chroot(".").context(|| "chroot".to_owned())?;
    } else {
        nix::unistd::pivot_root(".", ".").context(|| "pivot_root".to_owned())?;
        do_mount(None, Path::new("."), None, MsFlags::MS_SLAVE | MsFlags::MS_REC, "")
            .context(|| "cannot make the old root a slave mount".to_owned())?;
        umount2(".", MntFlags::MNT_DETACH).context(|| "cannot detach the old root".to_owned())?;
    }
    nix::unistd::chdir("/").context(|| "chdir /".to_owned())
}

/// Hides paths under an empty read-only tmpfs (directories) or /dev/null.
pub(crate) fn mask_paths(paths: &[PathBuf]) -> SetupResult<()> {
    for path in paths {
        let result = match std::fs::metadata(path) {
            Err(_) => continue,
            Ok(meta) if meta.is_dir() => do_mount(
                Some(Path::new("tmpfs")),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                "size=0",
            ),
            Ok(_) => do_mount(Some(Path::new("/dev/null")), path, None, MsFlags::MS_BIND, ""),
        };
        result.context(|| format!("cannot mask {}", path.display()))?;
    }
    Ok(())
}

/// Makes paths read-only with a bind mount on themselves.
pub(crate) fn readonly_paths(paths: &[PathBuf]) -> SetupResult<()> {
    for path in paths {
        match do_mount(Some(path), path, None, MsFlags::MS_BIND | MsFlags::MS_REC, "") {
            Err(Errno::ENOENT) => continue,
            other => other.context(|| format!("cannot bind {} read-only", path.display()))?,
        }
        let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .context(|| format!("cannot open {}", path.display()))?;
        remount_adding(fd.as_fd(), MsFlags::MS_RDONLY)
            .context(|| format!("cannot make {} read-only", path.display()))?;
    }
    Ok(())
}

pub(crate) fn make_root_readonly() -> SetupResult<()> {
    let fd = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .context(|| "cannot open /".to_owned())?;
    remount_adding(fd.as_fd(), MsFlags::MS_RDONLY).context(|| "cannot make / read-only".to_owned())
}

pub(crate) fn set_root_propagation(name: &str) -> SetupResult<()> {
    let flag = mount_options::propagation_option(name)
        .ok_or_else(|| SetupError::new(format!("unknown rootfsPropagation {name:?}")))?;
    do_mount(None, Path::new("/"), None, flag, "")
        .context(|| format!("cannot set rootfs propagation {name}"))
}

/// Writes a sysctl under /proc/sys (`net.ipv4.ip_forward` → net/ipv4/ip_forward).
pub(crate) fn write_sysctl(key: &str, value: &str) -> SetupResult<()> {
    let path = Path::new("/proc/sys").join(key.replace('.', "/"));
    std::fs::write(&path, value.as_bytes()).context(|| format!("cannot set sysctl {key}={value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_root(dir: &Path) -> OwnedFd {
        nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .expect("open root")
    }

    #[test]
    fn dangling_symlinks_are_followed_and_created_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = format!("/tmp/kiln-unit-{}-target", std::process::id());
        std::os::unix::fs::symlink(&outside, dir.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../up", dir.path().join("rel")).unwrap();
        let root = open_root(dir.path());

        ensure_in_root(root.as_fd(), Path::new("/abs/sub"), false).expect("abs");
        assert!(dir.path().join(&outside[1..]).join("sub").is_dir());
        assert!(!Path::new(&outside).exists());

        ensure_in_root(root.as_fd(), Path::new("/rel"), true).expect("rel");
        assert!(dir.path().join("up").is_file());
    }

    #[test]
    fn symlink_loops_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("b", dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        let root = open_root(dir.path());
        assert!(ensure_in_root(root.as_fd(), Path::new("/a/x"), false).is_err());
    }
}
