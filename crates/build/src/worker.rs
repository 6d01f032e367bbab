//! What the builder needs from its host, the engine: base images, mounted
//! roots over layers, and a way to run a step's process. Everything else
//! (stores of blobs and snapshots, the cache) the builder uses directly.

use std::path::{Path, PathBuf};

use kiln_content::Store;
use kiln_image::{Descriptor, ImageConfig, Metadata};
use kiln_snapshot::Snapshots;
use kiln_types::Digest;

use crate::{BuildError, Cancel};

/// A base image as the worker found (or pulled) it.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// Its id (the config's digest).
    pub id: Digest,
    pub config: ImageConfig,
    /// Its layer blobs, bottom first, as its manifest lists them.
    pub layers: Vec<Descriptor>,
}

/// A root file system mounted over layers. Dropping it unmounts it and
/// removes its writable directories.
pub trait Rootfs: Send {
    /// Where the merged tree is mounted.
    fn path(&self) -> &Path;
    /// The overlay upper directory, for a writable root.
    fn upper(&self) -> Option<&Path>;
    /// The unpacked layer directories under it, top first.
    fn lowers(&self) -> Vec<PathBuf>;
}

/// How a RUN step's network is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepNetwork {
    /// The builder's default network.
    Default,
    /// Loopback only.
    None,
    /// The host's network.
    Host,
}

/// A mount of a RUN step, resolved to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepMount {
    /// A host path bound at `target`.
    Bind { source: PathBuf, target: String, readonly: bool },
    /// An empty tmpfs at `target`.
    Tmpfs { target: String, size: Option<u64> },
}

impl StepMount {
    pub fn target(&self) -> &str {
        match self {
            StepMount::Bind { target, .. } | StepMount::Tmpfs { target, .. } => target,
        }
    }
}

/// The process of a RUN step.
#[derive(Debug, Clone)]
pub struct StepProcess {
    pub args: Vec<String>,
    /// `KEY=value`, complete (the worker adds nothing but PATH when unset).
    pub env: Vec<String>,
    pub cwd: String,
    /// As USER says (`name`, `uid`, `uid:gid`); empty for root. The worker
    /// resolves names in the root it runs in.
    pub user: String,
    pub network: StepNetwork,
    pub mounts: Vec<StepMount>,
    /// `--add-host host:ip`.
    pub extra_hosts: Vec<String>,
    /// /dev/shm bytes; 0 for the default.
    pub shm_size: u64,
    /// `--ulimit name=soft[:hard]`.
    pub ulimits: Vec<String>,
    /// `RUN --security=insecure`.
    pub privileged: bool,
}

/// The engine's side of a build.
pub trait Worker: Sync {
    /// The blob store layers and configs go into.
    fn content(&self) -> &Store;
    /// The unpacked layers.
    fn snapshots(&self) -> &Snapshots;
    /// Image records and tags.
    fn metadata(&self) -> &Metadata;
    /// A directory the builder keeps between builds: the cache index and
    /// the cache mounts.
    fn cache_dir(&self) -> &Path;
    /// A directory for this daemon's temporary files (secrets, heredocs),
    /// on a file system that does not outlive a reboot where possible.
    fn scratch_dir(&self) -> &Path;
    /// `os/arch[/variant]` of this host.
    fn platform(&self) -> String;
    /// The image `reference` names, pulled when it is missing, or always
    /// when `pull` is set. Progress may be reported through `events`.
    fn resolve_image(
        &self,
        reference: &str,
        pull: bool,
        events: &(dyn Fn(crate::BuildEvent) + Sync),
    ) -> Result<BaseImage, BuildError>;
    /// Mount the layers `diff_ids` (bottom first; they are unpacked in the
    /// snapshots), with a writable upper directory when `writable`.
    fn mount(&self, diff_ids: &[Digest], writable: bool) -> Result<Box<dyn Rootfs>, BuildError>;
    /// Download `url` (http or https) into the file `dest`.
    fn download(&self, url: &str, dest: &Path) -> Result<DownloadedFile, BuildError>;
    /// Run `process` in `rootfs` until it exits, giving its output (stdout
    /// and stderr, as written) to `output`; its exit code, or 128 + the
    /// signal. Killed when `cancel` is set. Returns the destinations the
    /// runtime mounted over the root, whose stubs are not changes.
    fn run(
        &self,
        rootfs: &dyn Rootfs,
        process: &StepProcess,
        output: &mut dyn FnMut(&[u8]),
        cancel: &Cancel,
    ) -> Result<RunResult, BuildError>;
}

/// A file `ADD <url>` downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedFile {
    /// The name it gets in the image when the destination is a directory
    /// (the URL's last path segment, or Content-Disposition's).
    pub file_name: Option<String>,
    /// `sha256:<hex>` of its bytes.
    pub digest: String,
}

/// How a step's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    pub exit_code: i32,
    /// Where the runtime mounted something over the root (its own mounts
    /// and the step's): empty files or directories there are stubs.
    pub mount_points: Vec<String>,
}
