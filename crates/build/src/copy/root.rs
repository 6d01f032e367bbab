//! Paths resolved inside a root directory as if it were `/`: the build
//! context, a stage's root, or the root being written.
//!
//! Every lookup goes through openat2(RESOLVE_IN_ROOT): the kernel follows
//! symlinks but clamps them (and `..`) at the root, so neither a link in the
//! context (`secret -> /etc/shadow`) nor one in an image (`/var/run ->
//! ../../../../tmp`) can make a copy read or write outside its root, even
//! if the tree changes while we work.

use std::ffi::OsString;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

/// Opens a root directory itself (`O_PATH`), the anchor of every lookup.
pub(crate) fn open_root(path: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
}

/// Opens `rel` below `root` with `flags`, resolving every symlink and `..`
/// as if `root` were `/`. An empty path opens the root.
pub(crate) fn open_in(root: BorrowedFd<'_>, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    loop {
        match openat2(root, rel, how) {
            // The kernel asks for a retry when a rename raced a `..` lookup.
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// The components of an absolute path inside a root, `.` dropped and `..`
/// applied lexically but never above the root (`/../x` is `/x`).
pub(crate) fn clean_in_root(path: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// A path inside a root as users read it: `/` and the relative path.
pub(crate) fn display_in_root(rel: &Path) -> String {
    format!("/{}", rel.display())
}

/// The file type bits of a stat result.
pub(crate) fn file_type(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

/// The permission bits (with setuid, setgid and sticky) of a stat result.
pub(crate) fn permissions(stat: &FileStat) -> u32 {
    stat.st_mode & 0o7777
}

/// Splits a relative path into its parent and last component; `None` for
/// the root itself.
pub(crate) fn split_last(rel: &Path) -> Option<(&Path, OsString)> {
    let name = rel.file_name()?.to_owned();
    Some((rel.parent().unwrap_or(Path::new("")), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_never_climbs_above_the_root() {
        assert_eq!(clean_in_root("/../../etc/./passwd"), PathBuf::from("etc/passwd"));
        assert_eq!(clean_in_root("/a/b/../c/"), PathBuf::from("a/c"));
        assert_eq!(clean_in_root("/"), PathBuf::new());
    }
}
