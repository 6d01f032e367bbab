//! One repository of one registry: its manifests and blobs.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use kiln_types::{Algorithm, Digest};
use sha2::{Digest as _, Sha256};

use crate::challenge::{Challenge, Scheme as ChallengeScheme};
use crate::endpoint::Endpoint;
use crate::error::RegistryError;
use crate::tls::Trust;
use crate::transport;

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
/// Largest token or error answer read.
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
    fn delay(&self, failed_attempts: u32) -> Duration {
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
    token: Mutex<Option<String>>,
    retry: RetryPolicy,
    trust: Trust,
}

/// What a request asks for, for error messages.
enum Target<'a> {
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
                token: Mutex::new(None),
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

    /// `registry/repository` followed by `:tag` or `@digest`, for messages.
    fn display(&self, reference: &str) -> String {
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
        let mut asked_token = false;
        loop {
            let mut headers = extra.clone();
            let token = self.inner.token.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(token) = token {
                if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
                    headers.insert(AUTHORIZATION, value);
                }
            }
            let (final_url, response) = transport::get(url, &headers, &self.inner.trust).await?;
            let status = response.status();
            if status.is_success() {
                return Ok((final_url, response));
            }
            if status == StatusCode::UNAUTHORIZED && !asked_token {
                let challenge = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Challenge::parse);
                match challenge {
                    Some(c) if c.scheme == ChallengeScheme::Bearer => {
                        self.fetch_token(&c).await?;
                        asked_token = true;
                        continue;
                    }
                    Some(c) if c.scheme == ChallengeScheme::Basic => {
                        return Err(RegistryError::CredentialsRequired {
                            registry: self.inner.endpoint.registry.clone(),
                        })
                    }
                    _ => {}
                }
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

    /// The anonymous bearer flow: GET `realm?service=&scope=` and keep the
    /// token for later requests.
    async fn fetch_token(&self, challenge: &Challenge) -> Result<(), RegistryError> {
        let realm = challenge.param("realm").unwrap_or_default().to_owned();
        if realm.is_empty() {
            return Err(RegistryError::Token {
                realm,
                message: "the challenge names no realm".into(),
            });
        }
        let scope = challenge
            .param("scope")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("repository:{}:pull", self.inner.repository));
        let mut query = vec![("scope", scope)];
        if let Some(service) = challenge.param("service") {
            query.insert(0, ("service", service.to_owned()));
        }
        let sep = if realm.contains('?') { '&' } else { '?' };
        let query: Vec<String> =
            query.iter().map(|(k, v)| format!("{k}={}", query_escape(v))).collect();
        let url = format!("{realm}{sep}{}", query.join("&"));
        let token_err = |message: String| RegistryError::Token { realm: realm.clone(), message };
        let (url, response) = transport::get(&url, &HeaderMap::new(), &self.inner.trust).await?;
        let status = response.status();
        if !status.is_success() {
            let message = error_message(&url, response).await;
            return Err(token_err(format!("{status}: {message}")));
        }
        let body = transport::read_limited(&url, response.into_body(), SMALL_BODY_LIMIT)
            .await?
            .ok_or_else(|| token_err("the answer is too large".into()))?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| token_err(format!("invalid answer: {e}")))?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| token_err("the answer holds no token".into()))?;
        *self.inner.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
        Ok(())
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
async fn error_message(url: &str, response: Response<Incoming>) -> String {
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

fn sha256(bytes: &[u8]) -> Digest {
    use std::fmt::Write as _;
    let hex = Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    Digest::new(Algorithm::Sha256, &hex).expect("a sha256 hash is 64 lower-case hex digits")
}

/// Percent-encode a query value (scopes hold `:` and `/`, which may stay).
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

    #[test]
    fn scopes_are_escaped_for_the_token_query() {
        assert_eq!(
            query_escape("repository:library/busybox:pull"),
            "repository:library/busybox:pull"
        );
        assert_eq!(query_escape("a b,c"), "a%20b%2Cc");
    }
}
