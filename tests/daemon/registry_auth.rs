//! `kiln login`/`logout` and pulls with credentials, Docker's way: the CLI
//! keeps them in `$DOCKER_CONFIG/config.json` (or a credential helper) and
//! sends them in `X-Registry-Auth`; the daemon checks them with `POST
//! /auth` and answers the registry's challenge with them. Against an
//! htpasswd-protected `docker-registry` (basic auth), a fake registry with
//! a token server written here (the bearer flow, with a password and with
//! an identity token), a credential helper script, and the `docker` CLI.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::common::{Run, TestDaemon};
use crate::registry::{push_busybox_as, sha256, tiny_image, Registry};

const USER: &str = "kiln-t-user";
const PASSWORD: &str = "s3cret pw:1";

/// `kiln ARGS` against `daemon` with `DOCKER_CONFIG=config`, `stdin` fed
/// to it, and `path_first` ahead of `PATH` (for credential helpers).
fn kiln(
    daemon: &TestDaemon,
    config: &Path,
    args: &[&str],
    stdin: Option<&str>,
    path_first: Option<&Path>,
) -> Run {
    let mut cmd = daemon.kiln();
    cmd.args(args).env("DOCKER_CONFIG", config).stdin(Stdio::piped());
    if let Some(dir) = path_first {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", dir.display()));
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn kiln");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.unwrap_or_default().as_bytes()).expect("write stdin");
    drop(input);
    let output = child.wait_with_output().expect("kiln output");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn read_config(config: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(config.join("config.json")).expect("config.json");
    serde_json::from_str(&text).expect("config.json is JSON")
}

fn base64(text: &str) -> String {
    let out = Run::ok(Command::new("sh").arg("-c").arg(format!("printf %s '{text}' | base64 -w0")));
    out.trim().to_owned()
}

#[test]
fn basic_auth_registry_needs_login_and_login_logout_keep_config_json() {
    let registry = Registry::with_htpasswd(USER, PASSWORD);
    let source = TestDaemon::start();
    let reference = push_busybox_as(&source, &registry, Some(&format!("{USER}:{PASSWORD}")));
    let host = registry.host();

    let daemon = TestDaemon::start();
    let config = daemon.dir.path().join("docker-config");

    let anonymous = kiln(&daemon, &config, &["pull", &reference], None, None);
    assert_eq!(anonymous.code, Some(1), "{anonymous:?}");
    assert_eq!(
        anonymous.stderr.trim(),
        format!("Error response from daemon: unauthorized: no basic auth credentials for {host} (log in with `kiln login {host}`)")
    );

    let wrong = kiln(&daemon, &config, &["login", "-u", USER, "-p", "wrong", &host], None, None);
    assert_eq!(wrong.code, Some(1), "{wrong:?}");
    assert!(
        wrong
            .stderr
            .contains("WARNING! Using --password via the CLI is insecure. Use --password-stdin."),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains(&format!(
            "Error response from daemon: Get \"http://{host}/v2/\": unauthorized: authentication required"
        )),
        "{}",
        wrong.stderr
    );
    assert!(!config.join("config.json").exists(), "a refused login stores nothing");

    let login = kiln(
        &daemon,
        &config,
        &["login", "-u", USER, "--password-stdin", &host],
        Some(&format!("{PASSWORD}\n")),
        None,
    );
    assert_eq!(login.code, Some(0), "{login:?}");
    assert_eq!(login.stdout, "Login Succeeded\n");
    let mode = std::fs::metadata(config.join("config.json")).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(read_config(&config)["auths"][&host]["auth"], base64(&format!("{USER}:{PASSWORD}")));

    let pulled = kiln(&daemon, &config, &["pull", &reference], None, None);
    assert_eq!(pulled.code, Some(0), "{pulled:?}");
    assert!(pulled.stdout.contains(&format!("Status: Downloaded newer image for {reference}")));
    assert_eq!(daemon.image_names(), std::slice::from_ref(&reference));

    let logout = kiln(&daemon, &config, &["logout", &host], None, None);
    assert_eq!(
        (logout.code, logout.stdout.as_str()),
        (Some(0), &*format!("Removing login credentials for {host}\n"))
    );
    assert!(read_config(&config)["auths"].get(&host).is_none(), "{}", read_config(&config));
    let again = kiln(&daemon, &config, &["logout", &host], None, None);
    assert_eq!(
        (again.code, again.stdout.as_str()),
        (Some(0), &*format!("Not logged in to {host}\n"))
    );

    let no_tty = kiln(&daemon, &config, &["login", &host], None, None);
    assert_eq!(no_tty.code, Some(1), "{no_tty:?}");
    assert_eq!(
        no_tty.stderr.trim(),
        "Error: Cannot perform an interactive login from a non TTY device"
    );
}

#[test]
fn run_of_a_missing_image_pulls_it_with_the_stored_credentials() {
    kiln_testing::require_privileged!();
    let registry = Registry::with_htpasswd(USER, PASSWORD);
    let source = TestDaemon::start();
    let reference = push_busybox_as(&source, &registry, Some(&format!("{USER}:{PASSWORD}")));
    let daemon = TestDaemon::start();
    let config = daemon.dir.path().join("docker-config");

    let refused = kiln(&daemon, &config, &["run", "--rm", &reference, "true"], None, None);
    assert_eq!(refused.code, Some(125), "{refused:?}");
    assert!(refused.stderr.contains("no basic auth credentials"), "{}", refused.stderr);

    let login = kiln(
        &daemon,
        &config,
        &["login", "-u", USER, "--password-stdin", &registry.host()],
        Some(PASSWORD),
        None,
    );
    assert_eq!(login.code, Some(0), "{login:?}");
    let run = kiln(&daemon, &config, &["run", "--rm", &reference, "echo", "logged in"], None, None);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "logged in\n");
    assert!(run.stderr.contains("Status: Downloaded newer image"), "{}", run.stderr);
}

// ------------------------------------------------- fake registry + token server

/// Each `/token` request: its method, then its query or form.
type TokenRequests = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

/// A registry that wants a bearer token from its own `/token`, which it
/// hands out for `USER`/`PASSWORD` (GET with basic auth) or for the
/// refresh token it gave at login (POST, `grant_type=refresh_token`).
struct TokenRegistry {
    port: u16,
    token_requests: TokenRequests,
}

const TOKEN: &str = "kiln-t-token";
const REFRESH: &str = "kiln-t-refresh";

impl TokenRegistry {
    /// Serving `blobs` and `manifest` as `kiln-t/x:1`; login hands out an
    /// identity token when `refresh` is set.
    fn start(manifest: Vec<u8>, blobs: Vec<Vec<u8>>, refresh: bool) -> TokenRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut table = BTreeMap::new();
        table.insert("/v2/".to_owned(), b"{}".to_vec());
        table.insert("/v2/kiln-t/x/manifests/1".to_owned(), manifest);
        for blob in blobs {
            table.insert(format!("/v2/kiln-t/x/blobs/{}", sha256(&blob)), blob);
        }
        let token_requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&token_requests);
        let basic = format!("Basic {}", base64(&format!("{USER}:{PASSWORD}")));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                serve(stream, port, &table, (&basic, refresh), &seen);
            }
        });
        TokenRegistry { port, token_requests }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn token_requests(&self) -> Vec<(String, BTreeMap<String, String>)> {
        self.token_requests.lock().expect("lock").clone()
    }
}

fn form(text: &str) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("utf-8")
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn serve(
    stream: TcpStream,
    port: u16,
    table: &BTreeMap<String, Vec<u8>>,
    (basic, refresh): (&str, bool),
    seen: &Mutex<Vec<(String, BTreeMap<String, String>)>>,
) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let authorization = headers.get("authorization").cloned().unwrap_or_default();

    let (status, extra, body): (&str, String, Vec<u8>) = if path == "/token" {
        let params =
            if method == "POST" { form(&String::from_utf8_lossy(&body)) } else { form(query) };
        seen.lock().expect("lock").push((method.clone(), params.clone()));
        let good_password = authorization == basic;
        let good_refresh = method == "POST"
            && params.get("grant_type").map(String::as_str) == Some("refresh_token")
            && params.get("refresh_token").map(String::as_str) == Some(REFRESH);
        if good_password || good_refresh {
            let mut answer = serde_json::json!({ "token": TOKEN, "expires_in": 300 });
            if refresh && params.get("offline_token").map(String::as_str) == Some("true") {
                answer["refresh_token"] = REFRESH.into();
            }
            ("200 OK", String::new(), answer.to_string().into_bytes())
        } else {
            let answer = br#"{"details":"incorrect username or password"}"#.to_vec();
            ("401 Unauthorized", String::new(), answer)
        }
    } else if authorization != format!("Bearer {TOKEN}") {
        let challenge = format!(
            "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"kiln-t\",scope=\"repository:kiln-t/x:pull\"\r\n"
        );
        let answer = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        ("401 Unauthorized", challenge, answer.to_vec())
    } else {
        match table.get(path) {
            Some(found) if path.contains("/manifests/") => (
                "200 OK",
                format!(
                    "Content-Type: application/vnd.docker.distribution.manifest.v2+json\r\nDocker-Content-Digest: {}\r\n",
                    sha256(found)
                ),
                found.clone(),
            ),
            Some(found) => ("200 OK", String::new(), found.clone()),
            None => ("404 Not Found", String::new(), br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec()),
        }
    };
    let mut stream = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

fn token_registry(daemon: &TestDaemon, refresh: bool) -> TokenRegistry {
    let (manifest, config, layer) = tiny_image(daemon.dir.path());
    TokenRegistry::start(manifest, vec![config, layer], refresh)
}

#[test]
fn bearer_tokens_are_asked_for_with_the_password_of_the_login() {
    let daemon = TestDaemon::start();
    let registry = token_registry(&daemon, false);
    let host = registry.host();
    let config = daemon.dir.path().join("docker-config");
    let reference = format!("{host}/kiln-t/x:1");

    let anonymous = kiln(&daemon, &config, &["pull", &reference], None, None);
    assert_eq!(anonymous.code, Some(1), "{anonymous:?}");
    assert!(
        anonymous.stderr.contains("unauthorized: incorrect username or password"),
        "{}",
        anonymous.stderr
    );

    let wrong = kiln(
        &daemon,
        &config,
        &["login", "-u", USER, "--password-stdin", &host],
        Some("nope"),
        None,
    );
    assert_eq!(wrong.code, Some(1), "{wrong:?}");
    assert_eq!(
        wrong.stderr.trim(),
        format!("Error response from daemon: Get \"http://{host}/v2/\": unauthorized: incorrect username or password")
    );
    assert!(!config.join("config.json").exists());

    let login = kiln(
        &daemon,
        &config,
        &["login", "-u", USER, "--password-stdin", &host],
        Some(PASSWORD),
        None,
    );
    assert_eq!(login.code, Some(0), "{login:?}");
    let entry = &read_config(&config)["auths"][&host];
    assert_eq!(entry["auth"], base64(&format!("{USER}:{PASSWORD}")));
    assert!(entry.get("identitytoken").is_none(), "{entry}");

    let pulled = kiln(&daemon, &config, &["pull", &reference], None, None);
    assert_eq!(pulled.code, Some(0), "{pulled:?}");
    assert_eq!(daemon.image_names(), std::slice::from_ref(&reference));
    let (method, params) = registry.token_requests().pop().expect("token asked for");
    assert_eq!(method, "GET");
    assert_eq!(params.get("service").map(String::as_str), Some("kiln-t"));
    assert_eq!(params.get("scope").map(String::as_str), Some("repository:kiln-t/x:pull"));
    assert_eq!(params.get("account").map(String::as_str), Some(USER));
}

#[test]
fn an_identity_token_from_login_is_stored_and_refreshed_by_post() {
    let daemon = TestDaemon::start();
    let registry = token_registry(&daemon, true);
    let host = registry.host();
    let config = daemon.dir.path().join("docker-config");

    let login = kiln(
        &daemon,
        &config,
        &["login", "-u", USER, "--password-stdin", &host],
        Some(PASSWORD),
        None,
    );
    assert_eq!(login.code, Some(0), "{login:?}");
    let entry = &read_config(&config)["auths"][&host];
    assert_eq!(entry["identitytoken"], REFRESH);
    assert_eq!(entry["auth"], base64(&format!("{USER}:")), "the password is not kept");

    let reference = format!("{host}/kiln-t/x:1");
    let pulled = kiln(&daemon, &config, &["pull", &reference], None, None);
    assert_eq!(pulled.code, Some(0), "{pulled:?}");
    let (method, params) = registry.token_requests().pop().expect("token asked for");
    assert_eq!(method, "POST");
    assert_eq!(params.get("grant_type").map(String::as_str), Some("refresh_token"));
    assert_eq!(params.get("refresh_token").map(String::as_str), Some(REFRESH));
    assert_eq!(params.get("scope").map(String::as_str), Some("repository:kiln-t/x:pull"));
    assert!(params.get("client_id").is_some_and(|c| !c.is_empty()), "{params:?}");
}

// ------------------------------------------------------------ credential helper

/// `docker-credential-kilntest` in a temp dir: keeps one secret in
/// `store/secret.json`, logs each call (`action server`) to `store/calls`.
fn credential_helper(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("helper-bin");
    let store = dir.join("helper-store");
    std::fs::create_dir_all(&bin).expect("mkdir");
    std::fs::create_dir_all(&store).expect("mkdir");
    let script = format!(
        r#"#!/bin/sh
store='{store}'
input=$(cat)
case "$1" in
  store) printf '%s' "$input" > "$store/secret.json"; echo "store" >> "$store/calls" ;;
  get) echo "get $input" >> "$store/calls"
       if [ -f "$store/secret.json" ]; then cat "$store/secret.json"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) echo "erase $input" >> "$store/calls"; rm -f "$store/secret.json" ;;
  *) exit 2 ;;
esac
"#,
        store = store.display()
    );
    let path = bin.join("docker-credential-kilntest");
    std::fs::write(&path, script).expect("write helper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (bin, store)
}

#[test]
fn a_credential_helper_stores_gets_and_erases_the_secret() {
    let registry = Registry::with_htpasswd(USER, PASSWORD);
    let source = TestDaemon::start();
    let reference = push_busybox_as(&source, &registry, Some(&format!("{USER}:{PASSWORD}")));
    let host = registry.host();

    let daemon = TestDaemon::start();
    let (bin, store) = credential_helper(daemon.dir.path());
    let config = daemon.dir.path().join("docker-config");
    std::fs::create_dir_all(&config).expect("mkdir");
    std::fs::write(config.join("config.json"), r#"{"credsStore": "kilntest", "psFormat": "x"}"#)
        .expect("write config");

    let login = kiln(
        &daemon,
        &config,
        &["login", "-u", USER, "--password-stdin", &host],
        Some(PASSWORD),
        Some(&bin),
    );
    assert_eq!(login.code, Some(0), "{login:?}");
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("secret.json")).expect("secret"))
            .expect("json");
    assert_eq!(kept, serde_json::json!({"ServerURL": host, "Username": USER, "Secret": PASSWORD}));
    let written = read_config(&config);
    assert_eq!(written["auths"][&host], serde_json::json!({}), "{written}");
    assert_eq!(written["psFormat"], "x");
    assert!(!std::fs::read_to_string(config.join("config.json")).expect("read").contains(PASSWORD));

    let pulled = kiln(&daemon, &config, &["pull", &reference], None, Some(&bin));
    assert_eq!(pulled.code, Some(0), "{pulled:?}");
    let calls = std::fs::read_to_string(store.join("calls")).expect("calls");
    assert!(calls.lines().any(|l| l == format!("get {host}")), "{calls}");

    let logout = kiln(&daemon, &config, &["logout", &host], None, Some(&bin));
    assert_eq!(logout.code, Some(0), "{logout:?}");
    assert!(!store.join("secret.json").exists(), "the helper erased it");
    let calls = std::fs::read_to_string(store.join("calls")).expect("calls");
    assert!(calls.lines().any(|l| l == format!("erase {host}")), "{calls}");
    assert!(read_config(&config)["auths"].get(&host).is_none());
}

// ------------------------------------------------------------------- docker CLI

#[test]
fn docker_login_and_pull_work_against_kiln_daemon() {
    let registry = Registry::with_htpasswd(USER, PASSWORD);
    let source = TestDaemon::start();
    let reference = push_busybox_as(&source, &registry, Some(&format!("{USER}:{PASSWORD}")));
    let host = registry.host();

    let daemon = TestDaemon::start();
    let config = daemon.dir.path().join("docker-config");
    let docker = |args: &[&str], stdin: &str| {
        let mut child = Command::new(crate::common::docker_cli())
            .args(args)
            .env("DOCKER_HOST", daemon.host())
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", &config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn docker");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin");
        let output = child.wait_with_output().expect("docker output");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    };

    let wrong = docker(&["login", "-u", USER, "--password-stdin", &host], "nope");
    assert_eq!(wrong.code, Some(1), "{wrong:?}");
    assert!(wrong.stderr.contains("unauthorized: authentication required"), "{}", wrong.stderr);

    let login = docker(&["login", "-u", USER, "--password-stdin", &host], PASSWORD);
    assert_eq!(login.code, Some(0), "{login:?}");
    assert!(login.stdout.contains("Login Succeeded"), "{}", login.stdout);
    assert_eq!(read_config(&config)["auths"][&host]["auth"], base64(&format!("{USER}:{PASSWORD}")));

    let pulled = docker(&["pull", &reference], "");
    assert_eq!(pulled.code, Some(0), "{pulled:?}");
    assert!(pulled.stdout.contains("Status: Downloaded newer image"), "{}", pulled.stdout);
    assert_eq!(daemon.image_names(), [reference]);
}
