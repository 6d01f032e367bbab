//! The embedded DNS resolver (127.0.0.11) of user-defined networks, end to
//! end: busybox `nslookup`/`ping` by name inside containers, and raw
//! queries over UDP and TCP from inside a container's namespace. Each test
//! runs its daemon in a network namespace of its own
//! ([`TestDaemon::bridged`]); its "upstream" resolver is a socket the test
//! serves in that namespace.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_network::dns::{self, Record};
use serde_json::Value;

use crate::common::{random_bytes, TestDaemon};

/// `kiln-t-WHAT-<random>`.
fn name(what: &str) -> String {
    let [a, b, c] = random_bytes();
    format!("kiln-t-{what}-{a:02x}{b:02x}{c:02x}")
}

/// A random /24 of 10.214.0.0/16 as (its first three octets, the CIDR).
fn subnet() -> (String, String) {
    let [a, ..] = random_bytes();
    (format!("10.214.{a}"), format!("10.214.{a}.0/24"))
}

/// The container's address on `network`.
fn address(daemon: &TestDaemon, container: &str, network: &str) -> String {
    let out = daemon.kiln_ok(&["inspect", container]);
    let list: Value = serde_json::from_str(&out).expect("inspect prints JSON");
    let ip = list[0]["NetworkSettings"]["Networks"][network]["IPAddress"].as_str();
    ip.expect("an address on the network").to_owned()
}

/// The addresses busybox `nslookup NAME` prints for `name` in `container`
/// (after the server's own lines), or `None` when it fails.
fn nslookup(daemon: &TestDaemon, container: &str, name: &str) -> Option<Vec<String>> {
    let run = daemon.kiln_run(&["exec", container, "nslookup", "-type=a", name]);
    if run.code != Some(0) {
        return None;
    }
    let answers = run.stdout.split_once("Name:").map_or("", |(_, rest)| rest);
    Some(
        answers
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Address:"))
            .map(|a| a.trim().to_owned())
            .collect(),
    )
}

/// Runs `f` inside the container's network namespace.
fn in_container_netns<T: Send>(
    daemon: &TestDaemon,
    container: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> T {
    let id = daemon.kiln_ok(&["inspect", "-f", "{{.Id}}", container]);
    let netns = daemon.exec_root().join("netns").join(id.trim());
    kiln_sys::netns::run_in(&netns, f).expect("in the container's namespace")
}

/// `eventually`: retried for up to 10 s.
fn eventually(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn containers_on_a_user_network_resolve_each_other_by_name_alias_and_address() {
    kiln_testing::require_privileged!();
    let (daemon, _) = TestDaemon::bridged();
    let (net, other) = (name("dns"), name("dns-other"));
    let ((_, cidr), (_, other_cidr)) = (subnet(), subnet());
    if cidr == other_cidr {
        return; // one chance in 256: the two subnets collide; nothing to test
    }
    daemon.kiln_ok(&["network", "create", "--subnet", &cidr, &net]);
    daemon.kiln_ok(&["network", "create", "--subnet", &other_cidr, &other]);
    let web = name("web");
    let id = daemon.kiln_ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "--network",
        &net,
        "--network-alias",
        "api",
        "bb",
        "sleep",
        "1000",
    ]);
    let stranger = name("stranger");
    daemon.kiln_ok(&["run", "-d", "--name", &stranger, "--network", &other, "bb", "sleep", "1000"]);
    let client = name("client");
    daemon.kiln_ok(&["run", "-d", "--name", &client, "--network", &net, "bb", "sleep", "1000"]);
    let web_ip = address(&daemon, &web, &net);

    let resolv = daemon.kiln_ok(&["exec", &client, "cat", "/etc/resolv.conf"]);
    assert!(resolv.starts_with("nameserver 127.0.0.11\n"), "{resolv}");
    assert!(resolv.contains("options ndots:0"), "{resolv}");
    for asked in
        [web.clone(), web.to_uppercase(), "api".into(), format!("{web}.{net}"), id[..12].into()]
    {
        assert_eq!(nslookup(&daemon, &client, &asked), Some(vec![web_ip.clone()]), "{asked}");
    }
    let ping = daemon.kiln_run(&["exec", &client, "ping", "-c", "1", "-W", "2", &web]);
    assert_eq!(ping.code, Some(0), "{ping:?}");
    assert!(ping.stdout.contains(&web_ip), "{ping:?}");
    let reverse = daemon.kiln_ok(&["exec", &client, "nslookup", &web_ip]);
    assert!(reverse.contains(&format!("{web}.{net}")), "{reverse}");

    // Another network's containers are not known here, nor ours there.
    assert_eq!(nslookup(&daemon, &client, &stranger), None);
    assert_eq!(nslookup(&daemon, &stranger, &web), None);

    // Kept current: a stopped container goes, a connected one comes.
    daemon.kiln_ok(&["stop", "-t", "0", &web]);
    eventually("the stopped container's name is gone", || {
        nslookup(&daemon, &client, &web).is_none()
    });
    daemon.kiln_ok(&["network", "connect", &net, &stranger]);
    let stranger_ip = address(&daemon, &stranger, &net);
    assert_eq!(nslookup(&daemon, &client, &stranger), Some(vec![stranger_ip]));

    // The default bridge keeps the host's servers, as with Docker.
    let plain = daemon.kiln_ok(&["run", "--rm", "bb", "cat", "/etc/resolv.conf"]);
    assert!(!plain.contains("127.0.0.11"), "{plain}");

    daemon.kiln_ok(&["rm", "-f", &web, &stranger, &client]);
    daemon.kiln_ok(&["network", "rm", &net, &other]);
}

#[test]
fn the_resolver_answers_raw_queries_over_udp_and_tcp_like_a_dns_server() {
    kiln_testing::require_privileged!();
    let (daemon, _) = TestDaemon::bridged();
    let net = name("raw");
    let (_, cidr) = subnet();
    daemon.kiln_ok(&["network", "create", "--subnet", &cidr, &net]);
    let db = name("db");
    daemon.kiln_ok(&["run", "-d", "--name", &db, "--network", &net, "bb", "sleep", "1000"]);
    let app = name("app");
    daemon.kiln_ok(&["run", "-d", "--name", &app, "--network", &net, "bb", "sleep", "1000"]);
    let db_ip: Ipv4Addr = address(&daemon, &db, &net).parse().expect("an IPv4 address");
    let resolver = SocketAddr::from(([127, 0, 0, 11], 53));

    let (over_udp, aaaa, over_tcp) = in_container_netns(&daemon, &app, || {
        let socket = UdpSocket::bind(("127.0.0.1", 0))?;
        socket.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut buf = [0u8; 4096];
        // In mixed case, as DNS 0x20 clients ask: the question comes back
        // exactly as asked.
        let query = dns::build_query(0x1234, &db.to_uppercase(), dns::TYPE_A);
        socket.send_to(&query, resolver)?;
        let n = socket.recv(&mut buf)?;
        let over_udp = dns::parse_response(&buf[..n]);
        assert_eq!(buf.get(12..query.len()), query.get(12..), "the question, as asked");
        socket.send_to(&dns::build_query(0x4321, &db, dns::TYPE_AAAA), resolver)?;
        let n = socket.recv(&mut buf)?;
        let aaaa = dns::parse_response(&buf[..n]);

        let mut stream = TcpStream::connect(resolver)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(&dns::tcp_frame(&dns::build_query(
            7,
            &format!("{db}.{net}"),
            dns::TYPE_A,
        )))?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len)?;
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut msg)?;
        Ok((over_udp, aaaa, dns::parse_response(&msg)))
    });
    let over_udp = over_udp.expect("a DNS response over UDP");
    assert_eq!((over_udp.id, over_udp.rcode, over_udp.truncated), (0x1234, 0, false));
    assert_eq!(over_udp.answers, vec![(db.clone(), Record::A(db_ip))]);
    let aaaa = aaaa.expect("a DNS response for AAAA");
    assert_eq!((aaaa.id, aaaa.rcode, aaaa.answers.len()), (0x4321, 0, 0), "no data, no error");
    let over_tcp = over_tcp.expect("a DNS response over TCP");
    assert_eq!((over_tcp.id, over_tcp.rcode), (7, 0));
    assert_eq!(over_tcp.answers, vec![(format!("{db}.{net}"), Record::A(db_ip))]);

    daemon.kiln_ok(&["rm", "-f", &db, &app]);
    daemon.kiln_ok(&["network", "rm", &net]);
}

/// A resolver on `127.0.0.1:53` of the daemon's namespace that answers
/// `example.test` with 10.9.8.7 and anything else with NXDOMAIN, counting
/// queries, until the returned flag is set.
fn fake_upstream(daemon: &TestDaemon) -> (Arc<AtomicBool>, Arc<AtomicUsize>) {
    let socket = daemon.in_netns(|| {
        let socket = UdpSocket::bind(("127.0.0.1", 53))?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(socket)
    });
    let (stop, count) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let (stopping, counting) = (Arc::clone(&stop), Arc::clone(&count));
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !stopping.load(Ordering::Relaxed) {
            let Ok((n, peer)) = socket.recv_from(&mut buf) else { continue };
            let Ok(query) = dns::parse_query(&buf[..n]) else { continue };
            counting.fetch_add(1, Ordering::Relaxed);
            let reply = if query.name == "example.test" && query.qtype == dns::TYPE_A {
                dns::response(
                    &query,
                    dns::Rcode::NoError,
                    &[Record::A([10, 9, 8, 7].into())],
                    60,
                    512,
                )
            } else if query.name == "example.test" {
                dns::response(&query, dns::Rcode::NoError, &[], 60, 512)
            } else {
                dns::response(&query, dns::Rcode::NxDomain, &[], 60, 512)
            };
            let _ = socket.send_to(&reply, peer);
        }
    });
    (stop, count)
}

#[test]
fn other_names_go_to_the_dns_servers_but_never_out_of_an_internal_network() {
    kiln_testing::require_privileged!();
    let (daemon, _) = TestDaemon::bridged();
    let (stop, count) = fake_upstream(&daemon);
    let (net, internal) = (name("fwd"), name("fwd-int"));
    let ((_, cidr), (_, internal_cidr)) = (subnet(), subnet());
    if cidr == internal_cidr {
        stop.store(true, Ordering::Relaxed);
        return; // one chance in 256: the two subnets collide
    }
    daemon.kiln_ok(&["network", "create", "--subnet", &cidr, &net]);
    daemon.kiln_ok(&["network", "create", "--internal", "--subnet", &internal_cidr, &internal]);
    let out = name("out");
    daemon.kiln_ok(&[
        "run",
        "-d",
        "--name",
        &out,
        "--network",
        &net,
        "--dns",
        "127.0.0.1",
        "--dns-search",
        "corp.test",
        "bb",
        "sleep",
        "1000",
    ]);
    let shut = name("shut");
    daemon.kiln_ok(&[
        "run",
        "-d",
        "--name",
        &shut,
        "--network",
        &internal,
        "--dns",
        "127.0.0.1",
        "bb",
        "sleep",
        "1000",
    ]);

    let resolv = daemon.kiln_ok(&["exec", &out, "cat", "/etc/resolv.conf"]);
    assert_eq!(resolv, "nameserver 127.0.0.11\nsearch corp.test\noptions ndots:0\n");
    assert_eq!(nslookup(&daemon, &out, "example.test"), Some(vec!["10.9.8.7".to_owned()]));
    let missing = daemon.kiln_run(&["exec", &out, "nslookup", "-type=a", "nowhere.test"]);
    assert_ne!(missing.code, Some(0), "{missing:?}");
    assert!(missing.stdout.contains("NXDOMAIN"), "{missing:?}");
    let asked = count.load(Ordering::Relaxed);
    assert!(asked >= 2, "the upstream server was asked ({asked})");

    assert_eq!(nslookup(&daemon, &shut, "example.test"), None);
    assert_eq!(count.load(Ordering::Relaxed), asked, "nothing left the internal network");
    // Its own network's names still resolve.
    let shut_ip = address(&daemon, &shut, &internal);
    assert_eq!(nslookup(&daemon, &shut, &shut), Some(vec![shut_ip]));

    stop.store(true, Ordering::Relaxed);
    daemon.kiln_ok(&["rm", "-f", &out, &shut]);
    daemon.kiln_ok(&["network", "rm", &net, &internal]);
}

#[test]
fn a_restarted_daemon_serves_the_names_of_containers_that_kept_running() {
    kiln_testing::require_privileged!();
    let (mut daemon, _) = TestDaemon::bridged();
    let net = name("again");
    let (_, cidr) = subnet();
    daemon.kiln_ok(&["network", "create", "--subnet", &cidr, &net]);
    let (a, b) = (name("a"), name("b"));
    for c in [&a, &b] {
        daemon.kiln_ok(&["run", "-d", "--name", c, "--network", &net, "bb", "sleep", "1000"]);
    }
    let b_ip = address(&daemon, &b, &net);
    assert_eq!(nslookup(&daemon, &a, &b), Some(vec![b_ip.clone()]));

    let mut child = daemon.child.take().expect("the daemon runs");
    child.kill().expect("kill -9 the daemon");
    let _ = child.wait();
    daemon.child = Some(daemon.command().spawn().expect("restart the daemon"));
    daemon.wait_until_serving();
    assert_eq!(nslookup(&daemon, &a, &b), Some(vec![b_ip]));

    daemon.kiln_ok(&["rm", "-f", &a, &b]);
    daemon.kiln_ok(&["network", "rm", &net]);
}
