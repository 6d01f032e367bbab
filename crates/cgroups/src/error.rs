use std::io;
use std::path::PathBuf;

use kiln_types::{ContainerIdError, ErrorKind, HasKind};

/// Why a cgroup could not be found, planned, created, configured or removed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("invalid container id {id:?} for a default cgroups path")]
    InvalidId {
        id: String,
        #[source]
        source: ContainerIdError,
    },
    #[error("no cgroup filesystem is mounted")]
    NoCgroupFs,
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("malformed mountinfo line {line:?}")]
    Mountinfo { line: String },
    #[error("this process is in no cgroup of the {hierarchy} hierarchy, so a relative cgroups path cannot be resolved")]
    OwnCgroupMissing { hierarchy: String },
    #[error(
        "memory limit {limit} is below the minimum of {} bytes",
        crate::plan::MIN_MEMORY_LIMIT
    )]
    MemoryBelowMinimum { limit: i64 },
    #[error("memory+swap limit {swap} is below the memory limit {limit}")]
    SwapBelowMemory { swap: i64, limit: i64 },
    #[error("memory+swap limit {swap} needs a memory limit")]
    SwapWithoutMemory { swap: i64 },
    #[error("memory swappiness {swappiness} is above 100")]
    InvalidSwappiness { swappiness: u64 },
    #[error("memory limit {limit} is below the current usage {usage} of {}", .path.display())]
    MemoryBelowUsage { limit: i64, usage: u64, path: PathBuf },
    #[error("invalid device cgroup rule {rule}: {reason}")]
    InvalidDeviceRule { rule: String, reason: &'static str },
    #[error("invalid hugepage size {size:?}")]
    InvalidHugepageSize { size: String },
    #[error("invalid unified cgroup setting {key:?}: the key must be a file name")]
    InvalidUnifiedKey { key: String },
    #[error("unified cgroup settings need cgroup v2, and this host has only cgroup v1")]
    UnifiedOnV1,
    #[error("the {controller} controller is not available to set {file}")]
    ControllerMissing { controller: String, file: String },
    #[error("cannot create cgroup {}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {value} to {}", .path.display())]
    Write {
        value: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove cgroup {}", .path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the freezer controller is not mounted")]
    NoFreezer,
    #[error("cgroup {} did not reach the {state} state in time", .path.display())]
    FreezeTimeout { path: PathBuf, state: &'static str },
}

impl HasKind for CgroupError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidPath { .. }
            | Self::InvalidId { .. }
            | Self::MemoryBelowMinimum { .. }
            | Self::SwapBelowMemory { .. }
            | Self::SwapWithoutMemory { .. }
            | Self::InvalidSwappiness { .. }
            | Self::MemoryBelowUsage { .. }
            | Self::InvalidDeviceRule { .. }
            | Self::InvalidHugepageSize { .. }
            | Self::InvalidUnifiedKey { .. } => ErrorKind::InvalidArgument,
            Self::NoCgroupFs
            | Self::UnifiedOnV1
            | Self::ControllerMissing { .. }
            | Self::NoFreezer => ErrorKind::Unsupported,
            Self::Read { source, .. }
            | Self::Create { source, .. }
            | Self::Write { source, .. }
            | Self::Remove { source, .. } => io_kind(source),
            Self::Mountinfo { .. } | Self::OwnCgroupMissing { .. } | Self::FreezeTimeout { .. } => {
                ErrorKind::Internal
            }
        }
    }
}

fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        _ => ErrorKind::Internal,
    }
}
