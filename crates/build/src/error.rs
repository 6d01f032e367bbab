//! Why a build failed, in the words a user acts on: the Dockerfile line
//! and instruction when a step failed, the missing file, the bad argument.

use kiln_types::{ErrorKind, HasKind};

/// A failed build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse (the message carries file and line).
    #[error(transparent)]
    Parse(#[from] kiln_dockerfile::ParseError),
    /// A request field is wrong (`--target` names no stage, a bad tag …).
    #[error("{message}")]
    Invalid { message: String },
    /// A step failed: `Dockerfile:7: RUN make: exit code 1`.
    #[error("{file}:{line}: {instruction}: {message}")]
    Step {
        file: String,
        line: usize,
        instruction: String,
        message: String,
        kind: ErrorKind,
        /// The last lines the step printed, for the error report.
        output_tail: Vec<String>,
    },
    /// Something outside the Dockerfile failed (a base image that cannot
    /// be pulled, a user the image lacks), with its kind.
    #[error("{message}")]
    Failed { kind: ErrorKind, message: String },
    /// The build was stopped (client gone, Ctrl-C).
    #[error("build cancelled")]
    Cancelled,
    /// Something on our side (store, snapshot) failed.
    #[error("{message}")]
    Internal { message: String },
}

impl BuildError {
    pub fn invalid(message: impl Into<String>) -> BuildError {
        BuildError::Invalid { message: message.into() }
    }

    pub fn internal(message: impl Into<String>) -> BuildError {
        BuildError::Internal { message: message.into() }
    }

    /// The last lines of output of the failed step, if it printed any.
    pub fn output_tail(&self) -> &[String] {
        match self {
            BuildError::Step { output_tail, .. } => output_tail,
            _ => &[],
        }
    }
}

impl HasKind for BuildError {
    fn kind(&self) -> ErrorKind {
        match self {
            BuildError::Parse(_) | BuildError::Invalid { .. } => ErrorKind::InvalidArgument,
            BuildError::Step { kind, .. } | BuildError::Failed { kind, .. } => *kind,
            BuildError::Cancelled | BuildError::Internal { .. } => ErrorKind::Internal,
        }
    }
}
