//! `kiln image bootstrap` with the real mmdebstrap and Debian's mirror, as
//! root: the same package set built twice is the same image, and Python
//! runs in it. scripts/test installs mmdebstrap; without it these fail.

use std::time::{Duration, Instant};

use crate::common::{Run, TestDaemon};

/// mmdebstrap on PATH, or a failure that says how to get it.
fn require_mmdebstrap() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    assert!(
        std::env::split_paths(&path).any(|dir| dir.join("mmdebstrap").is_file()),
        "no mmdebstrap on PATH: run scripts/test, which installs it (apt-get install mmdebstrap)"
    );
}

/// `kiln image bootstrap ARGS` against `daemon`, and how long it took.
fn bootstrap(daemon: &TestDaemon, args: &[&str]) -> (Run, Duration) {
    let started = Instant::now();
    let run = daemon.kiln_run(&[&["image", "bootstrap"], args].concat());
    (run, started.elapsed())
}

#[test]
fn the_same_python_set_bootstrapped_twice_is_one_image_and_python_runs() {
    kiln_testing::require_privileged!();
    require_mmdebstrap();
    // Two daemons on fresh roots, so the second build cannot reuse
    // anything of the first; mmdebstrap runs twice, at the same time to
    // keep the test's wall time near one build (about 40 s here).
    let daemons = [TestDaemon::start(), TestDaemon::start()];
    let tag = format!("{}:3.11-slim", kiln_testing::unique_name());
    let args = ["debian:bookworm", "--include", "python3", "-t", tag.as_str()];
    let builds: Vec<(Run, Duration)> = std::thread::scope(|scope| {
        let running: Vec<_> =
            daemons.iter().map(|daemon| scope.spawn(move || bootstrap(daemon, &args))).collect();
        running.into_iter().map(|build| build.join().expect("bootstrap thread")).collect()
    });
    for (run, took) in &builds {
        eprintln!("kiln image bootstrap took {:.1} s", took.as_secs_f64());
        assert_eq!(run.code, Some(0), "{run:?}");
        assert!(run.stderr.contains("I: creating tarball"), "progress goes to stderr: {run:?}");
    }
    let id = builds[0].0.stdout.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{:?}", builds[0].0);
    assert_eq!(builds[1].0.stdout.trim(), id, "two builds of one package set, two image ids");

    let daemon = &daemons[0];
    assert_eq!(daemon.image_names(), std::slice::from_ref(&tag));
    let inspect: serde_json::Value =
        serde_json::from_str(&daemon.kiln_ok(&["image", "inspect", &tag])).expect("inspect JSON");
    let image = &inspect[0];
    assert_eq!(image["Created"], "1970-01-01T00:00:00Z", "dated at SOURCE_DATE_EPOCH=0");
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["bash"]));
    assert_eq!(image["Comment"], "mmdebstrap --variant=minbase --include=python3 bookworm");

    let python = daemon.kiln_ok(&["run", "--rm", &tag, "python3", "-c", "print(6*7)"]);
    assert_eq!(python, "42\n");
    let release = daemon.kiln_ok(&["run", "--rm", &tag, "cat", "/etc/debian_version"]);
    assert!(release.starts_with("12."), "bookworm is Debian 12: {release}");
}

#[test]
fn a_package_or_suite_that_does_not_exist_is_one_error_and_leaves_no_image() {
    kiln_testing::require_privileged!();
    require_mmdebstrap();
    let daemon = TestDaemon::start();
    // The custom variant asks apt for the packages first, so a missing one
    // fails in seconds rather than after the base system is installed.
    let missing = kiln_testing::unique_name();
    let (run, _) = bootstrap(
        &daemon,
        &["bookworm", "--variant", "custom", "--include", &missing, "-q", "-t", "broken:1"],
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "Error response from daemon: cannot bootstrap bookworm: Unable to locate package {missing}\n"
        )
    );
    assert_eq!(run.stdout, "");

    let (run, _) = bootstrap(&daemon, &["kiln-t-no-such-suite", "-q", "-t", "broken:1"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr
            .starts_with("Error response from daemon: cannot bootstrap kiln-t-no-such-suite: ")
            && run.stderr.contains("does not have a Release file"),
        "{run:?}"
    );

    assert!(daemon.image_names().is_empty());
    let blobs = daemon.root().join("content/blobs/sha256");
    assert_eq!(std::fs::read_dir(&blobs).map_or(0, Iterator::count), 0, "no blob is left");
}

#[test]
fn bad_names_are_refused_before_anything_runs() {
    let daemon = TestDaemon::start();
    for (query, wanted) in [
        ("suite=bookworm&include=-oAPT::x&tag=x", "invalid package \"-oAPT::x\""),
        ("suite=--help&tag=x", "invalid suite \"--help\""),
        ("suite=bookworm&variant=tiny&tag=x", "invalid variant \"tiny\""),
        ("suite=bookworm&mirror=deb+http://x&tag=x", "invalid mirror"),
        ("suite=bookworm&tag=UPPER/case", "invalid reference"),
        ("suite=bookworm", "a tag for the image is required"),
        ("suite=bookworm&tag=x&changes=FROB+x", "FROB is not a valid change command"),
    ] {
        let answer = daemon.request("POST", &format!("/v1.47/kiln/images/bootstrap?{query}"));
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        let message = answer.json()["message"].as_str().expect("message").to_owned();
        assert!(message.contains(wanted), "{query}: {message}");
    }
    let run = daemon.kiln_run(&["image", "bootstrap", "Bookworm", "-t", "x"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.starts_with("Error response from daemon: invalid suite \"Bookworm\""),
        "{run:?}"
    );
    assert!(daemon.image_names().is_empty());
}
