//! A container's cgroup on a real (or imitated) hierarchy: the thin edge that writes files.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::path::OwnCgroups;
use crate::plan::{Plan, Write};
use crate::{v1, v2, CgroupError, CgroupPath, Hierarchy, Resources};

/// The directory that freezes a cgroup, and which interface it speaks.
pub(crate) enum Freezer<'a> {
    /// `freezer.state`: THAWED, FREEZING, FROZEN.
    V1(&'a Path),
    /// `cgroup.freeze` and the `frozen` key of `cgroup.events`.
    V2(&'a Path),
}

/// A container's cgroup: one directory per v1 hierarchy, or one on v2.
///
/// It serialises with its resolved directories, so a runtime can save it
/// with a container and find exactly the same directories later, whatever
/// cgroup the later command runs in.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    path: CgroupPath,
    layout: Layout,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Layout {
    V1 {
        hierarchies: Vec<Dir>,
        /// Hybrid hosts: the container's directory in the cgroup2 mount.
        unified: Option<Dir>,
    },
    V2 {
        dir: Dir,
    },
}

/// The container's directory in one hierarchy.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Dir {
    /// The controllers (and `name=` names) of the hierarchy.
    names: Vec<String>,
    /// The hierarchy's mountpoint: never created or removed here.
    mount: PathBuf,
    dir: PathBuf,
}

impl Dir {
    fn holds(&self, controller: &str) -> bool {
        self.names.iter().any(|n| n == controller)
    }
}

/// A hybrid host's cgroup2 directory for the container, made (with the
/// controllers it needs enabled in its parents) the first time a setting
/// needs it.
fn unified_dir(u: &Dir) -> Result<&Path, CgroupError> {
    if !u.dir.is_dir() {
        let wanted: Vec<&str> = V2_CONTROLLERS.into_iter().filter(|c| u.holds(c)).collect();
        create_dirs(u, |parent| enable_controllers(parent, &wanted), |_, _| Ok(()))?;
    }
    Ok(&u.dir)
}

/// The v2 controllers enabled for containers where the parent offers them.
const V2_CONTROLLERS: [&str; 6] = ["cpu", "memory", "pids", "io", "cpuset", "hugetlb"];

/// Files that every host here has, so a missing one is an error, not a warning.
const REQUIRED_FILES: [&str; 10] = [
    "memory.limit_in_bytes",
    "memory.max",
    "pids.max",
    "cpu.shares",
    "cpu.cfs_period_us",
    "cpu.cfs_quota_us",
    "cpu.weight",
    "cpu.max",
    "cpuset.cpus",
    "cpuset.mems",
];

/// How long `destroy` retries a busy cgroup whose processes are still exiting.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);

impl Cgroup {
    /// Resolves `path` in every hierarchy of `h`; reads `/proc/self/cgroup`
    /// only when `path` is relative. Creates nothing.
    pub fn new(h: &Hierarchy, path: &CgroupPath) -> Result<Cgroup, CgroupError> {
        let own = if path.is_relative() { Some(OwnCgroups::read()?) } else { None };
        Cgroup::resolve(h, path, own.as_ref())
    }

    pub(crate) fn resolve(
        h: &Hierarchy,
        path: &CgroupPath,
        own: Option<&OwnCgroups>,
    ) -> Result<Cgroup, CgroupError> {
        // Where `path` starts inside a hierarchy: its root, or our own cgroup there.
        let dir_in = |mount: &Path, own_path: Option<&Path>, hierarchy: &str| {
            let base = match own {
                None => mount.to_owned(),
                Some(_) => {
                    let own_path = own_path.ok_or_else(|| CgroupError::OwnCgroupMissing {
                        hierarchy: hierarchy.to_owned(),
                    })?;
                    mount.join(own_path.strip_prefix("/").unwrap_or(own_path))
                }
            };
            let rel = path.as_path();
            Ok::<_, CgroupError>(base.join(rel.strip_prefix("/").unwrap_or(rel)))
        };
        let layout = match h {
            Hierarchy::V2 { root } => {
                let dir = dir_in(root, own.and_then(OwnCgroups::unified), "cgroup2")?;
                Layout::V2 { dir: Dir { names: Vec::new(), mount: root.clone(), dir } }
            }
            Hierarchy::V1 { controllers, unified, unified_controllers } => {
                let mut by_mount: BTreeMap<&Path, Vec<String>> = BTreeMap::new();
                for (name, mount) in controllers {
                    by_mount.entry(mount).or_default().push(name.clone());
                }
                let mut hierarchies = Vec::new();
                for (mount, names) in by_mount {
                    let dir = dir_in(mount, own.and_then(|o| o.v1(&names)), &names.join(","))?;
                    hierarchies.push(Dir { names, mount: mount.to_owned(), dir });
                }
                // A hybrid host's cgroup2 tree is optional: without our own
                // place in it, settings for it become warnings.
                let unified = unified.as_ref().and_then(|mount| {
                    let dir = dir_in(mount, own.and_then(OwnCgroups::unified), "cgroup2").ok()?;
                    Some(Dir { names: unified_controllers.clone(), mount: mount.clone(), dir })
                });
                Layout::V1 { hierarchies, unified }
            }
        };
        Ok(Cgroup { path: path.clone(), layout })
    }

    /// The cgroups path as parsed: absolute (`/kiln/<id>`) from each
    /// hierarchy's root, or relative to this process's own cgroups.
    pub fn relative_path(&self) -> &Path {
        self.path.as_path()
    }

    /// The container's directory for a v1 controller (`memory`,
    /// `name=systemd`; `""` for a hybrid host's cgroup2 tree), or on v2 the
    /// one directory, whatever the name.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        match &self.layout {
            Layout::V2 { dir } => Some(&dir.dir),
            Layout::V1 { hierarchies, unified } => hierarchies
                .iter()
                .find(|d| d.holds(controller))
                .or(unified.as_ref().filter(|u| controller.is_empty() || u.holds(controller)))
                .map(|d| &*d.dir),
        }
    }

    /// Whether this is a cgroup v2 (unified) hierarchy.
    pub(crate) fn is_v2(&self) -> bool {
        matches!(self.layout, Layout::V2 { .. })
    }

    /// Every directory of this cgroup, one per hierarchy.
    fn dirs(&self) -> Vec<&Dir> {
        match &self.layout {
            Layout::V2 { dir } => vec![dir],
            Layout::V1 { hierarchies, unified } => hierarchies.iter().chain(unified).collect(),
        }
    }

    /// Creates the directories (like `mkdir -p`) in every hierarchy.
    ///
    /// On v1 each cpuset directory with empty `cpuset.cpus` or `cpuset.mems`
    /// gets its parent's, or no process could join it. On v2, and in a
    /// hybrid host's cgroup2 tree, every parent enables the controllers it
    /// offers for its children.
    pub fn create(&self) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V2 { dir } => create_dirs(
                dir,
                |parent| enable_controllers(parent, &V2_CONTROLLERS),
                |_, _| Ok(()),
            ),
            Layout::V1 { hierarchies, .. } => {
                for h in hierarchies {
                    if h.holds("cpuset") {
                        create_dirs(h, |_| {}, copy_cpuset)?;
                    } else {
                        create_dirs(h, |_| {}, |_, _| Ok(()))?;
                    }
                }
                // A hybrid host's cgroup2 tree is joined only when a setting
                // needs it (see `unified_dir`): enabling controllers there is a
                // host-wide change, and every move into it costs an RCU sync.
                Ok(())
            }
        }
    }

    /// Writes `r` into the cgroup. Returns what was skipped because this host
    /// lacks the file or controller, or because Kiln ignores the setting.
    pub fn apply(&self, r: &Resources) -> Result<Vec<String>, CgroupError> {
        let mut warnings = r.ignored();
        let Plan { writes, warnings: plan_warnings } = match &self.layout {
            Layout::V1 { .. } => v1::plan(r)?,
            Layout::V2 { .. } => v2::plan(r)?,
        };
        warnings.extend(plan_warnings);
        if r.memory.as_ref().is_some_and(|m| m.check_before_update == Some(true)) {
            self.check_memory_usage(&writes)?;
        }
        let mut swap_written = false;
        for w in &writes {
            if w.file == "memory.memsw.limit_in_bytes" && swap_written {
                continue;
            }
            let Some(path) = self.target(w, &mut warnings)? else { continue };
            let result = match write_file(&path, &w.value) {
                // Raising a v1 memory limit above memory+swap needs the swap raised first.
                Err(_) if w.file == "memory.limit_in_bytes" => {
                    let swap = writes.iter().find(|s| s.file == "memory.memsw.limit_in_bytes");
                    match swap {
                        Some(swap) if path.with_file_name(&swap.file).exists() => {
                            let swap_path = path.with_file_name(&swap.file);
                            write_file(&swap_path, &swap.value).map_err(|source| {
                                CgroupError::Write {
                                    value: swap.value.clone(),
                                    path: swap_path,
                                    source,
                                }
                            })?;
                            swap_written = true;
                            write_file(&path, &w.value)
                        }
                        _ => write_file(&path, &w.value),
                    }
                }
                result => result,
            };
            match result {
                Ok(()) => tracing::debug!(path = %path.display(), value = %w.value, "cgroup write"),
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        && path.parent().is_some_and(Path::is_dir) =>
                {
                    if REQUIRED_FILES.contains(&w.file.as_str()) {
                        let controller = w.file.split('.').next().unwrap_or_default().to_owned();
                        return Err(CgroupError::ControllerMissing {
                            controller,
                            file: w.file.clone(),
                        });
                    }
                    warnings.push(format!(
                        "{} does not exist on this host; {} was not set",
                        path.display(),
                        w.value
                    ));
                }
                Err(source) => {
                    return Err(CgroupError::Write { value: w.value.clone(), path, source })
                }
            }
        }
        Ok(warnings)
    }

    /// The file `w` goes to, or `None` with a warning when no hierarchy has its controller.
    fn target(
        &self,
        w: &Write,
        warnings: &mut Vec<String>,
    ) -> Result<Option<PathBuf>, CgroupError> {
        let (hierarchies, unified) = match &self.layout {
            Layout::V2 { dir } => return Ok(Some(existing_or_fallback(&dir.dir, &w.file))),
            Layout::V1 { hierarchies, unified } => (hierarchies, unified),
        };
        if w.controller.is_empty() {
            return match unified {
                Some(u) => Ok(Some(unified_dir(u)?.join(&w.file))),
                None => Err(CgroupError::UnifiedOnV1),
            };
        }
        if let Some(h) = hierarchies.iter().find(|h| h.holds(w.controller)) {
            return Ok(Some(existing_or_fallback(&h.dir, &w.file)));
        }
        // Hybrid hosts may have hugetlb only in the cgroup2 tree, with v2 file names.
        if let Some(u) = unified.as_ref().filter(|u| u.holds(w.controller)) {
            if w.controller == "hugetlb" {
                let dir = unified_dir(u)?;
                return Ok(Some(dir.join(w.file.replace(".limit_in_bytes", ".max"))));
            }
        }
        if REQUIRED_FILES.contains(&w.file.as_str()) {
            return Err(CgroupError::ControllerMissing {
                controller: w.controller.to_owned(),
                file: w.file.clone(),
            });
        }
        warnings.push(format!(
            "the {} controller is not mounted; {} was not set to {}",
            w.controller, w.file, w.value
        ));
        Ok(None)
    }

    /// Refuses a memory limit below what the cgroup already uses.
    fn check_memory_usage(&self, writes: &[Write]) -> Result<(), CgroupError> {
        let limit = writes
            .iter()
            .find(|w| w.file == "memory.limit_in_bytes" || w.file == "memory.max")
            .and_then(|w| w.value.parse::<i64>().ok())
            .filter(|l| *l > 0);
        let (Some(limit), Some(dir)) = (limit, self.dir("memory")) else { return Ok(()) };
        let file = match self.layout {
            Layout::V1 { .. } => "memory.usage_in_bytes",
            Layout::V2 { .. } => "memory.current",
        };
        let path = dir.join(file);
        let Some(usage) = read_optional(&path)? else { return Ok(()) };
        let usage = usage.trim().parse::<u64>().unwrap_or(0);
        if usage > limit.unsigned_abs() {
            return Err(CgroupError::MemoryBelowUsage { limit, usage, path });
        }
        Ok(())
    }

    /// Moves `pid` into the cgroup in every hierarchy (`name=systemd`
    /// included, and a hybrid host's cgroup2 tree where it was created).
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        let unified = match &self.layout {
            Layout::V1 { unified: Some(u), .. } => Some(&u.dir),
            _ => None,
        };
        for d in self.dirs() {
            if Some(&d.dir) == unified && !d.dir.is_dir() {
                continue;
            }
            let path = d.dir.join("cgroup.procs");
            write_file(&path, &pid.to_string()).map_err(|source| CgroupError::Write {
                value: pid.to_string(),
                path,
                source,
            })?;
        }
        Ok(())
    }

    /// Moves the calling process into the cgroup. The caller must be
    /// single-threaded: on v1 it moves itself through `tasks` with pid 0,
    /// which spares the kernel the global threadgroup lock (and its RCU
    /// grace period, several milliseconds) that a write of a pid to
    /// `cgroup.procs` takes.
    pub fn enter(&self) -> Result<(), CgroupError> {
        let (file, unified) = match &self.layout {
            Layout::V1 { unified, .. } => ("tasks", unified.as_ref().map(|u| &u.dir)),
            Layout::V2 { .. } => ("cgroup.procs", None),
        };
        for d in self.dirs() {
            let file = if Some(&d.dir) == unified {
                if !d.dir.is_dir() {
                    continue;
                }
                "cgroup.procs"
            } else {
                file
            };
            let path = d.dir.join(file);
            write_file(&path, "0").map_err(|source| CgroupError::Write {
                value: "0".into(),
                path,
                source,
            })?;
        }
        Ok(())
    }

    /// Every process in the cgroup and its sub-cgroups, sorted; empty when
    /// the cgroup does not exist.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = match &self.layout {
            Layout::V2 { dir } => dir,
            Layout::V1 { hierarchies, .. } => {
                let Some(d) = ["pids", "freezer", "memory"]
                    .iter()
                    .find_map(|c| hierarchies.iter().find(|h| h.holds(c)))
                    .or(hierarchies.first())
                else {
                    return Ok(Vec::new());
                };
                d
            }
        };
        let mut pids = Vec::new();
        collect_pids(&dir.dir, &mut pids)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Removes the cgroup's directories, sub-cgroups first, in every
    /// hierarchy. Missing ones are fine; parents (`/kiln`) stay.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        self.dirs().into_iter().try_for_each(|d| remove_tree(&d.dir))
    }

    /// Where freezing happens: v1 `freezer` hierarchy's directory, or the v2 one.
    pub(crate) fn freezer_dir(&self) -> Result<Freezer<'_>, CgroupError> {
        match &self.layout {
            Layout::V2 { dir } => Ok(Freezer::V2(&dir.dir)),
            Layout::V1 { hierarchies, .. } => hierarchies
                .iter()
                .find(|h| h.holds("freezer"))
                .map(|h| Freezer::V1(&h.dir))
                .ok_or(CgroupError::NoFreezer),
        }
    }
}

/// `mkdir -p` from the mountpoint down; `before` sees each parent before its
/// child is made, `after` each (parent, child) pair.
fn create_dirs(
    d: &Dir,
    mut before: impl FnMut(&Path),
    mut after: impl FnMut(&Path, &Path) -> Result<(), CgroupError>,
) -> Result<(), CgroupError> {
    let rel = d.dir.strip_prefix(&d.mount).unwrap_or(&d.dir);
    let mut current = d.mount.clone();
    for component in rel.components() {
        before(&current);
        let parent = current.clone();
        current.push(component);
        match fs::create_dir(&current) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(CgroupError::Create { path: current, source }),
        }
        after(&parent, &current)?;
    }
    Ok(())
}

/// v1 cpuset: a new cgroup starts with no cpus and mems; give it the parent's.
fn copy_cpuset(parent: &Path, child: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let path = child.join(file);
        let Some(value) = read_optional(&path)? else { continue };
        if !value.trim().is_empty() {
            continue;
        }
        let Some(inherited) = read_optional(&parent.join(file))? else { continue };
        let inherited = inherited.trim();
        write_file(&path, inherited).map_err(|source| CgroupError::Write {
            value: inherited.to_owned(),
            path,
            source,
        })?;
    }
    Ok(())
}

/// Enables `wanted` controllers for `dir`'s children where `dir` offers them.
/// Best effort: a parent with processes of its own refuses, and then the
/// missing files show up as warnings or errors when resources are applied.
fn enable_controllers(dir: &Path, wanted: &[&str]) {
    let Ok(Some(available)) = read_optional(&dir.join("cgroup.controllers")) else { return };
    let enabled =
        read_optional(&dir.join("cgroup.subtree_control")).ok().flatten().unwrap_or_default();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|c| available.split_whitespace().any(|a| a == *c))
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .collect();
    if missing.is_empty() {
        return;
    }
    let path = dir.join("cgroup.subtree_control");
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if write_file(&path, &all.join(" ")).is_ok() {
        return;
    }
    for controller in all {
        if let Err(error) = write_file(&path, &controller) {
            tracing::warn!(path = %path.display(), %controller, %error, "cannot enable cgroup controller");
        }
    }
}

/// A path for `file` in `dir`, trying the BFQ name where the CFQ one is missing.
fn existing_or_fallback(dir: &Path, file: &str) -> PathBuf {
    let path = dir.join(file);
    let fallback = match file {
        "blkio.weight" => "blkio.bfq.weight",
        "blkio.weight_device" => "blkio.bfq.weight_device",
        _ => return path,
    };
    if path.exists() || !dir.join(fallback).exists() {
        path
    } else {
        dir.join(fallback)
    }
}

fn collect_pids(dir: &Path, pids: &mut Vec<i32>) -> Result<(), CgroupError> {
    let Some(procs) = read_optional(&dir.join("cgroup.procs"))? else { return Ok(()) };
    pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(CgroupError::Read { path: dir.to_owned(), source }),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&entry.path(), pids)?;
        }
    }
    Ok(())
}

/// `rmdir` children first; retries while the kernel still counts exiting processes.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(CgroupError::Remove { path: dir.to_owned(), source }),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    let mut pause = Duration::from_millis(5);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::ResourceBusy && Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(source) => return Err(CgroupError::Remove { path: dir.to_owned(), source }),
        }
    }
}

/// One `write(2)` of `value`, as cgroup files want; never creates the file.
pub(crate) fn write_file(path: &Path, value: &str) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).truncate(true).open(path)?;
    file.write_all(value.as_bytes())
}

/// The file's text, or `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path: path.to_owned(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hybrid() -> Hierarchy {
        let controllers = [
            ("cpu", "/sys/fs/cgroup/cpu,cpuacct"),
            ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
            ("memory", "/sys/fs/cgroup/memory"),
            ("name=systemd", "/sys/fs/cgroup/systemd"),
        ];
        Hierarchy::V1 {
            controllers: controllers
                .iter()
                .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
                .collect(),
            unified: Some("/sys/fs/cgroup/unified".into()),
            unified_controllers: vec!["hugetlb".into()],
        }
    }

    #[test]
    fn absolute_paths_start_at_each_hierarchy_root() {
        let path = CgroupPath::parse(Some("/docker/abc"), "abc").expect("path");
        let cg = Cgroup::new(&hybrid(), &path).expect("cgroup");
        assert_eq!(cg.dir("cpuacct"), Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/docker/abc")));
        assert_eq!(cg.dir("cpu"), cg.dir("cpuacct"));
        assert_eq!(cg.dir("name=systemd"), Some(Path::new("/sys/fs/cgroup/systemd/docker/abc")));
        assert_eq!(cg.dir(""), Some(Path::new("/sys/fs/cgroup/unified/docker/abc")));
        assert_eq!(cg.dirs().len(), 4, "co-mounted controllers share one directory");
        assert_eq!(cg.relative_path(), Path::new("/docker/abc"));
    }

    #[test]
    fn relative_paths_start_at_our_own_cgroup_in_each_hierarchy() {
        let own = OwnCgroups::parse(
            "4:memory:/user/mem\n3:cpu,cpuacct:/user/cpu\n1:name=systemd:/user.slice\n0::/init.scope\n",
        );
        let path = CgroupPath::parse(Some("kiln/abc"), "abc").expect("path");
        let cg = Cgroup::resolve(&hybrid(), &path, Some(&own)).expect("cgroup");
        assert_eq!(cg.dir("memory"), Some(Path::new("/sys/fs/cgroup/memory/user/mem/kiln/abc")));
        assert_eq!(cg.dir("cpu"), Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/user/cpu/kiln/abc")));
        assert_eq!(cg.dir(""), Some(Path::new("/sys/fs/cgroup/unified/init.scope/kiln/abc")));
        assert_eq!(cg.relative_path(), Path::new("kiln/abc"));

        let v2 = Hierarchy::V2 { root: "/sys/fs/cgroup".into() };
        let cg = Cgroup::resolve(&v2, &path, Some(&own)).expect("cgroup");
        assert_eq!(cg.dir("memory"), Some(Path::new("/sys/fs/cgroup/init.scope/kiln/abc")));

        let partial = OwnCgroups::parse("4:memory:/user/mem\n");
        let err = Cgroup::resolve(&hybrid(), &path, Some(&partial)).expect_err("no cpu line");
        assert!(matches!(err, CgroupError::OwnCgroupMissing { .. }), "{err:?}");
    }
}
