//! Kiln's nftables table and sysctls on a real kernel, as root.
//!
//! Every test first moves its own thread into a fresh network namespace
//! (threads spawned from it, and the `nft` and `ip` processes it runs,
//! inherit it), so nothing here touches the host's firewall, links or
//! sysctls; the namespace, with its bridge, veths and table, goes away with
//! the thread even when an assertion fails.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::MetadataExt as _;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kiln_network::nft::{self, BridgeNetwork, PublishedPort, Ruleset};
use kiln_network::{sysctl, Proto, Subnet};
use nix::sched::{setns, unshare, CloneFlags};

const TIMEOUT: Duration = Duration::from_secs(10);

fn netns_inode() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net").expect("stat own netns").ino()
}

/// Moves the calling thread into a new, empty network namespace, and
/// proves it moved before anything is changed.
fn enter_private_netns() {
    let before = netns_inode();
    unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    assert_ne!(netns_inode(), before, "still in the original network namespace");
    run(&["ip", "link", "set", "lo", "up"]);
}

/// Runs a command (in the calling thread's namespaces) and insists it succeeds.
fn run(argv: &[&str]) {
    let out =
        Command::new(argv[0]).args(&argv[1..]).output().unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn subnet(s: &str) -> Subnet {
    s.parse().expect("subnet")
}

fn network(bridge: &str, s: &str, internal: bool) -> BridgeNetwork {
    BridgeNetwork::new(bridge, subnet(s), internal).expect("network")
}

fn published(
    host_ip: Option<Ipv4Addr>,
    host_port: u16,
    container: Ipv4Addr,
    port: u16,
    proto: Proto,
) -> PublishedPort {
    PublishedPort { host_ip, host_port, container_ip: container, container_port: port, proto }
}

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

/// The address the server saw the connection come from.
fn ask_tcp(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut seen = String::new();
    stream.read_to_string(&mut seen).unwrap_or_else(|e| panic!("read from {addr}: {e}"));
    seen
}

/// A container: its own network namespace with a veth into the bridge,
/// serving its callers' addresses back on tcp/80 and udp/53.
struct Container {
    /// Where the container's namespace can be opened while it runs.
    netns: String,
    done: mpsc::Sender<()>,
    server: thread::JoinHandle<()>,
}

impl Container {
    fn start(veth: &str, ip: &str, gateway: &str) -> Container {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (moved_tx, moved_rx) = mpsc::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let veth_name = veth.to_owned();
        let (veth, ip, gateway) = (veth.to_owned(), ip.to_owned(), gateway.to_owned());
        let server = thread::spawn(move || {
            unshare(CloneFlags::CLONE_NEWNET).expect("container netns");
            tid_tx.send(nix::unistd::gettid().as_raw()).expect("send tid");
            moved_rx.recv().expect("veth moved in");
            run(&["ip", "link", "set", "lo", "up"]);
            run(&["ip", "addr", "add", &ip, "dev", &veth]);
            run(&["ip", "link", "set", &veth, "up"]);
            run(&["ip", "route", "add", "default", "via", &gateway]);
            let tcp = TcpListener::bind("0.0.0.0:80").expect("bind tcp/80");
            tcp.set_nonblocking(true).expect("nonblocking");
            let udp = UdpSocket::bind("0.0.0.0:53").expect("bind udp/53");
            udp.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
            ready_tx.send(()).expect("ready");
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline && done_rx.try_recv().is_err() {
                if let Ok((mut conn, peer)) = tcp.accept() {
                    let _ = conn.write_all(peer.ip().to_string().as_bytes());
                }
                let mut buf = [0u8; 64];
                if let Ok((_, peer)) = udp.recv_from(&mut buf) {
                    let _ = udp.send_to(peer.ip().to_string().as_bytes(), peer);
                }
            }
        });
        let tid: i32 = tid_rx.recv_timeout(TIMEOUT).expect("container thread started");
        run(&["ip", "link", "set", &veth_name, "netns", &tid.to_string()]);
        moved_tx.send(()).expect("signal");
        ready_rx.recv_timeout(TIMEOUT).expect("container serving");
        let netns = format!("/proc/self/task/{tid}/ns/net");
        Container { netns, done: done_tx, server }
    }

    /// Runs `f` on a thread inside the container's network namespace.
    fn inside<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let ns = File::open(&self.netns).expect("open container netns");
        thread::spawn(move || {
            setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("thread in container")
    }

    fn stop(self) {
        let _ = self.done.send(());
        self.server.join().expect("server thread");
    }
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
