//! One repository of one registry: its manifests and blobs.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use kiln_types::{Algorithm, Digest};
use sha2::{Digest as _, Sha256};

use crate::auth::{Authorizer, Origin};
use crate::credentials::Credentials;
use crate::endpoint::Endpoint;
use crate::error::RegistryError;
use crate::tls::Trust;
use crate::transport::{self, Payload};

/// The manifest media types asked for, best first: OCI index and manifest,
/// Docker manifest list and v2 schema 2 manifest.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Docker's v2 schema 1 manifests, refused: no current registry needs them.
const SCHEMA_ONE: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// Largest manifest read (the distribution spec lets registries refuse more).
pub const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;
/// Largest error answer read.
const SMALL_BODY_LIMIT: u64 = 1024 * 1024;

/// A manifest as the registry sent it, with its checked digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Bytes,
}

/// Where a blob's bytes go as they arrive (the content store's ingest,
/// which hashes and verifies them).
pub trait BlobSink: Send {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Forget what was written: the download starts over after a failure.
    fn restart(&mut self) -> io::Result<()>;
}

/// How often, and how patiently, a failed request is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// Wait before the second try; doubled before each later one.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy { attempts: 4, first_delay: Duration::from_millis(250) }
    }
}

impl RetryPolicy {
    pub(crate) fn delay(&self, failed_attempts: u32) -> Duration {
        self.first_delay.saturating_mul(1 << failed_attempts.saturating_sub(1).min(5))
    }
}

/// A client for one repository (`library/busybox`) of one registry. Cheap
/// to clone; clones share the token, so parallel blob fetches ask once.
#[derive(Debug, Clone)]
pub struct Repository {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoint: Endpoint,
    repository: String,
    auth: Authorizer,
    retry: RetryPolicy,
    trust: Trust,
}

/// What a request asks for, for error messages.
pub(crate) enum Target<'a> {
    Manifest(&'a str),
    Blob(&'a Digest),
}

impl Repository {
    /// A client for `repository` at `endpoint`, checking HTTPS servers
    /// against the system's trust store; refuses an endpoint whose
    /// authority is not `host[:port]`.
    pub fn new(
        endpoint: Endpoint,
        repository: &str,
        retry: RetryPolicy,
    ) -> Result<Repository, RegistryError> {
        Repository::with_trust(endpoint, repository, retry, Trust::system())
    }

    /// This repository, answering challenges with `credentials` (the
    /// anonymous token flow when `None`): basic auth, or a token asked for
    /// with them. Clones made before share them.
    pub fn with_credentials(self, credentials: Option<Credentials>) -> Repository {
        self.inner.auth.set_credentials(credentials);
        self
    }

    /// [`Repository::new`], checking HTTPS servers (the registry, its token
    /// realm, the hosts it redirects to) against `trust`.
    pub fn with_trust(
        endpoint: Endpoint,
        repository: &str,
        retry: RetryPolicy,
        trust: Trust,
    ) -> Result<Repository, RegistryError> {
        if endpoint.authority.parse::<http::uri::Authority>().is_err() {
            return Err(RegistryError::InvalidUrl { url: endpoint.to_string() });
        }
        Ok(Repository {
            inner: Arc::new(Inner {
                endpoint,
                repository: repository.to_owned(),
                auth: Authorizer::default(),
                retry,
                trust,
            }),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    pub fn repository(&self) -> &str {
        &self.inner.repository
    }

    /// How failed requests are retried (a push retries whole uploads).
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// `registry/repository` followed by `:tag` or `@digest`, for messages.
    pub(crate) fn display(&self, reference: &str) -> String {
        let sep = if reference.contains(':') { '@' } else { ':' };
        format!("{}/{}{sep}{reference}", self.inner.endpoint.registry, self.inner.repository)
    }

    /// GET the manifest `reference` (a tag or a digest), checked: against
    /// the digest asked for, and against `Docker-Content-Digest` when sent.
    /// Schema 1 and unknown media types are refused.
    pub async fn manifest(&self, reference: &str) -> Result<Manifest, RegistryError> {
        let url = self.inner.endpoint.manifest_url(&self.inner.repository, reference);
        let mut accept = HeaderMap::new();
        accept.insert(
            ACCEPT,
            HeaderValue::from_str(&MANIFEST_MEDIA_TYPES.join(", "))
                .map_err(|_| RegistryError::InvalidUrl { url: url.clone() })?,
        );
        let mut failed = 0;
        loop {
            let result = self.try_manifest(&url, &accept, reference).await;
            match result {
                Err(err) if err.is_transient() && failed + 1 < self.inner.retry.attempts => {
                    failed += 1;
                    let delay = self.inner.retry.delay(failed);
                    tracing::warn!(url = %url, error = %err, attempt = failed, "retrying manifest");
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    async fn try_manifest(
        &self,
        url: &str,
        accept: &HeaderMap,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        let (url, response) = self.get(url, accept, Target::Manifest(reference)).await?;
        let header_digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
            .unwrap_or_default();
        let bytes = transport::read_limited(&url, response.into_body(), MANIFEST_LIMIT)
            .await?
            .ok_or_else(|| RegistryError::ManifestTooLarge {
                reference: self.display(reference),
                limit: MANIFEST_LIMIT,
            })?;
        let actual = sha256(&bytes);
        let what = || format!("manifest {}", self.display(reference));
        if let Ok(asked) = reference.parse::<Digest>() {
            if asked.algorithm() == Algorithm::Sha256 && asked != actual {
                return Err(RegistryError::DigestMismatch {
                    what: what(),
                    expected: asked,
                    actual,
                });
            }
        }
        if let Some(value) = header_digest {
            let sent: Digest = value.parse().map_err(|_| RegistryError::BadDigestHeader {
                reference: self.display(reference),
                value: value.clone(),
            })?;
            if sent.algorithm() == Algorithm::Sha256 && sent != actual {
                return Err(RegistryError::DigestMismatch { what: what(), expected: sent, actual });
            }
        }
        let media_type = media_type_of(&content_type, &bytes);
        if SCHEMA_ONE.contains(&media_type.as_str()) {
            return Err(RegistryError::SchemaOne { reference: self.display(reference) });
        }
        if !MANIFEST_MEDIA_TYPES.contains(&media_type.as_str()) {
            return Err(RegistryError::UnsupportedManifest {
                reference: self.display(reference),
                media_type,
            });
        }
        Ok(Manifest { media_type, digest: actual, bytes })
    }

    /// Stream the blob `digest` into `sink` and return its size. With
    /// `size`, more bytes are refused and fewer are a truncation; the sink
    /// (the content store's ingest) checks the digest. Dropped connections,
    /// 429 and 5xx answers are retried from the start of the blob.
    pub async fn blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
        sink: &mut dyn BlobSink,
    ) -> Result<u64, RegistryError> {
        let url = self.inner.endpoint.blob_url(&self.inner.repository, &digest.to_string());
        let mut failed = 0;
        loop {
            let result = self.try_blob(&url, digest, size, sink).await;
            match result {
                Err(err) if err.is_transient() && failed + 1 < self.inner.retry.attempts => {
                    failed += 1;
                    tracing::warn!(digest = %digest, error = %err, attempt = failed, "retrying blob");
                    sink.restart()
                        .map_err(|source| RegistryError::Sink { digest: digest.clone(), source })?;
                    tokio::time::sleep(self.inner.retry.delay(failed)).await;
                }
                other => return other,
            }
        }
    }

    async fn try_blob(
        &self,
        url: &str,
        digest: &Digest,
        size: Option<u64>,
        sink: &mut dyn BlobSink,
    ) -> Result<u64, RegistryError> {
        let (url, response) = self.get(url, &HeaderMap::new(), Target::Blob(digest)).await?;
        let mut body = response.into_body();
        let mut received: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| RegistryError::Http { url: url.clone(), source })?;
            let Ok(data) = frame.into_data() else { continue };
            received += data.len() as u64;
            sink.write(&data)
                .map_err(|source| RegistryError::Sink { digest: digest.clone(), source })?;
        }
        match size {
            Some(expected) if received < expected => {
                Err(RegistryError::Truncated { digest: digest.clone(), received, expected })
            }
            _ => Ok(received),
        }
    }

    /// GET with our token, answering one auth challenge; a success (2xx)
    /// or the error the answer means.
    async fn get(
        &self,
        url: &str,
        extra: &HeaderMap,
        target: Target<'_>,
    ) -> Result<(String, Response<Incoming>), RegistryError> {
        self.request(Method::GET, url, extra, &Payload::Empty, target).await
    }

    /// Send `method` with our token and `payload`, answering one auth
    /// challenge (the payload is sent again then: a push's first POST may
    /// need a token with a wider scope than the pull's); a success (2xx)
    /// or the error the answer means.
    pub(crate) async fn request(
        &self,
        method: Method,
        url: &str,
        extra: &HeaderMap,
        payload: &Payload,
        target: Target<'_>,
    ) -> Result<(String, Response<Incoming>), RegistryError> {
        let mut asked_token = false;
        loop {
            let mut headers = extra.clone();
            if let Some(value) = self.authorization() {
                headers.insert(AUTHORIZATION, value);
            }
            let (final_url, response) =
                transport::send(method.clone(), url, &headers, payload, &self.inner.trust).await?;
            let status = response.status();
            if status.is_success() {
                return Ok((final_url, response));
            }
            if status == StatusCode::UNAUTHORIZED
                && !asked_token
                && self.authorize(response.headers(), headers.get(AUTHORIZATION)).await?
            {
                asked_token = true;
                continue;
            }
            let message = error_message(&final_url, response).await;
            return Err(self.status_error(&final_url, status, message, target));
        }
    }

    fn status_error(
        &self,
        url: &str,
        status: StatusCode,
        message: String,
        target: Target<'_>,
    ) -> RegistryError {
        match (status, target) {
            (StatusCode::NOT_FOUND, Target::Manifest(reference)) => {
                RegistryError::ManifestUnknown { reference: self.display(reference), message }
            }
            (StatusCode::NOT_FOUND, Target::Blob(digest)) => RegistryError::BlobUnknown {
                repository: self.display("").trim_end_matches(':').to_owned(),
                digest: digest.clone(),
                message,
            },
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => RegistryError::Unauthorized {
                registry: self.inner.endpoint.registry.clone(),
                repository: self.inner.repository.clone(),
                message,
            },
            _ => RegistryError::Status { url: url.to_owned(), status, message },
        }
    }

    /// The `Authorization` header to send: the token (or basic
    /// credentials) an earlier challenge was answered with, while valid.
    fn authorization(&self) -> Option<HeaderValue> {
        self.inner.auth.header()
    }

    /// Answer the challenge of a 401 answer's headers so that the request
    /// can be sent again: `Ok(true)` when there is something new to send,
    /// `Ok(false)` when the challenge cannot be answered (the 401 stands).
    /// `sent` is the `Authorization` the refused request carried. See
    /// [`crate::auth`].
    async fn authorize(
        &self,
        response_headers: &HeaderMap,
        sent: Option<&HeaderValue>,
    ) -> Result<bool, RegistryError> {
        let origin = Origin {
            registry: &self.inner.endpoint.registry,
            repository: &self.inner.repository,
            trust: &self.inner.trust,
        };
        let default_scope = format!("repository:{}:pull", self.inner.repository);
        self.inner.auth.answer(response_headers, &default_scope, &origin, sent).await
    }
}

/// The media type of a manifest: its `Content-Type`, else its `mediaType`
/// field, else a guess from its shape.
fn media_type_of(content_type: &str, bytes: &[u8]) -> String {
    if !content_type.is_empty()
        && content_type != "application/json"
        && content_type != "application/octet-stream"
        && content_type != "text/plain"
    {
        return content_type.to_owned();
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Shape {
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    let Ok(shape) = serde_json::from_slice::<Shape>(bytes) else {
        return content_type.to_owned();
    };
    if let Some(media_type) = shape.media_type {
        return media_type;
    }
    if shape.schema_version == Some(1) {
        return SCHEMA_ONE[0].to_owned();
    }
    if shape.manifests.is_some() {
        return MANIFEST_MEDIA_TYPES[0].to_owned();
    }
    if shape.config.is_some() {
        return MANIFEST_MEDIA_TYPES[1].to_owned();
    }
    content_type.to_owned()
}

/// The registry's words for an error answer: `code: message` of each entry
/// of its `{"errors": [...]}` body, as Docker prints them
/// (`manifest unknown: manifest unknown`), else the status.
pub(crate) async fn error_message(url: &str, response: Response<Incoming>) -> String {
    let status = response.status();
    let body = transport::read_limited(url, response.into_body(), SMALL_BODY_LIMIT)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let parts: Vec<String> = serde_json::from_slice::<Errors>(&body)
        .map(|e| e.errors)
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let code = e.code.to_ascii_lowercase().replace('_', " ");
            match (code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{code}: {}", e.message),
                (false, true) => code,
                _ => e.message,
            }
        })
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        status.canonical_reason().unwrap_or("error").to_ascii_lowercase()
    } else {
        parts.join("; ")
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> Digest {
    use std::fmt::Write as _;
    let hex = Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    Digest::new(Algorithm::Sha256, &hex).expect("a sha256 hash is 64 lower-case hex digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_come_from_the_header_then_the_body() {
        let oci = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert_eq!(media_type_of("application/json", oci.as_bytes()), MANIFEST_MEDIA_TYPES[0]);
        assert_eq!(
            media_type_of(MANIFEST_MEDIA_TYPES[3], b"{}"),
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        assert_eq!(
            media_type_of("", br#"{"schemaVersion":2,"config":{}}"#),
            MANIFEST_MEDIA_TYPES[1]
        );
        assert_eq!(media_type_of("", br#"{"schemaVersion":1,"fsLayers":[]}"#), SCHEMA_ONE[0]);
    }

    #[test]
    fn back_off_doubles_from_the_first_delay() {
        let policy = RetryPolicy { attempts: 4, first_delay: Duration::from_millis(100) };
        assert_eq!(policy.delay(1), Duration::from_millis(100));
        assert_eq!(policy.delay(2), Duration::from_millis(200));
        assert_eq!(policy.delay(3), Duration::from_millis(400));
    }
}
