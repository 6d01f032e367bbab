//! Where the runtime keeps what it knows about each container, and the
//! container's status as the OCI runtime spec defines it.
//!
//! `<root>/<id>/state.json` is written once at create (atomically) and
//! changed only by pause and resume; the status is derived from the live
//! system every time it is asked for, so it cannot go stale.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use kiln_types::ContainerId;
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::spec::Spec;

/// The runtime's own directory of containers (`--root`).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub id: ContainerId,
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot, to detect pid reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub paused: bool,
    /// The container's cgroup, with its directory in every hierarchy.
    pub cgroup: kiln_cgroups::Cgroup,
    pub config: Spec,
}

/// The lifecycle status of the OCI runtime spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
        }
    }
}

/// The state object of the OCI runtime spec, with runc's extra fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub status: String,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub owner: String,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &ContainerId) -> PathBuf {
        self.root.join(id)
    }

    /// Claims the id: creates its directory, failing if it exists.
    pub(crate) fn reserve(&self, id: &ContainerId) -> Result<PathBuf, RuntimeError> {
        let make_root = || -> std::io::Result<()> {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o711).create(&self.root)
        };
        make_root().map_err(|source| RuntimeError::StateFile {
            action: "create state directory",
            path: self.root.clone(),
            source,
        })?;
        let dir = self.dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(RuntimeError::AlreadyExists { id: id.clone() })
            }
            Err(source) => {
                Err(RuntimeError::StateFile { action: "create state directory", path: dir, source })
            }
        }
    }

    pub fn load(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let id: ContainerId = id.parse()?;
        let path = self.dir(&id).join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound { id: id.to_string() })
            }
            Err(source) => {
                return Err(RuntimeError::StateFile { action: "read", path, source });
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| RuntimeError::StateFile {
            action: "parse",
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }

    pub(crate) fn save(&self, state: &ContainerState) -> Result<(), RuntimeError> {
        let path = self.dir(&state.id).join(STATE_FILE);
        let bytes = serde_json::to_vec(state).map_err(|e| RuntimeError::StateFile {
            action: "encode",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        write_atomically(&path, &bytes).map_err(|source| RuntimeError::StateFile {
            action: "write",
            path,
            source,
        })
    }

    /// Removes the container's directory; a missing one is fine.
    pub(crate) fn remove(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RuntimeError::StateFile { action: "remove", path: dir, source }),
        }
    }

    /// The ids of every container in the store, sorted.
    pub fn ids(&self) -> Vec<ContainerId> {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Vec::new() };
        let mut ids: Vec<ContainerId> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|id: &ContainerId| self.dir(id).join(STATE_FILE).exists())
            .collect();
        ids.sort();
        ids
    }

    pub fn status(&self, state: &ContainerState) -> Status {
        if state.pid <= 0 || !process_alive(state.pid, state.pid_start) {
            return Status::Stopped;
        }
        if self.dir(&state.id).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if state.paused {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn oci_state(&self, state: &ContainerState) -> OciState {
        let status = self.status(state);
        OciState {
            oci_version: state.config.oci_version.clone(),
            id: state.id.to_string(),
            status: status.as_str().to_owned(),
            pid: if status == Status::Stopped { 0 } else { state.pid },
            bundle: state.bundle.clone(),
            rootfs: state.rootfs.clone(),
            created: state.created.clone(),
            annotations: state.config.annotations.clone(),
            owner: String::new(),
        }
    }
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// What /proc/PID/stat says of a process: its state letter and start time.
pub(crate) fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// True when `pid` is the same live process (not a zombie) that started at `start`.
pub(crate) fn process_alive(pid: i32, start: u64) -> bool {
    matches!(proc_stat(pid), Some((state, s)) if s == start && state != 'Z' && state != 'X')
}

/// The current time as RFC 3339 with nanoseconds, in UTC.
pub(crate) fn now_rfc3339() -> String {
    let (secs, nanos) = kiln_types::time::now();
    kiln_types::time::UtcTime::from_unix(secs).rfc3339_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_pid_reuse_is_detected() {
        let pid = std::process::id() as i32;
        let (state, start) = proc_stat(pid).unwrap();
        assert_ne!(state, 'Z');
        assert!(process_alive(pid, start));
        assert!(!process_alive(pid, start + 1));
    }

    #[test]
    fn reserve_refuses_a_duplicate_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("root"));
        let id: ContainerId = "c1".parse().unwrap();
        store.reserve(&id).unwrap();
        assert!(matches!(store.reserve(&id), Err(RuntimeError::AlreadyExists { .. })));
    }
}
