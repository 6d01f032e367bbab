//! `/containers/{id}/archive`: a path of a container's filesystem as a tar,
//! and a tar extracted into one (what `docker cp` is made of). The archive
//! streams both ways; the tar itself is the caller's to make and read.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde::Deserialize;
use tokio::io::AsyncRead;

use crate::error::ClientError;
use crate::query::{escape_segment, with_query};
use crate::{transport, Client};

/// The header in which the daemon describes the archived path.
const STAT_HEADER: &str = "x-docker-container-path-stat";

/// What the daemon says of a path in a container (its stat header).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode`: permission bits and type bits.
    pub mode: u32,
    /// RFC 3339.
    pub mtime: String,
    #[serde(rename = "linkTarget", default)]
    pub link_target: String,
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        self.mode & (1 << 31) != 0
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & (1 << 27) != 0
    }
}

/// An archive being downloaded: the path's stat, and the tar as it comes.
#[derive(Debug)]
pub struct ArchiveDownload {
    pub stat: PathStat,
    body: Incoming,
    client: Client,
}

impl ArchiveDownload {
    /// The next bytes of the tar; `None` at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        while let Some(frame) = self.body.frame().await {
            let frame = frame
                .map_err(|source| ClientError::Http { host: self.client.host.clone(), source })?;
            if let Ok(data) = frame.into_data() {
                if !data.is_empty() {
                    return Ok(Some(data));
                }
            }
        }
        Ok(None)
    }
}

/// How `PUT /containers/{id}/archive` extracts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Keep the archive's owners (`cp -a`) instead of the container's root.
    pub copy_uid_gid: bool,
}

impl Client {
    /// `HEAD /containers/{id}/archive?path=`: the stat of a path.
    pub async fn container_stat_path(&self, id: &str, path: &str) -> Result<PathStat, ClientError> {
        let request = archive_path(id, path);
        let response = transport::send_streaming(
            &self.host,
            Method::HEAD,
            &self.versioned(&request),
            transport::empty(),
        )
        .await?;
        let status = response.status();
        if !status.is_success() {
            // docker-compat: an answer to HEAD has no body, so no message;
            // say what dockerd says of a missing path.
            let message = if status == StatusCode::NOT_FOUND {
                format!("Could not find the file {path} in container {id}")
            } else {
                status.canonical_reason().unwrap_or("request failed").to_owned()
            };
            return Err(ClientError::Api { status, message });
        }
        decode_stat(&self.versioned(&request), response.headers())
    }

    /// `GET /containers/{id}/archive?path=`: a tar of the path (its last
    /// component, and what is under it), streaming.
    pub async fn container_archive(
        &self,
        id: &str,
        path: &str,
    ) -> Result<ArchiveDownload, ClientError> {
        let request = archive_path(id, path);
        let response = self.open(Method::GET, &request, &[], transport::empty()).await?;
        let stat = decode_stat(&self.versioned(&request), response.headers())?;
        Ok(ArchiveDownload { stat, body: response.into_body(), client: self.clone() })
    }

    /// `PUT /containers/{id}/archive?path=`: extract the tar `archive` into
    /// the directory `path` of the container.
    pub async fn container_extract(
        &self,
        id: &str,
        path: &str,
        archive: impl AsyncRead + Send + Unpin + 'static,
        options: ExtractOptions,
    ) -> Result<(), ClientError> {
        let mut query = vec![("path", path.to_owned())];
        if options.no_overwrite_dir_non_dir {
            query.push(("noOverwriteDirNonDir", "true".to_owned()));
        }
        if options.copy_uid_gid {
            query.push(("copyUIDGID", "true".to_owned()));
        }
        let request = with_query(&format!("/containers/{}/archive", escape_segment(id)), &query);
        let response =
            self.open(Method::PUT, &request, &[], transport::from_reader(archive)).await?;
        self.read_body(response.into_body()).await.map(|_| ())
    }
}

fn archive_path(id: &str, path: &str) -> String {
    with_query(&format!("/containers/{}/archive", escape_segment(id)), &[("path", path.to_owned())])
}

/// The stat header: base64 of JSON.
fn decode_stat(path: &str, headers: &HeaderMap) -> Result<PathStat, ClientError> {
    let text = headers.get(STAT_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    serde_json::from_slice(&base64_decode(text))
        .map_err(|source| ClientError::Decode { path: path.to_owned(), source })
}

/// Standard base64 (padding optional); bad characters are skipped.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for sextet in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_the_standard_alphabet() {
        assert_eq!(base64_decode(""), b"");
        assert_eq!(base64_decode("Zg=="), b"f");
        assert_eq!(base64_decode("Zm8="), b"fo");
        assert_eq!(base64_decode("Zm9v"), b"foo");
        assert_eq!(base64_decode("eyJuYW1lIjoieCJ9"), b"{\"name\":\"x\"}");
    }

    #[test]
    fn the_stat_header_says_what_the_path_is() {
        let mut headers = HeaderMap::new();
        // {"name":"etc","size":4096,"mode":2147484141,"mtime":"x","linkTarget":""}
        let json = r#"{"name":"etc","size":4096,"mode":2147484141,"mtime":"x","linkTarget":""}"#;
        let encoded: String = {
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            json.as_bytes()
                .chunks(3)
                .flat_map(|c| {
                    let n = (u32::from(c[0]) << 16)
                        | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                        | u32::from(*c.get(2).unwrap_or(&0));
                    (0..4).map(move |i| {
                        if i <= c.len() {
                            ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char
                        } else {
                            '='
                        }
                    })
                })
                .collect()
        };
        headers.insert(STAT_HEADER, encoded.parse().expect("header"));
        let stat = decode_stat("/p", &headers).expect("stat");
        assert_eq!((stat.name.as_str(), stat.size), ("etc", 4096));
        assert!(stat.is_dir() && !stat.is_symlink());
        assert!(decode_stat("/p", &HeaderMap::new()).is_err());
    }
}
