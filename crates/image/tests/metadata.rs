//! The metadata store: tags, references, resolution and deletion, persisted.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use kiln_image::{ImageRecord, Metadata, MetadataError};
use kiln_testing::ScratchDir;
use kiln_types::{Digest, ErrorKind, HasKind, ImageRef};

fn digest(hex_start: &str) -> Digest {
    let hex = format!("{hex_start}{}", "0".repeat(64 - hex_start.len()));
    format!("sha256:{hex}").parse().unwrap()
}

fn record(id: &Digest) -> ImageRecord {
    ImageRecord {
        id: id.clone(),
        manifest: digest("ff"),
        config: id.clone(),
        layers: vec![],
        diff_ids: vec![],
        chain_ids: vec![],
        size: 0,
        created: None,
    }
}

fn r(s: &str) -> ImageRef {
    s.parse().unwrap()
}

#[test]
fn images_resolve_by_reference_full_id_and_short_id() {
    let dir = ScratchDir::new().unwrap();
    let md = Metadata::open(&dir.path().join("kiln.db")).unwrap();
    let id = digest("4a3f");
    md.put_image(&record(&id), &[r("python:3.10")]).unwrap();

    for name in ["python:3.10", "docker.io/library/python:3.10", "4a3f", "4", "sha256:4a3f"] {
        assert_eq!(md.resolve(name).unwrap().id, id, "{name}");
    }
    assert_eq!(md.resolve(&id.to_string()).unwrap().id, id);
    assert_eq!(md.resolve(id.hex()).unwrap().id, id);
    for missing in ["python", "python:3.11", "4a3e", "sha256:"] {
        let err = md.resolve(missing).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{missing}");
        assert_eq!(err.to_string(), format!("no such image: {missing}"));
    }
    assert_eq!(md.tags_of(&id).unwrap(), vec![r("python:3.10")]);
}

#[test]
fn an_ambiguous_short_id_is_an_error() {
    let dir = ScratchDir::new().unwrap();
    let md = Metadata::open(&dir.path().join("kiln.db")).unwrap();
    md.put_image(&record(&digest("aaaa")), &[]).unwrap();
    md.put_image(&record(&digest("aaab")), &[]).unwrap();
    assert!(matches!(md.resolve("aaa"), Err(MetadataError::Ambiguous { .. })));
    assert_eq!(md.resolve("aaab").unwrap().id, digest("aaab"));
}

#[test]
fn tags_move_untag_and_never_name_a_missing_image() {
    let dir = ScratchDir::new().unwrap();
    let md = Metadata::open(&dir.path().join("kiln.db")).unwrap();
    let (a, b) = (digest("a1"), digest("b2"));
    md.put_image(&record(&a), &[r("app")]).unwrap();
    md.put_image(&record(&b), &[]).unwrap();
    assert_eq!(md.resolve("app:latest").unwrap().id, a);
    assert_eq!(md.tag(&r("app:latest"), &b).unwrap(), Some(a.clone()));
    assert_eq!(md.resolve("app").unwrap().id, b);

    let missing = digest("cc");
    assert!(matches!(md.tag(&r("x:1"), &missing), Err(MetadataError::ImageNotFound { .. })));
    assert!(md.resolve("x:1").is_err());

    let pinned = r(&format!("app@{}", digest("dd")));
    md.tag(&pinned, &a).unwrap();
    assert_eq!(md.resolve(&pinned.to_string()).unwrap().id, a);
    assert_eq!(md.digests_of(&a).unwrap(), vec![pinned.clone()]);

    assert_eq!(md.untag(&r("app")).unwrap(), Some(b));
    assert_eq!(md.untag(&r("app")).unwrap(), None);
    assert!(md.resolve("app").is_err());
    assert_eq!(md.untag(&pinned).unwrap(), Some(a));
}

#[test]
fn deleting_a_tagged_image_is_refused_unless_forced() {
    let dir = ScratchDir::new().unwrap();
    let md = Metadata::open(&dir.path().join("kiln.db")).unwrap();
    let id = digest("de");
    md.put_image(&record(&id), &[r("one:1"), r("two:2")]).unwrap();
    let err = md.delete_image(&id, false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains("one:1"), "{err}");
    assert!(md.image(&id).unwrap().is_some());

    let removed = md.delete_image(&id, true).unwrap();
    assert_eq!(removed.len(), 2);
    assert!(md.image(&id).unwrap().is_none());
    assert!(md.references().unwrap().is_empty());
    assert!(matches!(md.delete_image(&id, true), Err(MetadataError::ImageNotFound { .. })));
}

#[test]
fn metadata_persists_across_reopen() {
    let dir = ScratchDir::new().unwrap();
    let path = dir.path().join("kiln.db");
    let id = digest("77");
    {
        let md = Metadata::open(&path).unwrap();
        md.put_image(&record(&id), &[r("keep:me")]).unwrap();
    }
    let md = Metadata::open(&path).unwrap();
    assert_eq!(md.resolve("keep:me").unwrap(), record(&id));
    assert_eq!(md.images().unwrap().len(), 1);
}
