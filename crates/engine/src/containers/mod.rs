//! The container service: create, start, stop, kill, wait, remove, list,
//! inspect, attach, exec and logs, with one shim per running container.
//!
//! Records live in memory and in `kiln.db` (written through on every
//! change). A container's files:
//!
//! ```text
//! <root>/containers/<id>/config.json       the runtime bundle (rootfs is mounted by the shim)
//! <root>/containers/<id>/kiln-rootfs.json  the overlay mount the shim makes at rootfs/
//! <root>/containers/<id>/<id>-json.log     the log (Docker's json-file format)
//! <root>/containers/<id>/{hostname,hosts,resolv.conf}
//! <exec-root>/containers/<id>/             the shim's socket, pid and exit record
//! <exec-root>/runtime/<id>/                the runtime's state
//! ```
//!
//! Every running container has a monitor task holding a `wait` stream to its
//! shim; when the exit frame arrives, the record moves to exited. After a
//! daemon restart, [`Containers::recover`] reconnects to live shims and
//! reads the exit records of those that ended while the daemon was away.

pub mod archive;
mod commit;
mod error;
pub mod health;
mod logs;
pub mod model;
mod names;
pub mod oci;
mod restart;
mod shim_link;
mod store;
pub(crate) mod users;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiln_shim::protocol::{ExitRecord, Request};
use kiln_types::{ContainerStatus, Digest};
use tokio::sync::watch;

pub use commit::{CommitError, CommitRequest};
pub use error::ContainerError;
pub use kiln_runtime::template::{MASKED_PATHS, READONLY_PATHS};
pub use logs::{LogEntry, LogOptions, LogStream};
pub use model::{
    ContainerRecord, ContainerState, CreateRequest, DeviceRequest, HostOptions, MountPoint,
    MountRequest, PortMapping, ResourceRequest, RestartPolicy, RunConfig, UlimitRequest,
};
pub use shim_link::{FrameWriter, ShimOutput};

use crate::events::Events;
use crate::images::{ImageError, Images};
use crate::networks::{self, ContainerNetwork, EndpointConfig, Networks};
use crate::volumes::{VolumeError, Volumes, ANONYMOUS_LABEL};
use shim_link::{ShimPaths, ShimStream, StdioMode};
use store::RecordStore;

/// Seconds `stop` waits before SIGKILL when nobody says.
const DEFAULT_STOP_TIMEOUT: i64 = 10;
/// The suffix of a container's directory on its way out.
const REMOVING: &str = ".removing";

/// Where container files go.
#[derive(Debug, Clone)]
pub struct ContainerPaths {
    /// `<root>/containers`.
    pub bundles: PathBuf,
    /// `<exec-root>/containers`.
    pub states: PathBuf,
    /// `<exec-root>/runtime`: the runtime's state root.
    pub runtime_root: PathBuf,
    /// The `kiln` executable, run as `kiln shim`.
    pub exe: PathBuf,
}

/// One container in memory.
#[derive(Debug)]
struct Entry {
    record: Mutex<ContainerRecord>,
    /// Serialises start, stop, kill, restart and remove of this container.
    ops: tokio::sync::Mutex<()>,
    events: watch::Sender<Progress>,
    /// The delay before the next restart by policy.
    backoff: Mutex<Duration>,
    /// Health of the current run, when the container has a check.
    health: Mutex<Option<health::HealthState>>,
    /// Attach requests waiting for the next start.
    waiting_attaches:
        Mutex<Vec<(AttachOptions, tokio::sync::oneshot::Sender<std::io::Result<ShimStream>>)>>,
    /// Set while `restart` stops the container: its exit then does not
    /// remove a `--rm` container (as dockerd does).
    restarting: std::sync::atomic::AtomicBool,
}

/// What waiters watch: how many times the container exited, and whether it
/// is gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Progress {
    exits: u64,
    starts: u64,
    removed: bool,
    exit_code: i64,
}

/// An exec instance.
#[derive(Debug)]
pub struct ExecEntry {
    pub id: String,
    pub container_id: String,
    pub request: ExecRequest,
    state: Mutex<ExecState>,
    /// The stream's write side, for stdin and resize.
    control: tokio::sync::Mutex<Option<FrameWriter>>,
}

#[derive(Debug, Clone, Default)]
struct ExecState {
    running: bool,
    exit_code: Option<i64>,
    pid: i64,
}

/// `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub privileged: bool,
    pub console_size: Option<[u32; 2]>,
}

/// What `GET /exec/{id}/json` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecDetails {
    pub id: String,
    pub container_id: String,
    pub request: ExecRequest,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
}

/// Which streams an attach wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// `docker wait --condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    #[default]
    NotRunning,
    NextExit,
    Removed,
}

/// `docker ps` filters and flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub all: bool,
    /// Newest N (`-n`); 0: no limit.
    pub limit: usize,
    pub filters: BTreeMap<String, Vec<String>>,
}

/// A stream to a container's (or exec's) process, in two halves that
/// can be driven at once.
#[derive(Debug)]
pub struct Attached {
    pub tty: bool,
    pub output: AttachedOutput,
    pub input: AttachedInput,
}

/// What the process writes.
#[derive(Debug)]
pub struct AttachedOutput {
    reader: shim_link::FrameReader,
    exec: Option<Arc<ExecEntry>>,
}

/// What goes to the process's stdin.
#[derive(Debug)]
pub struct AttachedInput {
    /// `None` for an exec (its writer lives in the exec entry, for resize).
    writer: Option<FrameWriter>,
    exec: Option<Arc<ExecEntry>>,
}

impl Attached {
    fn new(
        tty: bool,
        reader: shim_link::FrameReader,
        writer: Option<FrameWriter>,
        exec: Option<Arc<ExecEntry>>,
    ) -> Attached {
        Attached {
            tty,
            output: AttachedOutput { reader, exec: exec.clone() },
            input: AttachedInput { writer, exec },
        }
    }
}

impl AttachedOutput {
    /// The next output; records an exec's exit code when it comes. `None`
    /// when the shim closed the stream.
    pub async fn next(&mut self) -> std::io::Result<Option<ShimOutput>> {
        let out = self.reader.next().await;
        if let Some(exec) = &self.exec {
            match &out {
                Ok(Some(ShimOutput::Exit(record))) => exec.finish(i64::from(record.exit_code)),
                Ok(None) | Err(_) => exec.finish_unknown(),
                Ok(Some(_)) => {}
            }
        }
        out
    }
}

impl AttachedInput {
    /// Send stdin to the process.
    pub async fn write_stdin(&mut self, data: &[u8]) -> std::io::Result<()> {
        match (&mut self.writer, &self.exec) {
            (Some(writer), _) => writer.stdin(data).await,
            (None, Some(exec)) => match exec.control.lock().await.as_mut() {
                Some(writer) => writer.stdin(data).await,
                None => Ok(()),
            },
            (None, None) => Ok(()),
        }
    }

    /// Stdin reached its end.
    pub async fn close_stdin(&mut self) -> std::io::Result<()> {
        match (&mut self.writer, &self.exec) {
            (Some(writer), _) => writer.close_stdin().await,
            (None, Some(exec)) => match exec.control.lock().await.as_mut() {
                Some(writer) => writer.close_stdin().await,
                None => Ok(()),
            },
            (None, None) => Ok(()),
        }
    }
}

impl ExecEntry {
    fn finish(&self, code: i64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.running = false;
        state.exit_code = Some(code);
    }

    fn finish_unknown(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.running {
            state.running = false;
            state.exit_code.get_or_insert(126);
        }
    }
}

/// The engine's containers.
#[derive(Debug)]
pub struct Containers {
    paths: ContainerPaths,
    images: Arc<Images>,
    volumes: Arc<Volumes>,
    networks: Arc<Networks>,
    events: Arc<Events>,
    store: RecordStore,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    execs: Mutex<HashMap<String, Arc<ExecEntry>>>,
    host_memory: i64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_nanos() -> i64 {
    kiln_shim::logfile::now()
}

pub(crate) fn random_hex(bytes: usize) -> String {
    use std::io::Read as _;
    let mut buf = vec![0u8; bytes];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if filled.is_err() {
        // Not random, but unique enough for one process: time and a counter.
        let seed = now_nanos() as u128 ^ u128::from(std::process::id());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ i as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Containers {
    /// The program shims and build steps start from.
    pub(crate) fn exe(&self) -> &std::path::Path {
        &self.paths.exe
    }

    pub(crate) fn open(
        paths: ContainerPaths,
        images: Arc<Images>,
        volumes: Arc<Volumes>,
        networks: Arc<Networks>,
        events: Arc<Events>,
        db: Arc<redb::Database>,
    ) -> Result<Containers, ContainerError> {
        for dir in [&paths.bundles, &paths.states, &paths.runtime_root] {
            std::fs::create_dir_all(dir).map_err(ContainerError::io("create", dir.clone()))?;
        }
        // What a crash left between the rename and the delete of a removal.
        for dir in [&paths.bundles, &paths.states] {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().ends_with(REMOVING) {
                    images.snapshots().remove_detached(&entry.path());
                }
            }
        }
        let store = RecordStore::open(db)?;
        let mut entries = HashMap::new();
        for record in store.load_all()? {
            entries.insert(record.id.clone(), Arc::new(Entry::new(record)));
        }
        Ok(Containers {
            paths,
            images,
            volumes,
            networks,
            events,
            store,
            entries: Mutex::new(entries),
            execs: Mutex::new(HashMap::new()),
            host_memory: host_memory(),
        })
    }

    /// After a daemon start: watch the shims of containers that were
    /// running, and settle those whose shim is gone. Must run in a tokio
    /// runtime; the containers must be kept in an `Arc`.
    pub async fn recover(self: &Arc<Self>) {
        let alive: Vec<Arc<Entry>> = lock(&self.entries)
            .values()
            .filter(|e| lock(&e.record).state.status.is_alive())
            .cloned()
            .collect();
        // Networks first: endpoints of containers that died while the
        // daemon was away are released by their monitors below.
        let known: std::collections::BTreeSet<String> =
            lock(&self.entries).keys().cloned().collect();
        let running: BTreeMap<String, Vec<PortMapping>> = alive
            .iter()
            .map(|e| {
                let r = lock(&e.record);
                (r.id.clone(), r.state.ports.clone())
            })
            .collect();
        let records: Vec<ContainerRecord> = alive.iter().map(|e| lock(&e.record).clone()).collect();
        let this = Arc::clone(self);
        let _ = tokio::task::spawn_blocking(move || {
            this.networks.recover(&known, &running);
            for record in &records {
                let netns = this.networks.netns_path(&record.id);
                if netns.exists() {
                    this.serve_dns(record, &netns, false);
                }
            }
        })
        .await;
        for entry in alive {
            let id = lock(&entry.record).id.clone();
            tracing::info!(container = %id, "reconnecting to the shim");
            self.spawn_monitor(entry);
        }
        self.restart_on_boot().await;
    }

    /// How many containers there are, by status: (running, paused, stopped).
    pub fn counts(&self) -> (u64, u64, u64) {
        let mut counts = (0, 0, 0);
        for entry in lock(&self.entries).values() {
            match lock(&entry.record).state.status {
                ContainerStatus::Running | ContainerStatus::Restarting => counts.0 += 1,
                ContainerStatus::Paused => counts.1 += 1,
                _ => counts.2 += 1,
            }
        }
        counts
    }

    /// The /dev/shm size a container gets without `--shm-size`.
    pub fn default_shm_size(&self, memory_limit: i64) -> i64 {
        oci::default_shm_size(memory_limit, self.host_memory)
    }

    fn shim_paths(&self, id: &str) -> ShimPaths {
        let bundle = self.paths.bundles.join(id);
        ShimPaths {
            exe: self.paths.exe.clone(),
            log_path: bundle.join(format!("{id}-json.log")),
            bundle,
            state_dir: self.paths.states.join(id),
            runtime_root: self.paths.runtime_root.clone(),
        }
    }

    /// The container named by full id, name (with or without `/`) or a
    /// unique id prefix.
    fn find(&self, name: &str) -> Result<Arc<Entry>, ContainerError> {
        let entries = lock(&self.entries);
        if let Some(entry) = entries.get(name) {
            return Ok(Arc::clone(entry));
        }
        let bare = name.strip_prefix('/').unwrap_or(name);
        if let Some(entry) = entries.values().find(|e| lock(&e.record).name == bare) {
            return Ok(Arc::clone(entry));
        }
        let is_hex = !name.is_empty() && name.bytes().all(|b| b.is_ascii_hexdigit());
        if is_hex {
            let mut matches = entries.iter().filter(|(id, _)| id.starts_with(name));
            if let Some((_, entry)) = matches.next() {
                if matches.next().is_some() {
                    return Err(ContainerError::Ambiguous { prefix: name.to_owned() });
                }
                return Ok(Arc::clone(entry));
            }
        }
        Err(ContainerError::NoSuchContainer { name: name.to_owned() })
    }

    /// The full id of the container `name`.
    pub fn resolve(&self, name: &str) -> Result<String, ContainerError> {
        Ok(lock(&self.find(name)?.record).id.clone())
    }

    fn persist(&self, entry: &Entry) -> Result<(), ContainerError> {
        let record = lock(&entry.record).clone();
        self.store.put(&record)?;
        Ok(())
    }

    // ---- create ---------------------------------------------------------

    /// `POST /containers/create`: make the container and its writable layer.
    /// Returns the id and warnings.
    pub fn create(
        &self,
        name: Option<&str>,
        request: CreateRequest,
    ) -> Result<(String, Vec<String>), ContainerError> {
        self.create_with_networks(name, request, BTreeMap::new())
    }

    /// `POST /containers/create` with the request's
    /// `NetworkingConfig.EndpointsConfig`: network name or id → aliases and
    /// `--ip`. The entry of the network mode's network gives its options;
    /// the others are networks joined besides it.
    pub fn create_with_networks(
        &self,
        name: Option<&str>,
        request: CreateRequest,
        endpoints: BTreeMap<String, EndpointConfig>,
    ) -> Result<(String, Vec<String>), ContainerError> {
        let (image, config) =
            self.images.for_container(&request.image).map_err(|err| match err {
                // docker-compat: the missing image is named with its tag.
                ImageError::NoSuchImage { name } => ImageError::NoSuchImage {
                    name: name
                        .parse::<kiln_types::ImageRef>()
                        .map_or(name, |r| r.normalized().familiar()),
                },
                other => other,
            })?;
        let defaults = config.config.clone().unwrap_or_default();
        let argv = oci::command(
            request.config.entrypoint.as_deref(),
            request.config.cmd.as_deref(),
            &defaults,
        );
        let Some((path, args)) = argv.split_first() else {
            return Err(ContainerError::InvalidRequest { message: "No command specified".into() });
        };
        let mut warnings = Vec::new();
        check_request(&request, &mut warnings)?;
        let first_network = self.check_networking(&request, &endpoints, &defaults)?;
        let mut mounts = self.plan_mounts(&request, &defaults)?;
        let id = random_hex(32);
        let name = {
            let mut entries = lock(&self.entries);
            let name = match name.filter(|n| !n.is_empty()) {
                Some(n) => {
                    let n = n.strip_prefix('/').unwrap_or(n);
                    if !names::is_valid(n) {
                        return Err(ContainerError::InvalidName { name: n.to_owned() });
                    }
                    if let Some(other) = entries.values().find(|e| lock(&e.record).name == n) {
                        return Err(ContainerError::NameInUse {
                            name: n.to_owned(),
                            id: lock(&other.record).id.clone(),
                        });
                    }
                    n.to_owned()
                }
                None => {
                    let seed = u64::from_str_radix(&id[..16], 16).unwrap_or(0);
                    (0..)
                        .map(|attempt| names::generate(seed, attempt))
                        .find(|n| !entries.values().any(|e| lock(&e.record).name == *n))
                        .unwrap_or_else(|| id[..12].to_owned())
                }
            };
            let record = ContainerRecord {
                id: id.clone(),
                name: name.clone(),
                created: now_nanos(),
                image_id: image.id.clone(),
                request,
                path: path.clone(),
                args: args.to_vec(),
                mounts: mounts.clone(),
                state: ContainerState::default(),
            };
            // Reserve the name before the slow part; undone on failure.
            entries.insert(id.clone(), Arc::new(Entry::new(record)));
            name
        };
        let prepared = self
            .prepare(&id, &image, &defaults)
            .and_then(|()| self.fill_volumes(&image, &mut mounts))
            .and_then(|()| self.join_members(&id, &name, first_network.as_ref(), &endpoints));
        if prepared.is_ok() {
            if let Ok(entry) = self.find(&id) {
                lock(&entry.record).mounts = mounts.clone();
            }
        }
        match prepared {
            Ok(()) => {}
            Err(err) => {
                lock(&self.entries).remove(&id);
                self.remove_files(&id);
                self.discard_anonymous(&mounts);
                self.networks.forget(&id);
                return Err(err);
            }
        }
        let entry = self.find(&id)?;
        if let Err(err) = self.persist(&entry) {
            lock(&self.entries).remove(&id);
            self.remove_files(&id);
            self.discard_anonymous(&mounts);
            self.networks.forget(&id);
            return Err(err);
        }
        tracing::info!(container = %id, name = %name, image = %image.id, "container created");
        self.emit(&entry, "create", &[]);
        Ok((id, warnings))
    }

    /// The mounts of a request, checked, with named volumes created:
    /// binds and volumes (`-v`, `--mount`), those of `--volumes-from`, and
    /// anonymous volumes for the image's and the request's `VOLUME`s that
    /// nothing else covers.
    fn plan_mounts(
        &self,
        request: &CreateRequest,
        defaults: &kiln_image::ContainerConfig,
    ) -> Result<Vec<MountPoint>, ContainerError> {
        let invalid = |message: String| ContainerError::InvalidRequest { message };
        let mut mounts: Vec<MountPoint> = Vec::new();
        let add = |m: MountPoint, mounts: &mut Vec<MountPoint>| -> Result<(), ContainerError> {
            if !m.destination.starts_with('/') {
                return Err(invalid(format!(
                    "invalid mount config for type \"{}\": invalid mount path: '{}' mount path must be absolute",
                    m.kind, m.destination
                )));
            }
            if mounts.iter().any(|o| o.destination == m.destination) {
                return Err(invalid(format!("Duplicate mount point: {}", m.destination)));
            }
            mounts.push(m);
            Ok(())
        };
        for bind in &request.host.binds {
            let parts: Vec<&str> = bind.split(':').collect();
            let (source, dest, mode) = match parts.as_slice() {
                [s, d] => (*s, *d, ""),
                [s, d, m] => (*s, *d, *m),
                _ => return Err(invalid(format!("invalid volume specification: '{bind}'"))),
            };
            if source.is_empty() || dest.is_empty() {
                return Err(invalid(format!("invalid volume specification: '{bind}'")));
            }
            let mut rw = true;
            let mut propagation = String::new();
            let mut nocopy = false;
            for opt in mode.split(',').filter(|o| !o.is_empty()) {
                match opt {
                    "ro" => rw = false,
                    "rw" => rw = true,
                    "nocopy" => nocopy = true,
                    "z" | "Z" | "consistent" | "cached" | "delegated" => {}
                    "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                        propagation = opt.to_owned()
                    }
                    _ => return Err(invalid(format!("invalid mode: {opt}"))),
                }
            }
            if source.starts_with('/') {
                if !Path::new(source).exists() {
                    return Err(invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {source}"
                    )));
                }
                let propagation =
                    if propagation.is_empty() { "rprivate".to_owned() } else { propagation };
                add(
                    MountPoint {
                        kind: "bind".into(),
                        name: String::new(),
                        source: source.to_owned(),
                        destination: dest.to_owned(),
                        mode: mode.to_owned(),
                        rw,
                        propagation,
                    },
                    &mut mounts,
                )?;
            } else {
                let (volume, _) = self
                    .volumes
                    .create(Some(source), "local", BTreeMap::new(), BTreeMap::new())
                    .map_err(volume_err)?;
                let mode = if nocopy { "nocopy".to_owned() } else { mode.to_owned() };
                add(
                    MountPoint {
                        kind: "volume".into(),
                        name: volume.name.clone(),
                        source: self.volumes.mountpoint(&volume.name).display().to_string(),
                        destination: dest.to_owned(),
                        mode,
                        rw,
                        propagation: String::new(),
                    },
                    &mut mounts,
                )?;
            }
        }
        for m in &request.host.mounts {
            match m.kind.as_str() {
                "bind" => {
                    if !Path::new(&m.source).exists() {
                        return Err(invalid(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    let propagation = if m.propagation.is_empty() {
                        "rprivate".into()
                    } else {
                        m.propagation.clone()
                    };
                    add(
                        MountPoint {
                            kind: "bind".into(),
                            name: String::new(),
                            source: m.source.clone(),
                            destination: m.target.clone(),
                            mode: String::new(),
                            rw: !m.read_only,
                            propagation,
                        },
                        &mut mounts,
                    )?;
                }
                "volume" => {
                    let (name, labels) = if m.source.is_empty() {
                        (None, [(ANONYMOUS_LABEL.to_owned(), String::new())].into())
                    } else {
                        (Some(m.source.as_str()), BTreeMap::new())
                    };
                    let (volume, _) = self
                        .volumes
                        .create(name, "local", BTreeMap::new(), labels)
                        .map_err(volume_err)?;
                    add(
                        MountPoint {
                            kind: "volume".into(),
                            name: volume.name.clone(),
                            source: self.volumes.mountpoint(&volume.name).display().to_string(),
                            destination: m.target.clone(),
                            mode: String::new(),
                            rw: !m.read_only,
                            propagation: String::new(),
                        },
                        &mut mounts,
                    )?;
                }
                "tmpfs" => add(
                    MountPoint {
                        kind: "tmpfs".into(),
                        name: String::new(),
                        source: String::new(),
                        destination: m.target.clone(),
                        mode: String::new(),
                        rw: !m.read_only,
                        propagation: String::new(),
                    },
                    &mut mounts,
                )?,
                other => return Err(invalid(format!("mount type {other:?} is not supported"))),
            }
        }
        for from in &request.host.volumes_from {
            let (name, mode) = from.split_once(':').unwrap_or((from.as_str(), ""));
            let source = self.find(name)?;
            let theirs = lock(&source.record).mounts.clone();
            for mut m in theirs.into_iter().filter(|m| m.kind != "tmpfs") {
                match mode {
                    "ro" => m.rw = false,
                    "rw" => m.rw = true,
                    "" => {}
                    other => return Err(invalid(format!("invalid mode: {other}"))),
                }
                if !mounts.iter().any(|o| o.destination == m.destination) {
                    mounts.push(m);
                }
            }
        }
        let wanted: Vec<&String> =
            defaults.volumes.keys().chain(request.config.volumes.iter()).collect();
        for path in wanted {
            let covered = mounts
                .iter()
                .any(|m| m.destination.trim_end_matches('/') == path.trim_end_matches('/'))
                || request.host.tmpfs.contains_key(path);
            if covered {
                continue;
            }
            let labels = [(ANONYMOUS_LABEL.to_owned(), String::new())].into();
            let (volume, _) =
                self.volumes.create(None, "local", BTreeMap::new(), labels).map_err(volume_err)?;
            add(
                MountPoint {
                    kind: "volume".into(),
                    name: volume.name.clone(),
                    source: self.volumes.mountpoint(&volume.name).display().to_string(),
                    destination: path.clone(),
                    mode: String::new(),
                    rw: true,
                    propagation: String::new(),
                },
                &mut mounts,
            )?;
        }
        Ok(mounts)
    }

    /// Remove the anonymous volumes of a container that was not made.
    fn discard_anonymous(&self, mounts: &[MountPoint]) {
        for m in mounts.iter().filter(|m| m.kind == "volume") {
            if self.volumes.get(&m.name).is_ok_and(|v| v.is_anonymous()) {
                let _ = self.volumes.remove(&m.name, true, self);
            }
        }
    }

    /// Copy the image's content at each volume's path into the volume when
    /// the volume is empty, as Docker does on first use (not with `nocopy`).
    fn fill_volumes(
        &self,
        image: &kiln_image::ImageRecord,
        mounts: &mut [MountPoint],
    ) -> Result<(), ContainerError> {
        let snapshots = self.images.snapshots();
        for m in mounts.iter().filter(|m| m.kind == "volume" && m.mode != "nocopy") {
            let record = self.volumes.get(&m.name).map_err(volume_err)?;
            if record.options.contains_key("type") || !self.volumes.is_empty(&m.name) {
                continue;
            }
            let relative = m.destination.trim_start_matches('/');
            if relative.is_empty() || relative.split('/').any(|c| c == "..") {
                continue;
            }
            let lowers: Vec<PathBuf> = image
                .chain_ids
                .iter()
                .map(|c| snapshots.layer_dir(c).join(relative))
                .filter(|p| p.symlink_metadata().is_ok_and(|meta| meta.is_dir()))
                .collect();
            if lowers.is_empty() {
                continue;
            }
            let refs: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
            let dest = self.volumes.mountpoint(&m.name);
            kiln_snapshot::materialize(&refs, &dest)
                .map_err(|source| ContainerError::Snapshot { id: m.name.clone(), source })?;
        }
        Ok(())
    }

    /// The container's writable layer and bundle directory.
    fn prepare(
        &self,
        id: &str,
        image: &kiln_image::ImageRecord,
        defaults: &kiln_image::ContainerConfig,
    ) -> Result<(), ContainerError> {
        let cid: kiln_types::ContainerId = id
            .parse()
            .map_err(|_| ContainerError::InvalidRequest { message: format!("bad id {id}") })?;
        let snapshots = self.images.snapshots();
        let upper = snapshots
            .prepare_container(&cid)
            .map_err(|source| ContainerError::Snapshot { id: id.to_owned(), source })?;
        let mount = snapshots
            .mounts(&image.chain_ids, Some(&upper))
            .map_err(|source| ContainerError::Snapshot { id: id.to_owned(), source })?;
        let bundle = self.paths.bundles.join(id);
        std::fs::create_dir_all(&bundle).map_err(ContainerError::io("create", bundle.clone()))?;
        // Docker creates the working directory when the image lacks it.
        let (workdir, auto_remove) = {
            let entry = self.find(id)?;
            let record = lock(&entry.record);
            let workdir = match record.request.config.working_dir.as_str() {
                "" => defaults.working_dir.clone().unwrap_or_default(),
                dir => dir.to_owned(),
            };
            (workdir, record.request.host.auto_remove)
        };
        let mut options = mount.options.clone();
        if auto_remove && mount.fstype == "overlay" {
            // The layer goes with the container: no sync of the host's
            // filesystem when it is unmounted.
            options.push(kiln_shim::VOLATILE.to_owned());
        }
        let rootfs = serde_json::json!({
            "fstype": mount.fstype,
            "source": mount.source,
            "options": options,
        });
        write_file(&bundle.join("kiln-rootfs.json"), rootfs.to_string().as_bytes())?;
        let relative = workdir.trim_start_matches('/');
        if !relative.is_empty() && !relative.split('/').any(|c| c == "..") {
            let exists = image
                .chain_ids
                .iter()
                .any(|chain| snapshots.layer_dir(chain).join(relative).symlink_metadata().is_ok());
            if !exists {
                let path = upper.upper.join(relative);
                std::fs::create_dir_all(&path).map_err(ContainerError::io("create", path))?;
            }
        }
        Ok(())
    }

    fn remove_files(&self, id: &str) {
        for path in self.detach_files(id) {
            self.images.snapshots().remove_detached(&path);
        }
    }

    /// Takes container `id`'s writable layer, bundle and state dir out of
    /// the way, one rename each, and returns where they now lie, to be
    /// deleted off the caller's path: `rm` and `run --rm` answer without
    /// waiting for the tree walks. Leftovers of a crash go at the next open.
    fn detach_files(&self, id: &str) -> Vec<PathBuf> {
        let mut doomed = Vec::new();
        if let Ok(cid) = id.parse::<kiln_types::ContainerId>() {
            match self.images.snapshots().detach_container(&cid) {
                Ok(Some(path)) => doomed.push(path),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(container = %id, error = %err, "cannot remove the writable layer")
                }
            }
        }
        let bundle = self.paths.bundles.join(id);
        let rootfs = bundle.join("rootfs");
        let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
        for dir in [bundle, self.paths.states.join(id)] {
            let away = dir.with_file_name(format!("{id}{REMOVING}"));
            match std::fs::rename(&dir, &away) {
                Ok(()) => doomed.push(away),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::warn!(container = %id, path = %dir.display(), error = %err, "cannot remove");
                    doomed.push(dir);
                }
            }
        }
        doomed
    }

    // ---- networks -------------------------------------------------------

    /// What `create` checks of a container's networking: the network mode
    /// names a network (or, `container:NAME`, an existing container, see
    /// [`shared_network_request`]), endpoint settings name bridge
    /// networks (with `--ip` an address), published ports and the MAC
    /// address parse. Returns the network mode's bridge network, if it
    /// names one.
    fn check_networking(
        &self,
        request: &CreateRequest,
        endpoints: &BTreeMap<String, EndpointConfig>,
        defaults: &kiln_image::ContainerConfig,
    ) -> Result<Option<networks::NetworkRecord>, ContainerError> {
        let mode = request.host.network_mode.as_str();
        let not_found = |name: &str| ContainerError::InvalidRequest {
            message: format!("network {name} not found"),
        };
        let first = match mode {
            _ if request.config.network_disabled => None,
            "host" | "none" => None,
            m if m.starts_with("container:") => {
                // NAME must exist now; whether it runs is for the start.
                self.find(shared_network_request(request, m, endpoints)?)?;
                return Ok(None);
            }
            m => match self.networks.resolve_mode(m) {
                Ok(record) => record,
                Err(networks::NetworkError::NotFound { .. }) => return Err(not_found(m)),
                Err(err) => return Err(err.into()),
            },
        };
        for (network, config) in endpoints {
            let record = match self.networks.resolve_mode(network) {
                Ok(record) => record,
                Err(networks::NetworkError::NotFound { .. }) => return Err(not_found(network)),
                Err(err) => return Err(err.into()),
            };
            let is_first = match (&record, &first) {
                (Some(r), Some(f)) => r.id == f.id,
                (None, _) => network == mode,
                _ => false,
            };
            if !is_first && first.is_none() {
                return Err(networks::NetworkError::NoNetworkNamespace.into());
            }
            if !config.ipv4_address.is_empty()
                && config.ipv4_address.parse::<std::net::Ipv4Addr>().is_err()
            {
                return Err(networks::NetworkError::InvalidAddress {
                    address: config.ipv4_address.clone(),
                }
                .into());
            }
        }
        requested_ports(request, defaults)?;
        requested_mac(request)?;
        Ok(first)
    }

    /// Records a new container as a member of its networks: the network
    /// mode's user-defined network (and the default one when its endpoint
    /// settings say something), and the others its endpoint settings name.
    fn join_members(
        &self,
        id: &str,
        name: &str,
        first: Option<&networks::NetworkRecord>,
        endpoints: &BTreeMap<String, EndpointConfig>,
    ) -> Result<(), ContainerError> {
        let mut first_config = None;
        for (network, config) in endpoints {
            let record = self.networks.resolve_mode(network)?;
            match (record, first) {
                (Some(r), Some(f)) if r.id == f.id => first_config = Some(config.clone()),
                (Some(r), _) => {
                    self.networks.add_member(&r.id, id, name, config.clone(), false)?;
                }
                (None, _) => {}
            }
        }
        if let Some(first) = first {
            if !first.is_predefined() || first_config.is_some() {
                let config = first_config.unwrap_or_default();
                self.networks.add_member(&first.id, id, name, config, true)?;
            }
        }
        Ok(())
    }

    /// `POST /networks/{id}/connect`: a running container gets an interface
    /// on the network now; a stopped one joins it at its next start.
    pub async fn connect_network(
        self: &Arc<Self>,
        network: &str,
        container: &str,
        config: EndpointConfig,
    ) -> Result<(), ContainerError> {
        let entry = self.find(container)?;
        let _op = entry.ops.lock().await;
        let (id, name, alive, mode) = {
            let r = lock(&entry.record);
            (r.id.clone(), r.name.clone(), r.state.status.is_alive(), networks::primary_name(&r))
        };
        if mode == "host" {
            return Err(networks::NetworkError::HostNetwork.into());
        }
        if mode == "none" || mode.starts_with("container:") {
            return Err(networks::NetworkError::NoNetworkNamespace.into());
        }
        let target = self.networks.inspect(network)?;
        // Whether it is there already is the network's to say (an endpoint
        // of a running container, a member for a stopped one), not the
        // network mode's: a container disconnected from the network its
        // mode names may join it again, as in Docker.
        let networks = Arc::clone(&self.networks);
        tokio::task::spawn_blocking(move || {
            if alive {
                networks.connect_running(&id, &name, &target.id, config)
            } else {
                networks.add_member(&target.id, &id, &name, config, false)
            }
        })
        .await
        .map_err(|e| ContainerError::Shim { id: container.to_owned(), message: e.to_string() })??;
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`: the container leaves the network
    /// (its interface there goes now if it runs). `force` is accepted for
    /// Docker's sake; nothing here needs it.
    pub async fn disconnect_network(
        self: &Arc<Self>,
        network: &str,
        container: &str,
        _force: bool,
    ) -> Result<(), ContainerError> {
        let entry = self.find(container)?;
        let _op = entry.ops.lock().await;
        let (id, name, alive, mode) = {
            let r = lock(&entry.record);
            (r.id.clone(), r.name.clone(), r.state.status.is_alive(), networks::primary_name(&r))
        };
        let target = self.networks.inspect(network)?;
        if mode == "host" || target.driver == "host" {
            return Err(networks::NetworkError::HostNetwork.into());
        }
        let networks = Arc::clone(&self.networks);
        tokio::task::spawn_blocking(move || {
            if alive {
                networks.disconnect_running(&id, &name, &target.id)
            } else {
                networks.remove_member(&target.id, &id, &name)
            }
        })
        .await
        .map_err(|e| ContainerError::Shim { id: container.to_owned(), message: e.to_string() })??;
        Ok(())
    }

    /// `kiln port`: the ports the container publishes while it runs.
    pub fn port(&self, name: &str) -> Result<Vec<PortMapping>, ContainerError> {
        Ok(lock(&self.find(name)?.record).state.ports.clone())
    }

    /// The container's networks for inspect: configured, with endpoints
    /// while it runs.
    pub fn networks_of(&self, name: &str) -> Result<Vec<ContainerNetwork>, ContainerError> {
        let record = lock(&self.find(name)?.record).clone();
        Ok(self.networks.for_container(&record))
    }

    // ---- start ----------------------------------------------------------

    /// `POST /containers/{id}/start`. `Ok(false)`: it was already running
    /// (HTTP 304).
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<bool, ContainerError> {
        let entry = self.find(name)?;
        let started = {
            let _op = entry.ops.lock().await;
            self.start_locked(&entry).await
        };
        // docker-compat: a `--rm` container that cannot start is removed
        // before the start's error is answered, as dockerd does (`run --rm`
        // waits for the removal).
        if started.is_err() && lock(&entry.record).request.host.auto_remove {
            if let Err(e) = self.remove_entry(&entry, true, true).await {
                tracing::warn!(error = %e, "cannot remove a container that failed to start");
            }
        }
        started
    }

    async fn start_locked(self: &Arc<Self>, entry: &Arc<Entry>) -> Result<bool, ContainerError> {
        let (id, status) = entry.id_and_status();
        if status.is_alive() {
            return Ok(false);
        }
        if !status.can_start() {
            return Err(ContainerError::CannotStart { id, status: status.as_str() });
        }
        let paths = self.shim_paths(&id);
        let mode = {
            let r = lock(&entry.record);
            StdioMode {
                tty: r.request.config.tty,
                open_stdin: r.request.config.open_stdin,
                stdin_once: r.request.config.stdin_once,
            }
        };
        let written = {
            let this = Arc::clone(self);
            let entry = Arc::clone(entry);
            tokio::task::spawn_blocking(move || this.prepare_start(&entry)).await.unwrap_or_else(
                |e| Err(ContainerError::Shim { id: id.clone(), message: e.to_string() }),
            )
        };
        let ports = match written {
            Ok(ports) => ports,
            Err(err) => return Err(self.record_start_failure(entry, err)),
        };
        let _ = std::fs::remove_dir_all(&paths.state_dir);
        if let Err(err) = std::fs::create_dir_all(&paths.state_dir) {
            let err = ContainerError::io("create", paths.state_dir.clone())(err);
            return Err(self.record_start_failure(entry, err));
        }
        if let Err(failure) = shim_link::spawn(&id, &paths, mode).await {
            let err = ContainerError::StartFailed {
                message: failure.message,
                exit_code: failure.exit_code,
            };
            return Err(self.record_start_failure(entry, err));
        }
        // Attach streams that were waiting get connected before the process runs.
        let waiting: Vec<_> = std::mem::take(&mut *lock(&entry.waiting_attaches));
        for (options, reply) in waiting {
            let stream = shim_link::call(&paths.socket(), &attach_request(options)).await;
            let _ = reply.send(stream);
        }
        let started = shim_link::call(&paths.socket(), &Request::Start).await;
        let pid = match started {
            Ok(stream) if stream.reply.ok => i64::from(stream.reply.pid.unwrap_or(0)),
            Ok(stream) => {
                let err = ContainerError::StartFailed {
                    message: stream.reply.message.unwrap_or_else(|| "start failed".into()),
                    exit_code: i64::from(stream.reply.exit_code.unwrap_or(125)),
                };
                return Err(self.record_start_failure(entry, err));
            }
            Err(e) => {
                // The shim is up with a created container that nobody will
                // start: kill it, so that the shim ends instead of waiting.
                let store = self.runtime_store();
                let rid = id.clone();
                let _ =
                    tokio::task::spawn_blocking(move || kiln_runtime::delete(&store, &rid, true))
                        .await;
                let err = ContainerError::Shim { id: id.clone(), message: e.to_string() };
                return Err(self.record_start_failure(entry, err));
            }
        };
        {
            let mut r = lock(&entry.record);
            r.state.status = ContainerStatus::Running;
            r.state.ports = ports;
            r.state.pid = pid;
            r.state.started_at = now_nanos();
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.oom_killed = false;
            r.state.stopped_by_user = false;
        }
        self.persist(entry)?;
        entry.events.send_modify(|p| p.starts += 1);
        self.spawn_monitor(Arc::clone(entry));
        self.spawn_health_checks(entry);
        tracing::info!(container = %id, pid, "container started");
        self.emit(entry, "start", &[]);
        Ok(true)
    }

    fn record_start_failure(&self, entry: &Entry, err: ContainerError) -> ContainerError {
        let id = lock(&entry.record).id.clone();
        // Whatever the start joined (namespace, addresses, ports) goes.
        self.networks.detach(&id);
        {
            let mut r = lock(&entry.record);
            r.state.ports.clear();
            r.state.error = err.to_string();
            if let ContainerError::StartFailed { exit_code, .. } = &err {
                r.state.exit_code = *exit_code;
            } else {
                r.state.exit_code = 128;
            }
        }
        let _ = self.persist(entry);
        let waiting: Vec<_> = std::mem::take(&mut *lock(&entry.waiting_attaches));
        drop(waiting);
        // A waiter for the next exit hears of the failure as an exit.
        entry.events.send_modify(|p| {
            p.exits += 1;
            p.exit_code = lock(&entry.record).state.exit_code;
        });
        err
    }

    /// Joins the container's networks and writes its bundle; leaves the
    /// networks again when the bundle cannot be written. Returns the ports
    /// it publishes.
    fn prepare_start(&self, entry: &Entry) -> Result<Vec<PortMapping>, ContainerError> {
        let record = lock(&entry.record).clone();
        let (image, config) = self.images.for_container(&record.image_id.to_string())?;
        let defaults = config.config.clone().unwrap_or_default();
        let joined = self.join_networks(&record, &defaults)?;
        if let Err(err) = self.write_bundle(&record, &image, &defaults, joined.as_ref()) {
            if joined.is_some() {
                self.networks.detach(&record.id);
            }
            return Err(err);
        }
        if let Some(joined) = &joined {
            self.serve_dns(&record, &joined.netns, true);
        }
        Ok(joined.map(|j| j.ports).unwrap_or_default())
    }

    /// Serves the embedded resolver to a container whose network mode is a
    /// user-defined network (Docker's rule: not on the default bridge) and,
    /// with `point`, points its resolv.conf at it. A resolver that cannot
    /// be set up leaves the host's name servers in the file.
    fn serve_dns(&self, record: &ContainerRecord, netns: &Path, point: bool) {
        if !self.networks.uses_embedded_dns(&networks::primary_name(record)) {
            return;
        }
        if let Err(err) = self.networks.serve_dns(&record.id, netns, &record.request.host.dns) {
            tracing::warn!(container = %record.id, error = %err, "cannot serve the embedded DNS; the container keeps the host's name servers");
            return;
        }
        if point {
            let text = networks::embedded_resolv_conf(&resolv_conf(&record.request.host, true));
            let path = self.paths.bundles.join(&record.id).join("resolv.conf");
            if let Err(err) = write_file(&path, text.as_bytes()) {
                tracing::warn!(container = %record.id, error = %err, "cannot point resolv.conf at the embedded DNS");
                self.networks.stop_dns(&record.id);
            }
        }
    }

    /// A bridge-network container's namespace, addresses and published
    /// ports; `None` for `host`, `none` and `container:…`.
    fn join_networks(
        &self,
        record: &ContainerRecord,
        defaults: &kiln_image::ContainerConfig,
    ) -> Result<Option<networks::Joined>, ContainerError> {
        let network = networks::primary_name(record);
        if matches!(network.as_str(), "host" | "none") || network.starts_with("container:") {
            return Ok(None);
        }
        let ports = requested_ports(&record.request, defaults)?;
        let mac = requested_mac(&record.request)?;
        let request = networks::JoinRequest {
            id: &record.id,
            name: &record.name,
            network: &network,
            ports,
            mac,
        };
        Ok(Some(self.networks.attach(&request)?))
    }

    /// For a `--network container:NAME` container about to start: NAME's
    /// network namespace, /etc files and hostname, which it shares as in
    /// Docker; `None` in other network modes. NAME must run (or be paused).
    fn shared_network(
        &self,
        record: &ContainerRecord,
    ) -> Result<Option<SharedNetwork>, ContainerError> {
        let mode = networks::primary_name(record);
        let Some(name) = mode.strip_prefix("container:") else { return Ok(None) };
        let theirs = lock(&self.find(name)?.record).clone();
        if theirs.id == record.id {
            return Err(ContainerError::JoinOwnNetwork);
        }
        match theirs.state.status {
            ContainerStatus::Restarting => {
                return Err(ContainerError::JoinRestarting { name: name.to_owned() })
            }
            status if !status.is_alive() || theirs.state.pid <= 0 => {
                return Err(ContainerError::JoinNotRunning { name: name.to_owned() })
            }
            _ => {}
        }
        // A bridge network's namespace has a name that outlives a pid;
        // `none`'s is the runtime's, and one shared in turn is another's:
        // those are reached through the process.
        let by_pid = PathBuf::from(format!("/proc/{}/ns/net", theirs.state.pid));
        let plan = match networks::primary_name(&theirs).as_str() {
            "host" => oci::NetworkPlan::Host,
            "none" => oci::NetworkPlan::Join(by_pid),
            m if m.starts_with("container:") => oci::NetworkPlan::Join(by_pid),
            _ => {
                let netns = self.networks.netns_path(&theirs.id);
                oci::NetworkPlan::Join(if netns.exists() { netns } else { by_pid })
            }
        };
        let (etc, their_hostname) = self.etc_files_of(&theirs.id)?;
        let hostname =
            their_hostname.unwrap_or_else(|| match theirs.request.config.hostname.as_str() {
                "" => theirs.id[..12].to_owned(),
                h => h.to_owned(),
            });
        Ok(Some(SharedNetwork { plan, etc, hostname }))
    }

    /// The /etc/hostname, /etc/hosts and /etc/resolv.conf a running
    /// container has, and its hostname: what its config.json binds and
    /// says. Those are its bundle's files, or, when it shares a network in
    /// turn, those of the container it shares it with (which may be gone
    /// by now: the files it has are still the right ones).
    fn etc_files_of(&self, id: &str) -> Result<(oci::EtcFiles, Option<String>), ContainerError> {
        let bundle = self.paths.bundles.join(id);
        let path = bundle.join("config.json");
        let bytes = std::fs::read(&path).map_err(ContainerError::io("read", path.clone()))?;
        let spec: kiln_runtime::spec::Spec = serde_json::from_slice(&bytes).map_err(|e| {
            ContainerError::Io { action: "decode", path, source: std::io::Error::other(e) }
        })?;
        let bound = |destination: &str, own: &str| {
            spec.mounts
                .iter()
                .find(|m| m.destination == Path::new(destination))
                .and_then(|m| m.source.clone())
                .unwrap_or_else(|| bundle.join(own))
        };
        let etc = oci::EtcFiles {
            hostname: bound("/etc/hostname", "hostname"),
            hosts: bound("/etc/hosts", "hosts"),
            resolv_conf: bound("/etc/resolv.conf", "resolv.conf"),
        };
        Ok((etc, spec.hostname.clone()))
    }

    /// Write config.json and the /etc files for a start.
    fn write_bundle(
        &self,
        record: &ContainerRecord,
        image: &kiln_image::ImageRecord,
        defaults: &kiln_image::ContainerConfig,
        joined: Option<&networks::Joined>,
    ) -> Result<(), ContainerError> {
        let bundle = self.paths.bundles.join(&record.id);
        let cid: kiln_types::ContainerId = record
            .id
            .parse()
            .map_err(|_| ContainerError::InvalidRequest { message: "bad id".into() })?;
        let snapshots = self.images.snapshots();
        let upper = snapshots.container_dirs(&cid).map(|d| d.upper);
        let layer_dirs: Vec<PathBuf> = upper
            .into_iter()
            .chain(image.chain_ids.iter().rev().map(|c| snapshots.layer_dir(c)))
            .collect();
        let read = |path: &str| -> Option<String> {
            layer_dirs.iter().find_map(|dir| std::fs::read_to_string(dir.join(path)).ok())
        };
        let user_spec = match record.request.config.user.as_str() {
            "" => defaults.user.clone().unwrap_or_default(),
            u => u.to_owned(),
        };
        let user = users::resolve(&user_spec, &record.request.host.group_add, &read)?;
        let shared = self.shared_network(record)?;
        let hostname = match (&shared, record.request.config.hostname.as_str()) {
            (Some(shared), _) => shared.hostname.clone(),
            (None, "") => record.id[..12].to_owned(),
            (None, h) => h.to_owned(),
        };
        let network = match (record.request.host.network_mode.as_str(), joined, &shared) {
            (_, _, Some(shared)) => shared.plan.clone(),
            (_, Some(joined), None) => oci::NetworkPlan::Join(joined.netns.clone()),
            ("host", None, None) => oci::NetworkPlan::Host,
            _ => oci::NetworkPlan::Private,
        };
        let endpoints = joined.map_or(&[][..], |j| j.endpoints.as_slice());
        // Sharing another container's network is sharing its files too.
        let etc = match shared.map(|s| s.etc) {
            Some(theirs) => theirs,
            None => {
                let etc = oci::EtcFiles {
                    hostname: bundle.join("hostname"),
                    hosts: bundle.join("hosts"),
                    resolv_conf: bundle.join("resolv.conf"),
                };
                write_file(&etc.hostname, format!("{hostname}\n").as_bytes())?;
                write_file(
                    &etc.hosts,
                    hosts_file(
                        &hostname,
                        &record.request.host.extra_hosts,
                        network == oci::NetworkPlan::Host,
                        endpoints,
                        self.networks.host_gateway().as_deref(),
                    )
                    .as_bytes(),
                )?;
                write_file(
                    &etc.resolv_conf,
                    resolv_conf(&record.request.host, joined.is_some()).as_bytes(),
                )?;
                etc
            }
        };
        let mut volume_mounts = Vec::new();
        for m in &record.mounts {
            let mount = match m.kind.as_str() {
                "bind" => {
                    let mut options = vec!["rbind".to_owned(), m.propagation.clone()];
                    if !m.rw {
                        options.push("ro".to_owned());
                    }
                    kiln_runtime::spec::Mount {
                        destination: m.destination.clone().into(),
                        kind: Some("bind".into()),
                        source: Some(m.source.clone().into()),
                        options,
                        ..Default::default()
                    }
                }
                "volume" => {
                    let volume = self.volumes.get(&m.name).map_err(volume_err)?;
                    let data = self.volumes.prepare(&volume).map_err(volume_err)?;
                    self.volumes.mounted(&volume, &record.id, &m.destination, m.rw, &m.propagation);
                    let mut options = vec!["rbind".to_owned(), "rprivate".to_owned()];
                    if !m.rw {
                        options.push("ro".to_owned());
                    }
                    kiln_runtime::spec::Mount {
                        destination: m.destination.clone().into(),
                        kind: Some("bind".into()),
                        source: Some(data),
                        options,
                        ..Default::default()
                    }
                }
                "tmpfs" => {
                    let request =
                        record.request.host.mounts.iter().find(|r| r.target == m.destination);
                    let mut options =
                        vec!["nosuid".to_owned(), "nodev".to_owned(), "noexec".to_owned()];
                    if let Some(r) = request {
                        if r.tmpfs_size > 0 {
                            options.push(format!("size={}", r.tmpfs_size));
                        }
                        if r.tmpfs_mode > 0 {
                            options.push(format!("mode={:o}", r.tmpfs_mode));
                        }
                    }
                    if !m.rw {
                        options.push("ro".to_owned());
                    }
                    kiln_runtime::spec::Mount {
                        destination: m.destination.clone().into(),
                        kind: Some("tmpfs".into()),
                        source: Some("tmpfs".into()),
                        options,
                        ..Default::default()
                    }
                }
                _ => continue,
            };
            volume_mounts.push(mount);
        }
        let devices = host_devices(&record.request.host.devices)?;
        let inputs = oci::SpecInputs {
            record,
            image: defaults,
            user,
            hostname,
            etc: Some(etc),
            network,
            default_shm: self.default_shm_size(record.request.host.resources.memory),
            cgroups_path: cgroups_path(record),
            devices,
            volume_mounts,
        };
        let mut spec = oci::build_spec(&inputs)?;
        oci::add_device_rules(&mut spec, &record.request.host);
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| ContainerError::Io {
            action: "encode",
            path: bundle.join("config.json"),
            source: std::io::Error::other(e),
        })?;
        write_file(&bundle.join("config.json"), &json)
    }

    // ---- exits ----------------------------------------------------------

    fn spawn_monitor(self: &Arc<Self>, entry: Arc<Entry>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let id = lock(&entry.record).id.clone();
            let paths = this.shim_paths(&id);
            let exit = match shim_link::call(&paths.socket(), &Request::Wait).await {
                Ok(mut stream) => loop {
                    match stream.reader.next().await {
                        Ok(Some(ShimOutput::Exit(record))) => break Some(record),
                        Ok(Some(_)) => continue,
                        Ok(None) | Err(_) => break None,
                    }
                },
                Err(_) => None,
            };
            let exit = match exit {
                Some(exit) => exit,
                None => match read_exit_file(&paths.exit_file()) {
                    Some(exit) => exit,
                    None => {
                        tracing::warn!(container = %id, "the shim is gone without an exit record; killing what is left");
                        let runtime_root = paths.runtime_root.clone();
                        let cid = id.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            let store = kiln_runtime::Store::new(runtime_root);
                            let _ = kiln_runtime::delete(&store, &cid, true);
                        })
                        .await;
                        let _ = nix::mount::umount2(
                            &paths.bundle.join("rootfs"),
                            nix::mount::MntFlags::MNT_DETACH,
                        );
                        ExitRecord {
                            exit_code: 137,
                            oom_killed: false,
                            finished_at: String::new(),
                            pid: 0,
                        }
                    }
                },
            };
            this.on_exit(&entry, &exit).await;
        });
    }

    async fn on_exit(self: &Arc<Self>, entry: &Arc<Entry>, exit: &ExitRecord) {
        let (id, auto_remove) = {
            let mut r = lock(&entry.record);
            if !r.state.status.is_alive() {
                return;
            }
            r.state.status = ContainerStatus::Exited;
            r.state.exit_code = i64::from(exit.exit_code);
            r.state.oom_killed = exit.oom_killed;
            r.state.pid = 0;
            r.state.ports.clear();
            r.state.finished_at =
                kiln_shim::logfile::parse_time(&exit.finished_at).unwrap_or_else(now_nanos);
            let restarting = entry.restarting.load(std::sync::atomic::Ordering::SeqCst);
            (r.id.clone(), r.request.host.auto_remove && !restarting)
        };
        // A `--rm` container is deleted next: no need to record its exit.
        if !auto_remove {
            if let Err(err) = self.persist(entry) {
                tracing::error!(container = %id, error = %err, "cannot record the exit");
            }
        }
        tracing::info!(container = %id, exit_code = exit.exit_code, "container exited");
        // Off its networks before anyone waiting hears of the exit: a
        // restart that follows finds the namespace, veths and ports free.
        let networks = Arc::clone(&self.networks);
        let released = id.clone();
        let _ = tokio::task::spawn_blocking(move || networks.detach(&released)).await;
        let volumes: Vec<String> = lock(&entry.record)
            .mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .map(|m| m.name.clone())
            .collect();
        for name in volumes {
            self.volumes.unmounted(&name, &id);
        }
        if exit.oom_killed {
            self.emit(entry, "oom", &[]);
        }
        self.emit(entry, "die", &[("exitCode", exit.exit_code.to_string())]);
        entry.events.send_modify(|p| {
            p.exits += 1;
            p.exit_code = i64::from(exit.exit_code);
        });
        let _ = std::fs::remove_dir_all(self.paths.states.join(&id));
        if auto_remove {
            if let Err(err) = self.remove_entry(entry, true, true).await {
                tracing::warn!(container = %id, error = %err, "cannot auto-remove");
            }
            return;
        }
        self.maybe_restart(entry);
    }

    /// Restart an exited container when its policy says so, after Docker's
    /// back-off: 100 ms, doubling while it keeps failing within 10 s of
    /// starting, at most a minute.
    fn maybe_restart(self: &Arc<Self>, entry: &Arc<Entry>) {
        let (id, delay) = {
            let mut r = lock(&entry.record);
            let s = &r.state;
            if !restart::should_restart(
                &r.request.host.restart_policy,
                s.exit_code,
                s.restart_count,
                s.stopped_by_user,
            ) {
                return;
            }
            let ran =
                Duration::from_nanos(u64::try_from(s.finished_at - s.started_at).unwrap_or(0));
            let delay = {
                let mut backoff = lock(&entry.backoff);
                *backoff = restart::next_delay(*backoff, ran);
                *backoff
            };
            r.state.status = ContainerStatus::Restarting;
            r.state.restart_count += 1;
            (r.id.clone(), delay)
        };
        let _ = self.persist(entry);
        tracing::info!(container = %id, delay_ms = delay.as_millis() as u64, "restarting by policy");
        let this = Arc::clone(self);
        let entry = Arc::clone(entry);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _op = entry.ops.lock().await;
            let still_wanted = lock(&this.entries).contains_key(&id)
                && lock(&entry.record).state.status == ContainerStatus::Restarting;
            if !still_wanted {
                return;
            }
            if let Err(err) = this.start_locked(&entry).await {
                tracing::warn!(container = %id, error = %err, "restart failed");
                lock(&entry.record).state.status = ContainerStatus::Exited;
                let _ = this.persist(&entry);
            }
        });
    }

    /// After a daemon start: start the containers whose policy brings them
    /// back (`always`, and `unless-stopped` ones the user did not stop).
    async fn restart_on_boot(self: &Arc<Self>) {
        let wanted: Vec<Arc<Entry>> = lock(&self.entries)
            .values()
            .filter(|e| {
                let r = lock(&e.record);
                !r.state.status.is_alive()
                    && restart::starts_on_boot(
                        &r.request.host.restart_policy,
                        r.state.status,
                        r.state.stopped_by_user,
                    )
            })
            .cloned()
            .collect();
        for entry in wanted {
            let id = lock(&entry.record).id.clone();
            let _op = entry.ops.lock().await;
            if let Err(err) = self.start_locked(&entry).await {
                tracing::warn!(container = %id, error = %err, "cannot start by restart policy");
            }
        }
    }

    /// Publish a container event with Docker's attributes: name, image,
    /// the container's labels, and `extra`.
    fn emit(&self, entry: &Entry, action: &str, extra: &[(&str, String)]) {
        let (id, mut attributes) = {
            let r = lock(&entry.record);
            let mut attributes = r.request.config.labels.clone();
            attributes.insert("name".into(), r.name.clone());
            attributes.insert("image".into(), r.request.image.clone());
            (r.id.clone(), attributes)
        };
        for (k, v) in extra {
            attributes.insert((*k).to_owned(), v.clone());
        }
        self.events.publish("container", action, &id, attributes);
    }

    // ---- health ---------------------------------------------------------

    /// The container's health, when it has a check.
    pub fn health(&self, name: &str) -> Option<health::HealthState> {
        let entry = self.find(name).ok()?;
        let state = lock(&entry.health).clone();
        state
    }

    /// Probe a container that has a health check, for as long as this run
    /// of it lasts.
    fn spawn_health_checks(self: &Arc<Self>, entry: &Arc<Entry>) {
        let (id, configured, image_id) = {
            let r = lock(&entry.record);
            (r.id.clone(), r.request.config.healthcheck.clone(), r.image_id.to_string())
        };
        let image_check = self
            .images
            .for_container(&image_id)
            .ok()
            .and_then(|(_, config)| config.config.and_then(|c| c.healthcheck));
        let Some(check) = health::effective(configured.as_ref(), image_check.as_ref()) else {
            *lock(&entry.health) = None;
            return;
        };
        let Some(args) = health::probe_args(&check) else { return };
        let timing = health::timing(&check);
        *lock(&entry.health) = Some(health::HealthState::default());
        let starts = entry.events.borrow().starts;
        let this = Arc::clone(self);
        let entry = Arc::clone(entry);
        tokio::spawn(async move {
            let begun = std::time::Instant::now();
            loop {
                tokio::time::sleep(timing.interval).await;
                let current = *entry.events.borrow();
                let running = lock(&entry.record).state.status == ContainerStatus::Running;
                if current.starts != starts || current.removed || !running {
                    break;
                }
                let result = this.probe(&id, &args, timing.timeout).await;
                let in_start_period = begun.elapsed() < timing.start_period;
                let mut guard = lock(&entry.health);
                if let Some(state) = guard.as_mut() {
                    let before = state.status;
                    health::record(state, result, in_start_period, timing.retries);
                    if state.status != before {
                        tracing::info!(container = %id, health = state.status.as_str(), "health_status");
                        let action = format!("health_status: {}", state.status.as_str());
                        drop(guard);
                        this.emit(&entry, &action, &[]);
                        continue;
                    }
                }
            }
        });
    }

    /// Run one probe in the container: its exit code and output, or -1
    /// when it timed out or could not run.
    async fn probe(
        self: &Arc<Self>,
        id: &str,
        args: &[String],
        timeout: Duration,
    ) -> health::ProbeResult {
        let start = now_nanos();
        let failed =
            |output: String| health::ProbeResult { start, end: now_nanos(), exit_code: -1, output };
        let request = ExecRequest {
            cmd: args.to_vec(),
            attach_stdout: true,
            attach_stderr: true,
            ..ExecRequest::default()
        };
        let process = {
            let this = Arc::clone(self);
            let id = id.to_owned();
            match tokio::task::spawn_blocking(move || this.exec_process(&id, &request, None)).await
            {
                Ok(Ok(process)) => process,
                Ok(Err(err)) => return failed(err.to_string()),
                Err(err) => return failed(err.to_string()),
            }
        };
        let request = Request::Exec { process: Box::new(process), tty: false, stdin: false };
        let mut stream = match shim_link::call(&self.shim_paths(id).socket(), &request).await {
            Ok(stream) if stream.reply.ok => stream,
            Ok(stream) => return failed(stream.reply.message.unwrap_or_default()),
            Err(err) => return failed(err.to_string()),
        };
        let pid = stream.reply.pid.unwrap_or(0);
        let mut output = Vec::new();
        let outcome = tokio::time::timeout(timeout, async {
            loop {
                match stream.reader.next().await {
                    Ok(Some(ShimOutput::Stdout(b) | ShimOutput::Stderr(b))) => {
                        let room = health::MAX_OUTPUT.saturating_sub(output.len());
                        output.extend_from_slice(&b[..b.len().min(room)]);
                    }
                    Ok(Some(ShimOutput::Exit(record))) => break i64::from(record.exit_code),
                    Ok(None) | Err(_) => break -1,
                }
            }
        })
        .await;
        let output = String::from_utf8_lossy(&output).into_owned();
        match outcome {
            Ok(code) => health::ProbeResult { start, end: now_nanos(), exit_code: code, output },
            Err(_) => {
                if pid > 0 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                failed(format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64()))
            }
        }
    }

    // ---- stop, kill, pause ---------------------------------------------

    fn runtime_store(&self) -> kiln_runtime::Store {
        kiln_runtime::Store::new(self.paths.runtime_root.clone())
    }

    fn signal(&self, id: &str, signal: &str, all: bool) -> Result<(), ContainerError> {
        kiln_runtime::kill(&self.runtime_store(), id, signal, all)
            .map_err(|source| ContainerError::Runtime { id: id.to_owned(), source })
    }

    /// `POST /containers/{id}/stop`. `Ok(false)`: it was not running (304).
    pub async fn stop(
        self: &Arc<Self>,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<bool, ContainerError> {
        let entry = self.find(name)?;
        let _op = entry.ops.lock().await;
        let stopped = self.stop_locked(&entry, signal, timeout).await?;
        if stopped {
            self.emit(&entry, "stop", &[]);
        }
        Ok(stopped)
    }

    async fn stop_locked(
        &self,
        entry: &Arc<Entry>,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<bool, ContainerError> {
        let (id, status, stop_signal, stop_timeout) = {
            let mut r = lock(&entry.record);
            r.state.stopped_by_user = true;
            let image_signal = None::<String>;
            (
                r.id.clone(),
                r.state.status,
                signal
                    .map(str::to_owned)
                    .or_else(|| r.request.config.stop_signal.clone())
                    .or(image_signal),
                timeout.or(r.request.config.stop_timeout).unwrap_or(DEFAULT_STOP_TIMEOUT),
            )
        };
        if status == ContainerStatus::Restarting {
            // Waiting for its next start: just stay down.
            lock(&entry.record).state.status = ContainerStatus::Exited;
            self.persist(entry)?;
            return Ok(true);
        }
        if !status.is_alive() {
            return Ok(false);
        }
        let mut rx = entry.events.subscribe();
        let exits = rx.borrow().exits;
        let stop_signal = stop_signal.unwrap_or_else(|| "SIGTERM".to_owned());
        if let Err(err) = self.signal(&id, &stop_signal, false) {
            tracing::debug!(container = %id, error = %err, "stop signal not delivered");
        }
        if status == ContainerStatus::Paused {
            let _ = kiln_runtime::resume(&self.runtime_store(), &id);
        }
        let wait = Duration::from_secs(u64::try_from(stop_timeout.max(0)).unwrap_or(10));
        let exited = stop_timeout >= 0
            && tokio::time::timeout(wait, wait_exits(&mut rx, exits)).await.is_ok();
        if !exited {
            tracing::info!(container = %id, "stop timed out; killing");
            let _ = self.signal(&id, "SIGKILL", true);
            let _ = tokio::time::timeout(Duration::from_secs(10), wait_exits(&mut rx, exits)).await;
        }
        Ok(true)
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(&self, name: &str, signal: Option<&str>) -> Result<(), ContainerError> {
        let entry = self.find(name)?;
        let (id, status) = entry.id_and_status();
        if !status.is_alive() {
            return Err(ContainerError::NotRunning { id });
        }
        // docker-compat: a killed container counts as stopped by the user,
        // so its restart policy does not bring it back.
        lock(&entry.record).state.stopped_by_user = true;
        let signal = signal.filter(|s| !s.is_empty()).unwrap_or("SIGKILL");
        kiln_runtime::parse_signal(signal).map_err(|_| ContainerError::InvalidRequest {
            message: format!("Invalid signal: {signal}"),
        })?;
        self.signal(&id, signal, false)?;
        self.emit(&entry, "kill", &[("signal", signal_number(signal))]);
        if status == ContainerStatus::Paused && matches!(signal, "SIGKILL" | "KILL" | "9") {
            let _ = kiln_runtime::resume(&self.runtime_store(), &id);
        }
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(
        self: &Arc<Self>,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), ContainerError> {
        let entry = self.find(name)?;
        let _op = entry.ops.lock().await;
        // docker-compat: a `--rm` container survives its restart's stop.
        entry.restarting.store(true, std::sync::atomic::Ordering::SeqCst);
        let stopped = self.stop_locked(&entry, signal, timeout).await;
        entry.restarting.store(false, std::sync::atomic::Ordering::SeqCst);
        stopped?;
        self.start_locked(&entry).await?;
        self.emit(&entry, "restart", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/pause`.
    pub fn pause(&self, name: &str) -> Result<(), ContainerError> {
        let entry = self.find(name)?;
        let (id, status) = entry.id_and_status();
        match status {
            ContainerStatus::Running => {}
            ContainerStatus::Paused => {
                return Err(ContainerError::InvalidRequest {
                    message: format!("Container {id} is already paused"),
                })
            }
            _ => return Err(ContainerError::NotRunning { id }),
        }
        kiln_runtime::pause(&self.runtime_store(), &id)
            .map_err(|source| ContainerError::Runtime { id: id.clone(), source })?;
        lock(&entry.record).state.status = ContainerStatus::Paused;
        self.emit(&entry, "pause", &[]);
        self.persist(&entry)
    }

    /// `POST /containers/{id}/unpause`.
    pub fn unpause(&self, name: &str) -> Result<(), ContainerError> {
        let entry = self.find(name)?;
        let (id, status) = entry.id_and_status();
        if status != ContainerStatus::Paused {
            return Err(ContainerError::NotPaused { id });
        }
        kiln_runtime::resume(&self.runtime_store(), &id)
            .map_err(|source| ContainerError::Runtime { id: id.clone(), source })?;
        lock(&entry.record).state.status = ContainerStatus::Running;
        self.emit(&entry, "unpause", &[]);
        self.persist(&entry)
    }

    // ---- wait, remove ---------------------------------------------------

    /// `POST /containers/{id}/wait`: resolves the container now, then
    /// waits. Returns the exit code.
    pub fn wait(
        &self,
        name: &str,
        condition: WaitCondition,
    ) -> Result<impl std::future::Future<Output = i64> + Send + 'static, ContainerError> {
        let entry = self.find(name)?;
        let mut rx = entry.events.subscribe();
        let (status, code) = {
            let r = lock(&entry.record);
            (r.state.status, r.state.exit_code)
        };
        let start = *rx.borrow();
        Ok(async move {
            match condition {
                WaitCondition::NotRunning if !status.is_alive() => code,
                WaitCondition::NotRunning | WaitCondition::NextExit => {
                    wait_exits(&mut rx, start.exits).await;
                    rx.borrow().exit_code
                }
                WaitCondition::Removed => {
                    loop {
                        if rx.borrow().removed || rx.changed().await.is_err() {
                            break;
                        }
                    }
                    rx.borrow().exit_code
                }
            }
        })
    }

    /// `DELETE /containers/{id}`.
    /// With `volumes`, its anonymous volumes go too (`rm -v`); named
    /// volumes always stay.
    pub async fn remove(
        self: &Arc<Self>,
        name: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), ContainerError> {
        let entry = self.find(name)?;
        self.remove_entry(&entry, force, volumes).await
    }

    async fn remove_entry(
        &self,
        entry: &Arc<Entry>,
        force: bool,
        volumes: bool,
    ) -> Result<(), ContainerError> {
        let _op = entry.ops.lock().await;
        let (id, status) = entry.id_and_status();
        if lock(&self.entries).get(&id).is_none() {
            return Ok(());
        }
        if status.is_alive() {
            if !force {
                return Err(ContainerError::RemoveRunning { id });
            }
            let mut rx = entry.events.subscribe();
            let exits = rx.borrow().exits;
            let _ = self.signal(&id, "SIGKILL", true);
            if status == ContainerStatus::Paused {
                let _ = kiln_runtime::resume(&self.runtime_store(), &id);
            }
            if tokio::time::timeout(Duration::from_secs(10), wait_exits(&mut rx, exits))
                .await
                .is_err()
            {
                tracing::warn!(container = %id, "did not exit after SIGKILL; removing anyway");
                let store = self.runtime_store();
                let rid = id.clone();
                let _ =
                    tokio::task::spawn_blocking(move || kiln_runtime::delete(&store, &rid, true))
                        .await;
            }
        }
        lock(&entry.record).state.status = ContainerStatus::Removing;
        self.store.delete(&id)?;
        lock(&self.entries).remove(&id);
        // Normally its exit did this; not when the kill above timed out.
        self.networks.detach(&id);
        self.networks.forget(&id);
        lock(&self.execs).retain(|_, e| e.container_id != id);
        let this_paths = self.shim_paths(&id);
        let _ = nix::mount::umount2(
            &this_paths.bundle.join("rootfs"),
            nix::mount::MntFlags::MNT_DETACH,
        );
        let doomed = self.detach_files(&id);
        let snapshots = self.images.snapshots().clone();
        tokio::task::spawn_blocking(move || {
            for path in doomed {
                snapshots.remove_detached(&path);
            }
        });
        if volumes {
            let anonymous: Vec<String> = lock(&entry.record)
                .mounts
                .iter()
                .filter(|m| m.kind == "volume")
                .map(|m| m.name.clone())
                .collect();
            for name in anonymous {
                let is_anonymous = self.volumes.get(&name).is_ok_and(|v| v.is_anonymous());
                if is_anonymous {
                    if let Err(err) = self.volumes.remove(&name, true, self) {
                        tracing::warn!(container = %id, volume = %name, error = %err, "cannot remove an anonymous volume");
                    }
                }
            }
        }
        entry.events.send_modify(|p| p.removed = true);
        tracing::info!(container = %id, "container removed");
        self.emit(entry, "destroy", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/rename`.
    pub fn rename(&self, name: &str, new_name: &str) -> Result<(), ContainerError> {
        let entry = self.find(name)?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if !names::is_valid(new_name) {
            return Err(ContainerError::InvalidName { name: new_name.to_owned() });
        }
        {
            let entries = lock(&self.entries);
            if let Some(other) = entries.values().find(|e| lock(&e.record).name == new_name) {
                if !Arc::ptr_eq(other, &entry) {
                    return Err(ContainerError::NameInUse {
                        name: new_name.to_owned(),
                        id: lock(&other.record).id.clone(),
                    });
                }
            }
            let old = std::mem::replace(&mut lock(&entry.record).name, new_name.to_owned());
            drop(entries);
            self.emit(&entry, "rename", &[("oldName", format!("/{old}"))]);
        }
        self.persist(&entry)
    }

    /// `POST /containers/prune`: remove stopped containers. Returns their ids.
    pub async fn prune(self: &Arc<Self>, labels: &[String]) -> Result<Vec<String>, ContainerError> {
        let stopped: Vec<Arc<Entry>> = lock(&self.entries)
            .values()
            .filter(|e| {
                let r = lock(&e.record);
                !r.state.status.is_alive()
                    && labels.iter().all(|l| has_label(&r.request.config.labels, l))
            })
            .cloned()
            .collect();
        let mut removed = Vec::new();
        for entry in stopped {
            let id = lock(&entry.record).id.clone();
            if self.remove_entry(&entry, false, false).await.is_ok() {
                removed.push(id);
            }
        }
        Ok(removed)
    }

    // ---- list, inspect --------------------------------------------------

    /// One container's record.
    pub fn inspect(&self, name: &str) -> Result<ContainerRecord, ContainerError> {
        Ok(lock(&self.find(name)?.record).clone())
    }

    /// Paths inspect shows.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.shim_paths(id).log_path
    }

    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.paths.bundles.join(id)
    }

    /// Exec ids of a container.
    pub fn exec_ids(&self, id: &str) -> Vec<String> {
        lock(&self.execs).values().filter(|e| e.container_id == id).map(|e| e.id.clone()).collect()
    }

    /// `GET /containers/json`: newest first.
    ///
    /// Filters, as Docker's: `status`, `name`, `label`, `ancestor`,
    /// `exited`, `id`, `before`, `since`, `health` (`starting`, `healthy`,
    /// `unhealthy`, or `none` for containers without a check), `volume` (a
    /// volume name, bind source or mount destination) and `is-task` (no
    /// container here is a swarm task). Network and port filters wait for
    /// networks.
    pub fn list(&self, options: &ListOptions) -> Result<Vec<ContainerRecord>, ContainerError> {
        let mut rows: Vec<(ContainerRecord, &'static str)> = lock(&self.entries)
            .values()
            .map(|e| {
                let health = lock(&e.health).as_ref().map_or("none", |h| h.status.as_str());
                (lock(&e.record).clone(), health)
            })
            .collect();
        rows.sort_by_key(|(r, _)| std::cmp::Reverse(r.created));
        let filters = &options.filters;
        for key in filters.keys() {
            if !matches!(
                key.as_str(),
                "status"
                    | "name"
                    | "label"
                    | "ancestor"
                    | "exited"
                    | "id"
                    | "before"
                    | "since"
                    | "health"
                    | "volume"
                    | "is-task"
            ) {
                return Err(ContainerError::InvalidRequest {
                    message: format!("invalid filter '{key}'"),
                });
            }
        }
        for status in filters.get("status").into_iter().flatten() {
            if ContainerStatus::parse(status).is_none() {
                return Err(ContainerError::InvalidRequest {
                    message: format!("Invalid filter 'status={status}'"),
                });
            }
        }
        for health in filters.get("health").into_iter().flatten() {
            if !matches!(health.as_str(), "starting" | "healthy" | "unhealthy" | "none") {
                return Err(ContainerError::InvalidRequest {
                    message: format!("Unrecognised filter value for health: {health}"),
                });
            }
        }
        // docker-compat: `true` wins over `false`; the message shows the
        // values as Go prints a slice.
        let wants_tasks = match filters.get("is-task").filter(|v| !v.is_empty()) {
            None => None,
            Some(v) if v.iter().any(|x| x == "true") => Some(true),
            Some(v) if v.iter().any(|x| x == "false") => Some(false),
            Some(v) => {
                return Err(ContainerError::InvalidRequest {
                    message: format!("invalid filter 'is-task=[{}]'", v.join(" ")),
                })
            }
        };
        let ancestors: Vec<Digest> = filters
            .get("ancestor")
            .into_iter()
            .flatten()
            .filter_map(|a| self.images.for_container(a).ok().map(|(img, _)| img.id))
            .collect();
        let wanted_ancestor = filters.contains_key("ancestor");
        let bound = |key: &str| -> Option<i64> {
            filters
                .get(key)
                .and_then(|v| v.first())
                .and_then(|n| self.find(n).ok())
                .map(|e| lock(&e.record).created)
        };
        let (before, since) = (bound("before"), bound("since"));
        let all = options.all
            || filters.contains_key("status")
            || filters.contains_key("exited")
            || options.limit > 0;
        let mut out: Vec<ContainerRecord> = rows
            .into_iter()
            .filter(|(_, health)| any_or_empty(filters.get("health"), |h| h == health))
            .map(|(r, _)| r)
            .filter(|_| wants_tasks != Some(true))
            .filter(|r| {
                any_or_empty(filters.get("volume"), |v| {
                    r.mounts.iter().any(|m| {
                        let name = if m.name.is_empty() { &m.source } else { &m.name };
                        name == v || m.destination == *v
                    })
                })
            })
            .filter(|r| all || r.state.status.is_alive())
            .filter(|r| any_or_empty(filters.get("status"), |s| s == r.state.status.as_str()))
            .filter(|r| {
                any_or_empty(filters.get("name"), |n| r.name.contains(n.trim_start_matches('/')))
            })
            .filter(|r| any_or_empty(filters.get("id"), |i| r.id.starts_with(i.as_str())))
            .filter(|r| {
                filters
                    .get("label")
                    .into_iter()
                    .flatten()
                    .all(|l| has_label(&r.request.config.labels, l))
            })
            .filter(|r| {
                any_or_empty(filters.get("exited"), |code| {
                    r.state.status == ContainerStatus::Exited
                        && code.parse::<i64>().is_ok_and(|c| c == r.state.exit_code)
                })
            })
            .filter(|r| !wanted_ancestor || ancestors.contains(&r.image_id))
            .filter(|r| before.is_none_or(|b| r.created < b))
            .filter(|r| since.is_none_or(|s| r.created > s))
            .collect();
        if options.limit > 0 {
            out.truncate(options.limit);
        }
        Ok(out)
    }

    /// `GET /containers/{id}/top`: the pids of the container.
    pub fn pids(&self, name: &str) -> Result<Vec<i32>, ContainerError> {
        let entry = self.find(name)?;
        let (id, status) = entry.id_and_status();
        if !status.is_alive() {
            return Err(ContainerError::NotRunning { id });
        }
        kiln_runtime::pids(&self.runtime_store(), &id)
            .map_err(|source| ContainerError::Runtime { id, source })
    }

    /// `GET /containers/{id}/stats`: one sample of the container's usage,
    /// with the host's CPU time beside it (zeros for a stopped container).
    pub fn stats(&self, name: &str) -> Result<StatsSample, ContainerError> {
        let entry = self.find(name)?;
        let (id, container_name, alive) = {
            let r = lock(&entry.record);
            (r.id.clone(), r.name.clone(), r.state.status.is_alive())
        };
        let cgroup = if alive {
            self.runtime_store().load(&id).ok().map(|state| state.cgroup.stats())
        } else {
            None
        };
        Ok(StatsSample {
            id,
            name: container_name,
            read: now_nanos(),
            cgroup: cgroup.unwrap_or_default(),
            system_cpu: system_cpu_nanos(),
            online_cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        })
    }

    /// `GET /containers/{id}/changes`: what the container changed in its
    /// writable layer, sorted by path.
    pub fn changes(&self, name: &str) -> Result<Vec<kiln_snapshot::Change>, ContainerError> {
        let entry = self.find(name)?;
        let (id, image_id) = {
            let r = lock(&entry.record);
            (r.id.clone(), r.image_id.to_string())
        };
        let cid: kiln_types::ContainerId = id
            .parse()
            .map_err(|_| ContainerError::InvalidRequest { message: format!("bad id {id}") })?;
        let snapshots = self.images.snapshots();
        let Some(dirs) = snapshots.container_dirs(&cid) else { return Ok(Vec::new()) };
        let (image, _) = self.images.for_container(&image_id)?;
        let lowers: Vec<PathBuf> = image.chain_ids.iter().map(|c| snapshots.layer_dir(c)).collect();
        let refs: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
        let all = kiln_snapshot::changes(&dirs.upper, &refs);
        // docker-compat: mount points the runtime made (/proc, /etc/hosts,
        // volume targets…) are not the container's changes.
        let mut targets: Vec<String> = kiln_runtime::template::default_mounts()
            .iter()
            .map(|m| m.destination.display().to_string())
            .chain(["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"].map(str::to_owned))
            .collect();
        {
            let r = lock(&entry.record);
            targets.extend(r.mounts.iter().map(|m| m.destination.clone()));
            targets.extend(r.request.host.tmpfs.keys().cloned());
        }
        let kept: Vec<kiln_snapshot::Change> =
            all.iter().filter(|c| !targets.contains(&c.path)).cloned().collect();
        let is_parent = |dir: &str, path: &str| path.starts_with(&format!("{dir}/"));
        Ok(kept
            .iter()
            .filter(|c| {
                // An added directory that only holds mount points goes too.
                let holds_target = targets.iter().any(|t| is_parent(&c.path, t));
                let holds_change = kept.iter().any(|o| is_parent(&c.path, &o.path));
                c.kind != kiln_snapshot::ChangeKind::Added || !holds_target || holds_change
            })
            .cloned()
            .collect())
    }

    /// Bytes the container wrote (its writable layer), and those plus its
    /// image's (`ps -s`: `SizeRw`, `SizeRootFs`). Zeros when unknown.
    pub fn sizes(&self, id: &str) -> (i64, i64) {
        let Ok(entry) = self.find(id) else { return (0, 0) };
        let (id, image_id) = {
            let r = lock(&entry.record);
            (r.id.clone(), r.image_id.to_string())
        };
        let rw = id
            .parse::<kiln_types::ContainerId>()
            .ok()
            .and_then(|cid| self.images.snapshots().container_dirs(&cid))
            .map_or(0, |dirs| tree_size(&dirs.upper));
        let image = self.images.inspect(&image_id).map_or(0, |d| d.size);
        let rw = i64::try_from(rw).unwrap_or(i64::MAX);
        (rw, rw.saturating_add(i64::try_from(image).unwrap_or(i64::MAX)))
    }

    /// Run `op` on the container's filesystem, for `docker cp`: `op` gets
    /// the directory to resolve in, the path inside it and the container as
    /// it was named (for messages). A path inside a volume or bind goes to that mount's source; the
    /// rootfs of a stopped container is mounted for the time of `op`.
    pub fn with_filesystem<R>(
        &self,
        name: &str,
        path: &str,
        op: impl FnOnce(&Path, &str, &str) -> Result<R, archive::ArchiveError>,
    ) -> Result<R, ContainerError> {
        let entry = self.find(name)?;
        // Not while it starts or stops: the rootfs mount is the shim's then.
        let _op = entry.ops.blocking_lock();
        let (id, alive, mounts) = {
            let r = lock(&entry.record);
            (r.id.clone(), r.state.status.is_alive(), r.mounts.clone())
        };
        let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        // docker-compat: errors name the container as the user did.
        let run = |root: &Path, inner: &str| op(root, inner, name).map_err(ContainerError::Archive);
        let covering = mounts
            .iter()
            .filter(|m| m.kind != "tmpfs")
            .filter(|m| {
                let d = m.destination.trim_end_matches('/');
                path == d || path.starts_with(&format!("{d}/"))
            })
            .max_by_key(|m| m.destination.len());
        if let Some(m) = covering {
            let rest = &path[m.destination.trim_end_matches('/').len()..];
            let inner = if rest.is_empty() { "/" } else { rest };
            return run(Path::new(&m.source), inner);
        }
        let rootfs = self.paths.bundles.join(&id).join("rootfs");
        if alive {
            return run(&rootfs, &path);
        }
        let spec_path = self.paths.bundles.join(&id).join("kiln-rootfs.json");
        let text =
            std::fs::read(&spec_path).map_err(ContainerError::io("read", spec_path.clone()))?;
        let spec: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| ContainerError::Io {
                action: "read",
                path: spec_path.clone(),
                source: std::io::Error::other(e),
            })?;
        let fstype = spec["fstype"].as_str().unwrap_or("overlay").to_owned();
        let source = spec["source"].as_str().unwrap_or("overlay").to_owned();
        let mut options: Vec<String> = spec["options"]
            .as_array()
            .map(|a| a.iter().filter_map(|o| o.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        // A short-lived mount for a copy: the plain kind is fine.
        if options.iter().any(|o| o == kiln_shim::VOLATILE) {
            kiln_shim::clear_volatile_mark(&options);
            options.retain(|o| o != kiln_shim::VOLATILE);
        }
        std::fs::create_dir_all(&rootfs).map_err(ContainerError::io("create", rootfs.clone()))?;
        let mounted = if fstype == "bind" {
            let ro = options.iter().any(|o| o == "ro");
            let mut flags = nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC;
            if ro {
                flags |= nix::mount::MsFlags::MS_RDONLY;
            }
            nix::mount::mount(Some(source.as_str()), &rootfs, None::<&str>, flags, None::<&str>)
        } else {
            let data = options.join(",");
            nix::mount::mount(
                Some(source.as_str()),
                &rootfs,
                Some(fstype.as_str()),
                nix::mount::MsFlags::empty(),
                Some(data.as_str()),
            )
        };
        mounted.map_err(|e| ContainerError::Io {
            action: "mount",
            path: rootfs.clone(),
            source: e.into(),
        })?;
        let result = run(&rootfs, &path);
        let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
        result
    }

    // ---- attach, resize, logs -------------------------------------------

    /// Connect to a container's stdio: at once when it runs, else at its
    /// next start.
    pub async fn attach(
        &self,
        name: &str,
        options: AttachOptions,
    ) -> Result<Attached, ContainerError> {
        let entry = self.find(name)?;
        let (id, status, tty) = {
            let r = lock(&entry.record);
            (r.id.clone(), r.state.status, r.request.config.tty)
        };
        let stream = if status.is_alive() {
            shim_link::call(&self.shim_paths(&id).socket(), &attach_request(options)).await
        } else {
            let (tx, rx) = tokio::sync::oneshot::channel();
            lock(&entry.waiting_attaches).push((options, tx));
            match rx.await {
                Ok(stream) => stream,
                Err(_) => Err(std::io::Error::other("the container did not start")),
            }
        }
        .map_err(|e| ContainerError::Shim { id: id.clone(), message: e.to_string() })?;
        if !stream.reply.ok {
            return Err(ContainerError::Shim {
                id,
                message: stream.reply.message.unwrap_or_default(),
            });
        }
        Ok(Attached::new(tty, stream.reader, Some(stream.writer), None))
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, name: &str, height: u32, width: u32) -> Result<(), ContainerError> {
        let entry = self.find(name)?;
        let (id, status) = entry.id_and_status();
        if !status.is_alive() {
            return Err(ContainerError::NotRunning { id });
        }
        let request = Request::Resize {
            height: u16::try_from(height).unwrap_or(u16::MAX),
            width: u16::try_from(width).unwrap_or(u16::MAX),
        };
        shim_link::call(&self.shim_paths(&id).socket(), &request)
            .await
            .map_err(|e| ContainerError::Shim { id, message: e.to_string() })?;
        Ok(())
    }

    /// `GET /containers/{id}/logs`: entries of the log, then (with
    /// `follow`) new ones until the container stops.
    pub fn logs(&self, name: &str, options: LogOptions) -> Result<LogStream, ContainerError> {
        let entry = self.find(name)?;
        let (id, tty) = {
            let r = lock(&entry.record);
            (r.id.clone(), r.request.config.tty)
        };
        let running = {
            let entry = Arc::clone(&entry);
            move || lock(&entry.record).state.status.is_alive()
        };
        logs::open(self.log_path(&id), options, tty, Box::new(running))
    }

    // ---- exec -----------------------------------------------------------

    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, name: &str, request: ExecRequest) -> Result<String, ContainerError> {
        let entry = self.find(name)?;
        let (id, status) = entry.id_and_status();
        match status {
            ContainerStatus::Running => {}
            ContainerStatus::Paused => {
                return Err(ContainerError::InvalidRequest {
                    message: format!("Container {id} is paused, unpause the container before exec"),
                })
            }
            _ => return Err(ContainerError::NotRunning { id }),
        }
        if request.cmd.is_empty() {
            return Err(ContainerError::InvalidRequest {
                message: "No exec command specified".into(),
            });
        }
        let exec_id = random_hex(32);
        let exec = Arc::new(ExecEntry {
            id: exec_id.clone(),
            container_id: id,
            request,
            state: Mutex::new(ExecState::default()),
            control: tokio::sync::Mutex::new(None),
        });
        let action = format!("exec_create: {}", exec.request.cmd.join(" "));
        lock(&self.execs).insert(exec_id.clone(), exec);
        self.emit(&entry, &action, &[("execID", exec_id.clone())]);
        Ok(exec_id)
    }

    fn find_exec(&self, id: &str) -> Result<Arc<ExecEntry>, ContainerError> {
        lock(&self.execs)
            .get(id)
            .cloned()
            .ok_or_else(|| ContainerError::NoSuchExec { id: id.to_owned() })
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, id: &str) -> Result<ExecDetails, ContainerError> {
        let exec = self.find_exec(id)?;
        let state = lock(&exec.state).clone();
        Ok(ExecDetails {
            id: exec.id.clone(),
            container_id: exec.container_id.clone(),
            request: exec.request.clone(),
            running: state.running,
            exit_code: state.exit_code,
            pid: state.pid,
        })
    }

    /// `POST /exec/{id}/start`: run it; the stream carries its output and
    /// exit. With `detach`, the output is dropped and `None` returned.
    pub async fn exec_start(
        self: &Arc<Self>,
        id: &str,
        detach: bool,
        console_size: Option<[u32; 2]>,
    ) -> Result<Option<Attached>, ContainerError> {
        let exec = self.find_exec(id)?;
        {
            let state = lock(&exec.state);
            if state.running || state.exit_code.is_some() {
                return Err(ContainerError::InvalidRequest {
                    message: format!("Error: Exec command {id} has already run"),
                });
            }
        }
        let container = self.find(&exec.container_id)?;
        let cid = lock(&container.record).id.clone();
        if !lock(&container.record).state.status.is_alive() {
            return Err(ContainerError::NotRunning { id: cid });
        }
        let process = {
            let this = Arc::clone(self);
            let exec = Arc::clone(&exec);
            let cid = cid.clone();
            tokio::task::spawn_blocking(move || {
                this.exec_process(&cid, &exec.request, console_size.or(exec.request.console_size))
            })
            .await
            .map_err(|e| ContainerError::Shim { id: id.to_owned(), message: e.to_string() })??
        };
        let request = Request::Exec {
            process: Box::new(process),
            tty: exec.request.tty,
            stdin: exec.request.attach_stdin,
        };
        let stream = shim_link::call(&self.shim_paths(&cid).socket(), &request)
            .await
            .map_err(|e| ContainerError::Shim { id: cid.clone(), message: e.to_string() })?;
        if !stream.reply.ok {
            // docker-compat: a command that cannot run is an exec that
            // exited 126 or 127, reported by inspect; start itself fails.
            let code = i64::from(stream.reply.exit_code.unwrap_or(126));
            exec.finish(code);
            return Err(ContainerError::StartFailed {
                message: stream.reply.message.unwrap_or_else(|| "exec failed".into()),
                exit_code: code,
            });
        }
        {
            let mut state = lock(&exec.state);
            state.running = true;
            state.pid = i64::from(stream.reply.pid.unwrap_or(0));
        }
        *exec.control.lock().await = Some(stream.writer);
        let mut attached =
            Attached::new(exec.request.tty, stream.reader, None, Some(Arc::clone(&exec)));
        if detach {
            tokio::spawn(async move { while let Ok(Some(_)) = attached.output.next().await {} });
            return Ok(None);
        }
        Ok(Some(attached))
    }

    /// `POST /exec/{id}/resize`.
    pub async fn exec_resize(
        &self,
        id: &str,
        height: u32,
        width: u32,
    ) -> Result<(), ContainerError> {
        let exec = self.find_exec(id)?;
        let mut control = exec.control.lock().await;
        match control.as_mut() {
            Some(writer) => writer.resize(height, width).await.map_err(|e| ContainerError::Shim {
                id: exec.container_id.clone(),
                message: e.to_string(),
            }),
            None => {
                Err(ContainerError::InvalidRequest { message: format!("exec {id} is not running") })
            }
        }
    }

    /// The OCI process of an exec: the container's, with the exec's command,
    /// environment, user and directory.
    fn exec_process(
        &self,
        cid: &str,
        request: &ExecRequest,
        console_size: Option<[u32; 2]>,
    ) -> Result<kiln_runtime::spec::Process, ContainerError> {
        let config_path = self.paths.bundles.join(cid).join("config.json");
        let text =
            std::fs::read(&config_path).map_err(ContainerError::io("read", config_path.clone()))?;
        let spec = kiln_runtime::Spec::parse(&text)
            .map_err(|reason| ContainerError::InvalidRequest { message: reason })?;
        let mut process = spec.process.unwrap_or_default();
        process.args = request.cmd.clone();
        process.terminal = request.tty;
        process.console_size =
            console_size.filter(|_| request.tty).map(|[h, w]| kiln_runtime::spec::ConsoleSize {
                height: u16::try_from(h).unwrap_or(u16::MAX),
                width: u16::try_from(w).unwrap_or(u16::MAX),
            });
        for kv in &request.env {
            let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
            process.env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
            process.env.push(kv.clone());
        }
        if request.tty && !process.env.iter().any(|e| e.starts_with("TERM=")) {
            process.env.push("TERM=xterm".into());
        }
        if !request.working_dir.is_empty() {
            process.cwd = PathBuf::from(&request.working_dir);
        }
        if !request.user.is_empty() {
            let rootfs = self.paths.bundles.join(cid).join("rootfs");
            let read = |path: &str| std::fs::read_to_string(rootfs.join(path)).ok();
            let user = users::resolve(&request.user, &[], &read)?;
            process.user.uid = user.uid;
            process.user.gid = user.gid;
            process.user.additional_gids = user.additional_gids;
        }
        if request.privileged {
            let host = HostOptions { privileged: true, ..HostOptions::default() };
            let caps = oci::capabilities(&host)?;
            process.capabilities = Some(kiln_runtime::spec::Capabilities {
                bounding: caps.clone(),
                effective: caps.clone(),
                permitted: caps,
                ..Default::default()
            });
        }
        Ok(process)
    }
}

impl crate::volumes::VolumeUsers for Containers {
    fn users_of(&self, name: &str) -> Vec<String> {
        lock(&self.entries)
            .values()
            .filter_map(|e| {
                let r = lock(&e.record);
                r.mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
                    .then(|| r.id[..12].to_owned())
            })
            .collect()
    }
}

impl crate::images::ImageUsers for Containers {
    fn user_of(&self, image: &Digest) -> Option<(String, bool)> {
        let entries = lock(&self.entries);
        let users: Vec<(String, bool)> = entries
            .values()
            .filter_map(|e| {
                let r = lock(&e.record);
                (r.image_id == *image).then(|| (r.id[..12].to_owned(), r.state.status.is_alive()))
            })
            .collect();
        // A running user decides the answer when there is one.
        users.iter().find(|(_, running)| *running).or(users.first()).cloned()
    }
}

impl Entry {
    /// The container's id and status now.
    fn id_and_status(&self) -> (String, ContainerStatus) {
        let r = lock(&self.record);
        (r.id.clone(), r.state.status)
    }

    fn new(record: ContainerRecord) -> Entry {
        let progress = Progress { exit_code: record.state.exit_code, ..Progress::default() };
        Entry {
            record: Mutex::new(record),
            ops: tokio::sync::Mutex::new(()),
            events: watch::channel(progress).0,
            backoff: Mutex::new(Duration::ZERO),
            health: Mutex::new(None),
            waiting_attaches: Mutex::new(Vec::new()),
            restarting: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

fn attach_request(options: AttachOptions) -> Request {
    Request::Attach { stdin: options.stdin, stdout: options.stdout, stderr: options.stderr }
}

async fn wait_exits(rx: &mut watch::Receiver<Progress>, seen: u64) {
    loop {
        {
            let p = rx.borrow_and_update();
            if p.exits > seen || p.removed {
                return;
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// One `docker stats` sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSample {
    pub id: String,
    pub name: String,
    /// Unix nanoseconds.
    pub read: i64,
    pub cgroup: kiln_cgroups::Stats,
    /// Nanoseconds of CPU time the host has spent in all (from /proc/stat).
    pub system_cpu: u64,
    pub online_cpus: u32,
}

/// Bytes of the regular files under `path` (not following links).
fn tree_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.path().symlink_metadata() {
            Ok(m) if m.is_dir() => tree_size(&e.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

/// The host's CPU time so far, in nanoseconds, as Docker reads it: the
/// first line of /proc/stat, in USER_HZ ticks.
fn system_cpu_nanos() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return 0 };
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    ticks * 10_000_000
}

/// `SIGKILL`, `KILL` or `9` → `9`, as Docker's kill event says it.
fn signal_number(signal: &str) -> String {
    kiln_runtime::parse_signal(signal).map_or_else(|_| signal.to_owned(), |n| n.to_string())
}

fn volume_err(err: VolumeError) -> ContainerError {
    ContainerError::Volume(err)
}

fn any_or_empty(values: Option<&Vec<String>>, pred: impl Fn(&String) -> bool) -> bool {
    match values {
        None => true,
        Some(v) if v.is_empty() => true,
        Some(v) => v.iter().any(pred),
    }
}

fn has_label(labels: &BTreeMap<String, String>, wanted: &str) -> bool {
    match wanted.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(wanted),
    }
}

fn check_request(
    request: &CreateRequest,
    warnings: &mut Vec<String>,
) -> Result<(), ContainerError> {
    let r = &request.host.resources;
    if r.memory != 0 && r.memory < 6 * 1024 * 1024 {
        return Err(oci::SpecError::MemoryTooLow.into());
    }
    if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
        return Err(oci::SpecError::SwapBelowMemory.into());
    }
    if r.oom_kill_disable == Some(true) && r.memory == 0 {
        warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
    }
    oci::capabilities(&request.host)?;
    match request.host.restart_policy.name.as_str() {
        "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
        other => {
            return Err(ContainerError::InvalidRequest {
                message: format!("invalid restart policy '{other}'"),
            })
        }
    }
    if request.host.auto_remove && !matches!(request.host.restart_policy.name.as_str(), "" | "no") {
        return Err(ContainerError::InvalidRequest {
            message: "can't create 'AutoRemove' container with restart policy".into(),
        });
    }
    Ok(())
}

/// `--network container:NAME` at create, before NAME is looked up: NAME
/// is there, and nothing is asked of a network the container will not own.
/// It uses the other container's namespace, /etc/hosts, /etc/resolv.conf
/// and hostname as they are, so asking for any of them is an error, in
/// Docker's words (`--dns-search` and `--dns-option` are ignored, as Docker
/// does). Returns NAME.
fn shared_network_request<'a>(
    request: &CreateRequest,
    mode: &'a str,
    endpoints: &BTreeMap<String, EndpointConfig>,
) -> Result<&'a str, ContainerError> {
    let conflict =
        |message: &str| Err(ContainerError::InvalidRequest { message: message.to_owned() });
    let name = mode.strip_prefix("container:").unwrap_or_default();
    let (config, host) = (&request.config, &request.host);
    if name.is_empty() {
        return conflict("invalid network mode: invalid container format container:<name|id>");
    }
    if !config.hostname.is_empty() {
        return conflict("conflicting options: hostname and the network mode");
    }
    if !host.dns.is_empty() {
        return conflict("conflicting options: dns and the network mode");
    }
    if !host.extra_hosts.is_empty() {
        return conflict("conflicting options: custom host-to-IP mapping and the network mode");
    }
    if !config.mac_address.is_empty() {
        return conflict("conflicting options: mac-address and the network mode");
    }
    if !host.port_bindings.is_empty() || host.publish_all_ports {
        return conflict(
            "conflicting options: port publishing and the container type network mode",
        );
    }
    if !config.exposed_ports.is_empty() {
        return conflict("conflicting options: port exposing and the container type network mode");
    }
    for (network, settings) in endpoints {
        if network != mode {
            return Err(networks::NetworkError::NoNetworkNamespace.into());
        }
        if !settings.aliases.is_empty() {
            return conflict(
                "network-scoped alias is supported only for containers in user defined networks",
            );
        }
        if !settings.ipv4_address.is_empty() {
            return conflict(
                "user specified IP address is supported on user defined networks only",
            );
        }
    }
    Ok(name)
}

/// What a `--network container:NAME` container takes from NAME at start.
#[derive(Debug)]
struct SharedNetwork {
    plan: oci::NetworkPlan,
    etc: oci::EtcFiles,
    /// NAME's: Docker gives the container the hostname of the container
    /// whose /etc/hostname it shows.
    hostname: String,
}

/// The ports a container publishes (`-p`, and `-P` with the image's and
/// the request's exposed ports), checked.
fn requested_ports(
    request: &CreateRequest,
    defaults: &kiln_image::ContainerConfig,
) -> Result<Vec<kiln_network::PortBinding>, ContainerError> {
    let exposed = defaults.exposed_ports.keys().chain(request.config.exposed_ports.iter());
    networks::port_bindings(&request.host.port_bindings, request.host.publish_all_ports, exposed)
        .map_err(|err| ContainerError::InvalidRequest { message: err.to_string() })
}

/// `--mac-address`, checked; `None` when not given.
fn requested_mac(request: &CreateRequest) -> Result<Option<[u8; 6]>, ContainerError> {
    match request.config.mac_address.as_str() {
        "" => Ok(None),
        text => networks::parse_mac(text).map(Some).ok_or_else(|| ContainerError::InvalidRequest {
            message: format!("invalid MAC address: {text}"),
        }),
    }
}

fn cgroups_path(record: &ContainerRecord) -> String {
    let parent = record.request.host.cgroup_parent.trim_matches('/');
    let parent = if parent.is_empty() { "kiln" } else { parent };
    format!("/{parent}/{}", record.id)
}

/// The container's /etc/hosts: loopback names (the host's file with the
/// host's network), `--add-host` entries (`host-gateway` is `host_gateway`,
/// the default bridge's address, as with Docker), and its hostname on each
/// address it has on a network (with its aliases there), or on 127.0.1.1
/// without one.
fn hosts_file(
    hostname: &str,
    extra: &[String],
    host_network: bool,
    endpoints: &[(String, networks::Endpoint)],
    host_gateway: Option<&str>,
) -> String {
    let host_file = host_network.then(|| std::fs::read_to_string("/etc/hosts").ok()).flatten();
    let mut text = host_file.clone().unwrap_or_else(|| String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    ));
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for entry in extra {
        let Some((host, ip)) = entry.split_once(':') else { continue };
        let ip = match (ip, host_gateway) {
            ("host-gateway", Some(gateway)) => gateway,
            ("host-gateway", None) => {
                tracing::warn!(host = %host, "no default bridge address for host-gateway");
                continue;
            }
            (ip, _) => ip,
        };
        text.push_str(&format!("{ip}\t{host}\n"));
    }
    if host_file.is_some() {
        return text;
    }
    if endpoints.is_empty() {
        text.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    for (_, endpoint) in endpoints {
        let mut names = vec![hostname];
        names.extend(endpoint.aliases.iter().map(String::as_str).filter(|a| *a != hostname));
        text.push_str(&format!("{}\t{}\n", endpoint.ip, names.join(" ")));
    }
    text
}

/// The container's /etc/resolv.conf: the host's, with `--dns`,
/// `--dns-search` and `--dns-option` over it. On a bridge network, loopback
/// name servers (a local cache such as systemd-resolved's 127.0.0.53) are
/// unreachable from the container and left out, as Docker does; when none
/// is left, Google's public servers stand in.
fn resolv_conf(host: &HostOptions, bridged: bool) -> String {
    let mut base = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if bridged {
        base = without_loopback_servers(&base);
    }
    if host.dns.is_empty() && host.dns_search.is_empty() && host.dns_options.is_empty() {
        return base;
    }
    let mut text = String::new();
    let servers: Vec<String> = if host.dns.is_empty() {
        base.lines().filter(|l| l.starts_with("nameserver")).map(str::to_owned).collect()
    } else {
        host.dns.iter().map(|d| format!("nameserver {d}")).collect()
    };
    for line in servers {
        text.push_str(&line);
        text.push('\n');
    }
    if !host.dns_search.is_empty() {
        text.push_str(&format!("search {}\n", host.dns_search.join(" ")));
    }
    if !host.dns_options.is_empty() {
        text.push_str(&format!("options {}\n", host.dns_options.join(" ")));
    }
    text
}

/// `resolv` without loopback `nameserver` lines; systemd-resolved's own
/// list of upstream servers when the host's file only names its stub.
fn without_loopback_servers(resolv: &str) -> String {
    let is_loopback = |line: &str| {
        let mut words = line.split_whitespace();
        words.next() == Some("nameserver")
            && words
                .next()
                .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
                .is_some_and(|ip| ip.is_loopback())
    };
    let servers =
        |text: &str| text.lines().filter(|l| l.trim_start().starts_with("nameserver")).count();
    let kept: Vec<&str> = resolv.lines().filter(|l| !is_loopback(l)).collect();
    let mut text: String = kept.iter().map(|l| format!("{l}\n")).collect();
    if servers(&text) == 0 && servers(resolv) > 0 {
        if let Ok(upstream) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf") {
            if upstream.lines().any(|l| l.starts_with("nameserver") && !is_loopback(l)) {
                return upstream
                    .lines()
                    .filter(|l| !is_loopback(l))
                    .map(|l| format!("{l}\n"))
                    .collect();
            }
        }
    }
    if servers(&text) == 0 {
        text.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    text
}

fn host_devices(
    requests: &[DeviceRequest],
) -> Result<Vec<kiln_runtime::spec::Device>, ContainerError> {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
    let mut devices = Vec::new();
    for request in requests {
        let meta = std::fs::metadata(&request.path_on_host).map_err(|_| ContainerError::InvalidRequest {
            message: format!("error gathering device information while adding custom device \"{}\": no such file or directory", request.path_on_host),
        })?;
        let kind = if meta.file_type().is_char_device() {
            'c'
        } else if meta.file_type().is_block_device() {
            'b'
        } else {
            return Err(ContainerError::InvalidRequest {
                message: format!("error gathering device information while adding custom device \"{}\": not a device node", request.path_on_host),
            });
        };
        let rdev = meta.rdev();
        let path = if request.path_in_container.is_empty() {
            &request.path_on_host
        } else {
            &request.path_in_container
        };
        devices.push((
            path.clone(),
            kind,
            i64::from(nix::sys::stat::major(rdev) as u32),
            i64::from(nix::sys::stat::minor(rdev) as u32),
            meta.permissions().mode() & 0o7777,
        ));
    }
    Ok(oci::device_entries(&devices))
}

fn read_exit_file(path: &Path) -> Option<ExitRecord> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Write a file atomically (temp, rename), without fsync.
fn write_file(path: &Path, data: &[u8]) -> Result<(), ContainerError> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(ContainerError::io("write", tmp.clone()))?;
    // No fsync: bundle files derive from the record and are rewritten at
    // every start, so a crash costs nothing but a rewrite.
    file.write_all(data).map_err(ContainerError::io("write", tmp.clone()))?;
    std::fs::rename(&tmp, path).map_err(ContainerError::io("write", path.to_owned()))
}

/// Bytes of memory on this host, from /proc/meminfo; 0 when unknown.
fn host_memory() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod network_files_tests {
    use super::*;

    #[test]
    fn loopback_name_servers_are_dropped_on_a_bridge_and_google_stands_in() {
        let host = "search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n";
        assert_eq!(
            without_loopback_servers(host),
            "search lan\nnameserver 10.0.0.2\noptions edns0\n"
        );
        let only_local = "nameserver ::1\nnameserver 127.0.0.1\n";
        let fallback = without_loopback_servers(only_local);
        assert!(!fallback.contains("127.0.0.1") && !fallback.contains("::1"), "{fallback}");
        assert!(fallback.contains("nameserver "), "{fallback}");
        assert_eq!(without_loopback_servers(""), "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }

    #[test]
    fn hosts_name_the_container_on_each_address_with_its_aliases() {
        let endpoint = networks::Endpoint {
            ip: "172.18.0.5".into(),
            aliases: vec!["db".into(), "web1".into()],
            ..networks::Endpoint::default()
        };
        let text =
            hosts_file("web1", &["gw:10.0.0.1".into()], false, &[("n".into(), endpoint)], None);
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"), "{text}");
        assert!(text.contains("10.0.0.1\tgw\n"), "{text}");
        assert!(text.ends_with("172.18.0.5\tweb1 db\n"), "{text}");
        assert!(!text.contains("127.0.1.1"), "{text}");
        assert!(hosts_file("web1", &[], false, &[], None).ends_with("127.0.1.1\tweb1\n"));
        let text = hosts_file("web1", &["gw:host-gateway".into()], false, &[], Some("172.17.0.1"));
        assert!(text.contains("172.17.0.1\tgw\n"), "{text}");
        assert!(!text.contains("host-gateway"), "{text}");
    }
}

#[cfg(test)]
mod shared_network_tests {
    use super::*;
    use kiln_types::HasKind as _;

    fn refusal(request: &CreateRequest, endpoints: &BTreeMap<String, EndpointConfig>) -> String {
        let err = shared_network_request(request, "container:web", endpoints)
            .expect_err("the request is refused");
        assert_eq!(err.kind(), kiln_types::ErrorKind::InvalidArgument, "{err}");
        err.to_string()
    }

    #[test]
    fn a_plain_request_names_the_container_whose_network_it_shares() {
        let request = CreateRequest::default();
        let mode_only = [("container:web".to_owned(), EndpointConfig::default())].into();
        assert_eq!(shared_network_request(&request, "container:web", &mode_only).ok(), Some("web"));
        let err =
            shared_network_request(&request, "container:", &BTreeMap::new()).expect_err("no name");
        assert_eq!(
            err.to_string(),
            "invalid network mode: invalid container format container:<name|id>"
        );
    }

    #[test]
    fn what_the_shared_network_decides_cannot_be_asked_for() {
        let none = BTreeMap::new();
        type Change = fn(&mut CreateRequest);
        let cases: [(Change, &str); 8] = [
            (|r| r.config.hostname = "mine".into(), "hostname and the network mode"),
            (|r| r.host.dns = vec!["192.0.2.1".into()], "dns and the network mode"),
            (|r| r.host.extra_hosts = vec!["db:192.0.2.2".into()], "custom host-to-IP mapping"),
            (|r| r.config.mac_address = "02:42:c0:00:02:09".into(), "mac-address and the network"),
            (
                |r| r.host.port_bindings = [("80/tcp".into(), vec![])].into(),
                "port publishing and the container type network mode",
            ),
            (|r| r.host.publish_all_ports = true, "port publishing"),
            (|r| r.config.exposed_ports = vec!["80/tcp".into()], "port exposing"),
            (|r| r.host.dns_search = vec!["example.com".into()], ""),
        ];
        for (change, message) in cases {
            let mut request = CreateRequest::default();
            change(&mut request);
            if message.is_empty() {
                // docker-compat: ignored, not refused.
                assert!(shared_network_request(&request, "container:web", &none).is_ok());
                continue;
            }
            let text = refusal(&request, &none);
            assert!(text.starts_with("conflicting options: ") && text.contains(message), "{text}");
        }
        let request = CreateRequest::default();
        let alias = EndpointConfig { aliases: vec!["db".into()], ..EndpointConfig::default() };
        let text = refusal(&request, &[("container:web".to_owned(), alias)].into());
        assert!(text.starts_with("network-scoped alias"), "{text}");
        let other = [("bridge".to_owned(), EndpointConfig::default())].into();
        let err = shared_network_request(&request, "container:web", &other).expect_err("refused");
        assert!(err.to_string().starts_with("container sharing network namespace"), "{err}");
        assert_eq!(err.kind(), kiln_types::ErrorKind::PermissionDenied);
    }
}
