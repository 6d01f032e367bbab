//! A supervised process's stdio: pipes whose far ends the runtime hands to
//! the process (it passes on the caller's fds 0, 1 and 2), or a pty whose
//! master comes back over a console socket.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use kiln_runtime::Console;
use nix::fcntl::{fcntl, FcntlArg, OFlag};

use crate::client::StdinSink;
use crate::logfile::Stream;

/// An output of the process, read by the shim.
#[derive(Debug)]
pub(crate) struct Source {
    pub fd: OwnedFd,
    pub stream: Stream,
}

/// The shim's ends of a process's stdio.
#[derive(Debug, Default)]
pub(crate) struct Ends {
    /// stdout and stderr, or the pty master as stdout; `None` once at end.
    pub sources: Vec<Option<Source>>,
    pub stdin: Option<StdinSink>,
    /// The pty master, for resizing.
    pub master: Option<OwnedFd>,
}

impl Ends {
    pub fn is_drained(&self) -> bool {
        self.sources.iter().all(Option::is_none)
    }
}

/// Stdio being prepared for a `create` or `exec` of the runtime.
#[derive(Debug)]
pub(crate) struct Prepared {
    ends: Ends,
    /// The process's ends (stdin, stdout, stderr) without a terminal.
    theirs: Option<[OwnedFd; 3]>,
    /// Our end of the console socket with a terminal.
    console: Option<UnixStream>,
    stdin: bool,
}

/// Makes the pipes (or the console socket) for a process; returns them and
/// the console to give the runtime.
pub(crate) fn prepare(
    tty: bool,
    stdin: bool,
    devnull: BorrowedFd<'_>,
) -> io::Result<(Prepared, Option<Console>)> {
    if tty {
        let (ours, theirs) = UnixStream::pair()?;
        let prepared = Prepared { ends: Ends::default(), theirs: None, console: Some(ours), stdin };
        return Ok((prepared, Some(Console::Connected(theirs.into()))));
    }
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from);
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (in_theirs, sink) = if stdin {
        let (r, w) = pipe()?;
        set_nonblocking(w.as_fd())?;
        (r, Some(StdinSink::new(w)))
    } else {
        (devnull.try_clone_to_owned()?, None)
    };
    set_nonblocking(out_r.as_fd())?;
    set_nonblocking(err_r.as_fd())?;
    let ends = Ends {
        sources: vec![
            Some(Source { fd: out_r, stream: Stream::Stdout }),
            Some(Source { fd: err_r, stream: Stream::Stderr }),
        ],
        stdin: sink,
        master: None,
    };
    Ok((Prepared { ends, theirs: Some([in_theirs, out_w, err_w]), console: None, stdin }, None))
}

impl Prepared {
    /// Runs `f` (the runtime's create or exec) with the process's ends on
    /// our fds 0, 1 and 2, then puts /dev/null back there.
    pub fn with_stdio<T>(&self, devnull: BorrowedFd<'_>, f: impl FnOnce() -> T) -> io::Result<T> {
        if let Some([i, o, e]) = &self.theirs {
            onto_stdio([i.as_fd(), o.as_fd(), e.as_fd()])?;
        }
        let result = f();
        onto_stdio([devnull; 3])?;
        Ok(result)
    }

    /// Our ends, once the runtime has made the process: its copies of the
    /// pipes are closed here (so their end of file reaches us), and with a
    /// terminal the pty master is received.
    pub fn finish(self) -> io::Result<Ends> {
        let Prepared { mut ends, theirs, console, stdin } = self;
        drop(theirs);
        if let Some(socket) = console {
            // The runtime sent the master before it returned; don't hang if not.
            socket.set_read_timeout(Some(Duration::from_secs(5)))?;
            let master = kiln_runtime::receive_master(&socket)?;
            set_nonblocking(master.as_fd())?;
            if stdin {
                ends.stdin = Some(StdinSink::new(master.try_clone()?));
            }
            ends.sources = vec![Some(Source { fd: master.try_clone()?, stream: Stream::Stdout })];
            ends.master = Some(master);
        }
        Ok(ends)
    }
}

fn onto_stdio(fds: [BorrowedFd<'_>; 3]) -> io::Result<()> {
    nix::unistd::dup2_stdin(fds[0])?;
    nix::unistd::dup2_stdout(fds[1])?;
    nix::unistd::dup2_stderr(fds[2])?;
    Ok(())
}

pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Opens /dev/null for reading and writing.
pub(crate) fn open_devnull() -> io::Result<OwnedFd> {
    let file = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    Ok(file.into())
}

/// Puts /dev/null on fds 0, 1 and 2.
pub(crate) fn stdio_to_devnull(devnull: BorrowedFd<'_>) -> io::Result<()> {
    onto_stdio([devnull; 3])
}
