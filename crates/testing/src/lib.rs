//! Test helpers for Kiln's component and end-to-end tests; a dev-dependency only.
//!
//! - Root gating: [`privileged_tests_enabled`] and [`require_privileged!`], so
//!   that root tests run under `KILN_PRIVILEGED_TESTS=1` and fail, never skip,
//!   when that is set without root.
//! - Isolation: [`unique_name`] (`kiln-t-<random>`) and [`ScratchDir`], a temp
//!   dir removed on drop (after detaching any mounts left under it).
//! - Fixtures: [`build_busybox_rootfs`] and [`Bundle`], an OCI bundle with a
//!   busybox rootfs and a runc-`spec`-like config; the [`probe`](probe_path)
//!   inside reports what a container sees as JSON.
//! - The binary under test: [`kiln_bin`], [`RuntimeRoot`] and [`runtime`].

mod bundle;
mod name;
mod privileged;
mod rootfs;
mod runtime;
mod scratch;

pub use bundle::Bundle;
pub use name::unique_name;
pub use privileged::privileged_tests_enabled;
pub use rootfs::{build_busybox_rootfs, probe_path};
pub use runtime::{kiln_bin, runtime, RuntimeRoot};
pub use scratch::ScratchDir;
