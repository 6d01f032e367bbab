//! Kiln's nftables table and IPv4 forwarding, kept in step with the
//! networks in use.
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
//! Two marks in `<exec-root>/network/` let a daemon that was killed undo
//! what it did: `firewall` exists while Kiln's table may be in the kernel,
//! and `ip_forward` holds what forwarding was before Kiln turned it on.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use kiln_network::nft::{self, BridgeNetwork, NftError, PublishedPort, Ruleset};
use kiln_network::sysctl;

use super::{lock, Inner, NetworkError, Networks, DEFAULT_NETWORK};

/// How long the table outlives the last container on a bridge.
pub(super) const GRACE: Duration = Duration::from_secs(2);

/// The mark of a table that may be in the kernel.
const FIREWALL_MARK: &str = "firewall";
/// The mark of forwarding turned on by Kiln: "0" or "1", what it was.
const FORWARD_MARK: &str = "ip_forward";

/// What this daemon has done to the kernel's firewall and forwarding.
#[derive(Debug, Default)]
pub(super) struct State {
    /// The ruleset last applied; `None` when the table is not ours to know.
    applied: Option<Ruleset>,
    /// A table an earlier daemon applied may still be in the kernel.
    stale_table: bool,
    /// What IPv4 forwarding was before Kiln turned it on; `None` while Kiln
    /// has not touched it.
    forward_was_on: Option<bool>,
    /// Bumped by every sync, so that a delayed removal knows it is stale.
    generation: u64,
    /// `nft` is missing and that was said once.
    warned_missing_nft: bool,
}

impl State {
    /// The state a previous daemon left, from its marks.
    pub(super) fn load(state_dir: &Path) -> State {
        let forward_was_on = match std::fs::read_to_string(state_dir.join(FORWARD_MARK)) {
            Ok(text) => match text.trim() {
                "0" => Some(false),
                "1" => Some(true),
                _ => None,
            },
            Err(_) => None,
        };
        State {
            stale_table: state_dir.join(FIREWALL_MARK).exists(),
            forward_was_on,
            ..State::default()
        }
    }

    /// Forgets what was applied, so that the next sync applies for sure
    /// (after a restart the kernel's table is not known).
    pub(super) fn invalidate(&mut self) {
        if self.applied.take().is_some() {
            self.stale_table = true;
        }
    }

    /// Deletes Kiln's table and restores forwarding, now.
    pub(super) fn remove_now(&mut self, state_dir: &Path) {
        if self.applied.is_some() || self.stale_table {
            match nft::remove() {
                Ok(()) => tracing::info!("removed Kiln's firewall table"),
                Err(NftError::NotInstalled) => {}
                Err(err) => tracing::warn!(error = %err, "cannot remove Kiln's firewall table"),
            }
            self.applied = None;
            self.stale_table = false;
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
                None if !state.stale_table && state.forward_was_on.is_none() => {}
                Some(applied) if applied.ports.is_empty() => self.remove_later(state.generation),
                _ => state.remove_now(&self.state_dir),
            }
            return Ok(());
        }
        state.ensure_forwarding(&self.state_dir)?;
        if state.applied.as_ref() == Some(&target) {
            return Ok(());
        }
        let mark = self.state_dir.join(FIREWALL_MARK);
        if let Err(err) = std::fs::write(&mark, "") {
            tracing::warn!(path = %mark.display(), error = %err, "cannot mark the firewall table");
        }
        match nft::apply(&target) {
            Ok(()) => {}
            // Without nft, containers still reach each other on a bridge:
            // that much works. Published ports would silently not, so those
            // fail.
            Err(NftError::NotInstalled) if target.ports.is_empty() => {
                if !state.warned_missing_nft {
                    tracing::warn!(
                        "nft not found: containers on bridges get no NAT to the outside; install nftables"
                    );
                    state.warned_missing_nft = true;
                }
            }
            Err(err) => return Err(NetworkError::Firewall(err)),
        }
        state.applied = Some(target);
        state.stale_table = false;
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
            BridgeNetwork::new(&n.bridge, subnet, n.internal).map_err(NetworkError::Firewall)?,
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
