//! Writing entries into the root being built, never outside it.
//!
//! Parents are resolved with openat2(RESOLVE_IN_ROOT), so an image's own
//! links are followed as the container would follow them (`/var/run ->
//! /run` puts a file in `/run`) but clamped at the root. The last component
//! is created with calls that never follow a symlink (`O_CREAT|O_EXCL|
//! O_NOFOLLOW`, `mkdirat`, `symlinkat`, `mknodat`, `linkat`); what was
//! there before (a file, a link) is removed first, so a file that was hard
//! linked elsewhere in the image is replaced, not written through.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::root::{display_in_root, file_type, open_in, open_root, split_last};
use super::{CopyError, Meta};

/// How many symlinks a missing destination directory may go through.
const MAX_LINKS: u32 = 40;

/// What to create at one path.
pub(crate) enum Content<'a> {
    Dir,
    /// A regular file from another file (copied with `copy_file_range`).
    File(&'a mut File),
    /// A regular file from a stream (an archive entry).
    Stream(&'a mut dyn Read),
    Symlink(&'a OsStr),
    Fifo,
    Device {
        block: bool,
        rdev: u64,
    },
    /// A hard link to an earlier path inside the root.
    HardLink(&'a Path),
}

/// Writes into one root; directory times are set by [`Writer::finish`],
/// after everything inside them is written.
pub(crate) struct Writer {
    root: OwnedFd,
    /// Owner of directories made because a destination needs them.
    parent_owner: (u32, u32),
    is_root: bool,
    dir_times: Vec<(PathBuf, (i64, i64))>,
    /// The last parent resolved: entries come in tree order, so most share it.
    last_parent: Option<(PathBuf, Rc<OwnedFd>)>,
}

impl Writer {
    pub(crate) fn new(rootfs: &Path, parent_owner: (u32, u32)) -> Result<Writer, CopyError> {
        let root = open_root(rootfs).map_err(|errno| CopyError::OpenRoot {
            path: rootfs.to_owned(),
            source: errno.into(),
        })?;
        Ok(Writer {
            root,
            parent_owner,
            is_root: nix::unistd::geteuid().is_root(),
            dir_times: Vec::new(),
            last_parent: None,
        })
    }

    /// Whether `rel` is a directory (following links inside the root).
    pub(crate) fn is_dir(&self, rel: &Path) -> bool {
        open_in(self.root.as_fd(), rel, OFlag::O_PATH | OFlag::O_DIRECTORY).is_ok()
    }

    /// Resolves directory `rel`, creating what is missing (mode 0755, owned
    /// by the parent owner). Existing directories are left as they are.
    /// True when `rel` itself was created.
    pub(crate) fn ensure_dir(&mut self, rel: &Path) -> Result<(Rc<OwnedFd>, bool), CopyError> {
        if let Some((path, fd)) = &self.last_parent {
            if path == rel {
                return Ok((Rc::clone(fd), false));
            }
        }
        let (fd, created) = self.ensure_dir_following(rel, rel, MAX_LINKS)?;
        let fd = Rc::new(fd);
        self.last_parent = Some((rel.to_owned(), Rc::clone(&fd)));
        Ok((fd, created))
    }

    fn ensure_dir_following(
        &self,
        asked: &Path,
        rel: &Path,
        links_left: u32,
    ) -> Result<(OwnedFd, bool), CopyError> {
        let root = self.root.as_fd();
        let write_error = |errno: Errno| CopyError::Write {
            path: display_in_root(asked),
            source: io::Error::from(errno),
        };
        match open_in(root, rel, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(fd) => return Ok((fd, false)),
            Err(Errno::ENOENT) => {}
            Err(errno) => return Err(write_error(errno)),
        }
        let parts: Vec<&OsStr> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name),
                Component::ParentDir => Some(OsStr::new("..")),
                _ => None,
            })
            .collect();
        // The deepest ancestor that exists.
        let mut depth = parts.len().saturating_sub(1);
        let mut dir = loop {
            let prefix: PathBuf = parts[..depth].iter().collect();
            match open_in(root, &prefix, OFlag::O_PATH | OFlag::O_DIRECTORY) {
                Ok(fd) => break fd,
                Err(Errno::ENOENT) if depth > 0 => depth -= 1,
                Err(errno) => return Err(write_error(errno)),
            }
        };
        // The first missing component may be a dangling link: make what
        // it names, inside the root, as the container would see it.
        if let Some(first) = parts.get(depth) {
            if let Ok(target) = readlinkat(&dir, *first) {
                if links_left == 0 {
                    return Err(write_error(Errno::ELOOP));
                }
                let mut rest: PathBuf = parts[..depth].iter().collect();
                rest.push(target);
                rest.extend(&parts[depth + 1..]);
                return self.ensure_dir_following(asked, &rest, links_left - 1);
            }
        }
        let mut created = false;
        for (i, part) in parts.iter().enumerate().skip(depth) {
            let prefix: PathBuf = parts[..=i].iter().collect();
            match mkdirat(&dir, *part, Mode::from_bits_truncate(0o700)) {
                Ok(()) => {
                    let fd = nix::fcntl::openat(
                        &dir,
                        *part,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(write_error)?;
                    let (uid, gid) = self.parent_owner;
                    self.chown(fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))))
                        .map_err(write_error)?;
                    fchmod(&fd, Mode::from_bits_truncate(0o755)).map_err(write_error)?;
                    dir = fd;
                    created = true;
                }
                // Made meanwhile, or `..`: resolve it as the container would.
                Err(Errno::EEXIST) => {
                    dir = open_in(root, &prefix, OFlag::O_PATH | OFlag::O_DIRECTORY)
                        .map_err(write_error)?;
                    created = false;
                }
                Err(errno) => return Err(write_error(errno)),
            }
        }
        Ok((dir, created))
    }

    /// Creates `rel` (a path below the root, not the root) as `content`
    /// with `meta`, replacing a non-directory that is there. A directory
    /// already there stays as it is; `meta` is `None` only for hard links,
    /// which share their target's.
    pub(crate) fn write(
        &mut self,
        rel: &Path,
        content: Content<'_>,
        meta: Option<&Meta>,
    ) -> Result<(), CopyError> {
        let Some((parent_rel, name)) = split_last(rel) else {
            return Err(CopyError::Write {
                path: display_in_root(rel),
                source: io::Error::from(io::ErrorKind::InvalidInput),
            });
        };
        let (parent, _) = self.ensure_dir(parent_rel)?;
        let parent = parent.as_fd();
        let write_error =
            |errno: Errno| CopyError::Write { path: display_in_root(rel), source: errno.into() };
        let existing = match fstatat(parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => Some(file_type(&stat)),
            Err(Errno::ENOENT) => None,
            Err(errno) => return Err(write_error(errno)),
        };
        let is_dir = matches!(content, Content::Dir);
        match existing {
            // A directory that is there keeps its mode and owner (as in
            // BuildKit): copying a tree over `/` must not chmod `/tmp`.
            Some(SFlag::S_IFDIR) if is_dir => return Ok(()),
            Some(SFlag::S_IFDIR) => {
                return Err(CopyError::ReplaceDirectory { path: display_in_root(rel) })
            }
            // A link to a directory is the image's way of putting that
            // directory elsewhere (`/var/run -> /run`): copy into it.
            Some(SFlag::S_IFLNK) if is_dir && self.is_dir(rel) => return Ok(()),
            Some(_) => {
                unlinkat(parent, name.as_os_str(), UnlinkatFlags::NoRemoveDir)
                    .map_err(write_error)?;
                // The cached parent may have been reached through it.
                if self.last_parent.as_ref().is_some_and(|(path, _)| path.starts_with(rel)) {
                    self.last_parent = None;
                }
            }
            None => {}
        }
        let name = name.as_os_str();
        match content {
            Content::Dir => {
                mkdirat(parent, name, Mode::from_bits_truncate(0o700)).map_err(write_error)?;
                if let Some(meta) = meta {
                    self.set_dir_meta(parent, name, rel, meta)?;
                }
            }
            Content::File(source) => {
                let mut file = self.create_file(parent, name).map_err(write_error)?;
                io::copy(source, &mut file)
                    .map_err(|source| CopyError::Write { path: display_in_root(rel), source })?;
                self.set_fd_meta(&file, meta).map_err(write_error)?;
            }
            Content::Stream(source) => {
                let mut file = self.create_file(parent, name).map_err(write_error)?;
                io::copy(source, &mut file)
                    .map_err(|source| CopyError::Write { path: display_in_root(rel), source })?;
                self.set_fd_meta(&file, meta).map_err(write_error)?;
            }
            Content::Symlink(target) => {
                symlinkat(target, parent, name).map_err(write_error)?;
                if let Some(meta) = meta {
                    self.set_path_meta(parent, name, meta, false).map_err(write_error)?;
                }
            }
            Content::Fifo => {
                mknodat(parent, name, SFlag::S_IFIFO, Mode::from_bits_truncate(0o600), 0)
                    .map_err(write_error)?;
                // Opening the read end without blocking gives a descriptor
                // to set ownership and mode through.
                let fd = nix::fcntl::openat(
                    parent,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(write_error)?;
                self.set_fd_meta(&File::from(fd), meta).map_err(write_error)?;
            }
            Content::Device { block, rdev } => {
                let kind = if block { SFlag::S_IFBLK } else { SFlag::S_IFCHR };
                mknodat(parent, name, kind, Mode::from_bits_truncate(0o600), rdev)
                    .map_err(write_error)?;
                if let Some(meta) = meta {
                    self.set_path_meta(parent, name, meta, true).map_err(write_error)?;
                }
            }
            Content::HardLink(target) => {
                let Some((target_parent, target_name)) = split_last(target) else {
                    return Err(write_error(Errno::EINVAL));
                };
                let old_parent =
                    open_in(self.root.as_fd(), target_parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
                        .map_err(write_error)?;
                // Without AT_SYMLINK_FOLLOW: a link to a symlink is a link
                // to the symlink itself, never to where it points.
                linkat(&old_parent, target_name.as_os_str(), parent, name, AtFlags::empty())
                    .map_err(write_error)?;
            }
        }
        Ok(())
    }

    /// Sets directory times, deepest first, once nothing more is written
    /// into them.
    pub(crate) fn finish(mut self) -> Result<(), CopyError> {
        self.last_parent = None;
        for (rel, mtime) in self.dir_times.iter().rev() {
            let Some((parent_rel, name)) = split_last(rel) else { continue };
            let write_error = |errno: Errno| CopyError::Write {
                path: display_in_root(rel),
                source: errno.into(),
            };
            let parent = open_in(self.root.as_fd(), parent_rel, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .map_err(write_error)?;
            let time = TimeSpec::new(mtime.0, mtime.1);
            utimensat(&parent, name.as_os_str(), &time, &time, UtimensatFlags::NoFollowSymlink)
                .map_err(write_error)?;
        }
        Ok(())
    }

    fn create_file(&self, parent: BorrowedFd<'_>, name: &OsStr) -> nix::Result<File> {
        nix::fcntl::openat(
            parent,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map(File::from)
    }

    /// Owner, then mode (a chown clears setuid bits), then times.
    fn set_fd_meta(&self, file: &File, meta: Option<&Meta>) -> nix::Result<()> {
        let Some(meta) = meta else { return Ok(()) };
        self.chown(fchown(file, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid))))?;
        fchmod(file, Mode::from_bits_truncate(meta.mode))?;
        let time = TimeSpec::new(meta.mtime.0, meta.mtime.1);
        futimens(file, &time, &time)
    }

    /// Metadata of a symlink or device by name. Only for entries this
    /// writer has just created, so `name` is not a link unless it is the
    /// symlink itself (whose mode Linux ignores).
    fn set_path_meta(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
        with_mode: bool,
    ) -> nix::Result<()> {
        self.chown(fchownat(
            parent,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ))?;
        if with_mode {
            fchmodat(
                parent,
                name,
                Mode::from_bits_truncate(meta.mode),
                FchmodatFlags::FollowSymlink,
            )?;
        }
        let time = TimeSpec::new(meta.mtime.0, meta.mtime.1);
        utimensat(parent, name, &time, &time, UtimensatFlags::NoFollowSymlink)
    }

    /// Owner and mode of a directory now; its time at [`Writer::finish`].
    fn set_dir_meta(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        rel: &Path,
        meta: &Meta,
    ) -> Result<(), CopyError> {
        let write_error =
            |errno: Errno| CopyError::Write { path: display_in_root(rel), source: errno.into() };
        let fd = nix::fcntl::openat(
            parent,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(write_error)?;
        self.chown(fchown(&fd, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid))))
            .map_err(write_error)?;
        fchmod(&fd, Mode::from_bits_truncate(meta.mode)).map_err(write_error)?;
        self.dir_times.push((rel.to_owned(), meta.mtime));
        Ok(())
    }

    /// Metadata of the destination directory itself, when the copy made it.
    pub(crate) fn set_created_dir_meta(
        &mut self,
        rel: &Path,
        meta: &Meta,
    ) -> Result<(), CopyError> {
        let Some((parent_rel, name)) = split_last(rel) else { return Ok(()) };
        let (parent, _) = self.ensure_dir(parent_rel)?;
        self.set_dir_meta(parent.as_fd(), &name, rel, meta)
    }

    /// A chown that only root can do is skipped without root: an
    /// unprivileged builder (and the unit tests) writes files it owns.
    fn chown(&self, result: nix::Result<()>) -> nix::Result<()> {
        match result {
            Err(Errno::EPERM) if !self.is_root => Ok(()),
            other => other,
        }
    }
}
