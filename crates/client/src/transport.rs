//! One HTTP/1.1 exchange over a fresh connection, which may then be
//! hijacked (upgraded to a raw byte stream) for attach and exec.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::{Body as HttpBody, Frame, Incoming};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ClientError;
use crate::host::Host;

const USER_AGENT: &str = concat!("kiln/", env!("CARGO_PKG_VERSION"));

/// Bytes read at a time from a request body's source.
const CHUNK: usize = 256 * 1024;

/// The body of a request.
pub(crate) type RequestBody = UnsyncBoxBody<Bytes, io::Error>;

/// No body.
pub(crate) fn empty() -> RequestBody {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body streamed from `reader` as it is read (chunked transfer).
pub(crate) fn from_reader(reader: impl AsyncRead + Send + Unpin + 'static) -> RequestBody {
    ReaderBody { reader, buf: vec![0; CHUNK].into_boxed_slice(), done: false }.boxed_unsync()
}

struct ReaderBody<R> {
    reader: R,
    buf: Box<[u8]>,
    done: bool,
}

impl<R: AsyncRead + Unpin> HttpBody for ReaderBody<R> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut buf = ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.reader).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(err)) => {
                this.done = true;
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Ok(())) => {
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(buf.filled())))))
            }
        }
    }
}

/// Send a bodiless request and read the whole answer.
pub(crate) async fn send(
    host: &Host,
    method: Method,
    path: &str,
) -> Result<(StatusCode, HeaderMap, Bytes), ClientError> {
    let response = send_streaming(host, method, path, empty()).await?;
    let (parts, body) = response.into_parts();
    let http_err = |source| ClientError::Http { host: host.clone(), source };
    let body = body.collect().await.map_err(http_err)?.to_bytes();
    Ok((parts.status, parts.headers, body))
}

/// Send a request with `body` and return the answer as soon as its head
/// arrives; its body streams from the connection.
pub(crate) async fn send_streaming(
    host: &Host,
    method: Method,
    path: &str,
    body: RequestBody,
) -> Result<Response<Incoming>, ClientError> {
    send_with(host, method, path, &[], body).await
}

/// [`send_streaming`] with extra request headers (`Content-Type`, and
/// `Connection: Upgrade` for a hijack). The connection may be upgraded:
/// see [`upgrade`].
pub(crate) async fn send_with(
    host: &Host,
    method: Method,
    path: &str,
    headers: &[(HeaderName, HeaderValue)],
    body: RequestBody,
) -> Result<Response<Incoming>, ClientError> {
    let connect_err = |source| ClientError::Connect { host: host.clone(), source };
    let request = Outgoing { method, path, headers, body };
    match host {
        Host::Unix(path_on_disk) => {
            let stream =
                tokio::net::UnixStream::connect(path_on_disk).await.map_err(connect_err)?;
            exchange(stream, host, "api.kiln.localhost", request).await
        }
        Host::Tcp(addr) => {
            let stream =
                tokio::net::TcpStream::connect(addr.as_str()).await.map_err(connect_err)?;
            let _ = stream.set_nodelay(true);
            exchange(stream, host, addr, request).await
        }
    }
}

/// The headers that ask dockerd to hijack the connection.
pub(crate) fn upgrade_headers() -> [(HeaderName, HeaderValue); 2] {
    [
        (http::header::CONNECTION, HeaderValue::from_static("Upgrade")),
        (http::header::UPGRADE, HeaderValue::from_static("tcp")),
    ]
}

/// `Content-Type: application/json`, which dockerd requires of JSON bodies.
pub(crate) fn json_headers() -> [(HeaderName, HeaderValue); 1] {
    [(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"))]
}

/// `value` as a JSON request body.
pub(crate) fn json_body(
    path: &str,
    value: &impl serde::Serialize,
) -> Result<RequestBody, ClientError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|source| ClientError::Encode { path: path.to_owned(), source })?;
    Ok(Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed_unsync())
}

/// The raw connection behind a `101 Switching Protocols` answer, once hyper
/// hands it over.
pub(crate) async fn upgrade(
    host: &Host,
    response: Response<Incoming>,
) -> Result<TokioIo<Upgraded>, ClientError> {
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|source| ClientError::Upgrade { host: host.clone(), source })?;
    Ok(TokioIo::new(upgraded))
}

/// What [`exchange`] sends.
struct Outgoing<'a> {
    method: Method,
    path: &'a str,
    headers: &'a [(HeaderName, HeaderValue)],
    body: RequestBody,
}

async fn exchange<S>(
    stream: S,
    host: &Host,
    authority: &str,
    outgoing: Outgoing<'_>,
) -> Result<Response<Incoming>, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http_err = |source| ClientError::Http { host: host.clone(), source };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(http_err)?;
    // The connection ends by itself once the answer is read and the sender
    // dropped, or hands itself over after a `101` (attach, exec start).
    tokio::spawn(async move {
        if let Err(err) = connection.with_upgrades().await {
            tracing::debug!(error = %err, "connection ended with an error");
        }
    });
    let mut request = Request::builder()
        .method(outgoing.method)
        .uri(outgoing.path)
        .header(http::header::HOST, authority)
        .header(http::header::USER_AGENT, USER_AGENT);
    for (name, value) in outgoing.headers {
        request = request.header(name, value);
    }
    let request = request
        .body(outgoing.body)
        .map_err(|source| ClientError::Request { path: outgoing.path.to_owned(), source })?;
    sender.send_request(request).await.map_err(http_err)
}
