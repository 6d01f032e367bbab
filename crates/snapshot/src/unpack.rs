//! Unpacking a layer tar into a new directory, atomically and without escapes.
//!
//! The layer is written into `<dest>.tmp-<random>` beside `dest` and renamed
//! into place only when every entry is in and synced; on any error the temp
//! directory is removed, so `dest` is either the whole layer or absent.
//!
//! Entries are created by hand rather than with `tar`'s `unpack_in`: a path
//! that is absolute or holds `..` is refused, and so is one whose parent is a
//! symlink (even one inside the layer), checked component by component with
//! `lstat` before anything is created. Final components are created with
//! `O_EXCL`/`O_NOFOLLOW`-like calls (`open(O_CREAT|O_EXCL)`, `mkdir`,
//! `symlink`, `mknod`, `linkat` without `AT_SYMLINK_FOLLOW`), which never
//! follow a symlink. Only this process writes into the private temp
//! directory, so the checks cannot be raced by the layer itself.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use kiln_types::Digest;
use nix::errno::Errno;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::sys::time::TimeSpec;
use sha2::{Digest as _, Sha256};
use tar::EntryType;

use crate::chain::from_sha256;
use crate::compression::{decompress, Compression};
use crate::error::SnapshotError;
use crate::whiteout::{self, Whiteout, WhiteoutFormat, OVERLAY_XATTR_PREFIX};

/// What unpacking a layer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries created other than directories: files, links, devices, whiteouts.
    pub files: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
    /// sha256 of the uncompressed tar stream: the layer's diff id.
    pub diff_id: Digest,
    /// The compression the blob was found to use.
    pub compression: Compression,
}

/// Unpack a layer (plain, gzip or zstd tar, told apart by magic bytes) into
/// the new directory `dest`, with whiteouts in overlayfs form.
pub fn unpack_layer(reader: impl Read, dest: &Path) -> Result<UnpackStats, SnapshotError> {
    unpack_layer_with_whiteouts(reader, dest, WhiteoutFormat::Overlay)
}

/// [`unpack_layer`], storing whiteouts in the given form.
pub fn unpack_layer_with_whiteouts(
    reader: impl Read,
    dest: &Path,
    whiteouts: WhiteoutFormat,
) -> Result<UnpackStats, SnapshotError> {
    unpack_layer_staged(reader, dest, None, whiteouts)
}

/// The name prefix of a layer being unpacked in a staging directory.
pub(crate) const STAGING_PREFIX: &str = ".unpacking-";

/// [`unpack_layer_with_whiteouts`], building the tree in `staging` (same
/// file system as `dest`) under a fresh random name, then renaming it to
/// `dest`. A random name under a directory marked as the top of unrelated
/// trees puts each layer in its own ext4 block group (see
/// `kiln_sys::fs::mark_top_directory`).
pub(crate) fn unpack_layer_staged(
    reader: impl Read,
    dest: &Path,
    staging: Option<&Path>,
    whiteouts: WhiteoutFormat,
) -> Result<UnpackStats, SnapshotError> {
    let invalid = || SnapshotError::InvalidDestination { path: dest.to_owned() };
    let name = dest.file_name().ok_or_else(invalid)?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        Some(_) => Path::new("."),
        None => return Err(invalid()),
    };
    if dest.symlink_metadata().is_ok() {
        return Err(SnapshotError::Exists { path: dest.to_owned() });
    }
    let tmp = match staging {
        Some(dir) => dir.join(format!("{STAGING_PREFIX}{}", random_suffix())),
        None => {
            let mut tmp_name = name.to_owned();
            tmp_name.push(format!(".tmp-{}", random_suffix()));
            parent.join(tmp_name)
        }
    };
    DirBuilder::new()
        .mode(0o700)
        .create(&tmp)
        .map_err(|source| SnapshotError::Write { path: tmp.clone(), source })?;

    let result = unpack_into(reader, &tmp, whiteouts).and_then(|stats| {
        commit(&tmp, dest, parent)?;
        if let Some(dir) = staging.filter(|d| *d != parent) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|source| SnapshotError::Write { path: dir.to_owned(), source })?;
        }
        Ok(stats)
    });
    if result.is_err() {
        remove_tree(&tmp);
    }
    result
}

/// Sync the unpacked tree and rename it to `dest`, never over an existing one.
fn commit(tmp: &Path, dest: &Path, parent: &Path) -> Result<(), SnapshotError> {
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source: io::Error| SnapshotError::Write { path, source }
    };
    let dir = File::open(tmp).map_err(write_err(tmp))?;
    nix::unistd::syncfs(&dir).map_err(|e| write_err(tmp)(e.into()))?;
    drop(dir);
    let at = nix::fcntl::AT_FDCWD;
    match nix::fcntl::renameat2(at, tmp, at, dest, nix::fcntl::RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => {}
        Err(Errno::EEXIST | Errno::ENOTEMPTY) => {
            return Err(SnapshotError::Exists { path: dest.to_owned() })
        }
        // A filesystem without RENAME_NOREPLACE: check, then rename.
        Err(Errno::EINVAL) if dest.symlink_metadata().is_err() => {
            fs::rename(tmp, dest).map_err(write_err(dest))?;
        }
        Err(Errno::EINVAL) => return Err(SnapshotError::Exists { path: dest.to_owned() }),
        Err(e) => return Err(write_err(dest)(e.into())),
    }
    File::open(parent).and_then(|d| d.sync_all()).map_err(write_err(parent))
}

/// Remove a partly unpacked tree; best effort, making directories writable
/// first if a plain removal fails (a read-only directory from the layer).
pub(crate) fn remove_tree(path: &Path) {
    if fs::remove_dir_all(path).is_ok() {
        return;
    }
    fn open_up(dir: &Path) {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                open_up(&entry.path());
            }
        }
    }
    open_up(path);
    if let Err(err) = fs::remove_dir_all(path) {
        tracing::warn!(path = %path.display(), error = %err, "cannot remove partly unpacked layer");
    }
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    if File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        bytes[..4].copy_from_slice(&std::process::id().to_le_bytes());
        bytes[4..].copy_from_slice(&nanos.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn unpack_into(
    reader: impl Read,
    root: &Path,
    whiteouts: WhiteoutFormat,
) -> Result<UnpackStats, SnapshotError> {
    let read_err = |source| SnapshotError::Read { source };
    let (decoded, compression) = decompress(reader).map_err(read_err)?;
    let mut hashing = Hashing { inner: decoded, hasher: Sha256::new() };
    let mut layer = Layer {
        root,
        whiteouts,
        is_root: nix::unistd::geteuid().is_root(),
        dirs: BTreeMap::new(),
        files: 0,
        bytes: 0,
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(read_err)? {
            layer.apply(entry.map_err(read_err)?)?;
        }
    }
    // The diff id covers the whole stream, padding after the end marker too.
    io::copy(&mut hashing, &mut io::sink()).map_err(read_err)?;
    layer.finish()?;
    Ok(UnpackStats {
        files: layer.files,
        bytes: layer.bytes,
        diff_id: from_sha256(hashing.hasher.finalize()),
        compression,
    })
}

/// Ownership, mode, times and xattrs of an entry.
#[derive(Debug, Clone)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

struct Layer<'a> {
    root: &'a Path,
    whiteouts: WhiteoutFormat,
    is_root: bool,
    /// Directories whose mode and times are set last, children first
    /// (reverse path order), so later entries can still be created in them.
    dirs: BTreeMap<PathBuf, Meta>,
    files: u64,
    bytes: u64,
}

impl Layer<'_> {
    fn apply<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), SnapshotError> {
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let header_err = |source| SnapshotError::Header { entry: name.clone(), source };
        let rel = entry.path().map_err(header_err)?;
        let rel = clean(&rel).ok_or_else(|| SnapshotError::Escape { entry: name.clone() })?;
        let meta = read_meta(&mut entry).map_err(header_err)?;
        let Some(file_name) = rel.file_name().map(OsStr::to_owned) else {
            // "./": the layer's root directory itself.
            if kind != EntryType::Directory {
                return Err(SnapshotError::UnsupportedEntry {
                    entry: name,
                    kind: format!("{kind:?} at the layer root"),
                });
            }
            self.dirs.insert(PathBuf::new(), meta);
            return Ok(());
        };
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let parent = self.ensure_parent(parent_rel, &name)?;
        let path = parent.join(&file_name);

        if self.whiteouts == WhiteoutFormat::Overlay {
            if let Some(whiteout) = Whiteout::parse(&file_name) {
                return self.apply_whiteout(whiteout, &parent, &name);
            }
        }

        let write_err = |source| SnapshotError::Write { path: path.clone(), source };
        match path.symlink_metadata() {
            Ok(existing) if existing.is_dir() && kind == EntryType::Directory => {
                self.chown(&path, &meta)?;
                self.set_xattrs(&path, &meta.xattrs)?;
                self.dirs.insert(rel, meta);
                return Ok(());
            }
            Ok(existing) if existing.is_dir() => {
                fs::remove_dir_all(&path).map_err(write_err)?;
                self.dirs.retain(|dir, _| !dir.starts_with(&rel));
            }
            Ok(_) => fs::remove_file(&path).map_err(write_err)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(write_err(err)),
        }

        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&path)
                    .map_err(write_err)?;
                let written = copy_contents(&mut entry, &mut file, &path)?;
                if written != entry.size() {
                    return Err(SnapshotError::Truncated { entry: name });
                }
                self.bytes += written;
                self.files += 1;
                if self.is_root {
                    std::os::unix::fs::fchown(&file, Some(meta.uid), Some(meta.gid))
                        .map_err(write_err)?;
                }
                // After chown, which clears setuid and setgid.
                file.set_permissions(fs::Permissions::from_mode(meta.mode)).map_err(write_err)?;
                drop(file);
                self.set_xattrs(&path, &meta.xattrs)?;
                set_mtime(&path, meta.mtime)?;
            }
            EntryType::Directory => {
                DirBuilder::new().mode(0o700).create(&path).map_err(write_err)?;
                self.chown(&path, &meta)?;
                self.set_xattrs(&path, &meta.xattrs)?;
                self.dirs.insert(rel, meta);
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    header_err(io::Error::new(io::ErrorKind::InvalidData, "symlink without target"))
                })?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path).map_err(write_err)?;
                self.files += 1;
                self.chown(&path, &meta)?;
                self.set_xattrs(&path, &meta.xattrs)?;
                set_mtime(&path, meta.mtime)?;
            }
            EntryType::Link => {
                let target_raw = entry.link_name_bytes().ok_or_else(|| {
                    header_err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "hard link without target",
                    ))
                })?;
                let target = self.link_target(Path::new(OsStr::from_bytes(&target_raw)), &name)?;
                fs::hard_link(&target, &path).map_err(write_err)?;
                self.files += 1;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (sflag, what) = match kind {
                    EntryType::Char => (SFlag::S_IFCHR, "character device"),
                    EntryType::Block => (SFlag::S_IFBLK, "block device"),
                    _ => (SFlag::S_IFIFO, "fifo"),
                };
                let header = entry.header();
                let major = header.device_major().map_err(header_err)?.unwrap_or(0);
                let minor = header.device_minor().map_err(header_err)?.unwrap_or(0);
                let dev = makedev(major.into(), minor.into());
                match mknod(&path, sflag, Mode::from_bits_truncate(0o600), dev) {
                    Ok(()) => {}
                    Err(Errno::EPERM) => {
                        return Err(SnapshotError::NeedsRoot { entry: name, what });
                    }
                    Err(e) => return Err(write_err(e.into())),
                }
                self.files += 1;
                self.chown(&path, &meta)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(meta.mode))
                    .map_err(write_err)?;
                self.set_xattrs(&path, &meta.xattrs)?;
                set_mtime(&path, meta.mtime)?;
            }
            other => {
                return Err(SnapshotError::UnsupportedEntry {
                    entry: name,
                    kind: format!("{other:?}"),
                })
            }
        }
        Ok(())
    }

    fn apply_whiteout(
        &mut self,
        whiteout: Whiteout<'_>,
        parent: &Path,
        entry: &str,
    ) -> Result<(), SnapshotError> {
        match whiteout {
            Whiteout::Meta => {
                tracing::debug!(entry, "ignoring aufs metadata entry");
                Ok(())
            }
            Whiteout::Opaque => whiteout::set_opaque(parent).map_err(|source| {
                if source.raw_os_error() == Some(libc::EPERM) {
                    SnapshotError::NeedsRoot { entry: entry.to_owned(), what: "opaque whiteout" }
                } else {
                    SnapshotError::Xattr {
                        path: parent.to_owned(),
                        name: whiteout::OVERLAY_OPAQUE_XATTR.to_owned(),
                        source,
                    }
                }
            }),
            Whiteout::Remove(name) => {
                let path = parent.join(name);
                // A whiteout hides lower layers only, never its own layer's file.
                if path.symlink_metadata().is_ok() {
                    return Ok(());
                }
                match whiteout::create_overlay_whiteout(&path) {
                    Ok(()) => {
                        self.files += 1;
                        Ok(())
                    }
                    Err(Errno::EPERM) => Err(SnapshotError::NeedsRoot {
                        entry: entry.to_owned(),
                        what: "whiteout (an overlay character device 0:0)",
                    }),
                    Err(e) => Err(SnapshotError::Write { path, source: e.into() }),
                }
            }
        }
    }

    /// The directory `rel` under the root, every component checked to be a
    /// real directory (not a symlink); missing ones are created 0755.
    fn ensure_parent(&self, rel: &Path, entry: &str) -> Result<PathBuf, SnapshotError> {
        let mut dir = self.root.to_owned();
        let mut walked = PathBuf::new();
        for part in rel.components() {
            dir.push(part);
            walked.push(part);
            match dir.symlink_metadata() {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(SnapshotError::ThroughSymlink {
                        entry: entry.to_owned(),
                        link: walked.display().to_string(),
                    })
                }
                Ok(_) => {
                    return Err(SnapshotError::ParentNotDirectory {
                        entry: entry.to_owned(),
                        parent: walked.display().to_string(),
                    })
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    DirBuilder::new()
                        .mode(0o755)
                        .create(&dir)
                        .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)))
                        .map_err(|source| SnapshotError::Write { path: dir.clone(), source })?;
                }
                Err(source) => return Err(SnapshotError::Write { path: dir, source }),
            }
        }
        Ok(dir)
    }

    /// Where a hard link's target is: an existing non-directory of this
    /// layer, reached through real directories only.
    fn link_target(&self, target: &Path, entry: &str) -> Result<PathBuf, SnapshotError> {
        let shown = target.display().to_string();
        let escape =
            || SnapshotError::LinkEscape { entry: entry.to_owned(), target: shown.clone() };
        let missing =
            || SnapshotError::LinkTarget { entry: entry.to_owned(), target: shown.clone() };
        let rel = clean(target).ok_or_else(escape)?;
        if rel.as_os_str().is_empty() {
            return Err(missing());
        }
        let mut path = self.root.to_owned();
        let parts: Vec<_> = rel.components().collect();
        for (i, part) in parts.iter().enumerate() {
            path.push(part);
            let meta = path.symlink_metadata().map_err(|_| missing())?;
            let is_last = i + 1 == parts.len();
            if is_last && meta.is_dir() {
                return Err(missing());
            }
            if !is_last && meta.file_type().is_symlink() {
                return Err(escape());
            }
            if !is_last && !meta.is_dir() {
                return Err(missing());
            }
        }
        Ok(path)
    }

    fn chown(&self, path: &Path, meta: &Meta) -> Result<(), SnapshotError> {
        if !self.is_root {
            // Without root, files belong to the unpacking user.
            return Ok(());
        }
        std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid))
            .map_err(|source| SnapshotError::Write { path: path.to_owned(), source })
    }

    fn set_xattrs(&self, path: &Path, xattrs: &[(OsString, Vec<u8>)]) -> Result<(), SnapshotError> {
        for (name, value) in xattrs {
            if name.as_bytes().starts_with(OVERLAY_XATTR_PREFIX.as_bytes()) {
                tracing::warn!(path = %path.display(), xattr = ?name, "ignoring overlay xattr in layer");
                continue;
            }
            match xattr::set(path, name, value) {
                Ok(()) => {}
                Err(err) if err.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    tracing::warn!(path = %path.display(), xattr = ?name, "filesystem does not support xattr");
                }
                Err(source) => {
                    return Err(SnapshotError::Xattr {
                        path: path.to_owned(),
                        name: name.to_string_lossy().into_owned(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Modes and times of directories, now that nothing more goes into them.
    fn finish(&mut self) -> Result<(), SnapshotError> {
        let root_meta = self.dirs.remove(Path::new(""));
        for (rel, meta) in self.dirs.iter().rev() {
            set_dir_meta(&self.root.join(rel), meta)?;
        }
        match root_meta {
            Some(meta) => {
                self.chown(self.root, &meta)?;
                self.set_xattrs(self.root, &meta.xattrs)?;
                set_dir_meta(self.root, &meta)
            }
            None => fs::set_permissions(self.root, fs::Permissions::from_mode(0o755))
                .map_err(|source| SnapshotError::Write { path: self.root.to_owned(), source }),
        }
    }
}

fn set_dir_meta(path: &Path, meta: &Meta) -> Result<(), SnapshotError> {
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode))
        .map_err(|source| SnapshotError::Write { path: path.to_owned(), source })?;
    set_mtime(path, meta.mtime)
}

fn set_mtime(path: &Path, mtime: i64) -> Result<(), SnapshotError> {
    let time = TimeSpec::new(mtime, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| SnapshotError::Write { path: path.to_owned(), source: e.into() })
}

/// Copy an entry's data, telling read failures (a corrupt layer) from write
/// failures (a full disk).
fn copy_contents(from: &mut impl Read, to: &mut File, path: &Path) -> Result<u64, SnapshotError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(SnapshotError::Read { source }),
        };
        to.write_all(&buf[..n])
            .map_err(|source| SnapshotError::Write { path: path.to_owned(), source })?;
        total += n as u64;
    }
}

/// Owner, mode, mtime and xattrs from the header and its PAX records.
fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let header = entry.header();
    let to_u32 = |v: u64| u32::try_from(v).map_err(|_| io::Error::from(io::ErrorKind::InvalidData));
    // Blank numeric fields read as 0, as Go's archive/tar (Docker) reads them.
    let mut meta = Meta {
        uid: to_u32(header.uid().unwrap_or(0))?,
        gid: to_u32(header.gid().unwrap_or(0))?,
        mode: header.mode()? & 0o7777,
        mtime: i64::try_from(header.mtime().unwrap_or(0)).unwrap_or(i64::MAX),
        xattrs: Vec::new(),
    };
    if let Some(extensions) = entry.pax_extensions()? {
        for ext in extensions {
            let ext = ext?;
            let key = ext.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                meta.xattrs.push((OsStr::from_bytes(name).to_owned(), ext.value_bytes().to_vec()));
            } else if key == b"uid" || key == b"gid" {
                let id = std::str::from_utf8(ext.value_bytes())
                    .ok()
                    .and_then(|v| v.parse::<u32>().ok())
                    .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
                if key == b"uid" {
                    meta.uid = id;
                } else {
                    meta.gid = id;
                }
            }
        }
    }
    Ok(meta)
}

/// A layer-relative path with `.` dropped; `None` when it is absolute or
/// holds `..`.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths_stay_in_the_layer() {
        assert_eq!(clean(Path::new("./a/b/")), Some(PathBuf::from("a/b")));
        assert_eq!(clean(Path::new("a/./b")), Some(PathBuf::from("a/b")));
        assert_eq!(clean(Path::new("./")), Some(PathBuf::new()));
        assert_eq!(clean(Path::new("../etc/passwd")), None);
        assert_eq!(clean(Path::new("a/../../b")), None);
        assert_eq!(clean(Path::new("/etc/passwd")), None);
    }
}
