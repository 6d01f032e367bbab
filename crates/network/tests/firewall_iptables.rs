//! Kiln's iptables chains on a real kernel, as root: the scenarios of
//! `firewall.rs` with the iptables backend, plus isolation, internal
//! networks, masquerade out, and the host's own rules left as they were.
//!
//! Every test first moves its own thread into a fresh network namespace
//! (threads spawned from it, and the `iptables-*` and `ip` processes it
//! runs, inherit it), so nothing here touches the host's firewall, links or
//! sysctls; the namespace, with its bridges, veths and rules, goes away
//! with the thread even when an assertion fails.

use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use kiln_network::iptables;
use kiln_network::nft::Ruleset;
use kiln_network::{sysctl, Proto};

mod common;
use common::*;

/// How long a connection that should be dropped is given.
const BLOCKED: Duration = Duration::from_millis(700);

/// Rules of the host's own, as another program would have them: Docker's
/// FORWARD policy and chains, an administrator's rule. Kiln must leave them
/// exactly so.
const HOST_RULES: &str = "\
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -s 192.0.2.99/32 -j DROP
-A DOCKER-USER -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.31.0.0/16 ! -o docker9 -j MASQUERADE
COMMIT
";

/// `iptables-save` (of the flavour `save` names) without comments, which
/// carry the time.
fn saved(save: &str) -> String {
    run(&[save]).lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect()
}

fn ruleset_with_everything() -> Ruleset {
    Ruleset {
        networks: vec![
            network("kiln0", "172.17.0.0/16", false),
            network("br-app", "172.18.0.0/16", false),
            network("br-int", "172.19.0.0/16", true),
        ],
        ports: vec![
            published(None, 8080, Ipv4Addr::new(172, 18, 0, 2), 80, Proto::Tcp),
            published(
                Some(Ipv4Addr::LOCALHOST),
                5353,
                Ipv4Addr::new(172, 18, 0, 3),
                53,
                Proto::Udp,
            ),
        ],
    }
}

#[test]
fn chains_are_applied_replaced_and_removed_leaving_the_hosts_rules_as_they_were() {
    kiln_testing::require_privileged!();
    enter_private_netns();
    run_with(&["iptables-restore"], HOST_RULES);
    let before = saved("iptables-save");
    assert_eq!(iptables::list().expect("list"), None);

    let first = ruleset_with_everything();
    iptables::apply(&first).expect("apply");
    // The kernel holds exactly what was planned: iptables-save shows it back.
    assert_eq!(iptables::list().expect("list").as_deref(), Some(iptables::render(&first).as_str()));
    // Applying the same again changes nothing: no second jump, no rule twice.
    iptables::apply(&first).expect("apply again");
    assert_eq!(iptables::list().expect("list").as_deref(), Some(iptables::render(&first).as_str()));
    let now = saved("iptables-save");
    assert_eq!(now.matches("-j KILN-FORWARD").count(), 1, "{now}");
    // Kiln's jump comes before Docker's, and the host's rules are all there.
    let forward: Vec<&str> = now.lines().filter(|l| l.starts_with("-A FORWARD ")).collect();
    assert_eq!(forward, ["-A FORWARD -j KILN-FORWARD", "-A FORWARD -j DOCKER-USER"]);
    for line in before.lines().filter(|l| l.starts_with("-A ") || l.starts_with(":FORWARD")) {
        assert!(now.contains(line), "{line} is gone:\n{now}");
    }

    let second =
        Ruleset { networks: vec![network("kiln0", "172.17.0.0/16", false)], ports: vec![] };
    iptables::apply(&second).expect("apply a smaller plan");
    let listed = iptables::list().expect("list").expect("chains");
    assert_eq!(listed, iptables::render(&second));
    assert!(!listed.contains("br-app") && !listed.contains("-j DNAT"), "old rules left:\n{listed}");

    iptables::remove().expect("remove");
    assert_eq!(iptables::list().expect("list"), None);
    assert_eq!(saved("iptables-save"), before, "the host's rules changed");
    iptables::remove().expect("removing absent chains is fine");
}

#[test]
fn iptables_legacy_reads_and_prints_the_same_chains() {
    kiln_testing::require_privileged!();
    enter_private_netns();
    // The scripts, fed to the legacy flavour (x_tables) by hand: what
    // `apply` and `remove` do where `iptables` is iptables-legacy.
    run_with(&["iptables-legacy-restore"], HOST_RULES);
    let before = saved("iptables-legacy-save");
    let ruleset = ruleset_with_everything();
    for _ in 0..2 {
        let script = iptables::restore_script(&ruleset, &saved("iptables-legacy-save"));
        run_with(&["iptables-legacy-restore", "-w", "10", "--noflush"], &script);
        assert_eq!(
            iptables::kiln_chains(&saved("iptables-legacy-save")),
            Some(iptables::render(&ruleset))
        );
    }
    let script = iptables::removal_script(&saved("iptables-legacy-save")).expect("a script");
    run_with(&["iptables-legacy-restore", "-w", "10", "--noflush"], &script);
    assert_eq!(saved("iptables-legacy-save"), before);
}

fn reaches(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, BLOCKED).is_ok()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

/// A bridge `name` with `gateway/24` and one veth pair per `(host end,
/// container end)`, the host end in the bridge with hairpin mode on (what
/// the engine does for each container).
fn bridge(name: &str, gateway: &str, veths: &[(&str, &str)]) {
    run(&["ip", "link", "add", name, "type", "bridge"]);
    run(&["ip", "addr", "add", &format!("{gateway}/24"), "dev", name]);
    run(&["ip", "link", "set", name, "up"]);
    for (host_end, container_end) in veths {
        run(&["ip", "link", "add", host_end, "type", "veth", "peer", "name", container_end]);
        run(&["ip", "link", "set", host_end, "master", name, "up"]);
        run(&["ip", "link", "set", host_end, "type", "bridge_slave", "hairpin", "on"]);
    }
    sysctl::enable_route_localnet(name).expect("route_localnet");
}

/// "The internet": a namespace behind a veth of the host's (`ko0`,
/// 198.51.100.1/24), serving at 198.51.100.2.
fn outside() -> Container {
    run(&["ip", "link", "add", "ko0", "type", "veth", "peer", "name", "ko1"]);
    run(&["ip", "addr", "add", "198.51.100.1/24", "dev", "ko0"]);
    run(&["ip", "link", "set", "ko0", "up"]);
    Container::start("ko1", "198.51.100.2/24", "198.51.100.1")
}

#[test]
fn published_ports_answer_on_localhost_other_addresses_and_through_hairpin() {
    kiln_testing::require_privileged!();
    enter_private_netns();
    // The "host": a bridge, and a second address standing for its LAN one.
    bridge("kt0", "10.77.0.1", &[("kv0", "kv1"), ("kw0", "kw1")]);
    run(&["ip", "addr", "add", "192.0.2.10/32", "dev", "lo"]);
    sysctl::enable_ip_forward().expect("ip_forward");

    let container = Container::start("kv1", "10.77.0.2/24", "10.77.0.1");
    let neighbour = Container::start("kw1", "10.77.0.3/24", "10.77.0.1");
    let container_ip = Ipv4Addr::new(10, 77, 0, 2);
    let ruleset = Ruleset {
        networks: vec![network("kt0", "10.77.0.0/24", false)],
        ports: vec![
            published(None, 8080, container_ip, 80, Proto::Tcp),
            published(Some(Ipv4Addr::LOCALHOST), 5353, container_ip, 53, Proto::Udp),
            published(None, 8081, Ipv4Addr::new(10, 77, 0, 3), 80, Proto::Tcp),
        ],
    };
    iptables::apply(&ruleset).expect("apply");

    // From the host to 127.0.0.1: DNAT in OUTPUT, and the loopback source
    // masqueraded to the bridge's address on the way out.
    assert_eq!(ask_tcp(addr("127.0.0.1:8080")), "10.77.0.1");
    // From the host to another of its addresses: the client keeps its address.
    assert_eq!(ask_tcp(addr("192.0.2.10:8080")), "192.0.2.10");

    // UDP on 127.0.0.1 only.
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp client");
    udp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    udp.send_to(b"who", "127.0.0.1:5353").expect("send");
    let mut buf = [0u8; 64];
    let (n, from) = udp.recv_from(&mut buf).expect("udp reply through DNAT");
    assert_eq!(from, addr("127.0.0.1:5353"), "reply comes from the published address");
    assert_eq!(std::str::from_utf8(&buf[..n]).expect("utf8"), "10.77.0.1");
    assert_eq!(udp_answers("192.0.2.10:5353"), None, "published on 127.0.0.1 only");

    // The container reaching its own published port through a host
    // address: hairpin, masqueraded so that the reply comes back the same way.
    assert_eq!(container.inside(|| ask_tcp(addr("10.77.0.1:8080"))), "10.77.0.1");
    assert_eq!(container.inside(|| ask_tcp(addr("192.0.2.10:8080"))), "10.77.0.1");

    // Another container on the same bridge, through a host address.
    assert_eq!(neighbour.inside(|| ask_tcp(addr("192.0.2.10:8080"))), "10.77.0.1");
    assert_eq!(container.inside(|| ask_tcp(addr("10.77.0.1:8081"))), "10.77.0.1");

    // With the rules gone, the published port is gone too.
    iptables::remove().expect("remove");
    assert!(!reaches(addr("127.0.0.1:8080")), "DNAT left behind");
    container.stop();
    neighbour.stop();
}

/// The answer of the udp/53 server behind `target`, if one comes within
/// [`BLOCKED`].
fn udp_answers(target: &str) -> Option<String> {
    let udp = UdpSocket::bind("0.0.0.0:0").expect("udp client");
    udp.set_read_timeout(Some(BLOCKED)).expect("timeout");
    udp.send_to(b"who", target).expect("send");
    let mut buf = [0u8; 64];
    let (n, _) = udp.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn containers_reach_the_outside_masqueraded_and_other_bridges_only_through_published_ports() {
    kiln_testing::require_privileged!();
    enter_private_netns();
    bridge("kta", "10.78.1.1", &[("kva0", "kva1")]);
    bridge("ktb", "10.78.2.1", &[("kvb0", "kvb1")]);
    sysctl::enable_ip_forward().expect("ip_forward");
    let internet = outside();
    let a = Container::start("kva1", "10.78.1.2/24", "10.78.1.1");
    let b = Container::start("kvb1", "10.78.2.2/24", "10.78.2.1");
    let ruleset = Ruleset {
        networks: vec![
            network("kta", "10.78.1.0/24", false),
            network("ktb", "10.78.2.0/24", false),
        ],
        ports: vec![published(None, 8080, Ipv4Addr::new(10, 78, 2, 2), 80, Proto::Tcp)],
    };
    // Before Kiln's rules, the outside sees the container's own address:
    // the masquerade below is Kiln's doing.
    assert_eq!(a.inside(|| ask_tcp(addr("198.51.100.2:80"))), "10.78.1.2");
    assert!(a.inside(|| reaches(addr("10.78.2.2:80"))), "routed before Kiln's rules");
    // Docker's FORWARD policy: Kiln's accepts come first and still let its
    // bridges' traffic through.
    run(&["iptables", "-P", "FORWARD", "DROP"]);
    iptables::apply(&ruleset).expect("apply");

    // Out to "the internet", with the host's address on that link.
    assert_eq!(a.inside(|| ask_tcp(addr("198.51.100.2:80"))), "198.51.100.1");
    assert_eq!(a.inside(|| udp_answers("198.51.100.2:53")).as_deref(), Some("198.51.100.1"));
    // Not to a container of another Kiln network, either way.
    assert!(!a.inside(|| reaches(addr("10.78.2.2:80"))), "kta reached ktb");
    assert!(!b.inside(|| reaches(addr("10.78.1.2:80"))), "ktb reached kta");
    // But to its published port, through a host address, as from another host.
    // (Masqueraded to the gateway of the bridge it goes into, as with nft.)
    assert_eq!(a.inside(|| ask_tcp(addr("10.78.1.1:8080"))), "10.78.2.1");
    // And from "the internet" through the host's address there.
    assert_eq!(internet.inside(|| ask_tcp(addr("198.51.100.1:8080"))), "198.51.100.2");

    a.stop();
    b.stop();
    internet.stop();
    iptables::remove().expect("remove");
}

#[test]
fn an_internal_network_has_no_way_out_or_in() {
    kiln_testing::require_privileged!();
    enter_private_netns();
    bridge("kti", "10.79.1.1", &[("kvi0", "kvi1"), ("kvj0", "kvj1")]);
    bridge("kto", "10.79.2.1", &[("kvo0", "kvo1")]);
    sysctl::enable_ip_forward().expect("ip_forward");
    let internet = outside();
    let inner = Container::start("kvi1", "10.79.1.2/24", "10.79.1.1");
    let sibling = Container::start("kvj1", "10.79.1.3/24", "10.79.1.1");
    let open = Container::start("kvo1", "10.79.2.2/24", "10.79.2.1");
    let ruleset = Ruleset {
        networks: vec![network("kti", "10.79.1.0/24", true), network("kto", "10.79.2.0/24", false)],
        // A published port of the open network, whose accept must not let
        // the internal network's traffic through.
        ports: vec![published(None, 8080, Ipv4Addr::new(10, 79, 2, 2), 80, Proto::Tcp)],
    };
    assert!(inner.inside(|| reaches(addr("198.51.100.2:80"))), "routed before Kiln's rules");
    iptables::apply(&ruleset).expect("apply");

    assert!(!inner.inside(|| reaches(addr("198.51.100.2:80"))), "internal reached the outside");
    assert!(!inner.inside(|| reaches(addr("10.79.2.2:80"))), "internal reached another network");
    assert!(!open.inside(|| reaches(addr("10.79.1.2:80"))), "another network reached internal");
    assert!(!internet.inside(|| reaches(addr("10.79.1.2:80"))), "the outside reached internal");
    // On its own bridge it is a network like any other.
    assert_eq!(sibling.inside(|| ask_tcp(addr("10.79.1.2:80"))), "10.79.1.3");
    // The open network next to it still gets out.
    assert_eq!(open.inside(|| ask_tcp(addr("198.51.100.2:80"))), "198.51.100.1");

    inner.stop();
    sibling.stop();
    open.stop();
    internet.stop();
    iptables::remove().expect("remove");
}
