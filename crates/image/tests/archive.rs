//! `save` and `load`: round trips, Docker's legacy format, OCI layouts, and bad archives.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

mod common;

use common::{entries, gzip, rootfs_tar, sha256, tar_from, tar_of, Root};
use kiln_image::{
    import_rootfs, load, media_type, save, ArchiveError, ImageIndex, ImportOptions, LayerError,
};
use kiln_types::ImageRef;

fn imported(root: &Root, tar: &[u8], reference: &str) -> kiln_image::ImageRecord {
    let options = ImportOptions {
        reference: Some(reference.parse().unwrap()),
        changes: vec![r#"CMD ["sh"]"#.into()],
        created: Some("2024-01-01T00:00:00Z".into()),
        ..ImportOptions::default()
    };
    import_rootfs(&root.content, &root.snapshots, &root.metadata, tar, &options).unwrap()
}

fn saved(root: &Root, names: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    save(&root.content, &root.metadata, names, &mut out).unwrap();
    out
}

fn r(s: &str) -> ImageRef {
    s.parse().unwrap()
}

fn assert_nothing_tagged(root: &Root) {
    assert!(root.metadata.references().unwrap().is_empty());
    assert!(root.metadata.images().unwrap().is_empty());
}

#[test]
fn save_then_load_gives_the_same_image_and_tags() {
    let src = Root::new();
    let record = imported(&src, &rootfs_tar(), "round:trip");
    src.metadata.tag(&r("round:second"), &record.id).unwrap();
    let archive = saved(&src, &["round"]);

    let files = entries(&archive);
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    for want in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(names.contains(&want), "{names:?}");
    }
    let manifest_json: serde_json::Value =
        serde_json::from_slice(&files.iter().find(|(p, _)| p == "manifest.json").unwrap().1)
            .unwrap();
    assert_eq!(manifest_json[0]["Config"], format!("blobs/sha256/{}", record.id.hex()));
    assert_eq!(manifest_json[0]["RepoTags"], serde_json::json!(["round:second", "round:trip"]));
    assert_eq!(manifest_json[0]["Layers"][0], format!("blobs/sha256/{}", record.diff_ids[0].hex()));

    let dst = Root::new();
    let loaded = load(&dst.content, &dst.snapshots, &dst.metadata, &archive[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].record.id, record.id);
    assert_eq!(loaded[0].record.manifest, record.manifest, "the stored manifest is reused");
    assert_eq!(dst.metadata.resolve("round:trip").unwrap().id, record.id);
    assert_eq!(dst.metadata.resolve("round:second").unwrap().id, record.id);
    let fs = dst.snapshots.layer_dir(&loaded[0].record.chain_ids[0]);
    assert!(fs.join("bin/hello").is_file());

    // Loading again changes nothing and needs no unpacking.
    let again = load(&dst.content, &dst.snapshots, &dst.metadata, &archive[..]).unwrap();
    assert_eq!(again[0].record, loaded[0].record);
}

#[test]
fn a_compressed_layer_is_saved_uncompressed_with_a_matching_manifest() {
    let src = Root::new();
    let tar = rootfs_tar();
    let record = imported(&src, &gzip(&tar), "zipped:1");
    let archive = saved(&src, &[&record.id.hex()[..12]]);
    let files = entries(&archive);
    let layer = &files.iter().find(|(p, _)| p.ends_with(record.diff_ids[0].hex())).unwrap().1;
    assert_eq!(layer, &tar);

    let index =
        ImageIndex::from_json(&files.iter().find(|(p, _)| p == "index.json").unwrap().1).unwrap();
    let manifest_path = format!("blobs/sha256/{}", index.manifests[0].digest.hex());
    let manifest = kiln_image::ImageManifest::from_json(
        &files.iter().find(|(p, _)| *p == manifest_path).unwrap().1,
    )
    .unwrap();
    assert_eq!(manifest.layers[0].digest, record.diff_ids[0]);
    assert_eq!(manifest.layers[0].media_type, media_type::OCI_LAYER);

    let dst = Root::new();
    let loaded = load(&dst.content, &dst.snapshots, &dst.metadata, &gzip(&archive)[..]).unwrap();
    assert_eq!(loaded[0].record.id, record.id);
    assert!(loaded[0].tags.is_empty(), "saved by id: no tags");
}

/// A `docker save` archive as Docker 20.10 writes it, with a second layer
/// that is a symlink to the first, as Docker writes repeated layers.
fn legacy_archive(layer: &[u8], tamper: bool) -> (Vec<u8>, String) {
    let diff = sha256(layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/bin/hello"]}},"rootfs":{{"type":"layers","diff_ids":["{diff}","{diff}"]}}}}"#
    );
    let config_id = sha256(config.as_bytes());
    let config_hex = config_id.trim_start_matches("sha256:").to_owned();
    let (l1, l2) = ("1".repeat(64), "2".repeat(64));
    let manifest = format!(
        r#"[{{"Config":"{config_hex}.json","RepoTags":["legacy:1","example.com/team/legacy:2"],"Layers":["{l1}/layer.tar","{l2}/layer.tar"]}}]"#
    );
    let mut stored_layer = layer.to_vec();
    if tamper {
        let last = stored_layer.iter().rposition(|b| *b == b'\n').unwrap();
        stored_layer[last] = b'!';
    }
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut h, path, data).unwrap();
    };
    add(&format!("{l1}/VERSION"), b"1.0");
    add(&format!("{l1}/json"), b"{}");
    add(&format!("{l1}/layer.tar"), &stored_layer);
    add(&format!("{config_hex}.json"), config.as_bytes());
    add("manifest.json", manifest.as_bytes());
    add("repositories", br#"{"legacy":{"1":"x"}}"#);
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder
        .append_link(&mut link, format!("{l2}/layer.tar"), format!("../{l1}/layer.tar"))
        .unwrap();
    (builder.into_inner().unwrap(), config_id)
}

#[test]
fn a_legacy_docker_archive_loads_with_its_tags() {
    let root = Root::new();
    let tar = rootfs_tar();
    let (archive, config_id) = legacy_archive(&tar, false);
    let loaded = load(&root.content, &root.snapshots, &root.metadata, &archive[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    let record = &loaded[0].record;
    assert_eq!(record.id.to_string(), config_id);
    assert_eq!(record.layers.len(), 2);
    assert_eq!(record.chain_ids.len(), 2);
    assert_eq!(loaded[0].tags, vec![r("legacy:1"), r("example.com/team/legacy:2")]);
    assert_eq!(root.metadata.resolve("legacy:1").unwrap().id, record.id);
    assert!(root.snapshots.layer_dir(&record.chain_ids[1]).join("bin/hello").is_file());
    assert!(root.content.contains(&record.manifest));

    // It saves and loads again under the same id.
    let resaved = saved(&root, &["legacy:1"]);
    let dst = Root::new();
    let again = load(&dst.content, &dst.snapshots, &dst.metadata, &resaved[..]).unwrap();
    assert_eq!(again[0].record.id, record.id);
}

#[test]
fn a_legacy_layer_that_does_not_match_its_diff_id_is_refused() {
    let root = Root::new();
    let (archive, _) = legacy_archive(&rootfs_tar(), true);
    let err = load(&root.content, &root.snapshots, &root.metadata, &archive[..]).unwrap_err();
    assert!(matches!(err, ArchiveError::Layer(LayerError::DiffIdMismatch { .. })), "{err:?}");
    assert!(err.to_string().contains(&sha256(&rootfs_tar())), "{err}");
    assert_nothing_tagged(&root);
}

#[test]
fn an_oci_layout_tar_loads_with_tags_from_its_annotations() {
    let src = Root::new();
    let record = imported(&src, &rootfs_tar(), "oci:1");
    let archive = saved(&src, &["oci:1"]);
    // Keep only the OCI layout, naming the image by ref name only.
    let mut files: Vec<(String, Vec<u8>)> = entries(&archive)
        .into_iter()
        .filter(|(p, _)| p != "manifest.json" && p != "repositories")
        .collect();
    let (_, index_bytes) = files.iter_mut().find(|(p, _)| p == "index.json").unwrap();
    let mut index = ImageIndex::from_json(index_bytes).unwrap();
    index.manifests[0].annotations.clear();
    index.manifests[0]
        .annotations
        .insert(media_type::ANNOTATION_REF_NAME.into(), "example.com/x/oci:2".into());
    *index_bytes = index.to_json();

    let dst = Root::new();
    let loaded = load(&dst.content, &dst.snapshots, &dst.metadata, &tar_from(&files)[..]).unwrap();
    assert_eq!(loaded[0].record.id, record.id);
    assert_eq!(loaded[0].tags, vec![r("example.com/x/oci:2")]);
    assert_eq!(dst.metadata.resolve("example.com/x/oci:2").unwrap().id, record.id);
}

#[test]
fn a_tampered_blob_is_refused_naming_its_digest_and_nothing_is_tagged() {
    let src = Root::new();
    let record = imported(&src, &rootfs_tar(), "tamper:1");
    let mut files = entries(&saved(&src, &["tamper:1"]));
    let layer_path = format!("blobs/sha256/{}", record.diff_ids[0].hex());
    let (_, layer) = files.iter_mut().find(|(p, _)| *p == layer_path).unwrap();
    let last = layer.iter().rposition(|b| *b == b'\n').unwrap();
    layer[last] = b'!';

    let dst = Root::new();
    let err = load(&dst.content, &dst.snapshots, &dst.metadata, &tar_from(&files)[..]).unwrap_err();
    assert!(matches!(err, ArchiveError::BlobMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(&record.diff_ids[0].to_string()), "{err}");
    assert!(!dst.content.contains(&record.diff_ids[0]));
    assert_nothing_tagged(&dst);
}

#[test]
fn a_truncated_archive_is_refused_and_nothing_is_tagged() {
    let src = Root::new();
    imported(&src, &rootfs_tar(), "cut:1");
    let archive = saved(&src, &["cut:1"]);
    for cut in [0, 100, 512 * 3 + 7, archive.len() / 2, archive.len() - 1536 - 300] {
        let dst = Root::new();
        let result = load(&dst.content, &dst.snapshots, &dst.metadata, &archive[..cut]);
        assert!(result.is_err(), "cut at {cut} loaded");
        assert_nothing_tagged(&dst);
    }
}

#[test]
fn an_archive_without_images_is_refused() {
    let root = Root::new();
    let err = load(&root.content, &root.snapshots, &root.metadata, &tar_of(&[("x", b"y")])[..])
        .unwrap_err();
    assert!(matches!(err, ArchiveError::NoManifest), "{err:?}");
    let err =
        load(&root.content, &root.snapshots, &root.metadata, &b"not a tar at all"[..]).unwrap_err();
    assert!(matches!(err, ArchiveError::Corrupt { .. } | ArchiveError::NoManifest), "{err:?}");
    let mut out = Vec::new();
    let err = save(&root.content, &root.metadata, &["nope:1"], &mut out).unwrap_err();
    assert_eq!(err.to_string(), "no such image: nope:1");
}
