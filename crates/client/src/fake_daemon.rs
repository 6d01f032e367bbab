//! A daemon stand-in for unit tests: a unix socket in a temp dir that
//! answers one connection with a scripted exchange.

use std::future::Future;

use kiln_api_types::ApiVersion;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::{Client, Host, Ping};

/// A listening fake daemon and a client pointed at it.
pub(crate) struct FakeDaemon {
    pub client: Client,
    listener: Option<UnixListener>,
    _dir: tempfile::TempDir,
}

impl FakeDaemon {
    pub fn new() -> FakeDaemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        let client = Client {
            host: Host::Unix(socket),
            api_version: ApiVersion::new(1, 47),
            ping: Ping::default(),
        };
        FakeDaemon { client, listener: Some(listener), _dir: dir }
    }

    /// Accept one connection, read the request head, and hand the head and
    /// the connection to `script`; the task's result is the head.
    pub fn serve<F, Fut>(&mut self, script: F) -> JoinHandle<String>
    where
        F: FnOnce(UnixStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let listener = self.listener.take().expect("one connection per fake daemon");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let head = read_head(&mut stream).await;
            script(stream).await;
            head
        })
    }
}

/// The request up to and including the blank line (a body, if any, stays).
async fn read_head(stream: &mut UnixStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = stream.read_u8().await.expect("request head");
        head.push(byte);
    }
    String::from_utf8(head).expect("utf-8 head")
}

/// One multiplexed frame.
pub(crate) fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![kind, 0, 0, 0];
    out.extend_from_slice(&u32::try_from(payload.len()).expect("len").to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Write `bytes` and flush.
/// An HTTP answer with `status` (`200 OK`) and a JSON `body`.
pub(crate) fn json_answer(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(crate) async fn send(stream: &mut UnixStream, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("write");
    stream.flush().await.expect("flush");
}
