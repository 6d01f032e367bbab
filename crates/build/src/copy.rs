//! COPY and ADD: selecting source files, hashing them for the cache, and
//! writing them into a mounted root.
//!
//! [`select`] reads the source root (the build context, or the root of a
//! stage or image for `COPY --from`) and lists what the copy will write:
//! wildcards expanded, `--exclude` applied, directories walked, owners and
//! modes decided. [`Selection::digest`] hashes exactly that list and the
//! file bytes, so it can key the build cache; [`apply`] writes it into the
//! root being built.
//!
//! Nothing outside either root is ever read or written: every path is
//! resolved with openat2(RESOLVE_IN_ROOT), so symlinks are followed as if
//! the root were `/` (a context link to `/etc/passwd` reads the context's
//! `etc/passwd`; an image's `/var/run -> /run` puts files in its `/run`).
//! A `..` that climbs out of the build context is refused outright.
//!
//! Docker's rules: a directory source copies its contents; a single file
//! goes to the destination path itself unless that ends in `/` or is a
//! directory; several sources need a directory destination; context files
//! belong to root unless `--chown`, a stage's keep their owners; modes are
//! kept unless `--chmod`; missing parent directories are made 0755 and
//! existing ones are left alone.

mod archive;
mod dest;
mod pattern;
mod root;
mod source;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use kiln_dockerfile::ignore::IgnoreError;
use kiln_types::{ErrorKind, HasKind};
use nix::fcntl::OFlag;
use nix::sys::stat::{fstat, SFlag};
use sha2::{Digest as _, Sha256};

use dest::{Content, Writer};
use root::{clean_in_root, file_type, open_in, open_root};

/// One COPY or ADD, with the Dockerfile's words already expanded.
#[derive(Debug, Clone)]
pub struct CopyRequest<'a> {
    /// Where sources are read: the build context directory, or the mounted
    /// root of a stage or image (`COPY --from`).
    pub source_root: &'a Path,
    /// Whether `source_root` is the build context (decides the error
    /// wording, the owners of copied files, and whether `..` may clamp).
    pub from_context: bool,
    /// Source paths after variable expansion, relative to `source_root` (a
    /// leading `/` also means relative to it); each component may hold
    /// wildcards (`*`, `?`, `[...]`, as Go's `filepath.Match`).
    pub sources: Vec<String>,
    /// The destination, absolute (WORKDIR already joined); a trailing `/`
    /// means "a directory".
    pub dest: String,
    /// `--chown`, resolved to numbers.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`, as permission bits.
    pub mode: Option<u32>,
    /// `--exclude` patterns (`.dockerignore` syntax), relative to the
    /// source root.
    pub excludes: Vec<String>,
    /// `--parents`: keep each source's path below the source root (or
    /// below a `/./` in it) under `dest`.
    pub parents: bool,
    /// ADD: a local tar archive (plain, gzip or zstd) is unpacked into
    /// `dest` instead of copied.
    pub extract_archives: bool,
}

/// What a copy will write, in order.
#[derive(Debug, Clone)]
pub struct Selection {
    source_root: PathBuf,
    from_context: bool,
    dest: String,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
    parents: bool,
    /// Sources matched (after wildcards), for the "more than one source"
    /// rule.
    sources: usize,
    /// One source that is not a directory or archive: it may land at the
    /// destination path itself.
    single_file: bool,
    extract_archives: bool,
    entries: Vec<Entry>,
}

/// One file, directory or link to write.
#[derive(Debug, Clone)]
struct Entry {
    /// Where it is read, relative to the source root.
    source: PathBuf,
    /// A matched source (not something found by walking a directory): a
    /// symlink as its last component is followed.
    follow: bool,
    /// Where it lands, relative to the destination directory; empty for a
    /// directory source itself. For an archive, the directory it is
    /// unpacked into.
    target: PathBuf,
    kind: EntryKind,
    meta: Meta,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryKind {
    Dir,
    File { size: u64 },
    Symlink { target: OsString },
    Fifo,
    Device { block: bool, rdev: u64 },
    Archive,
}

/// Owner, permission bits and modification time of what is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    /// Seconds and nanoseconds; kept from the source, not hashed.
    mtime: (i64, i64),
}

/// Why a COPY or ADD failed. The executor prefixes `COPY failed: `.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("file not found in build context: {path}")]
    NotFoundInContext { path: String },
    #[error("file not found in stage or image: {path}")]
    NotFoundInStage { path: String },
    #[error("forbidden path outside the build context: {path}")]
    OutsideContext { path: String },
    #[error("When using {instruction} with more than one source file, the destination must be a directory and end with a /")]
    NeedDirectory { instruction: &'static str },
    #[error("no source files were specified")]
    NoSources,
    #[error("syntax error in pattern: {pattern}")]
    BadPattern { pattern: String },
    #[error("invalid --exclude pattern {pattern:?}")]
    BadExclude {
        pattern: String,
        #[source]
        source: IgnoreError,
    },
    #[error("cannot copy device {path} from the build context")]
    DeviceInContext { path: String },
    #[error("cannot replace directory {path} with a file")]
    ReplaceDirectory { path: String },
    #[error("archive {archive} has an entry outside the destination: {entry}")]
    ArchiveEscape { archive: String, entry: String },
    #[error("cannot unpack archive {archive}")]
    Extract {
        archive: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot open {}", .path.display())]
    OpenRoot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl HasKind for CopyError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFoundInContext { .. } | Self::NotFoundInStage { .. } => ErrorKind::NotFound,
            Self::OutsideContext { .. }
            | Self::NeedDirectory { .. }
            | Self::NoSources
            | Self::BadPattern { .. }
            | Self::BadExclude { .. }
            | Self::DeviceInContext { .. }
            | Self::ReplaceDirectory { .. }
            | Self::ArchiveEscape { .. }
            | Self::Extract { .. } => ErrorKind::InvalidArgument,
            Self::OpenRoot { .. } | Self::Read { .. } | Self::Write { .. } => ErrorKind::Internal,
        }
    }
}

/// Lists what `request` copies: sources resolved inside the source root,
/// wildcards expanded, excludes applied, directories walked.
pub fn select(request: &CopyRequest<'_>) -> Result<Selection, CopyError> {
    source::select(request)
}

impl Selection {
    /// sha256 (hex) over exactly what the copy writes: the destination,
    /// then each entry's path under it, type, permission bits, owner
    /// (after `--chown`), link target, and file bytes, in order.
    /// Modification times are left out, so touching a file keeps the
    /// cache; files that are not selected are never read.
    pub fn digest(&self) -> Result<String, CopyError> {
        let root = self.open_source_root()?;
        let mut hash = Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        hash.update(b"kiln-copy-v1\0");
        put_bytes(&mut hash, self.dest.as_bytes());
        hash.update([u8::from(self.single_file), u8::from(self.parents)]);
        for entry in &self.entries {
            put_bytes(&mut hash, entry.target.as_os_str().as_bytes());
            let meta = &entry.meta;
            let tag: u8 = match &entry.kind {
                EntryKind::Dir => b'd',
                EntryKind::File { .. } => b'f',
                EntryKind::Symlink { .. } => b'l',
                EntryKind::Fifo => b'p',
                EntryKind::Device { block: true, .. } => b'b',
                EntryKind::Device { block: false, .. } => b'c',
                EntryKind::Archive => b'a',
            };
            hash.update([tag]);
            match &entry.kind {
                EntryKind::Archive => {
                    // The unpacked tree follows from the archive's bytes and
                    // the overrides; the archive's own metadata does not count.
                    put_option(&mut hash, self.owner.map(|(u, g)| [u, g]));
                    put_option(&mut hash, self.mode.map(|m| [m, 0]));
                }
                _ => {
                    hash.update(meta.mode.to_le_bytes());
                    hash.update(meta.uid.to_le_bytes());
                    hash.update(meta.gid.to_le_bytes());
                }
            }
            match &entry.kind {
                EntryKind::Symlink { target } => put_bytes(&mut hash, target.as_bytes()),
                EntryKind::Device { rdev, .. } => hash.update(rdev.to_le_bytes()),
                EntryKind::File { .. } | EntryKind::Archive => {
                    let mut file = self.open_source(root.as_fd(), entry)?;
                    let len = hash_stream(&mut hash, &mut file, &mut buffer).map_err(|source| {
                        CopyError::Read { path: self.display_source(&entry.source), source }
                    })?;
                    hash.update(len.to_le_bytes());
                }
                EntryKind::Dir | EntryKind::Fifo => {}
            }
        }
        Ok(format!("{:x}", hash.finalize()))
    }

    /// Number of entries (files, directories, links, archives) to write.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the copy writes nothing (every match was skipped).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn open_source_root(&self) -> Result<std::os::fd::OwnedFd, CopyError> {
        open_root(&self.source_root).map_err(|errno| CopyError::OpenRoot {
            path: self.source_root.clone(),
            source: errno.into(),
        })
    }

    /// Opens a regular file of the selection for reading. Found by walking
    /// a directory, its last component must not be a symlink now either.
    fn open_source(&self, root: BorrowedFd<'_>, entry: &Entry) -> Result<File, CopyError> {
        let read_error = |source: io::Error| CopyError::Read {
            path: self.display_source(&entry.source),
            source,
        };
        let mut flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        if !entry.follow {
            flags |= OFlag::O_NOFOLLOW;
        }
        let fd = open_in(root, &entry.source, flags).map_err(|errno| read_error(errno.into()))?;
        let stat = fstat(&fd).map_err(|errno| read_error(errno.into()))?;
        if file_type(&stat) != SFlag::S_IFREG {
            return Err(read_error(io::Error::new(
                io::ErrorKind::InvalidData,
                "no longer a regular file",
            )));
        }
        Ok(File::from(fd))
    }

    fn display_source(&self, path: &Path) -> String {
        if self.from_context {
            path.display().to_string()
        } else {
            format!("/{}", path.display())
        }
    }

    fn instruction(&self) -> &'static str {
        if self.extract_archives {
            "ADD"
        } else {
            "COPY"
        }
    }
}

/// Writes `selection` into `rootfs` (a mounted root of the image being
/// built). `request` is the one the selection was made from; its owner
/// also owns directories made for the destination.
pub fn apply(
    selection: &Selection,
    request: &CopyRequest<'_>,
    rootfs: &Path,
) -> Result<(), CopyError> {
    let source_root = selection.open_source_root()?;
    let mut writer = Writer::new(rootfs, request.owner.unwrap_or((0, 0)))?;
    let dest = clean_in_root(&selection.dest);
    let wants_dir = selection.dest.ends_with('/')
        || selection.dest.ends_with("/.")
        || dest.as_os_str().is_empty();
    let is_dir = wants_dir || writer.is_dir(&dest);

    if selection.single_file && !selection.parents && !is_dir {
        if let Some(entry) = selection.entries.first() {
            write_entry(selection, &mut writer, source_root.as_fd(), entry, &dest)?;
        }
        return writer.finish();
    }
    if selection.sources > 1 && !is_dir && !selection.parents {
        return Err(CopyError::NeedDirectory { instruction: selection.instruction() });
    }
    let (_, created) = writer.ensure_dir(&dest)?;
    for entry in &selection.entries {
        let path = dest.join(&entry.target);
        if entry.kind == EntryKind::Dir && entry.target.as_os_str().is_empty() {
            // A directory source at the destination itself: a directory
            // that was there keeps its mode and owner (`COPY . /tmp/` must
            // not chmod /tmp); one made for the copy takes the source's.
            if created {
                writer.set_created_dir_meta(&path, &entry.meta)?;
            }
            continue;
        }
        write_entry(selection, &mut writer, source_root.as_fd(), entry, &path)?;
    }
    writer.finish()
}

fn write_entry(
    selection: &Selection,
    writer: &mut Writer,
    source_root: BorrowedFd<'_>,
    entry: &Entry,
    path: &Path,
) -> Result<(), CopyError> {
    let meta = Some(&entry.meta);
    match &entry.kind {
        EntryKind::Dir => writer.write(path, Content::Dir, meta),
        EntryKind::File { .. } => {
            let mut file = selection.open_source(source_root, entry)?;
            writer.write(path, Content::File(&mut file), meta)
        }
        EntryKind::Symlink { target } => writer.write(path, Content::Symlink(target), meta),
        EntryKind::Fifo => writer.write(path, Content::Fifo, meta),
        EntryKind::Device { block, rdev } => {
            writer.write(path, Content::Device { block: *block, rdev: *rdev }, meta)
        }
        EntryKind::Archive => {
            let archive = selection.display_source(&entry.source);
            let file = selection.open_source(source_root, entry)?;
            let (reader, _) = kiln_snapshot::decompress(file)
                .map_err(|source| CopyError::Extract { archive: archive.clone(), source })?;
            let options = archive::Extract {
                archive: &archive,
                into: path,
                owner: selection.owner,
                mode: selection.mode,
            };
            archive::extract(writer, reader, &options)
        }
    }
}

/// Feeds a hash with a length prefix, so that no two different sequences
/// of fields hash alike.
fn put_bytes(hash: &mut Sha256, bytes: &[u8]) {
    hash.update((bytes.len() as u64).to_le_bytes());
    hash.update(bytes);
}

fn put_option(hash: &mut Sha256, value: Option<[u32; 2]>) {
    match value {
        Some([a, b]) => {
            hash.update([1]);
            hash.update(a.to_le_bytes());
            hash.update(b.to_le_bytes());
        }
        None => hash.update([0]),
    }
}

/// Feeds a hash with everything `reader` gives, a buffer at a time so a
/// large file is never whole in memory; returns how many bytes it read.
fn hash_stream(hash: &mut Sha256, reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<u64> {
    let mut len = 0u64;
    loop {
        match reader.read(buffer) {
            Ok(0) => return Ok(len),
            Ok(n) => {
                hash.update(&buffer[..n]);
                len += n as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}
