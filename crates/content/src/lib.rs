//! Content-addressed blob storage.
//!
//! A blob is written through an [`Ingest`], checked against its digest in
//! [`Ingest::commit`], and only then visible to readers. Manifests and
//! registries are not known here; see `kiln-image`.
//!
//! Layout under the store's root (`<kiln root>/content`):
//!
//! ```text
//! blobs/sha256/<hex>   committed blobs: whole, verified, fsynced, immutable
//! ingest/<random>      blobs being written; never read
//! ```
//!
//! A blob is either whole and correct in `blobs/` or absent: an ingest writes
//! to a temp file, hashes as it goes, fsyncs, and renames into place only if
//! the digest (and size) match what was expected. A failed or dropped ingest
//! removes its temp file; one left by a killed process is removed by
//! [`Store::gc_ingests`], which the daemon runs at start under its lock.
//! Only sha256 blobs are produced.

mod error;
mod ingest;
mod store;

pub use error::ContentError;
pub use ingest::Ingest;
pub use store::{Store, READ_LIMIT};
