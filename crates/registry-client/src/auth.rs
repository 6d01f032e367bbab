//! Answering a registry's `WWW-Authenticate` challenge, with or without
//! [`Credentials`], and checking credentials for `docker login`.
//!
//! - `Bearer realm=…,service=…,scope=…`: a token from the realm. Without
//!   credentials it is asked for anonymously; with a password, by a GET
//!   with `Basic` auth (`account=` names the user); with an identity token,
//!   by a POST of `grant_type=refresh_token` (OAuth2), as Docker's client
//!   does. The token is kept until it expires (`expires_in`, 60 s when not
//!   said) or a request with it is refused with a new challenge (a push
//!   asks for `pull,push` where the pull's token had `pull`).
//! - `Basic`: the user name and password, sent with every request from
//!   then on.
//!
//! A refusal (the token server's or the registry's 401) is one line in the
//! server's words: `unauthorized: incorrect username or password`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, StatusCode};

use crate::challenge::{Challenge, Scheme as ChallengeScheme};
use crate::credentials::Credentials;
use crate::endpoint::Endpoint;
use crate::error::RegistryError;
use crate::tls::Trust;
use crate::transport::{self, Payload};

/// Largest token answer read.
const TOKEN_LIMIT: u64 = 1024 * 1024;
/// The token lifetime assumed when the server says none or less: the
/// token specification's minimum.
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// A token is renewed this long before it expires, so that a request
/// never leaves with one about to lapse.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
/// `client_id` sent to token servers (required by the OAuth2 flow).
const CLIENT_ID: &str = "kiln";

/// The `Authorization` a repository sends, and how it got it. Shared by a
/// repository's clones: parallel blob fetches ask for a token once.
#[derive(Debug, Default)]
pub(crate) struct Authorizer {
    credentials: Mutex<Option<Credentials>>,
    current: Mutex<Option<Current>>,
}

#[derive(Debug, Clone)]
struct Current {
    header: HeaderValue,
    /// When a bearer token lapses; `None` for basic auth.
    expires: Option<Instant>,
}

/// Where the challenge came from, for token requests and messages.
pub(crate) struct Origin<'a> {
    pub registry: &'a str,
    pub repository: &'a str,
    pub trust: &'a Trust,
}

/// A token server's answer.
#[derive(Debug)]
struct Token {
    token: String,
    lifetime: Duration,
    /// The identity token handed out for `offline_token=true`.
    refresh_token: Option<String>,
}

/// Why no token came.
enum TokenFailure {
    /// The server refused the credentials (or the anonymous request): its
    /// message, in Docker's shape.
    Refused(String),
    Failed(RegistryError),
}

impl From<RegistryError> for TokenFailure {
    fn from(err: RegistryError) -> TokenFailure {
        TokenFailure::Failed(err)
    }
}

impl Authorizer {
    pub(crate) fn set_credentials(&self, credentials: Option<Credentials>) {
        *self.credentials.lock().unwrap_or_else(|e| e.into_inner()) = credentials;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn credentials(&self) -> Option<Credentials> {
        self.credentials.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The header to send now: `None` before the first challenge, or when
    /// the token has expired (the request is then challenged again).
    pub(crate) fn header(&self) -> Option<HeaderValue> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let current = current.as_ref()?;
        match current.expires {
            Some(expires) if Instant::now() >= expires => None,
            _ => Some(current.header.clone()),
        }
    }

    fn set(&self, current: Current) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(current);
    }

    /// Answer the challenge in a 401's `headers`: `Ok(true)` when there is
    /// a new `Authorization` to send, `Ok(false)` when the 401 stands (the
    /// registry refused the basic credentials already sent, or asked for a
    /// scheme we do not speak). `default_scope` is used when a bearer
    /// challenge names none. `sent` is the `Authorization` the refused
    /// request carried: what counts as "already sent", since requests made
    /// at once race to set the current header.
    pub(crate) async fn answer(
        &self,
        headers: &HeaderMap,
        default_scope: &str,
        origin: &Origin<'_>,
        sent: Option<&HeaderValue>,
    ) -> Result<bool, RegistryError> {
        let Some(challenge) = pick_challenge(headers) else { return Ok(false) };
        let credentials = self.credentials();
        match challenge.scheme {
            ChallengeScheme::Bearer => {
                let scope = challenge.param("scope").unwrap_or(default_scope);
                let token =
                    fetch_token(&challenge, scope, credentials.as_ref(), false, origin.trust)
                        .await
                        .map_err(|failure| match failure {
                            TokenFailure::Refused(message) => RegistryError::Unauthorized {
                                registry: origin.registry.to_owned(),
                                repository: origin.repository.to_owned(),
                                message,
                            },
                            TokenFailure::Failed(err) => err,
                        })?;
                self.set(Current {
                    header: bearer_header(&token.token)?,
                    expires: Some(expiry(token.lifetime)),
                });
                Ok(true)
            }
            ChallengeScheme::Basic => {
                let Some(header) = credentials.as_ref().and_then(Credentials::basic_header) else {
                    return Err(RegistryError::CredentialsRequired {
                        registry: origin.registry.to_owned(),
                    });
                };
                if sent == Some(&header) {
                    return Ok(false);
                }
                self.set(Current { header, expires: None });
                Ok(true)
            }
            ChallengeScheme::Other(_) => Ok(false),
        }
    }
}

/// Check `credentials` against the registry at `endpoint` as `docker
/// login` does: GET `/v2/`, answer its challenge (asking a token server
/// for an identity token, `offline_token=true`), and GET `/v2/` again with
/// the answer. The identity token when the token server gave one (store it
/// instead of the password); `None` otherwise, or when the registry asks
/// for no credentials at all.
pub async fn check_login(
    endpoint: &Endpoint,
    credentials: &Credentials,
    trust: &Trust,
) -> Result<Option<String>, RegistryError> {
    let url = format!("{endpoint}/v2/");
    let (url, response) = transport::get(&url, &HeaderMap::new(), trust).await?;
    let status = response.status();
    if status.is_success() {
        return Ok(None);
    }
    if status != StatusCode::UNAUTHORIZED {
        let message = crate::repository::error_message(&url, response).await;
        return Err(RegistryError::Status { url, status, message });
    }
    let refused = |message: String| RegistryError::LoginRefused { url: url.clone(), message };
    let Some(challenge) = pick_challenge(response.headers()) else {
        return Err(refused("the registry asks for credentials in no scheme kiln knows".into()));
    };
    let (header, identity_token) = match challenge.scheme {
        ChallengeScheme::Bearer => {
            let token = fetch_token(&challenge, "", Some(credentials), true, trust).await.map_err(
                |failure| match failure {
                    TokenFailure::Refused(message) => refused(message),
                    TokenFailure::Failed(err) => err,
                },
            )?;
            (bearer_header(&token.token)?, token.refresh_token)
        }
        ChallengeScheme::Basic => match credentials.basic_header() {
            Some(header) => (header, None),
            None => return Err(refused("no basic auth credentials".into())),
        },
        ChallengeScheme::Other(name) => {
            return Err(refused(format!("unsupported authentication scheme {name:?}")))
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, header);
    let (url, response) = transport::get(&url, &headers, trust).await?;
    let status = response.status();
    if status.is_success() {
        return Ok(identity_token);
    }
    let message = crate::repository::error_message(&url, response).await;
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(RegistryError::LoginRefused { url, message });
    }
    Err(RegistryError::Status { url, status, message })
}

/// The challenge to answer among a 401's `WWW-Authenticate` headers:
/// `Bearer` before `Basic` before anything else.
fn pick_challenge(headers: &HeaderMap) -> Option<Challenge> {
    let mut challenges: Vec<Challenge> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(Challenge::parse)
        .collect();
    let rank = |c: &Challenge| match c.scheme {
        ChallengeScheme::Bearer => 0,
        ChallengeScheme::Basic => 1,
        ChallengeScheme::Other(_) => 2,
    };
    challenges.sort_by_key(rank);
    challenges.into_iter().next()
}

fn bearer_header(token: &str) -> Result<HeaderValue, RegistryError> {
    let mut value =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| RegistryError::Token {
            realm: String::new(),
            message: "the token holds characters a header cannot".into(),
        })?;
    value.set_sensitive(true);
    Ok(value)
}

fn expiry(lifetime: Duration) -> Instant {
    Instant::now() + lifetime.max(MIN_TOKEN_LIFETIME).saturating_sub(EXPIRY_MARGIN)
}

/// Ask the challenge's realm for a token for `scope` (none when empty).
/// `login` asks for an identity token too (`offline_token=true`).
async fn fetch_token(
    challenge: &Challenge,
    scope: &str,
    credentials: Option<&Credentials>,
    login: bool,
    trust: &Trust,
) -> Result<Token, TokenFailure> {
    let realm = challenge.param("realm").unwrap_or_default().to_owned();
    let token_err = |message: String| RegistryError::Token { realm: realm.clone(), message };
    if realm.is_empty() {
        return Err(token_err("the challenge names no realm".into()).into());
    }
    let mut params: Vec<(&str, &str)> = Vec::new();
    if let Some(service) = challenge.param("service") {
        params.push(("service", service));
    }
    if !scope.is_empty() {
        params.push(("scope", scope));
    }
    let (url, response) = match credentials {
        Some(Credentials::IdentityToken { token }) => {
            params.extend([
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
                ("client_id", CLIENT_ID),
            ]);
            if login {
                params.push(("access_type", "offline"));
            }
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            let form = Payload::Bytes(Bytes::from(encode_form(&params)));
            transport::send(Method::POST, &realm, &headers, &form, trust).await?
        }
        Some(Credentials::Password { username, .. }) => {
            params.push(("account", username.as_str()));
            if login {
                params.extend([("offline_token", "true"), ("client_id", CLIENT_ID)]);
            }
            let mut headers = HeaderMap::new();
            if let Some(basic) = credentials.and_then(Credentials::basic_header) {
                headers.insert(AUTHORIZATION, basic);
            }
            transport::get(&with_query(&realm, &params), &headers, trust).await?
        }
        None => transport::get(&with_query(&realm, &params), &HeaderMap::new(), trust).await?,
    };
    let status = response.status();
    let body = transport::read_limited(&url, response.into_body(), TOKEN_LIMIT)
        .await?
        .ok_or_else(|| token_err("the answer is too large".into()))?;
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(TokenFailure::Refused(refusal_message(status, &body)));
    }
    if !status.is_success() {
        return Err(token_err(format!("{status}: {}", refusal_message(status, &body))).into());
    }
    parse_token(&body).map_err(|message| token_err(message).into())
}

/// The token in a token server's JSON answer: `token`, else
/// `access_token` (OAuth2); its lifetime; an identity token if any.
fn parse_token(body: &[u8]) -> Result<Token, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
        #[serde(default)]
        expires_in: Option<u64>,
        #[serde(default)]
        refresh_token: Option<String>,
    }
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("invalid answer: {e}"))?;
    let token = answer
        .token
        .filter(|t| !t.is_empty())
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "the answer holds no token".to_owned())?;
    Ok(Token {
        token,
        lifetime: Duration::from_secs(answer.expires_in.unwrap_or(0)),
        refresh_token: answer.refresh_token.filter(|t| !t.is_empty()),
    })
}

/// A refusal in the server's words, as Docker prints it: Docker Hub's
/// `{"details": …}` as `unauthorized: …`, a registry's `{"errors": […]}`
/// as `code: message`, else the status.
fn refusal_message(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        details: Option<String>,
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let reason = status.canonical_reason().unwrap_or("error").to_ascii_lowercase();
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else { return reason };
    if let Some(details) = answer.details.filter(|d| !d.is_empty()) {
        return format!("{reason}: {details}");
    }
    let parts: Vec<String> = answer
        .errors
        .into_iter()
        .map(|e| {
            let code = e.code.to_ascii_lowercase().replace('_', " ");
            match (code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{code}: {}", e.message),
                (false, true) => code,
                _ => e.message,
            }
        })
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        reason
    } else {
        parts.join("; ")
    }
}

/// `url` with `params` added to its query.
fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", encode_form(params))
}

/// `k=v&k=v`, percent-encoded: a query, or an
/// `application/x-www-form-urlencoded` body.
fn encode_form(params: &[(&str, &str)]) -> String {
    let pairs: Vec<String> =
        params.iter().map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v))).collect();
    pairs.join("&")
}

/// Percent-encode a query value (scopes hold `:` and `/`, which may stay).
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_escaped_for_the_token_query() {
        assert_eq!(
            query_escape("repository:library/busybox:pull"),
            "repository:library/busybox:pull"
        );
        assert_eq!(query_escape("a b,c"), "a%20b%2Cc");
        assert_eq!(
            with_query(
                "http://t/token?x=1",
                &[("service", "reg"), ("scope", "repository:a:pull,push")]
            ),
            "http://t/token?x=1&service=reg&scope=repository:a:pull%2Cpush"
        );
        assert_eq!(
            encode_form(&[("grant_type", "refresh_token"), ("refresh_token", "a+b=")]),
            "grant_type=refresh_token&refresh_token=a%2Bb%3D"
        );
    }

    #[test]
    fn token_answers_give_token_or_access_token_and_a_lifetime() {
        let t = parse_token(br#"{"token":"abc","expires_in":300}"#).expect("token");
        assert_eq!((t.token.as_str(), t.lifetime), ("abc", Duration::from_secs(300)));
        let t = parse_token(br#"{"access_token":"xyz","refresh_token":"r1"}"#).expect("token");
        assert_eq!(t.token, "xyz");
        assert_eq!(t.refresh_token.as_deref(), Some("r1"));
        assert!(parse_token(br#"{"token":""}"#).is_err());
        assert!(parse_token(b"not json").is_err());
    }

    #[test]
    fn refusals_are_worded_as_docker_prints_them() {
        let hub = br#"{"details":"incorrect username or password"}"#;
        assert_eq!(
            refusal_message(StatusCode::UNAUTHORIZED, hub),
            "unauthorized: incorrect username or password"
        );
        let registry =
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        assert_eq!(
            refusal_message(StatusCode::UNAUTHORIZED, registry),
            "unauthorized: authentication required"
        );
        assert_eq!(refusal_message(StatusCode::FORBIDDEN, b""), "forbidden");
    }

    #[test]
    fn bearer_is_answered_before_basic() {
        let mut headers = HeaderMap::new();
        headers.append(WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="r""#));
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="http://127.0.0.1:1/token""#),
        );
        assert_eq!(pick_challenge(&headers).expect("challenge").scheme, ChallengeScheme::Bearer);
        assert!(pick_challenge(&HeaderMap::new()).is_none());
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn basic_challenges_are_answered_once_and_need_credentials() {
        let trust = Trust::system();
        let origin = Origin { registry: "127.0.0.1:5000", repository: "a", trust: &trust };
        let mut headers = HeaderMap::new();
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="r""#));

        let anonymous = Authorizer::default();
        let err =
            block_on(anonymous.answer(&headers, "", &origin, None)).expect_err("no credentials");
        assert!(matches!(err, RegistryError::CredentialsRequired { .. }), "{err}");

        let auth = Authorizer::default();
        auth.set_credentials(Some(Credentials::password("u", "p")));
        assert!(block_on(auth.answer(&headers, "", &origin, None)).expect("answer"));
        let sent = auth.header().expect("header");
        assert_eq!(sent.to_str().expect("ascii"), "Basic dTpw");
        // A request that went out before the first answer, refused without
        // credentials, is answered too, though the header is set by now.
        assert!(block_on(auth.answer(&headers, "", &origin, None)).expect("answer"));
        // Refused with the credentials it carried: the 401 stands.
        assert!(!block_on(auth.answer(&headers, "", &origin, Some(&sent))).expect("answer"));
    }

    #[test]
    fn an_expired_token_is_not_sent() {
        let auth = Authorizer::default();
        auth.set(Current {
            header: HeaderValue::from_static("Bearer old"),
            expires: Some(Instant::now() - Duration::from_secs(1)),
        });
        assert_eq!(auth.header(), None);
        auth.set(Current {
            header: HeaderValue::from_static("Bearer new"),
            expires: Some(expiry(Duration::ZERO)),
        });
        assert_eq!(auth.header(), Some(HeaderValue::from_static("Bearer new")));
    }
}
