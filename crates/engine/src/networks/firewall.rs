//! Kiln's firewall (its nftables table, or its iptables chains) and IPv4
//! forwarding, kept in step with the networks in use.
//!
//! The whole table is rebuilt from the state ([`Networks::sync_firewall`]):
//! every bridge network with a running container on it, and every port
//! published by a running container. It is applied only when it differs
//! from what was applied last, so a container without published ports that
//! starts on a network already in use costs no `nft` run.
//!
//! When the last container on a bridge stops, the table and forwarding are
//! not removed at once but [`GRACE`] later if nothing started meanwhile:
//! `run --rm` in a loop would otherwise pay two `nft` runs (about 25 ms
//! each) per container. Published ports never wait: a stopped container's
//! DNAT rules go before its port reservations are released.
//!
//! The rules are written with one [`FirewallBackend`]: daemon.json's
//! `firewall-backend`, else nftables where the `nft` program is installed,
//! else iptables where `iptables` is (else nftables, whose error says what
//! to install).
//!
//! Two marks in `<exec-root>/network/` let a daemon that was killed undo
//! what it did: `firewall` exists while Kiln's rules may be in the kernel
//! and names the backends that wrote them, one a line (empty: nftables, as
//! daemons before the iptables backend left it), so that a daemon
//! restarted with the other backend still removes them; `ip_forward` holds
//! what forwarding was before Kiln turned it on.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_network::iptables::{self, IptablesError};
use kiln_network::nft::{self, BridgeNetwork, NftError, PublishedPort, Ruleset};
use kiln_network::sysctl;
use kiln_types::{ErrorKind, HasKind};

use super::{lock, Inner, NetworkError, Networks, DEFAULT_NETWORK};
use crate::config::FirewallBackend;

/// How long the table outlives the last container on a bridge.
pub(super) const GRACE: Duration = Duration::from_secs(2);

/// The mark of a table that may be in the kernel.
const FIREWALL_MARK: &str = "firewall";
/// The mark of forwarding turned on by Kiln: "0" or "1", what it was.
const FORWARD_MARK: &str = "ip_forward";

/// Why Kiln's firewall rules could not be written or removed.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error(transparent)]
    Nftables(#[from] NftError),
    #[error(transparent)]
    Iptables(#[from] IptablesError),
}

impl FirewallError {
    /// The backend's program is not installed.
    fn is_not_installed(&self) -> bool {
        matches!(
            self,
            Self::Nftables(NftError::NotInstalled)
                | Self::Iptables(IptablesError::NotInstalled { .. })
        )
    }
}

impl HasKind for FirewallError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Nftables(err) => err.kind(),
            Self::Iptables(err) => err.kind(),
        }
    }
}

/// Replaces Kiln's rules in `backend` with `ruleset`.
fn apply(backend: FirewallBackend, ruleset: &Ruleset) -> Result<(), FirewallError> {
    match backend {
        FirewallBackend::Nftables => Ok(nft::apply(ruleset)?),
        FirewallBackend::Iptables => Ok(iptables::apply(ruleset)?),
    }
}

/// Deletes Kiln's rules from `backend`; none there is fine.
fn remove(backend: FirewallBackend) -> Result<(), FirewallError> {
    match backend {
        FirewallBackend::Nftables => Ok(nft::remove()?),
        FirewallBackend::Iptables => Ok(iptables::remove()?),
    }
}

/// daemon.json's backend, or the default: nftables where `nft` is
/// installed, else iptables where `iptables` is, else nftables (whose
/// error names the package to install).
fn choose_backend(configured: Option<FirewallBackend>) -> FirewallBackend {
    configured.unwrap_or_else(|| {
        if !is_installed("nft") && is_installed("iptables") {
            FirewallBackend::Iptables
        } else {
            FirewallBackend::Nftables
        }
    })
}

/// Whether `program` is on `PATH` or in the sbin directories (where the
/// backends look too: a daemon started with a minimal environment may not
/// have them on `PATH`).
fn is_installed(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .any(|dir| dir.join(program).is_file())
}

/// The backends a `firewall` mark names; an empty mark is nftables'.
fn parse_mark(text: &str) -> Vec<FirewallBackend> {
    let mut backends: Vec<FirewallBackend> =
        text.split_whitespace().filter_map(|word| word.parse().ok()).collect();
    if backends.is_empty() {
        backends.push(FirewallBackend::Nftables);
    }
    backends.dedup();
    backends
}

/// What this daemon has done to the kernel's firewall and forwarding.
#[derive(Debug)]
pub(super) struct State {
    /// What this daemon writes its rules with.
    backend: FirewallBackend,
    /// The ruleset last applied; `None` when the rules are not ours to know.
    applied: Option<Ruleset>,
    /// Backends whose rules an earlier daemon (or this one, before
    /// [`State::invalidate`]) may have left in the kernel.
    stale: Vec<FirewallBackend>,
    /// What IPv4 forwarding was before Kiln turned it on; `None` while Kiln
    /// has not touched it.
    forward_was_on: Option<bool>,
    /// Bumped by every sync, so that a delayed removal knows it is stale.
    generation: u64,
    /// The backend's program is missing and that was said once.
    warned_missing: bool,
}

impl State {
    /// The state a previous daemon left, from its marks, for a daemon
    /// configured with `backend` (daemon.json's, if any).
    pub(super) fn load(state_dir: &Path, backend: Option<FirewallBackend>) -> State {
        let forward_was_on = match std::fs::read_to_string(state_dir.join(FORWARD_MARK)) {
            Ok(text) => match text.trim() {
                "0" => Some(false),
                "1" => Some(true),
                _ => None,
            },
            Err(_) => None,
        };
        let stale = match std::fs::read_to_string(state_dir.join(FIREWALL_MARK)) {
            Ok(text) => parse_mark(&text),
            Err(_) => Vec::new(),
        };
        let backend = choose_backend(backend);
        tracing::debug!(backend = %backend, "firewall backend");
        State {
            backend,
            applied: None,
            stale,
            forward_was_on,
            generation: 0,
            warned_missing: false,
        }
    }

    /// Forgets what was applied, so that the next sync applies for sure
    /// (after a restart the kernel's table is not known).
    pub(super) fn invalidate(&mut self) {
        if self.applied.take().is_some() && !self.stale.contains(&self.backend) {
            self.stale.push(self.backend);
        }
    }

    /// Deletes Kiln's rules (of every backend that may have some) and
    /// restores forwarding, now.
    pub(super) fn remove_now(&mut self, state_dir: &Path) {
        if self.applied.is_some() || !self.stale.is_empty() {
            let mut backends = std::mem::take(&mut self.stale);
            if self.applied.take().is_some() && !backends.contains(&self.backend) {
                backends.push(self.backend);
            }
            for backend in backends {
                match remove(backend) {
                    Ok(()) => tracing::info!(backend = %backend, "removed Kiln's firewall rules"),
                    Err(err) if err.is_not_installed() => {}
                    Err(err) => {
                        tracing::warn!(backend = %backend, error = %err, "cannot remove Kiln's firewall rules")
                    }
                }
            }
            let _ = std::fs::remove_file(state_dir.join(FIREWALL_MARK));
        }
        if let Some(was_on) = self.forward_was_on.take() {
            if let Err(err) = sysctl::restore_ip_forward(was_on) {
                tracing::warn!(error = %err, "cannot restore IPv4 forwarding");
            }
            let _ = std::fs::remove_file(state_dir.join(FORWARD_MARK));
        }
    }

    /// Turns IPv4 forwarding on unless Kiln already did, remembering (in
    /// memory and in its mark) what it was.
    fn ensure_forwarding(&mut self, state_dir: &Path) -> Result<(), NetworkError> {
        if self.forward_was_on.is_some() {
            return Ok(());
        }
        let was_on = sysctl::enable_ip_forward().map_err(NetworkError::Sysctl)?;
        let mark = state_dir.join(FORWARD_MARK);
        if let Err(err) = std::fs::write(&mark, if was_on { "1\n" } else { "0\n" }) {
            tracing::warn!(path = %mark.display(), error = %err, "cannot record IPv4 forwarding");
        }
        if !was_on {
            tracing::info!("turned IPv4 forwarding on");
        }
        self.forward_was_on = Some(was_on);
        Ok(())
    }
}

impl Networks {
    /// Makes the kernel's table match the state in `inner`: applies it when
    /// it changed, deletes it (now, or after [`GRACE`]) when no bridge is in
    /// use.
    pub(super) fn sync_firewall(&self, inner: &mut Inner) -> Result<(), NetworkError> {
        let target = ruleset(inner)?;
        let state = &mut inner.firewall;
        state.generation += 1;
        if target.networks.is_empty() {
            match &state.applied {
                None if state.stale.is_empty() && state.forward_was_on.is_none() => {}
                Some(applied) if applied.ports.is_empty() => self.remove_later(state.generation),
                _ => state.remove_now(&self.state_dir),
            }
            return Ok(());
        }
        state.ensure_forwarding(&self.state_dir)?;
        if state.applied.as_ref() == Some(&target) {
            return Ok(());
        }
        // Rules another backend left (a daemon restarted with the other
        // one) go first, so that two sets never answer at once; those that
        // cannot be removed stay marked for the next try.
        let backend = state.backend;
        state.stale.retain(|&old| {
            if old == backend {
                return true;
            }
            match remove(old) {
                Ok(()) => {
                    tracing::info!(backend = %old, "removed the firewall rules of the other backend");
                    false
                }
                Err(err) if err.is_not_installed() => false,
                Err(err) => {
                    tracing::warn!(backend = %old, error = %err, "cannot remove the firewall rules of the other backend");
                    true
                }
            }
        });
        let mut marked: Vec<&str> = vec![backend.as_str()];
        marked.extend(state.stale.iter().filter(|&&b| b != backend).map(|b| b.as_str()));
        let mark = self.state_dir.join(FIREWALL_MARK);
        if let Err(err) = std::fs::write(&mark, format!("{}\n", marked.join("\n"))) {
            tracing::warn!(path = %mark.display(), error = %err, "cannot mark the firewall rules");
        }
        match apply(backend, &target) {
            Ok(()) => {}
            // Without the backend's program, containers still reach each
            // other on a bridge: that much works. Published ports would
            // silently not, so those fail.
            Err(err) if err.is_not_installed() && target.ports.is_empty() => {
                if !state.warned_missing {
                    tracing::warn!(
                        error = %err,
                        "containers on bridges get no NAT to the outside"
                    );
                    state.warned_missing = true;
                }
            }
            Err(err) => return Err(NetworkError::Firewall(err)),
        }
        state.applied = Some(target);
        state.stale.retain(|&old| old != backend);
        Ok(())
    }

    /// Removes the table and restores forwarding after [`GRACE`], unless a
    /// sync happens meanwhile.
    fn remove_later(&self, generation: u64) {
        let me = self.me.clone();
        let spawned = std::thread::Builder::new().name("kiln-firewall".into()).spawn(move || {
            std::thread::sleep(GRACE);
            let Some(networks) = me.upgrade() else { return };
            let mut inner = lock(&networks.inner);
            if inner.firewall.generation == generation {
                inner.firewall.remove_now(&networks.state_dir);
            }
        });
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "cannot schedule the firewall's removal");
        }
    }
}

/// The table for the state: bridge networks with a running container (the
/// default bridge first, then by name) and every published port.
pub(super) fn ruleset(inner: &Inner) -> Result<Ruleset, NetworkError> {
    let mut in_use: Vec<_> =
        inner.networks.values().filter(|n| n.is_bridge() && !n.endpoints.is_empty()).collect();
    in_use.sort_by_key(|n| (n.name != DEFAULT_NETWORK, n.name.clone()));
    let mut networks = Vec::new();
    for n in in_use {
        let subnet = n.subnet.parse()?;
        networks.push(
            BridgeNetwork::new(&n.bridge, subnet, n.internal).map_err(NetworkError::BridgeName)?,
        );
    }
    let ports = inner
        .published
        .values()
        .flatten()
        .map(|p| PublishedPort {
            host_ip: p.host_ip.and_then(|ip| match ip {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            }),
            host_port: p.mapping.host_port,
            container_ip: p.container_ip,
            container_port: p.mapping.container_port,
            proto: p.mapping.proto,
        })
        .filter(|p| p.container_ip != Ipv4Addr::UNSPECIFIED)
        .collect();
    Ok(Ruleset { networks, ports })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_names_the_backends_whose_rules_may_be_left() {
        // Daemons before the iptables backend left an empty mark.
        assert_eq!(parse_mark(""), [FirewallBackend::Nftables]);
        assert_eq!(parse_mark("iptables\n"), [FirewallBackend::Iptables]);
        assert_eq!(
            parse_mark("iptables\nnftables\n"),
            [FirewallBackend::Iptables, FirewallBackend::Nftables]
        );
    }

    #[test]
    fn a_restarted_daemon_knows_which_backend_left_rules() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch dir");
        let state = State::load(dir.path(), Some(FirewallBackend::Nftables));
        assert!(state.stale.is_empty(), "no mark, nothing left");
        std::fs::write(dir.path().join(FIREWALL_MARK), "iptables\n").expect("mark");
        let state = State::load(dir.path(), Some(FirewallBackend::Nftables));
        assert_eq!(state.backend, FirewallBackend::Nftables);
        assert_eq!(state.stale, [FirewallBackend::Iptables]);
    }

    #[test]
    fn the_configured_backend_wins_over_what_is_installed() {
        for backend in [FirewallBackend::Nftables, FirewallBackend::Iptables] {
            assert_eq!(choose_backend(Some(backend)), backend);
        }
    }
}
