//! End-to-end tests of `kiln runtime`: the built binary runs real containers
//! from busybox bundles, with the probe reporting what it sees inside.
//! Privileged: they run under `KILN_PRIVILEGED_TESTS=1` as root.

mod common;
