//! The image a stage has built so far: its config (with history and diff
//! ids) and its layer blobs.

use kiln_image::{ContainerConfig, Descriptor, ImageConfig, RootFs};
use kiln_types::Digest;
use sha2::{Digest as _, Sha256};

use crate::BuildError;

/// An image in the making.
#[derive(Debug, Clone)]
pub struct ImageState {
    pub config: ImageConfig,
    /// Layer blobs, bottom first, one per `config.rootfs.diff_ids`.
    pub layers: Vec<Descriptor>,
}

impl ImageState {
    /// `FROM scratch` on `platform` (`os/arch[/variant]`).
    pub fn scratch(platform: &str) -> ImageState {
        let mut parts = platform.split('/');
        let os = parts.next().unwrap_or("linux").to_owned();
        let architecture = parts.next().unwrap_or("amd64").to_owned();
        let variant = parts.next().map(str::to_owned);
        ImageState {
            config: ImageConfig {
                created: None,
                author: None,
                architecture,
                os,
                os_version: None,
                variant,
                config: Some(ContainerConfig::default()),
                rootfs: RootFs { kind: "layers".to_owned(), diff_ids: Vec::new() },
                history: Vec::new(),
            },
            layers: Vec::new(),
        }
    }

    pub fn diff_ids(&self) -> &[Digest] {
        &self.config.rootfs.diff_ids
    }

    /// The container config, created when the base had none.
    pub fn container_config(&mut self) -> &mut ContainerConfig {
        self.config.config.get_or_insert_with(ContainerConfig::default)
    }

    /// The id this state would have as an image: the digest of its config.
    pub fn id(&self) -> Result<Digest, BuildError> {
        sha256_digest(&self.config.to_json())
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> Result<Digest, BuildError> {
    let hex = crate::cache::hex(&Sha256::digest(bytes));
    Digest::new(kiln_types::Algorithm::Sha256, &hex)
        .map_err(|e| BuildError::internal(format!("cannot make a digest: {e}")))
}
