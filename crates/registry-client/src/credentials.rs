//! What a user logs in to a registry with: a user name and password, or an
//! identity token (an OAuth2 refresh token a token server handed out at
//! login, which Docker stores instead of the password).
//!
//! Where credentials are kept (`~/.docker/config.json`, a credential
//! helper) is the CLI's business: the daemon gets them per request and
//! never reads the user's files.

use base64::Engine as _;
use http::HeaderValue;

/// Credentials for one registry. `Debug` shows the user name only.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Sent as `Basic` auth, to the registry or to its token server.
    Password { username: String, password: String },
    /// Sent as `refresh_token` in a POST to the token server
    /// (`grant_type=refresh_token`).
    IdentityToken { token: String },
}

impl Credentials {
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials::Password { username: username.into(), password: password.into() }
    }

    pub fn identity_token(token: impl Into<String>) -> Credentials {
        Credentials::IdentityToken { token: token.into() }
    }

    pub fn username(&self) -> Option<&str> {
        match self {
            Credentials::Password { username, .. } => Some(username),
            Credentials::IdentityToken { .. } => None,
        }
    }

    /// `Basic base64(user:password)`; `None` for an identity token, which
    /// only a token server takes.
    pub(crate) fn basic_header(&self) -> Option<HeaderValue> {
        let Credentials::Password { username, password } = self else { return None };
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::IdentityToken { .. } => {
                f.debug_struct("IdentityToken").field("token", &"<redacted>").finish()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_base64_of_user_colon_password() {
        let header = Credentials::password("kiln", "s3cret:x").basic_header().expect("header");
        assert_eq!(header.to_str().expect("ascii"), "Basic a2lsbjpzM2NyZXQ6eA==");
        assert!(header.is_sensitive());
        assert_eq!(Credentials::identity_token("t").basic_header(), None);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let shown = format!(
            "{:?} {:?}",
            Credentials::password("kiln", "hunter2"),
            Credentials::identity_token("refresh-me")
        );
        assert!(shown.contains("kiln"), "{shown}");
        assert!(!shown.contains("hunter2") && !shown.contains("refresh-me"), "{shown}");
    }
}
