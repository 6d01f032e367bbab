//! End-to-end tests of `kiln daemon` and the API commands: the built binary
//! serves a temp root over a temp socket; raw HTTP, `kiln`, the `docker` CLI
//! and docker-py talk to it (scripts/test installs the last two when they
//! are missing; without them those tests fail). The container tests run real
//! containers and need root (`KILN_PRIVILEGED_TESTS=1`); the others do not.

mod api;
mod bootstrap;
mod build;
mod build_api;
mod build_ml;
mod cli;
mod commit_cp;
mod common;
mod containers;
mod docker_cli;
mod docker_containers;
mod docker_py;
mod dockerd;
mod full_disk;
mod images;
mod lifecycle;
mod network_cli;
mod network_dns;
mod network_iptables;
mod network_modes;
mod network_reach;
mod networks;
mod pull;
mod push;
mod registry;
mod registry_auth;
mod resources;
mod terminal;
