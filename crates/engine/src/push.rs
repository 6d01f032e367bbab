//! `docker push`: an image's blobs and manifest from the content store to
//! a registry.
//!
//! The image is pushed as it is stored: the manifest its record points at
//! (the one pulled, loaded or built, so a pulled image keeps its digest),
//! the config, and the layer blobs as stored (compressed or not). Each blob
//! is checked with `HEAD` first and skipped when the registry has it
//! ("Layer already exists"); a layer that an image of another repository
//! of the same registry has (pulled from there, or pushed there before, as
//! the image's references say) is mounted from that repository; the others
//! are uploaded, several at a time, in chunks when they are large. The
//! manifest and its tag go last: a push that fails on the way never leaves
//! a tag naming missing blobs. A pushed image gets the `name@digest`
//! reference, as `docker push` records it.
//!
//! Registry protocol details live in `kiln-registry-client`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kiln_content::{ContentError, Store};
use kiln_image::{media_type, Descriptor, ImageManifest, Metadata, MetadataError};
use kiln_registry_client::{
    BlobUpload, Credentials, Endpoint, FileSource, Mount, RegistryError, Repository, RetryPolicy,
    DEFAULT_CHUNK_SIZE,
};
use kiln_types::{Algorithm, Digest, ErrorKind, HasKind, ImageRef, ReferenceError};
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, Semaphore};

use crate::images::Images;

/// Bytes between two `Pushing` reports of one blob.
const REPORT_EVERY: u64 = 512 * 1024;
/// Repositories tried for a cross-repository mount of one blob.
const MOUNT_CANDIDATES: usize = 3;
/// Environment variable with the chunk size of uploads, in bytes: blobs
/// larger than it go in chunks of it (64 MiB when unset).
pub const CHUNK_SIZE_ENV: &str = "KILN_PUSH_CHUNK_SIZE";

/// What `docker push` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushRequest {
    /// `name:tag`; a name alone pushes every tag of that repository, as
    /// the API's empty `tag` does.
    pub reference: String,
    /// Upload chunk size; [`CHUNK_SIZE_ENV`] or 64 MiB when `None`.
    pub chunk_size: Option<u64>,
    /// For the image's registry, from the client's `X-Registry-Auth`; the
    /// anonymous token flow when `None`. `Debug` hides the secret.
    pub credentials: Option<Credentials>,
    /// Layers sent compressed this way (recompressed when stored otherwise,
    /// in an OCI manifest); as stored when `None`.
    pub compression: Option<LayerCompression>,
}

/// What `--compression` asks layers to be sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    Gzip,
    /// OCI's `tar+zstd` layers: smaller and much faster to unpack; pulled
    /// by containerd 1.5+, podman and kiln, not by dockerd before 23.
    Zstd,
}

impl std::str::FromStr for LayerCompression {
    type Err = PushError;

    fn from_str(text: &str) -> Result<LayerCompression, PushError> {
        match text {
            "gzip" => Ok(LayerCompression::Gzip),
            "zstd" => Ok(LayerCompression::Zstd),
            other => Err(PushError::InvalidCompression { compression: other.to_owned() }),
        }
    }
}

/// One step of a push, in the order Docker reports them. `id` is a blob's
/// short digest (12 hex digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushProgress {
    /// `The push refers to repository [127.0.0.1:5000/x]` (the full name).
    RefersTo {
        name: String,
    },
    /// A layer will be checked and sent.
    Preparing {
        id: String,
    },
    /// A layer the registry has already.
    AlreadyExists {
        id: String,
    },
    /// A layer linked from another repository of the registry.
    Mounted {
        id: String,
        from: String,
    },
    Pushing {
        id: String,
        current: u64,
        total: u64,
    },
    Pushed {
        id: String,
    },
    /// A layer registries do not serve (foreign, non-distributable).
    Skipped {
        id: String,
    },
    /// The manifest was put: `1: digest: sha256:… size: 527`.
    Digest {
        tag: String,
        digest: Digest,
        size: u64,
    },
}

/// Where progress goes; the push never waits on it.
pub type ProgressSender = mpsc::UnboundedSender<PushProgress>;

/// One tag a push sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedTag {
    pub id: Digest,
    /// `registry/repository:tag`.
    pub reference: ImageRef,
    /// The manifest's digest in the registry.
    pub digest: Digest,
    pub size: u64,
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("invalid reference format: {reference:?}")]
    InvalidReference {
        reference: String,
        #[source]
        source: ReferenceError,
    },
    /// docker-compat: dockerd's wording for a repository without tags,
    /// the name in short form and without a tag.
    #[error("An image does not exist locally with the tag: {name}")]
    NotFound { name: String },
    /// docker-compat: dockerd's wording for a tag the repository lacks.
    #[error("tag does not exist: {reference}")]
    NoSuchTag { reference: String },
    #[error("cannot push {reference}: a digest names content, push a tag")]
    DigestReference { reference: String },
    #[error("invalid compression {compression:?}: expected gzip or zstd")]
    InvalidCompression { compression: String },
    #[error("cannot recompress layer {digest}")]
    Compress {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{what} {digest} of image {id} is not valid")]
    InvalidManifest {
        what: &'static str,
        id: Digest,
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot read blob {digest} from the content store")]
    Store {
        digest: Digest,
        #[source]
        source: ContentError,
    },
    #[error("the registry stored manifest {reference} as {actual}, not {expected}")]
    ManifestDigest { reference: String, expected: Digest, actual: Digest },
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("a push task failed: {message}")]
    Task { message: String },
}

impl HasKind for PushError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidReference { .. }
            | Self::DigestReference { .. }
            | Self::InvalidCompression { .. } => ErrorKind::InvalidArgument,
            Self::Compress { .. } => ErrorKind::Internal,
            Self::NotFound { .. } | Self::NoSuchTag { .. } => ErrorKind::NotFound,
            Self::Registry(e) => e.kind(),
            Self::Store { source, .. } => source.kind(),
            Self::Metadata(e) => e.kind(),
            Self::InvalidManifest { .. } | Self::ManifestDigest { .. } | Self::Task { .. } => {
                ErrorKind::Internal
            }
        }
    }
}

fn short(digest: &Digest) -> String {
    digest.hex().chars().take(12).collect()
}

/// The chunk size asked for, else [`CHUNK_SIZE_ENV`], else the default.
fn chunk_size(asked: Option<u64>) -> u64 {
    asked
        .or_else(|| std::env::var(CHUNK_SIZE_ENV).ok().and_then(|v| v.trim().parse().ok()))
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_CHUNK_SIZE)
}

impl Images {
    /// `docker push`: see [`crate::push`]. Progress goes to `progress` as
    /// it happens; each tag pushed gets the image's `push` event.
    pub async fn push(
        &self,
        request: &PushRequest,
        progress: ProgressSender,
    ) -> Result<Vec<PushedTag>, PushError> {
        let parsed: ImageRef = request.reference.parse().map_err(|source| {
            PushError::InvalidReference { reference: request.reference.clone(), source }
        })?;
        if parsed.digest().is_some() {
            return Err(PushError::DigestReference { reference: request.reference.clone() });
        }
        let metadata = self.metadata().clone();
        let content = self.content().clone();
        let tags = {
            let parsed = parsed.clone();
            let metadata = metadata.clone();
            tokio::task::spawn_blocking(move || tags_to_push(&metadata, &parsed))
                .await
                .map_err(|e| PushError::Task { message: e.to_string() })??
        };
        let repo = Repository::new(
            Endpoint::for_registry(parsed.registry()),
            parsed.repository(),
            RetryPolicy::default(),
        )?
        .with_credentials(request.credentials.clone());
        let _ = progress.send(PushProgress::RefersTo { name: parsed.name() });
        let chunk_size = chunk_size(request.chunk_size);
        let mut pushed = Vec::new();
        for (reference, id) in tags {
            let plan = {
                let content = content.clone();
                let metadata = metadata.clone();
                let reference = reference.clone();
                tokio::task::spawn_blocking(move || plan(&content, &metadata, &reference, &id))
                    .await
                    .map_err(|e| PushError::Task { message: e.to_string() })??
            };
            // Recompressed layers live in temp files until the push ends.
            let (plan, _recompressed) = match request.compression {
                Some(to) => recompress(&content, plan, to).await?,
                None => (plan, Vec::new()),
            };
            let tag = push_one(&repo, &content, &plan, chunk_size, &progress).await?;
            let by_digest = reference.without_tag_or_digest().with_digest(tag.digest.clone());
            let id = tag.id.clone();
            let recorded = {
                let metadata = metadata.clone();
                tokio::task::spawn_blocking(move || metadata.tag(&by_digest, &id))
                    .await
                    .map_err(|e| PushError::Task { message: e.to_string() })?
            };
            if let Err(err) = recorded {
                // The push itself succeeded; only the local record is missing.
                tracing::warn!(image = %tag.id, error = %err, "cannot record the pushed digest");
            }
            self.publish("push", &tag.id, &tag.reference.familiar());
            pushed.push(tag);
        }
        Ok(pushed)
    }
}

/// The tags to push with their images: `reference` itself, or every tag of
/// its repository when it names none.
fn tags_to_push(
    metadata: &Metadata,
    reference: &ImageRef,
) -> Result<Vec<(ImageRef, Digest)>, PushError> {
    let name = reference.without_tag_or_digest();
    let mut tags: Vec<(ImageRef, Digest)> = metadata
        .references()?
        .into_iter()
        .filter(|(r, _)| r.digest().is_none() && r.without_tag_or_digest() == name)
        .collect();
    tags.sort();
    if tags.is_empty() {
        return Err(PushError::NotFound { name: name.familiar() });
    }
    if reference.tag().is_some() {
        tags.retain(|(r, _)| r == reference);
        if tags.is_empty() {
            return Err(PushError::NoSuchTag { reference: reference.familiar() });
        }
    }
    Ok(tags)
}

/// What one tag's push sends, read from the stores up front.
#[derive(Debug, Clone)]
struct Plan {
    id: Digest,
    reference: ImageRef,
    manifest: bytes::Bytes,
    manifest_digest: Digest,
    media_type: String,
    config: Descriptor,
    /// Distinct layers, bottom first.
    layers: Vec<Descriptor>,
    /// Per layer digest, other repositories of the same registry whose
    /// images hold it: places to mount it from.
    mount_from: BTreeMap<Digest, Vec<String>>,
    /// Blobs sent from elsewhere than the content store (recompressed
    /// layers in temp files).
    paths: BTreeMap<Digest, PathBuf>,
}

fn plan(
    content: &Store,
    metadata: &Metadata,
    reference: &ImageRef,
    id: &Digest,
) -> Result<Plan, PushError> {
    let record =
        metadata.image(id)?.ok_or_else(|| PushError::NotFound { name: reference.familiar() })?;
    let store_err = |digest: &Digest| {
        let digest = digest.clone();
        move |source| PushError::Store { digest, source }
    };
    let bytes = content
        .read_limited(&record.manifest, kiln_registry_client::MANIFEST_LIMIT)
        .map_err(store_err(&record.manifest))?;
    let manifest =
        ImageManifest::from_json(&bytes).map_err(|source| PushError::InvalidManifest {
            what: "manifest",
            id: id.clone(),
            digest: record.manifest.clone(),
            source,
        })?;
    let media_type = manifest.media_type.clone().unwrap_or_else(|| {
        if manifest.config.media_type == media_type::DOCKER_CONFIG {
            media_type::DOCKER_MANIFEST.to_owned()
        } else {
            media_type::OCI_MANIFEST.to_owned()
        }
    });
    let mut seen = BTreeSet::new();
    let layers: Vec<Descriptor> =
        manifest.layers.iter().filter(|l| seen.insert(l.digest.clone())).cloned().collect();

    let mut mount_from: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    let wanted: BTreeSet<&Digest> = layers.iter().map(|l| &l.digest).collect();
    let mut records = BTreeMap::new();
    for (other, image) in metadata.references()? {
        if other.registry() != reference.registry() || other.repository() == reference.repository()
        {
            continue;
        }
        if !records.contains_key(&image) {
            records.insert(image.clone(), metadata.image(&image)?);
        }
        let Some(Some(record)) = records.get(&image) else { continue };
        for layer in record.layers.iter().filter(|l| wanted.contains(l)) {
            let from = mount_from.entry(layer.clone()).or_default();
            let repository = other.repository().to_owned();
            if !from.contains(&repository) && from.len() < MOUNT_CANDIDATES {
                from.push(repository);
            }
        }
    }
    Ok(Plan {
        id: id.clone(),
        reference: reference.clone(),
        manifest: bytes.into(),
        manifest_digest: record.manifest.clone(),
        media_type,
        config: manifest.config,
        layers,
        mount_from,
        paths: BTreeMap::new(),
    })
}

/// Push the blobs of `plan`, then its manifest under its tag.
async fn push_one(
    repo: &Repository,
    content: &Store,
    plan: &Plan,
    chunk_size: u64,
    progress: &ProgressSender,
) -> Result<PushedTag, PushError> {
    for layer in &plan.layers {
        let _ = progress.send(PushProgress::Preparing { id: short(&layer.digest) });
    }
    let job = |desc: &Descriptor, progress: Option<ProgressSender>| BlobJob {
        repo: repo.clone(),
        mount_from: plan.mount_from.get(&desc.digest).cloned().unwrap_or_default(),
        path: plan.paths.get(&desc.digest).cloned().unwrap_or_else(|| content.path(&desc.digest)),
        desc: desc.clone(),
        chunk_size,
        progress,
    };
    // The config goes first, alone: its requests answer the registry's
    // challenges once (the token, or the basic credentials), before the
    // layers' requests go out together. It is sent like a layer but, as
    // Docker does, not shown.
    job(&plan.config, None).run().await?;
    let permits = Arc::new(Semaphore::new(crate::pull::default_parallelism()));
    let mut tasks = tokio::task::JoinSet::new();
    for layer in &plan.layers {
        let job = job(layer, Some(progress.clone()));
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|e| PushError::Task { message: e.to_string() })?;
            job.run().await
        });
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.unwrap_or_else(|e| Err(PushError::Task { message: e.to_string() }));
        if let Err(err) = result {
            if first_error.is_none() {
                // The others cannot make the push succeed any more.
                tasks.abort_all();
                first_error = Some(err);
            }
        }
    }
    if let Some(err) = first_error {
        return Err(err);
    }

    let tag = plan.reference.tag().unwrap_or(kiln_types::DEFAULT_TAG).to_owned();
    let digest = repo.put_manifest(&tag, &plan.media_type, plan.manifest.clone()).await?;
    if digest != plan.manifest_digest {
        return Err(PushError::ManifestDigest {
            reference: plan.reference.familiar(),
            expected: plan.manifest_digest.clone(),
            actual: digest,
        });
    }
    let size = plan.manifest.len() as u64;
    let _ = progress.send(PushProgress::Digest { tag, digest: digest.clone(), size });
    Ok(PushedTag { id: plan.id.clone(), reference: plan.reference.clone(), digest, size })
}

/// One blob to send: skipped, mounted or uploaded.
struct BlobJob {
    repo: Repository,
    /// Where the blob's bytes are.
    path: PathBuf,
    desc: Descriptor,
    mount_from: Vec<String>,
    chunk_size: u64,
    progress: Option<ProgressSender>,
}

impl BlobJob {
    async fn run(self) -> Result<(), PushError> {
        let digest = &self.desc.digest;
        let id = short(digest);
        let report = |step: PushProgress| {
            if let Some(progress) = &self.progress {
                let _ = progress.send(step);
            }
        };
        if is_foreign(&self.desc.media_type) {
            report(PushProgress::Skipped { id });
            return Ok(());
        }
        if self.repo.blob_exists(digest).await?.is_some() {
            report(PushProgress::AlreadyExists { id });
            return Ok(());
        }
        let mut session = None;
        for from in &self.mount_from {
            match self.repo.mount_blob(digest, from).await {
                Ok(Mount::Mounted) => {
                    report(PushProgress::Mounted { id, from: from.clone() });
                    return Ok(());
                }
                Ok(Mount::Upload(opened)) => {
                    session = Some(opened);
                    break;
                }
                // A mount is an optimisation: any failure falls back to an upload.
                Err(err) => {
                    tracing::debug!(digest = %digest, from = %from, error = %err, "mount failed")
                }
            }
        }
        if !self.path.exists() {
            return Err(PushError::Store {
                digest: digest.clone(),
                source: ContentError::NotFound { digest: digest.clone() },
            });
        }
        let total = self.desc.size;
        let upload_progress = self.progress.clone().map(|tx| {
            let reported = Arc::new(AtomicU64::new(0));
            let id = id.clone();
            let sink: kiln_registry_client::UploadProgress = Arc::new(move |current: u64| {
                let last = reported.load(Ordering::Relaxed);
                // A retry starts again from 0.
                if current < last || current - last >= REPORT_EVERY || current == total {
                    reported.store(current, Ordering::Relaxed);
                    let _ = tx.send(PushProgress::Pushing { id: id.clone(), current, total });
                }
            });
            sink
        });
        self.repo
            .upload_blob(BlobUpload {
                digest: digest.clone(),
                size: total,
                source: Arc::new(FileSource::new(&self.path)),
                chunk_size: self.chunk_size,
                session,
                progress: upload_progress,
            })
            .await?;
        report(PushProgress::Pushed { id });
        Ok(())
    }
}

/// `plan` with its layers sent as `to`: each layer stored otherwise is
/// decompressed and compressed again into a temp file (under the content
/// store's ingest dir, which a restart clears), several at a time, and the
/// manifest becomes an OCI manifest naming them. The config, and so the
/// image id, stay; the manifest digest changes, as it must. The temp files
/// are returned: they are removed when dropped.
async fn recompress(
    content: &Store,
    mut plan: Plan,
    to: LayerCompression,
) -> Result<(Plan, Vec<tempfile::TempPath>), PushError> {
    let permits = Arc::new(Semaphore::new(crate::pull::default_parallelism()));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, layer) in plan.layers.iter().enumerate() {
        if is_foreign(&layer.media_type) || compression_of(&layer.media_type) == Some(to) {
            continue;
        }
        let (content, layer, permits) = (content.clone(), layer.clone(), Arc::clone(&permits));
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|e| PushError::Task { message: e.to_string() })?;
            let done = tokio::task::spawn_blocking(move || recompress_layer(&content, &layer, to))
                .await
                .map_err(|e| PushError::Task { message: e.to_string() })??;
            Ok::<_, PushError>((index, done))
        });
    }
    let mut temps = Vec::new();
    let mut replaced = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, (desc, temp)) =
            joined.map_err(|e| PushError::Task { message: e.to_string() })??;
        plan.paths.insert(desc.digest.clone(), temp.to_path_buf());
        temps.push(temp);
        replaced.insert(index, desc);
    }
    let mut manifest =
        ImageManifest::from_json(&plan.manifest).map_err(|source| PushError::InvalidManifest {
            what: "manifest",
            id: plan.id.clone(),
            digest: plan.manifest_digest.clone(),
            source,
        })?;
    // The layers as sent (one entry per distinct layer, in manifest order).
    let sent: BTreeMap<Digest, Descriptor> = plan
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| (l.digest.clone(), replaced.remove(&i).unwrap_or_else(|| l.clone())))
        .collect();
    manifest.media_type = Some(media_type::OCI_MANIFEST.to_owned());
    manifest.config.media_type = media_type::OCI_CONFIG.to_owned();
    for layer in &mut manifest.layers {
        if let Some(new) = sent.get(&layer.digest) {
            layer.digest = new.digest.clone();
            layer.size = new.size;
            layer.media_type = new.media_type.clone();
        }
        layer.media_type = oci_media_type(&layer.media_type);
    }
    let mut seen = BTreeSet::new();
    plan.layers =
        manifest.layers.iter().filter(|l| seen.insert(l.digest.clone())).cloned().collect();
    // Mounts are by digest: the stored layers' sources do not hold these.
    plan.mount_from.clear();
    let bytes = manifest.to_json();
    plan.manifest_digest = sha256_digest(&Sha256::digest(&bytes));
    plan.manifest = bytes.into();
    plan.media_type = media_type::OCI_MANIFEST.to_owned();
    Ok((plan, temps))
}

/// The compression a layer media type says, `None` for anything else.
fn compression_of(media: &str) -> Option<LayerCompression> {
    match media {
        media_type::OCI_LAYER_GZIP | media_type::DOCKER_LAYER_GZIP => Some(LayerCompression::Gzip),
        media_type::OCI_LAYER_ZSTD => Some(LayerCompression::Zstd),
        _ => None,
    }
}

/// The OCI name of a layer media type (Docker's, in an OCI manifest).
fn oci_media_type(media: &str) -> String {
    match media {
        media_type::DOCKER_LAYER => media_type::OCI_LAYER,
        media_type::DOCKER_LAYER_GZIP => media_type::OCI_LAYER_GZIP,
        other => other,
    }
    .to_owned()
}

fn sha256_digest(hash: &[u8]) -> Digest {
    use std::fmt::Write as _;
    let hex = hash.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    Digest::new(Algorithm::Sha256, &hex).expect("a sha256 hash is 64 lower-case hex digits")
}

/// One layer decompressed and compressed again as `to` into a temp file:
/// its descriptor and the file.
fn recompress_layer(
    content: &Store,
    layer: &Descriptor,
    to: LayerCompression,
) -> Result<(Descriptor, tempfile::TempPath), PushError> {
    let failed = |source| PushError::Compress { digest: layer.digest.clone(), source };
    let blob = content
        .open_blob(&layer.digest)
        .map_err(|source| PushError::Store { digest: layer.digest.clone(), source })?;
    let (plain, _) = kiln_snapshot::decompress(BufReader::new(blob)).map_err(failed)?;
    let dir = content.root().join("ingest");
    let temp = tempfile::Builder::new().prefix("push-").tempfile_in(&dir).map_err(failed)?;
    let file = temp.as_file().try_clone().map_err(failed)?;
    let mut out = Hashing { inner: BufWriter::new(file), hasher: Sha256::new(), written: 0 };
    let media = match to {
        LayerCompression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(&mut out, flate2::Compression::default());
            let mut plain = plain;
            io::copy(&mut plain, &mut encoder).map_err(failed)?;
            encoder.finish().map_err(failed)?;
            media_type::OCI_LAYER_GZIP
        }
        LayerCompression::Zstd => {
            // ruzstd's encoder panics on I/O errors: it sees none, they are
            // kept aside and reported after.
            let mut reader = Catching { inner: plain, error: None };
            let mut writer = Catching { inner: &mut out, error: None };
            ruzstd::encoding::compress(
                &mut reader,
                &mut writer,
                ruzstd::encoding::CompressionLevel::Fastest,
            );
            if let Some(err) = reader.error.take().or(writer.error.take()) {
                return Err(failed(err));
            }
            media_type::OCI_LAYER_ZSTD
        }
    };
    out.inner.flush().map_err(failed)?;
    let Hashing { hasher, written, .. } = out;
    let desc = Descriptor::new(media, sha256_digest(&hasher.finalize()), written);
    Ok((desc, temp.into_temp_path()))
}

/// A writer that hashes and counts what passes.
struct Hashing<W: Write> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader or writer whose first error is kept instead of returned: the
/// stream then looks ended (reads) or bottomless (writes).
struct Catching<T> {
    inner: T,
    error: Option<io::Error>,
}

impl<R: Read> Read for Catching<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Ok(0);
        }
        loop {
            match self.inner.read(buf) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    self.error = Some(err);
                    return Ok(0);
                }
                Ok(n) => return Ok(n),
            }
        }
    }
}

impl<W: Write> Write for Catching<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.error.is_none() {
            if let Err(err) = self.inner.write_all(buf) {
                self.error = Some(err);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.error.is_none() {
            if let Err(err) = self.inner.flush() {
                self.error = Some(err);
            }
        }
        Ok(())
    }
}

/// Layers registries do not take (Windows base layers, non-distributable).
fn is_foreign(media: &str) -> bool {
    media == media_type::DOCKER_FOREIGN_LAYER
        || media.starts_with("application/vnd.oci.image.layer.nondistributable.v1.tar")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chunk_size_is_the_asked_one_then_the_default() {
        assert_eq!(chunk_size(Some(1000)), 1000);
        assert_eq!(chunk_size(Some(0)).max(1), chunk_size(None).max(1));
    }

    #[test]
    fn recompressed_layers_decompress_to_the_stored_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let content = Store::open(dir.path()).unwrap();
        let plain: Vec<u8> = (0..300_000u32).map(|i| (i % 7 + i / 1000 % 3) as u8).collect();
        let digest = content.put(&plain).unwrap();
        let layer = Descriptor::new(media_type::DOCKER_LAYER, digest.clone(), plain.len() as u64);
        for (to, media) in [
            (LayerCompression::Gzip, media_type::OCI_LAYER_GZIP),
            (LayerCompression::Zstd, media_type::OCI_LAYER_ZSTD),
        ] {
            let (desc, temp) = recompress_layer(&content, &layer, to).unwrap();
            let bytes = std::fs::read(&temp).unwrap();
            assert_eq!(desc.media_type, media);
            assert_eq!(desc.size, bytes.len() as u64);
            assert!(desc.size < plain.len() as u64 / 4, "{to:?} compresses: {}", desc.size);
            assert_eq!(desc.digest, sha256_digest(&Sha256::digest(&bytes)));
            let (mut reader, _) = kiln_snapshot::decompress(&bytes[..]).unwrap();
            let mut back = Vec::new();
            reader.read_to_end(&mut back).unwrap();
            assert!(back == plain, "{to:?} gives the stored bytes back");
        }
    }

    #[test]
    fn compressions_are_named_as_the_flag_takes_them() {
        assert_eq!("zstd".parse::<LayerCompression>().unwrap(), LayerCompression::Zstd);
        assert_eq!("gzip".parse::<LayerCompression>().unwrap(), LayerCompression::Gzip);
        assert!(matches!(
            "lz4".parse::<LayerCompression>(),
            Err(PushError::InvalidCompression { .. })
        ));
        assert_eq!(compression_of(media_type::DOCKER_LAYER_GZIP), Some(LayerCompression::Gzip));
        assert_eq!(compression_of(media_type::OCI_LAYER), None);
        assert_eq!(oci_media_type(media_type::DOCKER_LAYER_GZIP), media_type::OCI_LAYER_GZIP);
    }

    #[test]
    fn foreign_layers_are_told_apart() {
        assert!(is_foreign(media_type::DOCKER_FOREIGN_LAYER));
        assert!(is_foreign("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"));
        assert!(!is_foreign(media_type::OCI_LAYER_GZIP));
    }
}
