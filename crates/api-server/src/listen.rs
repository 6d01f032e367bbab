//! Where the API listens: `unix:///run/kiln/kiln.sock`, `tcp://127.0.0.1:2375`.

use std::fmt;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use kiln_types::{ErrorKind, HasKind};

/// A listen address, parsed from `-H` or daemon.json's `hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenAddrError {
    #[error("invalid listen address {text:?}: expected unix:///PATH or tcp://IP:PORT")]
    Scheme { text: String },
    #[error("invalid listen address {text:?}: the socket path must be absolute")]
    RelativePath { text: String },
    #[error("invalid listen address {text:?}: expected tcp://IP:PORT")]
    TcpAddr { text: String },
}

impl FromStr for ListenAddr {
    type Err = ListenAddrError;

    fn from_str(text: &str) -> Result<ListenAddr, ListenAddrError> {
        if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(ListenAddrError::RelativePath { text: text.to_owned() });
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = text.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            let addr = match addr.strip_prefix("localhost:") {
                Some(port) => format!("127.0.0.1:{port}"),
                None => addr.to_owned(),
            };
            return addr
                .parse()
                .map(ListenAddr::Tcp)
                .map_err(|_| ListenAddrError::TcpAddr { text: text.to_owned() });
        }
        Err(ListenAddrError::Scheme { text: text.to_owned() })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Unix(path) => write!(f, "unix://{}", path.display()),
            ListenAddr::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// Why a listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("another daemon is serving {}", .path.display())]
    SocketInUse { path: PathBuf },
    #[error("{} exists and is not a socket", .path.display())]
    NotASocket { path: PathBuf },
    #[error("cannot create socket directory {}", .path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove stale socket {}", .path.display())]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: ListenAddr,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for ListenError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::SocketInUse { .. } => ErrorKind::Conflict,
            Self::NotASocket { .. } => ErrorKind::InvalidArgument,
            Self::CreateDir { .. } | Self::RemoveStale { .. } | Self::Bind { .. } => {
                ErrorKind::Internal
            }
        }
    }
}

/// A bound listener.
#[derive(Debug)]
pub(crate) enum Listener {
    Unix { listener: tokio::net::UnixListener, path: PathBuf },
    Tcp { listener: tokio::net::TcpListener, addr: SocketAddr },
}

/// Socket files are readable and writable by owner and group, as dockerd's.
const SOCKET_MODE: u32 = 0o660;

impl Listener {
    /// Bind `addr`. A leftover socket file that nobody answers on (a daemon
    /// that was killed) is replaced; one that answers is refused.
    pub(crate) fn bind(addr: &ListenAddr) -> Result<Listener, ListenError> {
        let bind_err = |source| ListenError::Bind { addr: addr.clone(), source };
        match addr {
            ListenAddr::Unix(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|source| ListenError::CreateDir {
                        path: dir.to_owned(),
                        source,
                    })?;
                }
                remove_stale_socket(path)?;
                let listener = tokio::net::UnixListener::bind(path).map_err(bind_err)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
                    .map_err(bind_err)?;
                Ok(Listener::Unix { listener, path: path.clone() })
            }
            ListenAddr::Tcp(socket_addr) => {
                let std_listener = std::net::TcpListener::bind(socket_addr).map_err(bind_err)?;
                std_listener.set_nonblocking(true).map_err(bind_err)?;
                let addr = std_listener.local_addr().map_err(bind_err)?;
                let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind_err)?;
                Ok(Listener::Tcp { listener, addr })
            }
        }
    }

    /// The address actually bound (a TCP port 0 becomes the real port).
    pub(crate) fn addr(&self) -> ListenAddr {
        match self {
            Listener::Unix { path, .. } => ListenAddr::Unix(path.clone()),
            Listener::Tcp { addr, .. } => ListenAddr::Tcp(*addr),
        }
    }
}

fn remove_stale_socket(path: &Path) -> Result<(), ListenError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotASocket { path: path.to_owned() });
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ListenError::SocketInUse { path: path.to_owned() });
    }
    tracing::info!(path = %path.display(), "removing stale socket");
    std::fs::remove_file(path)
        .map_err(|source| ListenError::RemoveStale { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse() {
        assert_eq!(
            "unix:///run/kiln/kiln.sock".parse(),
            Ok(ListenAddr::Unix("/run/kiln/kiln.sock".into()))
        );
        assert_eq!(
            "tcp://127.0.0.1:2375".parse(),
            Ok(ListenAddr::Tcp("127.0.0.1:2375".parse().expect("addr")))
        );
        assert_eq!(
            "tcp://localhost:80".parse::<ListenAddr>().map(|a| a.to_string()),
            Ok("tcp://127.0.0.1:80".to_owned())
        );
        assert!(matches!(
            "unix://kiln.sock".parse::<ListenAddr>(),
            Err(ListenAddrError::RelativePath { .. })
        ));
        assert!(matches!(
            "tcp://nohost".parse::<ListenAddr>(),
            Err(ListenAddrError::TcpAddr { .. })
        ));
        assert!(matches!("fd://".parse::<ListenAddr>(), Err(ListenAddrError::Scheme { .. })));
    }
}
