//! `linux.resources` of the OCI runtime spec, with its JSON field names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Resource limits for a container's cgroup (`linux.resources`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Resources {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    #[serde(rename = "blockIO", skip_serializing_if = "Option::is_none")]
    pub block_io: Option<BlockIo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hugepage_limits: Vec<HugepageLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// Accepted and ignored: no RDMA controller support yet.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rdma: BTreeMap<String, Rdma>,
    /// cgroup v2 only: interface file name → value, written as is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unified: BTreeMap<String, String>,
}

/// `linux.resources.memory`, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Memory {
    /// Hard limit; -1 is unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Soft limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    /// Memory plus swap, as on cgroup v1; -1 is unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
    /// Deprecated in the spec; accepted and ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<i64>,
    /// Deprecated in the spec; accepted and ignored.
    #[serde(rename = "kernelTCP", skip_serializing_if = "Option::is_none")]
    pub kernel_tcp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    #[serde(rename = "disableOOMKiller", skip_serializing_if = "Option::is_none")]
    pub disable_oom_killer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_hierarchy: Option<bool>,
    /// Refuse a new limit below the cgroup's current usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_before_update: Option<bool>,
}

/// `linux.resources.cpu`; times in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Cpu {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime_runtime: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime_period: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<i64>,
}

/// `linux.resources.pids`; a limit of 0 or below is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Pids {
    pub limit: i64,
}

/// `linux.resources.blockIO`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BlockIo {
    /// 10..=1000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub throttle_read_bps_device: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub throttle_write_bps_device: Vec<ThrottleDevice>,
    #[serde(rename = "throttleReadIOPSDevice", skip_serializing_if = "Vec::is_empty")]
    pub throttle_read_iops_device: Vec<ThrottleDevice>,
    #[serde(rename = "throttleWriteIOPSDevice", skip_serializing_if = "Vec::is_empty")]
    pub throttle_write_iops_device: Vec<ThrottleDevice>,
}

/// A per-device block I/O weight.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
}

/// A per-device rate limit, in bytes or operations per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

/// One device cgroup rule; missing type means all (`a`), missing numbers `*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DeviceRule {
    pub allow: bool,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    /// Any of `r`, `w`, `m`; missing means `rwm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

/// A limit on huge pages of one size, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HugepageLimit {
    /// As the kernel names it in the cgroup files: `2MB`, `1GB`.
    pub page_size: String,
    pub limit: u64,
}

/// `linux.resources.network` (cgroup v1 `net_cls` and `net_prio`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Network {
    #[serde(rename = "classID", skip_serializing_if = "Option::is_none")]
    pub class_id: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<InterfacePriority>,
}

/// A network priority for one interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InterfacePriority {
    pub name: String,
    pub priority: u32,
}

/// RDMA limits for one device; accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Rdma {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hca_handles: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hca_objects: Option<u32>,
}

impl Resources {
    /// Settings accepted from the spec but never applied, on any hierarchy.
    pub(crate) fn ignored(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(m) = &self.memory {
            if m.kernel.is_some() {
                warnings.push("memory.kernel is deprecated and ignored".to_owned());
            }
            if m.kernel_tcp.is_some() {
                warnings.push("memory.kernelTCP is deprecated and ignored".to_owned());
            }
        }
        if !self.rdma.is_empty() {
            warnings.push("rdma limits are not supported and ignored".to_owned());
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_json_names_round_trip() {
        let json = r#"{
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
            "memory": {"limit": 67108864, "swap": 134217728, "kernelTCP": 1, "disableOOMKiller": true, "checkBeforeUpdate": true},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "realtimeRuntime": 1, "realtimePeriod": 2, "cpus": "0-1"},
            "pids": {"limit": 10},
            "blockIO": {"weight": 500, "leafWeight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3}},
            "unified": {"memory.high": "1000000"}
        }"#;
        let r: Resources = serde_json::from_str(json).expect("parse");
        assert_eq!(r.devices[1].r#type.as_deref(), Some("c"));
        let memory = r.memory.as_ref().expect("memory");
        assert_eq!(memory.kernel_tcp, Some(1));
        assert_eq!(memory.disable_oom_killer, Some(true));
        assert_eq!(memory.check_before_update, Some(true));
        assert_eq!(r.cpu.as_ref().and_then(|c| c.realtime_period), Some(2));
        let bio = r.block_io.as_ref().expect("blockIO");
        assert_eq!(bio.throttle_write_iops_device[0].rate, 100);
        assert_eq!(r.hugepage_limits[0].page_size, "2MB");
        assert_eq!(r.network.as_ref().and_then(|n| n.class_id), Some(1048577));
        assert_eq!(r.rdma["mlx5_1"].hca_handles, Some(3));

        let back: Resources =
            serde_json::from_value(serde_json::to_value(&r).expect("encode")).expect("decode");
        assert_eq!(back, r);
        let text = serde_json::to_string(&r).expect("encode");
        assert!(text.contains("\"blockIO\"") && text.contains("\"throttleWriteIOPSDevice\""));
    }

    #[test]
    fn empty_resources_serialize_to_empty_object() {
        assert_eq!(serde_json::to_string(&Resources::default()).expect("encode"), "{}");
        let r: Resources = serde_json::from_str("{}").expect("parse");
        assert_eq!(r, Resources::default());
    }

    #[test]
    fn deprecated_and_unsupported_settings_are_reported() {
        let mut r = Resources {
            memory: Some(Memory { kernel: Some(1), kernel_tcp: Some(1), ..Memory::default() }),
            ..Resources::default()
        };
        r.rdma.insert("mlx".into(), Rdma::default());
        assert_eq!(r.ignored().len(), 3);
    }
}
