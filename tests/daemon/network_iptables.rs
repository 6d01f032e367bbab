//! The iptables firewall backend end to end (root): a daemon with
//! daemon.json `"firewall-backend": "iptables"` publishes ports through
//! Kiln's own iptables chains and no nftables table, deletes the chains and
//! their jumps once the last container is gone, and a daemon restarted with
//! the other backend removes what the first one left.
//!
//! Each daemon runs in a network namespace of its own
//! ([`TestDaemon::start_in_netns`]): its `iptables-save` and `nft list
//! ruleset` are checked exactly while other tests run, and the host's own
//! rules are never touched.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use kiln_testing::ScratchDir;

use crate::common::{random_bytes, Run, TestDaemon};

/// daemon.json for a default bridge of the daemon's own (in its own
/// namespace) and `backend`; the bridge's gateway address.
fn config(backend: &str) -> (String, Ipv4Addr) {
    let [a, b, c] = random_bytes();
    let gateway = Ipv4Addr::new(10, 200 + (a % 50), b, 1);
    let json = format!(
        r#"{{"bridge": "kt{a:02x}{b:02x}{c:02x}", "bip": "{gateway}/24", "firewall-backend": "{backend}"}}"#
    );
    (json, gateway)
}

/// A daemon with `config`, with busybox imported as `bb`.
fn daemon(config: &str) -> TestDaemon {
    let daemon = TestDaemon::start_in_netns(config);
    daemon.import_busybox("bb");
    daemon
}

/// Runs busybox httpd serving "hello from NAME" with `-p PORT:80`.
fn run_web_server(daemon: &TestDaemon, name: &str, port: u16) {
    let script = format!(
        "mkdir -p /www && echo 'hello from {name}' > /www/index.html && exec httpd -f -p 80 -h /www"
    );
    let publish = format!("{port}:80");
    daemon.kiln_ok(&["run", "-d", "--name", name, "-p", &publish, "bb", "sh", "-c", &script]);
}

/// A TCP port free in the daemon's namespace now.
fn free_port(daemon: &TestDaemon) -> u16 {
    daemon.in_netns(|| Ok(TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?.local_addr()?.port()))
}

/// `GET /` on `addr:port` from the daemon's namespace, retried for up to
/// 10 s while the server starts; the body.
fn http_get(daemon: &TestDaemon, addr: Ipv4Addr, port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = daemon.in_netns(|| {
            Ok((|| {
                let mut stream =
                    TcpStream::connect_timeout(&(addr, port).into(), Duration::from_secs(2))?;
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                let mut text = String::new();
                stream.read_to_string(&mut text)?;
                Ok::<_, std::io::Error>(text)
            })())
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

/// A command run in the daemon's namespace, finished.
fn in_netns_cmd(daemon: &TestDaemon, program: &str, args: &[&str]) -> Run {
    let netns = daemon.netns().expect("the daemon has a namespace");
    Run::of(
        std::process::Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .arg(program)
            .args(args),
    )
}

/// The lines of `iptables-save` in the daemon's namespace that name one of
/// Kiln's chains (the chains, their rules, the jumps to them).
fn kiln_chains(daemon: &TestDaemon) -> Vec<String> {
    let run = in_netns_cmd(daemon, "iptables-save", &[]);
    assert_eq!(run.code, Some(0), "iptables-save: {}", run.stderr);
    run.stdout.lines().filter(|l| l.contains("KILN-")).map(str::to_owned).collect()
}

/// `nft list ruleset` in the daemon's namespace.
fn nft_ruleset(daemon: &TestDaemon) -> String {
    let run = in_netns_cmd(daemon, "nft", &["list", "ruleset"]);
    assert_eq!(run.code, Some(0), "nft list ruleset: {}", run.stderr);
    run.stdout
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
fn published_ports_go_through_kilns_iptables_chains_which_go_with_the_last_container() {
    kiln_testing::require_privileged!();
    let (config, gateway) = config("iptables");
    let daemon = daemon(&config);
    let port = free_port(&daemon);
    let web = name("ipt");
    run_web_server(&daemon, &web, port);

    assert_eq!(http_get(&daemon, Ipv4Addr::LOCALHOST, port), format!("hello from {web}\n"));
    assert_eq!(http_get(&daemon, gateway, port), format!("hello from {web}\n"));
    let chains = kiln_chains(&daemon);
    let text = chains.join("\n");
    for line in [
        "-A PREROUTING -m addrtype --dst-type LOCAL -j KILN-PREROUTING",
        "-A OUTPUT -m addrtype --dst-type LOCAL -j KILN-OUTPUT",
        "-A POSTROUTING -j KILN-POSTROUTING",
        "-A FORWARD -j KILN-FORWARD",
    ] {
        assert_eq!(chains.iter().filter(|l| *l == line).count(), 1, "{line} once in\n{text}");
    }
    let dnat = format!("-A KILN-OUTPUT -p tcp -m tcp --dport {port} -j DNAT --to-destination");
    assert!(chains.iter().any(|l| l.starts_with(&dnat)), "{dnat} in\n{text}");
    let ruleset = nft_ruleset(&daemon);
    assert!(!ruleset.contains("table ip kiln"), "an nftables table too:\n{ruleset}");

    daemon.kiln_ok(&["rm", "-f", &web]);
    eventually("Kiln's chains and jumps go", || kiln_chains(&daemon).is_empty());
    assert!(!nft_ruleset(&daemon).contains("table ip kiln"));
}

#[test]
fn a_daemon_restarted_with_iptables_removes_the_table_the_nftables_one_left() {
    kiln_testing::require_privileged!();
    let (config, _) = config("nftables");
    let mut daemon = daemon(&config);
    let port = free_port(&daemon);
    let web = name("switch");
    run_web_server(&daemon, &web, port);
    assert_eq!(http_get(&daemon, Ipv4Addr::LOCALHOST, port), format!("hello from {web}\n"));
    assert!(nft_ruleset(&daemon).contains("table ip kiln"), "the nftables backend's table");
    assert!(kiln_chains(&daemon).is_empty(), "iptables chains from the nftables backend");

    // Killed, so that nothing is cleaned up; the container keeps running.
    let mut child = daemon.child.take().expect("daemon");
    child.kill().expect("kill -9 the daemon");
    child.wait().expect("reap the daemon");
    let switched =
        config.replace(r#""firewall-backend": "nftables""#, r#""firewall-backend": "iptables""#);
    std::fs::write(daemon.dir.path().join("daemon.json"), switched).expect("rewrite daemon.json");
    daemon.child = Some(daemon.command().spawn().expect("restart"));
    daemon.wait_until_serving();

    // The running container's port is served by the new backend alone.
    eventually("the old table goes", || !nft_ruleset(&daemon).contains("table ip kiln"));
    assert!(!kiln_chains(&daemon).is_empty(), "no iptables chains after the restart");
    assert_eq!(http_get(&daemon, Ipv4Addr::LOCALHOST, port), format!("hello from {web}\n"));

    daemon.kiln_ok(&["rm", "-f", &web]);
    eventually("Kiln's chains go", || kiln_chains(&daemon).is_empty());
    assert!(!nft_ruleset(&daemon).contains("table ip kiln"));
}

#[test]
fn an_unknown_firewall_backend_stops_the_daemon_with_the_key_named() {
    for (json, message) in [
        (r#"{"firewall-backend": "bogus"}"#, "invalid \"firewall-backend\""),
        (r#"{"firewall-backend": "bogus"}"#, "unknown firewall backend \"bogus\""),
        (r#"{"firewall-backend": true}"#, "\"firewall-backend\" must be a string"),
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
