//! `kiln runtime …` / `kiln-runtime …`: a runc-compatible command line over
//! `kiln-runtime`. Flags and output follow runc so that tools that drive a
//! runtime (containerd, podman, conmon) can use this one.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand, ValueEnum};
use kiln_runtime::spec::Process;
use kiln_runtime::{Console, CreateOptions, ExecOptions, RunOptions, RuntimeError, Store};

#[derive(Debug, Parser)]
#[command(name = "kiln-runtime", version, about = "Kiln's OCI runtime (runc-compatible)")]
pub struct RuntimeArgs {
    /// Directory for container state
    #[arg(long, global = true, default_value = kiln_runtime::DEFAULT_ROOT, value_name = "DIR")]
    root: PathBuf,
    /// Also write log messages to this file
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Format of log messages
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log debug messages
    #[arg(long, global = true)]
    debug: bool,
    /// Manage cgroups through systemd (not supported: Kiln drives cgroupfs)
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility; rootless mode is detected
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    #[command(subcommand)]
    command: RuntimeCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
struct BundleArgs {
    /// Path to the bundle directory (holding config.json)
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    bundle: PathBuf,
    /// Write the container process's pid to this file
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is set
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Use chroot instead of pivot_root (for ramdisk roots)
    #[arg(long)]
    no_pivot: bool,
    /// Pass this many extra file descriptors (3 and up) to the process
    #[arg(long, default_value_t = 0, value_name = "N")]
    preserve_fds: i32,
    /// Accepted for runc compatibility (no session keyring is created)
    #[arg(long)]
    no_new_keyring: bool,
    /// Container id
    id: String,
}

impl BundleArgs {
    fn create_options(self) -> (String, CreateOptions) {
        let opts = CreateOptions {
            bundle: self.bundle,
            pid_file: self.pid_file,
            console: self.console_socket.map(Console::Socket),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
        };
        (self.id, opts)
    }
}

#[derive(Debug, Subcommand)]
enum RuntimeCommand {
    /// Create a container from a bundle; its process waits for `start`
    Create(BundleArgs),
    /// Start the process of a created container
    Start { id: String },
    /// Print a container's state as JSON
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's process
    Kill {
        /// Signal every process in the container
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container and everything the runtime made for it
    Delete {
        /// Kill the container first if it is running
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create, start, wait for and delete a container; exit with its exit code
    Run {
        #[command(flatten)]
        bundle: BundleArgs,
        /// Return once the process runs
        #[arg(short, long)]
        detach: bool,
        /// Keep the container after it exits
        #[arg(long)]
        keep: bool,
    },
    /// Run a new process inside a running container
    Exec(ExecArgs),
    /// List containers
    List {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Print ids only
        #[arg(short, long)]
        quiet: bool,
    },
    /// List a container's processes
    Ps {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
        /// Options passed to ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Print what this runtime supports (OCI features.json)
    Features,
    /// Write a default config.json (Docker's defaults and seccomp profile)
    Spec {
        /// Directory to write config.json in
        #[arg(short, long, default_value = ".", value_name = "DIR")]
        bundle: PathBuf,
    },
}

#[derive(Debug, Args)]
struct ExecArgs {
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    tty: bool,
    /// Return once the process runs
    #[arg(short, long)]
    detach: bool,
    /// Set an environment variable (KEY=VALUE)
    #[arg(short, long, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// User to run as: UID[:GID]
    #[arg(short, long, value_name = "UID[:GID]")]
    user: Option<String>,
    /// Additional group ids
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    additional_gids: Vec<u32>,
    /// Add a capability to the process's sets
    #[arg(short, long = "cap", value_name = "CAP")]
    caps: Vec<String>,
    /// Set no_new_privileges for the process
    #[arg(long)]
    no_new_privs: bool,
    /// Read the whole process from this JSON file (OCI process object)
    #[arg(short, long, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Write the process's pid to this file
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master with --tty
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Pass this many extra file descriptors (3 and up) to the process
    #[arg(long, default_value_t = 0, value_name = "N")]
    preserve_fds: i32,
    /// Container id
    id: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn main(args: RuntimeArgs) -> ExitCode {
    let logs_to_file = init_logging(&args);
    match dispatch(args) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            let message = format!("{err:#}");
            // Without a log file the logger writes to stderr too: say it once.
            if logs_to_file {
                tracing::error!("{message}");
            }
            let _ = writeln!(std::io::stderr(), "kiln runtime: {message}");
            let code = err.downcast_ref::<RuntimeError>().map_or(1, RuntimeError::exit_code);
            ExitCode::from(code.clamp(1, 255) as u8)
        }
    }
}

/// Installs the logger; true when it writes to the `--log` file (not stderr).
fn init_logging(args: &RuntimeArgs) -> bool {
    use tracing_subscriber::fmt;
    let level = if args.debug { tracing::Level::DEBUG } else { tracing::Level::WARN };
    let file = args
        .log
        .as_ref()
        .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
    match (file, args.log_format) {
        (Some(file), LogFormat::Json) => {
            let _ = fmt()
                .json()
                .with_max_level(level)
                .with_writer(std::sync::Mutex::new(file))
                .try_init();
        }
        (Some(file), LogFormat::Text) => {
            let _ = fmt()
                .with_ansi(false)
                .with_max_level(level)
                .with_writer(std::sync::Mutex::new(file))
                .try_init();
        }
        (None, _) => {
            let _ = fmt()
                .with_max_level(level)
                .with_target(false)
                .without_time()
                .with_writer(std::io::stderr)
                .try_init();
            return false;
        }
    }
    true
}

fn dispatch(args: RuntimeArgs) -> anyhow::Result<i32> {
    if args.systemd_cgroup {
        bail!("--systemd-cgroup is not supported: Kiln manages cgroups through cgroupfs");
    }
    let store = Store::new(&args.root);
    match args.command {
        RuntimeCommand::Create(bundle) => {
            enter_protected_copy()?;
            let (id, opts) = bundle.create_options();
            kiln_runtime::create(&store, &id, opts)?;
            Ok(0)
        }
        RuntimeCommand::Start { id } => {
            kiln_runtime::start(&store, &id).map(|()| 0).map_err(Into::into)
        }
        RuntimeCommand::State { id } => {
            let state = kiln_runtime::state(&store, &id)?;
            println!("{}", serde_json::to_string_pretty(&state)?);
            Ok(0)
        }
        RuntimeCommand::Kill { all, id, signal } => {
            kiln_runtime::kill(&store, &id, &signal, all).map(|()| 0).map_err(Into::into)
        }
        RuntimeCommand::Delete { force, id } => {
            kiln_runtime::delete(&store, &id, force).map(|()| 0).map_err(Into::into)
        }
        RuntimeCommand::Run { bundle, detach, keep } => {
            enter_protected_copy()?;
            let (id, create) = bundle.create_options();
            Ok(kiln_runtime::run(&store, &id, RunOptions { create, detach, keep })?)
        }
        RuntimeCommand::Exec(exec) => {
            enter_protected_copy()?;
            run_exec(&store, exec)
        }
        RuntimeCommand::List { format, quiet } => {
            print_list(&kiln_runtime::list(&store), format, quiet)?;
            Ok(0)
        }
        RuntimeCommand::Ps { format, id, ps_args } => {
            let pids = kiln_runtime::pids(&store, &id)?;
            print_ps(&pids, format, &ps_args)?;
            Ok(0)
        }
        RuntimeCommand::Pause { id } => {
            kiln_runtime::pause(&store, &id).map(|()| 0).map_err(Into::into)
        }
        RuntimeCommand::Resume { id } => {
            kiln_runtime::resume(&store, &id).map(|()| 0).map_err(Into::into)
        }
        RuntimeCommand::Features => {
            println!("{}", serde_json::to_string_pretty(&kiln_runtime::features())?);
            Ok(0)
        }
        RuntimeCommand::Spec { bundle } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{} exists already: remove it first", path.display());
            }
            let text = serde_json::to_string_pretty(&kiln_runtime::template::default_spec())?;
            std::fs::write(&path, text + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(0)
        }
    }
}

/// Commands that enter a container re-execute from a read-only view
/// of this binary first, so nothing in the container can reach the file.
fn enter_protected_copy() -> anyhow::Result<()> {
    kiln_sys::exe::reexec_protected().context("cannot re-execute from a read-only view of kiln")
}

fn run_exec(store: &Store, exec: ExecArgs) -> anyhow::Result<i32> {
    let process = match &exec.process {
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_slice::<Process>(&text)
                .with_context(|| format!("invalid process in {}", path.display()))?
        }
        None => {
            if exec.command.is_empty() {
                bail!("exec needs a command (or --process FILE)");
            }
            let state = store.load(&exec.id)?;
            let mut p = state.config.process.clone().unwrap_or_default();
            p.args = exec.command.clone();
            p.env.extend(exec.env.iter().cloned());
            p.terminal = exec.tty;
            p.console_size = None;
            if let Some(cwd) = &exec.cwd {
                p.cwd = cwd.clone();
            }
            if let Some(user) = &exec.user {
                let (uid, gid) = user.split_once(':').unwrap_or((user, ""));
                p.user.uid = uid
                    .parse()
                    .with_context(|| format!("invalid user {user:?}: want UID[:GID]"))?;
                if !gid.is_empty() {
                    p.user.gid = gid
                        .parse()
                        .with_context(|| format!("invalid user {user:?}: want UID[:GID]"))?;
                }
            }
            if !exec.additional_gids.is_empty() {
                p.user.additional_gids = exec.additional_gids.clone();
            }
            if !exec.caps.is_empty() {
                let caps = p.capabilities.get_or_insert_with(Default::default);
                for cap in &exec.caps {
                    for set in [&mut caps.bounding, &mut caps.effective, &mut caps.permitted] {
                        if !set.contains(cap) {
                            set.push(cap.clone());
                        }
                    }
                }
            }
            p.no_new_privileges |= exec.no_new_privs;
            p
        }
    };
    let opts = ExecOptions {
        process,
        detach: exec.detach,
        pid_file: exec.pid_file,
        console: exec.console_socket.map(Console::Socket),
        preserve_fds: exec.preserve_fds,
    };
    Ok(kiln_runtime::exec(store, &exec.id, opts)?)
}

fn print_list(
    states: &[kiln_runtime::OciState],
    format: ListFormat,
    quiet: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if quiet {
        for s in states {
            writeln!(out, "{}", s.id)?;
        }
        return Ok(());
    }
    if format == ListFormat::Json {
        writeln!(out, "{}", serde_json::to_string(states)?)?;
        return Ok(());
    }
    let mut rows =
        vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from).to_vec()];
    for s in states {
        rows.push(vec![
            s.id.clone(),
            s.pid.to_string(),
            s.status.clone(),
            s.bundle.display().to_string(),
            s.created.clone(),
            if s.owner.is_empty() { "root".into() } else { s.owner.clone() },
        ]);
    }
    let widths: Vec<usize> =
        (0..6).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(())
}

fn print_ps(pids: &[i32], format: ListFormat, ps_args: &[String]) -> anyhow::Result<()> {
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(pids)?);
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() { vec!["-ef".into()] } else { ps_args.to_vec() };
    let output = std::process::Command::new("ps").args(&args).output().context("cannot run ps")?;
    if !output.status.success() {
        bail!("ps {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{header}")?;
    for line in lines {
        let pid = line.split_whitespace().nth(column).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}
