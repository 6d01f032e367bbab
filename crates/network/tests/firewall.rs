//! Kiln's nftables table and sysctls on a real kernel, as root.
//!
//! Every test first moves its own thread into a fresh network namespace
//! (threads spawned from it, and the `nft` and `ip` processes it runs,
//! inherit it), so nothing here touches the host's firewall, links or
//! sysctls; the namespace, with its bridge, veths and table, goes away with
//! the thread even when an assertion fails.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

use kiln_network::nft::{self, Ruleset};
use kiln_network::{sysctl, Proto};

mod common;
use common::*;

#[test]
fn ruleset_is_applied_whole_replaced_and_removed() {
    kiln_testing::require_privileged!();
    enter_private_netns();
    assert_eq!(nft::list_table().expect("list"), None);

    let first = Ruleset {
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
    };
    nft::apply(&first).expect("apply");
    // The kernel holds exactly what was planned: nft lists it back verbatim.
    assert_eq!(nft::list_table().expect("list").as_deref(), Some(first.render().as_str()));

    let second =
        Ruleset { networks: vec![network("kiln0", "172.17.0.0/16", false)], ports: vec![] };
    nft::apply(&second).expect("apply again");
    let listed = nft::list_table().expect("list").expect("table");
    assert_eq!(listed, second.render());
    assert!(!listed.contains("br-app") && !listed.contains("dnat to"), "old rules left:\n{listed}");

    nft::remove().expect("remove");
    assert_eq!(nft::list_table().expect("list"), None);
    nft::remove().expect("removing an absent table is fine");
}

#[test]
fn ip_forward_is_switched_on_and_restored() {
    kiln_testing::require_privileged!();
    enter_private_netns();
    let read = || {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read").trim().to_owned()
    };
    sysctl::restore_ip_forward(false).expect("start with forwarding off");
    assert!(!sysctl::enable_ip_forward().expect("enable"), "was off");
    assert_eq!(read(), "1");
    assert!(sysctl::enable_ip_forward().expect("enable twice"), "already on");
    sysctl::restore_ip_forward(false).expect("restore");
    assert_eq!(read(), "0");
}

#[test]
fn published_ports_answer_on_localhost_other_addresses_and_through_hairpin() {
    kiln_testing::require_privileged!();
    enter_private_netns();
    // The "host": a bridge, and a second address standing for its LAN one.
    run(&["ip", "link", "add", "kt0", "type", "bridge"]);
    run(&["ip", "addr", "add", "10.77.0.1/24", "dev", "kt0"]);
    run(&["ip", "link", "set", "kt0", "up"]);
    // (On lo: every kernel has it, unlike the dummy driver.)
    run(&["ip", "addr", "add", "192.0.2.10/32", "dev", "lo"]);
    for (host_end, container_end) in [("kv0", "kv1"), ("kw0", "kw1")] {
        run(&["ip", "link", "add", host_end, "type", "veth", "peer", "name", container_end]);
        run(&["ip", "link", "set", host_end, "master", "kt0", "up"]);
        // What the engine does for each container (as Docker does without
        // its userland proxy): with br_netfilter loaded, a hairpinned packet
        // is bridged back out of the port it came in on.
        run(&["ip", "link", "set", host_end, "type", "bridge_slave", "hairpin", "on"]);
    }
    sysctl::enable_ip_forward().expect("ip_forward");
    sysctl::enable_route_localnet("kt0").expect("route_localnet");

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
    nft::apply(&ruleset).expect("apply");

    // From the host to 127.0.0.1: DNAT in output, and the loopback source
    // masqueraded to the bridge's address on the way out.
    assert_eq!(ask_tcp("127.0.0.1:8080".parse().expect("addr")), "10.77.0.1");
    // From the host to another of its addresses: the client keeps its address.
    assert_eq!(ask_tcp("192.0.2.10:8080".parse().expect("addr")), "192.0.2.10");

    // UDP on 127.0.0.1 only.
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp client");
    udp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    udp.send_to(b"who", "127.0.0.1:5353").expect("send");
    let mut buf = [0u8; 64];
    let (n, from) = udp.recv_from(&mut buf).expect("udp reply through DNAT");
    assert_eq!(
        from,
        "127.0.0.1:5353".parse::<SocketAddr>().expect("addr"),
        "reply comes from the published address"
    );
    assert_eq!(std::str::from_utf8(&buf[..n]).expect("utf8"), "10.77.0.1");

    // The container reaching its own published port through a host
    // address: hairpin, masqueraded so that the reply comes back the same way.
    let seen = container.inside(|| ask_tcp("10.77.0.1:8080".parse().expect("addr")));
    assert_eq!(seen, "10.77.0.1");
    let seen = container.inside(|| ask_tcp("192.0.2.10:8080".parse().expect("addr")));
    assert_eq!(seen, "10.77.0.1");

    // Another container on the same bridge, through a host address.
    let seen = neighbour.inside(|| ask_tcp("192.0.2.10:8080".parse().expect("addr")));
    assert_eq!(seen, "10.77.0.1");
    let seen = container.inside(|| ask_tcp("10.77.0.1:8081".parse().expect("addr")));
    assert_eq!(seen, "10.77.0.1");

    container.stop();
    neighbour.stop();
    nft::remove().expect("remove");
}
