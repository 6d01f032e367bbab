//! Errors of the blob store.

use std::path::PathBuf;

use kiln_types::{Digest, ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// No committed blob has this digest.
    #[error("blob {digest} not found")]
    NotFound { digest: Digest },
    /// The written bytes hash to something other than what was expected.
    #[error("blob digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    /// The number of written bytes is not what was expected.
    #[error("blob {digest} size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch { digest: Digest, expected: u64, actual: u64 },
    /// More bytes were offered to an ingest than its expected size.
    #[error("blob larger than its expected size of {expected} bytes")]
    TooManyBytes { expected: u64 },
    /// A blob is bigger than a caller's limit for reading it into memory.
    #[error("blob {digest} is {size} bytes, more than the limit of {limit}")]
    TooLarge { digest: Digest, size: u64, limit: u64 },
    /// The store only produces sha256 digests.
    #[error("cannot store blob {digest}: only sha256 is supported")]
    UnsupportedAlgorithm { digest: Digest },
    /// A file-system operation failed.
    #[error("cannot {action} {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ContentError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ContentError::Io { action, path: path.into(), source }
    }
}

impl HasKind for ContentError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::DigestMismatch { .. } | Self::SizeMismatch { .. } | Self::TooManyBytes { .. } => {
                ErrorKind::InvalidArgument
            }
            Self::UnsupportedAlgorithm { .. } => ErrorKind::Unsupported,
            Self::TooLarge { .. } | Self::Io { .. } => ErrorKind::Internal,
        }
    }
}
