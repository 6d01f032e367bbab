//! The real `docker` CLI against `kiln daemon`, when one is on PATH.

use std::process::Command;

use crate::common::TestDaemon;

fn docker_cli() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("docker")).find(|p| p.is_file())
}

fn docker(daemon: &TestDaemon, args: &[&str]) -> String {
    let docker = docker_cli().expect("docker CLI");
    let output = Command::new(docker)
        .args(args)
        .env("DOCKER_HOST", daemon.host())
        .env_remove("DOCKER_API_VERSION")
        .env_remove("DOCKER_CONTEXT")
        .env("DOCKER_CONFIG", daemon.dir.path().join("docker-config"))
        .output()
        .expect("run docker");
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn docker_cli_negotiates_down_and_reads_version_and_info() {
    if docker_cli().is_none() {
        eprintln!("skipped: no docker CLI on PATH");
        return;
    }
    let daemon = TestDaemon::start();
    let version = docker(&daemon, &["version", "--format", "{{.Server.Version}}"]);
    assert_eq!(version, format!("{}\n", env!("CARGO_PKG_VERSION")));
    let api = docker(&daemon, &["version", "--format", "{{.Client.APIVersion}}"]);
    assert_eq!(api, "1.47\n", "the docker CLI negotiates down to our API version");
    assert_eq!(docker(&daemon, &["info", "--format", "{{.Driver}}"]), "overlay2\n");
    let root = docker(&daemon, &["info", "--format", "{{.DockerRootDir}}"]);
    assert_eq!(root, format!("{}\n", daemon.root().display()));
    let text = docker(&daemon, &["info"]);
    assert!(text.contains("Storage Driver: overlay2"), "{text}");
}
