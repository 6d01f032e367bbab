//! `/volumes/...`: create, list, inspect, remove and prune named volumes.

use std::collections::BTreeMap;

use http::Method;
use kiln_api_types::{Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse};

use crate::error::ClientError;
use crate::query::{escape_segment, filtered, push_flag, with_query};
use crate::Client;

impl Client {
    /// `GET /volumes?filters=`: `name`, `label`, `driver`, `dangling`.
    pub async fn volumes(
        &self,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<VolumeListResponse, ClientError> {
        self.get_json(&filtered("/volumes", filters)).await
    }

    /// `POST /volumes/create`; an empty name asks the daemon for a random one.
    pub async fn volume_create(&self, body: &VolumeCreateRequest) -> Result<Volume, ClientError> {
        let path = "/volumes/create";
        let answer = self.call_json(Method::POST, path, body).await?;
        self.decode(path, &answer)
    }

    /// `GET /volumes/{name}`.
    pub async fn volume_inspect(&self, name: &str) -> Result<Volume, ClientError> {
        self.get_json(&volume_path(name)).await
    }

    /// `GET /volumes/{name}`, as the daemon sent it (every field, even
    /// those this client does not model, such as dockerd's `ClusterVolume`).
    pub async fn volume_inspect_raw(&self, name: &str) -> Result<serde_json::Value, ClientError> {
        self.get_json(&volume_path(name)).await
    }

    /// `DELETE /volumes/{name}?force=`.
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<(), ClientError> {
        let mut query = Vec::new();
        push_flag(&mut query, "force", force);
        self.call(Method::DELETE, &with_query(&volume_path(name), &query)).await.map(|_| ())
    }

    /// `POST /volumes/prune?filters=`: unused anonymous volumes, or every
    /// unused one with the filter `all=true` (API 1.42 and later).
    pub async fn volumes_prune(
        &self,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<VolumePruneResponse, ClientError> {
        let path = filtered("/volumes/prune", filters);
        let body = self.call(Method::POST, &path).await?;
        self.decode(&path, &body)
    }
}

/// `/volumes/{name}`.
fn volume_path(name: &str) -> String {
    format!("/volumes/{}", escape_segment(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escape_names_and_carry_filters_only_when_set() {
        assert_eq!(volume_path("a b/c"), "/volumes/a%20b%2Fc");
        assert_eq!(filtered("/volumes", &BTreeMap::new()), "/volumes");
        let mut filters = BTreeMap::new();
        filters.insert("dangling".to_owned(), vec!["true".to_owned()]);
        assert_eq!(
            filtered("/volumes", &filters),
            "/volumes?filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D"
        );
    }
}

#[cfg(test)]
mod daemon_tests {
    use http::StatusCode;
    use tokio::io::AsyncReadExt as _;

    use crate::fake_daemon::{json_answer as answer, send, FakeDaemon};

    use super::*;

    #[tokio::test]
    async fn create_posts_the_body_and_decodes_the_volume() {
        let mut daemon = FakeDaemon::new();
        let (body_tx, body_rx) = tokio::sync::oneshot::channel::<Vec<u8>>();
        let server = daemon.serve(|mut stream| async move {
            // The fake daemon read the head; the JSON body follows it.
            let mut body = Vec::new();
            while serde_json::from_slice::<serde_json::Value>(&body).is_err() {
                body.push(stream.read_u8().await.expect("body"));
            }
            body_tx.send(body).expect("test waiting");
            let volume = r#"{"Name":"data","Driver":"local","Mountpoint":"/var/lib/kiln/volumes/data/_data","Labels":{"a":"1"},"Scope":"local","Options":null}"#;
            send(&mut stream, &answer("201 Created", volume)).await;
        });
        let mut labels = BTreeMap::new();
        labels.insert("a".to_owned(), "1".to_owned());
        let request = VolumeCreateRequest {
            name: "data".to_owned(),
            driver: "local".to_owned(),
            driver_opts: Some(BTreeMap::new()),
            labels: Some(labels),
        };
        let volume = daemon.client.volume_create(&request).await.expect("create");
        assert_eq!(volume.name, "data");
        assert_eq!(volume.mountpoint, "/var/lib/kiln/volumes/data/_data");
        let head = server.await.expect("server");
        assert!(head.starts_with("POST /v1.47/volumes/create HTTP/1.1\r\n"), "{head}");
        let sent: VolumeCreateRequest =
            serde_json::from_slice(&body_rx.await.expect("body")).expect("json body");
        assert_eq!(sent, request);
        assert!(head.to_ascii_lowercase().contains("content-type: application/json\r\n"), "{head}");
    }

    #[tokio::test]
    async fn list_sends_filters_and_reads_dockers_envelope() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            let body =
                r#"{"Volumes":[{"Name":"a","Driver":"local","Scope":"local"}],"Warnings":null}"#;
            send(&mut stream, &answer("200 OK", body)).await;
        });
        let mut filters = BTreeMap::new();
        filters.insert("name".to_owned(), vec!["a".to_owned()]);
        let list = daemon.client.volumes(&filters).await.expect("list");
        let names: Vec<String> =
            list.volumes.unwrap_or_default().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["a"]);
        assert_eq!(list.warnings, None);
        let head = server.await.expect("server");
        assert!(
            head.starts_with(
                "GET /v1.47/volumes?filters=%7B%22name%22%3A%5B%22a%22%5D%7D HTTP/1.1\r\n"
            ),
            "{head}"
        );
    }

    #[tokio::test]
    async fn inspect_raw_keeps_fields_the_model_does_not_know() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            let body = r#"{"Name":"a","Driver":"local","ClusterVolume":{"ID":"x"}}"#;
            send(&mut stream, &answer("200 OK", body)).await;
        });
        let raw = daemon.client.volume_inspect_raw("a").await.expect("inspect");
        assert_eq!(raw["ClusterVolume"]["ID"], "x");
        let head = server.await.expect("server");
        assert!(head.starts_with("GET /v1.47/volumes/a HTTP/1.1\r\n"), "{head}");
    }

    #[tokio::test]
    async fn an_unknown_volume_is_not_found_with_the_daemons_message() {
        let mut daemon = FakeDaemon::new();
        let _server = daemon.serve(|mut stream| async move {
            let body = r#"{"message":"get nope: no such volume"}"#;
            send(&mut stream, &answer("404 Not Found", body)).await;
        });
        let err = daemon.client.volume_inspect("nope").await.expect_err("404");
        assert!(err.is_not_found());
        assert_eq!(err.to_string(), "get nope: no such volume");
    }

    #[tokio::test]
    async fn remove_sends_force_and_reports_a_volume_in_use() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            send(&mut stream, b"HTTP/1.1 204 No Content\r\n\r\n").await;
        });
        daemon.client.volume_remove("a", true).await.expect("remove");
        let head = server.await.expect("server");
        assert!(head.starts_with("DELETE /v1.47/volumes/a?force=1 HTTP/1.1\r\n"), "{head}");

        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            let body = r#"{"message":"remove a: volume is in use - [abc]"}"#;
            send(&mut stream, &answer("409 Conflict", body)).await;
        });
        let err = daemon.client.volume_remove("a", false).await.expect_err("409");
        assert!(
            matches!(&err, ClientError::Api { status, .. } if *status == StatusCode::CONFLICT),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "remove a: volume is in use - [abc]");
        let head = server.await.expect("server");
        assert!(head.starts_with("DELETE /v1.47/volumes/a HTTP/1.1\r\n"), "{head}");
    }

    #[tokio::test]
    async fn prune_sends_filters_and_reads_the_report() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            let body = r#"{"VolumesDeleted":["x","y"],"SpaceReclaimed":1200}"#;
            send(&mut stream, &answer("200 OK", body)).await;
        });
        let mut filters = BTreeMap::new();
        filters.insert("all".to_owned(), vec!["true".to_owned()]);
        let report = daemon.client.volumes_prune(&filters).await.expect("prune");
        assert_eq!(report.volumes_deleted, Some(vec!["x".to_owned(), "y".to_owned()]));
        assert_eq!(report.space_reclaimed, 1200);
        let head = server.await.expect("server");
        assert!(
            head.starts_with(
                "POST /v1.47/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D HTTP/1.1\r\n"
            ),
            "{head}"
        );
    }

    #[tokio::test]
    async fn an_empty_prune_report_has_no_names() {
        let mut daemon = FakeDaemon::new();
        let _server = daemon.serve(|mut stream| async move {
            send(&mut stream, &answer("200 OK", r#"{"VolumesDeleted":null,"SpaceReclaimed":0}"#))
                .await;
        });
        let report = daemon.client.volumes_prune(&BTreeMap::new()).await.expect("prune");
        assert_eq!(report.volumes_deleted, None);
    }
}
