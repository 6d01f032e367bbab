//! `POST /images/{name}/push?tag=`: the engine's push, its progress as
//! Docker's JSON-message stream.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::BodyExt as _;
use kiln_engine::push::{PushProgress, PushRequest, PushedTag};
use kiln_engine::Engine;

use crate::error::ApiError;
use crate::image::{error_json, json_line, progress_bar, LineBody};
use crate::query::Query;
use crate::reply::{self, Body};

const JSON: &str = "application/json";

/// Push `name` (with `tag`, or every tag of the repository when `tag` is
/// empty, as dockerd does). An error before the push starts (no such image)
/// is an ordinary error answer, 404 with dockerd's words; one after the
/// stream started is its last line.
///
/// Credentials come from `X-Registry-Auth`, as for a pull.
///
/// `compression=gzip|zstd` is Kiln's own (`kiln push --compression`):
/// dockerd has no such parameter, so the docker CLI never sends it.
pub async fn push(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let credentials = crate::auth::registry_auth(headers)?;
    let reference = match query.get("tag").unwrap_or_default() {
        "" => name,
        tag => format!("{name}:{tag}"),
    };
    let compression = match query.get("compression").unwrap_or_default() {
        "" => None,
        text => Some(text.parse().map_err(|e| ApiError::from_error(&e))?),
    };
    let request = PushRequest { reference, chunk_size: None, credentials, compression };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move { engine.images().push(&request, tx).await });
    let Some(first) = rx.recv().await else {
        return match task.await {
            Ok(Err(err)) => Err(ApiError::from_error(&err)),
            Ok(Ok(pushed)) => {
                let lines: Vec<Bytes> = pushed.iter().map(|t| json_line(&aux_json(t))).collect();
                Ok(reply::with_type(StatusCode::OK, JSON, lines.concat()))
            }
            Err(join) => Err(ApiError::internal(format!("the push task failed: {join}"))),
        };
    };
    let (body_tx, body_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut next = Some(first);
        while let Some(step) = next {
            let mut lines = vec![progress_json(&step)];
            if let PushProgress::Digest { tag, digest, size } = &step {
                // docker-compat: the CLI reads the pushed digest from `aux`.
                lines.push(serde_json::json!({
                    "progressDetail": {},
                    "aux": { "Tag": tag, "Digest": digest.to_string(), "Size": size },
                }));
            }
            for line in lines {
                if body_tx.send(json_line(&line)).await.is_err() {
                    return;
                }
            }
            next = rx.recv().await;
        }
        let last = match task.await {
            Ok(Ok(_)) => return,
            Ok(Err(err)) => error_json(&ApiError::from_error(&err).message),
            Err(join) => error_json(&format!("the push task failed: {join}")),
        };
        let _ = body_tx.send(json_line(&last)).await;
    });
    let mut response = Response::new(LineBody { rx: body_rx }.boxed());
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(JSON));
    Ok(response)
}

fn aux_json(tag: &PushedTag) -> serde_json::Value {
    let name = tag.reference.tag().unwrap_or_default();
    serde_json::json!({
        "progressDetail": {},
        "aux": { "Tag": name, "Digest": tag.digest.to_string(), "Size": tag.size },
    })
}

/// One progress step as dockerd words it.
fn progress_json(step: &PushProgress) -> serde_json::Value {
    let layer = |status: &str, id: &str| serde_json::json!({ "status": status, "progressDetail": {}, "id": id });
    match step {
        PushProgress::RefersTo { name } => {
            serde_json::json!({ "status": format!("The push refers to repository [{name}]") })
        }
        PushProgress::Preparing { id } => layer("Preparing", id),
        PushProgress::AlreadyExists { id } => layer("Layer already exists", id),
        PushProgress::Mounted { id, from } => layer(&format!("Mounted from {from}"), id),
        PushProgress::Pushing { id, current, total } => serde_json::json!({
            "status": "Pushing",
            "progressDetail": { "current": current, "total": total },
            "progress": progress_bar(*current, *total),
            "id": id,
        }),
        PushProgress::Pushed { id } => layer("Pushed", id),
        PushProgress::Skipped { id } => layer("Skipped foreign layer", id),
        PushProgress::Digest { tag, digest, size } => {
            serde_json::json!({ "status": format!("{tag}: digest: {digest} size: {size}") })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_progress_is_worded_as_dockerd_words_it() {
        let refers = PushProgress::RefersTo { name: "127.0.0.1:5000/kiln-t/bb".into() };
        assert_eq!(
            progress_json(&refers).to_string(),
            r#"{"status":"The push refers to repository [127.0.0.1:5000/kiln-t/bb]"}"#
        );
        let exists = PushProgress::AlreadyExists { id: "0123456789ab".into() };
        assert_eq!(
            progress_json(&exists).to_string(),
            r#"{"id":"0123456789ab","progressDetail":{},"status":"Layer already exists"}"#
        );
        let pushing =
            PushProgress::Pushing { id: "ab".into(), current: 1_200_000, total: 5_000_000 };
        let json = progress_json(&pushing);
        assert_eq!(json["progressDetail"]["current"], 1_200_000);
        assert!(json["progress"].as_str().unwrap().ends_with("1.2MB/5MB"), "{json}");
        let digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let done = PushProgress::Digest { tag: "latest".into(), digest, size: 527 };
        assert_eq!(
            progress_json(&done)["status"],
            format!("latest: digest: sha256:{} size: 527", "ab".repeat(32))
        );
    }
}
