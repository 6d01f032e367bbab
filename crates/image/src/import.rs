//! `docker import`: a root filesystem tar becomes a one-layer image.

use std::io::{self, Read, Write};

use kiln_content::{ContentError, Ingest, Store};
use kiln_snapshot::{Compression, Snapshots};
use kiln_types::{Digest, ErrorKind, HasKind, ImageRef};

use crate::change::{apply_change, ChangeError};
use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::descriptor::{Descriptor, Platform};
use crate::layer::{decompress, ensure_unpacked, HashWriter, LayerError};
use crate::manifest::ImageManifest;
use crate::metadata::{ImageRecord, Metadata, MetadataError};
use crate::{media_type, timestamp};

/// How to make the image of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Tag the new image with this reference (`name` means `name:latest`).
    pub reference: Option<ImageRef>,
    /// `--change` instructions (`CMD ["sh"]`, `ENV A=b` …), applied in order.
    pub changes: Vec<String>,
    /// `--message`: the comment of the image's one history entry.
    pub message: Option<String>,
    /// The image's platform; the host's when `None`.
    pub platform: Option<Platform>,
    /// RFC 3339 creation time; now when `None`. Fix it for a reproducible id.
    pub created: Option<String>,
}

/// What can go wrong importing a rootfs tar.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("cannot read the rootfs tar")]
    Read {
        #[source]
        source: io::Error,
    },
    #[error("cannot store the rootfs layer")]
    Store {
        #[source]
        source: ContentError,
    },
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

impl HasKind for ImportError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Change(e) => e.kind(),
            Self::Read { .. } => ErrorKind::InvalidArgument,
            Self::Store { source } => source.kind(),
            Self::Layer(e) => e.kind(),
            Self::Metadata(e) => e.kind(),
        }
    }
}

/// Import a root filesystem tar (plain, gzip or zstd) as a one-layer image.
///
/// The tar is stored as given as the layer blob, its diff id computed while
/// it streams in, then unpacked once into the snapshots (skipped when that
/// layer exists). A config and OCI manifest are written, and the record and
/// optional tag saved in one transaction. With `created` fixed, the same
/// input and options give the same image id.
pub fn import_rootfs(
    content: &Store,
    snapshots: &Snapshots,
    metadata: &Metadata,
    reader: impl Read,
    options: &ImportOptions,
) -> Result<ImageRecord, ImportError> {
    // Check the changes before reading anything.
    let mut container = ContainerConfig::default();
    for change in &options.changes {
        apply_change(&mut container, change)?;
    }

    let layer = store_layer(content, reader)?;
    let chain_ids = ensure_unpacked(
        content,
        snapshots,
        std::slice::from_ref(&layer.digest),
        std::slice::from_ref(&layer.diff_id),
    )?;

    let created = options.created.clone().unwrap_or_else(timestamp::now_rfc3339);
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let config = ImageConfig {
        created: Some(created.clone()),
        author: None,
        architecture: platform.architecture,
        os: platform.os,
        os_version: platform.os_version,
        variant: platform.variant,
        config: Some(container),
        rootfs: RootFs { kind: "layers".to_owned(), diff_ids: vec![layer.diff_id.clone()] },
        history: vec![History {
            created: Some(created.clone()),
            created_by: None,
            author: None,
            comment: options.message.clone(),
            empty_layer: false,
        }],
    };
    let config_json = config.to_json();
    let config_digest = put(content, &config_json)?;
    let manifest = ImageManifest::oci(
        Descriptor::new(media_type::OCI_CONFIG, config_digest.clone(), config_json.len() as u64),
        vec![Descriptor::new(
            media_type::oci_layer(layer.compression),
            layer.digest.clone(),
            layer.size,
        )],
    );
    let manifest_digest = put(content, &manifest.to_json())?;

    let record = ImageRecord {
        id: config_digest.clone(),
        manifest: manifest_digest,
        config: config_digest,
        layers: vec![layer.digest],
        diff_ids: vec![layer.diff_id],
        chain_ids,
        size: layer.size,
        created: Some(created),
    };
    let references: Vec<ImageRef> = options.reference.iter().cloned().collect();
    metadata.put_image(&record, &references)?;
    tracing::info!(image = %record.id, reference = ?options.reference.as_ref().map(ToString::to_string), "image imported");
    Ok(record)
}

fn put(content: &Store, bytes: &[u8]) -> Result<Digest, ImportError> {
    content.put(bytes).map_err(|source| ImportError::Store { source })
}

/// A layer blob just stored.
struct StoredLayer {
    digest: Digest,
    diff_id: Digest,
    size: u64,
    compression: Compression,
}

/// Stream `reader` into the content store as it is, hashing its
/// uncompressed form on the way for the diff id.
fn store_layer(content: &Store, reader: impl Read) -> Result<StoredLayer, ImportError> {
    let ingest = content.writer(None, None).map_err(|source| ImportError::Store { source })?;
    let mut tee = Tee { reader, ingest, write_error: None };
    let mut hasher = HashWriter::default();
    let hashed = decompress(&mut tee).and_then(|(mut plain, compression)| {
        io::copy(&mut plain, &mut hasher).map(|_| compression)
    });
    let compression = hashed.map_err(|e| tee.error(e))?;
    // Anything after the compressed stream (padding) is part of the blob.
    io::copy(&mut tee, &mut io::sink()).map_err(|e| tee.error(e))?;
    let size = tee.ingest.written();
    let digest = tee.ingest.commit().map_err(|source| ImportError::Store { source })?;
    Ok(StoredLayer { digest, diff_id: hasher.digest(), size, compression })
}

/// A reader that writes what it reads into an ingest.
struct Tee<R> {
    reader: R,
    ingest: Ingest,
    write_error: Option<io::Error>,
}

impl<R> Tee<R> {
    /// The import error for a failed copy: the store's, if writing failed.
    fn error(&mut self, read: io::Error) -> ImportError {
        match self.write_error.take() {
            Some(source) => ImportError::Store {
                source: ContentError::Io { action: "write", path: "ingest".into(), source },
            },
            None => ImportError::Read { source: read },
        }
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        if let Err(err) = self.ingest.write_all(&buf[..n]) {
            let kind = err.kind();
            self.write_error = Some(err);
            return Err(io::Error::new(kind, "cannot write the layer blob"));
        }
        Ok(n)
    }
}
