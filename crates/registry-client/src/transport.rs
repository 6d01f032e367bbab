//! One HTTP/1.1 GET over a fresh connection (TCP, or TLS over TCP for
//! `https`), following redirects.
//!
//! Every connection is new: a registry pull opens a few per blob at most,
//! and the TLS handshake costs far less than the blob. The TLS set-up (the
//! trust store) is read once; see [`crate::tls`].

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::RegistryError;
use crate::tls::Trust;

const USER_AGENT: &str = concat!("kiln/", env!("CARGO_PKG_VERSION"));
/// Redirects followed before giving up (Go's http client stops at 10 too).
const MAX_REDIRECTS: usize = 10;
/// How long a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// GET `url` with `headers` and return the answer once its head arrives
/// (its body streams from the connection), with the URL that answered.
///
/// Redirects are followed, between `http` and `https` both ways as Go's
/// client does; `Authorization` is dropped when one leads to another host
/// or from `https` to `http`, so that a token for the registry never
/// reaches a CDN or crosses the network in clear. `trust` checks HTTPS
/// servers.
pub(crate) async fn get(
    url: &str,
    headers: &HeaderMap,
    trust: &Trust,
) -> Result<(String, Response<Incoming>), RegistryError> {
    let mut url = url.to_owned();
    let mut headers = headers.clone();
    for _ in 0..=MAX_REDIRECTS {
        let uri: Uri = url.parse().map_err(|_| RegistryError::InvalidUrl { url: url.clone() })?;
        let response = send(&url, &uri, &headers, trust).await?;
        if !response.status().is_redirection() || response.status() == StatusCode::NOT_MODIFIED {
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

async fn send(
    url: &str,
    uri: &Uri,
    headers: &HeaderMap,
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
    let request = request(url, uri, authority.as_str(), headers)?;
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

/// The GET request for `uri`, in origin form with `Host`.
fn request(
    url: &str,
    uri: &Uri,
    authority: &str,
    headers: &HeaderMap,
) -> Result<Request<Empty<Bytes>>, RegistryError> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(http::header::HOST, authority)
        .header(http::header::USER_AGENT, USER_AGENT);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request
        .body(Empty::<Bytes>::new())
        .map_err(|_| RegistryError::InvalidUrl { url: url.to_owned() })
}

/// Send `request` over `stream` (plain or TLS) and return the answer's head.
async fn exchange<S>(
    url: &str,
    stream: S,
    request: Request<Empty<Bytes>>,
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
