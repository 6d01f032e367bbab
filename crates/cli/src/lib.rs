//! Kiln's Docker-compatible commands (`kiln version`, `kiln info`,
//! `kiln images`, `kiln load`, …).
//!
//! Every command is an API client: it finds the daemon ([`target`]), talks
//! to it through `kiln-client` and prints what the API says in Docker's
//! shapes, text or `--format`. When the default socket does not answer and
//! the user may run the daemon, the daemon is started first ([`autostart`]),
//! so a fresh machine needs no set-up step. This crate never sees the engine.

pub mod autostart;
mod disk_usage;
mod format;
mod image_archive;
mod image_inspect;
mod image_list;
mod image_tag;
mod info;
mod output;
pub mod target;
mod version;

use std::process::ExitCode;

use clap::{Args, Subcommand};
use kiln_client::{Client, ClientError};

/// Options of `kiln` before the command.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Daemon socket to connect to (unix:///PATH or tcp://HOST:PORT); no
    /// daemon is started for you when it is given
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub host: Option<String>,
}

/// The Docker verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the Kiln version information
    Version(version::VersionArgs),
    /// Display system-wide information
    Info(info::InfoArgs),
    /// List images
    Images(image_list::ListArgs),
    /// Manage images
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Show the history of an image
    History(image_inspect::HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(image_tag::TagArgs),
    /// Remove one or more images
    Rmi(image_tag::RemoveArgs),
    /// Manage Kiln
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
    /// Load an image from a tar archive or STDIN
    Load(image_archive::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(image_archive::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(image_archive::ImportArgs),
}

/// `kiln system …`.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage
    Df(disk_usage::DiskUsageArgs),
    /// Display system-wide information
    Info(info::InfoArgs),
}

/// `kiln image …`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(image_list::ListArgs),
    /// Display detailed information on one or more images
    Inspect(image_inspect::InspectArgs),
    /// Show the history of an image
    History(image_inspect::HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(image_tag::TagArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(image_tag::RemoveArgs),
    /// Load an image from a tar archive or STDIN
    Load(image_archive::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(image_archive::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(image_archive::ImportArgs),
    /// Remove unused images
    Prune(image_tag::PruneArgs),
}

/// Help text on where the CLI looks for the daemon, for `kiln --help`.
pub const ENVIRONMENT_HELP: &str = "\
Environment:
  KILN_HOST        daemon to connect to (as --host)
  DOCKER_HOST      used when it names a kiln socket (a unix:// path containing \"kiln\")
  KILN_EXEC_ROOT   runtime-state dir (default /run/kiln); the default socket is
                   $KILN_EXEC_ROOT/kiln.sock, and a daemon started for you uses it
  KILN_ROOT        state dir of a daemon started for you (default /var/lib/kiln)
When the default socket does not answer and you may write the runtime-state
dir (as root), `kiln` starts `kiln daemon` in the background, logging to
$KILN_EXEC_ROOT/daemon.log, and waits for it.";

/// Run a command and return the process exit code (0, or 1 on error as the
/// docker CLI does). Errors are printed to stderr.
pub fn run(global: &GlobalArgs, command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("Error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Version(args) => version::run(global, &args).await,
            Command::Info(args) | Command::System { command: SystemCommand::Info(args) } => {
                info::run(global, &args).await
            }
            Command::System { command: SystemCommand::Df(args) } => {
                disk_usage::run(global, &args).await
            }
            Command::Images(args) | Command::Image { command: ImageCommand::Ls(args) } => {
                image_list::run(global, &args).await
            }
            Command::Image { command: ImageCommand::Inspect(args) } => {
                image_inspect::inspect(global, &args).await
            }
            Command::History(args) | Command::Image { command: ImageCommand::History(args) } => {
                image_inspect::history(global, &args).await
            }
            Command::Tag(args) | Command::Image { command: ImageCommand::Tag(args) } => {
                image_tag::tag(global, &args).await
            }
            Command::Rmi(args) | Command::Image { command: ImageCommand::Rm(args) } => {
                image_tag::remove(global, &args).await
            }
            Command::Load(args) | Command::Image { command: ImageCommand::Load(args) } => {
                image_archive::load(global, &args).await
            }
            Command::Save(args) | Command::Image { command: ImageCommand::Save(args) } => {
                image_archive::save(global, &args).await
            }
            Command::Import(args) | Command::Image { command: ImageCommand::Import(args) } => {
                image_archive::import(global, &args).await
            }
            Command::Image { command: ImageCommand::Prune(args) } => {
                image_tag::prune(global, &args).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", error_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// One line for the terminal, Docker's way: the daemon's own message after
/// "Error response from daemon:", anything else as "Error:" and its causes.
pub(crate) fn error_line(err: &anyhow::Error) -> String {
    match err.downcast_ref::<ClientError>() {
        Some(ClientError::Api { message, .. } | ClientError::Stream { message }) => {
            format!("Error response from daemon: {message}")
        }
        Some(connect @ ClientError::Connect { source, .. }) => {
            format!("Error: {connect} ({})", connect_reason(source))
        }
        _ => format!("Error: {err:#}"),
    }
}

/// Why a connect failed, in a few lower-case words.
fn connect_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such socket".to_owned(),
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

/// Connect to the daemon the user means, starting it when that is allowed.
pub(crate) async fn connect(global: &GlobalArgs) -> anyhow::Result<Client> {
    let target = target::select(global.host.as_deref(), &target::Env::from_process())?;
    match Client::connect(target.host.clone()).await {
        Ok(client) => Ok(client),
        Err(err) if err.is_connect() => match &target.autostart {
            Some(plan) if autostart::may_start(plan) => {
                Ok(autostart::start_and_connect(plan, &target.host).await?)
            }
            _ => Err(err.into()),
        },
        Err(err) => Err(err.into()),
    }
}
