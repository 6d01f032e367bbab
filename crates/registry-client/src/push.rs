//! Writing to a repository: what a push sends.
//!
//! A blob the registry has already is found with `HEAD` and skipped; one
//! that another repository of the same registry has can be mounted from it
//! (no bytes sent); any other is uploaded through an upload session, in one
//! `PUT` or, when larger than [`BlobUpload::chunk_size`], in `PATCH`
//! chunks with `Content-Range` and a closing `PUT`. Bytes stream from a
//! [`BlobSource`] (the content store's file), never whole in memory. A
//! failed try of an upload starts over with a new session: registries do
//! not agree on how to resume one. Manifests go last, by the engine's
//! choice: this module does not know what a manifest refers to.

use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, Method, Response, StatusCode};
use hyper::body::Incoming;
use kiln_types::{Algorithm, Digest};

use crate::error::RegistryError;
use crate::repository::{error_message, sha256, Repository, Target};
use crate::transport::{self, Payload};

/// Blobs larger than this are uploaded in chunks of this size. Large enough
/// that layers of ordinary images go in one request, small enough that a
/// proxy's body limit is rarely met.
pub const DEFAULT_CHUNK_SIZE: u64 = 64 * 1024 * 1024;

/// Where an upload's bytes come from. Opened once per request that sends
/// them (a retried upload, a chunk), so it must give the same bytes each
/// time.
pub trait BlobSource: Send + Sync {
    /// The blob's bytes from `offset` to its end.
    fn open(&self, offset: u64) -> io::Result<Box<dyn Read + Send>>;
}

/// A file as a [`BlobSource`]: a blob of the content store.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    pub fn new(path: impl Into<PathBuf>) -> FileSource {
        FileSource { path: path.into() }
    }
}

impl BlobSource for FileSource {
    fn open(&self, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        let mut file = File::open(&self.path)?;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(Box::new(file))
    }
}

/// Told how many bytes of a blob have been sent (read for sending) so far;
/// starts again from 0 when an upload is retried.
pub type UploadProgress = Arc<dyn Fn(u64) + Send + Sync>;

/// An upload session the registry opened: where the bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    /// Absolute URL, query (the registry's state) kept.
    location: String,
}

/// What a cross-repository mount did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// The registry linked the blob into this repository: nothing to send.
    Mounted,
    /// The registry could not (the blob is not in the other repository, or
    /// we may not read it) and opened an upload session instead.
    Upload(UploadSession),
}

/// One blob to upload.
#[derive(Clone)]
pub struct BlobUpload {
    pub digest: Digest,
    pub size: u64,
    pub source: Arc<dyn BlobSource>,
    /// Larger blobs go in chunks of this many bytes; see [`DEFAULT_CHUNK_SIZE`].
    pub chunk_size: u64,
    /// A session a refused mount opened, used by the first try.
    pub session: Option<UploadSession>,
    pub progress: Option<UploadProgress>,
}

impl std::fmt::Debug for BlobUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobUpload")
            .field("digest", &self.digest)
            .field("size", &self.size)
            .field("chunk_size", &self.chunk_size)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

const OCTET_STREAM: &str = "application/octet-stream";

impl Repository {
    /// `HEAD` the blob `digest`: its size when the repository has it,
    /// `None` when it does not.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<Option<u64>, RegistryError> {
        let url = self.endpoint().blob_url(self.repository(), &digest.to_string());
        let found = self
            .retrying("blob check", || async {
                let answer = self
                    .request(
                        Method::HEAD,
                        &url,
                        &HeaderMap::new(),
                        &Payload::Empty,
                        Target::Blob(digest),
                    )
                    .await;
                match answer {
                    Ok((_, response)) => Ok(Some(content_length(&response))),
                    Err(RegistryError::BlobUnknown { .. }) => Ok(None),
                    Err(err) => Err(err),
                }
            })
            .await?;
        Ok(found.map(|size| size.unwrap_or_default()))
    }

    /// Ask the registry to link the blob `digest` from `from` (another
    /// repository of the same registry) into this one: `POST
    /// /blobs/uploads/?mount=&from=`.
    pub async fn mount_blob(&self, digest: &Digest, from: &str) -> Result<Mount, RegistryError> {
        let url = format!(
            "{}?mount={}&from={}",
            self.uploads_url(),
            query_escape(&digest.to_string()),
            query_escape(from)
        );
        self.retrying("blob mount", || async {
            let (final_url, response) = self
                .request(
                    Method::POST,
                    &url,
                    &HeaderMap::new(),
                    &Payload::Empty,
                    Target::Blob(digest),
                )
                .await?;
            if response.status() == StatusCode::CREATED {
                return Ok(Mount::Mounted);
            }
            Ok(Mount::Upload(session_of(&final_url, &response)?))
        })
        .await
    }

    /// Upload a blob: through `upload.session` if a mount opened one, else
    /// a new session; in one `PUT` up to [`BlobUpload::chunk_size`] bytes,
    /// else in `PATCH` chunks. A try that fails with a dropped connection,
    /// 429 or a 5xx starts over with a new session, after a back-off.
    pub async fn upload_blob(&self, upload: BlobUpload) -> Result<(), RegistryError> {
        let policy = self.retry_policy();
        let mut session = upload.session.clone();
        let mut failed = 0;
        loop {
            let result = self.try_upload(&upload, session.take()).await;
            match result {
                Err(err) if err.is_transient() && failed + 1 < policy.attempts => {
                    failed += 1;
                    tracing::warn!(digest = %upload.digest, error = %err, attempt = failed, "retrying upload");
                    if let Some(progress) = &upload.progress {
                        progress(0);
                    }
                    tokio::time::sleep(policy.delay(failed)).await;
                }
                other => return other,
            }
        }
    }

    async fn try_upload(
        &self,
        upload: &BlobUpload,
        session: Option<UploadSession>,
    ) -> Result<(), RegistryError> {
        let digest = &upload.digest;
        let mut location = match session {
            Some(session) => session.location,
            None => self.start_upload(digest).await?,
        };
        let chunk_size = upload.chunk_size.max(1);
        let blob = |offset: u64, len: u64| Payload::Blob {
            source: Arc::clone(&upload.source),
            offset,
            len,
            sent: upload.progress.clone(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
        let last = if upload.size > chunk_size {
            let mut offset = 0;
            while offset < upload.size {
                let len = chunk_size.min(upload.size - offset);
                let range = format!("{offset}-{}", offset + len - 1);
                let mut headers = headers.clone();
                headers.insert(
                    CONTENT_RANGE,
                    HeaderValue::from_str(&range)
                        .map_err(|_| RegistryError::InvalidUrl { url: location.clone() })?,
                );
                let (url, response) = self
                    .request(
                        Method::PATCH,
                        &location,
                        &headers,
                        &blob(offset, len),
                        Target::Blob(digest),
                    )
                    .await?;
                location = session_of(&url, &response)?.location;
                offset += len;
            }
            Payload::Empty
        } else {
            blob(0, upload.size)
        };
        let url = with_digest(&location, digest);
        let (url, response) =
            self.request(Method::PUT, &url, &headers, &last, Target::Blob(digest)).await?;
        if response.status() != StatusCode::CREATED {
            let status = response.status();
            let message = error_message(&url, response).await;
            return Err(RegistryError::Status { url, status, message });
        }
        check_digest_header(&response, digest, || format!("blob {digest}"))?;
        Ok(())
    }

    /// `POST /blobs/uploads/`: a new session's location.
    async fn start_upload(&self, digest: &Digest) -> Result<String, RegistryError> {
        let url = self.uploads_url();
        let (final_url, response) = self
            .request(Method::POST, &url, &HeaderMap::new(), &Payload::Empty, Target::Blob(digest))
            .await?;
        Ok(session_of(&final_url, &response)?.location)
    }

    /// `PUT` a manifest as `reference` (a tag, or its digest) and return
    /// its digest, checked against the registry's `Docker-Content-Digest`.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest, RegistryError> {
        let url = self.endpoint().manifest_url(self.repository(), reference);
        let ours = sha256(&bytes);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type).map_err(|_| RegistryError::UnsupportedManifest {
                reference: self.display(reference),
                media_type: media_type.to_owned(),
            })?,
        );
        let payload = Payload::Bytes(bytes);
        self.retrying("manifest upload", || async {
            let (_, response) = self
                .request(Method::PUT, &url, &headers, &payload, Target::Manifest(reference))
                .await?;
            check_digest_header(&response, &ours, || {
                format!("manifest {}", self.display(reference))
            })
        })
        .await?;
        Ok(ours)
    }

    fn uploads_url(&self) -> String {
        format!("{}/v2/{}/blobs/uploads/", self.endpoint(), self.repository())
    }

    /// Run `op` until it succeeds, fails for good, or has been tried as
    /// often as the retry policy allows.
    async fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RegistryError>>,
    {
        let policy = self.retry_policy();
        let mut failed = 0;
        loop {
            match op().await {
                Err(err) if err.is_transient() && failed + 1 < policy.attempts => {
                    failed += 1;
                    tracing::warn!(repository = self.repository(), error = %err, attempt = failed, "retrying {what}");
                    tokio::time::sleep(policy.delay(failed)).await;
                }
                other => return other,
            }
        }
    }
}

/// The upload session an answer names in `Location`, made absolute
/// against the URL that answered (registries send a path, or a full URL
/// to another host), its query kept.
fn session_of(url: &str, response: &Response<Incoming>) -> Result<UploadSession, RegistryError> {
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| RegistryError::Status {
            url: url.to_owned(),
            status: response.status(),
            message: "the answer names no upload location".into(),
        })?;
    Ok(UploadSession { location: transport::resolve_location(url, location)? })
}

/// `location` with `digest=` added to its query.
fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={}", query_escape(&digest.to_string()))
}

fn content_length(response: &Response<Incoming>) -> Option<u64> {
    response.headers().get(CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// A sha256 `Docker-Content-Digest` must be ours; other algorithms and
/// no header at all are let through (the registry hashed what it got).
fn check_digest_header(
    response: &Response<Incoming>,
    ours: &Digest,
    what: impl Fn() -> String,
) -> Result<(), RegistryError> {
    let Some(value) = response.headers().get("docker-content-digest") else { return Ok(()) };
    let text = value.to_str().unwrap_or_default();
    let sent: Digest = text.parse().map_err(|_| RegistryError::BadDigestHeader {
        reference: what(),
        value: text.to_owned(),
    })?;
    if sent.algorithm() == Algorithm::Sha256 && sent != *ours {
        return Err(RegistryError::DigestMismatch {
            what: what(),
            expected: ours.clone(),
            actual: sent,
        });
    }
    Ok(())
}

/// Percent-encode a query value; `:` and `/` may stay (digests, repositories).
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_joins_the_sessions_own_query() {
        let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(
            with_digest("http://r/v2/a/blobs/uploads/u1?_state=xyz", &digest),
            format!("http://r/v2/a/blobs/uploads/u1?_state=xyz&digest=sha256:{}", "ab".repeat(32))
        );
        assert_eq!(
            with_digest("http://r/v2/a/blobs/uploads/u1", &digest),
            format!("http://r/v2/a/blobs/uploads/u1?digest=sha256:{}", "ab".repeat(32))
        );
    }

    #[test]
    fn file_sources_read_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, b"0123456789").unwrap();
        let source = FileSource::new(&path);
        let mut rest = String::new();
        source.open(4).unwrap().read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "456789");
    }
}
