//! `kiln run -it`, `kiln attach` and `kiln exec -it` through a real
//! terminal: each test runs the built `kiln` inside its own tmux server (a
//! private socket in the test's scratch dir), types with `send-keys` and
//! reads the screen with `capture-pane`, as a user at a terminal would.
//! Waits poll the screen up to a deadline. scripts/test installs tmux; a
//! missing one fails these tests. They run real containers (root).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kiln_testing::kiln_bin;

use crate::common::{Run, TestDaemon};

/// How long a screen may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(20);

/// A tmux server of one pane, on a socket of its own; killed on drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Start a server whose only pane (`width` x `height`, no status line)
    /// runs `command` with `sh -c`; when the command ends, the pane prints
    /// its exit code and stays.
    fn start(dir: &Path, command: &str, width: u16, height: u16) -> Tmux {
        assert!(tmux_on_path(), "no tmux on PATH: run scripts/test, which installs it");
        let config = dir.join("tmux.conf");
        std::fs::write(&config, "set -g status off\nset -g default-shell /bin/sh\n")
            .expect("write tmux.conf");
        let tmux = Tmux { socket: dir.join(format!("tmux-{}.sock", kiln_testing::unique_name())) };
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&tmux.socket)
            .arg("-f")
            .arg(&config)
            .args(["new-session", "-d", "-x", &width.to_string(), "-y", &height.to_string()])
            .arg(pane_command(command))
            .env_remove("TMUX")
            .status()
            .expect("run tmux new-session");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn tmux(&self, args: &[&str]) -> String {
        Run::ok(Command::new("tmux").arg("-S").arg(&self.socket).args(args).env_remove("TMUX"))
    }

    /// Type `text` literally, then Enter.
    fn type_line(&self, text: &str) {
        self.tmux(&["send-keys", "-l", text]);
        self.tmux(&["send-keys", "Enter"]);
    }

    /// Press keys by tmux's names (`C-c`, `C-p`).
    fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// The pane's screen and scrollback, lines without trailing blanks.
    fn screen(&self) -> Vec<String> {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-"])
            .lines()
            .map(|l| l.trim_end().to_owned())
            .collect()
    }

    /// Wait until the screen has a line equal to `line`; the screen.
    fn wait_for_line(&self, line: &str) -> Vec<String> {
        self.wait_until(&format!("a line {line:?}"), |screen| screen.iter().any(|l| l == line))
    }

    /// Wait until the pane's command has ended with `code`. (Its marker
    /// may follow a prompt that the CLI left without a newline.)
    fn wait_for_exit(&self, code: i32) {
        let marker = format!("{EXITED}{code}");
        self.wait_until(&format!("{marker:?}"), |screen| {
            screen.iter().any(|l| l.ends_with(&marker))
        });
    }

    fn wait_until(&self, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {what}; it shows:\n{}",
                screen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Run `command` in the pane instead of what runs there now.
    fn respawn(&self, command: &str) {
        self.tmux(&["respawn-pane", "-k", &pane_command(command)]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn tmux_on_path() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join("tmux").is_file())
}

/// What a pane prints before the code its command exited with.
const EXITED: &str = "kiln-exited=";

/// What a pane runs: `command`, then its exit code, then nothing (so the
/// screen stays readable).
fn pane_command(command: &str) -> String {
    format!("{command}; echo {EXITED}$?; exec sleep 3600")
}

/// `'text'` for `sh`.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `kiln --host <daemon> ARGS` as a shell command line.
fn kiln_line(daemon: &TestDaemon, args: &[&str]) -> String {
    let mut words = vec![quoted(&kiln_bin().display().to_string()), "--host".into()];
    words.push(quoted(&daemon.host()));
    words.extend(args.iter().map(|a| quoted(a)));
    words.join(" ")
}

fn daemon_with_busybox() -> TestDaemon {
    let daemon = TestDaemon::start();
    daemon.import_busybox("bb");
    daemon
}

fn container_name() -> String {
    kiln_testing::unique_name()
}

/// The processes of a running container, as `kiln top` lists them.
fn top(daemon: &TestDaemon, name: &str) -> String {
    daemon.kiln_ok(&["top", name])
}

/// Poll `kiln top` until `pred` holds of it.
fn wait_for_top(daemon: &TestDaemon, name: &str, what: &str, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let processes = top(daemon, name);
        if pred(&processes) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} never held; kiln top shows:\n{processes}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_it_gives_a_terminal_that_follows_the_window_and_returns_the_exit_code() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let name = container_name();
    let line =
        kiln_line(&daemon, &["run", "-it", "--name", &name, "--network", "none", "bb", "sh"]);
    let tmux = Tmux::start(daemon.dir.path(), &line, 100, 30);
    tmux.wait_until("a shell prompt", |s| s.iter().any(|l| l.ends_with('#')));
    tmux.type_line("echo $((6*7))");
    tmux.wait_for_line("42");
    tmux.type_line("stty size");
    tmux.wait_for_line("30 100");
    tmux.tmux(&["resize-window", "-x", "120", "-y", "40"]);
    // The new size reaches the container through the CLI and the daemon;
    // ask again until it has arrived.
    let deadline = Instant::now() + PATIENCE;
    loop {
        tmux.type_line("stty size");
        let seen = Instant::now();
        while Instant::now() < seen + Duration::from_secs(1) {
            if tmux.screen().iter().any(|l| l == "40 120") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if tmux.screen().iter().any(|l| l == "40 120") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the container never saw the window's new size:\n{}",
            tmux.screen().join("\n")
        );
    }
    tmux.type_line("exit 3");
    tmux.wait_for_exit(3);
    let state = daemon.kiln_ok(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", &name]);
    assert_eq!(state.trim(), "exited 3");
}

#[test]
fn ctrl_c_interrupts_the_foreground_command_and_the_shell_lives_on() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let name = container_name();
    let line =
        kiln_line(&daemon, &["run", "-it", "--name", &name, "--network", "none", "bb", "sh"]);
    let tmux = Tmux::start(daemon.dir.path(), &line, 100, 30);
    tmux.wait_until("a shell prompt", |s| s.iter().any(|l| l.ends_with('#')));
    tmux.type_line("sleep 100; echo not-interrupted");
    wait_for_top(&daemon, &name, "sleep 100 running", |p| p.contains("sleep 100"));
    tmux.press(&["C-c"]);
    wait_for_top(&daemon, &name, "sleep 100 gone", |p| !p.contains("sleep 100"));
    tmux.type_line("echo alive-$((3+4))");
    let screen = tmux.wait_for_line("alive-7");
    assert!(!screen.iter().any(|l| l == "not-interrupted"), "{}", screen.join("\n"));
    let state = daemon.kiln_ok(&["inspect", "-f", "{{.State.Status}}", &name]);
    assert_eq!(state.trim(), "running");
    tmux.type_line("exit");
    tmux.wait_for_exit(0);
}

#[test]
fn ctrl_p_ctrl_q_detaches_and_attach_gets_back_in() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let name = container_name();
    let line =
        kiln_line(&daemon, &["run", "-it", "--name", &name, "--network", "none", "bb", "sh"]);
    let tmux = Tmux::start(daemon.dir.path(), &line, 100, 30);
    tmux.wait_until("a shell prompt", |s| s.iter().any(|l| l.ends_with('#')));
    tmux.type_line("echo in-$((1+1))");
    tmux.wait_for_line("in-2");
    tmux.press(&["C-p", "C-q"]);
    tmux.wait_for_exit(0);
    let listed =
        daemon.kiln_ok(&["ps", "--filter", &format!("name={name}"), "--format", "{{.Status}}"]);
    assert!(listed.starts_with("Up "), "the container must keep running: {listed:?}");
    tmux.respawn(&kiln_line(&daemon, &["attach", &name]));
    // Attaching shows nothing until the shell writes; ask it to.
    tmux.type_line("echo back-$((2+2))");
    tmux.wait_for_line("back-4");
    tmux.type_line("exit 3");
    tmux.wait_for_exit(3);
}

#[test]
fn exec_it_runs_a_shell_in_a_running_container_and_returns_its_code() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let name = container_name();
    daemon.kiln_ok(&["run", "-d", "--name", &name, "--network", "none", "bb", "sleep", "1000"]);
    let tmux =
        Tmux::start(daemon.dir.path(), &kiln_line(&daemon, &["exec", "-it", &name, "sh"]), 90, 25);
    tmux.wait_until("a shell prompt", |s| s.iter().any(|l| l.ends_with('#')));
    tmux.type_line("echo $((6*7)); stty size");
    tmux.wait_for_line("42");
    tmux.wait_for_line("25 90");
    tmux.type_line("exit 5");
    tmux.wait_for_exit(5);
    let state = daemon.kiln_ok(&["inspect", "-f", "{{.State.Status}}", &name]);
    assert_eq!(state.trim(), "running", "the exec's end is not the container's");
    daemon.kiln_ok(&["rm", "-f", &name]);
}

#[test]
fn run_i_without_t_streams_stdin_and_closes_it_at_eof() {
    kiln_testing::require_privileged!();
    let daemon = daemon_with_busybox();
    let mut child = daemon
        .kiln()
        .args(["run", "-i", "--rm", "--network", "none", "bb", "wc", "-l"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kiln run -i");
    child.stdin.take().expect("stdin").write_all(b"a\nb\n").expect("write stdin");
    // stdin is dropped here: EOF, and `wc` may finish.
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "kiln run -i did not end after stdin closed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        (out.status.code(), stdout.trim()),
        (Some(0), "2"),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
