//! A scripted `docker` CLI session against `kiln daemon`: containers run,
//! log, exec, change state, keep data in volumes and fail the way a Docker
//! user expects (output and exit codes). Needs root, and the `docker` CLI on
//! PATH.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Run, TestDaemon};

/// How long one `docker` command may take before it counts as hung.
const COMMAND_LIMIT: &str = "30";

/// A daemon with busybox imported as `bb`, driven by the `docker` CLI.
struct Session {
    daemon: TestDaemon,
    docker: PathBuf,
}

impl Session {
    fn start() -> Session {
        let docker = crate::common::docker_cli();
        let daemon = TestDaemon::start();
        daemon.import_busybox("bb");
        Session { daemon, docker }
    }

    /// `timeout 30 docker ARGS` with this daemon as DOCKER_HOST.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.arg("--kill-after=5")
            .arg(COMMAND_LIMIT)
            .arg(&self.docker)
            .args(args)
            .env("DOCKER_HOST", self.daemon.host())
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", self.daemon.dir.path().join("docker-config"));
        cmd
    }

    /// `docker ARGS`, finished (it may fail, but not hang).
    fn run(&self, args: &[&str]) -> Run {
        not_hung(args, Run::of(&mut self.command(args)))
    }

    /// `docker ARGS`, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, Some(0), "docker {args:?} failed: {run:?}");
        run.stdout
    }

    /// `docker ARGS` with `input` on its stdin, finished.
    fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        not_hung(args, run_with_stdin(&mut self.command(args), input))
    }

    /// `docker inspect -f FORMAT NAME`, trimmed.
    fn inspect(&self, format: &str, name: &str) -> String {
        self.ok(&["inspect", "-f", format, name]).trim().to_owned()
    }

    /// Poll `docker ARGS` until its stdout satisfies `pred` (at most 10 s).
    fn eventually(&self, args: &[&str], pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.ok(args);
            if pred(&out) {
                return out;
            }
            assert!(Instant::now() < deadline, "docker {args:?} never gave the expected: {out:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Start `docker run -d --name NAME bb sh -c <tick loop>`; its id.
    fn run_ticker(&self, name: &str) -> String {
        let out = self.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "bb",
            "sh",
            "-c",
            "while true; do echo tick; sleep 0.2; done",
        ]);
        let id = out.trim().to_owned();
        assert!(
            id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "run -d prints the full id: {out:?}"
        );
        id
    }
}

/// `cmd` with `input` on its stdin, finished.
fn run_with_stdin(cmd: &mut Command, input: &str) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    let output = child.wait_with_output().expect("wait");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `run`, unless `timeout` had to stop it: it exits 124 after SIGTERM, and
/// dies of SIGKILL itself when docker ignored that (docker proxies signals).
fn not_hung(args: &[&str], run: Run) -> Run {
    assert!(
        !matches!(run.code, Some(124) | None),
        "docker {args:?} hung for {COMMAND_LIMIT} s: {run:?}"
    );
    run
}

#[test]
fn docker_run_prints_output_passes_exit_codes_and_logs_follow_the_container() {
    kiln_testing::require_privileged!();
    let s = Session::start();

    let hi = s.run(&["run", "--rm", "bb", "echo", "hi"]);
    assert_eq!((hi.code, hi.stdout.as_str()), (Some(0), "hi\n"), "{hi:?}");
    let env = s.ok(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hey",
        "-w",
        "/tmp",
        "bb",
        "sh",
        "-c",
        "echo $GREETING $PWD",
    ]);
    assert_eq!(env, "hey /tmp\n");
    let who = s.ok(&[
        "run",
        "--rm",
        "-h",
        "box",
        "-u",
        "4321:4321",
        "--entrypoint",
        "sh",
        "bb",
        "-c",
        "hostname; id",
    ]);
    assert_eq!(who, "box\nuid=4321 gid=4321\n");
    let piped = s.run_with_stdin(&["run", "--rm", "-i", "bb", "cat"], "piped\n");
    assert_eq!((piped.code, piped.stdout.as_str()), (Some(0), "piped\n"), "{piped:?}");
    let three = s.run(&["run", "bb", "sh", "-c", "exit 3"]);
    assert_eq!(three.code, Some(3), "{three:?}");
    let tty = s.run(&["run", "--rm", "-t", "bb", "tty"]);
    assert_eq!(tty.code, Some(0), "{tty:?}");
    assert!(tty.stdout.starts_with("/dev/pts/"), "-t gives the container a terminal: {tty:?}");
    // An interactive shell on a terminal, as a user types into it.
    let docker =
        format!("DOCKER_HOST={} {} run --rm -it bb sh", s.daemon.host(), s.docker.display());
    let mut typed = Command::new("timeout");
    typed.args(["30", "script", "-qec", &docker, "/dev/null"]);
    let session = run_with_stdin(&mut typed, "echo $((6*7))\nexit 5\n");
    assert_eq!(session.code, Some(5), "{session:?}");
    assert!(session.stdout.contains("42"), "the shell answered: {session:?}");

    let id = s.run_ticker("web");
    let ps = s.ok(&["ps"]);
    let row = ps.lines().find(|l| l.ends_with(" web")).unwrap_or_else(|| panic!("{ps}"));
    assert!(row.starts_with(&id[..12]) && row.contains(" Up "), "{ps}");
    assert!(!ps.contains("Exited"), "docker ps lists running containers only: {ps}");
    let mut all: Vec<String> = s
        .ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"])
        .lines()
        .map(str::to_owned)
        .collect();
    all.sort_by_key(|l| !l.starts_with("web "));
    assert_eq!(all.len(), 2, "the --rm containers are gone: {all:?}");
    assert!(all[0].starts_with("web Up "), "{all:?}");
    assert!(all[1].contains(" Exited (3) "), "{all:?}");

    let logs = s.eventually(&["logs", "web"], |out| out.matches("tick\n").count() >= 2);
    assert!(logs.lines().all(|l| l == "tick"), "{logs:?}");
    assert_eq!(s.ok(&["logs", "--tail", "1", "web"]), "tick\n");
    let since = s.ok(&["logs", "--since", "1h", "web"]);
    assert!(since.starts_with("tick\n"), "{since:?}");
    let future = (std::time::SystemTime::now() + Duration::from_secs(3600))
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    assert_eq!(s.ok(&["logs", "--since", &future, "web"]), "");

    // logs -f ends when the container does, with all of its output.
    s.ok(&["run", "-d", "--name", "short", "bb", "sh", "-c", "echo a; sleep 1; echo b"]);
    assert_eq!(s.ok(&["logs", "-f", "short"]), "a\nb\n");
    assert_eq!(s.ok(&["wait", "short"]), "0\n");
    let stopped = s.run(&["attach", "short"]);
    assert_eq!(stopped.code, Some(1), "{stopped:?}");
    assert!(stopped.stderr.contains("You cannot attach to a stopped container"), "{stopped:?}");

    // docker-compat: RFC 3339 with nine fraction digits, in UTC.
    let stamped = s.ok(&["logs", "--tail", "1", "--timestamps", "web"]);
    let (stamp, line) = stamped.split_once(' ').unwrap_or_else(|| panic!("{stamped:?}"));
    assert_eq!(line, "tick\n");
    assert!(
        stamp.len() == 30 && &stamp[10..11] == "T" && &stamp[19..20] == "." && stamp.ends_with('Z'),
        "{stamped:?}"
    );
}

#[test]
fn docker_exec_runs_commands_with_stdin_and_exit_codes_in_a_running_container() {
    kiln_testing::require_privileged!();
    let s = Session::start();
    s.run_ticker("web");

    assert_eq!(s.ok(&["exec", "web", "echo", "inside"]), "inside\n");
    let piped = s.run_with_stdin(&["exec", "-i", "web", "cat"], "data\n");
    assert_eq!((piped.code, piped.stdout.as_str()), (Some(0), "data\n"), "{piped:?}");
    let seven = s.run(&["exec", "web", "sh", "-c", "exit 7"]);
    assert_eq!(seven.code, Some(7), "{seven:?}");
    let env = s.ok(&["exec", "-e", "X=1", "-w", "/etc", "web", "sh", "-c", "echo $X $PWD"]);
    assert_eq!(env, "1 /etc\n");
    // docker-compat: Docker writes the exec failure into the hijacked
    // stream (so it lands on stdout) and gives the exec exit code 127.
    let missing = s.run(&["exec", "web", "nope-command"]);
    assert_eq!(missing.code, Some(127), "{missing:?}");
    let said = format!("{}{}", missing.stdout, missing.stderr);
    assert!(
        said.contains("executable file not found") || said.contains("no such file"),
        "{missing:?}"
    );
}

#[test]
fn docker_moves_a_container_through_its_lifecycle() {
    kiln_testing::require_privileged!();
    let s = Session::start();
    let id = s.run_ticker("web");

    assert_eq!(s.inspect("{{.State.Running}} {{.Name}} {{.Id}}", "web"), format!("true /web {id}"));
    assert_eq!(s.inspect("{{.State.Status}}", "web"), "running");
    let inspected: serde_json::Value =
        serde_json::from_str(&s.ok(&["inspect", "web"])).expect("docker inspect prints JSON");
    assert_eq!(inspected[0]["State"]["Running"], true, "{inspected}");
    assert_eq!(inspected[0]["Name"], "/web", "{inspected}");
    assert_eq!(inspected[0]["Config"]["Image"], "bb", "{inspected}");

    let top = s.ok(&["top", "web"]);
    let header = top.lines().next().unwrap_or_default();
    assert!(header.contains("PID") && header.contains("CMD"), "{top}");
    assert!(top.contains("while true"), "top lists the container's shell: {top}");

    assert_eq!(s.ok(&["rename", "web", "web2"]), "");
    assert_eq!(s.inspect("{{.Name}}", "web2"), "/web2");
    let gone = s.run(&["inspect", "web"]);
    assert_eq!(gone.code, Some(1), "the old name is free: {gone:?}");

    assert_eq!(s.ok(&["pause", "web2"]), "web2\n");
    assert_eq!(s.inspect("{{.State.Status}} {{.State.Paused}}", "web2"), "paused true");
    let ps = s.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web2 Up ") && ps.ends_with("(Paused)\n"), "{ps}");
    assert_eq!(s.ok(&["unpause", "web2"]), "web2\n");
    assert_eq!(s.inspect("{{.State.Status}}", "web2"), "running");

    let pid_before = s.inspect("{{.State.Pid}}", "web2");
    assert_eq!(s.ok(&["restart", "-t", "1", "web2"]), "web2\n");
    assert_eq!(s.inspect("{{.State.Status}}", "web2"), "running");
    assert_ne!(s.inspect("{{.State.Pid}}", "web2"), pid_before, "restart runs a new process");

    let begun = Instant::now();
    assert_eq!(s.ok(&["stop", "-t", "1", "web2"]), "web2\n");
    assert!(begun.elapsed() < Duration::from_secs(10), "stop -t 1 took {:?}", begun.elapsed());
    // sh as pid 1 has no TERM handler, so the kernel ignores SIGTERM and the
    // stop ends with SIGKILL.
    assert_eq!(s.inspect("{{.State.Status}} {{.State.ExitCode}}", "web2"), "exited 137");
    let ps = s.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web2 Exited (137) "), "{ps}");

    assert_eq!(s.ok(&["start", "web2"]), "web2\n");
    assert_eq!(s.inspect("{{.State.Status}}", "web2"), "running");
    assert_eq!(s.ok(&["kill", "web2"]), "web2\n");
    assert_eq!(s.ok(&["wait", "web2"]), "137\n");
    assert_eq!(s.inspect("{{.State.Status}} {{.State.ExitCode}}", "web2"), "exited 137");
    assert_eq!(s.ok(&["rm", "web2"]), "web2\n");
    assert_eq!(s.ok(&["ps", "-aq"]), "");

    assert_eq!(s.ok(&["create", "--name", "c1", "bb", "echo", "created-then-started"]).len(), 65);
    assert_eq!(s.inspect("{{.State.Status}}", "c1"), "created");
    let attached = s.run(&["start", "-a", "c1"]);
    assert_eq!(
        (attached.code, attached.stdout.as_str()),
        (Some(0), "created-then-started\n"),
        "{attached:?}"
    );
    assert_eq!(s.inspect("{{.State.Status}} {{.State.ExitCode}}", "c1"), "exited 0");
    assert_eq!(s.ok(&["rm", "c1"]), "c1\n");

    s.ok(&["run", "--name", "done", "bb", "true"]);
    let pruned = s.ok(&["container", "prune", "-f"]);
    assert!(
        pruned.starts_with("Deleted Containers:\n") && pruned.contains("Total reclaimed space:"),
        "{pruned}"
    );
    assert_eq!(s.ok(&["ps", "-aq"]), "");

    // docker ps -s: the writable layer's size, and the image's as "virtual".
    s.ok(&[
        "run",
        "-d",
        "--name",
        "sized",
        "bb",
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /big; sleep 100",
    ]);
    let sized = s.eventually(&["ps", "-s", "--format", "{{.Names}} {{.Size}}"], |out| {
        out.starts_with("sized 1") && out.contains("kB")
    });
    assert!(sized.contains(" (virtual "), "{sized}");
}

#[test]
fn docker_volumes_keep_data_between_containers() {
    kiln_testing::require_privileged!();
    let s = Session::start();

    let wrote =
        s.run(&["run", "--rm", "-v", "kiln-t-data:/data", "bb", "sh", "-c", "echo x > /data/f"]);
    assert_eq!(wrote.code, Some(0), "{wrote:?}");
    assert_eq!(s.ok(&["run", "--rm", "-v", "kiln-t-data:/data", "bb", "cat", "/data/f"]), "x\n");
    let listed = s.ok(&["volume", "ls"]);
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["local", "kiln-t-data"]),
        "{listed}"
    );
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "kiln-t-data\n");
    let mountpoint = s.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "kiln-t-data"]);
    let on_host = std::fs::read_to_string(PathBuf::from(mountpoint.trim()).join("f"));
    assert_eq!(on_host.ok().as_deref(), Some("x\n"), "the data is in {mountpoint}");

    assert_eq!(s.ok(&["volume", "create", "kiln-t-made"]), "kiln-t-made\n");
    let readonly = s.run(&["run", "--rm", "-v", "kiln-t-made:/ro:ro", "bb", "touch", "/ro/f"]);
    assert_eq!(readonly.code, Some(1), "a :ro volume is read-only: {readonly:?}");

    s.ok(&["run", "--name", "holder", "-v", "kiln-t-made:/m", "bb", "true"]);
    let in_use = s.run(&["volume", "rm", "kiln-t-made"]);
    assert_eq!(in_use.code, Some(1), "{in_use:?}");
    assert!(in_use.stderr.contains("volume is in use"), "{in_use:?}");
    s.ok(&["rm", "holder"]);
    assert_eq!(s.ok(&["volume", "rm", "kiln-t-made", "kiln-t-data"]), "kiln-t-made\nkiln-t-data\n");
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn docker_reports_missing_commands_running_removals_and_name_conflicts() {
    kiln_testing::require_privileged!();
    let s = Session::start();

    let missing = s.run(&["run", "--name", "kiln-t-missing", "bb", "nope-command"]);
    assert_eq!(missing.code, Some(127), "{missing:?}");
    assert!(
        missing.stderr.contains("executable file not found")
            || missing.stderr.contains("no such file"),
        "{missing:?}"
    );
    // docker-compat: a container that failed to start stays "created", with
    // the exit code and the error.
    let state = s.inspect("{{.State.Status}} {{.State.ExitCode}}", "kiln-t-missing");
    assert_eq!(state, "created 127");
    assert_eq!(s.ok(&["rm", "kiln-t-missing"]), "kiln-t-missing\n");

    let not_a_program = s.run(&["run", "bb", "/etc"]);
    assert_eq!(not_a_program.code, Some(126), "{not_a_program:?}");

    let no_image = s.run(&["run", "--rm", "--pull", "never", "kiln-t-no-such-image", "true"]);
    assert_eq!(no_image.code, Some(125), "{no_image:?}");
    assert!(no_image.stderr.contains("No such image"), "{no_image:?}");

    s.run_ticker("web");
    let refused = s.run(&["rm", "web"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("running") && refused.stderr.contains("force"),
        "docker rm tells the user to stop or force: {refused:?}"
    );
    assert_eq!(s.inspect("{{.State.Status}}", "web"), "running");
    assert_eq!(s.ok(&["rm", "-f", "web"]), "web\n");

    let first = s.run(&["run", "--name", "web3", "bb", "true"]);
    assert_eq!(first.code, Some(0), "{first:?}");
    let second = s.run(&["run", "--name", "web3", "bb", "true"]);
    assert_eq!(second.code, Some(125), "{second:?}");
    assert!(
        second.stderr.contains(r#"The container name "/web3" is already in use"#),
        "{second:?}"
    );

    let unknown = s.run(&["stop", "kiln-t-nope"]);
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(unknown.stderr.contains("No such container: kiln-t-nope"), "{unknown:?}");
    let stopped = s.run(&["exec", "web3", "true"]);
    assert_eq!(stopped.code, Some(1), "{stopped:?}");
    assert!(stopped.stderr.contains("is not running"), "{stopped:?}");
    s.ok(&["rm", "web3"]);

    // With --rm the daemon removes a container that failed to start, and
    // the CLI, waiting for condition=removed, then exits.
    let missing = s.run(&["run", "--rm", "bb", "nope-command"]);
    assert_eq!(missing.code, Some(127), "{missing:?}");
    assert!(missing.stderr.contains("executable file not found"), "{missing:?}");
    let left = s.ok(&["ps", "-a", "--format", "{{.Command}}"]);
    assert!(
        !left.contains("nope-command"),
        "--rm removes a container that failed to start: {left}"
    );
}

#[test]
fn docker_cp_copies_files_both_ways_and_diff_and_stats_answer() {
    kiln_testing::require_privileged!();
    let s = Session::start();
    let work = s.daemon.dir.path().join("cp");
    std::fs::create_dir_all(work.join("in/sub")).expect("mkdir");
    std::fs::write(work.join("in/sub/file.txt"), "from the host\n").expect("write");

    s.run_ticker("web");
    // Host → container, into a directory that exists.
    s.ok(&["cp", work.join("in").to_str().expect("utf-8"), "web:/tmp/"]);
    assert_eq!(s.ok(&["exec", "web", "cat", "/tmp/in/sub/file.txt"]), "from the host\n");
    // Container → host, a file and a directory.
    s.ok(&["exec", "web", "sh", "-c", "echo made inside > /tmp/made.txt"]);
    s.ok(&["cp", "web:/tmp/made.txt", work.to_str().expect("utf-8")]);
    assert_eq!(std::fs::read_to_string(work.join("made.txt")).expect("read"), "made inside\n");
    s.ok(&["cp", "web:/etc", work.join("etc-copy").to_str().expect("utf-8")]);
    assert!(work.join("etc-copy/passwd").is_file());
    let missing = s.run(&["cp", "web:/no/such/file", work.to_str().expect("utf-8")]);
    assert_eq!(missing.code, Some(1), "{missing:?}");
    assert!(missing.stderr.contains("Could not find the file /no/such/file"), "{missing:?}");

    // A stopped container's files are there too.
    s.ok(&["stop", "-t", "1", "web"]);
    s.ok(&["cp", "web:/tmp/made.txt", work.join("after-stop.txt").to_str().expect("utf-8")]);
    assert_eq!(
        std::fs::read_to_string(work.join("after-stop.txt")).expect("read"),
        "made inside\n"
    );

    let exported = work.join("web.tar");
    s.ok(&["export", "-o", exported.to_str().expect("utf-8"), "web"]);
    let listing =
        std::process::Command::new("tar").arg("-tf").arg(&exported).output().expect("tar -t");
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(names.lines().any(|l| l == "tmp/made.txt"), "export lacks tmp/made.txt: {names}");
    assert!(names.lines().any(|l| l == "bin/busybox"), "export lacks bin/busybox");

    let diff = s.ok(&["diff", "web"]);
    assert!(diff.lines().any(|l| l == "A /tmp/made.txt"), "{diff}");
    s.ok(&["start", "web"]);
    let stats = s.ok(&["stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", "web"]);
    assert!(stats.starts_with("web "), "{stats}");
    s.ok(&["rm", "-f", "web"]);
}

#[test]
fn docker_commit_makes_an_image_that_docker_run_starts() {
    kiln_testing::require_privileged!();
    let s = Session::start();
    let name = kiln_testing::unique_name();
    let image = format!("{name}-img:1");
    s.ok(&["run", "--name", &name, "bb", "sh", "-c", "echo committed > /greeting; rm /etc/group"]);
    let id =
        s.ok(&["commit", "-m", "from docker", "-c", r#"CMD ["cat", "/greeting"]"#, &name, &image]);
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "docker commit printed {id:?}");
    assert_eq!(s.ok(&["run", "--rm", &image]), "committed\n");
    let deleted = s.run(&["run", "--rm", &image, "cat", "/etc/group"]);
    assert_eq!(deleted.code, Some(1), "the deleted file is back: {deleted:?}");
    let inspected = s.ok(&["image", "inspect", "-f", "{{.Id}} {{.Comment}}", &image]);
    assert_eq!(inspected.trim(), format!("{id} from docker"));
    let missing = s.run(&["commit", "kiln-t-nope"]);
    assert_eq!(missing.code, Some(1), "{missing:?}");
    assert!(missing.stderr.contains("No such container: kiln-t-nope"), "{missing:?}");
}
