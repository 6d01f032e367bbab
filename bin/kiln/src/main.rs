//! `kiln`: one executable for every Kiln program. This file only dispatches;
//! the work is in the crates.
//!
//! Called as `kiln-runtime` (a link), it is the OCI runtime CLI directly.

mod runtime_cli;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "kiln", version, about = "Kiln: a Docker-compatible container platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The OCI runtime: run containers from OCI bundles (runc-compatible)
    Runtime(runtime_cli::RuntimeArgs),
}

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let invoked_as =
        Path::new(&argv0).file_name().and_then(|n| n.to_str()).unwrap_or("kiln").to_owned();
    if invoked_as == "kiln-runtime" {
        let args = runtime_cli::RuntimeArgs::parse_from(std::env::args_os());
        return runtime_cli::main(args);
    }
    match Cli::parse().command {
        Command::Runtime(args) => runtime_cli::main(args),
    }
}
