//! IPv4 address management: subnets, the pools new networks are carved
//! from, and the per-network allocator that hands addresses to containers.
//!
//! Behaviour follows Docker's default IPAM driver: networks get the first
//! free subnet of the default address pools (`172.17.0.0/16` … `172.31.0.0/16`,
//! then `192.168.0.0/16` in /20s) that overlaps neither another network nor
//! a route of the host; the gateway is the first host address; containers
//! get the lowest free address. Error messages are Docker's, so scripts that
//! match on them keep working.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use kiln_types::{ErrorKind, HasKind};
use serde::{Deserialize, Serialize};

/// An IPv4 network in CIDR form, `172.18.0.0/16`.
///
/// The address is always the network address: parsing `172.18.0.1/16`
/// is an error (use [`Bip`] where an address with a prefix is meant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix_len: u8,
}

/// Why a subnet, pool or `bip` string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    /// Not `a.b.c.d/n` with an IPv4 address and `n` in 0..=32.
    #[error("invalid CIDR address: {input}")]
    Syntax { input: String },
    /// Host bits are set (`172.18.0.1/16`); Docker's wording.
    #[error("invalid subnet {input} : it should be {expected}")]
    HostBitsSet { input: String, expected: Subnet },
    /// A pool's `size` is shorter than its base or longer than 32.
    #[error("invalid pool size {size} for base {base}: it must be between {} and 32", .base.prefix_len)]
    PoolSize { base: Subnet, size: u8 },
    /// `bip` names the network or broadcast address, which no bridge can use.
    #[error("invalid bip {input}: {address} is not a host address of {subnet}")]
    BipNotHost { input: String, address: Ipv4Addr, subnet: Subnet },
}

impl HasKind for SubnetError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Syntax { .. }
            | Self::HostBitsSet { .. }
            | Self::PoolSize { .. }
            | Self::BipNotHost { .. } => ErrorKind::InvalidArgument,
        }
    }
}

impl Subnet {
    /// The subnet of `prefix_len` bits that holds `addr` (host bits
    /// cleared); a `prefix_len` over 32 counts as 32.
    pub fn containing(addr: Ipv4Addr, prefix_len: u8) -> Subnet {
        let prefix_len = prefix_len.min(32);
        Subnet { network: Ipv4Addr::from(u32::from(addr) & mask(prefix_len)), prefix_len }
    }

    /// The network address (`172.18.0.0`).
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length (`16`).
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The last address (`172.18.255.255`), broadcast for prefixes up to /30.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix_len))
    }

    /// Docker's default gateway: the first host address (`172.18.0.1`).
    pub fn default_gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network).saturating_add(1))
    }

    /// Whether `addr` is inside this subnet (network and broadcast included).
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix_len) == u32::from(self.network)
    }

    /// Whether `addr` is usable by a host: inside, and neither the network
    /// nor the broadcast address.
    pub fn is_host(&self, addr: Ipv4Addr) -> bool {
        self.contains(addr) && addr != self.network && addr != self.broadcast()
    }

    /// Whether `other` lies wholly inside this subnet.
    pub fn covers(&self, other: &Subnet) -> bool {
        other.prefix_len >= self.prefix_len && self.contains(other.network)
    }

    /// Whether the two share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The subnets of `prefix_len` bits this one splits into, in address
    /// order; empty when `prefix_len` is shorter than this prefix or over 32.
    fn split(self, prefix_len: u8) -> impl Iterator<Item = Subnet> {
        let valid = prefix_len >= self.prefix_len && prefix_len <= 32;
        let count: u64 = if valid { 1u64 << (prefix_len - self.prefix_len) } else { 0 };
        let step: u64 = 1u64 << (32 - u32::from(prefix_len.min(32)));
        let start = u64::from(u32::from(self.network));
        (0..count).filter_map(move |i| {
            let addr = u32::try_from(start + i * step).ok()?;
            Some(Subnet { network: Ipv4Addr::from(addr), prefix_len })
        })
    }
}

/// The netmask of a prefix length, as a number.
fn mask(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n.min(32))),
    }
}

/// Splits `a.b.c.d/n` into an address and a prefix length.
fn parse_cidr(input: &str) -> Result<(Ipv4Addr, u8), SubnetError> {
    let syntax = || SubnetError::Syntax { input: input.to_owned() };
    let (addr, len) = input.split_once('/').ok_or_else(syntax)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| syntax())?;
    // Digits only: `u8::from_str` would accept "+16".
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    let len: u8 = len.parse().map_err(|_| syntax())?;
    if len > 32 {
        return Err(syntax());
    }
    Ok((addr, len))
}

impl FromStr for Subnet {
    type Err = SubnetError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (addr, len) = parse_cidr(input)?;
        let subnet = Subnet::containing(addr, len);
        if subnet.network != addr {
            return Err(SubnetError::HostBitsSet { input: input.to_owned(), expected: subnet });
        }
        Ok(subnet)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One entry of daemon.json's `default-address-pools`:
/// `{"base":"10.10.0.0/16","size":24}` hands out `10.10.0.0/24`,
/// `10.10.1.0/24`, … to new networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPool")]
pub struct Pool {
    base: Subnet,
    size: u8,
}

/// The JSON shape of a pool before its size is checked.
#[derive(Deserialize)]
struct RawPool {
    base: Subnet,
    size: u8,
}

impl TryFrom<RawPool> for Pool {
    type Error = SubnetError;

    fn try_from(raw: RawPool) -> Result<Self, Self::Error> {
        Pool::new(raw.base, raw.size)
    }
}

impl Pool {
    /// A pool of `/size` subnets carved from `base`.
    pub fn new(base: Subnet, size: u8) -> Result<Pool, SubnetError> {
        if size < base.prefix_len || size > 32 {
            return Err(SubnetError::PoolSize { base, size });
        }
        Ok(Pool { base, size })
    }

    /// The range subnets are carved from.
    pub fn base(&self) -> Subnet {
        self.base
    }

    /// The prefix length of each subnet handed out.
    pub fn size(&self) -> u8 {
        self.size
    }
}

/// Docker's built-in default address pools, used when daemon.json sets no
/// `default-address-pools`: `172.17.0.0/16` to `172.31.0.0/16` whole, then
/// `192.168.0.0/16` in /20s.
pub fn default_pools() -> Vec<Pool> {
    let mut pools: Vec<Pool> = (17u8..=31)
        .map(|second| {
            let base = Subnet { network: Ipv4Addr::new(172, second, 0, 0), prefix_len: 16 };
            Pool { base, size: 16 }
        })
        .collect();
    pools.push(Pool {
        base: Subnet { network: Ipv4Addr::new(192, 168, 0, 0), prefix_len: 16 },
        size: 20,
    });
    pools
}

/// The first subnet of `pools`, in order, that overlaps no network in
/// `taken` and no route in `host_routes`; `None` when all are used.
///
/// Default routes (`0.0.0.0/0`) are ignored, as Docker does: they overlap
/// everything and would leave no subnet at all.
pub fn pick_subnet(pools: &[Pool], taken: &[Subnet], host_routes: &[Subnet]) -> Option<Subnet> {
    let in_use: Vec<&Subnet> =
        taken.iter().chain(host_routes.iter().filter(|r| r.prefix_len > 0)).collect();
    pools
        .iter()
        .flat_map(|pool| pool.base.split(pool.size))
        .find(|candidate| in_use.iter().all(|used| !used.overlaps(candidate)))
}

/// daemon.json's `bip`: the default bridge's own address with its prefix,
/// `172.26.0.1/16` meaning gateway `172.26.0.1` on `172.26.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bip {
    /// The bridge's address, the containers' gateway.
    pub gateway: Ipv4Addr,
    /// The default bridge's subnet.
    pub subnet: Subnet,
}

impl FromStr for Bip {
    type Err = SubnetError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (gateway, len) = parse_cidr(input)?;
        let subnet = Subnet::containing(gateway, len);
        if len <= 30 && !subnet.is_host(gateway) {
            return Err(SubnetError::BipNotHost {
                input: input.to_owned(),
                address: gateway,
                subnet,
            });
        }
        Ok(Bip { gateway, subnet })
    }
}

impl fmt::Display for Bip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.gateway, self.subnet.prefix_len)
    }
}

/// Why an address or a network's addressing was refused. Messages are
/// Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// `network create --subnet` overlaps a network that already exists.
    #[error("Pool overlaps with other one on this address space")]
    PoolOverlap { subnet: Subnet, existing: Subnet },
    /// `--gateway` is not inside `--subnet`.
    #[error("no matching subnet for gateway {gateway}")]
    GatewayOutside { gateway: Ipv4Addr, subnet: Subnet },
    /// `--gateway` is the subnet's network or broadcast address.
    #[error("invalid gateway {gateway}: it is not a host address of {subnet}")]
    GatewayNotHost { gateway: Ipv4Addr, subnet: Subnet },
    /// `--ip-range` is not wholly inside `--subnet`.
    #[error("no matching subnet for range {range}")]
    RangeOutside { range: Subnet, subnet: Subnet },
    /// `--ip` is not inside the network's subnet.
    #[error("invalid address {address}: It does not belong to any of this network's subnets")]
    NotInSubnet { address: Ipv4Addr, subnet: Subnet },
    /// `--ip` is taken (by a container, the gateway, or is the network or
    /// broadcast address, which Docker also counts as taken).
    #[error("Address already in use")]
    AddressInUse { address: Ipv4Addr },
    /// Every address of the network (or of its `--ip-range`) is handed out.
    /// [`Allocator::allocate`] returns `None`; the engine, which knows the
    /// network's name and id, builds this error.
    #[error("no available IPv4 addresses on this network's address pools: {network} ({id})")]
    Exhausted { network: String, id: String },
    /// No default pool has a subnet left that overlaps nothing.
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    NoFreePool,
}

impl HasKind for IpamError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::GatewayOutside { .. }
            | Self::GatewayNotHost { .. }
            | Self::RangeOutside { .. }
            | Self::NotInSubnet { .. } => ErrorKind::InvalidArgument,
            // Docker answers these with 403 Forbidden; a conflict with state
            // is the nearest kind here.
            Self::PoolOverlap { .. } | Self::AddressInUse { .. } => ErrorKind::Conflict,
            Self::Exhausted { .. } | Self::NoFreePool => ErrorKind::Internal,
        }
    }
}

/// Refuses a `--subnet` that shares addresses with a network in `in_use`.
pub fn check_no_overlap(subnet: Subnet, in_use: &[Subnet]) -> Result<(), IpamError> {
    match in_use.iter().find(|existing| existing.overlaps(&subnet)) {
        Some(existing) => Err(IpamError::PoolOverlap { subnet, existing: *existing }),
        None => Ok(()),
    }
}

/// The addresses of one network: which are handed out, and which are next.
///
/// Serializable so the engine keeps it with the network; after a daemon
/// restart the engine may equally rebuild it by [`reserve`](Self::reserve)ing
/// the addresses of the containers that are still running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocator {
    subnet: Subnet,
    gateway: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip_range: Option<Subnet>,
    /// Container addresses (never the gateway).
    #[serde(default)]
    allocated: BTreeSet<Ipv4Addr>,
}

impl Allocator {
    /// The allocator of a new network, checking what `network create`
    /// checks: the gateway (default: the first host address) is a host
    /// address of the subnet, and the range lies inside the subnet.
    pub fn new(
        subnet: Subnet,
        gateway: Option<Ipv4Addr>,
        ip_range: Option<Subnet>,
    ) -> Result<Allocator, IpamError> {
        let gateway = gateway.unwrap_or_else(|| subnet.default_gateway());
        if !subnet.contains(gateway) {
            return Err(IpamError::GatewayOutside { gateway, subnet });
        }
        if subnet.prefix_len <= 30 && !subnet.is_host(gateway) {
            return Err(IpamError::GatewayNotHost { gateway, subnet });
        }
        if let Some(range) = ip_range {
            if !subnet.covers(&range) {
                return Err(IpamError::RangeOutside { range, subnet });
            }
        }
        Ok(Allocator { subnet, gateway, ip_range, allocated: BTreeSet::new() })
    }

    /// The network's subnet.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// The bridge's address, the containers' default route.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The part of the subnet [`allocate`](Self::allocate) draws from, if narrowed.
    pub fn ip_range(&self) -> Option<Subnet> {
        self.ip_range
    }

    /// Whether `addr` is handed out to a container.
    pub fn is_allocated(&self, addr: Ipv4Addr) -> bool {
        self.allocated.contains(&addr)
    }

    /// The container addresses handed out, lowest first.
    pub fn allocated(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.allocated.iter().copied()
    }

    /// Hands out the lowest free address of the range (or subnet): never the
    /// network, gateway or broadcast address. `None` when none is left; the
    /// caller reports [`IpamError::Exhausted`] with the network's name.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let pool = self.ip_range.unwrap_or(self.subnet);
        let (first, last) = (u32::from(pool.network), u32::from(pool.broadcast()));
        let addr = (first..=last).map(Ipv4Addr::from).find(|&addr| {
            self.subnet.is_host(addr) && addr != self.gateway && !self.allocated.contains(&addr)
        })?;
        self.allocated.insert(addr);
        Some(addr)
    }

    /// Takes a given address (`--ip`). It may lie outside `--ip-range`, as in
    /// Docker, which is how static addresses are kept clear of dynamic ones.
    pub fn reserve(&mut self, address: Ipv4Addr) -> Result<(), IpamError> {
        if !self.subnet.contains(address) {
            return Err(IpamError::NotInSubnet { address, subnet: self.subnet });
        }
        let usable = self.subnet.prefix_len > 30 || self.subnet.is_host(address);
        if !usable || address == self.gateway || !self.allocated.insert(address) {
            return Err(IpamError::AddressInUse { address });
        }
        Ok(())
    }

    /// Gives an address back; returns whether it was handed out.
    pub fn release(&mut self, address: Ipv4Addr) -> bool {
        self.allocated.remove(&address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Subnet {
        s.parse().expect(s)
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect(s)
    }

    #[test]
    fn subnet_parses_and_prints_cidr() {
        let s = net("172.18.0.0/16");
        assert_eq!(s.to_string(), "172.18.0.0/16");
        assert_eq!(s.network(), ip("172.18.0.0"));
        assert_eq!(s.prefix_len(), 16);
        assert_eq!(s.default_gateway(), ip("172.18.0.1"));
        assert_eq!(s.broadcast(), ip("172.18.255.255"));
        assert!(s.contains(ip("172.18.200.3")));
        assert!(!s.contains(ip("172.19.0.1")));
        assert_eq!(net("0.0.0.0/0").broadcast(), ip("255.255.255.255"));
        assert_eq!(net("10.1.2.3/32").broadcast(), ip("10.1.2.3"));
    }

    #[test]
    fn subnet_with_host_bits_is_refused_with_the_network_it_should_be() {
        let err = "172.18.0.1/16".parse::<Subnet>().unwrap_err();
        assert_eq!(err.to_string(), "invalid subnet 172.18.0.1/16 : it should be 172.18.0.0/16");
    }

    #[test]
    fn malformed_subnets_are_refused() {
        for bad in [
            "",
            "172.18.0.0",
            "172.18.0.0/",
            "172.18.0.0/33",
            "172.18.0/16",
            "x/8",
            "10.0.0.0/+8",
            "::1/64",
        ] {
            let err = bad.parse::<Subnet>().unwrap_err();
            assert_eq!(err.to_string(), format!("invalid CIDR address: {bad}"));
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn overlap_is_symmetric_and_covers_nesting() {
        assert!(net("10.0.0.0/8").overlaps(&net("10.20.0.0/16")));
        assert!(net("10.20.0.0/16").overlaps(&net("10.0.0.0/8")));
        assert!(!net("10.0.0.0/24").overlaps(&net("10.0.1.0/24")));
        assert!(net("10.0.0.0/8").covers(&net("10.20.0.0/16")));
        assert!(!net("10.20.0.0/16").covers(&net("10.0.0.0/8")));
    }

    #[test]
    fn first_default_pool_is_docker0s_subnet() {
        assert_eq!(pick_subnet(&default_pools(), &[], &[]), Some(net("172.17.0.0/16")));
    }

    #[test]
    fn pool_picking_skips_taken_subnets_and_host_routes() {
        let taken = [net("172.17.0.0/16"), net("172.19.0.0/16")];
        // A host route inside 172.18/16 (a VPN, a LAN) makes that pool unusable too.
        let routes = [net("0.0.0.0/0"), net("172.18.5.0/24")];
        assert_eq!(pick_subnet(&default_pools(), &taken, &routes), Some(net("172.20.0.0/16")));
    }

    #[test]
    fn pool_picking_falls_through_to_192_168_in_slash_20s() {
        // 172.16.0.0/12 routed on the host covers every 172 pool.
        let routes = [net("172.16.0.0/12"), net("192.168.0.0/24")];
        assert_eq!(
            pick_subnet(&default_pools(), &[net("192.168.16.0/20")], &routes),
            Some(net("192.168.32.0/20"))
        );
    }

    #[test]
    fn pool_picking_gives_none_when_everything_is_used() {
        let routes = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        assert_eq!(pick_subnet(&default_pools(), &[], &routes), None);
    }

    #[test]
    fn default_address_pools_from_daemon_json() {
        let pools: Vec<Pool> = serde_json::from_str(
            r#"[{"base":"10.10.0.0/16","size":24},{"base":"10.20.0.0/16","size":16}]"#,
        )
        .expect("pools");
        assert_eq!(pools[0].base(), net("10.10.0.0/16"));
        assert_eq!(pools[0].size(), 24);
        assert_eq!(pick_subnet(&pools, &[], &[]), Some(net("10.10.0.0/24")));
        assert_eq!(
            pick_subnet(&pools, &[net("10.10.0.0/24"), net("10.10.1.0/24")], &[]),
            Some(net("10.10.2.0/24"))
        );
        assert_eq!(pick_subnet(&pools, &[net("10.10.0.0/16")], &[]), Some(net("10.20.0.0/16")));
    }

    #[test]
    fn pool_size_outside_base_is_refused() {
        let err = serde_json::from_str::<Pool>(r#"{"base":"10.10.0.0/16","size":8}"#).unwrap_err();
        assert!(err.to_string().contains("invalid pool size 8 for base 10.10.0.0/16"), "{err}");
        let err = serde_json::from_str::<Pool>(r#"{"base":"10.10.0.1/16","size":24}"#).unwrap_err();
        assert!(err.to_string().contains("it should be 10.10.0.0/16"), "{err}");
        assert!(Pool::new(net("10.0.0.0/8"), 33).is_err());
    }

    #[test]
    fn bip_gives_the_default_bridges_gateway_and_subnet() {
        let bip: Bip = "172.26.0.1/16".parse().expect("bip");
        assert_eq!(bip.gateway, ip("172.26.0.1"));
        assert_eq!(bip.subnet, net("172.26.0.0/16"));
        assert_eq!(bip.to_string(), "172.26.0.1/16");
        // The default bridge holds its subnet: user networks go around it.
        assert_eq!(pick_subnet(&default_pools(), &[bip.subnet], &[]), Some(net("172.17.0.0/16")));
        let bip: Bip = "172.17.5.1/16".parse().expect("bip");
        assert_eq!(pick_subnet(&default_pools(), &[bip.subnet], &[]), Some(net("172.18.0.0/16")));
    }

    #[test]
    fn bip_on_the_network_or_broadcast_address_is_refused() {
        let err = "172.26.0.0/16".parse::<Bip>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid bip 172.26.0.0/16: 172.26.0.0 is not a host address of 172.26.0.0/16"
        );
        assert!("172.26.255.255/16".parse::<Bip>().is_err());
        assert!("172.26.0.1".parse::<Bip>().is_err());
    }

    #[test]
    fn overlapping_subnet_is_refused_with_dockers_message() {
        let err =
            check_no_overlap(net("172.18.0.0/24"), &[net("172.17.0.0/16"), net("172.18.0.0/16")])
                .unwrap_err();
        assert_eq!(err.to_string(), "Pool overlaps with other one on this address space");
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(check_no_overlap(net("172.19.0.0/16"), &[net("172.18.0.0/16")]).is_ok());
    }

    #[test]
    fn gateway_outside_the_subnet_is_refused() {
        let err = Allocator::new(net("10.1.0.0/24"), Some(ip("10.2.0.1")), None).unwrap_err();
        assert_eq!(err.to_string(), "no matching subnet for gateway 10.2.0.1");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let err = Allocator::new(net("10.1.0.0/24"), Some(ip("10.1.0.255")), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid gateway 10.1.0.255: it is not a host address of 10.1.0.0/24"
        );
    }

    #[test]
    fn ip_range_must_lie_inside_the_subnet() {
        for range in ["10.2.0.0/24", "10.0.0.0/8"] {
            let err = Allocator::new(net("10.1.0.0/16"), None, Some(net(range))).unwrap_err();
            assert_eq!(err.to_string(), format!("no matching subnet for range {range}"));
        }
        assert!(Allocator::new(net("10.1.0.0/16"), None, Some(net("10.1.0.0/16"))).is_ok());
    }

    #[test]
    fn allocation_starts_after_the_gateway_and_goes_up() {
        let mut alloc = Allocator::new(net("172.18.0.0/16"), None, None).expect("alloc");
        assert_eq!(alloc.gateway(), ip("172.18.0.1"));
        assert_eq!(alloc.allocate(), Some(ip("172.18.0.2")));
        assert_eq!(alloc.allocate(), Some(ip("172.18.0.3")));
        assert_eq!(alloc.allocate(), Some(ip("172.18.0.4")));
    }

    #[test]
    fn allocation_skips_a_gateway_set_elsewhere() {
        let mut alloc =
            Allocator::new(net("10.9.0.0/29"), Some(ip("10.9.0.2")), None).expect("alloc");
        let got: Vec<_> = std::iter::from_fn(|| alloc.allocate()).collect();
        // .0 network, .2 gateway and .7 broadcast are never handed out.
        assert_eq!(got, ["10.9.0.1", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"].map(ip));
    }

    #[test]
    fn exhausted_network_gives_none_then_reuses_a_released_address() {
        let mut alloc = Allocator::new(net("10.9.0.0/30"), None, None).expect("alloc");
        assert_eq!(alloc.allocate(), Some(ip("10.9.0.2")));
        assert_eq!(alloc.allocate(), None);
        assert!(alloc.release(ip("10.9.0.2")));
        assert!(!alloc.release(ip("10.9.0.2")));
        assert_eq!(alloc.allocate(), Some(ip("10.9.0.2")));
        let err = IpamError::Exhausted { network: "backend".into(), id: "0123abcd".into() };
        assert_eq!(
            err.to_string(),
            "no available IPv4 addresses on this network's address pools: backend (0123abcd)"
        );
    }

    #[test]
    fn release_frees_the_lowest_address_for_the_next_container() {
        let mut alloc = Allocator::new(net("172.18.0.0/16"), None, None).expect("alloc");
        let first: Vec<_> = (0..3).filter_map(|_| alloc.allocate()).collect();
        assert!(alloc.release(first[0]));
        assert_eq!(alloc.allocate(), Some(first[0]));
        assert_eq!(alloc.allocate(), Some(ip("172.18.0.5")));
    }

    #[test]
    fn ip_range_narrows_dynamic_allocation() {
        let mut alloc =
            Allocator::new(net("172.20.0.0/16"), None, Some(net("172.20.5.0/30"))).expect("alloc");
        let got: Vec<_> = std::iter::from_fn(|| alloc.allocate()).collect();
        assert_eq!(got, ["172.20.5.0", "172.20.5.1", "172.20.5.2", "172.20.5.3"].map(ip));
        // --ip may still pick a static address outside the range.
        alloc.reserve(ip("172.20.9.9")).expect("static address outside the range");
    }

    #[test]
    fn ip_range_at_the_start_of_the_subnet_skips_network_and_gateway() {
        let mut alloc =
            Allocator::new(net("172.20.0.0/16"), None, Some(net("172.20.0.0/30"))).expect("alloc");
        let got: Vec<_> = std::iter::from_fn(|| alloc.allocate()).collect();
        assert_eq!(got, ["172.20.0.2", "172.20.0.3"].map(ip));
    }

    #[test]
    fn reserve_refuses_addresses_outside_or_taken_with_dockers_messages() {
        let mut alloc = Allocator::new(net("172.18.0.0/16"), None, None).expect("alloc");
        let err = alloc.reserve(ip("10.0.0.5")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid address 10.0.0.5: It does not belong to any of this network's subnets"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);

        alloc.reserve(ip("172.18.0.10")).expect("free address");
        let err = alloc.reserve(ip("172.18.0.10")).unwrap_err();
        assert_eq!(err.to_string(), "Address already in use");
        assert_eq!(err.kind(), ErrorKind::Conflict);
        for special in ["172.18.0.0", "172.18.0.1", "172.18.255.255"] {
            assert_eq!(
                alloc.reserve(ip(special)),
                Err(IpamError::AddressInUse { address: ip(special) }),
                "{special}"
            );
        }
    }

    #[test]
    fn reserved_addresses_are_skipped_by_allocate() {
        let mut alloc = Allocator::new(net("172.18.0.0/16"), None, None).expect("alloc");
        alloc.reserve(ip("172.18.0.2")).expect("reserve");
        assert_eq!(alloc.allocate(), Some(ip("172.18.0.3")));
    }

    #[test]
    fn allocator_survives_a_serde_round_trip() {
        let mut alloc = Allocator::new(
            net("172.18.0.0/16"),
            Some(ip("172.18.0.254")),
            Some(net("172.18.1.0/24")),
        )
        .expect("alloc");
        alloc.allocate();
        alloc.reserve(ip("172.18.0.9")).expect("reserve");
        let json = serde_json::to_string(&alloc).expect("serialize");
        assert_eq!(
            json,
            r#"{"subnet":"172.18.0.0/16","gateway":"172.18.0.254","ip_range":"172.18.1.0/24","allocated":["172.18.0.9","172.18.1.0"]}"#
        );
        let mut back: Allocator = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, alloc);
        assert_eq!(back.allocate(), Some(ip("172.18.1.1")));
    }
}
