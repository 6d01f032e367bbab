//! A full disk during a write: as root, on a 1 MiB tmpfs.

use std::io::Write;

use kiln_content::{ContentError, Store};
use kiln_testing::ScratchDir;

#[test]
fn full_disk_fails_the_write_and_leaves_nothing_behind() {
    kiln_testing::require_privileged!();
    let scratch = ScratchDir::new().expect("scratch dir");
    let mnt = scratch.path().join("small");
    std::fs::create_dir(&mnt).expect("mkdir");
    nix::mount::mount(
        Some("tmpfs"),
        &mnt,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .expect("mount a 1 MiB tmpfs");
    let result = std::panic::catch_unwind(|| {
        let store = Store::open(&mnt.join("content")).expect("open store");
        let small = store.put(b"fits").expect("a small blob fits");
        let data = vec![0x5au8; 2 * 1024 * 1024];

        let err = store.put(&data).expect_err("2 MiB on a 1 MiB disk");
        assert!(matches!(err, ContentError::Io { .. }), "{err:?}");
        let source = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
        assert!(source.contains("No space left on device"), "{err}: {source}");

        // Streamed through a writer: the write or the commit fails.
        let mut ingest = store.writer(None, None).expect("writer");
        let failed = match ingest.write_all(&data) {
            Err(_) => {
                drop(ingest);
                true
            }
            Ok(()) => ingest.commit().is_err(),
        };
        assert!(failed, "a 2 MiB blob cannot commit on a 1 MiB disk");

        assert_eq!(store.list().expect("list"), vec![small.clone()]);
        assert_eq!(store.read(&small).expect("read"), b"fits");
        let leftovers = std::fs::read_dir(mnt.join("content/ingest")).expect("ingest dir").count();
        assert_eq!(leftovers, 0, "ingest/ is empty");
        // The space is free again: another small blob fits.
        store.put(b"fits too").expect("space was released");
    });
    nix::mount::umount(&mnt).expect("unmount the tmpfs");
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
