//! What surrounds a container, through `kiln`: its memory limit ends in an
//! OOM kill that inspect and events report, `ps --filter` finds it by
//! health and by volume, and volumes and images report their lives as
//! events. The container tests need root (`KILN_PRIVILEGED_TESTS=1`); the
//! events of volumes and images do not.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::TestDaemon;

fn daemon_with_busybox() -> TestDaemon {
    let daemon = TestDaemon::start();
    daemon.import_busybox("bb");
    daemon
}

fn unique() -> String {
    kiln_testing::unique_name()
}

/// Now as the API's `secs.nanos`, for `--until`.
fn now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

/// Every event so far that `filters` select, as JSON.
fn events(daemon: &TestDaemon, filters: &[&str]) -> Vec<Value> {
    let until = now();
    let mut args = vec!["events", "--since", "0", "--until", &until, "--format", "{{json .}}"];
    for filter in filters {
        args.extend(["--filter", filter]);
    }
    daemon
        .kiln_ok(&args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("event {l:?}: {e}")))
        .collect()
}

/// `(Action, Actor.ID)` of each event.
fn actions(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (text(&e["Action"]), text(&e["Actor"]["ID"]))
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[test]
fn a_container_over_its_memory_limit_is_oom_killed_and_says_so() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let (hog, modest) = (unique(), unique());
    // The shell holds the whole 64 MiB string: four times the limit, and
    // more than Docker's default swap allowance (as much again) adds.
    let grow = |name: &str, size: &str| {
        let script = format!("x=$(head -c {size} /dev/zero | tr '\\0' a); echo ${{#x}}");
        daemon.kiln_run(&[
            "run",
            "--name",
            name,
            "--memory",
            "16m",
            "--network",
            "none",
            "bb",
            "sh",
            "-c",
            &script,
        ])
    };
    let killed = grow(&hog, "64m");
    assert_eq!(killed.code, Some(137), "{killed:?}");
    assert_eq!(killed.stdout, "", "the string was never finished: {killed:?}");
    let state = |name: &str| {
        daemon.kiln_ok(&["inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", name])
    };
    assert_eq!(state(&hog).trim(), "true 137");
    let fine = grow(&modest, "1m");
    assert_eq!((fine.code, fine.stdout.trim()), (Some(0), "1048576"), "{fine:?}");
    assert_eq!(state(&modest).trim(), "false 0");
    let ooms = events(&daemon, &["event=oom"]);
    let names: Vec<&str> =
        ooms.iter().filter_map(|e| e["Actor"]["Attributes"]["name"].as_str()).collect();
    assert_eq!(names, [hog.as_str()], "one oom event, for the hog");
}

/// Poll until `kiln ps ARGS` prints `want`.
fn wait_for_ps(daemon: &TestDaemon, args: &[&str], want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut all = vec!["ps", "--format", "{{.Names}}"];
        all.extend_from_slice(args);
        let got = daemon.kiln_ok(&all);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "kiln ps {args:?} printed {got:?}, not {want:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ps_filters_by_health_and_by_volume() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let (healthy, sick, waiting, plain) = (unique(), unique(), unique(), unique());
    let volume = unique();
    let bound = daemon.dir.path().join("bound");
    std::fs::create_dir(&bound).expect("bind source");
    let bind = format!("{}:/srv", bound.display());
    let with_volume = format!("{volume}:/data");
    let run = |name: &str, extra: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
        args.extend_from_slice(extra);
        args.extend(["bb", "sleep", "1000"]);
        daemon.kiln_ok(&args);
    };
    run(&healthy, &["--health-cmd", "true", "--health-interval", "1s"]);
    run(&sick, &["--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1"]);
    // The first probe comes after one interval: this one stays `starting`.
    run(&waiting, &["--health-cmd", "true", "--health-interval", "1h", "-v", &bind]);
    run(&plain, &["-v", &with_volume]);

    wait_for_ps(&daemon, &["--filter", "health=healthy"], &format!("{healthy}\n"));
    wait_for_ps(&daemon, &["--filter", "health=unhealthy"], &format!("{sick}\n"));
    wait_for_ps(&daemon, &["--filter", "health=starting"], &format!("{waiting}\n"));
    wait_for_ps(&daemon, &["--filter", "health=none"], &format!("{plain}\n"));
    let both = daemon.kiln_ok(&[
        "ps",
        "--format",
        "{{.Names}}",
        "--filter",
        "health=healthy",
        "--filter",
        "health=none",
    ]);
    let mut both: Vec<&str> = both.lines().collect();
    both.sort_unstable();
    let mut want = vec![healthy.as_str(), plain.as_str()];
    want.sort_unstable();
    assert_eq!(both, want, "values of one key are alternatives");

    for by in [volume.as_str(), "/data"] {
        wait_for_ps(&daemon, &["--filter", &format!("volume={by}")], &format!("{plain}\n"));
    }
    let source = bound.display().to_string();
    for by in [source.as_str(), "/srv"] {
        wait_for_ps(&daemon, &["--filter", &format!("volume={by}")], &format!("{waiting}\n"));
    }
    wait_for_ps(&daemon, &["--filter", "volume=kiln-t-nothing"], "");
    // A stopped container is found too, with -a.
    daemon.kiln_ok(&["rm", "-f", &healthy, &sick, &waiting]);
    daemon.kiln_ok(&["stop", "-t", "1", &plain]);
    wait_for_ps(&daemon, &["-a", "--filter", &format!("volume={volume}")], &format!("{plain}\n"));
    wait_for_ps(&daemon, &["-a", "--filter", "is-task=false"], &format!("{plain}\n"));
    wait_for_ps(&daemon, &["-a", "--filter", "is-task=true"], "");

    for (filter, message) in [
        ("health=sickly", "Unrecognised filter value for health: sickly"),
        ("is-task=maybe", "invalid filter 'is-task=[maybe]'"),
        ("publish=80", "invalid filter 'publish'"),
    ] {
        let refused = daemon.kiln_run(&["ps", "--filter", filter]);
        assert_eq!(refused.code, Some(1), "{refused:?}");
        assert_eq!(
            refused.stderr.lines().next().unwrap_or_default(),
            format!("Error response from daemon: {message}"),
            "{refused:?}"
        );
    }
}

#[test]
fn volume_mounts_are_events_between_start_and_die() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let (name, volume) = (unique(), unique());
    let mount = format!("{volume}:/data:ro");
    daemon.kiln_ok(&["run", "--name", &name, "--network", "none", "-v", &mount, "bb", "true"]);
    let id = daemon.kiln_ok(&["inspect", "-f", "{{.Id}}", &name]).trim().to_owned();
    let all = events(&daemon, &[]);
    let story: Vec<(String, String)> = all
        .iter()
        .filter(|e| e["Actor"]["ID"] == id.as_str() || e["Actor"]["ID"] == volume.as_str())
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (text(&e["Type"]), text(&e["Action"]))
        })
        .collect();
    let want = [
        ("volume", "create"),
        ("container", "create"),
        ("volume", "mount"),
        ("container", "start"),
        ("volume", "unmount"),
        ("container", "die"),
    ];
    assert_eq!(story, pairs(&want));
    let mounted = all.iter().find(|e| e["Action"] == "mount").expect("mount event");
    let attributes = &mounted["Actor"]["Attributes"];
    assert_eq!(attributes["container"], id.as_str());
    assert_eq!(attributes["destination"], "/data");
    assert_eq!(attributes["read/write"], "false");
    assert_eq!(attributes["driver"], "local");
    let only_volumes = events(&daemon, &["type=volume", &format!("volume={volume}")]);
    assert_eq!(
        actions(&only_volumes),
        pairs(&[("create", &volume), ("mount", &volume), ("unmount", &volume)])
    );
}

#[test]
fn volumes_and_images_report_their_lives_as_events() {
    let daemon = TestDaemon::start();
    let volume = unique();
    daemon.kiln_ok(&["volume", "create", &volume]);
    daemon.kiln_ok(&["volume", "create", &volume]);
    daemon.kiln_ok(&["volume", "rm", &volume]);

    let id = daemon.import_busybox("kiln-t-first:1");
    daemon.kiln_ok(&["tag", "kiln-t-first:1", "kiln-t-second:2"]);
    let archive = daemon.dir.path().join("saved.tar");
    daemon.kiln_ok(&["save", "-o", archive.to_str().expect("utf-8"), "kiln-t-second:2"]);
    daemon.kiln_ok(&["rmi", "kiln-t-first:1"]);
    daemon.kiln_ok(&["rmi", "kiln-t-second:2"]);
    daemon.kiln_ok(&["load", "-i", archive.to_str().expect("utf-8")]);

    let volumes = events(&daemon, &["type=volume"]);
    assert_eq!(
        actions(&volumes),
        pairs(&[("create", &volume), ("destroy", &volume)]),
        "creating a volume that exists is no event"
    );
    assert!(volumes.iter().all(|e| e["Actor"]["Attributes"]["driver"] == "local"), "{volumes:?}");
    assert!(volumes.iter().all(|e| e["Type"] == "volume" && e["scope"] == "local"));

    let images = events(&daemon, &["type=image"]);
    let named: Vec<(String, String)> = images
        .iter()
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (text(&e["Action"]), text(&e["Actor"]["Attributes"]["name"]))
        })
        .collect();
    // docker-compat: untag and delete name the image by its id.
    let want = [
        ("tag", "kiln-t-first:1"),
        ("import", id.as_str()),
        ("tag", "kiln-t-second:2"),
        ("save", id.as_str()),
        ("untag", id.as_str()),
        ("untag", id.as_str()),
        ("delete", id.as_str()),
        ("load", id.as_str()),
    ];
    assert_eq!(named, pairs(&want));
    assert!(images.iter().all(|e| e["Actor"]["ID"] == id.as_str()), "{images:?}");
    assert!(images.iter().all(|e| e["status"] == e["Action"] && e["id"] == id.as_str()));

    // The image filter matches an image event by its name, with or
    // without the tag.
    let tagged = events(&daemon, &["image=kiln-t-second"]);
    assert_eq!(actions(&tagged), pairs(&[("tag", &id)]));
    assert!(events(&daemon, &["type=container"]).is_empty());
}
