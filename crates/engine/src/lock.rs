//! One engine per state root: an exclusive `flock` on `<root>/kiln.lock`.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use kiln_types::{ErrorKind, HasKind};
use nix::fcntl::{Flock, FlockArg};

/// The lock file's name inside the root.
pub const LOCK_FILE: &str = "kiln.lock";

/// The held lock; released when dropped (or when the process dies, so a
/// crashed daemon never blocks the next one).
#[derive(Debug)]
pub struct RootLock {
    _file: Flock<File>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another kiln daemon is using {}{}", .root.display(), .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Busy { root: PathBuf, pid: Option<u32> },
    #[error("cannot open lock file {}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {}", .path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot write our pid into {}", .path.display())]
    WritePid {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for LockError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Busy { .. } => ErrorKind::Conflict,
            Self::Open { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
                ErrorKind::PermissionDenied
            }
            Self::Open { .. } | Self::Lock { .. } | Self::WritePid { .. } => ErrorKind::Internal,
        }
    }
}

impl RootLock {
    /// Take the lock of `root` without waiting, then record our pid in it.
    pub fn acquire(root: &Path) -> Result<RootLock, LockError> {
        let path = root.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| LockError::Open { path: path.clone(), source })?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, nix::Error::EWOULDBLOCK)) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Busy {
                    root: root.to_owned(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err((_, source)) => return Err(LockError::Lock { path, source }),
        };
        let write_pid = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{}", std::process::id())
        };
        write_pid(&mut file).map_err(|source| LockError::WritePid { path, source })?;
        Ok(RootLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_a_root_names_the_holder_pid() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let first = RootLock::acquire(dir.path()).expect("first lock");
        let err = RootLock::acquire(dir.path()).expect_err("second lock must fail");
        assert_eq!(
            err.to_string(),
            format!(
                "another kiln daemon is using {} (pid {})",
                dir.path().display(),
                std::process::id()
            )
        );
        assert_eq!(err.kind(), ErrorKind::Conflict);
        drop(first);
        RootLock::acquire(dir.path()).expect("lock after release");
    }
}
