//! The control socket under bad input and many clients.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;

use crate::common::{read_until_exit, require_privileged, send, FrameKind, Reply, Shim};

#[test]
fn malformed_requests_get_an_error_and_the_shim_carries_on() {
    require_privileged!();
    let shim = Shim::run(&["sh", "-c", "echo fine"], &[]);
    let mode = std::fs::metadata(shim.socket()).expect("socket").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    for line in [&b"not json\n"[..], b"{\"op\":\"explode\"}\n", b"{}\n", b"\xff\xfe\n"] {
        let (mut sock, reply) = shim.raw_request(line);
        assert!(!reply.ok, "{line:?} got {reply:?}");
        let mut rest = Vec::new();
        sock.read_to_end(&mut rest).expect("the shim closes");
        assert!(rest.is_empty());
    }
    // Garbage frames after attach drop that client, nothing else.
    let mut bad = shim.attach(true, true, true);
    bad.write_all(&[42, 1, 2, 3, 0, 0, 0, 0]).expect("write");
    let mut rest = Vec::new();
    let _ = bad.read_to_end(&mut rest);
    // A client that hangs up half-way through its request line.
    let mut half = std::os::unix::net::UnixStream::connect(shim.socket()).expect("connect");
    half.write_all(b"{\"op\":").expect("write");
    drop(half);
    // A client sending output frames is dropped too.
    let mut odd = shim.attach(false, true, false);
    send(&mut odd, FrameKind::Exit, b"{}");

    let mut good = shim.attach(false, true, true);
    assert_eq!(shim.start(), Reply::with_pid(shim.init_pid()));
    let again = shim.start();
    assert!(!again.ok, "a second start is refused: {again:?}");
    let got = read_until_exit(&mut good);
    assert_eq!((got.stdout(), got.exit_code()), ("fine\n".to_owned(), 0));
    shim.assert_nothing_left();
}

#[test]
fn a_client_that_never_reads_does_not_block_the_container_or_others() {
    require_privileged!();
    let shim = Shim::run(&["sh", "-c", "yes | head -c 20000000; echo; echo end"], &[]);
    let _stalled = shim.attach(false, true, true);
    let mut reader = shim.attach(false, true, true);
    let mut wait = shim.wait();
    shim.start_ok();
    let got = read_until_exit(&mut reader);
    assert_eq!(got.exit_code(), 0);
    assert!(got.stdout().ends_with("\nend\n"));
    assert_eq!(got.stdout.len(), 20_000_000 + "\nend\n".len());
    assert_eq!(read_until_exit(&mut wait).exit_code(), 0);
    shim.assert_nothing_left();
}
