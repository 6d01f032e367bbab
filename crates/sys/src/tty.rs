//! Pseudo-terminal operations used to give a container its console.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Unlocks the peer of a pty master (what `unlockpt(3)` does).
pub fn unlock(master: BorrowedFd<'_>) -> io::Result<()> {
    let zero: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer, which is valid.
    check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &zero) }).map(drop)
}

/// Opens the peer (slave) of a pty master without resolving any path, so the
/// peer always belongs to the master's devpts instance.
pub fn open_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
    let fd = check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) })?;
    // SAFETY: the ioctl returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Returns the pty number of a master (`/dev/pts/N`).
pub fn pty_number(master: BorrowedFd<'_>) -> io::Result<u32> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int to the valid pointer.
    check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })?;
    Ok(n)
}

/// Makes `tty` the controlling terminal of the calling session leader.
pub fn set_controlling(tty: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal).
    check(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY, 0) }).map(drop)
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    pub rows: u16,
    pub cols: u16,
}

pub fn set_window_size(tty: BorrowedFd<'_>, size: WindowSize) -> io::Result<()> {
    let ws = libc::winsize { ws_row: size.rows, ws_col: size.cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a winsize from the valid pointer.
    check(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(drop)
}

pub fn window_size(tty: BorrowedFd<'_>) -> io::Result<WindowSize> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes a winsize to the valid pointer.
    check(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok(WindowSize { rows: ws.ws_row, cols: ws.ws_col })
}
