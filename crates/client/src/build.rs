//! `POST /build`: the build context goes up as a tar, streamed, and the
//! build's messages come back as they happen (`Step 1/4 : FROM busybox`,
//! the step output, the image id as `{"aux":{"ID":…}}`).
//!
//! The query is what the docker CLI sends for its classic builder, plus
//! Kiln's additions (`nocachefilter`, `cacheto`, `checkreproducible`) and
//! the secrets header `X-Kiln-Build-Secrets`. A context made by blocking
//! code (a directory walked and tarred) is fed through
//! [`spawn_body_writer`]: a small channel, never the whole tar in memory,
//! and a writer that fails breaks the upload instead of ending it short.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf as _, Bytes};
use http::{HeaderName, HeaderValue, Method};
use http_body_util::BodyExt as _;
use kiln_api_types::{ErrorDetail, Ulimit};
use serde::Deserialize;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::ClientError;
use crate::query::{push_flag, with_query};
use crate::{transport, Client};

/// Kiln's request header for build secrets: base64 of a JSON object
/// `{id: base64(bytes)}`. Sent only over a unix socket.
pub const SECRETS_HEADER: &str = "x-kiln-build-secrets";

/// Chunks in flight between a body writer and the connection.
const DEPTH: usize = 8;
/// Bytes gathered before a chunk is handed to the connection.
const CHUNK: usize = 256 * 1024;

/// What `docker build` asks of the daemon besides the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// `-t`, in order.
    pub tags: Vec<String>,
    /// The Dockerfile's path inside the context; the daemon's default
    /// (`Dockerfile`) when `None`.
    pub dockerfile: Option<String>,
    /// `--build-arg`; `None` is sent as `null` (a bare name unset here).
    pub build_args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub no_cache_filter: Vec<String>,
    pub pull: bool,
    pub labels: BTreeMap<String, String>,
    pub network: Option<String>,
    pub extra_hosts: Vec<String>,
    /// `--shm-size` in bytes; not sent when 0.
    pub shm_size: i64,
    pub ulimits: Vec<Ulimit>,
    pub secrets: Vec<BuildSecret>,
    pub quiet: bool,
    pub platform: Option<String>,
    pub cache_from: Vec<String>,
    pub cache_to: Vec<String>,
    pub check_reproducible: bool,
    /// A Git repository the daemon fetches as the context (`remote=`);
    /// the body is then empty.
    pub remote: Option<String>,
    /// `--rm` (the default): remove intermediate containers.
    pub remove: bool,
    pub force_remove: bool,
}

impl Default for BuildOptions {
    fn default() -> BuildOptions {
        BuildOptions {
            tags: Vec::new(),
            dockerfile: None,
            build_args: BTreeMap::new(),
            target: None,
            no_cache: false,
            no_cache_filter: Vec::new(),
            pull: false,
            labels: BTreeMap::new(),
            network: None,
            extra_hosts: Vec::new(),
            shm_size: 0,
            ulimits: Vec::new(),
            secrets: Vec::new(),
            quiet: false,
            platform: None,
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            check_reproducible: false,
            remote: None,
            remove: true,
            force_remove: false,
        }
    }
}

/// A `--secret`: its id and bytes, read on the client.
#[derive(Clone, PartialEq, Eq)]
pub struct BuildSecret {
    pub id: String,
    pub data: Vec<u8>,
}

impl fmt::Debug for BuildSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a secret's bytes, not even in a debug log.
        f.debug_struct("BuildSecret").field("id", &self.id).field("len", &self.data.len()).finish()
    }
}

/// One message of a build's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BuildMessage {
    /// Text to print as it is (`Step 1/2 : FROM busybox\n`, RUN output).
    pub stream: Option<String>,
    /// Progress of a base image pull, as `docker pull` shows it.
    pub status: Option<String>,
    pub id: Option<String>,
    /// `{"ID":"sha256:…"}`: the image built.
    pub aux: Option<serde_json::Value>,
    pub error: Option<String>,
    #[serde(rename = "errorDetail")]
    pub error_detail: Option<ErrorDetail>,
}

impl Client {
    /// `POST /build`: send `context` (a tar, plain or compressed) and call
    /// `on_message` for each message as it arrives. The answer is the
    /// built image's id (`sha256:…`), when the daemon said it. An error
    /// before the build starts is [`ClientError::Api`]; one in the stream
    /// (a failed step) is [`ClientError::Stream`] with the daemon's message.
    pub async fn image_build(
        &self,
        context: impl AsyncRead + Send + Unpin + 'static,
        options: &BuildOptions,
        mut on_message: impl FnMut(&BuildMessage),
    ) -> Result<Option<String>, ClientError> {
        let path = with_query("/build", &build_query(options));
        let mut headers =
            vec![(http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"))];
        if !options.secrets.is_empty() {
            // Base64 is always a valid header value; the error cannot happen.
            let value = HeaderValue::from_str(&secrets_header(&options.secrets)).map_err(|_| {
                ClientError::Stream { message: "cannot encode the build secrets".to_owned() }
            })?;
            headers.push((HeaderName::from_static(SECRETS_HEADER), value));
        }
        let response =
            self.open(Method::POST, &path, &headers, transport::from_reader(context)).await?;
        let mut body = response.into_body();
        let http_err = |source| ClientError::Http { host: self.host.clone(), source };
        let versioned = self.versioned(&path);
        let mut pending: Vec<u8> = Vec::new();
        let mut id = None;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(http_err)?.into_data() else { continue };
            pending.extend_from_slice(&data);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                handle_line(&versioned, &line, &mut id, &mut on_message)?;
            }
        }
        handle_line(&versioned, &pending, &mut id, &mut on_message)?;
        Ok(id)
    }
}

/// One line of the answer: an error ends the build; an aux ID is kept.
fn handle_line(
    path: &str,
    line: &[u8],
    id: &mut Option<String>,
    on_message: &mut impl FnMut(&BuildMessage),
) -> Result<(), ClientError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let message: BuildMessage = serde_json::from_slice(line)
        .map_err(|source| ClientError::Decode { path: path.to_owned(), source })?;
    if let Some(error) =
        message.error.clone().or_else(|| message.error_detail.as_ref().map(|d| d.message.clone()))
    {
        return Err(ClientError::Stream { message: error });
    }
    if let Some(aux_id) = message.aux.as_ref().and_then(|aux| aux.get("ID")?.as_str()) {
        *id = Some(aux_id.to_owned());
    }
    on_message(&message);
    Ok(())
}

/// The query, in the order and shapes the docker CLI sends it.
fn build_query(options: &BuildOptions) -> Vec<(&'static str, String)> {
    let mut query: Vec<(&'static str, String)> = Vec::new();
    query.extend(options.tags.iter().map(|t| ("t", t.clone())));
    query.extend(options.extra_hosts.iter().map(|h| ("extrahosts", h.clone())));
    push_flag(&mut query, "q", options.quiet);
    push_flag(&mut query, "nocache", options.no_cache);
    // docker-compat: the daemon removes intermediate containers unless told.
    if !options.remove {
        query.push(("rm", "0".to_owned()));
    }
    push_flag(&mut query, "forcerm", options.force_remove);
    push_flag(&mut query, "pull", options.pull);
    if let Some(network) = &options.network {
        query.push(("networkmode", network.clone()));
    }
    if options.shm_size != 0 {
        query.push(("shmsize", options.shm_size.to_string()));
    }
    if let Some(dockerfile) = &options.dockerfile {
        query.push(("dockerfile", dockerfile.clone()));
    }
    if let Some(target) = &options.target {
        query.push(("target", target.clone()));
    }
    if !options.ulimits.is_empty() {
        query.push(("ulimits", json(&options.ulimits)));
    }
    if !options.build_args.is_empty() {
        query.push(("buildargs", json(&options.build_args)));
    }
    if !options.labels.is_empty() {
        query.push(("labels", json(&options.labels)));
    }
    if !options.cache_from.is_empty() {
        query.push(("cachefrom", json(&options.cache_from)));
    }
    if let Some(platform) = &options.platform {
        query.push(("platform", platform.to_ascii_lowercase()));
    }
    if let Some(remote) = &options.remote {
        query.push(("remote", remote.clone()));
    }
    // The classic builder; BuildKit's is 2.
    query.push(("version", "1".to_owned()));
    // Kiln's own.
    if !options.no_cache_filter.is_empty() {
        query.push(("nocachefilter", json(&options.no_cache_filter)));
    }
    if !options.cache_to.is_empty() {
        query.push(("cacheto", json(&options.cache_to)));
    }
    push_flag(&mut query, "checkreproducible", options.check_reproducible);
    query
}

/// A structured parameter (`buildargs`, `labels`, …) as the JSON dockerd reads.
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The secrets header's value: base64 of `{"id": "base64(bytes)", …}`.
pub fn secrets_header(secrets: &[BuildSecret]) -> String {
    let map: BTreeMap<&str, String> =
        secrets.iter().map(|s| (s.id.as_str(), base64_encode(&s.data))).collect();
    base64_encode(serde_json::to_string(&map).unwrap_or_default().as_bytes())
}

/// Standard base64 (RFC 4648, `+/`, padded).
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        group[..chunk.len()].copy_from_slice(chunk);
        let bits = u32::from_be_bytes([0, group[0], group[1], group[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                let index = usize::try_from((bits >> (18 - 6 * i)) & 63).unwrap_or(0);
                out.push(char::from(ALPHABET[index]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A request body written by blocking code: the reading side of
/// [`spawn_body_writer`].
#[derive(Debug)]
pub struct BodyStream {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl AsyncRead for BodyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.current.is_empty() {
            match ready!(self.rx.poll_recv(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Err(err)) => return Poll::Ready(Err(err)),
                Some(Ok(chunk)) => self.current = chunk,
            }
        }
        let n = buf.remaining().min(self.current.len());
        buf.put_slice(&self.current[..n]);
        self.current.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// The writing side: each write waits for room in the channel.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.blocking_send(Ok(Bytes::copy_from_slice(buf))).map_err(|_| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the daemon stopped reading the upload")
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Run `write` on a blocking thread; what it writes is what the returned
/// stream reads, a chunk at a time. When `write` fails, the stream fails
/// too, so the upload breaks: a daemon never takes a cut-off tar for a
/// whole one. A write fails with [`io::ErrorKind::BrokenPipe`] once the
/// stream is gone (the daemon answered early, or the request failed).
/// Must be called in a tokio runtime.
pub fn spawn_body_writer<F, T, E>(write: F) -> (BodyStream, JoinHandle<Result<T, E>>)
where
    F: FnOnce(&mut dyn Write) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<io::Error> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(DEPTH);
    let task = tokio::task::spawn_blocking(move || {
        let mut sink = ChannelWriter { tx: tx.clone() };
        let mut buffered = BufWriter::with_capacity(CHUNK, &mut sink);
        let result = write(&mut buffered).and_then(|value| {
            buffered.flush()?;
            Ok(value)
        });
        drop(buffered);
        if result.is_err() {
            let _ = tx.blocking_send(Err(io::Error::other("the build context could not be sent")));
        }
        result
    });
    (BodyStream { rx, current: Bytes::new() }, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_the_docker_clis_query() {
        let mut options = BuildOptions {
            tags: vec!["app:1".into(), "app:latest".into()],
            dockerfile: Some(".dockerfile.0123".into()),
            target: Some("final".into()),
            no_cache: true,
            quiet: true,
            remove: false,
            shm_size: 64 << 20,
            ulimits: vec![Ulimit { name: "nofile".into(), soft: 1024, hard: 2048 }],
            platform: Some("Linux/AMD64".into()),
            no_cache_filter: vec!["deps".into()],
            check_reproducible: true,
            ..BuildOptions::default()
        };
        options.build_args.insert("A".into(), Some("1 2".into()));
        options.build_args.insert("UNSET".into(), None);
        options.labels.insert("org.x".into(), "y".into());
        let query = build_query(&options);
        let get = |key: &str| -> Vec<&str> {
            query.iter().filter(|(k, _)| *k == key).map(|(_, v)| v.as_str()).collect()
        };
        assert_eq!(get("t"), ["app:1", "app:latest"]);
        assert_eq!(get("buildargs"), [r#"{"A":"1 2","UNSET":null}"#]);
        assert_eq!(get("labels"), [r#"{"org.x":"y"}"#]);
        assert_eq!(get("ulimits"), [r#"[{"Name":"nofile","Soft":1024,"Hard":2048}]"#]);
        assert_eq!(get("rm"), ["0"]);
        assert_eq!(get("q"), ["1"]);
        assert_eq!(get("shmsize"), ["67108864"]);
        assert_eq!(get("platform"), ["linux/amd64"]);
        assert_eq!(get("version"), ["1"]);
        assert_eq!(get("nocachefilter"), [r#"["deps"]"#]);
        assert_eq!(get("checkreproducible"), ["1"]);
        assert!(get("pull").is_empty() && get("cacheto").is_empty() && get("forcerm").is_empty());

        let plain = build_query(&BuildOptions::default());
        assert_eq!(plain, [("version", "1".to_owned())], "only what is set is sent");
    }

    #[test]
    fn secrets_encode_as_base64_json_of_base64() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"a"), "YQ==");
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_encode(b"abc"), "YWJj");
        assert_eq!(base64_encode(&[0xfb, 0xff]), "+/8=");
        let secrets = [
            BuildSecret { id: "tok".into(), data: b"abc".to_vec() },
            BuildSecret { id: "a".into(), data: vec![] },
        ];
        // {"a":"","tok":"YWJj"}
        assert_eq!(secrets_header(&secrets), base64_encode(br#"{"a":"","tok":"YWJj"}"#));
        assert_eq!(format!("{:?}", secrets[0]), r#"BuildSecret { id: "tok", len: 3 }"#);
    }

    async fn answer(stream: &mut tokio::net::UnixStream, body: &[u8]) {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        crate::fake_daemon::send(stream, head.as_bytes()).await;
        for piece in body.chunks(7) {
            crate::fake_daemon::send(stream, piece).await;
        }
    }

    /// The request body of a chunked upload, read to its end.
    async fn read_chunked(stream: &mut tokio::net::UnixStream) -> Vec<u8> {
        use tokio::io::AsyncReadExt as _;
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        while !raw.ends_with(b"0\r\n\r\n") {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "the upload ended before its last chunk");
            raw.extend_from_slice(&buf[..n]);
        }
        let mut out = Vec::new();
        let mut rest = &raw[..];
        loop {
            let end = rest.windows(2).position(|w| w == b"\r\n").expect("chunk size");
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..end]).expect("hex"), 16).unwrap();
            if size == 0 {
                return out;
            }
            out.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 2 + size + 2..];
        }
    }

    #[tokio::test]
    async fn the_context_streams_up_and_messages_come_back_with_the_id() {
        let mut daemon = crate::fake_daemon::FakeDaemon::new();
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        let server = daemon.serve(|mut stream| async move {
            let uploaded = read_chunked(&mut stream).await;
            let _ = seen_tx.send(uploaded);
            let body = b"{\"stream\":\"Step 1/1 : FROM scratch\\n\"}\n\
                         {\"aux\":{\"ID\":\"sha256:ab\"}}\n\
                         {\"stream\":\"Successfully built ab\\n\"}\n";
            answer(&mut stream, body).await;
        });
        let (context, writer) = spawn_body_writer(|out: &mut dyn Write| {
            out.write_all(&[7u8; 300_000])?;
            Ok::<(), io::Error>(())
        });
        let options = BuildOptions {
            tags: vec!["x".into()],
            secrets: vec![BuildSecret { id: "s".into(), data: b"v".to_vec() }],
            ..BuildOptions::default()
        };
        let mut streamed = String::new();
        let id = daemon
            .client
            .image_build(context, &options, |m| {
                streamed.push_str(m.stream.as_deref().unwrap_or_default());
            })
            .await
            .expect("build");
        writer.await.expect("join").expect("writer");
        assert_eq!(id.as_deref(), Some("sha256:ab"));
        assert_eq!(streamed, "Step 1/1 : FROM scratch\nSuccessfully built ab\n");
        assert_eq!(seen_rx.await.expect("upload"), vec![7u8; 300_000]);
        let head = server.await.expect("server").to_ascii_lowercase();
        assert!(head.starts_with("post /v1.47/build?t=x&version=1 "), "{head}");
        assert!(head.contains("content-type: application/x-tar\r\n"), "{head}");
        let secrets = secrets_header(&options.secrets).to_ascii_lowercase();
        assert!(head.contains(&format!("{SECRETS_HEADER}: {secrets}\r\n")), "{head}");
    }

    #[tokio::test]
    async fn an_error_in_the_stream_is_the_daemons_message() {
        let mut daemon = crate::fake_daemon::FakeDaemon::new();
        let _server = daemon.serve(|mut stream| async move {
            let _ = read_chunked(&mut stream).await;
            let body = b"{\"stream\":\"Step 1/2 : RUN false\\n\"}\n\
                         {\"errorDetail\":{\"message\":\"Dockerfile:2: RUN false: exit code 1\"},\
                         \"error\":\"Dockerfile:2: RUN false: exit code 1\"}\n";
            answer(&mut stream, body).await;
        });
        let err = daemon
            .client
            .image_build(&b""[..], &BuildOptions::default(), |_| {})
            .await
            .expect_err("failed step");
        assert!(matches!(&err, ClientError::Stream { .. }), "{err:?}");
        assert_eq!(err.to_string(), "Dockerfile:2: RUN false: exit code 1");
    }

    #[tokio::test]
    async fn a_writer_that_fails_breaks_the_stream_instead_of_ending_it() {
        use tokio::io::AsyncReadExt as _;
        let (mut stream, writer) = spawn_body_writer(|out: &mut dyn Write| {
            out.write_all(b"partial")?;
            Err::<(), io::Error>(io::Error::other("cannot read ctx/secret.txt"))
        });
        let mut got = Vec::new();
        let err = stream.read_to_end(&mut got).await.expect_err("broken");
        assert_eq!(err.to_string(), "the build context could not be sent");
        let writer_err = writer.await.expect("join").expect_err("writer error");
        assert_eq!(writer_err.to_string(), "cannot read ctx/secret.txt");
    }

    #[tokio::test]
    async fn a_writer_whose_reader_is_gone_gets_a_broken_pipe() {
        let (stream, writer) = spawn_body_writer(|out: &mut dyn Write| {
            for _ in 0..1000 {
                out.write_all(&[0u8; 64 * 1024])?;
            }
            Ok::<(), io::Error>(())
        });
        drop(stream);
        let err = writer.await.expect("join").expect_err("reader gone");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
