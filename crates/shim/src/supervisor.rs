//! The shim's single-threaded poll(2) loop: the container's output into
//! the log and to attach clients, clients' stdin into the container,
//! requests on the control socket, exec sessions, and reaping.
//!
//! No threads, ever: the runtime forks from this process.

use std::io::{self, Read as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_runtime::spec::Process;
use kiln_runtime::{CreateOptions, ExecOptions, RuntimeError, Store};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use crate::args::ShimArgs;
use crate::client::{Client, Role, Slots, STDIN_BACKLOG_LIMIT};
use crate::exit::{exit_code, oom_killed, write_record};
use crate::logfile::{self, LogWriter, Stream};
use crate::protocol::{
    self, encode_line, ExitRecord, FrameKind, Reply, Request, WindowSize, EXIT_FAILED, EXIT_FILE,
    EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, SOCKET_NAME,
};
use crate::rootfs;
use crate::stdio::{self, Ends};

/// How long output is drained after a process exits.
/// How long the loop stays idle before it drops its code pages again.
const IDLE_TRIM: Duration = Duration::from_secs(2);
const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// How long the shim waits for clients to take their exit frames.
const LEAVE_LIMIT: Duration = Duration::from_secs(1);
/// How much is read from one descriptor at a time.
const READ_CHUNK: usize = 32 * 1024;

/// Why the shim could not bring the container up: the ready line's error.
#[derive(Debug)]
pub(crate) struct Failure {
    pub message: String,
    pub exit_code: i32,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), exit_code: EXIT_FAILED }
    }

    fn from_error(what: &str, err: &dyn std::error::Error) -> Failure {
        Failure::new(format!("{what}: {}", error_chain(err)))
    }
}

/// `err: source: source…` on one line.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.replace('\n', " ")
}

/// A runtime failure as Docker words it (`OCI runtime create failed: …:
/// unknown`), and the exit code for it: 127/126 when the process could not
/// be run, `default` otherwise.
fn runtime_failure(op: &str, err: &RuntimeError, default: i32) -> (String, i32) {
    match err {
        RuntimeError::Init { message, exit_code } => {
            let prefix = if op == "exec" { "exec failed: " } else { "" };
            let code = match *exit_code {
                EXIT_NOT_FOUND => EXIT_NOT_FOUND,
                EXIT_NOT_EXECUTABLE => EXIT_NOT_EXECUTABLE,
                _ => default,
            };
            let message = message.replace('\n', " ");
            (
                format!("OCI runtime {op} failed: {prefix}unable to start container process: {message}: unknown"),
                code,
            )
        }
        other => (format!("OCI runtime {op} failed: {}: unknown", error_chain(other)), default),
    }
}

/// Where the container is in its life, as the shim sees it.
#[derive(Debug)]
enum Lifecycle {
    Created,
    Running,
    /// The init was reaped; its output drains until end of file or `drain_until`.
    Exited {
        exit_code: i32,
        drain_until: Instant,
    },
    /// Recorded and deleted; the shim leaves once clients have their exit
    /// frames, or at `leave_at`.
    Finished {
        record: ExitRecord,
        leave_at: Instant,
    },
}

/// A process started with the exec op.
#[derive(Debug)]
struct Exec {
    pid: i32,
    ends: Ends,
    /// The connection that streams it; `None` once that went away.
    client: Option<usize>,
    exit_code: Option<i32>,
    drain_until: Option<Instant>,
}

/// What a polled descriptor belongs to.
#[derive(Debug, Clone, Copy)]
enum Token {
    Signals,
    Listener,
    MainSource(usize),
    MainStdin,
    Client(usize),
    ExecSource(usize, usize),
    ExecStdin(usize),
}

#[derive(Debug)]
pub(crate) struct Supervisor {
    id: String,
    store: Store,
    state_dir: PathBuf,
    stdin_once: bool,
    init_pid: i32,
    lifecycle: Lifecycle,
    main: Ends,
    log: LogWriter,
    log_failed: bool,
    listener: Option<UnixListener>,
    signals: SignalFd,
    devnull: OwnedFd,
    clients: Slots<Client>,
    execs: Slots<Exec>,
    memory_cgroup: Option<PathBuf>,
    rootfs: Option<PathBuf>,
    deleted: bool,
    terminated: bool,
    /// When to give code pages back again, once the loop has been idle for
    /// [`IDLE_TRIM`]: serving a client faults them back in.
    trim_at: Option<Instant>,
    exec_seq: u64,
    buf: Vec<u8>,
}

/// Binds the control socket (mode 0600) in the current directory, which
/// is the state dir: a relative name keeps clear of the 108-byte limit.
fn listen() -> io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(SOCKET_NAME);
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = UnixListener::bind(SOCKET_NAME);
    nix::sys::stat::umask(old);
    let listener = listener?;
    std::fs::set_permissions(SOCKET_NAME, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

impl Supervisor {
    /// Mounts the rootfs, opens the log and the socket, and creates the
    /// container through the runtime. On failure nothing is left behind.
    pub fn start_up(
        args: &ShimArgs,
        state_dir: PathBuf,
        devnull: OwnedFd,
        signals: SignalFd,
    ) -> Result<Supervisor, Failure> {
        let store = Store::new(&args.runtime_root);
        let log = LogWriter::open(&args.log_path).map_err(|e| {
            Failure::new(format!("cannot open log {}: {e}", args.log_path.display()))
        })?;
        let listener =
            listen().map_err(|e| Failure::new(format!("cannot listen on {SOCKET_NAME}: {e}")))?;
        let unlisten = || {
            let _ = std::fs::remove_file(SOCKET_NAME);
        };
        if let Ok(spec) = kiln_runtime::Spec::load(&args.bundle) {
            let terminal = spec.process.as_ref().is_some_and(|p| p.terminal);
            if terminal != args.tty {
                unlisten();
                return Err(Failure::new(format!(
                    "--tty is {} but process.terminal in config.json is {terminal}",
                    args.tty
                )));
            }
        }
        let rootfs = match rootfs::load(&args.bundle).and_then(|spec| {
            let Some(spec) = spec else { return Ok(None) };
            let target = args.bundle.join("rootfs");
            rootfs::mount(&spec, &target).map(|()| Some(target))
        }) {
            Ok(target) => target,
            Err(e) => {
                unlisten();
                return Err(Failure::from_error("cannot mount the rootfs", &e));
            }
        };
        let undo = |rootfs: &Option<PathBuf>| {
            unlisten();
            if let Some(target) = rootfs {
                rootfs::unmount(target);
            }
        };
        let created = (|| {
            let (prepared, console) = stdio::prepare(args.tty, args.open_stdin, devnull.as_fd())
                .map_err(|e| Failure::new(format!("cannot make the container's stdio: {e}")))?;
            let opts = CreateOptions {
                bundle: args.bundle.clone(),
                pid_file: None,
                console,
                no_pivot: false,
                preserve_fds: 0,
            };
            let state = prepared
                .with_stdio(devnull.as_fd(), || kiln_runtime::create(&store, &args.id, opts))
                .map_err(|e| Failure::new(format!("cannot pass stdio to the runtime: {e}")))?
                .map_err(|e| {
                    let (message, exit_code) = runtime_failure("create", &e, EXIT_FAILED);
                    Failure { message, exit_code }
                })?;
            match prepared.finish() {
                Ok(ends) => Ok((state, ends)),
                Err(e) => {
                    let _ = kiln_runtime::delete(&store, &args.id, true);
                    Err(Failure::new(format!("cannot take the container's stdio: {e}")))
                }
            }
        })();
        let (state, main) = match created {
            Ok(created) => created,
            Err(failure) => {
                undo(&rootfs);
                return Err(failure);
            }
        };
        tracing::info!(container = %args.id, pid = state.pid, "container created");
        Ok(Supervisor {
            id: args.id.clone(),
            store,
            state_dir,
            // docker-compat: with a terminal, a client going away is a
            // detach, not the end of input (Docker closes stdin once only
            // without a tty).
            stdin_once: args.stdin_once && !args.tty,
            init_pid: state.pid,
            lifecycle: Lifecycle::Created,
            main,
            log,
            log_failed: false,
            listener: Some(listener),
            signals,
            devnull,
            clients: Slots::default(),
            execs: Slots::default(),
            memory_cgroup: state.cgroup.dir("memory").map(Path::to_path_buf),
            rootfs,
            deleted: false,
            terminated: false,
            trim_at: None,
            exec_seq: 0,
            buf: vec![0; READ_CHUNK],
        })
    }

    pub fn init_pid(&self) -> i32 {
        self.init_pid
    }

    /// Runs until the container is gone and its clients are served.
    pub fn run(mut self) {
        while !self.should_leave() {
            let events = match self.wait_for_events() {
                Ok(events) => events,
                Err(e) => {
                    tracing::error!(container = %self.id, "poll failed: {e}");
                    break;
                }
            };
            let idle = events.is_empty();
            for (token, revents) in events {
                self.handle(token, revents);
            }
            self.advance();
            self.trim_when_idle(idle);
        }
        self.leave();
    }

    /// An idle shim of a running container keeps only the pages its loop
    /// needs: after a burst of work, once nothing happened for a while, the
    /// code and read-only data it faulted back in are dropped again.
    fn trim_when_idle(&mut self, idle: bool) {
        if !matches!(self.lifecycle, Lifecycle::Running) {
            self.trim_at = None;
        } else if !idle {
            self.trim_at = Some(Instant::now() + IDLE_TRIM);
        } else if self.trim_at.is_some_and(|at| Instant::now() >= at) {
            self.trim_at = None;
            if let Err(e) = kiln_sys::memory::release_code_pages() {
                tracing::debug!(error = %e, "cannot release code pages");
            }
        }
    }

    fn should_leave(&self) -> bool {
        match &self.lifecycle {
            _ if self.terminated => true,
            Lifecycle::Finished { leave_at, .. } => {
                (self.clients.is_empty() && self.execs.is_empty()) || Instant::now() >= *leave_at
            }
            _ => false,
        }
    }

    /// The soonest deadline, as poll's timeout.
    fn timeout(&self) -> PollTimeout {
        let mut deadlines: Vec<Instant> =
            self.execs.iter().filter_map(|(_, e)| e.drain_until).collect();
        deadlines.extend(self.trim_at);
        match &self.lifecycle {
            Lifecycle::Exited { drain_until, .. } => deadlines.push(*drain_until),
            Lifecycle::Finished { leave_at, .. } => deadlines.push(*leave_at),
            _ => {}
        }
        match deadlines.into_iter().min() {
            None => PollTimeout::NONE,
            Some(at) => {
                let wait = at.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
                PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    fn wait_for_events(&self) -> io::Result<Vec<(Token, PollFlags)>> {
        let mut wanted: Vec<(BorrowedFd<'_>, PollFlags, Token)> = Vec::new();
        let mut add = |fd, flags, token| wanted.push((fd, flags, token));
        let (pollin, pollout) = (PollFlags::POLLIN, PollFlags::POLLOUT);
        add(self.signals.as_fd(), pollin, Token::Signals);
        if let Some(listener) = &self.listener {
            add(listener.as_fd(), pollin, Token::Listener);
        }
        for (i, source) in self.main.sources.iter().enumerate() {
            if let Some(source) = source {
                add(source.fd.as_fd(), pollin, Token::MainSource(i));
            }
        }
        if let Some(sink) = self.main.stdin.as_ref().filter(|s| s.backlog() > 0) {
            add(sink.fd(), pollout, Token::MainStdin);
        }
        for (key, exec) in self.execs.iter() {
            for (i, source) in exec.ends.sources.iter().enumerate() {
                if let Some(source) = source {
                    add(source.fd.as_fd(), pollin, Token::ExecSource(key, i));
                }
            }
            if let Some(sink) = exec.ends.stdin.as_ref().filter(|s| s.backlog() > 0) {
                add(sink.fd(), pollout, Token::ExecStdin(key));
            }
        }
        for (key, client) in self.clients.iter() {
            let mut flags = PollFlags::empty();
            if client.reading && !self.stdin_backlogged(client.role) {
                flags |= pollin;
            }
            if !client.out.is_empty() {
                flags |= pollout;
            }
            add(client.sock.as_fd(), flags, Token::Client(key));
        }
        let (mut fds, tokens): (Vec<PollFd<'_>>, Vec<Token>) =
            wanted.into_iter().map(|(fd, flags, token)| (PollFd::new(fd, flags), token)).unzip();
        match nix::poll::poll(&mut fds, self.timeout()) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(fds
            .iter()
            .zip(tokens)
            .filter_map(|(fd, token)| Some((token, fd.revents().filter(|r| !r.is_empty())?)))
            .collect())
    }

    /// Whether a client's stdin would go to a process that is not keeping up.
    fn stdin_backlogged(&self, role: Role) -> bool {
        let sink = match role {
            Role::Attach { stdin: true, .. } => self.main.stdin.as_ref(),
            Role::Exec { key, stdin: true } => {
                self.execs.get(key).and_then(|e| e.ends.stdin.as_ref())
            }
            _ => None,
        };
        sink.is_some_and(|s| s.backlog() > STDIN_BACKLOG_LIMIT)
    }

    fn handle(&mut self, token: Token, revents: PollFlags) {
        let readable =
            revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR);
        match token {
            Token::Signals => self.on_signals(),
            Token::Listener => self.accept(),
            Token::MainSource(i) if readable => self.read_main(i),
            Token::ExecSource(key, i) if readable => self.read_exec(key, i),
            Token::MainSource(_) | Token::ExecSource(..) => {}
            // Pending stdin is written in `advance`; a reader that went away
            // leaves nothing to write to.
            Token::MainStdin if revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP) => {
                self.main.stdin = None;
            }
            Token::ExecStdin(key)
                if revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP) =>
            {
                if let Some(exec) = self.execs.get_mut(key) {
                    exec.ends.stdin = None;
                }
            }
            Token::MainStdin | Token::ExecStdin(_) => {}
            Token::Client(key) => {
                if revents.contains(PollFlags::POLLIN) {
                    self.read_client(key);
                } else if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                    self.drop_client(key);
                }
            }
        }
    }

    // ---- signals and reaping ----

    fn on_signals(&mut self) {
        let mut reap = false;
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => reap = true,
                Ok(signal @ (Signal::SIGTERM | Signal::SIGINT)) => {
                    if matches!(self.lifecycle, Lifecycle::Created) {
                        tracing::info!(container = %self.id, ?signal, "told to stop before start: cleaning up");
                        self.terminated = true;
                    } else {
                        tracing::info!(container = %self.id, ?signal, "ignored: the container is started");
                    }
                }
                _ => {}
            }
        }
        if reap {
            self.reap();
        }
    }

    fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(status) => {
                    if let Some((pid, code)) = exit_code(status) {
                        self.on_exit(pid, code);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
    }

    fn on_exit(&mut self, pid: i32, code: i32) {
        let drain_until = Instant::now() + DRAIN_LIMIT;
        if pid == self.init_pid && matches!(self.lifecycle, Lifecycle::Created | Lifecycle::Running)
        {
            tracing::info!(container = %self.id, pid, exit_code = code, "container exited");
            self.lifecycle = Lifecycle::Exited { exit_code: code, drain_until };
            return;
        }
        if let Some((_, exec)) =
            self.execs.iter_mut().find(|(_, e)| e.pid == pid && e.exit_code.is_none())
        {
            tracing::debug!(container = %self.id, pid, exit_code = code, "exec exited");
            exec.exit_code = Some(code);
            exec.drain_until = Some(drain_until);
        }
    }

    // ---- output ----

    fn read_main(&mut self, i: usize) {
        let Some(Some(source)) = self.main.sources.get(i) else { return };
        let stream = source.stream;
        let mut buf = std::mem::take(&mut self.buf);
        match nix::unistd::read(source.fd.as_fd(), &mut buf) {
            Ok(0) | Err(Errno::EIO) => self.end_main_source(i),
            Ok(n) => self.on_main_output(stream, &buf[..n]),
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!(container = %self.id, "cannot read the container's {}: {e}", stream.as_str());
                self.end_main_source(i);
            }
        }
        self.buf = buf;
    }

    fn end_main_source(&mut self, i: usize) {
        if let Some(source) = self.main.sources.get_mut(i).and_then(Option::take) {
            let result = self.log.finish(source.stream, logfile::now());
            self.note_log_result(result);
        }
    }

    fn on_main_output(&mut self, stream: Stream, data: &[u8]) {
        let result = self.log.write(stream, data, logfile::now());
        self.note_log_result(result);
        let kind = frame_kind(stream);
        for (_, client) in self.clients.iter_mut() {
            if let Role::Attach { stdout, stderr, .. } = client.role {
                let wanted = match stream {
                    Stream::Stdout => stdout,
                    Stream::Stderr => stderr,
                };
                if wanted && !client.closing {
                    client.out.push_frame(kind, data);
                }
            }
        }
    }

    fn note_log_result(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => self.log_failed = false,
            Err(e) if !self.log_failed => {
                tracing::error!(container = %self.id, "cannot write the container log: {e}");
                self.log_failed = true;
            }
            Err(_) => {}
        }
    }

    fn read_exec(&mut self, key: usize, i: usize) {
        let Some(exec) = self.execs.get_mut(key) else { return };
        let Some(Some(source)) = exec.ends.sources.get(i) else { return };
        let stream = source.stream;
        let mut buf = std::mem::take(&mut self.buf);
        match nix::unistd::read(source.fd.as_fd(), &mut buf) {
            Ok(0) | Err(Errno::EIO) => {
                exec.ends.sources[i] = None;
            }
            Ok(n) => {
                let target = exec.client;
                if let Some(client) = target.and_then(|k| self.clients.get_mut(k)) {
                    if !client.closing {
                        client.out.push_frame(frame_kind(stream), &buf[..n]);
                    }
                }
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(_) => exec.ends.sources[i] = None,
        }
        self.buf = buf;
    }

    // ---- clients ----

    fn accept(&mut self) {
        let Some(listener) = &self.listener else { return };
        loop {
            match listener.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_ok() {
                        self.clients.insert(Client::new(sock));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    fn read_client(&mut self, key: usize) {
        let Some(client) = self.clients.get_mut(key) else { return };
        let mut buf = std::mem::take(&mut self.buf);
        match (&client.sock).read(&mut buf) {
            Ok(0) => self.client_eof(key),
            Ok(n) => self.on_client_bytes(key, &buf[..n]),
            Err(e)
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(_) => self.drop_client(key),
        }
        self.buf = buf;
    }

    fn on_client_bytes(&mut self, key: usize, bytes: &[u8]) {
        let Some(client) = self.clients.get_mut(key) else { return };
        match client.role {
            Role::Request => {
                let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                    client.line.extend_from_slice(bytes);
                    if client.line.len() > protocol::MAX_REQUEST_LINE {
                        self.reply_and_close(key, &Reply::error("request line too long"));
                    }
                    return;
                };
                client.line.extend_from_slice(&bytes[..end]);
                client.frames.push(&bytes[end + 1..]);
                let line = std::mem::take(&mut client.line);
                match protocol::parse_request(&line) {
                    Ok(request) => self.on_request(key, request),
                    Err(e) => {
                        tracing::debug!(container = %self.id, "bad request: {e}");
                        self.reply_and_close(key, &Reply::error(format!("invalid request: {e}")));
                    }
                }
                self.on_frames(key);
            }
            Role::Attach { .. } | Role::Exec { .. } => {
                client.frames.push(bytes);
                self.on_frames(key);
            }
            Role::Wait | Role::Replied => {}
        }
    }

    /// The client's end of stream: its stdin is over.
    fn client_eof(&mut self, key: usize) {
        let Some(client) = self.clients.get_mut(key) else { return };
        client.reading = false;
        match client.role {
            Role::Request => self.drop_client(key),
            _ => self.close_client_stdin(key),
        }
    }

    fn on_frames(&mut self, key: usize) {
        loop {
            let Some(client) = self.clients.get_mut(key) else { return };
            if !matches!(client.role, Role::Attach { .. } | Role::Exec { .. }) {
                return;
            }
            let frame = match client.frames.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(container = %self.id, "bad frame from a client: {e}");
                    self.drop_client(key);
                    return;
                }
            };
            let (role, stdin_closed) = (client.role, client.stdin_closed);
            match frame.kind {
                FrameKind::Stdin if !stdin_closed => {
                    if let Some(sink) = self.stdin_of(role) {
                        sink.push(&frame.payload);
                    }
                }
                FrameKind::Stdin => {}
                FrameKind::CloseStdin => self.close_client_stdin(key),
                FrameKind::Resize => match serde_json::from_slice::<WindowSize>(&frame.payload) {
                    Ok(size) => {
                        let exec = match role {
                            Role::Exec { key, .. } => Some(key),
                            _ => None,
                        };
                        if let Err(e) = self.resize(exec, size) {
                            tracing::debug!(container = %self.id, "resize: {e}");
                        }
                    }
                    Err(e) => tracing::debug!(container = %self.id, "bad resize frame: {e}"),
                },
                FrameKind::Stdout | FrameKind::Stderr | FrameKind::Exit => {
                    tracing::debug!(container = %self.id, kind = ?frame.kind, "unexpected frame from a client");
                    self.drop_client(key);
                    return;
                }
            }
        }
    }

    /// The stdin a client with `role` writes to, if it may.
    fn stdin_of(&mut self, role: Role) -> Option<&mut crate::client::StdinSink> {
        match role {
            Role::Attach { stdin: true, .. } => self.main.stdin.as_mut(),
            Role::Exec { key, stdin: true } => {
                self.execs.get_mut(key).and_then(|e| e.ends.stdin.as_mut())
            }
            _ => None,
        }
    }

    /// This client's stdin is over: an exec's stdin closes; the container's
    /// closes with --stdin-once, else this client just stops sending.
    fn close_client_stdin(&mut self, key: usize) {
        let Some(client) = self.clients.get_mut(key) else { return };
        if client.stdin_closed {
            return;
        }
        client.stdin_closed = true;
        let role = client.role;
        let close = match role {
            Role::Attach { stdin: true, .. } => self.stdin_once,
            Role::Exec { stdin: true, .. } => true,
            _ => false,
        };
        if close {
            if let Some(sink) = self.stdin_of(role) {
                sink.close_when_drained();
            }
        }
    }

    fn drop_client(&mut self, key: usize) {
        self.close_client_stdin(key);
        let Some(client) = self.clients.remove(key) else { return };
        if let Role::Exec { key: exec, .. } = client.role {
            if let Some(exec) = self.execs.get_mut(exec).filter(|e| e.client == Some(key)) {
                exec.client = None;
            }
        }
    }

    fn reply(&mut self, key: usize, reply: &Reply, role: Role) {
        if let Some(client) = self.clients.get_mut(key) {
            client.out.push(&encode_line(reply));
            client.role = role;
            if role == Role::Replied {
                client.closing = true;
                client.reading = false;
            }
        }
    }

    fn reply_and_close(&mut self, key: usize, reply: &Reply) {
        self.reply(key, reply, Role::Replied);
    }

    /// Queues the exit frame for a client; it closes once that is sent.
    fn send_exit(&mut self, key: usize, record: &ExitRecord) {
        if let Some(client) = self.clients.get_mut(key) {
            client.out.push(&protocol::encode_exit_frame(record));
            client.closing = true;
            client.reading = false;
        }
    }

    // ---- requests ----

    fn on_request(&mut self, key: usize, request: Request) {
        match request {
            Request::Start => {
                let reply = self.start();
                self.reply_and_close(key, &reply);
            }
            Request::Attach { stdin, stdout, stderr } => {
                self.reply(key, &Reply::ok(), Role::Attach { stdin, stdout, stderr });
                if let Lifecycle::Finished { record, .. } = &self.lifecycle {
                    let record = record.clone();
                    self.send_exit(key, &record);
                }
            }
            Request::Wait => {
                self.reply(key, &Reply::ok(), Role::Wait);
                if let Lifecycle::Finished { record, .. } = &self.lifecycle {
                    let record = record.clone();
                    self.send_exit(key, &record);
                }
            }
            Request::Resize { height, width } => {
                let reply = match self.resize(None, WindowSize { height, width }) {
                    Ok(()) => Reply::ok(),
                    Err(e) => Reply::error(e),
                };
                self.reply_and_close(key, &reply);
            }
            Request::Exec { process, tty, stdin } => match self.exec(*process, tty, stdin) {
                Ok((exec, pid)) => {
                    self.reply(key, &Reply::with_pid(pid), Role::Exec { key: exec, stdin });
                    if let Some(exec) = self.execs.get_mut(exec) {
                        exec.client = Some(key);
                    }
                }
                Err(reply) => self.reply_and_close(key, &reply),
            },
        }
    }

    fn start(&mut self) -> Reply {
        match self.lifecycle {
            Lifecycle::Created => {}
            Lifecycle::Running => {
                return Reply::error(format!("container {} is already running", self.id))
            }
            Lifecycle::Exited { .. } | Lifecycle::Finished { .. } => {
                return Reply::error(format!("container {} has exited", self.id))
            }
        }
        match kiln_runtime::start(&self.store, &self.id) {
            Ok(()) => {
                tracing::info!(container = %self.id, pid = self.init_pid, "container started");
                self.lifecycle = Lifecycle::Running;
                // The runtime's code is done with: idle, the shim needs
                // only its loop's pages.
                if let Err(e) = kiln_sys::memory::release_code_pages() {
                    tracing::debug!(error = %e, "cannot release code pages");
                }
                Reply::with_pid(self.init_pid)
            }
            Err(e) => {
                tracing::warn!(container = %self.id, "start failed: {}", error_chain(&e));
                let (message, code) = runtime_failure("start", &e, EXIT_FAILED);
                Reply::failed_to_run(message, code)
            }
        }
    }

    /// Resizes the terminal of exec session `exec`, or the container's.
    fn resize(&mut self, exec: Option<usize>, size: WindowSize) -> Result<(), String> {
        let master = match exec {
            Some(key) => self.execs.get(key).and_then(|e| e.ends.master.as_ref()),
            None => self.main.master.as_ref(),
        };
        let master = master.ok_or_else(|| format!("container {} has no terminal", self.id))?;
        let size = kiln_sys::tty::WindowSize { rows: size.height, cols: size.width };
        kiln_sys::tty::set_window_size(master.as_fd(), size)
            .map_err(|e| format!("cannot resize the terminal: {e}"))
    }

    fn exec(
        &mut self,
        mut process: Process,
        tty: bool,
        stdin: bool,
    ) -> Result<(usize, i32), Reply> {
        if !matches!(self.lifecycle, Lifecycle::Running) {
            return Err(Reply::error(format!("container {} is not running", self.id)));
        }
        // A process joining a frozen cgroup would freeze, and the shim with it.
        if kiln_runtime::state(&self.store, &self.id).is_ok_and(|s| s.status == "paused") {
            return Err(Reply::error(format!(
                "container {} is paused, unpause the container before exec",
                self.id
            )));
        }
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            Reply::failed_to_run(
                format!("OCI runtime exec failed: {what}: {e}: unknown"),
                EXIT_NOT_EXECUTABLE,
            )
        };
        process.terminal = tty;
        let (prepared, console) = stdio::prepare(tty, stdin, self.devnull.as_fd())
            .map_err(|e| failed("cannot make the process's stdio", &e))?;
        self.exec_seq += 1;
        let pid_file = self.state_dir.join(format!("exec-{}.pid", self.exec_seq));
        let opts = ExecOptions {
            process,
            detach: true,
            pid_file: Some(pid_file.clone()),
            console,
            preserve_fds: 0,
        };
        let (store, id) = (&self.store, &self.id);
        prepared
            .with_stdio(self.devnull.as_fd(), || kiln_runtime::exec(store, id, opts))
            .map_err(|e| failed("cannot pass stdio to the runtime", &e))?
            .map_err(|e| {
                let (message, code) = runtime_failure("exec", &e, EXIT_NOT_EXECUTABLE);
                Reply::failed_to_run(message, code)
            })?;
        let pid = std::fs::read_to_string(&pid_file).ok().and_then(|t| t.trim().parse().ok());
        let _ = std::fs::remove_file(&pid_file);
        let pid: i32 =
            pid.ok_or_else(|| failed("cannot read the pid file", &pid_file.display()))?;
        let ends = match prepared.finish() {
            Ok(ends) => ends,
            Err(e) => {
                let _ = kiln_sys::process::send_signal(pid, Signal::SIGKILL as i32);
                return Err(failed("cannot take the process's stdio", &e));
            }
        };
        tracing::debug!(container = %self.id, pid, "exec started");
        let key =
            self.execs.insert(Exec { pid, ends, client: None, exit_code: None, drain_until: None });
        Ok((key, pid))
    }

    // ---- each turn ----

    /// After the events of one turn: moves lifecycles on, writes what is
    /// pending to clients and processes, flushes the log.
    fn advance(&mut self) {
        self.finish_execs();
        if let Lifecycle::Exited { exit_code, drain_until } = self.lifecycle {
            if self.main.is_drained() || Instant::now() >= drain_until {
                self.finish_container(exit_code);
            }
        }
        self.flush_stdin();
        for key in self.clients.keys() {
            let Some(client) = self.clients.get_mut(key) else { continue };
            let gone = client.flush().is_err() || client.is_overrun();
            if gone {
                tracing::debug!(container = %self.id, "dropping a client that went away or fell behind");
                self.drop_client(key);
            } else if client.is_finished() {
                let _ = client.sock.shutdown(std::net::Shutdown::Both);
                self.drop_client(key);
            }
        }
        let result = self.log.flush();
        self.note_log_result(result);
    }

    fn flush_stdin(&mut self) {
        if let Some(sink) = self.main.stdin.as_mut() {
            match sink.flush() {
                Ok(false) => {}
                Ok(true) | Err(_) => self.main.stdin = None,
            }
        }
        for (_, exec) in self.execs.iter_mut() {
            if let Some(sink) = exec.ends.stdin.as_mut() {
                match sink.flush() {
                    Ok(false) => {}
                    Ok(true) | Err(_) => exec.ends.stdin = None,
                }
            }
        }
    }

    /// Exec sessions whose process exited and whose output is drained get
    /// their exit frame.
    fn finish_execs(&mut self) {
        let now = Instant::now();
        for key in self.execs.keys() {
            let Some(exec) = self.execs.get(key) else { continue };
            let Some(exit_code) = exec.exit_code else { continue };
            let drained = exec.ends.is_drained() || exec.drain_until.is_some_and(|t| now >= t);
            if !drained {
                continue;
            }
            let Some(exec) = self.execs.remove(key) else { continue };
            let record = ExitRecord {
                exit_code,
                oom_killed: false,
                finished_at: logfile::format_time(logfile::now()),
                pid: exec.pid,
            };
            if let Some(client) = exec.client {
                self.send_exit(client, &record);
                // Its exec slot may be reused: the connection is done with it.
                if let Some(client) = self.clients.get_mut(client) {
                    client.role = Role::Replied;
                }
            }
        }
    }

    /// The container's init has exited and its output is drained: record
    /// the exit, tell the clients, remove the container.
    fn finish_container(&mut self, exit_code: i32) {
        let now = logfile::now();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let result = self.log.finish(stream, now);
            self.note_log_result(result);
        }
        let result = self.log.flush();
        self.note_log_result(result);
        self.main = Ends::default();
        let oom_killed = self.memory_cgroup.as_deref().is_some_and(oom_killed);
        let record = ExitRecord {
            exit_code,
            oom_killed,
            finished_at: logfile::format_time(now),
            pid: self.init_pid,
        };
        if let Err(e) = write_record(&self.state_dir.join(EXIT_FILE), &record) {
            tracing::error!(container = %self.id, "cannot write {EXIT_FILE}: {e}");
        }
        tracing::info!(container = %self.id, exit_code, oom_killed, "exit recorded");
        for key in self.clients.keys() {
            let waits = self
                .clients
                .get(key)
                .is_some_and(|c| matches!(c.role, Role::Attach { .. } | Role::Wait));
            if waits {
                self.send_exit(key, &record);
            }
        }
        // The exit is news now: send it before the slow clean-up (cgroups,
        // mounts), so `run --rm` and `wait` return without waiting for it.
        for key in self.clients.keys() {
            if let Some(client) = self.clients.get_mut(key) {
                if client.flush().is_ok() && client.is_finished() {
                    let _ = client.sock.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        self.delete_container();
        // Exec'd processes died with the container; their statuses may have
        // been reaped by the runtime's delete.
        let soon = Instant::now() + Duration::from_millis(200);
        for (_, exec) in self.execs.iter_mut() {
            if exec.exit_code.is_none() {
                exec.exit_code = Some(128 + Signal::SIGKILL as i32);
                exec.drain_until = Some(soon);
            }
        }
        self.unmount_rootfs();
        self.close_listener();
        self.lifecycle = Lifecycle::Finished { record, leave_at: Instant::now() + LEAVE_LIMIT };
    }

    fn delete_container(&mut self) {
        if self.deleted {
            return;
        }
        self.deleted = true;
        if let Err(e) = kiln_runtime::delete(&self.store, &self.id, true) {
            tracing::warn!(container = %self.id, "runtime delete failed: {}", error_chain(&e));
        }
    }

    fn unmount_rootfs(&mut self) {
        if let Some(target) = self.rootfs.take() {
            rootfs::unmount(&target);
        }
    }

    fn close_listener(&mut self) {
        if self.listener.take().is_some() {
            let _ = std::fs::remove_file(self.state_dir.join(SOCKET_NAME));
        }
    }

    /// Last things before the process ends.
    fn leave(&mut self) {
        self.main = Ends::default();
        self.delete_container();
        self.unmount_rootfs();
        self.close_listener();
        let result = self.log.flush();
        self.note_log_result(result);
        tracing::info!(container = %self.id, "shim exits");
    }
}

fn frame_kind(stream: Stream) -> FrameKind {
    match stream {
        Stream::Stdout => FrameKind::Stdout,
        Stream::Stderr => FrameKind::Stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_executables_are_worded_like_docker() {
        let err = RuntimeError::Init {
            message: "exec: \"nope\": executable file not found in $PATH".into(),
            exit_code: 127,
        };
        assert_eq!(
            runtime_failure("exec", &err, EXIT_NOT_EXECUTABLE),
            (
                "OCI runtime exec failed: exec failed: unable to start container process: \
                 exec: \"nope\": executable file not found in $PATH: unknown"
                    .to_owned(),
                127
            )
        );
        let (message, code) = runtime_failure("create", &err, EXIT_FAILED);
        assert_eq!(code, 127);
        assert!(
            message.starts_with(
                "OCI runtime create failed: unable to start container process: exec: \"nope\""
            ),
            "{message}"
        );
    }

    #[test]
    fn other_runtime_errors_keep_their_chain_and_the_default_code() {
        let err = RuntimeError::StateFile {
            action: "read",
            path: "/run/x/state.json".into(),
            source: io::Error::from_raw_os_error(libc_eacces()),
        };
        let (message, code) = runtime_failure("start", &err, EXIT_FAILED);
        assert_eq!(code, 125);
        assert!(message.contains("cannot read /run/x/state.json: Permission denied"), "{message}");
        let init =
            RuntimeError::Init { message: "cannot change to directory /x".into(), exit_code: 1 };
        assert_eq!(runtime_failure("exec", &init, EXIT_NOT_EXECUTABLE).1, 126);
    }

    fn libc_eacces() -> i32 {
        nix::errno::Errno::EACCES as i32
    }
}
