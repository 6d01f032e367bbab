//! `/networks/...`: networks and how containers join them (swagger:
//! `Network`, `IPAM`, `IPAMConfig`, `NetworkContainer`, `NetworkCreateRequest`,
//! `NetworkConnectRequest`, `NetworkDisconnectRequest`, `NetworkPruneResponse`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::container::EndpointSettings;
use crate::null::or_default;

/// A network as inspect and list show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Network {
    pub name: String,
    /// 64 hex digits.
    #[serde(rename = "Id")]
    pub id: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// `local` for every network one daemon makes.
    pub scope: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: ConfigReference,
    pub config_only: bool,
    /// By container id: the containers joined now (empty in a list).
    #[serde(deserialize_with = "or_default")]
    pub containers: BTreeMap<String, NetworkContainer>,
    #[serde(deserialize_with = "or_default")]
    pub options: BTreeMap<String, String>,
    #[serde(deserialize_with = "or_default")]
    pub labels: BTreeMap<String, String>,
    /// Fields a newer daemon sends that this model does not know
    /// (dockerd's `EnableIPv4`, `Peers`), kept for inspect.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A network's addressing: `Config` holds one entry per subnet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    /// `default`.
    pub driver: String,
    pub options: Option<BTreeMap<String, String>>,
    #[serde(deserialize_with = "or_default")]
    pub config: Vec<IpamConfig>,
}

/// One subnet of a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    /// `172.18.0.0/16`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    /// Where automatic addresses come from (`--ip-range`).
    #[serde(rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auxiliary_addresses: Option<BTreeMap<String, String>>,
}

/// `ConfigFrom`: the config-only network a swarm network was made from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConfigReference {
    pub network: String,
}

/// A container on a network, as the network's inspect shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkContainer {
    /// Without the leading `/`.
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    /// With its prefix length: `172.18.0.2/16`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// The body of `POST /networks/create`. The docker CLI sends every field,
/// many as `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateRequest {
    pub name: String,
    /// Deprecated in API 1.44: a daemon always refuses a second network of
    /// a name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_duplicate: Option<bool>,
    pub driver: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_from: Option<ConfigReference>,
    #[serde(rename = "IPAM")]
    pub ipam: Option<Ipam>,
    #[serde(rename = "EnableIPv6", skip_serializing_if = "Option::is_none")]
    pub enable_ipv6: Option<bool>,
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// The answer of `POST /networks/create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateResponse {
    #[serde(rename = "Id")]
    pub id: String,
    pub warning: String,
}

/// The body of `POST /networks/{id}/connect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConnectRequest {
    /// The container's name or id.
    pub container: String,
    /// Aliases and `IPAMConfig.IPv4Address` (`--alias`, `--ip`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_config: Option<EndpointSettings>,
}

/// The body of `POST /networks/{id}/disconnect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkDisconnectRequest {
    pub container: String,
    pub force: bool,
}

/// The answer of `POST /networks/prune`: the names of the removed networks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkPruneResponse {
    pub networks_deleted: Option<Vec<String>>,
}

/// `IPAMConfig` of an endpoint: the addresses asked for (`--ip`, `--ip6`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address", skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address", skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
    #[serde(rename = "LinkLocalIPs", skip_serializing_if = "Vec::is_empty")]
    #[serde(deserialize_with = "or_default")]
    pub link_local_ips: Vec<String>,
}

impl EndpointSettings {
    /// The endpoint's `IPAMConfig`, empty when absent or not an object of
    /// that shape.
    pub fn ipam(&self) -> EndpointIpamConfig {
        self.ipam_config
            .as_ref()
            .and_then(|value| serde_json::from_value(value.clone()).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_uses_dockers_field_names() {
        let network = Network {
            name: "web".into(),
            id: "ab".repeat(32),
            scope: "local".into(),
            driver: "bridge".into(),
            ipam: Ipam {
                driver: "default".into(),
                options: None,
                config: vec![IpamConfig {
                    subnet: "172.18.0.0/16".into(),
                    gateway: "172.18.0.1".into(),
                    ..IpamConfig::default()
                }],
            },
            ..Network::default()
        };
        let json = serde_json::to_value(&network).expect("json");
        assert_eq!(json["Id"], "ab".repeat(32));
        assert_eq!(json["EnableIPv6"], false);
        assert_eq!(json["IPAM"]["Options"], serde_json::Value::Null);
        assert_eq!(
            json["IPAM"]["Config"],
            serde_json::json!([{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}])
        );
        assert_eq!(json["ConfigFrom"], serde_json::json!({"Network": ""}));
        assert_eq!(json["Containers"], serde_json::json!({}));
    }

    #[test]
    fn dockerds_nulls_read_as_empty() {
        let network: Network = serde_json::from_str(
            r#"{"Name":"none","Id":"x","IPAM":{"Driver":"default","Options":null,"Config":null},"Containers":null,"Options":null,"Labels":null}"#,
        )
        .expect("network");
        assert!(network.ipam.config.is_empty());
        assert!(network.containers.is_empty() && network.labels.is_empty());
    }

    #[test]
    fn the_docker_clis_create_body_parses() {
        let body = r#"{"Name":"web","CheckDuplicate":true,"Driver":"bridge","Scope":"","EnableIPv6":null,
            "IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.1.0.0/24","IPRange":"10.1.0.128/25","Gateway":"10.1.0.1"}]},
            "Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,
            "Options":{"com.docker.network.bridge.name":"br-web"},"Labels":{"a":"b"}}"#;
        let request: NetworkCreateRequest = serde_json::from_str(body).expect("request");
        assert_eq!(request.name, "web");
        assert_eq!(request.enable_ipv6, None);
        let ipam = request.ipam.expect("ipam");
        assert_eq!(ipam.config[0].ip_range, "10.1.0.128/25");
        assert_eq!(request.labels.expect("labels")["a"], "b");
        let bare: NetworkCreateRequest =
            serde_json::from_str(r#"{"Name":"x","IPAM":{"Config":null}}"#).expect("bare");
        assert!(bare.ipam.expect("ipam").config.is_empty());
    }

    #[test]
    fn an_endpoints_ipam_config_reads_from_its_json() {
        let request: NetworkConnectRequest = serde_json::from_str(
            r#"{"Container":"c","EndpointConfig":{"Aliases":["db"],"IPAMConfig":{"IPv4Address":"10.1.0.9","LinkLocalIPs":null}}}"#,
        )
        .expect("connect");
        let endpoint = request.endpoint_config.expect("endpoint");
        assert_eq!(endpoint.ipam().ipv4_address, "10.1.0.9");
        assert_eq!(endpoint.aliases, Some(vec!["db".to_owned()]));
        assert_eq!(EndpointSettings::default().ipam(), EndpointIpamConfig::default());
        let disconnect: NetworkDisconnectRequest =
            serde_json::from_str(r#"{"Container":"c","Force":true}"#).expect("disconnect");
        assert!(disconnect.force);
    }
}
