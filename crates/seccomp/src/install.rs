//! Loading a compiled [`Filter`] into the kernel.

use crate::error::SeccompError;
use crate::program::{Filter, Instruction};

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

// `Instruction` stands in for `struct sock_filter` in the pointer handed to
// the kernel; the two must agree in size and alignment.
const _: () = assert!(
    std::mem::size_of::<Instruction>() == std::mem::size_of::<libc::sock_filter>()
        && std::mem::align_of::<Instruction>() == std::mem::align_of::<libc::sock_filter>()
);

impl Filter {
    /// Installs the filter on the calling thread (every thread with
    /// `SECCOMP_FILTER_FLAG_TSYNC`), for good: filters cannot be removed.
    ///
    /// The thread needs `no_new_privs` set or `CAP_SYS_ADMIN`; that is the
    /// caller's business. Allocates nothing on success, so it may run in a
    /// child between `fork` and `execve`.
    pub fn install(&self) -> Result<(), SeccompError> {
        let prog = libc::sock_fprog {
            // `compile` caps the length at 4096.
            len: self.program.len() as libc::c_ushort,
            filter: self.program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
        };
        // SAFETY: `prog` points at `self.program`, which is laid out as an
        // array of `sock_filter` (checked above) and outlives the call; the
        // kernel copies the program and does not write through the pointer.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                libc::c_ulong::from(self.flags),
                &prog as *const libc::sock_fprog,
            )
        };
        match rc {
            0 => Ok(()),
            rc if rc < 0 => Err(SeccompError::Install { source: std::io::Error::last_os_error() }),
            // With TSYNC, a positive result is the id of a thread that could
            // not be synchronized.
            thread => Err(SeccompError::ThreadSync { thread }),
        }
    }
}
