//! Whiteouts: how a layer deletes what lower layers hold.
//!
//! In a layer tar (OCI image spec) a deleted `dir/name` is an empty file
//! `dir/.wh.name`, and a directory whose lower contents are all hidden holds
//! `dir/.wh..wh..opq`. Overlayfs wants instead a character device 0:0 named
//! `dir/name`, and the xattr `trusted.overlay.opaque=y` on `dir`. Both forms
//! need root to create in overlay's shape; the copying snapshotter reads both.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

/// Prefix of a whiteout file in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of the opaque-directory marker in a layer tar.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr that makes an overlayfs directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Prefix of the xattrs that steer overlayfs; never taken from a layer.
pub const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// How whiteouts are stored in an unpacked layer directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutFormat {
    /// Overlayfs whiteouts: char device 0:0 and the opaque xattr (needs root).
    #[default]
    Overlay,
    /// The OCI files kept as they are in the tar (`.wh.name`, `.wh..wh..opq`),
    /// for the copying snapshotter on hosts without overlayfs or root.
    Oci,
}

/// What a file name in a layer means, whiteout-wise.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// `.wh.<name>`: `name` is deleted from the layers below.
    Remove(&'a OsStr),
    /// `.wh..wh..opq`: the directory's lower contents are hidden.
    Opaque,
    /// Another `.wh..wh.` name: AUFS metadata, meaningless to overlay.
    Meta,
}

impl Whiteout<'_> {
    /// The whiteout a tar file name stands for, if it is one.
    pub fn parse(file_name: &OsStr) -> Option<Whiteout<'_>> {
        let bytes = file_name.as_bytes();
        let rest = bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes())?;
        if bytes == OPAQUE_MARKER.as_bytes() {
            return Some(Whiteout::Opaque);
        }
        if rest.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Some(Whiteout::Meta);
        }
        match rest {
            b"" | b"." | b".." => Some(Whiteout::Meta),
            name => Some(Whiteout::Remove(OsStr::from_bytes(name))),
        }
    }
}

/// Make `path` an overlayfs whiteout: a character device 0:0.
pub(crate) fn create_overlay_whiteout(path: &Path) -> nix::Result<()> {
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
}

/// Mark the directory `dir` opaque for overlayfs.
pub(crate) fn set_opaque(dir: &Path) -> io::Result<()> {
    xattr::set(dir, OVERLAY_OPAQUE_XATTR, b"y")
}

/// Whether `meta` describes an overlayfs whiteout.
pub fn is_overlay_whiteout(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory `dir` is marked opaque for overlayfs.
pub fn is_opaque(dir: &Path) -> bool {
    matches!(xattr::get(dir, OVERLAY_OPAQUE_XATTR), Ok(Some(v)) if v == b"y")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str) -> Option<Whiteout<'_>> {
        Whiteout::parse(OsStr::new(name))
    }

    #[test]
    fn whiteout_names_are_recognised() {
        assert_eq!(parse(".wh.passwd"), Some(Whiteout::Remove(OsStr::new("passwd"))));
        assert_eq!(parse(".wh..hidden"), Some(Whiteout::Remove(OsStr::new(".hidden"))));
        assert_eq!(parse(".wh..wh..opq"), Some(Whiteout::Opaque));
        assert_eq!(parse(".wh..wh.plnk"), Some(Whiteout::Meta));
        assert_eq!(parse(".wh.."), Some(Whiteout::Meta));
        assert_eq!(parse(".wh."), Some(Whiteout::Meta));
        assert_eq!(parse("passwd"), None);
        assert_eq!(parse("a.wh.b"), None);
    }
}
