//! File system hints.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// `FS_IOC_GETFLAGS` and `FS_IOC_SETFLAGS` (linux/fs.h), which take an int.
const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
const FS_IOC_SETFLAGS: libc::c_ulong = 0x4008_6602;
/// `FS_TOPDIR_FL`: "top of directory hierarchies" for ext4's Orlov allocator.
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Marks `dir` as the top of unrelated directory trees (`chattr +T`): on
/// ext2/3/4 each new subdirectory is then placed in its own block group
/// instead of its parent's, and the files made in it follow. Kiln's layer
/// and container directories are unrelated trees, made and deleted all day:
/// kept in one group, every new inode there is found only after walking
/// past the ones freed recently (ext4 does not reuse those at once), which
/// made unpacking 2,000 files take seconds on a busy store. File systems
/// without the flag refuse it; that is fine, it is a hint.
pub fn mark_top_directory(dir: &Path) -> io::Result<()> {
    let file = std::fs::File::open(dir)?;
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int through the pointer, which is
    // valid for that write; the descriptor is open for the call's duration.
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(());
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int through the pointer, valid for
    // the call; it changes only the inode's attribute flags.
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_SETFLAGS, &flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_gets_the_flag_where_the_file_system_has_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        match mark_top_directory(dir.path()) {
            Ok(()) => {
                let out = std::process::Command::new("lsattr").arg("-d").arg(dir.path()).output();
                if let Ok(out) = out {
                    let text = String::from_utf8_lossy(&out.stdout);
                    assert!(
                        text.split_whitespace().next().is_some_and(|f| f.contains('T')),
                        "{text}"
                    );
                }
                // Twice is fine.
                mark_top_directory(dir.path()).expect("again");
            }
            // tmpfs and others do not take attribute flags.
            Err(e) => assert!(
                matches!(
                    e.raw_os_error(),
                    Some(libc::ENOTTY | libc::EOPNOTSUPP | libc::EINVAL | libc::EPERM)
                ),
                "{e}"
            ),
        }
        assert!(mark_top_directory(&dir.path().join("missing")).is_err());
    }
}
