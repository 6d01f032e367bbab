//! `/networks/...`: the engine's networks in the API's shapes; and a
//! container's networks and published ports as its inspect and its `ps`
//! row show them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use hyper::body::Body as HttpBody;
use kiln_api_types as wire;
use kiln_engine::containers::ContainerRecord;
use kiln_engine::networks::{
    ContainerNetwork, CreateNetwork, EndpointConfig, NetworkError, NetworkRecord, PortKey,
    DEFAULT_NETWORK,
};
use kiln_engine::{ContainerError, Engine};

use crate::container::{parse_filters, read_json};
use crate::error::ApiError;
use crate::query::Query;
use crate::reply::{self, Body};

/// The filters `GET /networks` takes, as dockerd.
const LIST_FILTERS: [&str; 7] = ["name", "id", "label", "driver", "scope", "type", "dangling"];

/// A network error as dockerd answers it.
fn network_err(err: &NetworkError) -> ApiError {
    let mut api = ApiError::from_error(err);
    // docker-compat: libnetwork's "has active endpoints" and "already
    // exists in network" are Forbidden errors: 403, not 409.
    if matches!(err, NetworkError::ActiveEndpoints { .. } | NetworkError::AlreadyConnected { .. }) {
        api.status = StatusCode::FORBIDDEN;
    }
    api
}

/// A container error of connect or disconnect, its network errors as
/// [`network_err`] answers them.
fn container_err(err: &ContainerError) -> ApiError {
    match err {
        ContainerError::Network(inner) => network_err(inner),
        other => ApiError::from_error(other),
    }
}

/// Run blocking network work (netlink, the database) off the runtime.
async fn off_runtime<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, NetworkError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|err| network_err(&err)),
        Err(join) => Err(ApiError::internal(format!("the request's task failed: {join}"))),
    }
}

fn filters_of(query: &Query) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    match query.get("filters") {
        None | Some("") => Ok(BTreeMap::new()),
        Some(text) => parse_filters(text),
    }
}

/// `GET /networks?filters=`.
pub async fn list(engine: Arc<Engine>, query: &Query) -> Result<Response<Body>, ApiError> {
    let filters = filters_of(query)?;
    check_list_filters(&filters)?;
    let records = engine.networks().list(&filters).map_err(|e| network_err(&e))?;
    // docker-compat: a list leaves `Containers` empty; inspect fills it.
    let networks: Vec<wire::Network> = records.iter().map(|r| to_wire(r, false)).collect();
    Ok(reply::json(StatusCode::OK, &networks))
}

/// Filter keys and values dockerd accepts, with its messages.
fn check_list_filters(filters: &BTreeMap<String, Vec<String>>) -> Result<(), ApiError> {
    for key in filters.keys() {
        if !LIST_FILTERS.contains(&key.as_str()) {
            return Err(ApiError::bad_request(format!("invalid filter '{key}'")));
        }
    }
    for value in filters.get("type").into_iter().flatten() {
        if !matches!(value.as_str(), "builtin" | "custom") {
            return Err(ApiError::bad_request(format!("invalid filter 'type={value}'")));
        }
    }
    for value in filters.get("dangling").into_iter().flatten() {
        if !matches!(value.as_str(), "true" | "false" | "1" | "0") {
            return Err(ApiError::bad_request(format!("invalid filter 'dangling={value}'")));
        }
    }
    Ok(())
}

/// `GET /networks/{id}?verbose=&scope=`: by name, id or unique id prefix.
pub async fn inspect(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let record = engine.networks().inspect(&name).map_err(|e| network_err(&e))?;
    if query.get("scope").is_some_and(|scope| !scope.is_empty() && scope != record.scope()) {
        return Err(network_err(&NetworkError::NotFound { name }));
    }
    Ok(reply::json(StatusCode::OK, &to_wire(&record, true)))
}

/// `POST /networks/create`: 201 with the new id.
pub async fn create<B>(engine: Arc<Engine>, body: B) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let request: wire::NetworkCreateRequest = read_json(body).await?;
    let request = to_engine_create(request)?;
    let record = off_runtime(move || engine.networks().create(request)).await?;
    Ok(reply::json(
        StatusCode::CREATED,
        &wire::NetworkCreateResponse { id: record.id, warning: String::new() },
    ))
}

/// A create body in the engine's terms; what Kiln's networks cannot be
/// (IPv6, swarm and config-only networks, several subnets) is refused here
/// with a message that says so.
fn to_engine_create(request: wire::NetworkCreateRequest) -> Result<CreateNetwork, ApiError> {
    let unsupported = |what: &str| ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        message: format!("{what} are not supported by kiln"),
    };
    if request.enable_ipv6 == Some(true) {
        return Err(unsupported("IPv6 networks"));
    }
    if request.ingress || !matches!(request.scope.as_str(), "" | "local") {
        return Err(unsupported("swarm networks"));
    }
    if request.config_only || request.config_from.as_ref().is_some_and(|c| !c.network.is_empty()) {
        return Err(unsupported("config-only networks"));
    }
    let ipam = request.ipam.unwrap_or_default();
    if !matches!(ipam.driver.as_str(), "" | "default") {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("plugin \"{}\" not found", ipam.driver),
        });
    }
    let mut configs = ipam.config.into_iter();
    let config = configs.next().unwrap_or_default();
    if configs.next().is_some() {
        return Err(unsupported("networks with more than one subnet"));
    }
    if [&config.subnet, &config.gateway, &config.ip_range].iter().any(|a| a.contains(':')) {
        return Err(unsupported("IPv6 networks"));
    }
    if config.auxiliary_addresses.as_ref().is_some_and(|aux| !aux.is_empty()) {
        return Err(unsupported("auxiliary addresses"));
    }
    let given = |text: String| Some(text).filter(|t| !t.is_empty());
    Ok(CreateNetwork {
        name: request.name,
        driver: given(request.driver),
        subnet: given(config.subnet),
        gateway: given(config.gateway),
        ip_range: given(config.ip_range),
        internal: request.internal,
        labels: request.labels.unwrap_or_default(),
        options: request.options.unwrap_or_default(),
        check_duplicate: request.check_duplicate.unwrap_or(true),
    })
}

/// `DELETE /networks/{id}`: 204.
pub async fn remove(engine: Arc<Engine>, name: String) -> Result<Response<Body>, ApiError> {
    off_runtime(move || engine.networks().remove(&name)).await?;
    Ok(reply::empty(StatusCode::NO_CONTENT))
}

/// `POST /networks/{id}/connect`: a running container joins now, a
/// stopped one at its next start.
pub async fn connect<B>(
    engine: Arc<Engine>,
    network: String,
    body: B,
) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let request: wire::NetworkConnectRequest = read_json(body).await?;
    if request.container.is_empty() {
        return Err(ApiError::bad_request("no container given to connect"));
    }
    let settings = request.endpoint_config.unwrap_or_default();
    if !settings.ipam().ipv6_address.is_empty() {
        return Err(ApiError {
            status: StatusCode::NOT_IMPLEMENTED,
            message: "IPv6 addresses are not supported by kiln".to_owned(),
        });
    }
    engine
        .containers()
        .connect_network(&network, &request.container, endpoint_config(&settings))
        .await
        .map_err(|e| container_err(&e))?;
    Ok(reply::empty(StatusCode::OK))
}

/// `POST /networks/{id}/disconnect`.
pub async fn disconnect<B>(
    engine: Arc<Engine>,
    network: String,
    body: B,
) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let request: wire::NetworkDisconnectRequest = read_json(body).await?;
    if request.container.is_empty() {
        return Err(ApiError::bad_request("no container given to disconnect"));
    }
    engine
        .containers()
        .disconnect_network(&network, &request.container, request.force)
        .await
        .map_err(|e| container_err(&e))?;
    Ok(reply::empty(StatusCode::OK))
}

/// `POST /networks/prune?filters=`: user-defined networks no container is
/// on or configured for, with every `label` filter.
pub async fn prune(engine: Arc<Engine>, query: &Query) -> Result<Response<Body>, ApiError> {
    let filters = filters_of(query)?;
    for key in filters.keys() {
        match key.as_str() {
            "label" => {}
            "until" | "label!" => {
                return Err(ApiError {
                    status: StatusCode::NOT_IMPLEMENTED,
                    message: format!(
                        "the '{key}' filter of network prune is not supported by kiln"
                    ),
                })
            }
            _ => return Err(ApiError::bad_request(format!("invalid filter '{key}'"))),
        }
    }
    let labels = filters.get("label").cloned().unwrap_or_default();
    let removed = off_runtime(move || engine.networks().prune(&labels)).await?;
    Ok(reply::json(
        StatusCode::OK,
        &wire::NetworkPruneResponse { networks_deleted: Some(removed).filter(|r| !r.is_empty()) },
    ))
}

/// A network in the API's shape; with `containers`, the containers joined
/// to it now.
fn to_wire(record: &NetworkRecord, containers: bool) -> wire::Network {
    let config = if record.subnet.is_empty() {
        Vec::new()
    } else {
        vec![wire::IpamConfig {
            subnet: record.subnet.clone(),
            ip_range: record.ip_range.clone().unwrap_or_default(),
            gateway: record.gateway.clone(),
            auxiliary_addresses: None,
        }]
    };
    let joined = if containers {
        record
            .endpoints
            .iter()
            .map(|(id, e)| {
                let entry = wire::NetworkContainer {
                    name: e.container_name.clone(),
                    endpoint_id: endpoint_id(&record.id, id),
                    mac_address: e.mac.clone(),
                    ipv4_address: format!("{}/{}", e.ip, e.prefix_len),
                    ipv6_address: String::new(),
                };
                (id.clone(), entry)
            })
            .collect()
    } else {
        BTreeMap::new()
    };
    wire::Network {
        name: record.name.clone(),
        id: record.id.clone(),
        created: rfc3339(record.created),
        scope: record.scope().to_owned(),
        driver: record.driver.clone(),
        enable_ipv6: false,
        ipam: wire::Ipam {
            driver: "default".to_owned(),
            // docker-compat: `null` for the predefined networks, the
            // (empty) options given at create for the others.
            options: (!record.is_predefined()).then(BTreeMap::new),
            config,
        },
        internal: record.internal,
        attachable: false,
        ingress: false,
        config_from: wire::ConfigReference::default(),
        config_only: false,
        containers: joined,
        options: record.options.clone(),
        labels: record.labels.clone(),
        extra: BTreeMap::new(),
    }
}

/// Unix nanoseconds as RFC 3339 with nanoseconds.
fn rfc3339(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0);
    kiln_types::time::UtcTime::from_unix(secs).rfc3339_nanos(frac)
}

/// docker-compat: an endpoint has a 64-hex id. Kiln keeps none, so it is
/// derived from the network's and the container's ids, digit by digit:
/// the same in the network's and the container's inspect, and different
/// for each container of a network.
fn endpoint_id(network_id: &str, container_id: &str) -> String {
    let digit = |id: &str, i: usize| {
        id.as_bytes().get(i).and_then(|b| char::from(*b).to_digit(16)).unwrap_or(0)
    };
    (0..64)
        .filter_map(|i| char::from_digit((digit(network_id, i) + digit(container_id, i)) % 16, 16))
        .collect()
}

/// `NetworkingConfig.EndpointsConfig` of a create request in the engine's
/// terms: network → aliases and `--ip`.
pub(crate) fn endpoint_configs(
    networking: Option<wire::NetworkingConfig>,
) -> BTreeMap<String, EndpointConfig> {
    networking
        .and_then(|n| n.endpoints_config)
        .unwrap_or_default()
        .iter()
        .map(|(network, settings)| (network.clone(), endpoint_config(settings)))
        .collect()
}

fn endpoint_config(settings: &wire::EndpointSettings) -> EndpointConfig {
    EndpointConfig {
        aliases: settings.aliases.clone().unwrap_or_default(),
        ipv4_address: settings.ipam().ipv4_address,
    }
}

/// A container's place on one network, as inspect and `ps` show it.
fn endpoint_settings(network: &ContainerNetwork) -> wire::EndpointSettings {
    let endpoint = network.endpoint.as_ref();
    let ipam_config = Some(&network.config.ipv4_address)
        .filter(|ip| !ip.is_empty())
        .map(|ip| serde_json::json!({ "IPv4Address": ip }));
    wire::EndpointSettings {
        ipam_config,
        links: None,
        aliases: Some(network.config.aliases.clone()).filter(|a| !a.is_empty()),
        mac_address: endpoint.map(|e| e.mac.clone()).unwrap_or_default(),
        network_id: network.network_id.clone(),
        endpoint_id: endpoint
            .map(|e| endpoint_id(&network.network_id, &e.container_id))
            .unwrap_or_default(),
        gateway: network.gateway.clone().unwrap_or_default(),
        ip_address: endpoint.map(|e| e.ip.clone()).unwrap_or_default(),
        ip_prefix_len: endpoint.map_or(0, |e| i64::from(e.prefix_len)),
        ..wire::EndpointSettings::default()
    }
}

/// The container's networks by name, the network mode's first.
fn networks_of(networks: &[ContainerNetwork]) -> BTreeMap<String, wire::EndpointSettings> {
    networks.iter().map(|n| (n.network_name.clone(), endpoint_settings(n))).collect()
}

/// The ports a container exposes, as API keys (`80/tcp`): the image's, the
/// request's, those it publishes and those it asked to publish.
fn exposed_keys<'a>(
    record: &'a ContainerRecord,
    image_exposed: impl IntoIterator<Item = &'a String>,
) -> BTreeSet<String> {
    let request = &record.request;
    image_exposed
        .into_iter()
        .chain(&request.config.exposed_ports)
        .chain(request.host.port_bindings.keys())
        .filter_map(|key| PortKey::from_str(key).ok())
        .chain(record.state.ports.iter().map(|p| p.key()))
        .map(|key| key.to_string())
        .collect()
}

/// `NetworkSettings` of a container's inspect: its networks, its published
/// ports while it runs, and the default bridge's addressing at the top
/// level as Docker has it.
pub(crate) fn container_settings<'a>(
    engine: &Engine,
    record: &'a ContainerRecord,
    image_exposed: impl IntoIterator<Item = &'a String>,
) -> wire::NetworkSettings {
    let networks = engine.networks().for_container(record);
    let running = record.state.status.is_alive();
    // docker-compat: a stopped container's `Ports` is `{}`; a running
    // one's has every exposed port, `null` when it is not published.
    let ports = if running {
        exposed_keys(record, image_exposed)
            .into_iter()
            .map(|key| {
                let bindings: Vec<wire::PortBinding> = record
                    .state
                    .ports
                    .iter()
                    .filter(|p| p.key().to_string() == key)
                    .map(|p| wire::PortBinding {
                        host_ip: p.host_ip.clone(),
                        host_port: p.host_port.to_string(),
                    })
                    .collect();
                (key, Some(bindings).filter(|b| !b.is_empty()))
            })
            .collect()
    } else {
        BTreeMap::new()
    };
    let joined = networks.iter().any(|n| n.endpoint.is_some());
    let default = networks
        .iter()
        .find(|n| n.network_name == DEFAULT_NETWORK && n.endpoint.is_some())
        .map(endpoint_settings)
        .unwrap_or_default();
    wire::NetworkSettings {
        sandbox_id: record.id.clone(),
        sandbox_key: if joined {
            netns_path(engine, &record.id).display().to_string()
        } else {
            String::new()
        },
        ports,
        endpoint_id: default.endpoint_id,
        gateway: default.gateway,
        ip_address: default.ip_address,
        ip_prefix_len: default.ip_prefix_len,
        mac_address: default.mac_address,
        networks: networks_of(&networks),
        ..wire::NetworkSettings::default()
    }
}

/// A running container's network namespace: `<exec-root>/netns/<id>`, as
/// the engine lays it out (crates/engine/src/networks.rs).
fn netns_path(engine: &Engine, id: &str) -> PathBuf {
    engine.config().exec_root.join("netns").join(id)
}

/// A `ps` row's `Ports` and `NetworkSettings.Networks`: while it runs, the
/// published ports and the exposed ones; nothing once it stopped, as
/// `docker ps -a` shows.
pub(crate) fn container_summary<'a>(
    engine: &Engine,
    record: &'a ContainerRecord,
    image_exposed: impl IntoIterator<Item = &'a String>,
) -> (Vec<wire::Port>, BTreeMap<String, wire::EndpointSettings>) {
    let networks = networks_of(&engine.networks().for_container(record));
    if !record.state.status.is_alive() {
        return (Vec::new(), networks);
    }
    let published: BTreeSet<String> =
        record.state.ports.iter().map(|p| p.key().to_string()).collect();
    let mut ports: Vec<wire::Port> = record
        .state
        .ports
        .iter()
        .map(|p| wire::Port {
            ip: p.host_ip.clone(),
            private_port: p.container_port,
            public_port: Some(p.host_port),
            kind: p.proto.as_str().to_owned(),
        })
        .collect();
    for key in exposed_keys(record, image_exposed) {
        if published.contains(&key) {
            continue;
        }
        if let Ok(key) = PortKey::from_str(&key) {
            ports.push(wire::Port {
                private_port: key.port,
                kind: key.proto.as_str().to_owned(),
                ..wire::Port::default()
            });
        }
    }
    (ports, networks)
}

#[cfg(test)]
mod tests {
    use kiln_engine::networks::Endpoint;

    use super::*;

    fn record() -> NetworkRecord {
        let mut endpoints = BTreeMap::new();
        endpoints.insert(
            "c".repeat(64),
            Endpoint {
                container_id: "c".repeat(64),
                container_name: "web".into(),
                ip: "172.18.0.2".into(),
                prefix_len: 16,
                mac: "02:42:ac:12:00:02".into(),
                ..Endpoint::default()
            },
        );
        NetworkRecord {
            id: "1".repeat(64),
            name: "front".into(),
            driver: "bridge".into(),
            bridge: "kb-111111111111".into(),
            subnet: "172.18.0.0/16".into(),
            gateway: "172.18.0.1".into(),
            created: 1_700_000_000_123_456_789,
            endpoints,
            ..NetworkRecord::default()
        }
    }

    #[test]
    fn inspect_has_dockers_shape() {
        let json = serde_json::to_value(to_wire(&record(), true)).expect("json");
        assert_eq!(json["Name"], "front");
        assert_eq!(json["Created"], "2023-11-14T22:13:20.123456789Z");
        assert_eq!(json["Scope"], "local");
        assert_eq!(json["EnableIPv6"], false);
        assert_eq!(
            json["IPAM"],
            serde_json::json!({"Driver": "default", "Options": {}, "Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]})
        );
        assert_eq!(json["ConfigFrom"], serde_json::json!({"Network": ""}));
        let container = &json["Containers"]["c".repeat(64)];
        assert_eq!(container["Name"], "web");
        assert_eq!(container["IPv4Address"], "172.18.0.2/16");
        assert_eq!(container["IPv6Address"], "");
        assert_eq!(container["MacAddress"], "02:42:ac:12:00:02");
        assert_eq!(container["EndpointID"].as_str().map(str::len), Some(64));
        assert_eq!(json["Options"], serde_json::json!({}));
        assert_eq!(json["Labels"], serde_json::json!({}));
        let listed = serde_json::to_value(to_wire(&record(), false)).expect("json");
        assert_eq!(listed["Containers"], serde_json::json!({}));
    }

    #[test]
    fn predefined_networks_without_a_subnet_have_no_ipam_config() {
        let none = NetworkRecord {
            id: "2".repeat(64),
            name: "none".into(),
            driver: "null".into(),
            ..NetworkRecord::default()
        };
        let json = serde_json::to_value(to_wire(&none, true)).expect("json");
        assert_eq!(
            json["IPAM"],
            serde_json::json!({"Driver": "default", "Options": null, "Config": []})
        );
    }

    #[test]
    fn endpoint_ids_are_stable_hex_and_differ_per_container() {
        let a = endpoint_id(&"1".repeat(64), &"a".repeat(64));
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, endpoint_id(&"1".repeat(64), &"a".repeat(64)));
        assert_ne!(a, endpoint_id(&"1".repeat(64), &"b".repeat(64)));
        assert_eq!(endpoint_id("", "").len(), 64);
    }

    #[test]
    fn create_bodies_become_engine_requests() {
        let body: wire::NetworkCreateRequest = serde_json::from_str(
            r#"{"Name":"web","Driver":"bridge","Internal":true,"EnableIPv6":false,
                "IPAM":{"Driver":"default","Config":[{"Subnet":"10.1.0.0/24","Gateway":"10.1.0.1","IPRange":"10.1.0.128/25"}]},
                "Options":{"com.docker.network.bridge.name":"br0"},"Labels":{"a":"b"}}"#,
        )
        .expect("body");
        let request = to_engine_create(body).expect("request");
        assert_eq!(request.name, "web");
        assert_eq!(request.driver.as_deref(), Some("bridge"));
        assert_eq!(request.subnet.as_deref(), Some("10.1.0.0/24"));
        assert_eq!(request.gateway.as_deref(), Some("10.1.0.1"));
        assert_eq!(request.ip_range.as_deref(), Some("10.1.0.128/25"));
        assert!(request.internal);
        assert_eq!(request.options["com.docker.network.bridge.name"], "br0");
        assert_eq!(request.labels["a"], "b");

        let bare: wire::NetworkCreateRequest =
            serde_json::from_str(r#"{"Name":"x","Driver":"","IPAM":null}"#).expect("bare");
        let request = to_engine_create(bare).expect("request");
        assert_eq!((request.driver, request.subnet, request.gateway), (None, None, None));
    }

    #[test]
    fn what_kiln_networks_cannot_be_is_refused_clearly() {
        let refuse = |body: &str| {
            let body: wire::NetworkCreateRequest = serde_json::from_str(body).expect("body");
            to_engine_create(body).expect_err("refused")
        };
        let err = refuse(r#"{"Name":"x","EnableIPv6":true}"#);
        assert_eq!(
            (err.status.as_u16(), err.message.as_str()),
            (501, "IPv6 networks are not supported by kiln")
        );
        assert_eq!(refuse(r#"{"Name":"x","Ingress":true}"#).status, 501);
        assert_eq!(refuse(r#"{"Name":"x","Scope":"swarm"}"#).status, 501);
        assert_eq!(refuse(r#"{"Name":"x","ConfigOnly":true}"#).status, 501);
        let err = refuse(r#"{"Name":"x","IPAM":{"Driver":"weird"}}"#);
        assert_eq!(
            (err.status.as_u16(), err.message.as_str()),
            (404, "plugin \"weird\" not found")
        );
        let two =
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"10.1.0.0/24"},{"Subnet":"10.2.0.0/24"}]}}"#;
        assert_eq!(refuse(two).status, 501);
        assert_eq!(
            refuse(r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"fd00::/64"}]}}"#).status,
            501
        );
    }

    #[test]
    fn list_filters_are_checked_like_dockerds() {
        let filters = |json: &str| parse_filters(json).expect("filters");
        assert!(check_list_filters(&filters(r#"{"type":["custom"],"dangling":["true"]}"#)).is_ok());
        let err = check_list_filters(&filters(r#"{"status":["x"]}"#)).expect_err("key");
        assert_eq!((err.status.as_u16(), err.message.as_str()), (400, "invalid filter 'status'"));
        let err = check_list_filters(&filters(r#"{"type":["other"]}"#)).expect_err("type");
        assert_eq!(err.message, "invalid filter 'type=other'");
        assert!(check_list_filters(&filters(r#"{"dangling":["maybe"]}"#)).is_err());
    }

    #[test]
    fn in_use_and_connected_twice_are_forbidden_as_in_docker() {
        let busy = NetworkError::ActiveEndpoints { name: "web".into(), id: "ab".into() };
        let err = network_err(&busy);
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert_eq!(
            err.message,
            "error while removing network: network web id ab has active endpoints"
        );
        let twice = ContainerError::Network(NetworkError::AlreadyConnected {
            container: "c".into(),
            network: "web".into(),
        });
        assert_eq!(container_err(&twice).status, StatusCode::FORBIDDEN);
        let missing = network_err(&NetworkError::NotFound { name: "nope".into() });
        assert_eq!(
            (missing.status.as_u16(), missing.message.as_str()),
            (404, "network nope not found")
        );
    }

    #[test]
    fn endpoint_settings_show_the_address_while_joined() {
        let record = record();
        let endpoint = record.endpoints.values().next().cloned();
        let joined = ContainerNetwork {
            network_id: record.id.clone(),
            network_name: record.name.clone(),
            config: EndpointConfig {
                aliases: vec!["db".into()],
                ipv4_address: "172.18.0.2".into(),
            },
            endpoint,
            gateway: Some("172.18.0.1".into()),
        };
        let json = serde_json::to_value(endpoint_settings(&joined)).expect("json");
        assert_eq!(json["IPAddress"], "172.18.0.2");
        assert_eq!(json["IPPrefixLen"], 16);
        assert_eq!(json["Gateway"], "172.18.0.1");
        assert_eq!(json["MacAddress"], "02:42:ac:12:00:02");
        assert_eq!(json["Aliases"], serde_json::json!(["db"]));
        assert_eq!(json["IPAMConfig"], serde_json::json!({"IPv4Address": "172.18.0.2"}));
        assert_eq!(json["NetworkID"], "1".repeat(64));
        assert_eq!(json["Links"], serde_json::Value::Null);
        assert_eq!(json["IPv6Gateway"], "");
        assert_eq!(json["GlobalIPv6PrefixLen"], 0);
        let stopped = ContainerNetwork { endpoint: None, gateway: None, ..joined };
        let json = serde_json::to_value(endpoint_settings(&stopped)).expect("json");
        assert_eq!((json["IPAddress"].as_str(), json["EndpointID"].as_str()), (Some(""), Some("")));
        assert_eq!(json["NetworkID"], "1".repeat(64));
    }
}
