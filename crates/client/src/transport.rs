//! One HTTP/1.1 exchange over a fresh connection.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::ClientError;
use crate::host::Host;

const USER_AGENT: &str = concat!("kiln/", env!("CARGO_PKG_VERSION"));

/// Send a bodiless request and read the whole answer.
pub(crate) async fn send(
    host: &Host,
    method: Method,
    path: &str,
) -> Result<(StatusCode, HeaderMap, Bytes), ClientError> {
    let connect_err = |source| ClientError::Connect { host: host.clone(), source };
    match host {
        Host::Unix(path_on_disk) => {
            let stream =
                tokio::net::UnixStream::connect(path_on_disk).await.map_err(connect_err)?;
            exchange(stream, host, "api.kiln.localhost", method, path).await
        }
        Host::Tcp(addr) => {
            let stream =
                tokio::net::TcpStream::connect(addr.as_str()).await.map_err(connect_err)?;
            let _ = stream.set_nodelay(true);
            exchange(stream, host, addr, method, path).await
        }
    }
}

async fn exchange<S>(
    stream: S,
    host: &Host,
    authority: &str,
    method: Method,
    path: &str,
) -> Result<(StatusCode, HeaderMap, Bytes), ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http_err = |source| ClientError::Http { host: host.clone(), source };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(http_err)?;
    let driver = tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "connection ended with an error");
        }
    });
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, authority)
        .header(http::header::USER_AGENT, USER_AGENT)
        .body(Empty::<Bytes>::new())
        .map_err(|source| ClientError::Request { path: path.to_owned(), source })?;
    let response = sender.send_request(request).await.map_err(http_err)?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(http_err)?.to_bytes();
    drop(sender);
    driver.abort();
    Ok((parts.status, parts.headers, body))
}
