//! `POST /auth` (`docker login`) and the `X-Registry-Auth` header, which
//! carry a user's registry credentials to the daemon. The daemon keeps
//! none: the CLI reads them (config.json, a credential helper) and sends
//! them with each pull or push.

use base64::Engine as _;
use http::Method;

use crate::error::ClientError;
use crate::Client;

/// docker-compat: Docker's `AuthConfig`, the body of `POST /auth` and,
/// base64url-encoded, the value of `X-Registry-Auth`. Empty fields are left
/// out, as the docker CLI leaves them. `Debug` hides the secrets.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuthConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// The registry, as the user named it (`127.0.0.1:5000`), or
    /// `https://index.docker.io/v1/` for Docker Hub.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    /// A token server's refresh token, kept instead of the password.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
}

impl AuthConfig {
    /// The `X-Registry-Auth` value: the JSON in URL-safe base64, as the
    /// docker CLI sends it.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("serveraddress", &self.serveraddress)
            .field("identitytoken", &hidden(&self.identitytoken))
            .finish()
    }
}

/// `POST /auth`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct LoginOutcome {
    /// `Login Succeeded`.
    #[serde(rename = "Status", default)]
    pub status: String,
    /// A refresh token to store instead of the password; empty when the
    /// registry gave none.
    #[serde(rename = "IdentityToken", default)]
    pub identity_token: String,
}

impl Client {
    /// `POST /auth`: does the registry take these credentials? Refused
    /// ones are [`ClientError::Api`] with 401 and the registry's words.
    pub async fn login(&self, config: &AuthConfig) -> Result<LoginOutcome, ClientError> {
        let path = "/auth";
        let answer = self.call_json(Method::POST, path, config).await?;
        self.decode(path, &answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_daemon::{json_answer as answer, send, FakeDaemon};
    use http::StatusCode;
    use tokio::io::AsyncReadExt as _;

    #[test]
    fn registry_auth_is_url_safe_base64_of_the_json_without_empty_fields() {
        let config = AuthConfig {
            username: "kiln".into(),
            password: "p?>>".into(),
            serveraddress: "127.0.0.1:5000".into(),
            ..AuthConfig::default()
        };
        let encoded = config.encode();
        assert!(!encoded.contains(['+', '/']), "{encoded}");
        let json = base64::engine::general_purpose::URL_SAFE.decode(&encoded).expect("base64");
        let value: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(
            value,
            serde_json::json!({"username": "kiln", "password": "p?>>", "serveraddress": "127.0.0.1:5000"})
        );
        assert!(!format!("{config:?}").contains("p?>>"));
    }

    #[tokio::test]
    async fn login_posts_the_credentials_and_reads_the_identity_token() {
        let mut daemon = FakeDaemon::new();
        let (body_tx, body_rx) = tokio::sync::oneshot::channel::<Vec<u8>>();
        let server = daemon.serve(|mut stream| async move {
            let mut body = Vec::new();
            while serde_json::from_slice::<serde_json::Value>(&body).is_err() {
                body.push(stream.read_u8().await.expect("body"));
            }
            body_tx.send(body).expect("test waiting");
            let reply = r#"{"Status":"Login Succeeded","IdentityToken":"rt-1"}"#;
            send(&mut stream, &answer("200 OK", reply)).await;
        });
        let config = AuthConfig {
            username: "kiln".into(),
            password: "s3cret".into(),
            serveraddress: "127.0.0.1:5000".into(),
            ..AuthConfig::default()
        };
        let outcome = daemon.client.login(&config).await.expect("login");
        assert_eq!(outcome.status, "Login Succeeded");
        assert_eq!(outcome.identity_token, "rt-1");
        let head = server.await.expect("server");
        assert!(head.starts_with("POST /v1.47/auth HTTP/1.1\r\n"), "{head}");
        let sent: serde_json::Value =
            serde_json::from_slice(&body_rx.await.expect("body")).expect("json");
        assert_eq!(sent["username"], "kiln");
        assert_eq!(sent["password"], "s3cret");
        assert!(sent.get("identitytoken").is_none(), "{sent}");
    }

    #[tokio::test]
    async fn a_refused_login_is_the_daemons_401() {
        let mut daemon = FakeDaemon::new();
        let _server = daemon.serve(|mut stream| async move {
            let mut body = Vec::new();
            while serde_json::from_slice::<serde_json::Value>(&body).is_err() {
                body.push(stream.read_u8().await.expect("body"));
            }
            let reply = r#"{"message":"Get \"http://127.0.0.1:5000/v2/\": unauthorized: authentication required"}"#;
            send(&mut stream, &answer("401 Unauthorized", reply)).await;
        });
        let config =
            AuthConfig { username: "a".into(), password: "b".into(), ..Default::default() };
        let err = daemon.client.login(&config).await.expect_err("401");
        assert!(
            matches!(&err, ClientError::Api { status, .. } if *status == StatusCode::UNAUTHORIZED),
            "{err:?}"
        );
        assert!(err.to_string().ends_with("unauthorized: authentication required"), "{err}");
    }
}
