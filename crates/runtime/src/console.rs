//! The console-socket protocol: the container's pty master travels to
//! whoever holds the socket, as SCM_RIGHTS, with the pty's name as payload.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

pub(crate) fn send_master(
    socket: BorrowedFd<'_>,
    master: BorrowedFd<'_>,
    name: &str,
) -> std::io::Result<()> {
    kiln_sys::fd_passing::send_fd(socket, master, name.as_bytes())
}

/// Receives a pty master sent by the container's init.
pub fn receive_master(socket: &UnixStream) -> std::io::Result<OwnedFd> {
    kiln_sys::fd_passing::recv_fd(socket.as_fd()).map(|(fd, _name)| fd)
}

/// Connects to a console socket path given to `create`.
pub(crate) fn connect(path: &Path) -> std::io::Result<OwnedFd> {
    UnixStream::connect(path).map(OwnedFd::from)
}
