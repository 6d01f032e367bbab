//! `kiln pull` and `kiln run` of a missing image, against Debian's
//! `docker-registry` (the CNCF distribution registry) on a loopback port,
//! fed by `skopeo copy` of a `kiln save` archive, and against a tiny fake
//! registry for the faults a real one does not make (wrong bytes, 503s,
//! foreign platforms). scripts/test installs docker-registry and skopeo.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::common::TestDaemon;
use crate::registry::{push_busybox_as, sha256, tiny_image, Registry};

fn blob_exists(daemon: &TestDaemon, digest: &str) -> bool {
    let hex = digest.trim_start_matches("sha256:");
    daemon.root().join("content/blobs/sha256").join(hex).exists()
}

#[test]
fn pull_by_tag_then_again_says_up_to_date_and_by_digest_too() {
    let registry = Registry::start();
    let source = TestDaemon::start();
    let reference = push_busybox_as(&source, &registry, None);

    let daemon = TestDaemon::start();
    let first = daemon.kiln_run(&["pull", &reference]);
    assert_eq!(first.code, Some(0), "{first:?}");
    let lines: Vec<&str> = first.stdout.lines().collect();
    assert_eq!(lines[0], "1: Pulling from kiln-t/bb", "{}", first.stdout);
    assert!(lines.iter().any(|l| l.ends_with(": Pulling fs layer")), "{}", first.stdout);
    assert!(lines.iter().any(|l| l.ends_with(": Pull complete")), "{}", first.stdout);
    let digest_line = lines.iter().find(|l| l.starts_with("Digest: sha256:")).expect("digest");
    let digest = digest_line.trim_start_matches("Digest: ").to_owned();
    assert_eq!(
        lines[lines.len() - 2],
        format!("Status: Downloaded newer image for {reference}"),
        "{}",
        first.stdout
    );
    assert_eq!(lines[lines.len() - 1], reference);
    assert_eq!(daemon.image_names(), std::slice::from_ref(&reference));

    let again = daemon.kiln_ok(&["pull", &reference]);
    assert!(again.contains(&format!("Status: Image is up to date for {reference}")), "{again}");
    assert!(!again.contains("Pulling fs layer") && !again.contains("Pull complete"), "{again}");

    let quiet = daemon.kiln_ok(&["pull", "-q", &reference]);
    assert_eq!(quiet, format!("{reference}\n"));

    // By digest, into an empty store: the image gets that digest reference.
    let fresh = TestDaemon::start();
    let by_digest = format!("{}/kiln-t/bb@{digest}", registry.host());
    let out = fresh.kiln_ok(&["pull", &by_digest]);
    assert!(out.contains(&format!("Status: Downloaded newer image for {by_digest}")), "{out}");
    let inspect: serde_json::Value =
        serde_json::from_str(&fresh.kiln_ok(&["image", "inspect", &by_digest])).expect("json");
    assert_eq!(inspect[0]["RepoDigests"], serde_json::json!([by_digest]));
}

#[test]
fn an_unknown_tag_is_dockers_manifest_unknown_and_exit_1() {
    let registry = Registry::start();
    let daemon = TestDaemon::start();
    let reference = format!("{}/kiln-t/none:nope", registry.host());
    let run = daemon.kiln_run(&["pull", &reference]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        format!(
            "Error response from daemon: manifest for {reference} not found: manifest unknown: manifest unknown"
        )
    );
    assert!(daemon.image_names().is_empty());
}

#[test]
fn run_of_a_missing_image_pulls_it_first() {
    kiln_testing::require_privileged!();
    let registry = Registry::start();
    let source = TestDaemon::start();
    let reference = push_busybox_as(&source, &registry, None);

    let daemon = TestDaemon::start();
    let run = daemon.kiln_run(&["run", "--rm", &reference, "echo", "hello from the registry"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "hello from the registry\n");
    assert!(
        run.stderr.starts_with(&format!("Unable to find image '{reference}' locally\n")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Status: Downloaded newer image"), "{}", run.stderr);

    let missing = format!("{}/kiln-t/none:1", registry.host());
    let failed = daemon.kiln_run(&["run", "--rm", &missing, "true"]);
    assert_eq!(failed.code, Some(125), "{failed:?}");
    assert!(failed.stderr.contains("manifest unknown"), "{}", failed.stderr);
}

// ---------------------------------------------------------------- fake registry

/// One canned answer.
#[derive(Clone)]
struct Answer {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    /// `Docker-Content-Digest`, for manifests.
    digest: Option<String>,
}

/// A registry on a thread that answers GETs from a table by path; each
/// path may first fail with 503 a number of times. Connections close after
/// each answer.
struct FakeRegistry {
    port: u16,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl FakeRegistry {
    fn start(answers: BTreeMap<String, Answer>, failures: BTreeMap<String, usize>) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(Mutex::new(BTreeMap::new()));
        let seen = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                answer(stream, &answers, &failures, &seen);
            }
        });
        FakeRegistry { port, hits }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().expect("lock").get(path).copied().unwrap_or(0)
    }
}

fn answer(
    mut stream: TcpStream,
    answers: &BTreeMap<String, Answer>,
    failures: &BTreeMap<String, usize>,
    hits: &Mutex<BTreeMap<String, usize>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
    let count = {
        let mut hits = hits.lock().expect("lock");
        let n = hits.entry(path.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let fail = failures.get(&path).is_some_and(|f| count <= *f);
    let found = answers.get(&path).cloned();
    let answer = match (fail, found) {
        (true, _) => {
            Answer { status: 503, content_type: "text/plain", body: b"busy".to_vec(), digest: None }
        }
        (false, Some(a)) => a,
        (false, None) if path == "/v2/" => Answer {
            status: 200,
            content_type: "application/json",
            body: b"{}".to_vec(),
            digest: None,
        },
        (false, None) => Answer {
            status: 404,
            content_type: "application/json",
            body: br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                .to_vec(),
            digest: None,
        },
    };
    let reason = match answer.status {
        200 => "OK",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        answer.content_type,
        answer.body.len()
    );
    if let Some(digest) = &answer.digest {
        out.push_str(&format!("Docker-Content-Digest: {digest}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(&answer.body);
}

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The table of a fake registry serving `manifest` as `kiln-t/x:1`, and blobs.
fn answers(manifest: &[u8], blobs: &[(&str, Vec<u8>)]) -> BTreeMap<String, Answer> {
    let mut table = BTreeMap::new();
    table.insert(
        "/v2/kiln-t/x/manifests/1".to_owned(),
        Answer {
            status: 200,
            content_type: DOCKER_MANIFEST,
            body: manifest.to_vec(),
            digest: Some(sha256(manifest)),
        },
    );
    for (digest, bytes) in blobs {
        table.insert(
            format!("/v2/kiln-t/x/blobs/{digest}"),
            Answer {
                status: 200,
                content_type: "application/octet-stream",
                body: bytes.clone(),
                digest: None,
            },
        );
    }
    table
}

#[test]
fn a_blob_with_wrong_bytes_is_refused_and_nothing_is_stored() {
    let daemon = TestDaemon::start();
    let (manifest, config, layer) = tiny_image(daemon.dir.path());
    let layer_digest = sha256(&layer);
    let mut bad = layer.clone();
    bad[600] ^= 0xff;
    let fake = FakeRegistry::start(
        answers(&manifest, &[(&sha256(&config), config.clone()), (&layer_digest, bad)]),
        BTreeMap::new(),
    );
    let run = daemon.kiln_run(&["pull", &format!("{}/kiln-t/x:1", fake.host())]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("blob {layer_digest} from the registry does not match its digest")),
        "{}",
        run.stderr
    );
    assert!(!blob_exists(&daemon, &layer_digest), "a bad blob was stored");
    assert!(daemon.image_names().is_empty());
    let ingest = std::fs::read_dir(daemon.root().join("content/ingest")).expect("ingest dir");
    assert_eq!(ingest.count(), 0, "temp files left behind");
}

#[test]
fn a_busy_registry_is_retried_and_the_pull_succeeds() {
    let daemon = TestDaemon::start();
    let (manifest, config, layer) = tiny_image(daemon.dir.path());
    let layer_digest = sha256(&layer);
    let manifest_path = "/v2/kiln-t/x/manifests/1".to_owned();
    let blob_path = format!("/v2/kiln-t/x/blobs/{layer_digest}");
    let failures = BTreeMap::from([(manifest_path.clone(), 1), (blob_path.clone(), 2)]);
    let fake = FakeRegistry::start(
        answers(&manifest, &[(&sha256(&config), config.clone()), (&layer_digest, layer.clone())]),
        failures,
    );
    let reference = format!("{}/kiln-t/x:1", fake.host());
    let out = daemon.kiln_ok(&["pull", &reference]);
    assert!(out.contains(&format!("Status: Downloaded newer image for {reference}")), "{out}");
    assert_eq!(fake.hits(&manifest_path), 2, "one 503, then the manifest");
    assert_eq!(fake.hits(&blob_path), 3, "two 503s, then the blob");
    assert!(blob_exists(&daemon, &layer_digest));
    assert_eq!(daemon.image_names(), [reference]);
}

#[test]
fn an_index_without_our_platform_lists_the_platforms_it_has() {
    let daemon = TestDaemon::start();
    let entry = |arch: &str, n: u8| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", format!("{n:02x}").repeat(32)),
            "size": 100,
            "platform": { "architecture": arch, "os": "linux" },
        })
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry("s390x", 1), entry("riscv64", 2)],
    }))
    .expect("index");
    let mut table = answers(&index, &[]);
    if let Some(answer) = table.get_mut("/v2/kiln-t/x/manifests/1") {
        answer.content_type = "application/vnd.oci.image.index.v1+json";
    }
    let fake = FakeRegistry::start(table, BTreeMap::new());
    let reference = format!("{}/kiln-t/x:1", fake.host());
    let run = daemon.kiln_run(&["pull", &reference]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("no matching manifest for linux/"), "{}", run.stderr);
    assert!(run.stderr.contains("it has: linux/s390x, linux/riscv64"), "{}", run.stderr);
}
