//! What can go wrong talking to a registry or downloading a URL.

use http::StatusCode;
use kiln_types::{Digest, ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid URL {url:?}")]
    InvalidUrl { url: String },
    /// A server's certificate was refused; `reason` is in Go's words
    /// (`x509: certificate signed by unknown authority`), as Docker says it.
    #[error("cannot verify the TLS certificate of {host}: {reason}")]
    Certificate { host: String, reason: String },
    /// The TLS handshake failed for another reason (a plain-HTTP server, no
    /// common protocol version or cipher suite).
    #[error("cannot complete the TLS handshake with {authority}")]
    Tls {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    /// The TLS client configuration could not be built (a rustls fault).
    #[error("cannot set up TLS")]
    TlsSetup {
        #[source]
        source: rustls::Error,
    },
    /// A trust file or directory named by the caller could not be read.
    #[error("cannot load trusted certificates from {}", .path.display())]
    TrustStore {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to {authority}")]
    Connect {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    /// The connection broke, or the answer was not HTTP.
    #[error("cannot talk to {url}")]
    Http {
        url: String,
        #[source]
        source: hyper::Error,
    },
    #[error("too many redirects fetching {url}")]
    TooManyRedirects { url: String },
    /// A `Basic` challenge and no user name and password to answer it.
    #[error("unauthorized: no basic auth credentials for {registry} (log in with `kiln login {registry}`)")]
    CredentialsRequired { registry: String },
    /// `docker login`'s credentials were refused; `message` is the
    /// server's (`unauthorized: incorrect username or password`).
    // docker-compat: dockerd's wording, `Get "https://HOST/v2/": MESSAGE`.
    #[error("Get \"{url}\": {message}")]
    LoginRefused { url: String, message: String },
    #[error("registry {registry} refused access to {repository}: {message}")]
    Unauthorized { registry: String, repository: String, message: String },
    #[error("cannot get a token from {realm}: {message}")]
    Token { realm: String, message: String },
    /// docker-compat: dockerd's wording, `manifest for NAME:TAG not found: manifest unknown: …`.
    #[error("manifest for {reference} not found: {message}")]
    ManifestUnknown { reference: String, message: String },
    #[error("blob {digest} not found in {repository}: {message}")]
    BlobUnknown { repository: String, digest: Digest, message: String },
    #[error("{url} answered {status}: {message}")]
    Status { url: String, status: StatusCode, message: String },
    #[error("manifest {reference} is Docker image manifest v2, schema 1, which is no longer supported; push it again with a current client")]
    SchemaOne { reference: String },
    #[error("manifest {reference} has unsupported media type {media_type:?}")]
    UnsupportedManifest { reference: String, media_type: String },
    #[error("manifest {reference} is larger than {limit} bytes")]
    ManifestTooLarge { reference: String, limit: u64 },
    #[error("{what} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: Digest, actual: Digest },
    #[error("registry sent an invalid Docker-Content-Digest {value:?} for {reference}")]
    BadDigestHeader { reference: String, value: String },
    /// Storing what arrived failed (the sink's own error).
    #[error("cannot store blob {digest}")]
    Sink {
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {digest} ended after {received} of {expected} bytes")]
    Truncated { digest: Digest, received: u64, expected: u64 },
    /// docker-compat: `ADD <url>`'s wording in Docker's builder.
    #[error("failed to GET {url} with status {status}")]
    FetchStatus { url: String, status: StatusCode },
    /// Writing a download to its file failed.
    #[error("cannot write {}", .path.display())]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RegistryError {
    /// Whether trying again may help: a dropped or refused connection,
    /// 429 or a 5xx answer, a blob cut short.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Http { .. } | Self::Truncated { .. } => true,
            Self::Status { status, .. } | Self::FetchStatus { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            _ => false,
        }
    }
}

impl HasKind for RegistryError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::ManifestUnknown { .. } | Self::BlobUnknown { .. } => ErrorKind::NotFound,
            Self::SchemaOne { .. } | Self::UnsupportedManifest { .. } => ErrorKind::Unsupported,
            Self::CredentialsRequired { .. }
            | Self::Unauthorized { .. }
            | Self::LoginRefused { .. } => ErrorKind::PermissionDenied,
            Self::InvalidUrl { .. }
            | Self::ManifestTooLarge { .. }
            | Self::DigestMismatch { .. }
            | Self::BadDigestHeader { .. } => ErrorKind::InvalidArgument,
            Self::Status { status, .. } | Self::FetchStatus { status, .. }
                if status.as_u16() == 404 =>
            {
                ErrorKind::NotFound
            }
            Self::TrustStore { .. } => ErrorKind::InvalidArgument,
            Self::Connect { .. }
            | Self::Http { .. }
            | Self::TooManyRedirects { .. }
            | Self::Token { .. }
            | Self::Status { .. }
            | Self::FetchStatus { .. }
            // docker-compat: dockerd answers 500 for x509 and handshake failures.
            | Self::Certificate { .. }
            | Self::Tls { .. }
            | Self::TlsSetup { .. }
            | Self::Write { .. }
            | Self::Sink { .. }
            | Self::Truncated { .. } => ErrorKind::Internal,
        }
    }
}
