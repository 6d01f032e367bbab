//! `kiln build` and `kiln image build`: an image from a Dockerfile, built
//! by the daemon (`POST /build`), with docker's flags and BuildKit's
//! progress output.
//!
//! Everything that can be wrong here is found before anything is sent:
//! flags, the context directory, the Dockerfile, `.dockerignore`, secret
//! files. The context is then tarred on a blocking thread while it is
//! uploaded ([`context`]). The daemon answers with the classic builder's
//! messages, which [`progress`] reads into steps as they come: BuildKit's
//! plain lines on stdout, or its live display on stderr, or with `-q` the
//! image id alone.

mod context;
mod progress;

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{self, IsTerminal as _, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use clap::{ArgAction, Args, ValueEnum};
use kiln_client::{BuildMessage, BuildOptions, BuildSecret, ClientError, Host};

use self::context::{prepare, write_context, ContextArgs};
use self::progress::{redraw, Progress};
use crate::terminal::Size;
use crate::GlobalArgs;

/// Secrets travel in one request header; hyper, like most servers, takes
/// a few hundred KiB of headers at most, and base64 twice grows them 16/9.
const MAX_SECRET_BYTES: usize = 128 * 1024;

/// How often the tty display is redrawn, at most (BuildKit's rate).
const REDRAW: Duration = Duration::from_millis(100);
/// How often the terminal's size is read again while the display runs:
/// each read runs `stty`.
const RESIZE_CHECK: Duration = Duration::from_secs(1);

#[derive(Debug, Args)]
#[command(
    override_usage = "kiln build [OPTIONS] PATH | -",
    after_help = "\
PATH is the build context, a directory sent to the daemon as a tar with the
files .dockerignore leaves out; `-` reads a tar (or a lone Dockerfile) from
stdin. The daemon runs the build (see docs/build.md).

--progress plain prints BuildKit's lines on stdout (`#3 [2/4] RUN make`, the
step's output as `#3 0.412 TEXT`, `#3 DONE 1.2s` or `#3 CACHED`); tty draws
BuildKit's live display on stderr; auto is tty when stdout and stderr are
terminals, else plain; quiet is -q.

Examples:
  kiln build -t app:1 .
  kiln build -f docker/app.Dockerfile --build-arg VERSION=2 -t app .
  kiln build --secret id=npmrc,src=$HOME/.npmrc -q ."
)]
pub struct BuildArgs {
    /// Add a custom host-to-IP mapping ("host:ip")
    #[arg(long = "add-host", value_name = "list")]
    add_host: Vec<String>,
    /// Set build-time variables (NAME=VALUE, or NAME to take it from the environment)
    #[arg(long = "build-arg", value_name = "list")]
    build_arg: Vec<String>,
    /// External cache sources (e.g. "type=local,src=path/to/dir")
    #[arg(long = "cache-from", value_name = "strings")]
    cache_from: Vec<String>,
    /// Cache export destinations (e.g. "type=local,dest=path/to/dir")
    #[arg(long = "cache-to", value_name = "strings")]
    cache_to: Vec<String>,
    /// Build twice and fail unless both builds give the same image (Kiln)
    #[arg(long = "check-reproducible")]
    check_reproducible: bool,
    /// Name of the Dockerfile (default: "PATH/Dockerfile"; "-" reads it from stdin)
    #[arg(short = 'f', long = "file", value_name = "string")]
    file: Option<String>,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    force_rm: bool,
    /// Write the image ID to the file
    #[arg(long = "iidfile", value_name = "string")]
    iidfile: Option<PathBuf>,
    /// Set metadata for an image
    #[arg(long = "label", value_name = "list")]
    label: Vec<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long = "network", value_name = "string")]
    network: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// Do not cache specified stages
    #[arg(long = "no-cache-filter", value_name = "stringArray")]
    no_cache_filter: Vec<String>,
    /// Set platform if server is multi-platform capable (default: $DOCKER_DEFAULT_PLATFORM)
    #[arg(long = "platform", value_name = "string")]
    platform: Option<String>,
    /// Set type of progress output ("auto", "plain", "tty", "quiet")
    #[arg(
        long = "progress",
        value_name = "string",
        value_enum,
        default_value_t = ProgressMode::Auto,
        hide_possible_values = true
    )]
    progress: ProgressMode,
    /// Always attempt to pull a newer version of the image
    #[arg(long = "pull")]
    pull: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Remove intermediate containers after a successful build
    #[arg(
        long = "rm",
        value_name = "bool",
        hide_possible_values = true,
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    rm: bool,
    /// Secret to expose to the build (format: "id=mysecret[,src=/local/secret]" or "id=mysecret,env=VAR")
    #[arg(long = "secret", value_name = "stringArray")]
    secret: Vec<String>,
    /// Size of "/dev/shm"
    #[arg(long = "shm-size", value_name = "bytes")]
    shm_size: Option<String>,
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag", value_name = "list")]
    tag: Vec<String>,
    /// Set the target build stage to build
    #[arg(long = "target", value_name = "string")]
    target: Option<String>,
    /// Ulimit options
    #[arg(long = "ulimit", value_name = "ulimit")]
    ulimit: Vec<String>,
    /// The build context: a directory, or - for a tar or a Dockerfile on stdin
    #[arg(value_name = "PATH | -")]
    context: String,
}

/// `--progress`, BuildKit's modes, computed here from the classic
/// builder's stream (see [`progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProgressMode {
    /// `tty` on a terminal, else `plain`.
    Auto,
    /// `#3 [2/4] RUN make`, its output, `#3 DONE 1.2s`: lines for logs.
    Plain,
    /// A display redrawn in place on stderr.
    Tty,
    /// `-q`.
    Quiet,
}

impl ProgressMode {
    /// What `auto` is here. BuildKit draws its display when its output is
    /// a terminal; here both must be: the plain lines go to stdout, which
    /// `kiln build . > build.log` keeps, and the display's width is read
    /// from stdout's terminal.
    fn resolve(self, quiet: bool) -> ProgressMode {
        match self {
            _ if quiet => ProgressMode::Quiet,
            ProgressMode::Auto if io::stdout().is_terminal() && io::stderr().is_terminal() => {
                ProgressMode::Tty
            }
            ProgressMode::Auto => ProgressMode::Plain,
            other => other,
        }
    }
}

/// A flag value docker refuses while parsing (pflag's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid argument \"{value}\" for \"{flag}\" flag: {reason}")]
struct FlagError {
    flag: &'static str,
    value: String,
    reason: String,
}

fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> FlagError {
    FlagError { flag, value: value.to_owned(), reason: reason.into() }
}

/// What the flags may read from where `kiln` runs: injected so tests can
/// give their own.
trait Local {
    fn var(&self, name: &str) -> Option<String>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
}

struct ThisProcess;

impl Local for ThisProcess {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

/// A failed build: what to print (one line) and the exit code.
#[derive(Debug)]
struct Failure {
    line: String,
    code: u8,
}

impl Failure {
    /// An error as every kiln command prints it, exit 1.
    fn from_error(err: impl Into<anyhow::Error>) -> Failure {
        Failure { line: crate::error_line(&err.into()), code: 1 }
    }
}

pub(crate) async fn run(global: &GlobalArgs, args: &BuildArgs) -> u8 {
    match build(global, args).await {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("{}", failure.line);
            failure.code
        }
    }
}

async fn build(global: &GlobalArgs, args: &BuildArgs) -> Result<(), Failure> {
    // docker's exit code for a flag it refuses.
    let mut options = options(args, &ThisProcess)
        .map_err(|err| Failure { line: format!("Error: {err}"), code: 125 })?;
    if let Some(iidfile) = &args.iidfile {
        match std::fs::remove_file(iidfile) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(Failure::from_error(anyhow::Error::new(err).context(format!(
                    "cannot remove the old image ID file {}",
                    iidfile.display()
                ))))
            }
        }
    }
    let cwd = std::env::current_dir().map_err(|err| {
        Failure::from_error(anyhow::Error::new(err).context("cannot find the current directory"))
    })?;
    // A Git repository is fetched by the daemon (`remote=`), as dockerd
    // does; `-f` then names the Dockerfile inside it.
    let remote = Some(args.context.clone()).filter(|c| is_git_url(c));
    let plan = match &remote {
        Some(_) => None,
        None => {
            let context_args = ContextArgs {
                path: &args.context,
                file: args.file.as_deref(),
                cwd: &cwd,
                generated_name: format!(".dockerfile.{}", random_hex(20)),
            };
            let plan =
                prepare(&context_args, &mut io::stdin().lock()).map_err(Failure::from_error)?;
            options.dockerfile = plan.dockerfile.clone();
            Some(plan)
        }
    };
    if remote.is_some() {
        options.dockerfile = args.file.clone();
        options.remote = remote;
    }

    let client = crate::connect(global).await.map_err(Failure::from_error)?;
    if let (false, Host::Tcp(addr)) = (options.secrets.is_empty(), client.host()) {
        return Err(Failure::from_error(anyhow::anyhow!(
            "build secrets are sent only over a unix socket, not to tcp://{addr}"
        )));
    }
    let (body, writer) =
        kiln_client::spawn_body_writer(move |out: &mut dyn io::Write| match &plan {
            Some(plan) => write_context(plan, out, &mut io::stdin().lock()),
            None => Ok(()),
        });
    let mode = args.progress.resolve(options.quiet);
    let started = Instant::now();
    let output = Mutex::new(Output::new(mode));
    let build = client
        .image_build(body, &options, |message| lock(&output, started.elapsed()).show(message));
    let built = if mode == ProgressMode::Tty {
        // The display moves while no message comes: a running step's time.
        tokio::pin!(build);
        let mut ticks = tokio::time::interval(REDRAW);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                built = &mut build => break built,
                _ = ticks.tick() => lock(&output, started.elapsed()).draw(),
            }
        }
    } else {
        build.await
    };
    let mut output = output.into_inner().unwrap_or_else(PoisonError::into_inner);
    output.now = started.elapsed();
    let written = writer.await.map_err(|err| {
        Failure::from_error(anyhow::anyhow!("the task sending the build context failed: {err}"))
    });
    let id = match (built, written) {
        (_, Err(failure)) => Err(failure),
        // A file that could not be sent explains a daemon's error about a
        // broken upload; a cut upload is explained by the daemon's answer.
        (built, Ok(Err(err))) if !err.is_upload_cut() || built.is_ok() => {
            Err(Failure::from_error(err))
        }
        // docker-compat: dockerd answers `-q` with the id as stream text only.
        (Ok(id), _) => Ok(id.or_else(|| output.quiet_id())),
        (Err(ClientError::Stream { message }), _) => {
            // docker-compat: `-q` shows what it held back when the build fails.
            output.show_held();
            Err(Failure { line: message, code: 1 })
        }
        (Err(err), _) => Err(Failure::from_error(err)),
    };
    match &id {
        Ok(_) => output.finish(),
        Err(failure) => output.fail(&failure.line),
    }
    finish(args, options.quiet, id?.as_deref())
}

/// Whether the context argument names a Git repository, by docker's rules:
/// `git://`, `git@`, `github.com/`, or an http(s) URL ending in `.git`
/// (before an optional `#ref:dir`).
fn is_git_url(context: &str) -> bool {
    let repo = context.split_once('#').map_or(context, |(r, _)| r);
    context.starts_with("git://")
        || context.starts_with("git@")
        || context.starts_with("github.com/")
        || ((repo.starts_with("https://") || repo.starts_with("http://")) && repo.ends_with(".git"))
}

/// After a build: the id for `-q`, and the `--iidfile`.
fn finish(args: &BuildArgs, quiet: bool, id: Option<&str>) -> Result<(), Failure> {
    if quiet {
        if let Some(id) = id {
            println!("{id}");
        }
    }
    if let Some(iidfile) = &args.iidfile {
        let Some(id) = id else {
            return Err(Failure::from_error(anyhow::anyhow!(
                "the daemon did not report an image ID: cannot write {}",
                iidfile.display()
            )));
        };
        std::fs::write(iidfile, id).map_err(|err| {
            Failure::from_error(
                anyhow::Error::new(err)
                    .context(format!("cannot write the image ID to {}", iidfile.display())),
            )
        })?;
    }
    Ok(())
}

/// Where the build's messages go, by `--progress`. Writes that fail (a
/// closed stdout) are ignored: they do not stop the build.
#[derive(Debug)]
struct Output {
    /// When the last message came or the clock last ticked, from the
    /// start of the build.
    now: Duration,
    view: View,
}

#[derive(Debug)]
enum View {
    /// `-q`: the text the daemon sent (a failed step's output), shown only
    /// if the build fails.
    Quiet { held: Vec<u8> },
    /// BuildKit's plain lines, on stdout.
    Plain(Progress),
    /// BuildKit's display, redrawn on stderr.
    Tty(Display),
}

/// The tty display's state on the terminal.
#[derive(Debug)]
struct Display {
    progress: Progress,
    /// Lines the last frame took, which the next one draws over.
    drawn: usize,
    size: Size,
    size_read: Instant,
}

impl Output {
    fn new(mode: ProgressMode) -> Output {
        let view = match mode {
            ProgressMode::Quiet => View::Quiet { held: Vec::new() },
            ProgressMode::Tty => View::Tty(Display {
                progress: Progress::new(false),
                drawn: 0,
                size: terminal_size(),
                size_read: Instant::now(),
            }),
            ProgressMode::Auto | ProgressMode::Plain => View::Plain(Progress::new(true)),
        };
        Output { now: Duration::ZERO, view }
    }

    fn show(&mut self, message: &BuildMessage) {
        match &mut self.view {
            View::Quiet { held } => {
                if let Some(text) = &message.stream {
                    held.extend_from_slice(text.as_bytes());
                }
            }
            View::Plain(progress) => {
                progress.message(message, self.now);
                print_lines(progress.take_lines());
            }
            // Drawn at the next tick, at most ten times a second.
            View::Tty(display) => display.progress.message(message, self.now),
        }
    }

    /// A tick of the tty display's clock.
    fn draw(&mut self) {
        if let View::Tty(display) = &mut self.view {
            display.draw(self.now, false);
        }
    }

    fn finish(&mut self) {
        self.end(None);
    }

    fn fail(&mut self, message: &str) {
        self.end(Some(message));
    }

    /// The build is over: the last plain lines, or the display's final
    /// frame (every step and its time, not cut to the screen's height)
    /// and the warnings after it. The error itself is printed by
    /// [`run`], after all this.
    fn end(&mut self, failure: Option<&str>) {
        let now = self.now;
        let progress = match &mut self.view {
            View::Quiet { .. } => return,
            View::Plain(progress) => progress,
            View::Tty(display) => &mut display.progress,
        };
        match failure {
            Some(message) => progress.fail(message, now),
            None => progress.finish(now),
        }
        match &mut self.view {
            View::Quiet { .. } => {}
            View::Plain(progress) => print_lines(progress.take_lines()),
            View::Tty(display) => {
                display.draw(now, true);
                let mut err = io::stderr().lock();
                for line in display.progress.warnings_summary() {
                    let _ = writeln!(err, "{line}");
                }
            }
        }
    }

    /// The id a quiet build's text is, as dockerd sends it for `-q`.
    fn quiet_id(&self) -> Option<String> {
        let View::Quiet { held } = &self.view else { return None };
        let text = String::from_utf8_lossy(held);
        let id = text.trim();
        (id.starts_with("sha256:") && !id.contains('\n')).then(|| id.to_owned())
    }

    /// With `-q`, what was held back, on stderr.
    fn show_held(&self) {
        if let View::Quiet { held } = &self.view {
            let _ = io::stderr().write_all(held);
        }
    }
}

impl Display {
    /// Draw the frame over the last one. Until a message comes there is
    /// nothing to draw; the final frame is drawn whole, as it will not be
    /// redrawn.
    fn draw(&mut self, now: Duration, last: bool) {
        if self.progress.is_empty() {
            return;
        }
        if self.size_read.elapsed() >= RESIZE_CHECK {
            self.size = terminal_size();
            self.size_read = Instant::now();
        }
        let width = usize::try_from(self.size.width).unwrap_or(80);
        // One line is left for the cursor under the frame.
        let height = usize::try_from(self.size.height).unwrap_or(24).saturating_sub(1);
        let frame = self.progress.frame(now, width, (!last).then_some(height));
        let mut err = io::stderr().lock();
        let _ = err.write_all(redraw(self.drawn, &frame).as_bytes());
        let _ = err.flush();
        self.drawn = frame.len();
    }
}

/// The output, its clock set to `now`.
fn lock(output: &Mutex<Output>, now: Duration) -> MutexGuard<'_, Output> {
    // A panic while drawing leaves the display as it is.
    let mut output = output.lock().unwrap_or_else(PoisonError::into_inner);
    output.now = now;
    output
}

/// The terminal's size, for the display: stdout's terminal, else
/// `$LINES` and `$COLUMNS`, else 24×80.
fn terminal_size() -> Size {
    crate::terminal::size().unwrap_or_else(|| {
        let var = |name: &str, default: u32| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        Size { height: var("LINES", 24), width: var("COLUMNS", 80) }
    })
}

fn print_lines(lines: Vec<String>) {
    if lines.is_empty() {
        return;
    }
    let mut out = io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

/// The flags as the API's options. Files and variables named by flags
/// (`--secret`, a bare `--build-arg NAME`) are read here, on the client.
fn options(args: &BuildArgs, local: &impl Local) -> Result<BuildOptions, FlagError> {
    let mut options = BuildOptions {
        no_cache: args.no_cache,
        no_cache_filter: args.no_cache_filter.clone(),
        pull: args.pull,
        network: args.network.clone().filter(|n| !n.is_empty()),
        target: args.target.clone().filter(|t| !t.is_empty()),
        quiet: args.quiet || args.progress == ProgressMode::Quiet,
        platform: args
            .platform
            .clone()
            .or_else(|| local.var("DOCKER_DEFAULT_PLATFORM"))
            .filter(|p| !p.is_empty()),
        cache_from: args.cache_from.clone(),
        cache_to: args.cache_to.clone(),
        check_reproducible: args.check_reproducible,
        remove: args.rm,
        force_remove: args.force_rm,
        ..BuildOptions::default()
    };
    for tag in &args.tag {
        crate::container_create::familiar_tagged(tag)
            .map_err(|err| invalid("-t, --tag", tag, err.to_string()))?;
        options.tags.push(tag.clone());
    }
    for arg in &args.build_arg {
        let (name, value) = build_arg(arg, local)?;
        options.build_args.insert(name, value);
    }
    for label in &args.label {
        let (key, value) = label.split_once('=').unwrap_or((label, ""));
        if key.trim().is_empty() {
            return Err(invalid("--label", label, format!("invalid label '{label}': empty name")));
        }
        options.labels.insert(key.to_owned(), value.to_owned());
    }
    for host in &args.add_host {
        options.extra_hosts.push(extra_host(host)?);
    }
    if let Some(size) = &args.shm_size {
        options.shm_size = crate::container_create::ram_in_bytes(size)
            .map_err(|reason| invalid("--shm-size", size, reason))?;
    }
    for spec in &args.ulimit {
        let ulimit = crate::container_create::parse_ulimit(spec)
            .map_err(|reason| invalid("--ulimit", spec, reason))?;
        match options.ulimits.iter_mut().find(|u| u.name == ulimit.name) {
            Some(existing) => *existing = ulimit,
            None => options.ulimits.push(ulimit),
        }
    }
    let mut ids = BTreeMap::new();
    for spec in &args.secret {
        let secret = parse_secret(spec, local)?;
        // As buildx: a later secret with the same id replaces the earlier.
        ids.insert(secret.id.clone(), secret);
    }
    options.secrets = ids.into_values().collect();
    let total: usize = options.secrets.iter().map(|s| s.data.len()).sum();
    if total > MAX_SECRET_BYTES {
        return Err(invalid(
            "--secret",
            &args.secret.join(" "),
            format!(
                "secrets are limited to {} KiB in all, got {total} bytes",
                MAX_SECRET_BYTES / 1024
            ),
        ));
    }
    Ok(options)
}

/// `--build-arg NAME=VALUE`; a bare `NAME` takes its value from our
/// environment, or is sent unset (`null`) as docker does, so that the
/// daemon can still warn that it was not used.
fn build_arg(arg: &str, local: &impl Local) -> Result<(String, Option<String>), FlagError> {
    let (name, value) = match arg.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (arg, local.var(arg)),
    };
    if name.is_empty() {
        return Err(invalid("--build-arg", arg, format!("invalid environment variable: {arg}")));
    }
    Ok((name.to_owned(), value))
}

/// `--add-host host:ip` (or `host=ip`), sent as `host:ip`; `host-gateway`
/// is the daemon's to resolve.
fn extra_host(spec: &str) -> Result<String, FlagError> {
    let bad = || invalid("--add-host", spec, format!("bad format for add-host: {spec:?}"));
    let (name, ip) = spec.split_once('=').or_else(|| spec.split_once(':')).ok_or_else(bad)?;
    if name.is_empty() {
        return Err(bad());
    }
    let bare = ip.strip_prefix('[').and_then(|ip| ip.strip_suffix(']')).unwrap_or(ip);
    if bare != "host-gateway" && bare.parse::<IpAddr>().is_err() {
        return Err(invalid("--add-host", spec, format!("invalid IP address in add-host: {ip:?}")));
    }
    Ok(format!("{name}:{bare}"))
}

/// `--secret id=NAME[,src=PATH|,env=VAR][,type=file|env]`, read now. With
/// neither `src` nor `env`, as buildx: the variable named by the id when it
/// is set, else the file named by it.
fn parse_secret(spec: &str, local: &impl Local) -> Result<BuildSecret, FlagError> {
    let flag = "--secret";
    let (mut id, mut kind, mut src, mut env) = (None, None, None, None);
    for field in spec.split(',') {
        let Some((key, value)) = field.split_once('=') else {
            return Err(invalid(
                flag,
                spec,
                format!("invalid field '{field}' must be a key=value pair"),
            ));
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "id" => id = Some(value.to_owned()),
            "type" if matches!(value, "file" | "env") => kind = Some(value.to_owned()),
            "type" => {
                return Err(invalid(flag, spec, format!("unsupported secret type {value:?}")))
            }
            "src" | "source" => src = Some(value.to_owned()),
            "env" => env = Some(value.to_owned()),
            other => {
                return Err(invalid(flag, spec, format!("unexpected key '{other}' in '{field}'")))
            }
        }
    }
    let Some(id) = id.filter(|id| !id.is_empty()) else {
        return Err(invalid(flag, spec, "a secret needs an id (id=NAME)"));
    };
    // `type=env,src=VAR` names the variable, as buildx reads it.
    if kind.as_deref() == Some("env") && env.is_none() {
        env = src.take();
    }
    let from_env = |name: &str| {
        local.var(name).map(String::into_bytes).ok_or_else(|| {
            invalid(flag, spec, format!("secret {id}: environment variable {name} is not set"))
        })
    };
    let from_file = |path: &str| {
        local.read(Path::new(path)).map_err(|err| {
            let reason = match err.kind() {
                io::ErrorKind::NotFound => "no such file or directory".to_owned(),
                io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
                _ => err.to_string(),
            };
            invalid(flag, spec, format!("secret {id}: cannot read {path}: {reason}"))
        })
    };
    let data = match (env, src, kind.as_deref()) {
        (Some(name), _, _) => from_env(&name)?,
        (None, Some(path), _) => from_file(&path)?,
        (None, None, Some("env")) => from_env(&id)?,
        (None, None, Some(_)) => from_file(&id)?,
        (None, None, None) => match local.var(&id) {
            Some(value) => value.into_bytes(),
            None => from_file(&id)?,
        },
    };
    Ok(BuildSecret { id, data })
}

/// `n` random lower-case hex digits, from the random keys the standard
/// library's hash maps get from the OS.
fn random_hex(n: usize) -> String {
    let mut out = String::new();
    let mut round = 0u64;
    while out.len() < n {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(round);
        out.push_str(&format!("{:016x}", hasher.finish()));
        round += 1;
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: BuildArgs,
    }

    fn parse(argv: &[&str]) -> BuildArgs {
        let mut full = vec!["kiln-build"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).expect("parse").args
    }

    #[derive(Default)]
    struct Fake {
        vars: HashMap<String, String>,
        files: HashMap<PathBuf, Vec<u8>>,
    }

    impl Local for Fake {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }

        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            self.files.get(path).cloned().ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
    }

    fn fake() -> Fake {
        let mut fake = Fake::default();
        fake.vars.insert("HTTP_PROXY".into(), "http://proxy:3128".into());
        fake.vars.insert("TOKEN".into(), "from-env".into());
        fake.files.insert(PathBuf::from("/home/u/.npmrc"), b"//r/:_authToken=x\n".to_vec());
        fake.files.insert(PathBuf::from("TOKEN"), b"from-file".to_vec());
        fake.files.insert(PathBuf::from("apikey"), b"file-named-by-id".to_vec());
        fake
    }

    #[test]
    fn dockers_flags_become_the_options() {
        let args = parse(&[
            "-t",
            "app:1",
            "--tag",
            "app:latest",
            "-f",
            "docker/app.Dockerfile",
            "--build-arg",
            "VERSION=2",
            "--build-arg",
            "HTTP_PROXY",
            "--build-arg",
            "UNSET",
            "--target",
            "final",
            "--no-cache",
            "--no-cache-filter",
            "deps",
            "--pull",
            "--label",
            "org.x=y",
            "--label",
            "flag",
            "--network",
            "none",
            "--add-host",
            "db:10.0.0.2",
            "--add-host",
            "v6=[::1]",
            "--shm-size",
            "64m",
            "--ulimit",
            "nofile=1024:2048",
            "--ulimit",
            "nofile=4096",
            "-q",
            "--iidfile",
            "id.txt",
            "--platform",
            "linux/amd64",
            "--progress",
            "plain",
            "--cache-from",
            "type=local,src=c",
            "--cache-to",
            "type=local,dest=c",
            "--check-reproducible",
            "--rm=false",
            "--force-rm",
            ".",
        ]);
        let options = options(&args, &fake()).expect("options");
        assert_eq!(options.tags, ["app:1", "app:latest"]);
        assert_eq!(options.build_args["VERSION"].as_deref(), Some("2"));
        assert_eq!(options.build_args["HTTP_PROXY"].as_deref(), Some("http://proxy:3128"));
        assert_eq!(options.build_args["UNSET"], None, "unset here: sent as null");
        assert_eq!(options.target.as_deref(), Some("final"));
        assert!(options.no_cache && options.pull && options.quiet && options.check_reproducible);
        assert_eq!(options.no_cache_filter, ["deps"]);
        assert_eq!(options.labels["org.x"], "y");
        assert_eq!(options.labels["flag"], "");
        assert_eq!(options.network.as_deref(), Some("none"));
        assert_eq!(options.extra_hosts, ["db:10.0.0.2", "v6:::1"]);
        assert_eq!(options.shm_size, 64 << 20);
        assert_eq!(options.ulimits.len(), 1);
        assert_eq!((options.ulimits[0].soft, options.ulimits[0].hard), (4096, 4096));
        assert_eq!(options.platform.as_deref(), Some("linux/amd64"));
        assert_eq!((options.remove, options.force_remove), (false, true));
        assert_eq!(args.iidfile.as_deref(), Some(Path::new("id.txt")));
        assert_eq!(args.context, ".");

        let plain = options_of(&["."]);
        assert!(plain.remove && !plain.quiet, "--rm is docker's default");
        assert!(options_of(&["--progress", "quiet", "."]).quiet);
        assert!(Cli::try_parse_from(["kiln-build", "--progress", "fancy", "."]).is_err());
        assert!(Cli::try_parse_from(["kiln-build"]).is_err(), "PATH is required");
    }

    fn options_of(argv: &[&str]) -> BuildOptions {
        options(&parse(argv), &fake()).expect("options")
    }

    fn error_of(argv: &[&str]) -> String {
        options(&parse(argv), &fake()).expect_err("refused").to_string()
    }

    #[test]
    fn bad_flag_values_are_refused_before_anything_is_sent() {
        assert_eq!(
            error_of(&["--shm-size", "lots", "."]),
            "invalid argument \"lots\" for \"--shm-size\" flag: invalid size: 'lots'"
        );
        assert!(error_of(&["--ulimit", "nofile", "."]).contains("invalid ulimit argument"));
        assert!(error_of(&["--add-host", "nohost", "."]).contains("bad format for add-host"));
        assert!(error_of(&["--add-host", "db:not-an-ip", "."]).contains("invalid IP address"));
        assert!(error_of(&["-t", "Bad:Tag", "."])
            .starts_with("invalid argument \"Bad:Tag\" for \"-t, --tag\""));
        assert!(error_of(&["--build-arg", "=x", "."]).contains("invalid environment variable: =x"));
        assert!(error_of(&["--label", "=x", "."]).contains("empty name"));
        assert_eq!(
            options_of(&["--add-host", "gw:host-gateway", "."]).extra_hosts,
            ["gw:host-gateway"]
        );
    }

    #[test]
    fn secrets_are_read_on_the_client_in_every_form() {
        let secret = |spec: &str| parse_secret(spec, &fake()).map(|s| (s.id, s.data));
        assert_eq!(
            secret("id=npmrc,src=/home/u/.npmrc"),
            Ok(("npmrc".into(), b"//r/:_authToken=x\n".to_vec()))
        );
        assert_eq!(secret("id=npmrc,source=/home/u/.npmrc,type=file").expect("source").0, "npmrc");
        assert_eq!(secret("id=tok,env=TOKEN"), Ok(("tok".into(), b"from-env".to_vec())));
        assert_eq!(secret("id=tok,type=env,src=TOKEN"), Ok(("tok".into(), b"from-env".to_vec())));
        // Neither src nor env: the variable named by the id, else the file.
        assert_eq!(secret("id=TOKEN"), Ok(("TOKEN".into(), b"from-env".to_vec())));
        assert_eq!(secret("id=TOKEN,type=file"), Ok(("TOKEN".into(), b"from-file".to_vec())));
        assert_eq!(secret("id=apikey"), Ok(("apikey".into(), b"file-named-by-id".to_vec())));

        let err = secret("id=npmrc,src=/nope").expect_err("missing file").to_string();
        assert!(
            err.ends_with("secret npmrc: cannot read /nope: no such file or directory"),
            "{err}"
        );
        let err = secret("id=x,env=NOPE").expect_err("unset").to_string();
        assert!(err.ends_with("secret x: environment variable NOPE is not set"), "{err}");
        assert!(secret("src=/home/u/.npmrc")
            .expect_err("no id")
            .to_string()
            .contains("needs an id"));
        assert!(secret("id=a,type=ssh").expect_err("type").to_string().contains("unsupported"));
        assert!(secret("id=a,mode=0400").expect_err("key").to_string().contains("unexpected key"));
        assert!(secret("npmrc").expect_err("bare").to_string().contains("key=value"));

        let mut big = fake();
        big.files.insert(PathBuf::from("/big"), vec![0; MAX_SECRET_BYTES + 1]);
        let err = options(&parse(&["--secret", "id=big,src=/big", "."]), &big).expect_err("big");
        assert!(err.to_string().contains("limited to 128 KiB"), "{err}");
        let one = options_of(&["--secret", "id=t,env=TOKEN", "--secret", "id=t,src=TOKEN", "."]);
        assert_eq!(one.secrets.len(), 1, "the later of one id wins");
        assert_eq!(one.secrets[0].data, b"from-file");
    }

    #[test]
    fn build_and_image_build_are_both_verbs() {
        #[derive(Debug, Parser)]
        struct Kiln {
            #[command(subcommand)]
            command: crate::Command,
        }
        let parse = |argv: &[&str]| Kiln::try_parse_from(argv).map(|k| k.command);
        assert!(matches!(parse(&["kiln", "build", "-t", "x", "."]), Ok(crate::Command::Build(_))));
        assert!(matches!(
            parse(&["kiln", "image", "build", "-q", "-"]),
            Ok(crate::Command::Image { command: crate::ImageCommand::Build(_) })
        ));
        assert!(parse(&["kiln", "build", "a", "b"]).is_err(), "one PATH");
    }

    #[test]
    fn generated_names_are_random_hex() {
        let (a, b) = (random_hex(20), random_hex(20));
        assert_eq!(a.len(), 20);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{a}");
        assert_ne!(a, b);
    }
}
