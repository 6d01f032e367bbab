//! Choosing what a COPY or ADD reads: cleaning the source paths, expanding
//! wildcards, applying `--exclude`, and walking directories, all inside the
//! source root.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use kiln_dockerfile::ignore::Rules;
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};

use super::pattern::{has_wildcard, Pattern};
use super::root::{file_type, open_in, open_root, permissions};
use super::{CopyError, CopyRequest, Entry, EntryKind, Meta, Selection};

/// One source argument, cleaned.
#[derive(Debug, PartialEq, Eq)]
struct SourcePath {
    /// The components below the root; empty for the root itself.
    components: Vec<String>,
    /// With `--parents`, how many leading components a `/./` in the path
    /// cuts from what is kept under the destination.
    pivot: usize,
}

impl SourcePath {
    /// Cleans `raw` like Go's `path.Clean` below the root. In the build
    /// context a `..` that climbs out is refused; in a stage or image root
    /// it stops at `/`, as it would inside a container.
    fn parse(raw: &str, from_context: bool) -> Result<SourcePath, CopyError> {
        let mut components: Vec<String> = Vec::new();
        let mut pivot = 0;
        let mut seen_name = false;
        for part in raw.split('/') {
            match part {
                "" => {}
                "." => {
                    // `./a/./b`: the leading `./` is no pivot, a later one is.
                    if seen_name {
                        pivot = components.len();
                    }
                }
                ".." => {
                    if components.pop().is_none() && from_context {
                        return Err(CopyError::OutsideContext { path: raw.to_owned() });
                    }
                    pivot = pivot.min(components.len());
                }
                name => {
                    seen_name = true;
                    components.push(name.to_owned());
                }
            }
        }
        Ok(SourcePath { components, pivot })
    }
}

/// Builds a [`Selection`] for `request`.
pub(super) fn select(request: &CopyRequest<'_>) -> Result<Selection, CopyError> {
    if request.sources.is_empty() {
        return Err(CopyError::NoSources);
    }
    let root = open_root(request.source_root).map_err(|errno| CopyError::OpenRoot {
        path: request.source_root.to_owned(),
        source: errno.into(),
    })?;
    let rules = Rules::from_patterns(&request.excludes).map_err(|source| {
        let line = match &source {
            kiln_dockerfile::ignore::IgnoreError::EmptyExclusion { line }
            | kiln_dockerfile::ignore::IgnoreError::BadPattern { line, .. } => *line,
        };
        let pattern = request.excludes.get(line.saturating_sub(1)).cloned().unwrap_or_default();
        CopyError::BadExclude { pattern, source }
    })?;
    let mut walker = Walker {
        root: root.as_fd(),
        request,
        rules,
        is_root: nix::unistd::geteuid().is_root(),
        entries: Vec::new(),
        parent_dirs: HashSet::new(),
    };
    let mut matched = 0;
    let mut single_file = false;
    for raw in &request.sources {
        let source = SourcePath::parse(raw, request.from_context)?;
        let mut found = Vec::new();
        expand(root.as_fd(), &source.components, 0, &mut PathBuf::new(), &mut found)?;
        let mut kept = 0;
        for (path, fd) in found {
            let stat = fstat(&fd).map_err(|errno| walker.read_error(&path, errno))?;
            let excluded = if file_type(&stat) == SFlag::S_IFDIR {
                walker.rules.can_skip_dir(&path.to_string_lossy())
            } else {
                walker.rules.is_excluded(&path.to_string_lossy())
            };
            if excluded {
                continue;
            }
            kept += 1;
            single_file = walker.add_source(&path, fd, &stat, source.pivot)?;
        }
        if kept == 0 {
            return Err(walker.not_found(raw));
        }
        matched += kept;
    }
    Ok(Selection {
        source_root: request.source_root.to_owned(),
        from_context: request.from_context,
        dest: request.dest.clone(),
        owner: request.owner,
        mode: request.mode,
        parents: request.parents,
        sources: matched,
        single_file: matched == 1 && single_file,
        extract_archives: request.extract_archives,
        entries: walker.entries,
    })
}

/// The paths (with an `O_PATH` descriptor each) that `components` names,
/// wildcards expanded in name order; nothing when no file matches.
fn expand(
    root: BorrowedFd<'_>,
    components: &[String],
    index: usize,
    prefix: &mut PathBuf,
    found: &mut Vec<(PathBuf, OwnedFd)>,
) -> Result<(), CopyError> {
    let Some(component) = components.get(index) else {
        match open_in(root, prefix, OFlag::O_PATH) {
            Ok(fd) => found.push((prefix.clone(), fd)),
            Err(Errno::ENOENT | Errno::ENOTDIR) => {}
            Err(errno) => {
                return Err(CopyError::Read {
                    path: prefix.display().to_string(),
                    source: errno.into(),
                })
            }
        }
        return Ok(());
    };
    if !has_wildcard(component) {
        prefix.push(component);
        let result = expand(root, components, index + 1, prefix, found);
        prefix.pop();
        return result;
    }
    let pattern = Pattern::new(component)
        .ok_or_else(|| CopyError::BadPattern { pattern: components.join("/") })?;
    let dir = match open_in(root, prefix, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(()),
        Err(errno) => {
            return Err(CopyError::Read {
                path: prefix.display().to_string(),
                source: errno.into(),
            })
        }
    };
    let (names, _) = list_dir(dir).map_err(|errno| CopyError::Read {
        path: prefix.display().to_string(),
        source: errno.into(),
    })?;
    for name in names {
        if !pattern.matches(&name.to_string_lossy()) {
            continue;
        }
        prefix.push(&name);
        let result = expand(root, components, index + 1, prefix, found);
        prefix.pop();
        result?;
    }
    Ok(())
}

/// The names in a directory, sorted bytewise, and the directory itself for
/// `*at` calls on them.
fn list_dir(fd: OwnedFd) -> nix::Result<(Vec<OsString>, Dir)> {
    let mut dir = Dir::from_fd(fd)?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name != "." && name != ".." {
            names.push(name.to_owned());
        }
    }
    names.sort_unstable();
    Ok((names, dir))
}

/// Collects the entries of every matched source.
struct Walker<'r, 'a> {
    root: BorrowedFd<'r>,
    request: &'r CopyRequest<'a>,
    rules: Rules,
    is_root: bool,
    entries: Vec<Entry>,
    /// `--parents` directories already added, so shared ones come once.
    parent_dirs: HashSet<PathBuf>,
}

impl Walker<'_, '_> {
    /// Adds one matched source (`path`, opened as `fd`) and what it holds.
    /// True when it is a single non-directory that may land at the
    /// destination path itself.
    fn add_source(
        &mut self,
        path: &Path,
        fd: OwnedFd,
        stat: &FileStat,
        pivot: usize,
    ) -> Result<bool, CopyError> {
        let kept: PathBuf = if self.request.parents {
            path.components().skip(pivot).collect()
        } else {
            PathBuf::new()
        };
        if self.request.parents {
            self.add_parent_dirs(path, pivot, &kept)?;
        }
        let kind = file_type(stat);
        if kind == SFlag::S_IFDIR {
            self.push(path, true, kept.clone(), EntryKind::Dir, stat);
            drop(fd);
            let dir = open_in(self.root, path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(|errno| self.read_error(path, errno))?;
            self.walk(dir, path, &kept)?;
            return Ok(false);
        }
        let target = if self.request.parents {
            kept
        } else {
            PathBuf::from(path.file_name().unwrap_or_default())
        };
        if kind == SFlag::S_IFREG && self.request.extract_archives && self.is_archive(path)? {
            let into = target.parent().map(Path::to_owned).unwrap_or_default();
            self.push(path, true, into, EntryKind::Archive, stat);
            return Ok(false);
        }
        let Some(entry_kind) = self.leaf_kind(kind, stat, path, None)? else {
            return Ok(false);
        };
        self.push(path, true, target, entry_kind, stat);
        Ok(true)
    }

    /// With `--parents`, the directories between the pivot and the source,
    /// with their own metadata, as the source tree has them.
    fn add_parent_dirs(&mut self, path: &Path, pivot: usize, kept: &Path) -> Result<(), CopyError> {
        let mut source: PathBuf = path.components().take(pivot).collect();
        let mut target = PathBuf::new();
        let depth = kept.components().count();
        for component in kept.components().take(depth.saturating_sub(1)) {
            source.push(component);
            target.push(component);
            if !self.parent_dirs.insert(target.clone()) {
                continue;
            }
            let stat = open_in(self.root, &source, OFlag::O_PATH)
                .and_then(|fd| fstat(&fd))
                .map_err(|errno| self.read_error(&source, errno))?;
            self.push(&source, true, target.clone(), EntryKind::Dir, &stat);
        }
        Ok(())
    }

    /// Adds what directory `dir` (source path `source`, landing at
    /// `target`) holds, in name order, never following its symlinks. True
    /// when anything was added.
    fn walk(&mut self, dir: OwnedFd, source: &Path, target: &Path) -> Result<bool, CopyError> {
        let (names, dir) = list_dir(dir).map_err(|errno| self.read_error(source, errno))?;
        let mut added = false;
        for name in names {
            let child_source = source.join(&name);
            let child_target = target.join(&name);
            let stat = match fstatat(dir.as_fd(), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                // Removed since it was listed: it is simply not there.
                Err(Errno::ENOENT) => continue,
                Err(errno) => return Err(self.read_error(&child_source, errno)),
            };
            let relative = child_source.to_string_lossy();
            let kind = file_type(&stat);
            if kind == SFlag::S_IFDIR {
                if self.rules.can_skip_dir(&relative) {
                    continue;
                }
                // An excluded directory is still walked when an exception
                // might re-include something below it; it is kept only if
                // something was.
                let excluded = self.rules.is_excluded(&relative);
                let mark = self.entries.len();
                self.push(&child_source, false, child_target.clone(), EntryKind::Dir, &stat);
                let sub = match nix::fcntl::openat(
                    dir.as_fd(),
                    name.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) => {
                        self.entries.truncate(mark);
                        continue;
                    }
                    Err(errno) => return Err(self.read_error(&child_source, errno)),
                };
                let below = self.walk(sub, &child_source, &child_target)?;
                if excluded && !below {
                    self.entries.truncate(mark);
                } else {
                    added = true;
                }
                continue;
            }
            if self.rules.is_excluded(&relative) {
                continue;
            }
            let link = (kind == SFlag::S_IFLNK).then_some((dir.as_fd(), name.as_os_str()));
            let Some(entry_kind) = self.leaf_kind(kind, &stat, &child_source, link)? else {
                continue;
            };
            self.push(&child_source, false, child_target, entry_kind, &stat);
            added = true;
        }
        Ok(added)
    }

    /// The entry for a non-directory; `None` for what is skipped (sockets,
    /// devices from an image when not root). `link` is where to read a
    /// symlink's target.
    fn leaf_kind(
        &self,
        kind: SFlag,
        stat: &FileStat,
        path: &Path,
        link: Option<(BorrowedFd<'_>, &OsStr)>,
    ) -> Result<Option<EntryKind>, CopyError> {
        let entry = match kind {
            SFlag::S_IFREG => EntryKind::File { size: u64::try_from(stat.st_size).unwrap_or(0) },
            SFlag::S_IFLNK => {
                let Some((dir, name)) = link else {
                    return Err(self.read_error(path, Errno::ELOOP));
                };
                let target = readlinkat(dir, name).map_err(|errno| self.read_error(path, errno))?;
                EntryKind::Symlink { target }
            }
            SFlag::S_IFIFO => EntryKind::Fifo,
            SFlag::S_IFCHR | SFlag::S_IFBLK => {
                if self.request.from_context {
                    return Err(CopyError::DeviceInContext { path: self.display(path) });
                }
                if !self.is_root {
                    tracing::debug!(path = %self.display(path), "device skipped: not root");
                    return Ok(None);
                }
                EntryKind::Device { block: kind == SFlag::S_IFBLK, rdev: stat.st_rdev }
            }
            // Sockets are endpoints of a running process, not content.
            _ => return Ok(None),
        };
        Ok(Some(entry))
    }

    fn push(
        &mut self,
        source: &Path,
        follow: bool,
        target: PathBuf,
        kind: EntryKind,
        stat: &FileStat,
    ) {
        let (uid, gid) = match self.request.owner {
            Some(owner) => owner,
            // The context's owners are the client's users, meaningless in
            // the image; a stage's or image's owners are the image's own.
            None if self.request.from_context => (0, 0),
            None => (stat.st_uid, stat.st_gid),
        };
        let mode = match (&kind, self.request.mode) {
            (EntryKind::Symlink { .. }, _) => 0o777,
            (_, Some(mode)) => mode & 0o7777,
            (_, None) => permissions(stat),
        };
        let mtime = (stat.st_mtime, stat.st_mtime_nsec);
        self.entries.push(Entry {
            source: source.to_owned(),
            follow,
            target,
            kind,
            meta: Meta { mode, uid, gid, mtime },
        });
    }

    /// Whether the regular file at `path` is a tar archive, plain or
    /// compressed: its first block after decompression is a tar header.
    fn is_archive(&self, path: &Path) -> Result<bool, CopyError> {
        let fd = open_in(self.root, path, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
            .map_err(|errno| self.read_error(path, errno))?;
        let Ok((mut reader, _)) = kiln_snapshot::decompress(std::fs::File::from(fd)) else {
            return Ok(false);
        };
        let mut block = [0u8; 512];
        let mut len = 0;
        while len < block.len() {
            match reader.read(&mut block[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                // Not decodable as what its magic said: not an archive.
                Err(_) => return Ok(false),
            }
        }
        Ok(len == block.len() && super::archive::is_tar_header(&block))
    }

    /// A source path as the user would write it in this root.
    fn display(&self, path: &Path) -> String {
        if self.request.from_context {
            path.display().to_string()
        } else {
            format!("/{}", path.display())
        }
    }

    fn read_error(&self, path: &Path, errno: Errno) -> CopyError {
        CopyError::Read { path: self.display(path), source: errno.into() }
    }

    fn not_found(&self, raw: &str) -> CopyError {
        if self.request.from_context {
            CopyError::NotFoundInContext { path: raw.to_owned() }
        } else {
            let path = if raw.starts_with('/') { raw.to_owned() } else { format!("/{raw}") };
            CopyError::NotFoundInStage { path }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> SourcePath {
        SourcePath::parse(raw, true).expect("clean path")
    }

    #[test]
    fn sources_are_cleaned_below_the_root() {
        assert_eq!(parse("./a//b/../c/").components, ["a", "c"]);
        assert_eq!(parse("/a/b").components, ["a", "b"]);
        assert!(parse(".").components.is_empty());
        assert!(parse("a/..").components.is_empty());
    }

    #[test]
    fn climbing_out_of_the_context_is_refused_but_clamped_in_a_stage() {
        let err = SourcePath::parse("../outside", true).expect_err("refused");
        assert_eq!(err.to_string(), "forbidden path outside the build context: ../outside");
        assert!(SourcePath::parse("a/../../b", true).is_err());
        let stage = SourcePath::parse("/../etc/passwd", false).expect("clamped");
        assert_eq!(stage.components, ["etc", "passwd"]);
    }

    #[test]
    fn a_dot_after_a_name_is_the_parents_pivot() {
        assert_eq!(parse("./x/./y/z").pivot, 1);
        assert_eq!(parse("./x/y/z").pivot, 0);
        assert_eq!(parse("x/y/./z").pivot, 2);
    }
}
