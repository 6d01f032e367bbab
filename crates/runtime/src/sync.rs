//! Messages between the runtime and the container's init while it is set up.
//!
//! A SOCK_SEQPACKET socket pair keeps message boundaries, so each message is
//! one JSON value in one datagram.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Msg {
    /// Child → parent: write my uid and gid maps, I unshared a user namespace.
    NeedIdMaps,
    IdMapsDone,
    /// Child → parent: the container's init runs as this host pid.
    InitPid(i32),
    /// Init → parent: run the runtime-namespace hooks now.
    NeedHooks,
    /// Parent → init: hooks done; the OCI state JSON the init hands to its own hooks.
    HooksDone(String),
    /// Init → parent: set up and waiting for `start`.
    Ready,
    /// Parent → init: the OCI state JSON, for startContainer hooks.
    Created(String),
    /// Child → parent: set-up failed; the parent reports and cleans up.
    Failed {
        message: String,
        exit_code: i32,
    },
}

#[derive(Debug)]
pub(crate) struct Channel {
    fd: OwnedFd,
}

impl Channel {
    pub(crate) fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) =
            socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub(crate) fn send(&self, msg: &Msg) -> io::Result<()> {
        let bytes = serde_json::to_vec(msg).map_err(io::Error::other)?;
        loop {
            match send(std::os::fd::AsRawFd::as_raw_fd(&self.fd), &bytes, MsgFlags::MSG_NOSIGNAL) {
                Err(nix::Error::EINTR) => continue,
                other => return other.map(drop).map_err(io::Error::from),
            }
        }
    }

    /// Receives one message; `None` when the other side closed its end.
    pub(crate) fn recv(&self) -> io::Result<Option<Msg>> {
        let mut buf = vec![0u8; 256 * 1024];
        let n = loop {
            match recv(std::os::fd::AsRawFd::as_raw_fd(&self.fd), &mut buf, MsgFlags::empty()) {
                Err(nix::Error::EINTR) => continue,
                other => break other?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n]).map(Some).map_err(io::Error::other)
    }

    /// Receives a message and fails unless it is the one expected.
    pub(crate) fn expect(&self, want: &Msg) -> io::Result<()> {
        match self.recv()? {
            Some(ref got) if got == want => Ok(()),
            Some(other) => Err(io::Error::other(format!("expected {want:?}, got {other:?}"))),
            None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the runtime went away")),
        }
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
