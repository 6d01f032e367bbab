//! What `kiln runtime` does with bad bundles and bad requests: one clear line
//! on stderr, a non-zero exit code, and nothing left behind (no state dir,
//! no cgroup, no process).

use std::path::Path;

use serde_json::{json, Value};

use crate::common::{
    cgroup_dir, eventually, kiln, kiln_leaving_process, kiln_ok, require_privileged, run, state,
    Bundle, Outcome, RuntimeRoot,
};

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `kiln runtime create` of the bundle (with whatever config.json it has)
/// under the bundle's name.
fn create(root: &RuntimeRoot, bundle: &Bundle) -> Outcome {
    kiln_leaving_process(root, &["create", "--bundle", path_arg(bundle.path()), bundle.name()])
}

/// `create` of `config`, which must fail.
fn create_config(root: &RuntimeRoot, bundle: &Bundle, config: &Value) -> Outcome {
    bundle.write_config(config);
    create(root, bundle)
}

/// The command failed with `code` and said so in one line on stderr that
/// contains every one of `needles`.
fn assert_error(out: &Outcome, code: i32, needles: &[&str]) {
    assert_eq!(out.code, code, "exit code; stdout {:?} stderr {:?}", out.stdout, out.stderr);
    let stderr = out.stderr.trim_end();
    assert_eq!(stderr.lines().count(), 1, "want one line of error, got:\n{stderr}");
    for needle in needles {
        assert!(
            stderr.to_lowercase().contains(&needle.to_lowercase()),
            "{needle:?} missing from the error: {stderr}"
        );
    }
}

/// No state dir under the root, no cgroup for the bundle's name, and no
/// process that belongs to the bundle.
fn assert_nothing_left(root: &RuntimeRoot, bundle: &Bundle) {
    let dirs: Vec<_> = std::fs::read_dir(root.path())
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(dirs.is_empty(), "state left under the root: {dirs:?}");
    for controller in ["memory", "pids", "cpu", "freezer", "devices"] {
        let dir = cgroup_dir(bundle, controller);
        assert!(!dir.exists(), "cgroup {} is left behind", dir.display());
    }
    assert!(
        eventually(|| bundle_processes(bundle).is_empty()),
        "processes left behind: {:?}",
        bundle_processes(bundle)
    );
}

/// Live processes of the bundle: a runtime process whose command line names
/// it, or a process whose root directory is its rootfs (compared by device
/// and inode, since /proc/PID/root of a pivoted process reads as "/").
fn bundle_processes(bundle: &Bundle) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let id_of = |m: std::fs::Metadata| (m.dev(), m.ino());
    let rootfs = std::fs::metadata(bundle.rootfs()).ok().map(id_of);
    let belongs = |proc: &Path| {
        let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
        let names_bundle = String::from_utf8_lossy(&cmdline).contains(bundle.name());
        let root = std::fs::metadata(proc.join("root/")).ok().map(id_of);
        names_bundle || (rootfs.is_some() && root == rootfs)
    };
    let live = |proc: &Path| {
        let stat = std::fs::read_to_string(proc.join("stat")).unwrap_or_default();
        let after = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
        !matches!(after.trim_start().chars().next(), Some('Z' | 'X') | None)
    };
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let proc = Path::new("/proc").join(pid.to_string());
            belongs(&proc) && live(&proc)
        })
        .collect()
}

fn sleeping(bundle: &Bundle) -> Value {
    bundle.config(&["/bin/probe", "sleep", "30"])
}

#[test]
fn malformed_config_json_is_refused() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    std::fs::write(bundle.path().join("config.json"), "{ this is not json").expect("write");
    let out = create(&root, &bundle);
    assert_error(&out, 1, &["invalid", "config.json"]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn unknown_oci_version_is_refused() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let mut config = sleeping(&bundle);
    config["ociVersion"] = "2.0.0".into();
    let out = create_config(&root, &bundle, &config);
    assert_error(&out, 1, &["ociVersion", "2.0.0"]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn missing_config_json_is_refused() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let out = create(&root, &bundle);
    assert_error(&out, 1, &["config.json", "no such file"]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn missing_rootfs_is_refused() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let mut config = sleeping(&bundle);
    config["root"]["path"] = "no-such-rootfs".into();
    let out = create_config(&root, &bundle, &config);
    assert_error(&out, 1, &["no-such-rootfs", "does not exist"]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn unknown_namespace_type_is_refused() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let mut config = sleeping(&bundle);
    config["linux"]["namespaces"].as_array_mut().expect("namespaces").push(json!({"type": "pidd"}));
    let out = create_config(&root, &bundle, &config);
    assert_error(&out, 1, &["pidd"]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn ids_that_are_not_one_path_component_are_refused() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    bundle.write_config(&sleeping(&bundle));
    for id in ["a/b", "..", "."] {
        let out = kiln_leaving_process(&root, &["create", "--bundle", path_arg(bundle.path()), id]);
        assert_error(&out, 1, &["invalid container id"]);
        let out = kiln(&root, &["state", id]);
        assert_error(&out, 1, &["invalid container id"]);
    }
    assert_nothing_left(&root, &bundle);
}

#[test]
fn duplicate_id_is_refused_and_the_first_container_still_works() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let first = create_config(&root, &bundle, &sleeping(&bundle));
    assert_eq!(first.code, 0, "{}", first.stderr);
    let pid = state(&root, bundle.name())["pid"].clone();
    let pid_number = pid.as_i64().and_then(|p| i32::try_from(p).ok()).expect("pid");
    assert!(bundle_processes(&bundle).contains(&pid_number), "the leftover check sees containers");

    let second = create(&root, &bundle);
    assert_error(&second, 1, &["already exists", bundle.name()]);

    assert_eq!(state(&root, bundle.name())["pid"], pid, "the first container was replaced");
    assert!(cgroup_dir(&bundle, "memory").is_dir(), "the first container lost its cgroup");
    kiln_ok(&root, &["start", bundle.name()]);
    assert_eq!(state(&root, bundle.name())["status"], "running");
    assert!(bundle_processes(&bundle).contains(&pid_number), "the check sees started ones too");
    kiln_ok(&root, &["delete", "--force", bundle.name()]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn missing_executable_path_exits_127() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let out = run(&root, &bundle, &bundle.config(&["/bin/nope"]));
    assert_error(&out, 127, &["/bin/nope", "no such file"]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn missing_executable_name_exits_127() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let out = run(&root, &bundle, &bundle.config(&["nope"]));
    assert_error(&out, 127, &["nope", "executable file not found"]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn create_of_a_missing_executable_fails_and_leaves_nothing() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let out = create_config(&root, &bundle, &bundle.config(&["nope"]));
    assert_error(&out, 127, &["nope", "executable file not found"]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn start_of_a_running_container_fails() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let created = create_config(&root, &bundle, &sleeping(&bundle));
    assert_eq!(created.code, 0, "{}", created.stderr);
    kiln_ok(&root, &["start", bundle.name()]);
    let out = kiln(&root, &["start", bundle.name()]);
    assert_error(&out, 1, &["running", bundle.name()]);
    assert_eq!(state(&root, bundle.name())["status"], "running");
}

#[test]
fn start_of_an_unknown_container_fails() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let out = kiln(&root, &["start", bundle.name()]);
    assert_error(&out, 1, &["does not exist", bundle.name()]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn kill_of_a_stopped_container_fails() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let created = create_config(&root, &bundle, &bundle.config(&["true"]));
    assert_eq!(created.code, 0, "{}", created.stderr);
    kiln_ok(&root, &["start", bundle.name()]);
    assert!(eventually(|| state(&root, bundle.name())["status"] == "stopped"));
    let out = kiln(&root, &["kill", bundle.name(), "KILL"]);
    assert_error(&out, 1, &["stopped", bundle.name()]);
    kiln_ok(&root, &["delete", bundle.name()]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn rlimit_above_what_the_kernel_allows_fails_naming_it() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    // Above fs.nr_open no one may raise RLIMIT_NOFILE, not even root with
    // CAP_SYS_RESOURCE (which, as test runners often lack it, would make
    // 1048576 fail here too).
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .expect("read nr_open")
        .trim()
        .parse()
        .expect("nr_open is a number");
    let mut config = sleeping(&bundle);
    config["process"]["rlimits"] =
        json!([{ "type": "RLIMIT_NOFILE", "hard": nr_open + 1, "soft": nr_open + 1 }]);
    let out = create_config(&root, &bundle, &config);
    assert_error(&out, 1, &["RLIMIT_NOFILE"]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn unknown_capability_is_refused_by_name() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let mut config = sleeping(&bundle);
    config["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .expect("bounding")
        .push("CAP_NOPE".into());
    let out = create_config(&root, &bundle, &config);
    assert_error(&out, 1, &["CAP_NOPE"]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn relative_cwd_is_refused() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let mut config = sleeping(&bundle);
    config["process"]["cwd"] = "tmp".into();
    let out = create_config(&root, &bundle, &config);
    assert_error(&out, 1, &["cwd", "absolute"]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn cwd_missing_from_the_rootfs_is_refused_naming_it() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let mut config = sleeping(&bundle);
    config["process"]["cwd"] = "/no/such/dir".into();
    let out = create_config(&root, &bundle, &config);
    assert_error(&out, 1, &["/no/such/dir"]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn terminal_without_console_socket_is_refused_on_create() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let mut config = sleeping(&bundle);
    config["process"]["terminal"] = true.into();
    let out = create_config(&root, &bundle, &config);
    assert_error(&out, 1, &["terminal", "--console-socket"]);
    assert_nothing_left(&root, &bundle);
}

#[test]
fn mount_without_type_is_refused() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let bundle = Bundle::busybox();
    let mut config = sleeping(&bundle);
    config["mounts"]
        .as_array_mut()
        .expect("mounts")
        .push(json!({ "destination": "/mnt", "source": "none" }));
    let out = create_config(&root, &bundle, &config);
    assert_error(&out, 1, &["/mnt", "no type"]);
    assert_nothing_left(&root, &bundle);
}
