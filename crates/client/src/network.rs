//! `/networks/...`: create, list, inspect, remove and prune networks, and
//! connect containers to them or disconnect them.

use std::collections::BTreeMap;

use http::Method;
use kiln_api_types::{
    Network, NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse,
    NetworkDisconnectRequest, NetworkPruneResponse,
};

use crate::error::ClientError;
use crate::query::{escape_segment, filtered};
use crate::Client;

impl Client {
    /// `GET /networks?filters=`: `name`, `id`, `label`, `driver`, `scope`,
    /// `type`, `dangling`.
    pub async fn networks(
        &self,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<Vec<Network>, ClientError> {
        let networks: Option<Vec<Network>> = self.get_json(&filtered("/networks", filters)).await?;
        Ok(networks.unwrap_or_default())
    }

    /// `POST /networks/create`.
    pub async fn network_create(
        &self,
        body: &NetworkCreateRequest,
    ) -> Result<NetworkCreateResponse, ClientError> {
        let path = "/networks/create";
        let answer = self.call_json(Method::POST, path, body).await?;
        self.decode(path, &answer)
    }

    /// `GET /networks/{name}`: by name, id or unique id prefix.
    pub async fn network_inspect(&self, name: &str) -> Result<Network, ClientError> {
        self.get_json(&network_path(name, "")).await
    }

    /// `DELETE /networks/{name}`.
    pub async fn network_remove(&self, name: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &network_path(name, "")).await.map(|_| ())
    }

    /// `POST /networks/{name}/connect`.
    pub async fn network_connect(
        &self,
        network: &str,
        body: &NetworkConnectRequest,
    ) -> Result<(), ClientError> {
        self.call_json(Method::POST, &network_path(network, "/connect"), body).await.map(|_| ())
    }

    /// `POST /networks/{name}/disconnect`.
    pub async fn network_disconnect(
        &self,
        network: &str,
        body: &NetworkDisconnectRequest,
    ) -> Result<(), ClientError> {
        self.call_json(Method::POST, &network_path(network, "/disconnect"), body).await.map(|_| ())
    }

    /// `POST /networks/prune?filters=`: user-defined networks no container
    /// uses (`label`, `until` filters).
    pub async fn networks_prune(
        &self,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<NetworkPruneResponse, ClientError> {
        let path = filtered("/networks/prune", filters);
        let body = self.call(Method::POST, &path).await?;
        self.decode(&path, &body)
    }
}

/// `/networks/{name}` and a suffix (`/connect`).
fn network_path(name: &str, suffix: &str) -> String {
    format!("/networks/{}{suffix}", escape_segment(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escape_names_and_carry_filters_only_when_set() {
        assert_eq!(network_path("a b", "/connect"), "/networks/a%20b/connect");
        assert_eq!(filtered("/networks", &BTreeMap::new()), "/networks");
        let mut filters = BTreeMap::new();
        filters.insert("driver".to_owned(), vec!["bridge".to_owned()]);
        assert_eq!(
            filtered("/networks", &filters),
            "/networks?filters=%7B%22driver%22%3A%5B%22bridge%22%5D%7D"
        );
    }
}

#[cfg(test)]
mod daemon_tests {
    use http::StatusCode;
    use kiln_api_types::{EndpointSettings, Ipam, IpamConfig};
    use tokio::io::AsyncReadExt as _;

    use crate::fake_daemon::{json_answer as answer, send, FakeDaemon};

    use super::*;

    /// Serve one request: hand its JSON body out and answer `reply`.
    fn serve_json(
        daemon: &mut FakeDaemon,
        reply: Vec<u8>,
    ) -> (tokio::task::JoinHandle<String>, tokio::sync::oneshot::Receiver<Vec<u8>>) {
        let (body_tx, body_rx) = tokio::sync::oneshot::channel::<Vec<u8>>();
        let server = daemon.serve(|mut stream| async move {
            let mut body = Vec::new();
            while serde_json::from_slice::<serde_json::Value>(&body).is_err() {
                body.push(stream.read_u8().await.expect("body"));
            }
            body_tx.send(body).expect("test waiting");
            send(&mut stream, &reply).await;
        });
        (server, body_rx)
    }

    #[tokio::test]
    async fn create_posts_the_ipam_config_and_reads_the_id() {
        let mut daemon = FakeDaemon::new();
        let id = "ab".repeat(32);
        let (server, body) = serve_json(
            &mut daemon,
            answer("201 Created", &format!(r#"{{"Id":"{id}","Warning":""}}"#)),
        );
        let request = NetworkCreateRequest {
            name: "web".to_owned(),
            driver: "bridge".to_owned(),
            ipam: Some(Ipam {
                driver: "default".to_owned(),
                options: None,
                config: vec![IpamConfig {
                    subnet: "10.1.0.0/24".to_owned(),
                    gateway: "10.1.0.1".to_owned(),
                    ..IpamConfig::default()
                }],
            }),
            ..NetworkCreateRequest::default()
        };
        let created = daemon.client.network_create(&request).await.expect("create");
        assert_eq!(created.id, id);
        let head = server.await.expect("server");
        assert!(head.starts_with("POST /v1.47/networks/create HTTP/1.1\r\n"), "{head}");
        let sent: serde_json::Value =
            serde_json::from_slice(&body.await.expect("body")).expect("json body");
        assert_eq!(sent["Name"], "web");
        assert_eq!(sent["IPAM"]["Config"][0]["Subnet"], "10.1.0.0/24");
        assert_eq!(sent["IPAM"]["Config"][0]["Gateway"], "10.1.0.1");
        assert!(sent["IPAM"]["Config"][0].get("IPRange").is_none(), "{sent}");
    }

    #[tokio::test]
    async fn a_name_conflict_is_the_daemons_409() {
        let mut daemon = FakeDaemon::new();
        let body = r#"{"message":"network with name web already exists"}"#;
        let (_server, _body) = serve_json(&mut daemon, answer("409 Conflict", body));
        let request = NetworkCreateRequest { name: "web".to_owned(), ..Default::default() };
        let err = daemon.client.network_create(&request).await.expect_err("409");
        assert!(
            matches!(&err, ClientError::Api { status, .. } if *status == StatusCode::CONFLICT),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "network with name web already exists");
    }

    #[tokio::test]
    async fn list_sends_filters_and_reads_networks() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            let body = r#"[{"Name":"bridge","Id":"1","Driver":"bridge","Scope":"local","Containers":{},"Labels":null}]"#;
            send(&mut stream, &answer("200 OK", body)).await;
        });
        let mut filters = BTreeMap::new();
        filters.insert("type".to_owned(), vec!["builtin".to_owned()]);
        let list = daemon.client.networks(&filters).await.expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, "bridge");
        let head = server.await.expect("server");
        assert!(
            head.starts_with(
                "GET /v1.47/networks?filters=%7B%22type%22%3A%5B%22builtin%22%5D%7D HTTP/1.1\r\n"
            ),
            "{head}"
        );
    }

    #[tokio::test]
    async fn an_unknown_network_is_not_found_with_the_daemons_message() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            let body = r#"{"message":"network nope not found"}"#;
            send(&mut stream, &answer("404 Not Found", body)).await;
        });
        let err = daemon.client.network_inspect("nope").await.expect_err("404");
        assert!(err.is_not_found());
        assert_eq!(err.to_string(), "network nope not found");
        let head = server.await.expect("server");
        assert!(head.starts_with("GET /v1.47/networks/nope HTTP/1.1\r\n"), "{head}");
    }

    #[tokio::test]
    async fn remove_deletes_and_reports_active_endpoints() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            send(&mut stream, b"HTTP/1.1 204 No Content\r\n\r\n").await;
        });
        daemon.client.network_remove("web").await.expect("remove");
        let head = server.await.expect("server");
        assert!(head.starts_with("DELETE /v1.47/networks/web HTTP/1.1\r\n"), "{head}");

        let mut daemon = FakeDaemon::new();
        let _server = daemon.serve(|mut stream| async move {
            let body = r#"{"message":"error while removing network: network web id ab has active endpoints"}"#;
            send(&mut stream, &answer("403 Forbidden", body)).await;
        });
        let err = daemon.client.network_remove("web").await.expect_err("403");
        assert!(
            matches!(&err, ClientError::Api { status, .. } if *status == StatusCode::FORBIDDEN),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn connect_sends_aliases_and_the_address() {
        let mut daemon = FakeDaemon::new();
        let (server, body) =
            serve_json(&mut daemon, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec());
        let request = NetworkConnectRequest {
            container: "db".to_owned(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(vec!["database".to_owned()]),
                ipam_config: Some(serde_json::json!({"IPv4Address": "10.1.0.9"})),
                ..EndpointSettings::default()
            }),
        };
        daemon.client.network_connect("web", &request).await.expect("connect");
        let head = server.await.expect("server");
        assert!(head.starts_with("POST /v1.47/networks/web/connect HTTP/1.1\r\n"), "{head}");
        let sent: NetworkConnectRequest =
            serde_json::from_slice(&body.await.expect("body")).expect("json body");
        assert_eq!(sent.container, "db");
        assert_eq!(sent.endpoint_config.expect("endpoint").ipam().ipv4_address, "10.1.0.9");
    }

    #[tokio::test]
    async fn disconnect_sends_force() {
        let mut daemon = FakeDaemon::new();
        let (server, body) =
            serve_json(&mut daemon, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec());
        let request = NetworkDisconnectRequest { container: "db".to_owned(), force: true };
        daemon.client.network_disconnect("web", &request).await.expect("disconnect");
        let head = server.await.expect("server");
        assert!(head.starts_with("POST /v1.47/networks/web/disconnect HTTP/1.1\r\n"), "{head}");
        let sent: NetworkDisconnectRequest =
            serde_json::from_slice(&body.await.expect("body")).expect("json body");
        assert_eq!(sent, request);
    }

    #[tokio::test]
    async fn prune_reads_the_deleted_names() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            send(&mut stream, &answer("200 OK", r#"{"NetworksDeleted":["a","b"]}"#)).await;
        });
        let mut filters = BTreeMap::new();
        filters.insert("label".to_owned(), vec!["x".to_owned()]);
        let report = daemon.client.networks_prune(&filters).await.expect("prune");
        assert_eq!(report.networks_deleted, Some(vec!["a".to_owned(), "b".to_owned()]));
        let head = server.await.expect("server");
        assert!(
            head.starts_with(
                "POST /v1.47/networks/prune?filters=%7B%22label%22%3A%5B%22x%22%5D%7D HTTP/1.1\r\n"
            ),
            "{head}"
        );
    }
}
