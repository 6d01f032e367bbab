//! Helpers for the shim tests: a bundle, a state dir and a runtime root in
//! temp dirs, the shim started as the daemon would, and a client for its
//! control socket.

#![allow(dead_code)]

use std::io::{BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kiln_shim::protocol::{self, read_frame, read_line, write_frame};
pub use kiln_shim::protocol::{ExitRecord, Frame, FrameKind, Reply, Request};
pub use kiln_testing::{require_privileged, Bundle, RuntimeRoot, ScratchDir};
use serde_json::Value;

/// How long any single step may take before the test fails.
pub const STEP: Duration = Duration::from_secs(20);

/// One container under a shim: its bundle, state dir, runtime root and log.
#[derive(Debug)]
pub struct Shim {
    // Dropped in this order: containers first, then their files.
    pub root: RuntimeRoot,
    pub bundle: Bundle,
    pub dir: ScratchDir,
    /// The ready line.
    pub ready: Reply,
    pub flags: Vec<&'static str>,
}

impl Shim {
    /// A bundle running `args` (config edited by `edit`); not started yet.
    pub fn bundle(args: &[&str], edit: impl FnOnce(&mut Value)) -> Bundle {
        let bundle = Bundle::busybox();
        let mut config = bundle.config(args);
        edit(&mut config);
        bundle.write_config(&config);
        bundle
    }

    /// Starts `kiln shim` for `bundle` with `flags` and reads its ready line.
    pub fn launch(bundle: Bundle, flags: &[&'static str]) -> Shim {
        let root = RuntimeRoot::new();
        let dir = ScratchDir::new().expect("scratch dir");
        let mut shim = Shim { root, bundle, dir, ready: Reply::default(), flags: flags.to_vec() };
        shim.ready = shim.spawn();
        shim
    }

    /// Like [`Shim::launch`] with a fresh bundle running `args`.
    pub fn run(args: &[&str], flags: &[&'static str]) -> Shim {
        Shim::launch(Shim::bundle(args, |_| {}), flags)
    }

    pub fn id(&self) -> &str {
        self.bundle.name()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("container-json.log")
    }

    pub fn socket(&self) -> PathBuf {
        self.state_dir().join("shim.sock")
    }

    fn spawn(&self) -> Reply {
        let mut cmd = Command::new(kiln_testing::kiln_bin());
        cmd.arg("shim")
            .args(["--id", self.id()])
            .arg("--bundle")
            .arg(self.bundle.path())
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--runtime-root")
            .arg(self.root.path())
            .arg("--log-path")
            .arg(self.log_path())
            .args(&self.flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("kiln shim runs");
        let stdout = child.stdout.take().expect("stdout pipe");
        // The first process exits right after forking the real shim.
        let status = child.wait().expect("wait for kiln shim");
        assert!(status.success(), "kiln shim's first process failed: {status}");
        let (tx, rx) = std::sync::mpsc::channel();
        // One line, then the end of file (before the container is started:
        // a daemon may read to the end).
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stdout).read_to_string(&mut text);
            let _ = tx.send(text);
        });
        let line = rx.recv_timeout(STEP).expect("the shim writes its ready line and closes");
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "one ready line expected: {line:?}"
        );
        protocol::parse_reply(line.as_bytes())
            .unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}"))
    }

    /// The shim's pid (from shim.pid).
    pub fn pid(&self) -> i32 {
        let text = std::fs::read_to_string(self.state_dir().join("shim.pid")).expect("shim.pid");
        text.trim().parse().expect("pid")
    }

    /// The container init's pid (from the ready line).
    pub fn init_pid(&self) -> i32 {
        assert!(self.ready.ok, "shim failed: {:?}", self.ready);
        self.ready.pid.expect("ready line has the pid")
    }

    /// Connects and sends `request`; returns the stream and the reply.
    pub fn request(&self, request: &Request) -> (UnixStream, Reply) {
        let mut sock = UnixStream::connect(self.socket()).expect("connect to shim.sock");
        sock.set_read_timeout(Some(STEP)).expect("timeout");
        protocol::write_line(&mut sock, request).expect("send request");
        let reply = read_reply(&mut sock);
        (sock, reply)
    }

    /// Sends a raw request line; returns the reply.
    pub fn raw_request(&self, line: &[u8]) -> (UnixStream, Reply) {
        let mut sock = UnixStream::connect(self.socket()).expect("connect to shim.sock");
        sock.set_read_timeout(Some(STEP)).expect("timeout");
        sock.write_all(line).expect("send request");
        let reply = read_reply(&mut sock);
        (sock, reply)
    }

    pub fn start(&self) -> Reply {
        self.request(&Request::Start).1
    }

    /// Starts the container and fails the test unless that worked.
    pub fn start_ok(&self) -> i32 {
        let reply = self.start();
        assert!(reply.ok, "start failed: {reply:?}");
        reply.pid.expect("start reply has the pid")
    }

    pub fn attach(&self, stdin: bool, stdout: bool, stderr: bool) -> UnixStream {
        let (sock, reply) = self.request(&Request::Attach { stdin, stdout, stderr });
        assert!(reply.ok, "attach failed: {reply:?}");
        sock
    }

    pub fn wait(&self) -> UnixStream {
        let (sock, reply) = self.request(&Request::Wait);
        assert_eq!(reply, Reply::ok());
        sock
    }

    /// The container's log, as (stream, text) pairs.
    pub fn log(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("bad log line {line:?}: {e}"));
                assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{line}");
                (
                    v["stream"].as_str().unwrap_or("").to_owned(),
                    v["log"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    pub fn exit_record(&self) -> Option<ExitRecord> {
        kiln_shim::read_record(&self.state_dir().join("exit.json")).ok()
    }

    /// Waits for the shim process to end; fails the test after [`STEP`].
    pub fn wait_gone(&self) {
        let pid = self.pid();
        assert!(eventually(STEP, || !process_alive(pid)), "shim {pid} is still running");
    }

    /// What the shim leaves behind once it is gone: runtime state, mounts
    /// under the bundle, its socket.
    pub fn assert_nothing_left(&self) {
        self.wait_gone();
        let leftovers: Vec<_> = std::fs::read_dir(self.root.path())
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "runtime state left: {leftovers:?}");
        let mounts = mounts_under(self.bundle.path());
        assert!(mounts.is_empty(), "mounts left under the bundle: {mounts:?}");
        assert!(!self.socket().exists(), "shim.sock left");
        let cgroup = Path::new("/sys/fs/cgroup/memory/kiln-t").join(self.id());
        assert!(!cgroup.exists(), "cgroup {} left", cgroup.display());
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        // A failed test may leave the shim running: stop it before the
        // runtime root (dropped next) deletes the container.
        if let Ok(text) = std::fs::read_to_string(self.state_dir().join("shim.pid")) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                if process_alive(pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

pub fn read_reply(sock: &mut UnixStream) -> Reply {
    let line = read_line(sock).expect("read reply").expect("a reply line");
    protocol::parse_reply(&line).unwrap_or_else(|e| panic!("bad reply {line:?}: {e}"))
}

/// Everything a stream client receives until the exit frame (or the end).
#[derive(Debug, Default)]
pub struct Received {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: Option<ExitRecord>,
    /// Whether the shim closed the connection after the exit frame.
    pub closed_after_exit: bool,
}

impl Received {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn exit_code(&self) -> i32 {
        self.exit.as_ref().expect("an exit frame").exit_code
    }
}

/// Reads frames until the exit frame and the end of the stream.
pub fn read_until_exit(sock: &mut UnixStream) -> Received {
    let mut got = Received::default();
    loop {
        match read_frame(sock) {
            Ok(Some(Frame { kind: FrameKind::Stdout, payload })) => got.stdout.extend(payload),
            Ok(Some(Frame { kind: FrameKind::Stderr, payload })) => got.stderr.extend(payload),
            Ok(Some(Frame { kind: FrameKind::Exit, payload })) => {
                got.exit = Some(serde_json::from_slice(&payload).expect("exit record"));
                got.closed_after_exit = matches!(read_frame(sock), Ok(None));
                return got;
            }
            Ok(Some(other)) => panic!("unexpected frame from the shim: {other:?}"),
            Ok(None) => return got,
            Err(e) => panic!("reading frames: {e} (so far: {got:?})"),
        }
    }
}

/// Reads stdout frames until `want` has appeared in them.
pub fn read_stdout_until(sock: &mut UnixStream, want: &str) -> String {
    let mut text = Vec::new();
    while !String::from_utf8_lossy(&text).contains(want) {
        match read_frame(sock) {
            Ok(Some(Frame { kind: FrameKind::Stdout, payload })) => text.extend(payload),
            other => panic!(
                "waiting for {want:?}: got {other:?} after {:?}",
                String::from_utf8_lossy(&text)
            ),
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

pub fn send(sock: &mut UnixStream, kind: FrameKind, payload: &[u8]) {
    write_frame(sock, kind, payload).expect("send frame");
}

pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // A zombie is gone for our purposes: its parent is not us.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
    }
}

pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    check()
}

/// Mount points at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = dir.to_string_lossy().into_owned();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&dir))
        .map(str::to_owned)
        .collect()
}

/// A memory figure of a process in KiB (`VmRSS`, `RssAnon` … of /proc/PID/status).
pub fn rss_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
