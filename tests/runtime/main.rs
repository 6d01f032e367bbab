//! End-to-end tests of `kiln runtime`: the built binary runs real containers
//! from busybox bundles, with the probe reporting what it sees inside.
//! Privileged: they run under `KILN_PRIVILEGED_TESTS=1` as root.

mod bad_input;
mod common;
mod hooks_console;
mod isolation;
mod lifecycle;
mod security;
