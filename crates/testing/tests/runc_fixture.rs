//! The fixtures against the reference runtime: runc runs a [`Bundle`] as is,
//! and the probe reports what its config asked for. If these fail, suspect
//! the fixtures (or the host), not Kiln.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kiln_testing::{require_privileged, Bundle, ScratchDir};
use serde_json::Value;

/// Docker's 14 default capabilities as the mask /proc/PID/status shows.
const DOCKER_CAPS_MASK: &str = "00000000a80425fb";

fn runc(root: &Path) -> Command {
    let mut cmd = Command::new("runc");
    cmd.arg("--root").arg(root);
    cmd
}

/// Force-deletes a runc container on drop, so a failed test leaves no
/// process or cgroup behind.
struct Cleanup<'a> {
    root: &'a Path,
    id: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = runc(self.root)
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn which(program: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

fn output(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("runc is installed (apt-get install runc)");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn runc_runs_probe_report_with_the_bundle_config() {
    require_privileged!();
    let root = ScratchDir::new().expect("runc root");
    let bundle = Bundle::busybox();
    bundle.write_config(&bundle.config(&["/bin/probe", "report"]));

    let out =
        output(runc(root.path()).arg("run").arg("--bundle").arg(bundle.path()).arg(bundle.name()));
    let report: Value = serde_json::from_slice(&out.stdout).expect("probe prints JSON");

    assert_eq!(report["hostname"], "kiln-test");
    assert_eq!(report["pid"], 1);
    assert_eq!(report["uid"], 0);
    assert_eq!(report["cap_eff"], DOCKER_CAPS_MASK);
    assert_eq!(report["cap_bnd"], DOCKER_CAPS_MASK);
    assert_eq!(report["no_new_privs"], true);
    assert_eq!(report["rlimits"]["NOFILE"], serde_json::json!(["1024", "1024"]));
    assert_eq!(report["cwd"], "/");
    assert_eq!(report["args"], serde_json::json!(["/bin/probe", "report"]));
    let mounts = report["mounts"].as_array().expect("mounts");
    let fstype_at = |point: &str| {
        mounts.iter().find(|m| m["mount_point"] == point).map(|m| m["fstype"].clone())
    };
    assert_eq!(fstype_at("/proc"), Some("proc".into()));
    assert_eq!(fstype_at("/dev/shm"), Some("tmpfs".into()));
}

#[test]
fn probe_exe_attack_cannot_write_runc_binary_during_exec() {
    require_privileged!();
    let root = ScratchDir::new().expect("runc root");
    let bundle = Bundle::busybox();
    let id = bundle.name().to_owned();
    bundle.write_config(&bundle.config(&[
        "/bin/sh",
        "-c",
        "/bin/probe exe-attack 3 > /tmp/attack.json",
    ]));

    let _cleanup = Cleanup { root: root.path(), id: id.clone() };
    // Not `output()`: the detached container inherits runc's stdio, and
    // waiting for those pipes to close would wait for the container.
    let started = runc(root.path())
        .args(["run", "--detach", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("runc is installed");
    assert!(started.success(), "runc run --detach failed: {started}");
    // Give the attacker processes to aim at: runc joining the container.
    for _ in 0..5 {
        output(runc(root.path()).args(["exec", &id, "/bin/true"]));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = output(runc(root.path()).args(["state", &id]));
        let state: Value = serde_json::from_slice(&state.stdout).expect("state JSON");
        if state["status"] == "stopped" {
            break;
        }
        assert!(Instant::now() < deadline, "container did not stop: {state}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let text = std::fs::read(bundle.rootfs().join("tmp/attack.json")).expect("attack output");
    let result: Value = serde_json::from_slice(&text).expect("attack JSON");
    assert!(result["opened"].is_array(), "{result}");
    // The container may write its own files (busybox, once `true` exits);
    // it must never reach the runtime's binary on the host.
    let written = result["written"].as_array().expect("written");
    assert!(!written.iter().any(|t| t.as_str().is_some_and(|t| t.contains("runc"))), "{result}");
    let runc_binary = std::fs::read(which("runc")).expect("read runc binary");
    assert!(
        !runc_binary.ends_with(b"#kiln-probe-was-here\n"),
        "the host's runc binary was written"
    );
}
