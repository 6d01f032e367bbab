//! `kiln run`, `kiln create`, `kiln start` and `kiln attach`: a container
//! created from docker's flags, started, and its stdio relayed to ours.
//!
//! The relay ([`relay`], shared with `kiln exec`) copies the container's
//! output to our stdout and stderr and our stdin to the container; with a
//! tty it puts our terminal in raw mode (restored on every way out),
//! follows our window size and watches for the detach keys. Each entry
//! point prints its own errors and returns the exit code docker gives:
//! the container's status, 125 when the daemon refuses to create or start
//! it (126 and 127 when the command cannot be run or found), 1 for other
//! failures.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Args};
use kiln_api_types::{ContainerInspect, ContainerWaitResponse};
use kiln_client::{AttachOptions, Attached, Client, ClientError, StreamKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::container_create::{ContainerArgs, CreatePlan, FlagError, PullPolicy, ThisProcess};
use crate::terminal::{self, DetachDetector, RawMode, Scan};
use crate::GlobalArgs;

/// `kiln create`.
#[derive(Debug, Args)]
#[command(override_usage = "kiln create [OPTIONS] IMAGE [COMMAND] [ARG...]")]
pub struct CreateArgs {
    #[command(flatten)]
    container: ContainerArgs,
}

/// `kiln run`.
#[derive(Debug, Args)]
#[command(override_usage = "kiln run [OPTIONS] IMAGE [COMMAND] [ARG...]")]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long = "detach")]
    detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(
        long = "sig-proxy",
        value_name = "bool",
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    sig_proxy: bool,
    #[command(flatten)]
    container: ContainerArgs,
}

/// `kiln start`.
#[derive(Debug, Args)]
#[command(override_usage = "kiln start [OPTIONS] CONTAINER [CONTAINER...]")]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long = "attach")]
    attach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    detach_keys: Option<String>,
    /// Attach container's STDIN
    #[arg(short = 'i', long = "interactive")]
    interactive: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

/// `kiln attach`.
#[derive(Debug, Args)]
#[command(override_usage = "kiln attach [OPTIONS] CONTAINER")]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(
        long = "sig-proxy",
        value_name = "bool",
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    container: String,
}

/// How a command failed: what to print, and docker's exit code for it.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: u8,
    message: Option<String>,
}

impl Failure {
    /// `kiln: MESSAGE` and where the help is, as docker reports a `run`
    /// or `create` it refuses.
    pub(crate) fn with_help(command: &str, message: &str, code: u8) -> Failure {
        let text = format!("kiln: {message}\n\nRun 'kiln {command} --help' for more information");
        Failure { code, message: Some(text) }
    }

    /// A bad flag, as docker reports it: after parsing with the help
    /// pointer, while parsing (pflag's errors) with the usage line too.
    pub(crate) fn flag(command: &str, usage: &str, err: &FlagError) -> Failure {
        let code = err.exit_code();
        if err.shows_usage() {
            let text = format!(
                "{err}\n\nUsage:  kiln {command} {usage}\n\n\
                 Run 'kiln {command} --help' for more information"
            );
            Failure { code, message: Some(text) }
        } else if code == 1 {
            Failure::text(err.to_string(), code)
        } else {
            Failure::with_help(command, &err.to_string(), code)
        }
    }

    /// The error as every other command prints it.
    pub(crate) fn plain(err: &anyhow::Error, code: u8) -> Failure {
        Failure { code, message: Some(crate::error_line(err)) }
    }

    pub(crate) fn text(message: impl Into<String>, code: u8) -> Failure {
        Failure { code, message: Some(message.into()) }
    }

    /// Print the message; the exit code.
    pub(crate) fn report(self) -> u8 {
        if let Some(message) = self.message {
            eprintln!("{message}");
        }
        self.code
    }
}

/// `kiln run` and `kiln create`'s usage line.
const CREATE_USAGE: &str = "[OPTIONS] IMAGE [COMMAND] [ARG...]";

/// The daemon's own words for an API error; the whole chain otherwise.
pub(crate) fn daemon_message(err: &anyhow::Error) -> String {
    match err.downcast_ref::<ClientError>() {
        Some(ClientError::Api { message, .. } | ClientError::Stream { message }) => {
            format!("Error response from daemon: {message}")
        }
        _ => format!("{err:#}"),
    }
}

/// docker's exit code for a container that could not be created or
/// started: 127 when the command is not there, 126 when it cannot be
/// executed, else 125.
pub(crate) fn start_failure_code(message: &str) -> u8 {
    let message = message.trim_start_matches("Error response from daemon: ");
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("system cannot find the file specified")
    {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

/// A container's (or exec's) exit status as our own: the low byte, as a
/// process exit does (-1 → 255).
pub(crate) fn exit_status(code: i64) -> u8 {
    u8::try_from(code.rem_euclid(256)).unwrap_or(u8::MAX)
}

/// The exit code for a wait's answer: docker gives 125 when the daemon
/// says the wait itself failed.
fn wait_status(result: Result<ContainerWaitResponse, ClientError>) -> Result<u8, Failure> {
    match result {
        Ok(response) => match response.error.filter(|e| !e.message.is_empty()) {
            Some(error) => {
                Err(Failure::text(format!("Error waiting for container: {}", error.message), 125))
            }
            None => Ok(exit_status(response.status_code)),
        },
        Err(err) => Err(Failure::text(
            format!("Error waiting for container: {}", daemon_message(&err.into())),
            125,
        )),
    }
}

/// `kiln create`: the container's id on stdout.
pub(crate) async fn create(global: &GlobalArgs, args: &CreateArgs) -> u8 {
    create_only(global, args).await.unwrap_or_else(Failure::report)
}

async fn create_only(global: &GlobalArgs, args: &CreateArgs) -> Result<u8, Failure> {
    let plan = args
        .container
        .plan(false, &ThisProcess)
        .map_err(|err| Failure::flag("create", CREATE_USAGE, &err))?;
    // docker-compat: unlike `run`, `create` exits 1 when the daemon refuses.
    let client = crate::connect(global).await.map_err(|err| Failure::plain(&err, 1))?;
    let id = create_container(&client, &plan).await.map_err(|err| Failure::plain(&err, 1))?;
    println!("{id}");
    Ok(0)
}

/// `kiln run`: create, attach, start, relay; the container's exit code.
pub(crate) async fn run(global: &GlobalArgs, args: &RunArgs) -> u8 {
    run_container(global, args).await.unwrap_or_else(Failure::report)
}

async fn run_container(global: &GlobalArgs, args: &RunArgs) -> Result<u8, Failure> {
    let plan = args
        .container
        .plan(args.detach, &ThisProcess)
        .map_err(|err| Failure::flag("run", CREATE_USAGE, &err))?;
    let detach_keys = DetachKeys::parse(args.detach_keys.as_deref());
    let config = &plan.request.config;
    let auto_remove = plan.request.host_config.auto_remove;
    if !args.detach && config.attach_stdin && config.tty && !std::io::stdin().is_terminal() {
        return Err(Failure::text("the input device is not a TTY", 1));
    }
    let client = crate::connect(global)
        .await
        .map_err(|err| Failure::with_help("run", &daemon_message(&err), 125))?;
    let id = create_container(&client, &plan).await.map_err(|err| {
        let message = daemon_message(&err);
        Failure::with_help("run", &message, start_failure_code(&message))
    })?;

    if args.detach {
        // As docker: with --rm, a container that fails to start is
        // removed by the daemon before we return.
        let removed = if auto_remove {
            client.container_wait_begin(&id, Some("removed")).await.ok()
        } else {
            None
        };
        if let Err(failure) = start_for_run(&client, &id).await {
            if let Some(removed) = removed {
                let _ = removed.result().await;
            }
            return Err(failure);
        }
        println!("{id}");
        return Ok(0);
    }

    let session = Session {
        stdin: config.attach_stdin,
        stdout: config.attach_stdout,
        stderr: config.attach_stderr,
        tty: config.tty,
        detach_keys,
        sig_proxy: args.sig_proxy && !config.tty,
    };
    // docker-compat: the wait begins before the start, so a container that
    // exits at once is not missed; with --rm it lasts until it is removed.
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let fail = |err: ClientError| Failure::with_help("run", &daemon_message(&err.into()), 125);
    // Two connections, opened side by side: neither needs the other.
    let (attached, wait) = tokio::join!(
        session.attach(&client, &id),
        client.container_wait_begin(&id, Some(condition))
    );
    let (attached, wait) = (attached.map_err(fail)?, wait.map_err(fail)?);
    if !session.stdout && !session.stderr {
        println!("{id}");
    }
    let raw = session.raw_mode().map_err(|err| Failure::plain(&err.into(), 1))?;
    if let Err(failure) = start_for_run(&client, &id).await {
        drop(raw);
        if auto_remove {
            let _ = wait.result().await;
        }
        return Err(failure);
    }
    let target = TtyTarget::Container(id.clone());
    let ended = session.relay(&client, attached, &target).await;
    drop(raw);
    match ended {
        Ok(Ended::Detached) => return Ok(0),
        Ok(Ended::OutputGone) => return Ok(OUTPUT_GONE),
        Ok(Ended::Closed) => {}
        Err(err) => return Err(Failure::plain(&err, 1)),
    }
    if !session.stdout && !session.stderr {
        return Ok(0);
    }
    wait_status(wait.result().await)
}

/// Start for `kiln run`: a refusal is reported as docker does, with 125,
/// 126 or 127.
async fn start_for_run(client: &Client, id: &str) -> Result<(), Failure> {
    client.container_start(id).await.map_err(|err| {
        let message = daemon_message(&err.into());
        Failure::with_help("run", &message, start_failure_code(&message))
    })
}

/// Exit code when our own stdout went away (a closed pipe), as a process
/// killed by SIGPIPE shows to a shell.
const OUTPUT_GONE: u8 = 141;

/// POST the create; the new container's id, written to `--cidfile` too.
async fn create_container(client: &Client, plan: &CreatePlan) -> anyhow::Result<String> {
    let cidfile = plan.cidfile.as_deref().map(CidFile::create).transpose()?;
    let created = client
        .container_create(plan.name.as_deref(), plan.platform.as_deref(), &plan.request)
        .await;
    let created = match created {
        Ok(created) => created,
        Err(err) => {
            let image = match &plan.image_display {
                Some(image) if is_missing_image(&err) && plan.pull != PullPolicy::Never => image,
                _ => return Err(err.into()),
            };
            // docker-compat: the pull's progress goes to stderr, then the
            // create is tried once more.
            eprintln!("Unable to find image '{image}' locally");
            let options = kiln_client::PullOptions {
                platform: plan.platform.clone(),
                registry_auth: crate::login::registry_auth_for(image),
            };
            crate::image_pull::pull_with_progress(
                client,
                image,
                &options,
                false,
                &mut std::io::stderr(),
            )
            .await?;
            client
                .container_create(plan.name.as_deref(), plan.platform.as_deref(), &plan.request)
                .await?
        }
    };
    for warning in &created.warnings {
        eprintln!("WARNING: {warning}");
    }
    if let Some(cidfile) = cidfile {
        cidfile.write(&created.id)?;
    }
    Ok(created.id)
}

fn is_missing_image(err: &ClientError) -> bool {
    matches!(err, ClientError::Api { status, message }
        if status.as_u16() == 404 && message.to_ascii_lowercase().starts_with("no such image"))
}

/// `--cidfile`: made before the create (refused when it exists, as docker
/// does), removed again unless the id was written to it.
#[derive(Debug)]
struct CidFile {
    path: PathBuf,
    file: Option<std::fs::File>,
}

#[derive(Debug, thiserror::Error)]
enum CidFileError {
    #[error(
        "container ID file found, make sure the other container isn't running or delete {}",
        .0.display()
    )]
    Exists(PathBuf),
    #[error("failed to create the container ID file")]
    Create(#[source] std::io::Error),
    #[error("failed to write the container ID to the file")]
    Write(#[source] std::io::Error),
}

impl CidFile {
    fn create(path: &Path) -> Result<CidFile, CidFileError> {
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(path);
        match file {
            Ok(file) => Ok(CidFile { path: path.to_owned(), file: Some(file) }),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(CidFileError::Exists(path.to_owned()))
            }
            Err(err) => Err(CidFileError::Create(err)),
        }
    }

    fn write(mut self, id: &str) -> Result<(), CidFileError> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| CidFileError::Write(std::io::ErrorKind::NotFound.into()))?;
        file.write_all(id.as_bytes()).map_err(CidFileError::Write)
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `kiln start`: each container's name, or with `-a`/`-i` its stdio and
/// exit code.
pub(crate) async fn start(global: &GlobalArgs, args: &StartArgs) -> u8 {
    start_containers(global, args).await.unwrap_or_else(Failure::report)
}

async fn start_containers(global: &GlobalArgs, args: &StartArgs) -> Result<u8, Failure> {
    let detach_keys = DetachKeys::parse(args.detach_keys.as_deref());
    let client = crate::connect(global).await.map_err(|err| Failure::plain(&err, 1))?;
    if !args.attach && !args.interactive {
        let mut failed = Vec::new();
        for name in &args.containers {
            match client.container_start(name).await {
                Ok(()) => println!("{name}"),
                Err(err) => {
                    eprintln!("{}", crate::error_line(&err.into()));
                    failed.push(name.as_str());
                }
            }
        }
        if failed.is_empty() {
            return Ok(0);
        }
        return Err(Failure::text(
            format!("Error: failed to start containers: {}", failed.join(", ")),
            1,
        ));
    }
    let [name] = args.containers.as_slice() else {
        return Err(Failure::text(
            "Error: you cannot start and attach multiple containers at once",
            1,
        ));
    };
    let container = client.container_inspect(name).await.map_err(plain)?;
    let id = id_or(&container, name);
    let session = Session {
        stdin: args.interactive && container.config.open_stdin,
        stdout: true,
        stderr: true,
        tty: container.config.tty,
        detach_keys,
        sig_proxy: !container.config.tty,
    };
    if session.stdin && session.tty && !std::io::stdin().is_terminal() {
        return Err(Failure::text("the input device is not a TTY", 1));
    }
    let attached = session.attach(&client, &id).await.map_err(plain)?;
    let condition = if container.host_config.auto_remove { "removed" } else { "next-exit" };
    let wait = client.container_wait_begin(&id, Some(condition)).await.map_err(plain)?;
    let raw = session.raw_mode().map_err(|err| Failure::plain(&err.into(), 1))?;
    if let Err(err) = client.container_start(&id).await {
        drop(raw);
        if container.host_config.auto_remove {
            let _ = wait.result().await;
        }
        return Err(plain(err));
    }
    let ended = session.relay(&client, attached, &TtyTarget::Container(id.clone())).await;
    drop(raw);
    match ended.map_err(|err| Failure::plain(&err, 1))? {
        Ended::Detached => Ok(0),
        Ended::OutputGone => Ok(OUTPUT_GONE),
        Ended::Closed => wait_status(wait.result().await),
    }
}

fn plain(err: ClientError) -> Failure {
    Failure::plain(&err.into(), 1)
}

fn id_or(container: &ContainerInspect, name: &str) -> String {
    if container.id.is_empty() {
        name.to_owned()
    } else {
        container.id.clone()
    }
}

/// `kiln attach`: the container's stdio until it exits (its exit code) or
/// the detach keys are typed.
pub(crate) async fn attach(global: &GlobalArgs, args: &AttachArgs) -> u8 {
    attach_container(global, args).await.unwrap_or_else(Failure::report)
}

async fn attach_container(global: &GlobalArgs, args: &AttachArgs) -> Result<u8, Failure> {
    let detach_keys = DetachKeys::parse(args.detach_keys.as_deref());
    let client = crate::connect(global).await.map_err(|err| Failure::plain(&err, 1))?;
    let container = client.container_inspect(&args.container).await.map_err(plain)?;
    check_attachable(&container)?;
    let id = id_or(&container, &args.container);
    let session = Session {
        stdin: !args.no_stdin && container.config.open_stdin,
        stdout: true,
        stderr: true,
        tty: container.config.tty,
        detach_keys,
        sig_proxy: args.sig_proxy && !container.config.tty,
    };
    if session.stdin && session.tty && !std::io::stdin().is_terminal() {
        return Err(Failure::text("the input device is not a TTY", 1));
    }
    let wait = client.container_wait_begin(&id, None).await.map_err(plain)?;
    let attached = session.attach(&client, &id).await.map_err(plain)?;
    // It may have stopped between the inspect and the attach.
    check_attachable(&client.container_inspect(&id).await.map_err(plain)?)?;
    let raw = session.raw_mode().map_err(|err| Failure::plain(&err.into(), 1))?;
    let ended = session.relay(&client, attached, &TtyTarget::Container(id.clone())).await;
    drop(raw);
    match ended.map_err(|err| Failure::plain(&err, 1))? {
        // docker-compat: `docker attach` reports the detach as an error.
        Ended::Detached => Err(Failure::text("read escape sequence", 1)),
        Ended::OutputGone => Ok(OUTPUT_GONE),
        Ended::Closed => match wait.result().await {
            Ok(response) => match response.error.filter(|e| !e.message.is_empty()) {
                Some(error) => Err(Failure::text(error.message, 1)),
                None => Ok(exit_status(response.status_code)),
            },
            Err(err) => Err(plain(err)),
        },
    }
}

fn check_attachable(container: &ContainerInspect) -> Result<(), Failure> {
    let state = &container.state;
    let refusal = if !state.running {
        "You cannot attach to a stopped container, start it first"
    } else if state.paused {
        "You cannot attach to a paused container, unpause it first"
    } else if state.restarting {
        "You cannot attach to a restarting container, wait until it is running"
    } else {
        return Ok(());
    };
    Err(Failure::text(refusal, 1))
}

/// `--detach-keys`: as given (the daemon watches for them without a tty)
/// and as bytes (watched here with one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DetachKeys {
    /// `None`: the defaults, which the daemon knows too.
    text: Option<String>,
    bytes: Vec<u8>,
}

impl DetachKeys {
    /// Keys that do not parse are still sent to the daemon (which refuses
    /// them); here the defaults are watched, as docker does.
    pub(crate) fn parse(text: Option<&str>) -> DetachKeys {
        let text = text.filter(|t| !t.is_empty());
        let bytes = text
            .and_then(|t| terminal::parse_detach_keys(t).ok())
            .unwrap_or_else(|| terminal::DEFAULT_DETACH_KEYS.to_vec());
        DetachKeys { text: text.map(str::to_owned), bytes }
    }

    pub(crate) fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }
}

/// Whose tty a resize is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TtyTarget {
    Container(String),
    Exec(String),
}

impl TtyTarget {
    async fn resize(&self, client: &Client, size: terminal::Size) -> Result<(), ClientError> {
        match self {
            TtyTarget::Container(id) => client.container_resize(id, size.height, size.width).await,
            TtyTarget::Exec(id) => client.exec_resize(id, size.height, size.width).await,
        }
    }
}

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The daemon closed the output: the process is done (or detached by
    /// the daemon).
    Closed,
    /// The detach keys were typed; the process keeps running.
    Detached,
    /// Our stdout is gone (a closed pipe).
    OutputGone,
}

/// What to connect, and how to treat the local terminal.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub detach_keys: DetachKeys,
    /// Forward our signals to the container (never with a tty: there the
    /// keys reach it through the terminal).
    pub sig_proxy: bool,
}

impl Session {
    async fn attach(&self, client: &Client, id: &str) -> Result<Attached, ClientError> {
        let options = AttachOptions {
            stream: true,
            stdin: self.stdin,
            stdout: self.stdout,
            stderr: self.stderr,
            logs: false,
            detach_keys: self.detach_keys.text().map(str::to_owned),
        };
        client.container_attach(id, &options, self.tty).await
    }

    /// Raw mode on our terminal when keys go to the container's tty.
    pub(crate) fn raw_mode(&self) -> Result<Option<RawMode>, terminal::TerminalError> {
        if self.tty && self.stdin {
            RawMode::enter()
        } else {
            Ok(None)
        }
    }

    /// Copy output to our stdout and stderr and our stdin to the process
    /// until the output ends or the detach keys are typed; follow our
    /// window size and forward signals meanwhile.
    pub(crate) async fn relay(
        &self,
        client: &Client,
        attached: Attached,
        target: &TtyTarget,
    ) -> anyhow::Result<Ended> {
        let (mut output, mut input) = attached.split();
        let follows_size = self.tty && std::io::stdout().is_terminal();
        let _resizer = follows_size.then(|| Resizer::start(client.clone(), target.clone()));
        let _proxy = match target {
            TtyTarget::Container(id) if self.sig_proxy => {
                Some(SignalProxy::start(client.clone(), id.clone()))
            }
            _ => None,
        };
        let mut stdin = self.stdin.then(spawn_stdin_reader);
        // docker-compat: the keys are watched here only with a tty; without
        // one the daemon watches for them.
        let mut detector =
            DetachDetector::new(if self.tty { self.detach_keys.bytes.clone() } else { Vec::new() });
        loop {
            tokio::select! {
                piece = output.next() => {
                    let Some((kind, bytes)) = piece? else {
                        return Ok(Ended::Closed);
                    };
                    let written = match kind {
                        StreamKind::Stdout => write_out(&mut std::io::stdout(), &bytes),
                        StreamKind::Stderr => write_out(&mut std::io::stderr(), &bytes),
                        StreamKind::SystemErr => anyhow::bail!(
                            "error from daemon in stream: {}",
                            String::from_utf8_lossy(&bytes).trim_end()
                        ),
                        StreamKind::Stdin => Ok(()),
                    };
                    if let Err(err) = written {
                        if err.kind() == std::io::ErrorKind::BrokenPipe {
                            return Ok(Ended::OutputGone);
                        }
                        return Err(anyhow::Error::new(err).context("cannot write the output"));
                    }
                }
                chunk = recv_some(&mut stdin) => match chunk {
                    Some(bytes) => {
                        let (send, detach) = match detector.scan(&bytes) {
                            Scan::Forward(send) => (send, false),
                            Scan::Detach { before } => (before, true),
                        };
                        if !send.is_empty() && input.write_all(&send).await.is_err() {
                            // The process stopped reading (it exited): its
                            // output still ends the relay.
                            stdin = None;
                        }
                        if detach {
                            return Ok(Ended::Detached);
                        }
                    }
                    None => {
                        stdin = None;
                        let _ = input.close_write().await;
                        if !self.stdout && !self.stderr {
                            return Ok(Ended::Closed);
                        }
                    }
                },
            }
        }
    }
}

fn write_out(out: &mut impl std::io::Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}

/// The next chunk from stdin; pending forever once there is none to read.
async fn recv_some(stdin: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match stdin {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Our stdin, read on a thread of its own: a blocked read there does not
/// keep the process from exiting (tokio's stdin would, at runtime
/// shutdown, until a key is pressed).
fn spawn_stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    let spawned = std::thread::Builder::new().name("kiln-stdin".to_owned()).spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "cannot read stdin");
    }
    rx
}

/// Keeps the process's tty the size of ours: once at the start (retried
/// while the tty is not there yet, as docker does) and on every SIGWINCH.
#[derive(Debug)]
struct Resizer {
    task: JoinHandle<()>,
}

impl Resizer {
    fn start(client: Client, target: TtyTarget) -> Resizer {
        let task = tokio::spawn(async move {
            let mut winch =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
            if let Some(size) = terminal::size() {
                let mut resized = target.resize(&client, size).await.is_ok();
                for attempt in 1..=10 {
                    if resized {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
                    resized = target.resize(&client, size).await.is_ok();
                }
                if !resized {
                    eprintln!("failed to resize tty, using default size");
                }
            }
            while let Some(winch) = winch.as_mut() {
                if winch.recv().await.is_none() {
                    break;
                }
                if let Some(size) = terminal::size() {
                    let _ = target.resize(&client, size).await;
                }
            }
        });
        Resizer { task }
    }
}

impl Drop for Resizer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The signals `kiln` forwards to a container (docker forwards all it can
/// catch but SIGCHLD, SIGPIPE, SIGURG and SIGWINCH).
const PROXIED_SIGNALS: &[(i32, &str)] = &[
    (nix::libc::SIGHUP, "SIGHUP"),
    (nix::libc::SIGINT, "SIGINT"),
    (nix::libc::SIGQUIT, "SIGQUIT"),
    (nix::libc::SIGTERM, "SIGTERM"),
    (nix::libc::SIGUSR1, "SIGUSR1"),
    (nix::libc::SIGUSR2, "SIGUSR2"),
];

/// Forwards our signals to the container while it lives.
#[derive(Debug)]
struct SignalProxy {
    tasks: Vec<JoinHandle<()>>,
}

impl SignalProxy {
    fn start(client: Client, id: String) -> SignalProxy {
        let mut tasks = Vec::new();
        for &(number, name) in PROXIED_SIGNALS {
            let kind = tokio::signal::unix::SignalKind::from_raw(number);
            let Ok(signal) = tokio::signal::unix::signal(kind) else {
                continue;
            };
            tasks.push(tokio::spawn(forward(signal, name, client.clone(), id.clone())));
        }
        SignalProxy { tasks }
    }
}

/// Each `signal` we get → `kill -s NAME` on the container.
async fn forward(mut signal: tokio::signal::unix::Signal, name: &str, client: Client, id: String) {
    while signal.recv().await.is_some() {
        if let Err(err) = client.container_kill(&id, Some(name)).await {
            tracing::debug!(container = %id, signal = name, error = %err, "cannot forward signal");
        }
    }
}

impl Drop for SignalProxy {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    #[command(no_binary_name = true)]
    enum Cli {
        Run(RunArgs),
        Create(CreateArgs),
        Start(StartArgs),
        Attach(AttachArgs),
    }

    fn parse(line: &str) -> Cli {
        Cli::try_parse_from(line.split_whitespace()).expect("parses")
    }

    #[test]
    fn run_flags_mix_with_the_shared_ones() {
        let Cli::Run(args) = parse("run -d --rm -h box --sig-proxy=false busybox sleep 1") else {
            panic!("run");
        };
        assert!(args.detach && !args.sig_proxy);
        let plan = args.container.plan(args.detach, &ThisProcess).expect("plan");
        assert_eq!(plan.request.config.hostname, "box");
        assert!(plan.request.host_config.auto_remove);
        assert_eq!(plan.request.config.cmd, Some(vec!["sleep".to_owned(), "1".to_owned()]));
        let Cli::Run(args) = parse("run --sig-proxy busybox") else { panic!("run") };
        assert!(args.sig_proxy);
        let Cli::Run(args) = parse("run busybox -d") else { panic!("run") };
        assert!(!args.detach && args.sig_proxy);
        // `create` has no -d: docker's unknown-flag error, from the plan.
        let Cli::Create(args) = parse("create -d busybox") else { panic!("create") };
        let err = args.container.plan(false, &ThisProcess).expect_err("no -d");
        assert_eq!(err.to_string(), "unknown shorthand flag: 'd' in -d");
        assert!(matches!(parse("create -it busybox"), Cli::Create(_)));
    }

    #[test]
    fn usage_lines_read_like_dockers() {
        use clap::CommandFactory as _;
        let mut command = Cli::command();
        let run = command.find_subcommand_mut("run").expect("run");
        assert_eq!(
            run.render_usage().to_string(),
            "Usage: kiln run [OPTIONS] IMAGE [COMMAND] [ARG...]"
        );
        let help = run.render_help().to_string();
        assert!(help.contains("-h, --hostname <string>"), "{help}");
        assert!(help.contains("--help"), "{help}");
    }

    #[test]
    fn start_and_attach_take_dockers_flags() {
        let Cli::Start(args) = parse("start -ai --detach-keys ctrl-x web") else { panic!() };
        assert!(args.attach && args.interactive);
        assert_eq!(args.detach_keys.as_deref(), Some("ctrl-x"));
        assert_eq!(args.containers, ["web"]);
        let Cli::Attach(args) = parse("attach --no-stdin --sig-proxy=false web") else { panic!() };
        assert!(args.no_stdin && !args.sig_proxy);
        assert_eq!(args.container, "web");
    }

    #[test]
    fn start_failures_map_to_dockers_exit_codes() {
        let not_found = "Error response from daemon: failed to create task: exec: \"nope\": \
                         executable file not found in $PATH";
        assert_eq!(start_failure_code(not_found), 127);
        assert_eq!(start_failure_code("exec /bin/x: no such file or directory"), 127);
        assert_eq!(start_failure_code("exec /etc/passwd: permission denied"), 126);
        assert_eq!(start_failure_code("exec /etc: is a directory"), 126);
        assert_eq!(start_failure_code("No such image: busybox:latest"), 125);
        assert_eq!(start_failure_code("Minimum memory limit allowed is 6MB"), 125);
    }

    #[test]
    fn exit_statuses_keep_the_low_byte() {
        assert_eq!(exit_status(0), 0);
        assert_eq!(exit_status(3), 3);
        assert_eq!(exit_status(137), 137);
        assert_eq!(exit_status(256 + 2), 2);
        assert_eq!(exit_status(-1), 255);
    }

    #[test]
    fn a_failed_wait_is_125() {
        let ok = ContainerWaitResponse { status_code: 42, error: None };
        assert_eq!(wait_status(Ok(ok)).expect("status"), 42);
        let failed = ContainerWaitResponse {
            status_code: 0,
            error: Some(kiln_api_types::WaitError { message: "boom".to_owned() }),
        };
        let failure = wait_status(Ok(failed)).expect_err("failure");
        assert_eq!(failure.code, 125);
        assert_eq!(failure.message.as_deref(), Some("Error waiting for container: boom"));
        let empty = ContainerWaitResponse {
            status_code: 1,
            error: Some(kiln_api_types::WaitError { message: String::new() }),
        };
        assert_eq!(wait_status(Ok(empty)).expect("status"), 1);
    }

    #[test]
    fn failures_print_like_docker_run() {
        let failure = Failure::with_help("run", "invalid reference format", 125);
        assert_eq!(
            failure.message.as_deref(),
            Some("kiln: invalid reference format\n\nRun 'kiln run --help' for more information")
        );
        let pflag = FlagError::UnknownFlag("--bogus".to_owned());
        let failure = Failure::flag("create", CREATE_USAGE, &pflag);
        assert_eq!(
            failure.message.as_deref(),
            Some(
                "unknown flag: --bogus\n\nUsage:  kiln create [OPTIONS] IMAGE [COMMAND] [ARG...]\
                 \n\nRun 'kiln create --help' for more information"
            )
        );
        assert_eq!(failure.code, 125);
        let conflict = FlagError::Conflict { first: "--attach", second: "--detach" };
        let failure = Failure::flag("run", CREATE_USAGE, &conflict);
        assert_eq!(
            (failure.code, failure.message.as_deref()),
            (1, Some("conflicting options: cannot specify both --attach and --detach"))
        );
        let api = ClientError::Api {
            status: "404".parse().expect("status"),
            message: "No such image: busybox:latest".to_owned(),
        };
        assert!(is_missing_image(&api));
        assert_eq!(
            daemon_message(&api.into()),
            "Error response from daemon: No such image: busybox:latest"
        );
        let other = ClientError::Api {
            status: "404".parse().expect("status"),
            message: "No such container: x".to_owned(),
        };
        assert!(!is_missing_image(&other));
    }

    #[test]
    fn detach_keys_default_here_and_go_to_the_daemon_as_given() {
        let default = DetachKeys::parse(None);
        assert_eq!((default.text(), default.bytes.as_slice()), (None, &[16u8, 17][..]));
        let custom = DetachKeys::parse(Some("ctrl-x,x"));
        assert_eq!((custom.text(), custom.bytes.as_slice()), (Some("ctrl-x,x"), &[24u8, b'x'][..]));
        let bad = DetachKeys::parse(Some("ctrl-"));
        assert_eq!((bad.text(), bad.bytes.as_slice()), (Some("ctrl-"), &[16u8, 17][..]));
    }

    #[test]
    fn a_cidfile_is_refused_when_it_exists_and_removed_unless_written() {
        let dir = std::env::temp_dir().join(format!("kiln-t-cid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("cid");
        let cid = CidFile::create(&path).expect("create");
        assert!(path.exists());
        assert_eq!(
            CidFile::create(&path).expect_err("exists").to_string(),
            format!(
                "container ID file found, make sure the other container isn't running or delete {}",
                path.display()
            )
        );
        drop(cid);
        assert!(!path.exists(), "an unwritten cid file is removed");
        CidFile::create(&path).expect("create").write("abc123").expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "abc123");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
