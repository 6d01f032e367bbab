//! Unpacking layer tars: formats, file kinds, escapes and cleanup.

// Helpers outside #[test] fns panic on failure too, as tests should.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kiln_snapshot::{unpack_layer, Compression, SnapshotError};
use kiln_testing::ScratchDir;
use sha2::{Digest as _, Sha256};
use tar::{Builder, EntryType, Header};

/// A layer tar built in memory.
struct Layer(Builder<Vec<u8>>);

impl Layer {
    fn new() -> Self {
        Layer(Builder::new(Vec::new()))
    }

    fn header(kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h
    }

    fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = Self::header(EntryType::Directory, mode, 0);
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Self {
        let mut h = Self::header(EntryType::Regular, mode, data.len() as u64);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }

    fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(EntryType::Link, 0o644, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    /// An entry whose name is written raw, bypassing the builder's checks
    /// (which refuse `..` and absolute paths).
    fn raw(mut self, kind: EntryType, name: &str, link: &str, data: &[u8]) -> Self {
        let mut h = Self::header(kind, 0o644, data.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn device(mut self, path: &str, kind: EntryType, major: u32, minor: u32) -> Self {
        let mut h = Self::header(kind, 0o620, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    fn pax_xattr_file(mut self, path: &str, name: &str, value: &[u8], data: &[u8]) -> Self {
        let key = format!("SCHILY.xattr.{name}");
        self.0.append_pax_extensions([(key.as_str(), value)]).unwrap();
        self.file(path, 0o644, data)
    }

    fn tar(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

fn sample() -> Vec<u8> {
    Layer::new()
        .dir("etc/", 0o755)
        .file("etc/hostname", 0o644, b"kiln\n")
        .file("usr/bin/tool", 0o755, b"#!/bin/sh\necho hi\n")
        .tar()
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Nothing but `keep` is left in `dir`: no destination, no temp directory.
fn assert_nothing_left(dir: &Path) {
    let left: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn mode(path: &Path) -> u32 {
    path.symlink_metadata().unwrap().mode() & 0o7777
}

#[test]
fn plain_gzip_and_zstd_layers_unpack_to_the_same_files() {
    let tar = sample();
    for (blob, compression) in [
        (tar.clone(), Compression::None),
        (gzip(&tar), Compression::Gzip),
        (zstd(&tar), Compression::Zstd),
    ] {
        let scratch = ScratchDir::new().unwrap();
        let dest = scratch.path().join("fs");
        let stats = unpack_layer(&blob[..], &dest).unwrap();
        assert_eq!(stats.compression, compression);
        assert_eq!(fs::read(dest.join("etc/hostname")).unwrap(), b"kiln\n");
        assert_eq!(fs::read(dest.join("usr/bin/tool")).unwrap(), b"#!/bin/sh\necho hi\n");
        assert_eq!(mode(&dest.join("usr/bin/tool")), 0o755);
        assert_eq!(mode(&dest.join("etc/hostname")), 0o644);
        assert_eq!(stats.files, 2);
        assert_eq!(stats.bytes, 5 + 18);
        assert_eq!(stats.diff_id.hex(), sha256_hex(&tar), "{compression:?}");
        let mtime = dest.join("etc").metadata().unwrap().mtime();
        assert_eq!(mtime, 1_600_000_000, "directory mtime is set after its contents");
        assert_eq!(fs::read_dir(scratch.path()).unwrap().count(), 1, "only dest remains");
    }
}

#[test]
fn zstd_layers_from_the_zstd_tool_unpack() {
    let tar = sample();
    let scratch = ScratchDir::new().unwrap();
    let plain = scratch.path().join("layer.tar");
    fs::write(&plain, &tar).unwrap();
    let status =
        std::process::Command::new("zstd").args(["-q", "-19", "--check"]).arg(&plain).status();
    match status {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("skipped: the zstd command is not available ({other:?})");
            return;
        }
    }
    // Two frames, as zstd:chunked writes them, with a skippable frame between.
    let mut blob = fs::read(scratch.path().join("layer.tar.zst")).unwrap();
    let mut split = zstd(&tar[..512]);
    split.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
    split.extend_from_slice(&zstd(&tar[512..]));
    for (i, blob) in [std::mem::take(&mut blob), split].into_iter().enumerate() {
        let dest = scratch.path().join(format!("fs{i}"));
        let stats = unpack_layer(&blob[..], &dest).unwrap();
        assert_eq!(stats.compression, Compression::Zstd);
        assert_eq!(stats.diff_id.hex(), sha256_hex(&tar));
        assert_eq!(fs::read(dest.join("etc/hostname")).unwrap(), b"kiln\n");
    }
}

#[test]
fn diff_id_covers_padding_after_the_end_of_archive() {
    let mut tar = sample();
    tar.extend_from_slice(&[0u8; 10240]);
    let scratch = ScratchDir::new().unwrap();
    let stats = unpack_layer(&tar[..], &scratch.path().join("fs")).unwrap();
    assert_eq!(stats.diff_id.hex(), sha256_hex(&tar));
}

#[test]
fn setuid_setgid_and_sticky_bits_are_kept() {
    let tar = Layer::new()
        .file("bin/su", 0o4755, b"x")
        .file("bin/wall", 0o2755, b"y")
        .dir("tmp", 0o1777)
        .tar();
    let scratch = ScratchDir::new().unwrap();
    let dest = scratch.path().join("fs");
    unpack_layer(&tar[..], &dest).unwrap();
    assert_eq!(mode(&dest.join("bin/su")), 0o4755);
    assert_eq!(mode(&dest.join("bin/wall")), 0o2755);
    assert_eq!(mode(&dest.join("tmp")), 0o1777);
}

#[test]
fn symlinks_and_hard_links_are_recreated() {
    let tar = Layer::new()
        .file("bin/busybox", 0o755, b"bb")
        .hardlink("bin/sh", "bin/busybox")
        .symlink("bin/ls", "busybox")
        .symlink("etc-link", "/etc")
        .tar();
    let scratch = ScratchDir::new().unwrap();
    let dest = scratch.path().join("fs");
    unpack_layer(&tar[..], &dest).unwrap();
    let bb = dest.join("bin/busybox").metadata().unwrap();
    let sh = dest.join("bin/sh").metadata().unwrap();
    assert_eq!((bb.ino(), bb.nlink()), (sh.ino(), 2));
    assert_eq!(fs::read_link(dest.join("bin/ls")).unwrap(), PathBuf::from("busybox"));
    assert_eq!(fs::read_link(dest.join("etc-link")).unwrap(), PathBuf::from("/etc"));
}

#[test]
fn escaping_entries_are_refused_and_leave_nothing() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dot-dot",
            Layer::new().raw(EntryType::Regular, "../etc/passwd", "", b"pwned").tar(),
            r#"layer entry "../etc/passwd" escapes the layer"#,
        ),
        (
            "inner dot-dot",
            Layer::new().dir("a", 0o755).raw(EntryType::Regular, "a/../../x", "", b"x").tar(),
            r#"layer entry "a/../../x" escapes the layer"#,
        ),
        (
            "absolute",
            Layer::new().raw(EntryType::Regular, "/etc/passwd", "", b"pwned").tar(),
            r#"layer entry "/etc/passwd" escapes the layer"#,
        ),
        (
            "through a symlink",
            Layer::new().symlink("a", "/etc").file("a/passwd", 0o644, b"pwned").tar(),
            r#"layer entry "a/passwd" goes through symlink "a""#,
        ),
        (
            "through a relative symlink",
            Layer::new().dir("d", 0o755).symlink("d/up", "../..").file("d/up/x", 0o644, b"x").tar(),
            r#"layer entry "d/up/x" goes through symlink "d/up""#,
        ),
        (
            "hard link out",
            Layer::new().raw(EntryType::Link, "passwd", "../../etc/passwd", b"").tar(),
            r#"hard link "passwd" points to "../../etc/passwd", which escapes the layer"#,
        ),
        (
            "hard link through symlink",
            Layer::new().symlink("etc", "/etc").hardlink("passwd", "etc/passwd").tar(),
            r#"hard link "passwd" points to "etc/passwd", which escapes the layer"#,
        ),
    ];
    for (what, tar, message) in cases {
        let scratch = ScratchDir::new().unwrap();
        let err = unpack_layer(&tar[..], &scratch.path().join("fs")).unwrap_err();
        assert_eq!(err.to_string(), message, "{what}");
        assert_nothing_left(scratch.path());
    }
    assert!(fs::read("/etc/passwd").unwrap() != b"pwned");
}

#[test]
fn truncated_gzip_layer_is_refused_cleanly() {
    let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let blob = gzip(&Layer::new().file("big", 0o644, &big).tar());
    for cut in [blob.len() / 2, blob.len() - 4] {
        let scratch = ScratchDir::new().unwrap();
        let err = unpack_layer(&blob[..cut], &scratch.path().join("fs")).unwrap_err();
        assert!(
            matches!(err, SnapshotError::Read { .. } | SnapshotError::Truncated { .. }),
            "{err:?}"
        );
        assert_nothing_left(scratch.path());
    }
}

#[test]
fn truncated_plain_tar_in_file_data_is_refused() {
    let tar = Layer::new().file("f", 0o644, &[7u8; 5000]).tar();
    let scratch = ScratchDir::new().unwrap();
    let err = unpack_layer(&tar[..2048], &scratch.path().join("fs")).unwrap_err();
    assert!(matches!(err, SnapshotError::Truncated { .. } | SnapshotError::Read { .. }), "{err:?}");
    assert_nothing_left(scratch.path());
}

#[test]
fn an_existing_destination_is_not_overwritten() {
    let scratch = ScratchDir::new().unwrap();
    let dest = scratch.path().join("fs");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("mine"), "keep").unwrap();
    let err = unpack_layer(&sample()[..], &dest).unwrap_err();
    assert!(matches!(err, SnapshotError::Exists { .. }), "{err:?}");
    assert_eq!(fs::read(dest.join("mine")).unwrap(), b"keep");
    assert_eq!(fs::read_dir(scratch.path()).unwrap().count(), 1);
}

#[test]
fn later_entries_replace_earlier_ones() {
    let tar = Layer::new()
        .file("x", 0o644, b"old")
        .file("x", 0o600, b"new")
        .dir("d", 0o755)
        .file("d/f", 0o644, b"f")
        .file("d", 0o644, b"now a file")
        .tar();
    let scratch = ScratchDir::new().unwrap();
    let dest = scratch.path().join("fs");
    unpack_layer(&tar[..], &dest).unwrap();
    assert_eq!(fs::read(dest.join("x")).unwrap(), b"new");
    assert_eq!(mode(&dest.join("x")), 0o600);
    assert_eq!(fs::read(dest.join("d")).unwrap(), b"now a file");
}

#[test]
fn xattrs_from_pax_headers_are_set() {
    let tar = Layer::new().pax_xattr_file("f", "user.kiln", b"yes", b"data").tar();
    let scratch = ScratchDir::new().unwrap();
    let dest = scratch.path().join("fs");
    unpack_layer(&tar[..], &dest).unwrap();
    assert_eq!(xattr::get(dest.join("f"), "user.kiln").unwrap(), Some(b"yes".to_vec()));
}

#[test]
fn layers_cannot_set_overlay_xattrs() {
    let tar = Layer::new().pax_xattr_file("f", "trusted.overlay.redirect", b"/etc", b"").tar();
    let scratch = ScratchDir::new().unwrap();
    let dest = scratch.path().join("fs");
    unpack_layer(&tar[..], &dest).unwrap();
    assert_eq!(xattr::get(dest.join("f"), "trusted.overlay.redirect").unwrap(), None);
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    kiln_testing::require_privileged!();
    let tar = Layer::new()
        .dir("etc", 0o755)
        .file("etc/.wh.passwd", 0o644, b"")
        .dir("var/cache", 0o755)
        .file("var/cache/.wh..wh..opq", 0o644, b"")
        .file("var/cache/new", 0o644, b"n")
        .tar();
    let scratch = ScratchDir::new().unwrap();
    let dest = scratch.path().join("fs");
    unpack_layer(&tar[..], &dest).unwrap();
    let wh = dest.join("etc/passwd").symlink_metadata().unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!dest.join("etc/.wh.passwd").exists());
    assert!(kiln_snapshot::is_opaque(&dest.join("var/cache")));
    assert!(!dest.join("var/cache/.wh..wh..opq").exists());
    assert_eq!(fs::read(dest.join("var/cache/new")).unwrap(), b"n");
}

#[test]
fn device_nodes_fifos_and_owners_are_created() {
    kiln_testing::require_privileged!();
    let mut layer = Layer::new()
        .device("dev/null", EntryType::Char, 1, 3)
        .device("dev/loop9", EntryType::Block, 7, 9)
        .device("run/fifo", EntryType::Fifo, 0, 0);
    let mut h = Layer::header(EntryType::Regular, 0o4750, 1);
    h.set_uid(1234);
    h.set_gid(5678);
    layer.0.append_data(&mut h, "owned", &b"o"[..]).unwrap();
    let tar = layer.tar();
    let scratch = ScratchDir::new().unwrap();
    let dest = scratch.path().join("fs");
    unpack_layer(&tar[..], &dest).unwrap();
    let null = dest.join("dev/null").symlink_metadata().unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o620);
    let lp = dest.join("dev/loop9").symlink_metadata().unwrap();
    assert!(lp.file_type().is_block_device());
    assert_eq!(lp.rdev(), nix::sys::stat::makedev(7, 9));
    assert!(dest.join("run/fifo").symlink_metadata().unwrap().file_type().is_fifo());
    let owned = dest.join("owned").metadata().unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1234, 5678));
    assert_eq!(owned.permissions().mode() & 0o7777, 0o4750, "setuid survives chown");
}

#[test]
fn without_root_whiteouts_fail_saying_root_is_needed() {
    if nix::unistd::geteuid().is_root() {
        eprintln!("skipped: running as root, where whiteouts can be created");
        return;
    }
    let tar = Layer::new().file("etc/.wh.passwd", 0o644, b"").tar();
    let scratch = ScratchDir::new().unwrap();
    let err = unpack_layer(&tar[..], &scratch.path().join("fs")).unwrap_err();
    assert!(err.to_string().contains("only root can create"), "{err}");
    assert_nothing_left(scratch.path());
}
