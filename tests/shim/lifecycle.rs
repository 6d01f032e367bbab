//! From the ready line to the exit record: create, start, log, exit codes,
//! clean-up, and a shim that is told to go or killed.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::{
    eventually, mounts_under, process_alive, read_until_exit, require_privileged, rss_kib, Shim,
    STEP,
};

#[test]
fn output_reaches_attach_clients_and_the_log_and_the_exit_is_recorded() {
    require_privileged!();
    let shim = Shim::run(&["sh", "-c", "echo out; echo err >&2; exit 3"], &[]);
    let init = shim.init_pid();
    assert!(process_alive(init), "init {init} should wait for start");
    assert!(shim.exit_record().is_none());
    let mut attach = shim.attach(false, true, true);
    let mut only_stderr = shim.attach(false, false, true);
    let mut wait = shim.wait();
    assert_eq!(shim.start_ok(), init);

    let got = read_until_exit(&mut attach);
    assert_eq!(got.stdout(), "out\n");
    assert_eq!(got.stderr(), "err\n");
    assert_eq!(got.exit_code(), 3);
    assert!(got.closed_after_exit, "the shim closes after the exit frame");
    let stderr_only = read_until_exit(&mut only_stderr);
    assert_eq!((stderr_only.stdout(), stderr_only.stderr()), (String::new(), "err\n".into()));
    let waited = read_until_exit(&mut wait);
    assert!(waited.stdout.is_empty() && waited.stderr.is_empty());
    let exit = waited.exit.expect("wait gets the exit frame");
    assert_eq!((exit.exit_code, exit.pid, exit.oom_killed), (3, init, false));

    let record = shim.exit_record().expect("exit.json");
    assert_eq!(record, exit);
    assert!(record.finished_at.ends_with('Z') && record.finished_at.len() == 30, "{record:?}");
    let mut log = shim.log();
    log.sort();
    assert_eq!(log, [("stderr".into(), "err\n".into()), ("stdout".into(), "out\n".into())]);
    shim.assert_nothing_left();
}

#[test]
fn a_container_killed_with_sigkill_exits_137() {
    require_privileged!();
    let shim = Shim::run(&["sleep", "1000"], &[]);
    let pid = shim.start_ok();
    let mut wait = shim.wait();
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill the container");
    let got = read_until_exit(&mut wait);
    assert_eq!(got.exit_code(), 137);
    assert_eq!(shim.exit_record().map(|r| r.exit_code), Some(137));
    // After the exit, new clients get the exit frame at once (or find the shim gone).
    shim.assert_nothing_left();
}

#[test]
fn a_missing_command_fails_the_ready_line_with_127() {
    require_privileged!();
    let shim = Shim::run(&["nope"], &[]);
    assert!(!shim.ready.ok);
    assert_eq!(shim.ready.exit_code, Some(127), "{:?}", shim.ready);
    let message = shim.ready.message.clone().unwrap_or_default();
    assert!(message.contains("exec: \"nope\": executable file not found in $PATH"), "{message}");
    assert!(!message.contains('\n'));
    shim.assert_nothing_left();
}

#[test]
fn a_command_that_is_not_executable_fails_with_126() {
    require_privileged!();
    let bundle = Shim::bundle(&["/etc/passwd"], |_| {});
    let shim = Shim::launch(bundle, &[]);
    assert_eq!((shim.ready.ok, shim.ready.exit_code), (false, Some(126)), "{:?}", shim.ready);
    shim.assert_nothing_left();
}

#[test]
fn overlay_rootfs_is_mounted_for_the_container_and_detached_after() {
    require_privileged!();
    let bundle = Shim::bundle(&["sh", "-c", "echo made > /new-file; cat /etc/hostname"], |_| {});
    // The image moves to a lower dir; the rootfs is an overlay over it.
    let layers = kiln_testing::ScratchDir::new().expect("scratch");
    let lower = layers.path().join("lower");
    let (upper, work) = (layers.path().join("upper"), layers.path().join("work"));
    std::fs::rename(bundle.rootfs(), &lower).expect("move rootfs");
    std::fs::create_dir(&upper).expect("upper");
    std::fs::create_dir(&work).expect("work");
    let rootfs = kiln_shim::RootfsMount {
        fstype: "overlay".into(),
        source: "overlay".into(),
        options: vec![
            format!("lowerdir={}", lower.display()),
            format!("upperdir={}", upper.display()),
            format!("workdir={}", work.display()),
        ],
    };
    std::fs::write(
        bundle.path().join(kiln_shim::ROOTFS_FILE),
        serde_json::to_vec(&rootfs).expect("json"),
    )
    .expect("write kiln-rootfs.json");

    let shim = Shim::launch(bundle, &[]);
    assert!(shim.ready.ok, "{:?}", shim.ready);
    assert_eq!(mounts_under(&shim.bundle.rootfs()).len(), 1, "rootfs is mounted");
    let mut wait = shim.wait();
    shim.start_ok();
    assert_eq!(read_until_exit(&mut wait).exit_code(), 0);
    assert_eq!(std::fs::read_to_string(upper.join("new-file")).ok().as_deref(), Some("made\n"));
    assert!(!lower.join("new-file").exists(), "the lower dir is not written");
    assert!(shim.log().iter().any(|(_, text)| !text.is_empty()));
    shim.assert_nothing_left();
}

#[test]
fn sigterm_before_start_removes_the_container() {
    require_privileged!();
    let shim = Shim::run(&["sh", "-c", "echo never"], &[]);
    let init = shim.init_pid();
    kill(Pid::from_raw(shim.pid()), Signal::SIGTERM).expect("signal the shim");
    shim.assert_nothing_left();
    assert!(!process_alive(init));
    assert!(shim.log().is_empty());
}

#[test]
fn a_shim_killed_with_sigkill_leaves_no_client_hanging() {
    require_privileged!();
    let shim = Shim::run(&["sleep", "1000"], &[]);
    shim.start_ok();
    let mut attach = shim.attach(false, true, true);
    kill(Pid::from_raw(shim.pid()), Signal::SIGKILL).expect("kill the shim");
    let got = read_until_exit(&mut attach);
    assert!(got.exit.is_none(), "no exit frame from a dead shim");
    shim.wait_gone();
    // The test's drop deletes the orphaned container.
}

#[test]
fn many_lines_are_logged_quickly_and_none_is_lost() {
    require_privileged!();
    let shim = Shim::run(&["seq", "1", "200000"], &[]);
    let mut wait = shim.wait();
    let started = Instant::now();
    shim.start_ok();
    assert_eq!(read_until_exit(&mut wait).exit_code(), 0);
    let took = started.elapsed();
    let log = shim.log();
    assert_eq!(log.len(), 200_000);
    assert!(log
        .iter()
        .enumerate()
        .all(|(i, (stream, text))| stream == "stdout" && *text == format!("{}\n", i + 1)));
    assert!(took < Duration::from_secs(15), "200000 lines took {took:?}");
    shim.assert_nothing_left();
}

#[test]
fn an_idle_shim_stays_small() {
    require_privileged!();
    let shim = Shim::run(&["sleep", "1000"], &[]);
    shim.start_ok();
    let pid = shim.pid();
    std::thread::sleep(Duration::from_millis(200));
    let (rss, anon) = (rss_kib(pid, "VmRSS"), rss_kib(pid, "RssAnon"));
    eprintln!("idle shim: VmRSS {rss} KiB, of which anonymous {anon} KiB");
    // Its own memory (heap, stack, relocated data) stays small; the rest is
    // kiln's and libc's code, shared with the daemon and other shims. A
    // debug build has more of both.
    let limit = if cfg!(debug_assertions) { 3 * 1024 } else { 1536 };
    assert!(anon > 0 && anon < limit, "idle shim has {anon} KiB of its own memory");
    let mut wait = shim.wait();
    kill(Pid::from_raw(shim.init_pid()), Signal::SIGKILL).expect("kill");
    assert_eq!(read_until_exit(&mut wait).exit_code(), 137);
    assert!(eventually(STEP, || !process_alive(pid)));
}

#[test]
fn an_oom_kill_is_recorded() {
    require_privileged!();
    // dd allocates its 64 MiB block at once; the cgroup allows 16 MiB.
    let bundle = Shim::bundle(&["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=4"], |c| {
        c["linux"]["resources"] = serde_json::json!({ "memory": { "limit": 16 << 20 } });
    });
    let shim = Shim::launch(bundle, &[]);
    let mut wait = shim.wait();
    shim.start_ok();
    let exit = read_until_exit(&mut wait).exit.expect("exit frame");
    assert_eq!((exit.exit_code, exit.oom_killed), (137, true), "{exit:?}");
    assert_eq!(shim.exit_record(), Some(exit));
    shim.assert_nothing_left();
}
