//! Stacking layers: a real overlay mount (root) and the copying snapshotter.

// Helpers outside #[test] fns panic on failure too, as tests should.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use kiln_snapshot::{chain_ids, materialize, Snapshots, WhiteoutFormat};
use kiln_testing::ScratchDir;
use kiln_types::{ContainerId, Digest};
use tar::{Builder, EntryType, Header};

fn layer(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = Header::new_gnu();
        let is_dir = path.ends_with('/');
        h.set_entry_type(if is_dir { EntryType::Directory } else { EntryType::Regular });
        h.set_mode(if is_dir { 0o755 } else { 0o644 });
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn base() -> Vec<u8> {
    layer(&[
        ("etc/", b""),
        ("etc/passwd", b"root:x:0:0\n"),
        ("etc/hostname", b"base\n"),
        ("var/cache/", b""),
        ("var/cache/old", b"old"),
    ])
}

fn top() -> Vec<u8> {
    layer(&[
        ("etc/", b""),
        ("etc/.wh.passwd", b""),
        ("etc/motd", b"hello\n"),
        ("var/cache/", b""),
        ("var/cache/.wh..wh..opq", b""),
        ("var/cache/new", b"new"),
    ])
}

/// Unpack base and top into a store; their chain ids, bottom first.
fn unpack_both(snapshots: &Snapshots) -> Vec<Digest> {
    let (base, top) = (base(), top());
    let diff_ids = [sha(&base), sha(&top)];
    let ids = chain_ids(&diff_ids);
    for (id, tar) in ids.iter().zip([base, top]) {
        let stats = snapshots.unpack(id, &tar[..]).unwrap();
        assert!(snapshots.has_layer(id));
        assert_eq!(stats.diff_id, sha(&tar));
    }
    ids
}

fn sha(data: &[u8]) -> Digest {
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}").parse().unwrap()
}

fn assert_merged(root: &Path) {
    assert_eq!(fs::read(root.join("etc/hostname")).unwrap(), b"base\n");
    assert_eq!(fs::read(root.join("etc/motd")).unwrap(), b"hello\n");
    assert!(root.join("etc/passwd").symlink_metadata().is_err(), "whited-out file is visible");
    assert!(root.join("etc/.wh.passwd").symlink_metadata().is_err());
    assert!(root.join("var/cache/old").symlink_metadata().is_err(), "opaque dir shows lower file");
    assert!(root.join("var/cache/.wh..wh..opq").symlink_metadata().is_err());
    assert_eq!(fs::read(root.join("var/cache/new")).unwrap(), b"new");
}

/// Unmounts on drop, so a failed assertion does not leave the mount behind.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn overlay_mount_of_two_layers_hides_whited_out_files() {
    kiln_testing::require_privileged!();
    let scratch = ScratchDir::new().unwrap();
    let snapshots = Snapshots::open(&scratch.path().join("snapshots")).unwrap();
    let ids = unpack_both(&snapshots);
    let id: ContainerId = scratch.name().parse().unwrap();
    let upper = snapshots.prepare_container(&id).unwrap();
    let spec = snapshots.mounts(&ids, Some(&upper)).unwrap();
    assert_eq!(spec.fstype, "overlay");
    assert!(spec.options[0].starts_with(&format!(
        "lowerdir={}:{}",
        snapshots.layer_dir(&ids[1]).display(),
        snapshots.layer_dir(&ids[0]).display()
    )));

    let target = scratch.path().join("rootfs");
    fs::create_dir(&target).unwrap();
    nix::mount::mount(
        Some(&spec.source),
        &target,
        Some(spec.fstype.as_str()),
        nix::mount::MsFlags::empty(),
        Some(spec.options_string().as_str()),
    )
    .unwrap();
    let _mounted = Mounted(&target);
    assert_merged(&target);
    fs::write(target.join("etc/written"), "w").unwrap();
    assert_eq!(fs::read(upper.upper.join("etc/written")).unwrap(), b"w");
}

#[test]
fn copying_snapshotter_applies_oci_whiteouts_without_root() {
    let scratch = ScratchDir::new().unwrap();
    let snapshots =
        Snapshots::open_with_whiteouts(&scratch.path().join("snapshots"), WhiteoutFormat::Oci)
            .unwrap();
    let ids = unpack_both(&snapshots);
    assert!(snapshots.layer_dir(&ids[1]).join("etc/.wh.passwd").is_file());
    let dirs: Vec<_> = ids.iter().map(|id| snapshots.layer_dir(id)).collect();
    let lowers: Vec<&Path> = dirs.iter().map(|d| d.as_path()).collect();
    let dest = scratch.path().join("rootfs");
    materialize(&lowers, &dest).unwrap();
    assert_merged(&dest);
}

#[test]
fn copying_snapshotter_applies_overlay_whiteouts() {
    kiln_testing::require_privileged!();
    let scratch = ScratchDir::new().unwrap();
    let snapshots = Snapshots::open(&scratch.path().join("snapshots")).unwrap();
    let ids = unpack_both(&snapshots);
    let dirs: Vec<_> = ids.iter().map(|id| snapshots.layer_dir(id)).collect();
    let lowers: Vec<&Path> = dirs.iter().map(|d| d.as_path()).collect();
    let dest = scratch.path().join("rootfs");
    materialize(&lowers, &dest).unwrap();
    assert_merged(&dest);
}

#[test]
fn failed_unpack_leaves_no_layer() {
    let scratch = ScratchDir::new().unwrap();
    let snapshots = Snapshots::open(&scratch.path().join("snapshots")).unwrap();
    let id = sha(b"bad");
    let mut bad = base();
    bad.truncate(700);
    assert!(snapshots.unpack(&id, &bad[..]).is_err());
    assert!(!snapshots.has_layer(&id));
    assert_eq!(fs::read_dir(scratch.path().join("snapshots/layers")).unwrap().count(), 0);
    // Unpacking it again, whole, works; twice is a conflict.
    snapshots.unpack(&id, &base()[..]).unwrap();
    assert!(snapshots.unpack(&id, &base()[..]).is_err());
    snapshots.remove_layer(&id).unwrap();
    assert!(!snapshots.has_layer(&id));
}
