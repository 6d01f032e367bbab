//! Who reaches whom: containers reach "the internet" through NAT, published
//! ports (TCP and UDP) answer from another host, `--internal` networks have
//! no way out, and containers on different networks cannot reach each
//! other.
//!
//! The daemon runs in a network namespace of its own ([`TestDaemon::bridged`],
//! "the host"); "the internet" is a second namespace the test makes, joined
//! to the host by a veth pair on 203.0.113.0/24 (TEST-NET-3, never routed)
//! with the host's default route through it. Both namespaces go when the
//! test ends, whatever happens.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kiln_sys::netlink::Netlink;
use serde_json::Value;

use crate::common::{random_bytes, TestDaemon};

const HOST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);

/// `kiln-t-WHAT-<random>`.
fn name(what: &str) -> String {
    let [a, b, c] = random_bytes();
    format!("kiln-t-{what}-{a:02x}{b:02x}{c:02x}")
}

/// "The internet": a namespace at `REMOTE`, the daemon's uplink at `HOST`.
struct Internet {
    netns: PathBuf,
}

impl Internet {
    fn attach(daemon: &TestDaemon) -> Internet {
        let netns = daemon.dir.path().join("internet");
        kiln_sys::netns::create_named(&netns).expect("create the internet's namespace");
        let internet = Internet { netns };
        let remote = kiln_sys::netns::open(&internet.netns).expect("open the internet's namespace");
        daemon.in_netns(|| {
            let nl = Netlink::open()?;
            nl.create_veth("up0", "wan0", Some(remote.as_fd()), None, None)?;
            nl.add_address("up0", HOST, 24)?;
            nl.set_up("up0")?;
            let far = Netlink::open_in(&remote)?;
            far.add_address("wan0", REMOTE, 24)?;
            far.set_up("wan0")?;
            far.set_up("lo")?;
            nl.add_default_route(REMOTE)
        });
        internet
    }

    fn run<T: Send>(&self, f: impl FnOnce() -> std::io::Result<T> + Send) -> T {
        kiln_sys::netns::run_in(&self.netns, f).expect("in the internet's namespace")
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        let _ = kiln_sys::netns::remove_named(&self.netns);
    }
}

/// The container's address on `network`.
fn address(daemon: &TestDaemon, container: &str, network: &str) -> String {
    let out = daemon.kiln_ok(&["inspect", container]);
    let list: Value = serde_json::from_str(&out).expect("inspect prints JSON");
    let ip = list[0]["NetworkSettings"]["Networks"][network]["IPAddress"].as_str();
    ip.expect("an address on the network").to_owned()
}

/// A TCP port free in the daemon's namespace now.
fn free_port(daemon: &TestDaemon) -> u16 {
    daemon.in_netns(|| Ok(TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?.local_addr()?.port()))
}

/// Retries `attempt` for up to 10 s until it gives something.
fn within_10s<T>(what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = attempt() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn containers_reach_the_internet_and_are_reached_from_it_through_published_ports() {
    kiln_testing::require_privileged!();
    let (daemon, _) = TestDaemon::bridged();
    let internet = Internet::attach(&daemon);

    // A web server on the internet that says who called.
    let server = internet.run(|| TcpListener::bind((REMOTE, 8000)));
    let serving = std::thread::spawn(move || {
        let (mut stream, peer) = server.accept().expect("a visitor");
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let body = format!("hello {}", peer.ip());
        let reply = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let _ = stream.write_all(reply.as_bytes());
    });
    let url = format!("http://{REMOTE}:8000/");
    let fetched = daemon.kiln_run(&["run", "--rm", "bb", "wget", "-qO-", &url]);
    assert_eq!(fetched.code, Some(0), "{fetched:?}");
    assert_eq!(fetched.stdout, format!("hello {HOST}"), "the internet sees the host's address");
    serving.join().expect("the server thread");

    // From the internet to the host's address: a TCP and a UDP port.
    let (tcp, udp) = (free_port(&daemon), free_port(&daemon));
    let web = name("web");
    let html = "mkdir -p /www && echo 'hello from inside' > /www/index.html && exec httpd -f -p 80 -h /www";
    daemon.kiln_ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "-p",
        &format!("{tcp}:80"),
        "bb",
        "sh",
        "-c",
        html,
    ]);
    let echo = name("echo");
    let udp_spec = format!("{udp}:9000/udp");
    daemon.kiln_ok(&[
        "run", "-d", "--name", &echo, "-p", &udp_spec, "bb", "probe", "udp-echo", "9000",
    ]);

    let page = within_10s("the published TCP port answers from the internet", || {
        internet
            .run(|| {
                let mut stream = TcpStream::connect_timeout(
                    &SocketAddr::from((HOST, tcp)),
                    Duration::from_secs(2),
                )?;
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                let mut text = String::new();
                stream.read_to_string(&mut text)?;
                Ok(Some(text))
            })
            .filter(|t| t.contains("200 OK"))
    });
    assert!(page.ends_with("hello from inside\n"), "{page}");
    let echoed = within_10s("the published UDP port answers from the internet", || {
        internet.run(|| {
            let socket = UdpSocket::bind((REMOTE, 0))?;
            socket.set_read_timeout(Some(Duration::from_millis(500)))?;
            socket.send_to(b"ping", (HOST, udp))?;
            let mut buf = [0u8; 64];
            Ok(socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec()))
        })
    });
    assert_eq!(echoed, b"echo: ping");

    daemon.kiln_ok(&["rm", "-f", &web, &echo]);
}

#[test]
fn internal_networks_have_no_way_out_and_networks_cannot_reach_each_other() {
    kiln_testing::require_privileged!();
    let (daemon, _) = TestDaemon::bridged();
    let internet = Internet::attach(&daemon);
    let [a, ..] = random_bytes();
    let (blue, red, internal) = (name("blue"), name("red"), name("internal"));
    let b = a.wrapping_add(1);
    let c = a.wrapping_add(2);
    daemon.kiln_ok(&["network", "create", "--subnet", &format!("10.215.{a}.0/24"), &blue]);
    daemon.kiln_ok(&["network", "create", "--subnet", &format!("10.215.{b}.0/24"), &red]);
    daemon.kiln_ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        &format!("10.215.{c}.0/24"),
        &internal,
    ]);
    let (in_blue, in_red, in_internal) = (name("b"), name("r"), name("i"));
    daemon.kiln_ok(&["run", "-d", "--name", &in_blue, "--network", &blue, "bb", "sleep", "1000"]);
    daemon.kiln_ok(&["run", "-d", "--name", &in_red, "--network", &red, "bb", "sleep", "1000"]);
    daemon.kiln_ok(&[
        "run",
        "-d",
        "--name",
        &in_internal,
        "--network",
        &internal,
        "bb",
        "sleep",
        "1000",
    ]);
    let blue_ip = address(&daemon, &in_blue, &blue);
    let internal_ip = address(&daemon, &in_internal, &internal);

    // The internet answers pings; the blue container reaches it, the
    // internal one does not, and not the host's uplink either.
    let remote = REMOTE.to_string();
    let ping = |container: &str, target: &str| {
        daemon.kiln_run(&["exec", container, "ping", "-c", "1", "-W", "2", target]).code
    };
    assert_eq!(ping(&in_blue, &remote), Some(0), "a container reaches the internet");
    assert_ne!(ping(&in_internal, &remote), Some(0), "an internal network has no way out");
    assert_ne!(ping(&in_internal, &HOST.to_string()), Some(0));
    drop(internet);

    // Red reaches neither blue nor internal; blue and internal reach their
    // own network's containers.
    assert_ne!(ping(&in_red, &blue_ip), Some(0), "red cannot reach blue");
    assert_ne!(ping(&in_red, &internal_ip), Some(0), "red cannot reach internal");
    assert_ne!(ping(&in_blue, &internal_ip), Some(0), "blue cannot reach internal");
    daemon.kiln_ok(&["network", "connect", &blue, &in_red]);
    assert_eq!(ping(&in_red, &blue_ip), Some(0), "connected to blue, red reaches it");

    daemon.kiln_ok(&["rm", "-f", &in_blue, &in_red, &in_internal]);
    daemon.kiln_ok(&["network", "rm", &blue, &red, &internal]);
}

/// What a network namespace has: its links, addresses, nftables ruleset and
/// iptables rules, as text, with counters and the `ip` command's
/// interface indexes left out.
fn kernel_state(daemon: &TestDaemon) -> Vec<String> {
    let netns = daemon.netns().expect("the daemon's namespace");
    let run = |argv: &[&str]| {
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .args(argv)
            .output()
            .expect("nsenter");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // `ip -o` lines start with the interface index; counters change.
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split_once(": ").map_or(l, |(_, rest)| rest).to_owned())
            .map(|l| l.split(" [").next().unwrap_or_default().to_owned())
            .collect();
        format!("{argv:?}:\n{}", lines.join("\n"))
    };
    vec![
        run(&["ip", "-o", "link", "show"]),
        run(&["ip", "-o", "addr", "show"]),
        run(&["nft", "list", "ruleset"]),
        run(&["iptables-save"]),
    ]
}

#[test]
fn containers_networks_and_the_daemon_gone_leave_the_hosts_links_and_firewall_as_they_were() {
    kiln_testing::require_privileged!();
    let (mut daemon, _) = TestDaemon::bridged();
    let before = kernel_state(&daemon);

    let [a, ..] = random_bytes();
    let (net, internal) = (name("left"), name("left-int"));
    let b = a.wrapping_add(1);
    daemon.kiln_ok(&["network", "create", "--subnet", &format!("10.216.{a}.0/24"), &net]);
    daemon.kiln_ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        &format!("10.216.{b}.0/24"),
        &internal,
    ]);
    let port = format!("{}:80", free_port(&daemon));
    let (one, two, three) = (name("one"), name("two"), name("three"));
    daemon.kiln_ok(&["run", "-d", "--name", &one, "-p", &port, "bb", "sleep", "1000"]);
    daemon.kiln_ok(&["run", "-d", "--name", &two, "--network", &net, "bb", "sleep", "1000"]);
    daemon.kiln_ok(&["network", "connect", &internal, &two]);
    let shared = format!("container:{one}");
    daemon.kiln_ok(&["run", "-d", "--name", &three, "--network", &shared, "bb", "sleep", "1000"]);
    assert_ne!(kernel_state(&daemon), before, "Kiln changed something while it ran");

    daemon.kiln_ok(&["rm", "-f", &one, &two, &three]);
    daemon.kiln_ok(&["network", "rm", &net, &internal]);
    let pid = daemon.pid();
    crate::common::terminate(pid);
    if let Some(mut child) = daemon.child.take() {
        let _ = child.wait();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while kernel_state(&daemon) != before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(kernel_state(&daemon), before);
}
