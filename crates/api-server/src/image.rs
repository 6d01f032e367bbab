//! `/images/...`: the engine's image service in the API's shapes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::BodyExt as _;
use kiln_api_types as wire;
use kiln_engine::pull::{PullOutcome, PullProgress, PullRequest};
use kiln_engine::{
    ContainerConfig, Deleted, Engine, HistoryEntry, ImageDetails, ImageFilter, ImageSummary,
    ImportRequest, LoadedImage,
};

use crate::error::ApiError;
use crate::query::Query;
use crate::reply::{self, Body};
use crate::stream::{blocking, stream_blocking, BodyReader};

const JSON: &str = "application/json";
const TAR: &str = "application/x-tar";

/// `GET /images/json?all=&filters=&digests=`.
pub async fn list(engine: Arc<Engine>, query: &Query) -> Result<Response<Body>, ApiError> {
    let filter = parse_filters(query.get("filters"))?;
    let images = blocking(move || engine.images().list(&filter)).await?;
    let summaries: Vec<wire::ImageSummary> = images.into_iter().map(to_wire_summary).collect();
    Ok(reply::json(StatusCode::OK, &summaries))
}

/// `GET /images/{name}/json`.
pub async fn inspect(engine: Arc<Engine>, name: String) -> Result<Response<Body>, ApiError> {
    let details = blocking(move || engine.images().inspect(&name)).await?;
    Ok(reply::json(StatusCode::OK, &to_wire_inspect(details)))
}

/// `GET /images/{name}/history`.
pub async fn history(engine: Arc<Engine>, name: String) -> Result<Response<Body>, ApiError> {
    let entries = blocking(move || engine.images().history(&name)).await?;
    let items: Vec<wire::HistoryItem> = entries.into_iter().map(to_wire_history).collect();
    Ok(reply::json(StatusCode::OK, &items))
}

/// `POST /images/{name}/tag?repo=&tag=`: 201 and no body.
pub async fn tag(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let repo = query.get("repo").unwrap_or_default().to_owned();
    let tag = query.get("tag").unwrap_or_default().to_owned();
    if repo.is_empty() {
        return Err(ApiError::bad_request("repository name (repo) is required"));
    }
    blocking(move || engine.images().tag(&name, &repo, &tag)).await?;
    Ok(reply::empty(StatusCode::CREATED))
}

/// `DELETE /images/{name}?force=`.
pub async fn remove(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let force = query.flag("force");
    let done = blocking(move || engine.images().remove(&name, force, engine.containers().as_ref()))
        .await?;
    let items: Vec<wire::DeleteItem> = done.into_iter().map(to_wire_deleted).collect();
    Ok(reply::json(StatusCode::OK, &items))
}

fn to_wire_deleted(done: Deleted) -> wire::DeleteItem {
    match done {
        Deleted::Untagged(r) => wire::DeleteItem { untagged: Some(r), deleted: None },
        Deleted::Deleted(id) => wire::DeleteItem { untagged: None, deleted: Some(id.to_string()) },
    }
}

/// `POST /images/prune?filters=`: `dangling=false` prunes every unused
/// image, the default only untagged ones.
pub async fn prune(engine: Arc<Engine>, query: &Query) -> Result<Response<Body>, ApiError> {
    let filter = parse_filters(query.get("filters"))?;
    if !filter.references.is_empty() || !filter.labels.is_empty() {
        return Err(ApiError::bad_request("prune takes only the dangling filter"));
    }
    let all = filter.dangling == Some(false);
    let (done, reclaimed) =
        blocking(move || engine.images().prune(all, engine.containers().as_ref())).await?;
    let deleted: Vec<wire::DeleteItem> = done.into_iter().map(to_wire_deleted).collect();
    let answer = wire::ImagePruneResponse {
        images_deleted: (!deleted.is_empty()).then_some(deleted),
        space_reclaimed: reclaimed,
    };
    Ok(reply::json(StatusCode::OK, &answer))
}

/// `POST /images/load`: the body is the archive. The answer is a JSON-message
/// stream with one line per loaded tag (or id), as dockerd sends it; the
/// load is all or nothing, so an error is an ordinary error answer.
pub async fn load(engine: Arc<Engine>, body: BodyReader) -> Result<Response<Body>, ApiError> {
    let loaded = blocking(move || {
        let mut body = body;
        let loaded = engine.images().load(&mut body);
        drain(&mut body);
        loaded
    })
    .await?;
    Ok(reply::with_type(StatusCode::OK, JSON, json_lines(&load_messages(&loaded))))
}

/// Read what the engine left of a request body, so that the client, still
/// sending, sees the answer rather than a connection closed under it.
fn drain(body: &mut BodyReader) {
    let _ = std::io::copy(body, &mut std::io::sink());
}

fn load_messages(loaded: &[LoadedImage]) -> Vec<wire::JsonMessage> {
    let stream = |text: String| wire::JsonMessage { stream: Some(text), ..Default::default() };
    let mut out = Vec::new();
    for image in loaded {
        if image.tags.is_empty() {
            out.push(stream(format!("Loaded image ID: {}\n", image.id)));
        }
        for tag in &image.tags {
            out.push(stream(format!("Loaded image: {tag}\n")));
        }
    }
    out
}

fn json_lines(messages: &[wire::JsonMessage]) -> Bytes {
    let mut out = Vec::new();
    for message in messages {
        if serde_json::to_writer(&mut out, message).is_ok() {
            out.push(b'\n');
        }
    }
    out.into()
}

/// `GET /images/get?names=a&names=b` and `GET /images/{name}/get`: a
/// `docker save` archive, streamed.
pub async fn save(engine: Arc<Engine>, names: Vec<String>) -> Result<Response<Body>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given (names=)"));
    }
    stream_blocking(TAR, move |out| engine.images().save(&names, out)).await
}

/// `POST /images/create?fromSrc=-&repo=&tag=&message=&changes=`: import the
/// body as a rootfs; with `fromImage=` instead, pull from a registry.
pub async fn create(
    engine: Arc<Engine>,
    query: &Query,
    headers: &http::HeaderMap,
    body: BodyReader,
) -> Result<Response<Body>, ApiError> {
    match (query.get("fromSrc"), query.get("fromImage")) {
        (Some("-"), _) => {}
        (Some(src), _) => {
            return Err(ApiError {
                status: StatusCode::NOT_IMPLEMENTED,
                message: format!("importing from a URL ({src}) is not supported; send the tar as the body with fromSrc=-"),
            })
        }
        (None, Some(image)) => {
            let credentials = crate::auth::registry_auth(headers)?;
            return pull(engine, pull_reference(image, query), query, credentials).await;
        }
        (None, None) => return Err(ApiError::bad_request("fromSrc or fromImage is required")),
    }
    let repo = query.get("repo").unwrap_or_default();
    let tag = query.get("tag").unwrap_or_default();
    let reference = match (repo, tag) {
        ("", _) => None,
        (repo, "") => Some(repo.to_owned()),
        (repo, tag) => Some(format!("{repo}:{tag}")),
    };
    let request = ImportRequest {
        reference,
        changes: query.all("changes"),
        message: query.get("message").filter(|m| !m.is_empty()).map(str::to_owned),
    };
    let id = blocking(move || {
        let mut body = body;
        let id = engine.images().import(&mut body, &request);
        drain(&mut body);
        id
    })
    .await?;
    let message = wire::JsonMessage { status: Some(id.to_string()), ..Default::default() };
    Ok(reply::with_type(StatusCode::OK, JSON, json_lines(&[message])))
}

/// `fromImage` and `tag` as one reference: `tag` is a tag, or a digest
/// (`sha256:…`) as docker sends it for `name@sha256:…`.
fn pull_reference(image: &str, query: &Query) -> String {
    match query.get("tag").unwrap_or_default() {
        "" => image.to_owned(),
        tag if tag.contains(':') => format!("{image}@{tag}"),
        tag => format!("{image}:{tag}"),
    }
}

/// `POST /images/create?fromImage=NAME&tag=TAG&platform=`: the pull's
/// progress as Docker's JSON-message stream. An error before the manifest
/// is found (unknown tag, registry down) is an ordinary error answer (404
/// for `manifest unknown`); one after the stream started is its last line.
/// The credentials of `X-Registry-Auth` go to the registry (see
/// [`crate::auth`]).
async fn pull(
    engine: Arc<Engine>,
    reference: String,
    query: &Query,
    credentials: Option<kiln_engine::pull::Credentials>,
) -> Result<Response<Body>, ApiError> {
    let request = PullRequest {
        reference,
        platform: query.get("platform").filter(|p| !p.is_empty()).map(str::to_owned),
        credentials,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move { engine.images().pull(&request, tx).await });
    let Some(first) = rx.recv().await else {
        return match task.await {
            Ok(Err(err)) => Err(ApiError::from_error(&err)),
            Ok(Ok(outcome)) => Ok(reply::json(StatusCode::OK, &final_status(&outcome))),
            Err(join) => Err(ApiError::internal(format!("the pull task failed: {join}"))),
        };
    };
    let (body_tx, body_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut next = Some(first);
        while let Some(step) = next {
            if body_tx.send(json_line(&progress_json(&step))).await.is_err() {
                break;
            }
            next = rx.recv().await;
        }
        let last = match task.await {
            Ok(Ok(outcome)) => final_status(&outcome),
            Ok(Err(err)) => error_json(&ApiError::from_error(&err).message),
            Err(join) => error_json(&format!("the pull task failed: {join}")),
        };
        let _ = body_tx.send(json_line(&last)).await;
    });
    let mut response = Response::new(LineBody { rx: body_rx }.boxed());
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(JSON));
    Ok(response)
}

/// The lines of a pull's answer as they are produced.
#[derive(Debug)]
pub(crate) struct LineBody {
    pub(crate) rx: tokio::sync::mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for LineBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|line| line.map(|l| Ok(hyper::body::Frame::data(l))))
    }
}

pub(crate) fn json_line(value: &serde_json::Value) -> Bytes {
    let mut out = serde_json::to_vec(value).unwrap_or_default();
    out.push(b'\n');
    out.into()
}

pub(crate) fn error_json(message: &str) -> serde_json::Value {
    serde_json::json!({ "errorDetail": { "message": message }, "error": message })
}

/// docker-compat: the last line names the image in Docker's short form.
fn final_status(outcome: &PullOutcome) -> serde_json::Value {
    let name = outcome.reference.familiar();
    let status = if outcome.up_to_date {
        format!("Status: Image is up to date for {name}")
    } else {
        format!("Status: Downloaded newer image for {name}")
    };
    serde_json::json!({ "status": status })
}

/// One progress step as dockerd words it.
fn progress_json(step: &PullProgress) -> serde_json::Value {
    let layer = |status: &str, id: &str| serde_json::json!({ "status": status, "progressDetail": {}, "id": id });
    match step {
        PullProgress::PullingFrom { id, repository } => {
            serde_json::json!({ "status": format!("Pulling from {repository}"), "id": id })
        }
        PullProgress::AlreadyExists { id } => layer("Already exists", id),
        PullProgress::Waiting { id } => layer("Pulling fs layer", id),
        PullProgress::Downloading { id, current, total } => serde_json::json!({
            "status": "Downloading",
            "progressDetail": { "current": current, "total": total },
            "progress": progress_bar(*current, *total),
            "id": id,
        }),
        PullProgress::DownloadComplete { id } => layer("Download complete", id),
        PullProgress::PullComplete { id } => layer("Pull complete", id),
        PullProgress::Digest { digest } => {
            serde_json::json!({ "status": format!("Digest: {digest}") })
        }
    }
}

/// `[=====>      ]  1.2MB/3.4MB`, as dockerd renders `progress`.
pub(crate) fn progress_bar(current: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    let filled = (current.min(total) * WIDTH).checked_div(total).unwrap_or(0);
    let mut bar = "=".repeat(usize::try_from(filled).unwrap_or(0));
    if filled < WIDTH {
        bar.push('>');
    }
    format!("[{bar:<50}] {:>8}/{}", human(current), human(total))
}

/// Decimal units, as Docker's progress uses them (`1.2MB`).
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    // Four significant digits with trailing zeros dropped, like Go's %.4g.
    let decimals = match value {
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    };
    let text = format!("{value:.decimals$}");
    let text =
        if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    format!("{text}{}", UNITS[unit])
}

/// docker-compat: `filters` is JSON, `{"reference":["py*"]}` or the older
/// `{"reference":{"py*":true}}`.
fn parse_filters(text: Option<&str>) -> Result<ImageFilter, ApiError> {
    let mut filter = ImageFilter::default();
    let Some(text) = text.filter(|t| !t.is_empty()) else { return Ok(filter) };
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
    for (key, value) in map {
        let values: Vec<String> = match value {
            serde_json::Value::Array(items) => {
                items.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
            }
            serde_json::Value::Object(items) => items.into_iter().map(|(k, _)| k).collect(),
            _ => return Err(ApiError::bad_request(format!("invalid filter '{key}'"))),
        };
        match key.as_str() {
            "reference" => filter.references.extend(values),
            "label" => filter.labels.extend(values),
            "dangling" => {
                let wanted = match values.first().map(String::as_str) {
                    Some("true" | "1") => true,
                    Some("false" | "0") => false,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "invalid filter 'dangling={}'",
                            other.unwrap_or_default()
                        )))
                    }
                };
                filter.dangling = Some(wanted);
            }
            _ => return Err(ApiError::bad_request(format!("invalid filter '{key}'"))),
        }
    }
    Ok(filter)
}

/// `GET /system/df`: the images with their shared bytes; no containers,
/// volumes or build cache exist yet.
pub async fn disk_usage(engine: Arc<Engine>) -> Result<Response<Body>, ApiError> {
    let usage = blocking(move || engine.images().disk_usage()).await?;
    let images = usage
        .images
        .into_iter()
        .map(|(summary, shared)| wire::ImageSummary {
            shared_size: size(shared),
            containers: 0,
            ..to_wire_summary(summary)
        })
        .collect();
    let answer = wire::DiskUsage {
        layers_size: size(usage.layers_size),
        images,
        ..wire::DiskUsage::default()
    };
    Ok(reply::json(StatusCode::OK, &answer))
}

fn size(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

fn to_wire_summary(image: ImageSummary) -> wire::ImageSummary {
    wire::ImageSummary {
        id: image.id.to_string(),
        parent_id: String::new(),
        repo_tags: image.repo_tags,
        repo_digests: image.repo_digests,
        created: image.created,
        size: size(image.size),
        shared_size: -1,
        labels: image.labels.into_iter().collect(),
        containers: -1,
    }
}

fn to_wire_inspect(details: ImageDetails) -> wire::ImageInspect {
    let config = details.config;
    wire::ImageInspect {
        id: details.id.to_string(),
        repo_tags: details.repo_tags,
        repo_digests: details.repo_digests,
        parent: String::new(),
        comment: details.comment,
        created: config.created.clone().unwrap_or_default(),
        docker_version: String::new(),
        author: config.author.clone().unwrap_or_default(),
        config: to_wire_config(config.config.unwrap_or_default()),
        architecture: config.architecture,
        variant: config.variant.unwrap_or_default(),
        os: config.os,
        os_version: config.os_version.unwrap_or_default(),
        size: size(details.size),
        graph_driver: wire::GraphDriver { name: "overlay2".to_owned(), data: BTreeMap::new() },
        root_fs: wire::RootFs {
            kind: config.rootfs.kind,
            layers: config.rootfs.diff_ids.iter().map(ToString::to_string).collect(),
        },
        // docker-compat: Go's zero time, what dockerd shows for an image
        // never tagged on this host; Kiln does not record tag times yet.
        metadata: wire::ImageMetadata { last_tag_time: "0001-01-01T00:00:00Z".to_owned() },
        extra: BTreeMap::new(),
    }
}

fn to_wire_config(c: ContainerConfig) -> wire::ImageConfig {
    let non_empty = |v: Vec<String>| (!v.is_empty()).then_some(v);
    wire::ImageConfig {
        user: c.user.unwrap_or_default(),
        exposed_ports: (!c.exposed_ports.is_empty()).then(|| set(c.exposed_ports)),
        env: non_empty(c.env),
        cmd: c.cmd,
        healthcheck: c.healthcheck.map(|h| wire::Healthcheck {
            test: h.test,
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        }),
        args_escaped: c.args_escaped,
        volumes: (!c.volumes.is_empty()).then(|| set(c.volumes)),
        working_dir: c.working_dir.unwrap_or_default(),
        entrypoint: c.entrypoint,
        on_build: non_empty(c.on_build),
        labels: (!c.labels.is_empty()).then_some(c.labels),
        stop_signal: c.stop_signal,
        shell: non_empty(c.shell),
        ..wire::ImageConfig::default()
    }
}

/// A Docker set-like map (`ExposedPorts`, `Volumes`): keys to `{}`.
fn set<V>(map: BTreeMap<String, V>) -> BTreeMap<String, wire::EmptyObject> {
    map.into_keys().map(|k| (k, wire::EmptyObject {})).collect()
}

fn to_wire_history(entry: HistoryEntry) -> wire::HistoryItem {
    wire::HistoryItem {
        id: entry.id.map_or_else(|| "<missing>".to_owned(), |id| id.to_string()),
        created: entry.created,
        created_by: entry.created_by,
        tags: (!entry.tags.is_empty()).then_some(entry.tags),
        size: size(entry.size),
        comment: entry.comment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_progress_is_worded_as_dockerd_words_it() {
        let from = PullProgress::PullingFrom { id: "1".into(), repository: "kiln-t/bb".into() };
        assert_eq!(
            progress_json(&from).to_string(),
            r#"{"id":"1","status":"Pulling from kiln-t/bb"}"#
        );
        let down =
            PullProgress::Downloading { id: "ab".into(), current: 1_200_000, total: 3_400_000 };
        let json = progress_json(&down);
        assert_eq!(json["progressDetail"]["total"], 3_400_000);
        assert!(json["progress"].as_str().unwrap().ends_with("1.2MB/3.4MB"), "{json}");
        assert_eq!(
            error_json("boom").to_string(),
            r#"{"error":"boom","errorDetail":{"message":"boom"}}"#
        );
    }

    #[test]
    fn filters_take_both_of_dockers_shapes() {
        let f = parse_filters(Some(r#"{"reference":["py*"],"dangling":["false"]}"#)).expect("list");
        assert_eq!(f.references, ["py*"]);
        assert_eq!(f.dangling, Some(false));
        let f = parse_filters(Some(r#"{"reference":{"busybox":true}}"#)).expect("map");
        assert_eq!(f.references, ["busybox"]);
        assert_eq!(parse_filters(Some(r#"{"nope":["x"]}"#)).expect_err("unknown").status, 400);
        assert_eq!(parse_filters(None).expect("none"), ImageFilter::default());
    }
}
