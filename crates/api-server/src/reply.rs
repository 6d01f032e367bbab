//! Building responses: bodies, content types and the headers every answer carries.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, SERVER};
use http::{Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt as _, Full};
use kiln_api_types::ErrorResponse;

use crate::error::ApiError;
use crate::versioning::API_VERSION;

/// The body of every response; boxed so that streaming answers (logs, pull
/// progress) can join whole ones later.
pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            with_type(status, "application/json", bytes)
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot encode a response");
            error(&ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("cannot encode the response: {err}"),
            })
        }
    }
}

pub fn error(err: &ApiError) -> Response<Body> {
    json(err.status, &ErrorResponse { message: err.message.clone() })
}

pub fn with_type(
    status: StatusCode,
    content_type: &'static str,
    bytes: impl Into<Bytes>,
) -> Response<Body> {
    let bytes = bytes.into();
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// An answer with no body (`201 Created` of a tag).
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// An empty answer that still says what a GET would have sent (HEAD).
pub fn head(content_type: &'static str) -> Response<Body> {
    let mut response = with_type(StatusCode::OK, content_type, Bytes::new());
    response.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

/// The headers dockerd puts on every answer, errors included.
pub fn add_common_headers(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    let server = format!("Kiln/{} ({})", env!("CARGO_PKG_VERSION"), std::env::consts::OS);
    if let Ok(value) = HeaderValue::from_str(&server) {
        headers.insert(SERVER, value);
    }
    if let Ok(value) = HeaderValue::from_str(&API_VERSION.to_string()) {
        headers.insert(HeaderName::from_static("api-version"), value);
    }
    headers.insert(HeaderName::from_static("ostype"), HeaderValue::from_static("linux"));
    headers
        .insert(HeaderName::from_static("docker-experimental"), HeaderValue::from_static("false"));
}
