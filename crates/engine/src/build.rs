//! `POST /build`: the engine's side of `kiln build`. The context arrives as
//! a tar stream and is unpacked into a private directory; `kiln-build` plans
//! and executes the Dockerfile; this module is its [`kiln_build::Worker`]:
//! it resolves (and pulls) base images, mounts roots over layers, and runs
//! RUN steps as short-lived containers through `kiln runtime run`, in a
//! process of its own (the daemon is multi-threaded and never forks a
//! runtime in itself).

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kiln_build::{
    BaseImage, DownloadedFile, Rootfs, RunResult, StepMount, StepNetwork, StepProcess, Worker,
};
pub use kiln_build::{BuildError, BuildEvent, BuildOutcome, BuildRequest, Cancel, Secret};
use kiln_content::Store;
use kiln_image::{media_type, Descriptor, ImageConfig, ImageManifest, ImageRecord, Metadata};
use kiln_snapshot::{chain_ids, Snapshots};
use kiln_types::{ContainerId, Digest, ErrorKind, HasKind};

use crate::containers::model::{ContainerRecord, CreateRequest, UlimitRequest};
use crate::containers::{oci, random_hex, users};
use crate::Engine;

mod git;

/// The hostname RUN steps see: fixed, so that a step that records it gives
/// the same bytes in every build.
const BUILD_HOSTNAME: &str = "kiln-build";

impl Engine {
    /// Build an image from the context tar `context` (plain, gzip or zstd).
    /// Blocking: call it from a blocking thread. `events` receives progress
    /// in order; `cancel` stops the build at the next step boundary and
    /// kills a running step.
    pub fn build(
        &self,
        request: &BuildRequest,
        context: &mut dyn Read,
        events: &(dyn Fn(BuildEvent) + Sync),
        cancel: &Cancel,
    ) -> Result<BuildOutcome, BuildError> {
        for tag in &request.tags {
            tag.parse::<kiln_types::ImageRef>()
                .map_err(|e| BuildError::invalid(format!("invalid tag {tag:?}: {e}")))?;
        }
        let root = std::path::absolute(&self.config().root)
            .map_err(|e| BuildError::internal(format!("cannot find the state root: {e}")))?;
        let exec_root = std::path::absolute(&self.config().exec_root)
            .map_err(|e| BuildError::internal(format!("cannot find the exec root: {e}")))?;
        let contexts = root.join("build").join("contexts");
        std::fs::create_dir_all(&contexts).map_err(|e| {
            BuildError::internal(format!("cannot create {}: {e}", contexts.display()))
        })?;
        let dir = tempfile::Builder::new()
            .prefix("context-")
            .tempdir_in(&contexts)
            .map_err(|e| BuildError::internal(format!("cannot create a context directory: {e}")))?;
        let context_dir = match request.remote.as_deref() {
            Some(remote) => git::clone(remote, dir.path(), cancel)?,
            None => {
                unpack_context(context, dir.path())?;
                dir.path().to_owned()
            }
        };

        let worker = EngineWorker {
            engine: self,
            content: self.images().content(),
            snapshots: self.images().snapshots(),
            metadata: self.images().metadata(),
            cache_dir: root.join("build").join("cache"),
            scratch_dir: exec_root.join("build").join("scratch"),
            steps_dir: exec_root.join("build").join("steps"),
            runtime_root: exec_root.join("build").join("runtime"),
            exe: self.containers().exe().to_owned(),
            handle: tokio::runtime::Handle::try_current().ok(),
        };
        let outcome = kiln_build::build(request, &context_dir, &worker, events, cancel)?;
        tracing::info!(image = %outcome.id, tags = ?outcome.tags, "image built");
        Ok(outcome)
    }
}

/// Unpack the context tar into `dir`; entries that would land outside it
/// are refused by the tar reader.
fn unpack_context(context: &mut dyn Read, dir: &Path) -> Result<(), BuildError> {
    let (reader, _) = kiln_snapshot::decompress(context)
        .map_err(|e| BuildError::invalid(format!("cannot read the build context: {e}")))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    archive
        .unpack(dir)
        .map_err(|e| BuildError::invalid(format!("cannot unpack the build context: {e}")))
}

struct EngineWorker<'a> {
    engine: &'a Engine,
    content: &'a Store,
    snapshots: &'a Snapshots,
    metadata: &'a Metadata,
    cache_dir: PathBuf,
    scratch_dir: PathBuf,
    /// Bundles of steps (`<id>/config.json`, `<id>/rootfs`).
    steps_dir: PathBuf,
    runtime_root: PathBuf,
    exe: PathBuf,
    handle: Option<tokio::runtime::Handle>,
}

fn failed(kind: ErrorKind, message: String) -> BuildError {
    BuildError::Failed { kind, message }
}

impl EngineWorker<'_> {
    fn base_of(&self, record: &ImageRecord) -> Result<BaseImage, BuildError> {
        let read = |digest: &Digest| {
            self.content.read(digest).map_err(|e| {
                BuildError::internal(format!(
                    "cannot read blob {digest} of image {}: {e}",
                    record.id
                ))
            })
        };
        let config = ImageConfig::from_json(&read(&record.config)?).map_err(|e| {
            BuildError::internal(format!("invalid config of image {}: {e}", record.id))
        })?;
        let manifest = ImageManifest::from_json(&read(&record.manifest)?).map_err(|e| {
            BuildError::internal(format!("invalid manifest of image {}: {e}", record.id))
        })?;
        let layers = manifest
            .layers
            .iter()
            .map(|d| {
                let media = match d.media_type.as_str() {
                    media_type::DOCKER_LAYER => media_type::OCI_LAYER,
                    media_type::DOCKER_LAYER_GZIP => media_type::OCI_LAYER_GZIP,
                    other => other,
                };
                Descriptor::new(media, d.digest.clone(), d.size)
            })
            .collect();
        Ok(BaseImage { id: record.id.clone(), config, layers })
    }
}

fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

impl Worker for EngineWorker<'_> {
    fn content(&self) -> &Store {
        self.content
    }

    fn snapshots(&self) -> &Snapshots {
        self.snapshots
    }

    fn metadata(&self) -> &Metadata {
        self.metadata
    }

    fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    fn scratch_dir(&self) -> &Path {
        &self.scratch_dir
    }

    fn platform(&self) -> String {
        host_platform()
    }

    fn resolve_image(
        &self,
        reference: &str,
        pull: bool,
        events: &(dyn Fn(BuildEvent) + Sync),
    ) -> Result<BaseImage, BuildError> {
        if !pull {
            if let Ok(record) = self.metadata.resolve(reference) {
                return self.base_of(&record);
            }
        }
        let Some(handle) = &self.handle else {
            return Err(failed(ErrorKind::NotFound, format!("no such image: {reference}")));
        };
        events(BuildEvent::Output(format!("Pulling {reference}\n").into_bytes()));
        let (progress, mut drain) = tokio::sync::mpsc::unbounded_channel();
        let request = crate::pull::PullRequest {
            reference: reference.to_owned(),
            ..crate::pull::PullRequest::default()
        };
        let pulled = handle.block_on(async {
            let outcome = self.engine.images().pull(&request, progress).await;
            while drain.try_recv().is_ok() {}
            outcome
        });
        let outcome = pulled.map_err(|e| {
            let kind = e.kind();
            failed(kind, format!("cannot pull base image {reference}: {}", with_causes(&e)))
        })?;
        let record = self
            .metadata
            .image(&outcome.id)
            .map_err(|e| BuildError::internal(e.to_string()))?
            .ok_or_else(|| failed(ErrorKind::NotFound, format!("no such image: {reference}")))?;
        self.base_of(&record)
    }

    fn download(&self, url: &str, dest: &Path) -> Result<DownloadedFile, BuildError> {
        let Some(handle) = &self.handle else {
            return Err(BuildError::internal("no async runtime to download with"));
        };
        let downloaded = handle
            .block_on(kiln_registry_client::download(url, dest))
            .map_err(|e| failed(e.kind(), with_causes(&e)))?;
        Ok(DownloadedFile {
            file_name: downloaded.file_name,
            digest: downloaded.digest.to_string(),
        })
    }

    fn mount(&self, diff_ids: &[Digest], writable: bool) -> Result<Box<dyn Rootfs>, BuildError> {
        let chains = chain_ids(diff_ids);
        let name = format!("build-{}", random_hex(16));
        let id: ContainerId =
            name.parse().map_err(|_| BuildError::internal("cannot name a build step"))?;
        let bundle = self.steps_dir.join(&name);
        let path = bundle.join("rootfs");
        std::fs::create_dir_all(&path)
            .map_err(|e| BuildError::internal(format!("cannot create {}: {e}", path.display())))?;
        let lowers: Vec<PathBuf> =
            chains.iter().rev().map(|c| self.snapshots.layer_dir(c)).collect();
        let mut root =
            StepRoot { bundle, path, upper: None, lowers, mounted: false, snapshot: None };
        let upper = if writable {
            let dirs = self
                .snapshots
                .prepare_container(&id)
                .map_err(|e| BuildError::internal(format!("cannot prepare a build layer: {e}")))?;
            root.snapshot = dirs.upper.parent().map(Path::to_owned);
            root.upper = Some(dirs.upper.clone());
            Some(dirs)
        } else {
            None
        };
        if chains.is_empty() && upper.is_none() {
            return Ok(Box::new(root));
        }
        let spec = self
            .snapshots
            .mounts(&chains, upper.as_ref())
            .map_err(|e| BuildError::internal(format!("cannot mount the build's layers: {e}")))?;
        let mut options = spec.options.clone();
        if spec.fstype == "overlay" && writable {
            // The layer is read right after the step and then dropped: no
            // sync of the host's file system on unmount.
            options.push(kiln_shim::VOLATILE.to_owned());
        }
        let mount = kiln_shim::RootfsMount {
            fstype: spec.fstype.clone(),
            source: spec.source.to_string_lossy().into_owned(),
            options,
        };
        kiln_shim::mount_rootfs(&mount, &root.path)
            .map_err(|e| BuildError::internal(format!("cannot mount a build root: {e}")))?;
        root.mounted = true;
        Ok(Box::new(root))
    }

    fn run(
        &self,
        rootfs: &dyn Rootfs,
        process: &StepProcess,
        output: &mut dyn FnMut(&[u8]),
        cancel: &Cancel,
    ) -> Result<RunResult, BuildError> {
        let root = rootfs.path();
        let bundle = root
            .parent()
            .ok_or_else(|| BuildError::internal("a build root has no bundle directory"))?
            .to_owned();
        let name = bundle
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| BuildError::internal("a build bundle has no name"))?;
        let io =
            |what: &str, e: std::io::Error| BuildError::internal(format!("cannot {what}: {e}"));
        make_workdir(root, &process.cwd);

        // /etc/hostname, hosts and resolv.conf of the step.
        let etc = oci::EtcFiles {
            hostname: bundle.join("hostname"),
            hosts: bundle.join("hosts"),
            resolv_conf: bundle.join("resolv.conf"),
        };
        let host_network = process.network != StepNetwork::None;
        std::fs::write(&etc.hostname, format!("{BUILD_HOSTNAME}\n"))
            .map_err(|e| io("write hostname", e))?;
        std::fs::write(&etc.hosts, hosts_file(&process.extra_hosts, host_network))
            .map_err(|e| io("write hosts", e))?;
        let resolv = if host_network {
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
        } else {
            String::new()
        };
        std::fs::write(&etc.resolv_conf, resolv).map_err(|e| io("write resolv.conf", e))?;

        let read = |path: &str| -> Option<String> {
            let full = root.join(path);
            std::fs::symlink_metadata(&full).ok().filter(|m| m.is_file())?;
            std::fs::read_to_string(full).ok()
        };
        let user = users::resolve(&process.user, &[], &read)
            .map_err(|e| failed(ErrorKind::InvalidArgument, e.to_string()))?;
        let mut record = ContainerRecord {
            id: name.clone(),
            name: name.clone(),
            created: 0,
            // A step runs on layers, not on an image.
            image_id: Digest::new(kiln_types::Algorithm::Sha256, &"0".repeat(64))
                .map_err(|e| BuildError::internal(e.to_string()))?,
            request: CreateRequest::default(),
            path: process.args.first().cloned().unwrap_or_default(),
            args: process.args.iter().skip(1).cloned().collect(),
            mounts: Vec::new(),
            state: Default::default(),
        };
        record.request.config.env = process.env.clone();
        record.request.config.working_dir = process.cwd.clone();
        record.request.config.hostname = BUILD_HOSTNAME.to_owned();
        record.request.host.network_mode =
            if host_network { "host".to_owned() } else { "none".to_owned() };
        record.request.host.privileged = process.privileged;
        record.request.host.resources.shm_size = i64::try_from(process.shm_size).unwrap_or(0);
        for u in &process.ulimits {
            record.request.host.ulimits.push(parse_ulimit(u)?);
        }
        let volume_mounts = process
            .mounts
            .iter()
            .map(|m| match m {
                StepMount::Bind { source, target, readonly } => kiln_runtime::spec::Mount {
                    destination: target.into(),
                    kind: Some("bind".into()),
                    source: Some(source.clone()),
                    options: vec![
                        "rbind".to_owned(),
                        "rprivate".to_owned(),
                        if *readonly { "ro" } else { "rw" }.to_owned(),
                    ],
                    ..Default::default()
                },
                StepMount::Tmpfs { target, size } => kiln_runtime::spec::Mount {
                    destination: target.into(),
                    kind: Some("tmpfs".into()),
                    source: Some("tmpfs".into()),
                    options: std::iter::once("nosuid".to_owned())
                        .chain(std::iter::once("nodev".to_owned()))
                        .chain(size.map(|s| format!("size={s}")))
                        .collect(),
                    ..Default::default()
                },
            })
            .collect();
        let image_defaults = kiln_image::ContainerConfig::default();
        let inputs = oci::SpecInputs {
            record: &record,
            image: &image_defaults,
            user,
            hostname: BUILD_HOSTNAME.to_owned(),
            etc: Some(etc),
            network: if host_network { oci::NetworkPlan::Host } else { oci::NetworkPlan::Private },
            default_shm: oci::DOCKER_SHM,
            cgroups_path: format!("/kiln-build/{name}"),
            devices: Vec::new(),
            volume_mounts,
        };
        let spec = oci::build_spec(&inputs).map_err(|e| BuildError::invalid(e.to_string()))?;
        let mount_points: Vec<String> =
            spec.mounts.iter().map(|m| m.destination.display().to_string()).collect();
        let json = serde_json::to_vec(&spec)
            .map_err(|e| io("encode the step's spec", std::io::Error::other(e)))?;
        std::fs::write(bundle.join("config.json"), json)
            .map_err(|e| io("write the step's spec", e))?;

        let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| io("make a pipe", e.into()))?;
        let writer_err = writer.try_clone().map_err(|e| io("make a pipe", e))?;
        let reader = std::fs::File::from(reader);
        let mut command = Command::new(&self.exe);
        command
            .arg("runtime")
            .arg("--root")
            .arg(&self.runtime_root)
            .arg("run")
            .arg("--bundle")
            .arg(&bundle)
            .arg(&name)
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::from(writer_err));
        let mut child = command.spawn().map_err(|e| io("start the step's runtime", e))?;
        drop(command);

        // A watcher kills the step when the build is cancelled.
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let done = Arc::clone(&done);
            let cancel = cancel.clone();
            let exe = self.exe.clone();
            let runtime_root = self.runtime_root.clone();
            let name = name.clone();
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    if cancel.is_cancelled() {
                        let _ = Command::new(&exe)
                            .arg("runtime")
                            .arg("--root")
                            .arg(&runtime_root)
                            .args(["kill", "--all", &name, "KILL"])
                            .stdin(Stdio::null())
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .status();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        let mut reader = BufReader::with_capacity(64 * 1024, reader);
        loop {
            match reader.fill_buf() {
                Ok([]) => break,
                Ok(buf) => {
                    let n = buf.len();
                    output(buf);
                    reader.consume(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let status = child.wait().map_err(|e| io("wait for the step", e));
        done.store(true, Ordering::SeqCst);
        let _ = watcher.join();
        let status = status?;
        let exit_code = status
            .code()
            .or_else(|| std::os::unix::process::ExitStatusExt::signal(&status).map(|s| 128 + s))
            .unwrap_or(1);
        Ok(RunResult { exit_code, mount_points })
    }
}

/// An error with its causes, for a one-line message.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `name=soft[:hard]` of `--ulimit`.
fn parse_ulimit(text: &str) -> Result<UlimitRequest, BuildError> {
    let bad = || BuildError::invalid(format!("invalid ulimit {text:?}: expected name=soft[:hard]"));
    let (name, values) = text.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = values.split_once(':').unwrap_or((values, values));
    Ok(UlimitRequest {
        name: name.to_owned(),
        soft: soft.parse().map_err(|_| bad())?,
        hard: hard.parse().map_err(|_| bad())?,
    })
}

fn hosts_file(extra: &[String], host_network: bool) -> String {
    let mut text = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        String::new()
    };
    if text.is_empty() {
        text = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".to_owned();
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("127.0.1.1\t{BUILD_HOSTNAME}\n"));
    for entry in extra {
        if let Some((host, ip)) = entry.split_once(':') {
            text.push_str(&format!("{ip}\t{host}\n"));
        }
    }
    text
}

/// Creates the step's working directory when the image lacks it, as
/// Docker does, but only through real directories: a symlink on the way
/// is left for the runtime, which resolves it inside the root.
fn make_workdir(root: &Path, cwd: &str) {
    let mut path = root.to_owned();
    for part in cwd.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return;
        }
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => return,
            Err(_) => {
                if std::fs::create_dir(&path).is_err() {
                    return;
                }
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
            }
        }
    }
}

/// A step's root: unmounted and deleted with its bundle when dropped.
#[derive(Debug)]
struct StepRoot {
    bundle: PathBuf,
    path: PathBuf,
    upper: Option<PathBuf>,
    lowers: Vec<PathBuf>,
    mounted: bool,
    /// The snapshot directory holding upper and work.
    snapshot: Option<PathBuf>,
}

impl Rootfs for StepRoot {
    fn path(&self) -> &Path {
        &self.path
    }

    fn upper(&self) -> Option<&Path> {
        self.upper.as_deref()
    }

    fn lowers(&self) -> Vec<PathBuf> {
        self.lowers.clone()
    }
}

impl Drop for StepRoot {
    fn drop(&mut self) {
        if self.mounted {
            kiln_shim::unmount_rootfs(&self.path);
        }
        if let Some(dir) = &self.snapshot {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a build layer");
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.bundle) {
            tracing::warn!(dir = %self.bundle.display(), error = %e, "cannot remove a build step");
        }
    }
}

/// Removes what builds left behind when the daemon died in the middle of
/// one: step roots (unmounted first), their writable layers, unpacked
/// contexts and secret files. Called at open, before any build runs.
pub(crate) fn sweep_leftovers(root: &Path, exec_root: &Path, snapshots: &Snapshots) {
    let steps = exec_root.join("build").join("steps");
    if let Ok(entries) = std::fs::read_dir(&steps) {
        for entry in entries.flatten() {
            let rootfs = entry.path().join("rootfs");
            let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    if let Ok(entries) = std::fs::read_dir(snapshots.root().join("containers")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_prefix("build-").and(name.parse::<ContainerId>().ok()) {
                let _ = snapshots.remove_container(&id);
            }
        }
    }
    for dir in [root.join("build").join("contexts"), exec_root.join("build").join("scratch")] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_dir_all(entry.path())
                    .or_else(|_| std::fs::remove_file(entry.path()));
            }
        }
    }
}
