//! The container lifecycle as a runc user drives it: run, create, start,
//! state, kill, delete, pause, resume, exec, list, ps, features and spec.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    cgroup_dir, eventually, kiln, kiln_leaving_process, kiln_ok, require_privileged, run, state,
    Bundle, RuntimeRoot,
};

const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];
const SIGTERM: i32 = 15;

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Creates (without starting) a container from `config` under the bundle's
/// name; returns the host pid of its process.
fn create(root: &RuntimeRoot, bundle: &Bundle, config: &Value) -> i32 {
    bundle.write_config(config);
    let out =
        kiln_leaving_process(root, &["create", "--bundle", path_arg(bundle.path()), bundle.name()]);
    assert_eq!(out.code, 0, "create failed: {}{}", out.stdout, out.stderr);
    pid_of(root, bundle.name())
}

/// Creates and starts a container running `args`; returns its host pid.
fn start_running(root: &RuntimeRoot, bundle: &Bundle, args: &[&str]) -> i32 {
    let pid = create(root, bundle, &bundle.config(args));
    kiln_ok(root, &["start", bundle.name()]);
    pid
}

fn pid_of(root: &RuntimeRoot, id: &str) -> i32 {
    let pid = state(root, id)["pid"].as_i64().expect("state has a pid");
    i32::try_from(pid).expect("pid fits i32")
}

fn status(root: &RuntimeRoot, id: &str) -> String {
    state(root, id)["status"].as_str().expect("state has a status").to_owned()
}

/// Whether `pid` is a live process (a zombie is not).
fn is_alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let after_name = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    !matches!(after_name.trim_start().chars().next(), Some('Z' | 'X') | None)
}

/// The pids in the container's cgroup (pids controller).
fn cgroup_pids(bundle: &Bundle) -> Vec<i32> {
    let procs = cgroup_dir(bundle, "pids").join("cgroup.procs");
    std::fs::read_to_string(&procs)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", procs.display()))
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn assert_cleaned_up(root: &RuntimeRoot, bundle: &Bundle, pid: i32) {
    assert!(eventually(|| !is_alive(pid)), "container process {pid} still runs");
    for controller in CONTROLLERS {
        let dir = cgroup_dir(bundle, controller);
        assert!(!dir.exists(), "cgroup {} is left behind", dir.display());
    }
    let dir = root.path().join(bundle.name());
    assert!(!dir.exists(), "state dir {} is left behind", dir.display());
}

fn ns_link(pid: i32, kind: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/ns/{kind}: {e}"))
}

/// Whether the process has a handler installed for `signal`.
fn catches(pid: i32, signal: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    text.lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

#[test]
fn run_returns_the_exit_code_of_the_process() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let out = run(&root, &bundle, &bundle.config(&["/bin/probe", "exit", "3"]));
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(!root.path().join(bundle.name()).exists(), "run leaves no state behind");
}

#[test]
fn run_returns_137_when_the_process_kills_itself_with_sigkill() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let mut config = bundle.config(&["sh", "-c", "kill -9 $$"]);
    // Without its own pid namespace sh is not an init, which ignores
    // signals it has no handler for, even SIGKILL from inside.
    config["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .retain(|ns| ns["type"] != "pid");
    let out = run(&root, &bundle, &config);
    assert_eq!(out.code, 128 + 9, "{}", out.stderr);
}

#[test]
fn run_returns_137_when_the_container_is_killed_from_the_host() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    bundle.write_config(&bundle.config(&["/bin/probe", "sleep", "30"]));
    let pid_file = bundle.path().join("run.pid");
    let mut child = root
        .runtime()
        .args(["run", "--bundle", path_arg(bundle.path()), "--pid-file"])
        .arg(&pid_file)
        .arg(bundle.name())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("kiln runs");
    let read_pid = || std::fs::read_to_string(&pid_file).ok()?.trim().parse::<i32>().ok();
    assert!(eventually(|| read_pid().is_some()), "run never wrote its pid file");
    let pid = read_pid().expect("pid");
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill");
    let status = child.wait().expect("wait for run");
    assert_eq!(status.code(), Some(128 + 9));
    assert!(!cgroup_dir(&bundle, "pids").exists(), "run removes the cgroup");
}

#[test]
fn run_passes_the_process_output_to_the_caller() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let out =
        run(&root, &bundle, &bundle.config(&["sh", "-c", "echo hello from inside; echo oops >&2"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "hello from inside\n");
    assert!(out.stderr.contains("oops"), "stderr: {}", out.stderr);
}

#[test]
fn create_then_start_moves_the_container_from_created_to_running() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let pid = create(&root, &bundle, &bundle.config(&["/bin/probe", "sleep", "30"]));
    let created = state(&root, bundle.name());
    assert_eq!(created["status"], "created");
    assert_eq!(created["id"], bundle.name());
    assert!(pid > 0 && is_alive(pid), "created container's process {pid} is not alive");
    let bundle_dir = std::fs::canonicalize(bundle.path()).expect("bundle path");
    assert_eq!(created["bundle"], path_arg(&bundle_dir));

    kiln_ok(&root, &["start", bundle.name()]);
    let running = state(&root, bundle.name());
    assert_eq!(running["status"], "running");
    assert_eq!(running["pid"], pid);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert_eq!(cmdline, b"/bin/probe\0sleep\x0030\0", "the process execs the config's args");
}

#[test]
fn kill_sends_sigterm_by_default() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let script = "trap 'exit 0' TERM; sleep 30 & wait";
    let pid = start_running(&root, &bundle, &["sh", "-c", script]);
    assert!(eventually(|| catches(pid, SIGTERM)), "sh never installed its TERM trap");
    kiln_ok(&root, &["kill", bundle.name()]);
    assert!(eventually(|| !is_alive(pid)), "SIGTERM did not stop the container");
    assert_eq!(status(&root, bundle.name()), "stopped");
}

#[test]
fn kill_accepts_kill_9_and_sigkill_as_the_same_signal() {
    require_privileged!();
    for spelling in ["KILL", "9", "SIGKILL"] {
        let root = RuntimeRoot::new();
        let bundle = Bundle::busybox();
        // The probe installs no handler, and as pid 1 it ignores all else.
        let pid = start_running(&root, &bundle, &["/bin/probe", "sleep", "30"]);
        kiln_ok(&root, &["kill", bundle.name(), spelling]);
        assert!(eventually(|| !is_alive(pid)), "kill {spelling} did not stop the container");
        assert_eq!(status(&root, bundle.name()), "stopped", "after kill {spelling}");
        kiln_ok(&root, &["delete", bundle.name()]);
    }
}

#[test]
fn kill_then_delete_removes_the_state_and_the_cgroup() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let pid = start_running(&root, &bundle, &["/bin/probe", "sleep", "30"]);
    for controller in CONTROLLERS {
        let dir = cgroup_dir(&bundle, controller);
        assert!(dir.is_dir(), "no cgroup {} while running", dir.display());
    }
    assert!(cgroup_pids(&bundle).contains(&pid), "the process is not in its cgroup");
    kiln_ok(&root, &["kill", bundle.name(), "KILL"]);
    assert!(eventually(|| status(&root, bundle.name()) == "stopped"));
    kiln_ok(&root, &["delete", bundle.name()]);
    assert_cleaned_up(&root, &bundle, pid);
    let out = kiln(&root, &["state", bundle.name()]);
    assert_eq!(out.code, 1, "state of a deleted container: {}", out.stdout);
    assert!(out.stderr.contains("does not exist"), "stderr: {}", out.stderr);
}

#[test]
fn pid_file_holds_the_host_pid_of_the_container_process() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    bundle.write_config(&bundle.config(&["/bin/probe", "sleep", "30"]));
    let pid_file = bundle.path().join("container.pid");
    let out = kiln_leaving_process(
        &root,
        &[
            "create",
            "--bundle",
            path_arg(bundle.path()),
            "--pid-file",
            path_arg(&pid_file),
            bundle.name(),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(&pid_file).expect("pid file written");
    let pid: i32 = text.trim().parse().unwrap_or_else(|e| panic!("pid file {text:?}: {e}"));
    assert_eq!(pid, pid_of(&root, bundle.name()));
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(cgroup_pids(&bundle).contains(&pid), "the pid is the container's");
}

#[test]
fn delete_of_a_running_container_fails_without_force_and_leaves_it_running() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let pid = start_running(&root, &bundle, &["/bin/probe", "sleep", "30"]);
    let out = kiln(&root, &["delete", bundle.name()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("running"), "stderr: {}", out.stderr);
    assert!(is_alive(pid), "a refused delete killed the container");
    assert_eq!(status(&root, bundle.name()), "running");
    assert!(cgroup_dir(&bundle, "memory").is_dir());
}

#[test]
fn delete_force_kills_a_running_container_and_cleans_up() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let pid = start_running(&root, &bundle, &["sh", "-c", "sleep 30 & sleep 30"]);
    kiln_ok(&root, &["delete", "--force", bundle.name()]);
    assert_cleaned_up(&root, &bundle, pid);
    let out = kiln(&root, &["state", bundle.name()]);
    assert_eq!(out.code, 1);
}

#[test]
fn delete_force_of_an_unknown_id_succeeds() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let out = kiln(&root, &["delete", "--force", "kiln-t-never-created"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn delete_of_an_unknown_id_fails() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let out = kiln(&root, &["delete", "kiln-t-never-created"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("does not exist"), "stderr: {}", out.stderr);
}

#[test]
fn kill_all_signals_every_process_in_the_container() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let pid = start_running(&root, &bundle, &["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    assert!(eventually(|| cgroup_pids(&bundle).len() == 3), "pids: {:?}", cgroup_pids(&bundle));
    let pids = cgroup_pids(&bundle);
    kiln_ok(&root, &["kill", "--all", bundle.name(), "KILL"]);
    assert!(eventually(|| cgroup_pids(&bundle).is_empty()), "left: {:?}", cgroup_pids(&bundle));
    for p in pids {
        assert!(!is_alive(p), "process {p} survived kill --all");
    }
    assert!(!is_alive(pid));
}

#[test]
fn pause_freezes_the_cgroup_and_resume_thaws_it() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    start_running(&root, &bundle, &["/bin/probe", "sleep", "30"]);
    let freezer = cgroup_dir(&bundle, "freezer").join("freezer.state");
    let read = || std::fs::read_to_string(&freezer).unwrap_or_default().trim().to_owned();
    kiln_ok(&root, &["pause", bundle.name()]);
    assert_eq!(status(&root, bundle.name()), "paused");
    assert_eq!(read(), "FROZEN");
    kiln_ok(&root, &["resume", bundle.name()]);
    assert_eq!(status(&root, bundle.name()), "running");
    assert_eq!(read(), "THAWED");
}

#[test]
fn exec_runs_in_the_container_and_sees_its_hostname() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let mut config = bundle.config(&["/bin/probe", "sleep", "30"]);
    config["hostname"] = "kiln-exec-host".into();
    create(&root, &bundle, &config);
    kiln_ok(&root, &["start", bundle.name()]);
    let out = kiln_ok(&root, &["exec", bundle.name(), "hostname"]);
    assert_eq!(out, "kiln-exec-host\n");
}

#[test]
fn exec_into_a_no_pivot_container_sees_the_container_root() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    std::fs::write(bundle.rootfs().join("marker"), "inside\n").expect("marker");
    bundle.write_config(&bundle.config(&["/bin/probe", "sleep", "30"]));
    let out = kiln_leaving_process(
        &root,
        &["create", "--no-pivot", "--bundle", path_arg(bundle.path()), bundle.name()],
    );
    assert_eq!(out.code, 0, "create --no-pivot failed: {}", out.stderr);
    kiln_ok(&root, &["start", bundle.name()]);
    let out = kiln_ok(&root, &["exec", bundle.name(), "cat", "/marker"]);
    assert_eq!(out, "inside\n");
}

#[test]
fn exec_returns_the_exit_code_of_the_process() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    start_running(&root, &bundle, &["/bin/probe", "sleep", "30"]);
    let out = kiln(&root, &["exec", bundle.name(), "sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
}

#[test]
fn exec_env_flag_sets_a_variable() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    start_running(&root, &bundle, &["/bin/probe", "sleep", "30"]);
    let out = kiln_ok(&root, &["exec", "--env", "FOO=bar", bundle.name(), "sh", "-c", "echo $FOO"]);
    assert_eq!(out, "bar\n");
}

#[test]
fn exec_cwd_flag_sets_the_working_directory() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    start_running(&root, &bundle, &["/bin/probe", "sleep", "30"]);
    let out = kiln_ok(&root, &["exec", "--cwd", "/tmp", bundle.name(), "pwd"]);
    assert_eq!(out, "/tmp\n");
}

#[test]
fn exec_user_flag_sets_uid_and_gid() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    start_running(&root, &bundle, &["/bin/probe", "sleep", "30"]);
    let out =
        kiln_ok(&root, &["exec", "--user", "1000:1000", bundle.name(), "sh", "-c", "id -u; id -g"]);
    assert_eq!(out, "1000\n1000\n");
}

#[test]
fn exec_detach_returns_at_once_and_the_process_runs_in_the_container() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let init = start_running(&root, &bundle, &["/bin/probe", "sleep", "30"]);
    let pid_file = bundle.path().join("exec.pid");
    let started = Instant::now();
    let out = kiln_leaving_process(
        &root,
        &[
            "exec",
            "--detach",
            "--pid-file",
            path_arg(&pid_file),
            bundle.name(),
            "/bin/probe",
            "sleep",
            "30",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(5), "exec --detach waited for the process");
    let text = std::fs::read_to_string(&pid_file).expect("pid file written");
    let pid: i32 = text.trim().parse().unwrap_or_else(|e| panic!("pid file {text:?}: {e}"));
    assert_ne!(pid, init);
    assert!(is_alive(pid), "the exec'd process is not running");
    assert_eq!(ns_link(pid, "pid"), ns_link(init, "pid"));
    assert_eq!(ns_link(pid, "mnt"), ns_link(init, "mnt"));
    assert!(cgroup_pids(&bundle).contains(&pid), "the exec'd process is not in the cgroup");
}

#[test]
fn exec_process_file_runs_the_process_it_describes() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    start_running(&root, &bundle, &["/bin/probe", "sleep", "30"]);
    let process = json!({
        "terminal": false,
        "user": { "uid": 1000, "gid": 1000 },
        "args": ["sh", "-c", "echo $GREETING from $(pwd) as $(id -u)"],
        "env": ["PATH=/bin", "GREETING=hello"],
        "cwd": "/tmp"
    });
    let file = bundle.path().join("process.json");
    std::fs::write(&file, process.to_string()).expect("write process.json");
    let out = kiln_ok(&root, &["exec", "--process", path_arg(&file), bundle.name()]);
    assert_eq!(out, "hello from /tmp as 1000\n");
}

#[test]
fn list_shows_a_running_container_as_table_and_json() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let pid = start_running(&root, &bundle, &["/bin/probe", "sleep", "30"]);
    let table = kiln_ok(&root, &["list"]);
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(bundle.name()))
        .unwrap_or_else(|| panic!("no row for the container in:\n{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], pid.to_string());
    assert_eq!(cells[2], "running");
    assert!(table.starts_with("ID"), "table has a header:\n{table}");

    let text = kiln_ok(&root, &["list", "--format", "json"]);
    let list: Value = serde_json::from_str(&text).expect("list --format json is JSON");
    let entry = list
        .as_array()
        .expect("an array")
        .iter()
        .find(|c| c["id"] == bundle.name())
        .unwrap_or_else(|| panic!("no entry for the container in {text}"));
    assert_eq!(entry["status"], "running");
    assert_eq!(entry["pid"], pid);
}

#[test]
fn ps_lists_the_container_processes() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let pid = start_running(&root, &bundle, &["/bin/probe", "sleep", "30"]);
    let text = kiln_ok(&root, &["ps", "--format", "json", bundle.name()]);
    let pids: Vec<i32> = serde_json::from_str(&text).expect("ps --format json is a pid array");
    assert_eq!(pids, [pid]);

    let table = kiln_ok(&root, &["ps", bundle.name()]);
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    let column = header.split_whitespace().position(|h| h == "PID").expect("a PID column");
    let listed: Vec<&str> = lines.filter_map(|l| l.split_whitespace().nth(column)).collect();
    assert_eq!(listed, [pid.to_string()], "table:\n{table}");
}

#[test]
fn features_reports_oci_versions_and_namespaces() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let text = kiln_ok(&root, &["features"]);
    let features: Value = serde_json::from_str(&text).expect("features is JSON");
    assert_eq!(features["ociVersionMin"], "1.0.0");
    let max = features["ociVersionMax"].as_str().expect("ociVersionMax");
    assert!(max.starts_with("1.3"), "ociVersionMax {max}");
    let namespaces = features["linux"]["namespaces"].as_array().expect("namespaces");
    for ns in ["time", "user", "pid", "mount"] {
        assert!(namespaces.iter().any(|n| n == ns), "{ns} missing from {namespaces:?}");
    }
}

#[test]
fn spec_writes_a_config_that_runs() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let config_path = bundle.path().join("config.json");
    let _ = std::fs::remove_file(&config_path);
    kiln_ok(&root, &["spec", "--bundle", path_arg(bundle.path())]);
    let text = std::fs::read_to_string(&config_path).expect("spec wrote config.json");
    let mut config: Value = serde_json::from_str(&text).expect("config.json is JSON");
    config["process"]["args"] = json!(["true"]);
    config["process"]["terminal"] = false.into();
    config["root"]["path"] = path_arg(&bundle.rootfs()).into();
    config["linux"]["cgroupsPath"] = format!("/kiln-t/{}", bundle.name()).into();
    let out = run(&root, &bundle, &config);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    let again = kiln(&root, &["spec", "--bundle", path_arg(bundle.path())]);
    assert_eq!(again.code, 1, "spec overwrote config.json");
    assert!(again.stderr.contains("exists"), "stderr: {}", again.stderr);
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("config.json"))
            .expect("JSON");
    assert_eq!(kept["process"]["args"], json!(["true"]), "config.json was replaced");
}

#[test]
fn run_detach_returns_with_the_container_running() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    bundle.write_config(&bundle.config(&["/bin/probe", "sleep", "30"]));
    let started = Instant::now();
    let out = kiln_leaving_process(
        &root,
        &["run", "--detach", "--bundle", path_arg(bundle.path()), bundle.name()],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(5), "run --detach waited for the process");
    assert_eq!(status(&root, bundle.name()), "running");
    let pid = pid_of(&root, bundle.name());
    assert!(is_alive(pid));
    kiln_ok(&root, &["kill", bundle.name(), "KILL"]);
    assert!(eventually(|| !is_alive(pid)));
    kiln_ok(&root, &["delete", bundle.name()]);
    assert_cleaned_up(&root, &bundle, pid);
}

#[test]
fn kiln_runtime_link_behaves_like_kiln_runtime() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let dir = kiln_testing::ScratchDir::new().expect("scratch dir");
    let link = dir.path().join("kiln-runtime");
    std::os::unix::fs::symlink(kiln_testing::kiln_bin(), &link).expect("symlink");
    let linked = std::process::Command::new(&link)
        .arg("--root")
        .arg(root.path())
        .args(["state", "kiln-t-nope"])
        .output()
        .expect("kiln-runtime runs");
    let direct = kiln(&root, &["state", "kiln-t-nope"]);
    assert_eq!(linked.status.code(), Some(1));
    assert_eq!(direct.code, 1);
    assert_eq!(String::from_utf8_lossy(&linked.stderr), direct.stderr);
    assert!(direct.stderr.contains("does not exist"), "stderr: {}", direct.stderr);

    let features =
        std::process::Command::new(&link).arg("features").output().expect("kiln-runtime runs");
    assert_eq!(features.status.code(), Some(0));
    let features: Value = serde_json::from_slice(&features.stdout).expect("features is JSON");
    assert_eq!(features["ociVersionMin"], "1.0.0");
}

#[test]
fn every_supported_oci_version_runs() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    for version in ["1.0.0", "1.1.0", "1.2.0", "1.3.0"] {
        let mut config = bundle.config(&["/bin/probe", "echo", version]);
        config["ociVersion"] = version.into();
        let out = run(&root, &bundle, &config);
        assert_eq!(out.code, 0, "ociVersion {version}: {}", out.stderr);
        assert_eq!(out.stdout, format!("{version}\n"));
    }
}

#[test]
fn systemd_cgroup_flag_is_refused_naming_systemd() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let out = kiln(&root, &["--systemd-cgroup", "list"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("systemd"), "stderr: {}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {}", out.stderr);
}

#[test]
fn log_flag_writes_failures_as_json_lines() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let dir = kiln_testing::ScratchDir::new().expect("scratch dir");
    let log = dir.path().join("runtime.log");
    let out =
        kiln(&root, &["--log", path_arg(&log), "--log-format", "json", "state", "kiln-t-nope"]);
    assert_eq!(out.code, 1);
    let text = std::fs::read_to_string(&log).expect("log file written");
    let entry = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e.to_string().contains("does not exist"))
        .unwrap_or_else(|| panic!("no JSON line with the error in {text:?}"));
    assert_eq!(entry["level"], "ERROR", "{entry}");
}
