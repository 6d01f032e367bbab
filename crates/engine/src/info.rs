//! What the engine reports about itself: [`EngineInfo`] and [`EngineVersion`].

use std::path::PathBuf;
use std::time::SystemTime;

use crate::config::Config;
use crate::host::HostFacts;

/// Containers by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerCounts {
    pub running: u64,
    pub paused: u64,
    pub stopped: u64,
}

impl ContainerCounts {
    pub fn total(&self) -> u64 {
        self.running + self.paused + self.stopped
    }
}

/// An OCI runtime the engine can start containers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEntry {
    pub name: String,
    pub path: PathBuf,
}

/// A security feature that applies to every container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityOption {
    /// System-call filtering, with the named default profile.
    Seccomp { profile: String },
}

/// The engine's state and the host it runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineInfo {
    pub id: String,
    pub containers: ContainerCounts,
    pub images: u64,
    /// The snapshotter's name, in Docker's terms (`overlay2`).
    pub storage_driver: String,
    /// Label/value facts about the storage driver.
    pub storage_driver_status: Vec<(String, String)>,
    pub cgroup_driver: String,
    pub logging_driver: String,
    pub root: PathBuf,
    pub exec_root: PathBuf,
    pub debug: bool,
    pub host: HostFacts,
    pub version: EngineVersion,
    pub runtimes: Vec<RuntimeEntry>,
    pub default_runtime: String,
    pub security_options: Vec<SecurityOption>,
    pub warnings: Vec<String>,
    pub now: SystemTime,
    /// Bytes of /dev/shm a container without `--shm-size` or a memory
    /// limit gets (Kiln's ML default).
    pub default_shm_size: i64,
}

/// The engine's own version and build facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    /// Kiln's release, such as `0.1.0`.
    pub version: String,
    /// The commit it was built from, when the build recorded one
    /// (`KILN_GIT_COMMIT` at build time).
    pub git_commit: Option<String>,
    /// When it was built (`KILN_BUILD_TIME` at build time, RFC 3339).
    pub build_time: Option<String>,
    /// Rust's name for the CPU architecture (`x86_64`, `aarch64`).
    pub arch: String,
    pub os: String,
    pub kernel_version: String,
    /// The runtime bundled in this executable (`kiln runtime`).
    pub runtime: RuntimeEntry,
}

/// The name of the bundled runtime, and the default one.
pub const BUNDLED_RUNTIME: &str = "kiln";

pub(crate) fn version() -> EngineVersion {
    EngineVersion {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        git_commit: option_env!("KILN_GIT_COMMIT").map(str::to_owned),
        build_time: option_env!("KILN_BUILD_TIME").map(str::to_owned),
        arch: std::env::consts::ARCH.to_owned(),
        os: std::env::consts::OS.to_owned(),
        kernel_version: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        runtime: bundled_runtime(),
    }
}

fn bundled_runtime() -> RuntimeEntry {
    // The daemon is the `kiln` executable; `kiln runtime` is in the same file.
    let path = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("kiln"));
    RuntimeEntry { name: BUNDLED_RUNTIME.to_owned(), path }
}

pub(crate) fn collect(config: &Config, id: &str) -> EngineInfo {
    let version = version();
    EngineInfo {
        id: id.to_owned(),
        containers: ContainerCounts::default(),
        default_shm_size: 0,
        images: 0,
        storage_driver: "overlay2".to_owned(),
        storage_driver_status: Vec::new(),
        cgroup_driver: "cgroupfs".to_owned(),
        logging_driver: "json-file".to_owned(),
        root: config.root.clone(),
        exec_root: config.exec_root.clone(),
        debug: config.debug,
        host: HostFacts::read(),
        runtimes: vec![version.runtime.clone()],
        default_runtime: BUNDLED_RUNTIME.to_owned(),
        version,
        security_options: vec![SecurityOption::Seccomp { profile: "builtin".to_owned() }],
        warnings: Vec::new(),
        now: SystemTime::now(),
    }
}
