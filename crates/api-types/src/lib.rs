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
mod container;
mod error;
mod event;
mod image;
mod network;
mod null;
mod stats;
mod system;
mod volume;

pub use api_version::{ApiVersion, ApiVersionError};
pub use container::{
    BindOptions, ContainerConfig, ContainerCreateRequest, ContainerCreateResponse,
    ContainerInspect, ContainerPruneResponse, ContainerState, ContainerSummary,
    ContainerTopResponse, ContainerWaitResponse, DeviceMapping, DriverConfig, EndpointSettings,
    ExecConfig, ExecInspect, ExecProcessConfig, ExecStartConfig, Health, HealthLog, HostConfig,
    IdResponse, LogConfig, Mount, MountPoint, NetworkSettings, NetworkingConfig, Port, PortBinding,
    RestartPolicy, SummaryHostConfig, SummaryNetworkSettings, TmpfsOptions, Ulimit, VolumeOptions,
    WaitError,
};
pub use error::ErrorResponse;
pub use event::{EventActor, EventMessage};
pub use image::{
    DeleteItem, EmptyObject, ErrorDetail, GraphDriver, Healthcheck, HistoryItem, ImageConfig,
    ImageInspect, ImageMetadata, ImagePruneResponse, ImageSummary, JsonMessage, ProgressDetail,
    RootFs,
};
pub use network::{
    ConfigReference, EndpointIpamConfig, Ipam, IpamConfig, Network, NetworkConnectRequest,
    NetworkContainer, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkPruneResponse,
};
pub use stats::{
    BlkioStats, ContainerStats, CpuStats, CpuUsage, MemoryStats, NetworkStats, PidsStats,
    ThrottlingData,
};
pub use system::{
    ComponentVersion, DiskUsage, Platform, RuntimeInfo, SwarmInfo, SystemInfo, Version,
};
pub use volume::{
    Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse, VolumeUsage,
};
