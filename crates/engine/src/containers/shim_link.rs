//! The daemon's side of a shim: spawning one, and talking to its control
//! socket (`kiln_shim::protocol`) with tokio.
//!
//! Each request is a fresh connection: one JSON line out, one JSON line
//! back, then, for streams, frames both ways.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use kiln_shim::protocol::{self, ExitRecord, FrameKind, Reply, Request};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// How long a shim may take to create its container.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a shim lives and what it is given.
#[derive(Debug, Clone)]
pub struct ShimPaths {
    pub exe: PathBuf,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub runtime_root: PathBuf,
    pub log_path: PathBuf,
}

impl ShimPaths {
    pub fn socket(&self) -> PathBuf {
        self.state_dir.join(protocol::SOCKET_NAME)
    }

    pub fn exit_file(&self) -> PathBuf {
        self.state_dir.join(protocol::EXIT_FILE)
    }
}

/// How the container's stdio is set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdioMode {
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
}

/// A shim that did not come up: its message and Docker's exit code.
#[derive(Debug, Clone)]
pub struct SpawnFailure {
    pub message: String,
    pub exit_code: i64,
}

/// Start `kiln shim` for container `id` and wait until the container is
/// created; returns the init's pid.
pub async fn spawn(id: &str, paths: &ShimPaths, mode: StdioMode) -> Result<i64, SpawnFailure> {
    let mut command = tokio::process::Command::new(&paths.exe);
    command
        // `ps` shows `kiln shim …`, not the /proc/self/fd path it ran from.
        .arg0("kiln")
        .arg("shim")
        .arg("--id")
        .arg(id)
        .arg("--bundle")
        .arg(&paths.bundle)
        .arg("--state-dir")
        .arg(&paths.state_dir)
        .arg("--runtime-root")
        .arg(&paths.runtime_root)
        .arg("--log-path")
        .arg(&paths.log_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if mode.tty {
        command.arg("--tty");
    }
    if mode.open_stdin {
        command.arg("--open-stdin");
    }
    if mode.stdin_once {
        command.arg("--stdin-once");
    }
    let failure = |message: String| SpawnFailure { message, exit_code: 125 };
    let mut child = command.spawn().map_err(|e| failure(format!("cannot run the shim: {e}")))?;
    let stdout = child.stdout.take().ok_or_else(|| failure("the shim has no stdout".into()))?;
    let mut line = String::new();
    let read =
        tokio::time::timeout(SPAWN_TIMEOUT, BufReader::new(stdout).read_line(&mut line)).await;
    // The first process exits right after forking the real shim.
    let _ = child.wait().await;
    match read {
        Err(_) => return Err(failure("the shim did not answer in time".into())),
        Ok(Err(e)) => return Err(failure(format!("cannot read the shim's answer: {e}"))),
        Ok(Ok(_)) => {}
    }
    match serde_json::from_str::<Reply>(line.trim()) {
        Ok(reply) if reply.ok => Ok(i64::from(reply.pid.unwrap_or(0))),
        Ok(reply) => Err(SpawnFailure {
            message: reply.message.unwrap_or_else(|| "unknown error".into()),
            exit_code: i64::from(reply.exit_code.unwrap_or(125)),
        }),
        Err(_) if line.is_empty() => Err(failure("the shim exited without an answer".into())),
        Err(e) => Err(failure(format!("the shim answered {:?}: {e}", line.trim()))),
    }
}

/// An open conversation with a shim after its reply: frames both ways.
#[derive(Debug)]
pub struct ShimStream {
    pub reply: Reply,
    pub reader: FrameReader,
    pub writer: FrameWriter,
}

/// Send `request` on a new connection and read the reply line.
pub async fn call(socket: &Path, request: &Request) -> std::io::Result<ShimStream> {
    let stream = connect(socket).await?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    let mut reader = BufReader::new(read);
    let mut reply_line = String::new();
    reader.read_line(&mut reply_line).await?;
    if reply_line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the shim closed the connection",
        ));
    }
    let reply: Reply = serde_json::from_str(reply_line.trim()).map_err(std::io::Error::other)?;
    Ok(ShimStream {
        reply,
        reader: FrameReader { inner: reader },
        writer: FrameWriter { inner: write },
    })
}

/// Longest path a unix socket address holds (with its NUL).
const SUN_PATH_MAX: usize = 107;

/// Connect to a shim's socket. A path too long for a socket address (deep
/// state roots, as tests use) is reached through `/proc/self/fd/N/`, with
/// N an `O_PATH` descriptor of its directory.
async fn connect(socket: &Path) -> std::io::Result<UnixStream> {
    use std::os::unix::ffi::OsStrExt as _;
    if socket.as_os_str().as_bytes().len() <= SUN_PATH_MAX {
        return UnixStream::connect(socket).await;
    }
    let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
        return UnixStream::connect(socket).await;
    };
    let dir_fd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let short = Path::new("/proc/self/fd")
        .join(std::os::fd::AsRawFd::as_raw_fd(&dir_fd).to_string())
        .join(name);
    let result = UnixStream::connect(&short).await;
    drop(dir_fd);
    result
}

/// One frame from the shim.
#[derive(Debug, Clone, PartialEq)]
pub enum ShimOutput {
    Stdout(Bytes),
    Stderr(Bytes),
    Exit(ExitRecord),
}

#[derive(Debug)]
pub struct FrameReader {
    inner: BufReader<OwnedReadHalf>,
}

impl FrameReader {
    /// The next frame; `None` when the shim closed the stream.
    pub async fn next(&mut self) -> std::io::Result<Option<ShimOutput>> {
        loop {
            let mut header = [0u8; protocol::FrameHeader::LEN];
            match self.inner.read_exact(&mut header).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
            let header = protocol::FrameHeader::parse(&header)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
            let mut payload = vec![0u8; header.len as usize];
            self.inner.read_exact(&mut payload).await?;
            match header.kind {
                FrameKind::Stdout => return Ok(Some(ShimOutput::Stdout(payload.into()))),
                FrameKind::Stderr => return Ok(Some(ShimOutput::Stderr(payload.into()))),
                FrameKind::Exit => {
                    let record: ExitRecord = serde_json::from_slice(&payload)
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                    return Ok(Some(ShimOutput::Exit(record)));
                }
                // Nothing else flows from the shim.
                FrameKind::Stdin | FrameKind::CloseStdin | FrameKind::Resize => continue,
            }
        }
    }
}

#[derive(Debug)]
pub struct FrameWriter {
    inner: OwnedWriteHalf,
}

impl FrameWriter {
    pub async fn stdin(&mut self, data: &[u8]) -> std::io::Result<()> {
        for chunk in data.chunks(64 * 1024) {
            self.inner.write_all(&protocol::encode_frame(FrameKind::Stdin, chunk)).await?;
        }
        Ok(())
    }

    pub async fn close_stdin(&mut self) -> std::io::Result<()> {
        self.inner.write_all(&protocol::encode_frame(FrameKind::CloseStdin, &[])).await
    }

    pub async fn resize(&mut self, height: u32, width: u32) -> std::io::Result<()> {
        let size = protocol::WindowSize {
            height: u16::try_from(height).unwrap_or(u16::MAX),
            width: u16::try_from(width).unwrap_or(u16::MAX),
        };
        self.inner.write_all(&protocol::encode_resize_frame(size)).await
    }
}
