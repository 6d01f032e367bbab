//! The shim's side of one control-socket connection, and the bounded,
//! non-blocking buffers between the shim and its peers (clients, and the
//! stdin of the processes it supervises).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::sys::socket::MsgFlags;

use crate::protocol::{append_frame, FrameDecoder, FrameKind};

/// A client whose unsent output grows past this is dropped: a slow reader
/// must never hold up the container (the log still has everything).
pub(crate) const CLIENT_BUFFER_LIMIT: usize = 1 << 20;
/// Stdin from clients stops being read while this much waits for the process.
pub(crate) const STDIN_BACKLOG_LIMIT: usize = 256 * 1024;
/// Buffers keep at most this much capacity once drained.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Bytes waiting to be written to a non-blocking descriptor.
#[derive(Debug, Default)]
pub(crate) struct OutBuf {
    buf: Vec<u8>,
    pos: usize,
}

impl OutBuf {
    pub fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn make_room(&mut self) {
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos >= KEEP_CAPACITY) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.make_room();
        self.buf.extend_from_slice(bytes);
    }

    pub fn push_frame(&mut self, kind: FrameKind, payload: &[u8]) {
        self.make_room();
        append_frame(&mut self.buf, kind, payload);
    }

    /// Writes as much as the descriptor takes now. `Ok(true)`: all written.
    pub fn write_with(
        &mut self,
        mut write: impl FnMut(&[u8]) -> nix::Result<usize>,
    ) -> io::Result<bool> {
        while self.pos < self.buf.len() {
            match write(&self.buf[self.pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.pos += n,
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        self.buf.clear();
        self.pos = 0;
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
        Ok(true)
    }
}

/// The write side of a process's stdin: a pipe or the pty master.
#[derive(Debug)]
pub(crate) struct StdinSink {
    fd: OwnedFd,
    pending: OutBuf,
    /// Close once what is pending has been written.
    closing: bool,
}

impl StdinSink {
    /// Takes a descriptor already set non-blocking.
    pub fn new(fd: OwnedFd) -> StdinSink {
        StdinSink { fd, pending: OutBuf::default(), closing: false }
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn backlog(&self) -> usize {
        self.pending.len()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if !self.closing {
            self.pending.push(bytes);
        }
    }

    pub fn close_when_drained(&mut self) {
        self.closing = true;
    }

    /// Writes what it can. `Ok(true)` when the sink is finished (closing
    /// and drained) and should be dropped; an error means the reader is gone.
    pub fn flush(&mut self) -> io::Result<bool> {
        let fd = self.fd.as_fd();
        let drained = self.pending.write_with(|b| nix::unistd::write(fd, b))?;
        Ok(drained && self.closing)
    }
}

/// What a connection is for, once its request line has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Reading the request line.
    Request,
    /// Done: the reply is queued, then the connection closes.
    Replied,
    /// An attach stream of the container.
    Attach { stdin: bool, stdout: bool, stderr: bool },
    /// Waiting for the container's exit frame.
    Wait,
    /// The stream of exec session `key`.
    Exec { key: usize, stdin: bool },
}

#[derive(Debug)]
pub(crate) struct Client {
    pub sock: UnixStream,
    pub role: Role,
    /// The request line, until its `\n`.
    pub line: Vec<u8>,
    pub frames: FrameDecoder,
    pub out: OutBuf,
    /// Still reading from the client (false after its end of stream).
    pub reading: bool,
    /// This client sent close-stdin (or went away): its stdin is done.
    pub stdin_closed: bool,
    /// Close once `out` is written.
    pub closing: bool,
}

impl Client {
    pub fn new(sock: UnixStream) -> Client {
        Client {
            sock,
            role: Role::Request,
            line: Vec::new(),
            frames: FrameDecoder::new(),
            out: OutBuf::default(),
            reading: true,
            stdin_closed: false,
            closing: false,
        }
    }

    /// Writes what the socket takes now; an error means the client is gone.
    pub fn flush(&mut self) -> io::Result<()> {
        let fd = self.sock.as_raw_fd();
        let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
        self.out.write_with(|b| nix::sys::socket::send(fd, b, flags)).map(drop)
    }

    /// True when the client has fallen too far behind.
    pub fn is_overrun(&self) -> bool {
        self.out.len() > CLIENT_BUFFER_LIMIT
    }

    /// Whether this client is done and can be dropped.
    pub fn is_finished(&self) -> bool {
        self.closing && self.out.is_empty()
    }
}

/// A small slab: values keep their index while they live.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    items: Vec<Option<T>>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots { items: Vec::new() }
    }
}

impl<T> Slots<T> {
    pub fn insert(&mut self, value: T) -> usize {
        match self.items.iter().position(Option::is_none) {
            Some(i) => {
                self.items[i] = Some(value);
                i
            }
            None => {
                self.items.push(Some(value));
                self.items.len() - 1
            }
        }
    }

    pub fn get(&self, key: usize) -> Option<&T> {
        self.items.get(key).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.items.get_mut(key).and_then(Option::as_mut)
    }

    pub fn remove(&mut self, key: usize) -> Option<T> {
        let value = self.items.get_mut(key).and_then(Option::take);
        while self.items.last().is_some_and(Option::is_none) {
            self.items.pop();
        }
        value
    }

    pub fn keys(&self) -> Vec<usize> {
        self.items.iter().enumerate().filter(|(_, v)| v.is_some()).map(|(i, _)| i).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.items.iter().enumerate().filter_map(|(i, v)| Some((i, v.as_ref()?)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.items.iter_mut().enumerate().filter_map(|(i, v)| Some((i, v.as_mut()?)))
    }

    pub fn is_empty(&self) -> bool {
        self.items.iter().all(Option::is_none)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbuf_writes_what_the_peer_takes_and_keeps_the_rest() {
        let mut out = OutBuf::default();
        out.push(b"hello ");
        out.push_frame(FrameKind::Stdout, b"x");
        let mut sink = Vec::new();
        let mut budget = 4;
        let done = out
            .write_with(|b| {
                if budget == 0 {
                    return Err(Errno::EAGAIN);
                }
                let n = b.len().min(budget);
                budget -= n;
                sink.extend_from_slice(&b[..n]);
                Ok(n)
            })
            .unwrap();
        assert!(!done);
        assert_eq!(sink, b"hell");
        assert_eq!(out.len(), 2 + 9);
        let done = out
            .write_with(|b| {
                sink.extend_from_slice(b);
                Ok(b.len())
            })
            .unwrap();
        assert!(done && out.is_empty());
        assert_eq!(&sink[..6], b"hello ");
        assert_eq!(&sink[6..], &[1, 0, 0, 0, 0, 0, 0, 1, b'x']);
    }

    #[test]
    fn a_client_that_does_not_read_is_overrun_past_the_limit() {
        let (a, _peer) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut client = Client::new(a);
        let chunk = vec![0u8; 64 * 1024];
        let mut pushed = 0;
        while !client.is_overrun() {
            client.out.push_frame(FrameKind::Stdout, &chunk);
            client.flush().unwrap();
            pushed += chunk.len();
            assert!(pushed < 64 * CLIENT_BUFFER_LIMIT, "never overrun");
        }
        // The socket took what it could; the rest is bounded by the limit.
        assert!(pushed > CLIENT_BUFFER_LIMIT);
        assert!(client.out.len() <= CLIENT_BUFFER_LIMIT + chunk.len() + 8);
    }

    #[test]
    fn slots_reuse_free_keys() {
        let mut slots = Slots::default();
        let a = slots.insert('a');
        let b = slots.insert('b');
        assert_eq!(slots.remove(a), Some('a'));
        assert_eq!(slots.insert('c'), a);
        assert_eq!(slots.get(b), Some(&'b'));
        assert_eq!(slots.keys(), [a, b]);
        slots.remove(a);
        slots.remove(b);
        assert!(slots.is_empty());
    }
}
