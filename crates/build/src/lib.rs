//! `kiln build`: a Dockerfile, a context directory and build arguments in,
//! an image out, reproducible by default and cached exactly.
//!
//! This crate plans and executes; it does not run processes or mount file
//! systems itself. The engine implements [`Worker`] (resolve a base image,
//! mount a writable root over layers, run a step's process in it) and
//! everything else happens here: stage planning, the cache keys, COPY and
//! ADD, the layer tars (entries sorted, times clamped to
//! `SOURCE_DATE_EPOCH`), the image config and history.

pub mod copy;
mod error;
mod request;

pub use error::BuildError;
pub use request::{BuildEvent, BuildOutcome, BuildRequest, Cancel, Secret};
mod cache;
mod compare;
mod exec;
mod export;
mod state;
mod users;
pub mod worker;

pub use exec::{build, DEFAULT_SOURCE_DATE_EPOCH};
pub use worker::{
    BaseImage, DownloadedFile, Rootfs, RunResult, StepMount, StepNetwork, StepProcess, Worker,
};
