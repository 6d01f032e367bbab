//! Daemon addresses: `unix:///run/kiln/kiln.sock`, `tcp://127.0.0.1:2375`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A unix socket path.
    Unix(PathBuf),
    /// `host:port` over plain TCP.
    Tcp(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("invalid host {text:?}: expected unix:///PATH or tcp://HOST:PORT")]
    Scheme { text: String },
    #[error("invalid host {text:?}: the socket path must be absolute")]
    RelativePath { text: String },
    #[error("invalid host {text:?}: expected tcp://HOST:PORT")]
    TcpAddr { text: String },
}

impl FromStr for Host {
    type Err = HostError;

    fn from_str(text: &str) -> Result<Host, HostError> {
        if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(HostError::RelativePath { text: text.to_owned() });
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        // docker-compat: DOCKER_HOST also takes http:// for plain TCP.
        if let Some(addr) = text.strip_prefix("tcp://").or_else(|| text.strip_prefix("http://")) {
            let addr = addr.trim_end_matches('/');
            let valid = addr
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                return Err(HostError::TcpAddr { text: text.to_owned() });
            }
            return Ok(Host::Tcp(addr.to_owned()));
        }
        Err(HostError::Scheme { text: text.to_owned() })
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Unix(path) => write!(f, "unix://{}", path.display()),
            Host::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_and_print_back() {
        for text in ["unix:///run/kiln/kiln.sock", "tcp://127.0.0.1:2375", "tcp://[::1]:2375"] {
            assert_eq!(text.parse::<Host>().expect(text).to_string(), text);
        }
        assert_eq!("http://localhost:80".parse(), Ok(Host::Tcp("localhost:80".into())));
        assert!(matches!("unix://rel.sock".parse::<Host>(), Err(HostError::RelativePath { .. })));
        assert!(matches!("tcp://127.0.0.1".parse::<Host>(), Err(HostError::TcpAddr { .. })));
        assert!(matches!("ssh://me@box".parse::<Host>(), Err(HostError::Scheme { .. })));
    }
}
