//! The blob store's invariants, on a real file system in a temp dir.

use std::io::{Read, Write};
use std::path::Path;

use kiln_content::{ContentError, Store};
use kiln_types::{Digest, ErrorKind, HasKind};

/// sha256 of "hello world".
const HELLO: &str = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
/// sha256 of "".
const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("content")).expect("open store");
    (dir, store)
}

fn digest(s: &str) -> Digest {
    s.parse().expect("digest")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn assert_nothing_left(store: &Store) {
    assert_eq!(files_in(&store.root().join("blobs/sha256")), Vec::<String>::new(), "blobs/");
    assert_eq!(files_in(&store.root().join("ingest")), Vec::<String>::new(), "ingest/");
}

#[test]
fn open_creates_the_layout() {
    let (_dir, store) = store();
    assert!(store.root().join("blobs/sha256").is_dir());
    assert!(store.root().join("ingest").is_dir());
    // Opening again is fine.
    Store::open(store.root()).expect("reopen");
}

#[test]
fn put_stores_bytes_under_their_sha256() {
    let (_dir, store) = store();
    let d = store.put(b"hello world").expect("put");
    assert_eq!(d, digest(HELLO));
    assert!(store.contains(&d));
    assert_eq!(store.size(&d).expect("size"), 11);
    assert_eq!(store.read(&d).expect("read"), b"hello world");
    assert_eq!(
        store.path(&d),
        store
            .root()
            .join("blobs/sha256/b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
    );
    let mut text = String::new();
    store.open_blob(&d).expect("open").read_to_string(&mut text).expect("read");
    assert_eq!(text, "hello world");
    assert_eq!(store.list().expect("list"), vec![d.clone()]);
    store.verify(&d).expect("verify");
    assert_eq!(files_in(&store.root().join("ingest")), Vec::<String>::new());
}

#[test]
fn empty_blob_is_a_blob() {
    let (_dir, store) = store();
    assert_eq!(store.put(b"").expect("put"), digest(EMPTY));
    assert_eq!(store.read(&digest(EMPTY)).expect("read"), b"");
}

#[test]
fn blob_is_invisible_until_committed() {
    let (_dir, store) = store();
    let d = digest(HELLO);
    let mut ingest = store.writer(Some(&d), Some(11)).expect("writer");
    ingest.write_all(b"hello ").expect("write");
    ingest.flush().expect("flush");
    assert_eq!(ingest.written(), 6);
    assert!(!store.contains(&d));
    assert!(matches!(store.open_blob(&d), Err(ContentError::NotFound { .. })));
    assert!(matches!(store.size(&d), Err(ContentError::NotFound { .. })));
    assert_eq!(store.list().expect("list"), vec![]);
    assert_eq!(files_in(&store.root().join("ingest")).len(), 1);

    ingest.write_all(b"world").expect("write");
    assert_eq!(ingest.commit().expect("commit"), d);
    assert_eq!(store.read(&d).expect("read"), b"hello world");
    assert_eq!(files_in(&store.root().join("ingest")), Vec::<String>::new());
}

#[test]
fn streamed_large_blob_matches_its_expected_digest() {
    let (_dir, store) = store();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let d = store.put(&data).expect("put");
    store.delete(&d).expect("delete");

    let mut ingest = store.writer(Some(&d), Some(data.len() as u64)).expect("writer");
    std::io::copy(&mut data.as_slice(), &mut ingest).expect("copy");
    assert_eq!(ingest.commit().expect("commit"), d);
    assert_eq!(store.read(&d).expect("read"), data);
}

#[test]
fn mismatching_digest_is_refused_and_leaves_nothing() {
    let (_dir, store) = store();
    let wrong = digest(EMPTY);
    let mut ingest = store.writer(Some(&wrong), None).expect("writer");
    ingest.write_all(b"hello world").expect("write");
    let err = ingest.commit().expect_err("must not commit");
    match &err {
        ContentError::DigestMismatch { expected, actual } => {
            assert_eq!(*expected, wrong);
            assert_eq!(*actual, digest(HELLO));
        }
        other => panic!("want a digest mismatch, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(EMPTY) && message.contains(HELLO), "{message}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(!store.contains(&digest(HELLO)));
    assert_nothing_left(&store);
}

#[test]
fn short_blob_is_a_size_mismatch_and_leaves_nothing() {
    let (_dir, store) = store();
    let mut ingest = store.writer(Some(&digest(HELLO)), Some(11)).expect("writer");
    ingest.write_all(b"hello").expect("write");
    let err = ingest.commit().expect_err("truncated");
    assert!(matches!(err, ContentError::SizeMismatch { expected: 11, actual: 5, .. }), "{err:?}");
    assert!(err.to_string().contains(HELLO), "{err}");
    assert_nothing_left(&store);
}

#[test]
fn writing_past_the_expected_size_fails_and_cannot_commit() {
    let (_dir, store) = store();
    let mut ingest = store.writer(None, Some(5)).expect("writer");
    ingest.write_all(b"hello").expect("first five bytes");
    let err = ingest.write_all(b" world").expect_err("over the size");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let err = ingest.commit().expect_err("a failed ingest cannot commit");
    assert!(matches!(err, ContentError::TooManyBytes { expected: 5 }), "{err:?}");
    assert_nothing_left(&store);
}

#[test]
fn dropped_ingest_leaves_nothing() {
    let (_dir, store) = store();
    let mut ingest = store.writer(None, None).expect("writer");
    ingest.write_all(&[7u8; 100_000]).expect("write");
    assert_eq!(files_in(&store.root().join("ingest")).len(), 1);
    drop(ingest);
    assert_nothing_left(&store);
}

#[test]
fn writing_the_same_content_twice_is_one_blob() {
    let (_dir, store) = store();
    let first = store.put(b"hello world").expect("first");
    let second = store.put(b"hello world").expect("second");
    assert_eq!(first, second);

    // Two writers racing with the same content both succeed.
    let mut a = store.writer(None, None).expect("writer a");
    let mut b = store.writer(Some(&first), None).expect("writer b");
    a.write_all(b"hello world").expect("write a");
    b.write_all(b"hello world").expect("write b");
    assert_eq!(a.commit().expect("commit a"), first);
    assert_eq!(b.commit().expect("commit b"), first);

    assert_eq!(store.list().expect("list"), vec![first.clone()]);
    assert_eq!(store.read(&first).expect("read"), b"hello world");
    assert_eq!(files_in(&store.root().join("ingest")), Vec::<String>::new());
}

#[test]
fn gc_ingests_removes_leftovers_of_a_killed_writer() {
    let (_dir, store) = store();
    let kept = store.put(b"kept").expect("put");
    let mut ingest = store.writer(None, None).expect("writer");
    ingest.write_all(b"half a layer").expect("write");
    ingest.flush().expect("flush");
    // A killed process runs no destructors.
    std::mem::forget(ingest);
    assert_eq!(files_in(&store.root().join("ingest")).len(), 1);

    let reopened = Store::open(store.root()).expect("reopen");
    assert_eq!(reopened.gc_ingests().expect("gc"), 1);
    assert_eq!(files_in(&store.root().join("ingest")), Vec::<String>::new());
    assert_eq!(reopened.list().expect("list"), vec![kept.clone()]);
    assert_eq!(reopened.read(&kept).expect("read"), b"kept");
    assert_eq!(reopened.gc_ingests().expect("gc again"), 0);
}

#[test]
fn only_sha256_is_stored() {
    let (_dir, store) = store();
    let sha512 = digest(&format!("sha512:{}", "ab".repeat(64)));
    assert!(!store.contains(&sha512));
    assert!(matches!(store.open_blob(&sha512), Err(ContentError::NotFound { .. })));
    let err = store.writer(Some(&sha512), None).expect_err("sha512 ingest");
    assert!(matches!(err, ContentError::UnsupportedAlgorithm { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(store.put(b"x").expect("put").algorithm(), kiln_types::Algorithm::Sha256);
}

#[test]
fn missing_blob_error_names_the_digest() {
    let (_dir, store) = store();
    let d = digest(HELLO);
    for err in [
        store.open_blob(&d).expect_err("open"),
        store.read(&d).expect_err("read"),
        store.size(&d).expect_err("size"),
        store.delete(&d).expect_err("delete"),
        store.verify(&d).expect_err("verify"),
    ] {
        assert!(matches!(err, ContentError::NotFound { .. }), "{err:?}");
        assert_eq!(err.to_string(), format!("blob {HELLO} not found"));
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}

#[test]
fn read_refuses_blobs_over_the_limit() {
    let (_dir, store) = store();
    let d = store.put(b"hello world").expect("put");
    let err = store.read_limited(&d, 10).expect_err("too large");
    assert!(matches!(err, ContentError::TooLarge { size: 11, limit: 10, .. }), "{err:?}");
    assert_eq!(store.read_limited(&d, 11).expect("at the limit"), b"hello world");
}

#[test]
fn deleted_blob_is_gone() {
    let (_dir, store) = store();
    let d = store.put(b"hello world").expect("put");
    store.delete(&d).expect("delete");
    assert!(!store.contains(&d));
    assert_eq!(store.list().expect("list"), vec![]);
    assert!(matches!(store.delete(&d), Err(ContentError::NotFound { .. })));
}

#[test]
fn list_is_sorted_and_skips_foreign_files() {
    let (_dir, store) = store();
    let mut want =
        vec![store.put(b"a").expect("a"), store.put(b"b").expect("b"), store.put(b"c").expect("c")];
    want.sort();
    std::fs::write(store.root().join("blobs/sha256/not-a-digest"), "x").expect("write");
    assert_eq!(store.list().expect("list"), want);
}

#[test]
fn verify_detects_a_blob_damaged_after_commit() {
    let (_dir, store) = store();
    let d = store.put(b"hello world").expect("put");
    std::fs::write(store.path(&d), "hello w0rld").expect("damage");
    let err = store.verify(&d).expect_err("damaged");
    assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err:?}");
}

#[test]
fn io_errors_name_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("file");
    std::fs::write(&file, "").expect("write");
    let err = Store::open(&file.join("content")).expect_err("root below a file");
    assert!(matches!(err, ContentError::Io { .. }), "{err:?}");
    assert!(err.to_string().starts_with("cannot create "), "{err}");
    assert!(err.to_string().contains(&file.display().to_string()), "{err}");
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(err.kind(), ErrorKind::Internal);
}
