//! `kiln daemon`: settings from flags and daemon.json, then the main loop.
//!
//! Precedence, per setting: flag (or its environment variable) → daemon.json
//! → default. daemon.json takes Docker's keys where they apply: `data-root`,
//! `exec-root`, `hosts`, `debug`; other keys are ignored (and logged at
//! debug level), so a Docker daemon.json can be reused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_engine::{Config, Engine, OpenError};
use kiln_types::{ErrorKind, HasKind};

use crate::listen::{ListenAddr, ListenAddrError, ListenError};
use crate::route::Api;
use crate::server::Server;

/// The default configuration file.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/kiln/daemon.json";

/// The API socket's file name inside the exec-root.
pub const SOCKET_NAME: &str = "kiln.sock";

/// The keys of daemon.json that Kiln reads.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct ConfigFile {
    #[serde(rename = "data-root")]
    pub data_root: Option<PathBuf>,
    #[serde(rename = "exec-root")]
    pub exec_root: Option<PathBuf>,
    pub hosts: Option<Vec<String>>,
    pub debug: Option<bool>,
    /// Keys Kiln does not use.
    #[serde(flatten)]
    pub ignored: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read configuration file {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration file {}", .path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl ConfigFile {
    /// Read `path`; a missing file is an empty configuration unless
    /// `must_exist` (the user named it).
    pub fn load(path: &Path, must_exist: bool) -> Result<ConfigFile, ConfigFileError> {
        match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => Ok(ConfigFile::default()),
            Ok(text) => serde_json::from_str(&text)
                .map_err(|source| ConfigFileError::Parse { path: path.to_owned(), source }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                Ok(ConfigFile::default())
            }
            Err(source) => Err(ConfigFileError::Read { path: path.to_owned(), source }),
        }
    }
}

/// What the command line says; `None` and empty mean "not given".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub hosts: Vec<String>,
    pub debug: bool,
}

/// The daemon's resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub engine: Config,
    pub hosts: Vec<ListenAddr>,
}

impl Settings {
    /// Merge flags over the file over defaults. With no host anywhere, the
    /// API listens on `<exec-root>/kiln.sock`.
    pub fn resolve(flags: Flags, file: &ConfigFile) -> Result<Settings, ListenAddrError> {
        let root = flags
            .root
            .or_else(|| file.data_root.clone())
            .unwrap_or_else(|| Config::DEFAULT_ROOT.into());
        let exec_root = flags
            .exec_root
            .or_else(|| file.exec_root.clone())
            .unwrap_or_else(|| Config::DEFAULT_EXEC_ROOT.into());
        let host_texts = if flags.hosts.is_empty() {
            file.hosts.clone().unwrap_or_default()
        } else {
            flags.hosts
        };
        let mut hosts =
            host_texts.iter().map(|h| h.parse()).collect::<Result<Vec<ListenAddr>, _>>()?;
        if hosts.is_empty() {
            hosts.push(ListenAddr::Unix(exec_root.join(SOCKET_NAME)));
        }
        let mut engine = Config::new(root, exec_root);
        engine.debug = flags.debug || file.debug.unwrap_or(false);
        Ok(Settings { engine, hosts })
    }
}

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Engine(#[from] OpenError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("cannot watch for signals")]
    Signals(#[source] std::io::Error),
}

impl HasKind for DaemonError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Engine(err) => err.kind(),
            Self::Listen(err) => err.kind(),
            Self::Signals(_) => ErrorKind::Internal,
        }
    }
}

/// Open the engine, serve the API on every host until SIGTERM or SIGINT,
/// then shut down cleanly. Runs inside a tokio runtime.
pub async fn run(settings: Settings) -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    // Watch signals first, so that a SIGTERM during start-up is not fatal.
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let engine = Arc::new(Engine::open(settings.engine)?);
    // Containers that ran before a restart: reconnect to their shims.
    engine.containers().recover().await;
    let server = Server::bind(Api::new(Arc::clone(&engine)), &settings.hosts)?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), pid = std::process::id(), "daemon started");
    server
        .serve(async {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "stopping");
        })
        .await;
    drop(engine);
    tracing::info!("daemon stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file: ConfigFile = serde_json::from_str(
            r#"{"data-root":"/data/kiln","exec-root":"/run/k","hosts":["tcp://127.0.0.1:2375"],"debug":true,"log-driver":"local"}"#,
        )
        .expect("parse");
        assert_eq!(file.ignored.keys().collect::<Vec<_>>(), ["log-driver"]);

        let from_file = Settings::resolve(Flags::default(), &file).expect("resolve");
        assert_eq!(from_file.engine.root, Path::new("/data/kiln"));
        assert_eq!(from_file.engine.exec_root, Path::new("/run/k"));
        assert!(from_file.engine.debug);
        assert_eq!(from_file.hosts, ["tcp://127.0.0.1:2375".parse().expect("addr")]);

        let flags = Flags {
            root: Some("/r".into()),
            hosts: vec!["unix:///s.sock".into()],
            ..Flags::default()
        };
        let from_flags = Settings::resolve(flags, &file).expect("resolve");
        assert_eq!(from_flags.engine.root, Path::new("/r"));
        assert_eq!(from_flags.hosts, [ListenAddr::Unix("/s.sock".into())]);
    }

    #[test]
    fn without_hosts_the_socket_is_in_the_exec_root() {
        let settings =
            Settings::resolve(Flags::default(), &ConfigFile::default()).expect("resolve");
        assert_eq!(settings.engine.root, Path::new("/var/lib/kiln"));
        assert_eq!(settings.hosts, [ListenAddr::Unix("/run/kiln/kiln.sock".into())]);
        let flags = Flags { exec_root: Some("/tmp/e".into()), ..Flags::default() };
        let settings = Settings::resolve(flags, &ConfigFile::default()).expect("resolve");
        assert_eq!(settings.hosts, [ListenAddr::Unix("/tmp/e/kiln.sock".into())]);
    }

    #[test]
    fn a_missing_default_file_is_empty_but_a_named_one_is_an_error() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let missing = dir.path().join("daemon.json");
        assert_eq!(ConfigFile::load(&missing, false).expect("empty"), ConfigFile::default());
        assert!(matches!(ConfigFile::load(&missing, true), Err(ConfigFileError::Read { .. })));
        std::fs::write(&missing, "{nope").expect("write");
        assert!(matches!(ConfigFile::load(&missing, false), Err(ConfigFileError::Parse { .. })));
    }
}
