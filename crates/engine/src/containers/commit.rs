//! `POST /commit` (`docker commit`): a container's changes as a new image.
//!
//! The container's config (its image's defaults with what it was created
//! with) is the base of the new image's, the commit's own config and
//! `--change`s over it; its writable layer becomes one more layer. A running
//! container is paused while the layer is read, unless asked not to, and
//! unpaused afterwards whatever happened.

use kiln_image::{merge_config, CommitOptions, ContainerConfig, EmptyObject, WritableLayer};
use kiln_types::{ContainerStatus, Digest, ErrorKind, HasKind, ImageRef, ReferenceError};

use super::{lock, ContainerError, ContainerRecord, Containers};
use crate::images::ImageError;

/// What `POST /commit` asks for besides the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitRequest {
    /// `repo[:tag]` for the new image; `repo` means `repo:latest`.
    pub reference: Option<String>,
    /// `--message`: the new history entry's comment.
    pub comment: Option<String>,
    /// `--author`.
    pub author: Option<String>,
    /// Pause a running container while its layer is read (Docker's default).
    pub pause: bool,
    /// `--change` instructions.
    pub changes: Vec<String>,
    /// The request's config, over the container's.
    pub config: Option<ContainerConfig>,
}

/// Why a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Layer(#[from] kiln_image::CommitError),
}

impl HasKind for CommitError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Container(e) => e.kind(),
            Self::Image(e) => e.kind(),
            Self::Reference(e) => e.kind(),
            Self::Layer(e) => e.kind(),
        }
    }
}

/// Files the engine bind-mounts over the container's own, besides the
/// runtime's default mounts: their stubs are not the container's changes.
const ETC_FILES: [&str; 3] = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];

impl Containers {
    /// `POST /commit`: make an image of the container `name`; its id.
    /// Blocks (tar, hashing): call it from a blocking thread.
    pub fn commit(&self, name: &str, request: &CommitRequest) -> Result<Digest, CommitError> {
        let reference = request.reference.as_deref().map(parse_reference).transpose()?;
        let entry = self.find(name)?;
        // Not while it starts, stops or is removed.
        let _op = entry.ops.blocking_lock();
        let (id, status) = entry.id_and_status();
        if status == ContainerStatus::Removing || status == ContainerStatus::Dead {
            return Err(ContainerError::InvalidRequest {
                message: format!("cannot commit container {id}: it is {}", status.as_str()),
            }
            .into());
        }
        let paused = request.pause && status == ContainerStatus::Running;
        if paused {
            self.pause(&id)?;
        }
        let committed = self.commit_layer(&id, request, reference.as_ref());
        // docker-compat: the commit event comes before the unpause.
        if let Ok(image) = &committed {
            let mut attributes = vec![
                ("comment", request.comment.clone().unwrap_or_default()),
                ("imageID", image.to_string()),
            ];
            if let Some(reference) = &reference {
                attributes.push(("imageRef", reference.familiar()));
            }
            self.emit(&entry, "commit", &attributes);
        }
        if paused {
            if let Err(err) = self.unpause(&id) {
                tracing::warn!(container = %id, error = %err, "cannot unpause after a commit");
            }
        }
        committed
    }

    fn commit_layer(
        &self,
        id: &str,
        request: &CommitRequest,
        reference: Option<&ImageRef>,
    ) -> Result<Digest, CommitError> {
        let record = lock(&self.find(id)?.record).clone();
        let (image, image_config) = self.images.for_container(&record.image_id.to_string())?;
        let cid: kiln_types::ContainerId = id
            .parse()
            .map_err(|_| ContainerError::InvalidRequest { message: format!("bad id {id}") })?;
        let snapshots = self.images.snapshots();
        let dirs =
            snapshots.container_dirs(&cid).ok_or_else(|| ContainerError::InvalidRequest {
                message: format!("container {id} has no writable layer"),
            })?;
        let mount_points = kiln_runtime::template::default_mounts()
            .iter()
            .map(|m| m.destination.display().to_string())
            .chain(ETC_FILES.map(str::to_owned))
            .collect();
        let layer = WritableLayer {
            upper: dirs.upper,
            lowers: image.chain_ids.iter().rev().map(|c| snapshots.layer_dir(c)).collect(),
            mount_points,
            clamp_mtime: None,
        };
        let container_config =
            container_config(&record, &image_config.config.clone().unwrap_or_default());
        let options = CommitOptions {
            reference: reference.cloned(),
            created_by: container_config
                .cmd
                .as_ref()
                .map(|cmd| cmd.join(" "))
                .filter(|line| !line.is_empty()),
            container_config,
            config: request.config.clone(),
            changes: request.changes.clone(),
            comment: request.comment.clone().filter(|c| !c.is_empty()),
            author: request.author.clone().filter(|a| !a.is_empty()),
            created: None,
        };
        let committed = self.images.commit(&image, &image_config, &layer, &options)?;
        Ok(committed.id)
    }
}

/// `repo[:tag]` as the new image's reference, `:latest` when untagged;
/// a digest is refused, as Docker does.
fn parse_reference(text: &str) -> Result<ImageRef, CommitError> {
    let reference: ImageRef = text.parse()?;
    if reference.digest().is_some() {
        return Err(ImageError::TagWithDigest.into());
    }
    Ok(reference.normalized())
}

/// The container's config as Docker keeps it: what it was created with,
/// over its image's defaults.
fn container_config(record: &ContainerRecord, image: &ContainerConfig) -> ContainerConfig {
    let request = &record.request.config;
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let created_with = ContainerConfig {
        user: non_empty(&request.user),
        exposed_ports: request.exposed_ports.iter().map(|p| (p.clone(), EmptyObject {})).collect(),
        env: request.env.clone(),
        entrypoint: request.entrypoint.clone(),
        cmd: request.cmd.clone(),
        volumes: request.volumes.iter().map(|v| (v.clone(), EmptyObject {})).collect(),
        working_dir: non_empty(&request.working_dir),
        labels: request.labels.clone(),
        stop_signal: request.stop_signal.as_deref().and_then(non_empty),
        healthcheck: request.healthcheck.clone(),
        ..ContainerConfig::default()
    };
    merge_config(created_with, image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::{CreateRequest, RunConfig};

    fn record(config: RunConfig) -> ContainerRecord {
        ContainerRecord {
            id: "c".repeat(64),
            name: "kiln-t-c".into(),
            created: 0,
            image_id: kiln_types::Digest::new(kiln_types::Algorithm::Sha256, &"a".repeat(64))
                .expect("digest"),
            request: CreateRequest { image: "bb".into(), config, ..CreateRequest::default() },
            path: String::new(),
            args: Vec::new(),
            mounts: Vec::new(),
            state: Default::default(),
        }
    }

    #[test]
    fn the_container_config_is_its_request_over_the_image() {
        let image = ContainerConfig {
            env: vec!["PATH=/bin".into()],
            cmd: Some(vec!["sh".into()]),
            working_dir: Some("/".into()),
            ..ContainerConfig::default()
        };
        let run = RunConfig {
            env: vec!["A=1".into()],
            cmd: Some(vec!["sh".into(), "-c".into(), "echo hi".into()]),
            user: "nobody".into(),
            ..RunConfig::default()
        };
        let config = container_config(&record(run), &image);
        assert_eq!(config.env, ["A=1", "PATH=/bin"]);
        assert_eq!(config.cmd.expect("cmd"), ["sh", "-c", "echo hi"]);
        assert_eq!(config.user.as_deref(), Some("nobody"));
        assert_eq!(config.working_dir.as_deref(), Some("/"));
        // Without a command of its own, the container runs the image's.
        let config = container_config(&record(RunConfig::default()), &image);
        assert_eq!(config.cmd.expect("cmd"), ["sh"]);
    }

    #[test]
    fn references_get_latest_and_digests_are_refused() {
        assert_eq!(parse_reference("kiln-t-x").expect("ref").familiar(), "kiln-t-x:latest");
        assert_eq!(parse_reference("a/b:1").expect("ref").familiar(), "a/b:1");
        let digest = format!("x@sha256:{}", "a".repeat(64));
        assert!(matches!(
            parse_reference(&digest),
            Err(CommitError::Image(ImageError::TagWithDigest))
        ));
        let err = parse_reference("Bad").expect_err("upper case");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("must be lowercase"), "{err}");
    }
}
