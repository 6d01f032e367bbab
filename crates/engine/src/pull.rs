//! `docker pull`: an image from a registry into the content store, its
//! layers unpacked into snapshots, then its record and tags.
//!
//! The manifest is resolved first (an index gives the manifest for the
//! platform asked for, the host's by default), so that an unknown tag fails
//! before any progress is reported. Then the config and the missing layers
//! stream into the content store, several at a time; each blob is hashed as
//! it is written and becomes visible only if its digest matches. Layers are
//! unpacked bottom first as soon as they and those below them are stored,
//! while the ones above are still arriving. The image record and its tags
//! are written last, in one transaction: a failed pull tags nothing.
//!
//! Registry protocol details live in `kiln-registry-client`; what manifests
//! mean (platforms, configs, layers) is decided here, with `kiln-image`.

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_content::{ContentError, Ingest, Store};
use kiln_image::{
    media_type, Descriptor, ImageConfig, ImageIndex, ImageManifest, LayerError, Metadata,
    MetadataError, Platform,
};
use kiln_registry_client::{BlobSink, Endpoint, Repository, RetryPolicy, Trust};
use kiln_snapshot::Snapshots;
use kiln_types::{Digest, ErrorKind, HasKind, ImageRef, ReferenceError};
use tokio::sync::{mpsc, Semaphore};

pub use kiln_registry_client::{Credentials, RegistryError};

/// Bytes between two `Downloading` reports of one blob.
const REPORT_EVERY: u64 = 512 * 1024;

/// What `docker pull` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRequest {
    /// `name[:tag]` or `name@sha256:…`; a bare name means `:latest`.
    pub reference: String,
    /// `os/arch[/variant]`; the host's platform when `None`.
    pub platform: Option<String>,
    /// For the image's registry, from the client's `X-Registry-Auth`; the
    /// anonymous token flow when `None`. The daemon keeps none of its own.
    pub credentials: Option<Credentials>,
}

/// One step of a pull, in the order Docker reports them. `id` is a layer's
/// short digest (12 hex digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullProgress {
    /// The manifest was found: `latest: Pulling from library/busybox`
    /// (the repository's path, without the registry, as Docker words it).
    PullingFrom {
        id: String,
        repository: String,
    },
    /// A layer is stored already.
    AlreadyExists {
        id: String,
    },
    /// A layer will be downloaded.
    Waiting {
        id: String,
    },
    Downloading {
        id: String,
        current: u64,
        total: u64,
    },
    /// The layer is stored and verified.
    DownloadComplete {
        id: String,
    },
    /// The layer is unpacked.
    PullComplete {
        id: String,
    },
    /// The digest of what was pulled (the index's, for an index).
    Digest {
        digest: Digest,
    },
}

/// Where progress goes; the pull never waits on it.
pub type ProgressSender = mpsc::UnboundedSender<PullProgress>;

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOutcome {
    /// The image's id (its config digest).
    pub id: Digest,
    /// The reference pulled, normalised (`docker.io/library/busybox:latest`).
    pub reference: ImageRef,
    /// The digest of the manifest or index the reference named.
    pub digest: Digest,
    /// The reference named this image already: nothing was downloaded.
    pub up_to_date: bool,
}

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("invalid reference format: {reference:?}")]
    InvalidReference {
        reference: String,
        #[source]
        source: ReferenceError,
    },
    #[error("invalid platform {platform:?}: expected os/arch[/variant], such as linux/amd64")]
    InvalidPlatform { platform: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    // docker-compat: dockerd's wording, with the platforms the index has added.
    #[error("no matching manifest for {wanted} in the manifest list entries of {reference}; it has: {}", .available.join(", "))]
    NoMatchingPlatform { reference: String, wanted: String, available: Vec<String> },
    #[error("{reference} is not an image: its config has media type {media_type:?} (an artifact such as a signature or an attestation)")]
    NotAnImage { reference: String, media_type: String },
    #[error("{what} {digest} is not valid")]
    InvalidManifest {
        what: &'static str,
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("{reference}: an index inside an index is not supported")]
    NestedIndex { reference: String },
    #[error("blob {expected} from the registry does not match its digest (its content hashes to {actual}); nothing was stored")]
    BlobMismatch { expected: Digest, actual: Digest },
    #[error("cannot store blob {digest}")]
    Store {
        digest: Digest,
        #[source]
        source: ContentError,
    },
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Register(#[from] kiln_image::ArchiveError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("a pull task failed: {message}")]
    Task { message: String },
}

impl HasKind for PullError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidReference { .. }
            | Self::InvalidPlatform { .. }
            | Self::NotAnImage { .. }
            | Self::InvalidManifest { .. }
            | Self::BlobMismatch { .. } => ErrorKind::InvalidArgument,
            Self::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            Self::NestedIndex { .. } => ErrorKind::Unsupported,
            Self::Registry(e) => e.kind(),
            Self::Store { source, .. } => source.kind(),
            Self::Layer(e) => e.kind(),
            Self::Register(e) => e.kind(),
            Self::Metadata(e) => e.kind(),
            Self::Task { .. } => ErrorKind::Internal,
        }
    }
}

/// The stores a pull writes to.
#[derive(Debug, Clone)]
pub(crate) struct Stores {
    pub content: Store,
    pub snapshots: Snapshots,
    pub metadata: Metadata,
}

/// Blobs fetched (and pushed) at once: the machine's parallelism, at least
/// 4, at most 16.
pub(crate) fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get().clamp(4, 16))
}

/// `os/arch[/variant]` as a platform.
pub fn parse_platform(text: &str) -> Result<Platform, PullError> {
    let invalid = || PullError::InvalidPlatform { platform: text.to_owned() };
    let parts: Vec<&str> = text.split('/').collect();
    if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(invalid());
    }
    let mut platform = Platform {
        architecture: parts[1].to_ascii_lowercase(),
        os: parts[0].to_ascii_lowercase(),
        os_version: None,
        os_features: Vec::new(),
        variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
    };
    // Go's names, as Docker normalises them.
    match platform.architecture.as_str() {
        "x86_64" | "x86-64" => platform.architecture = "amd64".into(),
        "aarch64" => platform.architecture = "arm64".into(),
        _ => {}
    }
    Ok(platform)
}

fn platform_name(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// The manifest of `index` for `wanted`: an exact variant match first, then
/// any that runs on it. Without one, the platforms the index has (entries
/// without a platform and buildx's `unknown/unknown` attestations left out).
pub(crate) fn select_manifest<'a>(
    index: &'a ImageIndex,
    wanted: &Platform,
) -> Result<&'a Descriptor, Vec<String>> {
    let candidates: Vec<(&Descriptor, &Platform)> = index
        .manifests
        .iter()
        .filter(|d| media_type::is_manifest(&d.media_type) || d.media_type.is_empty())
        .filter_map(|d| d.platform.as_ref().map(|p| (d, p)))
        .collect();
    let exact = candidates.iter().find(|(_, p)| {
        p.os == wanted.os && p.architecture == wanted.architecture && p.variant == wanted.variant
    });
    if let Some((d, _)) = exact.or_else(|| candidates.iter().find(|(_, p)| p.runs_on(wanted))) {
        return Ok(d);
    }
    let mut available: Vec<String> = candidates
        .iter()
        .map(|(_, p)| platform_name(p))
        .filter(|name| name != "unknown/unknown")
        .collect();
    available.dedup();
    Err(available)
}

fn short(digest: &Digest) -> String {
    digest.hex().chars().take(12).collect()
}

/// `docker login`'s check (`POST /auth`): do the registry at
/// `server_address` (`127.0.0.1:5000`, `https://index.docker.io/v1/`)
/// and its token server take `credentials`? The identity token to keep
/// instead of the password, when the token server gave one.
pub async fn login(
    server_address: &str,
    credentials: &Credentials,
) -> Result<Option<String>, RegistryError> {
    let registry = registry_of_server_address(server_address);
    kiln_registry_client::check_login(
        &Endpoint::for_registry(&registry),
        credentials,
        &Trust::system(),
    )
    .await
}

/// The registry (`host[:port]`) a login's server address names, as
/// dockerd reads it: any scheme and path dropped, Docker Hub's names
/// (`index.docker.io`, `registry-1.docker.io`, none) as `docker.io`.
fn registry_of_server_address(address: &str) -> String {
    let address = address.trim();
    let rest = address
        .strip_prefix("https://")
        .or_else(|| address.strip_prefix("http://"))
        .unwrap_or(address);
    let host = rest.split('/').next().unwrap_or_default();
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            kiln_types::DEFAULT_REGISTRY.to_owned()
        }
        host => host.to_owned(),
    }
}

/// Pull `request` into `stores`, reporting to `progress`.
pub(crate) async fn pull(
    stores: Stores,
    request: &PullRequest,
    progress: ProgressSender,
) -> Result<PullOutcome, PullError> {
    let parsed: ImageRef = request.reference.parse().map_err(|source| {
        PullError::InvalidReference { reference: request.reference.clone(), source }
    })?;
    let reference = parsed.normalized();
    let wanted = match &request.platform {
        Some(text) if !text.is_empty() => parse_platform(text)?,
        _ => Platform::host(),
    };
    let asked = match (reference.digest(), reference.tag()) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.to_owned(),
        (None, None) => kiln_types::DEFAULT_TAG.to_owned(),
    };
    let display = reference.familiar();
    let repo = Repository::new(
        Endpoint::for_registry(reference.registry()),
        reference.repository(),
        RetryPolicy::default(),
    )?
    .with_credentials(request.credentials.clone());

    // Resolve: the manifest the reference names, then the platform's.
    let top = repo.manifest(&asked).await?;
    let mut manifests = vec![top.clone()];
    let image_manifest = if media_type::is_index(&top.media_type) {
        let index = ImageIndex::from_json(&top.bytes).map_err(|source| {
            PullError::InvalidManifest { what: "image index", digest: top.digest.clone(), source }
        })?;
        let chosen = select_manifest(&index, &wanted).map_err(|available| {
            PullError::NoMatchingPlatform {
                reference: display.clone(),
                wanted: platform_name(&wanted),
                available,
            }
        })?;
        let manifest = repo.manifest(&chosen.digest.to_string()).await?;
        if media_type::is_index(&manifest.media_type) {
            return Err(PullError::NestedIndex { reference: display });
        }
        manifests.push(manifest.clone());
        manifest
    } else {
        top.clone()
    };
    let parsed_manifest = ImageManifest::from_json(&image_manifest.bytes).map_err(|source| {
        PullError::InvalidManifest {
            what: "manifest",
            digest: image_manifest.digest.clone(),
            source,
        }
    })?;
    if !media_type::is_config(&parsed_manifest.config.media_type) {
        return Err(PullError::NotAnImage {
            reference: display,
            media_type: parsed_manifest.config.media_type.clone(),
        });
    }
    let id = parsed_manifest.config.digest.clone();

    // The references the image gets: the tag, and name@digest.
    let mut tags = Vec::new();
    if reference.digest().is_none() {
        tags.push(reference.clone());
    }
    let by_digest = reference.without_tag_or_digest().with_digest(top.digest.clone());
    tags.push(by_digest);
    let _ = progress.send(PullProgress::PullingFrom {
        id: asked.clone(),
        repository: reference.repository().to_owned(),
    });
    if is_up_to_date(&stores.metadata, &id, &tags)? {
        let _ = progress.send(PullProgress::Digest { digest: top.digest.clone() });
        return Ok(PullOutcome { id, reference, digest: top.digest, up_to_date: true });
    }

    for manifest in &manifests {
        store_small(&stores.content, &manifest.digest, &manifest.bytes).await?;
    }
    // The config first: its diff ids say how to unpack.
    let config_desc = &parsed_manifest.config;
    if !stores.content.contains(&config_desc.digest) {
        fetch_blob(&repo, &stores.content, config_desc, None).await?;
    }
    let content = stores.content.clone();
    let config_digest = config_desc.digest.clone();
    let config_bytes = blocking(move || {
        content
            .read(&config_digest)
            .map_err(|source| PullError::Store { digest: config_digest.clone(), source })
    })
    .await?;
    let config =
        ImageConfig::from_json(&config_bytes).map_err(|source| PullError::InvalidManifest {
            what: "image config",
            digest: config_desc.digest.clone(),
            source,
        })?;
    let layers: Vec<Descriptor> = parsed_manifest.layers.clone();
    let diff_ids = config.rootfs.diff_ids.clone();
    if diff_ids.len() != layers.len() {
        return Err(
            LayerError::CountMismatch { layers: layers.len(), diff_ids: diff_ids.len() }.into()
        );
    }
    let chains = kiln_snapshot::chain_ids(&diff_ids);

    // Downloads and unpacking, overlapped.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<usize>();
    let unpacker = {
        let stores = stores.clone();
        let layers: Vec<Digest> = layers.iter().map(|l| l.digest.clone()).collect();
        let diff_ids = diff_ids.clone();
        let chains = chains.clone();
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || {
            unpack_in_order(&stores, &layers, &diff_ids, &chains, &done_rx, &progress)
        })
    };
    let downloads = download_layers(&repo, &stores.content, &layers, &progress, done_tx).await;
    let unpacked = unpacker.await.map_err(|e| PullError::Task { message: e.to_string() });
    downloads?;
    unpacked??;

    let record = {
        let stores = stores.clone();
        let manifest = image_manifest.digest.clone();
        blocking(move || {
            kiln_image::register_image(
                &stores.content,
                &stores.snapshots,
                &stores.metadata,
                &manifest,
                tags,
                Some(chains),
            )
            .map_err(PullError::from)
        })
        .await?
    };
    let _ = progress.send(PullProgress::Digest { digest: top.digest.clone() });
    Ok(PullOutcome { id: record.id, reference, digest: top.digest, up_to_date: false })
}

/// Whether the image exists and every reference to give it names it already.
fn is_up_to_date(metadata: &Metadata, id: &Digest, tags: &[ImageRef]) -> Result<bool, PullError> {
    if metadata.image(id)?.is_none() {
        return Ok(false);
    }
    let references: BTreeMap<ImageRef, Digest> = metadata.references()?.into_iter().collect();
    Ok(tags.iter().all(|t| references.get(t) == Some(id)))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PullError> + Send + 'static,
) -> Result<T, PullError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| PullError::Task { message: e.to_string() })?
}

/// Store a manifest already in memory (and checked against its digest).
async fn store_small(
    content: &Store,
    digest: &Digest,
    bytes: &bytes::Bytes,
) -> Result<(), PullError> {
    if content.contains(digest) {
        return Ok(());
    }
    let content = content.clone();
    let digest = digest.clone();
    let bytes = bytes.clone();
    blocking(move || {
        let stored = content
            .put(&bytes)
            .map_err(|source| PullError::Store { digest: digest.clone(), source })?;
        if stored != digest {
            return Err(PullError::BlobMismatch { expected: digest, actual: stored });
        }
        Ok(())
    })
    .await
}

/// Fetch every layer not stored yet, a few at a time; each index of
/// `layers` goes to `done` once its blob is stored.
async fn download_layers(
    repo: &Repository,
    content: &Store,
    layers: &[Descriptor],
    progress: &ProgressSender,
    done: std::sync::mpsc::Sender<usize>,
) -> Result<(), PullError> {
    // A blob named twice is fetched once.
    let mut by_digest: BTreeMap<Digest, (Descriptor, Vec<usize>)> = BTreeMap::new();
    let mut order = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let entry = by_digest.entry(layer.digest.clone()).or_insert_with(|| {
            order.push(layer.digest.clone());
            (layer.clone(), Vec::new())
        });
        entry.1.push(i);
    }
    let mut missing = Vec::new();
    for digest in &order {
        let (desc, indexes) = &by_digest[digest];
        if content.contains(digest) {
            let _ = progress.send(PullProgress::AlreadyExists { id: short(digest) });
            for i in indexes {
                let _ = done.send(*i);
            }
        } else {
            let _ = progress.send(PullProgress::Waiting { id: short(digest) });
            missing.push((desc.clone(), indexes.clone()));
        }
    }
    let permits = Arc::new(Semaphore::new(default_parallelism()));
    let mut tasks = tokio::task::JoinSet::new();
    for (desc, indexes) in missing {
        let repo = repo.clone();
        let content = content.clone();
        let progress = progress.clone();
        let done = done.clone();
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|e| PullError::Task { message: e.to_string() })?;
            fetch_blob(&repo, &content, &desc, Some(&progress)).await?;
            let _ = progress.send(PullProgress::DownloadComplete { id: short(&desc.digest) });
            for i in indexes {
                let _ = done.send(i);
            }
            Ok::<(), PullError>(())
        });
    }
    drop(done);
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.unwrap_or_else(|e| Err(PullError::Task { message: e.to_string() }));
        if let Err(err) = result {
            if first_error.is_none() {
                // The others cannot make the pull succeed any more.
                tasks.abort_all();
                first_error = Some(err);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Stream one blob into the content store; visible only once verified.
async fn fetch_blob(
    repo: &Repository,
    content: &Store,
    desc: &Descriptor,
    progress: Option<&ProgressSender>,
) -> Result<(), PullError> {
    let store_err = |source| PullError::Store { digest: desc.digest.clone(), source };
    let ingest = content.writer(Some(&desc.digest), Some(desc.size)).map_err(store_err)?;
    let mut sink = IngestSink {
        content: content.clone(),
        desc: desc.clone(),
        ingest: Some(ingest),
        progress: progress.cloned(),
        reported: 0,
    };
    let result = repo.blob(&desc.digest, Some(desc.size), &mut sink).await;
    if let Err(err) = result {
        // A write refused because the registry sent more than the
        // descriptor's size is the ingest's own error; say so plainly.
        return Err(err.into());
    }
    let ingest = sink.ingest.take().ok_or_else(|| PullError::Task {
        message: format!("blob {} has no ingest", desc.digest),
    })?;
    let digest = desc.digest.clone();
    blocking(move || {
        ingest.commit().map(drop).map_err(|err| match err {
            ContentError::DigestMismatch { expected, actual } => {
                PullError::BlobMismatch { expected, actual }
            }
            other => PullError::Store { digest, source: other },
        })
    })
    .await
}

/// The content store's ingest as a registry blob sink, reporting progress.
struct IngestSink {
    content: Store,
    desc: Descriptor,
    ingest: Option<Ingest>,
    progress: Option<ProgressSender>,
    reported: u64,
}

impl BlobSink for IngestSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write as _;
        let ingest =
            self.ingest.as_mut().ok_or_else(|| std::io::Error::other("the ingest is gone"))?;
        ingest.write_all(bytes)?;
        let written = ingest.written();
        if let Some(progress) = &self.progress {
            if written - self.reported >= REPORT_EVERY || written == self.desc.size {
                self.reported = written;
                let _ = progress.send(PullProgress::Downloading {
                    id: short(&self.desc.digest),
                    current: written,
                    total: self.desc.size,
                });
            }
        }
        Ok(())
    }

    fn restart(&mut self) -> std::io::Result<()> {
        // Dropping the old ingest removes its temp file.
        self.ingest = None;
        self.reported = 0;
        let ingest = self
            .content
            .writer(Some(&self.desc.digest), Some(self.desc.size))
            .map_err(std::io::Error::other)?;
        self.ingest = Some(ingest);
        Ok(())
    }
}

/// Unpack layers bottom first as their indexes arrive on `done`.
fn unpack_in_order(
    stores: &Stores,
    layers: &[Digest],
    diff_ids: &[Digest],
    chains: &[Digest],
    done: &std::sync::mpsc::Receiver<usize>,
    progress: &ProgressSender,
) -> Result<(), PullError> {
    let mut arrived = vec![false; layers.len()];
    let mut next = 0;
    while next < layers.len() {
        // A closed channel means a download failed; its error is reported.
        let Ok(i) = done.recv() else { return Ok(()) };
        if let Some(slot) = arrived.get_mut(i) {
            *slot = true;
        }
        while next < layers.len() && arrived[next] {
            kiln_image::unpack_layer(
                &stores.content,
                &stores.snapshots,
                &layers[next],
                &diff_ids[next],
                &chains[next],
            )?;
            let _ = progress.send(PullProgress::PullComplete { id: short(&layers[next]) });
            next += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_server_addresses_name_their_registry_as_dockerd_reads_them() {
        assert_eq!(registry_of_server_address("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_of_server_address(""), "docker.io");
        assert_eq!(registry_of_server_address("registry-1.docker.io"), "docker.io");
        assert_eq!(registry_of_server_address("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(registry_of_server_address("http://localhost:5000/v2/"), "localhost:5000");
        assert_eq!(registry_of_server_address("ghcr.io"), "ghcr.io");
    }

    #[test]
    fn credentials_never_show_in_a_pull_request_debug() {
        let request = PullRequest {
            reference: "a".into(),
            credentials: Some(Credentials::password("u", "hunter2")),
            ..PullRequest::default()
        };
        assert!(!format!("{request:?}").contains("hunter2"));
    }

    fn desc(arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        let digest: Digest = format!("sha256:{}", format!("{n:02x}").repeat(32)).parse().unwrap();
        let mut d = Descriptor::new(media_type::OCI_MANIFEST, digest, 1);
        d.platform = Some(Platform {
            architecture: arch.into(),
            os: "linux".into(),
            os_version: None,
            os_features: Vec::new(),
            variant: variant.map(Into::into),
        });
        d
    }

    #[test]
    fn the_wanted_platform_is_picked_from_an_index() {
        let index = ImageIndex::oci(vec![
            desc("arm", Some("v6"), 1),
            desc("arm", Some("v7"), 2),
            desc("amd64", None, 3),
            desc("arm64", Some("v8"), 4),
        ]);
        let pick = |p: &str| {
            select_manifest(&index, &parse_platform(p).unwrap()).map(|d| d.digest.clone())
        };
        assert_eq!(pick("linux/amd64").unwrap(), index.manifests[2].digest);
        assert_eq!(pick("linux/arm/v7").unwrap(), index.manifests[1].digest);
        assert_eq!(pick("linux/arm64").unwrap(), index.manifests[3].digest);
        assert_eq!(pick("linux/x86_64").unwrap(), index.manifests[2].digest);
    }

    #[test]
    fn an_index_without_the_platform_lists_what_it_has() {
        let mut attestation = desc("unknown", None, 9);
        attestation.platform.as_mut().unwrap().os = "unknown".into();
        let index = ImageIndex::oci(vec![
            desc("arm64", Some("v8"), 1),
            desc("s390x", None, 2),
            attestation,
        ]);
        let available =
            select_manifest(&index, &parse_platform("linux/amd64").unwrap()).unwrap_err();
        assert_eq!(available, ["linux/arm64/v8", "linux/s390x"]);
    }

    #[test]
    fn platforms_parse_as_docker_writes_them() {
        let p = parse_platform("linux/arm64/v8").unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("linux", "arm64", Some("v8"))
        );
        for bad in ["linux", "", "linux/", "a/b/c/d"] {
            assert!(matches!(parse_platform(bad), Err(PullError::InvalidPlatform { .. })), "{bad}");
        }
    }
}
