//! Passing file descriptors over unix sockets (SCM_RIGHTS), as the OCI
//! console-socket protocol does with a terminal's master side.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr};

/// Sends `fd` with `payload` as the message's data.
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>, payload: &[u8]) -> std::io::Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(payload)];
    sendmsg::<UnixAddr>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)?;
    Ok(())
}

/// Receives one descriptor and the message's data.
pub fn recv_fd(socket: BorrowedFd<'_>) -> std::io::Result<(OwnedFd, Vec<u8>)> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let len = msg.bytes;
    let mut received = None;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel just installed this descriptor for us
                // (SCM_RIGHTS); nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                received.get_or_insert(owned);
            }
        }
    }
    let fd = received.ok_or_else(|| std::io::Error::other("no file descriptor in the message"))?;
    Ok((fd, buf[..len].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_descriptor_crosses_a_socket_pair() {
        let (a, b) = UnixStream::pair().unwrap();
        let file = std::fs::File::open("/proc/self/status").unwrap();
        send_fd(a.as_fd(), file.as_fd(), b"/dev/pts/7").unwrap();
        let (fd, payload) = recv_fd(b.as_fd()).unwrap();
        assert_eq!(payload, b"/dev/pts/7");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text).unwrap();
        assert!(text.contains("Pid:"));
    }
}
