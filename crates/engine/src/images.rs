//! The image service: listing, inspecting, tagging, removing, and moving
//! images in and out as archives (`load`, `save`, `import`).
//!
//! Every method here is synchronous (tar, hashing, redb); the API server
//! calls them from a blocking thread. Blobs and unpacked layers that no
//! image uses any more are removed when an image is deleted; loads and
//! imports hold a read lock that the sweep takes for writing, so that it never
//! sees their blobs before their image is recorded.
//!
//! Each change goes out as Docker's image event (`tag`, `untag`, `delete`,
//! `import`, `load`, `save`, `prune`), with the image id as the actor.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::{Arc, RwLock};

use kiln_content::Store;
use kiln_image::{ArchiveError, ImageConfig, ImageRecord, ImportError, Metadata, MetadataError};
use kiln_snapshot::Snapshots;
use kiln_types::{Digest, ErrorKind, HasKind, ImageRef, ReferenceError};

use crate::events::Events;
use crate::glob::glob_match;
use kiln_types::time::parse_rfc3339 as rfc3339_to_unix;

pub use kiln_image::{ContainerConfig, Healthcheck, History};

/// One row of `docker images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub id: Digest,
    /// `name:tag`, in Docker's short form (`busybox:latest`).
    pub repo_tags: Vec<String>,
    /// `name@sha256:…`, short form.
    pub repo_digests: Vec<String>,
    /// Unix seconds; 0 when the image does not say.
    pub created: i64,
    /// Bytes of the image's layers as stored.
    pub size: u64,
    pub labels: Vec<(String, String)>,
}

/// What `docker system df` shows of images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDiskUsage {
    /// Bytes of every distinct layer blob, each counted once.
    pub layers_size: u64,
    /// Each image with the bytes of its layers that other images use too.
    pub images: Vec<(ImageSummary, u64)>,
}

/// Which images [`Images::list`] returns (`docker images --filter`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFilter {
    /// Glob patterns (`py*`, `*/app:1.*`) over short references; an image
    /// matches when one of its tags does, and only matching tags are listed.
    pub references: Vec<String>,
    /// `Some(true)`: only images without tags; `Some(false)`: only tagged ones.
    pub dangling: Option<bool>,
    /// `key` or `key=value`: images with that label.
    pub labels: Vec<String>,
}

/// Everything `docker image inspect` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDetails {
    pub id: Digest,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub size: u64,
    /// The image config, as stored.
    pub config: ImageConfig,
    /// The comment of the newest history entry (`docker import -m`).
    pub comment: String,
}

/// One line of `docker history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image's id for the newest entry; `None` (shown as `<missing>`) below.
    pub id: Option<Digest>,
    /// Unix seconds; 0 when unknown.
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    /// Bytes of the layer this step added (0 for config-only steps).
    pub size: u64,
    pub comment: String,
}

/// One thing `docker rmi` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// A reference was removed (short form).
    Untagged(String),
    /// An image (or blob) was deleted.
    Deleted(Digest),
}

/// An image a [`Images::load`] stored, and its tags (short form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: Digest,
    pub tags: Vec<String>,
}

/// What `docker import` takes besides the tar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportRequest {
    /// `repo[:tag]` to tag the new image with.
    pub reference: Option<String>,
    /// `--change` instructions.
    pub changes: Vec<String>,
    /// `--message`.
    pub message: Option<String>,
}

/// Why an image operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    // docker-compat: dockerd capitalises this one message, and clients
    // (docker-py, compose) match on it.
    #[error("No such image: {name}")]
    NoSuchImage { name: String },
    #[error("invalid reference {reference:?}")]
    InvalidReference {
        reference: String,
        #[source]
        source: ReferenceError,
    },
    #[error("refusing to create a tag with a digest reference")]
    TagWithDigest,
    #[error("conflict: unable to delete {short_id} (must be forced) - image is referenced in multiple repositories")]
    ReferencedTwice { short_id: String },
    #[error("conflict: unable to remove repository reference \"{reference}\" (must force) - container {container} is using its referenced image {short_id}")]
    ReferenceInUse { reference: String, container: String, short_id: String },
    #[error("conflict: unable to delete {short_id} (must be forced) - image is being used by stopped container {container}")]
    UsedByStopped { short_id: String, container: String },
    #[error("conflict: unable to delete {short_id} (cannot be forced) - image is being used by running container {container}")]
    UsedByRunning { short_id: String, container: String },
    #[error("short image id {prefix} is ambiguous")]
    Ambiguous { prefix: String },
    #[error("cannot read the config of image {id}")]
    ReadConfig {
        id: Digest,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Metadata(MetadataError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Import(#[from] ImportError),
}

impl HasKind for ImageError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NoSuchImage { .. } => ErrorKind::NotFound,
            Self::InvalidReference { .. } | Self::TagWithDigest | Self::Ambiguous { .. } => {
                ErrorKind::InvalidArgument
            }
            Self::ReferencedTwice { .. }
            | Self::ReferenceInUse { .. }
            | Self::UsedByStopped { .. }
            | Self::UsedByRunning { .. } => ErrorKind::Conflict,
            Self::ReadConfig { .. } => ErrorKind::Internal,
            Self::Metadata(e) => e.kind(),
            Self::Archive(e) => e.kind(),
            Self::Import(e) => e.kind(),
        }
    }
}

impl From<MetadataError> for ImageError {
    fn from(err: MetadataError) -> ImageError {
        match err {
            MetadataError::NotFound { reference } => ImageError::NoSuchImage { name: reference },
            MetadataError::Ambiguous { prefix } => ImageError::Ambiguous { prefix },
            other => ImageError::Metadata(other),
        }
    }
}

/// Who uses an image: the containers created from it. An image in use
/// keeps its layers; `rmi` refuses it, or with force only untags it.
pub trait ImageUsers {
    /// A container using `image` (its short id), and whether it runs.
    fn user_of(&self, image: &Digest) -> Option<(String, bool)>;
}

/// No containers at all (tests, tools).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUsers;

impl ImageUsers for NoUsers {
    fn user_of(&self, _image: &Digest) -> Option<(String, bool)> {
        None
    }
}

/// The engine's images: blobs, unpacked layers and metadata.
#[derive(Debug)]
pub struct Images {
    content: Store,
    snapshots: Snapshots,
    metadata: Metadata,
    /// Read by writers of new blobs (load, import), written by the sweep
    /// after a delete.
    store_guard: RwLock<()>,
    events: Arc<Events>,
}

fn parse_ref(text: &str) -> Result<ImageRef, ImageError> {
    text.parse()
        .map_err(|source| ImageError::InvalidReference { reference: text.to_owned(), source })
}

fn short(id: &Digest) -> String {
    id.hex().chars().take(12).collect()
}

impl Images {
    pub(crate) fn new(
        content: Store,
        snapshots: Snapshots,
        metadata: Metadata,
        events: Arc<Events>,
    ) -> Images {
        Images { content, snapshots, metadata, store_guard: RwLock::new(()), events }
    }

    /// Publish an image event as Docker does: the image's labels while it
    /// still exists, and `name`.
    pub(crate) fn publish(&self, action: &str, id: &Digest, name: &str) {
        let mut attributes: BTreeMap<String, String> = self
            .metadata
            .image(id)
            .ok()
            .flatten()
            .and_then(|record| self.config(&record).ok())
            .and_then(|config| config.config)
            .map(|c| c.labels.into_iter().collect())
            .unwrap_or_default();
        attributes.insert("name".into(), name.to_owned());
        self.events.publish("image", action, &id.to_string(), attributes);
    }

    /// docker-compat: `untag` and `delete` events name the image by its id,
    /// not by the reference removed.
    fn publish_by_id(&self, action: &str, id: &Digest) {
        self.publish(action, id, &id.to_string());
    }

    /// How many images are stored.
    pub fn count(&self) -> Result<u64, ImageError> {
        Ok(self.metadata.images()?.len() as u64)
    }

    /// Images matching `filter`, newest first.
    pub fn list(&self, filter: &ImageFilter) -> Result<Vec<ImageSummary>, ImageError> {
        let references = self.metadata.references()?;
        let mut out = Vec::new();
        for record in self.metadata.images()? {
            let refs: Vec<&ImageRef> =
                references.iter().filter(|(_, id)| *id == record.id).map(|(r, _)| r).collect();
            let mut repo_tags: Vec<String> =
                refs.iter().filter(|r| r.digest().is_none()).map(|r| r.familiar()).collect();
            let repo_digests: Vec<String> =
                refs.iter().filter(|r| r.digest().is_some()).map(|r| r.familiar()).collect();
            match filter.dangling {
                Some(true) if !repo_tags.is_empty() => continue,
                Some(false) if repo_tags.is_empty() => continue,
                _ => {}
            }
            if !filter.references.is_empty() {
                let matches = |r: &&ImageRef| {
                    filter
                        .references
                        .iter()
                        .any(|p| glob_match(p, &r.familiar()) || glob_match(p, &r.familiar_name()))
                };
                let matched: Vec<&ImageRef> = refs.iter().copied().filter(matches).collect();
                if matched.is_empty() {
                    continue;
                }
                repo_tags =
                    matched.iter().filter(|r| r.digest().is_none()).map(|r| r.familiar()).collect();
            }
            // A damaged config costs the image its labels, not the listing.
            let labels: Vec<(String, String)> = match self.config(&record) {
                Ok(config) => {
                    config.config.map(|c| c.labels.into_iter().collect()).unwrap_or_default()
                }
                Err(err) => {
                    tracing::warn!(image = %record.id, error = %err, "cannot read image config");
                    Vec::new()
                }
            };
            if !filter.labels.iter().all(|l| has_label(&labels, l)) {
                continue;
            }
            out.push(ImageSummary {
                created: record.created.as_deref().and_then(rfc3339_to_unix).unwrap_or(0),
                id: record.id,
                repo_tags,
                repo_digests,
                size: record.size,
                labels,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.hex().cmp(b.id.hex())));
        Ok(out)
    }

    /// `docker system df`: the images and how much of them is shared.
    pub fn disk_usage(&self) -> Result<ImageDiskUsage, ImageError> {
        let records = self.metadata.images()?;
        let mut users: std::collections::BTreeMap<&Digest, u32> = std::collections::BTreeMap::new();
        for record in &records {
            for layer in record.layers.iter().collect::<BTreeSet<_>>() {
                *users.entry(layer).or_default() += 1;
            }
        }
        let size_of = |layer: &Digest| self.content.size(layer).unwrap_or(0);
        let layers_size = users.keys().map(|layer| size_of(layer)).sum();
        let shared: std::collections::BTreeMap<&Digest, u64> = records
            .iter()
            .map(|record| {
                let layers: BTreeSet<&Digest> = record.layers.iter().collect();
                let bytes = layers
                    .into_iter()
                    .filter(|layer| users.get(layer).copied().unwrap_or(0) > 1)
                    .map(size_of)
                    .sum();
                (&record.id, bytes)
            })
            .collect();
        let images = self
            .list(&ImageFilter::default())?
            .into_iter()
            .map(|summary| {
                let bytes = shared.get(&summary.id).copied().unwrap_or(0);
                (summary, bytes)
            })
            .collect();
        Ok(ImageDiskUsage { layers_size, images })
    }

    /// `docker image inspect NAME`.
    pub fn inspect(&self, name: &str) -> Result<ImageDetails, ImageError> {
        let record = self.metadata.resolve(name)?;
        let config = self.config(&record)?;
        let comment = config.history.last().and_then(|h| h.comment.clone()).unwrap_or_default();
        Ok(ImageDetails {
            repo_tags: self.metadata.tags_of(&record.id)?.iter().map(ImageRef::familiar).collect(),
            repo_digests: self
                .metadata
                .digests_of(&record.id)?
                .iter()
                .map(ImageRef::familiar)
                .collect(),
            id: record.id,
            size: record.size,
            config,
            comment,
        })
    }

    /// `docker history NAME`: the config's history, newest first, with the
    /// size of the layer each step added.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, ImageError> {
        let record = self.metadata.resolve(name)?;
        let config = self.config(&record)?;
        let tags: Vec<String> =
            self.metadata.tags_of(&record.id)?.iter().map(ImageRef::familiar).collect();
        let mut layer_sizes = record.layers.iter().map(|l| self.content.size(l).unwrap_or(0));
        let mut entries: Vec<HistoryEntry> = config
            .history
            .iter()
            .map(|h| HistoryEntry {
                id: None,
                created: h.created.as_deref().and_then(rfc3339_to_unix).unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: Vec::new(),
                size: if h.empty_layer { 0 } else { layer_sizes.next().unwrap_or(0) },
                comment: h.comment.clone().unwrap_or_default(),
            })
            .collect();
        if entries.is_empty() {
            entries.push(HistoryEntry {
                id: None,
                created: record.created.as_deref().and_then(rfc3339_to_unix).unwrap_or(0),
                created_by: String::new(),
                tags: Vec::new(),
                size: record.size,
                comment: String::new(),
            });
        }
        entries.reverse();
        if let Some(top) = entries.first_mut() {
            top.id = Some(record.id.clone());
            top.tags = tags;
        }
        Ok(entries)
    }

    /// `docker tag NAME REPO[:TAG]`: `tag` empty means `latest`.
    pub fn tag(&self, name: &str, repo: &str, tag: &str) -> Result<(), ImageError> {
        let text = if tag.is_empty() { repo.to_owned() } else { format!("{repo}:{tag}") };
        let reference = parse_ref(&text)?;
        if reference.digest().is_some() {
            return Err(ImageError::TagWithDigest);
        }
        let record = self.metadata.resolve(name)?;
        self.metadata.tag(&reference.normalized(), &record.id)?;
        tracing::info!(image = %record.id, reference = %reference.normalized(), "image tagged");
        self.publish("tag", &record.id, &reference.normalized().familiar());
        Ok(())
    }

    /// `docker rmi [-f] NAME`, with Docker's rules: a reference is untagged,
    /// and the image deleted only when that was its last reference; an id
    /// deletes the image with its references if it has at most one, or with
    /// `force`.
    ///
    /// An image a container uses is never deleted: without `force` that is
    /// Docker's conflict, with it the references go and the image stays.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        users: &dyn ImageUsers,
    ) -> Result<Vec<Deleted>, ImageError> {
        let record = self.metadata.resolve(name)?;
        let user = users.user_of(&record.id);
        let mut done = Vec::new();
        if !is_id_prefix(&record.id, name) {
            let reference = parse_ref(name)?;
            let last = self.references_of(&record.id)?.len() <= 1;
            if let (Some((container, _)), true, false) = (&user, last, force) {
                return Err(ImageError::ReferenceInUse {
                    reference: name.to_owned(),
                    container: container.clone(),
                    short_id: short(&record.id),
                });
            }
            self.metadata.untag(&reference)?;
            done.push(Deleted::Untagged(reference.normalized().familiar()));
            self.publish_by_id("untag", &record.id);
            if !self.references_of(&record.id)?.is_empty() || user.is_some() {
                tracing::info!(image = %record.id, reference = %reference, "image untagged");
                return Ok(done);
            }
        } else if let Some((container, running)) = user {
            if running {
                return Err(ImageError::UsedByRunning { short_id: short(&record.id), container });
            }
            if !force {
                return Err(ImageError::UsedByStopped { short_id: short(&record.id), container });
            }
            for reference in self.references_of(&record.id)? {
                self.metadata.untag(&reference)?;
                done.push(Deleted::Untagged(reference.familiar()));
                self.publish_by_id("untag", &record.id);
            }
            return Ok(done);
        } else {
            let references = self.references_of(&record.id)?;
            let names: BTreeSet<String> = references.iter().map(ImageRef::name).collect();
            let tags = references.iter().filter(|r| r.digest().is_none()).count();
            if !force && (tags > 1 || names.len() > 1) {
                return Err(ImageError::ReferencedTwice { short_id: short(&record.id) });
            }
        }
        let removed = self.metadata.delete_image(&record.id, true)?;
        done.extend(removed.iter().map(|r| Deleted::Untagged(r.familiar())));
        done.push(Deleted::Deleted(record.id.clone()));
        tracing::info!(image = %record.id, "image deleted");
        self.publish_deleted(&record.id, removed.len());
        self.sweep(&record);
        Ok(done)
    }

    /// The events of a deleted image: an `untag` per reference it lost with
    /// it, then `delete`.
    fn publish_deleted(&self, id: &Digest, untagged: usize) {
        for _ in 0..untagged {
            self.publish_by_id("untag", id);
        }
        self.publish_by_id("delete", id);
    }

    fn references_of(&self, id: &Digest) -> Result<Vec<ImageRef>, ImageError> {
        let mut refs = self.metadata.tags_of(id)?;
        refs.extend(self.metadata.digests_of(id)?);
        Ok(refs)
    }

    /// Remove the blobs and layers of a deleted image that no other image
    /// uses; the bytes of blobs removed. Failures are logged: the image is
    /// gone either way.
    fn sweep(&self, deleted: &ImageRecord) -> u64 {
        let _guard = self.store_guard.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let images = match self.metadata.images() {
            Ok(images) => images,
            Err(err) => {
                tracing::warn!(error = %err, "cannot list images; leaving blobs in place");
                return 0;
            }
        };
        let mut reclaimed = 0;
        let mut blobs = BTreeSet::new();
        let mut chains = BTreeSet::new();
        for image in &images {
            blobs.extend([image.manifest.clone(), image.config.clone()]);
            blobs.extend(image.layers.iter().cloned());
            chains.extend(image.chain_ids.iter().cloned());
        }
        let candidates = [deleted.manifest.clone(), deleted.config.clone()]
            .into_iter()
            .chain(deleted.layers.iter().cloned());
        for blob in candidates {
            if !blobs.contains(&blob) && self.content.contains(&blob) {
                let size = self.content.size(&blob).unwrap_or(0);
                match self.content.delete(&blob) {
                    Ok(()) => reclaimed += size,
                    Err(err) => {
                        tracing::warn!(digest = %blob, error = %err, "cannot delete an unused blob");
                    }
                }
            }
        }
        for chain in &deleted.chain_ids {
            if !chains.contains(chain) && self.snapshots.has_layer(chain) {
                if let Err(err) = self.snapshots.remove_layer(chain) {
                    tracing::warn!(chain_id = %chain, error = %err, "cannot remove an unused layer");
                }
            }
        }
        reclaimed
    }

    /// `docker image prune`: delete images without tags, or with `all`
    /// every image (none is used by a container yet). What was done, and
    /// the bytes of blobs removed.
    pub fn prune(
        &self,
        all: bool,
        users: &dyn ImageUsers,
    ) -> Result<(Vec<Deleted>, u64), ImageError> {
        let mut done = Vec::new();
        let mut reclaimed = 0;
        for record in self.metadata.images()? {
            if !all && !self.metadata.tags_of(&record.id)?.is_empty() {
                continue;
            }
            if users.user_of(&record.id).is_some() {
                continue;
            }
            let removed = match self.metadata.delete_image(&record.id, true) {
                Ok(removed) => removed,
                // Deleted meanwhile by someone else: nothing to do.
                Err(MetadataError::ImageNotFound { .. }) => continue,
                Err(err) => return Err(err.into()),
            };
            done.extend(removed.iter().map(|r| Deleted::Untagged(r.familiar())));
            done.push(Deleted::Deleted(record.id.clone()));
            tracing::info!(image = %record.id, "image pruned");
            self.publish_deleted(&record.id, removed.len());
            reclaimed += self.sweep(&record);
        }
        // docker-compat: one `prune` event, with no image, after the rest.
        let attributes = [("reclaimed".to_owned(), reclaimed.to_string())].into();
        self.events.publish("image", "prune", "", attributes);
        Ok((done, reclaimed))
    }

    /// `docker load`: read an archive, store its images and tags.
    pub fn load(&self, reader: impl Read) -> Result<Vec<LoadedImage>, ImageError> {
        let _guard = self.store_guard.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let loaded = kiln_image::load(&self.content, &self.snapshots, &self.metadata, reader)?;
        for image in &loaded {
            self.publish_by_id("load", &image.record.id);
        }
        Ok(loaded
            .into_iter()
            .map(|l| LoadedImage {
                id: l.record.id,
                tags: l
                    .tags
                    .iter()
                    .filter(|t| t.digest().is_none())
                    .map(|t| t.familiar())
                    .collect(),
            })
            .collect())
    }

    /// `docker pull`: see [`crate::pull`]. Progress goes to `progress` as
    /// it happens; the image's `pull` event follows a successful pull.
    pub async fn pull(
        &self,
        request: &crate::pull::PullRequest,
        progress: crate::pull::ProgressSender,
    ) -> Result<crate::pull::PullOutcome, crate::pull::PullError> {
        let stores = crate::pull::Stores {
            content: self.content.clone(),
            snapshots: self.snapshots.clone(),
            metadata: self.metadata.clone(),
        };
        let outcome = crate::pull::pull(stores, request, progress).await?;
        self.publish("pull", &outcome.id, &outcome.reference.familiar());
        Ok(outcome)
    }

    /// `docker save NAME...`: check that every name exists, then write one
    /// archive. Nothing is written when a name is unknown.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<(), ImageError> {
        let mut saved = BTreeSet::new();
        for name in names {
            match repository_images(&self.metadata, name)? {
                Some(ids) => saved.extend(ids),
                None => {
                    saved.insert(self.metadata.resolve(name)?.id);
                }
            }
        }
        kiln_image::save(&self.content, &self.metadata, names, out)?;
        for id in &saved {
            self.publish_by_id("save", id);
        }
        Ok(())
    }

    /// `docker import`: a rootfs tar becomes a one-layer image.
    pub fn import(&self, reader: impl Read, request: &ImportRequest) -> Result<Digest, ImageError> {
        let reference = request.reference.as_deref().map(parse_ref).transpose()?;
        if reference.as_ref().is_some_and(|r| r.digest().is_some()) {
            return Err(ImageError::TagWithDigest);
        }
        let tag = reference.as_ref().map(|r| r.normalized().familiar());
        let options = kiln_image::ImportOptions {
            reference: reference.map(|r| r.normalized()),
            changes: request.changes.clone(),
            message: request.message.clone(),
            ..kiln_image::ImportOptions::default()
        };
        let _guard = self.store_guard.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let record = kiln_image::import_rootfs(
            &self.content,
            &self.snapshots,
            &self.metadata,
            reader,
            &options,
        )?;
        if let Some(tag) = tag {
            self.publish("tag", &record.id, &tag);
        }
        self.publish_by_id("import", &record.id);
        Ok(record.id)
    }

    /// `docker commit`: a new image of `base` and a container's writable
    /// layer, written under the lock that keeps a sweep from its blobs.
    pub(crate) fn commit(
        &self,
        base: &ImageRecord,
        base_config: &ImageConfig,
        layer: &kiln_image::WritableLayer,
        options: &kiln_image::CommitOptions,
    ) -> Result<ImageRecord, kiln_image::CommitError> {
        let _guard = self.store_guard.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        kiln_image::commit_container(
            &self.content,
            &self.snapshots,
            &self.metadata,
            base,
            base_config,
            layer,
            options,
        )
    }

    /// Import a rootfs tar with options the caller fixed (`created`, for a
    /// reproducible id): `kiln image bootstrap`. Same lock and events as
    /// [`Images::import`].
    pub(crate) fn import_rootfs(
        &self,
        reader: impl Read,
        options: &kiln_image::ImportOptions,
    ) -> Result<Digest, ImageError> {
        let _guard = self.store_guard.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let record = kiln_image::import_rootfs(
            &self.content,
            &self.snapshots,
            &self.metadata,
            reader,
            options,
        )?;
        if let Some(reference) = &options.reference {
            self.publish("tag", &record.id, &reference.familiar());
        }
        self.publish_by_id("import", &record.id);
        Ok(record.id)
    }

    /// The image a container is created from: its record and config.
    pub(crate) fn for_container(
        &self,
        name: &str,
    ) -> Result<(ImageRecord, ImageConfig), ImageError> {
        let record = self.metadata.resolve(name)?;
        let config = self.config(&record)?;
        Ok((record, config))
    }

    /// The snapshot store, for containers' writable layers.
    pub(crate) fn content(&self) -> &Store {
        &self.content
    }

    pub(crate) fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    pub(crate) fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    fn config(&self, record: &ImageRecord) -> Result<ImageConfig, ImageError> {
        let bytes = self
            .content
            .read(&record.config)
            .map_err(|e| ImageError::ReadConfig { id: record.id.clone(), source: Box::new(e) })?;
        ImageConfig::from_json(&bytes)
            .map_err(|e| ImageError::ReadConfig { id: record.id.clone(), source: Box::new(e) })
    }
}

/// The images of every tag of `name` when it is a bare repository name with
/// at least one tag (`docker save busybox` saves every tag of busybox).
fn repository_images(
    metadata: &Metadata,
    name: &str,
) -> Result<Option<BTreeSet<Digest>>, ImageError> {
    let Ok(reference) = name.parse::<ImageRef>() else { return Ok(None) };
    if !reference.is_name_only() {
        return Ok(None);
    }
    let wanted = reference.name();
    let ids: BTreeSet<Digest> = metadata
        .references()?
        .into_iter()
        .filter(|(r, _)| r.digest().is_none() && r.name() == wanted)
        .map(|(_, id)| id)
        .collect();
    Ok((!ids.is_empty()).then_some(ids))
}

/// Whether `name` names the image by (a prefix of) its id rather than by a
/// reference.
fn is_id_prefix(id: &Digest, name: &str) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    !hex.is_empty() && id.hex().starts_with(hex)
}

/// `key` or `key=value` against an image's labels.
fn has_label(labels: &[(String, String)], wanted: &str) -> bool {
    match wanted.split_once('=') {
        Some((key, value)) => labels.iter().any(|(k, v)| k == key && v == value),
        None => labels.iter().any(|(k, _)| k == wanted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Engine};

    fn rootfs_tar() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(6);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, "hello", &b"world\n"[..]).expect("append");
        builder.into_inner().expect("tar")
    }

    fn engine(dir: &kiln_testing::ScratchDir) -> Engine {
        Engine::open(Config::new(dir.path().join("root"), dir.path().join("run"))).expect("engine")
    }

    #[test]
    fn rmi_untags_then_deletes_and_sweeps_unused_blobs() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let engine = engine(&dir);
        let images = engine.images();
        let request = ImportRequest {
            reference: Some("a:1".into()),
            changes: vec![r#"CMD ["sh"]"#.into()],
            message: None,
        };
        let id = images.import(&rootfs_tar()[..], &request).expect("import");
        assert_eq!(engine.info().images, 1);
        let details = images.inspect("a:1").expect("inspect");
        assert_eq!(details.config.config.and_then(|c| c.cmd), Some(vec!["sh".to_owned()]));

        images.tag("a:1", "localhost:5000/b", "2").expect("tag");
        let filter =
            ImageFilter { references: vec!["localhost:5000/*".into()], ..Default::default() };
        let listed = images.list(&filter).expect("list");
        assert_eq!(listed[0].repo_tags, ["localhost:5000/b:2"]);

        assert_eq!(
            images.remove("a:1", false, &NoUsers).expect("untag"),
            [Deleted::Untagged("a:1".into())]
        );
        images.tag("localhost:5000/b:2", "c", "").expect("tag");
        let err = images.remove(&id.hex()[..12], false, &NoUsers).expect_err("two tags");
        assert_eq!(err.kind(), ErrorKind::Conflict);
        let done = images.remove(&id.hex()[..12], true, &NoUsers).expect("forced");
        assert_eq!(done.last(), Some(&Deleted::Deleted(id.clone())));
        assert_eq!(done.len(), 3, "{done:?}");
        assert!(images.list(&ImageFilter::default()).expect("list").is_empty());
        let blobs = std::fs::read_dir(dir.path().join("root/content/blobs/sha256")).expect("blobs");
        assert_eq!(blobs.count(), 0, "the deleted image's blobs are swept");

        let tagged = images.import(&rootfs_tar()[..], &request).expect("import");
        let untagged = ImportRequest { reference: None, message: Some("x".into()), ..request };
        let dangling = images.import(&rootfs_tar()[..], &untagged).expect("import");
        let (done, reclaimed) = images.prune(false, &NoUsers).expect("prune");
        assert_eq!(done, [Deleted::Deleted(dangling)]);
        assert!(reclaimed > 0, "the config blob at least");
        let (done, _) = images.prune(true, &NoUsers).expect("prune -a");
        assert_eq!(done, [Deleted::Untagged("a:1".into()), Deleted::Deleted(tagged)]);

        let err = images.remove("nope", false, &NoUsers).expect_err("missing");
        assert_eq!(
            (err.kind(), err.to_string()),
            (ErrorKind::NotFound, "No such image: nope".into())
        );
    }

    #[test]
    fn image_changes_are_published_as_dockers_events() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let engine = engine(&dir);
        let images = engine.images();
        let request = ImportRequest {
            reference: Some("a:1".into()),
            changes: vec!["LABEL team=ml".into()],
            message: None,
        };
        let id = images.import(&rootfs_tar()[..], &request).expect("import");
        images.tag("a:1", "b", "").expect("tag");
        images.remove("a:1", false, &NoUsers).expect("untag");
        images.remove("b", false, &NoUsers).expect("delete");
        let (past, _) = engine.events().subscribe();
        let seen: Vec<(&str, &str, &str)> = past
            .iter()
            .map(|e| (e.kind, e.action.as_str(), e.attributes["name"].as_str()))
            .collect();
        let id_text = id.to_string();
        assert_eq!(
            seen,
            [
                ("image", "tag", "a:1"),
                ("image", "import", id_text.as_str()),
                ("image", "tag", "b:latest"),
                ("image", "untag", id_text.as_str()),
                ("image", "untag", id_text.as_str()),
                ("image", "delete", id_text.as_str()),
            ]
        );
        assert!(past.iter().all(|e| e.id == id_text));
        assert_eq!(past[0].attributes.get("team").map(String::as_str), Some("ml"), "labels too");
        assert_eq!(past[5].attributes.get("team"), None, "a deleted image has no labels left");
    }

    #[test]
    fn ids_and_prefixes_are_told_from_references() {
        let id: Digest = format!("sha256:{}", "ab".repeat(32)).parse().expect("digest");
        assert!(is_id_prefix(&id, "abab"));
        assert!(is_id_prefix(&id, &format!("sha256:{}", "ab".repeat(32))));
        assert!(!is_id_prefix(&id, "busybox"));
        assert!(!is_id_prefix(&id, ""));
    }

    #[test]
    fn labels_match_by_key_or_pair() {
        let labels = vec![("a".to_owned(), "1".to_owned())];
        assert!(has_label(&labels, "a"));
        assert!(has_label(&labels, "a=1"));
        assert!(!has_label(&labels, "a=2"));
        assert!(!has_label(&labels, "b"));
    }
}
