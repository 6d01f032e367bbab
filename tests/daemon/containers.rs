//! Containers through the API, on the real kernel (root): create, start,
//! wait, logs, stop, kill, remove, exits while the daemon is away, and the
//! faults Docker users hit.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::TestDaemon;

/// A daemon with a busybox image imported as `bb`.
fn daemon_with_busybox() -> TestDaemon {
    let daemon = TestDaemon::start();
    daemon.import_busybox("bb");
    daemon
}

/// Create a container running `sh -c SCRIPT`; its id.
fn create(
    daemon: &TestDaemon,
    name: Option<&str>,
    script: &str,
    extra: serde_json::Value,
) -> String {
    let mut body =
        json!({"Image": "bb", "Cmd": ["sh", "-c", script], "HostConfig": {"NetworkMode": "none"}});
    if let (Some(obj), serde_json::Value::Object(more)) = (body.as_object_mut(), extra) {
        for (k, v) in more {
            obj.insert(k, v);
        }
    }
    let path = match name {
        Some(n) => format!("/v1.47/containers/create?name={n}"),
        None => "/v1.47/containers/create".to_owned(),
    };
    let answer = daemon.request_json("POST", &path, &body);
    assert_eq!(answer.status, 201, "create: {}", answer.body);
    let id = answer.json()["Id"].as_str().expect("Id").to_owned();
    assert_eq!(id.len(), 64, "{id}");
    id
}

fn post(daemon: &TestDaemon, path: &str) -> crate::common::RawResponse {
    daemon.request_json("POST", path, &json!({}))
}

fn inspect(daemon: &TestDaemon, id: &str) -> serde_json::Value {
    let answer = daemon.request("GET", &format!("/v1.47/containers/{id}/json"));
    assert_eq!(answer.status, 200, "inspect: {}", answer.body);
    answer.json()
}

/// Poll inspect until `pred` holds (at most 10 s).
fn wait_for(
    daemon: &TestDaemon,
    id: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = inspect(daemon, id);
        if pred(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "condition not met: {state}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The payloads of a multiplexed stream, per stream number.
fn demux(body: &str) -> (String, String) {
    let bytes = body.as_bytes();
    let (mut out, mut err) = (String::new(), String::new());
    let mut i = 0;
    while i + 8 <= bytes.len() {
        let len =
            u32::from_be_bytes([bytes[i + 4], bytes[i + 5], bytes[i + 6], bytes[i + 7]]) as usize;
        let payload =
            String::from_utf8_lossy(&bytes[i + 8..(i + 8 + len).min(bytes.len())]).into_owned();
        match bytes[i] {
            1 => out.push_str(&payload),
            2 => err.push_str(&payload),
            other => panic!("unexpected stream {other}"),
        }
        i += 8 + len;
    }
    (out, err)
}

#[test]
fn a_container_runs_and_its_exit_code_and_logs_come_back() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let id = create(&daemon, Some("kiln-t-first"), "echo out; echo err >&2; exit 3", json!({}));
    let state = inspect(&daemon, &id);
    assert_eq!(state["State"]["Status"], "created");
    assert_eq!(state["Name"], "/kiln-t-first");
    let started = post(&daemon, &format!("/v1.47/containers/{id}/start"));
    assert_eq!(started.status, 204, "start: {}", started.body);
    let waited = post(&daemon, "/v1.47/containers/kiln-t-first/wait");
    assert_eq!(waited.status, 200, "{}", waited.body);
    assert_eq!(waited.json()["StatusCode"], 3);
    let state = inspect(&daemon, &id);
    assert_eq!(state["State"]["Status"], "exited");
    assert_eq!(state["State"]["ExitCode"], 3);
    assert_ne!(state["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    let logs = daemon.request("GET", &format!("/v1.47/containers/{id}/logs?stdout=1&stderr=1"));
    assert_eq!(logs.status, 200);
    assert_eq!(demux(&logs.body), ("out\n".to_owned(), "err\n".to_owned()));
    let only_err = daemon.request("GET", &format!("/v1.47/containers/{id}/logs?stderr=1"));
    assert_eq!(demux(&only_err.body), (String::new(), "err\n".to_owned()));
    let listed = daemon.request("GET", "/v1.47/containers/json?all=1").json();
    let row = &listed.as_array().expect("list")[0];
    assert_eq!(row["Names"][0], "/kiln-t-first");
    assert!(row["Status"].as_str().expect("status").starts_with("Exited (3)"), "{row}");
    assert_eq!(daemon.request("GET", "/v1.47/containers/json").json(), json!([]));
    let removed = daemon.request("DELETE", &format!("/v1.47/containers/{id}"));
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert_eq!(daemon.request("GET", &format!("/v1.47/containers/{id}/json")).status, 404);
    let bundle = daemon.root().join("containers").join(&id);
    assert!(!bundle.exists(), "bundle left behind");
}

#[test]
fn stop_kills_a_process_that_ignores_sigterm_after_the_timeout() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let id = create(&daemon, None, "trap '' TERM; while true; do sleep 1; done", json!({}));
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/start")).status, 204);
    wait_for(&daemon, &id, |s| s["State"]["Running"] == true);
    let removing = daemon.request("DELETE", &format!("/v1.47/containers/{id}"));
    assert_eq!(removing.status, 409, "{}", removing.body);
    assert!(removing.body.contains("cannot remove a running container"), "{}", removing.body);
    let begun = Instant::now();
    let stopped = post(&daemon, &format!("/v1.47/containers/{id}/stop?t=1"));
    assert_eq!(stopped.status, 204, "{}", stopped.body);
    let took = begun.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "stop took {took:?}"
    );
    let state = inspect(&daemon, &id);
    assert_eq!(state["State"]["ExitCode"], 137);
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/stop")).status, 304);
}

#[test]
fn rm_force_kills_a_running_container_at_once() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let id = create(&daemon, None, "trap '' TERM; sleep 100", json!({}));
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/start")).status, 204);
    let begun = Instant::now();
    let removed = daemon.request("DELETE", &format!("/v1.47/containers/{id}?force=1"));
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert!(begun.elapsed() < Duration::from_secs(5));
    assert!(
        std::fs::read_dir(daemon.exec_root().join("runtime"))
            .expect("runtime root")
            .next()
            .is_none(),
        "runtime state left"
    );
}

#[test]
fn names_in_use_unknown_images_and_commands_get_dockers_answers() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    create(&daemon, Some("kiln-t-dup"), "true", json!({}));
    let dup = daemon.request_json(
        "POST",
        "/v1.47/containers/create?name=kiln-t-dup",
        &json!({"Image": "bb"}),
    );
    assert_eq!(dup.status, 409, "{}", dup.body);
    assert!(dup.body.contains("is already in use"), "{}", dup.body);
    let unknown =
        daemon.request_json("POST", "/v1.47/containers/create", &json!({"Image": "nope:1"}));
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let missing = create(&daemon, None, "true", json!({"Cmd": ["/no/such/command"]}));
    let started = post(&daemon, &format!("/v1.47/containers/{missing}/start"));
    assert_eq!(started.status, 400, "{}", started.body);
    assert!(
        started.body.contains("no such file or directory") || started.body.contains("not found"),
        "{}",
        started.body
    );
    assert_eq!(inspect(&daemon, &missing)["State"]["ExitCode"], 127);
    let tiny = daemon.request_json(
        "POST",
        "/v1.47/containers/create",
        &json!({"Image": "bb", "HostConfig": {"Memory": 1024}}),
    );
    assert_eq!(tiny.status, 400, "{}", tiny.body);
    assert!(tiny.body.contains("Minimum memory limit allowed is 6MB"), "{}", tiny.body);
    let not_running =
        daemon.request_json("POST", "/v1.47/containers/kiln-t-dup/exec", &json!({"Cmd": ["true"]}));
    assert_eq!(not_running.status, 409, "{}", not_running.body);
    assert_eq!(daemon.request("GET", "/v1.47/containers/nope/json").status, 404);
}

#[test]
fn exits_while_the_daemon_is_down_are_reported_after_a_restart() {
    kiln_testing::require_privileged!();
    let mut daemon = daemon_with_busybox();
    let short = create(&daemon, None, "sleep 1; exit 5", json!({}));
    let long = create(&daemon, None, "sleep 100", json!({}));
    for id in [&short, &long] {
        assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/start")).status, 204);
    }
    let mut child = daemon.child.take().expect("daemon");
    child.kill().expect("kill -9 the daemon");
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(1500));
    daemon.child = Some(daemon.command().spawn().expect("restart"));
    daemon.wait_until_serving();
    let state = wait_for(&daemon, &short, |s| s["State"]["Status"] == "exited");
    assert_eq!(state["State"]["ExitCode"], 5);
    assert_eq!(inspect(&daemon, &long)["State"]["Status"], "running");
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{long}/stop?t=1")).status, 204);
    assert_eq!(inspect(&daemon, &long)["State"]["Status"], "exited");
}

#[test]
fn a_killed_shim_marks_only_its_container_exited() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let victim = create(&daemon, None, "sleep 100", json!({}));
    let other = create(&daemon, None, "sleep 100", json!({}));
    for id in [&victim, &other] {
        assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/start")).status, 204);
    }
    let pid_file = daemon.exec_root().join("containers").join(&victim).join("shim.pid");
    let pid: i32 =
        std::fs::read_to_string(pid_file).expect("shim.pid").trim().parse().expect("pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)
        .expect("kill shim");
    wait_for(&daemon, &victim, |s| s["State"]["Status"] == "exited");
    assert_eq!(inspect(&daemon, &other)["State"]["Status"], "running");
}

#[test]
fn kill_sends_the_signal_and_pause_freezes() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let id =
        create(&daemon, None, "trap 'exit 42' USR1; while true; do sleep 0.1; done", json!({}));
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/start")).status, 204);
    wait_for(&daemon, &id, |s| s["State"]["Running"] == true);
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/pause")).status, 204);
    assert_eq!(inspect(&daemon, &id)["State"]["Status"], "paused");
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/unpause")).status, 204);
    let top = daemon.request("GET", &format!("/v1.47/containers/{id}/top"));
    assert_eq!(top.status, 200, "{}", top.body);
    assert!(top.body.contains("sleep") || top.body.contains("sh"), "{}", top.body);
    // Give the shell time to set its trap before the signal.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/kill?signal=USR1")).status, 204);
    let state = wait_for(&daemon, &id, |s| s["State"]["Status"] == "exited");
    assert_eq!(state["State"]["ExitCode"], 42);
    let again = post(&daemon, &format!("/v1.47/containers/{id}/kill"));
    assert_eq!(again.status, 409, "{}", again.body);
}

#[test]
fn an_image_in_use_is_not_deleted_under_its_container() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let id = create(&daemon, None, "echo still here", json!({}));
    let refused = daemon.request("DELETE", "/v1.47/images/bb");
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("is using its referenced image"), "{}", refused.body);
    let forced = daemon.request("DELETE", "/v1.47/images/bb?force=1");
    assert_eq!(forced.status, 200, "{}", forced.body);
    assert!(!forced.body.contains("Deleted"), "the image must stay: {}", forced.body);
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/start")).status, 204);
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/wait")).json()["StatusCode"], 0);
    let logs = daemon.request("GET", &format!("/v1.47/containers/{id}/logs?stdout=1"));
    assert_eq!(demux(&logs.body).0, "still here\n");
}

/// Run `script` in a new container with extra create fields; its exit
/// code and stdout.
fn run_script(
    daemon: &TestDaemon,
    script: &str,
    extra: serde_json::Value,
) -> (i64, String, String) {
    let id = create(daemon, None, script, extra);
    assert_eq!(post(daemon, &format!("/v1.47/containers/{id}/start")).status, 204);
    let code = post(daemon, &format!("/v1.47/containers/{id}/wait")).json()["StatusCode"]
        .as_i64()
        .expect("code");
    let logs = daemon.request("GET", &format!("/v1.47/containers/{id}/logs?stdout=1&stderr=1"));
    let (out, err) = demux(&logs.body);
    if code != 0 {
        eprintln!("container {id} exited {code}: stdout {out:?} stderr {err:?}");
    }
    (code, out, id)
}

#[test]
fn named_volumes_keep_data_and_start_with_the_images_content() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let binds = json!({"HostConfig": {"NetworkMode": "none", "Binds": ["kiln-t-data:/data"]}});
    let (code, _, writer) = run_script(&daemon, "echo kept > /data/file", binds.clone());
    assert_eq!(code, 0);
    assert_eq!(daemon.request("DELETE", &format!("/v1.47/containers/{writer}?v=1")).status, 204);
    let (code, out, reader) = run_script(&daemon, "cat /data/file", binds);
    assert_eq!((code, out.as_str()), (0, "kept\n"));
    let in_use = daemon.request("DELETE", "/v1.47/volumes/kiln-t-data");
    assert_eq!(in_use.status, 409, "{}", in_use.body);
    assert_eq!(daemon.request("DELETE", &format!("/v1.47/containers/{reader}")).status, 204);
    assert_eq!(daemon.request("DELETE", "/v1.47/volumes/kiln-t-data").status, 204);
    // A new named volume over /etc starts with the image's /etc.
    let etc = json!({"HostConfig": {"NetworkMode": "none", "Binds": ["kiln-t-etc:/etc"]}});
    let (code, out, _) = run_script(&daemon, "grep -c root /etc/passwd", etc);
    assert_eq!((code, out.trim()), (0, "1"));
    let inspect = daemon.request("GET", "/v1.47/volumes/kiln-t-etc").json();
    let mountpoint = inspect["Mountpoint"].as_str().expect("mountpoint");
    assert!(std::path::Path::new(mountpoint).join("passwd").is_file(), "{inspect}");
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_named_ones_stay() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let extra = json!({
        "Volumes": {"/scratch": {}},
        "HostConfig": {"NetworkMode": "none", "Binds": ["kiln-t-named:/named"]}
    });
    let (code, _, id) = run_script(&daemon, "touch /scratch/a /named/b", extra);
    assert_eq!(code, 0);
    let mounts = inspect(&daemon, &id)["Mounts"].clone();
    let anonymous = mounts
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["Destination"] == "/scratch")
        .and_then(|m| m["Name"].as_str())
        .expect("anonymous volume")
        .to_owned();
    assert_eq!(anonymous.len(), 64);
    assert_eq!(daemon.request("DELETE", &format!("/v1.47/containers/{id}?v=1")).status, 204);
    assert_eq!(daemon.request("GET", &format!("/v1.47/volumes/{anonymous}")).status, 404);
    assert_eq!(daemon.request("GET", "/v1.47/volumes/kiln-t-named").status, 200);
    let missing = daemon.request_json(
        "POST",
        "/v1.47/containers/create",
        &json!({"Image": "bb", "HostConfig": {"Binds": ["/no/such/dir:/x"]}}),
    );
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert!(
        missing.body.contains("bind source path does not exist: /no/such/dir"),
        "{}",
        missing.body
    );
}

#[test]
fn restart_policies_bring_containers_back_until_stopped() {
    kiln_testing::require_privileged!();
    let mut daemon = daemon_with_busybox();
    let failing = create(
        &daemon,
        None,
        "exit 1",
        json!({"HostConfig": {"NetworkMode": "none", "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}}),
    );
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{failing}/start")).status, 204);
    let state =
        wait_for(&daemon, &failing, |s| s["RestartCount"] == 2 && s["State"]["Status"] == "exited");
    assert_eq!(state["State"]["ExitCode"], 1);
    let always = create(
        &daemon,
        None,
        "sleep 0.2",
        json!({"HostConfig": {"NetworkMode": "none", "RestartPolicy": {"Name": "always"}}}),
    );
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{always}/start")).status, 204);
    wait_for(&daemon, &always, |s| s["RestartCount"].as_i64().unwrap_or(0) >= 2);
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{always}/stop?t=1")).status, 204);
    std::thread::sleep(Duration::from_millis(800));
    assert_ne!(inspect(&daemon, &always)["State"]["Status"], "running");
    // A daemon restart brings `always` containers back, even stopped ones.
    let mut child = daemon.child.take().expect("daemon");
    crate::common::terminate(child.id());
    let _ = child.wait();
    daemon.child = Some(daemon.command().spawn().expect("restart"));
    daemon.wait_until_serving();
    wait_for(&daemon, &always, |s| s["State"]["Running"] == true);
    assert_eq!(inspect(&daemon, &failing)["State"]["Status"], "exited");
}

#[test]
fn dev_shm_is_sized_for_data_loaders_unless_the_user_says() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let shm_kib = |extra: serde_json::Value| -> u64 {
        let (code, out, _) = run_script(&daemon, "grep ' /dev/shm ' /proc/mounts", extra);
        assert_eq!(code, 0, "{out}");
        let size = out.split([',', ' ']).find_map(|o| o.strip_prefix("size=")).expect("size");
        size.trim_end_matches('k').parse().expect("kib")
    };
    let host_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .expect("meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("MemTotal");
    let expected = (host_kib / 2).clamp(64 * 1024, 8 * 1024 * 1024);
    assert_eq!(shm_kib(json!({})), expected);
    let limited = json!({"HostConfig": {"NetworkMode": "none", "Memory": 256 << 20}});
    assert_eq!(shm_kib(limited), 128 * 1024);
    let explicit = json!({"HostConfig": {"NetworkMode": "none", "ShmSize": 64 << 20}});
    assert_eq!(shm_kib(explicit), 64 * 1024);
    let info = daemon.request("GET", "/v1.47/info").json();
    assert_eq!(info["KilnDefaultShmSize"].as_u64(), Some(expected * 1024));
}

#[test]
fn health_checks_report_healthy_then_unhealthy() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    // Healthy while /tmp/ok exists; the container removes it after a while.
    let check = json!({
        "Healthcheck": {"Test": ["CMD-SHELL", "test -e /tmp/ok"], "Interval": 200_000_000, "Retries": 2},
        "HostConfig": {"NetworkMode": "none"}
    });
    let id = create(&daemon, None, "touch /tmp/ok; sleep 1.5; rm /tmp/ok; sleep 100", check);
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/start")).status, 204);
    let state = wait_for(&daemon, &id, |s| s["State"]["Health"]["Status"] == "healthy");
    assert_eq!(state["State"]["Health"]["FailingStreak"], 0);
    let listed = daemon.request("GET", "/v1.47/containers/json").json();
    assert!(listed[0]["Status"].as_str().expect("status").ends_with("(healthy)"), "{listed}");
    let state = wait_for(&daemon, &id, |s| s["State"]["Health"]["Status"] == "unhealthy");
    let log = state["State"]["Health"]["Log"].as_array().expect("log");
    assert_eq!(log.last().expect("last")["ExitCode"], 1);
    let none = create(&daemon, None, "sleep 100", json!({"Healthcheck": {"Test": ["NONE"]}}));
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{none}/start")).status, 204);
    assert!(inspect(&daemon, &none)["State"].get("Health").is_none());
}

#[test]
fn processes_start_with_default_signal_actions() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    // No shell in between: a shell ignores SIGQUIT itself.
    let cmd = json!({"Cmd": ["grep", "SigIgn", "/proc/self/status"]});
    let (code, out, _) = run_script(&daemon, "", cmd);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "SigIgn:\t0000000000000000", "SIGPIPE and friends must not be ignored");
}

#[test]
fn events_tell_the_life_of_a_container() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let (code, _, id) = run_script(&daemon, "exit 4", json!({"Labels": {"team": "ml"}}));
    assert_eq!(code, 4);
    let (secs, _) = kiln_types_now();
    let until = secs + 1;
    let all = daemon.request("GET", &format!("/v1.47/events?since=0&until={until}"));
    assert_eq!(all.status, 200, "{}", all.body);
    let events: Vec<serde_json::Value> =
        all.body.lines().map(|l| serde_json::from_str(l).expect("event json")).collect();
    let actions: Vec<&str> = events
        .iter()
        .filter(|e| e["Actor"]["ID"] == id.as_str())
        .map(|e| e["Action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["create", "start", "die"], "{}", all.body);
    let die = events.iter().find(|e| e["Action"] == "die").expect("die");
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "4");
    assert_eq!(die["Actor"]["Attributes"]["team"], "ml");
    assert_eq!(die["Type"], "container");
    let filters = "%7B%22event%22%3A%5B%22die%22%5D%7D";
    let only =
        daemon.request("GET", &format!("/v1.47/events?since=0&until={until}&filters={filters}"));
    assert_eq!(only.body.lines().count(), 1, "{}", only.body);
}

fn kiln_types_now() -> (i64, u32) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    (i64::try_from(now.as_secs()).expect("secs"), now.subsec_nanos())
}

#[test]
fn stats_report_memory_cpu_and_pids_from_the_cgroup() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let id = create(&daemon, Some("kiln-t-stats"), "while true; do sleep 0.1; done", json!({}));
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/start")).status, 204);
    wait_for(&daemon, &id, |s| s["State"]["Running"] == true);
    let one = daemon.request("GET", "/v1.47/containers/kiln-t-stats/stats?stream=0&one-shot=1");
    assert_eq!(one.status, 200, "{}", one.body);
    let s = one.json();
    assert_eq!(s["name"], "/kiln-t-stats");
    assert!(s["memory_stats"]["usage"].as_u64().expect("usage") > 0, "{s}");
    assert!(s["pids_stats"]["current"].as_u64().expect("pids") >= 1, "{s}");
    assert!(s["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().expect("cpu") > 0, "{s}");
    let two = daemon.request("GET", "/v1.47/containers/kiln-t-stats/stats?stream=0").json();
    let (now, before) =
        (&two["cpu_stats"]["system_cpu_usage"], &two["precpu_stats"]["system_cpu_usage"]);
    assert!(now.as_u64().expect("now") > before.as_u64().expect("before"), "{two}");
}

#[test]
fn changes_list_what_the_container_wrote_and_deleted() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let (code, _, id) = run_script(
        &daemon,
        "echo x > /etc/passwd; mkdir /made; touch /made/f; rm /bin/cat",
        json!({}),
    );
    assert_eq!(code, 0);
    let found = daemon.request("GET", &format!("/v1.47/containers/{id}/changes"));
    assert_eq!(found.status, 200, "{}", found.body);
    let items: Vec<(String, i64)> = found
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|c| (c["Path"].as_str().expect("path").to_owned(), c["Kind"].as_i64().expect("kind")))
        .collect();
    for wanted in [("/etc/passwd", 0), ("/made", 1), ("/made/f", 1), ("/bin/cat", 2)] {
        assert!(items.contains(&(wanted.0.to_owned(), wanted.1)), "{wanted:?} not in {items:?}");
    }
}

#[test]
fn fifty_parallel_runs_all_succeed_and_leave_nothing_behind() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let runs: Vec<std::process::Child> = (0..50)
        .map(|_| {
            daemon
                .kiln()
                .args(["run", "--rm", "--network", "none", "bb", "true"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn kiln run")
        })
        .collect();
    for child in runs {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(daemon.kiln_ok(&["ps", "-aq"]), "");
    // Shims clean up (cgroups, runtime state, mounts) just after they
    // report the exit: give them a moment.
    let left = |dir: std::path::PathBuf| std::fs::read_dir(&dir).map_or(0, |d| d.count());
    let root = daemon.root().display().to_string();
    let shims_left = || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", &format!("kiln shim.*{root}")])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while (left(daemon.exec_root().join("runtime")) > 0 || !shims_left().is_empty())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(left(daemon.exec_root().join("runtime")), 0, "runtime state left");
    assert_eq!(left(daemon.exec_root().join("containers")), 0, "shim state left");
    assert_eq!(left(daemon.root().join("containers")), 0, "bundles left");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&root), "mounts left under {root}");
    assert_eq!(shims_left(), "", "shims left");
}

#[test]
fn logs_follow_loses_none_of_200000_fast_lines() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    // Following starts while the container waits, before it writes.
    let id = create(&daemon, Some("kiln-t-chatty"), "sleep 0.5; seq 1 200000", json!({}));
    assert_eq!(post(&daemon, &format!("/v1.47/containers/{id}/start")).status, 204);
    let mut follow = daemon
        .kiln()
        .args(["logs", "-f", "kiln-t-chatty"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kiln logs -f");
    let out = {
        use std::io::Read as _;
        let mut text = String::new();
        follow.stdout.take().expect("stdout").read_to_string(&mut text).expect("read");
        text
    };
    assert!(follow.wait().expect("wait").success());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 200_000);
    assert!(
        lines.iter().enumerate().all(|(i, l)| *l == (i + 1).to_string()),
        "lines out of order or lost"
    );
}

#[test]
fn kiln_export_writes_the_containers_filesystem_as_a_tar() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let (code, _, id) = run_script(&daemon, "echo kept > /exported.txt", json!({}));
    assert_eq!(code, 0);
    let out = daemon.dir.path().join("export.tar");
    daemon.kiln_ok(&["export", "-o", out.to_str().expect("utf-8"), &id]);
    let listing = std::process::Command::new("tar").arg("-tf").arg(&out).output().expect("tar -t");
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(names.lines().any(|l| l == "exported.txt"), "{names}");
    assert!(names.lines().any(|l| l == "bin/busybox"), "{names}");
    let missing = daemon.kiln_run(&["export", "-o", out.to_str().expect("utf-8"), "kiln-t-nope"]);
    assert_eq!(missing.code, Some(1), "{missing:?}");
    assert!(missing.stderr.contains("No such container: kiln-t-nope"), "{missing:?}");
    // A failed export leaves the earlier file as it was.
    assert!(std::fs::metadata(&out).expect("still there").len() > 0);
}

/// The zombie lines of every process's /proc stat in container `name`.
fn zombies(daemon: &TestDaemon, name: &str) -> Vec<String> {
    let stat = daemon.kiln_ok(&["exec", name, "sh", "-c", "cat /proc/[0-9]*/stat"]);
    stat.lines().filter(|l| l.contains(") Z ")).map(str::to_owned).collect()
}

#[test]
fn init_reaps_orphans_forwards_signals_and_exits_as_the_command() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    // A child shell leaves an orphan behind; PID 1 must reap it once it exits.
    let script = "sh -c 'sleep 0.2 &'; exec sleep 100";
    for (name, init) in [("kiln-t-init", true), ("kiln-t-noinit", false)] {
        let mut args = vec!["run", "-d", "--network", "none", "--name", name];
        if init {
            args.push("--init");
        }
        args.extend(["bb", "sh", "-c", script]);
        daemon.kiln_ok(&args);
    }
    // Without an init, `sleep` is PID 1 and never reaps: the zombie stays
    // (which shows the check below can fail).
    let deadline = Instant::now() + Duration::from_secs(10);
    while zombies(&daemon, "kiln-t-noinit").is_empty() {
        assert!(Instant::now() < deadline, "the orphan never became a zombie without --init");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(zombies(&daemon, "kiln-t-init").is_empty(), "{:?}", zombies(&daemon, "kiln-t-init"));
    let pid1 = daemon.kiln_ok(&["exec", "kiln-t-init", "cat", "/proc/1/cmdline"]);
    assert_eq!(
        pid1.replace('\0', " ").trim(),
        "kiln-init -- sh -c sh -c 'sleep 0.2 &'; exec sleep 100"
    );
    let inspected = daemon.kiln_ok(&["inspect", "-f", "{{.HostConfig.Init}}", "kiln-t-init"]);
    assert_eq!(inspected.trim(), "true");

    // SIGTERM reaches the command through the init: `sleep` dies of it at
    // once instead of waiting out the stop timeout, and the code says so.
    let begun = Instant::now();
    daemon.kiln_ok(&["stop", "-t", "20", "kiln-t-init"]);
    assert!(begun.elapsed() < Duration::from_secs(10), "stop took {:?}", begun.elapsed());
    let code = daemon.kiln_ok(&["inspect", "-f", "{{.State.ExitCode}}", "kiln-t-init"]);
    assert_eq!(code.trim(), "143");
    daemon.kiln_ok(&["rm", "-f", "kiln-t-noinit", "kiln-t-init"]);

    // The command's own exit code comes back through the init.
    let run = daemon.kiln_run(&[
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(run.code, Some(7), "{run:?}");
}

#[test]
fn a_rm_container_survives_restart_with_its_files_and_goes_when_it_exits() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    // `--rm` layers are mounted without syncs (overlay `volatile`); they must
    // still mount again after a restart, with what the first run wrote.
    let script = "echo run >> /runs; wc -l < /runs; sleep 100";
    daemon.kiln_ok(&[
        "run",
        "-d",
        "--rm",
        "--network",
        "none",
        "--name",
        "kiln-t-rmre",
        "bb",
        "sh",
        "-c",
        script,
    ]);
    daemon.kiln_ok(&["restart", "-t", "0", "kiln-t-rmre"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = daemon.kiln_ok(&["logs", "kiln-t-rmre"]);
        if logs.split_whitespace().collect::<Vec<_>>() == ["1", "2"] {
            break;
        }
        assert!(Instant::now() < deadline, "logs after restart: {logs:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon.kiln_ok(&["kill", "kiln-t-rmre"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon.kiln_ok(&["ps", "-aq"]).trim().is_empty() {
        assert!(Instant::now() < deadline, "the --rm container was not removed after its exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}
