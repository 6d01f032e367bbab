//! What can go wrong with containers, with the kind that picks Docker's
//! status code. Messages that reach users are Docker's own words.

use std::path::PathBuf;

use kiln_types::{ErrorKind, HasKind};

use super::oci::SpecError;
use super::store::StoreError;
use super::users::UserError;
use crate::images::ImageError;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {name}")]
    NoSuchContainer { name: String },
    #[error("Multiple IDs found with provided prefix: {prefix}")]
    Ambiguous { prefix: String },
    #[error("No such exec instance: {id}")]
    NoSuchExec { id: String },
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName { name: String },
    #[error("Container {id} is not running")]
    NotRunning { id: String },
    #[error("Container {id} is paused, unpause the container before stopping or killing")]
    Paused { id: String },
    #[error("Container {id} is not paused")]
    NotPaused { id: String },
    #[error("cannot start container {id}: it is {status}")]
    CannotStart { id: String, status: &'static str },
    #[error("You cannot remove a running container {id}. Stop the container before attempting removal or force remove")]
    RemoveRunning { id: String },
    #[error("removal of container {id} is already in progress")]
    RemovalInProgress { id: String },
    #[error("{message}")]
    InvalidRequest { message: String },
    /// `--network container:NAME` with NAME stopped; NAME as the network
    /// mode gives it.
    #[error("cannot join network of a non running container: {name}")]
    JoinNotRunning { name: String },
    #[error("Container {name} is restarting, wait until the container is running")]
    JoinRestarting { name: String },
    /// `--network container:NAME` where NAME names the container itself
    /// (a container renamed after it was created so).
    #[error("cannot join own network")]
    JoinOwnNetwork,
    #[error("{message}")]
    StartFailed { message: String, exit_code: i64 },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(super::archive::ArchiveError),
    #[error(transparent)]
    Volume(crate::volumes::VolumeError),
    #[error(transparent)]
    Network(#[from] crate::networks::NetworkError),
    #[error("cannot {action} {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare the writable layer of container {id}")]
    Snapshot {
        id: String,
        #[source]
        source: kiln_snapshot::SnapshotError,
    },
    #[error("the shim of container {id} failed: {message}")]
    Shim { id: String, message: String },
    #[error("runtime error on container {id}")]
    Runtime {
        id: String,
        #[source]
        source: kiln_runtime::RuntimeError,
    },
}

impl HasKind for ContainerError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NoSuchContainer { .. } | Self::NoSuchExec { .. } => ErrorKind::NotFound,
            Self::Ambiguous { .. }
            | Self::InvalidName { .. }
            | Self::InvalidRequest { .. }
            | Self::JoinOwnNetwork => ErrorKind::InvalidArgument,
            Self::NameInUse { .. }
            | Self::JoinNotRunning { .. }
            | Self::JoinRestarting { .. }
            | Self::NotRunning { .. }
            | Self::Paused { .. }
            | Self::NotPaused { .. }
            | Self::CannotStart { .. }
            | Self::RemoveRunning { .. }
            | Self::RemovalInProgress { .. } => ErrorKind::Conflict,
            // docker-compat: a command that cannot be executed is a bad
            // parameter (400), other start failures are faults (500).
            Self::StartFailed { exit_code, .. } => {
                if matches!(exit_code, 126 | 127) {
                    ErrorKind::InvalidArgument
                } else {
                    ErrorKind::Internal
                }
            }
            Self::Image(err) => err.kind(),
            Self::Volume(err) => err.kind(),
            Self::Network(err) => err.kind(),
            Self::Archive(err) => match err {
                super::archive::ArchiveError::NotFound { .. } => ErrorKind::NotFound,
                super::archive::ArchiveError::NotADirectory { .. }
                | super::archive::ArchiveError::BadEntry { .. } => ErrorKind::InvalidArgument,
                super::archive::ArchiveError::Io { .. } => ErrorKind::Internal,
            },
            Self::Spec(_) | Self::User(_) => ErrorKind::InvalidArgument,
            Self::Store(_) | Self::Io { .. } | Self::Snapshot { .. } | Self::Shim { .. } => {
                ErrorKind::Internal
            }
            Self::Runtime { source, .. } => source.kind(),
        }
    }
}

impl ContainerError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ContainerError {
        let path = path.into();
        move |source| ContainerError::Io { action, path, source }
    }
}
