//! A plain GET of any `http` or `https` URL: what the builder's
//! `ADD <url>` downloads.
//!
//! [`fetch`] answers once the head has arrived (after redirects) and leaves
//! the body streaming from the socket; [`download`] streams it into a file,
//! hashing on the way. Neither ever holds a body whole in memory. Non-2xx
//! answers are errors in Docker's words (`failed to GET URL with status
//! 404 Not Found`). No retries: a builder step is run again by its user.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, LAST_MODIFIED};
use http::{HeaderMap, Uri};
use http_body_util::BodyExt as _;
use hyper::body::{Body as _, Incoming};
use kiln_types::{Algorithm, Digest};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncWriteExt as _, ReadBuf};

use crate::error::RegistryError;
use crate::tls::Trust;
use crate::transport;

/// Buffered before each write to the file (fewer, larger writes).
const WRITE_BUFFER: usize = 256 * 1024;

/// A successful (2xx) answer whose body has not been read yet.
#[derive(Debug)]
pub struct Fetched {
    /// The URL that answered, after redirects.
    pub url: String,
    pub status: u16,
    /// `Content-Length`, when the server sent one.
    pub content_length: Option<u64>,
    /// `Last-Modified`, as sent (`ADD` uses it for the file's mtime).
    pub last_modified: Option<String>,
    /// The name a downloaded file gets, as Docker's builder picks it: the
    /// last segment of the requested URL's path, else `Content-Disposition`'s
    /// `filename`; `None` when neither gives one.
    pub file_name: Option<String>,
    body: Incoming,
}

/// What [`download`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// The URL that answered, after redirects.
    pub url: String,
    /// Bytes written to the file.
    pub bytes: u64,
    /// The sha256 of those bytes (`ADD --checksum` compares it).
    pub digest: Digest,
    pub last_modified: Option<String>,
    /// See [`Fetched::file_name`].
    pub file_name: Option<String>,
}

impl Fetched {
    /// The body as a byte stream, read from the socket as it is consumed.
    pub fn into_reader(self) -> impl AsyncRead + Send + Unpin + 'static {
        BodyReader { body: self.body, pending: Bytes::new() }
    }
}

/// GET `url` (`http` or `https`), following redirects, checking HTTPS
/// servers against the system's trust store.
pub async fn fetch(url: &str) -> Result<Fetched, RegistryError> {
    fetch_with(url, &Trust::system()).await
}

/// [`fetch`], checking HTTPS servers against `trust`.
pub async fn fetch_with(url: &str, trust: &Trust) -> Result<Fetched, RegistryError> {
    let uri: Uri = url.parse().map_err(|_| RegistryError::InvalidUrl { url: url.to_owned() })?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err(RegistryError::InvalidUrl { url: url.to_owned() });
    }
    let (final_url, response) = transport::get(url, &HeaderMap::new(), trust).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(RegistryError::FetchStatus { url: url.to_owned(), status });
    }
    let headers = response.headers();
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let content_length = header(CONTENT_LENGTH).and_then(|v| v.trim().parse().ok());
    let last_modified = header(LAST_MODIFIED).map(str::to_owned);
    let file_name = file_name_of_path(uri.path())
        .or_else(|| header(CONTENT_DISPOSITION).and_then(file_name_of_disposition));
    Ok(Fetched {
        url: final_url,
        status: status.as_u16(),
        content_length,
        last_modified,
        file_name,
        body: response.into_body(),
    })
}

/// Download `url` into the file `dest` (created or truncated), streaming,
/// and return its size and sha256. A failed download removes the file.
pub async fn download(url: &str, dest: &Path) -> Result<Downloaded, RegistryError> {
    download_with(url, dest, &Trust::system()).await
}

/// [`download`], checking HTTPS servers against `trust`.
pub async fn download_with(
    url: &str,
    dest: &Path,
    trust: &Trust,
) -> Result<Downloaded, RegistryError> {
    let fetched = fetch_with(url, trust).await?;
    let write_err = |source| RegistryError::Write { path: dest.to_owned(), source };
    let file = tokio::fs::File::create(dest).await.map_err(write_err)?;
    let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut body = fetched.body;
    let mut hasher = Sha256::new();
    let mut bytes: u64 = 0;
    let copied: Result<(), RegistryError> = async {
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|source| RegistryError::Http { url: fetched.url.clone(), source })?;
            let Ok(data) = frame.into_data() else { continue };
            hasher.update(&data);
            bytes += data.len() as u64;
            out.write_all(&data).await.map_err(write_err)?;
        }
        out.flush().await.map_err(write_err)
    }
    .await;
    if let Err(err) = copied {
        drop(out);
        let _ = tokio::fs::remove_file(dest).await;
        return Err(err);
    }
    let hex = hex(&hasher.finalize());
    let digest =
        Digest::new(Algorithm::Sha256, &hex).expect("a sha256 hash is 64 lower-case hex digits");
    Ok(Downloaded {
        url: fetched.url,
        bytes,
        digest,
        last_modified: fetched.last_modified,
        file_name: fetched.file_name,
    })
}

/// An [`AsyncRead`] over a response body, one frame at a time.
struct BodyReader {
    body: Incoming,
    /// What is left of the last data frame.
    pending: Bytes,
}

impl AsyncRead for BodyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while buf.remaining() > 0 {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                let chunk = self.pending.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => break,
                Some(Err(err)) => return Poll::Ready(Err(io::Error::other(err))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.pending = data;
                    }
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// The last segment of a URL path, decoded, when it names a file.
fn file_name_of_path(path: &str) -> Option<String> {
    if path.ends_with('/') {
        return None;
    }
    let segment = path.rsplit('/').next().unwrap_or(path);
    plain_file_name(&percent_decode(segment)?)
}

/// `filename*` (RFC 5987, UTF-8) or `filename` of a `Content-Disposition`
/// value such as `attachment; filename="app.tar.gz"`.
fn file_name_of_disposition(value: &str) -> Option<String> {
    let params = disposition_params(value);
    let param = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let extended = param("filename*").and_then(|v| {
        let mut parts = v.splitn(3, '\'');
        let charset = parts.next()?.to_ascii_lowercase();
        let _language = parts.next()?;
        let encoded = parts.next()?;
        matches!(charset.as_str(), "utf-8" | "us-ascii").then(|| percent_decode(encoded))?
    });
    extended.or_else(|| param("filename").map(str::to_owned)).as_deref().and_then(plain_file_name)
}

/// The `key=value` parameters after a disposition type, keys lower-cased,
/// quoted values unquoted.
fn disposition_params(value: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = value.split_once(';').map_or("", |(_, rest)| rest);
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_whitespace());
        let Some(eq) = rest.find('=') else { break };
        if let Some(semi) = rest[..eq].find(';') {
            // A bare token without a value.
            rest = &rest[semi..];
            continue;
        }
        let key = rest[..eq].trim().to_ascii_lowercase();
        let (value, remainder) = crate::challenge::param_value(&rest[eq + 1..], ';');
        params.push((key, value));
        rest = remainder;
    }
    params
}

/// `name` without any directory part; `None` for empty, `.` and `..`.
fn plain_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    (!matches!(base, "" | "." | "..")).then(|| base.to_owned())
}

/// `%XX` escapes decoded; `None` when the result is not UTF-8. A `%` not
/// followed by two hex digits stays as it is.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_the_url_path_then_content_disposition() {
        assert_eq!(
            file_name_of_path("/releases/app-1.0.tar.gz").as_deref(),
            Some("app-1.0.tar.gz")
        );
        assert_eq!(file_name_of_path("/files/my%20notes.txt").as_deref(), Some("my notes.txt"));
        assert_eq!(file_name_of_path("/download/"), None);
        assert_eq!(file_name_of_path("/"), None);
        assert_eq!(file_name_of_path("/a/%2e%2e"), None);

        let name = |v| file_name_of_disposition(v);
        assert_eq!(name(r#"attachment; filename="app.tar.gz""#).as_deref(), Some("app.tar.gz"));
        assert_eq!(name("attachment; filename=plain.txt; size=3").as_deref(), Some("plain.txt"));
        assert_eq!(
            name(r#"attachment; filename="fallback.txt"; filename*=UTF-8''na%C3%AFve.txt"#)
                .as_deref(),
            Some("naïve.txt")
        );
        assert_eq!(name(r#"attachment; x; filename="a;b.txt""#).as_deref(), Some("a;b.txt"));
        // Directory parts a server sends are never followed.
        assert_eq!(name(r#"attachment; filename="../../etc/passwd""#).as_deref(), Some("passwd"));
        assert_eq!(name("inline"), None);
        assert_eq!(name(r#"attachment; filename="..""#), None);
    }

    #[test]
    fn percent_decoding_keeps_stray_percents() {
        assert_eq!(percent_decode("100%25").as_deref(), Some("100%"));
        assert_eq!(percent_decode("a%zzb%4").as_deref(), Some("a%zzb%4"));
        assert_eq!(percent_decode("%ff"), None);
    }
}
