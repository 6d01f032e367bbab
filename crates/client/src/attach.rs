//! Hijacked connections (`attach`, `exec start`): the daemon answers
//! `101 UPGRADED` and the connection becomes the container's stdio: its
//! output one way ([`OutputStream`]), its stdin the other ([`InputWriter`]).

use std::fmt;

use http::{Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use kiln_api_types::ApiVersion;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use crate::error::ClientError;
use crate::host::Host;
use crate::stream::{framing, OutputStream};
use crate::transport;

/// A container's (or exec's) stdio over one hijacked connection.
#[derive(Debug)]
pub struct Attached {
    output: OutputStream,
    input: InputWriter,
}

impl Attached {
    /// The output and input halves, to drive from separate tasks.
    pub fn split(self) -> (OutputStream, InputWriter) {
        (self.output, self.input)
    }

    pub fn output(&mut self) -> &mut OutputStream {
        &mut self.output
    }

    pub fn input(&mut self) -> &mut InputWriter {
        &mut self.input
    }
}

/// The write side of a hijacked connection: bytes for the container's stdin.
pub struct InputWriter {
    /// `None` when the daemon did not upgrade the connection.
    writer: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    closed: bool,
}

impl fmt::Debug for InputWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputWriter")
            .field("upgraded", &self.writer.is_some())
            .field("closed", &self.closed)
            .finish()
    }
}

impl InputWriter {
    /// Send `data` (and flush it: a keystroke must not wait in a buffer).
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), ClientError> {
        let writer = self.writer.as_mut().ok_or(ClientError::NotUpgraded)?;
        writer.write_all(data).await.map_err(|source| ClientError::Write { source })?;
        writer.flush().await.map_err(|source| ClientError::Write { source })
    }

    /// Half-close: no more input. The daemon then closes the container's
    /// stdin (when it was started with `StdinOnce`) while its output still
    /// arrives, as the docker CLI does at the end of its own stdin. Closing
    /// twice, or a connection that was never upgraded, is not an error.
    pub async fn close_write(&mut self) -> Result<(), ClientError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        match self.writer.as_mut() {
            Some(writer) => match writer.shutdown().await {
                Ok(()) => Ok(()),
                // The daemon closed first: nothing left to half-close.
                Err(err) if err.kind() == std::io::ErrorKind::NotConnected => Ok(()),
                Err(source) => Err(ClientError::Write { source }),
            },
            None => Ok(()),
        }
    }
}

/// An attach or exec-start answer → the hijacked stdio. `101`: the upgraded
/// connection; docker-compat: an older daemon's `200` streams the output in
/// the body (until it closes) and takes no input.
pub(crate) async fn hijacked(
    host: &Host,
    api_version: ApiVersion,
    path: &str,
    response: Response<Incoming>,
    tty: bool,
) -> Result<Attached, ClientError> {
    let framing = framing(response.headers(), tty, api_version);
    let status = response.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let connection = transport::upgrade(host, response).await?;
        let (reader, writer) = tokio::io::split(connection);
        return Ok(Attached {
            output: OutputStream::from_reader(reader, framing),
            input: InputWriter { writer: Some(Box::new(writer)), closed: false },
        });
    }
    if !status.is_success() {
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|source| ClientError::Http { host: host.clone(), source })?
            .to_bytes();
        crate::check_status(status, &bytes)?;
        // A 304 that check_status lets through carries no stream.
        return Err(ClientError::UnexpectedStatus { path: path.to_owned(), status });
    }
    Ok(Attached {
        output: OutputStream::from_body(response.into_body(), host.clone(), framing),
        input: InputWriter { writer: None, closed: false },
    })
}

#[cfg(test)]
mod tests {
    use kiln_api_types::ExecStartConfig;
    use tokio::io::AsyncReadExt as _;

    use super::*;
    use crate::container::AttachOptions;
    use crate::fake_daemon::{frame, send, FakeDaemon};
    use crate::stream::StreamKind;

    /// Everything left in `output`, by stream.
    async fn drain(output: &mut OutputStream) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some((kind, bytes)) = output.next().await? {
            match kind {
                StreamKind::Stdout => out.extend_from_slice(&bytes),
                StreamKind::Stderr => err.extend_from_slice(&bytes),
                other => panic!("unexpected stream {other:?}"),
            }
        }
        Ok((out, err))
    }

    fn all_streams() -> AttachOptions {
        AttachOptions {
            stream: true,
            stdin: true,
            stdout: true,
            stderr: true,
            ..AttachOptions::default()
        }
    }

    #[tokio::test]
    async fn attach_hijacks_and_half_closes_stdin() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            send(
                &mut stream,
                b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\
                  Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
            )
            .await;
            // Echo stdin as stdout frames until the client half-closes.
            let mut buf = [0; 64];
            loop {
                let n = stream.read(&mut buf).await.expect("read stdin");
                if n == 0 {
                    break;
                }
                send(&mut stream, &frame(1, &buf[..n])).await;
            }
            send(&mut stream, &frame(2, b"stdin closed\n")).await;
        });
        let attached =
            daemon.client.container_attach("web", &all_streams(), false).await.expect("attach");
        let (mut output, mut input) = attached.split();
        input.write_all(b"hello\n").await.expect("write");
        input.close_write().await.expect("half-close");
        input.close_write().await.expect("closing twice is fine");
        let (out, err) = drain(&mut output).await.expect("output");
        assert_eq!(out, b"hello\n");
        assert_eq!(err, b"stdin closed\n");
        let head = server.await.expect("server").to_ascii_lowercase();
        assert!(
            head.starts_with(
                "post /v1.47/containers/web/attach?stream=1&stdin=1&stdout=1&stderr=1 http/1.1\r\n"
            ),
            "{head}"
        );
        assert!(head.contains("connection: upgrade\r\n") && head.contains("upgrade: tcp\r\n"));
    }

    #[tokio::test]
    async fn exec_start_with_a_tty_reads_raw_bytes() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            // dockerd's answer carries no Content-Type for old clients; the
            // tty decides.
            send(
                &mut stream,
                b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
            )
            .await;
            let mut body = vec![0; 2];
            stream.read_exact(&mut body).await.expect("json body start");
            send(&mut stream, b"\x01\x00raw\r\n").await;
        });
        let config = ExecStartConfig { tty: true, ..ExecStartConfig::default() };
        let mut attached =
            daemon.client.exec_start("e1", &config).await.expect("start").expect("attached");
        let (out, _) = drain(attached.output()).await.expect("output");
        assert_eq!(out, b"\x01\x00raw\r\n");
        let head = server.await.expect("server").to_ascii_lowercase();
        assert!(head.starts_with("post /v1.47/exec/e1/start http/1.1\r\n"), "{head}");
        assert!(head.contains("content-type: application/json\r\n"), "{head}");
    }

    #[tokio::test]
    async fn an_old_daemons_200_attach_is_output_only() {
        let mut daemon = FakeDaemon::new();
        // Before 1.42 dockerd labels a multiplexed stream raw-stream.
        daemon.client.api_version = ApiVersion::new(1, 41);
        let _server = daemon.serve(|mut stream| async move {
            let mut answer =
                b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\
                               Connection: close\r\n\r\n"
                    .to_vec();
            answer.extend(frame(1, b"out"));
            send(&mut stream, &answer).await;
        });
        let mut attached =
            daemon.client.container_attach("c", &all_streams(), false).await.expect("attach");
        assert!(matches!(attached.input().write_all(b"x").await, Err(ClientError::NotUpgraded)));
        let (out, _) = drain(attached.output()).await.expect("output");
        assert_eq!(out, b"out");
    }

    #[tokio::test]
    async fn an_attach_refused_by_the_daemon_carries_its_message() {
        let mut daemon = FakeDaemon::new();
        let _server = daemon.serve(|mut stream| async move {
            let body = br#"{"message":"No such container: nope"}"#;
            let head = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            send(&mut stream, head.as_bytes()).await;
            send(&mut stream, body).await;
        });
        let err =
            daemon.client.container_attach("nope", &all_streams(), false).await.expect_err("404");
        assert_eq!(err.to_string(), "No such container: nope");
    }
}
