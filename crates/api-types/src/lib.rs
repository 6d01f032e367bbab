//! Docker Engine API models: the JSON bodies that cross the wire, and the API
//! version they are spoken in.
//!
//! Serde only: no I/O and no behaviour beyond parsing. Field names follow
//! moby's `api/swagger.yaml` exactly (PascalCase, with its odd spellings such
//! as `ID`, `NCPU`, `OSType`). Every field has a default when decoding, so a
//! client can read answers from daemons that send fewer or more fields (an
//! older `dockerd`, or Kiln itself). The server side, which translates the
//! engine's own types into these, is `kiln-api-server`.

mod api_version;
mod error;
mod image;
mod system;

pub use api_version::{ApiVersion, ApiVersionError};
pub use error::ErrorResponse;
pub use image::{
    DeleteItem, EmptyObject, ErrorDetail, GraphDriver, Healthcheck, HistoryItem, ImageConfig,
    ImageInspect, ImageMetadata, ImagePruneResponse, ImageSummary, JsonMessage, RootFs,
};
pub use system::{
    ComponentVersion, DiskUsage, Platform, RuntimeInfo, SwarmInfo, SystemInfo, Version,
};
