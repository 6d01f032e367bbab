//! Why a profile could not be compiled or installed.

use kiln_types::{ErrorKind, HasKind};

use crate::profile::Action;

/// A profile the kernel cannot be given, or a kernel that refused the filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp action {action} is not supported")]
    UnsupportedAction { action: Action },
    #[error("seccomp argument index {index} is out of range (0-5) for syscall {syscall}")]
    ArgumentIndexOutOfRange { index: u32, syscall: String },
    #[error("seccomp rule for syscall {syscall} has too many argument conditions ({count})")]
    TooManyConditions { syscall: String, count: usize },
    #[error("seccomp filter is too long: {instructions} instructions (max 4096)")]
    ProgramTooLong { instructions: usize },
    #[error("seccomp filters are not supported on this architecture")]
    UnsupportedPlatform,
    #[error("cannot install seccomp filter")]
    Install {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install seccomp filter on thread {thread} of the process")]
    ThreadSync { thread: libc::c_long },
}

impl HasKind for SeccompError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::UnsupportedAction { .. } | Self::UnsupportedPlatform => ErrorKind::Unsupported,
            Self::ArgumentIndexOutOfRange { .. }
            | Self::TooManyConditions { .. }
            | Self::ProgramTooLong { .. } => ErrorKind::InvalidArgument,
            Self::Install { .. } | Self::ThreadSync { .. } => ErrorKind::Internal,
        }
    }
}
