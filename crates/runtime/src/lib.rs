//! Kiln's OCI runtime: an OCI bundle (config.json + rootfs) turned into an
//! isolated process, and the lifecycle around it (create, start, state,
//! kill, delete, exec, pause, resume), as the OCI runtime spec defines it
//! for ociVersion 1.0.0 through 1.3.x.
//!
//! Start reading at [`create()`]: it plans the container from its spec
//! ([`rootfs_plan`], [`mount_options`]), makes its cgroup (`kiln-cgroups`),
//! then forks the container's process, whose side lives in `init` and
//! `rootfs`. State lives in a [`Store`] (`--root`), one directory per id.
//!
//! The runtime is synchronous and must run in a single-threaded process.

mod console;
mod create;
mod error;
mod features;
mod foreground;
mod hooks;
mod init;
pub mod mount_options;
mod ops;
mod process;
mod reaper;
mod rootfs;
pub mod rootfs_plan;
mod run;
mod setup_error;
mod signal;
pub mod spec;
mod state;
mod sync;
pub mod template;

pub use console::receive_master;
pub use create::{create, Console, CreateOptions};
pub use error::RuntimeError;
pub use features::features;
pub use ops::{bundle, delete, kill, list, pause, pids, resume, start, state};
pub use reaper::INIT_ANNOTATION;
pub use run::{exec, run, ExecOptions, RunOptions};
pub use signal::parse_signal;
pub use spec::Spec;
pub use state::{ContainerState, OciState, Status, Store};

/// Where `kiln runtime` keeps container state unless `--root` says otherwise.
pub const DEFAULT_ROOT: &str = "/run/kiln/runtime";
