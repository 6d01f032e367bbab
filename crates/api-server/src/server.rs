//! Listeners and connections, with a graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::sync::{mpsc, watch};

use crate::build::Transport;
use crate::listen::{ListenAddr, ListenError, Listener};
use crate::route::Api;

/// How long a closed connection keeps reading what the client still sends.
const LINGER: Duration = Duration::from_secs(2);

/// How long a shutdown waits for requests in flight before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The API served on a set of listeners.
#[derive(Debug)]
pub struct Server {
    api: Api,
    listeners: Vec<Listener>,
}

impl Server {
    /// Bind every address; nothing is served until [`Server::serve`].
    /// Must be called inside a tokio runtime.
    pub fn bind(api: Api, addrs: &[ListenAddr]) -> Result<Server, ListenError> {
        let mut listeners = Vec::with_capacity(addrs.len());
        for addr in addrs {
            match Listener::bind(addr) {
                Ok(listener) => listeners.push(listener),
                Err(err) => {
                    remove_socket_files(&listeners);
                    return Err(err);
                }
            }
        }
        Ok(Server { api, listeners })
    }

    /// The addresses bound, with real TCP ports.
    pub fn addrs(&self) -> Vec<ListenAddr> {
        self.listeners.iter().map(Listener::addr).collect()
    }

    /// Serve until `shutdown` completes; then stop accepting, let requests in
    /// flight finish (up to 10 s), close idle connections and remove the
    /// socket files.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        // Each connection holds a sender; when all are dropped, all are done.
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let mut acceptors = tokio::task::JoinSet::new();
        let mut socket_paths = Vec::new();
        for listener in self.listeners {
            tracing::info!(addr = %listener.addr(), "API listening");
            if let Listener::Unix { path, .. } = &listener {
                socket_paths.push(path.clone());
            }
            acceptors.spawn(accept_loop(
                listener,
                self.api.clone(),
                stop_rx.clone(),
                done_tx.clone(),
            ));
        }
        drop(done_tx);
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        acceptors.abort_all();
        while acceptors.join_next().await.is_some() {}
        for path in &socket_paths {
            if let Err(err) = std::fs::remove_file(path) {
                tracing::warn!(path = %path.display(), error = %err, "cannot remove socket");
            }
        }
        let _ = stop_tx.send(true);
        if tokio::time::timeout(DRAIN_TIMEOUT, done_rx.recv()).await.is_err() {
            tracing::warn!(
                timeout_s = DRAIN_TIMEOUT.as_secs(),
                "requests still in flight after the timeout; closing them"
            );
        }
        tracing::info!("API stopped");
    }
}

fn remove_socket_files(listeners: &[Listener]) {
    for listener in listeners {
        if let Listener::Unix { path, .. } = listener {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn accept_loop(
    listener: Listener,
    api: Api,
    stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    loop {
        let accepted = match &listener {
            Listener::Unix { listener, .. } => listener.accept().await.map(|(s, _)| {
                let conn =
                    serve_connection(s, Transport::Unix, api.clone(), stop.clone(), done.clone());
                tokio::spawn(conn);
            }),
            Listener::Tcp { listener, .. } => listener.accept().await.map(|(s, _)| {
                let _ = s.set_nodelay(true);
                let conn =
                    serve_connection(s, Transport::Tcp, api.clone(), stop.clone(), done.clone());
                tokio::spawn(conn);
            }),
        };
        if let Err(err) = accepted {
            // Out of file descriptors and the like: wait, do not spin.
            tracing::warn!(addr = %listener.addr(), error = %err, "cannot accept a connection");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn serve_connection<S>(
    stream: S,
    transport: Transport,
    api: Api,
    mut stop: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        let api = api.clone();
        // Which socket a request came on (secrets only travel on unix ones).
        request.extensions_mut().insert(transport);
        async move { Ok::<_, Infallible>(api.handle(request).await) }
    });
    let connection = http1::Builder::new()
        .serve_connection(TokioIo::new(Lingering::new(stream)), service)
        .with_upgrades();
    tokio::pin!(connection);
    let stopping = async move {
        // Only the outcome matters; the guard must not live across an await.
        let _ = stop.wait_for(|stopped| *stopped).await.map(|_| ());
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopping => {
            connection.as_mut().graceful_shutdown();
            connection.as_mut().await
        }
    };
    if let Err(err) = result {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

/// A connection that closes gracefully: when the server is done with it,
/// it shuts its sending side and reads (and drops) what the client still
/// sends, for a short while, before it closes. Closing a socket with
/// unread bytes (a request body a route did not need, the rest of an
/// upload an error cut short) makes the kernel send a reset, which can
/// destroy the answer before the client has read it.
struct Lingering<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> {
    inner: Option<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Lingering<S> {
    fn new(inner: S) -> Self {
        Lingering { inner: Some(inner) }
    }

    fn stream(&mut self) -> io::Result<&mut S> {
        self.inner.as_mut().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncRead for Lingering<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncWrite for Lingering<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Drop for Lingering<S> {
    fn drop(&mut self) {
        let (Some(mut stream), Ok(runtime)) =
            (self.inner.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(async move {
            let _ = stream.shutdown().await;
            let drain = async {
                let mut buf = [0u8; 8192];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            };
            let _ = tokio::time::timeout(LINGER, drain).await;
        });
    }
}
