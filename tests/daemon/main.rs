//! End-to-end tests of `kiln daemon` and the API commands: the built binary
//! serves a temp root over a temp socket; raw HTTP, `kiln` and, when one is
//! on PATH, the `docker` CLI talk to it. None needs root.

mod api;
mod cli;
mod common;
mod docker_cli;
mod images;
mod lifecycle;
