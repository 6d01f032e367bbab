//! Images: OCI and Docker image models, the image metadata store, and the
//! ways images enter and leave without a registry (`import`, `load`, `save`).
//!
//! - Models ([`ImageManifest`], [`ImageIndex`], [`ImageConfig`],
//!   [`Descriptor`], [`media_type`]) serialise deterministically (fixed field
//!   order, sorted maps), so the same content always has the same digest.
//! - [`Metadata`] keeps images, tags and digest references in `kiln.db`
//!   (redb), one transaction per change; a tag never names a missing image.
//! - [`import_rootfs`] makes a one-layer image of a rootfs tar (`docker import`).
//! - [`commit_container`] makes an image of a container's writable layer
//!   on top of its image (`docker commit`).
//! - [`save`] and [`load`] write and read `docker save` archives (Docker's
//!   legacy and 25+ formats) and OCI image layout tars.
//!
//! Blobs live in `kiln-content`, unpacked layers in `kiln-snapshot`; this
//! crate ties them together. Registries are not known here.

mod archive;
mod change;
mod commit;
mod config;
mod descriptor;
mod import;
mod index;
mod layer;
mod manifest;
pub mod media_type;
mod metadata;
mod serde_null;
mod timestamp;

pub use archive::{load, register_image, save, ArchiveError, LoadedImage};
pub use change::{apply_change, ChangeError};
pub use commit::{
    commit_container, merge_config, store_changes, CommitError, CommitOptions, WritableLayer,
};
pub use config::{ContainerConfig, EmptyObject, Healthcheck, History, ImageConfig, RootFs};
pub use descriptor::{Descriptor, Platform};
pub use import::{import_rootfs, ImportError, ImportOptions};
pub use index::ImageIndex;
pub use layer::{unpack_layer, LayerError};
pub use manifest::ImageManifest;
pub use metadata::{ImageRecord, Metadata, MetadataError};
