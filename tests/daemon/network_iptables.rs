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

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use kiln_testing::ScratchDir;

use crate::common::{random_bytes, TestDaemon};
use crate::networks::{free_port, http_get, in_netns_cmd};

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
