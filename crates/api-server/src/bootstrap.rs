//! `POST /kiln/images/bootstrap?suite=&include=&variant=&mirror=&epoch=&tag=&changes=`:
//! Kiln's own route, which dockerd does not have, behind `kiln image
//! bootstrap` (see `kiln_engine::bootstrap`).
//!
//! The answer is a JSON-message stream, as `POST /images/create` sends
//! one: each line mmdebstrap prints as a `stream` message, then the new
//! image's id as a `status`. A request that is wrong on its face (a bad
//! suite or package name, an unknown variant, a bad tag or change) is
//! refused before anything runs, with its status (400; 501 when mmdebstrap
//! is not installed). A failure once mmdebstrap runs (a package apt cannot
//! find, a download that breaks) comes after the 200, as the stream's last
//! message: `{"errorDetail":{"code":400,"message":…},"error":…}`, with the
//! status it would have had as its code, as dockerd reports errors in the
//! middle of a pull.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use kiln_api_types as wire;
use kiln_engine::bootstrap::{
    parse_epoch, BootstrapError, BootstrapRequest, Mirror, Package, Suite, Variant,
    DEFAULT_SOURCE_DATE_EPOCH,
};
use kiln_engine::Engine;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::query::Query;
use crate::reply::Body;

/// Messages in flight to the client; mmdebstrap prints a few hundred lines.
const DEPTH: usize = 64;

/// `POST /kiln/images/bootstrap`.
pub async fn bootstrap(engine: Arc<Engine>, query: &Query) -> Result<Response<Body>, ApiError> {
    let request = parse_request(query).map_err(|err| ApiError::from_error(&err))?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(DEPTH);
    let task = tokio::task::spawn_blocking(move || {
        let started = AtomicBool::new(false);
        let send = |message: wire::JsonMessage| tx.blocking_send(Ok(json_line(&message))).is_ok();
        let progress = |line: &str| {
            started.store(true, Ordering::Relaxed);
            send(wire::JsonMessage { stream: Some(format!("{line}\n")), ..Default::default() })
        };
        match engine.images().bootstrap(&request, &progress) {
            Ok(id) => {
                send(wire::JsonMessage { status: Some(id.to_string()), ..Default::default() });
                Ok(())
            }
            Err(err) if !started.load(Ordering::Relaxed) => Err(err),
            Err(err) => {
                tracing::error!(suite = %request.suite, error = %err, "bootstrap failed");
                send(error_message(&ApiError::from_error(&err)));
                Ok(())
            }
        }
    });
    // Nothing sent means the bootstrap failed before mmdebstrap printed a
    // line, and its error is the answer.
    crate::stream::json_stream_or_error(rx, task, "bootstrap").await
}

/// The query as the engine's request. `include` may repeat and each may
/// list packages separated by commas, as mmdebstrap's `--include`.
fn parse_request(query: &Query) -> Result<BootstrapRequest, BootstrapError> {
    let present = |key: &str| query.get(key).filter(|v| !v.is_empty());
    let suite: Suite = present("suite").unwrap_or_default().parse()?;
    let mut request = BootstrapRequest::new(suite, query.get("tag").unwrap_or_default());
    for list in query.all("include") {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            request.packages.push(name.parse::<Package>()?);
        }
    }
    if let Some(variant) = present("variant") {
        request.variant = variant.parse::<Variant>()?;
    }
    request.mirror = present("mirror").map(str::parse::<Mirror>).transpose()?;
    request.source_date_epoch =
        present("epoch").map(parse_epoch).transpose()?.unwrap_or(DEFAULT_SOURCE_DATE_EPOCH);
    request.changes = query.all("changes");
    Ok(request)
}

/// dockerd's in-stream error: the message twice, the status as its code.
fn error_message(err: &ApiError) -> wire::JsonMessage {
    wire::JsonMessage {
        error: Some(err.message.clone()),
        error_detail: Some(wire::ErrorDetail {
            code: Some(i64::from(err.status.as_u16())),
            message: err.message.clone(),
        }),
        ..Default::default()
    }
}

fn json_line(message: &wire::JsonMessage) -> Bytes {
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    line.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_becomes_a_request_and_bad_names_are_refused() {
        let query = Query::parse(Some(
            "suite=debian%3Abookworm&include=python3,python3-pip&include=curl&variant=apt\
             &epoch=86400&tag=py%3A3.11&changes=CMD+%5B%22python3%22%5D",
        ));
        let request = parse_request(&query).expect("request");
        assert_eq!(request.suite.as_str(), "bookworm");
        let names: Vec<&str> = request.packages.iter().map(Package::as_str).collect();
        assert_eq!(names, ["python3", "python3-pip", "curl"]);
        assert_eq!(request.variant, Variant::Apt);
        assert_eq!((request.source_date_epoch, request.reference.as_str()), (86_400, "py:3.11"));
        assert_eq!(request.changes, [r#"CMD ["python3"]"#]);

        for bad in ["tag=x", "suite=Bookworm&tag=x", "suite=bookworm&include=-o&tag=x"] {
            let err = parse_request(&Query::parse(Some(bad))).expect_err(bad);
            assert_eq!(ApiError::from_error(&err).status, 400, "{bad}");
        }
        let plain = parse_request(&Query::parse(Some("suite=sid&tag=x"))).expect("plain");
        assert_eq!(plain.source_date_epoch, DEFAULT_SOURCE_DATE_EPOCH);
        assert_eq!(plain.variant, Variant::Minbase);
    }

    #[test]
    fn an_error_in_the_stream_carries_its_status_as_code() {
        let line = json_line(&error_message(&ApiError::bad_request("cannot bootstrap sid: x")));
        let json: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(json["error"], "cannot bootstrap sid: x");
        assert_eq!(json["errorDetail"]["code"], 400);
        assert_eq!(json["errorDetail"]["message"], "cannot bootstrap sid: x");
    }
}
