//! `docker save` and `docker load` archives.
//!
//! [`save`] writes what Docker 25+ writes: an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…`) and Docker's `manifest.json` (plus the
//! legacy `repositories`) in one tar, layers as uncompressed tars so that
//! every `docker load` since 1.10 reads it.
//!
//! [`load`] reads that format, Docker's older one (`<id>/layer.tar`,
//! `<config hex>.json`, as `docker save` of Docker 20.10 writes), and plain
//! OCI image layout tars, gzip-compressed or not. Blobs stream into the
//! content store and are verified on the way (against the digest in their
//! path, and layers against the config's diff ids when unpacked); images and
//! tags are saved in one transaction at the end, so a bad archive tags nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use kiln_content::{ContentError, Store};
use kiln_snapshot::{Compression, Snapshots};
use kiln_types::{Digest, ErrorKind, HasKind, ImageRef, ReferenceError};
use serde::{Deserialize, Serialize};

use crate::config::ImageConfig;
use crate::descriptor::{Descriptor, Platform};
use crate::index::ImageIndex;
use crate::layer::{
    compression_of, decompress, ensure_unpacked, open_uncompressed, sha256, HashWriter, LayerError,
};
use crate::manifest::ImageManifest;
use crate::media_type;
use crate::metadata::{ImageRecord, Metadata, MetadataError};
use crate::serde_null::null_as_default;

/// Docker's list of images in an archive.
const MANIFEST_JSON: &str = "manifest.json";
/// The OCI layout's list of manifests.
const INDEX_JSON: &str = "index.json";
const OCI_LAYOUT: &str = "oci-layout";
/// Docker's pre-1.10 list of tags.
const REPOSITORIES: &str = "repositories";
/// Largest metadata file of an archive read into memory.
const DOCUMENT_LIMIT: u64 = 16 * 1024 * 1024;

/// An image [`load`] stored, and the references it now has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub record: ImageRecord,
    pub tags: Vec<ImageRef>,
}

/// What can go wrong saving or loading an image archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the archive is truncated or not a tar")]
    Corrupt {
        #[source]
        source: io::Error,
    },
    #[error("archive entry {path} is truncated")]
    Truncated { path: String },
    #[error("archive entry {path} does not match its digest {expected} (its content hashes to {actual})")]
    BlobMismatch { path: String, expected: Digest, actual: Digest },
    #[error("cannot store archive entry {path}")]
    Store {
        path: String,
        #[source]
        source: ContentError,
    },
    #[error("archive entry {path} is larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("the archive has neither manifest.json nor index.json")]
    NoManifest,
    #[error("the archive holds no images")]
    NoImages,
    #[error("{path} in the archive is not valid")]
    InvalidDocument {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the archive names {path}, which it does not contain")]
    MissingEntry { path: String },
    #[error("{what} {digest} is not in the archive")]
    MissingBlob { what: &'static str, digest: Digest },
    #[error("cannot read blob {digest}")]
    ReadBlob {
        digest: Digest,
        #[source]
        source: ContentError,
    },
    #[error("{what} {digest} is not valid")]
    InvalidBlob {
        what: &'static str,
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid tag {tag:?} in the archive")]
    InvalidTag {
        tag: String,
        #[source]
        source: ReferenceError,
    },
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("no images to save")]
    NothingToSave,
    #[error("cannot write the archive")]
    Write {
        #[source]
        source: io::Error,
    },
}

impl HasKind for ArchiveError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Corrupt { .. }
            | Self::Truncated { .. }
            | Self::BlobMismatch { .. }
            | Self::TooLarge { .. }
            | Self::NoManifest
            | Self::NoImages
            | Self::InvalidDocument { .. }
            | Self::MissingEntry { .. }
            | Self::MissingBlob { .. }
            | Self::InvalidBlob { .. }
            | Self::InvalidTag { .. }
            | Self::NothingToSave => ErrorKind::InvalidArgument,
            Self::Store { source, .. } | Self::ReadBlob { source, .. } => source.kind(),
            Self::Layer(e) => e.kind(),
            Self::Metadata(e) => e.kind(),
            Self::Write { .. } => ErrorKind::Internal,
        }
    }
}

fn corrupt(source: io::Error) -> ArchiveError {
    ArchiveError::Corrupt { source }
}

/// One image of Docker's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default, deserialize_with = "null_as_default")]
    repo_tags: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    layers: Vec<String>,
}

// ---------------------------------------------------------------- load

/// Load a `docker save` archive or OCI layout tar (optionally gzip- or
/// zstd-compressed): store its blobs, unpack its layers, and save its images
/// and tags in one transaction.
pub fn load(
    content: &Store,
    snapshots: &Snapshots,
    metadata: &Metadata,
    reader: impl Read,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let (tar, _) = decompress(reader).map_err(corrupt)?;
    let staged = stage(content, tar)?;
    let plans = if let Some(bytes) = staged.documents.get(MANIFEST_JSON) {
        plan_docker(content, &staged, bytes)?
    } else if let Some(bytes) = staged.documents.get(INDEX_JSON) {
        plan_oci(content, bytes)?
    } else {
        return Err(ArchiveError::NoManifest);
    };
    if plans.is_empty() {
        return Err(ArchiveError::NoImages);
    }
    let mut images = Vec::with_capacity(plans.len());
    for plan in plans {
        let record = prepare(content, snapshots, &plan, None)?;
        images.push((record, plan.tags));
    }
    metadata.put_images(&images)?;
    for (record, tags) in &images {
        tracing::info!(image = %record.id, tags = tags.len(), "image loaded");
    }
    Ok(images.into_iter().map(|(record, tags)| LoadedImage { record, tags }).collect())
}

/// What the tar held: blobs stored by path, links between paths, and the
/// small metadata files in memory.
#[derive(Debug, Default)]
struct Staged {
    blobs: BTreeMap<String, Digest>,
    links: BTreeMap<String, String>,
    documents: BTreeMap<String, Vec<u8>>,
}

impl Staged {
    /// The blob at `path`, following links as the legacy format uses them.
    fn blob(&self, path: &str) -> Result<&Digest, ArchiveError> {
        let mut path = clean_path(path);
        for _ in 0..16 {
            if let Some(digest) = self.blobs.get(&path) {
                return Ok(digest);
            }
            match self.links.get(&path) {
                Some(target) => path = target.clone(),
                None => break,
            }
        }
        Err(ArchiveError::MissingEntry { path })
    }
}

/// Read every entry of the tar: metadata files into memory, the rest into
/// the content store (verified when the path names a digest).
fn stage(content: &Store, tar: impl Read) -> Result<Staged, ArchiveError> {
    let mut staged = Staged::default();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let path = clean_path(&entry.path().map_err(corrupt)?.to_string_lossy());
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name().map_err(corrupt)?.unwrap_or_default();
            let target = target.to_string_lossy();
            let resolved = match (kind.is_symlink(), path.rsplit_once('/')) {
                (true, Some((parent, _))) if !target.starts_with('/') => {
                    clean_path(&format!("{parent}/{target}"))
                }
                _ => clean_path(&target),
            };
            staged.links.insert(path, resolved);
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.size();
        if [MANIFEST_JSON, INDEX_JSON, OCI_LAYOUT, REPOSITORIES].contains(&path.as_str()) {
            if size > DOCUMENT_LIMIT {
                return Err(ArchiveError::TooLarge { path, limit: DOCUMENT_LIMIT });
            }
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            entry.read_to_end(&mut bytes).map_err(corrupt)?;
            if bytes.len() as u64 != size {
                return Err(ArchiveError::Truncated { path });
            }
            staged.documents.insert(path, bytes);
            continue;
        }
        // The legacy format's per-layer v1 metadata is not needed.
        if path.ends_with("/json") || path.ends_with("/VERSION") {
            continue;
        }
        let expected = digest_in_path(&path);
        if let Some(digest) = expected.as_ref().filter(|d| content.contains(d)) {
            // Already stored and verified; the tar reader skips the bytes.
            staged.blobs.insert(path, digest.clone());
            continue;
        }
        let digest = store_entry(content, &mut entry, &path, expected.as_ref(), size)?;
        staged.blobs.insert(path, digest);
    }
    Ok(staged)
}

fn store_entry(
    content: &Store,
    entry: &mut impl Read,
    path: &str,
    expected: Option<&Digest>,
    size: u64,
) -> Result<Digest, ArchiveError> {
    let store_err = |source| ArchiveError::Store { path: path.to_owned(), source };
    let mut ingest = content.writer(expected, Some(size)).map_err(store_err)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(e)),
        };
        ingest.write_all(&buf[..n]).map_err(|source| {
            store_err(ContentError::Io {
                action: "write",
                path: content.root().join("ingest"),
                source,
            })
        })?;
    }
    ingest.commit().map_err(|e| match e {
        ContentError::DigestMismatch { expected, actual } => {
            ArchiveError::BlobMismatch { path: path.to_owned(), expected, actual }
        }
        ContentError::SizeMismatch { .. } => ArchiveError::Truncated { path: path.to_owned() },
        other => store_err(other),
    })
}

/// The digest a path names: `blobs/sha256/<hex>` or legacy `<hex>.json`.
fn digest_in_path(path: &str) -> Option<Digest> {
    if let Some(rest) = path.strip_prefix("blobs/") {
        let (algorithm, hex) = rest.split_once('/')?;
        return format!("{algorithm}:{hex}").parse().ok();
    }
    let hex = path.strip_suffix(".json")?;
    if hex.contains('/') {
        return None;
    }
    format!("sha256:{hex}").parse().ok()
}

/// A path inside the archive without `.`, empty components or a leading `/`;
/// `..` removes the component before it.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// An image to create from stored blobs.
#[derive(Debug)]
struct Plan {
    config: Digest,
    layers: Vec<Digest>,
    /// A manifest from the archive for exactly these blobs, if it has one.
    manifest: Option<Digest>,
    tags: Vec<ImageRef>,
}

/// Images from Docker's `manifest.json` (both the legacy and the 25+ format).
fn plan_docker(content: &Store, staged: &Staged, bytes: &[u8]) -> Result<Vec<Plan>, ArchiveError> {
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(bytes)
        .map_err(|source| ArchiveError::InvalidDocument { path: MANIFEST_JSON.into(), source })?;
    // Docker 25+ also writes an OCI index: keep its manifests' digests.
    let oci_manifests = match staged.documents.get(INDEX_JSON) {
        Some(index) => oci_manifests(content, index).unwrap_or_default(),
        None => Vec::new(),
    };
    let mut plans = Vec::new();
    for entry in entries {
        let config = staged.blob(&entry.config)?.clone();
        let layers =
            entry.layers.iter().map(|l| staged.blob(l).cloned()).collect::<Result<Vec<_>, _>>()?;
        let tags = entry
            .repo_tags
            .iter()
            .map(|tag| {
                tag.parse::<ImageRef>()
                    .map(|r| r.normalized())
                    .map_err(|source| ArchiveError::InvalidTag { tag: tag.clone(), source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let manifest = oci_manifests
            .iter()
            .find(|(_, m, _)| {
                m.config.digest == config && m.layers.iter().map(|l| &l.digest).eq(layers.iter())
            })
            .map(|(digest, _, _)| digest.clone());
        plans.push(Plan { config, layers, manifest, tags });
    }
    Ok(plans)
}

/// Images from an OCI layout's `index.json`.
fn plan_oci(content: &Store, bytes: &[u8]) -> Result<Vec<Plan>, ArchiveError> {
    let mut plans: Vec<Plan> = Vec::new();
    for (digest, manifest, tags) in oci_manifests(content, bytes)? {
        let config = manifest.config.digest.clone();
        match plans.iter_mut().find(|p| p.manifest.as_ref() == Some(&digest)) {
            Some(plan) => plan.tags.extend(tags),
            None => plans.push(Plan {
                config,
                layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
                manifest: Some(digest),
                tags,
            }),
        }
    }
    Ok(plans)
}

/// The image manifests an index names, one per descriptor (a nested index
/// gives the manifest for this host, else its first whose blobs are here),
/// each with the tags of its descriptor's annotations.
fn oci_manifests(
    content: &Store,
    bytes: &[u8],
) -> Result<Vec<(Digest, ImageManifest, Vec<ImageRef>)>, ArchiveError> {
    let index = ImageIndex::from_json(bytes)
        .map_err(|source| ArchiveError::InvalidDocument { path: INDEX_JSON.into(), source })?;
    let host = Platform::host();
    let mut out = Vec::new();
    for desc in &index.manifests {
        let tags = annotation_tags(desc)?;
        let chosen = if media_type::is_index(&desc.media_type) {
            let nested = read_blob(content, &desc.digest, "image index")?;
            let nested =
                ImageIndex::from_json(&nested).map_err(|source| ArchiveError::InvalidBlob {
                    what: "image index",
                    digest: desc.digest.clone(),
                    source,
                })?;
            let present: Vec<&Descriptor> = nested
                .manifests
                .iter()
                .filter(|d| media_type::is_manifest(&d.media_type) && content.contains(&d.digest))
                .collect();
            present
                .iter()
                .find(|d| d.platform.as_ref().is_some_and(|p| p.runs_on(&host)))
                .or_else(|| present.first())
                .map(|d| d.digest.clone())
        } else if media_type::is_manifest(&desc.media_type) {
            Some(desc.digest.clone())
        } else {
            None
        };
        let Some(digest) = chosen else { continue };
        let bytes = read_blob(content, &digest, "manifest")?;
        let manifest = ImageManifest::from_json(&bytes).map_err(|source| {
            ArchiveError::InvalidBlob { what: "manifest", digest: digest.clone(), source }
        })?;
        if !media_type::is_config(&manifest.config.media_type) {
            continue; // an artifact (attestation, signature), not an image
        }
        out.push((digest, manifest, tags));
    }
    Ok(out)
}

/// Tags from a descriptor's annotations: containerd's full image name, or
/// an OCI ref name that is a whole reference (a bare tag names no repository).
fn annotation_tags(desc: &Descriptor) -> Result<Vec<ImageRef>, ArchiveError> {
    let parse = |tag: &String| {
        tag.parse::<ImageRef>()
            .map(|r| r.normalized())
            .map_err(|source| ArchiveError::InvalidTag { tag: tag.clone(), source })
    };
    if let Some(name) = desc.annotations.get(media_type::ANNOTATION_IMAGE_NAME) {
        return Ok(vec![parse(name)?]);
    }
    match desc.annotations.get(media_type::ANNOTATION_REF_NAME) {
        Some(name) if name.contains([':', '/']) => match parse(name) {
            Ok(tag) => Ok(vec![tag]),
            Err(err) => {
                tracing::warn!(ref_name = %name, error = %err, "ignoring ref name that is not a reference");
                Ok(Vec::new())
            }
        },
        _ => Ok(Vec::new()),
    }
}

fn read_blob(
    content: &Store,
    digest: &Digest,
    what: &'static str,
) -> Result<Vec<u8>, ArchiveError> {
    if !content.contains(digest) {
        return Err(ArchiveError::MissingBlob { what, digest: digest.clone() });
    }
    content.read(digest).map_err(|source| ArchiveError::ReadBlob { digest: digest.clone(), source })
}

/// Record the image whose manifest (a single-image manifest, not an index)
/// and every blob it names are in the content store, and tag it with `tags`,
/// in one transaction. This is how a pull ends.
///
/// `chain_ids` are the snapshots of its layers when the caller has unpacked
/// and checked each already (with [`unpack_layer`](crate::unpack_layer));
/// `None` unpacks what is missing here, as `load` does.
pub fn register_image(
    content: &Store,
    snapshots: &Snapshots,
    metadata: &Metadata,
    manifest: &Digest,
    tags: Vec<ImageRef>,
    chain_ids: Option<Vec<Digest>>,
) -> Result<ImageRecord, ArchiveError> {
    let bytes = read_blob(content, manifest, "manifest")?;
    let parsed = ImageManifest::from_json(&bytes).map_err(|source| ArchiveError::InvalidBlob {
        what: "manifest",
        digest: manifest.clone(),
        source,
    })?;
    let plan = Plan {
        config: parsed.config.digest.clone(),
        layers: parsed.layers.iter().map(|l| l.digest.clone()).collect(),
        manifest: Some(manifest.clone()),
        tags,
    };
    let record = prepare(content, snapshots, &plan, chain_ids)?;
    metadata.put_images(&[(record.clone(), plan.tags)])?;
    tracing::info!(image = %record.id, manifest = %manifest, "image registered");
    Ok(record)
}

/// Check, unpack and describe one planned image; writes a manifest when the
/// archive has none for it. With `unpacked`, the layers' snapshots are
/// those chain ids, already checked by the caller.
fn prepare(
    content: &Store,
    snapshots: &Snapshots,
    plan: &Plan,
    unpacked: Option<Vec<Digest>>,
) -> Result<ImageRecord, ArchiveError> {
    let config_bytes = read_blob(content, &plan.config, "image config")?;
    let config = ImageConfig::from_json(&config_bytes).map_err(|source| {
        ArchiveError::InvalidBlob { what: "image config", digest: plan.config.clone(), source }
    })?;
    for layer in &plan.layers {
        if !content.contains(layer) {
            return Err(ArchiveError::MissingBlob { what: "layer", digest: layer.clone() });
        }
    }
    let chain_ids = match unpacked {
        Some(chain_ids) if chain_ids.len() == plan.layers.len() => chain_ids,
        _ => ensure_unpacked(content, snapshots, &plan.layers, &config.rootfs.diff_ids)?,
    };
    let mut size = 0;
    let mut layer_descs = Vec::with_capacity(plan.layers.len());
    for layer in &plan.layers {
        let layer_size = content
            .size(layer)
            .map_err(|source| ArchiveError::ReadBlob { digest: layer.clone(), source })?;
        size += layer_size;
        let media = media_type::oci_layer(compression_of(content, layer)?);
        layer_descs.push(Descriptor::new(media, layer.clone(), layer_size));
    }
    let manifest = match &plan.manifest {
        Some(digest) => digest.clone(),
        None => {
            let config_desc = Descriptor::new(
                media_type::OCI_CONFIG,
                plan.config.clone(),
                config_bytes.len() as u64,
            );
            let bytes = ImageManifest::oci(config_desc, layer_descs).to_json();
            content.put(&bytes).map_err(|source| ArchiveError::Store {
                path: "generated manifest".into(),
                source,
            })?
        }
    };
    Ok(ImageRecord {
        id: plan.config.clone(),
        manifest,
        config: plan.config.clone(),
        layers: plan.layers.clone(),
        diff_ids: config.rootfs.diff_ids,
        chain_ids,
        size,
        created: config.created,
    })
}

// ---------------------------------------------------------------- save

/// Write the images `names` (references, ids or short ids, as `docker save`
/// takes them) as one archive that `docker load` and [`load`] accept.
///
/// A `name:tag` saves that tag; a bare name saves every tag of the
/// repository; an id saves the image without tags.
pub fn save(
    content: &Store,
    metadata: &Metadata,
    names: &[impl AsRef<str>],
    out: impl Write,
) -> Result<(), ArchiveError> {
    let images = select(metadata, names)?;
    if images.is_empty() {
        return Err(ArchiveError::NothingToSave);
    }
    let mut tar = ArchiveWriter { builder: tar::Builder::new(out), written: BTreeSet::new() };
    tar.dir("blobs/")?;
    tar.dir("blobs/sha256/")?;

    let mut docker_manifest = Vec::new();
    let mut index = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (record, tags) in &images {
        let config_bytes = read_blob(content, &record.config, "image config")?;
        let mut layer_descs = Vec::with_capacity(record.layers.len());
        for (layer, diff_id) in record.layers.iter().zip(&record.diff_ids) {
            let size = tar.layer(content, layer, diff_id)?;
            layer_descs.push(Descriptor::new(media_type::OCI_LAYER, diff_id.clone(), size));
        }
        tar.blob(&record.config, &config_bytes)?;

        let (manifest_bytes, manifest_media) =
            manifest_for(content, record, &config_bytes, layer_descs)?;
        let manifest_digest = sha256(&manifest_bytes);
        tar.blob(&manifest_digest, &manifest_bytes)?;

        let desc = Descriptor::new(&manifest_media, manifest_digest, manifest_bytes.len() as u64);
        let repo_tags: Vec<&ImageRef> = tags.iter().filter(|t| t.digest().is_none()).collect();
        if tags.is_empty() {
            index.push(desc.clone());
        }
        for tag in tags {
            let mut tagged = desc.clone();
            tagged.annotations.insert(media_type::ANNOTATION_IMAGE_NAME.into(), tag.to_string());
            if let Some(name) = tag.tag() {
                tagged.annotations.insert(media_type::ANNOTATION_REF_NAME.into(), name.to_owned());
            }
            index.push(tagged);
        }
        for tag in &repo_tags {
            if let (Some(name), Some(top)) = (tag.tag(), record.diff_ids.last()) {
                repositories
                    .entry(tag.familiar_name())
                    .or_default()
                    .insert(name.to_owned(), top.hex().to_owned());
            }
        }
        docker_manifest.push(DockerManifestEntry {
            config: blob_path(&record.config),
            repo_tags: repo_tags.iter().map(|t| t.familiar()).collect(),
            layers: record.diff_ids.iter().map(blob_path).collect(),
        });
    }

    tar.file(INDEX_JSON, &ImageIndex::oci(index).to_json())?;
    let manifest_json = serde_json::to_vec(&docker_manifest).expect("manifest.json serialises");
    tar.file(MANIFEST_JSON, &manifest_json)?;
    let layout = format!(r#"{{"imageLayoutVersion":"{}"}}"#, media_type::OCI_LAYOUT_VERSION);
    tar.file(OCI_LAYOUT, layout.as_bytes())?;
    if !repositories.is_empty() {
        let json = serde_json::to_vec(&repositories).expect("repositories serialises");
        tar.file(REPOSITORIES, &json)?;
    }
    let mut out = tar.builder.into_inner().map_err(|source| ArchiveError::Write { source })?;
    out.flush().map_err(|source| ArchiveError::Write { source })
}

/// The images to save, each with the tags to save it under, in the order named.
fn select(
    metadata: &Metadata,
    names: &[impl AsRef<str>],
) -> Result<Vec<(ImageRecord, Vec<ImageRef>)>, ArchiveError> {
    let references = metadata.references()?;
    let mut out: Vec<(ImageRecord, Vec<ImageRef>)> = Vec::new();
    for name in names {
        let name = name.as_ref();
        let mut found: Vec<(Digest, Option<ImageRef>)> = Vec::new();
        if let Ok(wanted) = name.parse::<ImageRef>() {
            for (reference, id) in &references {
                let matches = if wanted.is_name_only() {
                    reference.digest().is_none() && reference.name() == wanted.name()
                } else {
                    *reference == wanted.normalized()
                };
                if matches {
                    found.push((id.clone(), Some(reference.clone())));
                }
            }
        }
        if found.is_empty() {
            found.push((metadata.resolve(name)?.id, None));
        }
        for (id, tag) in found {
            let index = match out.iter().position(|(r, _)| r.id == id) {
                Some(index) => index,
                None => {
                    let record = metadata.image(&id)?.ok_or(MetadataError::ImageNotFound { id })?;
                    out.push((record, Vec::new()));
                    out.len() - 1
                }
            };
            if let Some(tag) = tag {
                if !out[index].1.contains(&tag) {
                    out[index].1.push(tag);
                }
            }
        }
    }
    Ok(out)
}

/// The manifest to write for `record` with uncompressed layers: the stored
/// one when it already describes exactly those, else a new OCI manifest.
fn manifest_for(
    content: &Store,
    record: &ImageRecord,
    config_bytes: &[u8],
    layers: Vec<Descriptor>,
) -> Result<(Vec<u8>, String), ArchiveError> {
    let stored = read_blob(content, &record.manifest, "manifest")?;
    if let Ok(manifest) = ImageManifest::from_json(&stored) {
        let reusable = manifest.config.digest == record.config
            && manifest.layers.len() == record.diff_ids.len()
            && manifest.layers.iter().zip(&record.diff_ids).all(|(l, d)| {
                l.digest == *d
                    && matches!(
                        l.media_type.as_str(),
                        media_type::OCI_LAYER | media_type::DOCKER_LAYER
                    )
            });
        if reusable {
            let media = manifest.media_type.unwrap_or_else(|| media_type::OCI_MANIFEST.to_owned());
            return Ok((stored, media));
        }
    }
    let config =
        Descriptor::new(media_type::OCI_CONFIG, record.config.clone(), config_bytes.len() as u64);
    Ok((ImageManifest::oci(config, layers).to_json(), media_type::OCI_MANIFEST.to_owned()))
}

fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex())
}

/// The tar being written, and the blobs already in it.
struct ArchiveWriter<W: Write> {
    builder: tar::Builder<W>,
    written: BTreeSet<Digest>,
}

impl<W: Write> ArchiveWriter<W> {
    fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(kind);
        header
    }

    fn dir(&mut self, path: &str) -> Result<(), ArchiveError> {
        let mut header = Self::header(0, 0o755, tar::EntryType::Directory);
        self.builder
            .append_data(&mut header, path, io::empty())
            .map_err(|source| ArchiveError::Write { source })
    }

    fn file(&mut self, path: &str, bytes: &[u8]) -> Result<(), ArchiveError> {
        let mut header = Self::header(bytes.len() as u64, 0o644, tar::EntryType::Regular);
        self.builder
            .append_data(&mut header, path, bytes)
            .map_err(|source| ArchiveError::Write { source })
    }

    fn blob(&mut self, digest: &Digest, bytes: &[u8]) -> Result<(), ArchiveError> {
        if self.written.insert(digest.clone()) {
            self.file(&blob_path(digest), bytes)?;
        }
        Ok(())
    }

    /// Write a layer uncompressed as `blobs/sha256/<diff id>`, checking that
    /// it is what its diff id says; returns its size.
    fn layer(
        &mut self,
        content: &Store,
        layer: &Digest,
        diff_id: &Digest,
    ) -> Result<u64, ArchiveError> {
        let compression = compression_of(content, layer)?;
        let size = if compression == Compression::None {
            content
                .size(layer)
                .map_err(|source| ArchiveError::ReadBlob { digest: layer.clone(), source })?
        } else {
            let (mut tar, _) = open_uncompressed(content, layer)?;
            io::copy(&mut tar, &mut io::sink())
                .map_err(|source| LayerError::Decompress { digest: layer.clone(), source })?
        };
        if !self.written.insert(diff_id.clone()) {
            return Ok(size);
        }
        let (tar, _) = open_uncompressed(content, layer)?;
        let mut reader = HashingReader { inner: tar, hash: HashWriter::default(), failed: None };
        let mut header = Self::header(size, 0o644, tar::EntryType::Regular);
        let result = self.builder.append_data(&mut header, blob_path(diff_id), &mut reader);
        if let Some(source) = reader.failed.take() {
            return Err(LayerError::Decompress { digest: layer.clone(), source }.into());
        }
        result.map_err(|source| ArchiveError::Write { source })?;
        let written = reader.hash.written;
        let actual = reader.hash.digest();
        if written != size || actual != *diff_id {
            return Err(LayerError::DiffIdMismatch {
                digest: layer.clone(),
                expected: diff_id.clone(),
                actual,
            }
            .into());
        }
        Ok(size)
    }
}

/// A reader that hashes what passes and keeps its own read error apart
/// from the writer's.
struct HashingReader<R> {
    inner: R,
    hash: HashWriter,
    failed: Option<io::Error>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hash.write_all(&buf[..n])?;
                Ok(n)
            }
            Err(err) => {
                let kind = err.kind();
                self.failed = Some(err);
                Err(kind.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_are_cleaned_and_digests_read_from_them() {
        assert_eq!(clean_path("./blobs//sha256/ab"), "blobs/sha256/ab");
        assert_eq!(clean_path("a/../b/layer.tar"), "b/layer.tar");
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let digest: Digest = format!("sha256:{hex}").parse().unwrap();
        assert_eq!(digest_in_path(&format!("blobs/sha256/{hex}")), Some(digest.clone()));
        assert_eq!(digest_in_path(&format!("{hex}.json")), Some(digest));
        assert_eq!(digest_in_path("manifest.json"), None);
        assert_eq!(digest_in_path(&format!("{hex}/layer.tar")), None);
    }
}
