//! `GET /version` and `GET /info`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ApiVersion;

/// The answer of `GET /version` (swagger: `SystemVersion`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Version {
    pub platform: Platform,
    #[serde(deserialize_with = "crate::null::or_default")]
    pub components: Vec<ComponentVersion>,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<ApiVersion>,
    #[serde(rename = "MinAPIVersion", skip_serializing_if = "Option::is_none")]
    pub min_api_version: Option<ApiVersion>,
    pub git_commit: String,
    pub go_version: String,
    pub os: String,
    pub arch: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kernel_version: String,
    pub experimental: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub build_time: String,
}

/// `Platform` of [`Version`]: the product name shown as "Server: <Name>".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Platform {
    pub name: String,
}

/// One entry of `Components` in [`Version`]: the engine, the runtime, …
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ComponentVersion {
    pub name: String,
    pub version: String,
    /// Free-form details (`ApiVersion`, `GitCommit`, …), all strings.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// The answer of `GET /info` (swagger: `SystemInfo`), the subset that the
/// docker CLI, docker-py and compose read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SystemInfo {
    #[serde(rename = "ID")]
    pub id: String,
    pub containers: u64,
    pub containers_running: u64,
    pub containers_paused: u64,
    pub containers_stopped: u64,
    pub images: u64,
    pub driver: String,
    /// Label/value pairs describing the storage driver.
    #[serde(deserialize_with = "crate::null::or_default")]
    pub driver_status: Vec<[String; 2]>,
    pub docker_root_dir: String,
    pub debug: bool,
    pub system_time: String,
    pub logging_driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    #[serde(rename = "NCPU")]
    pub ncpu: u64,
    pub mem_total: u64,
    pub name: String,
    pub server_version: String,
    #[serde(deserialize_with = "crate::null::or_default")]
    pub runtimes: BTreeMap<String, RuntimeInfo>,
    pub default_runtime: String,
    pub swarm: SwarmInfo,
    /// `name=seccomp,profile=builtin` style entries.
    #[serde(deserialize_with = "crate::null::or_default")]
    pub security_options: Vec<String>,
    #[serde(deserialize_with = "crate::null::or_default")]
    pub warnings: Vec<String>,
    /// Kiln's own: bytes of /dev/shm a container gets without `--shm-size`
    /// (absent from dockerd's answers, so 0 there).
    #[serde(rename = "KilnDefaultShmSize", skip_serializing_if = "is_zero")]
    pub kiln_default_shm_size: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// One entry of `Runtimes` in [`SystemInfo`] (lower-case keys on the wire).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeInfo {
    pub path: String,
    #[serde(rename = "runtimeArgs", skip_serializing_if = "Vec::is_empty")]
    pub runtime_args: Vec<String>,
}

/// `Swarm` of [`SystemInfo`]; Kiln has no swarm mode, so it is always
/// `inactive`, but clients read the field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SwarmInfo {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_addr: String,
    pub local_node_state: String,
    pub control_available: bool,
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_uses_swaggers_field_names() {
        let info = SystemInfo {
            id: "x".into(),
            ncpu: 2,
            os_type: "linux".into(),
            docker_root_dir: "/var/lib/kiln".into(),
            runtimes: [(
                "kiln".to_owned(),
                RuntimeInfo { path: "/usr/bin/kiln".into(), ..Default::default() },
            )]
            .into(),
            ..Default::default()
        };
        let json = serde_json::to_value(&info).expect("json");
        assert_eq!(json["ID"], "x");
        assert_eq!(json["NCPU"], 2);
        assert_eq!(json["OSType"], "linux");
        assert_eq!(json["DockerRootDir"], "/var/lib/kiln");
        assert_eq!(json["ContainersRunning"], 0);
        assert_eq!(json["Runtimes"]["kiln"]["path"], "/usr/bin/kiln");
        assert_eq!(json["Swarm"]["LocalNodeState"], "");
    }

    #[test]
    fn version_reads_a_sparse_answer_and_writes_min_api_version() {
        let v: Version = serde_json::from_str(
            r#"{"Version":"28.2.2","ApiVersion":"1.50","MinAPIVersion":"1.24","Extra":1}"#,
        )
        .expect("decode");
        assert_eq!(v.api_version, Some(ApiVersion::new(1, 50)));
        let json = serde_json::to_value(&v).expect("json");
        assert_eq!(json["MinAPIVersion"], "1.24");
        assert_eq!(json["Platform"]["Name"], "");
        assert!(json.get("BuildTime").is_none());
    }
}

/// The answer of `GET /system/df` (swagger: `SystemDataUsageResponse`).
/// Containers, volumes and build cache are listed as dockerd sends them;
/// Kiln has none of them yet, so they stay empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DiskUsage {
    pub layers_size: i64,
    #[serde(deserialize_with = "crate::null::or_default")]
    pub images: Vec<crate::ImageSummary>,
    #[serde(deserialize_with = "crate::null::or_default")]
    pub containers: Vec<serde_json::Value>,
    #[serde(deserialize_with = "crate::null::or_default")]
    pub volumes: Vec<serde_json::Value>,
    #[serde(deserialize_with = "crate::null::or_default")]
    pub build_cache: Vec<serde_json::Value>,
}
