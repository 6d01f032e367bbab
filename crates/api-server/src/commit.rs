//! `POST /commit`: a container's changes as a new image.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use hyper::body::Body as HttpBody;
use kiln_api_types as wire;
use kiln_engine::containers::CommitRequest;
use kiln_engine::Engine;

use crate::container::read_json;
use crate::error::ApiError;
use crate::query::Query;
use crate::reply::{self, Body};
use crate::stream::blocking;

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`,
/// with an optional container config as the body; 201 and the image's id.
pub async fn commit<B>(
    engine: Arc<Engine>,
    query: &Query,
    body: B,
) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    // docker-compat: the docker CLI sends `null` without a config.
    let config: Option<wire::ContainerConfig> = read_json(body).await?;
    let container = query.get("container").unwrap_or_default().to_owned();
    let reference = match (query.get("repo").unwrap_or_default(), query.get("tag")) {
        ("", _) => None,
        (repo, None | Some("")) => Some(repo.to_owned()),
        (repo, Some(tag)) => Some(format!("{repo}:{tag}")),
    };
    let non_empty = |key: &str| query.get(key).filter(|v| !v.is_empty()).map(str::to_owned);
    let request = CommitRequest {
        reference,
        comment: non_empty("comment"),
        author: non_empty("author"),
        // docker-compat: pause unless told otherwise (API 1.13 and later).
        pause: query.get("pause").is_none() || query.flag("pause"),
        changes: query.all("changes"),
        config: config.map(to_engine_config),
    };
    let id = blocking(move || engine.containers().commit(&container, &request)).await?;
    Ok(reply::json(StatusCode::CREATED, &wire::IdResponse { id: id.to_string() }))
}

/// The body's config in the image config's terms; empty strings are unset.
fn to_engine_config(c: wire::ContainerConfig) -> kiln_engine::ContainerConfig {
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    kiln_engine::ContainerConfig {
        user: non_empty(c.user),
        exposed_ports: c
            .exposed_ports
            .unwrap_or_default()
            .into_keys()
            .map(|port| (port, Default::default()))
            .collect(),
        env: c.env.unwrap_or_default(),
        entrypoint: c.entrypoint,
        cmd: c.cmd,
        volumes: c
            .volumes
            .unwrap_or_default()
            .into_keys()
            .map(|path| (path, Default::default()))
            .collect(),
        working_dir: non_empty(c.working_dir),
        labels: c.labels.unwrap_or_default(),
        stop_signal: c.stop_signal.and_then(non_empty),
        args_escaped: c.args_escaped,
        on_build: c.on_build.unwrap_or_default(),
        shell: c.shell.unwrap_or_default(),
        healthcheck: c.healthcheck.map(crate::container::healthcheck_to_engine),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_config_changes_nothing() {
        let config = to_engine_config(wire::ContainerConfig::default());
        assert_eq!(config, kiln_engine::ContainerConfig::default());
        let body: wire::ContainerConfig = serde_json::from_str(
            r#"{"Cmd":["sh"],"Env":null,"User":"","ExposedPorts":{"80/tcp":{}},"Labels":{"a":"b"}}"#,
        )
        .expect("config");
        let config = to_engine_config(body);
        assert_eq!(config.cmd.as_deref(), Some(&["sh".to_owned()][..]));
        assert_eq!(config.user, None);
        assert!(config.exposed_ports.contains_key("80/tcp"));
        assert_eq!(config.labels.get("a").map(String::as_str), Some("b"));
    }
}
