//! Kiln's vocabulary: identifiers, digests, image references and error kinds
//! shared by every layer.
//!
//! Values here are parsed once, at the edge, and carried as types afterwards:
//! a [`ContainerId`] has already been checked to be safe as a file name.

mod container_id;
mod container_status;
mod digest;
mod error_kind;
mod reference;
pub mod time;

pub use container_id::{ContainerId, ContainerIdError};
pub use container_status::ContainerStatus;
pub use digest::{Algorithm, Digest, DigestError};
pub use error_kind::{ErrorKind, HasKind};
pub use reference::{ImageRef, ReferenceError, DEFAULT_REGISTRY, DEFAULT_TAG, NAME_MAX_LEN};
