//! What the engine keeps of a container: what it was asked to run
//! ([`CreateRequest`]), and what happened to it ([`ContainerState`]), stored
//! together as one [`ContainerRecord`] per container.

use std::collections::BTreeMap;

use kiln_types::{ContainerStatus, Digest};
use serde::{Deserialize, Serialize};

pub use kiln_image::Healthcheck;

/// Everything `create` is told, in the engine's terms. The API server fills
/// it from Docker's create body; the engine merges the image's defaults in
/// when it builds the runtime spec, and keeps this as given for inspect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateRequest {
    /// The image as the user named it.
    pub image: String,
    pub config: RunConfig,
    pub host: HostOptions,
}

/// A published port while the container runs: the host side Kiln bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub container_port: u16,
    pub proto: kiln_network::Proto,
    /// `0.0.0.0` for every address of the host.
    pub host_ip: String,
    pub host_port: u16,
}

impl PortMapping {
    /// The container side as an API key (`80/tcp`).
    pub fn key(&self) -> kiln_network::PortKey {
        kiln_network::PortKey { port: self.container_port, proto: self.proto }
    }
}

/// The container side of the request (Docker's `Config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    pub hostname: String,
    pub domainname: String,
    /// `uid[:gid]` or `name[:group]`; empty: the image's user.
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub exposed_ports: Vec<String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    /// `KEY=value`; added to the image's.
    pub env: Vec<String>,
    /// `None`: the image's.
    pub cmd: Option<Vec<String>>,
    pub healthcheck: Option<Healthcheck>,
    pub volumes: Vec<String>,
    /// Empty: the image's.
    pub working_dir: String,
    /// `None`: the image's; `Some([])` or `Some([""])` clears it.
    pub entrypoint: Option<Vec<String>>,
    pub network_disabled: bool,
    pub mac_address: String,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    /// Seconds.
    pub stop_timeout: Option<i64>,
}

/// The host side of the request (Docker's `HostConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostOptions {
    pub binds: Vec<String>,
    pub mounts: Vec<MountRequest>,
    /// Path → tmpfs options (`size=64m,mode=1777`).
    pub tmpfs: BTreeMap<String, String>,
    pub volumes_from: Vec<String>,
    pub auto_remove: bool,
    pub network_mode: String,
    /// `80/tcp` → host bindings; kept for inspect until networks exist.
    pub port_bindings: BTreeMap<String, Vec<(String, String)>>,
    pub publish_all_ports: bool,
    pub restart_policy: RestartPolicy,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Vec<String>,
    pub devices: Vec<DeviceRequest>,
    pub ulimits: Vec<UlimitRequest>,
    pub sysctls: BTreeMap<String, String>,
    pub init: Option<bool>,
    pub group_add: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub pid_mode: String,
    pub ipc_mode: String,
    pub uts_mode: String,
    pub cgroup_parent: String,
    /// `[height, width]`.
    pub console_size: Option<[u32; 2]>,
    pub log_driver: String,
    pub log_options: BTreeMap<String, String>,
    pub resources: ResourceRequest,
}

/// `--mount`, and `-v` after parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountRequest {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub propagation: String,
    pub tmpfs_size: i64,
    pub tmpfs_mode: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartPolicy {
    /// "", `no`, `always`, `unless-stopped`, `on-failure`.
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceRequest {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UlimitRequest {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// Limits, as Docker's `Resources`; 0 or `None` means unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceRequest {
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub pids_limit: Option<i64>,
    pub shm_size: i64,
    pub oom_kill_disable: Option<bool>,
    pub oom_score_adj: i64,
    pub blkio_weight: u16,
}

/// What happened to a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerState {
    #[serde(with = "status_name")]
    pub status: ContainerStatus,
    pub pid: i64,
    pub exit_code: i64,
    pub oom_killed: bool,
    /// Why the last start failed.
    pub error: String,
    /// Unix nanoseconds; 0: never.
    pub started_at: i64,
    pub finished_at: i64,
    pub restart_count: i64,
    /// Stopped by the user (so `unless-stopped` stays down).
    pub stopped_by_user: bool,
    /// Published ports of the current run, in the order they were asked
    /// for; empty when the container does not run.
    pub ports: Vec<PortMapping>,
}

/// A container as stored: its identity, request, resolved image and state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// Unix nanoseconds.
    pub created: i64,
    pub image_id: Digest,
    pub request: CreateRequest,
    /// The command that runs: entrypoint + cmd after the image's defaults.
    pub path: String,
    pub args: Vec<String>,
    /// Named and anonymous volumes and binds as mounted.
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    #[serde(default)]
    pub state: ContainerState,
}

/// A mount as inspect shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountPoint {
    /// `bind`, `volume`, `tmpfs`.
    pub kind: String,
    pub name: String,
    pub source: String,
    pub destination: String,
    pub mode: String,
    pub rw: bool,
    pub propagation: String,
}

mod status_name {
    use kiln_types::ContainerStatus;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(status: &ContainerStatus, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(status.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ContainerStatus, D::Error> {
        let text = String::deserialize(d)?;
        ContainerStatus::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown status {text:?}")))
    }
}
