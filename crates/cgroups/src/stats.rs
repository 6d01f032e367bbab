//! Usage figures of a cgroup, as `docker stats` shows them: memory, CPU
//! time and pids, read from v1 or v2 files. Missing files read as zero.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cgroup::Cgroup;

/// One sample of a cgroup's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in use (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub memory_usage: u64,
    /// The most ever used (v1 only; 0 on v2).
    pub memory_max_usage: u64,
    /// The limit in bytes; `u64::MAX`-like huge values mean none.
    pub memory_limit: u64,
    /// `memory.stat`, key by key.
    pub memory_stat: BTreeMap<String, u64>,
    /// Nanoseconds of CPU time, in all and per CPU (v1 only), and split
    /// into user and system (nanoseconds).
    pub cpu_total: u64,
    pub cpu_per_cpu: Vec<u64>,
    pub cpu_user: u64,
    pub cpu_system: u64,
    pub pids_current: u64,
    /// 0: no limit.
    pub pids_limit: u64,
}

fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

fn read_pairs(path: &Path) -> BTreeMap<String, u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// USER_HZ ticks (v1 `cpuacct.stat`) to nanoseconds.
const NANOS_PER_TICK: u64 = 10_000_000;

impl Cgroup {
    /// A sample of the cgroup's usage now.
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        let v2 = self.is_v2();
        if let Some(dir) = self.dir("memory") {
            if v2 {
                s.memory_usage = read_u64(&dir.join("memory.current"));
                let max = std::fs::read_to_string(dir.join("memory.max")).unwrap_or_default();
                s.memory_limit = max.trim().parse().unwrap_or(u64::MAX);
            } else {
                s.memory_usage = read_u64(&dir.join("memory.usage_in_bytes"));
                s.memory_max_usage = read_u64(&dir.join("memory.max_usage_in_bytes"));
                s.memory_limit = read_u64(&dir.join("memory.limit_in_bytes"));
            }
            s.memory_stat = read_pairs(&dir.join("memory.stat"));
        }
        if v2 {
            if let Some(dir) = self.dir("cpu") {
                let stat = read_pairs(&dir.join("cpu.stat"));
                s.cpu_total = stat.get("usage_usec").copied().unwrap_or(0) * 1000;
                s.cpu_user = stat.get("user_usec").copied().unwrap_or(0) * 1000;
                s.cpu_system = stat.get("system_usec").copied().unwrap_or(0) * 1000;
            }
        } else if let Some(dir) = self.dir("cpuacct") {
            s.cpu_total = read_u64(&dir.join("cpuacct.usage"));
            s.cpu_per_cpu = std::fs::read_to_string(dir.join("cpuacct.usage_percpu"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            let stat = read_pairs(&dir.join("cpuacct.stat"));
            s.cpu_user = stat.get("user").copied().unwrap_or(0) * NANOS_PER_TICK;
            s.cpu_system = stat.get("system").copied().unwrap_or(0) * NANOS_PER_TICK;
        }
        if let Some(dir) = self.dir("pids") {
            s.pids_current = read_u64(&dir.join("pids.current"));
            let max = std::fs::read_to_string(dir.join("pids.max")).unwrap_or_default();
            s.pids_limit = max.trim().parse().unwrap_or(0);
        }
        s
    }
}
