//! One HTTP/1.1 GET over a fresh TCP connection, following redirects.
//!
//! Plain HTTP only in this step; an `https` URL (a registry, a token realm,
//! a redirect to a CDN) gives [`RegistryError::TlsUnsupported`].

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::error::RegistryError;

const USER_AGENT: &str = concat!("kiln/", env!("CARGO_PKG_VERSION"));
/// Redirects followed before giving up (Go's http client stops at 10 too).
const MAX_REDIRECTS: usize = 10;
/// How long a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// GET `url` with `headers` and return the answer once its head arrives
/// (its body streams from the connection), with the URL that answered.
///
/// Redirects are followed; `Authorization` is dropped when one leads to
/// another host, so that a token for the registry never reaches a CDN.
pub(crate) async fn get(
    url: &str,
    headers: &HeaderMap,
) -> Result<(String, Response<Incoming>), RegistryError> {
    let mut url = url.to_owned();
    let mut headers = headers.clone();
    for _ in 0..=MAX_REDIRECTS {
        let uri: Uri = url.parse().map_err(|_| RegistryError::InvalidUrl { url: url.clone() })?;
        let response = send(&url, &uri, &headers).await?;
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
        if next_uri.authority() != uri.authority() {
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
) -> Result<Response<Incoming>, RegistryError> {
    let authority =
        uri.authority().ok_or_else(|| RegistryError::InvalidUrl { url: url.to_owned() })?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(RegistryError::TlsUnsupported { registry: authority.to_string() })
        }
        _ => return Err(RegistryError::InvalidUrl { url: url.to_owned() }),
    }
    let address = match authority.port_u16() {
        Some(_) => authority.to_string(),
        None => format!("{}:80", authority.host()),
    };
    let connect_err = |source| RegistryError::Connect { authority: authority.to_string(), source };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&address))
        .await
        .map_err(|_| connect_err(std::io::ErrorKind::TimedOut.into()))?
        .map_err(connect_err)?;
    let _ = stream.set_nodelay(true);
    let http_err = |source| RegistryError::Http { url: url.to_owned(), source };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(http_err)?;
    // The connection ends by itself once the answer is read and the sender dropped.
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "registry connection ended with an error");
        }
    });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(http::header::HOST, authority.as_str())
        .header(http::header::USER_AGENT, USER_AGENT);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|_| RegistryError::InvalidUrl { url: url.to_owned() })?;
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
    }
}
