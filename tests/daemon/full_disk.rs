//! A disk that fills up during `kiln load` (as root: the daemon's root is a
//! small tmpfs): one clear error, exit code 1, and a store that stays
//! consistent: no partial blob or layer left, no tag without its image,
//! and room again for what fits.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_testing::ScratchDir;

use crate::common::{Run, TestDaemon};

/// Size of the daemon's root filesystem.
const ROOT_SIZE: &str = "8m";

/// A daemon whose root is a fresh tmpfs of [`ROOT_SIZE`]; the scratch dir
/// detaches it on drop, after the daemon is killed.
fn daemon_on_small_tmpfs() -> TestDaemon {
    let dir = ScratchDir::new().expect("scratch dir");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("mkdir root");
    nix::mount::mount(
        Some("tmpfs"),
        &root,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(format!("size={ROOT_SIZE},mode=0711").as_str()),
    )
    .expect("mount a tmpfs for the daemon's root");
    let mut daemon = TestDaemon { dir, child: None };
    daemon.child = Some(daemon.command().spawn().expect("spawn kiln daemon"));
    daemon.wait_until_serving();
    daemon
}

/// A tar in `dir` holding one file `name` of `size` random bytes (random,
/// so that no layer of another image shares it).
fn random_rootfs_tar(dir: &Path, name: &str, size: usize) -> PathBuf {
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).expect("mkdir");
    let mut bytes = vec![0u8; size];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .expect("random bytes");
    std::fs::File::create(src.join(name))
        .and_then(|mut f| f.write_all(&bytes))
        .expect("write data");
    let tar = dir.join(format!("{name}.tar"));
    Run::ok(Command::new("tar").arg("-C").arg(&src).arg("-cf").arg(&tar).arg("."));
    tar
}

/// An image `reference` of one random file, saved as a `docker save`
/// archive by another daemon; the archive's path.
fn saved_image(source: &TestDaemon, reference: &str, size: usize) -> PathBuf {
    let name = reference.replace([':', '/'], "-");
    let tar = random_rootfs_tar(source.dir.path(), &name, size);
    source.kiln_ok(&["import", tar.to_str().expect("utf-8"), reference]);
    let archive = source.dir.path().join(format!("{name}.archive.tar"));
    source.kiln_ok(&["save", "-o", archive.to_str().expect("utf-8"), reference]);
    archive
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in std::fs::read_dir(&next).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_load_that_fills_the_disk_fails_cleanly_and_the_store_stays_whole() {
    kiln_testing::require_privileged!();
    let source = TestDaemon::start();
    let before = saved_image(&source, "kiln-t-before:1", 64 * 1024);
    let big = saved_image(&source, "kiln-t-big:1", 12 * 1024 * 1024);
    let after = saved_image(&source, "kiln-t-after:1", 64 * 1024);

    let daemon = daemon_on_small_tmpfs();
    daemon.kiln_ok(&["load", "-i", before.to_str().expect("utf-8")]);
    let blobs = daemon.root().join("content/blobs/sha256");
    let stored_before = files_under(&blobs);
    let snapshots_before = files_under(&daemon.root().join("snapshots"));

    let full = daemon.kiln_run(&["load", "-i", big.to_str().expect("utf-8")]);
    assert_eq!(full.code, Some(1), "{full:?}");
    assert_eq!(full.stderr.lines().count(), 1, "one line: {full:?}");
    assert!(
        full.stderr.starts_with("Error response from daemon: ")
            && full.stderr.contains("No space left on device"),
        "{full:?}"
    );

    // Nothing of the failed load is visible or left behind.
    assert_eq!(daemon.image_names(), ["kiln-t-before:1"]);
    assert_eq!(files_under(&blobs), stored_before, "no blob of the failed load");
    assert_eq!(files_under(&daemon.root().join("content/ingest")), Vec::<String>::new());
    assert_eq!(files_under(&daemon.root().join("snapshots")), snapshots_before);
    let inspect = daemon.kiln_run(&["image", "inspect", "kiln-t-big:1"]);
    assert_eq!(inspect.code, Some(1), "no tag points at a missing image: {inspect:?}");

    // The image loaded before is whole, and what fits still loads.
    let resaved = daemon.dir.path().join("resaved.tar");
    daemon.kiln_ok(&["save", "-o", resaved.to_str().expect("utf-8"), "kiln-t-before:1"]);
    let fresh = TestDaemon::start();
    fresh.kiln_ok(&["load", "-i", resaved.to_str().expect("utf-8")]);
    assert_eq!(
        fresh.kiln_ok(&["images", "-q", "--no-trunc"]),
        source.kiln_ok(&["images", "-q", "--no-trunc", "kiln-t-before:1"])
    );
    let loaded = daemon.kiln_ok(&["load", "-i", after.to_str().expect("utf-8")]);
    assert_eq!(loaded, "Loaded image: kiln-t-after:1\n");
    assert_eq!(daemon.image_names(), ["kiln-t-after:1", "kiln-t-before:1"]);
}
