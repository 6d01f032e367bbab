//! `docker cp`: a path of a container's filesystem as a tar archive, and a
//! tar archive extracted into a directory of it.
//!
//! Every path is resolved inside the container's root with
//! openat2(RESOLVE_IN_ROOT), and every file is then read or made relative
//! to an open directory, never following a symlink by name: a container
//! cannot turn a copy into a read or write of the host, even by swapping
//! links while it runs.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

/// What `X-Docker-Container-Path-Stat` says of a path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode`: permission bits plus type bits (dir 1<<31,
    /// symlink 1<<27, …), as the docker CLI decodes it.
    pub mode: u32,
    /// RFC 3339.
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("Could not find the file {path} in container {container}")]
    NotFound { path: String, container: String },
    #[error("extraction point is not a directory: {path}")]
    NotADirectory { path: String },
    #[error("invalid path in archive: {path}")]
    BadEntry { path: String },
    #[error("cannot copy {path}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &str) -> impl FnOnce(Errno) -> ArchiveError + '_ {
    move |e| ArchiveError::Io { path: path.to_owned(), source: e.into() }
}

/// Open `path` inside the directory `root` as if it were `/`, with `flags`.
fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    loop {
        match openat2(root, rel, how) {
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            other => return other,
        }
    }
}

fn open_root(root: &Path) -> Result<OwnedFd, ArchiveError> {
    nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(io_err("/"))
}

/// The parent directory and last name of `path` (`/` has no parent: `.`).
fn split(path: &str) -> (PathBuf, OsString) {
    let p = Path::new(path);
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => (parent.to_owned(), name.to_owned()),
        _ => (PathBuf::from("/"), OsString::from(".")),
    }
}

fn go_mode(st: &nix::sys::stat::FileStat) -> u32 {
    let perm = st.st_mode & 0o777;
    let kind = st.st_mode & libc::S_IFMT;
    let mut mode = perm;
    match kind {
        libc::S_IFDIR => mode |= 1 << 31,
        libc::S_IFLNK => mode |= 1 << 27,
        libc::S_IFIFO => mode |= 1 << 25,
        libc::S_IFSOCK => mode |= 1 << 24,
        libc::S_IFCHR => mode |= (1 << 26) | (1 << 21),
        libc::S_IFBLK => mode |= 1 << 26,
        _ => {}
    }
    if st.st_mode & libc::S_ISUID != 0 {
        mode |= 1 << 23;
    }
    if st.st_mode & libc::S_ISGID != 0 {
        mode |= 1 << 22;
    }
    if st.st_mode & libc::S_ISVTX != 0 {
        mode |= 1 << 20;
    }
    mode
}

/// The stat of `path` in the container whose filesystem is `root`.
pub fn stat(root: &Path, path: &str, container: &str) -> Result<PathStat, ArchiveError> {
    let root_fd = open_root(root)?;
    let (parent, name) = split(path);
    let not_found =
        || ArchiveError::NotFound { path: path.to_owned(), container: container.to_owned() };
    let dir = open_in_root(root_fd.as_fd(), &parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|_| not_found())?;
    let st = fstatat(dir.as_fd(), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|_| not_found())?;
    let link_target = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        nix::fcntl::readlinkat(dir.as_fd(), name.as_os_str())
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(PathStat {
        name: name.to_string_lossy().into_owned(),
        size: st.st_size,
        mode: go_mode(&st),
        mtime: kiln_types::time::UtcTime::from_unix(st.st_mtime).rfc3339(),
        link_target,
    })
}

/// Write a tar of `path` (its last component, and everything under it when
/// it is a directory) to `out`.
pub fn write_archive(
    root: &Path,
    path: &str,
    container: &str,
    out: &mut dyn Write,
) -> Result<PathStat, ArchiveError> {
    let stat = stat(root, path, container)?;
    let root_fd = open_root(root)?;
    let (parent, name) = split(path);
    let dir = open_in_root(root_fd.as_fd(), &parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .map_err(io_err(path))?;
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Complete);
    let arc_name = if name == "." { PathBuf::from(".") } else { PathBuf::from(&name) };
    add_entry(&mut builder, dir.as_fd(), &name, &arc_name)
        .map_err(|source| ArchiveError::Io { path: path.to_owned(), source })?;
    builder.finish().map_err(|source| ArchiveError::Io { path: path.to_owned(), source })?;
    Ok(stat)
}

/// Write a tar of the whole filesystem under `root` (`docker export`):
/// its entries named from the root, without a leading `/`.
pub fn write_rootfs(root: &Path, out: &mut dyn Write) -> Result<(), ArchiveError> {
    let err = |source| ArchiveError::Io { path: "/".to_owned(), source };
    let dir = nix::fcntl::open(
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err("/"))?;
    let listing_fd = dir.try_clone().map_err(err)?;
    let mut listing = nix::dir::Dir::from_fd(listing_fd).map_err(io_err("/"))?;
    let mut names: Vec<OsString> = listing
        .iter()
        .flatten()
        .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Complete);
    for name in names {
        add_entry(&mut builder, dir.as_fd(), &name, Path::new(&name)).map_err(err)?;
    }
    builder.finish().map_err(err)
}

fn header_for(st: &nix::sys::stat::FileStat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

fn add_entry<W: Write>(
    b: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    arc: &Path,
) -> io::Result<()> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            let mut h = header_for(&st, tar::EntryType::Directory);
            b.append_data(&mut h, arc, io::empty())?;
            let fd = openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let child_dir = fd.try_clone()?;
            let mut listing = nix::dir::Dir::from_fd(fd)?;
            let mut names: Vec<OsString> = listing
                .iter()
                .flatten()
                .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
                .filter(|n| n != "." && n != "..")
                .collect();
            names.sort();
            for child in names {
                add_entry(b, child_dir.as_fd(), &child, &arc.join(&child))?;
            }
        }
        libc::S_IFREG => {
            let fd = openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let file = std::fs::File::from(fd);
            let mut h = header_for(&st, tar::EntryType::Regular);
            h.set_size(u64::try_from(st.st_size).unwrap_or(0));
            b.append_data(&mut h, arc, file.take(u64::try_from(st.st_size).unwrap_or(0)))?;
        }
        libc::S_IFLNK => {
            let target = nix::fcntl::readlinkat(dir, name)?;
            let mut h = header_for(&st, tar::EntryType::Symlink);
            b.append_link(&mut h, arc, &target)?;
        }
        kind @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) => {
            let entry = match kind {
                libc::S_IFCHR => tar::EntryType::Char,
                libc::S_IFBLK => tar::EntryType::Block,
                _ => tar::EntryType::Fifo,
            };
            let mut h = header_for(&st, entry);
            if kind != libc::S_IFIFO {
                h.set_device_major(nix::sys::stat::major(st.st_rdev) as u32)?;
                h.set_device_minor(nix::sys::stat::minor(st.st_rdev) as u32)?;
            }
            b.append_data(&mut h, arc, io::empty())?;
        }
        // Sockets do not travel in archives.
        _ => {}
    }
    Ok(())
}

/// Extract the tar `reader` into the directory `path` of the container
/// whose filesystem is `root`. Entries may not leave it.
pub fn extract_archive(
    root: &Path,
    path: &str,
    container: &str,
    reader: impl Read,
) -> Result<(), ArchiveError> {
    let root_fd = open_root(root)?;
    let dest = Path::new(path);
    let target = open_in_root(root_fd.as_fd(), dest, OFlag::O_PATH).map_err(|_| {
        ArchiveError::NotFound { path: path.to_owned(), container: container.to_owned() }
    })?;
    let st = nix::sys::stat::fstat(target.as_fd()).map_err(io_err(path))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(ArchiveError::NotADirectory { path: path.to_owned() });
    }
    let mut archive = tar::Archive::new(reader);
    let entries =
        archive.entries().map_err(|source| ArchiveError::Io { path: path.to_owned(), source })?;
    for entry in entries {
        let mut entry =
            entry.map_err(|source| ArchiveError::Io { path: path.to_owned(), source })?;
        let raw = entry
            .path()
            .map_err(|source| ArchiveError::Io { path: path.to_owned(), source })?
            .into_owned();
        let mut rel = PathBuf::new();
        for c in raw.components() {
            match c {
                Component::Normal(n) => rel.push(n),
                Component::CurDir | Component::RootDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(ArchiveError::BadEntry { path: raw.display().to_string() })
                }
            }
        }
        let Some(name) = rel.file_name().map(OsStr::to_owned) else { continue };
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_owned();
        let shown = dest.join(&rel).display().to_string();
        let parent = ensure_dir(root_fd.as_fd(), dest, &parent_rel).map_err(io_err(&shown))?;
        let header = entry.header().clone();
        let mode = Mode::from_bits_truncate(header.mode().unwrap_or(0o644) & 0o7777);
        let (uid, gid) = (header.uid().unwrap_or(0) as u32, header.gid().unwrap_or(0) as u32);
        let kind = header.entry_type();
        let existing = fstatat(parent.as_fd(), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let is_dir = existing.is_some_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR);
        // Replace what is there, unless a directory meets a directory.
        if existing.is_some() && !(is_dir && kind == tar::EntryType::Directory) {
            let flag = if is_dir { UnlinkatFlags::RemoveDir } else { UnlinkatFlags::NoRemoveDir };
            unlinkat(parent.as_fd(), name.as_os_str(), flag).map_err(io_err(&shown))?;
        }
        match kind {
            tar::EntryType::Directory => {
                if !is_dir {
                    mkdirat(parent.as_fd(), name.as_os_str(), mode).map_err(io_err(&shown))?;
                }
                let fd = openat(
                    parent.as_fd(),
                    name.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io_err(&shown))?;
                nix::sys::stat::fchmod(fd.as_fd(), mode).map_err(io_err(&shown))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let fd = openat(
                    parent.as_fd(),
                    name.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    mode,
                )
                .map_err(io_err(&shown))?;
                let mut file = std::fs::File::from(fd);
                io::copy(&mut entry, &mut file)
                    .map_err(|source| ArchiveError::Io { path: shown.clone(), source })?;
                nix::sys::stat::fchmod(file.as_fd(), mode).map_err(io_err(&shown))?;
            }
            tar::EntryType::Symlink => {
                let target =
                    header.link_name().ok().flatten().map(|t| t.into_owned()).unwrap_or_default();
                symlinkat(target.as_os_str(), parent.as_fd(), name.as_os_str())
                    .map_err(io_err(&shown))?;
            }
            tar::EntryType::Link => {
                let target =
                    header.link_name().ok().flatten().map(|t| t.into_owned()).unwrap_or_default();
                let source = open_in_root(root_fd.as_fd(), &dest.join(&target), OFlag::O_PATH)
                    .map_err(io_err(&shown))?;
                let proc_path = format!("/proc/self/fd/{}", source.as_raw_fd());
                nix::unistd::linkat(
                    nix::fcntl::AT_FDCWD,
                    proc_path.as_str(),
                    parent.as_fd(),
                    name.as_os_str(),
                    AtFlags::AT_SYMLINK_FOLLOW,
                )
                .map_err(io_err(&shown))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (sflag, dev) = match kind {
                    tar::EntryType::Char => (SFlag::S_IFCHR, device(&header)),
                    tar::EntryType::Block => (SFlag::S_IFBLK, device(&header)),
                    _ => (SFlag::S_IFIFO, 0),
                };
                mknodat(parent.as_fd(), name.as_os_str(), sflag, mode, dev)
                    .map_err(io_err(&shown))?;
            }
            // Extended headers and the like carry nothing to make.
            _ => continue,
        }
        fchownat(
            parent.as_fd(),
            name.as_os_str(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io_err(&shown))?;
    }
    Ok(())
}

fn device(header: &tar::Header) -> libc::dev_t {
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    nix::sys::stat::makedev(u64::from(major), u64::from(minor))
}

/// Open (making what is missing) the directory `dest/rel` inside `root`.
fn ensure_dir(root: BorrowedFd<'_>, dest: &Path, rel: &Path) -> nix::Result<OwnedFd> {
    let mut path = dest.to_owned();
    let mut dir = open_in_root(root, &path, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    for c in rel.components() {
        path.push(c);
        dir = match open_in_root(root, &path, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                mkdirat(dir.as_fd(), c.as_os_str(), Mode::from_bits_truncate(0o755))?;
                open_in_root(root, &path, OFlag::O_PATH | OFlag::O_DIRECTORY)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(dir)
}

/// The stat header's value: base64 of its JSON, as dockerd sends it.
pub fn stat_header(stat: &PathStat) -> String {
    base64(&serde_json::to_vec(stat).unwrap_or_default())
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"{\"name\":\"x\"}"), "eyJuYW1lIjoieCJ9");
    }

    #[test]
    fn copies_go_in_and_out_without_leaving_the_root() {
        let tmp = kiln_testing::ScratchDir::new().expect("scratch");
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::write(root.join("etc/hostname"), "box\n").expect("write");
        // A link that points out of the root by name resolves inside it.
        std::os::unix::fs::symlink("/etc", root.join("escape")).expect("symlink");
        let mut tar_bytes = Vec::new();
        let stat = write_archive(&root, "/etc/hostname", "c", &mut tar_bytes).expect("archive");
        assert_eq!((stat.name.as_str(), stat.size), ("hostname", 4));
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry").path().expect("path").display().to_string())
            .collect();
        assert_eq!(names, ["hostname"]);
        // Into the container, through the link: lands in root/etc.
        let mut input = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o600);
        input.append_data(&mut h, "dir/new", &b"abc"[..]).expect("append");
        let bytes = input.into_inner().expect("tar");
        extract_archive(&root, "/escape", "c", &bytes[..]).expect("extract");
        assert_eq!(std::fs::read(root.join("etc/dir/new")).expect("read"), b"abc");
        let mut evil = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o600);
        // tar-rs refuses to write "..", so write the name by hand.
        h.as_gnu_mut().expect("gnu").name[..7].copy_from_slice(b"../evil");
        h.set_cksum();
        evil.append(&h, &b"x"[..]).expect("append");
        let bytes = evil.into_inner().expect("tar");
        assert!(matches!(
            extract_archive(&root, "/etc", "c", &bytes[..]),
            Err(ArchiveError::BadEntry { .. })
        ));
        assert!(matches!(stat_err(&root), ArchiveError::NotFound { .. }));
    }

    fn stat_err(root: &Path) -> ArchiveError {
        stat(root, "/nope", "c").expect_err("missing")
    }
}
