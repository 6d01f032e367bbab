//! What a container sees, checked against its config.json: namespaces,
//! mounts, devices, the process's identity and limits, sysctls, cgroups and
//! user namespaces, as the probe inside reports them.

use std::path::Path;

use kiln_testing::{unique_name, ScratchDir};
use serde_json::{json, Value};

use crate::common::*;

/// The report's mount at `point` (the last one, as the container sees it).
fn mount_at<'a>(report: &'a Value, point: &str) -> Option<&'a Value> {
    report["mounts"].as_array()?.iter().rev().find(|m| m["mount_point"] == point)
}

/// The per-mount options ("ro,nosuid,...") of a mount in a report, without
/// the superblock's.
fn mount_is_read_only(mount: &Value) -> bool {
    mount["options"].as_str().and_then(|o| o.split(',').next()) == Some("ro")
}

fn without_namespace(config: &mut Value, kind: &str) {
    let namespaces = config["linux"]["namespaces"].as_array_mut().expect("namespaces");
    namespaces.retain(|ns| ns["type"] != kind);
}

fn add_namespace(config: &mut Value, namespace: Value) {
    config["linux"]["namespaces"].as_array_mut().expect("namespaces").push(namespace);
}

fn read_trimmed(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// The path of this process's own cgroup in one v1 hierarchy ("/" or
/// "/process_api/…").
fn own_cgroup(controller: &str) -> String {
    read_trimmed("/proc/self/cgroup")
        .lines()
        .find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, names, path) = (fields.next()?, fields.next()?, fields.next()?);
            names.split(',').any(|n| n == controller).then(|| path.to_owned())
        })
        .unwrap_or_else(|| panic!("this process is in no {controller} cgroup"))
}

/// The cgroup a (host) process is in for one v1 controller.
fn cgroup_of(pid: i32, controller: &str) -> String {
    read_trimmed(format!("/proc/{pid}/cgroup"))
        .lines()
        .find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, names, path) = (fields.next()?, fields.next()?, fields.next()?);
            names.split(',').any(|n| n == controller).then(|| path.to_owned())
        })
        .unwrap_or_else(|| panic!("process {pid} is in no {controller} cgroup"))
}

// ---------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------

#[test]
fn container_has_the_configured_hostname_and_domainname() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |c| {
        c["hostname"] = json!("kiln-t-host");
        c["domainname"] = json!("kiln.example");
    });
    assert_eq!(report["hostname"], "kiln-t-host");
    assert_eq!(report["domainname"], "kiln.example");
}

#[test]
fn listed_namespaces_are_new_ones_not_the_hosts() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |_| {});
    for kind in ["pid", "net", "ipc", "uts", "mnt"] {
        let inside = report["namespaces"][kind].as_str().expect(kind);
        assert_ne!(inside, host_namespace(kind), "{kind} namespace is the host's");
    }
}

#[test]
fn namespace_left_out_of_the_config_is_shared_with_the_host() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |c| without_namespace(c, "network"));
    assert_eq!(report["namespaces"]["net"], host_namespace("net"));
    assert_ne!(report["namespaces"]["uts"], host_namespace("uts"));
}

#[test]
fn network_namespace_given_by_path_is_joined() {
    require_privileged!();
    let root = RuntimeRoot::new();
    let (first, second) = (Bundle::busybox(), Bundle::busybox());
    let pid = start_detached(&root, &first, &first.config(&["/bin/probe", "sleep", "30"]));
    let path = format!("/proc/{pid}/ns/net");
    let first_net = std::fs::read_link(&path).expect("first container's net namespace");

    let report = probe_report(&root, &second, |c| {
        without_namespace(c, "network");
        add_namespace(c, json!({ "type": "network", "path": path }));
    });
    assert_eq!(report["namespaces"]["net"], first_net.to_string_lossy().as_ref());
    assert_ne!(report["namespaces"]["net"], host_namespace("net"));
    // Only the network namespace is shared.
    assert_ne!(
        report["namespaces"]["uts"],
        std::fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap().to_string_lossy().as_ref()
    );
}

#[test]
fn cgroup_namespace_shows_the_containers_cgroup_as_root() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |c| add_namespace(c, json!({ "type": "cgroup" })));
    assert_ne!(report["namespaces"]["cgroup"], host_namespace("cgroup"));
    let cgroup = report["cgroup"].as_str().expect("cgroup");
    assert!(!cgroup.is_empty());
    for line in cgroup.lines() {
        assert!(line.ends_with(":/"), "cgroup line {line:?} is not the namespace root:\n{cgroup}");
    }
    // Without one, the container sees where the runtime put it.
    let bundle = Bundle::busybox();
    let report = probe_report(&root, &bundle, |_| {});
    let memory = format!(":memory:/kiln-t/{}", bundle.name());
    assert!(report["cgroup"].as_str().unwrap().contains(&memory), "{}", report["cgroup"]);
}

#[test]
fn time_namespace_offsets_shift_the_containers_clocks() {
    require_privileged!();
    if !Path::new("/proc/self/ns/time").exists() {
        eprintln!("skipped: this kernel has no time namespaces (/proc/self/ns/time is missing)");
        return;
    }
    const YEAR: i64 = 86_400 * 365;
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let out = run_args(&root, &bundle, &["/bin/probe", "cat", "/proc/uptime"], |c| {
        add_namespace(c, json!({ "type": "time" }));
        c["linux"]["timeOffsets"] = json!({
            "monotonic": { "secs": YEAR, "nanosecs": 0 },
            "boottime": { "secs": YEAR, "nanosecs": 0 }
        });
    });
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let inside: f64 = out.stdout.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap();
    let host: f64 =
        read_trimmed("/proc/uptime").split_whitespace().next().unwrap().parse().unwrap();
    assert!(inside >= YEAR as f64, "uptime inside is {inside}, expected at least {YEAR}");
    assert!((inside - host - YEAR as f64).abs() < 60.0, "inside {inside}, host {host}");
}

#[test]
fn container_process_is_pid_1_of_its_namespace() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |_| {});
    assert_eq!(report["pid"], 1);
    assert_eq!(report["ppid"], 0);
}

#[test]
fn user_namespace_maps_root_to_the_configured_host_range() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let status = std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(bundle.rootfs())
        .status()
        .expect("chown runs");
    assert!(status.success(), "chown -R of the rootfs failed");
    let mut config = bundle.config(&["/bin/probe", "report"]);
    add_namespace(&mut config, json!({ "type": "user" }));
    let mapping = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    config["linux"]["uidMappings"] = mapping.clone();
    config["linux"]["gidMappings"] = mapping;
    let out = run(&root, &bundle, &config);
    if out.code != 0 && out.stderr.contains("cannot create user namespace") {
        eprintln!("skipped: the kernel refuses user namespaces: {}", out.stderr);
        return;
    }
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("report");
    let normal = |v: &Value| -> Vec<String> {
        v.as_str().unwrap_or("").split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(normal(&report["uid_map"]), ["0", "100000", "65536"]);
    assert_eq!(normal(&report["gid_map"]), ["0", "100000", "65536"]);
    assert_eq!((report["uid"].as_i64(), report["gid"].as_i64()), (Some(0), Some(0)));
    assert_ne!(report["namespaces"]["user"], host_namespace("user"));
}

// ---------------------------------------------------------------------------
// Mounts
// ---------------------------------------------------------------------------

#[test]
fn standard_mounts_have_their_filesystem_types() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |_| {});
    for (point, fstype) in [
        ("/", None),
        ("/proc", Some("proc")),
        ("/dev", Some("tmpfs")),
        ("/dev/pts", Some("devpts")),
        ("/dev/shm", Some("tmpfs")),
        ("/dev/mqueue", Some("mqueue")),
        ("/sys", Some("sysfs")),
    ] {
        let mount = mount_at(&report, point)
            .unwrap_or_else(|| panic!("no mount at {point}: {}", report["mounts"]));
        if let Some(fstype) = fstype {
            assert_eq!(mount["fstype"], fstype, "{point}");
        }
    }
    assert!(mount_is_read_only(mount_at(&report, "/sys").unwrap()), "/sys is writable");
    assert!(!mount_is_read_only(mount_at(&report, "/").unwrap()), "/ is read-only");
    assert!(mount_at(&report, "/sys/fs/cgroup").is_some(), "no /sys/fs/cgroup");
    let memory = mount_at(&report, "/sys/fs/cgroup/memory").expect("memory cgroup mounted");
    assert_eq!(memory["fstype"], "cgroup");
    // Nothing of the host's mount table is left above the rootfs.
    let points: Vec<&str> = report["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["mount_point"].as_str())
        .collect();
    assert!(!points.iter().any(|p| p.starts_with("/tmp/kiln-t-")), "{points:?}");
}

#[test]
fn read_only_bind_mount_shows_host_files_and_refuses_writes() {
    require_privileged!();
    let (root, bundle, data) = (RuntimeRoot::new(), Bundle::busybox(), ScratchDir::new().unwrap());
    std::fs::write(data.path().join("hello"), "from the host\n").unwrap();
    let script = "cat /data/hello && /bin/probe write /data/new text";
    let out = run_args(&root, &bundle, &["/bin/sh", "-c", script], |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/data", "type": "bind", "source": data.path(),
            "options": ["rbind", "ro"]
        }));
    });
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("from the host"));
    let write: Value = serde_json::from_str(lines.next().unwrap_or("")).expect("write result");
    assert_eq!(write, json!({ "ok": false, "errno": 30 }), "expected EROFS");
    assert!(!data.path().join("new").exists());
}

#[test]
fn read_write_bind_mount_writes_reach_the_host() {
    require_privileged!();
    let (root, bundle, data) = (RuntimeRoot::new(), Bundle::busybox(), ScratchDir::new().unwrap());
    let write = probe_json(&root, &bundle, &["write", "/data/new", "from the container"], |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/data", "type": "bind", "source": data.path(),
            "options": ["rbind", "rw"]
        }));
    });
    assert_eq!(write, json!({ "ok": true, "errno": 0 }));
    assert_eq!(std::fs::read_to_string(data.path().join("new")).unwrap(), "from the container");
}

#[test]
fn tmpfs_mount_gets_its_size_option() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "size=1m", "mode=700"]
        }));
    });
    let mount = mount_at(&report, "/scratch").expect("tmpfs at /scratch");
    assert_eq!(mount["fstype"], "tmpfs");
    let options = mount["options"].as_str().unwrap();
    assert!(options.contains("size=1024k"), "{options}");
    assert!(options.contains("mode=700"), "{options}");
    assert!(options.split(',').any(|o| o == "nosuid"), "{options}");
}

#[test]
fn read_only_root_refuses_writes() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let write = probe_json(&root, &bundle, &["write", "/new", "x"], |c| {
        c["root"]["readonly"] = json!(true);
    });
    assert_eq!(write, json!({ "ok": false, "errno": 30 }), "expected EROFS");
    assert!(!bundle.rootfs().join("new").exists());
    // The mounts on top of it stay writable.
    let write = probe_json(&root, &bundle, &["write", "/dev/shm/new", "x"], |c| {
        c["root"]["readonly"] = json!(true);
    });
    assert_eq!(write["ok"], true, "{write}");
}

#[test]
fn masked_paths_read_empty_and_readonly_paths_refuse_writes() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let config = bundle.config(&[]);
    assert!(config["linux"]["maskedPaths"].as_array().unwrap().contains(&json!("/proc/kcore")));
    assert!(config["linux"]["readonlyPaths"].as_array().unwrap().contains(&json!("/proc/sys")));

    let script = "/bin/probe cat /proc/kcore | wc -c; ls /proc/acpi 2>/dev/null | wc -l; \
                  /bin/probe write /proc/sys/kernel/domainname x";
    let out = run_args(&root, &bundle, &["/bin/sh", "-c", script], |_| {});
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(lines.first(), Some(&"0"), "/proc/kcore is not empty: {}", out.stdout);
    assert_eq!(lines.get(1), Some(&"0"), "/proc/acpi is not empty: {}", out.stdout);
    let write: Value = serde_json::from_str(lines.get(2).unwrap_or(&"")).expect("write result");
    assert_eq!(write, json!({ "ok": false, "errno": 30 }), "expected EROFS");
}

// ---------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------

#[test]
fn default_devices_and_dev_links_exist() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let script = "stat -c '%n %F %t:%T %a' /dev/null /dev/zero /dev/full /dev/random \
                  /dev/urandom /dev/tty && for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done \
                  && echo written > /dev/null && echo ok";
    let out = run_args(&root, &bundle, &["/bin/sh", "-c", script], |_| {});
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let expected = "/dev/null character special file 1:3 666
/dev/zero character special file 1:5 666
/dev/full character special file 1:7 666
/dev/random character special file 1:8 666
/dev/urandom character special file 1:9 666
/dev/tty character special file 5:0 666
/proc/self/fd
/proc/self/fd/0
/proc/self/fd/1
/proc/self/fd/2
pts/ptmx
ok
";
    assert_eq!(out.stdout, expected);
}

#[test]
fn configured_device_node_has_its_mode_and_owner() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let script = "stat -c '%F %t:%T %a %u:%g' /dev/kiln-null && echo x > /dev/kiln-null && echo ok";
    let out = run_args(&root, &bundle, &["/bin/sh", "-c", script], |c| {
        c["linux"]["devices"] = json!([{
            "path": "/dev/kiln-null", "type": "c", "major": 1, "minor": 3,
            "fileMode": 0o600, "uid": 1000, "gid": 1000
        }]);
    });
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "character special file 1:3 600 1000:1000\nok\n");
}

// ---------------------------------------------------------------------------
// The process
// ---------------------------------------------------------------------------

#[test]
fn process_runs_as_the_configured_user_and_groups() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |c| {
        c["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [10, 20] });
    });
    for key in ["uid", "euid", "suid", "gid", "egid"] {
        assert_eq!(report[key], 1000, "{key}");
    }
    assert_eq!(report["groups"], json!([10, 20]));
    assert!(report["env"].as_array().unwrap().contains(&json!("HOME=/home/kiln")));
}

#[test]
fn umask_is_the_configured_one() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |c| c["process"]["user"]["umask"] = json!(0o077));
    assert_eq!(report["umask"], "0077");
    let bundle = Bundle::busybox();
    let report = probe_report(&root, &bundle, |_| {});
    assert_eq!(report["umask"], "0022", "default umask");
}

#[test]
fn environment_and_working_directory_are_the_configured_ones() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |c| {
        c["process"]["env"] = json!(["PATH=/bin", "KILN_T=two words", "EMPTY="]);
        c["process"]["cwd"] = json!("/home/kiln");
    });
    assert_eq!(report["cwd"], "/home/kiln");
    let mut env: Vec<&str> =
        report["env"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    env.sort_unstable();
    assert_eq!(env, ["EMPTY=", "HOME=/root", "KILN_T=two words", "PATH=/bin"]);
}

#[test]
fn capability_sets_are_exactly_the_configured_ones() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let config = bundle.config(&[]);
    let names: Vec<&str> = config["process"]["capabilities"]["effective"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let report = probe_report(&root, &bundle, |_| {});
    let expected = cap_hex(&names);
    assert_eq!(expected, "00000000a80425fb", "Docker's default set");
    for set in ["cap_eff", "cap_prm", "cap_bnd"] {
        assert_eq!(report[set], expected, "{set}");
    }
    assert_eq!(report["cap_inh"], cap_hex(&[]));
    assert_eq!(report["cap_amb"], cap_hex(&[]));
}

#[test]
fn reduced_capability_set_leaves_only_that_capability() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |c| {
        let only = json!(["CAP_KILL"]);
        c["process"]["capabilities"] =
            json!({ "bounding": only, "effective": only, "permitted": only });
    });
    for set in ["cap_eff", "cap_prm", "cap_bnd"] {
        assert_eq!(report[set], "0000000000000020", "{set}");
    }
}

#[test]
fn ambient_capabilities_reach_a_non_root_process() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |c| {
        c["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
        let set = json!(["CAP_NET_BIND_SERVICE"]);
        c["process"]["capabilities"] = json!({
            "bounding": set, "effective": set, "permitted": set,
            "inheritable": set, "ambient": set
        });
    });
    let bind = cap_hex(&["CAP_NET_BIND_SERVICE"]);
    for set in ["cap_amb", "cap_inh", "cap_eff", "cap_prm", "cap_bnd"] {
        assert_eq!(report[set], bind, "{set}");
    }
    assert_eq!(report["uid"], 1000);
}

#[test]
fn no_new_privileges_is_set_only_when_configured() {
    require_privileged!();
    let root = RuntimeRoot::new();
    for wanted in [true, false] {
        let bundle = Bundle::busybox();
        let report =
            probe_report(&root, &bundle, |c| c["process"]["noNewPrivileges"] = json!(wanted));
        assert_eq!(report["no_new_privs"], wanted);
    }
}

#[test]
fn rlimits_are_the_configured_ones() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |c| {
        c["process"]["rlimits"] = json!([
            { "type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024 },
            { "type": "RLIMIT_NPROC", "soft": 100, "hard": 200 }
        ]);
    });
    assert_eq!(report["rlimits"]["NOFILE"], json!(["512", "1024"]));
    assert_eq!(report["rlimits"]["NPROC"], json!(["100", "200"]));
}

#[test]
fn oom_score_adj_is_the_configured_one() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let report = probe_report(&root, &bundle, |c| c["process"]["oomScoreAdj"] = json!(500));
    assert_eq!(report["oom_score_adj"], 500);
}

// ---------------------------------------------------------------------------
// Sysctls
// ---------------------------------------------------------------------------

#[test]
fn sysctl_is_set_in_the_containers_network_namespace_only() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let host_path = "/proc/sys/net/ipv4/ip_forward";
    let before = read_trimmed(host_path);
    let wanted = if before == "1" { "0" } else { "1" };
    let out = run_args(&root, &bundle, &["/bin/probe", "cat", host_path], |c| {
        c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": wanted });
    });
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.trim(), wanted);
    assert_eq!(read_trimmed(host_path), before, "the host's ip_forward changed");
}

// ---------------------------------------------------------------------------
// Cgroups
// ---------------------------------------------------------------------------

#[test]
fn resource_limits_are_written_to_the_containers_cgroup() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let mut config = bundle.config(&["/bin/probe", "sleep", "30"]);
    config["linux"]["resources"] = json!({
        "memory": { "limit": 64 * 1024 * 1024 },
        "pids": { "limit": 20 },
        "cpu": { "quota": 50000, "period": 100000, "shares": 512 }
    });
    let pid = start_detached(&root, &bundle, &config);
    let file =
        |controller: &str, name: &str| read_trimmed(cgroup_dir(&bundle, controller).join(name));
    assert_eq!(file("memory", "memory.limit_in_bytes"), (64 * 1024 * 1024).to_string());
    assert_eq!(file("pids", "pids.max"), "20");
    assert_eq!(file("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(file("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(file("cpu", "cpu.shares"), "512");
    for controller in ["memory", "pids", "cpu"] {
        assert!(
            file(controller, "cgroup.procs").lines().any(|p| p == pid.to_string()),
            "container process {pid} is not in its {controller} cgroup"
        );
        assert_eq!(cgroup_of(pid, controller), format!("/kiln-t/{}", bundle.name()));
    }
}

#[test]
fn pids_limit_stops_a_process_from_forking_past_it() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let script = "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait";
    let out = run_args(&root, &bundle, &["/bin/sh", "-c", script], |c| {
        c["linux"]["resources"] = json!({ "pids": { "limit": 5 } });
    });
    assert!(
        out.stderr.contains("can't fork")
            || out.stderr.contains("Resource temporarily unavailable"),
        "8 children under a pids limit of 5 did not fail to fork: exit {}, {}{}",
        out.code,
        out.stdout,
        out.stderr
    );
}

#[test]
fn absolute_cgroups_path_starts_at_the_hierarchy_root() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let path = format!("/{}-abs/{}", unique_name(), bundle.name());
    let mut config = bundle.config(&["/bin/probe", "sleep", "30"]);
    config["linux"]["cgroupsPath"] = json!(path);
    let pid = start_detached(&root, &bundle, &config);
    for controller in ["memory", "pids"] {
        assert_eq!(cgroup_of(pid, controller), path, "{controller}");
        let dir = Path::new("/sys/fs/cgroup").join(controller).join(&path[1..]);
        assert!(dir.is_dir(), "{} is missing", dir.display());
    }
    kiln_ok(&root, &["delete", "--force", bundle.name()]);
    // The parent the runtime made for the path may stay, like runc's; remove it.
    for controller in ["memory", "pids"] {
        let parent = Path::new("/sys/fs/cgroup").join(controller).join(&path[1..]);
        if let Some(parent) = parent.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[test]
fn relative_cgroups_path_is_under_the_runtimes_own_cgroup() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let relative = format!("kiln-t-rel-{}", bundle.name().trim_start_matches("kiln-t-"));
    let mut config = bundle.config(&["/bin/probe", "sleep", "30"]);
    config["linux"]["cgroupsPath"] = json!(relative);
    let pid = start_detached(&root, &bundle, &config);
    for controller in ["memory", "pids"] {
        let own = own_cgroup(controller);
        let expected = Path::new(&own).join(&relative);
        assert_eq!(Path::new(&cgroup_of(pid, controller)), expected, "{controller}");
    }
    kiln_ok(&root, &["delete", "--force", bundle.name()]);
    // delete finds the directory in every hierarchy, even where this
    // process's own cgroup differs from one hierarchy to the next.
    for controller in ["memory", "pids", "cpu", "freezer"] {
        let dir = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(own_cgroup(controller).trim_start_matches('/'))
            .join(&relative);
        let left = dir.exists();
        let _ = std::fs::remove_dir(&dir);
        assert!(!left, "delete left {}", dir.display());
    }
}

#[test]
fn device_rules_deny_unlisted_devices_but_keep_the_standard_ones() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    // /dev/net/tun opens without any capability, so only the cgroup can refuse it.
    let script = "echo x > /dev/null && echo null-ok; mknod /tmp/tun c 10 200 && echo mknod-ok; \
                  : < /tmp/tun && echo tun-opened";
    let out = run_args(&root, &bundle, &["/bin/sh", "-c", script], |c| {
        c["linux"]["resources"] = json!({ "devices": [{ "allow": false, "access": "rwm" }] });
    });
    assert_eq!(out.stdout, "null-ok\nmknod-ok\n", "{}", out.stderr);
    assert!(out.stderr.contains("Operation not permitted"), "{}", out.stderr);

    // The same node opens where the config sets no device rules.
    let bundle = Bundle::busybox();
    let out = run_args(&root, &bundle, &["/bin/sh", "-c", script], |_| {});
    assert_eq!(out.stdout, "null-ok\nmknod-ok\ntun-opened\n", "{}", out.stderr);
}

#[test]
fn rootfs_propagation_is_applied_to_the_container_root() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let mountinfo = |propagation: &str| {
        let out = run_args(&root, &bundle, &["/bin/probe", "cat", "/proc/self/mountinfo"], |c| {
            c["linux"]["rootfsPropagation"] = json!(propagation);
        });
        assert_eq!(out.code, 0, "{}", out.stderr);
        let line = out.stdout.lines().find(|l| l.split(' ').nth(4) == Some("/"));
        line.expect("a mount at /").to_owned()
    };
    assert!(mountinfo("shared").contains(" shared:"), "root is not shared");
    assert!(!mountinfo("private").contains(" shared:"), "root is still shared");
}

#[test]
fn annotations_are_kept_in_the_state() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let mut config = bundle.config(&["/bin/probe", "sleep", "30"]);
    config["annotations"] = json!({ "org.example.kiln-test": "yes" });
    start_detached(&root, &bundle, &config);
    let state = state(&root, bundle.name());
    assert_eq!(state["annotations"]["org.example.kiln-test"], "yes");
    kiln_ok(&root, &["delete", "--force", bundle.name()]);
}
