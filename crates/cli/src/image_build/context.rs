//! The build context: what `kiln build` sends as the body of `POST /build`.
//!
//! A directory is walked in name order and written as a tar while it is
//! read, never whole in memory. Entries are paths relative to the context,
//! with the modes, owners and modification times they have on disk;
//! symlinks go as symlinks (never followed), hard links as links to their
//! first name. `.dockerignore` rules are Docker's (see
//! `kiln_dockerfile::ignore`): `<Dockerfile>.dockerignore` beside the
//! Dockerfile wins over the context's `.dockerignore`; excluded directories
//! are not even walked unless an exception could re-include something
//! below them; the Dockerfile and `.dockerignore` are always sent.
//!
//! As the docker CLI does, a Dockerfile from outside the context (or from
//! stdin with `-f -`) is put in the tar as `.dockerfile.<random hex>` and
//! that name appended to the tar's `.dockerignore`, so that `COPY . .` does
//! not copy it. `PATH` `-` reads the context from stdin: a tar (plain or
//! compressed) is sent as it is; anything else is a Dockerfile with an
//! empty context.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_dockerfile::ignore::{dockerfile_ignore_path, select_ignore_file, IgnoreError, Rules};

/// Enough of stdin to tell an archive from a Dockerfile: a tar's magic is
/// at offset 257 of its first 512-byte header.
const ARCHIVE_HEAD: usize = 512;

/// Why the context cannot be prepared or sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ContextError {
    #[error("unable to prepare context: path {path:?} not found")]
    PathNotFound { path: String },
    #[error("unable to prepare context: context must be a directory: {path}")]
    NotADirectory { path: String },
    #[error("unable to prepare context: cannot locate specified Dockerfile: {path}")]
    NoDockerfile { path: String },
    #[error("unable to prepare context: cannot read {}: {reason}", .path.display())]
    Read { path: PathBuf, reason: String },
    #[error("invalid argument: can't use stdin for both build context and dockerfile")]
    StdinTwice,
    #[error("cannot read the build context from stdin: {reason}")]
    Stdin { reason: String },
    #[error("error reading {}: {error}", .path.display())]
    Ignore { path: PathBuf, error: IgnoreError },
    /// A file that could not be read while the tar was written.
    #[error("cannot send {} in the build context: {reason}", .path.display())]
    Send { path: PathBuf, reason: String },
    /// The tar could not be written to the connection.
    #[error("the build context could not be sent")]
    Upload {
        #[source]
        source: io::Error,
    },
}

impl From<io::Error> for ContextError {
    fn from(source: io::Error) -> ContextError {
        ContextError::Upload { source }
    }
}

impl ContextError {
    /// The upload stopped because the daemon stopped reading it (it
    /// answered early, or the request failed): the daemon's answer says why.
    pub(crate) fn is_upload_cut(&self) -> bool {
        matches!(self, ContextError::Upload { source } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// What to send, decided before anything is sent.
#[derive(Debug)]
pub(crate) struct ContextPlan {
    pub source: Source,
    /// The `dockerfile` parameter: the Dockerfile's path in the context;
    /// the daemon's default when `None`.
    pub dockerfile: Option<String>,
}

/// Where the context's bytes come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// A directory, walked and tarred; `extra` files at its top replace or
    /// join what is on disk.
    Directory { root: PathBuf, rules: Rules, extra: BTreeMap<String, ExtraFile> },
    /// Stdin holds an archive; `head` is what was read to tell.
    StdinArchive { head: Vec<u8> },
    /// Stdin held a Dockerfile: the context is that file alone.
    Dockerfile { text: Vec<u8> },
}

/// A file the tar carries that is not in the directory as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExtraFile {
    pub data: Vec<u8>,
    pub mode: u32,
    pub mtime: u64,
}

/// What [`prepare`] is given.
#[derive(Debug)]
pub(crate) struct ContextArgs<'a> {
    /// `PATH`, or `-` for stdin.
    pub path: &'a str,
    /// `-f`: a path from `cwd`, or `-` for stdin.
    pub file: Option<&'a str>,
    pub cwd: &'a Path,
    /// The name a Dockerfile from outside the context gets in it.
    pub generated_name: String,
}

/// Decide what to send: find the context and the Dockerfile, read the
/// ignore rules. Stdin is read here only to tell an archive from a
/// Dockerfile (and, for a Dockerfile, whole).
pub(crate) fn prepare(
    args: &ContextArgs<'_>,
    stdin: &mut dyn Read,
) -> Result<ContextPlan, ContextError> {
    if args.path == "-" {
        if args.file == Some("-") {
            return Err(ContextError::StdinTwice);
        }
        let head = read_head(stdin)?;
        if is_archive(&head) {
            let dockerfile = args.file.map(str::to_owned);
            return Ok(ContextPlan { source: Source::StdinArchive { head }, dockerfile });
        }
        let mut text = head;
        stdin
            .read_to_end(&mut text)
            .map_err(|err| ContextError::Stdin { reason: io_reason(&err) })?;
        return Ok(ContextPlan { source: Source::Dockerfile { text }, dockerfile: None });
    }
    let given = args.cwd.join(args.path);
    let meta = fs::metadata(&given).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => ContextError::PathNotFound { path: args.path.to_owned() },
        _ => ContextError::Read { path: given.clone(), reason: io_reason(&err) },
    })?;
    if !meta.is_dir() {
        return Err(ContextError::NotADirectory { path: args.path.to_owned() });
    }
    let root = fs::canonicalize(&given)
        .map_err(|err| ContextError::Read { path: given.clone(), reason: io_reason(&err) })?;
    let mut extra = BTreeMap::new();
    // The Dockerfile: its path in the context, or its text when it is not in it.
    let (inside, specific_ignore) = match args.file {
        Some("-") => {
            let mut text = Vec::new();
            stdin
                .read_to_end(&mut text)
                .map_err(|err| ContextError::Stdin { reason: io_reason(&err) })?;
            extra.insert(
                args.generated_name.clone(),
                ExtraFile { data: text, mode: 0o600, mtime: now() },
            );
            (None, None)
        }
        file => {
            let (path, shown) = match file {
                Some(file) => (args.cwd.join(file), file.to_owned()),
                None => default_dockerfile(&root),
            };
            let real = fs::canonicalize(&path).map_err(|err| match err.kind() {
                io::ErrorKind::NotFound => ContextError::NoDockerfile { path: shown.clone() },
                _ => ContextError::Read { path: path.clone(), reason: io_reason(&err) },
            })?;
            let inside = real
                .strip_prefix(&root)
                .ok()
                .filter(|rel| !rel.as_os_str().is_empty())
                .map(|rel| rel.to_string_lossy().into_owned());
            if inside.is_none() {
                let read_err = |err: io::Error| ContextError::Read {
                    path: path.clone(),
                    reason: io_reason(&err),
                };
                let data = fs::read(&real).map_err(read_err)?;
                let meta = fs::metadata(&real).map_err(read_err)?;
                let file = ExtraFile { data, mode: meta.mode() & 0o7777, mtime: mtime(&meta) };
                extra.insert(args.generated_name.clone(), file);
            }
            let ignore = PathBuf::from(dockerfile_ignore_path(&path.to_string_lossy()));
            (inside, Some(ignore))
        }
    };
    let context_ignore = root.join(".dockerignore");
    let specific_text = specific_ignore.as_deref().map(read_optional).transpose()?.flatten();
    let context_text = read_optional(&context_ignore)?;
    let chosen = select_ignore_file(specific_text.as_deref(), context_text.as_deref());
    let chosen_path = match chosen {
        Some((kiln_dockerfile::ignore::IgnoreSource::Dockerfile, _)) => {
            specific_ignore.clone().unwrap_or_default()
        }
        _ => context_ignore.clone(),
    };
    let rules = ignore_rules(chosen.map(|(_, text)| text), inside.as_deref())
        .map_err(|error| ContextError::Ignore { path: chosen_path, error })?;
    if extra.contains_key(&args.generated_name) {
        // docker-compat: the generated Dockerfile is ignored by the daemon's
        // own reading of .dockerignore.
        let (mut data, mode, mtime) = match fs::symlink_metadata(&context_ignore) {
            Ok(meta) if meta.is_file() => (
                context_text.clone().unwrap_or_default().into_bytes(),
                meta.mode() & 0o7777,
                mtime(&meta),
            ),
            _ => (Vec::new(), 0o600, now()),
        };
        data.extend_from_slice(format!("\n{}\n", args.generated_name).as_bytes());
        extra.insert(".dockerignore".to_owned(), ExtraFile { data, mode, mtime });
    }
    let dockerfile = Some(inside.unwrap_or_else(|| args.generated_name.clone()));
    Ok(ContextPlan { source: Source::Directory { root, rules, extra }, dockerfile })
}

/// `PATH/Dockerfile`, or `PATH/dockerfile` when only that exists, as the
/// docker CLI looks.
fn default_dockerfile(root: &Path) -> (PathBuf, String) {
    let upper = root.join("Dockerfile");
    if fs::symlink_metadata(&upper).is_err() {
        let lower = root.join("dockerfile");
        if fs::symlink_metadata(&lower).is_ok() {
            return (lower, "dockerfile".to_owned());
        }
    }
    (upper, "Dockerfile".to_owned())
}

/// The rules of `text`, with exceptions for the files every build sends:
/// `.dockerignore` and the Dockerfile (`inside`: its path in the context).
fn ignore_rules(text: Option<&str>, inside: Option<&str>) -> Result<Rules, IgnoreError> {
    let mut all = text.unwrap_or_default().to_owned();
    all.push_str("\n!.dockerignore\n");
    if let Some(dockerfile) = inside {
        all.push('!');
        for c in dockerfile.chars() {
            if matches!(c, '*' | '?' | '[' | '\\') {
                all.push('\\');
            }
            all.push(c);
        }
        all.push('\n');
    }
    Rules::parse(&all)
}

/// A text file's contents, or `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, ContextError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(ContextError::Read { path: path.to_owned(), reason: io_reason(&err) }),
    }
}

/// Up to [`ARCHIVE_HEAD`] bytes (fewer only at the end of the input).
fn read_head(stdin: &mut dyn Read) -> Result<Vec<u8>, ContextError> {
    let mut head = Vec::with_capacity(ARCHIVE_HEAD);
    stdin
        .take(ARCHIVE_HEAD as u64)
        .read_to_end(&mut head)
        .map_err(|err| ContextError::Stdin { reason: io_reason(&err) })?;
    Ok(head)
}

/// docker-compat: what the docker CLI takes for an archive on stdin: a
/// compressed stream (gzip, bzip2, xz, zstd) or a tar header.
pub(crate) fn is_archive(head: &[u8]) -> bool {
    const MAGIC: [&[u8]; 4] =
        [&[0x1f, 0x8b], b"BZh", &[0xfd, b'7', b'z', b'X', b'Z', 0], &[0x28, 0xb5, 0x2f, 0xfd]];
    if MAGIC.iter().any(|magic| head.starts_with(magic)) {
        return true;
    }
    if head.get(257..262) == Some(b"ustar") {
        return true;
    }
    // An old (v7) tar header has no magic; its checksum tells.
    head.len() >= ARCHIVE_HEAD && head[0] != 0 && tar_checksum_matches(&head[..ARCHIVE_HEAD])
}

fn tar_checksum_matches(header: &[u8]) -> bool {
    let field = String::from_utf8_lossy(&header[148..156]);
    let Ok(stored) = u32::from_str_radix(field.trim_matches(|c| c == '\0' || c == ' '), 8) else {
        return false;
    };
    let sum: u32 = header
        .iter()
        .enumerate()
        .map(|(i, b)| if (148..156).contains(&i) { u32::from(b' ') } else { u32::from(*b) })
        .sum();
    sum == stored
}

/// Write the context of `plan` to `out` as it is read. `stdin` is read for
/// a context from stdin.
pub(crate) fn write_context(
    plan: &ContextPlan,
    out: &mut dyn Write,
    stdin: &mut dyn Read,
) -> Result<(), ContextError> {
    match &plan.source {
        Source::StdinArchive { head } => {
            out.write_all(head)?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(ContextError::Stdin { reason: io_reason(&err) }),
                };
                out.write_all(&buf[..n])?;
            }
        }
        Source::Dockerfile { text } => {
            let fuse = Rc::new(FuseState::default());
            let mut tar = tar::Builder::new(Fuse { inner: out, state: Rc::clone(&fuse) });
            let file = ExtraFile { data: text.clone(), mode: 0o644, mtime: now() };
            let result = append_extra(&mut tar, "Dockerfile", &file)
                .and_then(|()| tar.finish())
                .map_err(ContextError::from);
            fuse.blow_if(result.is_err());
            result
        }
        Source::Directory { root, rules, extra } => {
            let fuse = Rc::new(FuseState::default());
            let tar = tar::Builder::new(Fuse { inner: out, state: Rc::clone(&fuse) });
            let mut walk =
                Walk { tar, rules, extra, fuse, links: HashMap::new(), waiting: Vec::new() };
            let result = walk.dir(root, Path::new("")).and_then(|()| Ok(walk.tar.finish()?));
            walk.fuse.blow_if(result.is_err());
            result
        }
    }
}

/// A directory walk writing a tar.
struct Walk<'a, W: Write> {
    tar: tar::Builder<Fuse<W>>,
    rules: &'a Rules,
    extra: &'a BTreeMap<String, ExtraFile>,
    fuse: Rc<FuseState>,
    /// First name of each file with several links, by device and inode.
    links: HashMap<(u64, u64), PathBuf>,
    /// Excluded directories walked for their exceptions: their own entries
    /// are written only once something below them is.
    waiting: Vec<(PathBuf, Metadata)>,
}

impl<W: Write> Walk<'_, W> {
    fn dir(&mut self, dir: &Path, rel: &Path) -> Result<(), ContextError> {
        let cannot =
            |err: io::Error| ContextError::Send { path: dir.to_owned(), reason: io_reason(&err) };
        let mut names: Vec<OsString> = fs::read_dir(dir)
            .map_err(cannot)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(cannot)?;
        let at_top = rel.as_os_str().is_empty();
        if at_top {
            names.extend(self.extra.keys().map(OsString::from));
        }
        names.sort();
        names.dedup();
        for name in names {
            let child = rel.join(&name);
            if let Some(file) = name.to_str().filter(|_| at_top).and_then(|n| self.extra.get(n)) {
                self.flush_waiting()?;
                let result = append_extra(&mut self.tar, &child, file);
                self.check(result, &child)?;
                continue;
            }
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&path).map_err(|err| ContextError::Send {
                path: path.clone(),
                reason: io_reason(&err),
            })?;
            let key = child.to_string_lossy();
            let excluded = self.rules.is_excluded(&key);
            if meta.is_dir() {
                if !excluded {
                    self.flush_waiting()?;
                    self.entry(&path, &child, &meta)?;
                } else if self.rules.can_skip_dir(&key) {
                    continue;
                } else {
                    self.waiting.push((child.clone(), meta));
                }
                self.dir(&path, &child)?;
                if self.waiting.last().is_some_and(|(waiting, _)| *waiting == child) {
                    self.waiting.pop();
                }
            } else if !excluded {
                self.flush_waiting()?;
                self.entry(&path, &child, &meta)?;
            }
        }
        Ok(())
    }

    /// Write the entries of the excluded directories above a file that is sent.
    fn flush_waiting(&mut self) -> Result<(), ContextError> {
        for (rel, meta) in std::mem::take(&mut self.waiting) {
            let mut header = header(&meta);
            header.set_entry_type(tar::EntryType::Directory);
            let result = self.tar.append_data(&mut header, &rel, io::empty());
            self.check(result, &rel)?;
        }
        Ok(())
    }

    /// One entry as it is on disk.
    fn entry(&mut self, path: &Path, rel: &Path, meta: &Metadata) -> Result<(), ContextError> {
        let mut header = header(meta);
        let kind = meta.file_type();
        let result = if kind.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            self.tar.append_data(&mut header, rel, io::empty())
        } else if kind.is_file() {
            let first = (meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
            if let Some(target) = first.and_then(|key| self.links.get(&key)).cloned() {
                header.set_entry_type(tar::EntryType::Link);
                self.tar.append_link(&mut header, rel, target)
            } else {
                if let Some(key) = first {
                    self.links.insert(key, rel.to_owned());
                }
                let file = File::open(path).map_err(|err| ContextError::Send {
                    path: path.to_owned(),
                    reason: io_reason(&err),
                })?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(meta.len());
                self.tar.append_data(&mut header, rel, Exact { inner: file, left: meta.len() })
            }
        } else if kind.is_symlink() {
            let target = fs::read_link(path).map_err(|err| ContextError::Send {
                path: path.to_owned(),
                reason: io_reason(&err),
            })?;
            header.set_entry_type(tar::EntryType::Symlink);
            self.tar.append_link(&mut header, rel, target)
        } else if kind.is_fifo() || kind.is_char_device() || kind.is_block_device() {
            header.set_entry_type(if kind.is_fifo() {
                tar::EntryType::Fifo
            } else if kind.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            let rdev = meta.rdev();
            let major = u32::try_from(nix::sys::stat::major(rdev)).unwrap_or(0);
            let minor = u32::try_from(nix::sys::stat::minor(rdev)).unwrap_or(0);
            header
                .set_device_major(major)
                .and_then(|()| header.set_device_minor(minor))
                .and_then(|()| self.tar.append_data(&mut header, rel, io::empty()))
        } else {
            // Sockets do not travel in archives.
            return Ok(());
        };
        self.check(result, path)
    }

    /// An append's error: the connection's when writing failed, else the
    /// file's.
    fn check(&self, result: io::Result<()>, path: &Path) -> Result<(), ContextError> {
        result.map_err(|err| match self.fuse.output_error.take() {
            Some(kind) => ContextError::Upload { source: io::Error::from(kind) },
            None => ContextError::Send { path: path.to_owned(), reason: io_reason(&err) },
        })
    }
}

fn append_extra<W: Write>(
    tar: &mut tar::Builder<W>,
    name: impl AsRef<Path>,
    file: &ExtraFile,
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(file.mode);
    header.set_mtime(file.mtime);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(file.data.len() as u64);
    tar.append_data(&mut header, name, &file.data[..])
}

/// A header with the mode, owners and modification time of `meta`.
fn header(meta: &Metadata) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_mode(meta.mode() & 0o7777);
    header.set_mtime(mtime(meta));
    header.set_uid(u64::from(meta.uid()));
    header.set_gid(u64::from(meta.gid()));
    header.set_size(0);
    header
}

fn mtime(meta: &Metadata) -> u64 {
    u64::try_from(meta.mtime()).unwrap_or(0)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A file's bytes as many as its header says: one that shrank while it was
/// sent is an error, not a short entry that would shift the whole tar.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = usize::try_from(self.left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was sent",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// What a [`Fuse`] knows: whether writing failed, and whether it is blown.
#[derive(Debug, Default)]
struct FuseState {
    output_error: Cell<Option<io::ErrorKind>>,
    blown: Cell<bool>,
}

impl FuseState {
    fn blow_if(&self, failed: bool) {
        if failed {
            self.blown.set(true);
        }
    }
}

/// The tar's output. Once blown (the walk failed), it takes no more bytes,
/// so the end-of-archive blocks the tar builder writes when it is dropped
/// never make a cut-off context look whole. It also records a write error,
/// to tell a broken connection from a file that could not be read.
struct Fuse<W> {
    inner: W,
    state: Rc<FuseState>,
}

impl<W: Write> Write for Fuse<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.state.blown.get() {
            return Err(io::Error::other("the build context failed"));
        }
        self.inner.write(buf).inspect_err(|err| self.state.output_error.set(Some(err.kind())))
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.state.blown.get() {
            return Err(io::Error::other("the build context failed"));
        }
        self.inner.flush().inspect_err(|err| self.state.output_error.set(Some(err.kind())))
    }
}

/// An I/O error in a few lower-case words.
fn io_reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::time::Duration;

    use super::*;

    const NAME: &str = ".dockerfile.0123456789abcdef0123";

    /// A context directory (`ctx/`) inside a temp dir that also holds
    /// files outside it.
    struct Tree {
        dir: tempfile::TempDir,
    }

    impl Tree {
        fn new() -> Tree {
            let tree = Tree { dir: tempfile::tempdir().expect("temp dir") };
            fs::create_dir(tree.ctx()).expect("ctx");
            tree
        }

        fn ctx(&self) -> PathBuf {
            self.dir.path().join("ctx")
        }

        fn file(&self, rel: &str, text: &str) -> &Tree {
            let path = self.dir.path().join(rel);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, text).expect("write");
            self
        }

        fn plan(&self, path: &str, file: Option<&str>) -> Result<ContextPlan, ContextError> {
            let args =
                ContextArgs { path, file, cwd: self.dir.path(), generated_name: NAME.to_owned() };
            prepare(&args, &mut io::empty())
        }

        /// The tar of `ctx` with `-f file`, and the `dockerfile` parameter.
        fn send(&self, file: Option<&str>) -> (Vec<Entry>, Option<String>) {
            let plan = self.plan("ctx", file).expect("plan");
            let mut out = Vec::new();
            write_context(&plan, &mut out, &mut io::empty()).expect("write");
            (entries(&out), plan.dockerfile)
        }
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Entry {
        path: String,
        kind: tar::EntryType,
        mode: u32,
        mtime: u64,
        link: Option<String>,
        data: String,
    }

    fn entries(tar_bytes: &[u8]) -> Vec<Entry> {
        let mut archive = tar::Archive::new(tar_bytes);
        let mut out = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let mut data = String::new();
            entry.read_to_string(&mut data).expect("data");
            let header = entry.header();
            out.push(Entry {
                path: entry.path().expect("path").to_string_lossy().into_owned(),
                kind: header.entry_type(),
                mode: header.mode().expect("mode"),
                mtime: header.mtime().expect("mtime"),
                link: entry.link_name().expect("link").map(|l| l.to_string_lossy().into_owned()),
                data,
            });
        }
        out
    }

    fn paths(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn entries_are_sorted_relative_and_keep_modes_and_times() {
        let tree = Tree::new();
        tree.file("ctx/Dockerfile", "FROM scratch\n")
            .file("ctx/b/z.txt", "z")
            .file("ctx/b/a.txt", "a")
            .file("ctx/a.sh", "#!/bin/sh\n")
            .file("ctx/B", "upper");
        let script = tree.ctx().join("a.sh");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o750)).expect("chmod");
        let when = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        File::options().write(true).open(&script).expect("open").set_modified(when).expect("mtime");
        let (entries, dockerfile) = tree.send(None);
        assert_eq!(paths(&entries), ["B", "Dockerfile", "a.sh", "b", "b/a.txt", "b/z.txt"]);
        assert_eq!(dockerfile.as_deref(), Some("Dockerfile"));
        let sh = &entries[2];
        assert_eq!((sh.mode, sh.mtime, sh.data.as_str()), (0o750, 1_000_000_000, "#!/bin/sh\n"));
        assert_eq!(entries[3].kind, tar::EntryType::Directory);
    }

    #[test]
    fn dockerignore_excludes_and_exceptions_bring_files_back() {
        let tree = Tree::new();
        tree.file("ctx/Dockerfile", "FROM scratch\n")
            .file("ctx/.dockerignore", "# build junk\nlogs\n!logs/keep.log\nnode_modules\n*.txt\n")
            .file("ctx/a.txt", "a")
            .file("ctx/logs/1.log", "1")
            .file("ctx/logs/keep.log", "keep")
            .file("ctx/node_modules/x/y.js", "y")
            .file("ctx/src/main.rs", "fn main() {}")
            .file("ctx/src/notes.txt", "in a subdirectory: not matched by *.txt");
        let (entries, _) = tree.send(None);
        assert_eq!(
            paths(&entries),
            [
                ".dockerignore",
                "Dockerfile",
                "logs",
                "logs/keep.log",
                "src",
                "src/main.rs",
                "src/notes.txt"
            ]
        );
        assert_eq!(
            entries[2].kind,
            tar::EntryType::Directory,
            "an excluded dir that holds an exception"
        );
    }

    #[test]
    fn the_dockerfile_and_dockerignore_are_sent_even_when_excluded() {
        let tree = Tree::new();
        tree.file("ctx/.dockerignore", "*\n").file("ctx/docker/app.Dockerfile", "FROM scratch\n");
        tree.file("ctx/docker/other", "x").file("ctx/data", "x");
        let (entries, dockerfile) = tree.send(Some("ctx/docker/app.Dockerfile"));
        assert_eq!(paths(&entries), [".dockerignore", "docker", "docker/app.Dockerfile"]);
        assert_eq!(dockerfile.as_deref(), Some("docker/app.Dockerfile"));
    }

    #[test]
    fn a_dockerfile_specific_ignore_file_wins_over_the_contexts() {
        let tree = Tree::new();
        tree.file("ctx/build/app.Dockerfile", "FROM scratch\n")
            .file("ctx/build/app.Dockerfile.dockerignore", "secret.env\n")
            .file("ctx/.dockerignore", "*.md\n")
            .file("ctx/README.md", "readme")
            .file("ctx/secret.env", "TOKEN=x");
        let (entries, _) = tree.send(Some("ctx/build/app.Dockerfile"));
        let sent = paths(&entries);
        assert!(sent.contains(&"README.md"), "the files are never merged: {sent:?}");
        assert!(!sent.contains(&"secret.env"), "{sent:?}");
        // Without the specific file, the context's applies.
        fs::remove_file(tree.ctx().join("build/app.Dockerfile.dockerignore")).expect("rm");
        let (entries, _) = tree.send(Some("ctx/build/app.Dockerfile"));
        let sent = paths(&entries);
        assert!(!sent.contains(&"README.md") && sent.contains(&"secret.env"), "{sent:?}");
    }

    #[test]
    fn a_dockerfile_outside_the_context_travels_under_a_generated_name() {
        let tree = Tree::new();
        tree.file("ctx/app.py", "print(1)").file("ctx/.dockerignore", "*.pyc");
        tree.file("elsewhere/Dockerfile", "FROM scratch\nCOPY . /app\n");
        let (entries, dockerfile) = tree.send(Some("elsewhere/Dockerfile"));
        assert_eq!(dockerfile.as_deref(), Some(NAME));
        assert_eq!(paths(&entries), [NAME, ".dockerignore", "app.py"]);
        assert_eq!(entries[0].data, "FROM scratch\nCOPY . /app\n");
        assert_eq!(entries[1].data, format!("*.pyc\n{NAME}\n"));
        // With no .dockerignore, one is made to hide it.
        fs::remove_file(tree.ctx().join(".dockerignore")).expect("rm");
        let (entries, _) = tree.send(Some("elsewhere/Dockerfile"));
        assert_eq!(entries[1].path, ".dockerignore");
        assert_eq!(entries[1].data, format!("\n{NAME}\n"));
    }

    #[test]
    fn a_dockerfile_from_stdin_joins_a_directory_context() {
        let tree = Tree::new();
        tree.file("ctx/app.py", "print(1)");
        let args = ContextArgs {
            path: "ctx",
            file: Some("-"),
            cwd: tree.dir.path(),
            generated_name: NAME.to_owned(),
        };
        let plan = prepare(&args, &mut &b"FROM scratch\n"[..]).expect("plan");
        assert_eq!(plan.dockerfile.as_deref(), Some(NAME));
        let mut out = Vec::new();
        write_context(&plan, &mut out, &mut io::empty()).expect("write");
        let entries = entries(&out);
        assert_eq!(paths(&entries), [NAME, ".dockerignore", "app.py"]);
        assert_eq!(entries[0].data, "FROM scratch\n");
    }

    #[test]
    fn symlinks_are_sent_as_links_and_never_followed() {
        let tree = Tree::new();
        tree.file("ctx/Dockerfile", "FROM scratch\n").file("outside/secret", "s3cr3t");
        std::os::unix::fs::symlink("../outside/secret", tree.ctx().join("file-link")).expect("ln");
        std::os::unix::fs::symlink("../outside", tree.ctx().join("dir-link")).expect("ln");
        fs::hard_link(tree.ctx().join("Dockerfile"), tree.ctx().join("hard")).expect("hard link");
        let (entries, _) = tree.send(None);
        assert_eq!(paths(&entries), ["Dockerfile", "dir-link", "file-link", "hard"]);
        assert_eq!(entries[1].kind, tar::EntryType::Symlink);
        assert_eq!(entries[1].link.as_deref(), Some("../outside"));
        assert_eq!(entries[2].link.as_deref(), Some("../outside/secret"));
        assert!(entries.iter().all(|e| !e.data.contains("s3cr3t")));
        assert_eq!(entries[3].kind, tar::EntryType::Link);
        assert_eq!(entries[3].link.as_deref(), Some("Dockerfile"));
    }

    #[test]
    fn missing_paths_are_one_clear_line() {
        let tree = Tree::new();
        let err = tree.plan("nope", None).expect_err("missing");
        assert_eq!(err.to_string(), "unable to prepare context: path \"nope\" not found");
        let err = tree.plan("ctx", None).expect_err("no Dockerfile");
        assert_eq!(
            err.to_string(),
            "unable to prepare context: cannot locate specified Dockerfile: Dockerfile"
        );
        let err = tree.plan("ctx", Some("ctx/Nope.Dockerfile")).expect_err("no -f file");
        assert_eq!(
            err.to_string(),
            "unable to prepare context: cannot locate specified Dockerfile: ctx/Nope.Dockerfile"
        );
        tree.file("ctx/Dockerfile", "FROM scratch\n");
        let err = tree.plan("ctx/Dockerfile", None).expect_err("a file");
        assert!(err.to_string().contains("context must be a directory"), "{err}");
        tree.file("ctx/.dockerignore", "!\n");
        let err = tree.plan("ctx", None).expect_err("bad ignore");
        assert!(err.to_string().starts_with("error reading "), "{err}");
        assert!(
            err.to_string().ends_with(".dockerignore: line 1: illegal exclusion pattern: \"!\""),
            "{err}"
        );
    }

    #[test]
    fn a_lowercase_dockerfile_is_found_when_there_is_no_other() {
        let tree = Tree::new();
        tree.file("ctx/dockerfile", "FROM scratch\n");
        let (_, dockerfile) = tree.send(None);
        assert_eq!(dockerfile.as_deref(), Some("dockerfile"));
    }

    #[test]
    fn stdin_is_an_archive_or_a_dockerfile() {
        let tree = Tree::new();
        let mut tar_bytes = Vec::new();
        {
            let mut builder = tar::Builder::new(&mut tar_bytes);
            let file = ExtraFile { data: b"FROM scratch\n".to_vec(), mode: 0o644, mtime: 0 };
            append_extra(&mut builder, "Dockerfile", &file).expect("append");
            builder.finish().expect("finish");
        }
        assert!(is_archive(&tar_bytes[..512]));
        assert!(is_archive(&[0x1f, 0x8b, 8, 0]));
        assert!(!is_archive(b"FROM busybox\nRUN echo hi\n"));
        assert!(!is_archive(b""));

        let args = |file| ContextArgs {
            path: "-",
            file,
            cwd: tree.dir.path(),
            generated_name: NAME.to_owned(),
        };
        let mut stdin = &tar_bytes[..];
        let plan = prepare(&args(Some("sub/Dockerfile")), &mut stdin).expect("archive");
        assert_eq!(plan.dockerfile.as_deref(), Some("sub/Dockerfile"), "a path inside the archive");
        let mut out = Vec::new();
        write_context(&plan, &mut out, &mut stdin).expect("write");
        assert_eq!(out, tar_bytes, "an archive on stdin is sent as it is");

        let mut stdin = &b"FROM busybox\n"[..];
        let plan = prepare(&args(None), &mut stdin).expect("dockerfile");
        assert_eq!(plan.dockerfile, None);
        let mut out = Vec::new();
        write_context(&plan, &mut out, &mut stdin).expect("write");
        let entries = entries(&out);
        assert_eq!(paths(&entries), ["Dockerfile"]);
        assert_eq!(entries[0].data, "FROM busybox\n");

        let err = prepare(&args(Some("-")), &mut io::empty()).expect_err("twice");
        assert!(matches!(err, ContextError::StdinTwice), "{err}");
    }

    #[test]
    fn a_file_that_cannot_be_sent_leaves_no_end_of_archive_behind() {
        let tree = Tree::new();
        tree.file("ctx/Dockerfile", "FROM scratch\n");
        let meta = fs::metadata(tree.ctx().join("Dockerfile")).expect("meta");
        let rules = Rules::default();
        let extra = BTreeMap::new();
        let mut out = Vec::new();
        {
            let fuse = Rc::new(FuseState::default());
            let tar = tar::Builder::new(Fuse { inner: &mut out, state: Rc::clone(&fuse) });
            let mut walk = Walk {
                tar,
                rules: &rules,
                extra: &extra,
                fuse,
                links: HashMap::new(),
                waiting: vec![],
            };
            let gone = tree.ctx().join("vanished");
            let err = walk.entry(&gone, Path::new("vanished"), &meta).expect_err("gone");
            assert!(
                err.to_string()
                    .ends_with("vanished in the build context: no such file or directory"),
                "{err}"
            );
            walk.fuse.blow_if(true);
        }
        assert!(out.is_empty(), "dropping the builder wrote {} bytes", out.len());

        let mut short = Exact { inner: &b"12345"[..], left: 10 };
        let err = io::copy(&mut short, &mut io::sink()).expect_err("shrank");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_broken_upload_is_told_from_a_file_that_cannot_be_read() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "the daemon stopped reading"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let tree = Tree::new();
        tree.file("ctx/Dockerfile", "FROM scratch\n");
        let plan = tree.plan("ctx", None).expect("plan");
        let err = write_context(&plan, &mut Closed, &mut io::empty()).expect_err("closed");
        assert!(err.is_upload_cut(), "{err:?}");
    }
}
