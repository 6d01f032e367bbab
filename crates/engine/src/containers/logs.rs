//! Reading a container's log (`docker logs`), and following it while the
//! container runs. Blocking: the API server drives a [`LogStream`] on a
//! blocking thread.

use std::path::PathBuf;
use std::time::Duration;

use kiln_shim::logfile::{LogReader, ReadOptions, Stream};

use super::error::ContainerError;

/// How often a follower looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// What `docker logs` asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix nanoseconds.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// The last N entries only.
    pub tail: Option<usize>,
}

/// One entry: which stream, when (unix nanoseconds), and the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stderr: bool,
    pub time: i64,
    pub bytes: Vec<u8>,
}

/// Entries of one log, in order.
pub struct LogStream {
    reader: Option<LogReader>,
    options: LogOptions,
    tty: bool,
    running: Box<dyn Fn() -> bool + Send>,
    finished: bool,
}

impl std::fmt::Debug for LogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStream").field("options", &self.options).field("tty", &self.tty).finish()
    }
}

pub(super) fn open(
    path: PathBuf,
    options: LogOptions,
    tty: bool,
    running: Box<dyn Fn() -> bool + Send>,
) -> Result<LogStream, ContainerError> {
    let read = ReadOptions { since: options.since, until: options.until, tail: options.tail };
    let reader = match LogReader::open(&path, read) {
        Ok(reader) => Some(reader),
        // A container that never started has no log yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(ContainerError::Io { action: "read", path, source }),
    };
    Ok(LogStream { reader, options, tty, running, finished: false })
}

impl LogStream {
    /// Whether the container has a terminal (its log is one raw stream).
    pub fn tty(&self) -> bool {
        self.tty
    }

    /// The next entries; `None` at the end (without `follow`: the end of the
    /// file; with it: the container stopped and everything was read).
    pub fn next_batch(&mut self) -> std::io::Result<Option<Vec<LogEntry>>> {
        loop {
            if self.finished {
                return Ok(None);
            }
            let Some(reader) = self.reader.as_mut() else {
                return Ok(None);
            };
            // Read whether it runs before reading, so no line written
            // before the exit is missed.
            let was_running = self.options.follow && (self.running)();
            let entries: Vec<LogEntry> = reader
                .next_entries()?
                .into_iter()
                .filter(|e| match e.stream {
                    Stream::Stdout => self.options.stdout,
                    Stream::Stderr => self.options.stderr,
                })
                .map(|e| LogEntry {
                    stderr: e.stream == Stream::Stderr,
                    time: e.time,
                    bytes: e.bytes,
                })
                .collect();
            let caught_up = reader.caught_up();
            if reader.is_past_until() || (caught_up && !was_running) {
                self.finished = true;
            }
            if !entries.is_empty() {
                return Ok(Some(entries));
            }
            if self.finished {
                return Ok(None);
            }
            if caught_up {
                std::thread::sleep(FOLLOW_POLL);
            }
        }
    }
}
