//! Kiln's firewall: NAT, port publishing and isolation for its bridges, as
//! one nftables table, `table ip kiln`, that Kiln owns alone.
//!
//! [`Ruleset`] is the plan, plain data rendered to the text `nft -f` reads;
//! [`apply`] replaces the whole table with it in one transaction, and
//! [`remove`] deletes it. No other table is read or written: Docker's,
//! Podman's, firewalld's and the host's rules stay as they are.
//!
//! # What the table holds
//! - `prerouting` and `output` (nat, priority `dstnat - 10`, so before
//!   Docker's and Podman's, whose chains sit at `dstnat`): one DNAT rule per
//!   published port. Without a host ip the rule matches `fib daddr type
//!   local`, every address of the host; `output` catches connections the
//!   host itself makes, including to `127.0.0.1` (for that the engine sets
//!   `route_localnet=1` on the bridge, see [`crate::sysctl`]).
//! - `postrouting` (nat, `srcnat - 10`): masquerade of each non-internal
//!   network's subnet out of any other interface; for bridges with
//!   published ports, masquerade of `127.0.0.0/8` sources (host connections
//!   to localhost, which must not leave with a loopback source) and hairpin
//!   (a container reaching a published port through a host address: `ct
//!   status dnat` traffic from the bridge's subnet back into it).
//! - `forward` (filter, `filter - 10`): replies accepted first; internal
//!   networks may not forward in or out; published ports are accepted from
//!   anywhere; other traffic between two Kiln bridges is dropped
//!   (isolation); a bridge may send anywhere else; nothing else enters it.
//!
//! Every base chain has `policy accept`: traffic that is not Kiln's passes
//! through untouched.
//!
//! # What the engine does besides
//! - `route_localnet=1` on each bridge ([`crate::sysctl::enable_route_localnet`])
//!   for published ports on `127.0.0.1`, and IPv4 forwarding on.
//! - Hairpin mode on each container's bridge port (netlink
//!   `IFLA_BRPORT_MODE`, `ip link set VETH type bridge_slave hairpin on`), as
//!   Docker does without its userland proxy: where `br_netfilter` is loaded
//!   (Docker and Kubernetes load it), the DNAT of a container's connection to
//!   its own published port happens on the bridge, and the packet is bridged
//!   back out of the port it came in on, which a bridge refuses otherwise.
//!
//! # Hosts where the iptables FORWARD policy is DROP
//! Docker sets the iptables `FORWARD` policy to DROP. A verdict of accept in
//! Kiln's chain ends only Kiln's chain: the packet still traverses every
//! other base chain on the forward hook, and a drop there is final. Kiln does
//! not edit other software's rules, so on such a host its containers' routed
//! traffic (outbound, and published ports reached from other hosts) is
//! dropped by Docker's policy, and with `br_netfilter` so is traffic between
//! two containers on one bridge. Published ports reached from the host
//! itself are not forwarded and keep working. The administrator lets Kiln's bridges
//! through in the chain Docker keeps for users, e.g.
//! `iptables -I DOCKER-USER -i kiln+ -j ACCEPT` and
//! `iptables -I DOCKER-USER -o kiln+ -j ACCEPT` (bridge names as configured).
//!
//! # Requirements
//! The `nft` program (Debian: `apt-get install nftables`) and a kernel with
//! nf_tables. Without `nft`, [`apply`] fails with [`NftError::NotInstalled`]
//! (the engine then uses [`crate::iptables`] where `iptables` is installed).

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::Ipv4Addr;
use std::process::{Command, ExitStatus, Stdio};

use kiln_types::{ErrorKind, HasKind};

use crate::ipam::Subnet;
use crate::ports::Proto;

/// The table's family and name, as nft writes them.
pub const TABLE: &str = "ip kiln";

/// The longest interface name Linux accepts (IFNAMSIZ less the NUL).
const IFNAME_MAX: usize = 15;

/// Where to look for `nft` when `PATH` lacks it: a daemon started with a
/// minimal environment may not have the sbin directories on `PATH`.
const NFT_CANDIDATES: &[&str] = &["nft", "/usr/sbin/nft", "/sbin/nft"];

/// Why the firewall could not be planned or applied.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// A bridge name that Linux would refuse or that cannot be quoted in a rule.
    #[error("invalid bridge name {name:?}: up to 15 letters, digits, '-', '_' or '.'")]
    InvalidBridgeName { name: String },
    /// `nft` is not installed.
    #[error(
        "nft not found: install nftables (apt-get install nftables), or iptables for the iptables backend"
    )]
    NotInstalled,
    /// `nft` is there but could not be run or fed.
    #[error("cannot run nft")]
    Spawn {
        #[source]
        source: io::Error,
    },
    /// `nft` refused the script; `stderr` says which line and why.
    #[error("nft failed ({status}) on table {TABLE}: {stderr}")]
    Rejected { status: ExitStatus, stderr: String },
}

impl HasKind for NftError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidBridgeName { .. } => ErrorKind::InvalidArgument,
            Self::NotInstalled => ErrorKind::Unsupported,
            Self::Spawn { .. } | Self::Rejected { .. } => ErrorKind::Internal,
        }
    }
}

/// One Kiln bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeNetwork {
    bridge: String,
    subnet: Subnet,
    internal: bool,
}

impl BridgeNetwork {
    /// The network on bridge `bridge` (an interface name, checked here so
    /// that it can be quoted in a rule) with `subnet`; `internal` networks
    /// (`network create --internal`) get no route out.
    pub fn new(bridge: &str, subnet: Subnet, internal: bool) -> Result<BridgeNetwork, NftError> {
        let valid = !bridge.is_empty()
            && bridge.len() <= IFNAME_MAX
            && bridge != "."
            && bridge != ".."
            && bridge.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid {
            return Err(NftError::InvalidBridgeName { name: bridge.to_owned() });
        }
        Ok(BridgeNetwork { bridge: bridge.to_owned(), subnet, internal })
    }

    /// The bridge interface's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The network's subnet.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// Whether the network has no way out.
    pub fn is_internal(&self) -> bool {
        self.internal
    }
}

/// One published port: traffic for the host's `host_ip:host_port` goes to
/// `container_ip:container_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedPort {
    /// `None` (or `0.0.0.0`) for every address of the host.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
    pub proto: Proto,
}

/// Everything Kiln's table should hold: the plan [`apply`] carries out.
///
/// Rules come out in the order networks and ports were given, so the same
/// state always renders the same text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub networks: Vec<BridgeNetwork>,
    pub ports: Vec<PublishedPort>,
}

impl Ruleset {
    /// The table, in the form `nft list table ip kiln` prints it.
    pub fn render(&self) -> String {
        let chains = [
            (
                "prerouting",
                "type nat hook prerouting priority dstnat - 10; policy accept;",
                self.dnat_rules(),
            ),
            // nft accepts the name `dstnat` only on prerouting; -110 is the same place.
            ("output", "type nat hook output priority -110; policy accept;", self.dnat_rules()),
            (
                "postrouting",
                "type nat hook postrouting priority srcnat - 10; policy accept;",
                self.snat_rules(),
            ),
            (
                "forward",
                "type filter hook forward priority filter - 10; policy accept;",
                self.forward_rules(),
            ),
        ];
        let mut out = format!("table {TABLE} {{\n");
        for (i, (name, hook, rules)) in chains.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "\tchain {name} {{\n\t\t{hook}");
            for rule in rules {
                let _ = writeln!(out, "\t\t{rule}");
            }
            out.push_str("\t}\n");
        }
        out.push_str("}\n");
        out
    }

    /// The script for `nft -f -` that replaces the table atomically: the
    /// first line creates it if absent so that the delete cannot fail, and
    /// all three statements are one transaction, so the kernel never holds
    /// a half-written table or none at all.
    pub fn script(&self) -> String {
        format!("table {TABLE}\ndelete table {TABLE}\n{}", self.render())
    }

    fn has_ports_into(&self, network: &BridgeNetwork) -> bool {
        self.ports.iter().any(|p| network.subnet.contains(p.container_ip))
    }

    fn dnat_rules(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| {
                let daddr = match p.host_ip.filter(|ip| !ip.is_unspecified()) {
                    Some(ip) => format!("ip daddr {ip}"),
                    None => "fib daddr type local".to_owned(),
                };
                format!(
                    "{daddr} {} dport {} dnat to {}:{}",
                    p.proto, p.host_port, p.container_ip, p.container_port
                )
            })
            .collect()
    }

    fn snat_rules(&self) -> Vec<String> {
        let mut rules = Vec::new();
        for n in self.networks.iter().filter(|n| !n.internal) {
            let (bridge, subnet) = (&n.bridge, n.subnet);
            rules.push(format!("oifname != \"{bridge}\" ip saddr {subnet} masquerade"));
            if self.has_ports_into(n) {
                rules.push(format!("oifname \"{bridge}\" ip saddr 127.0.0.0/8 masquerade"));
                rules.push(format!(
                    "oifname \"{bridge}\" ip saddr {subnet} ct status dnat masquerade"
                ));
            }
        }
        rules
    }

    fn forward_rules(&self) -> Vec<String> {
        if self.networks.is_empty() {
            return Vec::new();
        }
        // Replies first: the common case, one rule, and nothing below needs
        // to think about them.
        let mut rules = vec!["ct state established,related accept".to_owned()];
        // Internal networks before any accept, so that no later rule (a
        // published port of another network) lets their traffic out.
        for n in self.networks.iter().filter(|n| n.internal) {
            let bridge = &n.bridge;
            rules.push(format!("iifname \"{bridge}\" oifname != \"{bridge}\" drop"));
            rules.push(format!("oifname \"{bridge}\" iifname != \"{bridge}\" drop"));
        }
        let open: Vec<&BridgeNetwork> = self.networks.iter().filter(|n| !n.internal).collect();
        // Published ports answer from anywhere, other Kiln networks included,
        // as they would from another host.
        for n in &open {
            rules.push(format!("oifname \"{}\" ct status dnat accept", n.bridge));
        }
        for n in &open {
            let others: Vec<String> = self
                .networks
                .iter()
                .filter(|o| o.bridge != n.bridge)
                .map(|o| format!("\"{}\"", o.bridge))
                .collect();
            match others.as_slice() {
                [] => {}
                [one] => rules.push(format!("iifname \"{}\" oifname {one} drop", n.bridge)),
                many => rules.push(format!(
                    "iifname \"{}\" oifname {{ {} }} drop",
                    n.bridge,
                    many.join(", ")
                )),
            }
        }
        for n in &open {
            rules.push(format!("iifname \"{}\" accept", n.bridge));
            rules.push(format!("oifname \"{}\" drop", n.bridge));
        }
        rules
    }
}

/// Replaces Kiln's table with `ruleset`, atomically.
pub fn apply(ruleset: &Ruleset) -> Result<(), NftError> {
    tracing::debug!(
        networks = ruleset.networks.len(),
        ports = ruleset.ports.len(),
        "applying nftables ruleset"
    );
    run_nft(&["-f", "-"], Some(&ruleset.script())).map(drop)
}

/// Deletes Kiln's table; a table that is not there is fine.
pub fn remove() -> Result<(), NftError> {
    run_nft(&["-f", "-"], Some(&format!("table {TABLE}\ndelete table {TABLE}\n"))).map(drop)
}

/// The table as the kernel holds it (`nft list table ip kiln`), or `None`
/// when there is none: for checks after a daemon restart, and for tests.
pub fn list_table() -> Result<Option<String>, NftError> {
    let exists = run_nft(&["list", "tables", "ip"], None)?
        .lines()
        .any(|line| line.trim() == format!("table {TABLE}"));
    if !exists {
        return Ok(None);
    }
    run_nft(&["list", "table", "ip", "kiln"], None).map(Some)
}

/// Runs `nft ARGS`, feeding `stdin` if given; returns stdout.
fn run_nft(args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
    let mut child = spawn_nft(args, stdin.is_some())?;
    if let (Some(script), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // nft reads the whole script before it writes anything, so writing
        // all of it first cannot deadlock on a full stderr pipe.
        pipe.write_all(script.as_bytes()).map_err(|source| NftError::Spawn { source })?;
    }
    let output = child.wait_with_output().map_err(|source| NftError::Spawn { source })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(NftError::Rejected { status: output.status, stderr });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn spawn_nft(args: &[&str], with_stdin: bool) -> Result<std::process::Child, NftError> {
    for program in NFT_CANDIDATES {
        let spawned = Command::new(program)
            .args(args)
            .stdin(if with_stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match spawned {
            Ok(child) => return Ok(child),
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(NftError::Spawn { source }),
        }
    }
    Err(NftError::NotInstalled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(bridge: &str, subnet: &str, internal: bool) -> BridgeNetwork {
        BridgeNetwork::new(bridge, subnet.parse().expect("subnet"), internal).expect("network")
    }

    fn port(
        host_ip: Option<&str>,
        host_port: u16,
        container: &str,
        container_port: u16,
        proto: Proto,
    ) -> PublishedPort {
        PublishedPort {
            host_ip: host_ip.map(|ip| ip.parse().expect("ip")),
            host_port,
            container_ip: container.parse().expect("ip"),
            container_port,
            proto,
        }
    }

    /// The rules of one chain, in order.
    fn chain(text: &str, name: &str) -> Vec<String> {
        let start = format!("\tchain {name} {{\n");
        let body =
            &text[text.find(&start).unwrap_or_else(|| panic!("no chain {name} in\n{text}"))
                + start.len()..];
        let body = &body[..body.find("\t}").expect("chain end")];
        // Skip the hook line.
        body.lines().skip(1).map(|l| l.trim().to_owned()).collect()
    }

    #[test]
    fn one_network_without_ports_masquerades_its_subnet_and_isolates_nothing() {
        let rules = Ruleset { networks: vec![net("kiln0", "172.17.0.0/16", false)], ports: vec![] };
        let text = rules.render();
        assert_eq!(
            text,
            "table ip kiln {
\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat - 10; policy accept;
\t}

\tchain output {
\t\ttype nat hook output priority -110; policy accept;
\t}

\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat - 10; policy accept;
\t\toifname != \"kiln0\" ip saddr 172.17.0.0/16 masquerade
\t}

\tchain forward {
\t\ttype filter hook forward priority filter - 10; policy accept;
\t\tct state established,related accept
\t\toifname \"kiln0\" ct status dnat accept
\t\tiifname \"kiln0\" accept
\t\toifname \"kiln0\" drop
\t}
}
"
        );
    }

    #[test]
    fn every_chain_accepts_by_default_and_runs_before_docker() {
        let text = Ruleset::default().render();
        for hook in [
            "type nat hook prerouting priority dstnat - 10; policy accept;",
            "type nat hook output priority -110; policy accept;",
            "type nat hook postrouting priority srcnat - 10; policy accept;",
            "type filter hook forward priority filter - 10; policy accept;",
        ] {
            assert!(text.contains(hook), "{hook} missing in\n{text}");
        }
        assert_eq!(text.matches("policy").count(), 4);
        assert!(!text.contains("policy drop"));
        assert!(chain(&text, "forward").is_empty(), "no networks, no rules:\n{text}");
    }

    #[test]
    fn script_replaces_only_kilns_table_in_one_go() {
        let rules = Ruleset { networks: vec![net("kiln0", "172.17.0.0/16", false)], ports: vec![] };
        let script = rules.script();
        assert!(
            script.starts_with("table ip kiln\ndelete table ip kiln\ntable ip kiln {\n"),
            "{script}"
        );
        assert!(!script.contains("flush ruleset"));
        let tables: Vec<&str> =
            script.lines().filter(|l| l.starts_with("table") || l.starts_with("delete")).collect();
        assert!(tables.iter().all(|l| l.contains("table ip kiln")), "{tables:?}");
    }

    #[test]
    fn internal_network_is_not_masqueraded_and_cannot_forward_in_or_out() {
        let rules =
            Ruleset { networks: vec![net("kiln-int", "10.50.0.0/24", true)], ports: vec![] };
        let text = rules.render();
        assert!(chain(&text, "postrouting").is_empty(), "{text}");
        assert_eq!(
            chain(&text, "forward"),
            [
                "ct state established,related accept",
                "iifname \"kiln-int\" oifname != \"kiln-int\" drop",
                "oifname \"kiln-int\" iifname != \"kiln-int\" drop",
            ]
        );
    }

    #[test]
    fn two_networks_are_isolated_from_each_other() {
        let rules = Ruleset {
            networks: vec![
                net("kiln0", "172.17.0.0/16", false),
                net("br-a1", "172.18.0.0/16", false),
            ],
            ports: vec![],
        };
        let text = rules.render();
        assert_eq!(
            chain(&text, "forward"),
            [
                "ct state established,related accept",
                "oifname \"kiln0\" ct status dnat accept",
                "oifname \"br-a1\" ct status dnat accept",
                "iifname \"kiln0\" oifname \"br-a1\" drop",
                "iifname \"br-a1\" oifname \"kiln0\" drop",
                "iifname \"kiln0\" accept",
                "oifname \"kiln0\" drop",
                "iifname \"br-a1\" accept",
                "oifname \"br-a1\" drop",
            ]
        );
        assert_eq!(
            chain(&text, "postrouting"),
            [
                "oifname != \"kiln0\" ip saddr 172.17.0.0/16 masquerade",
                "oifname != \"br-a1\" ip saddr 172.18.0.0/16 masquerade"
            ]
        );
    }

    #[test]
    fn internal_drops_come_before_any_accept_of_another_network() {
        let rules = Ruleset {
            networks: vec![
                net("br-open", "172.18.0.0/16", false),
                net("br-int", "172.19.0.0/16", true),
                net("br-b", "172.20.0.0/16", false),
            ],
            ports: vec![port(None, 8080, "172.18.0.2", 80, Proto::Tcp)],
        };
        let forward = chain(&rules.render(), "forward");
        let first_accept =
            forward.iter().skip(1).position(|r| r.ends_with("accept")).expect("an accept") + 1;
        let last_internal_drop = forward
            .iter()
            .rposition(|r| r.contains("br-int\" oifname !=") || r.contains("br-int\" iifname !="))
            .expect("drop");
        assert!(last_internal_drop < first_accept, "{forward:#?}");
        assert!(
            forward
                .contains(&"iifname \"br-open\" oifname { \"br-int\", \"br-b\" } drop".to_owned()),
            "{forward:#?}"
        );
    }

    #[test]
    fn published_tcp_and_udp_ports_are_dnated_on_all_or_one_host_address() {
        let rules = Ruleset {
            networks: vec![net("kiln0", "172.17.0.0/16", false)],
            ports: vec![
                port(None, 8080, "172.17.0.2", 80, Proto::Tcp),
                port(Some("127.0.0.1"), 5353, "172.17.0.3", 53, Proto::Udp),
                port(Some("0.0.0.0"), 9000, "172.17.0.3", 9000, Proto::Udp),
            ],
        };
        let text = rules.render();
        let want = [
            "fib daddr type local tcp dport 8080 dnat to 172.17.0.2:80",
            "ip daddr 127.0.0.1 udp dport 5353 dnat to 172.17.0.3:53",
            "fib daddr type local udp dport 9000 dnat to 172.17.0.3:9000",
        ];
        // From other hosts (prerouting) and from the host itself (output).
        assert_eq!(chain(&text, "prerouting"), want);
        assert_eq!(chain(&text, "output"), want);
    }

    #[test]
    fn published_ports_bring_localhost_and_hairpin_masquerade_to_their_bridge_only() {
        let rules = Ruleset {
            networks: vec![
                net("kiln0", "172.17.0.0/16", false),
                net("br-b", "172.18.0.0/16", false),
            ],
            ports: vec![port(None, 8080, "172.18.0.5", 80, Proto::Tcp)],
        };
        assert_eq!(
            chain(&rules.render(), "postrouting"),
            [
                "oifname != \"kiln0\" ip saddr 172.17.0.0/16 masquerade",
                "oifname != \"br-b\" ip saddr 172.18.0.0/16 masquerade",
                "oifname \"br-b\" ip saddr 127.0.0.0/8 masquerade",
                "oifname \"br-b\" ip saddr 172.18.0.0/16 ct status dnat masquerade",
            ]
        );
    }

    #[test]
    fn bridge_names_that_cannot_be_interfaces_or_quoted_are_refused() {
        let subnet: Subnet = "10.0.0.0/24".parse().expect("subnet");
        for bad in ["", "a-name-that-is-too-long", "br\"0", "br 0", "br/0", "..", "br0\n"] {
            let err = BridgeNetwork::new(bad, subnet, false).unwrap_err();
            assert!(matches!(err, NftError::InvalidBridgeName { .. }), "{bad:?}");
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        }
        for good in ["kiln0", "br-0123456789ab", "docker_gwbridge"] {
            BridgeNetwork::new(good, subnet, false).unwrap_or_else(|err| panic!("{good}: {err}"));
        }
    }

    #[test]
    fn missing_nft_names_the_package() {
        assert_eq!(
            NftError::NotInstalled.to_string(),
            "nft not found: install nftables (apt-get install nftables), or iptables for the iptables backend"
        );
        assert_eq!(NftError::NotInstalled.kind(), ErrorKind::Unsupported);
    }
}
