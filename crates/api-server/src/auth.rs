//! `POST /auth` (`docker login`) and the `X-Registry-Auth` header that
//! carries a user's credentials with a pull.
//!
//! As with dockerd, the daemon keeps no credentials: the client reads its
//! `config.json` (or credential helper) and sends them with each request;
//! `POST /auth` only checks them against the registry.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use hyper::body::Body as HttpBody;
use kiln_engine::pull::{Credentials, RegistryError};

use crate::container::read_json;
use crate::error::ApiError;
use crate::reply::{self, Body};

/// The header a pull's credentials come in.
pub const REGISTRY_AUTH_HEADER: &str = "x-registry-auth";

/// docker-compat: Docker's `AuthConfig`, the body of `POST /auth` and,
/// base64url-encoded, the value of `X-Registry-Auth`. Unknown keys
/// (`email`) are ignored.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct AuthConfig {
    username: String,
    password: String,
    /// `base64(user:password)`, as older clients send it.
    auth: String,
    serveraddress: String,
    identitytoken: String,
}

impl AuthConfig {
    /// The credentials this holds: an identity token first, then a user
    /// name and password (given, or in `auth`); `None` when empty.
    fn credentials(&self) -> Result<Option<Credentials>, String> {
        if !self.identitytoken.is_empty() {
            return Ok(Some(Credentials::identity_token(&self.identitytoken)));
        }
        if !self.username.is_empty() || !self.password.is_empty() {
            return Ok(Some(Credentials::password(&self.username, &self.password)));
        }
        if self.auth.is_empty() {
            return Ok(None);
        }
        let decoded = decode_base64(&self.auth).ok_or("its auth is not base64")?;
        let text = String::from_utf8(decoded).map_err(|_| "its auth is not UTF-8")?;
        let (username, password) = text.split_once(':').ok_or("its auth holds no ':'")?;
        Ok(Some(Credentials::password(username, password)))
    }
}

/// Base64 with either alphabet (the docker CLI sends the URL-safe one,
/// other clients the standard one), padded or not.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let url = GeneralPurpose::new(&base64::alphabet::URL_SAFE, config);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    let text = text.trim();
    url.decode(text).or_else(|_| standard.decode(text)).ok()
}

/// The credentials of a request's `X-Registry-Auth`: `None` without the
/// header or with an empty one (`{}`, which the docker CLI sends when it
/// has none). A value that is not base64 of a JSON object is a 400.
pub fn registry_auth(headers: &HeaderMap) -> Result<Option<Credentials>, ApiError> {
    let Some(value) = headers.get(REGISTRY_AUTH_HEADER) else { return Ok(None) };
    let invalid =
        |why: &str| ApiError::bad_request(format!("invalid X-Registry-Auth header: {why}"));
    let text = value.to_str().map_err(|_| invalid("it is not ASCII"))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let json = decode_base64(text).ok_or_else(|| invalid("it is not base64"))?;
    let config: AuthConfig = serde_json::from_slice(&json)
        .map_err(|e| invalid(&format!("it is not a JSON auth object: {e}")))?;
    config.credentials().map_err(|why| invalid(&why))
}

/// `POST /auth`: check the body's credentials against its registry
/// (`serveraddress`, Docker Hub when empty). 200 with `Login Succeeded`
/// and the identity token to store instead of the password, if the token
/// server gave one; 401 with the registry's words when they are refused.
pub async fn login<B>(body: B) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let config: AuthConfig = read_json(body).await?;
    let credentials = config
        .credentials()
        .map_err(|why| ApiError::bad_request(format!("invalid credentials: {why}")))?
        .ok_or_else(|| {
            ApiError::bad_request("a username and password, or an identitytoken, are required")
        })?;
    let identity_token = kiln_engine::pull::login(&config.serveraddress, &credentials)
        .await
        .map_err(|err| login_error(&err))?;
    Ok(reply::json(
        StatusCode::OK,
        &serde_json::json!({
            "Status": "Login Succeeded",
            "IdentityToken": identity_token.unwrap_or_default(),
        }),
    ))
}

/// docker-compat: dockerd answers refused credentials with 401 (the docker
/// CLI prints the message and exits 1); other failures by their kind.
fn login_error(err: &RegistryError) -> ApiError {
    match err {
        RegistryError::LoginRefused { .. }
        | RegistryError::Unauthorized { .. }
        | RegistryError::CredentialsRequired { .. } => {
            ApiError { status: StatusCode::UNAUTHORIZED, message: err.to_string() }
        }
        other => ApiError::from_error(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(REGISTRY_AUTH_HEADER, HeaderValue::from_str(value).expect("header"));
        headers
    }

    fn url_safe(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    #[test]
    fn registry_auth_holds_a_password_or_an_identity_token() {
        let json = r#"{"username":"kiln","password":"p?>>","serveraddress":"127.0.0.1:5000"}"#;
        // `?>>` encodes to `_` and `-` in the URL-safe alphabet.
        let encoded = url_safe(json);
        assert!(encoded.contains('_') || encoded.contains('-'), "{encoded}");
        assert_eq!(
            registry_auth(&header(&encoded)).expect("valid"),
            Some(Credentials::password("kiln", "p?>>"))
        );
        let unpadded = encoded.trim_end_matches('=').to_owned();
        assert!(registry_auth(&header(&unpadded)).expect("valid").is_some());
        let standard = base64::engine::general_purpose::STANDARD.encode(json);
        assert!(registry_auth(&header(&standard)).expect("valid").is_some());

        let token = url_safe(r#"{"identitytoken":"rt-1","serveraddress":"ghcr.io"}"#);
        assert_eq!(
            registry_auth(&header(&token)).expect("valid"),
            Some(Credentials::identity_token("rt-1"))
        );
        let legacy = url_safe(r#"{"auth":"a2lsbjpzM2NyZXQ="}"#);
        assert_eq!(
            registry_auth(&header(&legacy)).expect("valid"),
            Some(Credentials::password("kiln", "s3cret"))
        );
    }

    #[test]
    fn no_or_empty_registry_auth_means_anonymous() {
        assert_eq!(registry_auth(&HeaderMap::new()).expect("valid"), None);
        assert_eq!(registry_auth(&header("")).expect("valid"), None);
        assert_eq!(registry_auth(&header("e30=")).expect("valid"), None);
    }

    #[test]
    fn a_bad_registry_auth_is_a_400_that_says_so() {
        for bad in
            ["!!not base64!!", &url_safe("not json"), &url_safe(r#"{"auth":"bm9jb2xvbg=="}"#)]
        {
            let err = registry_auth(&header(bad)).expect_err(bad);
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(err.message.starts_with("invalid X-Registry-Auth header: "), "{}", err.message);
        }
    }

    #[test]
    fn refused_logins_are_401_with_the_registrys_words() {
        let err = login_error(&RegistryError::LoginRefused {
            url: "http://127.0.0.1:5000/v2/".into(),
            message: "unauthorized: authentication required".into(),
        });
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            err.message,
            r#"Get "http://127.0.0.1:5000/v2/": unauthorized: authentication required"#
        );
    }
}
