//! OCI hooks at each point of the lifecycle, the console socket and the
//! runtime's own terminal, plain stdio without a terminal, and signals that
//! `run` forwards to the container.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kiln_testing::ScratchDir;
use serde_json::{json, Value};

use crate::common::{
    cgroup_dir, kiln, kiln_ok, outcome, require_privileged, start_detached, state, Bundle, Outcome,
    RuntimeRoot,
};

/// Writes an executable `#!/bin/sh` script with `body` at `path`.
fn write_script(path: &Path, body: &str) -> PathBuf {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n"))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
    path.to_owned()
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Runs `kiln runtime ARGS` with stdout and stderr in files under `dir`,
/// not pipes: a created container's process inherits them and would keep a
/// pipe open for as long as it lives.
fn kiln_to_files(root: &RuntimeRoot, dir: &Path, args: &[&str]) -> Outcome {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let (out_path, err_path) =
        (dir.join(format!("kiln-{n}.out")), dir.join(format!("kiln-{n}.err")));
    let create = |p: &Path| File::create(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let status = root
        .runtime()
        .args(args)
        .stdin(Stdio::null())
        .stdout(create(&out_path))
        .stderr(create(&err_path))
        .status()
        .expect("kiln runs");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Outcome { code: status.code().unwrap_or(-1), stdout: read(&out_path), stderr: read(&err_path) }
}

/// `kiln runtime create` of the bundle's written config, output in `dir`.
fn create(root: &RuntimeRoot, bundle: &Bundle, dir: &Path, extra: &[&str]) -> Outcome {
    let mut args = vec!["create", "--bundle", utf8(bundle.path())];
    args.extend_from_slice(extra);
    args.push(bundle.name());
    kiln_to_files(root, dir, &args)
}

fn hook(path: &Path, args: &[&str], env: &[&str]) -> Value {
    json!({ "path": utf8(path), "args": args, "env": env })
}

/// Waits for `child` up to `limit`; kills it and returns None past that.
fn wait_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Everything read from a pty master until its other side is closed by all
/// (EIO); fails the test when that takes longer than `limit`.
fn read_terminal(master: OwnedFd, limit: Duration) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut file = File::from(master);
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EIO: every holder of the terminal's other side has closed it.
                Err(_) => break,
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the terminal stayed open for more than {limit:?}"))
}

/// Accepts the runtime's connection on a console socket and takes the pty
/// master it sends.
fn receive_master(listener: &UnixListener) -> OwnedFd {
    listener.set_nonblocking(true).expect("nonblocking listener");
    let deadline = Instant::now() + Duration::from_secs(5);
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("nothing connected to the console socket: {e}"),
        }
    };
    stream.set_nonblocking(false).expect("blocking stream");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("read timeout");
    kiln_runtime::receive_master(&stream).expect("a pty master arrives on the console socket")
}

/// One hook's record in the shared log: its name, the tag from its env, and
/// the state JSON it read on stdin.
#[derive(Debug)]
struct HookRun {
    name: String,
    tag: String,
    state: Value,
}

fn hook_log(path: &Path) -> Vec<HookRun> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let (name, tag, json) = (parts.next(), parts.next(), parts.next());
            let state = serde_json::from_str(json.unwrap_or_default())
                .unwrap_or_else(|e| panic!("hook log line without state JSON ({e}): {line}"));
            HookRun {
                name: name.unwrap_or_default().into(),
                tag: tag.unwrap_or_default().into(),
                state,
            }
        })
        .collect()
}

fn names(runs: &[HookRun]) -> Vec<&str> {
    runs.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn every_hook_kind_runs_in_order_with_the_container_state() {
    require_privileged!();
    let bundle = Bundle::busybox();
    let root = RuntimeRoot::new();
    let out = ScratchDir::new().expect("scratch");
    // One script in the rootfs serves every hook: the host ones run it by its
    // host path, startContainer (inside the container) as /hook.sh. All append
    // to the same file, rootfs/hooks.log.
    let log_host = bundle.rootfs().join("hooks.log");
    let script = write_script(
        &bundle.rootfs().join("hook.sh"),
        r#"state=$(cat); echo "$1 $HOOK_TAG $state" >> "$HOOK_LOG""#,
    );
    let host_env = ["PATH=/usr/bin:/bin", "HOOK_TAG=from-env"];
    let host_hook = |name: &str| {
        let log = format!("HOOK_LOG={}", log_host.display());
        hook(&script, &["hook.sh", name], &[host_env[0], host_env[1], &log])
    };
    let mut config = bundle.config(&["sleep", "30"]);
    config["hooks"] = json!({
        "prestart": [host_hook("prestart")],
        "createRuntime": [host_hook("createRuntime")],
        "createContainer": [host_hook("createContainer")],
        "startContainer": [hook(Path::new("/hook.sh"), &["hook.sh", "startContainer"],
            &["PATH=/bin", "HOOK_TAG=from-env", "HOOK_LOG=/hooks.log"])],
        "poststart": [host_hook("poststart")],
        "poststop": [host_hook("poststop")],
    });
    bundle.write_config(&config);
    let id = bundle.name();

    let created = create(&root, &bundle, out.path(), &[]);
    assert_eq!(created.code, 0, "create failed: {}{}", created.stdout, created.stderr);
    let runs = hook_log(&log_host);
    assert_eq!(names(&runs), ["prestart", "createRuntime", "createContainer"], "after create");
    let pid = state(&root, id)["pid"].as_i64().expect("state has a pid");
    for run in &runs {
        assert_eq!(run.state["id"], id, "{} got the container's id", run.name);
        assert_eq!(run.state["status"], "creating", "{}", run.name);
        assert_eq!(run.tag, "from-env", "{} got the env of its hook entry", run.name);
    }
    assert!(pid > 0);
    assert_eq!(runs[1].state["pid"], pid, "createRuntime got the container's host pid");

    kiln_ok(&root, &["start", id]);
    let runs = hook_log(&log_host);
    assert_eq!(
        names(&runs),
        ["prestart", "createRuntime", "createContainer", "startContainer", "poststart"],
        "after start"
    );
    assert_eq!(runs[3].state["id"], id);
    assert_eq!(runs[3].tag, "from-env");
    // runc hands startContainer "created", Kiln "running": either is the container.
    assert!(
        matches!(runs[3].state["status"].as_str(), Some("created" | "running")),
        "{:?}",
        runs[3]
    );
    assert_eq!(runs[4].state["id"], id);
    assert_eq!(runs[4].state["status"], "running");

    kiln_ok(&root, &["delete", "--force", id]);
    let runs = hook_log(&log_host);
    assert_eq!(names(&runs).last(), Some(&"poststop"), "after delete: {:?}", names(&runs));
    assert_eq!(runs.len(), 6, "each hook ran once: {:?}", names(&runs));
    assert_eq!(runs[5].state["id"], id);
    assert_eq!(runs[5].state["status"], "stopped");
}

#[test]
fn hook_gets_argv0_args_and_only_the_env_of_its_entry() {
    require_privileged!();
    let bundle = Bundle::busybox();
    let root = RuntimeRoot::new();
    let out = ScratchDir::new().expect("scratch");
    // The static probe runs on the host as well; its report goes to create's stdout.
    let probe = bundle.rootfs().join("bin/probe");
    let mut config = bundle.config(&["true"]);
    config["hooks"] = json!({
        "prestart": [hook(&probe, &["argv0-of-hook", "report"], &["HOOK_VAR=set by config"])],
    });
    bundle.write_config(&config);

    let created = create(&root, &bundle, out.path(), &[]);
    assert_eq!(created.code, 0, "create failed: {}{}", created.stdout, created.stderr);
    let report: Value = serde_json::from_str(created.stdout.trim())
        .unwrap_or_else(|e| panic!("the hook printed no report ({e}): {}", created.stdout));
    assert_eq!(report["args"], json!(["argv0-of-hook", "report"]));
    assert_eq!(report["env"], json!(["HOOK_VAR=set by config"]));
}

/// A hook of `kind` that fails makes `create` fail and leaves no state and
/// no cgroup behind; the hook itself records that both existed while it ran.
fn failing_hook_fails_create_and_leaves_nothing(kind: &str) {
    let bundle = Bundle::busybox();
    let root = RuntimeRoot::new();
    let out = ScratchDir::new().expect("scratch");
    let id = bundle.name();
    let cgroup = cgroup_dir(&bundle, "memory");
    let state_dir = root.path().join(id);
    let seen = out.path().join("seen");
    let script = write_script(
        &out.path().join("failing-hook.sh"),
        &format!(
            "test -d {cg} && echo cgroup >> {seen}\ntest -d {st} && echo state >> {seen}\nexit 1",
            cg = cgroup.display(),
            st = state_dir.display(),
            seen = seen.display()
        ),
    );
    let mut config = bundle.config(&["true"]);
    config["hooks"] = json!({ kind: [hook(&script, &[], &["PATH=/usr/bin:/bin"])] });
    bundle.write_config(&config);

    let created = create(&root, &bundle, out.path(), &[]);
    assert_ne!(created.code, 0, "create with a failing {kind} hook succeeded");
    assert!(
        created.stderr.contains(utf8(&script)),
        "the error names the hook {}: {}",
        script.display(),
        created.stderr
    );
    let seen = std::fs::read_to_string(&seen).unwrap_or_default();
    assert_eq!(seen, "cgroup\nstate\n", "the {kind} hook ran while the container was being made");
    assert!(!state_dir.exists(), "state dir {} left behind", state_dir.display());
    assert!(!cgroup.exists(), "cgroup {} left behind", cgroup.display());
    assert_ne!(kiln(&root, &["state", id]).code, 0, "state still knows {id}");
}

#[test]
fn failing_prestart_hook_fails_create_and_leaves_nothing_behind() {
    require_privileged!();
    failing_hook_fails_create_and_leaves_nothing("prestart");
}

#[test]
fn failing_create_runtime_hook_fails_create_and_leaves_nothing_behind() {
    require_privileged!();
    failing_hook_fails_create_and_leaves_nothing("createRuntime");
}

#[test]
fn failing_create_container_hook_fails_create_and_leaves_nothing_behind() {
    require_privileged!();
    failing_hook_fails_create_and_leaves_nothing("createContainer");
}

#[test]
fn failing_start_container_hook_fails_start_and_the_process_never_runs() {
    require_privileged!();
    let bundle = Bundle::busybox();
    let root = RuntimeRoot::new();
    let out = ScratchDir::new().expect("scratch");
    write_script(&bundle.rootfs().join("fail.sh"), "exit 1");
    let mut config = bundle.config(&["touch", "/process-ran"]);
    config["hooks"] = json!({ "startContainer": [hook(Path::new("/fail.sh"), &[], &[])] });
    bundle.write_config(&config);
    let id = bundle.name();

    let created = create(&root, &bundle, out.path(), &[]);
    assert_eq!(created.code, 0, "create failed: {}{}", created.stdout, created.stderr);
    let started = kiln(&root, &["start", id]);
    assert_ne!(started.code, 0, "start succeeded although startContainer failed");
    assert_eq!(state(&root, id)["status"], "stopped");
    assert!(!bundle.rootfs().join("process-ran").exists(), "the process ran");
}

#[test]
fn failing_poststart_hook_only_warns_and_the_container_runs() {
    require_privileged!();
    let bundle = Bundle::busybox();
    let root = RuntimeRoot::new();
    let out = ScratchDir::new().expect("scratch");
    let script = write_script(&out.path().join("poststart.sh"), "exit 1");
    let mut config = bundle.config(&["sleep", "30"]);
    config["hooks"] = json!({ "poststart": [hook(&script, &[], &[])] });
    bundle.write_config(&config);
    let id = bundle.name();

    let created = create(&root, &bundle, out.path(), &[]);
    assert_eq!(created.code, 0, "create failed: {}{}", created.stdout, created.stderr);
    let started = kiln(&root, &["start", id]);
    assert_eq!(started.code, 0, "start failed: {}", started.stderr);
    assert!(
        started.stderr.contains("poststart") && started.stderr.contains(utf8(&script)),
        "no warning naming the poststart hook: {}",
        started.stderr
    );
    assert_eq!(state(&root, id)["status"], "running");
    kiln_ok(&root, &["delete", "--force", id]);
}

#[test]
fn hook_past_its_timeout_is_killed_and_create_fails_promptly() {
    require_privileged!();
    let bundle = Bundle::busybox();
    let root = RuntimeRoot::new();
    let out = ScratchDir::new().expect("scratch");
    // `sleep` is the shell's child: killing only the shell would leave it
    // holding create's stdout and stderr for ten seconds.
    let script = write_script(&out.path().join("slow.sh"), "sleep 10");
    let mut config = bundle.config(&["true"]);
    config["hooks"] = json!({
        "prestart": [{ "path": utf8(&script), "env": ["PATH=/usr/bin:/bin"], "timeout": 1 }],
    });
    bundle.write_config(&config);
    let id = bundle.name();

    let begun = Instant::now();
    // Through pipes, as a container engine reads a runtime's output.
    let created = kiln(&root, &["create", "--bundle", utf8(bundle.path()), id]);
    let took = begun.elapsed();
    assert_ne!(created.code, 0, "create with a hung hook succeeded");
    assert!(took < Duration::from_secs(3), "create took {took:?} with a 1 s hook timeout");
    assert!(
        created.stderr.contains("timed out") && created.stderr.contains(utf8(&script)),
        "the error names the hook and its timeout: {}",
        created.stderr
    );
    assert!(!root.path().join(id).exists(), "state left behind");
    assert!(!cgroup_dir(&bundle, "memory").exists(), "cgroup left behind");
}

#[test]
fn console_socket_receives_a_terminal_of_the_configured_size() {
    require_privileged!();
    let bundle = Bundle::busybox();
    let root = RuntimeRoot::new();
    let out = ScratchDir::new().expect("scratch");
    let socket = out.path().join("console.sock");
    let listener = UnixListener::bind(&socket).expect("bind console socket");
    let mut config = bundle.config(&["sh", "-c", "tty; stty size; echo done"]);
    config["process"]["terminal"] = true.into();
    config["process"]["consoleSize"] = json!({ "height": 40, "width": 100 });
    bundle.write_config(&config);
    let id = bundle.name();

    let created = create(&root, &bundle, out.path(), &["--console-socket", utf8(&socket)]);
    assert_eq!(created.code, 0, "create failed: {}{}", created.stdout, created.stderr);
    let master = receive_master(&listener);
    kiln_ok(&root, &["start", id]);
    let text = read_terminal(master, Duration::from_secs(5));

    // The terminal turns "\n" into "\r\n".
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("/dev/pts/") || *l == "/dev/console"),
        "stdin is not a terminal: {text:?}"
    );
    assert_eq!(lines.get(1), Some(&"40 100"), "stty size: {text:?}");
    assert_eq!(lines.get(2), Some(&"done"), "{text:?}");
}

#[test]
fn console_socket_process_reports_a_tty_on_its_stdin() {
    require_privileged!();
    let bundle = Bundle::busybox();
    let root = RuntimeRoot::new();
    let out = ScratchDir::new().expect("scratch");
    let socket = out.path().join("console.sock");
    let listener = UnixListener::bind(&socket).expect("bind console socket");
    let mut config = bundle.config(&["/bin/probe", "report"]);
    config["process"]["terminal"] = true.into();
    bundle.write_config(&config);

    let created = create(&root, &bundle, out.path(), &["--console-socket", utf8(&socket)]);
    assert_eq!(created.code, 0, "create failed: {}{}", created.stdout, created.stderr);
    let master = receive_master(&listener);
    kiln_ok(&root, &["start", bundle.name()]);
    let text = read_terminal(master, Duration::from_secs(5));
    let report: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("no report on the terminal ({e}): {text:?}"));
    assert_eq!(report["tty"], true, "{text}");
    let stdin = report["stdin"].as_str().unwrap_or_default();
    assert!(stdin.starts_with("/dev/pts/") || stdin == "/dev/console", "stdin is {stdin}");
}

#[test]
fn terminal_run_without_console_socket_relays_through_the_callers_terminal() {
    require_privileged!();
    let bundle = Bundle::busybox();
    let root = RuntimeRoot::new();
    let mut config = bundle.config(&["sh", "-c", "read x; echo got $x; exit 5"]);
    config["process"]["terminal"] = true.into();
    bundle.write_config(&config);

    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty"));
    let mut cmd = root.runtime();
    cmd.args(["run", "--bundle", utf8(bundle.path()), bundle.name()])
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave));
    let mut child = cmd.spawn().expect("kiln runs");
    drop(cmd);
    drop(pty.slave);
    let mut master = File::from(pty.master);
    master.write_all(b"abc\n").expect("type into the terminal");
    let status = wait_within(&mut child, Duration::from_secs(5));
    let text = read_terminal(master.into(), Duration::from_secs(5));

    let status = status.unwrap_or_else(|| panic!("kiln run did not finish: {text:?}"));
    assert!(text.contains("got abc"), "the container's output is not on the terminal: {text:?}");
    assert_eq!(status.code(), Some(5), "{text:?}");
}

#[test]
fn exec_tty_sends_a_terminal_to_the_console_socket() {
    require_privileged!();
    let bundle = Bundle::busybox();
    let root = RuntimeRoot::new();
    let out = ScratchDir::new().expect("scratch");
    start_detached(&root, &bundle, &bundle.config(&["sleep", "30"]));
    let socket = out.path().join("exec.sock");
    let listener = UnixListener::bind(&socket).expect("bind console socket");

    let mut child = root
        .runtime()
        .args(["exec", "--tty", "--console-socket", utf8(&socket), bundle.name()])
        .args(["sh", "-c", "tty; echo exec-done"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(out.path().join("exec.err")).expect("stderr file"))
        .spawn()
        .expect("kiln runs");
    let master = receive_master(&listener);
    let text = read_terminal(master, Duration::from_secs(5));
    let status = wait_within(&mut child, Duration::from_secs(5));
    let stderr = std::fs::read_to_string(out.path().join("exec.err")).unwrap_or_default();

    assert_eq!(status.and_then(|s| s.code()), Some(0), "exec failed: {stderr}");
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("/dev/pts/")),
        "tty printed no /dev/pts/N: {text:?}"
    );
    assert_eq!(lines.get(1), Some(&"exec-done"), "{text:?}");
}

#[test]
fn without_terminal_the_process_uses_the_callers_stdin_and_stdout() {
    require_privileged!();
    let bundle = Bundle::busybox();
    let root = RuntimeRoot::new();
    bundle.write_config(&bundle.config(&["sh", "-c", "read x; echo got $x"]));

    let mut child = root
        .runtime()
        .args(["run", "--bundle", utf8(bundle.path()), bundle.name()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kiln runs");
    child.stdin.take().expect("stdin").write_all(b"abc\n").expect("write stdin");
    let out = outcome(child.wait_with_output().expect("kiln finishes"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "got abc\n");
}

#[test]
fn foreground_run_forwards_sigterm_to_the_container() {
    require_privileged!();
    let bundle = Bundle::busybox();
    let root = RuntimeRoot::new();
    let out = ScratchDir::new().expect("scratch");
    let script = r#"trap "echo caught; exit 42" TERM; echo ready; while true; do sleep 0.1; done"#;
    bundle.write_config(&bundle.config(&["sh", "-c", script]));

    let mut child = root
        .runtime()
        .args(["run", "--bundle", utf8(bundle.path()), bundle.name()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(out.path().join("run.err")).expect("stderr file"))
        .spawn()
        .expect("kiln runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read stdout");
    assert_eq!(first, "ready\n", "the container did not start");
    assert_eq!(state(&root, bundle.name())["status"], "running");

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal kiln");
    let status = wait_within(&mut child, Duration::from_secs(5));
    let stderr = std::fs::read_to_string(out.path().join("run.err")).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("kiln run ignored SIGTERM: {stderr}"));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read stdout");
    assert_eq!(rest, "caught\n", "{stderr}");
    assert_eq!(status.code(), Some(42), "{stderr}");
}
