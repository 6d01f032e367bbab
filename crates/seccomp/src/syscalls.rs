//! The native architecture and its system call table.

use crate::profile::Arch;

#[cfg(target_arch = "aarch64")]
use crate::syscalls_aarch64::SYSCALLS;
#[cfg(target_arch = "x86_64")]
use crate::syscalls_x86_64::SYSCALLS;

/// Targets without a table know no names: every rule's names end up in
/// [`crate::Filter::unknown_syscalls`], and [`crate::compile`] refuses to
/// build a filter because the native audit architecture is unknown.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYSCALLS: &[(&str, u32)] = &[];

/// The architecture this crate was compiled for, as the kernel reports it in
/// `seccomp_data.arch`; `None` where no table exists.
#[cfg(target_arch = "x86_64")]
pub(crate) const NATIVE_ARCH: Option<Arch> = Some(Arch::X86_64);
#[cfg(target_arch = "aarch64")]
pub(crate) const NATIVE_ARCH: Option<Arch> = Some(Arch::Aarch64);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) const NATIVE_ARCH: Option<Arch> = None;

/// The number of the system call `name` on the native architecture (x86_64 or
/// aarch64), or `None` where the kernel has no such call there (`open` on
/// aarch64, `chown32` anywhere 64-bit, a misspelling).
pub fn syscall_number(name: &str) -> Option<u32> {
    SYSCALLS.binary_search_by(|(known, _)| (*known).cmp(name)).ok().map(|i| SYSCALLS[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_without_duplicate_names_or_numbers() {
        assert!(SYSCALLS.windows(2).all(|w| w[0].0 < w[1].0));
        let mut numbers: Vec<u32> = SYSCALLS.iter().map(|(_, nr)| *nr).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), SYSCALLS.len());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_64_numbers_match_the_kernel_abi() {
        let expected = [
            ("read", 0),
            ("write", 1),
            ("clone", 56),
            ("execve", 59),
            ("unshare", 272),
            ("rseq", 334),
            ("clone3", 435),
            ("openat2", 437),
            ("mseal", 462),
            ("removexattrat", 466),
        ];
        for (name, nr) in expected {
            assert_eq!(syscall_number(name), Some(nr), "{name}");
        }
        // Cross-check against libc where it knows the number.
        assert_eq!(syscall_number("getpid"), Some(libc::SYS_getpid as u32));
        assert_eq!(syscall_number("futex_waitv"), Some(libc::SYS_futex_waitv as u32));
    }

    #[cfg(target_arch = "aarch64")]
    #[test]
    fn aarch64_numbers_match_the_kernel_abi() {
        assert_eq!(syscall_number("read"), Some(63));
        assert_eq!(syscall_number("clone"), Some(220));
        assert_eq!(syscall_number("open"), None);
        assert_eq!(syscall_number("getpid"), Some(libc::SYS_getpid as u32));
    }

    #[test]
    fn unknown_names_have_no_number() {
        assert_eq!(syscall_number("chown32"), None);
        assert_eq!(syscall_number(""), None);
        assert_eq!(syscall_number("READ"), None);
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// Every name the native table knows.
    pub(crate) fn all_names() -> Vec<&'static str> {
        super::SYSCALLS.iter().map(|(name, _)| *name).collect()
    }
}
