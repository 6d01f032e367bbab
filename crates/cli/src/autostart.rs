//! Starting `kiln daemon` for the user when the default socket is silent.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_client::{Client, ClientError, Host};

use crate::target::AutostartPlan;

/// How long to wait for a started daemon to answer.
const WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

/// The log of a daemon started here.
pub fn log_path(plan: &AutostartPlan) -> PathBuf {
    plan.exec_root.join("daemon.log")
}

#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    #[error("cannot find the kiln executable to start the daemon")]
    Executable(#[source] std::io::Error),
    #[error("cannot create {}", .path.display())]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start kiln daemon")]
    Spawn(#[source] std::io::Error),
    #[error("kiln daemon exited ({status}) before it answered; see {}", .log.display())]
    Exited { status: std::process::ExitStatus, log: PathBuf },
    #[error("kiln daemon did not answer at {host} within {}s; see {}", WAIT.as_secs(), .log.display())]
    Timeout { host: Host, log: PathBuf },
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Whether this user may run the daemon: root, or able to write the
/// runtime-state dir (or, when missing, its nearest existing parent).
pub fn may_start(plan: &AutostartPlan) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let existing = plan.exec_root.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// Start `kiln daemon` detached (its own session, output to
/// `<exec-root>/daemon.log`), wait until it answers at `host`, and connect.
pub async fn start_and_connect(
    plan: &AutostartPlan,
    host: &Host,
) -> Result<Client, AutostartError> {
    let log = log_path(plan);
    let mut child = spawn(plan, host, &log)?;
    tracing::debug!(pid = child.id(), log = %log.display(), "started kiln daemon");
    let deadline = Instant::now() + WAIT;
    loop {
        match Client::connect(host.clone()).await {
            Ok(client) => return Ok(client),
            Err(err) if !err.is_connect() => return Err(err.into()),
            Err(_) => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(AutostartError::Exited { status, log });
        }
        if Instant::now() >= deadline {
            return Err(AutostartError::Timeout { host: host.clone(), log });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn spawn(plan: &AutostartPlan, host: &Host, log: &Path) -> Result<Child, AutostartError> {
    let exe = std::env::current_exe().map_err(AutostartError::Executable)?;
    std::fs::create_dir_all(&plan.exec_root)
        .map_err(|source| AutostartError::Prepare { path: plan.exec_root.clone(), source })?;
    let open_log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| AutostartError::Prepare { path: log.to_owned(), source })
    };
    let (stdout, stderr) = (open_log()?, open_log()?);
    Command::new(exe)
        .arg("daemon")
        .arg("--exec-root")
        .arg(&plan.exec_root)
        .arg("--host")
        .arg(host.to_string())
        .arg("--detach-session")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(AutostartError::Spawn)
}
