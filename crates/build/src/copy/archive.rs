//! ADD of a local tar archive: recognised by its first header (after gzip
//! or zstd decompression), unpacked into the destination directory.
//!
//! Entry names are cleaned; one that climbs out of the destination (`..`
//! above it) is refused. Writing goes through the [`Writer`], so neither a
//! link already in the image nor one the archive itself creates can send a
//! file outside the root.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::dest::{Content, Writer};
use super::{CopyError, Meta};

/// Whether a 512-byte block is a tar header: not all zeros, and its
/// checksum field holds the sum of its bytes (the field itself counted as
/// spaces), unsigned as POSIX says or signed as some old tars wrote it.
pub(crate) fn is_tar_header(block: &[u8; 512]) -> bool {
    if block.iter().all(|b| *b == 0) {
        return false;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|b| *b as char)
        .skip_while(|c| *c == ' ')
        .take_while(|c| ('0'..='7').contains(c))
        .collect();
    let Ok(stored) = i64::from_str_radix(&digits, 8) else { return false };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { *b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || stored == signed
}

/// What the extraction needs besides the stream.
pub(crate) struct Extract<'a> {
    /// The archive's name for messages.
    pub(crate) archive: &'a str,
    /// The directory (below the root) the archive is unpacked into.
    pub(crate) into: &'a Path,
    /// `--chown`: replaces the owners recorded in the archive.
    pub(crate) owner: Option<(u32, u32)>,
    /// `--chmod`: replaces the modes recorded in the archive.
    pub(crate) mode: Option<u32>,
}

/// Unpacks the (already decompressed) tar stream `reader`.
pub(crate) fn extract(
    writer: &mut Writer,
    reader: impl Read,
    options: &Extract<'_>,
) -> Result<(), CopyError> {
    let read_error =
        |source: io::Error| CopyError::Extract { archive: options.archive.to_owned(), source };
    writer.ensure_dir(options.into)?;
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let raw = entry.path_bytes().into_owned();
        let escape = || CopyError::ArchiveEscape {
            archive: options.archive.to_owned(),
            entry: String::from_utf8_lossy(&raw).into_owned(),
        };
        let Some(relative) = clean_entry(OsStr::from_bytes(&raw)) else {
            return Err(escape());
        };
        if relative.as_os_str().is_empty() {
            // `./` itself: the destination keeps its own metadata.
            continue;
        }
        let path = options.into.join(&relative);
        let header = entry.header();
        let number = |value: io::Result<u64>| -> Result<u32, CopyError> {
            let value = value.map_err(read_error)?;
            u32::try_from(value).map_err(|_| {
                read_error(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("entry {}: id {value} out of range", relative.display()),
                ))
            })
        };
        let old = header.as_old();
        let (uid, gid) = match options.owner {
            Some(owner) => owner,
            None => (
                number(blank_is_zero(&old.uid, header.uid()))?,
                number(blank_is_zero(&old.gid, header.gid()))?,
            ),
        };
        let mode = match options.mode {
            Some(mode) => mode,
            None => blank_is_zero(&old.mode, header.mode().map(u64::from))
                .map_err(read_error)
                .map(|mode| (mode & 0o7777) as u32)?,
        } & 0o7777;
        let mtime = blank_is_zero(&old.mtime, header.mtime()).map_err(read_error)?;
        let mtime = i64::try_from(mtime).unwrap_or(i64::MAX);
        let meta = Meta { mode, uid, gid, mtime: (mtime, 0) };
        let entry_type = header.entry_type();
        match entry_type {
            EntryType::Directory => writer.write(&path, Content::Dir, Some(&meta))?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                writer.write(&path, Content::Stream(&mut entry), Some(&meta))?
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(escape)?.into_owned();
                writer.write(&path, Content::Symlink(OsStr::from_bytes(&target)), Some(&meta))?
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(escape)?.into_owned();
                let target = clean_entry(OsStr::from_bytes(&target))
                    .filter(|t| !t.as_os_str().is_empty())
                    .ok_or_else(escape)?;
                writer.write(&path, Content::HardLink(&options.into.join(target)), None)?
            }
            EntryType::Fifo => writer.write(&path, Content::Fifo, Some(&meta))?,
            EntryType::Char | EntryType::Block => {
                let major = header.device_major().map_err(read_error)?.unwrap_or(0);
                let minor = header.device_minor().map_err(read_error)?.unwrap_or(0);
                let rdev = nix::sys::stat::makedev(u64::from(major), u64::from(minor));
                let block = entry_type == EntryType::Block;
                writer.write(&path, Content::Device { block, rdev }, Some(&meta))?
            }
            other => {
                tracing::debug!(archive = options.archive, entry = %relative.display(), kind = ?other, "archive entry skipped");
            }
        }
    }
    Ok(())
}

/// A numeric header field that is empty (only NULs and spaces) reads as
/// 0, as Go's archive/tar reads it; some writers leave uid and gid blank.
fn blank_is_zero(field: &[u8], parsed: io::Result<u64>) -> io::Result<u64> {
    if field.iter().all(|b| *b == 0 || *b == b' ') {
        Ok(0)
    } else {
        parsed
    }
}

/// An entry name made relative to the destination: leading `/` and `.`
/// dropped, `..` applied; `None` when it climbs above the destination.
fn clean_entry(name: &OsStr) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_stay_below_the_destination() {
        assert_eq!(clean_entry(OsStr::new("./a/b")), Some(PathBuf::from("a/b")));
        assert_eq!(clean_entry(OsStr::new("/etc/passwd")), Some(PathBuf::from("etc/passwd")));
        assert_eq!(clean_entry(OsStr::new("a/../b")), Some(PathBuf::from("b")));
        assert_eq!(clean_entry(OsStr::new("../evil")), None);
        assert_eq!(clean_entry(OsStr::new("a/../../evil")), None);
    }

    #[test]
    fn tar_headers_are_told_from_other_bytes() {
        let mut header = tar::Header::new_gnu();
        header.set_path("hello.txt").expect("path");
        header.set_size(5);
        header.set_cksum();
        let block: [u8; 512] = header.as_bytes().to_owned();
        assert!(is_tar_header(&block));
        let mut text = [b'x'; 512];
        text[..11].copy_from_slice(b"hello world");
        assert!(!is_tar_header(&text));
        assert!(!is_tar_header(&[0; 512]));
    }
}
