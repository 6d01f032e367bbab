//! Images through `kiln`: import, list, inspect, tag, rmi, save and load.

use crate::common::{busybox_rootfs_tar, Run, TestDaemon};

#[test]
fn an_imported_rootfs_is_listed_and_inspected_with_its_cmd() {
    let daemon = TestDaemon::start();
    let id = daemon.import_busybox("busybox:test");
    assert_eq!(daemon.image_names(), ["busybox:test"]);

    let table = daemon.kiln_ok(&["images"]);
    let mut lines = table.lines();
    let columns = |line: &str| -> Vec<String> {
        line.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect()
    };
    let header = columns(lines.next().expect("header"));
    assert_eq!(header, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], "{table}");
    let row = columns(lines.next().expect("row"));
    assert_eq!(row[0].trim(), "busybox");
    assert_eq!(row[1].trim(), "test");
    assert_eq!(row[2].trim(), &id[7..19], "12-character id: {table}");
    assert!(row[3].trim().ends_with(" ago"), "{table}");
    assert!(row[4].trim().ends_with("MB"), "{table}");
    assert_eq!(daemon.kiln_ok(&["images", "-q"]), format!("{}\n", &id[7..19]));

    let inspect: serde_json::Value =
        serde_json::from_str(&daemon.kiln_ok(&["image", "inspect", "busybox:test"]))
            .expect("inspect JSON");
    let image = &inspect[0];
    assert_eq!(image["Id"], id.as_str());
    assert_eq!(image["RepoTags"], serde_json::json!(["busybox:test"]));
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(image["Comment"], "imported by a test");
    assert_eq!(image["RootFS"]["Type"], "layers");
    let layers = image["RootFS"]["Layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);
    assert!(layers[0].as_str().is_some_and(|l| l.starts_with("sha256:")), "{image}");

    let history = daemon.kiln_ok(&["history", "busybox:test"]);
    assert!(history.starts_with("IMAGE          CREATED"), "{history}");
    assert!(history.contains("imported by a test"), "{history}");
    assert_eq!(daemon.kiln_ok(&["info", "--format", "{{.Images}}"]), "1\n");
    let df = daemon.kiln_ok(&["system", "df"]);
    let images_row = columns(df.lines().nth(1).expect("images row"));
    assert_eq!(images_row[..3], ["Images", "1", "0"], "{df}");
    assert!(images_row[4].ends_with("(100%)"), "{df}");

    let json = daemon.kiln_ok(&["images", "--format", "json"]);
    let row: serde_json::Value = serde_json::from_str(json.trim()).expect("json row");
    assert_eq!((row["Repository"].as_str(), row["Tag"].as_str()), (Some("busybox"), Some("test")));
}

#[test]
fn rmi_untags_before_it_deletes() {
    let daemon = TestDaemon::start();
    let id = daemon.import_busybox("a:1");
    daemon.kiln_ok(&["tag", "a:1", "localhost:5000/b/c:2"]);
    assert_eq!(daemon.image_names(), ["a:1", "localhost:5000/b/c:2"]);
    let filtered = daemon.kiln_ok(&[
        "images",
        "--filter",
        "reference=localhost:5000/*/*",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(filtered, "localhost:5000/b/c:2\n");

    // A tag with another beside it is only untagged.
    assert_eq!(daemon.kiln_ok(&["rmi", "a:1"]), "Untagged: a:1\n");
    assert_eq!(daemon.image_names(), ["localhost:5000/b/c:2"]);

    // By id, an image with two tags must be forced.
    daemon.kiln_ok(&["image", "tag", "localhost:5000/b/c:2", "a:1"]);
    let refused = daemon.kiln_run(&["rmi", &id[7..19]]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.starts_with("Error response from daemon: conflict: unable to delete ")
            && refused.stderr.contains("(must be forced)"),
        "{refused:?}"
    );
    let forced = daemon.kiln_ok(&["rmi", "-f", &id[7..19]]);
    assert_eq!(forced, format!("Untagged: a:1\nUntagged: localhost:5000/b/c:2\nDeleted: {id}\n"));
    assert!(daemon.image_names().is_empty());

    // The last tag of an image deletes it.
    let id = daemon.import_busybox("single");
    assert_eq!(
        daemon.kiln_ok(&["image", "rm", "single"]),
        format!("Untagged: single:latest\nDeleted: {id}\n")
    );

    let missing = daemon.kiln_run(&["rmi", "nope"]);
    assert_eq!(missing.code, Some(1));
    assert_eq!(missing.stderr, "Error response from daemon: No such image: nope\n");
    let missing = daemon.kiln_run(&["image", "inspect", "nope"]);
    assert_eq!(missing.code, Some(1));
    assert_eq!(missing.stderr, "Error response from daemon: No such image: nope\n");
}

#[test]
fn save_then_load_into_another_daemon_keeps_the_id_and_tags() {
    let first = TestDaemon::start();
    let id = first.import_busybox("app:1");
    first.kiln_ok(&["tag", "app:1", "app:2"]);
    let archive = first.dir.path().join("app.tar");
    first.kiln_ok(&["save", "-o", archive.to_str().expect("utf-8"), "app:1", "app:2"]);

    let second = TestDaemon::start();
    let loaded = second.kiln_ok(&["load", "-i", archive.to_str().expect("utf-8")]);
    assert_eq!(loaded, "Loaded image: app:1\nLoaded image: app:2\n");
    assert_eq!(second.image_names(), ["app:1", "app:2"]);
    let ids = second.kiln_ok(&["images", "--no-trunc", "-q"]);
    assert_eq!(ids, format!("{id}\n{id}\n"));

    // Streamed: `kiln save NAME | kiln load` through stdout and stdin.
    let third = TestDaemon::start();
    let saved = first.kiln().args(["save", "app:1"]).output().expect("kiln save");
    assert!(saved.status.success(), "{}", String::from_utf8_lossy(&saved.stderr));
    let mut load = third
        .kiln()
        .args(["load", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kiln load");
    std::io::Write::write_all(&mut load.stdin.take().expect("stdin"), &saved.stdout)
        .expect("write the archive");
    let output = load.wait_with_output().expect("kiln load");
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "Loaded image: app:1\n");
    assert_eq!(third.image_names(), ["app:1"]);
}

#[test]
fn a_truncated_archive_is_refused_and_leaves_the_images_as_they_were() {
    let daemon = TestDaemon::start();
    let id = daemon.import_busybox("keep:1");
    let archive = daemon.dir.path().join("keep.tar");
    daemon.kiln_ok(&["save", "-o", archive.to_str().expect("utf-8"), "keep:1"]);
    daemon.kiln_ok(&["rmi", "keep:1"]);
    let tar = busybox_rootfs_tar(daemon.dir.path());
    daemon.kiln_ok(&["import", "-m", "another image", tar.to_str().expect("utf-8"), "other:1"]);

    let bytes = std::fs::read(&archive).expect("read archive");
    let truncated = daemon.dir.path().join("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write truncated");
    let refused = daemon.kiln_run(&["load", "-i", truncated.to_str().expect("utf-8")]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert_eq!(refused.stderr.lines().count(), 1, "{refused:?}");
    assert!(
        refused.stderr.starts_with("Error response from daemon: ")
            && refused.stderr.contains("truncated"),
        "{refused:?}"
    );
    assert_eq!(daemon.image_names(), ["other:1"]);
    let ids = daemon.kiln_ok(&["images", "-q", "--no-trunc"]);
    assert!(!ids.contains(&id), "the truncated image is not stored: {ids}");
}

#[test]
fn image_routes_take_names_with_slashes_and_answer_like_dockerd() {
    let daemon = TestDaemon::start();
    let id = daemon.import_busybox("localhost:5000/a/b:1");
    let inspect = daemon.request("GET", "/v1.47/images/localhost:5000/a/b:1/json");
    assert_eq!(inspect.status, 200, "{}", inspect.body);
    assert_eq!(inspect.json()["Id"], id.as_str());

    let missing = daemon.request("GET", "/images/nope:1/json");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "No such image: nope:1");

    let tag = daemon.request("POST", "/images/localhost:5000/a/b:1/tag?repo=c&tag=2");
    assert_eq!(tag.status, 201, "{}", tag.body);
    let bad = daemon.request("POST", "/images/c:2/tag?repo=UPPER&tag=x");
    assert_eq!(bad.status, 400, "{}", bad.body);

    let list = daemon.request("GET", "/images/json?filters=%7B%22reference%22%3A%5B%22c%22%5D%7D");
    assert_eq!(list.status, 200);
    let list = list.json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["RepoTags"], serde_json::json!(["c:2"]));
    assert_eq!(
        (list[0]["SharedSize"].as_i64(), list[0]["Containers"].as_i64()),
        (Some(-1), Some(-1))
    );

    let deleted = daemon.request("DELETE", "/images/c:2");
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json(), serde_json::json!([{"Untagged": "c:2"}]));

    let history = daemon.request("GET", "/images/localhost:5000/a/b:1/history");
    assert_eq!(history.json()[0]["Id"], id.as_str());

    let tar = daemon.request("GET", "/images/nope/get");
    assert_eq!(tar.status, 404);
}

#[test]
fn import_refuses_a_bad_reference_and_a_bad_change() {
    let daemon = TestDaemon::start();
    let tar = busybox_rootfs_tar(daemon.dir.path());
    let tar = tar.to_str().expect("utf-8");
    let bad = daemon.kiln_run(&["import", tar, "UPPER/case"]);
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert!(bad.stderr.contains("must be lowercase"), "{bad:?}");
    let bad: Run = daemon.kiln_run(&["import", "--change", "FROB x", tar, "x:1"]);
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert!(bad.stderr.starts_with("Error response from daemon: "), "{bad:?}");
    assert!(daemon.image_names().is_empty());
}

#[test]
fn save_refuses_to_write_an_archive_to_a_terminal() {
    let Some(script) = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .map(std::path::Path::new)
        .find(|p| p.is_file())
    else {
        eprintln!("skipped: no script(1) to give kiln a terminal");
        return;
    };
    let daemon = TestDaemon::start();
    let kiln = kiln_testing::kiln_bin();
    let line = format!("{} --host {} save anything", kiln.display(), daemon.host());
    let run = Run::of(std::process::Command::new(script).args(["-qec", &line, "/dev/null"]));
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout.contains("cowardly refusing to save to a terminal. Use the -o flag or redirect"),
        "{run:?}"
    );
}

#[test]
fn a_daemon_killed_during_a_load_restarts_with_its_images_and_no_partial_blobs() {
    let source = TestDaemon::start();
    source.import_busybox("big:1");
    let archive = source.dir.path().join("big.tar");
    source.kiln_ok(&["save", "-o", archive.to_str().expect("utf-8"), "big:1"]);
    let bytes = std::fs::read(&archive).expect("read archive");

    let mut victim = TestDaemon::start();
    let small = victim.dir.path().join("small");
    std::fs::create_dir(&small).expect("mkdir");
    std::fs::write(small.join("hello"), "world\n").expect("write");
    let small_tar = victim.dir.path().join("small.tar");
    Run::ok(
        std::process::Command::new("tar").arg("-C").arg(&small).arg("-cf").arg(&small_tar).arg("."),
    );
    victim.kiln_ok(&["import", small_tar.to_str().expect("utf-8"), "small:1"]);

    let mut load = victim
        .kiln()
        .arg("load")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kiln load");
    let mut stdin = load.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, &bytes[..bytes.len() / 2]).expect("send half");
    let ingest = victim.root().join("content/ingest");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_dir(&ingest).map_or(0, Iterator::count) == 0 {
        assert!(std::time::Instant::now() < deadline, "the load never started a blob");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    // kill -9 mid-blob, then start again on the same root.
    let mut child = victim.child.take().expect("daemon");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    drop(stdin);
    let _ = load.kill();
    let _ = load.wait();
    victim.child = Some(victim.command().spawn().expect("restart"));
    victim.wait_until_serving();

    assert_eq!(std::fs::read_dir(&ingest).map_or(0, Iterator::count), 0, "partial blobs are gone");
    assert_eq!(victim.image_names(), ["small:1"]);
    let loaded = victim.kiln_ok(&["load", "-i", archive.to_str().expect("utf-8")]);
    assert_eq!(loaded, "Loaded image: big:1\n");
    assert_eq!(victim.image_names(), ["big:1", "small:1"]);
}

#[test]
fn image_prune_removes_untagged_images_then_with_all_every_image() {
    let daemon = TestDaemon::start();
    let tagged = daemon.import_busybox("kept:1");
    let tar = busybox_rootfs_tar(daemon.dir.path());
    let dangling = daemon.kiln_ok(&["import", "-m", "no tag", tar.to_str().expect("utf-8")]);
    let dangling = dangling.trim();
    let listed = daemon.kiln_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(listed.lines().filter(|l| *l == "<none>:<none>").count(), 1, "{listed}");

    let pruned = daemon.kiln_ok(&["image", "prune", "-f"]);
    assert!(pruned.starts_with(&format!("Deleted Images:\ndeleted: {dangling}\n\n")), "{pruned}");
    assert!(pruned.contains("Total reclaimed space: "), "{pruned}");
    assert_eq!(daemon.image_names(), ["kept:1"]);

    let pruned = daemon.kiln_ok(&["image", "prune", "-a", "-f"]);
    assert!(
        pruned.starts_with(&format!("Deleted Images:\nuntagged: kept:1\ndeleted: {tagged}\n")),
        "{pruned}"
    );
    assert!(daemon.image_names().is_empty());
    assert_eq!(daemon.kiln_ok(&["image", "prune", "-f"]), "Total reclaimed space: 0B\n");
}
