//! `kiln` against a real dockerd, when one is installed: a private dockerd
//! on a temp root and socket (its own containerd, no bridge, no iptables
//! rules), driven by `kiln --host` and checked against what the `docker`
//! CLI says on the same socket. Without dockerd on PATH the test says so
//! and skips: it checks compatibility with a program Kiln does not ship.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_testing::{kiln_bin, ScratchDir};

use crate::common::{docker_cli, Run, TestDaemon};

/// A dockerd of our own under a scratch dir. Dropping it stops dockerd
/// (and the containerd it started), then the scratch dir detaches whatever
/// they left mounted and removes it all. The host's /var/lib/docker,
/// /var/run/docker.sock, bridges and firewall are never touched.
struct PrivateDockerd {
    child: Option<Child>,
    dir: ScratchDir,
}

impl PrivateDockerd {
    /// Start dockerd and wait until it answers; `None` (with the reason on
    /// stderr) when there is no dockerd on PATH.
    fn start() -> Option<PrivateDockerd> {
        let Some(dockerd) = on_path("dockerd") else {
            eprintln!("skipped: no dockerd on PATH (apt-get install docker.io to run this test)");
            return None;
        };
        let dir = ScratchDir::new().expect("scratch dir");
        let config = dir.path().join("daemon.json");
        std::fs::write(&config, "{}\n").expect("write daemon.json");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("log file");
        let mut command = Command::new(dockerd);
        command
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", dir.path().join("docker.sock").display()))
            .args(["--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"])
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        let child = command.spawn().expect("spawn dockerd");
        let mut daemon = PrivateDockerd { child: Some(child), dir };
        daemon.wait_until_serving();
        Some(daemon)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Until `docker version` gets an answer from the server: dockerd opens
    /// its socket before its containerd is up.
    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("dockerd exited ({status}) before serving; its log:\n{}", self.log());
            }
            if self.socket().exists()
                && self.docker_run(&["version", "--format", "{{.Server.Version}}"]).code == Some(0)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer on {} within 60 s; its log:\n{}",
                self.host(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn docker_run(&self, args: &[&str]) -> Run {
        Run::of(
            Command::new(docker_cli())
                .args(args)
                .env("DOCKER_HOST", self.host())
                .env_remove("DOCKER_API_VERSION")
                .env_remove("DOCKER_CONTEXT")
                .env("DOCKER_CONFIG", self.dir.path().join("docker-config")),
        )
    }

    /// `docker ARGS` on this dockerd, which must succeed; its stdout.
    fn docker(&self, args: &[&str]) -> String {
        let run = self.docker_run(args);
        assert_eq!(run.code, Some(0), "docker {args:?}: {run:?}");
        run.stdout
    }

    fn kiln_run(&self, args: &[&str]) -> Run {
        Run::of(Command::new(kiln_bin()).arg("--host").arg(self.host()).args(args))
    }

    /// `kiln --host <this dockerd> ARGS`, which must succeed; its stdout.
    fn kiln(&self, args: &[&str]) -> String {
        let run = self.kiln_run(args);
        assert_eq!(run.code, Some(0), "kiln {args:?}: {run:?}");
        run.stdout
    }

    /// The containerd dockerd started, by its pid file, if it still runs
    /// and is ours (its command line names our dir).
    fn containerd_pid(&self) -> Option<nix::unistd::Pid> {
        let file = self.dir.path().join("exec/containerd/containerd.pid");
        let pid: i32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let ours = String::from_utf8_lossy(&cmdline).contains(&*self.dir.path().to_string_lossy());
        ours.then(|| nix::unistd::Pid::from_raw(pid))
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        let containerd = self.containerd_pid();
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // dockerd stops its containerd on a clean exit; after a kill it may not.
        if let Some(pid) = containerd {
            let deadline = Instant::now() + Duration::from_secs(5);
            let _ = kill(pid, Signal::SIGTERM);
            while kill(pid, None).is_ok() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// A busybox image saved by Kiln: `(archive, reference, id)`.
fn busybox_archive(dir: &Path) -> (PathBuf, String, String) {
    let daemon = TestDaemon::start();
    let reference = format!("{}:1", kiln_testing::unique_name());
    let id = daemon.import_busybox(&reference);
    let archive = dir.join("busybox.tar");
    daemon.kiln_ok(&["save", "-o", archive.to_str().expect("utf-8"), &reference]);
    (archive, reference, id)
}

#[test]
fn kiln_drives_a_real_dockerd_and_agrees_with_the_docker_cli() {
    kiln_testing::require_privileged!();
    let Some(dockerd) = PrivateDockerd::start() else { return };

    let server = "{{.Server.Version}} {{.Server.APIVersion}}";
    assert_eq!(
        dockerd.kiln(&["version", "--format", server]),
        dockerd.docker(&["version", "--format", server])
    );
    let info = "{{.ServerVersion}} {{.Driver}} {{.DockerRootDir}} {{.Images}}";
    let kiln_info = dockerd.kiln(&["info", "--format", info]);
    assert_eq!(kiln_info, dockerd.docker(&["info", "--format", info]));
    assert!(kiln_info.contains(&format!(" {} 0\n", dockerd.data_root().display())), "{kiln_info}");

    // load: Kiln's archive, into dockerd through kiln.
    let (archive, reference, id) = busybox_archive(dockerd.dir.path());
    let archive_arg = archive.to_str().expect("utf-8");
    let loaded = dockerd.kiln(&["load", "-i", archive_arg]);
    assert_eq!(loaded, format!("Loaded image: {reference}\n"));
    assert_eq!(dockerd.docker(&["load", "-i", archive_arg]), loaded, "docker says the same");

    // images and tag.
    let other = format!("{}:2", kiln_testing::unique_name());
    dockerd.kiln(&["tag", &reference, &other]);
    let rows = "{{.Repository}}:{{.Tag}} {{.ID}}";
    let listed = dockerd.kiln(&["images", "--format", rows]);
    assert_eq!(sorted_lines(&listed), sorted_lines(&dockerd.docker(&["images", "--format", rows])));
    let short = &id[7..19];
    let mut wanted = vec![format!("{reference} {short}"), format!("{other} {short}")];
    wanted.sort();
    assert_eq!(sorted_lines(&listed), wanted);
    assert_eq!(
        dockerd.kiln(&["images", "-q", "--no-trunc"]),
        dockerd.docker(&["images", "-q", "--no-trunc"])
    );

    // image inspect: the id Kiln gave the image survives dockerd.
    let fields = "{{.Id}} {{json .Config.Cmd}} {{.RootFS.Type}} {{json .RootFS.Layers}} {{.Size}}";
    let inspected = dockerd.kiln(&["image", "inspect", "-f", fields, &other]);
    assert_eq!(inspected, dockerd.docker(&["image", "inspect", "-f", fields, &other]));
    assert!(inspected.starts_with(&format!("{id} [\"sh\"] layers [\"sha256:")), "{inspected}");

    // history.
    let steps = "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}";
    let history = dockerd.kiln(&["history", "--format", steps, &other]);
    assert_eq!(history, dockerd.docker(&["history", "--format", steps, &other]));
    assert!(history.contains("|imported by a test\n"), "{history}");

    // save: dockerd's archive, through kiln, loads back into Kiln with its id.
    let saved = dockerd.dir.path().join("saved.tar");
    dockerd.kiln(&["save", "-o", saved.to_str().expect("utf-8"), &other]);
    let back = TestDaemon::start();
    assert_eq!(
        back.kiln_ok(&["load", "-i", saved.to_str().expect("utf-8")]),
        format!("Loaded image: {other}\n")
    );
    assert_eq!(back.kiln_ok(&["images", "-q", "--no-trunc"]), format!("{id}\n"));

    // rmi: untag, then delete with the last tag; errors as docker prints them.
    assert_eq!(dockerd.kiln(&["rmi", &other]), format!("Untagged: {other}\n"));
    let removed = dockerd.kiln(&["rmi", &reference]);
    assert!(removed.starts_with(&format!("Untagged: {reference}\nDeleted: {id}\n")), "{removed}");
    assert_eq!(dockerd.docker(&["images", "-q"]), "");
    let kiln_missing = dockerd.kiln_run(&["rmi", "kiln-t-nope"]);
    let docker_missing = dockerd.docker_run(&["rmi", "kiln-t-nope"]);
    assert_eq!((kiln_missing.code, docker_missing.code), (Some(1), Some(1)));
    assert_eq!(kiln_missing.stderr, docker_missing.stderr);
}
