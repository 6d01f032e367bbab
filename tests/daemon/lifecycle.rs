//! Starting and stopping the daemon.

use std::time::{Duration, Instant};

use crate::common::{terminate, TestDaemon};

#[test]
fn a_second_daemon_on_the_same_root_is_refused_while_the_first_serves() {
    let first = TestDaemon::start();
    let output = first.command().output().expect("run second daemon");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    let expected =
        format!("another kiln daemon is using {} (pid {})", first.root().display(), first.pid());
    assert!(stderr.contains(&expected), "stderr: {stderr}");
    assert_eq!(first.request("GET", "/_ping").body, "OK", "the first daemon keeps serving");
}

#[test]
fn sigterm_stops_the_daemon_with_status_0_and_removes_the_socket() {
    let mut daemon = TestDaemon::start();
    terminate(daemon.pid());
    let mut child = daemon.child.take().expect("child");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kiln daemon did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(!daemon.socket().exists(), "socket {} is left behind", daemon.socket().display());
    // The root is free again: a new daemon starts on it.
    daemon.child = Some(daemon.command().spawn().expect("restart"));
    // Connects, not the socket file: it exists a moment before it listens.
    daemon.wait_until_serving();
    assert_eq!(daemon.request("GET", "/_ping").body, "OK");
}
