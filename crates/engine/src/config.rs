//! Where the engine keeps its state.

use std::path::PathBuf;

/// The directories of one engine; `kiln daemon` fills them from its flags,
/// `KILN_ROOT` and daemon.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Persistent state: content, snapshots, metadata (`/var/lib/kiln`).
    pub root: PathBuf,
    /// Runtime state, gone at reboot: sockets, pid files (`/run/kiln`).
    pub exec_root: PathBuf,
    /// Whether the daemon runs with debug logging (reported by `info`).
    pub debug: bool,
    /// The `kiln` executable that runs shims (`kiln shim`); `None`: this
    /// process's own executable.
    pub exe: Option<PathBuf>,
    /// The default bridge and the subnets networks get (daemon.json's
    /// `bridge`, `bip` and `default-address-pools`).
    pub network: NetworkConfig,
}

/// daemon.json's network keys, with Docker's meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkConfig {
    /// `bridge`: the default bridge's interface; `None`: `kiln0`.
    pub bridge: Option<String>,
    /// `bip`: the default bridge's address and subnet; `None`: the first
    /// free subnet of the pools.
    pub bip: Option<kiln_network::ipam::Bip>,
    /// `default-address-pools`: where subnets of new networks (and of the
    /// default bridge without `bip`) come from; empty: Docker's defaults.
    pub default_address_pools: Vec<kiln_network::Pool>,
}

impl Config {
    /// The default persistent root.
    pub const DEFAULT_ROOT: &'static str = "/var/lib/kiln";
    /// The default runtime-state root.
    pub const DEFAULT_EXEC_ROOT: &'static str = "/run/kiln";

    pub fn new(root: impl Into<PathBuf>, exec_root: impl Into<PathBuf>) -> Config {
        Config {
            root: root.into(),
            exec_root: exec_root.into(),
            debug: false,
            exe: None,
            network: NetworkConfig::default(),
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::new(Config::DEFAULT_ROOT, Config::DEFAULT_EXEC_ROOT)
    }
}
