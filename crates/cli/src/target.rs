//! Which daemon a command talks to.
//!
//! `--host`, else `KILN_HOST`, else `DOCKER_HOST` when it names a kiln socket
//! (a `unix://` path containing "kiln"), else `$KILN_EXEC_ROOT/kiln.sock`
//! (`/run/kiln/kiln.sock`). Only the last may start a daemon.

use std::path::PathBuf;

use kiln_client::{Host, HostError};

/// The default runtime-state dir of the daemon.
pub const DEFAULT_EXEC_ROOT: &str = "/run/kiln";

/// The environment variables that pick the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    pub kiln_host: Option<String>,
    pub docker_host: Option<String>,
    pub exec_root: Option<PathBuf>,
}

impl Env {
    pub fn from_process() -> Env {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Env {
            kiln_host: var("KILN_HOST"),
            docker_host: var("DOCKER_HOST"),
            exec_root: var("KILN_EXEC_ROOT").map(PathBuf::from),
        }
    }
}

/// How to start the daemon for the default socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutostartPlan {
    /// `--exec-root` of the daemon to start; the socket is in it.
    pub exec_root: PathBuf,
}

/// The chosen daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: Host,
    /// Set only for the default socket.
    pub autostart: Option<AutostartPlan>,
}

/// Pick the daemon from the `--host` flag and the environment.
pub fn select(flag: Option<&str>, env: &Env) -> Result<Target, HostError> {
    let explicit = flag
        .or(env.kiln_host.as_deref())
        .map(str::to_owned)
        .or_else(|| env.docker_host.clone().filter(|h| names_kiln_socket(h)));
    if let Some(text) = explicit {
        return Ok(Target { host: text.parse()?, autostart: None });
    }
    if let Some(ignored) = &env.docker_host {
        tracing::debug!(docker_host = %ignored, "ignoring DOCKER_HOST: it does not name a kiln socket");
    }
    let exec_root = env.exec_root.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_EXEC_ROOT));
    Ok(Target {
        host: Host::Unix(exec_root.join("kiln.sock")),
        autostart: Some(AutostartPlan { exec_root }),
    })
}

fn names_kiln_socket(docker_host: &str) -> bool {
    docker_host.strip_prefix("unix://").is_some_and(|path| path.contains("kiln"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(kiln: Option<&str>, docker: Option<&str>) -> Env {
        Env {
            kiln_host: kiln.map(Into::into),
            docker_host: docker.map(Into::into),
            exec_root: None,
        }
    }

    #[test]
    fn the_flag_wins_then_kiln_host_then_a_kiln_docker_host() {
        let e = env(Some("unix:///k.sock"), Some("unix:///run/kiln/x.sock"));
        let t = select(Some("tcp://127.0.0.1:1"), &e).expect("flag");
        assert_eq!((t.host, t.autostart), (Host::Tcp("127.0.0.1:1".into()), None));
        assert_eq!(select(None, &e).expect("env").host, Host::Unix("/k.sock".into()));
        let t = select(None, &env(None, Some("unix:///run/kiln/x.sock"))).expect("docker");
        assert_eq!((t.host, t.autostart), (Host::Unix("/run/kiln/x.sock".into()), None));
    }

    #[test]
    fn a_docker_host_for_dockerd_is_ignored() {
        let t = select(None, &env(None, Some("unix:///var/run/docker.sock"))).expect("default");
        assert_eq!(t.host, Host::Unix("/run/kiln/kiln.sock".into()));
        assert_eq!(t.autostart, Some(AutostartPlan { exec_root: "/run/kiln".into() }));
        let t = select(None, &env(None, Some("tcp://kiln:2375"))).expect("default");
        assert!(t.autostart.is_some());
    }

    #[test]
    fn the_default_socket_follows_kiln_exec_root() {
        let e = Env { exec_root: Some("/tmp/e".into()), ..Env::default() };
        let t = select(None, &e).expect("default");
        assert_eq!(t.host, Host::Unix("/tmp/e/kiln.sock".into()));
        assert_eq!(t.autostart, Some(AutostartPlan { exec_root: "/tmp/e".into() }));
    }

    #[test]
    fn a_bad_host_is_an_error() {
        assert!(select(Some("unix://relative"), &Env::default()).is_err());
    }
}
