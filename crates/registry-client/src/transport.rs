//! One HTTP/1.1 request over a fresh connection (TCP, or TLS over TCP for
//! `https`): GETs and HEADs following redirects, and the POST, PATCH and
//! PUT of a push with a body that streams from a blob.
//!
//! Every connection is new: a registry pull or push opens a few per blob at
//! most, and the TLS handshake costs far less than the blob. The TLS set-up
//! (the trust store) is read once; see [`crate::tls`].

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::error::RegistryError;
use crate::push::BlobSource;
use crate::tls::Trust;

const USER_AGENT: &str = concat!("kiln/", env!("CARGO_PKG_VERSION"));
/// Redirects followed before giving up (Go's http client stops at 10 too).
const MAX_REDIRECTS: usize = 10;
/// How long a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of a blob read at once for an upload.
const READ_CHUNK: u64 = 256 * 1024;
/// Chunks read ahead of the connection: a few, so the disk and the socket
/// overlap without holding more than about a MiB.
const READ_AHEAD: usize = 4;

/// Told how far into the blob an upload has read (its offset in bytes).
pub(crate) type SentSink = Arc<dyn Fn(u64) + Send + Sync>;

/// What a request sends. Cheap to clone, and each clone sends the same
/// bytes again: a request answered with an auth challenge is sent twice.
#[derive(Clone, Default)]
pub(crate) enum Payload {
    #[default]
    Empty,
    /// Small bodies already in memory (manifests).
    Bytes(Bytes),
    /// `len` bytes of a blob from `offset`, read from `source` on a
    /// blocking thread as the connection takes them; never whole in memory.
    Blob { source: Arc<dyn BlobSource>, offset: u64, len: u64, sent: Option<SentSink> },
}

impl Payload {
    fn len(&self) -> u64 {
        match self {
            Payload::Empty => 0,
            Payload::Bytes(bytes) => bytes.len() as u64,
            Payload::Blob { len, .. } => *len,
        }
    }

    fn into_body(self) -> BoxBody<Bytes, io::Error> {
        match self {
            Payload::Empty => Empty::<Bytes>::new().map_err(|never| match never {}).boxed(),
            Payload::Bytes(bytes) => Full::new(bytes).map_err(|never| match never {}).boxed(),
            Payload::Blob { source, offset, len, sent } => {
                BlobBody::start(source, offset, len, sent).boxed()
            }
        }
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payload::Empty => f.write_str("Empty"),
            Payload::Bytes(bytes) => write!(f, "Bytes({})", bytes.len()),
            Payload::Blob { offset, len, .. } => write!(f, "Blob({offset}+{len})"),
        }
    }
}

/// GET `url` with `headers` and return the answer once its head arrives
/// (its body streams from the connection), with the URL that answered.
/// Redirects are followed as [`send`] says.
pub(crate) async fn get(
    url: &str,
    headers: &HeaderMap,
    trust: &Trust,
) -> Result<(String, Response<Incoming>), RegistryError> {
    send(Method::GET, url, headers, &Payload::Empty, trust).await
}

/// Send `method` to `url` with `headers` and `payload`, and return the
/// answer once its head arrives (its body streams from the connection),
/// with the URL that answered.
///
/// Redirects of GET and HEAD are followed, between `http` and `https` both
/// ways as Go's client does; `Authorization` is dropped when one leads to
/// another host or from `https` to `http`, so that a token for the registry
/// never reaches a CDN or crosses the network in clear. Other methods get
/// the redirect itself back: an upload is not sent twice behind the
/// caller's back. `trust` checks HTTPS servers.
pub(crate) async fn send(
    method: Method,
    url: &str,
    headers: &HeaderMap,
    payload: &Payload,
    trust: &Trust,
) -> Result<(String, Response<Incoming>), RegistryError> {
    let follows = method == Method::GET || method == Method::HEAD;
    let mut url = url.to_owned();
    let mut headers = headers.clone();
    for _ in 0..=MAX_REDIRECTS {
        let uri: Uri = url.parse().map_err(|_| RegistryError::InvalidUrl { url: url.clone() })?;
        let response = send_once(&method, &url, &uri, &headers, payload.clone(), trust).await?;
        if !follows
            || !response.status().is_redirection()
            || response.status() == StatusCode::NOT_MODIFIED
        {
            return Ok((url, response));
        }
        let Some(location) =
            response.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok())
        else {
            return Ok((url, response));
        };
        let next = resolve(&uri, location)
            .ok_or_else(|| RegistryError::InvalidUrl { url: location.to_owned() })?;
        let next_uri: Uri =
            next.parse().map_err(|_| RegistryError::InvalidUrl { url: next.clone() })?;
        let downgrade = uri.scheme_str() == Some("https") && next_uri.scheme_str() != Some("https");
        if next_uri.authority() != uri.authority() || downgrade {
            headers.remove(http::header::AUTHORIZATION);
        }
        tracing::debug!(from = %url, to = %next, "registry redirect");
        url = next;
    }
    Err(RegistryError::TooManyRedirects { url })
}

/// `location` made absolute against `base`.
fn resolve(base: &Uri, location: &str) -> Option<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Some(location.to_owned());
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?;
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let dir = base.path().rsplit_once('/').map_or("", |(dir, _)| dir);
    Some(format!("{scheme}://{authority}{dir}/{location}"))
}

/// `location` made absolute against `url`, the URL it came from: an
/// upload session's `Location` may be a path or a full URL, and keeps its
/// query either way.
pub(crate) fn resolve_location(url: &str, location: &str) -> Result<String, RegistryError> {
    let base: Uri = url.parse().map_err(|_| RegistryError::InvalidUrl { url: url.to_owned() })?;
    resolve(&base, location).ok_or_else(|| RegistryError::InvalidUrl { url: location.to_owned() })
}

async fn send_once(
    method: &Method,
    url: &str,
    uri: &Uri,
    headers: &HeaderMap,
    payload: Payload,
    trust: &Trust,
) -> Result<Response<Incoming>, RegistryError> {
    let authority =
        uri.authority().ok_or_else(|| RegistryError::InvalidUrl { url: url.to_owned() })?;
    let is_tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(RegistryError::InvalidUrl { url: url.to_owned() }),
    };
    let address = match authority.port_u16() {
        Some(_) => authority.to_string(),
        None => format!("{}:{}", authority.host(), if is_tls { 443 } else { 80 }),
    };
    let connect_err = |source| RegistryError::Connect { authority: authority.to_string(), source };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&address))
        .await
        .map_err(|_| connect_err(std::io::ErrorKind::TimedOut.into()))?
        .map_err(connect_err)?;
    let _ = stream.set_nodelay(true);
    let request = build_request(method, url, uri, authority.as_str(), headers, payload)?;
    if is_tls {
        let handshake = trust.connect(authority.host(), authority.as_str(), stream);
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| connect_err(std::io::ErrorKind::TimedOut.into()))??;
        exchange(url, stream, request).await
    } else {
        exchange(url, stream, request).await
    }
}

/// The request for `uri`, in origin form with `Host`; a request that may
/// carry a body says its length (`Content-Length: 0` for none, which some
/// registries insist on for an empty POST or PUT).
fn build_request(
    method: &Method,
    url: &str,
    uri: &Uri,
    authority: &str,
    headers: &HeaderMap,
    payload: Payload,
) -> Result<Request<BoxBody<Bytes, io::Error>>, RegistryError> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(http::header::HOST, authority)
        .header(http::header::USER_AGENT, USER_AGENT);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let has_body = !matches!(payload, Payload::Empty);
    if (has_body || !(method == Method::GET || method == Method::HEAD))
        && !headers.contains_key(http::header::CONTENT_LENGTH)
    {
        request = request.header(http::header::CONTENT_LENGTH, HeaderValue::from(payload.len()));
    }
    request.body(payload.into_body()).map_err(|_| RegistryError::InvalidUrl { url: url.to_owned() })
}

/// Send `request` over `stream` (plain or TLS) and return the answer's head.
async fn exchange<S>(
    url: &str,
    stream: S,
    request: Request<BoxBody<Bytes, io::Error>>,
) -> Result<Response<Incoming>, RegistryError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let http_err = |source| RegistryError::Http { url: url.to_owned(), source };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(http_err)?;
    // The connection ends by itself once the answer is read and the sender dropped.
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "registry connection ended with an error");
        }
    });
    sender.send_request(request).await.map_err(http_err)
}

/// A request body fed from a blob by a blocking thread, a few chunks ahead
/// of the connection. Dropping it (the request failed) stops the thread.
struct BlobBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    remaining: u64,
}

impl BlobBody {
    fn start(
        source: Arc<dyn BlobSource>,
        offset: u64,
        len: u64,
        sent: Option<SentSink>,
    ) -> BlobBody {
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        tokio::task::spawn_blocking(move || {
            let result = (|| {
                let mut reader = source.open(offset)?;
                let mut position = offset;
                let end = offset + len;
                while position < end {
                    let want = (end - position).min(READ_CHUNK) as usize;
                    let mut chunk = vec![0u8; want];
                    read_full(&mut reader, &mut chunk)?;
                    position += want as u64;
                    if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                        return Ok(());
                    }
                    if let Some(sent) = &sent {
                        sent(position);
                    }
                }
                Ok(())
            })();
            if let Err(err) = result {
                let _ = tx.blocking_send(Err(err));
            }
        });
        BlobBody { rx, remaining: len }
    }
}

/// Fill `buf` from `reader`; a blob shorter than it said is an error.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the blob is shorter than its size",
                ))
            }
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

impl Body for BlobBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err))),
            Poll::Ready(None) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the blob reader stopped early",
            )))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Read a whole (small) body, at most `limit` bytes; `None` when larger.
pub(crate) async fn read_limited(
    url: &str,
    body: Incoming,
    limit: u64,
) -> Result<Option<Bytes>, RegistryError> {
    let mut body = body;
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| RegistryError::Http { url: url.to_owned(), source })?;
        if let Ok(data) = frame.into_data() {
            if (out.len() + data.len()) as u64 > limit {
                return Ok(None);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Some(out.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations_resolve_against_the_request() {
        let base: Uri = "http://127.0.0.1:5000/v2/a/blobs/sha256:ab".parse().unwrap();
        assert_eq!(resolve(&base, "/x/y").as_deref(), Some("http://127.0.0.1:5000/x/y"));
        assert_eq!(resolve(&base, "http://cdn:1/z").as_deref(), Some("http://cdn:1/z"));
        assert_eq!(resolve(&base, "//cdn:2/z").as_deref(), Some("http://cdn:2/z"));
        assert_eq!(resolve(&base, "z").as_deref(), Some("http://127.0.0.1:5000/v2/a/blobs/z"));
        let tls: Uri = "https://registry.example/v2/a/blobs/sha256:ab".parse().unwrap();
        assert_eq!(resolve(&tls, "//cdn:2/z").as_deref(), Some("https://cdn:2/z"));
        assert_eq!(resolve(&tls, "http://cdn/z").as_deref(), Some("http://cdn/z"));
    }
}
