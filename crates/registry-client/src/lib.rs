//! OCI distribution protocol client: where a registry is, how to get a
//! token from it, and how to read manifests and blobs from it; and plain
//! HTTP(S) downloads for the builder's `ADD <url>`.
//!
//! - [`Endpoint`] maps a reference's registry to the host that serves it
//!   (`docker.io` → `registry-1.docker.io`) and picks the scheme: plain HTTP
//!   for `localhost` and `127.0.0.0/8`, as Docker does, HTTPS otherwise.
//! - [`Trust`] is what HTTPS servers are checked against: the system's CA
//!   bundle (or `SSL_CERT_FILE`/`SSL_CERT_DIR`), read once, through rustls
//!   with the ring provider.
//! - [`Challenge`] parses `WWW-Authenticate`; a `Bearer` challenge is
//!   answered with a token (anonymous, or asked for with [`Credentials`]),
//!   a `Basic` one with the credentials; [`check_login`] is `docker login`.
//! - [`Repository`] fetches manifests (checked against the digest asked for
//!   and `Docker-Content-Digest`) and streams blobs into a [`BlobSink`],
//!   retrying with back-off on 429, 5xx and dropped connections.
//! - Pushes: [`Repository::blob_exists`] (`HEAD`),
//!   [`Repository::mount_blob`] (cross-repository mount),
//!   [`Repository::upload_blob`] (monolithic or chunked, streaming from a
//!   [`BlobSource`]) and [`Repository::put_manifest`].
//! - [`fetch`] and [`download`] GET any `http`/`https` URL, streaming.
//!
//! What a manifest means (platforms, layers, configs) is not known here; see
//! `kiln-image` and the engine's pull. Nothing here buffers a blob whole.

mod auth;
mod challenge;
mod credentials;
mod endpoint;
mod error;
mod fetch;
mod push;
mod repository;
mod tls;
mod transport;

pub use auth::check_login;
pub use challenge::{Challenge, Scheme as ChallengeScheme};
pub use credentials::Credentials;
pub use endpoint::{Endpoint, Scheme};
pub use error::RegistryError;
pub use fetch::{download, download_with, fetch, fetch_with, Downloaded, Fetched};
pub use push::{
    BlobSource, BlobUpload, FileSource, Mount, UploadProgress, UploadSession, DEFAULT_CHUNK_SIZE,
};
pub use repository::{
    BlobSink, Manifest, Repository, RetryPolicy, MANIFEST_LIMIT, MANIFEST_MEDIA_TYPES,
};
pub use tls::{Trust, TrustPaths};
