//! Layer snapshots: image layers unpacked once into directories that
//! overlayfs stacks; returns mount specs, does not mount.
//!
//! - [`unpack_layer`] turns a layer blob (plain, gzip or zstd tar) into a new
//!   directory atomically, refusing entries that escape it, and reports the
//!   layer's diff id.
//! - [`Snapshots`] keeps committed layers by [`chain_id`] and containers'
//!   writable layers under one root, and plans their overlay mount as a
//!   [`MountSpec`]; mounting is the runtime's job.
//! - [`materialize`] is the copying snapshotter for hosts without overlayfs.
//!
//! Image manifests and blobs are not known here; see `kiln-image` and
//! `kiln-content`.

mod chain;
mod changes;
mod compression;
mod copy;
mod error;
mod overlay;
mod store;
mod unpack;
mod whiteout;

pub use chain::{chain_id, chain_ids};
pub use changes::{changes, Change, ChangeKind};
pub use compression::{decompress, Compression};
pub use copy::materialize;
pub use error::SnapshotError;
pub use overlay::{plan_mount, MountSpec, UpperDirs, MAX_OPTIONS_LEN};
pub use store::Snapshots;
pub use unpack::{unpack_layer, unpack_layer_with_whiteouts, UnpackStats};
pub use whiteout::{
    is_opaque, is_overlay_whiteout, Whiteout, WhiteoutFormat, OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR,
    WHITEOUT_PREFIX,
};
