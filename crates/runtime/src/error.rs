//! What can go wrong in the runtime, with the kind each failure has.

use std::path::PathBuf;

use kiln_types::{ContainerId, ContainerIdError, ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    InvalidId(#[from] ContainerIdError),
    #[error("cannot read {}", .path.display())]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {}: {reason}", .path.display())]
    InvalidConfig { path: PathBuf, reason: String },
    #[error("rootfs {} does not exist or is not a directory", .path.display())]
    RootfsMissing { path: PathBuf },
    #[error("container {id} already exists")]
    AlreadyExists { id: ContainerId },
    #[error("container {id} does not exist")]
    NotFound { id: String },
    #[error("cannot {action} container {id}: it is {status}")]
    WrongStatus { id: ContainerId, action: &'static str, status: &'static str },
    #[error("cannot {action} {}", .path.display())]
    StateFile {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up cgroup for container {id}")]
    Cgroup {
        id: ContainerId,
        #[source]
        source: kiln_cgroups::CgroupError,
    },
    #[error("invalid seccomp profile for container {id}")]
    Seccomp {
        id: ContainerId,
        #[source]
        source: kiln_seccomp::SeccompError,
    },
    #[error("cannot connect to console socket {}", .path.display())]
    ConsoleSocket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a terminal was requested (process.terminal) but no --console-socket was given")]
    ConsoleSocketMissing,
    #[error("container init failed: {message}")]
    Init { message: String, exit_code: i32 },
    #[error("{what} hook {} failed: {reason}", .path.display())]
    Hook { what: &'static str, path: PathBuf, reason: String },
    #[error("invalid signal {name:?}")]
    InvalidSignal { name: String },
    #[error("cannot send signal {signal} to container {id}")]
    Signal {
        id: ContainerId,
        signal: String,
        #[source]
        source: nix::Error,
    },
    #[error("{what} failed")]
    System {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not supported")]
    Unsupported { what: String },
    #[error("invalid process: {reason}")]
    InvalidProcess { reason: String },
}

impl RuntimeError {
    /// The exit code a CLI uses for this error: 127 and 126 for a command
    /// that cannot be found or run (like a shell), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Init { exit_code, .. } => *exit_code,
            _ => 1,
        }
    }

    pub(crate) fn system(what: &'static str) -> impl FnOnce(std::io::Error) -> RuntimeError {
        move |source| RuntimeError::System { what, source }
    }
}

impl HasKind for RuntimeError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidId(_)
            | Self::InvalidConfig { .. }
            | Self::RootfsMissing { .. }
            | Self::ConsoleSocketMissing
            | Self::InvalidSignal { .. }
            | Self::InvalidProcess { .. }
            | Self::Seccomp { .. } => ErrorKind::InvalidArgument,
            Self::ReadConfig { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::AlreadyExists { .. } | Self::WrongStatus { .. } => ErrorKind::Conflict,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::ReadConfig { .. }
            | Self::StateFile { .. }
            | Self::Cgroup { .. }
            | Self::ConsoleSocket { .. }
            | Self::Init { .. }
            | Self::Hook { .. }
            | Self::Signal { .. }
            | Self::System { .. } => ErrorKind::Internal,
        }
    }
}
