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
    /// The default bridge, the subnets networks get and the firewall
    /// (daemon.json's `bridge`, `bip`, `default-address-pools` and
    /// `firewall-backend`).
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
    /// `firewall-backend`: what Kiln's firewall rules are written with;
    /// `None`: nftables where the `nft` program is installed, else iptables
    /// where `iptables` is.
    pub firewall_backend: Option<FirewallBackend>,
}

/// What Kiln's firewall rules are written with (daemon.json's
/// `firewall-backend`, Docker 28's key and values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FirewallBackend {
    /// Kiln's own table, `table ip kiln` (see `kiln_network::nft`).
    Nftables,
    /// Kiln's own chains, `KILN-…`, and a jump to each from the built-in
    /// chains (see `kiln_network::iptables`).
    Iptables,
}

impl FirewallBackend {
    /// The name in daemon.json.
    pub fn as_str(self) -> &'static str {
        match self {
            FirewallBackend::Nftables => "nftables",
            FirewallBackend::Iptables => "iptables",
        }
    }
}

impl std::fmt::Display for FirewallBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `firewall-backend` that is neither `nftables` nor `iptables`.
#[derive(Debug, thiserror::Error)]
#[error("unknown firewall backend {0:?}: use \"nftables\" or \"iptables\"")]
pub struct UnknownFirewallBackend(String);

impl std::str::FromStr for FirewallBackend {
    type Err = UnknownFirewallBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nftables" => Ok(FirewallBackend::Nftables),
            "iptables" => Ok(FirewallBackend::Iptables),
            other => Err(UnknownFirewallBackend(other.to_owned())),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firewall_backend_takes_dockers_two_names_and_refuses_others() {
        for backend in [FirewallBackend::Nftables, FirewallBackend::Iptables] {
            assert_eq!(backend.as_str().parse::<FirewallBackend>().expect("parses"), backend);
        }
        for bad in ["", "bogus", "NFTABLES", "nft", "iptables-legacy"] {
            let err = bad.parse::<FirewallBackend>().expect_err(bad);
            assert_eq!(
                err.to_string(),
                format!("unknown firewall backend {bad:?}: use \"nftables\" or \"iptables\"")
            );
        }
    }
}
