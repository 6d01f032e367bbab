//! Helpers shared by the runtime tests.

#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

pub use kiln_testing::{require_privileged, Bundle, RuntimeRoot};
use serde_json::Value;

/// What a finished command said and how it ended.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn outcome(output: Output) -> Outcome {
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `kiln runtime --root ROOT ARGS…` with stdin closed.
pub fn kiln(root: &RuntimeRoot, args: &[&str]) -> Outcome {
    let mut cmd: Command = root.runtime();
    cmd.args(args).stdin(Stdio::null());
    outcome(cmd.output().expect("kiln runs"))
}

/// Like [`kiln`], and fails the test unless it exits 0.
pub fn kiln_ok(root: &RuntimeRoot, args: &[&str]) -> String {
    let out = kiln(root, args);
    assert_eq!(out.code, 0, "kiln runtime {args:?} failed: {}{}", out.stdout, out.stderr);
    out.stdout
}

/// `kiln runtime run` of `config` in `bundle`, under the bundle's name.
pub fn run(root: &RuntimeRoot, bundle: &Bundle, config: &Value) -> Outcome {
    bundle.write_config(config);
    let path = bundle.path().to_str().expect("utf-8 path");
    kiln(root, &["run", "--bundle", path, bundle.name()])
}

/// Runs the probe's `report` with `edit` applied to the default config and
/// returns the report.
pub fn probe_report(root: &RuntimeRoot, bundle: &Bundle, edit: impl FnOnce(&mut Value)) -> Value {
    let mut config = bundle.config(&["/bin/probe", "report"]);
    edit(&mut config);
    let out = run(root, bundle, &config);
    assert_eq!(out.code, 0, "probe report failed: {}{}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("bad report {e}: {}", out.stdout))
}

/// `kiln runtime state ID` as JSON.
pub fn state(root: &RuntimeRoot, id: &str) -> Value {
    let text = kiln_ok(root, &["state", id]);
    serde_json::from_str(&text).expect("state is JSON")
}

/// Polls until `check` holds or 5 s pass.
pub fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    check()
}

/// The cgroup v1 directory of a bundle's container for one controller.
pub fn cgroup_dir(bundle: &Bundle, controller: &str) -> std::path::PathBuf {
    std::path::Path::new("/sys/fs/cgroup").join(controller).join("kiln-t").join(bundle.name())
}

/// The capability set `names` as /proc/PID/status shows it ("00000000a80425fb").
pub fn cap_hex(names: &[&str]) -> String {
    let mask = names.iter().fold(0u64, |mask, name| {
        let cap: kiln_sys::caps::Capability = name.parse().unwrap_or_else(|e| panic!("{e}"));
        mask | 1 << cap.number()
    });
    format!("{mask:016x}")
}

/// The namespace link of this (host-side) test process, "net:[4026531840]".
pub fn host_namespace(kind: &str) -> String {
    let link = std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap_or_else(|e| panic!("cannot read /proc/self/ns/{kind}: {e}"));
    link.to_string_lossy().into_owned()
}

/// Runs `args` in the bundle with `edit` applied to the default config;
/// returns how it ended.
pub fn run_args(
    root: &RuntimeRoot,
    bundle: &Bundle,
    args: &[&str],
    edit: impl FnOnce(&mut Value),
) -> Outcome {
    let mut config = bundle.config(args);
    edit(&mut config);
    run(root, bundle, &config)
}

/// Runs one probe command that prints JSON (`try`, `write`, `exe-attack`)
/// and returns what it printed; fails the test when it printed no JSON.
pub fn probe_json(
    root: &RuntimeRoot,
    bundle: &Bundle,
    args: &[&str],
    edit: impl FnOnce(&mut Value),
) -> Value {
    let mut argv = vec!["/bin/probe"];
    argv.extend_from_slice(args);
    let out = run_args(root, bundle, &argv, edit);
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!("probe {args:?} gave no JSON ({e}), exit {}: {}{}", out.code, out.stdout, out.stderr)
    })
}

/// Starts the bundle's container detached (stdio closed) with `config` and
/// returns its host pid; the [`RuntimeRoot`] kills it on drop.
pub fn start_detached(root: &RuntimeRoot, bundle: &Bundle, config: &Value) -> i32 {
    bundle.write_config(config);
    let path = bundle.path().to_str().expect("utf-8 path");
    let status = root
        .runtime()
        .args(["run", "--detach", "--bundle", path, bundle.name()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("kiln runs");
    assert!(status.success(), "kiln runtime run --detach {} failed: {status}", bundle.name());
    let pid = state(root, bundle.name())["pid"].as_i64().expect("state has a pid");
    i32::try_from(pid).expect("pid fits i32")
}

/// Like [`kiln`], for commands that leave a process running with kiln's
/// stdout and stderr (`create`, `run --detach`, `exec --detach`): those go to
/// files, so the call returns when kiln exits rather than when the container
/// closes them. Panics if kiln has not exited after 10 s.
pub fn kiln_leaving_process(root: &RuntimeRoot, args: &[&str]) -> Outcome {
    let dir = kiln_testing::ScratchDir::new().expect("scratch dir for kiln's output");
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let stdout = std::fs::File::create(&stdout_path).expect("stdout file");
    let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
    let mut cmd: Command = root.runtime();
    cmd.args(args).stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let mut child = cmd.spawn().expect("kiln runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for kiln") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kiln runtime {args:?} did not return within 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    Outcome {
        code: status.code().unwrap_or(-1),
        stdout: read(&stdout_path),
        stderr: read(&stderr_path),
    }
}
