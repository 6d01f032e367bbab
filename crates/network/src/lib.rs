//! Bridge networking mechanisms: address management, published-port specs,
//! and Kiln's firewall table.
//!
//! - [`ipam`]: subnets, Docker's default address pools (and daemon.json's
//!   `bip` and `default-address-pools`), choosing a subnet that collides with
//!   no other network and no host route, and the per-network [`Allocator`]
//!   that hands container addresses out, takes `--ip` reservations and is
//!   persisted with the network.
//! - [`ports`]: `-p`/`--publish` specs, `EXPOSE` keys and the API's
//!   `PortBindings` into [`PortBinding`]s; random host ports; "port is
//!   already allocated" checks and [`PortReservation`]s that hold a port
//!   while a container publishes it.
//! - [`nft`]: the [`Ruleset`] plan (masquerade, DNAT of published ports,
//!   hairpin, isolation between bridges, `--internal`) rendered for
//!   `nft -f`, applied atomically to `table ip kiln` and nothing else.
//! - [`iptables`]: the same [`Ruleset`] as Kiln's own iptables chains
//!   (`KILN-PREROUTING`, `KILN-OUTPUT`, `KILN-POSTROUTING`, `KILN-FORWARD`)
//!   and one jump to each, for hosts without nftables.
//! - [`sysctl`]: IPv4 forwarding (remembering what it was) and
//!   `route_localnet` on bridges.
//! - [`dns`]: the DNS wire format of the embedded resolver at 127.0.0.11:
//!   queries in, answers out, never a panic on what a container sends
//!   (fuzzed: `cargo +nightly fuzz run dns` from `crates/network`).
//!
//! The engine owns the state: it keeps networks and their allocators in its
//! database, creates bridges, veths and namespaces (through `kiln-sys`),
//! and after every change (a network created or removed, a container
//! started or stopped with published ports) builds the whole [`Ruleset`]
//! from what is running and [`apply`](nft::apply)s it. Recomputing the
//! whole table each time is what keeps rules consistent after a daemon
//! crash: the next apply replaces whatever was left.
//!
//! ```
//! use kiln_network::{ipam, nft, ports};
//! let subnet = ipam::pick_subnet(&ipam::default_pools(), &[], &[]).expect("a free subnet");
//! let mut addresses = ipam::Allocator::new(subnet, None, None).expect("valid addressing");
//! let container_ip = addresses.allocate().expect("a free address");
//! assert_eq!(container_ip.to_string(), "172.17.0.2");
//!
//! let binding = &ports::parse_publish("8080:80")?[0];
//! let ruleset = nft::Ruleset {
//!     networks: vec![nft::BridgeNetwork::new("kiln0", subnet, false)?],
//!     ports: vec![nft::PublishedPort {
//!         host_ip: None,
//!         host_port: binding.host_port.unwrap_or(0),
//!         container_ip,
//!         container_port: binding.container_port,
//!         proto: binding.proto,
//!     }],
//! };
//! assert!(ruleset.render().contains("fib daddr type local tcp dport 8080 dnat to 172.17.0.2:80"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod dns;
pub mod ipam;
pub mod iptables;
pub mod nft;
pub mod ports;
pub mod sysctl;

pub use ipam::{Allocator, IpamError, Pool, Subnet};
pub use nft::{NftError, Ruleset};
pub use ports::{PortBinding, PortError, PortKey, PortReservation, Proto};
