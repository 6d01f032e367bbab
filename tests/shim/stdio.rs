//! Stdin through attach, and the container's terminal.

use crate::common::{
    read_stdout_until, read_until_exit, require_privileged, send, FrameKind, Request, Shim,
};
use kiln_shim::protocol::write_frame;

#[test]
fn attach_stdin_reaches_the_container_and_closing_it_ends_stdin_once() {
    require_privileged!();
    let shim = Shim::run(&["cat"], &["--open-stdin", "--stdin-once"]);
    let mut attach = shim.attach(true, true, true);
    shim.start_ok();
    send(&mut attach, FrameKind::Stdin, b"hello ");
    send(&mut attach, FrameKind::Stdin, b"shim\n");
    assert_eq!(read_stdout_until(&mut attach, "hello shim\n"), "hello shim\n");
    send(&mut attach, FrameKind::CloseStdin, b"");
    let got = read_until_exit(&mut attach);
    assert_eq!(got.exit_code(), 0);
    assert_eq!(shim.log(), [("stdout".to_owned(), "hello shim\n".to_owned())]);
    shim.assert_nothing_left();
}

#[test]
fn without_open_stdin_the_container_reads_end_of_file() {
    require_privileged!();
    let shim = Shim::run(&["sh", "-c", "cat; echo done"], &[]);
    let mut attach = shim.attach(true, true, true);
    shim.start_ok();
    // The container may be gone already (its stdin was never open), and the
    // shim done with this connection: a refused write is fine here.
    let _ = write_frame(&mut attach, FrameKind::Stdin, b"ignored\n");
    let got = read_until_exit(&mut attach);
    assert_eq!((got.stdout(), got.exit_code()), ("done\n".to_owned(), 0));
    shim.assert_nothing_left();
}

#[test]
fn tty_gets_a_terminal_and_resize_changes_its_size() {
    require_privileged!();
    let bundle = Shim::bundle(
        &["sh", "-c", "tty; test -t 0 && echo is-a-tty; read line; stty size; echo got $line"],
        |config| config["process"]["terminal"] = true.into(),
    );
    let shim = Shim::launch(bundle, &["--tty", "--open-stdin"]);
    assert!(shim.ready.ok, "{:?}", shim.ready);
    let mut attach = shim.attach(true, true, true);
    shim.start_ok();
    let first = read_stdout_until(&mut attach, "is-a-tty");
    assert!(first.contains("/dev/pts/0"), "{first:?}");
    let (_, reply) = shim.request(&Request::Resize { height: 40, width: 100 });
    assert!(reply.ok, "{reply:?}");
    send(&mut attach, FrameKind::Stdin, b"input\n");
    let got = read_until_exit(&mut attach);
    let text = got.stdout();
    assert!(text.contains("40 100"), "{text:?}");
    assert!(text.contains("got input"), "{text:?}");
    assert!(got.stderr.is_empty(), "a terminal has no separate stderr");
    assert_eq!(got.exit_code(), 0);
    assert!(shim.log().iter().all(|(stream, _)| stream == "stdout"));
    shim.assert_nothing_left();
}

#[test]
fn resize_frames_on_attach_resize_the_terminal() {
    require_privileged!();
    let bundle = Shim::bundle(&["sh", "-c", "read x; stty size"], |config| {
        config["process"]["terminal"] = true.into()
    });
    let shim = Shim::launch(bundle, &["--tty", "--open-stdin"]);
    let mut attach = shim.attach(true, true, false);
    shim.start_ok();
    send(&mut attach, FrameKind::Resize, br#"{"height":33,"width":77}"#);
    send(&mut attach, FrameKind::Stdin, b"\n");
    let got = read_until_exit(&mut attach);
    assert!(got.stdout().contains("33 77"), "{:?}", got.stdout());
    shim.assert_nothing_left();
}

#[test]
fn resize_without_a_terminal_is_an_error() {
    require_privileged!();
    let shim = Shim::run(&["true"], &[]);
    let (_, reply) = shim.request(&Request::Resize { height: 1, width: 1 });
    assert!(!reply.ok);
    assert!(reply.message.unwrap_or_default().contains("no terminal"));
}

#[test]
fn with_stdin_once_a_departing_client_closes_stdin() {
    require_privileged!();
    let shim = Shim::run(&["sh", "-c", "cat; echo eof"], &["--open-stdin", "--stdin-once"]);
    let mut watcher = shim.attach(false, true, false);
    let mut typist = shim.attach(true, false, false);
    shim.start_ok();
    send(&mut typist, FrameKind::Stdin, b"bye\n");
    assert_eq!(read_stdout_until(&mut watcher, "bye\n"), "bye\n");
    drop(typist);
    let got = read_until_exit(&mut watcher);
    assert_eq!((got.stdout(), got.exit_code()), ("eof\n".to_owned(), 0));
}

#[test]
fn without_stdin_once_stdin_stays_open_for_the_next_client() {
    require_privileged!();
    let shim = Shim::run(&["sh", "-c", "read a; read b; echo $a $b"], &["--open-stdin"]);
    let mut first = shim.attach(true, true, false);
    shim.start_ok();
    send(&mut first, FrameKind::Stdin, b"one\n");
    send(&mut first, FrameKind::CloseStdin, b"");
    let mut second = shim.attach(true, false, false);
    send(&mut second, FrameKind::Stdin, b"two\n");
    let got = read_until_exit(&mut first);
    assert_eq!((got.stdout(), got.exit_code()), ("one two\n".to_owned(), 0));
}
