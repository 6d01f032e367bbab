//! Auth with credentials against a registry and token server on a local
//! thread: the bearer flow with a password (and a new token when a request
//! is challenged for a wider scope), basic auth, refusals in the server's
//! words, and `check_login`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use kiln_registry_client::{
    check_login, Credentials, Endpoint, RegistryError, Repository, RetryPolicy, Trust,
};

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;
/// `Basic` of `kiln:pw`.
const GOOD_BASIC: &str = "Basic a2lsbjpwdw==";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `Bearer` challenges; `/token` hands out `t=<scope>` for kiln:pw.
    Bearer,
    /// `Basic` challenges; kiln:pw is let in.
    Basic,
}

/// Requests seen: `/token` queries (scope), in order.
type Seen = Arc<Mutex<Vec<String>>>;

fn start(mode: Mode) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            answer(stream, port, mode, &log);
        }
    });
    (format!("127.0.0.1:{port}"), seen)
}

fn answer(stream: TcpStream, port: u16, mode: Mode, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    let _ = reader.read_line(&mut first);
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let target = first.split_whitespace().nth(1).unwrap_or_default().to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let auth = headers.get("authorization").cloned().unwrap_or_default();
    // Manifest 1 needs pull; manifest 2 needs pull,push (a push's scope).
    let scope =
        if path.ends_with("/manifests/2") { "repository:a:pull,push" } else { "repository:a:pull" };
    let unauthorized =
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
    let (status, extra, body) = match (mode, path) {
        (Mode::Bearer, "/token") => {
            let scope = query
                .split('&')
                .find_map(|p| p.strip_prefix("scope="))
                .unwrap_or_default()
                .replace("%2C", ",");
            seen.lock().expect("lock").push(scope.clone());
            if auth == GOOD_BASIC {
                (
                    "200 OK",
                    String::new(),
                    format!(r#"{{"token":"t={scope}","refresh_token":"rt"}}"#),
                )
            } else {
                (
                    "401 Unauthorized",
                    String::new(),
                    r#"{"details":"incorrect username or password"}"#.to_owned(),
                )
            }
        }
        (Mode::Bearer, "/v2/") if auth.starts_with("Bearer t=") => {
            ("200 OK", String::new(), body_for(path))
        }
        (Mode::Bearer, _) => {
            let held = auth.strip_prefix("Bearer t=").unwrap_or_default();
            let wanted = scope.rsplit(':').next().unwrap_or_default();
            let held_actions = held.rsplit(':').next().unwrap_or_default();
            if !held.is_empty()
                && wanted.split(',').all(|a| held_actions.split(',').any(|h| h == a))
            {
                ("200 OK", String::new(), body_for(path))
            } else {
                let challenge = format!(
                    "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"t\",scope=\"{scope}\"\r\n"
                );
                ("401 Unauthorized", challenge, unauthorized.to_owned())
            }
        }
        (Mode::Basic, _) if auth == GOOD_BASIC => ("200 OK", String::new(), body_for(path)),
        (Mode::Basic, _) => (
            "401 Unauthorized",
            "WWW-Authenticate: Basic realm=\"kiln-t\"\r\n".to_owned(),
            unauthorized.to_owned(),
        ),
    };
    let content_type = if path.contains("/manifests/") {
        "application/vnd.oci.image.manifest.v1+json"
    } else {
        "application/json"
    };
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn body_for(path: &str) -> String {
    if path.contains("/manifests/") {
        MANIFEST.to_owned()
    } else {
        "{}".to_owned()
    }
}

fn repository(host: &str, credentials: Option<Credentials>) -> Repository {
    Repository::new(Endpoint::for_registry(host), "a", RetryPolicy::default())
        .expect("repository")
        .with_credentials(credentials)
}

#[tokio::test]
async fn bearer_tokens_come_with_the_password_and_again_for_a_wider_scope() {
    let (host, seen) = start(Mode::Bearer);
    let repo = repository(&host, Some(Credentials::password("kiln", "pw")));
    repo.manifest("1").await.expect("manifest 1");
    repo.manifest("2").await.expect("manifest 2, with a pull,push token");
    // The pull,push token serves pull requests too: no third token.
    repo.manifest("1").await.expect("manifest 1 again");
    assert_eq!(*seen.lock().expect("lock"), ["repository:a:pull", "repository:a:pull,push"]);

    let wrong = repository(&host, Some(Credentials::password("kiln", "nope")));
    let err = wrong.manifest("1").await.expect_err("refused");
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "registry {host} refused access to a: unauthorized: incorrect username or password"
        )
    );
}

#[tokio::test]
async fn basic_challenges_are_answered_with_the_password() {
    let (host, _) = start(Mode::Basic);
    repository(&host, Some(Credentials::password("kiln", "pw")))
        .manifest("1")
        .await
        .expect("manifest");
    let err = repository(&host, Some(Credentials::password("kiln", "nope")))
        .manifest("1")
        .await
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!("registry {host} refused access to a: unauthorized: authentication required")
    );
    let err = repository(&host, None).manifest("1").await.expect_err("no credentials");
    assert!(matches!(err, RegistryError::CredentialsRequired { .. }), "{err:?}");
    let err = repository(&host, Some(Credentials::identity_token("rt")))
        .manifest("1")
        .await
        .expect_err("a token is no basic credential");
    assert!(matches!(err, RegistryError::CredentialsRequired { .. }), "{err:?}");
}

#[tokio::test]
async fn check_login_gives_the_identity_token_or_the_refusal() {
    let trust = Trust::system();
    let (bearer, _) = start(Mode::Bearer);
    let endpoint = Endpoint::for_registry(&bearer);
    let token =
        check_login(&endpoint, &Credentials::password("kiln", "pw"), &trust).await.expect("login");
    assert_eq!(token.as_deref(), Some("rt"));
    let err = check_login(&endpoint, &Credentials::password("kiln", "nope"), &trust)
        .await
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!("Get \"http://{bearer}/v2/\": unauthorized: incorrect username or password")
    );

    let (basic, _) = start(Mode::Basic);
    let endpoint = Endpoint::for_registry(&basic);
    let token =
        check_login(&endpoint, &Credentials::password("kiln", "pw"), &trust).await.expect("login");
    assert_eq!(token, None);
    let err = check_login(&endpoint, &Credentials::password("kiln", "nope"), &trust)
        .await
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!("Get \"http://{basic}/v2/\": unauthorized: authentication required")
    );
}
