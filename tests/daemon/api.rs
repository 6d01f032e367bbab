//! The API over the socket, as raw HTTP.

use crate::common::TestDaemon;

#[test]
fn ping_answers_ok_with_the_api_version_headers() {
    let daemon = TestDaemon::start();
    let ping = daemon.request("GET", "/_ping");
    assert_eq!((ping.status, ping.body.as_str()), (200, "OK"));
    assert_eq!(ping.header("api-version"), Some("1.47"));
    assert_eq!(ping.header("ostype"), Some("linux"));
    assert_eq!(ping.header("docker-experimental"), Some("false"));
    assert_eq!(ping.header("cache-control"), Some("no-cache, no-store, must-revalidate"));
    assert_eq!(ping.header("pragma"), Some("no-cache"));
    assert_eq!(ping.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(ping
        .header("server")
        .is_some_and(|s| s.starts_with("Kiln/") && s.ends_with(" (linux)")));

    let head = daemon.request("HEAD", "/v1.41/_ping");
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!(head.header("api-version"), Some("1.47"));
}

#[test]
fn version_reports_the_api_range_in_dockers_fields() {
    let daemon = TestDaemon::start();
    for path in ["/v1.41/version", "/version", "/v1.47/version"] {
        let answer = daemon.request("GET", path);
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let v = answer.json();
        assert_eq!(v["ApiVersion"], "1.47");
        assert_eq!(v["MinAPIVersion"], "1.41");
        assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["Os"], "linux");
        assert_eq!(v["Components"][0]["Name"], "Engine");
        assert!(v["Platform"]["Name"].as_str().is_some_and(|n| n.contains("Kiln")));
    }
}

#[test]
fn info_reports_the_daemons_root_and_storage() {
    let daemon = TestDaemon::start();
    let answer = daemon.request("GET", "/info");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let info = answer.json();
    assert_eq!(info["DockerRootDir"], daemon.root().display().to_string());
    assert_eq!(info["Driver"], "overlay2");
    assert_eq!(info["Containers"], 0);
    assert_eq!(info["Images"], 0);
    assert_eq!(info["OSType"], "linux");
    assert_eq!(info["CgroupDriver"], "cgroupfs");
    assert!(["1", "2"].contains(&info["CgroupVersion"].as_str().expect("CgroupVersion")));
    assert_eq!(info["DefaultRuntime"], "kiln");
    assert!(info["Runtimes"]["kiln"]["path"].as_str().is_some_and(|p| p.ends_with("kiln")));
    assert_eq!(info["SecurityOptions"][0], "name=seccomp,profile=builtin");
    assert!(info["NCPU"].as_u64().is_some_and(|n| n >= 1));
    assert!(info["MemTotal"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(info["ServerVersion"], env!("CARGO_PKG_VERSION"));
    // The same id across requests: it is the engine's, not the request's.
    assert_eq!(daemon.request("GET", "/v1.41/info").json()["ID"], info["ID"]);
}

#[test]
fn versions_outside_the_range_get_dockerds_400() {
    let daemon = TestDaemon::start();
    let old = daemon.request("GET", "/v1.40/version");
    assert_eq!(old.status, 400);
    assert_eq!(
        old.json(),
        serde_json::json!({"message": "client version 1.40 is too old. Minimum supported API version is 1.41, please upgrade your client to a newer version"})
    );
    assert_eq!(old.header("api-version"), Some("1.47"), "clients read the version from errors too");
    let new = daemon.request("GET", "/v9.99/version");
    assert_eq!(new.status, 400);
    assert_eq!(
        new.json(),
        serde_json::json!({"message": "client version 9.99 is too new. Maximum supported API version is 1.47"})
    );
}

#[test]
fn unknown_paths_are_404_as_json() {
    let daemon = TestDaemon::start();
    for path in ["/nope", "/v1.41/containers/json/nope", "/v1.40/nope"] {
        let answer = daemon.request("GET", path);
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_eq!(answer.json(), serde_json::json!({"message": "page not found"}), "{path}");
    }
    assert_eq!(daemon.request("POST", "/_ping").status, 404);
}
