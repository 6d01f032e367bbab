//! `kiln`: one executable for every Kiln program. This file only dispatches;
//! the work is in the crates.
//!
//! Called as `kiln-runtime` (a link), it is the OCI runtime CLI directly.

mod daemon_cli;
mod runtime_cli;
mod shim_cli;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Kiln: a Docker-compatible container platform",
    after_help = kiln_cli::ENVIRONMENT_HELP
)]
struct Cli {
    #[command(flatten)]
    global: kiln_cli::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; boxing the runtime's arguments would gain nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// The OCI runtime: run containers from OCI bundles (runc-compatible)
    Runtime(runtime_cli::RuntimeArgs),
    /// Run the Kiln daemon: the engine and the Docker Engine API
    Daemon(daemon_cli::DaemonArgs),
    /// The per-container supervisor, started by the daemon
    #[command(hide = true)]
    Shim(shim_cli::ShimArgs),
    #[command(flatten)]
    Docker(kiln_cli::Command),
}

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let invoked_as =
        Path::new(&argv0).file_name().and_then(|n| n.to_str()).unwrap_or("kiln").to_owned();
    if invoked_as == "kiln-runtime" {
        let args = runtime_cli::RuntimeArgs::parse_from(std::env::args_os());
        return runtime_cli::main(args);
    }
    // `kiln runtime …` is on every container's start path: parse only the
    // runtime's arguments, not the whole command tree (same result, less work).
    if std::env::args_os().nth(1).is_some_and(|a| a == "runtime") {
        let args = std::iter::once("kiln runtime".into()).chain(std::env::args_os().skip(2));
        return runtime_cli::main(runtime_cli::RuntimeArgs::parse_from(args));
    }
    // `kiln shim …` likewise: one per container start, and it forks, so it
    // must run before anything could start a thread.
    if std::env::args_os().nth(1).is_some_and(|a| a == "shim") {
        let args = std::iter::once("kiln shim".into()).chain(std::env::args_os().skip(2));
        return shim_cli::main(shim_cli::ShimArgs::parse_from(args));
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Runtime(args) => runtime_cli::main(args),
        Command::Daemon(args) => daemon_cli::main(args),
        Command::Shim(args) => shim_cli::main(args),
        Command::Docker(command) => kiln_cli::run(&cli.global, command),
    }
}
