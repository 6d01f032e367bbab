//! A Docker Engine API client, over a unix socket or TCP.
//!
//! [`Client::connect`] pings the daemon and negotiates the API version as the
//! docker CLI does: the lower of the server's `Api-Version` and ours
//! ([`API_VERSION`]); every later request is sent as `/vX.Y/...`. It works
//! against `kiln daemon` and against `dockerd` alike. Answers are decoded
//! into `kiln-api-types`; failures are [`ClientError`]s, with the daemon's
//! own message for error answers. Archives (`load`, `save`, `import`)
//! stream in both directions, never whole in memory; so do container logs,
//! stats and events ([`StatsStream`], [`EventStream`]).
//! `attach` and `exec start` hijack the connection ([`Attached`]): the
//! container's output comes one way ([`OutputStream`], demultiplexed unless
//! it has a tty) and its stdin goes the other ([`InputWriter`]).
//!
//! Async on tokio; a command-line caller runs it on a current-thread runtime,
//! which starts in well under a millisecond.

mod archive;
mod attach;
mod auth;
mod bootstrap;
mod build;
mod container;
mod error;
mod exec;
#[cfg(test)]
mod fake_daemon;
mod host;
mod image;
mod monitor;
mod network;
mod pull;
mod push;
mod query;
mod stream;
mod transport;
mod volume;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use kiln_api_types::{ApiVersion, DiskUsage, ErrorResponse, SystemInfo, Version};

pub use archive::{ArchiveDownload, ExtractOptions, PathStat};
pub use attach::{Attached, InputWriter};
pub use auth::{AuthConfig, LoginOutcome};
pub use bootstrap::BootstrapOptions;
pub use build::{
    secrets_header, spawn_body_writer, BodyStream, BuildMessage, BuildOptions, BuildSecret,
    SECRETS_HEADER,
};
pub use container::{AttachOptions, CommitOptions, ContainerListOptions, LogsOptions, PendingWait};
pub use error::ClientError;
pub use host::{Host, HostError};
pub use image::{split_tag, ImageListOptions, ImportOptions};
pub use monitor::{Change, ChangeKind, EventStream, JsonStream, StatsStream};
pub use pull::{pull_query, PullOptions};
pub use push::{push_query, PushOptions};
pub use stream::{OutputStream, StreamKind};

use transport::RequestBody;

/// The newest API version this client speaks.
pub const API_VERSION: ApiVersion = ApiVersion::new(1, 47);

/// What a ping says about the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ping {
    /// The daemon's newest API version (`Api-Version`), when it says.
    pub api_version: Option<ApiVersion>,
    /// `Ostype`, such as `linux`.
    pub os_type: Option<String>,
    /// `Server`, such as `Kiln/0.1.0 (linux)` or `Docker/28.2.2 (linux)`.
    pub server: Option<String>,
}

/// A connection target with a negotiated API version. Each request opens its
/// own connection (a unix socket connect costs microseconds).
#[derive(Debug, Clone)]
pub struct Client {
    host: Host,
    api_version: ApiVersion,
    ping: Ping,
}

impl Client {
    /// Ping `host` and negotiate the API version.
    pub async fn connect(host: Host) -> Result<Client, ClientError> {
        let ping = ping(&host).await?;
        let api_version = negotiate(ping.api_version);
        tracing::debug!(host = %host, api_version = %api_version, "connected");
        Ok(Client { host, api_version, ping })
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The version requests are sent as.
    pub fn api_version(&self) -> ApiVersion {
        self.api_version
    }

    /// What the daemon said when we connected.
    pub fn server_ping(&self) -> &Ping {
        &self.ping
    }

    /// `GET /version`.
    pub async fn version(&self) -> Result<Version, ClientError> {
        self.get_json("/version").await
    }

    /// `GET /info`.
    pub async fn info(&self) -> Result<SystemInfo, ClientError> {
        self.get_json("/info").await
    }

    /// `GET /system/df`.
    pub async fn disk_usage(&self) -> Result<DiskUsage, ClientError> {
        self.get_json("/system/df").await
    }

    /// `path` with the negotiated version in front.
    fn versioned(&self, path: &str) -> String {
        format!("/v{}{path}", self.api_version)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self.call(Method::GET, path).await?;
        self.decode(path, &body)
    }

    /// A bodiless request; the answer's body, or the daemon's error.
    async fn call(&self, method: Method, path: &str) -> Result<Bytes, ClientError> {
        let (status, _, body) = transport::send(&self.host, method, &self.versioned(path)).await?;
        check_status(status, &body)?;
        Ok(body)
    }

    /// Send a request and return the answer as soon as its head arrives,
    /// its body still streaming. An error answer is read whole and returned
    /// as the daemon's error.
    async fn open(
        &self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: RequestBody,
    ) -> Result<Response<Incoming>, ClientError> {
        let versioned = self.versioned(path);
        let response = transport::send_with(&self.host, method, &versioned, headers, body).await?;
        let status = response.status();
        if status.is_success()
            || status == StatusCode::SWITCHING_PROTOCOLS
            || status == StatusCode::NOT_MODIFIED
        {
            return Ok(response);
        }
        let bytes = self.read_body(response.into_body()).await?;
        Err(api_error(status, &bytes))
    }

    /// A JSON request body; the answer's body.
    async fn call_json(
        &self,
        method: Method,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<Bytes, ClientError> {
        let body = transport::json_body(path, body)?;
        let response = self.open(method, path, &transport::json_headers(), body).await?;
        self.read_body(response.into_body()).await
    }

    /// A whole answer body.
    async fn read_body(&self, body: Incoming) -> Result<Bytes, ClientError> {
        body.collect()
            .await
            .map(|collected| collected.to_bytes())
            .map_err(|source| ClientError::Http { host: self.host.clone(), source })
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Bytes,
    ) -> Result<T, ClientError> {
        serde_json::from_slice(body)
            .map_err(|source| ClientError::Decode { path: self.versioned(path), source })
    }
}

/// The version to speak with a daemon whose newest is `server`.
fn negotiate(server: Option<ApiVersion>) -> ApiVersion {
    server.map_or(API_VERSION, |server| server.min(API_VERSION))
}

async fn ping(host: &Host) -> Result<Ping, ClientError> {
    let (status, headers, body) = transport::send(host, Method::GET, "/_ping").await?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let ping = Ping {
        api_version: header("api-version").and_then(|v| v.parse().ok()),
        os_type: header("ostype"),
        server: header("server"),
    };
    // A daemon that refuses the ping may still say its version (as dockerd
    // does with a too-old client); only a silent refusal is an error.
    if ping.api_version.is_none() {
        check_status(status, &body)?;
    }
    Ok(ping)
}

/// An error answer → [`ClientError::Api`] with the daemon's message.
fn check_status(status: StatusCode, body: &Bytes) -> Result<(), ClientError> {
    // docker-compat: `304 Not Modified` (start a running container, stop a
    // stopped one) is success, as the docker client takes it.
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        return Ok(());
    }
    Err(api_error(status, body))
}

/// The daemon's error from an error answer's body.
fn api_error(status: StatusCode, body: &Bytes) -> ClientError {
    let message = serde_json::from_slice::<ErrorResponse>(body)
        .map(|e| e.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).trim().to_owned());
    ClientError::Api { status, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_takes_the_lower_version() {
        assert_eq!(negotiate(Some(ApiVersion::new(1, 41))), ApiVersion::new(1, 41));
        assert_eq!(negotiate(Some(ApiVersion::new(1, 50))), API_VERSION);
        assert_eq!(negotiate(None), API_VERSION);
    }

    #[test]
    fn error_answers_carry_the_daemons_message() {
        let body = Bytes::from_static(br#"{"message":"no such image: x"}"#);
        let err = check_status(StatusCode::NOT_FOUND, &body).expect_err("404");
        assert_eq!(err.to_string(), "no such image: x");
        assert!(err.is_not_found());
        assert!(check_status(StatusCode::NOT_MODIFIED, &Bytes::new()).is_ok());
        let err = check_status(StatusCode::BAD_GATEWAY, &Bytes::from_static(b"proxy says no\n"))
            .expect_err("502");
        assert_eq!(err.to_string(), "proxy says no");
        assert!(check_status(StatusCode::OK, &Bytes::new()).is_ok());
    }
}
