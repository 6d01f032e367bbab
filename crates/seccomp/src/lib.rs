//! Seccomp filters for containers.
//!
//! A container's `linux.seccomp` profile (OCI runtime spec JSON, see
//! [`Profile`]) is compiled by [`compile`] into a classic BPF program, pure
//! and without system calls, and the resulting [`Filter`] is loaded into the
//! calling thread with [`Filter::install`] just before the runtime execs the
//! container's process. [`default_profile`] builds the allowlist Docker
//! applies when a container names no profile.
//!
//! Only the native ABI has a syscall table (x86_64, and aarch64 when built
//! for it). Calls from another ABI that the profile lists (32-bit x86 on
//! x86_64, 32-bit ARM on aarch64) get the profile's default action whatever
//! they are; calls from an unlisted ABI kill the process. `SCMP_ACT_NOTIFY`
//! is not supported. Reading profiles from disk and setting `no_new_privs`
//! belong to `kiln-runtime`.
#![allow(unsafe_code)]

mod default_profile;
mod error;
mod install;
mod profile;
mod program;
mod syscalls;
#[cfg(target_arch = "aarch64")]
mod syscalls_aarch64;
#[cfg(target_arch = "x86_64")]
mod syscalls_x86_64;

#[cfg(test)]
mod emulator;

pub use default_profile::default_profile;
pub use error::SeccompError;
pub use profile::{Action, Arch, ArgCondition, Flag, Op, Profile, SyscallRule};
pub use program::{compile, Filter, MAX_INSTRUCTIONS};
pub use syscalls::syscall_number;
