//! `--network container:NAME` on the real kernel (root): a container in
//! another one's network namespace sees its interfaces and address, reaches
//! what it serves on 127.0.0.1 and shows its /etc files and hostname;
//! Docker's answers when NAME is unknown or stopped, or when the request
//! asks for what the shared network decides; and a container disconnected
//! from the network its `--network` names connects back to it.
//!
//! Each daemon runs in a network namespace of its own
//! ([`TestDaemon::bridged`]), so nothing of the host's network changes.

use std::process::Command;

use serde_json::{json, Value};

use crate::common::{random_bytes, Run, TestDaemon};

/// `kiln-t-WHAT-<random>`.
fn name(what: &str) -> String {
    let [a, b, c] = random_bytes();
    format!("kiln-t-{what}-{a:02x}{b:02x}{c:02x}")
}

/// A random /24 of 10.215.0.0/16 as (its first three octets, the CIDR).
fn subnet() -> (String, String) {
    let [a, ..] = random_bytes();
    (format!("10.215.{a}"), format!("10.215.{a}.0/24"))
}

/// A shell line serving "hello from NAME" with busybox httpd on `addr`
/// (`127.0.0.1:80`, `80`).
fn web_server(name: &str, addr: &str) -> String {
    format!(
        "mkdir -p /www && echo 'hello from {name}' > /www/index.html && exec httpd -f -p {addr} -h /www"
    )
}

/// A shell line fetching `url`, retried for 5 s while the server starts.
fn fetch(url: &str) -> String {
    format!("for i in $(seq 50); do wget -qO- {url} && exit 0; sleep 0.1; done; exit 1")
}

/// A container's inspect.
fn inspect(daemon: &TestDaemon, container: &str) -> Value {
    let out = daemon.kiln_ok(&["inspect", container]);
    let list: Value = serde_json::from_str(&out).expect("inspect prints JSON");
    list[0].clone()
}

/// `kiln run --rm --network container:OTHER bb ARGS…`, which must succeed.
fn run_beside(daemon: &TestDaemon, other: &str, args: &[&str]) -> String {
    let mode = format!("container:{other}");
    let mut all = vec!["run", "--rm", "--network", &mode, "bb"];
    all.extend_from_slice(args);
    daemon.kiln_ok(&all)
}

#[test]
fn a_container_on_another_containers_network_shares_its_address_loopback_and_files() {
    kiln_testing::require_privileged!();
    let (daemon, gateway) = TestDaemon::bridged();
    let web = name("web");
    daemon.kiln_ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "--hostname",
        "webhost",
        "bb",
        "sh",
        "-c",
        &web_server("web", "127.0.0.1:80"),
    ]);

    // Its loopback: a server listening on 127.0.0.1 only answers.
    assert_eq!(
        run_beside(&daemon, &web, &["sh", "-c", &fetch("http://127.0.0.1/")]),
        "hello from web\n"
    );
    // Its interface and address on the bridge.
    let theirs = daemon.kiln_ok(&["exec", &web, "ip", "-4", "-o", "addr", "show", "eth0"]);
    let [a, b, c, _] = gateway.octets();
    assert!(theirs.contains(&format!("inet {a}.{b}.{c}.")), "on the bridge: {theirs}");
    assert_eq!(run_beside(&daemon, &web, &["ip", "-4", "-o", "addr", "show", "eth0"]), theirs);
    // Its /etc files and hostname.
    let files = ["cat", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];
    let mut in_web = vec!["exec", web.as_str()];
    in_web.extend_from_slice(&files);
    assert_eq!(run_beside(&daemon, &web, &files), daemon.kiln_ok(&in_web));
    assert_eq!(run_beside(&daemon, &web, &["hostname"]), "webhost\n");

    // Inspect keeps the mode as given and shows no network of its own;
    // no other network can be added to a namespace it does not own.
    let side = name("side");
    let mode = format!("container:{web}");
    daemon.kiln_ok(&["run", "-d", "--name", &side, "--network", &mode, "bb", "sleep", "1000"]);
    let inspected = inspect(&daemon, &side);
    assert_eq!(inspected["HostConfig"]["NetworkMode"], mode.as_str());
    assert_eq!(inspected["NetworkSettings"]["Networks"], json!({}), "{inspected}");
    let connect = daemon.kiln_run(&["network", "connect", "bridge", &side]);
    assert_eq!(connect.code, Some(1), "{connect:?}");
    assert_eq!(
        connect.stderr,
        "Error response from daemon: container sharing network namespace with another container or host cannot be connected to any other network\n"
    );

    // The other container may go while this one runs, as in Docker; this
    // one keeps running, and cannot start again without it.
    daemon.kiln_ok(&["rm", "-f", &web]);
    assert_eq!(daemon.kiln_ok(&["inspect", "-f", "{{.State.Running}}", &side]), "true\n");
    daemon.kiln_ok(&["exec", &side, "true"]);
    daemon.kiln_ok(&["stop", "-t", "0", &side]);
    let again = daemon.kiln_run(&["start", &side]);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(again.stderr.contains(&format!("No such container: {web}")), "{again:?}");
    daemon.kiln_ok(&["rm", "-f", &side]);
}

#[test]
fn joining_a_stopped_or_unknown_container_fails_with_dockers_message_and_code() {
    kiln_testing::require_privileged!();
    let (daemon, _) = TestDaemon::bridged();
    let idle = name("idle");
    daemon.kiln_ok(&["create", "--name", &idle, "bb", "sleep", "1000"]);
    let mode = format!("container:{idle}");

    // Stopped: refused at start with 409; a --rm container is gone after.
    let joiner = name("joiner");
    let run =
        daemon.kiln_run(&["run", "--rm", "--name", &joiner, "--network", &mode, "bb", "true"]);
    assert_eq!(run.code, Some(125), "{run:?}");
    assert!(
        run.stderr.contains(&format!("cannot join network of a non running container: {idle}")),
        "{run:?}"
    );
    assert_eq!(daemon.kiln_run(&["inspect", &joiner]).code, Some(1), "the --rm container is gone");
    let created = daemon.request_json(
        "POST",
        &format!("/v1.47/containers/create?name={joiner}"),
        &json!({"Image": "bb", "Cmd": ["true"], "HostConfig": {"NetworkMode": mode}}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let started = daemon.request("POST", &format!("/v1.47/containers/{joiner}/start"));
    assert_eq!(started.status, 409, "{}", started.body);
    assert_eq!(
        started.json()["message"],
        format!("cannot join network of a non running container: {idle}")
    );
    // Once the other one runs, the same container starts.
    daemon.kiln_ok(&["start", &idle]);
    daemon.kiln_ok(&["start", &joiner]);

    // Unknown: refused at create with 404, nothing made.
    let unknown = daemon.request_json(
        "POST",
        "/v1.47/containers/create",
        &json!({"Image": "bb", "HostConfig": {"NetworkMode": "container:kiln-t-nosuch"}}),
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(unknown.json()["message"], "No such container: kiln-t-nosuch");
    let run = daemon.kiln_run(&["run", "--network", "container:kiln-t-nosuch", "bb", "true"]);
    assert_eq!(run.code, Some(125), "{run:?}");
    assert!(run.stderr.contains("No such container: kiln-t-nosuch"), "{run:?}");
    assert_eq!(daemon.kiln_ok(&["ps", "-aq"]).lines().count(), 2, "only idle and joiner exist");
    daemon.kiln_ok(&["rm", "-f", &joiner, &idle]);
}

#[test]
fn options_a_shared_network_decides_are_refused_at_create() {
    kiln_testing::require_privileged!();
    let (daemon, _) = TestDaemon::bridged();
    let other = name("other");
    daemon.kiln_ok(&["create", "--name", &other, "bb", "sleep", "1000"]);
    let mode = format!("container:{other}");
    for (args, message) in [
        (vec!["-p", "8080:80"], "conflicting options: port publishing and the container type network mode"),
        (vec!["-P"], "conflicting options: port publishing and the container type network mode"),
        (vec!["--expose", "80"], "conflicting options: port exposing and the container type network mode"),
        (vec!["--hostname", "mine"], "conflicting options: hostname and the network mode"),
        (vec!["--dns", "192.0.2.1"], "conflicting options: dns and the network mode"),
        (vec!["--add-host", "db:192.0.2.2"], "conflicting options: custom host-to-IP mapping and the network mode"),
        (vec!["--mac-address", "02:42:c0:00:02:09"], "conflicting options: mac-address and the network mode"),
        (vec!["--network-alias", "web"], "network-scoped alias is supported only for containers in user defined networks"),
        (vec!["--ip", "10.215.0.9"], "user specified IP address is supported on user defined networks only"),
        (vec!["--network", "bridge"], "container sharing network namespace with another container or host cannot be connected to any other network"),
    ] {
        let mut all = vec!["run", "--rm", "--network", &mode];
        all.extend(args.iter().copied());
        all.extend(["bb", "true"]);
        let run = daemon.kiln_run(&all);
        assert_eq!(run.code, Some(125), "{args:?}: {run:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    let empty = daemon.kiln_run(&["run", "--rm", "--network", "container:", "bb", "true"]);
    assert_eq!(empty.code, Some(125), "{empty:?}");
    assert!(
        empty.stderr.contains("invalid network mode: invalid container format container:<name|id>"),
        "{empty:?}"
    );
    let answer = daemon.request_json(
        "POST",
        "/v1.47/containers/create",
        &json!({"Image": "bb", "HostConfig": {"NetworkMode": mode, "Dns": ["192.0.2.1"]}}),
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(daemon.kiln_ok(&["ps", "-aq"]).lines().count(), 1, "nothing else was created");
    daemon.kiln_ok(&["rm", "-f", &other]);
}

#[test]
fn containers_share_the_loopback_of_one_without_a_network_and_in_a_chain() {
    kiln_testing::require_privileged!();
    let (daemon, _) = TestDaemon::bridged();
    let lonely = name("lonely");
    daemon.kiln_ok(&[
        "run",
        "-d",
        "--name",
        &lonely,
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        &web_server("lonely", "127.0.0.1:80"),
    ]);
    // One sharing the namespace of one that shares it in turn.
    let middle = name("middle");
    let mode = format!("container:{lonely}");
    daemon.kiln_ok(&["run", "-d", "--name", &middle, "--network", &mode, "bb", "sleep", "1000"]);
    for via in [&lonely, &middle] {
        let fetched = run_beside(&daemon, via, &["sh", "-c", &fetch("http://127.0.0.1/")]);
        assert_eq!(fetched, "hello from lonely\n", "through {via}");
        let links = run_beside(&daemon, via, &["ip", "-o", "link"]);
        assert_eq!(links.lines().count(), 1, "only loopback: {links}");
        assert!(links.contains(": lo:"), "{links}");
        let hostname = run_beside(&daemon, via, &["cat", "/etc/hostname"]);
        assert_eq!(hostname, daemon.kiln_ok(&["exec", &lonely, "cat", "/etc/hostname"]));
    }
    daemon.kiln_ok(&["rm", "-f", &middle, &lonely]);
}

#[test]
fn a_running_container_disconnected_from_its_network_connects_back_and_is_reachable() {
    kiln_testing::require_privileged!();
    let (daemon, _) = TestDaemon::bridged();
    let net = name("back");
    let (prefix, cidr) = subnet();
    daemon.kiln_ok(&["network", "create", "--subnet", &cidr, &net]);
    let app = name("app");
    daemon.kiln_ok(&[
        "run",
        "-d",
        "--name",
        &app,
        "--network",
        &net,
        "bb",
        "sh",
        "-c",
        &web_server("app", "80"),
    ]);

    assert_eq!(daemon.kiln_ok(&["network", "disconnect", &net, &app]), "");
    let addresses = daemon.kiln_ok(&["exec", &app, "ip", "-4", "-o", "addr"]);
    assert!(!addresses.contains(&format!("inet {prefix}.")), "still on {net}: {addresses}");

    assert_eq!(daemon.kiln_ok(&["network", "connect", &net, &app]), "");
    let networks = inspect(&daemon, &app)["NetworkSettings"]["Networks"].clone();
    let ip = networks[&net]["IPAddress"].as_str().expect("an address on the network").to_owned();
    assert!(ip.starts_with(&format!("{prefix}.")), "{networks}");
    let addresses = daemon.kiln_ok(&["exec", &app, "ip", "-4", "-o", "addr"]);
    assert!(addresses.contains(&format!("inet {ip}/24")), "{addresses}");
    let routes = daemon.kiln_ok(&["exec", &app, "ip", "route"]);
    assert!(routes.contains(&format!("default via {prefix}.1")), "{routes}");
    let fetched = daemon.kiln_ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        "bb",
        "sh",
        "-c",
        &fetch(&format!("http://{ip}/")),
    ]);
    assert_eq!(fetched, "hello from app\n");

    let twice = daemon.kiln_run(&["network", "connect", &net, &app]);
    assert_eq!(twice.code, Some(1), "{twice:?}");
    assert_eq!(
        twice.stderr,
        format!("Error response from daemon: endpoint with name {app} already exists in network {net}\n")
    );
    daemon.kiln_ok(&["rm", "-f", &app]);
    assert_eq!(daemon.kiln_ok(&["network", "rm", &net]), format!("{net}\n"));
}

#[test]
fn a_stopped_container_disconnected_from_its_network_connects_back_for_its_next_start() {
    kiln_testing::require_privileged!();
    let (daemon, _) = TestDaemon::bridged();
    let net = name("back");
    let (prefix, cidr) = subnet();
    daemon.kiln_ok(&["network", "create", "--subnet", &cidr, &net]);
    let app = name("app");
    daemon.kiln_ok(&[
        "create",
        "--name",
        &app,
        "--network",
        &net,
        "bb",
        "sh",
        "-c",
        &web_server("app", "80"),
    ]);
    assert_eq!(daemon.kiln_ok(&["network", "disconnect", &net, &app]), "");
    // Connected again with an address of its choosing, which the start uses.
    let ip = format!("{prefix}.77");
    assert_eq!(daemon.kiln_ok(&["network", "connect", "--ip", &ip, &net, &app]), "");
    daemon.kiln_ok(&["start", &app]);
    let addresses = daemon.kiln_ok(&["exec", &app, "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(addresses.contains(&format!("inet {ip}/24")), "{addresses}");
    let fetched = daemon.kiln_ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        "bb",
        "sh",
        "-c",
        &fetch(&format!("http://{ip}/")),
    ]);
    assert_eq!(fetched, "hello from app\n");
    daemon.kiln_ok(&["rm", "-f", &app]);
    assert_eq!(daemon.kiln_ok(&["network", "rm", &net]), format!("{net}\n"));
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
fn docker_cli_runs_a_container_on_another_containers_network() {
    kiln_testing::require_privileged!();
    let (daemon, _) = TestDaemon::bridged();
    let web = name("web");
    docker(
        &daemon,
        &["run", "-d", "--name", &web, "bb", "sh", "-c", &web_server("web", "127.0.0.1:80")],
    );
    let mode = format!("container:{web}");
    let fetched = docker(
        &daemon,
        &["run", "--rm", "--network", &mode, "bb", "sh", "-c", &fetch("http://127.0.0.1/")],
    );
    assert_eq!(fetched, "hello from web\n");
    let side = name("side");
    docker(&daemon, &["run", "-d", "--name", &side, "--network", &mode, "bb", "sleep", "1000"]);
    assert_eq!(
        docker(
            &daemon,
            &[
                "inspect",
                "-f",
                "{{.HostConfig.NetworkMode}} {{len .NetworkSettings.Networks}}",
                &side
            ]
        ),
        format!("{mode} 0\n")
    );
    let published =
        docker_run(&daemon, &["run", "--rm", "--network", &mode, "-p", "8080:80", "bb", "true"]);
    assert_eq!(published.code, Some(125), "{published:?}");
    assert!(
        published
            .stderr
            .contains("conflicting options: port publishing and the container type network mode"),
        "{published:?}"
    );
    docker(&daemon, &["rm", "-f", &side, &web]);
}
