//! The image models read Docker's and OCI's JSON and write it deterministically.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use kiln_image::{media_type, ContainerConfig, Descriptor, ImageConfig, ImageIndex, ImageManifest};

const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn docker_config_with_nulls_parses_and_round_trips() {
    let json = format!(
        r#"{{"architecture":"amd64","config":{{"Env":["PATH=/bin"],"Cmd":["sh"],"Labels":null,
        "ExposedPorts":{{"80/tcp":{{}}}},"Volumes":null,"OnBuild":null,"WorkingDir":""}},
        "created":"2024-01-01T00:00:00Z","history":[{{"created_by":"/bin/sh -c #(nop) CMD [\"sh\"]","empty_layer":true}}],
        "os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{HEX}"]}},"unknown":1}}"#
    );
    let config = ImageConfig::from_json(json.as_bytes()).unwrap();
    let container = config.config.as_ref().unwrap();
    assert_eq!(container.cmd.as_deref(), Some(&["sh".to_owned()][..]));
    assert_eq!(container.env_var("PATH"), Some("/bin"));
    assert!(container.exposed_ports.contains_key("80/tcp"));
    assert!(config.history[0].empty_layer);
    assert_eq!(config.rootfs.diff_ids[0].hex(), HEX);
    let again = ImageConfig::from_json(&config.to_json()).unwrap();
    assert_eq!(again, config);
}

#[test]
fn the_same_config_always_serialises_to_the_same_bytes() {
    let build = |labels: &[(&str, &str)]| {
        let mut container = ContainerConfig::default();
        for (k, v) in labels {
            container.labels.insert((*k).into(), (*v).into());
        }
        ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            config: Some(container),
            ..ImageConfig::default()
        }
        .to_json()
    };
    let a = build(&[("b", "2"), ("a", "1"), ("c", "3")]);
    let b = build(&[("c", "3"), ("a", "1"), ("b", "2")]);
    assert_eq!(a, b);
    let text = String::from_utf8(a).unwrap();
    assert!(text.find("\"a\"").unwrap() < text.find("\"b\"").unwrap(), "{text}");
    assert!(text.contains(r#""rootfs":{"type":"layers","diff_ids":[]}"#), "{text}");
}

#[test]
fn manifests_and_indexes_round_trip_with_docker_media_types() {
    let json = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":7,"digest":"sha256:{HEX}"}},
        "layers":[{{"mediaType":"{}","size":9,"digest":"sha256:{HEX}"}}]}}"#,
        media_type::DOCKER_MANIFEST,
        media_type::DOCKER_CONFIG,
        media_type::DOCKER_LAYER_GZIP
    );
    let manifest = ImageManifest::from_json(json.as_bytes()).unwrap();
    assert_eq!(manifest.layers[0].size, 9);
    assert_eq!(ImageManifest::from_json(&manifest.to_json()).unwrap(), manifest);

    let mut desc =
        Descriptor::new(media_type::OCI_MANIFEST, format!("sha256:{HEX}").parse().unwrap(), 3);
    desc.annotations.insert(media_type::ANNOTATION_REF_NAME.into(), "latest".into());
    let index = ImageIndex::oci(vec![desc]);
    let bytes = index.to_json();
    assert_eq!(ImageIndex::from_json(&bytes).unwrap(), index);
    assert_eq!(bytes, ImageIndex::from_json(&bytes).unwrap().to_json());
}
