//! Filters installed in a real, forked child: no root needed, since the
//! child sets `no_new_privs` first.
#![allow(unsafe_code)]

use kiln_seccomp::{compile, default_profile, Action, Filter, Profile, SyscallRule};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

/// Child exit codes above every result bit.
const PRCTL_FAILED: i32 = 100;
const INSTALL_FAILED: i32 = 101;

/// Forks; the child sets `no_new_privs`, installs `filter`, runs `probe` and
/// exits with its result. Returns the child's exit code.
fn exit_code_under(filter: &Filter, probe: fn() -> i32) -> i32 {
    // SAFETY: the test harness is multi-threaded, so the child only makes
    // raw system calls: `prctl`, `Filter::install` (which allocates nothing
    // on success), the probe's `syscall`s and `_exit`. It never returns
    // into the harness, allocates, or takes a lock.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integer arguments.
            let code = if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                PRCTL_FAILED
            } else if filter.install().is_err() {
                INSTALL_FAILED
            } else {
                probe()
            };
            // SAFETY: `_exit` ends the child without running the parent's
            // atexit handlers or destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
            WaitStatus::Exited(_, code) => code,
            other => panic!("child did not exit normally: {other:?}"),
        },
    }
}

fn errno() -> i32 {
    nix::errno::Errno::last_raw()
}

#[test]
fn default_profile_refuses_unshare_with_eperm_but_allows_getpid() {
    let filter = compile(&default_profile(&[])).expect("compile");
    let code = exit_code_under(&filter, || {
        let mut result = 0;
        // SAFETY: getpid takes no arguments and cannot fail.
        if unsafe { libc::syscall(libc::SYS_getpid) } > 0 {
            result |= 1;
        }
        // SAFETY: unshare takes a flags word; refused, it changes nothing.
        if unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUTS) } == -1
            && errno() == libc::EPERM
        {
            result |= 2;
        }
        // Without the filter clone3(NULL, 0) fails with EINVAL, not ENOSYS.
        // SAFETY: a null, zero-sized argument is rejected before any use.
        if unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) } == -1
            && errno() == libc::ENOSYS
        {
            result |= 4;
        }
        result
    });
    assert_eq!(code, 1 | 2 | 4, "1: getpid works, 2: unshare gets EPERM, 4: clone3 gets ENOSYS");
}

#[test]
fn rule_errno_reaches_the_caller() {
    let profile = Profile {
        default_action: Action::Allow,
        syscalls: vec![SyscallRule {
            errno_ret: Some(123),
            ..SyscallRule::new(&["getppid"], Action::Errno)
        }],
        ..Profile::default()
    };
    let filter = compile(&profile).expect("compile");
    let code = exit_code_under(&filter, || {
        // SAFETY: getppid takes no arguments.
        let refused = unsafe { libc::syscall(libc::SYS_getppid) } == -1 && errno() == 123;
        // SAFETY: getpid takes no arguments.
        let allowed = unsafe { libc::syscall(libc::SYS_getpid) } > 0;
        i32::from(refused) | i32::from(allowed) << 1
    });
    assert_eq!(code, 3, "1: getppid fails with errno 123, 2: getpid still works");
}

#[test]
fn shell_and_coreutils_run_under_the_default_profile() {
    let filter = compile(&default_profile(&[])).expect("compile");
    // Built before fork: the child may not allocate.
    let sh = c"/bin/sh";
    let argv = [
        c"sh".as_ptr(),
        c"-c".as_ptr(),
        c"ls / >/dev/null && cat /proc/self/status | grep -q '^Seccomp:.2'".as_ptr(),
        std::ptr::null(),
    ];
    // SAFETY: as in `exit_code_under`: only prctl, install, execv and _exit
    // run in the child, on data prepared before the fork.
    let code = match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integer arguments.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                // SAFETY: see above.
                unsafe { libc::_exit(PRCTL_FAILED) }
            }
            if filter.install().is_err() {
                // SAFETY: see above.
                unsafe { libc::_exit(INSTALL_FAILED) }
            }
            // SAFETY: `sh` and `argv` are NUL-terminated and outlive the call.
            unsafe { libc::execv(sh.as_ptr(), argv.as_ptr()) };
            // SAFETY: see above.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
            WaitStatus::Exited(_, code) => code,
            other => panic!("child did not exit normally: {other:?}"),
        },
    };
    assert_eq!(code, 0, "sh -c 'ls / && grep Seccomp: 2 /proc/self/status' under the filter");
}
