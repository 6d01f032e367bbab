//! `kiln cp`: copy files between a container and the host.
//!
//! The daemon serves a container's paths as tar archives (`GET`, `HEAD`
//! and `PUT /containers/{id}/archive`); this side makes and reads the tars,
//! with docker's rules for where things land:
//!
//! - a file onto an existing directory goes inside it under its own name,
//!   onto a file replaces it, and onto a missing path becomes that path
//!   (a missing path ending in `/` is an error);
//! - a directory onto an existing directory goes inside it, or only its
//!   contents when the source ends in `/.`; onto a missing path it becomes
//!   that directory; onto a file it is an error;
//! - `-` as the source is a tar on stdin, extracted into a directory of the
//!   container; `-` as the destination writes the tar to stdout.
//!
//! Nothing is written outside the destination: archive entries that are
//! absolute or climb out with `..` are refused, and no entry is written
//! through a symlink the archive made.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, IsTerminal as _, Read, Write};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Args;
use kiln_client::{Client, ClientError, ExtractOptions, PathStat};
use tokio::sync::mpsc;

use crate::output::human_size;
use crate::GlobalArgs;

#[derive(Debug, Args)]
#[command(
    override_usage = "kiln cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       kiln cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    after_help = "Use '-' as the source to read a tar archive from stdin and extract it to a \
directory destination in a container.\nUse '-' as the destination to stream a tar archive of a \
container source to stdout."
)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// Suppress progress output during copy. Progress output is
    /// automatically suppressed if no terminal is attached
    #[arg(short = 'q', long)]
    quiet: bool,
    /// CONTAINER:SRC_PATH, or a local SRC_PATH, or - for a tar on stdin
    #[arg(value_name = "SRC")]
    source: String,
    /// A local DEST_PATH, or - for a tar on stdout, or CONTAINER:DEST_PATH
    #[arg(value_name = "DEST")]
    destination: String,
}

/// One side of a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location<'a> {
    Local(&'a str),
    Container { name: &'a str, path: &'a str },
}

/// docker's reading of an argument: an absolute path, a name starting
/// with `.` before the colon, or no colon at all is local.
fn location(arg: &str) -> Location<'_> {
    if arg.starts_with('/') {
        return Location::Local(arg);
    }
    match arg.split_once(':') {
        Some((name, path)) if !name.starts_with('.') => Location::Container { name, path },
        _ => Location::Local(arg),
    }
}

pub async fn run(global: &GlobalArgs, args: &CpArgs) -> anyhow::Result<()> {
    match (location(&args.source), location(&args.destination)) {
        (Location::Local(_), Location::Local(_)) => {
            bail!("must specify at least one container source")
        }
        (Location::Container { .. }, Location::Container { .. }) => {
            bail!("copying between containers is not supported")
        }
        (Location::Container { path: "", .. }, _) | (_, Location::Local("")) => {
            bail!("source can not be empty")
        }
        (_, Location::Container { path: "", .. }) | (Location::Local(""), _) => {
            bail!("destination can not be empty")
        }
        (Location::Container { name, path }, Location::Local(dest)) => {
            let client = crate::connect(global).await?;
            copy_from_container(&client, name, &absolute(path), dest, args).await
        }
        (Location::Local(source), Location::Container { name, path }) => {
            let client = crate::connect(global).await?;
            copy_to_container(&client, source, name, &absolute(path), args).await
        }
    }
}

/// A container path as the daemon wants it: from the root.
fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// Whether a path asks for a directory's contents (`dir/.`).
fn is_contents(path: &str) -> bool {
    path == "." || path.ends_with("/.")
}

/// The last name of a path, ignoring trailing `/` and `/.`.
fn base_name(path: &str) -> String {
    let mut trimmed = path;
    loop {
        let next = trimmed.strip_suffix("/.").or_else(|| trimmed.strip_suffix('/'));
        match next {
            Some(t) if !t.is_empty() => trimmed = t,
            _ => break,
        }
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned()
}

/// The directory holding `path` (`/` for a top-level one).
fn parent_of(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some(("", _)) | None => "/".to_owned(),
        Some((parent, _)) => parent.to_owned(),
    }
}

fn print_progress(args: &CpArgs, bytes: u64, destination: &str) {
    if !args.quiet && std::io::stderr().is_terminal() {
        eprintln!("Successfully copied {} to {destination}", human_size(bytes));
    }
}

// ---- container → host ---------------------------------------------------

async fn copy_from_container(
    client: &Client,
    container: &str,
    source: &str,
    dest: &str,
    args: &CpArgs,
) -> anyhow::Result<()> {
    let mut requested = source.to_owned();
    let mut rename = None;
    if args.follow_link {
        let stat = client.container_stat_path(container, source).await?;
        if stat.is_symlink() {
            requested = if stat.link_target.starts_with('/') {
                stat.link_target.clone()
            } else {
                format!("{}/{}", parent_of(source).trim_end_matches('/'), stat.link_target)
            };
            rename = Some(base_name(source));
        }
    }
    let mut download = client.container_archive(container, &requested).await?;
    if dest == "-" {
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = download.next_chunk().await? {
            out.write_all(&chunk).context("cannot write the archive to stdout")?;
        }
        return out.flush().context("cannot write the archive to stdout");
    }
    let name = rename.unwrap_or_else(|| download.stat.name.clone());
    let target = local_target(source, &download.stat, &name, Path::new(dest))?;
    let keep_owners = args.archive && nix::unistd::geteuid().is_root();
    let (tx, rx) = mpsc::channel(8);
    let extraction = tokio::task::spawn_blocking(move || {
        extract(ChunkReader { rx, current: None, offset: 0 }, &target, keep_owners)
    });
    let mut copied = 0u64;
    let fed: Result<(), ClientError> = async {
        while let Some(chunk) = download.next_chunk().await? {
            copied += chunk.len() as u64;
            if tx.send(chunk).await.is_err() {
                // The extraction stopped; its error says why.
                break;
            }
        }
        Ok(())
    }
    .await;
    drop(tx);
    let extracted = extraction.await.context("the extraction task failed")?;
    extracted?;
    fed?;
    print_progress(args, copied, dest);
    Ok(())
}

/// Where the copied path lands on the host, by docker's rules.
fn local_target(source: &str, stat: &PathStat, name: &str, dest: &Path) -> anyhow::Result<Target> {
    let shown = dest.display();
    let says_dir =
        dest.as_os_str().as_encoded_bytes().ends_with(b"/") || is_contents(&dest.to_string_lossy());
    let existing = fs::metadata(dest).ok();
    let contents = is_contents(source) || source == "/";
    let path = match existing {
        Some(meta) if meta.is_dir() => {
            if stat.is_dir() && contents {
                dest.to_owned()
            } else {
                dest.join(name)
            }
        }
        Some(_) if stat.is_dir() => bail!("cannot copy a directory to a file: {shown}"),
        Some(_) => dest.to_owned(),
        None => {
            if says_dir && !stat.is_dir() {
                bail!("destination directory {shown} must exist");
            }
            let parent = match dest.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if !parent.is_dir() {
                bail!("no such directory: {}", parent.display());
            }
            dest.to_owned()
        }
    };
    Ok(Target { path })
}

/// Where the archive's top entry goes; everything else goes under it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    path: PathBuf,
}

/// The chunks of a download, as a `Read` for the tar reader (on a
/// blocking thread).
struct ChunkReader<T> {
    rx: mpsc::Receiver<T>,
    current: Option<T>,
    offset: usize,
}

impl<T: AsRef<[u8]>> Read for ChunkReader<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(chunk) = &self.current {
                let left = &chunk.as_ref()[self.offset..];
                if !left.is_empty() {
                    let n = buf.len().min(left.len());
                    buf[..n].copy_from_slice(&left[..n]);
                    self.offset += n;
                    return Ok(n);
                }
            }
            match self.rx.blocking_recv() {
                Some(chunk) => {
                    self.current = Some(chunk);
                    self.offset = 0;
                }
                None => return Ok(0),
            }
        }
    }
}

/// The path of an entry under the archive's top entry, or `None` when it
/// is not under it. Refuses names that climb out or are absolute.
fn relative_to_top(top: &Path, name: &Path) -> anyhow::Result<Option<PathBuf>> {
    let mut rel = PathBuf::new();
    for component in name.components() {
        match component {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                bail!("refusing to extract {}: it would leave the destination", name.display())
            }
        }
    }
    Ok(rel.strip_prefix(top).ok().map(Path::to_owned))
}

/// Extract a tar from the daemon so that its top entry becomes `target`.
fn extract(reader: impl Read, target: &Target, keep_owners: bool) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(reader);
    let mut top: Option<PathBuf> = None;
    let mut top_is_symlink = false;
    // Directories get their mode last, deepest first, so a read-only one
    // can still be filled.
    let mut dirs: Vec<(PathBuf, u32, i64)> = Vec::new();
    for entry in archive.entries().context("cannot read the archive")? {
        let mut entry = entry.context("cannot read the archive")?;
        let name = entry.path().context("bad entry name in the archive")?.into_owned();
        let top = match &top {
            Some(top) => top.clone(),
            None => {
                let first = relative_to_top(Path::new(""), &name)?.unwrap_or_default();
                let first_part = first.components().next().map(|c| PathBuf::from(c.as_os_str()));
                top.insert(first_part.unwrap_or_default()).clone()
            }
        };
        let Some(rel) = relative_to_top(&top, &name)? else {
            bail!("refusing to extract {}: it is not under {}", name.display(), top.display());
        };
        // Not `join("")`, which would add a trailing `/`.
        let path =
            if rel.as_os_str().is_empty() { target.path.clone() } else { target.path.join(&rel) };
        if rel.as_os_str().is_empty() {
            top_is_symlink = entry.header().entry_type() == tar::EntryType::Symlink;
        } else if top_is_symlink {
            bail!("refusing to extract {}: it is below a symlink", name.display());
        }
        check_no_symlink_between(&target.path, &rel)?;
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = header.mtime().map_or(0, |t| i64::try_from(t).unwrap_or(0));
        let shown = path.display().to_string();
        let kind = header.entry_type();
        let existing = fs::symlink_metadata(&path).ok();
        let existing_dir = if rel.as_os_str().is_empty() {
            // The destination itself may be a link to a directory.
            fs::metadata(&path).is_ok_and(|m| m.is_dir())
        } else {
            existing.as_ref().is_some_and(|m| m.is_dir())
        };
        match kind {
            tar::EntryType::Directory => {
                if !existing_dir {
                    if existing.is_some() {
                        fs::remove_file(&path)
                            .with_context(|| format!("cannot replace {shown}"))?;
                    }
                    fs::create_dir(&path).with_context(|| format!("cannot create {shown}"))?;
                }
                dirs.push((path.clone(), mode, mtime));
            }
            tar::EntryType::Regular
            | tar::EntryType::Continuous
            | tar::EntryType::Symlink
            | tar::EntryType::Link
            | tar::EntryType::Char
            | tar::EntryType::Block
            | tar::EntryType::Fifo => {
                if existing_dir {
                    bail!("cannot overwrite directory {shown} with non-directory");
                }
                if existing.is_some() {
                    fs::remove_file(&path).with_context(|| format!("cannot replace {shown}"))?;
                }
                match kind {
                    tar::EntryType::Symlink => {
                        let link = header.link_name().ok().flatten().unwrap_or_default();
                        std::os::unix::fs::symlink(&link, &path)
                            .with_context(|| format!("cannot create {shown}"))?;
                    }
                    tar::EntryType::Link => {
                        let link = header.link_name().ok().flatten().unwrap_or_default();
                        let Some(link_rel) = relative_to_top(&top, &link)? else {
                            bail!("refusing to extract {shown}: its link leaves the copy");
                        };
                        check_no_symlink_between(&target.path, &link_rel)?;
                        fs::hard_link(target.path.join(&link_rel), &path)
                            .with_context(|| format!("cannot create {shown}"))?;
                    }
                    tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                        make_node(&path, kind, &header, mode)
                            .with_context(|| format!("cannot create {shown}"))?;
                    }
                    _ => {
                        let mut file = OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .mode(0o600)
                            .custom_flags(libc_o_nofollow())
                            .open(&path)
                            .with_context(|| format!("cannot create {shown}"))?;
                        io::copy(&mut entry, &mut file)
                            .with_context(|| format!("cannot write {shown}"))?;
                        file.set_permissions(fs::Permissions::from_mode(mode))
                            .with_context(|| format!("cannot set the mode of {shown}"))?;
                    }
                }
                if keep_owners {
                    chown(&path, &header)?;
                }
                if kind != tar::EntryType::Symlink {
                    set_mtime(&path, mtime);
                }
            }
            // Extended headers and the like carry nothing to make.
            _ => {}
        }
        if keep_owners && kind == tar::EntryType::Directory {
            chown(&path, &header)?;
        }
    }
    for (path, mode, mtime) in dirs.iter().rev() {
        fs::set_permissions(path, fs::Permissions::from_mode(*mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        set_mtime(path, *mtime);
    }
    Ok(())
}

fn libc_o_nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}

/// Refuse to write below a symlink inside the copy: the archive could have
/// made one pointing anywhere.
fn check_no_symlink_between(top: &Path, rel: &Path) -> anyhow::Result<()> {
    let mut path = top.to_owned();
    let parts: Vec<Component<'_>> = rel.components().collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        path.push(part);
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            bail!("refusing to extract below the symlink {}", path.display());
        }
    }
    Ok(())
}

fn make_node(path: &Path, kind: tar::EntryType, header: &tar::Header, mode: u32) -> io::Result<()> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let (flag, dev) = match kind {
        tar::EntryType::Char | tar::EntryType::Block => {
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            let flag = if kind == tar::EntryType::Char { SFlag::S_IFCHR } else { SFlag::S_IFBLK };
            (flag, makedev(u64::from(major), u64::from(minor)))
        }
        _ => (SFlag::S_IFIFO, 0),
    };
    mknod(path, flag, Mode::from_bits_truncate(mode), dev).map_err(io::Error::from)
}

fn chown(path: &Path, header: &tar::Header) -> anyhow::Result<()> {
    let uid = header.uid().ok().and_then(|u| u32::try_from(u).ok());
    let gid = header.gid().ok().and_then(|g| u32::try_from(g).ok());
    std::os::unix::fs::lchown(path, uid, gid)
        .with_context(|| format!("cannot set the owner of {}", path.display()))
}

/// Best effort: a copy whose times could not be kept is still a copy.
fn set_mtime(path: &Path, mtime: i64) {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let time = TimeSpec::new(mtime, 0);
    let _ = utimensat(nix::fcntl::AT_FDCWD, path, &time, &time, UtimensatFlags::NoFollowSymlink);
}

// ---- host → container ---------------------------------------------------

async fn copy_to_container(
    client: &Client,
    source: &str,
    container: &str,
    dest: &str,
    args: &CpArgs,
) -> anyhow::Result<()> {
    let options = ExtractOptions { no_overwrite_dir_non_dir: true, copy_uid_gid: args.archive };
    let shown_dest = format!("{container}:{dest}");
    if source == "-" {
        let stat = client.container_stat_path(container, dest).await?;
        if !stat.is_dir() {
            bail!("destination \"{shown_dest}\" must be a directory");
        }
        client.container_extract(container, dest, tokio::io::stdin(), options).await?;
        return Ok(());
    }
    let meta = if args.follow_link { fs::metadata(source) } else { fs::symlink_metadata(source) };
    let meta = match meta {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            bail!("lstat {source}: no such file or directory")
        }
        Err(err) => return Err(err).with_context(|| format!("lstat {source}")),
    };
    let existing = match client.container_stat_path(container, dest).await {
        Ok(stat) => Some(stat),
        Err(err) if err.is_not_found() => None,
        Err(err) => return Err(err.into()),
    };
    let (extract_into, top) = match existing {
        Some(stat) if stat.is_dir() => {
            let top = if meta.is_dir() && is_contents(source) {
                None
            } else {
                Some(OsString::from(base_name(source)))
            };
            (dest.to_owned(), top)
        }
        Some(_) if meta.is_dir() => bail!("cannot copy a directory to a file: {shown_dest}"),
        Some(_) => (parent_of(dest), Some(OsString::from(base_name(dest)))),
        None => {
            if !meta.is_dir() && dest.ends_with('/') {
                bail!("destination directory {shown_dest} must exist");
            }
            (parent_of(dest), Some(OsString::from(base_name(dest))))
        }
    };
    let (reader, writer) = nix::unistd::pipe().context("cannot make a pipe")?;
    let plan = ArchivePlan {
        source: PathBuf::from(source),
        follow_top: args.follow_link,
        top,
        keep_owners: args.archive,
    };
    let written = tokio::task::spawn_blocking(move || {
        let mut out = CountingWriter { inner: BufWriter::new(File::from(writer)), count: 0 };
        write_archive(&plan, &mut out)?;
        out.flush().context("cannot send the archive")?;
        Ok::<u64, anyhow::Error>(out.count)
    });
    let body = tokio::fs::File::from_std(File::from(reader));
    let sent = client.container_extract(container, &extract_into, body, options).await;
    let written = written.await.context("the archive task failed")?;
    sent?;
    let bytes = written?;
    print_progress(args, bytes, &shown_dest);
    Ok(())
}

/// What to put in the archive for the daemon.
#[derive(Debug)]
struct ArchivePlan {
    source: PathBuf,
    /// Follow the source itself when it is a symlink (`-L`).
    follow_top: bool,
    /// The name of the top entry; `None`: the source directory's contents
    /// go in at the top (`dir/.`).
    top: Option<OsString>,
    /// Keep owners (`-a`); else everything belongs to root, as docker does.
    keep_owners: bool,
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Write the tar of the plan's source, entries in name order.
fn write_archive(plan: &ArchivePlan, out: &mut impl Write) -> anyhow::Result<()> {
    let mut builder = tar::Builder::new(out);
    let mut links = HashMap::new();
    let meta = if plan.follow_top {
        fs::metadata(&plan.source)
    } else {
        fs::symlink_metadata(&plan.source)
    }
    .with_context(|| format!("cannot read {}", plan.source.display()))?;
    match &plan.top {
        Some(top) => {
            add_entry(&mut builder, plan, &plan.source, &meta, Path::new(top), &mut links)?
        }
        None => add_children(&mut builder, plan, &plan.source, Path::new(""), &mut links)?,
    }
    builder.finish().context("cannot send the archive")
}

fn add_children<W: Write>(
    builder: &mut tar::Builder<W>,
    plan: &ArchivePlan,
    dir: &Path,
    name: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> anyhow::Result<()> {
    let mut children: Vec<OsString> = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    children.sort();
    for child in children {
        let path = dir.join(&child);
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        add_entry(builder, plan, &path, &meta, &name.join(&child), links)?;
    }
    Ok(())
}

fn add_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    plan: &ArchivePlan,
    path: &Path,
    meta: &fs::Metadata,
    name: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt as _;
    let failed = || format!("cannot archive {}", path.display());
    let mut header = tar::Header::new_gnu();
    header.set_mode(meta.mode() & 0o7777);
    header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    let (uid, gid) = if plan.keep_owners { (meta.uid(), meta.gid()) } else { (0, 0) };
    header.set_uid(u64::from(uid));
    header.set_gid(u64::from(gid));
    header.set_size(0);
    let kind = meta.file_type();
    if kind.is_dir() {
        header.set_entry_type(tar::EntryType::Directory);
        builder.append_data(&mut header, name, io::empty()).with_context(failed)?;
        return add_children(builder, plan, path, name, links);
    }
    if kind.is_file() {
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                header.set_entry_type(tar::EntryType::Link);
                return builder.append_link(&mut header, name, first).with_context(failed);
            }
            links.insert((meta.dev(), meta.ino()), name.to_owned());
        }
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(meta.len());
        let file = File::open(path).with_context(failed)?;
        return builder.append_data(&mut header, name, file.take(meta.len())).with_context(failed);
    }
    if kind.is_symlink() {
        header.set_entry_type(tar::EntryType::Symlink);
        let target = fs::read_link(path).with_context(failed)?;
        return builder.append_link(&mut header, name, target).with_context(failed);
    }
    let entry_type = if kind.is_char_device() {
        tar::EntryType::Char
    } else if kind.is_block_device() {
        tar::EntryType::Block
    } else if kind.is_fifo() {
        tar::EntryType::Fifo
    } else {
        // Sockets do not travel in archives.
        return Ok(());
    };
    header.set_entry_type(entry_type);
    if entry_type != tar::EntryType::Fifo {
        let rdev = meta.rdev();
        header.set_device_major(nix::sys::stat::major(rdev) as u32).with_context(failed)?;
        header.set_device_minor(nix::sys::stat::minor(rdev) as u32).with_context(failed)?;
    }
    builder.append_data(&mut header, name, io::empty()).with_context(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_read_as_docker_reads_them() {
        assert_eq!(location("c:/etc"), Location::Container { name: "c", path: "/etc" });
        assert_eq!(location("/tmp/a:b"), Location::Local("/tmp/a:b"));
        assert_eq!(location("./a:b"), Location::Local("./a:b"));
        assert_eq!(location("file"), Location::Local("file"));
        assert_eq!(location("-"), Location::Local("-"));
        assert_eq!(location("c:rel"), Location::Container { name: "c", path: "rel" });
    }

    #[test]
    fn names_and_parents_ignore_trailing_slashes_and_dots() {
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("/a/b/."), "b");
        assert_eq!(base_name("b"), "b");
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b/"), "/a");
        assert!(is_contents("/a/.") && !is_contents("/a/b"));
    }

    fn stat(dir: bool) -> PathStat {
        PathStat {
            name: "src".into(),
            mode: if dir { (1 << 31) | 0o755 } else { 0o644 },
            ..PathStat::default()
        }
    }

    #[test]
    fn targets_follow_dockers_rules() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("dir");
        fs::create_dir(&dir).expect("mkdir");
        let file = tmp.path().join("file");
        fs::write(&file, "x").expect("write");
        let missing = tmp.path().join("missing");
        let target = |source: &str, dir_src: bool, dest: &Path| {
            local_target(source, &stat(dir_src), "src", dest).map(|t| t.path)
        };
        assert_eq!(target("/src", false, &dir).expect("into dir"), dir.join("src"));
        assert_eq!(target("/src", false, &file).expect("over file"), file);
        assert_eq!(target("/src", false, &missing).expect("new file"), missing);
        assert!(target("/src", false, &tmp.path().join("missing/")).is_err());
        assert_eq!(target("/src", true, &dir).expect("dir in dir"), dir.join("src"));
        assert_eq!(target("/src/.", true, &dir).expect("contents"), dir);
        assert_eq!(target("/src", true, &missing).expect("new dir"), missing);
        assert!(target("/src", true, &file).is_err());
        assert!(target("/src", false, &tmp.path().join("no/such/file")).is_err());
    }

    fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(0o755);
            match kind {
                tar::EntryType::Symlink => {
                    header.set_size(0);
                    builder.append_link(&mut header, name, data).expect("link");
                }
                _ => {
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, name, data.as_bytes()).expect("append");
                }
            }
        }
        builder.into_inner().expect("tar")
    }

    #[test]
    fn a_directory_extracts_under_its_new_name() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let archive = tar_of(&[
            ("src", tar::EntryType::Directory, ""),
            ("src/a", tar::EntryType::Regular, "aaa"),
            ("src/sub", tar::EntryType::Directory, ""),
            ("src/sub/b", tar::EntryType::Regular, "b"),
        ]);
        let target = Target { path: tmp.path().join("copy") };
        extract(&archive[..], &target, false).expect("extract");
        assert_eq!(fs::read_to_string(tmp.path().join("copy/a")).expect("a"), "aaa");
        assert_eq!(fs::read_to_string(tmp.path().join("copy/sub/b")).expect("b"), "b");
    }

    #[test]
    fn nothing_is_written_outside_the_destination() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).expect("mkdir");
        let target = Target { path: tmp.path().join("copy") };
        // Through a symlink the archive itself made.
        let archive = tar_of(&[
            ("src", tar::EntryType::Directory, ""),
            ("src/link", tar::EntryType::Symlink, outside.to_str().expect("utf-8")),
            ("src/link/evil", tar::EntryType::Regular, "x"),
        ]);
        let err = extract(&archive[..], &target, false).expect_err("through a link");
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(!outside.join("evil").exists());
        // With `..` (written by hand: tar-rs refuses to).
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        header.as_gnu_mut().expect("gnu").name[..13].copy_from_slice(b"src/../../bad");
        header.set_cksum();
        builder.append(&header, &b"x"[..]).expect("append");
        let archive = builder.into_inner().expect("tar");
        let err = extract(&archive[..], &target, false).expect_err("climbs out");
        assert!(err.to_string().contains("leave"), "{err}");
        assert!(!tmp.path().join("bad").exists());
    }

    #[test]
    fn archives_of_a_directory_list_their_entries_in_order() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("b")).expect("mkdir");
        fs::write(src.join("b/c"), "c").expect("write");
        fs::write(src.join("a"), "a").expect("write");
        let names = |top: Option<&str>| {
            let plan = ArchivePlan {
                source: src.clone(),
                follow_top: false,
                top: top.map(OsString::from),
                keep_owners: false,
            };
            let mut out = Vec::new();
            write_archive(&plan, &mut out).expect("archive");
            let mut archive = tar::Archive::new(&out[..]);
            archive
                .entries()
                .expect("entries")
                .map(|e| {
                    let e = e.expect("entry");
                    assert_eq!(e.header().uid().expect("uid"), 0);
                    e.path().expect("path").display().to_string()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Some("new")), ["new", "new/a", "new/b", "new/b/c"]);
        assert_eq!(names(None), ["a", "b", "b/c"]);
    }
}
