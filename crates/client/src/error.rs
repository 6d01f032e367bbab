//! What can go wrong talking to a daemon.

use http::StatusCode;

use crate::host::Host;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the host (no socket, refused, unreachable).
    #[error("cannot connect to the Kiln daemon at {host}: is it running?")]
    Connect {
        host: Host,
        #[source]
        source: std::io::Error,
    },
    /// The connection broke or the answer was not HTTP.
    #[error("cannot talk to the daemon at {host}")]
    Http {
        host: Host,
        #[source]
        source: hyper::Error,
    },
    /// The daemon answered with an error; the message is its own.
    #[error("{message}")]
    Api { status: StatusCode, message: String },
    /// The daemon reported an error inside a message stream (load, import).
    #[error("{message}")]
    Stream { message: String },
    /// Writing what the daemon sent (a saved archive) failed.
    #[error("cannot write the output")]
    Output {
        #[source]
        source: std::io::Error,
    },
    /// The answer did not have the expected shape.
    #[error("cannot decode the answer to {path}")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot build a request for {path}")]
    Request {
        path: String,
        #[source]
        source: http::Error,
    },
    #[error("cannot encode the request body for {path}")]
    Encode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The daemon answered `101` but the connection could not be taken over.
    #[error("cannot take over the connection to the daemon at {host}")]
    Upgrade {
        host: Host,
        #[source]
        source: hyper::Error,
    },
    /// The daemon answered an attach with `200` instead of `101`: its output
    /// can be read, but nothing can be sent to the container.
    #[error("the daemon did not upgrade the connection: input cannot be sent")]
    NotUpgraded,
    /// Reading a hijacked connection failed.
    #[error("cannot read from the attached connection")]
    Read {
        #[source]
        source: std::io::Error,
    },
    /// Writing a hijacked connection (the container's stdin) failed.
    #[error("cannot write to the attached connection")]
    Write {
        #[source]
        source: std::io::Error,
    },
    /// The daemon answered with a status that carries no stream.
    #[error("unexpected answer {status} to {path}")]
    UnexpectedStatus { path: String, status: StatusCode },
    /// A multiplexed stream ended in the middle of a frame header.
    #[error("the output stream ended inside a frame header ({got} of 8 bytes)")]
    TruncatedHeader { got: usize },
    /// A multiplexed stream ended before a frame's payload did.
    #[error("the output stream ended {missing} bytes before the end of a frame")]
    TruncatedFrame { missing: usize },
    /// A multiplexed frame named a stream that does not exist.
    #[error("unknown stream type {kind} in a multiplexed output stream")]
    UnknownStream { kind: u8 },
}

impl ClientError {
    /// True when nothing answered at all: the daemon is not running there.
    pub fn is_connect(&self) -> bool {
        matches!(self, ClientError::Connect { .. })
    }

    /// True when the daemon said the object does not exist (`404`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}
