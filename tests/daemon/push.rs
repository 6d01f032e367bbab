//! `kiln push` (and `docker push` through `kiln daemon`) to Debian's
//! `docker-registry` on a loopback port, read back by a fresh daemon's
//! pull and by skopeo; and to a tiny fake registry that fails one blob's
//! upload, for what a real one does not do.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::common::{Run, TestDaemon};
use crate::registry::{free_port, Registry};

/// `skopeo inspect` of `reference` (plain HTTP), as JSON.
fn skopeo_inspect(reference: &str) -> serde_json::Value {
    let out = Run::ok(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{reference}")),
    );
    serde_json::from_str(&out).expect("skopeo inspect JSON")
}

/// The digest of a push's `TAG: digest: sha256:… size: N` line.
fn pushed_digest(output: &str) -> String {
    let line = output.lines().find(|l| l.contains(": digest: sha256:")).unwrap_or_else(|| {
        panic!("no digest line in {output}");
    });
    line.split_whitespace().nth(2).expect("digest").to_owned()
}

/// `kiln image inspect --format {{.Id}}`.
fn image_id(daemon: &TestDaemon, reference: &str) -> String {
    daemon.kiln_ok(&["image", "inspect", "--format", "{{.Id}}", reference]).trim().to_owned()
}

/// Lines of `output` that name a layer with `status` (`abc123: Pushed`).
fn layers_with(output: &str, status: &str) -> usize {
    output.lines().filter(|l| l.ends_with(&format!(": {status}"))).count()
}

#[test]
fn a_pushed_image_is_what_skopeo_sees_and_a_fresh_daemon_pulls() {
    let registry = Registry::start();
    let daemon = TestDaemon::start();
    let reference = format!("{}/kiln-t/bb:1", registry.host());
    let id = daemon.import_busybox(&reference);

    let first = daemon.kiln_run(&["push", &reference]);
    assert_eq!(first.code, Some(0), "{first:?}");
    let lines: Vec<&str> = first.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("The push refers to repository [{}/kiln-t/bb]", registry.host()),
        "{}",
        first.stdout
    );
    assert_eq!(layers_with(&first.stdout, "Preparing"), 1, "{}", first.stdout);
    assert_eq!(layers_with(&first.stdout, "Pushed"), 1, "{}", first.stdout);
    let digest = pushed_digest(&first.stdout);
    assert!(lines[lines.len() - 1].starts_with(&format!("1: digest: {digest} size: ")));

    let seen = skopeo_inspect(&reference);
    assert_eq!(seen["Digest"], digest, "skopeo sees the digest push printed");
    assert_eq!(seen["Layers"].as_array().map(Vec::len), Some(1));
    // docker-compat: a pushed image gets its name@digest.
    let inspect: serde_json::Value =
        serde_json::from_str(&daemon.kiln_ok(&["image", "inspect", &reference])).expect("json");
    let by_digest = format!("{}/kiln-t/bb@{digest}", registry.host());
    assert_eq!(inspect[0]["RepoDigests"], serde_json::json!([by_digest]));

    // Again: every layer is there already, nothing is sent, same digest.
    let again = daemon.kiln_ok(&["push", &reference]);
    assert_eq!(layers_with(&again, "Layer already exists"), 1, "{again}");
    assert_eq!(layers_with(&again, "Pushed"), 0, "{again}");
    assert_eq!(pushed_digest(&again), digest);

    // -q prints the reference only; a bare name pushes `latest`.
    daemon.kiln_ok(&["tag", &reference, &format!("{}/kiln-t/bb", registry.host())]);
    let quiet = daemon.kiln_ok(&["push", "-q", &format!("{}/kiln-t/bb", registry.host())]);
    assert_eq!(quiet, format!("{}/kiln-t/bb:latest\n", registry.host()));
    assert_eq!(skopeo_inspect(&format!("{}/kiln-t/bb:latest", registry.host()))["Digest"], digest);

    let fresh = TestDaemon::start();
    let pulled = fresh.kiln_ok(&["pull", &reference]);
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
    assert_eq!(image_id(&fresh, &reference), id, "the same image comes back");
}

#[test]
fn a_layer_another_repository_has_is_mounted_not_sent() {
    let registry = Registry::start();
    let daemon = TestDaemon::start();
    let first = format!("{}/kiln-t/bb:1", registry.host());
    daemon.import_busybox(&first);
    daemon.kiln_ok(&["push", &first]);

    let second = format!("{}/kiln-t/other:1", registry.host());
    daemon.kiln_ok(&["tag", &first, &second]);
    let out = daemon.kiln_ok(&["push", &second]);
    assert_eq!(layers_with(&out, "Mounted from kiln-t/bb"), 1, "{out}");
    assert_eq!(layers_with(&out, "Pushed"), 0, "{out}");
    assert_eq!(skopeo_inspect(&second)["Digest"], skopeo_inspect(&first)["Digest"]);
}

#[test]
fn large_layers_go_up_in_chunks_and_come_back_whole() {
    let registry = Registry::start();
    let dir = kiln_testing::ScratchDir::new().expect("scratch dir");
    let mut daemon = TestDaemon { dir, child: None };
    let mut command = daemon.command();
    // Busybox's layer is about a MiB: a dozen chunks or so.
    command.env("KILN_PUSH_CHUNK_SIZE", "100000");
    daemon.child = Some(command.spawn().expect("spawn kiln daemon"));
    daemon.wait_until_serving();
    let reference = format!("{}/kiln-t/chunked:1", registry.host());
    let id = daemon.import_busybox(&reference);
    let out = daemon.kiln_ok(&["push", &reference]);
    assert_eq!(layers_with(&out, "Pushed"), 1, "{out}");

    let fresh = TestDaemon::start();
    fresh.kiln_ok(&["pull", &reference]);
    assert_eq!(image_id(&fresh, &reference), id);
}

#[test]
fn compression_recompresses_layers_and_keeps_the_image_id() {
    let registry = Registry::start();
    let daemon = TestDaemon::start();
    let id = daemon.import_busybox("kiln-t/src:1");
    for (compression, media_type) in [
        ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
        ("gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
    ] {
        let reference = format!("{}/kiln-t/{compression}:1", registry.host());
        daemon.kiln_ok(&["tag", "kiln-t/src:1", &reference]);
        let out = daemon.kiln_ok(&["push", "--compression", compression, &reference]);
        assert_eq!(layers_with(&out, "Pushed"), 1, "{out}");
        let raw = Run::ok(
            Command::new("skopeo")
                .args(["inspect", "--raw", "--tls-verify=false"])
                .arg(format!("docker://{reference}")),
        );
        let manifest: serde_json::Value = serde_json::from_str(&raw).expect("manifest");
        assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(manifest["layers"][0]["mediaType"], media_type, "{raw}");
        assert_eq!(skopeo_inspect(&reference)["Digest"], pushed_digest(&out));
        let ingest = std::fs::read_dir(daemon.root().join("content/ingest")).expect("ingest dir");
        assert_eq!(ingest.count(), 0, "the recompressed layer's temp file is gone");

        let fresh = TestDaemon::start();
        fresh.kiln_ok(&["pull", &reference]);
        assert_eq!(image_id(&fresh, &reference), id, "the same config, so the same image");
    }
    let bad = daemon.kiln_run(&["push", "--compression", "lz4", "kiln-t/src:1"]);
    assert_eq!(bad.code, Some(2), "clap refuses it: {bad:?}");
}

#[test]
fn an_image_of_twenty_layers_is_pushed_and_pulled_back() {
    kiln_testing::require_privileged!();
    let registry = Registry::start();
    let daemon = TestDaemon::start();
    let context = daemon.dir.path().join("ctx");
    std::fs::create_dir(&context).expect("mkdir");
    let mut dockerfile = String::from("FROM scratch\n");
    for n in 1..=20 {
        std::fs::write(context.join(format!("f{n}")), format!("layer {n}\n")).expect("write");
        dockerfile.push_str(&format!("COPY f{n} /f{n}\n"));
    }
    std::fs::write(context.join("Dockerfile"), dockerfile).expect("write Dockerfile");
    let reference = format!("{}/kiln-t/twenty:1", registry.host());
    daemon.kiln_ok(&["build", "-q", "-t", &reference, context.to_str().expect("utf-8")]);

    let out = daemon.kiln_ok(&["push", &reference]);
    assert_eq!(layers_with(&out, "Pushed"), 20, "{out}");
    let seen = skopeo_inspect(&reference);
    assert_eq!(seen["Layers"].as_array().map(Vec::len), Some(20));
    assert_eq!(seen["Digest"], pushed_digest(&out));

    let fresh = TestDaemon::start();
    fresh.kiln_ok(&["pull", &reference]);
    assert_eq!(image_id(&fresh, &reference), image_id(&daemon, &reference));
}

#[test]
fn a_pushed_image_runs_on_another_daemon() {
    kiln_testing::require_privileged!();
    let registry = Registry::start();
    let daemon = TestDaemon::start();
    let reference = format!("{}/kiln-t/bb:run", registry.host());
    daemon.import_busybox(&reference);
    daemon.kiln_ok(&["push", &reference]);

    let fresh = TestDaemon::start();
    let run = fresh.kiln_run(&["run", "--rm", &reference, "echo", "pushed and pulled"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "pushed and pulled\n");
}

#[test]
fn docker_push_through_kiln_daemon_reaches_the_registry() {
    let registry = Registry::start();
    let daemon = TestDaemon::start();
    let reference = format!("{}/kiln-t/bydocker:1", registry.host());
    daemon.import_busybox(&reference);
    let run = Run::of(
        Command::new(crate::common::docker_cli())
            .args(["push", &reference])
            .env("DOCKER_HOST", daemon.host())
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", daemon.dir.path().join("docker-config")),
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("The push refers to repository"), "{}", run.stdout);
    let digest = pushed_digest(&run.stdout);
    assert_eq!(skopeo_inspect(&reference)["Digest"], digest);
}

#[test]
fn a_registry_with_a_password_takes_a_push_after_kiln_login() {
    let registry = Registry::with_htpasswd("kiln-t-user", "kiln-t-secret");
    let daemon = TestDaemon::start();
    let config = daemon.dir.path().join("docker-config");
    let kiln = |args: &[&str]| {
        let mut cmd = daemon.kiln();
        cmd.args(args).env("DOCKER_CONFIG", &config);
        Run::of(&mut cmd)
    };
    let reference = format!("{}/kiln-t/private:1", registry.host());
    daemon.import_busybox(&reference);

    let refused = kiln(&["push", &reference]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.contains("unauthorized"), "{}", refused.stderr);
    let login = kiln(&["login", "-u", "kiln-t-user", "-p", "kiln-t-secret", &registry.host()]);
    assert_eq!(login.code, Some(0), "{login:?}");
    let pushed = kiln(&["push", &reference]);
    assert_eq!(pushed.code, Some(0), "{pushed:?}");
    assert_eq!(layers_with(&pushed.stdout, "Pushed"), 1, "{}", pushed.stdout);
}

#[test]
fn an_image_that_does_not_exist_is_dockers_error_and_exit_1() {
    let daemon = TestDaemon::start();
    let run = daemon.kiln_run(&["push", "127.0.0.1:5/kiln-t/none:1"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        "Error response from daemon: An image does not exist locally with the tag: 127.0.0.1:5/kiln-t/none"
    );
    let raw = daemon.request("POST", "/images/127.0.0.1:5/kiln-t/none/push?tag=1");
    assert_eq!(raw.status, 404);

    daemon.import_busybox("127.0.0.1:5/kiln-t/some:1");
    let run = daemon.kiln_run(&["push", "127.0.0.1:5/kiln-t/some:2"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        "Error response from daemon: tag does not exist: 127.0.0.1:5/kiln-t/some:2"
    );
}

#[test]
fn a_registry_that_is_down_is_one_line_and_exit_1() {
    let daemon = TestDaemon::start();
    let reference = format!("127.0.0.1:{}/kiln-t/down:1", free_port());
    daemon.import_busybox(&reference);
    let run = daemon.kiln_run(&["push", &reference]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let stderr = run.stderr.trim();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.to_ascii_lowercase().contains("connection refused"), "{stderr}");
}

#[test]
fn a_failed_blob_upload_fails_the_push_and_sets_no_tag() {
    let daemon = TestDaemon::start();
    let fake = FakeRegistry::start();
    let reference = format!("{}/kiln-t/x:1", fake.host());
    let id = daemon.import_busybox(&reference);
    // The config is the image id; the other blob, the layer, fails.
    fake.fail_blobs_except(&id);
    let run = daemon.kiln_run(&["push", &reference]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("500"), "{}", run.stderr);
    let requests = fake.requests();
    assert!(
        requests.iter().any(|r| r.starts_with("PUT /v2/kiln-t/x/blobs/uploads/")),
        "{requests:?}"
    );
    assert!(!requests.iter().any(|r| r.contains("/manifests/")), "no tag was put: {requests:?}");
    let status = http_status(&fake.host(), "GET", "/v2/kiln-t/x/manifests/1");
    assert_eq!(status, 404, "the tag does not exist");
}

// ---------------------------------------------------------------- fake registry

/// A registry on a thread that takes uploads (and keeps nothing): `HEAD`
/// of a blob is 404, a session is opened on `POST`, and the closing `PUT`
/// is 201, or 500 for blobs that are to fail. Manifests are taken and
/// served back. Each request and its answer use their own connection.
struct FakeRegistry {
    port: u16,
    state: Arc<Mutex<FakeState>>,
}

#[derive(Default)]
struct FakeState {
    requests: Vec<String>,
    /// Blobs whose upload succeeds when `fail_others`.
    spared: Option<String>,
    manifests: BTreeMap<String, Vec<u8>>,
}

impl FakeRegistry {
    fn start() -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(FakeState::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        FakeRegistry { port, state }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every blob upload but that of `digest` answers 500.
    fn fail_blobs_except(&self, digest: &str) {
        self.state.lock().expect("state").spared = Some(digest.to_owned());
    }

    fn requests(&self) -> Vec<String> {
        self.state.lock().expect("state").requests.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<FakeState>) {
    let mut reader = BufReader::new(stream);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push(line),
        }
    }
    let request_line = head.first().cloned().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let length: usize = head
        .iter()
        .find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut st = state.lock().expect("state");
    st.requests.push(format!("{method} {target}"));
    let (status, headers): (u16, Vec<(&str, String)>) = match method.as_str() {
        "GET" if path == "/v2/" => (200, Vec::new()),
        "HEAD" => (404, Vec::new()),
        "POST" if path.ends_with("/blobs/uploads/") => {
            let n = st.requests.len();
            (202, vec![("Location", format!("{path}{n}?_state=x"))])
        }
        "PATCH" => (202, vec![("Location", path.to_owned())]),
        "PUT" if path.contains("/blobs/uploads/") => {
            let digest = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("digest="))
                .unwrap_or_default()
                .replace("%3A", ":");
            match &st.spared {
                Some(spared) if *spared != digest => (500, Vec::new()),
                _ => (201, vec![("Docker-Content-Digest", digest)]),
            }
        }
        "PUT" if path.contains("/manifests/") => {
            st.manifests.insert(path.to_owned(), body);
            (201, Vec::new())
        }
        "GET" if st.manifests.contains_key(path) => (200, Vec::new()),
        _ => (404, Vec::new()),
    };
    drop(st);
    let reason = match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let mut out =
        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let _ = reader.get_mut().write_all(out.as_bytes());
}

/// The status of one request to `host` (a fresh connection).
fn http_status(host: &str, method: &str, path: &str) -> u16 {
    let mut stream = TcpStream::connect(host).expect("connect");
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status")
}
