//! `GET /events`: the engine's events as a stream of JSON messages, the
//! past ones since `since` first, then live ones until `until`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use kiln_api_types as wire;
use kiln_engine::events::Event;
use kiln_engine::Engine;

use crate::container::{channel_body, parse_filters, parse_timestamp};
use crate::error::ApiError;
use crate::query::Query;
use crate::reply::Body;

/// Which events a client wants.
#[derive(Debug, Default)]
struct Selection {
    since: Option<i64>,
    until: Option<i64>,
    filters: BTreeMap<String, Vec<String>>,
}

impl Selection {
    fn wants(&self, e: &Event) -> bool {
        if self.since.is_some_and(|s| e.time < s) || self.until.is_some_and(|u| e.time > u) {
            return false;
        }
        let any = |key: &str, pred: &dyn Fn(&str) -> bool| {
            self.filters.get(key).is_none_or(|v| v.is_empty() || v.iter().any(|x| pred(x)))
        };
        let name = e.attributes.get("name").map(String::as_str).unwrap_or_default();
        // docker-compat: an image event names its image in `name`, others
        // in `image`; either matches with or without its tag.
        let image_key = if e.kind == "image" { "name" } else { "image" };
        let image = e.attributes.get(image_key).map(String::as_str).unwrap_or_default();
        // The actor is matched only when it is an image: a volume named
        // like an image is not that image.
        let id = if e.kind == "image" { e.id.as_str() } else { "" };
        let (image_name, id_name) = (without_tag(image), without_tag(id));
        any("type", &|t| t == e.kind)
            && any("event", &|a| a == e.action || e.action.split(':').next() == Some(a))
            && any("container", &|c| e.kind == "container" && (e.id.starts_with(c) || name == c))
            && any("image", &|i| [image, id, &image_name, &id_name].contains(&i))
            && any("volume", &|v| e.kind == "volume" && e.id == v)
            && any("scope", &|s| s == "local")
            && self.filters.get("label").is_none_or(|labels| {
                labels.iter().all(|l| match l.split_once('=') {
                    Some((k, v)) => e.attributes.get(k).is_some_and(|x| x == v),
                    None => e.attributes.contains_key(l.as_str()),
                })
            })
    }
}

/// `name:tag` without its tag, as Docker's event filter compares images;
/// anything that is not a reference (an id) as it is.
fn without_tag(image: &str) -> String {
    if image.starts_with("sha256:") {
        return image.to_owned();
    }
    image.parse::<kiln_types::ImageRef>().map_or_else(|_| image.to_owned(), |r| r.familiar_name())
}

fn to_wire(e: &Event) -> wire::EventMessage {
    let container = e.kind == "container";
    // docker-compat: the deprecated `status` and `id` are filled for
    // container and image events, `from` for container events only.
    let legacy = container || e.kind == "image";
    wire::EventMessage {
        status: legacy.then(|| e.action.clone()),
        id: legacy.then(|| e.id.clone()),
        from: container.then(|| e.attributes.get("image").cloned().unwrap_or_default()),
        kind: e.kind.to_owned(),
        action: e.action.clone(),
        actor: wire::EventActor { id: e.id.clone(), attributes: e.attributes.clone() },
        scope: "local".into(),
        time: e.time.div_euclid(1_000_000_000),
        time_nano: e.time,
    }
}

/// `GET /events?since=&until=&filters=`.
pub async fn stream(engine: Arc<Engine>, query: &Query) -> Result<Response<Body>, ApiError> {
    let time = |key: &str| -> Result<Option<i64>, ApiError> {
        match query.get(key) {
            None | Some("") => Ok(None),
            Some(text) => parse_timestamp(text).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!("invalid value for \"{key}\": {text}"))
            }),
        }
    };
    let selection = Selection {
        since: time("since")?,
        until: time("until")?,
        filters: match query.get("filters") {
            None | Some("") => BTreeMap::new(),
            Some(text) => parse_filters(text)?,
        },
    };
    let (past, mut live) = engine.events().subscribe();
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(64);
    tokio::spawn(async move {
        let send = |e: &Event| {
            let mut line = serde_json::to_vec(&to_wire(e)).unwrap_or_default();
            line.push(b'\n');
            Bytes::from(line)
        };
        // Only past events when asked for a past window.
        let replay = selection.since.is_some() || selection.until.is_some();
        if replay {
            for e in past.iter().filter(|e| selection.wants(e)) {
                if tx.send(Ok(send(e))).await.is_err() {
                    return;
                }
            }
        }
        let now = kiln_types::time::now();
        let now = now.0 * 1_000_000_000 + i64::from(now.1);
        let deadline =
            selection.until.map(|u| Duration::from_nanos(u64::try_from(u - now).unwrap_or(0)));
        let follow = async {
            loop {
                match live.recv().await {
                    Ok(e) if selection.wants(&e) => {
                        if tx.send(Ok(send(&e))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        };
        match deadline {
            Some(d) => {
                let _ = tokio::time::timeout(d, follow).await;
            }
            None => follow.await,
        }
    });
    let mut response = Response::new(channel_body(rx));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &'static str, action: &str, id: &str, attributes: &[(&str, &str)]) -> Event {
        Event {
            kind,
            action: action.to_owned(),
            id: id.to_owned(),
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            time: 1,
        }
    }

    fn selecting(filters: &[(&str, &str)]) -> Selection {
        let mut selection = Selection::default();
        for (k, v) in filters {
            selection.filters.entry((*k).to_owned()).or_default().push((*v).to_owned());
        }
        selection
    }

    #[test]
    fn image_filters_match_the_image_by_name_with_or_without_tag_or_by_id() {
        let tagged = event("image", "tag", "sha256:ab", &[("name", "app:2")]);
        let started = event("container", "start", "c1", &[("image", "app:2"), ("name", "x")]);
        let made = event("volume", "create", "app", &[("driver", "local")]);
        for wanted in ["app", "app:2", "sha256:ab"] {
            assert!(selecting(&[("image", wanted)]).wants(&tagged), "{wanted}");
        }
        assert!(selecting(&[("image", "app")]).wants(&started));
        assert!(!selecting(&[("image", "app:1")]).wants(&tagged));
        assert!(!selecting(&[("image", "app")]).wants(&made), "a volume is no image");
        assert!(!selecting(&[("image", "sha256")]).wants(&tagged), "an id keeps its colon");
        let volumes = selecting(&[("type", "volume")]);
        assert!(volumes.wants(&made) && !volumes.wants(&tagged) && !volumes.wants(&started));
    }

    #[test]
    fn image_events_carry_the_deprecated_status_and_id_but_volume_events_do_not() {
        let image = to_wire(&event("image", "untag", "sha256:ab", &[("name", "sha256:ab")]));
        assert_eq!(
            (image.status.as_deref(), image.id.as_deref()),
            (Some("untag"), Some("sha256:ab"))
        );
        assert_eq!(image.from, None);
        let volume = to_wire(&event("volume", "destroy", "data", &[("driver", "local")]));
        assert_eq!((volume.status, volume.id, volume.from), (None, None, None));
        assert_eq!((volume.kind.as_str(), volume.actor.id.as_str()), ("volume", "data"));
    }
}
