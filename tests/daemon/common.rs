//! A daemon on a temp root, and a tiny raw HTTP client for its socket.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_testing::{kiln_bin, ScratchDir};

/// `kiln daemon --root R --exec-root E` on fresh temp dirs, killed on drop.
pub struct TestDaemon {
    pub dir: ScratchDir,
    pub child: Option<Child>,
}

impl TestDaemon {
    pub fn start() -> TestDaemon {
        let dir = ScratchDir::new().expect("scratch dir");
        let mut daemon = TestDaemon { dir, child: None };
        daemon.child = Some(daemon.command().spawn().expect("spawn kiln daemon"));
        daemon.wait_until_serving();
        daemon
    }

    /// A daemon (daemon.json `config`) in a network namespace of its own,
    /// `<dir>/netns` with only `lo` up: its bridges, veths, firewall table
    /// and forwarding switch are the namespace's, so it can publish ports
    /// and be checked for leftovers while other tests run, and nothing of
    /// the host's changes. Restarts (`command()`) stay in the namespace;
    /// [`TestDaemon::in_netns`] runs test code there ("the host" as the
    /// daemon sees it). The namespace goes when the daemon is dropped.
    pub fn start_in_netns(config: &str) -> TestDaemon {
        let dir = ScratchDir::new().expect("scratch dir");
        std::fs::write(dir.path().join("daemon.json"), config).expect("write daemon.json");
        let netns = dir.path().join("netns");
        kiln_sys::netns::create_named(&netns).expect("create the test's network namespace");
        let mut daemon = TestDaemon { dir, child: None };
        daemon.in_netns(|| kiln_sys::netlink::Netlink::open()?.set_up("lo"));
        daemon.child = Some(daemon.command().spawn().expect("spawn kiln daemon"));
        daemon.wait_until_serving();
        daemon
    }

    /// [`TestDaemon::start_in_netns`] with a default bridge of its own
    /// (`kt` and random hex) on a random /24 of 10.200.0.0/13, and busybox
    /// imported as `bb`; the bridge's gateway address.
    pub fn bridged() -> (TestDaemon, std::net::Ipv4Addr) {
        let [a, b, c] = random_bytes();
        let gateway = std::net::Ipv4Addr::new(10, 200 + (a % 50), b, 1);
        let config = format!(r#"{{"bridge": "kt{a:02x}{b:02x}{c:02x}", "bip": "{gateway}/24"}}"#);
        let daemon = TestDaemon::start_in_netns(&config);
        daemon.import_busybox("bb");
        (daemon, gateway)
    }

    /// The daemon's own network namespace, when it has one.
    pub fn netns(&self) -> Option<PathBuf> {
        Some(self.dir.path().join("netns")).filter(|p| p.exists())
    }

    /// Runs `f` on a thread inside the daemon's network namespace (the
    /// host's when it has none).
    pub fn in_netns<T: Send>(&self, f: impl FnOnce() -> std::io::Result<T> + Send) -> T {
        match self.netns() {
            Some(netns) => kiln_sys::netns::run_in(&netns, f).expect("in the daemon's netns"),
            None => f().expect("in the host's netns"),
        }
    }

    /// A `kiln daemon` command for this daemon's dirs. Its daemon.json is
    /// written once, so that the host's /etc/kiln is never read: by default
    /// with a default bridge of its own (`kt` and random hex) on a random
    /// /24 of 198.18.0.0/15 (reserved for benchmarks, never routed), so that
    /// daemons of tests running at once never share a bridge.
    pub fn command(&self) -> Command {
        let config = self.dir.path().join("daemon.json");
        if !config.exists() {
            let [a, b, c] = random_bytes();
            let bip = format!("198.{}.{b}.1/24", 18 + (a & 1));
            let json = format!("{{\"bridge\": \"kt{a:02x}{b:02x}{c:02x}\", \"bip\": \"{bip}\"}}\n");
            std::fs::write(&config, json).expect("write daemon.json");
        }
        let mut cmd = match self.netns() {
            Some(netns) => {
                let mut cmd = Command::new("nsenter");
                cmd.arg(format!("--net={}", netns.display())).arg(kiln_bin());
                cmd
            }
            None => Command::new(kiln_bin()),
        };
        cmd.arg("daemon")
            .arg("--root")
            .arg(self.root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("--config-file")
            .arg(config)
            .env_remove("KILN_ROOT")
            .env_remove("KILN_EXEC_ROOT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn socket(&self) -> PathBuf {
        self.exec_root().join("kiln.sock")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    pub fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(self.socket()).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let mut stderr = String::new();
                if let Some(mut e) = self.child.as_mut().and_then(|c| c.stderr.take()) {
                    let _ = e.read_to_string(&mut stderr);
                }
                panic!("kiln daemon exited ({status}) before serving: {stderr}");
            }
            assert!(
                Instant::now() < deadline,
                "kiln daemon did not serve {} within 10 s",
                self.host()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One raw HTTP/1.1 request over the socket.
    pub fn request(&self, method: &str, path: &str) -> RawResponse {
        raw_request(&self.socket(), method, path)
    }

    /// A `kiln --host <this daemon> ...` command.
    pub fn kiln(&self) -> Command {
        let mut cmd = Command::new(kiln_bin());
        cmd.arg("--host").arg(self.host());
        cmd
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.kill_containers();
        self.release_networks();
    }
}

impl TestDaemon {
    /// Kill every shim and container this daemon started, so nothing
    /// outlives the test: shims by their pid files, containers through the
    /// runtime (which empties and removes their cgroups).
    pub fn kill_containers(&self) {
        let states = self.exec_root().join("containers");
        for entry in std::fs::read_dir(&states).into_iter().flatten().flatten() {
            if let Some(pid) = std::fs::read_to_string(entry.path().join("shim.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let runtime_root = self.exec_root().join("runtime");
        for entry in std::fs::read_dir(&runtime_root).into_iter().flatten().flatten() {
            let _ = Command::new(kiln_bin())
                .arg("runtime")
                .arg("--root")
                .arg(&runtime_root)
                .arg("delete")
                .arg("--force")
                .arg(entry.file_name())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for entry in
            std::fs::read_dir(self.root().join("containers")).into_iter().flatten().flatten()
        {
            let _ =
                nix::mount::umount2(&entry.path().join("rootfs"), nix::mount::MntFlags::MNT_DETACH);
        }
    }

    /// Undo what the killed daemon's networks left: container namespaces
    /// (their veths go with them) and, in the daemon's own namespace,
    /// everything at once; in the host's, the daemon's default bridge, and
    /// forwarding if the daemon turned it on. Kiln's firewall table in the
    /// host's namespace goes when it holds only this daemon's bridge
    /// (another test's daemon may be using it).
    pub fn release_networks(&self) {
        for entry in
            std::fs::read_dir(self.exec_root().join("netns")).into_iter().flatten().flatten()
        {
            let _ = kiln_sys::netns::remove_named(&entry.path());
        }
        if let Some(netns) = self.netns() {
            let _ = kiln_sys::netns::remove_named(&netns);
            return;
        }
        let config =
            std::fs::read_to_string(self.dir.path().join("daemon.json")).unwrap_or_default();
        let bridge = serde_json::from_str::<serde_json::Value>(&config)
            .ok()
            .and_then(|c| c["bridge"].as_str().map(str::to_owned))
            .filter(|b| b.starts_with("kt"));
        let Some(bridge) = bridge else { return };
        if let Ok(nl) = kiln_sys::netlink::Netlink::open() {
            let _ = nl.delete_link(&bridge);
        }
        let mark = self.exec_root().join("network/ip_forward");
        if std::fs::read_to_string(mark).is_ok_and(|was| was.trim() == "0") {
            let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "0\n");
        }
        let table = Command::new("nft").args(["list", "table", "ip", "kiln"]).output();
        if let Some(out) = table.ok().filter(|o| o.status.success()) {
            // Interface names are the table's only quoted words.
            let text = String::from_utf8_lossy(&out.stdout);
            let others = text.split('"').skip(1).step_by(2).any(|name| name != bridge);
            if !others {
                let _ = Command::new("nft").args(["delete", "table", "ip", "kiln"]).status();
            }
        }
    }

    /// One HTTP/1.1 request with a JSON body.
    pub fn request_json(&self, method: &str, path: &str, body: &serde_json::Value) -> RawResponse {
        let text = body.to_string();
        let mut stream = UnixStream::connect(self.socket()).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        )
        .expect("write");
        read_response(&mut stream)
    }
}

/// Three random bytes, for names and subnets no other test picks.
pub fn random_bytes() -> [u8; 3] {
    use std::io::Read as _;
    let mut bytes = [0u8; 3];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    read.expect("read /dev/urandom");
    bytes
}

/// Send SIGTERM to `pid`.
pub fn terminate(pid: u32) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
}

/// An answer: status, headers (names lower-case) and body.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

pub fn raw_request(socket: &Path, method: &str, path: &str) -> RawResponse {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n")
        .expect("write");
    read_response(&mut stream)
}

fn read_response(stream: &mut UnixStream) -> RawResponse {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let headers: Vec<(String, String)> = headers;
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    RawResponse { status, headers, body }
}

/// The payload of a chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// A finished `kiln` or `docker` command.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(cmd: &mut Command) -> Run {
        let output = cmd.output().expect("run command");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The stdout of a command that must succeed.
    pub fn ok(cmd: &mut Command) -> String {
        let run = Run::of(cmd);
        assert_eq!(run.code, Some(0), "{cmd:?} failed: {}{}", run.stdout, run.stderr);
        run.stdout
    }
}

impl TestDaemon {
    /// `kiln --host <this daemon> ARGS`, which must succeed; its stdout.
    pub fn kiln_ok(&self, args: &[&str]) -> String {
        Run::ok(self.kiln().args(args))
    }

    /// `kiln --host <this daemon> ARGS`, finished.
    pub fn kiln_run(&self, args: &[&str]) -> Run {
        Run::of(self.kiln().args(args))
    }

    /// `kiln images --format '{{.Repository}}:{{.Tag}}'`, lines sorted.
    pub fn image_names(&self) -> Vec<String> {
        let text = self.kiln_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        let mut names: Vec<String> = text.lines().map(str::to_owned).collect();
        names.sort();
        names
    }

    /// Import a busybox rootfs as `reference` with `CMD ["sh"]`; its id.
    pub fn import_busybox(&self, reference: &str) -> String {
        let tar = busybox_rootfs_tar(self.dir.path());
        let out = self.kiln_ok(&[
            "import",
            "--change",
            r#"CMD ["sh"]"#,
            "-m",
            "imported by a test",
            tar.to_str().expect("utf-8 path"),
            reference,
        ]);
        let id = out.trim().to_owned();
        assert!(id.starts_with("sha256:") && id.len() == 71, "import printed {out:?}");
        id
    }
}

/// A busybox root filesystem as a tar in `dir` (made once per dir).
pub fn busybox_rootfs_tar(dir: &Path) -> PathBuf {
    let tar = dir.join("busybox-rootfs.tar");
    if tar.exists() {
        return tar;
    }
    let rootfs = dir.join("busybox-rootfs");
    kiln_testing::build_busybox_rootfs(&rootfs).expect("busybox rootfs");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    tar
}

/// The `docker` CLI on PATH. scripts/test installs one (docker.io) when
/// there is none, so its absence is a failure, not a skip.
pub fn docker_cli() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("docker"))
        .find(|p| p.is_file())
        .expect("no docker CLI on PATH: run scripts/test, which installs one")
}
