//! The copying snapshotter: for hosts without overlayfs, layers are copied
//! bottom-up into one directory, each applying its whiteouts to what lies
//! below.
//!
//! Both whiteout forms are understood: overlayfs's (character device 0:0,
//! `trusted.overlay.opaque=y`) and the OCI files kept by
//! [`WhiteoutFormat::Oci`](crate::WhiteoutFormat::Oci) (`.wh.name`,
//! `.wh..wh..opq`), which need no root to create or read. A layer's
//! whiteouts apply before its own files, so they hide lower layers only.
//! Hard links within a layer stay hard links.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{mknod, Mode, SFlag};
use nix::sys::time::TimeSpec;

use crate::error::SnapshotError;
use crate::whiteout::{is_opaque, is_overlay_whiteout, Whiteout, OVERLAY_XATTR_PREFIX};

/// Copy the unpacked layers `lowers` (bottom first) into `dest`, creating
/// it if needed, so that `dest` holds the merged filesystem.
pub fn materialize(lowers: &[&Path], dest: &Path) -> Result<(), SnapshotError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| SnapshotError::Copy { path, source }
    };
    match dest.symlink_metadata() {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(SnapshotError::InvalidDestination { path: dest.to_owned() }),
        Err(_) => DirBuilder::new().recursive(true).mode(0o755).create(dest).map_err(err(dest))?,
    }
    let copier = Copier { is_root: nix::unistd::geteuid().is_root() };
    for layer in lowers {
        let mut links = HashMap::new();
        copier.copy_dir(layer, dest, &mut links)?;
    }
    Ok(())
}

struct Copier {
    is_root: bool,
}

impl Copier {
    /// Merge the directory `src` of a layer into `dest` (an existing real directory).
    fn copy_dir(
        &self,
        src: &Path,
        dest: &Path,
        links: &mut HashMap<(u64, u64), PathBuf>,
    ) -> Result<(), SnapshotError> {
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| SnapshotError::Copy { path, source }
        };
        let mut names: Vec<OsString> = fs::read_dir(src)
            .map_err(err(src))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(err(src))?;
        names.sort();

        // Whiteouts first: they hide what is below, not this layer's files.
        let has_opaque_marker =
            names.iter().any(|n| matches!(Whiteout::parse(n), Some(Whiteout::Opaque)));
        if has_opaque_marker || is_opaque(src) {
            for entry in fs::read_dir(dest).map_err(err(dest))? {
                remove_any(&entry.map_err(err(dest))?.path())?;
            }
        }
        let mut kept = Vec::with_capacity(names.len());
        for name in names {
            let from = src.join(&name);
            let meta = from.symlink_metadata().map_err(err(&from))?;
            if is_overlay_whiteout(&meta) {
                remove_any(&dest.join(&name))?;
                continue;
            }
            match Whiteout::parse(&name) {
                Some(Whiteout::Remove(hidden)) => remove_any(&dest.join(hidden))?,
                Some(Whiteout::Opaque | Whiteout::Meta) => {}
                None => kept.push((name, meta)),
            }
        }

        for (name, meta) in kept {
            let from = src.join(&name);
            let to = dest.join(&name);
            let existing = to.symlink_metadata().ok();
            if meta.is_dir() {
                if !existing.as_ref().is_some_and(fs::Metadata::is_dir) {
                    remove_any(&to)?;
                    DirBuilder::new().mode(0o700).create(&to).map_err(err(&to))?;
                }
                self.copy_dir(&from, &to, links)?;
                self.copy_meta(&from, &to, &meta)?;
                continue;
            }
            remove_any(&to)?;
            let file_type = meta.file_type();
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    fs::hard_link(first, &to).map_err(err(&to))?;
                    continue;
                }
            }
            if file_type.is_file() {
                let mut input = fs::File::open(&from).map_err(err(&from))?;
                let mut output = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&to)
                    .map_err(err(&to))?;
                io::copy(&mut input, &mut output).map_err(err(&to))?;
            } else if file_type.is_symlink() {
                let target = fs::read_link(&from).map_err(err(&from))?;
                std::os::unix::fs::symlink(target, &to).map_err(err(&to))?;
            } else if file_type.is_char_device()
                || file_type.is_block_device()
                || file_type.is_fifo()
            {
                let kind = if file_type.is_char_device() {
                    SFlag::S_IFCHR
                } else if file_type.is_block_device() {
                    SFlag::S_IFBLK
                } else {
                    SFlag::S_IFIFO
                };
                mknod(&to, kind, Mode::from_bits_truncate(0o600), meta.rdev())
                    .map_err(|e| SnapshotError::Copy { path: to.clone(), source: e.into() })?;
            } else {
                tracing::debug!(path = %from.display(), "skipping socket in layer");
                continue;
            }
            self.copy_meta(&from, &to, &meta)?;
            if meta.nlink() > 1 {
                links.insert((meta.dev(), meta.ino()), to);
            }
        }
        Ok(())
    }

    /// Owner, then mode (chown clears setuid), xattrs and times.
    fn copy_meta(&self, from: &Path, to: &Path, meta: &fs::Metadata) -> Result<(), SnapshotError> {
        let err = |source| SnapshotError::Copy { path: to.to_owned(), source };
        let is_symlink = meta.file_type().is_symlink();
        if self.is_root {
            std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid())).map_err(err)?;
        }
        if !is_symlink {
            fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(err)?;
        }
        if let Ok(names) = xattr::list(from) {
            for name in names {
                if name.as_bytes().starts_with(OVERLAY_XATTR_PREFIX.as_bytes()) {
                    continue;
                }
                if let Ok(Some(value)) = xattr::get(from, &name) {
                    if let Err(source) = xattr::set(to, &name, &value) {
                        if source.raw_os_error() != Some(libc::EOPNOTSUPP) {
                            return Err(SnapshotError::Xattr {
                                path: to.to_owned(),
                                name: name.to_string_lossy().into_owned(),
                                source,
                            });
                        }
                    }
                }
            }
        }
        let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
        let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            to,
            &atime,
            &mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| err(e.into()))
    }
}

/// Remove whatever is at `path` (a directory with its contents); absent is fine.
fn remove_any(path: &Path) -> Result<(), SnapshotError> {
    let result = match path.symlink_metadata() {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    };
    result.map_err(|source| SnapshotError::Copy { path: path.to_owned(), source })
}
