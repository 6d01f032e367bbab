//! What can go wrong unpacking, storing and mounting snapshots.

use std::path::PathBuf;

use kiln_types::{Digest, ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("layer entry {entry:?} escapes the layer")]
    Escape { entry: String },
    #[error("layer entry {entry:?} goes through symlink {link:?}")]
    ThroughSymlink { entry: String, link: String },
    #[error("layer entry {entry:?} is under {parent:?}, which is not a directory")]
    ParentNotDirectory { entry: String, parent: String },
    #[error("hard link {entry:?} points to {target:?}, which escapes the layer")]
    LinkEscape { entry: String, target: String },
    #[error("hard link {entry:?} points to {target:?}, which is not an earlier file of the layer")]
    LinkTarget { entry: String, target: String },
    #[error("layer entry {entry:?} is a {what}, which only root can create")]
    NeedsRoot { entry: String, what: &'static str },
    #[error("layer entry {entry:?} has unsupported type {kind}")]
    UnsupportedEntry { entry: String, kind: String },
    #[error("layer entry {entry:?} has an invalid header")]
    Header {
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("layer is truncated in entry {entry:?}")]
    Truncated { entry: String },
    #[error("cannot read layer")]
    Read {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set extended attribute {name} on {}", .path.display())]
    Xattr {
        path: PathBuf,
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot copy {}", .path.display())]
    Copy {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} already exists", .path.display())]
    Exists { path: PathBuf },
    #[error("invalid snapshot destination {}", .path.display())]
    InvalidDestination { path: PathBuf },
    #[error("snapshot root {} cannot appear in overlay options: it must be UTF-8 without ':' ',' or '\\'", .path.display())]
    InvalidRoot { path: PathBuf },
    #[error("layer {chain_id} does not exist")]
    LayerNotFound { chain_id: Digest },
    #[error("nothing to mount: no layers and no upper directory")]
    NoLayers,
    #[error("overlay options for {layers} layers take {len} bytes, more than the kernel's {max}")]
    OptionsTooLong { layers: usize, len: usize, max: usize },
}

impl HasKind for SnapshotError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Escape { .. }
            | Self::ThroughSymlink { .. }
            | Self::ParentNotDirectory { .. }
            | Self::LinkEscape { .. }
            | Self::LinkTarget { .. }
            | Self::UnsupportedEntry { .. }
            | Self::Header { .. }
            | Self::Truncated { .. }
            | Self::Read { .. }
            | Self::InvalidDestination { .. }
            | Self::InvalidRoot { .. }
            | Self::NoLayers => ErrorKind::InvalidArgument,
            Self::NeedsRoot { .. } => ErrorKind::PermissionDenied,
            Self::Exists { .. } => ErrorKind::Conflict,
            Self::LayerNotFound { .. } => ErrorKind::NotFound,
            Self::OptionsTooLong { .. } => ErrorKind::Unsupported,
            Self::Write { .. } | Self::Xattr { .. } | Self::Copy { .. } => ErrorKind::Internal,
        }
    }
}
