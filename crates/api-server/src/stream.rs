//! Bodies that stream between async HTTP and the engine's blocking work:
//! a request body read as [`std::io::Read`] on a blocking thread, and a
//! response body fed by a [`std::io::Write`] there. Neither holds more than
//! a few chunks in memory.

use std::io::{self, BufWriter, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf as _, Bytes};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::{Body as HttpBody, Frame};
use kiln_types::HasKind;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::reply::Body;

/// Chunks in flight between the two sides.
const DEPTH: usize = 8;
/// Bytes gathered before a chunk is sent to the client.
const CHUNK: usize = 256 * 1024;

type Chunk = io::Result<Bytes>;

/// A request body, read on a blocking thread. A task copies its frames into
/// a small channel; [`Read::read`] waits on that channel.
#[derive(Debug)]
pub struct BodyReader {
    rx: mpsc::Receiver<Chunk>,
    current: Bytes,
}

/// Start copying `body` for a [`BodyReader`]. Must be called in a tokio runtime.
pub fn body_reader<B>(body: B) -> BodyReader
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let (tx, rx) = mpsc::channel(DEPTH);
    tokio::spawn(async move {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let chunk = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => Ok(data),
                    Err(_trailers) => continue,
                },
                Err(err) => Err(io::Error::other(err)),
            };
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    BodyReader { rx, current: Bytes::new() }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.current = chunk?,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// The sending side of a streamed response body.
#[derive(Debug)]
struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A response body fed from a channel, starting with a chunk already received.
#[derive(Debug)]
pub(crate) struct ChannelBody {
    pub(crate) first: Option<Bytes>,
    pub(crate) rx: mpsc::Receiver<Chunk>,
}

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        self.rx.poll_recv(cx).map(|chunk| chunk.map(|c| c.map(Frame::data)))
    }
}

/// Run `write` on a blocking thread and stream what it writes as the body of
/// a 200 answer. The answer starts only once the first bytes are written: an
/// error before that is an ordinary error answer (404 for an unknown image);
/// one after that cuts the body short, which the client sees as a broken
/// transfer.
pub async fn stream_blocking<F, E>(
    content_type: &'static str,
    write: F,
) -> Result<Response<Body>, ApiError>
where
    F: FnOnce(&mut dyn Write) -> Result<(), E> + Send + 'static,
    E: HasKind + std::error::Error + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(DEPTH);
    let task = tokio::task::spawn_blocking(move || {
        let mut sink = ChannelWriter { tx: tx.clone() };
        let result = {
            let mut buffered = BufWriter::with_capacity(CHUNK, &mut sink);
            let result = write(&mut buffered);
            if result.is_ok() {
                // A failed flush means the client went away; nothing to tell it.
                let _ = buffered.flush();
            }
            result
        };
        if let Err(err) = &result {
            tracing::error!(error = %err, "streamed answer failed");
            let _ = tx.blocking_send(Err(io::Error::other(err.to_string())));
        }
        result
    });
    match rx.recv().await {
        Some(Ok(first)) => {
            let body = ChannelBody { first: Some(first), rx }.boxed();
            let mut response = Response::new(body);
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            Ok(response)
        }
        Some(Err(_)) | None => match task.await {
            Ok(Err(err)) => Err(ApiError::from_error(&err)),
            Ok(Ok(())) => Ok(crate::reply::with_type(StatusCode::OK, content_type, Bytes::new())),
            Err(join) => Err(ApiError::internal(format!("the request's task failed: {join}"))),
        },
    }
}

/// Run `work` on a blocking thread; its error becomes an error answer.
pub async fn blocking<T, E, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: HasKind + std::error::Error + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|err| ApiError::from_error(&err)),
        Err(join) => Err(ApiError::internal(format!("the request's task failed: {join}"))),
    }
}

/// The answer of a blocking task that streams JSON messages into `rx`: a
/// 200 stream starting with the first message, or, when the task ended
/// without sending any, its error as an ordinary error answer (`what`
/// names the task in the unlikely other cases).
pub async fn json_stream_or_error<E>(
    mut rx: mpsc::Receiver<io::Result<Bytes>>,
    task: tokio::task::JoinHandle<Result<(), E>>,
    what: &str,
) -> Result<Response<crate::reply::Body>, crate::error::ApiError>
where
    E: std::error::Error + HasKind,
{
    use crate::error::ApiError;
    match rx.recv().await {
        Some(first) => {
            let first = first.unwrap_or_default();
            let mut response = Response::new(ChannelBody { first: Some(first), rx }.boxed());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(response)
        }
        None => match task.await {
            Ok(Err(err)) => Err(ApiError::from_error(&err)),
            Ok(Ok(())) => Err(ApiError::internal(format!("the {what} ended without an answer"))),
            Err(join) => Err(ApiError::internal(format!("the {what}'s task failed: {join}"))),
        },
    }
}
