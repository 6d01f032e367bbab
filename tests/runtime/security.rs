//! Attacks on the runtime from inside a container, each of which must fail:
//! overwriting the runtime's binary (CVE-2019-5736), leaked descriptors and
//! working directories (CVE-2024-21626), symlinks in mount paths
//! (CVE-2021-30465), and the walls themselves (seccomp, capabilities, pid
//! namespace).

use std::io::{Read as _, Seek as _};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use kiln_testing::{kiln_bin, unique_name, ScratchDir};
use serde_json::{json, Value};

use crate::common::*;

/// The probe's JSON lines of a shell script's output, in order.
fn json_lines(out: &Outcome) -> Vec<Value> {
    out.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn try_result(errno: i64, name: &str) -> Value {
    json!({ "syscall": name, "ok": errno == 0, "errno": errno })
}

/// The host's mount points, from its mountinfo.
fn host_mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .collect()
}

fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname").trim().to_owned()
}

// ---------------------------------------------------------------------------
// CVE-2019-5736: overwriting the runtime binary through /proc/PID/exe
// ---------------------------------------------------------------------------

/// Runs `probe exe-attack SECS` in `bundle` (as root, with CAP_SYS_PTRACE)
/// while the test keeps exec'ing `exec_args` into it; returns the attacker's
/// report and how many execs ran.
fn attack_while_exec(
    root: &RuntimeRoot,
    bundle: &Bundle,
    secs: &str,
    exec_args: &[&str],
) -> (Value, usize) {
    let mut config = bundle.config(&["/bin/probe", "exe-attack", secs]);
    // With CAP_SYS_PTRACE the attacker can open /proc/PID/exe even of a
    // process that made itself non-dumpable: only the sealed copy stands.
    for set in ["bounding", "effective", "permitted"] {
        let caps = config["process"]["capabilities"][set].as_array_mut().expect("caps");
        caps.push(json!("CAP_SYS_PTRACE"));
    }
    bundle.write_config(&config);
    let id = bundle.name();
    let path = bundle.path().to_str().expect("utf-8 path");
    std::thread::scope(|scope| {
        let attacker = scope.spawn(|| kiln(root, &["run", "--bundle", path, id]));
        let running = eventually(|| {
            let out = kiln(root, &["state", id]);
            out.code == 0 && out.stdout.contains("\"running\"")
        });
        assert!(running, "the attacker container never ran");
        let mut execs = 0;
        for _ in 0..20 {
            if attacker.is_finished() {
                break;
            }
            let mut args = vec!["exec", id];
            args.extend_from_slice(exec_args);
            let out = kiln(root, &args);
            assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
            execs += 1;
        }
        let out = attacker.join().expect("attacker thread");
        assert_eq!(out.code, 0, "exe-attack failed: {}{}", out.stdout, out.stderr);
        let report = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("exe-attack printed no JSON ({e}): {}", out.stdout));
        (report, execs)
    })
}

/// Fails unless the attacker wrote into nothing but files of the container
/// (it may legitimately append to the rootfs's busybox or probe). The
/// runtime's binary shows as a host path, a memfd, or "/" for a detached
/// read-only view: none of them is a file in the rootfs.
fn assert_wrote_only_container_files(report: &Value, bundle: &Bundle) {
    for target in report["written"].as_array().expect("written").iter().filter_map(Value::as_str) {
        let inside = bundle.rootfs().join(target.trim_start_matches('/'));
        assert!(
            !target.trim_start_matches('/').is_empty() && inside.is_file(),
            "the attacker wrote into {target}, which is not the container's: {report}"
        );
    }
}

/// What the probe's exe-attack appends to every file it manages to open.
const ATTACK_MARK: &[u8] = b"#kiln-probe-was-here";

/// The kiln binary as a test found it: its file (the inode, which a rebuild
/// by cargo replaces rather than rewrites) and its bytes.
struct KilnBinary {
    file: std::fs::File,
    bytes: Vec<u8>,
}

impl KilnBinary {
    fn snapshot() -> KilnBinary {
        let mut file = std::fs::File::open(kiln_bin()).expect("open kiln");
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).expect("read kiln");
        KilnBinary { file, bytes }
    }

    /// Fails if the binary that ran was written to, or if whatever is at
    /// the kiln path now carries the attacker's mark.
    fn assert_untouched(&mut self) {
        let mut now = Vec::new();
        self.file.seek(std::io::SeekFrom::Start(0)).expect("seek kiln");
        self.file.read_to_end(&mut now).expect("read kiln");
        assert!(now == self.bytes, "the kiln binary was modified in place");
        let current = std::fs::read(kiln_bin()).expect("read kiln");
        let marked = current.windows(ATTACK_MARK.len()).any(|w| w == ATTACK_MARK);
        assert!(!marked, "the attacker's mark is in the kiln binary");
    }
}

#[test]
fn exe_attack_during_exec_cannot_modify_the_kiln_binary() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let mut kiln = KilnBinary::snapshot();
    let (report, execs) = attack_while_exec(&root, &bundle, "3", &["/bin/probe", "sleep", "0.05"]);
    assert!(execs > 0, "no exec ran while the attacker did");
    let opened = report["opened"].as_array().expect("opened");
    assert!(!opened.is_empty(), "the attacker never saw an exec'd process: {report}");
    assert_wrote_only_container_files(&report, &bundle);
    kiln.assert_untouched();
}

#[test]
fn shebang_to_proc_self_exe_cannot_modify_the_kiln_binary() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let evil = bundle.rootfs().join("evil");
    std::fs::write(&evil, "#!/proc/self/exe\n").expect("write evil");
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut kiln = KilnBinary::snapshot();

    // The container's own process is the script.
    let out = run_args(&root, &bundle, &["/evil"], |_| {});
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    kiln.assert_untouched();

    // And exec'd processes are the script while an attacker waits for them.
    let bundle2 = Bundle::busybox();
    let evil = bundle2.rootfs().join("evil");
    std::fs::write(&evil, "#!/proc/self/exe\n").expect("write evil");
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (report, _) = attack_while_exec(&root, &bundle2, "2", &["/evil"]);
    assert_wrote_only_container_files(&report, &bundle2);
    kiln.assert_untouched();
}

// ---------------------------------------------------------------------------
// CVE-2024-21626: leaked descriptors and working directories
// ---------------------------------------------------------------------------

fn fd_numbers(fds: &Value) -> Vec<i64> {
    fds.as_array().expect("fds").iter().filter_map(|f| f["fd"].as_i64()).collect()
}

#[test]
fn container_process_gets_only_stdio_descriptors() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let fds = probe_json(&root, &bundle, &["fds"], |_| {});
    assert_eq!(fd_numbers(&fds), [0, 1, 2], "{fds}");
}

#[test]
fn exec_process_gets_only_stdio_descriptors() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    start_detached(&root, &bundle, &bundle.config(&["/bin/probe", "sleep", "30"]));
    let text = kiln_ok(&root, &["exec", bundle.name(), "/bin/probe", "fds"]);
    let fds: Value = serde_json::from_str(text.trim()).expect("fds JSON");
    assert_eq!(fd_numbers(&fds), [0, 1, 2], "{fds}");
}

#[test]
fn preserved_descriptor_is_passed_and_nothing_more() {
    require_privileged!();
    let (root, bundle, data) = (RuntimeRoot::new(), Bundle::busybox(), ScratchDir::new().unwrap());
    let file = data.path().join("passed");
    std::fs::write(&file, "x").unwrap();
    bundle.write_config(&bundle.config(&["/bin/probe", "fds"]));
    // The shell opens fd 3 without close-on-exec and becomes kiln.
    let out = outcome(
        Command::new("/bin/sh")
            .args(["-c", "exec 3<\"$0\"; exec \"$@\""])
            .arg(&file)
            .arg(kiln_bin())
            .arg("runtime")
            .arg("--root")
            .arg(root.path())
            .args(["run", "--preserve-fds", "1", "--bundle"])
            .arg(bundle.path())
            .arg(bundle.name())
            .stdin(Stdio::null())
            .output()
            .expect("sh runs"),
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let fds: Value = serde_json::from_str(out.stdout.trim()).expect("fds JSON");
    assert_eq!(fd_numbers(&fds), [0, 1, 2, 3], "{fds}");
    let target = fds[3]["target"].as_str().unwrap_or("");
    assert!(target.ends_with("/passed"), "fd 3 is {target}");
}

/// A run or exec whose cwd is `/proc/self/fd/N` either fails cleanly or
/// runs inside the container.
fn assert_cwd_inside_or_refused(out: &Outcome, cwd: &str) {
    assert!(!out.stderr.contains("panicked"), "{cwd}: {}", out.stderr);
    assert!(!out.stderr.contains("fatal runtime error"), "{cwd}: {}", out.stderr);
    if out.code != 0 {
        eprintln!("{cwd}: refused: {}", out.stderr.trim());
        assert!(out.stderr.contains("kiln"), "{cwd}: failed without a message: {}", out.stderr);
        return;
    }
    let report: Value = serde_json::from_str(out.stdout.trim()).expect("report");
    let seen = report["cwd"].as_str().unwrap_or("(none)");
    assert!(
        seen.starts_with('/') && !seen.contains("kiln-t-"),
        "with cwd {cwd} the process works in {seen}, outside the container"
    );
}

#[test]
fn working_directory_through_a_runtime_descriptor_never_reaches_the_host() {
    require_privileged!();
    let root = RuntimeRoot::new();
    for fd in 3..=9 {
        let bundle = Bundle::busybox();
        let cwd = format!("/proc/self/fd/{fd}");
        let out = run_args(&root, &bundle, &["/bin/probe", "report"], |c| {
            c["process"]["cwd"] = json!(cwd);
        });
        assert_cwd_inside_or_refused(&out, &cwd);
    }
}

#[test]
fn exec_working_directory_through_a_runtime_descriptor_never_reaches_the_host() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    start_detached(&root, &bundle, &bundle.config(&["/bin/probe", "sleep", "30"]));
    for fd in 3..=9 {
        let cwd = format!("/proc/self/fd/{fd}");
        let out = kiln(&root, &["exec", "--cwd", &cwd, bundle.name(), "/bin/probe", "report"]);
        assert_cwd_inside_or_refused(&out, &cwd);
    }
}

// ---------------------------------------------------------------------------
// CVE-2021-30465: symlinks in mount paths
// ---------------------------------------------------------------------------

/// Mounts a tmpfs at `/evil/NAME` where `rootfs/evil` links to `link`;
/// returns NAME and the container's report.
fn tmpfs_through_symlink(root: &RuntimeRoot, bundle: &Bundle, link: &str) -> (String, Value) {
    std::os::unix::fs::symlink(link, bundle.rootfs().join("evil")).expect("symlink");
    let name = unique_name();
    let report = probe_report(root, bundle, |c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": format!("/evil/{name}"), "type": "tmpfs", "source": "tmpfs"
        }));
    });
    (name, report)
}

fn assert_mounted_inside(report: &Value, point: &str) {
    let mounted =
        report["mounts"].as_array().expect("mounts").iter().any(|m| m["mount_point"] == point);
    assert!(mounted, "no mount at {point} in the container: {}", report["mounts"]);
}

#[test]
fn mount_through_a_symlink_to_root_stays_in_the_rootfs() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let (name, report) = tmpfs_through_symlink(&root, &bundle, "/");
    let host = Path::new("/").join(&name);
    assert!(!host.exists(), "{} was created on the host", host.display());
    assert!(!host_mount_points().contains(&host.to_string_lossy().into_owned()));
    assert_mounted_inside(&report, &format!("/{name}"));
    assert!(bundle.rootfs().join(&name).is_dir());
}

#[test]
fn mount_through_a_symlink_climbing_out_stays_in_the_rootfs() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let (name, report) = tmpfs_through_symlink(&root, &bundle, "../../../../../../etc");
    let host = Path::new("/etc").join(&name);
    assert!(!host.exists(), "{} was created on the host", host.display());
    assert!(!host_mount_points().contains(&host.to_string_lossy().into_owned()));
    assert_mounted_inside(&report, &format!("/etc/{name}"));
    assert!(bundle.rootfs().join("etc").join(&name).is_dir());
}

#[test]
fn bind_mount_on_an_absolute_symlink_lands_inside_the_rootfs() {
    require_privileged!();
    let (root, bundle, data) = (RuntimeRoot::new(), Bundle::busybox(), ScratchDir::new().unwrap());
    std::fs::write(data.path().join("hello"), "from the host\n").unwrap();
    let target = format!("/tmp/{}-target", unique_name());
    std::os::unix::fs::symlink(&target, bundle.rootfs().join("lnk")).expect("symlink");
    let out = run_args(&root, &bundle, &["/bin/probe", "cat", &format!("{target}/hello")], |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/lnk", "type": "bind", "source": data.path(), "options": ["rbind"]
        }));
    });
    assert!(!Path::new(&target).exists(), "{target} was created on the host");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "from the host\n");
    assert!(bundle.rootfs().join(&target[1..]).is_dir());
}

#[test]
fn bind_source_symlink_in_the_rootfs_does_not_expose_the_hosts_etc() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let mark = format!("{}\n", bundle.name());
    std::fs::write(bundle.rootfs().join("etc/hostname"), &mark).unwrap();
    std::os::unix::fs::symlink("/etc", bundle.rootfs().join("hostetc")).expect("symlink");
    let absolute = bundle.rootfs().join("hostetc");
    let script = "cat /mnt/relative/hostname /mnt/absolute/hostname";
    let out = run_args(&root, &bundle, &["/bin/sh", "-c", script], |c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({
            "destination": "/mnt/relative", "type": "bind", "source": "rootfs/hostetc",
            "options": ["rbind", "ro"]
        }));
        mounts.push(json!({
            "destination": "/mnt/absolute", "type": "bind", "source": absolute,
            "options": ["rbind", "ro"]
        }));
    });
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, format!("{mark}{mark}"), "the container saw the host's /etc");
}

// ---------------------------------------------------------------------------
// seccomp
// ---------------------------------------------------------------------------

/// Kiln's default profile, as `kiln runtime spec` writes it.
fn default_seccomp_profile(root: &RuntimeRoot) -> Value {
    let dir = ScratchDir::new().expect("scratch dir");
    kiln_ok(root, &["spec", "--bundle", dir.path().to_str().expect("utf-8 path")]);
    let text = std::fs::read_to_string(dir.path().join("config.json")).expect("config.json");
    let config: Value = serde_json::from_str(&text).expect("spec is JSON");
    assert!(config["linux"]["seccomp"].is_object(), "spec has no seccomp profile");
    config["linux"]["seccomp"].clone()
}

#[test]
fn default_seccomp_profile_blocks_escapes_and_allows_ordinary_work() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let profile = default_seccomp_profile(&root);
    let script = "for s in unshare mount keyctl kexec_load clone_newns getpid; do \
                  /bin/probe try $s; done; ls / >/dev/null && echo '{\"ls\":\"ok\"}'; \
                  /bin/probe report";
    let out = run_args(&root, &bundle, &["/bin/sh", "-c", script], |c| {
        c["linux"]["seccomp"] = profile;
    });
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 8, "{}", out.stdout);
    for (i, name) in ["unshare", "mount", "keyctl", "kexec_load", "clone_newns"].iter().enumerate()
    {
        assert_eq!(lines[i], try_result(1, name), "expected EPERM");
    }
    assert_eq!(lines[5]["ok"], true, "getpid: {}", lines[5]);
    assert_eq!(lines[6], json!({ "ls": "ok" }));
    assert_eq!(lines[7]["seccomp"], 2, "seccomp mode");
}

#[test]
fn seccomp_rule_fails_its_call_with_the_configured_errno() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let result = probe_json(&root, &bundle, &["try", "getpid"], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }]
        });
    });
    assert_eq!(result, try_result(38, "getpid"));
}

#[test]
fn seccomp_argument_condition_blocks_only_that_value() {
    require_privileged!();
    let root = RuntimeRoot::new();
    // The probe calls personality(0xffffffff).
    for (value, errno) in [(0xffff_ffffu64, 1), (8, 0)] {
        let bundle = Bundle::busybox();
        let result = probe_json(&root, &bundle, &["try", "personality"], |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{
                    "names": ["personality"], "action": "SCMP_ACT_ERRNO",
                    "args": [{ "index": 0, "value": value, "op": "SCMP_CMP_EQ" }]
                }]
            });
        });
        assert_eq!(result["errno"], errno, "rule on value {value:#x}: {result}");
        assert_eq!(result["ok"], errno == 0, "rule on value {value:#x}: {result}");
    }
}

#[test]
fn seccomp_notify_is_refused_with_a_clear_message() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let out = run_args(&root, &bundle, &["/bin/probe", "report"], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/kiln-t-no-such-listener.sock",
            "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_NOTIFY" }]
        });
    });
    assert_ne!(out.code, 0, "a notify profile ran: {}", out.stdout);
    assert!(out.stderr.contains("not supported"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "the process ran: {}", out.stdout);
    assert_eq!(kiln_ok(&root, &["list", "--quiet"]).trim(), "", "a container was left behind");
}

// ---------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------

#[test]
fn sethostname_without_cap_sys_admin_is_refused() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let before = host_hostname();
    // Its own uts namespace: only the capability stands in the way.
    let result = probe_json(&root, &bundle, &["try", "sethostname"], |c| {
        assert!(c["linux"]["seccomp"].is_null());
        assert!(c["linux"]["namespaces"].as_array().unwrap().contains(&json!({ "type": "uts" })));
    });
    assert_eq!(result, try_result(1, "sethostname"));
    assert_eq!(host_hostname(), before);
}

#[test]
fn mount_without_cap_sys_admin_is_refused_even_without_seccomp() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let result = probe_json(&root, &bundle, &["try", "mount"], |c| {
        assert!(c["linux"]["seccomp"].is_null());
    });
    assert_eq!(result, try_result(1, "mount"));
}

#[test]
fn cap_sys_admin_allows_mount_and_sethostname_only_inside_the_container() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let (hostname, mounts) = (host_hostname(), host_mount_points());
    let script = "/bin/probe try mount; /bin/probe try sethostname";
    let out = run_args(&root, &bundle, &["/bin/sh", "-c", script], |c| {
        let caps = &mut c["process"]["capabilities"];
        for set in ["bounding", "effective", "permitted"] {
            caps[set].as_array_mut().unwrap().push(json!("CAP_SYS_ADMIN"));
        }
    });
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let lines = json_lines(&out);
    assert_eq!(lines.first(), Some(&try_result(0, "mount")), "{}", out.stdout);
    assert_eq!(lines.get(1).map(|l| &l["ok"]), Some(&json!(true)), "{}", out.stdout);
    assert_eq!(host_hostname(), hostname);
    assert_eq!(host_mount_points().len(), mounts.len(), "the host's mount table changed");
}

// ---------------------------------------------------------------------------
// What the container can see
// ---------------------------------------------------------------------------

#[test]
fn host_processes_are_invisible() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let out = run_args(&root, &bundle, &["/bin/sh", "-c", "ls /proc"], |_| {});
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let pids: Vec<u32> = out.stdout.split_whitespace().filter_map(|e| e.parse().ok()).collect();
    assert!(pids.contains(&1), "{pids:?}");
    assert!(pids.len() <= 3, "the container sees other processes: {pids:?}");
    assert!(!pids.contains(&std::process::id()));
}

#[test]
fn container_reads_its_own_root_not_the_hosts() {
    require_privileged!();
    let (root, bundle) = (RuntimeRoot::new(), Bundle::busybox());
    let mark = format!("{}\n", bundle.name());
    std::fs::write(bundle.rootfs().join("etc/hostname"), &mark).unwrap();
    let out = run_args(&root, &bundle, &["/bin/probe", "cat", "/etc/hostname"], |_| {});
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, mark);
    // The host's root has /usr; the busybox rootfs has none.
    assert!(Path::new("/usr").is_dir());
    let out = run_args(&root, &Bundle::busybox(), &["/bin/sh", "-c", "ls /"], |_| {});
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(!out.stdout.split_whitespace().any(|e| e == "usr"), "{}", out.stdout);
}
