//! The profile a container gets when it names none, with the effect of
//! Docker's default: everything ordinary programs need, nothing that reaches
//! past the container (mounts, namespaces, modules, keyrings, clocks, ...)
//! unless the container holds the capability that makes it safe to grant.

use crate::profile::{Action, Arch, ArgCondition, Op, Profile, SyscallRule};
use crate::syscalls::syscall_number;

/// Calls every container may make. The kernel still checks capabilities and
/// permissions on them (`mknod`, `setuid`, `adjtimex` with changes, ...).
/// `ptrace` and `process_vm_*` are safe to allow since Linux 4.8, where
/// seccomp is rechecked after a tracer changes a call.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "clock_adjtime",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_requeue",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lsm_get_self_attr",
    "lsm_list_modules",
    "lstat",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "modify_ldt",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "write",
    "writev",
];

/// Calls granted by one capability (or any of several).
const BY_CAPABILITY: &[(&[&str], &[&str])] = &[
    (
        &["CAP_SYS_ADMIN"],
        &[
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "open_tree_attr",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "umount2",
            "unshare",
        ],
    ),
    (&["CAP_SYS_ADMIN", "CAP_BPF"], &["bpf"]),
    (&["CAP_SYS_ADMIN", "CAP_PERFMON"], &["perf_event_open"]),
    (&["CAP_SYS_ADMIN", "CAP_SYSLOG"], &["syslog"]),
    (&["CAP_SYS_BOOT"], &["reboot"]),
    (&["CAP_SYS_CHROOT"], &["chroot"]),
    (&["CAP_SYS_MODULE"], &["delete_module", "finit_module", "init_module"]),
    (&["CAP_SYS_PACCT"], &["acct"]),
    (&["CAP_SYS_PTRACE"], &["kcmp", "pidfd_getfd", "process_madvise"]),
    (&["CAP_SYS_RAWIO"], &["ioperm", "iopl"]),
    (&["CAP_SYS_TIME"], &["clock_settime", "settimeofday"]),
    (&["CAP_SYS_TTY_CONFIG"], &["vhangup"]),
    (&["CAP_SYS_NICE"], &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
    (&["CAP_DAC_READ_SEARCH"], &["open_by_handle_at"]),
];

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
/// CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET`.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `personality(2)` values that change nothing dangerous: `PER_LINUX`,
/// `PER_LINUX32`, `UNAME26`, `PER_LINUX32 | UNAME26`, and the query `0xffffffff`.
const HARMLESS_PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// The kernel crypto API, whose `algif_aead` gave page-cache writes
/// (CVE-2026-31431); Docker refuses it since.
const AF_ALG: u64 = 38;
/// Sockets to virtual machines on the host.
const AF_VSOCK: u64 = 40;
const ENOSYS: u32 = 38;

/// Docker's default seccomp profile, for a container holding `capabilities`
/// (`"CAP_SYS_ADMIN"`, or `"SYS_ADMIN"`; case does not matter).
///
/// Calls outside the allowlist fail with `EPERM`. `clone` may not create
/// namespaces and `clone3` fails with `ENOSYS` (its flags live in memory a
/// filter cannot read, so libc falls back to `clone`), unless the container
/// holds `CAP_SYS_ADMIN`. `socket` refuses `AF_ALG` and `AF_VSOCK`; `personality` takes
/// only harmless values. Only names the native ABI has are listed, so the
/// compiled filter reports no unknown names.
pub fn default_profile(capabilities: &[String]) -> Profile {
    let holds = |cap: &str| {
        capabilities.iter().any(|held| {
            let held = held.strip_prefix("CAP_").or(held.strip_prefix("cap_")).unwrap_or(held);
            held.eq_ignore_ascii_case(cap.trim_start_matches("CAP_"))
        })
    };

    let mut syscalls = vec![allow(ALLOWED)];
    syscalls.extend(HARMLESS_PERSONALITIES.iter().map(|&value| {
        allow_if(&["personality"], ArgCondition { index: 0, value, value_two: 0, op: Op::EqualTo })
    }));
    let not_family =
        |family| ArgCondition { index: 0, value: family, value_two: 0, op: Op::NotEqual };
    syscalls.push(SyscallRule {
        args: vec![not_family(AF_ALG), not_family(AF_VSOCK)],
        ..allow(&["socket"])
    });
    if !holds("CAP_SYS_ADMIN") {
        syscalls.push(allow_if(
            &["clone"],
            ArgCondition {
                index: clone_flags_index(),
                value: CLONE_NAMESPACE_FLAGS,
                value_two: 0,
                op: Op::MaskedEqual,
            },
        ));
        syscalls.push(SyscallRule {
            errno_ret: Some(ENOSYS),
            ..SyscallRule::new(&["clone3"], Action::Errno)
        });
    }
    for (caps, names) in BY_CAPABILITY {
        if caps.iter().any(|cap| holds(cap)) {
            syscalls.push(allow(names));
        }
    }

    Profile {
        default_action: Action::Errno,
        default_errno_ret: Some(1),
        architectures: architectures(),
        syscalls,
        ..Profile::default()
    }
}

/// An unconditional allow rule for those of `names` the native ABI has.
fn allow(names: &[&str]) -> SyscallRule {
    let native: Vec<&str> =
        names.iter().copied().filter(|name| syscall_number(name).is_some()).collect();
    SyscallRule::new(&native, Action::Allow)
}

fn allow_if(names: &[&str], condition: ArgCondition) -> SyscallRule {
    SyscallRule { args: vec![condition], ..allow(names) }
}

/// s390 swaps clone's first two arguments; everywhere else flags come first.
fn clone_flags_index() -> u32 {
    if cfg!(target_arch = "s390x") {
        1
    } else {
        0
    }
}

fn architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::X86_64, Arch::X86, Arch::X32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::Aarch64, Arch::Arm]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::{answer, check, run, SeccompData};
    use crate::program::ret;
    use crate::{compile, Filter};

    const EPERM: u32 = ret::ERRNO | 1;
    const SIGCHLD: u64 = 17;
    const CLONE_NEWNS: u64 = 0x0002_0000;
    /// glibc's fork: `CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD`.
    const FORK_FLAGS: u64 = 0x0120_0000 | SIGCHLD;

    fn filter_for(caps: &[&str]) -> Filter {
        let caps: Vec<String> = caps.iter().map(|c| (*c).to_owned()).collect();
        let filter = compile(&default_profile(&caps)).expect("default profile compiles");
        check(&filter.program);
        assert_eq!(filter.unknown_syscalls(), [] as [String; 0]);
        filter
    }

    #[test]
    fn ordinary_calls_are_allowed() {
        let filter = filter_for(&[]);
        for name in ["read", "write", "openat", "mmap", "mprotect", "brk", "rt_sigaction", "execve"]
        {
            assert_eq!(answer(&filter, name, &[]), ret::ALLOW, "{name}");
        }
        assert_eq!(answer(&filter, "clone", &[FORK_FLAGS]), ret::ALLOW);
        assert_eq!(answer(&filter, "clone", &[0x11]), ret::ALLOW);
        assert_eq!(answer(&filter, "socket", &[2, 1, 0]), ret::ALLOW);
        assert_eq!(answer(&filter, "personality", &[0xffff_ffff]), ret::ALLOW);
        assert_eq!(answer(&filter, "personality", &[0x8]), ret::ALLOW);
    }

    #[test]
    fn escapes_are_refused_without_capabilities() {
        let filter = filter_for(&["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]);
        for name in
            ["unshare", "mount", "umount2", "setns", "pivot_root", "chroot", "keyctl", "add_key"]
        {
            assert_eq!(answer(&filter, name, &[]), EPERM, "{name}");
        }
        for name in ["kexec_load", "init_module", "bpf", "perf_event_open", "reboot", "acct"] {
            assert_eq!(answer(&filter, name, &[]), EPERM, "{name}");
        }
        assert_eq!(answer(&filter, "clone", &[CLONE_NEWNS | SIGCHLD]), EPERM);
        assert_eq!(answer(&filter, "clone", &[0x4000_0000 | SIGCHLD]), EPERM, "CLONE_NEWNET");
        assert_eq!(answer(&filter, "clone3", &[]), ret::ERRNO | 38, "ENOSYS");
        assert_eq!(answer(&filter, "socket", &[40, 1, 0]), EPERM, "AF_VSOCK");
        assert_eq!(answer(&filter, "socket", &[38, 5, 0]), EPERM, "AF_ALG");
        assert_eq!(answer(&filter, "socket", &[39, 1, 0]), ret::ALLOW);
        assert_eq!(answer(&filter, "personality", &[0x0040_0000]), EPERM);
    }

    #[test]
    fn capabilities_grant_their_calls() {
        let filter = filter_for(&["CAP_SYS_ADMIN"]);
        for name in ["mount", "umount2", "unshare", "setns", "bpf", "sethostname"] {
            assert_eq!(answer(&filter, name, &[]), ret::ALLOW, "{name}");
        }
        assert_eq!(answer(&filter, "clone", &[CLONE_NEWNS | SIGCHLD]), ret::ALLOW);
        assert_eq!(answer(&filter, "clone3", &[]), ret::ALLOW);
        assert_eq!(answer(&filter, "keyctl", &[]), EPERM, "keyrings stay closed");
        assert_eq!(answer(&filter, "chroot", &[]), EPERM);

        let filter = filter_for(&["sys_chroot", "SYS_TIME"]);
        assert_eq!(answer(&filter, "chroot", &[]), ret::ALLOW);
        assert_eq!(answer(&filter, "clock_settime", &[]), ret::ALLOW);
        assert_eq!(answer(&filter, "mount", &[]), EPERM);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn other_x86_abis_get_eperm_and_foreign_ones_are_killed() {
        let filter = filter_for(&[]);
        let i386 = crate::Arch::X86.audit_arch().expect("x86");
        let arm = crate::Arch::Arm.audit_arch().expect("arm");
        let x86_64 = crate::Arch::X86_64.audit_arch().expect("x86_64");
        assert_eq!(run(&filter.program, &SeccompData::new(i386, 3, &[])), EPERM);
        assert_eq!(run(&filter.program, &SeccompData::new(x86_64, 0x4000_0000, &[])), EPERM);
        assert_eq!(run(&filter.program, &SeccompData::new(arm, 3, &[])), ret::KILL_PROCESS);
    }

    #[test]
    fn compiles_quickly() {
        let profile = default_profile(&[]);
        let start = std::time::Instant::now();
        for _ in 0..100 {
            compile(&profile).expect("compile");
        }
        // Well under 1 ms each in release; a debug build is several times slower.
        assert!(start.elapsed() < std::time::Duration::from_millis(500), "{:?}", start.elapsed());
    }
}
