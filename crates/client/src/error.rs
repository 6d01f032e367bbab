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
}

impl ClientError {
    /// True when nothing answered at all: the daemon is not running there.
    pub fn is_connect(&self) -> bool {
        matches!(self, ClientError::Connect { .. })
    }
}
