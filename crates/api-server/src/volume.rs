//! `/volumes/...`: the engine's named volumes in the API's shapes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use hyper::body::Body as HttpBody;
use kiln_api_types as wire;
use kiln_engine::volumes::{VolumeError, VolumeRecord};
use kiln_engine::Engine;

use crate::container::{parse_filters, read_json};
use crate::error::ApiError;
use crate::query::Query;
use crate::reply::{self, Body};

fn err(e: VolumeError) -> ApiError {
    ApiError::from_error(&e)
}

fn to_wire(engine: &Engine, record: VolumeRecord) -> wire::Volume {
    let mountpoint = engine.volumes().mountpoint(&record.name).display().to_string();
    wire::Volume {
        created_at: kiln_types::time::UtcTime::from_unix(record.created).rfc3339(),
        name: record.name,
        driver: record.driver,
        mountpoint,
        status: None,
        labels: Some(record.labels),
        scope: "local".into(),
        options: Some(record.options).filter(|o| !o.is_empty()),
        usage_data: None,
    }
}

/// `GET /volumes?filters=`: `name`, `label`, `driver`, `dangling`.
pub async fn list(engine: Arc<Engine>, query: &Query) -> Result<Response<Body>, ApiError> {
    let filters = match query.get("filters") {
        None | Some("") => BTreeMap::new(),
        Some(text) => parse_filters(text)?,
    };
    for key in filters.keys() {
        if !matches!(key.as_str(), "name" | "label" | "driver" | "dangling") {
            return Err(ApiError::bad_request(format!("invalid filter '{key}'")));
        }
    }
    let users = engine.containers();
    let mut out = Vec::new();
    for record in engine.volumes().list().map_err(err)? {
        let matches = |key: &str, pred: &dyn Fn(&String) -> bool| {
            filters.get(key).is_none_or(|values| values.is_empty() || values.iter().any(pred))
        };
        let in_use =
            !kiln_engine::volumes::VolumeUsers::users_of(users.as_ref(), &record.name).is_empty();
        let keep = matches("name", &|n| record.name.contains(n.as_str()))
            && matches("driver", &|d| record.driver == *d)
            && matches("dangling", &|d| matches!(d.as_str(), "true" | "1") != in_use)
            && filters.get("label").is_none_or(|labels| {
                labels.iter().all(|l| match l.split_once('=') {
                    Some((k, v)) => record.labels.get(k).is_some_and(|x| x == v),
                    None => record.labels.contains_key(l),
                })
            });
        if keep {
            out.push(to_wire(&engine, record));
        }
    }
    Ok(reply::json(
        StatusCode::OK,
        &wire::VolumeListResponse { volumes: Some(out), warnings: None },
    ))
}

/// `POST /volumes/create`.
pub async fn create<B>(engine: Arc<Engine>, body: B) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let request: wire::VolumeCreateRequest = read_json(body).await?;
    let (record, _) = engine
        .volumes()
        .create(
            Some(request.name.as_str()),
            &request.driver,
            request.driver_opts.unwrap_or_default(),
            request.labels.unwrap_or_default(),
        )
        .map_err(err)?;
    Ok(reply::json(StatusCode::CREATED, &to_wire(&engine, record)))
}

/// `GET /volumes/{name}`.
pub async fn inspect(engine: Arc<Engine>, name: String) -> Result<Response<Body>, ApiError> {
    let record = engine.volumes().get(&name).map_err(err)?;
    Ok(reply::json(StatusCode::OK, &to_wire(&engine, record)))
}

/// `DELETE /volumes/{name}?force=`.
pub async fn remove(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    engine
        .volumes()
        .remove(&name, query.flag("force"), engine.containers().as_ref())
        .map_err(err)?;
    Ok(reply::empty(StatusCode::NO_CONTENT))
}

/// `POST /volumes/prune?filters=`: anonymous unused volumes, or every
/// unused one with `all=true`.
pub async fn prune(engine: Arc<Engine>, query: &Query) -> Result<Response<Body>, ApiError> {
    let filters = match query.get("filters") {
        None | Some("") => BTreeMap::new(),
        Some(text) => parse_filters(text)?,
    };
    let all =
        filters.get("all").is_some_and(|v| v.iter().any(|x| matches!(x.as_str(), "true" | "1")));
    let labels = filters.get("label").cloned().unwrap_or_default();
    let (removed, reclaimed) =
        engine.volumes().prune(all, &labels, engine.containers().as_ref()).map_err(err)?;
    Ok(reply::json(
        StatusCode::OK,
        &wire::VolumePruneResponse {
            volumes_deleted: Some(removed).filter(|r| !r.is_empty()),
            space_reclaimed: reclaimed,
        },
    ))
}
