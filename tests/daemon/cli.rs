//! `kiln version` and `kiln info` through the API.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kiln_testing::{kiln_bin, ScratchDir};

use crate::common::{raw_request, terminate, TestDaemon};

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

#[test]
fn kiln_version_prints_the_servers_version() {
    let daemon = TestDaemon::start();
    let text = stdout(&daemon.kiln().arg("version").output().expect("kiln version"));
    assert!(text.starts_with("Client:\n"), "{text}");
    assert!(text.contains("\nServer: Kiln Engine\n"), "{text}");
    assert!(text.contains("API version:      1.47 (minimum version 1.41)"), "{text}");

    let json =
        stdout(&daemon.kiln().args(["version", "--format", "{{json .}}"]).output().expect("json"));
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["Server"]["Version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["Client"]["ApiVersion"], "1.47");
    let field = stdout(
        &daemon
            .kiln()
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .expect("field"),
    );
    assert_eq!(field, format!("{}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn kiln_info_prints_the_servers_root_dir() {
    let daemon = TestDaemon::start();
    let text = stdout(&daemon.kiln().arg("info").output().expect("kiln info"));
    assert!(text.contains(&format!("\n Docker Root Dir: {}\n", daemon.root().display())), "{text}");
    assert!(text.contains("\n Storage Driver: overlay2\n"), "{text}");
    let json = stdout(&daemon.kiln().args(["info", "--format", "json"]).output().expect("json"));
    let info: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(info["DockerRootDir"], daemon.root().display().to_string());
}

#[test]
fn kiln_reports_a_daemon_that_is_not_there_in_one_line() {
    let dir = ScratchDir::new().expect("scratch");
    let host = format!("unix://{}/none.sock", dir.path().display());
    let output =
        Command::new(kiln_bin()).args(["--host", &host, "info"]).output().expect("kiln info");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "Error: cannot connect to the Kiln daemon at {host}: is it running?"
        )),
        "{stderr}"
    );
    assert!(!dir.path().join("none.sock").exists(), "no daemon is started for an explicit --host");
}

/// Stops a daemon started by the CLI, found through the pid in its lock.
struct StartedDaemon {
    root: std::path::PathBuf,
    socket: std::path::PathBuf,
}

impl Drop for StartedDaemon {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.root.join("kiln.lock"))
            .ok()
            .and_then(|t| t.trim().parse().ok());
        if let Some(pid) = pid {
            terminate(pid);
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.socket.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn kiln_starts_the_daemon_when_the_default_socket_is_silent() {
    let dir = ScratchDir::new().expect("scratch");
    let (root, exec_root) = (dir.path().join("root"), dir.path().join("run"));
    let socket = exec_root.join("kiln.sock");
    let _started = StartedDaemon { root: root.clone(), socket: socket.clone() };
    let output = Command::new(kiln_bin())
        .args(["version", "--format", "{{.Server.Version}}"])
        .env_remove("KILN_HOST")
        .env_remove("DOCKER_HOST")
        .env("KILN_ROOT", &root)
        .env("KILN_EXEC_ROOT", &exec_root)
        .output()
        .expect("kiln version");
    let log = std::fs::read_to_string(exec_root.join("daemon.log")).unwrap_or_default();
    assert!(
        output.status.success(),
        "stderr: {}\ndaemon.log: {log}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("{}\n", env!("CARGO_PKG_VERSION")));
    assert!(root.join("kiln.lock").exists(), "the daemon uses KILN_ROOT");
    assert_eq!(
        raw_request(&socket, "GET", "/_ping").body,
        "OK",
        "the daemon keeps running after the CLI"
    );
    assert!(log.contains("daemon started"), "daemon.log: {log}");
}
