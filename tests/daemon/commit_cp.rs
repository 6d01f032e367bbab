//! `kiln commit` and `kiln cp` on real containers (root): what a committed
//! image holds and runs, and files copied both ways.

use std::path::Path;
use std::process::{Command, Stdio};

use kiln_testing::unique_name;

use crate::common::TestDaemon;

/// A daemon with a busybox image imported as `bb`.
fn daemon_with_busybox() -> TestDaemon {
    let daemon = TestDaemon::start();
    daemon.import_busybox("bb");
    daemon
}

/// The entry names of the top layer of `image`, from `kiln save`, with
/// directories' trailing `/` dropped.
fn top_layer_entries(daemon: &TestDaemon, image: &str) -> Vec<String> {
    let dir = daemon.dir.path().join(unique_name());
    std::fs::create_dir(&dir).expect("mkdir");
    let archive = dir.join("image.tar");
    daemon.kiln_ok(&["save", "-o", archive.to_str().expect("utf-8"), image]);
    let status =
        Command::new("tar").arg("-C").arg(&dir).arg("-xf").arg(&archive).status().expect("tar");
    assert!(status.success(), "tar -x of the saved image failed");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest.json"))
            .expect("manifest json");
    let layers = manifest[0]["Layers"].as_array().expect("Layers");
    let top = layers.last().and_then(|l| l.as_str()).expect("a layer");
    let listing = Command::new("tar").arg("-tf").arg(dir.join(top)).output().expect("tar -t");
    assert!(listing.status.success());
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(|l| l.trim_end_matches('/').trim_start_matches("./").to_owned())
        .collect()
}

#[test]
fn a_committed_image_has_the_containers_changes_and_not_its_deletions() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let name = unique_name();
    let script = "mkdir /added && echo new > /added/file.txt && echo extra:x:2000: >> /etc/group \
                  && rm /bin/probe && rm -rf /home && mkdir /home && echo only > /home/only";
    daemon.kiln_ok(&["run", "--name", &name, "--network", "none", "bb", "sh", "-c", script]);
    let image = format!("{name}-img:v1");
    let id = daemon
        .kiln_ok(&[
            "commit",
            "-m",
            "made by a test",
            "-a",
            "Kiln Test <kiln@example.com>",
            "-c",
            r#"CMD ["cat", "/added/file.txt"]"#,
            "-c",
            "ENV COMMITTED=yes",
            &name,
            &image,
        ])
        .trim()
        .to_owned();
    assert!(id.starts_with("sha256:") && id.len() == 71, "commit printed {id:?}");

    // The layer holds what the container changed, deletions as OCI
    // whiteouts, and none of the mount point stubs the runtime made
    // (/etc/hosts, /etc/resolv.conf are not in busybox).
    let mut entries = top_layer_entries(&daemon, &image);
    entries.sort();
    assert_eq!(
        entries,
        [
            "added",
            "added/file.txt",
            "bin",
            "bin/.wh.probe",
            "etc",
            "etc/group",
            "home",
            "home/.wh..wh..opq",
            "home/only"
        ]
    );

    // A container of the new image sees the changes, runs the new CMD and
    // does not see what was deleted, across the layers below.
    assert_eq!(daemon.kiln_ok(&["run", "--rm", "--network", "none", &image]), "new\n");
    let seen = daemon.kiln_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "tail -n1 /etc/group; ls /home; test -e /bin/probe || echo probe-gone; echo $COMMITTED",
    ]);
    assert_eq!(seen, "extra:x:2000:\nonly\nprobe-gone\nyes\n");

    // Inspect and history say what the commit was told.
    let inspected = daemon.kiln_ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Id}}|{{.Comment}}|{{.Author}}|{{json .Config.Cmd}}",
        &image,
    ]);
    assert_eq!(
        inspected.trim(),
        format!("{id}|made by a test|Kiln Test <kiln@example.com>|[\"cat\",\"/added/file.txt\"]")
    );
    let history = daemon.kiln_ok(&["history", "--no-trunc", "--format", "{{.Comment}}", &image]);
    assert_eq!(history.lines().next(), Some("made by a test"), "{history}");

    // The id is the digest of the stored config: the same bytes come out of
    // a save, and a second commit of the same stopped container has the
    // same top layer.
    let again = daemon.kiln_ok(&["commit", &name, &format!("{name}-img:v2")]).trim().to_owned();
    let layers =
        |image: &str| daemon.kiln_ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", image]);
    assert_eq!(layers(&image), layers(&format!("{name}-img:v2")));
    assert!(again.starts_with("sha256:"), "{again}");
    let config = saved_config_digest(&daemon, &image);
    assert_eq!(config, id);
}

/// The sha256 of the config blob `kiln save` writes for `image`.
fn saved_config_digest(daemon: &TestDaemon, image: &str) -> String {
    let dir = daemon.dir.path().join(unique_name());
    std::fs::create_dir(&dir).expect("mkdir");
    let archive = dir.join("image.tar");
    daemon.kiln_ok(&["save", "-o", archive.to_str().expect("utf-8"), image]);
    let status =
        Command::new("tar").arg("-C").arg(&dir).arg("-xf").arg(&archive).status().expect("tar");
    assert!(status.success());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest.json"))
            .expect("manifest json");
    let config = manifest[0]["Config"].as_str().expect("Config");
    let sum = Command::new("sha256sum").arg(dir.join(config)).output().expect("sha256sum");
    let text = String::from_utf8_lossy(&sum.stdout);
    format!("sha256:{}", text.split_whitespace().next().expect("sum"))
}

#[test]
fn commit_of_a_running_container_pauses_it_and_leaves_it_running() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let name = unique_name();
    daemon.kiln_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "echo running > /state; exec sleep 1000",
    ]);
    // The file is written right after start; wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while daemon.kiln_run(&["exec", &name, "cat", "/state"]).code != Some(0) {
        assert!(std::time::Instant::now() < deadline, "the container never wrote /state");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let image = format!("{name}-running");
    let id = daemon.kiln_ok(&["commit", &name, &image]).trim().to_owned();
    // Docker's event, with the pause around it.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 1;
    let events = daemon.request("GET", &format!("/v1.47/events?since=0&until={until}"));
    let actions: Vec<(String, String)> = events
        .body
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|e| {
            let action = e["Action"].as_str().unwrap_or_default().to_owned();
            (action, e["Actor"]["Attributes"]["imageID"].as_str().unwrap_or_default().to_owned())
        })
        .filter(|(a, _)| matches!(a.as_str(), "pause" | "commit" | "unpause"))
        .collect();
    assert_eq!(
        actions,
        [
            ("pause".to_owned(), String::new()),
            ("commit".to_owned(), id.clone()),
            ("unpause".to_owned(), String::new())
        ],
        "{}",
        events.body
    );
    daemon.kiln_ok(&["commit", "--pause=false", &name, &format!("{image}-nopause")]);
    let status = daemon.kiln_ok(&["inspect", "-f", "{{.State.Status}}", &name]);
    assert_eq!(status.trim(), "running");
    let seen = daemon.kiln_ok(&["run", "--rm", "--network", "none", &image, "cat", "/state"]);
    assert_eq!(seen, "running\n");
    // The committed image runs the container's command unless told otherwise.
    let cmd = daemon.kiln_ok(&["image", "inspect", "-f", "{{json .Config.Cmd}}", &image]);
    assert_eq!(cmd.trim(), r#"["sh","-c","echo running > /state; exec sleep 1000"]"#);
    daemon.kiln_ok(&["rm", "-f", &name]);
}

#[test]
fn commit_refuses_unknown_containers_and_bad_references_as_docker_does() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let missing = unique_name();
    let run = daemon.kiln_run(&["commit", &missing, "kiln-t-x"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        format!("Error response from daemon: No such container: {missing}")
    );
    let name = unique_name();
    daemon.kiln_ok(&["create", "--name", &name, "--network", "none", "bb", "true"]);
    let bad = daemon.kiln_run(&["commit", &name, "Bad:tag"]);
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert!(
        bad.stderr
            .contains("invalid reference format: repository name (library/Bad) must be lowercase"),
        "{bad:?}"
    );
    let change = daemon.kiln_run(&["commit", "-c", "RUN echo", &name]);
    assert_eq!(change.code, Some(1), "{change:?}");
    assert!(change.stderr.contains("RUN is not a valid change command"), "{change:?}");
    // A created container commits too: its image, one more history entry.
    let id = daemon.kiln_ok(&["commit", &name]).trim().to_owned();
    let listed = daemon.kiln_ok(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    assert!(listed.lines().any(|l| l == id), "{listed}");
}

/// A scratch directory of the test's own, under the daemon's.
fn scratch(daemon: &TestDaemon) -> std::path::PathBuf {
    let dir = daemon.dir.path().join(unique_name());
    std::fs::create_dir(&dir).expect("mkdir");
    dir
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn cp_copies_files_and_directories_out_of_a_container() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let name = unique_name();
    let script = "mkdir -p /data/sub && echo one > /data/one && echo two > /data/sub/two \
                  && ln -s one /data/link";
    daemon.kiln_ok(&["run", "--name", &name, "--network", "none", "bb", "sh", "-c", script]);
    let host = scratch(&daemon);

    // A file into a directory keeps its name; onto a new path takes that name.
    daemon.kiln_ok(&["cp", &format!("{name}:/data/one"), path_str(&host)]);
    assert_eq!(std::fs::read_to_string(host.join("one")).expect("one"), "one\n");
    daemon.kiln_ok(&["cp", &format!("{name}:/data/one"), path_str(&host.join("renamed"))]);
    assert_eq!(std::fs::read_to_string(host.join("renamed")).expect("renamed"), "one\n");

    // A directory onto a new path becomes it; into an existing one goes
    // inside; with `/.` only its contents go.
    daemon.kiln_ok(&["cp", &format!("{name}:/data"), path_str(&host.join("copy"))]);
    assert_eq!(std::fs::read_to_string(host.join("copy/sub/two")).expect("two"), "two\n");
    assert_eq!(std::fs::read_link(host.join("copy/link")).expect("link"), Path::new("one"));
    daemon.kiln_ok(&["cp", &format!("{name}:/data"), path_str(&host.join("copy"))]);
    assert!(host.join("copy/data/sub/two").is_file());
    let contents = host.join("contents");
    std::fs::create_dir(&contents).expect("mkdir");
    daemon.kiln_ok(&["cp", &format!("{name}:/data/."), path_str(&contents)]);
    assert!(contents.join("one").is_file() && contents.join("sub/two").is_file());
    assert!(!contents.join("data").exists());

    // `-L` copies what a link points at, under the link's name.
    daemon.kiln_ok(&["cp", "-L", &format!("{name}:/data/link"), path_str(&host.join("followed"))]);
    assert_eq!(std::fs::read_to_string(host.join("followed")).expect("followed"), "one\n");

    // `-` writes the tar to stdout.
    let tar = Command::new(kiln_testing::kiln_bin())
        .args(["--host", &daemon.host(), "cp", &format!("{name}:/data/sub"), "-"])
        .output()
        .expect("kiln cp to stdout");
    assert!(tar.status.success(), "{}", String::from_utf8_lossy(&tar.stderr));
    let saved = host.join("sub.tar");
    std::fs::write(&saved, &tar.stdout).expect("write");
    let listing = Command::new("tar").arg("-tf").arg(&saved).output().expect("tar -t");
    let names: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(|n| n.trim_end_matches('/').to_owned())
        .collect();
    assert_eq!(names, ["sub", "sub/two"]);

    // A missing path is Docker's error, exit 1.
    let missing = daemon.kiln_run(&["cp", &format!("{name}:/nope"), path_str(&host)]);
    assert_eq!(missing.code, Some(1), "{missing:?}");
    assert_eq!(
        missing.stderr.trim(),
        format!("Error response from daemon: Could not find the file /nope in container {name}")
    );
    let neither = daemon.kiln_run(&["cp", path_str(&host), "/tmp"]);
    assert_eq!(neither.code, Some(1), "{neither:?}");
    assert!(neither.stderr.contains("must specify at least one container source"), "{neither:?}");
}

#[test]
fn cp_copies_into_running_and_stopped_containers() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let host = scratch(&daemon);
    std::fs::write(host.join("file.txt"), "from the host\n").expect("write");
    std::fs::create_dir_all(host.join("tree/deep")).expect("mkdir");
    std::fs::write(host.join("tree/deep/leaf"), "leaf\n").expect("write");

    // Into a stopped container: the files are there when it runs.
    let stopped = unique_name();
    daemon.kiln_ok(&[
        "create",
        "--name",
        &stopped,
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "cat /file.txt /home/tree/deep/leaf /tmp/renamed.txt",
    ]);
    daemon.kiln_ok(&["cp", path_str(&host.join("file.txt")), &format!("{stopped}:/")]);
    daemon.kiln_ok(&["cp", path_str(&host.join("tree")), &format!("{stopped}:/home/tree")]);
    daemon.kiln_ok(&[
        "cp",
        path_str(&host.join("file.txt")),
        &format!("{stopped}:/tmp/renamed.txt"),
    ]);
    let out = daemon.kiln_ok(&["start", "-a", &stopped]);
    assert_eq!(out, "from the host\nleaf\nfrom the host\n");

    // Into a running one, from a tar on stdin; the files belong to root
    // without -a.
    let running = unique_name();
    daemon.kiln_ok(&["run", "-d", "--name", &running, "--network", "none", "bb", "sleep", "1000"]);
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(host.join("tree"))
        .args(["-cf", "-", "deep"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar -c");
    let stdin = tar.stdout.take().expect("tar stdout");
    let copied = daemon.kiln().args(["cp", "-", &format!("{running}:/tmp")]).stdin(stdin).output();
    assert!(tar.wait().expect("tar").success());
    let copied = copied.expect("kiln cp from stdin");
    assert!(copied.status.success(), "{}", String::from_utf8_lossy(&copied.stderr));
    let seen = daemon.kiln_ok(&["exec", &running, "cat", "/tmp/deep/leaf"]);
    assert_eq!(seen, "leaf\n");
    daemon.kiln_ok(&["cp", path_str(&host.join("file.txt")), &format!("{running}:/tmp/")]);
    let owner = daemon.kiln_ok(&["exec", &running, "stat", "-c", "%u", "/tmp/file.txt"]);
    assert_eq!(owner.trim(), "0");

    // A destination whose parent is missing is Docker's error.
    let missing = daemon.kiln_run(&[
        "cp",
        path_str(&host.join("file.txt")),
        &format!("{running}:/no/such/dir/file"),
    ]);
    assert_eq!(missing.code, Some(1), "{missing:?}");
    assert_eq!(
        missing.stderr.trim(),
        format!("Error response from daemon: Could not find the file /no/such/dir in container {running}")
    );
    daemon.kiln_ok(&["rm", "-f", &running]);
}
