//! `kiln network create|ls|inspect|rm|prune|connect|disconnect` and
//! `kiln port` end to end, and the `docker` CLI managing Kiln's networks:
//! Docker's output, messages and exit codes.
//!
//! Creating, listing and removing networks only writes the daemon's
//! records (bridges are made when a container first joins), so those tests
//! run unprivileged against a daemon in the host's namespace, with subnets
//! of 10.213.0.0/16 and bridge names no host uses. Tests with running
//! containers need root and run their daemon in a network namespace of its
//! own ([`TestDaemon::start_in_netns`]), so nothing of the host's changes.

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::common::{random_bytes, Run, TestDaemon};

/// `kiln-t-WHAT-<random>`.
fn name(what: &str) -> String {
    let [a, b, c] = random_bytes();
    format!("kiln-t-{what}-{a:02x}{b:02x}{c:02x}")
}

/// A /24 of 10.213.0.0/16 as (its first three octets, the CIDR).
fn subnet() -> (String, String) {
    let [a, ..] = random_bytes();
    let prefix = format!("10.213.{a}");
    let cidr = format!("{prefix}.0/24");
    (prefix, cidr)
}

/// A network's inspect, as the daemon sends it.
fn inspect_network(daemon: &TestDaemon, network: &str) -> Value {
    let out = daemon.kiln_ok(&["network", "inspect", network]);
    let list: Value = serde_json::from_str(&out).expect("inspect prints JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{out}");
    list[0].clone()
}

/// A container's inspect.
fn inspect_container(daemon: &TestDaemon, container: &str) -> Value {
    let out = daemon.kiln_ok(&["inspect", container]);
    let list: Value = serde_json::from_str(&out).expect("inspect prints JSON");
    list[0].clone()
}

/// The first three words of each table row.
fn rows(table: &str) -> Vec<Vec<String>> {
    table.lines().map(|l| l.split_whitespace().map(str::to_owned).collect()).collect()
}

#[test]
fn network_commands_create_list_inspect_prune_and_remove_like_docker() {
    let daemon = TestDaemon::start();
    let net = name("net");
    let (prefix, cidr) = subnet();
    let [a, b, _] = random_bytes();
    let bridge = format!("kt{a:02x}{b:02x}br");
    let id = daemon.kiln_ok(&[
        "network",
        "create",
        "--subnet",
        &cidr,
        "--gateway",
        &format!("{prefix}.254"),
        "--ip-range",
        &format!("{prefix}.128/25"),
        "--internal",
        "--label",
        "kiln.test=yes",
        "-o",
        &format!("com.docker.network.bridge.name={bridge}"),
        &net,
    ]);
    let id = id.trim().to_owned();
    assert!(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()), "create printed {id:?}");

    // The default table: Docker's columns, the predefined networks and ours.
    let table = rows(&daemon.kiln_ok(&["network", "ls"]));
    assert_eq!(table[0], ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]);
    for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
        assert!(
            table.iter().any(|r| r.get(1..) == Some(&[name.into(), driver.into(), "local".into()])),
            "{name} is listed: {table:?}"
        );
    }
    assert!(table.contains(&vec![
        id[..12].to_owned(),
        net.clone(),
        "bridge".into(),
        "local".into()
    ]));
    let filter = format!("name={net}");
    assert_eq!(
        daemon.kiln_ok(&["network", "ls", "-q", "--filter", &filter]),
        format!("{}\n", &id[..12])
    );
    assert_eq!(
        daemon.kiln_ok(&["network", "ls", "-q", "--no-trunc", "-f", &filter]),
        format!("{id}\n")
    );
    assert_eq!(
        daemon.kiln_ok(&[
            "network",
            "ls",
            "--filter",
            "type=custom",
            "--format",
            r#"{{.Name}} {{.Driver}} {{.Internal}} {{.Label "kiln.test"}}"#
        ]),
        format!("{net} bridge true yes\n")
    );
    assert_eq!(
        daemon.kiln_ok(&["network", "ls", "--filter", "type=builtin", "--format", "{{.Name}}"]),
        "bridge\nhost\nnone\n"
    );

    // Inspect: the addressing, flags, labels and options as given.
    let inspected = inspect_network(&daemon, &net);
    assert_eq!(inspected["Id"], id.as_str());
    assert_eq!(
        (inspected["Driver"].as_str(), inspected["Scope"].as_str()),
        (Some("bridge"), Some("local"))
    );
    assert_eq!(
        inspected["IPAM"]["Config"],
        json!([{"Subnet": cidr, "IPRange": format!("{prefix}.128/25"), "Gateway": format!("{prefix}.254")}])
    );
    assert_eq!(inspected["Internal"], true);
    assert_eq!(inspected["EnableIPv6"], false);
    assert_eq!(inspected["Labels"], json!({"kiln.test": "yes"}));
    assert_eq!(inspected["Options"]["com.docker.network.bridge.name"], bridge.as_str());
    assert_eq!(inspected["Containers"], json!({}));
    assert_eq!(inspect_network(&daemon, &id[..12])["Name"], net.as_str(), "an id prefix names it");
    assert_eq!(
        daemon.kiln_ok(&["network", "inspect", "-f", "{{.Name}} {{.Scope}}", &net, "none"]),
        format!("{net} local\nnone local\n")
    );

    // Without --subnet the daemon picks one.
    let auto = name("auto");
    daemon.kiln_ok(&["network", "create", "--label", "kiln.prune=1", &auto]);
    let picked = inspect_network(&daemon, &auto);
    let subnet = picked["IPAM"]["Config"][0]["Subnet"].as_str().expect("a subnet").to_owned();
    assert!(subnet.contains('/') && subnet != cidr, "{picked}");

    // prune asks first; "n" keeps everything.
    let mut prompt = daemon
        .kiln()
        .args(["network", "prune"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn prune");
    prompt.stdin.take().expect("stdin").write_all(b"n\n").expect("answer");
    let answered = prompt.wait_with_output().expect("prune");
    let said = String::from_utf8_lossy(&answered.stdout);
    assert!(
        said.starts_with("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "),
        "{said}"
    );
    assert_eq!(answered.status.code(), Some(0));
    assert_eq!(daemon.kiln_ok(&["network", "ls", "-q", "-f", "type=custom"]).lines().count(), 2);

    // prune -f with a label filter removes only the labelled network.
    assert_eq!(
        daemon.kiln_ok(&["network", "prune", "-f", "--filter", "label=kiln.prune=1"]),
        format!("Deleted Networks:\n{auto}\n\n")
    );
    assert_eq!(daemon.kiln_ok(&["network", "prune", "-f", "--filter", "label=nothing"]), "");

    assert_eq!(daemon.kiln_ok(&["network", "rm", &net]), format!("{net}\n"));
    assert_eq!(daemon.kiln_ok(&["network", "ls", "-q", "-f", "type=custom"]), "");
}

#[test]
fn bad_network_requests_fail_with_dockers_messages_and_exit_codes() {
    let daemon = TestDaemon::start();
    let net = name("net");
    let (prefix, cidr) = subnet();
    daemon.kiln_ok(&["network", "create", "--subnet", &cidr, &net]);
    let failed = |args: &[&str]| {
        let run = daemon.kiln_run(args);
        assert_eq!(run.code, Some(1), "{args:?} exits 1: {run:?}");
        run
    };

    let twice = failed(&["network", "create", &net]);
    assert_eq!(
        twice.stderr,
        format!("Error response from daemon: network with name {net} already exists\n")
    );
    let overlap =
        failed(&["network", "create", "--subnet", &format!("{prefix}.128/25"), &name("overlap")]);
    assert_eq!(
        overlap.stderr,
        "Error response from daemon: Pool overlaps with other one on this address space\n"
    );
    let outside = failed(&[
        "network",
        "create",
        "--subnet",
        "10.212.0.0/24",
        "--gateway",
        "10.214.0.1",
        &name("gw"),
    ]);
    assert_eq!(outside.stderr, "Error: no matching subnet for gateway 10.214.0.1\n");
    let v6 = failed(&["network", "create", "--ipv6", &name("v6")]);
    assert_eq!(v6.stderr, "Error response from daemon: IPv6 networks are not supported by kiln\n");
    let overlay = failed(&["network", "create", "-d", "overlay", &name("overlay")]);
    assert_eq!(overlay.stderr, "Error response from daemon: plugin \"overlay\" not found\n");

    // The daemon checks the gateway too, whoever the client is.
    let answer = daemon.request_json(
        "POST",
        "/v1.47/networks/create",
        &json!({"Name": name("gw"), "IPAM": {"Config": [{"Subnet": "10.212.0.0/24", "Gateway": "10.214.0.1"}]}}),
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.json()["message"].as_str().is_some_and(|m| m.contains("10.214.0.1")),
        "{}",
        answer.body
    );
    let answer = daemon.request_json("POST", "/v1.47/networks/create", &json!({"Name": net}));
    assert_eq!(answer.status, 409, "{}", answer.body);

    let predefined = failed(&["network", "rm", "bridge"]);
    assert_eq!(
        predefined.stderr,
        "Error response from daemon: bridge is a pre-defined network and cannot be removed\n"
    );
    assert_eq!(daemon.request("DELETE", "/v1.47/networks/bridge").status, 403);
    let unknown = failed(&["network", "rm", "kiln-t-nope"]);
    assert_eq!(unknown.stderr, "Error response from daemon: network kiln-t-nope not found\n");
    let forced = daemon.kiln_run(&["network", "rm", "-f", "kiln-t-nope"]);
    assert_eq!((forced.code, forced.stdout.as_str(), forced.stderr.as_str()), (Some(0), "", ""));
    let missing = failed(&["network", "inspect", "kiln-t-nope"]);
    assert_eq!(missing.stdout, "[]\n");
    assert_eq!(missing.stderr, "Error response from daemon: network kiln-t-nope not found\n");
    let filter = failed(&["network", "ls", "--filter", "colour=red"]);
    assert_eq!(filter.stderr, "Error response from daemon: invalid filter 'colour'\n");

    // Several names: each one is tried; the unknown one fails the command.
    let partial = failed(&["network", "rm", "kiln-t-nope", &net]);
    assert_eq!(partial.stdout, format!("{net}\n"));
    assert_eq!(daemon.kiln_ok(&["network", "ls", "-q", "-f", "type=custom"]), "");
}

/// `docker ARGS` against `daemon`, finished.
fn docker_run(daemon: &TestDaemon, args: &[&str]) -> Run {
    Run::of(
        Command::new(crate::common::docker_cli())
            .args(args)
            .env("DOCKER_HOST", daemon.host())
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", daemon.dir.path().join("docker-config")),
    )
}

/// `docker ARGS`, which must succeed; its stdout.
fn docker(daemon: &TestDaemon, args: &[&str]) -> String {
    let run = docker_run(daemon, args);
    assert_eq!(run.code, Some(0), "docker {args:?} failed: {}{}", run.stdout, run.stderr);
    run.stdout
}

#[test]
fn docker_cli_creates_lists_inspects_and_removes_kiln_networks() {
    let daemon = TestDaemon::start();
    let net = name("docker");
    let (prefix, cidr) = subnet();
    let id =
        docker(&daemon, &["network", "create", "--subnet", &cidr, "--label", "by=docker", &net]);
    let id = id.trim().to_owned();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(
        daemon.kiln_ok(&["network", "ls", "-q", "--no-trunc", "-f", &format!("name={net}")]),
        format!("{id}\n")
    );

    let listed =
        docker(&daemon, &["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"]);
    for line in [
        "bridge bridge local",
        "host host local",
        "none null local",
        &format!("{net} bridge local"),
    ] {
        assert!(listed.lines().any(|l| l == line), "{line:?} in {listed}");
    }
    assert_eq!(
        docker(&daemon, &["network", "ls", "-q", "--filter", "label=by=docker"]),
        format!("{}\n", &id[..12])
    );
    let addressing = docker(
        &daemon,
        &[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Driver}} {{.Labels}}",
            &net,
        ],
    );
    assert_eq!(addressing, format!("{cidr} {prefix}.1 bridge map[by:docker]\n"));

    let twice = docker_run(&daemon, &["network", "create", &net]);
    assert_eq!(twice.code, Some(1));
    assert!(twice.stderr.contains(&format!("network with name {net} already exists")), "{twice:?}");
    let predefined = docker_run(&daemon, &["network", "rm", "bridge"]);
    assert_eq!(predefined.code, Some(1));
    assert!(
        predefined.stderr.contains("bridge is a pre-defined network and cannot be removed"),
        "{predefined:?}"
    );

    assert_eq!(docker(&daemon, &["network", "rm", &net]), format!("{net}\n"));
    assert_eq!(daemon.kiln_ok(&["network", "ls", "-q", "-f", "type=custom"]), "");
}

/// A daemon in a network namespace of its own with its own default bridge,
/// and busybox imported as `bb`; the default bridge's gateway.
fn netns_daemon() -> (TestDaemon, Ipv4Addr) {
    TestDaemon::bridged()
}

/// A TCP port free in the daemon's namespace now.
fn free_port(daemon: &TestDaemon) -> u16 {
    daemon.in_netns(|| Ok(TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?.local_addr()?.port()))
}

#[test]
fn port_ps_and_inspect_show_a_running_containers_ports_and_address() {
    kiln_testing::require_privileged!();
    let (daemon, gateway) = netns_daemon();
    let web = name("web");
    let port = free_port(&daemon);
    let local = format!("127.0.0.1:{port}:80");
    daemon.kiln_ok(&[
        "run", "-d", "--name", &web, "-p", &local, "-p", "9000/udp", "--expose", "7000", "bb",
        "sleep", "1000",
    ]);

    let all = daemon.kiln_ok(&["port", &web]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 2, "{all}");
    assert_eq!(lines[0], format!("80/tcp -> 127.0.0.1:{port}"));
    let udp = lines[1].strip_prefix("9000/udp -> 0.0.0.0:").expect("a random udp port");
    let udp: u16 = udp.parse().expect("a port number");
    assert_eq!(daemon.kiln_ok(&["port", &web, "80"]), format!("127.0.0.1:{port}\n"));
    assert_eq!(
        daemon.kiln_ok(&["container", "port", &web, "9000/udp"]),
        format!("0.0.0.0:{udp}\n")
    );
    for unpublished in ["7000", "81/tcp"] {
        let run = daemon.kiln_run(&["port", &web, unpublished]);
        assert_eq!(run.code, Some(1));
        assert_eq!(
            run.stderr,
            format!("Error: No public port '{unpublished}' published for {web}\n")
        );
    }
    assert_eq!(
        daemon.kiln_ok(&[
            "ps",
            "--filter",
            &format!("name={web}"),
            "--format",
            "{{.Ports}}|{{.Networks}}"
        ]),
        format!("7000/tcp, 127.0.0.1:{port}->80/tcp, 0.0.0.0:{udp}->9000/udp|bridge\n")
    );

    let settings = inspect_container(&daemon, &web)["NetworkSettings"].clone();
    assert_eq!(
        settings["Ports"]["80/tcp"],
        json!([{"HostIp": "127.0.0.1", "HostPort": port.to_string()}])
    );
    assert_eq!(settings["Ports"]["7000/tcp"], Value::Null);
    let ip: Ipv4Addr =
        settings["IPAddress"].as_str().and_then(|i| i.parse().ok()).expect("an address");
    assert_eq!(ip.octets()[..3], gateway.octets()[..3], "{settings}");
    assert_eq!(settings["IPPrefixLen"], 24);
    assert_eq!(settings["Gateway"], gateway.to_string());
    let [a, b, c, d] = ip.octets();
    assert_eq!(settings["MacAddress"], format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}"));
    let bridge = &settings["Networks"]["bridge"];
    assert_eq!(bridge["IPAddress"], ip.to_string());
    assert_eq!(bridge["EndpointID"], settings["EndpointID"]);
    let sandbox = settings["SandboxKey"].as_str().expect("a sandbox key");
    assert!(std::path::Path::new(sandbox).exists(), "{sandbox} is the container's namespace");

    // The default network's inspect lists the container with the same endpoint.
    let id = inspect_container(&daemon, &web)["Id"].as_str().expect("id").to_owned();
    let on_bridge = inspect_network(&daemon, "bridge");
    let entry = &on_bridge["Containers"][&id];
    assert_eq!(entry["Name"], web.as_str());
    assert_eq!(entry["IPv4Address"], format!("{ip}/24"));
    assert_eq!(entry["EndpointID"], settings["EndpointID"]);

    // Stopped: no ports, no address, as Docker shows it.
    daemon.kiln_ok(&["stop", "-t", "0", &web]);
    assert_eq!(daemon.kiln_ok(&["port", &web]), "");
    let stopped = inspect_container(&daemon, &web)["NetworkSettings"].clone();
    assert_eq!((stopped["Ports"].clone(), stopped["IPAddress"].clone()), (json!({}), json!("")));
    assert_eq!(
        daemon.kiln_ok(&["ps", "-a", "--filter", &format!("name={web}"), "--format", "{{.Ports}}"]),
        "\n"
    );
    daemon.kiln_ok(&["rm", "-f", &web]);
}

#[test]
fn connect_and_disconnect_move_a_running_container_between_networks() {
    kiln_testing::require_privileged!();
    let (daemon, _) = netns_daemon();
    let net = name("back");
    let (prefix, cidr) = subnet();
    daemon.kiln_ok(&["network", "create", "--subnet", &cidr, &net]);
    let app = name("app");
    daemon.kiln_ok(&["run", "-d", "--name", &app, "bb", "sleep", "1000"]);

    let ip = format!("{prefix}.9");
    assert_eq!(
        daemon.kiln_ok(&["network", "connect", "--alias", "db", "--ip", &ip, &net, &app]),
        ""
    );
    let addresses = daemon.kiln_ok(&["exec", &app, "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(addresses.contains(&format!("inet {ip}/24")), "{addresses}");
    let joined = inspect_container(&daemon, &app)["NetworkSettings"]["Networks"][&net].clone();
    assert_eq!(joined["IPAddress"], ip.as_str());
    assert_eq!(joined["Gateway"], format!("{prefix}.1"));
    assert_eq!(joined["Aliases"], json!(["db"]));
    assert_eq!(joined["IPAMConfig"], json!({"IPv4Address": ip}));
    let members = inspect_network(&daemon, &net)["Containers"].clone();
    let member = members.as_object().and_then(|m| m.values().next()).expect("one member");
    assert_eq!(
        (member["Name"].as_str(), member["IPv4Address"].as_str()),
        (Some(app.as_str()), Some(format!("{ip}/24").as_str()))
    );
    assert_eq!(member["EndpointID"], joined["EndpointID"]);

    let twice = daemon.kiln_run(&["network", "connect", &net, &app]);
    assert_eq!(twice.code, Some(1));
    assert_eq!(
        twice.stderr,
        format!("Error response from daemon: endpoint with name {app} already exists in network {net}\n")
    );
    let in_use = daemon.kiln_run(&["network", "rm", &net]);
    assert_eq!(in_use.code, Some(1));
    assert!(
        in_use.stderr.starts_with(&format!(
            "Error response from daemon: error while removing network: network {net} id "
        )),
        "{in_use:?}"
    );
    assert!(in_use.stderr.ends_with(" has active endpoints\n"), "{in_use:?}");
    assert_eq!(daemon.request("DELETE", &format!("/v1.47/networks/{net}")).status, 403);

    assert_eq!(daemon.kiln_ok(&["network", "disconnect", &net, &app]), "");
    let after = daemon.kiln_run(&["exec", &app, "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert_ne!(after.code, Some(0), "eth1 is gone: {after:?}");
    let networks = inspect_container(&daemon, &app)["NetworkSettings"]["Networks"].clone();
    assert!(networks.get(&net).is_none() && networks.get("bridge").is_some(), "{networks}");
    let again = daemon.kiln_run(&["network", "disconnect", &net, &app]);
    assert_eq!(again.code, Some(1));
    assert!(again.stderr.contains(&format!("is not connected to network {net}")), "{again:?}");
    let outside = daemon.kiln_run(&["network", "connect", "--ip", "10.214.0.9", &net, &app]);
    assert_eq!(outside.code, Some(1), "{outside:?}");
    assert!(outside.stderr.contains("10.214.0.9"), "{outside:?}");

    assert_eq!(daemon.kiln_ok(&["network", "rm", &net]), format!("{net}\n"));
    daemon.kiln_ok(&["rm", "-f", &app]);
}

#[test]
fn docker_cli_runs_containers_on_kiln_networks() {
    kiln_testing::require_privileged!();
    let (daemon, _) = netns_daemon();
    let net = name("front");
    let (prefix, cidr) = subnet();
    docker(&daemon, &["network", "create", "--subnet", &cidr, &net]);
    let web = name("web");
    let port = free_port(&daemon);
    let ip = format!("{prefix}.50");
    docker(
        &daemon,
        &[
            "run",
            "-d",
            "--name",
            &web,
            "--network",
            &net,
            "--ip",
            &ip,
            "--network-alias",
            "site",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "bb",
            "sleep",
            "1000",
        ],
    );
    let template = format!(
        r#"{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}} {{{{(index .NetworkSettings.Networks "{net}").Aliases}}}}"#
    );
    assert_eq!(docker(&daemon, &["inspect", "-f", &template, &web]), format!("{ip} [site]\n"));
    assert_eq!(docker(&daemon, &["port", &web]), format!("80/tcp -> 127.0.0.1:{port}\n"));
    assert_eq!(
        docker(
            &daemon,
            &[
                "network",
                "inspect",
                "-f",
                "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
                &net
            ]
        ),
        format!("{web} {ip}/24\n")
    );
    assert_eq!(
        docker(&daemon, &["ps", "--format", "{{.Names}} {{.Ports}} {{.Networks}}"]),
        format!("{web} 127.0.0.1:{port}->80/tcp {net}\n")
    );
    let in_use = docker_run(&daemon, &["network", "rm", &net]);
    assert_eq!(in_use.code, Some(1));
    assert!(in_use.stderr.contains("has active endpoints"), "{in_use:?}");
    docker(&daemon, &["rm", "-f", &web]);
    assert_eq!(docker(&daemon, &["network", "rm", &net]), format!("{net}\n"));
}
