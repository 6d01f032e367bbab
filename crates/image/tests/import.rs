//! `import_rootfs`: a rootfs tar becomes a tagged one-layer image.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

mod common;

use common::{gzip, rootfs_tar, sha256, Root};
use kiln_image::{
    import_rootfs, media_type, ImageConfig, ImageManifest, ImportError, ImportOptions,
};
use kiln_types::{ErrorKind, HasKind};

fn options(reference: &str, changes: &[&str]) -> ImportOptions {
    ImportOptions {
        reference: Some(reference.parse().unwrap()),
        changes: changes.iter().map(|c| (*c).to_owned()).collect(),
        message: Some("imported in a test".into()),
        platform: None,
        created: Some("2024-01-01T00:00:00Z".into()),
    }
}

#[test]
fn import_stores_layer_config_and_tag_and_unpacks_the_files() {
    let root = Root::new();
    let tar = rootfs_tar();
    let record = import_rootfs(
        &root.content,
        &root.snapshots,
        &root.metadata,
        &tar[..],
        &options("mini:1", &[r#"CMD ["sh"]"#, "ENV A=b", "WORKDIR /srv"]),
    )
    .unwrap();

    assert_eq!(record.diff_ids[0].to_string(), sha256(&tar));
    assert_eq!(record.layers, record.diff_ids, "a plain tar is stored as given");
    let config = ImageConfig::from_json(&root.content.read(&record.config).unwrap()).unwrap();
    let container = config.config.unwrap();
    assert_eq!(container.cmd.as_deref().unwrap(), ["sh"]);
    assert_eq!(container.env_var("A"), Some("b"));
    assert_eq!(container.working_dir.as_deref(), Some("/srv"));
    assert_eq!(config.os, "linux");
    assert_eq!(config.history[0].comment.as_deref(), Some("imported in a test"));

    let manifest = ImageManifest::from_json(&root.content.read(&record.manifest).unwrap()).unwrap();
    assert_eq!(manifest.config.digest, record.id);
    assert_eq!(manifest.layers[0].media_type, media_type::OCI_LAYER);

    let fs = root.snapshots.layer_dir(&record.chain_ids[0]);
    assert_eq!(std::fs::read(fs.join("bin/hello")).unwrap(), b"#!/bin/sh\necho hello\n");
    assert_eq!(root.metadata.resolve("mini:1").unwrap(), record);
}

#[test]
fn the_same_input_with_a_fixed_time_gives_the_same_id() {
    let root = Root::new();
    let tar = rootfs_tar();
    let opts = options("same:1", &["CMD [\"sh\"]"]);
    let a = import_rootfs(&root.content, &root.snapshots, &root.metadata, &tar[..], &opts).unwrap();
    let b = import_rootfs(&root.content, &root.snapshots, &root.metadata, &tar[..], &opts).unwrap();
    assert_eq!(a, b);

    let other = Root::new();
    let c =
        import_rootfs(&other.content, &other.snapshots, &other.metadata, &tar[..], &opts).unwrap();
    assert_eq!(c.id, a.id);
    assert_eq!(c.manifest, a.manifest);
}

#[test]
fn a_gzip_tar_is_stored_compressed_with_the_plain_diff_id() {
    let root = Root::new();
    let tar = rootfs_tar();
    let gz = gzip(&tar);
    let record = import_rootfs(
        &root.content,
        &root.snapshots,
        &root.metadata,
        &gz[..],
        &options("gz:1", &[]),
    )
    .unwrap();
    assert_eq!(record.layers[0].to_string(), sha256(&gz));
    assert_eq!(record.diff_ids[0].to_string(), sha256(&tar));
    let manifest = ImageManifest::from_json(&root.content.read(&record.manifest).unwrap()).unwrap();
    assert_eq!(manifest.layers[0].media_type, media_type::OCI_LAYER_GZIP);
    assert!(root.snapshots.layer_dir(&record.chain_ids[0]).join("etc/os-release").is_file());
}

#[test]
fn a_bad_change_or_a_bad_tar_is_refused_and_tags_nothing() {
    let root = Root::new();
    let tar = rootfs_tar();
    let err = import_rootfs(
        &root.content,
        &root.snapshots,
        &root.metadata,
        &tar[..],
        &options("bad:1", &["RUN rm -rf /"]),
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::Change(_)));
    assert!(err.to_string().contains("RUN"), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    let junk = vec![7u8; 700];
    let err = import_rootfs(
        &root.content,
        &root.snapshots,
        &root.metadata,
        &junk[..],
        &options("bad:1", &[]),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err:?}");
    assert!(root.metadata.references().unwrap().is_empty());
    assert!(root.metadata.images().unwrap().is_empty());
}
