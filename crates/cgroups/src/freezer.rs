//! Pausing and resuming every process of a cgroup (`docker pause`).

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::cgroup::{read_optional, write_file, Freezer};
use crate::{Cgroup, CgroupError};

/// How long a cgroup may take to freeze or thaw before giving up.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

impl Cgroup {
    /// Freezes every process, returning once the kernel reports them frozen.
    /// On timeout the cgroup is thawed again.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match self.freezer_dir()? {
            Freezer::V1(dir) => set_v1_state(dir, "FROZEN"),
            Freezer::V2(dir) => set_v2_frozen(dir, true),
        }
    }

    /// Resumes the cgroup's processes.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.freezer_dir()? {
            Freezer::V1(dir) => set_v1_state(dir, "THAWED"),
            Freezer::V2(dir) => set_v2_frozen(dir, false),
        }
    }

    /// Whether the kernel reports the cgroup frozen (not merely freezing).
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self.freezer_dir()? {
            Freezer::V1(dir) => Ok(read_required(&dir.join("freezer.state"))?.trim() == "FROZEN"),
            Freezer::V2(dir) => is_v2_frozen(dir),
        }
    }
}

/// Writes `state` until `freezer.state` reads it back: a FREEZING cgroup is
/// written again, as a process may have escaped by forking meanwhile.
fn set_v1_state(dir: &Path, state: &'static str) -> Result<(), CgroupError> {
    let path = dir.join("freezer.state");
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        write_file(&path, state).map_err(|source| CgroupError::Write {
            value: state.to_owned(),
            path: path.clone(),
            source,
        })?;
        if read_required(&path)?.trim() == state {
            return Ok(());
        }
        if Instant::now() >= deadline {
            if state == "FROZEN" {
                // Half-frozen is worse than not frozen.
                let _ = write_file(&path, "THAWED");
            }
            return Err(CgroupError::FreezeTimeout { path: dir.to_owned(), state });
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Writes `cgroup.freeze` and waits for `cgroup.events` to agree.
fn set_v2_frozen(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.freeze");
    let value = if frozen { "1" } else { "0" };
    write_file(&path, value).map_err(|source| CgroupError::Write {
        value: value.to_owned(),
        path: path.clone(),
        source,
    })?;
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    while is_v2_frozen(dir)? != frozen {
        if Instant::now() >= deadline {
            if frozen {
                let _ = write_file(&path, "0");
            }
            let state = if frozen { "frozen" } else { "thawed" };
            return Err(CgroupError::FreezeTimeout { path: dir.to_owned(), state });
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    Ok(())
}

fn is_v2_frozen(dir: &Path) -> Result<bool, CgroupError> {
    match read_optional(&dir.join("cgroup.events"))? {
        Some(events) => Ok(events.lines().any(|l| l.trim() == "frozen 1")),
        None => Ok(read_required(&dir.join("cgroup.freeze"))?.trim() == "1"),
    }
}

fn read_required(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path)
        .map_err(|source| CgroupError::Read { path: path.to_owned(), source })
}
