//! Kiln's Docker-compatible commands (`kiln version`, `kiln info`,
//! `kiln images`, `kiln load`, `kiln ps`, `kiln logs`, `kiln stats`,
//! `kiln events`, …).
//!
//! Every command is an API client: it finds the daemon ([`target`]), talks
//! to it through `kiln-client` and prints what the API says in Docker's
//! shapes, text or `--format`. When the default socket does not answer and
//! the user may run the daemon, the daemon is started first ([`autostart`]),
//! so a fresh machine needs no set-up step. This crate never sees the engine.

pub mod autostart;
mod container_commit;
mod container_cp;
mod container_create;
mod container_exec;
mod container_export;
mod container_inspect;
mod container_list;
mod container_logs;
mod container_ops;
mod container_run;
mod credential_helper;
mod disk_usage;
mod docker_config;
mod format;
mod image_archive;
mod image_bootstrap;
mod image_build;
mod image_inspect;
mod image_list;
mod image_pull;
mod image_push;
mod image_tag;
mod info;
mod login;
mod monitor;
mod network;
mod output;
pub mod target;
mod terminal;
mod transfer_progress;
mod version;
mod volume;

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
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        command: VolumeCommand,
    },
    /// Manage networks
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// List port mappings or a specific mapping for the container
    Port(network::PortArgs),
    /// Build an image from a Dockerfile
    Build(Box<image_build::BuildArgs>),
    /// Download an image from a registry
    Pull(image_pull::PullArgs),
    /// Upload an image to a registry
    Push(image_push::PushArgs),
    /// Log in to a registry
    Login(login::LoginArgs),
    /// Log out from a registry
    Logout(login::LogoutArgs),
    /// Load an image from a tar archive or STDIN
    Load(image_archive::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(image_archive::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(image_archive::ImportArgs),
    /// Manage containers
    Container {
        #[command(subcommand)]
        command: ContainerCommand,
    },
    /// Create and run a new container from an image
    Run(container_run::RunArgs),
    /// Create a new container
    Create(container_run::CreateArgs),
    /// Start one or more stopped containers
    Start(container_run::StartArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(container_run::AttachArgs),
    /// Execute a command in a running container
    Exec(container_exec::ExecArgs),
    /// List containers
    Ps(container_list::ListArgs),
    /// Return low-level information on Kiln objects
    Inspect(container_inspect::InspectArgs),
    /// Stop one or more running containers
    Stop(container_ops::StopArgs),
    /// Restart one or more containers
    Restart(container_ops::StopArgs),
    /// Kill one or more running containers
    Kill(container_ops::KillArgs),
    /// Remove one or more containers
    Rm(container_ops::RemoveArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container_ops::ContainersArgs),
    /// Pause all processes within one or more containers
    Pause(container_ops::ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(container_ops::ContainersArgs),
    /// Rename a container
    Rename(container_ops::RenameArgs),
    /// Display the running processes of a container
    Top(container_ops::TopArgs),
    /// Fetch the logs of a container
    Logs(container_logs::LogsArgs),
    /// Export a container's filesystem as a tar archive
    Export(container_export::ExportArgs),
    /// Create a new image from a container's changes
    Commit(container_commit::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(container_cp::CpArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(monitor::StatsArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(monitor::DiffArgs),
    /// Get real time events from the server
    Events(monitor::EventsArgs),
}

/// `kiln container …`.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create and run a new container from an image
    Run(container_run::RunArgs),
    /// Create a new container
    Create(container_run::CreateArgs),
    /// Start one or more stopped containers
    Start(container_run::StartArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(container_run::AttachArgs),
    /// Execute a command in a running container
    Exec(container_exec::ExecArgs),
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(container_list::ListArgs),
    /// Display detailed information on one or more containers
    Inspect(container_inspect::ContainerInspectArgs),
    /// Stop one or more running containers
    Stop(container_ops::StopArgs),
    /// Restart one or more containers
    Restart(container_ops::StopArgs),
    /// Kill one or more running containers
    Kill(container_ops::KillArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(container_ops::RemoveArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container_ops::ContainersArgs),
    /// Pause all processes within one or more containers
    Pause(container_ops::ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(container_ops::ContainersArgs),
    /// Rename a container
    Rename(container_ops::RenameArgs),
    /// Display the running processes of a container
    Top(container_ops::TopArgs),
    /// Fetch the logs of a container
    Logs(container_logs::LogsArgs),
    /// Export a container's filesystem as a tar archive
    Export(container_export::ExportArgs),
    /// Create a new image from a container's changes
    Commit(container_commit::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(container_cp::CpArgs),
    /// List port mappings or a specific mapping for the container
    Port(network::PortArgs),
    /// Remove all stopped containers
    Prune(container_ops::PruneArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(monitor::StatsArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(monitor::DiffArgs),
}

/// `kiln system …`.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage
    Df(disk_usage::DiskUsageArgs),
    /// Display system-wide information
    Info(info::InfoArgs),
    /// Get real time events from the server
    Events(monitor::EventsArgs),
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
    /// Download an image from a registry
    Pull(image_pull::PullArgs),
    /// Upload an image to a registry
    Push(image_push::PushArgs),
    /// Load an image from a tar archive or STDIN
    Load(image_archive::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(image_archive::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(image_archive::ImportArgs),
    /// Remove unused images
    Prune(image_tag::PruneArgs),
    /// Build a base image from Debian packages with mmdebstrap, reproducibly
    Bootstrap(image_bootstrap::BootstrapArgs),
    /// Build an image from a Dockerfile
    Build(Box<image_build::BuildArgs>),
}

/// `kiln volume …`.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(volume::CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(volume::ListArgs),
    /// Display detailed information on one or more volumes
    Inspect(volume::InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(volume::RemoveArgs),
    /// Remove unused local volumes
    Prune(volume::PruneArgs),
}

/// `kiln network …`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create(network::CreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(network::ListArgs),
    /// Display detailed information on one or more networks
    Inspect(network::InspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(network::RemoveArgs),
    /// Remove all unused networks
    Prune(network::PruneArgs),
    /// Connect a container to a network
    Connect(network::ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(network::DisconnectArgs),
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

/// Run a command and return the process exit code: 0, 1 on error as the
/// docker CLI does, or the container's own for `run`, `start -a`, `attach`
/// and `exec`. Errors are printed to stderr.
pub fn run(global: &GlobalArgs, command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("Error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(global, command));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("{}", error_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// Run one command: the exit code of the verbs that exit with a
/// container's (they print their own errors), 0 for the others' success.
async fn dispatch(global: &GlobalArgs, command: Command) -> anyhow::Result<u8> {
    let plain = {
        match command {
            Command::Run(args) => return Ok(container_run::run(global, &args).await),
            Command::Create(args) => return Ok(container_run::create(global, &args).await),
            Command::Start(args) => return Ok(container_run::start(global, &args).await),
            Command::Attach(args) => return Ok(container_run::attach(global, &args).await),
            Command::Exec(args) => return Ok(container_exec::exec(global, &args).await),
            Command::Container { command } => return run_container(global, command).await,
            Command::Build(args) | Command::Image { command: ImageCommand::Build(args) } => {
                return Ok(image_build::run(global, &args).await)
            }
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
            Command::Pull(args) | Command::Image { command: ImageCommand::Pull(args) } => {
                image_pull::run(global, &args).await
            }
            Command::Push(args) | Command::Image { command: ImageCommand::Push(args) } => {
                image_push::run(global, &args).await
            }
            Command::Login(args) => login::login(global, &args).await,
            Command::Logout(args) => login::logout(&args),
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
            Command::Image { command: ImageCommand::Bootstrap(args) } => {
                image_bootstrap::run(global, &args).await
            }
            Command::Volume { command } => volume::run(global, command).await,
            Command::Network { command } => network::run(global, command).await,
            Command::Port(args) => network::port(global, &args).await,
            Command::Ps(args) => container_list::run(global, &args).await,
            Command::Inspect(args) => container_inspect::inspect(global, &args).await,
            Command::Stop(args) => container_ops::stop(global, &args).await,
            Command::Restart(args) => container_ops::restart(global, &args).await,
            Command::Kill(args) => container_ops::kill(global, &args).await,
            Command::Rm(args) => container_ops::remove(global, &args).await,
            Command::Wait(args) => container_ops::wait(global, &args).await,
            Command::Pause(args) => container_ops::pause(global, &args).await,
            Command::Unpause(args) => container_ops::unpause(global, &args).await,
            Command::Rename(args) => container_ops::rename(global, &args).await,
            Command::Top(args) => container_ops::top(global, &args).await,
            Command::Logs(args) => container_logs::run(global, &args).await,
            Command::Export(args) => container_export::run(global, &args).await,
            Command::Commit(args) => container_commit::run(global, &args).await,
            Command::Cp(args) => container_cp::run(global, &args).await,
            Command::Stats(args) => monitor::stats(global, &args).await,
            Command::Diff(args) => monitor::diff(global, &args).await,
            Command::Events(args) | Command::System { command: SystemCommand::Events(args) } => {
                monitor::events(global, &args).await
            }
        }
    };
    plain.map(|()| 0)
}

/// `kiln container …`.
async fn run_container(global: &GlobalArgs, command: ContainerCommand) -> anyhow::Result<u8> {
    let plain = match command {
        ContainerCommand::Run(args) => return Ok(container_run::run(global, &args).await),
        ContainerCommand::Create(args) => return Ok(container_run::create(global, &args).await),
        ContainerCommand::Start(args) => return Ok(container_run::start(global, &args).await),
        ContainerCommand::Attach(args) => return Ok(container_run::attach(global, &args).await),
        ContainerCommand::Exec(args) => return Ok(container_exec::exec(global, &args).await),
        ContainerCommand::Ls(args) => container_list::run(global, &args).await,
        ContainerCommand::Inspect(args) => {
            container_inspect::inspect_containers(global, &args).await
        }
        ContainerCommand::Stop(args) => container_ops::stop(global, &args).await,
        ContainerCommand::Restart(args) => container_ops::restart(global, &args).await,
        ContainerCommand::Kill(args) => container_ops::kill(global, &args).await,
        ContainerCommand::Rm(args) => container_ops::remove(global, &args).await,
        ContainerCommand::Wait(args) => container_ops::wait(global, &args).await,
        ContainerCommand::Pause(args) => container_ops::pause(global, &args).await,
        ContainerCommand::Unpause(args) => container_ops::unpause(global, &args).await,
        ContainerCommand::Rename(args) => container_ops::rename(global, &args).await,
        ContainerCommand::Top(args) => container_ops::top(global, &args).await,
        ContainerCommand::Logs(args) => container_logs::run(global, &args).await,
        ContainerCommand::Export(args) => container_export::run(global, &args).await,
        ContainerCommand::Commit(args) => container_commit::run(global, &args).await,
        ContainerCommand::Cp(args) => container_cp::run(global, &args).await,
        ContainerCommand::Port(args) => network::port(global, &args).await,
        ContainerCommand::Prune(args) => container_ops::prune(global, &args).await,
        ContainerCommand::Stats(args) => monitor::stats(global, &args).await,
        ContainerCommand::Diff(args) => monitor::diff(global, &args).await,
    };
    plain.map(|()| 0)
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn container_verbs_parse_dockers_flags() {
        let parse = |argv: &[&str]| {
            let mut full = vec!["kiln"];
            full.extend_from_slice(argv);
            Cli::try_parse_from(full).map(|cli| cli.command)
        };
        assert!(matches!(
            parse(&["ps", "-a", "-q", "--filter", "status=exited"]),
            Ok(Command::Ps(_))
        ));
        assert!(matches!(
            parse(&["container", "list", "-n", "2"]),
            Ok(Command::Container { command: ContainerCommand::Ls(_) })
        ));
        assert!(matches!(
            parse(&["stop", "-t", "5", "-s", "SIGINT", "a", "b"]),
            Ok(Command::Stop(_))
        ));
        assert!(matches!(
            parse(&["inspect", "--type", "image", "-f", "{{.Id}}", "x"]),
            Ok(Command::Inspect(_))
        ));
        assert!(parse(&["inspect", "--type", "volume", "x"]).is_err());
        assert!(matches!(
            parse(&["container", "rm", "-fv", "x"]),
            Ok(Command::Container { command: ContainerCommand::Rm(_) })
        ));
        assert!(matches!(
            parse(&["logs", "-f", "-n", "10", "--since", "10m", "c"]),
            Ok(Command::Logs(_))
        ));
        assert!(matches!(parse(&["top", "c", "aux"]), Ok(Command::Top(_))));
        assert!(matches!(
            parse(&["container", "prune", "-f", "--filter", "until=1h"]),
            Ok(Command::Container { command: ContainerCommand::Prune(_) })
        ));
        assert!(parse(&["stop"]).is_err());
        assert!(matches!(
            parse(&["commit", "-a", "me", "-c", "CMD [\"sh\"]", "-m", "msg", "--pause=false", "c"]),
            Ok(Command::Commit(_))
        ));
        assert!(matches!(
            parse(&["container", "commit", "-p", "c", "repo:tag"]),
            Ok(Command::Container { command: ContainerCommand::Commit(_) })
        ));
        assert!(matches!(parse(&["cp", "-aLq", "c:/etc", "-"]), Ok(Command::Cp(_))));
        assert!(matches!(
            parse(&["container", "cp", "-", "c:/tmp"]),
            Ok(Command::Container { command: ContainerCommand::Cp(_) })
        ));
        assert!(parse(&["cp", "only-one"]).is_err());
    }

    #[test]
    fn monitoring_verbs_parse_dockers_flags() {
        let parse = |argv: &[&str]| {
            let mut full = vec!["kiln"];
            full.extend_from_slice(argv);
            Cli::try_parse_from(full).map(|cli| cli.command)
        };
        assert!(matches!(parse(&["stats"]), Ok(Command::Stats(_))));
        assert!(matches!(
            parse(&["stats", "--no-stream", "-a", "--format", "json", "web"]),
            Ok(Command::Stats(_))
        ));
        assert!(matches!(
            parse(&["container", "stats", "--no-trunc", "a", "b"]),
            Ok(Command::Container { command: ContainerCommand::Stats(_) })
        ));
        assert!(matches!(parse(&["diff", "web"]), Ok(Command::Diff(_))));
        assert!(matches!(
            parse(&["container", "diff", "web"]),
            Ok(Command::Container { command: ContainerCommand::Diff(_) })
        ));
        assert!(parse(&["diff"]).is_err());
        assert!(matches!(
            parse(&["events", "--since", "1h", "-f", "type=container", "--format", "{{json .}}"]),
            Ok(Command::Events(_))
        ));
        assert!(matches!(
            parse(&["system", "events", "--until", "2023-11-14T22:13:20Z"]),
            Ok(Command::System { command: SystemCommand::Events(_) })
        ));
    }

    #[test]
    fn network_verbs_parse_dockers_flags() {
        let parse = |argv: &[&str]| {
            let mut full = vec!["kiln"];
            full.extend_from_slice(argv);
            Cli::try_parse_from(full).map(|cli| cli.command)
        };
        let create = parse(&["network", "create", "--subnet", "10.1.0.0/24", "--internal", "n"]);
        assert!(matches!(create, Ok(Command::Network { command: NetworkCommand::Create(_) })));
        let list = parse(&["network", "list", "-q", "--no-trunc", "-f", "driver=bridge"]);
        assert!(matches!(list, Ok(Command::Network { command: NetworkCommand::Ls(_) })));
        assert!(matches!(
            parse(&["network", "remove", "-f", "a", "b"]),
            Ok(Command::Network { command: NetworkCommand::Rm(_) })
        ));
        assert!(matches!(
            parse(&["network", "connect", "--alias", "db", "--ip", "10.1.0.5", "n", "c"]),
            Ok(Command::Network { command: NetworkCommand::Connect(_) })
        ));
        assert!(matches!(
            parse(&["network", "disconnect", "-f", "n", "c"]),
            Ok(Command::Network { command: NetworkCommand::Disconnect(_) })
        ));
        assert!(matches!(
            parse(&["network", "prune", "-f", "--filter", "label=a"]),
            Ok(Command::Network { command: NetworkCommand::Prune(_) })
        ));
        assert!(matches!(parse(&["port", "c", "80/tcp"]), Ok(Command::Port(_))));
        assert!(matches!(
            parse(&["container", "port", "c"]),
            Ok(Command::Container { command: ContainerCommand::Port(_) })
        ));
        assert!(parse(&["port"]).is_err());
        assert!(parse(&["network", "rm"]).is_err());
    }

    #[test]
    fn volume_verbs_parse_dockers_flags() {
        let parse = |argv: &[&str]| {
            let mut full = vec!["kiln", "volume"];
            full.extend_from_slice(argv);
            Cli::try_parse_from(full).map(|cli| cli.command)
        };
        let create = parse(&["create", "-d", "local", "-o", "type=tmpfs", "--label", "a=b", "v"]);
        assert!(matches!(create, Ok(Command::Volume { command: VolumeCommand::Create(_) })));
        let list = parse(&["list", "-q", "-f", "dangling=true", "--format", "{{.Name}}"]);
        assert!(matches!(list, Ok(Command::Volume { command: VolumeCommand::Ls(_) })));
        assert!(matches!(parse(&["ls"]), Ok(Command::Volume { command: VolumeCommand::Ls(_) })));
        assert!(matches!(
            parse(&["inspect", "-f", "{{.Mountpoint}}", "a", "b"]),
            Ok(Command::Volume { command: VolumeCommand::Inspect(_) })
        ));
        assert!(matches!(
            parse(&["remove", "-f", "a"]),
            Ok(Command::Volume { command: VolumeCommand::Rm(_) })
        ));
        assert!(matches!(
            parse(&["prune", "-a", "-f", "--filter", "label=x"]),
            Ok(Command::Volume { command: VolumeCommand::Prune(_) })
        ));
        assert!(parse(&["rm"]).is_err());
        assert!(parse(&["inspect"]).is_err());
    }
}
