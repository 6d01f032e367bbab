//! Networks: Docker's predefined `bridge`, `host` and `none`, user-defined
//! bridge networks, and what joins a container to them (a network
//! namespace, a veth pair per network, an address, published ports).
//!
//! Records live in `kiln.db`, one JSON value per network, one write
//! transaction per change:
//!
//! ```text
//! networks   "<64 hex id>"   → NetworkRecord (JSON)
//! ```
//!
//! A record holds the network's addressing and the containers configured
//! to join it (`members`: options such as `--ip` and aliases, kept while
//! they are stopped). The endpoints of running containers (address, MAC,
//! host veth) are runtime state, like the namespaces they describe: they
//! live in `<exec-root>/network/endpoints/<container id>.json`, written
//! without fsync on every start and gone at reboot with everything else
//! there. An address is taken exactly while its endpoint exists (and until
//! its veth is deleted); the allocator is rebuilt from the endpoints, so the
//! two cannot disagree.
//!
//! The kernel side ([`sandbox`]) is done when a container starts and undone
//! when it stops: the bridge is created on first use and stays (the default
//! bridge until the daemon stops unused, a user-defined one until `network
//! rm`); each container gets `<exec-root>/netns/<id>`, a veth pair per
//! network (`kv…` on the host, `eth0`, `eth1`… inside) with hairpin mode on
//! the bridge port, and its published ports are held by
//! [`PortReservation`](kiln_network::PortReservation)s.
//! The firewall ([`firewall`]) is Kiln's own nftables table (or its own
//! iptables chains: daemon.json's `firewall-backend`), rebuilt from
//! this state after every change that alters it, and removed (with IPv4
//! forwarding restored if Kiln turned it on) a moment after the last
//! container on a bridge stops.
//!
//! After a daemon crash [`Networks::recover`] keeps the endpoints of
//! containers that still run, releases the others, deletes namespaces and
//! veths nobody owns, re-binds published ports and re-applies the table.

mod dns;
mod firewall;
mod sandbox;
mod store;

pub(crate) use dns::embedded_resolv_conf;
pub(crate) use sandbox::{JoinRequest, Joined};

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use kiln_network::ipam::{self, Allocator, Bip, IpamError, Pool, Subnet, SubnetError};
use kiln_network::nft::{self, NftError};
use kiln_network::ports::{self, PortBinding, PortError};
use kiln_network::sysctl::SysctlError;
use kiln_types::{ErrorKind, HasKind};
use redb::Database;
use serde::{Deserialize, Serialize};

use crate::config::NetworkConfig;
use crate::containers::model::ContainerRecord;
use crate::events::Events;

pub use kiln_network::{PortKey, Proto};

/// The default network's name: containers without `--network` join it.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default bridge's interface when daemon.json names none.
pub const DEFAULT_BRIDGE: &str = "kiln0";
/// The option that names a user-defined network's bridge interface.
pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";
/// The networks every daemon has; they cannot be created or removed.
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// A network as stored and inspected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkRecord {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// Docker's driver name: `bridge`, `host`, or `null` (for `none`).
    pub driver: String,
    /// The bridge interface; empty for `host` and `none`.
    pub bridge: String,
    /// `172.18.0.0/16`; empty for `host` and `none`.
    pub subnet: String,
    /// The bridge's address, the containers' default route.
    pub gateway: String,
    /// `--ip-range`: where automatic addresses come from.
    pub ip_range: Option<String>,
    /// `--internal`: no route out of the network.
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// Unix nanoseconds.
    pub created: i64,
    /// Containers configured to join, running or not, by container id,
    /// with their options.
    pub members: BTreeMap<String, EndpointConfig>,
    /// Containers joined now (running), by container id. Not stored with
    /// the record: see the module's documentation.
    #[serde(skip)]
    pub endpoints: BTreeMap<String, Endpoint>,
}

impl NetworkRecord {
    /// Whether this is one of `bridge`, `host` and `none`.
    pub fn is_predefined(&self) -> bool {
        PREDEFINED.contains(&self.name.as_str())
    }

    /// Whether containers on it get a bridge, a veth and an address.
    pub fn is_bridge(&self) -> bool {
        self.driver == "bridge"
    }

    /// `local`, as for every network a single daemon makes.
    pub fn scope(&self) -> &'static str {
        "local"
    }
}

/// A running container's place on a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    pub container_id: String,
    /// Without the leading `/`.
    pub container_name: String,
    pub ip: String,
    pub prefix_len: u8,
    /// `02:42:ac:11:00:02`.
    pub mac: String,
    pub aliases: Vec<String>,
    /// The veth's host end, in the bridge.
    pub host_veth: String,
    /// The interface inside the container: `eth0` on the first network.
    pub interface: String,
}

/// How a container joins a network: Docker's `EndpointSettings` of a create
/// request or a `network connect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointConfig {
    /// `--network-alias`: more names for the container on this network.
    pub aliases: Vec<String>,
    /// `--ip`: the address to take; empty for the next free one.
    pub ipv4_address: String,
}

/// `POST /networks/create`, in the engine's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateNetwork {
    pub name: String,
    /// `None` or `bridge`; other drivers are refused.
    pub driver: Option<String>,
    /// `--subnet`; `None`: the first free subnet of the address pools.
    pub subnet: Option<String>,
    /// `--gateway`; `None`: the subnet's first host address.
    pub gateway: Option<String>,
    /// `--ip-range`.
    pub ip_range: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// `-o`; [`BRIDGE_NAME_OPTION`] names the bridge.
    pub options: BTreeMap<String, String>,
    /// Docker's `CheckDuplicate`. Kiln always refuses a second network of a
    /// name, as current Docker does, whatever this says.
    pub check_duplicate: bool,
}

/// One network of a container, for inspect: configured, and joined while
/// the container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerNetwork {
    pub network_id: String,
    pub network_name: String,
    /// The options it was configured with (aliases, `--ip`).
    pub config: EndpointConfig,
    /// The endpoint while the container runs on a bridge network.
    pub endpoint: Option<Endpoint>,
    /// The network's gateway, set with the endpoint.
    pub gateway: Option<String>,
}

/// What went wrong with a network. Messages are Docker's where it has one.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {name} not found")]
    NotFound { name: String },
    #[error("network with name {name} already exists")]
    NameExists { name: String },
    #[error("invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName { name: String },
    #[error("{name} is a pre-defined network and cannot be created")]
    CreatePredefined { name: String },
    #[error("{name} is a pre-defined network and cannot be removed")]
    RemovePredefined { name: String },
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    ActiveEndpoints { name: String, id: String },
    #[error("plugin \"{driver}\" not found")]
    UnknownDriver { driver: String },
    #[error("invalid gateway address {gateway}: not an IPv4 address")]
    InvalidGateway { gateway: String },
    #[error("invalid IPv4 address {address}")]
    InvalidAddress { address: String },
    #[error("bridge name {bridge} is already used by network {network}")]
    BridgeInUse { bridge: String, network: String },
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("container cannot be disconnected from host network or connected to host network")]
    HostNetwork,
    #[error("container sharing network namespace with another container or host cannot be connected to any other network")]
    NoNetworkNamespace,
    #[error("{message}")]
    Unsupported { message: String },
    #[error(transparent)]
    Subnet(#[from] SubnetError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    BridgeName(NftError),
    #[error("cannot set up the firewall of Kiln's networks")]
    Firewall(#[source] firewall::FirewallError),
    #[error("cannot set a network sysctl")]
    Sysctl(#[source] SysctlError),
    #[error("cannot set up bridge {bridge} of network {network}")]
    Bridge {
        bridge: String,
        network: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect container {container} to network {network}")]
    Attach {
        container: String,
        network: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the network namespace of container {container}")]
    Namespace {
        container: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list the host's routes")]
    Routes(#[source] std::io::Error),
    #[error("cannot {action} the network database")]
    Database {
        action: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot {action} {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for NetworkError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } | Self::UnknownDriver { .. } => ErrorKind::NotFound,
            Self::NameExists { .. }
            | Self::ActiveEndpoints { .. }
            | Self::BridgeInUse { .. }
            | Self::AlreadyConnected { .. } => ErrorKind::Conflict,
            Self::InvalidName { .. }
            | Self::InvalidGateway { .. }
            | Self::InvalidAddress { .. } => ErrorKind::InvalidArgument,
            Self::CreatePredefined { .. }
            | Self::RemovePredefined { .. }
            | Self::NotConnected { .. }
            | Self::HostNetwork
            | Self::NoNetworkNamespace => ErrorKind::PermissionDenied,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::Subnet(err) => err.kind(),
            Self::Ipam(err) => err.kind(),
            Self::Port(err) => err.kind(),
            Self::Firewall(err) => err.kind(),
            Self::BridgeName(err) => err.kind(),
            Self::Sysctl(err) => err.kind(),
            Self::Bridge { source, .. }
            | Self::Attach { source, .. }
            | Self::Namespace { source, .. }
            | Self::Routes(source)
            | Self::Io { source, .. } => io_kind(source),
            Self::Database { .. } => ErrorKind::Internal,
        }
    }
}

fn io_kind(err: &std::io::Error) -> ErrorKind {
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        std::io::ErrorKind::AlreadyExists => ErrorKind::Conflict,
        _ => ErrorKind::Internal,
    }
}

/// The engine's networks.
#[derive(Debug)]
pub struct Networks {
    store: store::NetworkStore,
    /// `<exec-root>/netns`: one bind-mounted namespace per running container.
    netns_dir: PathBuf,
    /// `<exec-root>/network`: what a crashed daemon must undo (see [`firewall`]).
    state_dir: PathBuf,
    /// `<exec-root>/network/endpoints`: a file per running container.
    endpoints_dir: PathBuf,
    pools: Vec<Pool>,
    events: Arc<Events>,
    inner: Mutex<Inner>,
    /// Signalled when a stopped container's veths and namespace are gone.
    released: Condvar,
    /// The embedded DNS resolvers of running containers.
    dns: dns::Resolvers,
    /// The next start's namespace, made ahead (see [`sandbox`]).
    spare: sandbox::SpareSlot,
    /// Ourselves, for work done off the caller's path.
    me: Weak<Networks>,
}

/// Everything that changes, under one lock: records, held ports, and what
/// the kernel has.
#[derive(Debug)]
struct Inner {
    /// By id.
    networks: BTreeMap<String, NetworkRecord>,
    /// Published ports of running containers, by container id.
    published: BTreeMap<String, Vec<sandbox::Published>>,
    /// Bridges set up (created, addressed, up) since this daemon started.
    bridges_ready: BTreeSet<String>,
    /// Stopped containers whose veths and namespace are being deleted, by
    /// container id: their addresses stay taken until that is done.
    releasing: BTreeMap<String, sandbox::Releasing>,
    firewall: firewall::State,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Networks {
    /// Opens the networks of `db`, making the predefined ones on first use,
    /// and settles the default bridge's addressing: daemon.json's `bip`, or
    /// the subnet it had, or the first free one of the pools.
    pub(crate) fn open(
        exec_root: &Path,
        config: &NetworkConfig,
        db: Arc<Database>,
        events: Arc<Events>,
    ) -> Result<Arc<Networks>, NetworkError> {
        let netns_dir = exec_root.join("netns");
        let state_dir = exec_root.join("network");
        let endpoints_dir = state_dir.join("endpoints");
        for dir in [&netns_dir, &state_dir, &endpoints_dir] {
            std::fs::create_dir_all(dir).map_err(|source| NetworkError::Io {
                action: "create",
                path: dir.clone(),
                source,
            })?;
        }
        let store = store::NetworkStore::open(db)?;
        let mut networks: BTreeMap<String, NetworkRecord> =
            store.load_all()?.into_iter().map(|r| (r.id.clone(), r)).collect();
        let pools = if config.default_address_pools.is_empty() {
            ipam::default_pools()
        } else {
            config.default_address_pools.clone()
        };
        let mut changed = Vec::new();
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !networks.values().any(|n| n.name == name) {
                let record = NetworkRecord {
                    id: random_id(),
                    name: name.to_owned(),
                    driver: driver.to_owned(),
                    created: now_nanos(),
                    ..NetworkRecord::default()
                };
                changed.push(record.id.clone());
                networks.insert(record.id.clone(), record);
            }
        }
        if let Some(id) = default_bridge(&networks, config, &pools)? {
            changed.push(id.0.clone());
            networks.insert(id.0, id.1);
        }
        let changed: Vec<&NetworkRecord> =
            changed.iter().filter_map(|id| networks.get(id)).collect();
        store.put_all(&changed)?;
        sandbox::load_endpoints(&endpoints_dir, &mut networks);
        let firewall = firewall::State::load(&state_dir, config.firewall_backend);
        Ok(Arc::new_cyclic(|me| Networks {
            store,
            netns_dir,
            state_dir,
            endpoints_dir,
            pools,
            events,
            inner: Mutex::new(Inner {
                networks,
                published: BTreeMap::new(),
                bridges_ready: BTreeSet::new(),
                releasing: BTreeMap::new(),
                firewall,
            }),
            released: Condvar::new(),
            dns: dns::Resolvers::default(),
            spare: sandbox::SpareSlot::default(),
            me: me.clone(),
        }))
    }

    /// `POST /networks/create`: a user-defined bridge network.
    pub fn create(&self, request: CreateNetwork) -> Result<NetworkRecord, NetworkError> {
        let name = request.name.clone();
        if PREDEFINED.contains(&name.as_str()) {
            return Err(NetworkError::CreatePredefined { name });
        }
        if !is_valid_name(&name) {
            return Err(NetworkError::InvalidName { name });
        }
        match request.driver.as_deref() {
            None | Some("") | Some("bridge") => {}
            Some(driver) => return Err(NetworkError::UnknownDriver { driver: driver.to_owned() }),
        }
        let mut inner = lock(&self.inner);
        if inner.networks.values().any(|n| n.name == name) {
            return Err(NetworkError::NameExists { name });
        }
        let taken: Vec<Subnet> = inner.networks.values().filter_map(subnet_of).collect();
        let subnet = match request.subnet.as_deref().filter(|s| !s.is_empty()) {
            Some(text) => {
                let subnet: Subnet = text.parse()?;
                ipam::check_no_overlap(subnet, &taken)?;
                subnet
            }
            None => {
                let routes = host_routes()?;
                ipam::pick_subnet(&self.pools, &taken, &routes).ok_or(IpamError::NoFreePool)?
            }
        };
        let gateway = match request.gateway.as_deref().filter(|g| !g.is_empty()) {
            Some(text) => Some(
                text.parse::<Ipv4Addr>()
                    .map_err(|_| NetworkError::InvalidGateway { gateway: text.to_owned() })?,
            ),
            None => None,
        };
        let ip_range = match request.ip_range.as_deref().filter(|r| !r.is_empty()) {
            Some(text) => Some(text.parse::<Subnet>()?),
            None => None,
        };
        let allocator = Allocator::new(subnet, gateway, ip_range)?;
        let id = random_id();
        let bridge = match request.options.get(BRIDGE_NAME_OPTION).filter(|b| !b.is_empty()) {
            Some(bridge) => bridge.clone(),
            None => format!("kb-{}", &id[..12]),
        };
        nft::BridgeNetwork::new(&bridge, subnet, request.internal)
            .map_err(NetworkError::BridgeName)?;
        if let Some(other) = inner.networks.values().find(|n| n.bridge == bridge) {
            return Err(NetworkError::BridgeInUse { bridge, network: other.name.clone() });
        }
        let record = NetworkRecord {
            id: id.clone(),
            name: name.clone(),
            driver: "bridge".into(),
            bridge,
            subnet: subnet.to_string(),
            gateway: allocator.gateway().to_string(),
            ip_range: ip_range.map(|r| r.to_string()),
            internal: request.internal,
            labels: request.labels,
            options: request.options,
            created: now_nanos(),
            members: BTreeMap::new(),
            endpoints: BTreeMap::new(),
        };
        self.store.put_all(&[&record])?;
        inner.networks.insert(id.clone(), record.clone());
        drop(inner);
        tracing::info!(network = %name, id = %id, subnet = %subnet, "network created");
        self.emit(&record, "create", None);
        Ok(record)
    }

    /// `GET /networks`: every network, sorted by name, filtered as Docker's
    /// `network ls`: `name` (substring), `id` (prefix), `label` (`key` or
    /// `key=value`), `driver`, `scope`, `type` (`builtin`, `custom`) and
    /// `dangling` (no container joined).
    pub fn list(
        &self,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<Vec<NetworkRecord>, NetworkError> {
        for key in filters.keys() {
            if !matches!(
                key.as_str(),
                "name" | "id" | "label" | "driver" | "scope" | "type" | "dangling"
            ) {
                return Err(NetworkError::Unsupported {
                    message: format!("invalid filter '{key}'"),
                });
            }
        }
        for kind in filters.get("type").into_iter().flatten() {
            if !matches!(kind.as_str(), "builtin" | "custom") {
                return Err(NetworkError::InvalidName {
                    name: format!("invalid filter: 'type'='{kind}'"),
                });
            }
        }
        let dangling = match filters.get("dangling").and_then(|v| v.first()).map(String::as_str) {
            None => None,
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(other) => {
                return Err(NetworkError::Unsupported {
                    message: format!("invalid filter 'dangling={other}'"),
                })
            }
        };
        let inner = lock(&self.inner);
        let mut out: Vec<NetworkRecord> = inner
            .networks
            .values()
            .filter(|n| any_or_empty(filters.get("name"), |v| n.name.contains(v.as_str())))
            .filter(|n| any_or_empty(filters.get("id"), |v| n.id.starts_with(v.as_str())))
            .filter(|n| any_or_empty(filters.get("driver"), |v| *v == n.driver))
            .filter(|n| any_or_empty(filters.get("scope"), |v| v == n.scope()))
            .filter(|n| {
                any_or_empty(filters.get("type"), |v| (v == "builtin") == n.is_predefined())
            })
            .filter(|n| filters.get("label").into_iter().flatten().all(|l| has_label(&n.labels, l)))
            .filter(|n| match dangling {
                None => true,
                Some(want) => want == (n.members.is_empty() && n.endpoints.is_empty()),
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `GET /networks/{id}`: by full id, name, or unique id prefix.
    pub fn inspect(&self, name: &str) -> Result<NetworkRecord, NetworkError> {
        let inner = lock(&self.inner);
        find(&inner.networks, name).cloned()
    }

    /// `DELETE /networks/{id}`: a user-defined network no running container
    /// is on; its bridge goes with it. Stopped containers configured to
    /// join it fail to start afterwards, as in Docker.
    pub fn remove(&self, name: &str) -> Result<(), NetworkError> {
        let mut inner = lock(&self.inner);
        let record = find(&inner.networks, name)?.clone();
        if record.is_predefined() {
            return Err(NetworkError::RemovePredefined { name: record.name });
        }
        if !record.endpoints.is_empty() {
            return Err(NetworkError::ActiveEndpoints { name: record.name, id: record.id });
        }
        self.store.delete(&record.id)?;
        inner.networks.remove(&record.id);
        inner.bridges_ready.remove(&record.bridge);
        // No endpoint means the firewall has nothing of it: nothing to sync.
        if let Err(err) = sandbox::delete_bridge(&record.bridge) {
            tracing::warn!(network = %record.name, bridge = %record.bridge, error = %err, "cannot delete the bridge");
        }
        drop(inner);
        tracing::info!(network = %record.name, id = %record.id, "network removed");
        self.emit(&record, "destroy", None);
        Ok(())
    }

    /// `POST /networks/prune`: removes the user-defined networks no
    /// container is configured on, that carry every label of `labels`
    /// (`key` or `key=value`). Returns their names.
    pub fn prune(&self, labels: &[String]) -> Result<Vec<String>, NetworkError> {
        let unused: Vec<String> = lock(&self.inner)
            .networks
            .values()
            .filter(|n| !n.is_predefined() && n.members.is_empty() && n.endpoints.is_empty())
            .filter(|n| labels.iter().all(|l| has_label(&n.labels, l)))
            .map(|n| n.id.clone())
            .collect();
        let mut removed = Vec::new();
        for id in unused {
            let name = lock(&self.inner).networks.get(&id).map(|n| n.name.clone());
            if let Some(name) = name {
                if self.remove(&id).is_ok() {
                    removed.push(name);
                }
            }
        }
        removed.sort();
        Ok(removed)
    }

    /// The networks of a container, for inspect and `ps`: the one its
    /// network mode names first (`bridge`, a user network, `host`, `none`),
    /// then the others it was connected to, by name. Endpoints are there
    /// while it runs.
    pub fn for_container(&self, record: &ContainerRecord) -> Vec<ContainerNetwork> {
        let inner = lock(&self.inner);
        let primary = primary_name(record);
        let primary = find(&inner.networks, &primary).ok();
        let mut out = Vec::new();
        let mut entry = |n: &NetworkRecord| {
            let endpoint = n.endpoints.get(&record.id).cloned();
            out.push(ContainerNetwork {
                network_id: n.id.clone(),
                network_name: n.name.clone(),
                config: n.members.get(&record.id).cloned().unwrap_or_default(),
                gateway: endpoint.as_ref().map(|_| n.gateway.clone()),
                endpoint,
            });
        };
        if let Some(n) = primary {
            entry(n);
        }
        let mut others: Vec<&NetworkRecord> = inner
            .networks
            .values()
            .filter(|n| primary.is_none_or(|p| p.id != n.id))
            .filter(|n| n.members.contains_key(&record.id) || n.endpoints.contains_key(&record.id))
            .collect();
        others.sort_by(|a, b| a.name.cmp(&b.name));
        for n in others {
            entry(n);
        }
        out
    }

    /// The default bridge's address: what `--add-host NAME:host-gateway`
    /// means, as with Docker.
    pub(crate) fn host_gateway(&self) -> Option<String> {
        let inner = lock(&self.inner);
        let bridge = inner.networks.values().find(|n| n.name == DEFAULT_NETWORK)?;
        Some(bridge.gateway.clone()).filter(|g| !g.is_empty())
    }

    /// The network `name` names, for a container's `--network`: `Ok(None)`
    /// for `host`, `none` and `container:…`, which have no record to join.
    pub(crate) fn resolve_mode(&self, mode: &str) -> Result<Option<NetworkRecord>, NetworkError> {
        match mode {
            "host" | "none" => Ok(None),
            m if m.starts_with("container:") => Ok(None),
            m => {
                let inner = lock(&self.inner);
                let name = if matches!(m, "" | "default") { DEFAULT_NETWORK } else { m };
                find(&inner.networks, name).cloned().map(Some)
            }
        }
    }

    /// Records that container `id` joins `network` with `config` at its next
    /// start (`create` with endpoint settings, `network connect` of a
    /// stopped container). Checks what can be checked now: the network
    /// exists and is a bridge, `--ip` is an address of it and not taken.
    pub(crate) fn add_member(
        &self,
        network: &str,
        id: &str,
        name: &str,
        config: EndpointConfig,
        primary: bool,
    ) -> Result<NetworkRecord, NetworkError> {
        let mut inner = lock(&self.inner);
        let mut record = find(&inner.networks, network)?.clone();
        if record.driver == "host" {
            return Err(NetworkError::HostNetwork);
        }
        if !record.is_bridge() {
            return Err(NetworkError::NoNetworkNamespace);
        }
        if !primary && record.members.contains_key(id) {
            return Err(NetworkError::AlreadyConnected {
                container: name.to_owned(),
                network: record.name,
            });
        }
        if let Some(ip) = parse_ip(&config.ipv4_address)? {
            let mut allocator = allocator_of(&inner, &record)?;
            allocator.reserve(ip)?;
        }
        record.members.insert(id.to_owned(), config);
        self.store.put_all(&[&record])?;
        inner.networks.insert(record.id.clone(), record.clone());
        Ok(record)
    }

    /// Forgets container `id` as a member of `network` (a stopped
    /// container's `network disconnect`).
    pub(crate) fn remove_member(
        &self,
        network: &str,
        id: &str,
        name: &str,
    ) -> Result<NetworkRecord, NetworkError> {
        let mut inner = lock(&self.inner);
        let mut record = find(&inner.networks, network)?.clone();
        if record.driver == "host" {
            return Err(NetworkError::HostNetwork);
        }
        if record.members.remove(id).is_none() {
            return Err(NetworkError::NotConnected {
                container: name.to_owned(),
                network: record.name,
            });
        }
        self.store.put_all(&[&record])?;
        inner.networks.insert(record.id.clone(), record.clone());
        Ok(record)
    }

    /// Forgets a removed container's memberships (its endpoints were
    /// released by [`Networks::detach`] before).
    pub(crate) fn forget(&self, id: &str) {
        let mut inner = lock(&self.inner);
        let changed: Vec<NetworkRecord> = inner
            .networks
            .values()
            .filter(|n| n.members.contains_key(id))
            .map(|n| {
                let mut n = n.clone();
                n.members.remove(id);
                n
            })
            .collect();
        if changed.is_empty() {
            return;
        }
        let refs: Vec<&NetworkRecord> = changed.iter().collect();
        if let Err(err) = self.store.put_all(&refs) {
            tracing::warn!(container = %id, error = %err, "cannot forget the container's networks");
        }
        for n in changed {
            inner.networks.insert(n.id.clone(), n);
        }
    }

    fn emit(&self, record: &NetworkRecord, action: &str, container: Option<&str>) {
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_owned(), record.name.clone());
        attributes.insert("type".to_owned(), record.driver.clone());
        if let Some(container) = container {
            attributes.insert("container".to_owned(), container.to_owned());
        }
        self.events.publish("network", action, &record.id, attributes);
    }
}

impl Drop for Networks {
    /// At daemon shutdown with no container on any bridge: the firewall goes
    /// now instead of after its delay, forwarding is restored, and the
    /// default bridge is deleted if this daemon made it. With containers
    /// still running (they outlive the daemon), everything stays for them.
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        if inner.networks.values().any(|n| !n.endpoints.is_empty()) {
            return;
        }
        inner.firewall.remove_now(&self.state_dir);
        if let Some(default) = inner.networks.values().find(|n| n.name == DEFAULT_NETWORK) {
            if inner.bridges_ready.contains(&default.bridge) {
                if let Err(err) = sandbox::delete_bridge(&default.bridge) {
                    tracing::warn!(bridge = %default.bridge, error = %err, "cannot delete the default bridge");
                }
            }
        }
    }
}

/// The network a container's mode names (`bridge` for the default).
pub(crate) fn primary_name(record: &ContainerRecord) -> String {
    if record.request.config.network_disabled {
        return "none".to_owned();
    }
    match record.request.host.network_mode.as_str() {
        "" | "default" => DEFAULT_NETWORK.to_owned(),
        mode => mode.to_owned(),
    }
}

/// The default bridge's record when it must be made or changed: the record
/// (its id, the new record) or `None` when it is right as stored.
fn default_bridge(
    networks: &BTreeMap<String, NetworkRecord>,
    config: &NetworkConfig,
    pools: &[Pool],
) -> Result<Option<(String, NetworkRecord)>, NetworkError> {
    let bridge = config.bridge.clone().unwrap_or_else(|| DEFAULT_BRIDGE.to_owned());
    let existing = networks.values().find(|n| n.name == DEFAULT_NETWORK).cloned();
    let others: Vec<Subnet> =
        networks.values().filter(|n| n.name != DEFAULT_NETWORK).filter_map(subnet_of).collect();
    let wanted_bip: Option<Bip> = config.bip;
    if let Some(record) = &existing {
        let same_addressing = match wanted_bip {
            Some(bip) => {
                record.subnet == bip.subnet.to_string() && record.gateway == bip.gateway.to_string()
            }
            None => true,
        };
        if same_addressing && record.bridge == bridge {
            return Ok(None);
        }
        if !record.endpoints.is_empty() {
            tracing::warn!(
                bridge = %record.bridge,
                "containers still run on the default bridge: its new address or name applies once they stop and the daemon restarts"
            );
            return Ok(None);
        }
    }
    let (subnet, gateway) = match wanted_bip {
        Some(bip) => (bip.subnet, bip.gateway),
        None => match existing.as_ref().and_then(subnet_of) {
            Some(subnet) => {
                let gateway = existing
                    .as_ref()
                    .and_then(|r| r.gateway.parse().ok())
                    .unwrap_or_else(|| subnet.default_gateway());
                (subnet, gateway)
            }
            None => {
                // Not fatal: the engine opens without the kernel's answer,
                // and daemon.json's `bip` is the way around a collision.
                let routes = host_routes().unwrap_or_else(|err| {
                    tracing::warn!(error = %err, "cannot list the host's routes; the default bridge's subnet may collide with one");
                    Vec::new()
                });
                let subnet =
                    ipam::pick_subnet(pools, &others, &routes).ok_or(IpamError::NoFreePool)?;
                (subnet, subnet.default_gateway())
            }
        },
    };
    let mut record = existing.unwrap_or_else(|| NetworkRecord {
        id: random_id(),
        name: DEFAULT_NETWORK.to_owned(),
        driver: "bridge".to_owned(),
        created: now_nanos(),
        ..NetworkRecord::default()
    });
    record.bridge = bridge.clone();
    record.subnet = subnet.to_string();
    record.gateway = gateway.to_string();
    record.options.insert(BRIDGE_NAME_OPTION.to_owned(), bridge);
    Ok(Some((record.id.clone(), record)))
}

/// The host's IPv4 routes, as subnets, for picking one that collides with
/// none.
fn host_routes() -> Result<Vec<Subnet>, NetworkError> {
    let routes = kiln_sys::netlink::Netlink::open()
        .and_then(|nl| nl.routes())
        .map_err(NetworkError::Routes)?;
    Ok(routes.into_iter().map(|(addr, len)| Subnet::containing(addr, len)).collect())
}

fn subnet_of(record: &NetworkRecord) -> Option<Subnet> {
    record.subnet.parse().ok()
}

/// The allocator of `record`, with the addresses of its endpoints taken,
/// and those of stopped containers whose veths are still being deleted.
fn allocator_of(inner: &Inner, record: &NetworkRecord) -> Result<Allocator, NetworkError> {
    let subnet: Subnet = record.subnet.parse()?;
    let gateway = record.gateway.parse::<Ipv4Addr>().ok();
    let ip_range = match &record.ip_range {
        Some(range) => Some(range.parse::<Subnet>()?),
        None => None,
    };
    let mut allocator = Allocator::new(subnet, gateway, ip_range)?;
    let releasing = inner.releasing.values().flat_map(|r| r.addresses(&record.id));
    let taken = record.endpoints.values().filter_map(|e| e.ip.parse::<Ipv4Addr>().ok());
    for ip in taken.chain(releasing) {
        // An address recorded twice would be a bug; the first wins.
        let _ = allocator.reserve(ip);
    }
    Ok(allocator)
}

/// `--ip`: empty for none.
fn parse_ip(text: &str) -> Result<Option<Ipv4Addr>, NetworkError> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| NetworkError::InvalidAddress { address: text.to_owned() })
}

/// The network named by full id, name, or a unique id prefix.
fn find<'a>(
    networks: &'a BTreeMap<String, NetworkRecord>,
    name: &str,
) -> Result<&'a NetworkRecord, NetworkError> {
    if let Some(record) = networks.get(name) {
        return Ok(record);
    }
    if let Some(record) = networks.values().find(|n| n.name == name) {
        return Ok(record);
    }
    let is_hex = !name.is_empty() && name.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        let mut matches = networks.values().filter(|n| n.id.starts_with(name));
        if let (Some(record), None) = (matches.next(), matches.next()) {
            return Ok(record);
        }
    }
    Err(NetworkError::NotFound { name: name.to_owned() })
}

/// Docker's rule for network names.
fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The published ports a container asks for: `-p` bindings (the API's
/// `PortBindings`), and with `-P` every exposed port (the image's and the
/// request's) that has no binding, on a random host port.
pub(crate) fn port_bindings<'a>(
    bindings: &BTreeMap<String, Vec<(String, String)>>,
    publish_all: bool,
    exposed: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<PortBinding>, PortError> {
    let mut out = Vec::new();
    for (key, list) in bindings {
        if list.is_empty() {
            // docker-compat: a key with no binding publishes on a random port.
            out.push(PortBinding::from_api(key, "", "")?);
        }
        for (host_ip, host_port) in list {
            out.push(PortBinding::from_api(key, host_ip, host_port)?);
        }
    }
    if publish_all {
        let bound: BTreeSet<PortKey> = out.iter().map(PortBinding::key).collect();
        let mut keys = BTreeSet::new();
        for spec in exposed {
            keys.extend(ports::parse_expose(spec)?);
        }
        out.extend(keys.into_iter().filter(|k| !bound.contains(k)).map(PortBinding::random));
    }
    Ok(out)
}

/// What a port mapping says on the wire for its host address.
fn host_ip_text(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "0.0.0.0".to_owned(), |ip| ip.to_string())
}

/// Docker's MAC for a container address: 02:42 and the address's bytes.
fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

/// `02:42:ac:11:00:02`.
pub(crate) fn format_mac(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// `--mac-address`: six hex pairs separated by `:` or `-`.
pub(crate) fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    Some(mac)
}

fn random_id() -> String {
    crate::containers::random_hex(32)
}

fn now_nanos() -> i64 {
    kiln_shim::logfile::now()
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

#[cfg(test)]
mod tests;
