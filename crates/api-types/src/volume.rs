//! `/volumes/...`: named volumes (swagger: `Volume`, `VolumeCreateOptions`,
//! `VolumeListResponse`, `VolumePruneResponse`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A volume as inspect and list show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<BTreeMap<String, serde_json::Value>>,
    pub labels: Option<BTreeMap<String, String>>,
    /// `local`.
    pub scope: String,
    pub options: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<VolumeUsage>,
}

/// `UsageData` of a volume (`docker system df -v`): -1 when not computed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeUsage {
    pub size: i64,
    pub ref_count: i64,
}

/// The body of `POST /volumes/create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeCreateRequest {
    pub name: String,
    pub driver: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// The answer of `GET /volumes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeListResponse {
    pub volumes: Option<Vec<Volume>>,
    pub warnings: Option<Vec<String>>,
}

/// The answer of `POST /volumes/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumePruneResponse {
    pub volumes_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_uses_dockers_field_names() {
        let v = Volume {
            name: "data".into(),
            driver: "local".into(),
            scope: "local".into(),
            ..Volume::default()
        };
        let json = serde_json::to_value(&v).expect("json");
        assert_eq!(json["Name"], "data");
        assert_eq!(json["Mountpoint"], "");
        assert_eq!(json["Labels"], serde_json::Value::Null);
        let back: VolumeCreateRequest =
            serde_json::from_str(r#"{"Name":"x","DriverOpts":{"type":"tmpfs"}}"#).expect("parse");
        assert_eq!(back.driver_opts.expect("opts")["type"], "tmpfs");
    }
}
