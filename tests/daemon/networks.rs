//! Bridge networks on the real kernel (root): containers on the default
//! bridge reach each other, published ports answer from the host (DNAT in
//! Kiln's nftables table), a port in use fails before the start, `-P`
//! publishes exposed ports, nothing is left once the containers are gone,
//! and a daemon killed with -9 finds its running containers' networks and
//! ports as they were.
//!
//! Each daemon runs in a network namespace of its own
//! ([`TestDaemon::start_in_netns`]): "the host" here is that namespace, so
//! its bridge, veths, firewall table and forwarding switch are checked
//! exactly while other tests run, and the host's own are never touched.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use kiln_testing::ScratchDir;

use crate::common::{random_bytes, Run, TestDaemon};

/// A daemon in its own namespace with its own bridge and subnet, with
/// busybox imported as `bb` (and as `bb-web`, which `EXPOSE`s 80); the
/// bridge's gateway address.
fn daemon() -> (TestDaemon, Ipv4Addr) {
    let (daemon, gateway) = TestDaemon::bridged();
    let tar = crate::common::busybox_rootfs_tar(daemon.dir.path());
    daemon.kiln_ok(&[
        "import",
        "--change",
        r#"CMD ["sh"]"#,
        "--change",
        "EXPOSE 80",
        tar.to_str().expect("utf-8 path"),
        "bb-web",
    ]);
    (daemon, gateway)
}

/// A shell line that serves "hello from NAME" on port 80 with busybox httpd.
pub(crate) fn web_server(name: &str) -> String {
    format!("mkdir -p /www && echo 'hello from {name}' > /www/index.html && exec httpd -f -p 80 -h /www")
}

/// A TCP port free in the daemon's namespace now.
pub(crate) fn free_port(daemon: &TestDaemon) -> u16 {
    daemon.in_netns(|| Ok(TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?.local_addr()?.port()))
}

/// `GET /` on `addr:port` from the daemon's namespace, retried for up to
/// 10 s while the server starts; the body.
pub(crate) fn http_get(daemon: &TestDaemon, addr: Ipv4Addr, port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = daemon.in_netns(|| {
            let attempt = (|| {
                let mut stream =
                    TcpStream::connect_timeout(&(addr, port).into(), Duration::from_secs(2))?;
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                let mut text = String::new();
                stream.read_to_string(&mut text)?;
                Ok::<_, std::io::Error>(text)
            })();
            Ok(attempt)
        });
        match answer {
            Ok(text) if text.starts_with("HTTP/1.") => {
                return text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
            }
            other => {
                assert!(Instant::now() < deadline, "GET {addr}:{port} failed: {other:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A command run in the daemon's namespace (`nft`, `ip`), finished.
pub(crate) fn in_netns_cmd(daemon: &TestDaemon, program: &str, args: &[&str]) -> Run {
    let netns = daemon.netns().expect("the daemon has a namespace");
    Run::of(
        std::process::Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .arg(program)
            .args(args),
    )
}

/// Kiln's table in the daemon's namespace, if there is one.
fn kiln_table(daemon: &TestDaemon) -> Option<String> {
    let run = in_netns_cmd(daemon, "nft", &["list", "table", "ip", "kiln"]);
    (run.code == Some(0)).then_some(run.stdout)
}

/// The names of the `kv…` veths in the daemon's namespace.
fn veths(daemon: &TestDaemon) -> Vec<String> {
    let links = daemon.in_netns(|| kiln_sys::netlink::Netlink::open()?.links());
    links.into_iter().map(|l| l.name).filter(|n| n.starts_with("kv")).collect()
}

/// The address of `container`'s eth0, from inside it.
fn address_of(daemon: &TestDaemon, container: &str) -> Ipv4Addr {
    let out = daemon.kiln_ok(&["exec", container, "ip", "-4", "-o", "addr", "show", "eth0"]);
    let cidr = out.split_whitespace().nth(3).unwrap_or_else(|| panic!("no address in {out:?}"));
    cidr.split('/').next().and_then(|ip| ip.parse().ok()).expect("an IPv4 address")
}

/// Polls `pred` for up to 10 s.
fn eventually(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pred() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn name(what: &str) -> String {
    let [a, b, c] = random_bytes();
    format!("kiln-t-{what}-{a:02x}{b:02x}{c:02x}")
}

#[test]
fn containers_on_the_default_bridge_reach_each_other_and_know_their_address() {
    kiln_testing::require_privileged!();
    let (daemon, gateway) = daemon();
    let server = name("server");
    daemon.kiln_ok(&["run", "-d", "--name", &server, "bb", "sh", "-c", &web_server("server")]);
    let ip = address_of(&daemon, &server);
    assert_eq!(ip.octets()[..3], gateway.octets()[..3], "{ip} is on the bridge's subnet");
    assert_ne!(ip, gateway);

    let fetched = daemon.kiln_ok(&[
        "run",
        "--rm",
        "bb",
        "sh",
        "-c",
        &format!(
            "for i in $(seq 50); do wget -qO- http://{ip}/ && exit 0; sleep 0.1; done; exit 1"
        ),
    ]);
    assert_eq!(fetched, "hello from server\n");
    let pinged =
        daemon.kiln_run(&["run", "--rm", "bb", "ping", "-c", "1", "-W", "2", &ip.to_string()]);
    assert_eq!(pinged.code, Some(0), "ping {ip}: {}{}", pinged.stdout, pinged.stderr);

    // /etc/hosts names the container on its address; the default route
    // goes through the bridge.
    let hostname = daemon.kiln_ok(&["exec", &server, "hostname"]);
    let hosts = daemon.kiln_ok(&["exec", &server, "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip}\t{}", hostname.trim())), "{hosts}");
    let routes = daemon.kiln_ok(&["exec", &server, "ip", "route"]);
    assert!(routes.contains(&format!("default via {gateway} dev eth0")), "{routes}");
    let resolv = daemon.kiln_ok(&["exec", &server, "cat", "/etc/resolv.conf"]);
    assert!(!resolv.lines().any(|l| l.starts_with("nameserver 127.")), "{resolv}");
    daemon.kiln_ok(&["rm", "-f", &server]);

    // `host-gateway` is the bridge's address, on a bridge and with the
    // host's network (whose /etc/hosts is the host's, plus the entry).
    for network in ["bridge", "host"] {
        let hosts = daemon.kiln_ok(&[
            "run",
            "--rm",
            "--network",
            network,
            "--add-host",
            "gw:host-gateway",
            "bb",
            "cat",
            "/etc/hosts",
        ]);
        assert!(hosts.contains(&format!("{gateway}\tgw\n")), "{network}: {hosts}");
        assert!(!hosts.contains("host-gateway"), "{network}: {hosts}");
    }
}

#[test]
fn a_port_published_on_127_0_0_1_answers_from_the_host() {
    kiln_testing::require_privileged!();
    let (daemon, _) = daemon();
    let port = free_port(&daemon);
    let web = name("local");
    let publish = format!("127.0.0.1:{port}:80");
    daemon.kiln_ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "-p",
        &publish,
        "bb",
        "sh",
        "-c",
        &web_server("local"),
    ]);
    assert_eq!(http_get(&daemon, Ipv4Addr::LOCALHOST, port), "hello from local\n");
    let table = kiln_table(&daemon).expect("Kiln's table while a port is published");
    assert!(table.contains(&format!("ip daddr 127.0.0.1 tcp dport {port} dnat to")), "{table}");
    daemon.kiln_ok(&["rm", "-f", &web]);
}

#[test]
fn a_port_published_on_all_addresses_answers_on_localhost_and_to_other_containers() {
    kiln_testing::require_privileged!();
    let (daemon, gateway) = daemon();
    let port = free_port(&daemon);
    let web = name("all");
    let publish = format!("{port}:80");
    daemon.kiln_ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "-p",
        &publish,
        "bb",
        "sh",
        "-c",
        &web_server("all"),
    ]);
    assert_eq!(http_get(&daemon, Ipv4Addr::LOCALHOST, port), "hello from all\n");
    assert_eq!(http_get(&daemon, gateway, port), "hello from all\n");
    // Hairpin: a container reaches a published port through a host
    // address, and so does the publishing container itself.
    let url = format!("http://{gateway}:{port}/");
    assert_eq!(daemon.kiln_ok(&["run", "--rm", "bb", "wget", "-qO-", &url]), "hello from all\n");
    assert_eq!(daemon.kiln_ok(&["exec", &web, "wget", "-qO-", &url]), "hello from all\n");
    // Hairpin mode is on at the container's bridge port, for hosts where
    // br_netfilter makes that DNAT happen on the bridge.
    let veth = veths(&daemon).pop().expect("the container's veth");
    let link = in_netns_cmd(&daemon, "ip", &["-d", "link", "show", &veth]);
    assert!(link.stdout.contains("hairpin on"), "{}{}", link.stdout, link.stderr);
    // The port is held while the container runs: nothing else can take it.
    let taken = daemon.in_netns(|| Ok(TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_err()));
    assert!(taken, "port {port} is not held");
    daemon.kiln_ok(&["rm", "-f", &web]);
    let free = daemon.in_netns(|| Ok(TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()));
    assert!(free, "port {port} is still held after rm -f");
}

#[test]
fn a_port_already_in_use_fails_before_the_start_and_leaves_nothing() {
    kiln_testing::require_privileged!();
    let (daemon, _) = daemon();
    let port = free_port(&daemon);
    let holder = daemon.in_netns(|| TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)));
    let container = name("busy");
    let publish = format!("{port}:80");
    let run =
        daemon.kiln_run(&["run", "-d", "--name", &container, "-p", &publish, "bb", "sleep", "100"]);
    assert_eq!(run.code, Some(125), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!("Bind for 0.0.0.0:{port} failed: port is already allocated")),
        "{}",
        run.stderr
    );
    let state = daemon.kiln_ok(&["inspect", "--format", "{{.State.Status}}", &container]);
    assert_ne!(state.trim(), "running");
    assert_eq!(veths(&daemon), Vec::<String>::new(), "a veth was left");
    let namespaces: Vec<_> = std::fs::read_dir(daemon.exec_root().join("netns"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(namespaces.is_empty(), "namespaces left: {namespaces:?}");
    let table = kiln_table(&daemon).unwrap_or_default();
    assert!(!table.contains(&format!("dport {port}")), "{table}");
    drop(holder);
    // With the port free again, the same container starts.
    daemon.kiln_ok(&["start", &container]);
    daemon.kiln_ok(&["rm", "-f", &container]);
}

#[test]
fn publish_all_publishes_each_exposed_port_on_a_random_host_port() {
    kiln_testing::require_privileged!();
    let (daemon, _) = daemon();
    let web = name("exposed");
    daemon.kiln_ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "-P",
        "bb-web",
        "sh",
        "-c",
        &web_server("exposed"),
    ]);
    let table = kiln_table(&daemon).expect("Kiln's table");
    let port: u16 = table
        .lines()
        .find(|l| l.contains("fib daddr type local tcp dport") && l.trim_end().ends_with(":80"))
        .and_then(|l| l.split("dport ").nth(1)?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no DNAT of port 80 in {table}"));
    assert_eq!(http_get(&daemon, Ipv4Addr::LOCALHOST, port), "hello from exposed\n");
    daemon.kiln_ok(&["rm", "-f", &web]);
}

#[test]
fn removing_every_container_leaves_no_veth_namespace_table_or_forwarding() {
    kiln_testing::require_privileged!();
    let (daemon, _) = daemon();
    let forwarding =
        || daemon.in_netns(|| std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward"));
    let before = forwarding();
    let (one, two) = (name("one"), name("two"));
    let publish = format!("{}:80", free_port(&daemon));
    daemon.kiln_ok(&["run", "-d", "--name", &one, "-p", &publish, "bb", "sleep", "100"]);
    daemon.kiln_ok(&["run", "-d", "--name", &two, "bb", "sleep", "100"]);
    assert_eq!(veths(&daemon).len(), 2, "one veth per container");
    assert!(kiln_table(&daemon).is_some(), "a table while containers run");
    assert_eq!(forwarding().trim(), "1", "forwarding on while containers run");

    daemon.kiln_ok(&["rm", "-f", &one, &two]);
    eventually("the veths go", || veths(&daemon).is_empty());
    eventually("the table goes", || kiln_table(&daemon).is_none());
    eventually("forwarding is restored", || forwarding() == before);
    let left = || -> Vec<std::path::PathBuf> {
        ["netns", "network/endpoints"]
            .iter()
            .flat_map(|d| {
                std::fs::read_dir(daemon.exec_root().join(d)).into_iter().flatten().flatten()
            })
            .map(|e| e.path())
            .collect()
    };
    eventually("the namespaces and endpoint files go", || left().is_empty());
}

#[test]
fn a_running_container_keeps_its_network_and_port_across_a_daemon_kill() {
    kiln_testing::require_privileged!();
    let (mut daemon, _) = daemon();
    let port = free_port(&daemon);
    let (web, idle) = (name("survivor"), name("idle"));
    let publish = format!("{port}:80");
    daemon.kiln_ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "-p",
        &publish,
        "bb",
        "sh",
        "-c",
        &web_server("survivor"),
    ]);
    daemon.kiln_ok(&["run", "-d", "--name", &idle, "bb", "sleep", "1"]);
    let ip = address_of(&daemon, &web);
    assert_eq!(http_get(&daemon, Ipv4Addr::LOCALHOST, port), "hello from survivor\n");

    let mut child = daemon.child.take().expect("daemon");
    child.kill().expect("kill -9 the daemon");
    child.wait().expect("reap the daemon");
    // The idle container ends while the daemon is away.
    std::thread::sleep(Duration::from_millis(1500));
    daemon.child = Some(daemon.command().spawn().expect("restart"));
    daemon.wait_until_serving();

    assert_eq!(http_get(&daemon, Ipv4Addr::LOCALHOST, port), "hello from survivor\n");
    let taken = daemon.in_netns(|| Ok(TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_err()));
    assert!(taken, "port {port} is not held again after the restart");
    assert_eq!(address_of(&daemon, &web), ip);
    eventually("the idle container's veth goes", || veths(&daemon).len() == 1);
    // A new container never gets the survivor's address.
    let other = daemon.kiln_ok(&["run", "--rm", "bb", "sh", "-c", "ip -4 -o addr show eth0"]);
    assert!(!other.contains(&format!(" {ip}/")), "{other} took {ip}");
    daemon.kiln_ok(&["rm", "-f", &web, &idle]);
    eventually("the veths go", || veths(&daemon).is_empty());
}

#[test]
fn bad_ports_and_unknown_networks_are_refused_at_create() {
    kiln_testing::require_privileged!();
    let (daemon, _) = daemon();
    for (args, message) in [
        (vec!["-p", "70000:80"], "invalid hostPort: 70000"),
        (vec!["-p", "abc"], "invalid containerPort: abc"),
        (vec!["--network", "kiln-t-nosuch"], "network kiln-t-nosuch not found"),
    ] {
        let mut all = vec!["create"];
        all.extend(args.iter().copied());
        all.extend(["bb", "true"]);
        let run = daemon.kiln_run(&all);
        assert_ne!(run.code, Some(0), "{args:?} was accepted");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    assert_eq!(daemon.kiln_ok(&["ps", "-aq"]), "", "nothing was created");
}

#[test]
fn run_rm_on_the_default_bridge_costs_little_more_than_no_network() {
    kiln_testing::require_privileged!();
    let (daemon, _) = daemon();
    // Warm up: the bridge and the table come up on the first run.
    daemon.kiln_ok(&["run", "--rm", "bb", "true"]);
    daemon.kiln_ok(&["run", "--rm", "--network", "none", "bb", "true"]);
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..10 {
        for (i, network) in ["none", "bridge"].iter().enumerate() {
            let started = Instant::now();
            daemon.kiln_ok(&["run", "--rm", "--network", network, "bb", "true"]);
            times[i].push(started.elapsed());
        }
    }
    for t in &mut times {
        t.sort();
    }
    let (none, bridge) = (times[0][5], times[1][5]);
    eprintln!(
        "kiln run --rm bb true, median of 10: --network none {none:?}, default bridge {bridge:?} ({:+.1} ms)",
        (bridge.as_secs_f64() - none.as_secs_f64()) * 1000.0
    );
    // The target is 10 ms; the bound leaves room for a loaded test machine
    // while catching a set-up or tear-down on the path that costs as much
    // as an `nft` run per container.
    assert!(bridge < none + Duration::from_millis(40), "none {none:?}, bridge {bridge:?}");
}

#[test]
fn bad_network_keys_in_daemon_json_stop_the_daemon_with_the_key_named() {
    for (json, message) in [
        (r#"{"bip": "172.26.0.0/16"}"#, "invalid \"bip\""),
        (r#"{"bip": 5}"#, "\"bip\" must be a string"),
        (r#"{"bridge": "a name too long for linux"}"#, "invalid \"bridge\""),
        (
            r#"{"default-address-pools": [{"base": "10.10.0.0/16", "size": 8}]}"#,
            "invalid pool size 8 for base 10.10.0.0/16",
        ),
    ] {
        let dir = ScratchDir::new().expect("scratch dir");
        std::fs::write(dir.path().join("daemon.json"), json).expect("write daemon.json");
        let daemon = TestDaemon { dir, child: None };
        let output = daemon.command().output().expect("run kiln daemon");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{json} was accepted");
        assert!(stderr.contains("invalid configuration file"), "{json}: {stderr}");
        assert!(stderr.contains(message), "{json}: {stderr}");
    }
}
