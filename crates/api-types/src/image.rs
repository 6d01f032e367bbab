//! `/images/...`: summaries, inspect, history, delete answers, and the
//! JSON-message stream of load and import.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One entry of `GET /images/json` (swagger: `ImageSummary`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    #[serde(deserialize_with = "crate::null::or_default")]
    pub repo_tags: Vec<String>,
    #[serde(deserialize_with = "crate::null::or_default")]
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub size: i64,
    /// -1: not computed.
    pub shared_size: i64,
    #[serde(deserialize_with = "crate::null::or_default")]
    pub labels: BTreeMap<String, String>,
    /// -1: not computed.
    pub containers: i64,
}

/// The answer of `GET /images/{name}/json` (swagger: `ImageInspect`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageInspect {
    pub id: String,
    #[serde(deserialize_with = "crate::null::or_default")]
    pub repo_tags: Vec<String>,
    #[serde(deserialize_with = "crate::null::or_default")]
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    /// RFC 3339, empty when the image does not say.
    pub created: String,
    pub docker_version: String,
    pub author: String,
    pub config: ImageConfig,
    pub architecture: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    pub os: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    pub size: i64,
    #[serde(rename = "GraphDriver")]
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    pub metadata: ImageMetadata,
    /// Fields this model does not name (newer daemons add some); kept so
    /// that a client can show everything it was sent.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `Config` of [`ImageInspect`]: what a container of the image runs with.
/// Empty lists and maps are `null`, as dockerd sends them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, EmptyObject>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    pub image: String,
    pub volumes: Option<BTreeMap<String, EmptyObject>>,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub on_build: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyObject {}

/// `Healthcheck` of [`ImageConfig`]; durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Healthcheck {
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// `GraphDriver` of [`ImageInspect`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GraphDriver {
    pub name: String,
    pub data: BTreeMap<String, String>,
}

/// `RootFS` of [`ImageInspect`]: `Type` is `layers`, `Layers` the diff ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(deserialize_with = "crate::null::or_default")]
    pub layers: Vec<String>,
}

/// `Metadata` of [`ImageInspect`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageMetadata {
    pub last_tag_time: String,
}

/// One entry of `GET /images/{name}/history` (swagger: `HistoryResponseItem`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HistoryItem {
    /// The image id, or `<missing>` for steps below it.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    pub tags: Option<Vec<String>>,
    pub size: i64,
    pub comment: String,
}

/// One entry of the answer of `DELETE /images/{name}` (swagger:
/// `ImageDeleteResponseItem`): exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeleteItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

/// The answer of `POST /images/prune` (swagger: `ImagePruneResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImagePruneResponse {
    /// `null` when nothing was deleted, as dockerd sends it.
    pub images_deleted: Option<Vec<DeleteItem>>,
    pub space_reclaimed: u64,
}

/// One line of a JSON-message stream (load, import, pull): a `stream` text,
/// a `status`, or an `error`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    /// A transfer's bar as dockerd renders it (`[==>    ]  1.2MB/5MB`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    /// What the last lines carry besides text (a push's `Tag`, `Digest`, `Size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

/// `progressDetail` of a [`JsonMessage`]: bytes done and in all (`{}` when
/// the step has no byte count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgressDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// `errorDetail` of a [`JsonMessage`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_items_carry_one_field() {
        let item = DeleteItem { untagged: Some("busybox:latest".into()), deleted: None };
        assert_eq!(serde_json::to_string(&item).expect("json"), r#"{"Untagged":"busybox:latest"}"#);
        let back: DeleteItem = serde_json::from_str(r#"{"Deleted":"sha256:ab"}"#).expect("parse");
        assert_eq!(back.deleted.as_deref(), Some("sha256:ab"));
    }

    #[test]
    fn inspect_sends_rootfs_and_null_lists() {
        let inspect = ImageInspect {
            root_fs: RootFs { kind: "layers".into(), layers: vec!["sha256:ab".into()] },
            ..ImageInspect::default()
        };
        let v = serde_json::to_value(&inspect).expect("json");
        assert_eq!(v["RootFS"]["Type"], "layers");
        assert_eq!(v["Config"]["Cmd"], serde_json::Value::Null);
        assert!(v.get("Variant").is_none());
    }

    #[test]
    fn inspect_keeps_fields_it_does_not_model() {
        let text = r#"{"Id":"sha256:ab","Descriptor":{"size":1},"Config":{"Cmd":["sh"],"X":1}}"#;
        let inspect: ImageInspect = serde_json::from_str(text).expect("parse");
        assert_eq!(inspect.extra["Descriptor"]["size"], 1);
        assert_eq!(inspect.config.extra["X"], 1);
        let back = serde_json::to_value(&inspect).expect("json");
        assert_eq!(back["Descriptor"]["size"], 1);
        assert_eq!(back["Config"]["Cmd"][0], "sh");
    }
}
