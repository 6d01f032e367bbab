//! The exec op: a new process in the running container, streamed on the
//! connection that asked for it.

use kiln_runtime::spec::Process;

use crate::common::{
    read_stdout_until, read_until_exit, require_privileged, send, FrameKind, Request, Shim,
};

fn process(args: &[&str]) -> Box<Process> {
    Box::new(Process {
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        ..Process::default()
    })
}

fn exec(args: &[&str], tty: bool, stdin: bool) -> Request {
    Request::Exec { process: process(args), tty, stdin }
}

#[test]
fn exec_streams_its_output_and_exit_code_but_not_into_the_log() {
    require_privileged!();
    let shim = Shim::run(&["sleep", "1000"], &[]);
    shim.start_ok();
    let (mut sock, reply) = shim.request(&exec(&["echo", "hi"], false, false));
    assert!(reply.ok && reply.pid.is_some(), "{reply:?}");
    let got = read_until_exit(&mut sock);
    assert_eq!((got.stdout(), got.exit_code()), ("hi\n".to_owned(), 0));
    assert_eq!(got.exit.as_ref().map(|e| e.pid), reply.pid);

    let (mut sock, _) = shim.request(&exec(&["sh", "-c", "echo oops >&2; exit 5"], false, false));
    let got = read_until_exit(&mut sock);
    assert_eq!((got.stderr(), got.exit_code()), ("oops\n".to_owned(), 5));
    assert!(shim.log().is_empty(), "exec output is not logged: {:?}", shim.log());
}

#[test]
fn exec_of_a_missing_binary_replies_127_like_docker() {
    require_privileged!();
    let shim = Shim::run(&["sleep", "1000"], &[]);
    shim.start_ok();
    let (_, reply) = shim.request(&exec(&["nope"], false, false));
    assert!(!reply.ok);
    assert_eq!(reply.exit_code, Some(127));
    assert_eq!(
        reply.message.as_deref(),
        Some(
            "OCI runtime exec failed: exec failed: unable to start container process: \
             exec: \"nope\": executable file not found in $PATH: unknown"
        )
    );
    // The container is unharmed.
    let (mut sock, _) = shim.request(&exec(&["true"], false, false));
    assert_eq!(read_until_exit(&mut sock).exit_code(), 0);
}

#[test]
fn exec_stdin_and_tty() {
    require_privileged!();
    let shim = Shim::run(&["sleep", "1000"], &[]);
    shim.start_ok();
    let (mut sock, reply) = shim.request(&exec(&["cat"], false, true));
    assert!(reply.ok, "{reply:?}");
    send(&mut sock, FrameKind::Stdin, b"piped\n");
    assert_eq!(read_stdout_until(&mut sock, "piped\n"), "piped\n");
    send(&mut sock, FrameKind::CloseStdin, b"");
    assert_eq!(read_until_exit(&mut sock).exit_code(), 0);

    let (mut sock, reply) = shim.request(&exec(&["sh", "-c", "tty; exit 2"], true, false));
    assert!(reply.ok, "{reply:?}");
    let got = read_until_exit(&mut sock);
    assert!(got.stdout().starts_with("/dev/pts/"), "{:?}", got.stdout());
    assert_eq!(got.exit_code(), 2);
}

#[test]
fn an_exec_whose_client_went_away_keeps_running() {
    require_privileged!();
    let shim = Shim::run(&["sleep", "1000"], &[]);
    shim.start_ok();
    let (sock, reply) =
        shim.request(&exec(&["sh", "-c", "sleep 0.3; echo late > /tmp/mark"], false, false));
    assert!(reply.ok);
    drop(sock);
    let (mut check, _) = shim.request(&exec(&["sh", "-c", "sleep 1; cat /tmp/mark"], false, false));
    let got = read_until_exit(&mut check);
    assert_eq!(got.stdout(), "late\n");
}

#[test]
fn exec_needs_a_running_container() {
    require_privileged!();
    let shim = Shim::run(&["sleep", "1000"], &[]);
    let (_, reply) = shim.request(&exec(&["true"], false, false));
    assert!(!reply.ok);
    assert!(reply.message.unwrap_or_default().contains("not running"));
}

#[test]
fn exec_in_a_paused_container_is_refused_instead_of_hanging() {
    require_privileged!();
    let shim = Shim::run(&["sleep", "1000"], &[]);
    shim.start_ok();
    let runtime = |verb: &str| {
        let status = shim.root.runtime().args([verb, shim.id()]).status().expect("kiln runs");
        assert!(status.success(), "kiln runtime {verb} failed");
    };
    runtime("pause");
    let (_, reply) = shim.request(&exec(&["true"], false, false));
    assert!(!reply.ok);
    assert!(reply.message.unwrap_or_default().contains("paused"));
    runtime("resume");
    let (mut sock, reply) = shim.request(&exec(&["true"], false, false));
    assert!(reply.ok, "{reply:?}");
    assert_eq!(read_until_exit(&mut sock).exit_code(), 0);
}
