//! End-to-end tests of `kiln shim`: the built binary supervises busybox
//! containers as the daemon would start it, and the tests talk to its
//! control socket and read its log and exit record.
//! Privileged: they run under `KILN_PRIVILEGED_TESTS=1` as root.

mod common;
mod exec;
mod lifecycle;
mod socket;
mod stdio;
