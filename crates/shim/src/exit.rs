//! How a process ended: its exit code, whether its cgroup ran out of
//! memory, and the exit record written to `exit.json`.

use std::io::{self, Write as _};
use std::path::Path;

use nix::sys::wait::WaitStatus;

use crate::protocol::ExitRecord;

/// A reaped child's pid and exit code (128+N when killed by signal N);
/// `None` for statuses that are not an end.
pub(crate) fn exit_code(status: WaitStatus) -> Option<(i32, i32)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), code)),
        WaitStatus::Signaled(pid, signal, _) => Some((pid.as_raw(), 128 + signal as i32)),
        _ => None,
    }
}

/// Whether the memory cgroup at `dir` saw an OOM kill: v2's
/// `memory.events`, else v1's `memory.oom_control`. False when unknown.
pub(crate) fn oom_killed(dir: &Path) -> bool {
    if let Ok(text) = std::fs::read_to_string(dir.join("memory.events")) {
        return oom_in_events(&text);
    }
    std::fs::read_to_string(dir.join("memory.oom_control")).is_ok_and(|t| oom_in_control(&t))
}

fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

/// cgroup v2 `memory.events`.
fn oom_in_events(text: &str) -> bool {
    field(text, "oom_kill") > 0
}

/// cgroup v1 `memory.oom_control`.
fn oom_in_control(text: &str) -> bool {
    field(text, "oom_kill") > 0 || field(text, "under_oom") > 0
}

/// Writes `record` to `path` atomically: a temp file, renamed. Not
/// fsynced: it lives in the runtime-state dir (/run), which a reboot
/// empties anyway; a daemon restart only needs it whole.
pub(crate) fn write_record(path: &Path, record: &ExitRecord) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec(record).map_err(io::Error::other)?)?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Reads an `exit.json`.
pub fn read_record(path: &Path) -> io::Result<ExitRecord> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn signals_become_128_plus_their_number() {
        let pid = Pid::from_raw(9);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 3)), Some((9, 3)));
        assert_eq!(exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)), Some((9, 137)));
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }

    #[test]
    fn oom_is_read_from_v1_and_v2_files() {
        assert!(!oom_in_control("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"));
        assert!(oom_in_control("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"));
        assert!(oom_in_control("oom_kill_disable 1\nunder_oom 1\n"));
        assert!(!oom_in_events("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n"));
        assert!(oom_in_events("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n"));
        assert!(!oom_killed(Path::new("/nonexistent/cgroup")));
    }

    #[test]
    fn record_is_written_whole_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exit.json");
        let record = ExitRecord {
            exit_code: 3,
            oom_killed: false,
            finished_at: "2026-11-29T07:44:52.123456789Z".into(),
            pid: 4242,
        };
        write_record(&path, &record).unwrap();
        assert_eq!(read_record(&path).unwrap(), record);
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["exit.json"]);
    }
}
