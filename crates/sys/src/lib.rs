//! Safe wrappers over the Linux calls that Kiln's runtime needs and that
//! `nix` does not cover safely: fork, capabilities, terminals, closing file
//! descriptors in bulk, and re-executing from an unwritable view of ourselves.
//!
//! This is one of the three crates allowed to use `unsafe`; every block says
//! why it holds. Policy (which capabilities, which fds) lives in callers.
#![allow(unsafe_code)]

pub mod caps;
pub mod exe;
pub mod fd_passing;
pub mod fs;
pub mod memory;
pub mod netlink;
pub mod netns;
pub mod process;
pub mod tty;
