//! HTTPS against local servers: a rustls server with the test CA's leaf
//! certificate (tests/data, made by tests/data/make.sh), trusted by the
//! client through an `SSL_CERT_FILE` value given to [`TrustPaths`], not
//! the environment, so that tests running in parallel do not race.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use kiln_registry_client::{
    download_with, fetch_with, BlobSink, Endpoint, RegistryError, Repository, RetryPolicy, Scheme,
    Trust, TrustPaths,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;

type Handler = Arc<dyn Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync>;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// A client trust store holding only `ca` (as `SSL_CERT_FILE=ca` would).
fn trusting(ca: &str) -> Trust {
    let paths = TrustPaths::from_env_values(Some(data(ca).into_os_string()), None);
    Trust::from_paths(&paths).expect("load the test CA")
}

fn server_tls() -> Arc<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(data("leaf.pem"))
        .expect("leaf.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("leaf certificate");
    let key = PrivateKeyDer::from_pem_file(data("leaf.key")).expect("leaf.key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
    Arc::new(config)
}

async fn bind(ip: &str) -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind a test port");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

/// Serve `handler` on `listener`, over TLS when `tls` is given, until the
/// test's runtime ends.
fn serve(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let handler = handler.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let response = handler(&req);
                    async move { Ok::<_, Infallible>(response) }
                });
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    Some(config) => {
                        // A refused handshake is what some tests want.
                        let Ok(stream) =
                            tokio_rustls::TlsAcceptor::from(config).accept(stream).await
                        else {
                            return;
                        };
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                    None => {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            });
        }
    });
}

fn respond(
    status: StatusCode,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(Full::new(body.into())).expect("a valid test response")
}

/// One HTTPS server answering `/files/hello.txt` and 404 for the rest.
async fn hello_server() -> SocketAddr {
    let (listener, addr) = bind("127.0.0.1").await;
    serve(
        listener,
        Some(server_tls()),
        Arc::new(|req| match req.uri().path() {
            "/files/hello.txt" => respond(
                StatusCode::OK,
                &[("last-modified", "Tue, 03 Mar 2026 10:00:00 GMT")],
                "hello over tls\n",
            ),
            _ => respond(StatusCode::NOT_FOUND, &[], "no such file\n"),
        }),
    );
    addr
}

#[tokio::test]
async fn a_get_over_tls_gives_the_body_and_its_headers() {
    let addr = hello_server().await;
    let url = format!("https://127.0.0.1:{}/files/hello.txt", addr.port());
    let fetched = fetch_with(&url, &trusting("ca.pem")).await.expect("fetch over TLS");
    assert_eq!(fetched.url, url);
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.content_length, Some(15));
    assert_eq!(fetched.last_modified.as_deref(), Some("Tue, 03 Mar 2026 10:00:00 GMT"));
    assert_eq!(fetched.file_name.as_deref(), Some("hello.txt"));
    let mut body = String::new();
    fetched.into_reader().read_to_string(&mut body).await.expect("read the body");
    assert_eq!(body, "hello over tls\n");
}

#[tokio::test]
async fn the_name_localhost_in_the_certificate_is_checked_too() {
    let addr = hello_server().await;
    let url = format!("https://localhost:{}/files/hello.txt", addr.port());
    let fetched = fetch_with(&url, &trusting("ca.pem")).await.expect("fetch by name");
    assert_eq!(fetched.status, 200);
}

#[tokio::test]
async fn redirects_from_https_to_http_and_back_are_followed() {
    let (tls_listener, tls_addr) = bind("127.0.0.1").await;
    let (plain_listener, plain_addr) = bind("127.0.0.1").await;
    let back = format!("https://127.0.0.1:{}/final/app.tar", tls_addr.port());
    let hop = format!("http://127.0.0.1:{}/hop", plain_addr.port());
    serve(
        tls_listener,
        Some(server_tls()),
        Arc::new(move |req| match req.uri().path() {
            "/start" => respond(StatusCode::FOUND, &[("location", hop.as_str())], ""),
            "/final/app.tar" => respond(StatusCode::OK, &[], "arrived"),
            _ => respond(StatusCode::NOT_FOUND, &[], ""),
        }),
    );
    serve(
        plain_listener,
        None,
        Arc::new(move |req| match req.uri().path() {
            "/hop" => respond(StatusCode::TEMPORARY_REDIRECT, &[("location", back.as_str())], ""),
            _ => respond(StatusCode::NOT_FOUND, &[], ""),
        }),
    );
    let start = format!("https://127.0.0.1:{}/start", tls_addr.port());
    let fetched = fetch_with(&start, &trusting("ca.pem")).await.expect("follow the redirects");
    assert_eq!(fetched.url, format!("https://127.0.0.1:{}/final/app.tar", tls_addr.port()));
    let mut body = String::new();
    fetched.into_reader().read_to_string(&mut body).await.expect("read the body");
    assert_eq!(body, "arrived");
}

#[tokio::test]
async fn an_untrusted_certificate_is_one_clear_line_naming_the_host() {
    let addr = hello_server().await;
    let url = format!("https://127.0.0.1:{}/files/hello.txt", addr.port());
    let err = fetch_with(&url, &trusting("other-ca.pem")).await.expect_err("an unknown CA");
    assert!(matches!(err, RegistryError::Certificate { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "cannot verify the TLS certificate of 127.0.0.1: x509: certificate signed by unknown authority"
    );
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused() {
    // 127.0.0.2 is loopback too, but not in the leaf's names.
    let (listener, addr) = bind("127.0.0.2").await;
    serve(listener, Some(server_tls()), Arc::new(|_| respond(StatusCode::OK, &[], "no")));
    let url = format!("https://127.0.0.2:{}/x", addr.port());
    let err = fetch_with(&url, &trusting("ca.pem")).await.expect_err("wrong name");
    assert_eq!(
        err.to_string(),
        "cannot verify the TLS certificate of 127.0.0.2: x509: certificate is not valid for 127.0.0.2"
    );
}

#[tokio::test]
async fn a_plain_http_server_behind_an_https_url_fails_the_handshake_clearly() {
    let (listener, addr) = bind("127.0.0.1").await;
    serve(listener, None, Arc::new(|_| respond(StatusCode::OK, &[], "plain")));
    let url = format!("https://127.0.0.1:{}/x", addr.port());
    let err = fetch_with(&url, &trusting("ca.pem")).await.expect_err("not TLS");
    assert!(matches!(err, RegistryError::Tls { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("cannot complete the TLS handshake with 127.0.0.1:{}", addr.port())
    );
}

#[tokio::test]
async fn download_streams_five_mib_into_the_file_with_its_sha256() {
    let body: Bytes =
        (0..5 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let expected = format!("sha256:{:x}", Sha256::digest(&body));
    let (listener, addr) = bind("127.0.0.1").await;
    let served = body.clone();
    serve(
        listener,
        Some(server_tls()),
        Arc::new(move |_| {
            respond(
                StatusCode::OK,
                &[("content-disposition", r#"attachment; filename="weights.bin""#)],
                served.clone(),
            )
        }),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let dest = dir.path().join("download");
    // The URL's path ends in "/": the name comes from Content-Disposition.
    let url = format!("https://127.0.0.1:{}/get/", addr.port());
    let done = download_with(&url, &dest, &trusting("ca.pem")).await.expect("download");
    assert_eq!(done.bytes, body.len() as u64);
    assert_eq!(done.digest.to_string(), expected);
    assert_eq!(done.file_name.as_deref(), Some("weights.bin"));
    let written = std::fs::read(&dest).expect("read the download");
    assert!(written == body, "the file holds other bytes than were served");
}

#[tokio::test]
async fn a_404_is_dockers_failed_to_get_message_and_leaves_no_file() {
    let addr = hello_server().await;
    let url = format!("https://127.0.0.1:{}/missing.txt", addr.port());
    let dir = tempfile::tempdir().expect("temp dir");
    let dest = dir.path().join("missing.txt");
    let err = download_with(&url, &dest, &trusting("ca.pem")).await.expect_err("404");
    assert_eq!(err.to_string(), format!("failed to GET {url} with status 404 Not Found"));
    assert!(!dest.exists(), "a failed download left {}", dest.display());
}

#[tokio::test]
async fn urls_that_are_not_http_are_refused() {
    for url in ["ftp://127.0.0.1/x", "file:///etc/passwd", "not a url", "/relative/path"] {
        let err = fetch_with(url, &Trust::system()).await.expect_err(url);
        assert!(matches!(err, RegistryError::InvalidUrl { .. }), "{url}: {err:?}");
    }
}

struct Collect(Vec<u8>);

impl BlobSink for Collect {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
    fn restart(&mut self) -> std::io::Result<()> {
        self.0.clear();
        Ok(())
    }
}

#[tokio::test]
async fn a_tls_registry_serves_manifest_and_blob_and_its_token_stays_home() {
    let (registry_listener, registry_addr) = bind("127.0.0.1").await;
    let (cdn_listener, cdn_addr) = bind("127.0.0.1").await;
    let manifest = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;
    let layer = b"layer bytes".to_vec();
    let layer_digest = format!("sha256:{:x}", Sha256::digest(&layer));
    let realm = format!("https://127.0.0.1:{}/token", registry_addr.port());
    let cdn = format!("http://127.0.0.1:{}/blob", cdn_addr.port());
    let blob_path = format!("/v2/kiln-t/app/blobs/{layer_digest}");
    serve(
        registry_listener,
        Some(server_tls()),
        Arc::new(move |req| {
            let authorized = req
                .headers()
                .get("authorization")
                .is_some_and(|v| v.as_bytes() == b"Bearer kiln-t-token");
            let challenge = format!(r#"Bearer realm="{realm}",service="kiln-t""#);
            match req.uri().path() {
                "/token" => respond(StatusCode::OK, &[], r#"{"token":"kiln-t-token"}"#),
                _ if !authorized => respond(
                    StatusCode::UNAUTHORIZED,
                    &[("www-authenticate", challenge.as_str())],
                    "",
                ),
                "/v2/kiln-t/app/manifests/1" => respond(
                    StatusCode::OK,
                    &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
                    manifest,
                ),
                path if path == blob_path => {
                    respond(StatusCode::TEMPORARY_REDIRECT, &[("location", cdn.as_str())], "")
                }
                _ => respond(StatusCode::NOT_FOUND, &[], ""),
            }
        }),
    );
    let cdn_saw_authorization = Arc::new(Mutex::new(None));
    let seen = cdn_saw_authorization.clone();
    let served = layer.clone();
    serve(
        cdn_listener,
        None,
        Arc::new(move |req| {
            *seen.lock().expect("lock") = Some(req.headers().contains_key("authorization"));
            respond(StatusCode::OK, &[], served.clone())
        }),
    );

    let host = format!("127.0.0.1:{}", registry_addr.port());
    let endpoint = Endpoint { registry: host.clone(), scheme: Scheme::Https, authority: host };
    let repository =
        Repository::with_trust(endpoint, "kiln-t/app", RetryPolicy::default(), trusting("ca.pem"))
            .expect("repository");
    let got = repository.manifest("1").await.expect("manifest over TLS");
    assert_eq!(got.bytes.as_ref(), manifest.as_bytes());
    let mut sink = Collect(Vec::new());
    let digest = layer_digest.parse().expect("digest");
    let size = repository.blob(&digest, Some(layer.len() as u64), &mut sink).await.expect("blob");
    assert_eq!(size, layer.len() as u64);
    assert_eq!(sink.0, layer);
    assert_eq!(
        *cdn_saw_authorization.lock().expect("lock"),
        Some(false),
        "the registry's token was sent to the CDN"
    );
}

#[tokio::test]
async fn a_body_cut_short_fails_the_download_and_removes_the_partial_file() {
    use tokio::io::AsyncWriteExt as _;
    let (listener, addr) = bind("127.0.0.1").await;
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else { return };
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request).await;
        let _ =
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly ten b").await;
        // Dropping the stream closes the connection 990 bytes early.
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let dest = dir.path().join("partial");
    let url = format!("http://127.0.0.1:{}/file", addr.port());
    let err = download_with(&url, &dest, &Trust::system()).await.expect_err("truncated body");
    assert!(matches!(err, RegistryError::Http { .. }), "{err:?}");
    assert!(!dest.exists(), "the partial download was left at {}", dest.display());
}

#[tokio::test]
async fn the_system_store_does_not_trust_the_test_ca() {
    let addr = hello_server().await;
    let url = format!("https://127.0.0.1:{}/files/hello.txt", addr.port());
    let err = fetch_with(&url, &Trust::system()).await.expect_err("the test CA is not installed");
    assert!(
        err.to_string().starts_with(
            "cannot verify the TLS certificate of 127.0.0.1: x509: certificate signed by unknown authority"
        ),
        "{err}"
    );
}
