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
