//! A container's place on its networks, in the kernel: its network
//! namespace (`<exec-root>/netns/<id>`), a veth pair per network, its
//! addresses, and the host ports it publishes.
//!
//! [`Networks::attach`] does it all before the container's process exists
//! (the runtime then joins the namespace by path) and undoes what it did
//! when a step fails; [`Networks::detach`] undoes it when the container
//! stops: the DNAT rules first, then the ports' reservations, then the
//! addresses, the veths and the namespace.
//!
//! The kernel's slow parts of a start, creating a namespace (a thread that
//! unshares, about a millisecond of kernel work) and a veth pair (another),
//! are done ahead: once a container has joined a bridge, a thread makes the
//! next start's namespace, unnamed and held open by the daemon, with `lo`
//! up, a netlink socket inside, and a veth pair whose inner end is `eth0`
//! and whose host end waits, down, in no bridge and with IPv6 off, as `ksp`
//! and 12 random hex digits ([`SpareSlot`]). A start then only names the
//! namespace (a bind mount) and renames, enslaves and addresses the pair:
//! two netlink round trips, no thread. The spare is never a container's
//! until then, so nothing of one container can reach another; a daemon
//! that dies takes it along (its namespace had no other holder, and its
//! veth pair goes with it), and one that stops deletes it. Measured with
//! bench/networks.sh, this took the default bridge's cost per `run --rm`
//! from about 11 ms to about 2 ms over `--network none` (see [`unplug`]
//! for the rest on a host with many tracked connections).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kiln_network::ipam::{Allocator, IpamError, Subnet};
use kiln_network::ports::{self, PortBinding, PortError, PortReservation};
use kiln_network::sysctl;
use kiln_sys::netlink::{Netlink, Plug, SpareVeth};
use kiln_sys::netns;

use super::{
    allocator_of, find, format_mac, host_ip_text, lock, mac_for, parse_ip, Endpoint,
    EndpointConfig, Inner, NetworkError, NetworkRecord, Networks,
};
use crate::containers::model::PortMapping;

/// A port published by a running container, and the socket holding it.
#[derive(Debug)]
pub(super) struct Published {
    pub(super) mapping: PortMapping,
    pub(super) host_ip: Option<IpAddr>,
    /// The container's address on its first network: where the DNAT goes.
    pub(super) container_ip: Ipv4Addr,
    /// Held until the port's rules are gone; `None` for sctp, and for a
    /// port a restarted daemon could not bind again.
    _reservation: Option<PortReservation>,
}

/// A stopped container's kernel objects on their way out.
#[derive(Debug, Clone, Default)]
pub(super) struct Releasing {
    /// (network id, address): taken until the veths are gone.
    addresses: Vec<(String, Ipv4Addr)>,
    veths: Vec<String>,
    /// A thread is deleting them now.
    in_progress: bool,
}

impl Releasing {
    /// Its addresses on network `network`.
    pub(super) fn addresses<'a>(&'a self, network: &'a str) -> impl Iterator<Item = Ipv4Addr> + 'a {
        self.addresses.iter().filter(move |(n, _)| n == network).map(|(_, ip)| *ip)
    }
}

/// One line of a container's endpoints file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SavedEndpoint {
    network: String,
    endpoint: Endpoint,
}

/// Puts the endpoints files of a previous daemon back into the records, for
/// [`Networks::recover`] to judge.
pub(super) fn load_endpoints(dir: &Path, networks: &mut BTreeMap<String, NetworkRecord>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let saved: Vec<SavedEndpoint> = match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
        {
            Ok(saved) => saved,
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "skipping a damaged endpoints file");
                continue;
            }
        };
        for SavedEndpoint { network, endpoint } in saved {
            if let Some(record) = networks.get_mut(&network) {
                record.endpoints.insert(endpoint.container_id.clone(), endpoint);
            }
        }
    }
}

/// Deletes a namespace and host veths (their container ends go with them);
/// what is already gone is fine.
///
/// The namespace goes first: its container ends then go down in a
/// namespace on its way out, which the kernel's NAT (masquerade) ignores,
/// instead of in a live one, for which it walks the whole connection
/// tracking table, once per interface and once per address going away (a
/// few milliseconds of a kernel worker per stop on a host with many
/// connections). Only the host ends, which live on, are walked for.
fn unplug(veths: &[String], netns: &Path) {
    if let Err(err) = netns::remove_named(netns) {
        tracing::warn!(path = %netns.display(), error = %err, "cannot remove a network namespace");
    }
    if veths.is_empty() {
        return;
    }
    match Netlink::open() {
        Ok(nl) => {
            for veth in veths {
                if let Err(err) = nl.delete_link(veth) {
                    tracing::warn!(veth = %veth, error = %err, "cannot delete a veth");
                }
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot delete veths"),
    }
}

/// A published port of a container that survived a daemon restart, held
/// again; a port someone took meanwhile keeps its rule but is not held.
fn hold_again(id: &str, mapping: &PortMapping, container_ip: Ipv4Addr) -> Published {
    let host_ip = mapping.host_ip.parse::<IpAddr>().ok().filter(|ip| !ip.is_unspecified());
    let reservation = match PortReservation::bind(mapping.proto, host_ip, mapping.host_port) {
        Ok(r) => Some(r),
        Err(err) => {
            tracing::warn!(container = %id, port = mapping.host_port, error = %err, "cannot hold a published port again");
            None
        }
    };
    Published { mapping: mapping.clone(), host_ip, container_ip, _reservation: reservation }
}

/// A published port as a running container would hold it, without the
/// socket, for tests of the plans built from it.
#[cfg(test)]
pub(super) fn tests_published(binding: &PortBinding, container_ip: Ipv4Addr) -> Published {
    Published {
        mapping: PortMapping {
            container_port: binding.container_port,
            proto: binding.proto,
            host_ip: host_ip_text(binding.host_ip),
            host_port: binding.host_port.unwrap_or(0),
        },
        host_ip: binding.host_ip,
        container_ip,
        _reservation: None,
    }
}

/// A container's network namespace while it is being joined: open, with a
/// netlink socket inside it, so that nothing has to enter it. Made ahead of
/// a start (a spare), it is not named yet and also has the veth pair its
/// first network takes.
#[derive(Debug)]
struct OpenNamespace {
    netns: File,
    inside: Netlink,
    /// The unused pair of a spare; deleted with it when not taken.
    veth: Option<SpareVeth>,
}

impl OpenNamespace {
    /// A new namespace with `lo` up and an unused veth pair, the host end
    /// made through `nl`.
    fn spare(nl: &Netlink) -> io::Result<OpenNamespace> {
        let (netns, inside) = netns::create(|| {
            let inside = Netlink::open()?;
            inside.set_up("lo")?;
            Ok(inside)
        })?;
        let host = format!("ksp{}", crate::containers::random_hex(6));
        let veth = nl.create_spare_veth(&host, "eth0", netns.as_fd(), &inside)?;
        if let Err(err) = sysctl::disable_ipv6(&host) {
            tracing::debug!(veth = %host, error = %err, "cannot turn IPv6 off on a spare veth");
        }
        Ok(OpenNamespace { netns, inside, veth: Some(veth) })
    }

    /// A container's namespace that exists already, at `path`.
    fn existing(path: &Path) -> io::Result<OpenNamespace> {
        let netns = netns::open(path)?;
        let inside = Netlink::open_in(&netns)?;
        Ok(OpenNamespace { netns, inside, veth: None })
    }

    /// Whether a spare's host end is still the one it made (nothing outside
    /// the daemon deleted or replaced it meanwhile).
    fn is_intact(&self, nl: &Netlink) -> bool {
        self.veth.as_ref().is_some_and(|veth| {
            nl.link(&veth.host_name)
                .is_ok_and(|link| link.is_some_and(|l| l.index == veth.host_index))
        })
    }
}

impl Drop for OpenNamespace {
    /// An unused pair goes at once (its namespace goes when its last file
    /// is closed, which would take the pair along, but a while later). By
    /// index: the name may be someone else's by now.
    fn drop(&mut self) {
        if let Some(veth) = self.veth.take() {
            if let Err(err) = Netlink::open().and_then(|nl| nl.delete_link_index(veth.host_index)) {
                tracing::warn!(veth = %veth.host_name, error = %err, "cannot delete a spare veth");
            }
        }
    }
}

/// The next start's namespace, made ahead (see the module's documentation).
#[derive(Debug, Default)]
pub(super) struct SpareSlot {
    state: Mutex<SpareState>,
}

#[derive(Debug, Default)]
struct SpareState {
    ready: Option<OpenNamespace>,
    /// A thread is making one.
    making: bool,
}

impl SpareSlot {
    fn state(&self) -> std::sync::MutexGuard<'_, SpareState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a starting container asks of its networks.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// Its network mode: the first network's name or id.
    pub network: &'a str,
    pub ports: Vec<PortBinding>,
    /// `--mac-address`, for the first network.
    pub mac: Option<[u8; 6]>,
}

/// A container joined to its networks.
#[derive(Debug, Clone)]
pub(crate) struct Joined {
    /// The namespace the runtime joins.
    pub netns: PathBuf,
    /// Network names and endpoints, the first network first.
    pub endpoints: Vec<(String, Endpoint)>,
    pub ports: Vec<PortMapping>,
}

impl Networks {
    /// `<exec-root>/netns/<id>`.
    pub(crate) fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    /// Joins a starting container to its networks: the one its mode names,
    /// then the others it is a member of. Nothing is left behind on error.
    /// Once joined, the next start's namespace is made, off this one's path.
    pub(crate) fn attach(&self, request: &JoinRequest<'_>) -> Result<Joined, NetworkError> {
        let started = std::time::Instant::now();
        let joined = self.join(request)?;
        // What bench/networks.sh's figure is made of, for `--debug`.
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        tracing::debug!(container = %request.id, micros, "joined networks");
        self.make_spare();
        Ok(joined)
    }

    fn join(&self, request: &JoinRequest<'_>) -> Result<Joined, NetworkError> {
        let id = request.id;
        let netns = self.netns_path(id);
        let mut inner = self.settled(id);
        let first = find(&inner.networks, request.network)?.clone();
        if !first.is_bridge() {
            return Err(NetworkError::NoNetworkNamespace);
        }
        let mut joining = vec![first.clone()];
        let mut others: Vec<NetworkRecord> = inner
            .networks
            .values()
            .filter(|n| n.id != first.id && n.is_bridge() && n.members.contains_key(id))
            .cloned()
            .collect();
        others.sort_by(|a, b| a.name.cmp(&b.name));
        joining.extend(others);

        // Ports first: the likeliest failure, and nothing to undo.
        let mut published = Vec::with_capacity(request.ports.len());
        for binding in &request.ports {
            published.push(reserve(binding)?);
        }
        let nl = Netlink::open().map_err(|source| NetworkError::Attach {
            container: request.name.to_owned(),
            network: first.name.clone(),
            source,
        })?;
        let mut bridges = Vec::with_capacity(joining.len());
        for network in &joining {
            bridges.push(self.ensure_bridge(&nl, &mut inner, network)?);
        }
        // A namespace left by a crash is not this run's.
        let _ = netns::remove_named(&netns);
        let namespace_failed =
            |source| NetworkError::Namespace { container: id.to_owned(), source };
        let mut sandbox = self.take_spare(&nl).map_err(namespace_failed)?;
        netns::mount_named(sandbox.netns.as_fd(), &netns).map_err(namespace_failed)?;
        let mut plugged: Vec<String> = Vec::new();
        let mut joined = Ok(());
        for (index, network) in joining.iter_mut().enumerate() {
            let config = network.members.get(id).cloned().unwrap_or_default();
            let mac = request.mac.filter(|_| index == 0);
            let bridge = bridges[index];
            let plugged_one = allocator_of(&inner, network).and_then(|mut allocator| {
                let at = Place { network, bridge, index, mac };
                plug(&nl, &mut sandbox, &at, &mut allocator, request, &config)
            });
            match plugged_one {
                Ok(endpoint) => {
                    plugged.push(endpoint.host_veth.clone());
                    network.endpoints.insert(id.to_owned(), endpoint);
                }
                Err(err) => {
                    joined = Err(err);
                    break;
                }
            }
        }
        drop(sandbox);
        if let Err(err) = joined {
            unplug(&plugged, &netns);
            return Err(err);
        }
        let first_ip = joining[0]
            .endpoints
            .get(id)
            .and_then(|e| e.ip.parse().ok())
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        for port in &mut published {
            port.container_ip = first_ip;
        }
        let ports: Vec<PortMapping> = published.iter().map(|p| p.mapping.clone()).collect();

        let before: Vec<NetworkRecord> =
            joining.iter().filter_map(|n| inner.networks.get(&n.id).cloned()).collect();
        for network in &joining {
            inner.networks.insert(network.id.clone(), network.clone());
        }
        inner.published.insert(id.to_owned(), published);
        let committed =
            self.save_endpoints(&inner, id).and_then(|()| self.sync_firewall(&mut inner));
        if let Err(err) = committed {
            for network in before {
                inner.networks.insert(network.id.clone(), network);
            }
            inner.published.remove(id);
            let _ = self.save_endpoints(&inner, id);
            if let Err(undo) = self.sync_firewall(&mut inner) {
                tracing::warn!(container = %id, error = %undo, "cannot take the firewall back");
            }
            unplug(&plugged, &netns);
            return Err(err);
        }
        drop(inner);
        for network in &joining {
            self.emit(network, "connect", Some(id));
        }
        Ok(Joined {
            netns,
            endpoints: joining
                .iter()
                .filter_map(|n| n.endpoints.get(id).map(|e| (n.name.clone(), e.clone())))
                .collect(),
            ports,
        })
    }

    /// The spare namespace if there is one, still whole; else a new one,
    /// made now.
    fn take_spare(&self, nl: &Netlink) -> io::Result<OpenNamespace> {
        let ready = self.spare.state().ready.take();
        match ready {
            Some(spare) if spare.is_intact(nl) => Ok(spare),
            _ => OpenNamespace::spare(nl),
        }
    }

    /// Makes the next start's namespace on a thread of its own, unless one
    /// is there or being made.
    fn make_spare(&self) {
        {
            let mut state = self.spare.state();
            if state.ready.is_some() || state.making {
                return;
            }
            state.making = true;
        }
        let me = self.me.clone();
        let spawned =
            std::thread::Builder::new().name("kiln-netns-spare".into()).spawn(move || {
                let made = Netlink::open().and_then(|nl| OpenNamespace::spare(&nl));
                // A daemon gone meanwhile: the spare is deleted as it drops.
                let Some(networks) = me.upgrade() else { return };
                let mut state = networks.spare.state();
                state.making = false;
                match made {
                    Ok(spare) => state.ready = Some(spare),
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot make a network namespace ahead")
                    }
                }
            });
        if spawned.is_err() {
            self.spare.state().making = false;
        }
    }

    /// Takes a stopped (or never started) container off its networks: its
    /// DNAT rules, then its port reservations, now; its veths and
    /// namespace on a thread of their own (deleting a veth waits for the
    /// kernel's RCU grace periods, tens of milliseconds that a `run --rm`
    /// need not wait for), its addresses staying taken until they are
    /// gone. Idempotent; failures are logged, since the container is gone
    /// either way.
    pub(crate) fn detach(&self, id: &str) {
        self.dns.stop(id);
        let mut inner = lock(&self.inner);
        let netns = self.netns_path(id);
        let ports = inner.published.remove(id);
        let mut releasing = inner.releasing.remove(id).unwrap_or_default();
        let mut changed = Vec::new();
        for network in inner.networks.values_mut() {
            if let Some(endpoint) = network.endpoints.remove(id) {
                if let Ok(ip) = endpoint.ip.parse() {
                    releasing.addresses.push((network.id.clone(), ip));
                }
                releasing.veths.push(endpoint.host_veth);
                changed.push(network.clone());
            }
        }
        if changed.is_empty() && ports.is_none() && releasing.veths.is_empty() && !netns.exists() {
            return;
        }
        let in_progress = releasing.in_progress;
        inner.releasing.insert(id.to_owned(), releasing);
        if let Err(err) = self.save_endpoints(&inner, id) {
            tracing::warn!(container = %id, error = %err, "cannot record the released endpoints");
        }
        // The rules first, then the reservations: a connection arriving in
        // between is refused instead of reaching whoever takes the port.
        if let Err(err) = self.sync_firewall(&mut inner) {
            tracing::warn!(container = %id, error = %err, "cannot update the firewall");
        }
        drop(ports);
        drop(inner);
        for network in &changed {
            self.emit(network, "disconnect", Some(id));
        }
        if in_progress {
            return;
        }
        let me = self.me.clone();
        let owned = id.to_owned();
        let spawned =
            std::thread::Builder::new().name("kiln-netns-release".into()).spawn(move || {
                if let Some(networks) = me.upgrade() {
                    networks.finish_release(&owned);
                }
            });
        if spawned.is_err() {
            self.finish_release(id);
        }
    }

    /// Deletes a stopped container's veths and namespace, then frees its
    /// addresses. Does nothing when a start of the same container took the
    /// work over.
    fn finish_release(&self, id: &str) {
        let job = {
            let mut inner = lock(&self.inner);
            match inner.releasing.get_mut(id) {
                Some(job) if !job.in_progress => {
                    job.in_progress = true;
                    job.veths.clone()
                }
                _ => return,
            }
        };
        unplug(&job, &self.netns_path(id));
        lock(&self.inner).releasing.remove(id);
        self.released.notify_all();
    }

    /// The lock, once container `id` has nothing left being released: a
    /// restart waits for the release in progress, or does a pending one
    /// itself, so that its namespace path and veth names are free.
    fn settled(&self, id: &str) -> std::sync::MutexGuard<'_, Inner> {
        let mut inner = lock(&self.inner);
        while inner.releasing.get(id).is_some_and(|job| job.in_progress) {
            inner = self.released.wait(inner).unwrap_or_else(|e| e.into_inner());
        }
        if let Some(job) = inner.releasing.remove(id) {
            unplug(&job.veths, &self.netns_path(id));
        }
        inner
    }

    /// Writes which endpoints container `id` has (no fsync: the file lives
    /// as long as the namespaces it describes, in the exec-root), or removes
    /// the file when it has none.
    pub(super) fn save_endpoints(&self, inner: &Inner, id: &str) -> Result<(), NetworkError> {
        let path = self.endpoints_dir.join(format!("{id}.json"));
        let saved: Vec<SavedEndpoint> = inner
            .networks
            .values()
            .filter_map(|n| {
                n.endpoints
                    .get(id)
                    .map(|e| SavedEndpoint { network: n.id.clone(), endpoint: e.clone() })
            })
            .collect();
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| NetworkError::Io { action, path, source }
        };
        if saved.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    Err(io("remove", &path)(err))
                }
                _ => Ok(()),
            };
        }
        let json = serde_json::to_vec(&saved).map_err(|e| io("encode", &path)(e.into()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("write", &path))
    }

    /// `network connect` of a running container: one more interface in its
    /// namespace, and membership for its next starts.
    pub(crate) fn connect_running(
        &self,
        id: &str,
        name: &str,
        network: &str,
        config: EndpointConfig,
    ) -> Result<NetworkRecord, NetworkError> {
        let mut inner = lock(&self.inner);
        let mut record = find(&inner.networks, network)?.clone();
        if record.driver == "host" {
            return Err(NetworkError::HostNetwork);
        }
        if !record.is_bridge() {
            return Err(NetworkError::NoNetworkNamespace);
        }
        if record.endpoints.contains_key(id) {
            return Err(NetworkError::AlreadyConnected {
                container: name.to_owned(),
                network: record.name,
            });
        }
        let netns = self.netns_path(id);
        // No namespace of the daemon's: the container was started without
        // one to add to (`none`, `host`, another container's network).
        if !netns.exists() {
            return Err(NetworkError::NoNetworkNamespace);
        }
        // The lowest free `ethN`: a container disconnected from the network
        // its mode names gets `eth0` back, and with it the default route.
        let used: BTreeSet<usize> = inner
            .networks
            .values()
            .filter_map(|n| n.endpoints.get(id))
            .filter_map(|e| e.interface.strip_prefix("eth")?.parse::<usize>().ok())
            .collect();
        let index = (0..).find(|i| !used.contains(i)).unwrap_or_default();
        let attach_failed = |source| NetworkError::Attach {
            container: name.to_owned(),
            network: record.name.clone(),
            source,
        };
        let nl = Netlink::open().map_err(attach_failed)?;
        let bridge = self.ensure_bridge(&nl, &mut inner, &record)?;
        let mut sandbox = OpenNamespace::existing(&netns).map_err(attach_failed)?;
        let request = JoinRequest { id, name, network, ports: Vec::new(), mac: None };
        let mut allocator = allocator_of(&inner, &record)?;
        let at = Place { network: &record, bridge, index, mac: None };
        let endpoint = plug(&nl, &mut sandbox, &at, &mut allocator, &request, &config)?;
        let before = record.clone();
        record.members.insert(id.to_owned(), config);
        record.endpoints.insert(id.to_owned(), endpoint.clone());
        inner.networks.insert(record.id.clone(), record.clone());
        let committed = self
            .store
            .put_all(&[&record])
            .and_then(|()| self.save_endpoints(&inner, id))
            .and_then(|()| self.sync_firewall(&mut inner));
        if let Err(err) = committed {
            inner.networks.insert(before.id.clone(), before.clone());
            let _ = self.store.put_all(&[&before]);
            let _ = self.save_endpoints(&inner, id);
            let _ = self.sync_firewall(&mut inner);
            let _ = nl.delete_link(&endpoint.host_veth);
            return Err(err);
        }
        drop(inner);
        self.emit(&record, "connect", Some(id));
        Ok(record)
    }

    /// `network disconnect` of a running container: its interface on the
    /// network goes, and so does its membership. Ports published to its
    /// address there stop answering.
    pub(crate) fn disconnect_running(
        &self,
        id: &str,
        name: &str,
        network: &str,
    ) -> Result<NetworkRecord, NetworkError> {
        let mut inner = lock(&self.inner);
        let mut record = find(&inner.networks, network)?.clone();
        if record.driver == "host" {
            return Err(NetworkError::HostNetwork);
        }
        let endpoint = record.endpoints.remove(id);
        let member = record.members.remove(id);
        if endpoint.is_none() && member.is_none() {
            return Err(NetworkError::NotConnected {
                container: name.to_owned(),
                network: record.name,
            });
        }
        self.store.put_all(&[&record])?;
        inner.networks.insert(record.id.clone(), record.clone());
        let Some(endpoint) = endpoint else { return Ok(record) };
        if let Err(err) = self.save_endpoints(&inner, id) {
            tracing::warn!(container = %id, error = %err, "cannot record the released endpoint");
        }
        let ip: Ipv4Addr = endpoint.ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
        let dropped: Vec<Published> = match inner.published.get_mut(id) {
            Some(list) => {
                let (gone, kept): (Vec<Published>, Vec<Published>) =
                    std::mem::take(list).into_iter().partition(|p| p.container_ip == ip);
                *list = kept;
                gone
            }
            None => Vec::new(),
        };
        if let Err(err) = self.sync_firewall(&mut inner) {
            tracing::warn!(container = %id, error = %err, "cannot update the firewall");
        }
        drop(dropped);
        // Deleted while the lock is held: the address is free once it is
        // released, and the veth must be gone by then.
        if let Err(err) = Netlink::open().and_then(|nl| nl.delete_link(&endpoint.host_veth)) {
            tracing::warn!(container = %id, veth = %endpoint.host_veth, error = %err, "cannot delete a veth");
        }
        drop(inner);
        self.emit(&record, "disconnect", Some(id));
        Ok(record)
    }

    /// After a daemon start: keeps the endpoints of containers in `alive`
    /// (by id, with their published ports) whose namespace is still there,
    /// releases every other endpoint and forgets members that are not in
    /// `known`; deletes namespaces and `kv…` veths of this daemon's bridges
    /// that belong to no one; holds the ports again; re-applies the table.
    pub(crate) fn recover(
        &self,
        known: &BTreeSet<String>,
        alive: &BTreeMap<String, Vec<PortMapping>>,
    ) {
        let mut inner = lock(&self.inner);
        let mut changed = Vec::new();
        let mut dropped = BTreeSet::new();
        for network in inner.networks.values_mut() {
            let members = network.members.len();
            network.endpoints.retain(|cid, _| {
                let keep = alive.contains_key(cid) && self.netns_path(cid).exists();
                if !keep {
                    dropped.insert(cid.clone());
                }
                keep
            });
            network.members.retain(|cid, _| known.contains(cid));
            if members != network.members.len() {
                changed.push(network.clone());
            }
        }
        let refs: Vec<&NetworkRecord> = changed.iter().collect();
        if let Err(err) = self.store.put_all(&refs) {
            tracing::warn!(error = %err, "cannot forget the members of removed containers");
        }
        for id in &dropped {
            if let Err(err) = self.save_endpoints(&inner, id) {
                tracing::warn!(container = %id, error = %err, "cannot record released endpoints");
            }
        }
        for entry in std::fs::read_dir(&self.endpoints_dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".json").unwrap_or(&name);
            if !inner.networks.values().any(|n| n.endpoints.contains_key(id)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        for entry in std::fs::read_dir(&self.netns_dir).into_iter().flatten().flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            let kept = inner.networks.values().any(|n| n.endpoints.contains_key(&id));
            if !kept {
                if let Err(err) = netns::remove_named(&entry.path()) {
                    tracing::warn!(container = %id, error = %err, "cannot remove a leftover network namespace");
                }
            }
        }
        for (id, mappings) in alive {
            let first_ip = inner
                .networks
                .values()
                .filter_map(|n| n.endpoints.get(id))
                .find(|e| e.interface == "eth0")
                .and_then(|e| e.ip.parse::<Ipv4Addr>().ok());
            let Some(container_ip) = first_ip else { continue };
            let held: Vec<Published> =
                mappings.iter().map(|m| hold_again(id, m, container_ip)).collect();
            if !held.is_empty() {
                inner.published.insert(id.clone(), held);
            }
        }
        sweep_veths(&inner);
        inner.firewall.invalidate();
        if let Err(err) = self.sync_firewall(&mut inner) {
            tracing::warn!(error = %err, "cannot re-apply the firewall");
        }
    }

    /// Creates `network`'s bridge with its gateway address, up, with
    /// `route_localnet` (for ports published on 127.0.0.1), unless this
    /// daemon did already and it is still there. Returns its index.
    fn ensure_bridge(
        &self,
        nl: &Netlink,
        inner: &mut Inner,
        network: &NetworkRecord,
    ) -> Result<u32, NetworkError> {
        let failed = |source: std::io::Error| NetworkError::Bridge {
            bridge: network.bridge.clone(),
            network: network.name.clone(),
            source,
        };
        if inner.bridges_ready.contains(&network.bridge) {
            if let Some(index) = nl.link_index(&network.bridge).map_err(failed)? {
                return Ok(index);
            }
        }
        let subnet: Subnet = network.subnet.parse()?;
        let gateway: Ipv4Addr =
            network.gateway.parse().unwrap_or_else(|_| subnet.default_gateway());
        let index = nl.create_bridge(&network.bridge, None).map_err(failed)?;
        nl.add_address(&network.bridge, gateway, subnet.prefix_len()).map_err(failed)?;
        nl.set_up(&network.bridge).map_err(failed)?;
        sysctl::enable_route_localnet(&network.bridge).map_err(NetworkError::Sysctl)?;
        tracing::info!(network = %network.name, bridge = %network.bridge, subnet = %subnet, "bridge up");
        inner.bridges_ready.insert(network.bridge.clone());
        Ok(index)
    }
}

/// Deletes a bridge (a network removed, the default bridge at shutdown).
pub(super) fn delete_bridge(bridge: &str) -> std::io::Result<()> {
    if bridge.is_empty() {
        return Ok(());
    }
    Netlink::open()?.delete_link(bridge)
}

/// Holds a host port for `binding`: the one asked for, or a free one.
fn reserve(binding: &PortBinding) -> Result<Published, NetworkError> {
    if binding.host_ip.is_some_and(|ip| ip.is_ipv6() && !ip.is_unspecified()) {
        return Err(NetworkError::Unsupported {
            message: format!(
                "cannot publish port {} on an IPv6 address: Kiln's networks are IPv4 only",
                binding.key()
            ),
        });
    }
    // `[::]` means every address, as `0.0.0.0` does: Kiln publishes on IPv4.
    let host_ip = binding.host_ip.filter(|ip| !ip.is_unspecified());
    let (port, reservation) = match binding.host_port {
        Some(port) => (port, PortReservation::bind(binding.proto, host_ip, port)?),
        None => {
            let port = ports::pick_free_port(binding.proto, host_ip).map_err(|source| {
                PortError::Bind {
                    proto: binding.proto,
                    addr: std::net::SocketAddr::new(
                        host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                        0,
                    ),
                    source,
                }
            })?;
            (port, PortReservation::bind(binding.proto, host_ip, port)?)
        }
    };
    Ok(Published {
        mapping: PortMapping {
            container_port: binding.container_port,
            proto: binding.proto,
            host_ip: host_ip_text(host_ip),
            host_port: port,
        },
        host_ip,
        container_ip: Ipv4Addr::UNSPECIFIED,
        _reservation: Some(reservation),
    })
}

/// The host end of a container's veth on a network: `kv` and 11 hex
/// digits, from the container's id on its first network and from both ids
/// on the others, so that it is unique on the host and known again after a
/// restart.
fn veth_name(container: &str, network: &str, index: usize) -> String {
    if index == 0 {
        format!("kv{}", &container[..11.min(container.len())])
    } else {
        format!("kv{}{}", &container[..8.min(container.len())], &network[..3.min(network.len())])
    }
}

/// Where [`plug`] puts a container: on `network`, whose bridge has index
/// `bridge`, as interface `eth<index>`, with `mac` (`--mac-address`) or one
/// made from its address.
struct Place<'a> {
    network: &'a NetworkRecord,
    bridge: u32,
    index: usize,
    mac: Option<[u8; 6]>,
}

/// Puts a container on a network: an address (`--ip` or the next free), a
/// veth pair into the bridge with hairpin mode (the spare's on its first
/// network, a new one on the others), and on its first network (unless
/// internal) the default route.
fn plug(
    nl: &Netlink,
    sandbox: &mut OpenNamespace,
    at: &Place<'_>,
    allocator: &mut Allocator,
    request: &JoinRequest<'_>,
    config: &EndpointConfig,
) -> Result<Endpoint, NetworkError> {
    let network = at.network;
    let subnet: Subnet = network.subnet.parse()?;
    let gateway: Ipv4Addr = network.gateway.parse().unwrap_or_else(|_| subnet.default_gateway());
    let ip = match parse_ip(&config.ipv4_address)? {
        Some(ip) => {
            allocator.reserve(ip)?;
            ip
        }
        None => allocator.allocate().ok_or_else(|| IpamError::Exhausted {
            network: network.name.clone(),
            id: network.id.clone(),
        })?,
    };
    let mac = at.mac.unwrap_or_else(|| mac_for(ip));
    let host_veth = veth_name(request.id, &network.id, at.index);
    let interface = format!("eth{}", at.index);
    let prefix_len = subnet.prefix_len();
    let plan = Plug {
        bridge_index: at.bridge,
        host_name: &host_veth,
        container_name: &interface,
        address: ip,
        prefix_len,
        gateway: (at.index == 0 && !network.internal).then_some(gateway),
        mac: Some(mac),
        hairpin: true,
    };
    let spare = if at.index == 0 { sandbox.veth.take() } else { None };
    let plugged = match spare {
        Some(veth) => nl.plug_spare(&sandbox.inside, veth, &plan),
        None => nl.plug_new(&sandbox.inside, sandbox.netns.as_fd(), &plan),
    };
    plugged.map_err(|source| NetworkError::Attach {
        container: request.name.to_owned(),
        network: network.name.clone(),
        source,
    })?;
    Ok(Endpoint {
        container_id: request.id.to_owned(),
        container_name: request.name.to_owned(),
        ip: ip.to_string(),
        prefix_len,
        mac: format_mac(mac),
        aliases: config.aliases.clone(),
        host_veth,
        interface,
    })
}

/// Deletes `kv…` veths enslaved to this daemon's bridges that no endpoint
/// owns: what a crash between creating a veth and recording it left. Veths
/// of other daemons' bridges are never touched.
fn sweep_veths(inner: &Inner) {
    let Ok(nl) = Netlink::open() else { return };
    let Ok(links) = nl.links() else { return };
    let bridges: BTreeSet<u32> = links
        .iter()
        .filter(|l| inner.networks.values().any(|n| n.is_bridge() && n.bridge == l.name))
        .map(|l| l.index)
        .collect();
    let owned: BTreeSet<&str> = inner
        .networks
        .values()
        .flat_map(|n| n.endpoints.values().map(|e| e.host_veth.as_str()))
        .collect();
    for link in links {
        let ours = link.master.is_some_and(|m| bridges.contains(&m));
        if ours && link.name.starts_with("kv") && !owned.contains(link.name.as_str()) {
            tracing::info!(veth = %link.name, "deleting a leftover veth");
            let _ = nl.delete_link(&link.name);
        }
    }
}
