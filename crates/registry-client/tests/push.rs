//! Pushes against a small in-process registry that speaks the upload
//! protocol (sessions, `PATCH` with `Content-Range`, `PUT ?digest=`,
//! mounts, manifests) behind the bearer-token flow, with push scopes
//! asked for separately from pull scopes as the distribution registry
//! does; and that can be told to fail a request.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use kiln_registry_client::{
    BlobSource, BlobUpload, Endpoint, Mount, RegistryError, Repository, RetryPolicy, Scheme,
};
use kiln_types::Digest;
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;

fn sha256(bytes: &[u8]) -> Digest {
    let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}").parse().expect("digest")
}

/// What the fake registry holds and saw.
#[derive(Default)]
struct State {
    /// Blobs by repository, then digest.
    blobs: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    manifests: BTreeMap<String, Vec<u8>>,
    /// Upload sessions: bytes received so far.
    uploads: BTreeMap<String, Vec<u8>>,
    next_upload: usize,
    /// `METHOD path` of each registry request (tokens left out).
    requests: Vec<String>,
    /// Scopes tokens were asked for.
    token_scopes: Vec<String>,
    /// `METHOD path-prefix` → answers of 500 still to give.
    failures: BTreeMap<String, usize>,
    /// A wrong `Docker-Content-Digest` for manifests.
    lie_about_manifests: bool,
}

struct Fake {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Fake {
    async fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(addr, &state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Fake { addr, state }
    }

    fn repository(&self, name: &str) -> Repository {
        let endpoint = Endpoint {
            registry: self.addr.to_string(),
            scheme: Scheme::Http,
            authority: self.addr.to_string(),
        };
        let retry = RetryPolicy { attempts: 3, first_delay: std::time::Duration::from_millis(10) };
        Repository::new(endpoint, name, retry).expect("repository")
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("state")
    }

    fn count(&self, prefix: &str) -> usize {
        self.state().requests.iter().filter(|r| r.starts_with(prefix)).count()
    }
}

fn reply(status: StatusCode, headers: &[(&str, String)], body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response.body(Full::new(Bytes::from(body))).expect("response")
}

async fn answer(
    addr: SocketAddr,
    state: &Mutex<State>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%2C", ",")))
        .collect();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let content_range =
        req.headers().get("content-range").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();

    if path == "/token" {
        let scope = query.get("scope").cloned().unwrap_or_default();
        state.lock().expect("state").token_scopes.push(scope.clone());
        let token = format!("tok {scope}").replace(' ', "_");
        return reply(StatusCode::OK, &[], format!(r#"{{"token":"{token}"}}"#).into_bytes());
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return reply(StatusCode::NOT_FOUND, &[], Vec::new());
    };
    let mut st = state.lock().expect("state");
    st.requests.push(format!("{method} {path}"));
    let key = st.failures.keys().find(|k| format!("{method} {path}").starts_with(*k)).cloned();
    if let Some(key) = key {
        if let Some(left) = st.failures.get_mut(&key).filter(|left| **left > 0) {
            *left -= 1;
            return reply(StatusCode::INTERNAL_SERVER_ERROR, &[], Vec::new());
        }
    }

    // The repository is everything before /blobs/ or /manifests/.
    let (repo, tail) = match rest.find("/blobs/").or_else(|| rest.find("/manifests/")) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => return reply(StatusCode::NOT_FOUND, &[], Vec::new()),
    };
    let writes = !matches!(method, Method::GET | Method::HEAD);
    let scope = format!("repository:{repo}:{}", if writes { "pull,push" } else { "pull" });
    let granted = auth.strip_prefix("Bearer tok_").map(|s| s.replace('_', " "));
    let allowed = granted
        .as_deref()
        .is_some_and(|g| g == scope || (!writes && g == format!("repository:{repo}:pull,push")));
    if !allowed {
        let challenge =
            format!(r#"Bearer realm="http://{addr}/token",service="fake",scope="{scope}""#);
        return reply(StatusCode::UNAUTHORIZED, &[("www-authenticate", challenge)], Vec::new());
    }
    let repo = repo.to_owned();
    let session = |st: &mut State| {
        st.next_upload += 1;
        let id = format!("u{}", st.next_upload);
        st.uploads.insert(id.clone(), Vec::new());
        // A relative location with state in its query, as the distribution registry sends.
        format!("/v2/{repo}/blobs/uploads/{id}?_state=s{id}")
    };
    match (method, tail) {
        (Method::HEAD, t) if t.starts_with("/blobs/sha256:") => {
            let digest = &t["/blobs/".len()..];
            match st.blobs.get(&repo).and_then(|b| b.get(digest)) {
                Some(blob) => {
                    reply(StatusCode::OK, &[("content-length", blob.len().to_string())], Vec::new())
                }
                None => reply(StatusCode::NOT_FOUND, &[], Vec::new()),
            }
        }
        (Method::POST, "/blobs/uploads/") => {
            if let (Some(digest), Some(from)) = (query.get("mount"), query.get("from")) {
                let found = st.blobs.get(from).and_then(|b| b.get(digest)).cloned();
                if let Some(blob) = found {
                    st.blobs.entry(repo.clone()).or_default().insert(digest.clone(), blob);
                    return reply(StatusCode::CREATED, &[], Vec::new());
                }
            }
            let location = session(&mut st);
            reply(StatusCode::ACCEPTED, &[("location", location)], Vec::new())
        }
        (Method::PATCH, t) if t.starts_with("/blobs/uploads/") => {
            let id = t["/blobs/uploads/".len()..].to_owned();
            let Some(upload) = st.uploads.get_mut(&id) else {
                return reply(StatusCode::NOT_FOUND, &[], Vec::new());
            };
            let start = content_range
                .as_deref()
                .and_then(|r| r.split('-').next())
                .and_then(|s| s.parse::<usize>().ok());
            if start != Some(upload.len()) {
                return reply(StatusCode::RANGE_NOT_SATISFIABLE, &[], Vec::new());
            }
            upload.extend_from_slice(&body);
            let range = format!("0-{}", upload.len() - 1);
            let location = format!("/v2/{repo}/blobs/uploads/{id}?_state=p{}", upload.len());
            reply(StatusCode::ACCEPTED, &[("location", location), ("range", range)], Vec::new())
        }
        (Method::PUT, t) if t.starts_with("/blobs/uploads/") => {
            let id = t["/blobs/uploads/".len()..].to_owned();
            let Some(mut bytes) = st.uploads.remove(&id) else {
                return reply(StatusCode::NOT_FOUND, &[], Vec::new());
            };
            if !query.contains_key("_state") {
                return reply(StatusCode::BAD_REQUEST, &[], b"state lost".to_vec());
            }
            bytes.extend_from_slice(&body);
            let digest = query.get("digest").cloned().unwrap_or_default();
            if sha256(&bytes).to_string() != digest {
                let body =
                    br#"{"errors":[{"code":"DIGEST_INVALID","message":"digest did not match"}]}"#;
                return reply(StatusCode::BAD_REQUEST, &[], body.to_vec());
            }
            st.blobs.entry(repo.clone()).or_default().insert(digest.clone(), bytes);
            reply(StatusCode::CREATED, &[("docker-content-digest", digest)], Vec::new())
        }
        (Method::PUT, t) if t.starts_with("/manifests/") => {
            let reference = &t["/manifests/".len()..];
            let digest = if st.lie_about_manifests {
                sha256(b"something else").to_string()
            } else {
                sha256(&body).to_string()
            };
            st.manifests.insert(format!("{repo}:{reference}"), body);
            reply(StatusCode::CREATED, &[("docker-content-digest", digest)], Vec::new())
        }
        _ => reply(StatusCode::NOT_FOUND, &[], Vec::new()),
    }
}

/// Bytes in memory as a blob source, counting how often it is opened.
struct Memory {
    bytes: Vec<u8>,
    opened: Mutex<Vec<u64>>,
}

impl Memory {
    fn new(bytes: Vec<u8>) -> Arc<Memory> {
        Arc::new(Memory { bytes, opened: Mutex::new(Vec::new()) })
    }
}

impl BlobSource for Memory {
    fn open(&self, offset: u64) -> std::io::Result<Box<dyn Read + Send>> {
        self.opened.lock().expect("opened").push(offset);
        let start = usize::try_from(offset).expect("offset");
        Ok(Box::new(std::io::Cursor::new(self.bytes[start..].to_vec())))
    }
}

fn upload(bytes: &Arc<Memory>, chunk_size: u64) -> BlobUpload {
    BlobUpload {
        digest: sha256(&bytes.bytes),
        size: bytes.bytes.len() as u64,
        source: Arc::clone(bytes) as Arc<dyn BlobSource>,
        chunk_size,
        session: None,
        progress: None,
    }
}

fn blob(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn a_blob_goes_up_in_one_put_after_the_token_is_widened_to_push() {
    let fake = Fake::start().await;
    let repo = fake.repository("kiln-t/app");
    let bytes = Memory::new(blob(300_000));
    let digest = sha256(&bytes.bytes);

    assert_eq!(repo.blob_exists(&digest).await.expect("head"), None);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&sent);
    let mut job = upload(&bytes, 64 * 1024 * 1024);
    job.progress = Some(Arc::new(move |n| seen.lock().expect("sent").push(n)));
    repo.upload_blob(job).await.expect("upload");

    assert_eq!(fake.state().blobs["kiln-t/app"][&digest.to_string()], bytes.bytes);
    assert_eq!(repo.blob_exists(&digest).await.expect("head"), Some(300_000));
    assert_eq!(
        fake.state().token_scopes,
        ["repository:kiln-t/app:pull", "repository:kiln-t/app:pull,push"],
        "the pull token is replaced by one that may push"
    );
    assert_eq!(fake.count("POST "), 2, "a 401, then the session");
    assert_eq!(fake.count("PATCH "), 0);
    assert_eq!(sent.lock().expect("sent").last(), Some(&300_000));
}

#[tokio::test]
async fn a_large_blob_goes_up_in_chunks_with_content_ranges() {
    let fake = Fake::start().await;
    let repo = fake.repository("kiln-t/app");
    let bytes = Memory::new(blob(2_500));
    repo.upload_blob(upload(&bytes, 1_000)).await.expect("upload");

    let digest = sha256(&bytes.bytes).to_string();
    assert_eq!(fake.state().blobs["kiln-t/app"][&digest], bytes.bytes);
    assert_eq!(fake.count("PATCH "), 3);
    assert_eq!(fake.count("PUT "), 1);
    assert_eq!(*bytes.opened.lock().expect("opened"), [0, 1_000, 2_000], "each chunk read once");
}

#[tokio::test]
async fn a_blob_of_another_repository_is_mounted_and_a_refused_mount_uploads_through_its_session() {
    let fake = Fake::start().await;
    let bytes = Memory::new(blob(5_000));
    let digest = sha256(&bytes.bytes);
    fake.repository("kiln-t/a").upload_blob(upload(&bytes, 1 << 20)).await.expect("upload");

    let b = fake.repository("kiln-t/b");
    assert_eq!(b.mount_blob(&digest, "kiln-t/a").await.expect("mount"), Mount::Mounted);
    assert_eq!(b.blob_exists(&digest).await.expect("head"), Some(5_000));

    let c = fake.repository("kiln-t/c");
    let Mount::Upload(session) = c.mount_blob(&digest, "kiln-t/none").await.expect("mount") else {
        panic!("a blob the other repository lacks cannot be mounted");
    };
    let posts = fake.count("POST /v2/kiln-t/c/");
    let mut job = upload(&bytes, 1 << 20);
    job.session = Some(session);
    c.upload_blob(job).await.expect("upload");
    assert_eq!(fake.count("POST /v2/kiln-t/c/"), posts, "the mount's session is used");
    assert_eq!(c.blob_exists(&digest).await.expect("head"), Some(5_000));
}

#[tokio::test]
async fn a_failed_put_starts_the_upload_over_with_a_new_session() {
    let fake = Fake::start().await;
    fake.state().failures.insert("PUT /v2/kiln-t/app/blobs/uploads/".into(), 1);
    let repo = fake.repository("kiln-t/app");
    let bytes = Memory::new(blob(10_000));
    repo.upload_blob(upload(&bytes, 1 << 20)).await.expect("upload after a retry");
    assert_eq!(fake.state().blobs["kiln-t/app"][&sha256(&bytes.bytes).to_string()], bytes.bytes);
    assert_eq!(fake.count("PUT "), 2);
    assert_eq!(fake.state().next_upload, 2, "a second session");

    fake.state().failures.insert("PUT /v2/kiln-t/app/blobs/uploads/".into(), 10);
    let other = Memory::new(blob(10));
    let err = repo.upload_blob(upload(&other, 1 << 20)).await.expect_err("always 500");
    assert!(
        matches!(&err, RegistryError::Status { status, .. } if status.as_u16() == 500),
        "{err}"
    );
}

#[tokio::test]
async fn manifests_are_put_by_tag_and_their_digest_is_checked() {
    let fake = Fake::start().await;
    let repo = fake.repository("kiln-t/app");
    let manifest = Bytes::from_static(br#"{"schemaVersion":2}"#);
    let media = "application/vnd.oci.image.manifest.v1+json";
    let digest = repo.put_manifest("1", media, manifest.clone()).await.expect("put");
    assert_eq!(digest, sha256(&manifest));
    assert_eq!(fake.state().manifests["kiln-t/app:1"], manifest.to_vec());

    fake.state().lie_about_manifests = true;
    let err = repo.put_manifest("2", media, manifest).await.expect_err("a wrong digest");
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
}

#[tokio::test]
async fn a_registry_that_is_down_is_a_connect_error() {
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().unwrap().port();
    let endpoint = Endpoint::for_registry(&format!("127.0.0.1:{port}"));
    let retry = RetryPolicy { attempts: 2, first_delay: std::time::Duration::from_millis(1) };
    let repo = Repository::new(endpoint, "kiln-t/app", retry).expect("repository");
    let err = repo.blob_exists(&sha256(b"x")).await.expect_err("nothing listens");
    assert!(matches!(err, RegistryError::Connect { .. }), "{err}");
}
