//! The real `docker` CLI against `kiln daemon`, when one is on PATH.

use std::process::Command;

use crate::common::TestDaemon;

fn docker(daemon: &TestDaemon, args: &[&str]) -> String {
    let docker = crate::common::docker_cli();
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

/// `docker ARGS` against `daemon`, finished (may fail).
fn docker_run(daemon: &TestDaemon, args: &[&str]) -> crate::common::Run {
    let docker = crate::common::docker_cli();
    crate::common::Run::of(
        Command::new(docker)
            .args(args)
            .env("DOCKER_HOST", daemon.host())
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", daemon.dir.path().join("docker-config")),
    )
}

#[test]
fn docker_cli_lists_inspects_tags_and_removes_kiln_images() {
    let daemon = TestDaemon::start();
    let id = daemon.import_busybox("busybox:test");
    assert_eq!(
        docker(&daemon, &["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "busybox:test\n"
    );
    assert_eq!(docker(&daemon, &["images", "-q"]), daemon.kiln_ok(&["images", "-q"]));
    let cmd = docker(
        &daemon,
        &["image", "inspect", "-f", "{{json .Config.Cmd}} {{.Id}}", "busybox:test"],
    );
    assert_eq!(cmd, format!("[\"sh\"] {id}\n"));
    let layers = docker(
        &daemon,
        &["image", "inspect", "-f", "{{.RootFS.Type}} {{len .RootFS.Layers}}", "busybox:test"],
    );
    assert_eq!(layers, "layers 1\n");
    let df = docker(&daemon, &["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.starts_with("Images 1\n"), "{df}");
    let history = docker(&daemon, &["history", "busybox:test"]);
    assert!(history.contains("imported by a test"), "{history}");

    docker(&daemon, &["tag", "busybox:test", "localhost:5000/x/y:2"]);
    assert_eq!(
        daemon.image_names(),
        ["busybox:test", "localhost:5000/x/y:2"],
        "kiln sees docker's tag"
    );
    assert_eq!(docker(&daemon, &["rmi", "busybox:test"]), "Untagged: busybox:test\n");
    let removed = docker(&daemon, &["rmi", "localhost:5000/x/y:2"]);
    assert_eq!(removed, format!("Untagged: localhost:5000/x/y:2\nDeleted: {id}\n"));
    assert!(daemon.image_names().is_empty());

    let missing = docker_run(&daemon, &["rmi", "nope"]);
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("No such image: nope"), "{missing:?}");
}

#[test]
fn docker_save_and_load_exchange_archives_with_kiln() {
    let first = TestDaemon::start();
    let id = first.import_busybox("app:1");
    let second = TestDaemon::start();

    // docker save (from kiln) → kiln load.
    let by_docker = first.dir.path().join("by-docker.tar");
    docker(&first, &["save", "-o", by_docker.to_str().expect("utf-8"), "app:1"]);
    let loaded = second.kiln_ok(&["load", "-i", by_docker.to_str().expect("utf-8")]);
    assert_eq!(loaded, "Loaded image: app:1\n");
    assert_eq!(second.kiln_ok(&["images", "-q", "--no-trunc"]), format!("{id}\n"));
    second.kiln_ok(&["rmi", "app:1"]);

    // kiln save → docker load (into kiln).
    let by_kiln = first.dir.path().join("by-kiln.tar");
    first.kiln_ok(&["save", "-o", by_kiln.to_str().expect("utf-8"), "app:1"]);
    let loaded = docker(&second, &["load", "-i", by_kiln.to_str().expect("utf-8")]);
    assert_eq!(loaded, "Loaded image: app:1\n");
    assert_eq!(
        docker(&second, &["images", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"]),
        format!("{} app:1\n", &id[7..19])
    );

    // docker import through kiln.
    let tar = crate::common::busybox_rootfs_tar(second.dir.path());
    let imported = docker(
        &second,
        &["import", "--change", "CMD [\"sh\"]", tar.to_str().expect("utf-8"), "imp:1"],
    );
    assert!(imported.starts_with("sha256:"), "{imported}");
    assert_eq!(second.image_names(), ["app:1", "imp:1"]);

    let pruned = docker(&second, &["image", "prune", "-a", "-f"]);
    assert!(
        pruned.contains("untagged: imp:1") && pruned.contains("Total reclaimed space:"),
        "{pruned}"
    );
    assert!(second.image_names().is_empty());
}
