//! The Docker Engine API over HTTP/1.1, served from the engine.
//!
//! - [`versioning`]: which API versions we speak (1.41 up to [`API_VERSION`])
//!   and how a `/vX.Y/...` path is checked, with dockerd's answers.
//! - [`Api`]: routes a request to its handler. Handlers are thin: decode,
//!   call one [`kiln_engine::Engine`] method, translate the engine's types
//!   into `kiln-api-types` and encode. Docker API quirks live here only,
//!   tagged `docker-compat:`.
//! - Images (`/images/...`): blocking engine work runs on tokio's blocking
//!   threads; archives stream both ways through small channels, never whole
//!   in memory.
//! - [`Server`]: listeners (unix socket, TCP) and connections, with a
//!   graceful shutdown that finishes in-flight requests and removes the
//!   socket file.
//! - [`daemon`]: `kiln daemon`'s settings (flags and daemon.json) and its
//!   main loop.
//!
//! Nothing here forks: this runs in the daemon's multi-threaded runtime.

mod auth;
mod bootstrap;
mod build;
mod commit;
mod container;
pub mod daemon;
mod error;
mod events;
mod image;
mod listen;
mod network;
mod push;
mod query;
mod reply;
mod route;
mod server;
mod stream;
mod system;
pub mod versioning;
mod volume;

pub use build::Transport;
pub use error::{status_for, ApiError};
pub use listen::{ListenAddr, ListenAddrError, ListenError};
pub use route::Api;
pub use server::Server;
pub use versioning::{API_VERSION, MIN_API_VERSION};
