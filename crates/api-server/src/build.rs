//! `POST /build`: Docker's classic build endpoint, behind `kiln build` and
//! `DOCKER_BUILDKIT=0 docker build`.
//!
//! The query (`t`, `dockerfile`, `buildargs`, `target`, `nocache`, `q`,
//! `labels`, …) becomes a [`BuildRequest`]; the body, the context as a tar
//! (plain or gzip), streams to [`Engine::build`] through a blocking reader,
//! never whole in memory. The answer is dockerd's JSON-message stream, one
//! object a line, worded as its classic builder words it (`{"stream":"Step
//! 1/4 : FROM busybox\n"}`, ` ---> Using cache`, the image id as
//! `{"aux":{"ID":…}}`), so the docker CLI shows its usual output. With
//! `q=1` only the id is sent, as aux and as the one `stream` line, which
//! `docker build -q` prints.
//!
//! A request wrong on its face (bad JSON in a parameter, a remote context)
//! is refused before anything runs, with its status. A build that fails
//! before it reported anything is an ordinary error answer with the status
//! of the error's kind; one that fails later ends the stream with
//! `{"errorDetail":{"message":…},"error":…}`. When the client goes away the
//! build is cancelled.
//!
//! Kiln's additions: `nocachefilter`, `cacheto`, `checkreproducible`, and
//! secrets in the `X-Kiln-Build-Secrets` header (base64 of a JSON object
//! `{id: base64(bytes)}`), accepted only over the unix socket and never
//! logged.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Body as HttpBody;
use kiln_engine::build::{BuildError, BuildEvent, BuildOutcome, BuildRequest, Cancel, Secret};
use kiln_engine::Engine;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::query::Query;
use crate::reply::Body;
use crate::stream::{body_reader, BodyReader};

/// Messages in flight to the client: RUN output comes in many small pieces.
const DEPTH: usize = 64;

/// Kiln's header for `--secret`: base64 of a JSON object `{id: base64(bytes)}`.
pub const SECRETS_HEADER: &str = "x-kiln-build-secrets";

/// How a request reached the API. The server puts it in the request's
/// extensions; secrets are refused on [`Transport::Tcp`], where they would
/// cross the network in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Unix,
    Tcp,
}

/// `POST /build`.
pub async fn build<B>(
    engine: Arc<Engine>,
    query: &Query,
    request: Request<B>,
) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let mut build = parse_request(query)?;
    if let Some(header) = request.headers().get(SECRETS_HEADER) {
        if request.extensions().get::<Transport>() == Some(&Transport::Tcp) {
            return Err(ApiError::bad_request(
                "build secrets are accepted only over the unix socket, not over TCP",
            ));
        }
        build.secrets = decode_secrets(header.as_bytes())?;
    }
    let body = body_reader(request.into_body());
    let quiet = build.quiet;
    stream_build(quiet, body, move |context, events, cancel| {
        engine.build(&build, context, events, cancel)
    })
    .await
}

/// `POST /build/prune`: there is no separate build cache to prune yet.
pub fn prune() -> Result<Response<Body>, ApiError> {
    Err(ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        message: "pruning the build cache is not implemented yet: the cache is the images' \
                  layers, removed with their images"
            .to_owned(),
    })
}

/// Run `build` on a blocking thread, the context read from `body`, and
/// answer with its messages as they come. The first message starts the 200
/// answer; a build that fails before any is an error answer.
async fn stream_build<F>(
    quiet: bool,
    body: BodyReader,
    build: F,
) -> Result<Response<Body>, ApiError>
where
    F: FnOnce(
            &mut dyn Read,
            &(dyn Fn(BuildEvent) + Sync),
            &Cancel,
        ) -> Result<BuildOutcome, BuildError>
        + Send
        + 'static,
{
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(DEPTH);
    let cancel = Cancel::new();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    // The client going away drops the answer's receiver: stop the build
    // then, even in the middle of a step that prints nothing.
    let watcher_tx = tx.clone();
    let watcher_cancel = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = watcher_tx.closed() => watcher_cancel.cancel(),
            _ = done_rx => {}
        }
    });
    let task = tokio::task::spawn_blocking(move || {
        // Dropped when the build is done: the watcher lets its sender go.
        let _done = done_tx;
        let mut body = body;
        let messages = Mutex::new(Messages::new(quiet));
        let started = AtomicBool::new(false);
        let send = |lines: Vec<Bytes>| {
            for line in lines {
                started.store(true, Ordering::Relaxed);
                if tx.blocking_send(Ok(line)).is_err() {
                    cancel.cancel();
                    return;
                }
            }
        };
        // Stages may report from several threads: each event's lines go out
        // together, in the order they were worded.
        let events = |event: BuildEvent| {
            let mut messages = messages.lock().unwrap_or_else(PoisonError::into_inner);
            send(messages.event(event));
        };
        let result = build(&mut body, &events, &cancel);
        let mut messages = messages.into_inner().unwrap_or_else(PoisonError::into_inner);
        let outcome = match result {
            Ok(outcome) => {
                send(messages.finish(&outcome));
                Ok(())
            }
            Err(err) => {
                if matches!(err, BuildError::Cancelled) {
                    tracing::info!("build cancelled");
                } else {
                    tracing::error!(error = %err, "build failed");
                }
                let mut lines = messages.failed(&err);
                if lines.is_empty() && !started.load(Ordering::Relaxed) {
                    Err(err)
                } else {
                    lines.push(error_line(&ApiError::from_error(&err).message));
                    send(lines);
                    Ok(())
                }
            }
        };
        // Read what the engine left of the context, so that a client still
        // sending sees the answer rather than a connection closed under it.
        let _ = io::copy(&mut body, &mut io::sink());
        outcome
    });
    crate::stream::json_stream_or_error(rx, task, "build").await
}

/// The query as the engine's request. docker-compat: `buildargs`, `labels`,
/// `ulimits` and `cachefrom` are JSON, as the docker CLI sends them;
/// parameters Kiln does not use (`rm`, `forcerm`, `memory`, `cpushares`,
/// `squash`, `isolation`, `outputs`, …) are accepted and ignored.
fn parse_request(query: &Query) -> Result<BuildRequest, ApiError> {
    let present = |key: &str| query.get(key).filter(|v| !v.is_empty());
    match present("version") {
        None | Some("1") => {}
        Some("2") => {
            return Err(ApiError {
                status: StatusCode::NOT_IMPLEMENTED,
                message: "BuildKit builds (version=2) are not supported by the Kiln daemon: use \
                          `kiln build`, or the classic builder (DOCKER_BUILDKIT=0 docker build)"
                    .to_owned(),
            })
        }
        Some(other) => return Err(ApiError::bad_request(format!("invalid version {other}"))),
    }
    // docker-compat: dockerd refuses security options on Linux builds.
    if !query.all("securityopt").is_empty() {
        return Err(ApiError::bad_request(
            "The daemon on this platform does not support setting security options on build",
        ));
    }
    let shm_size = match present("shmsize") {
        None => 0,
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("invalid shmsize {text:?}: want bytes")))?,
    };
    Ok(BuildRequest {
        dockerfile: query.get("dockerfile").unwrap_or_default().to_owned(),
        tags: query.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        build_args: json_param(query, "buildargs", "build args")?.unwrap_or_default(),
        target: present("target").map(str::to_owned),
        no_cache: query.flag("nocache"),
        no_cache_filter: json_param(query, "nocachefilter", "no-cache-filter")?.unwrap_or_default(),
        pull: query.flag("pull"),
        labels: json_param(query, "labels", "labels")?.unwrap_or_default(),
        network: present("networkmode").map(str::to_owned),
        extra_hosts: query.all("extrahosts").into_iter().filter(|h| !h.is_empty()).collect(),
        shm_size,
        ulimits: json_param::<Vec<WireUlimit>>(query, "ulimits", "ulimit settings")?
            .unwrap_or_default()
            .iter()
            .map(WireUlimit::to_flag)
            .collect(),
        secrets: Vec::new(),
        quiet: query.flag("q"),
        platform: present("platform").map(str::to_owned),
        cache_from: json_param(query, "cachefrom", "cache-from")?.unwrap_or_default(),
        cache_to: json_param(query, "cacheto", "cache-to")?.unwrap_or_default(),
        check_reproducible: query.flag("checkreproducible"),
        remote: present("remote").map(str::to_owned),
    })
}

/// A JSON-valued parameter; `None` when absent or empty. The error words
/// follow dockerd's (`error reading build args: …`).
fn json_param<T: serde::de::DeserializeOwned>(
    query: &Query,
    key: &str,
    what: &str,
) -> Result<Option<T>, ApiError> {
    // docker-compat: docker 20.10's classic builder sends `ulimits=null`.
    let Some(text) = query.get(key).filter(|v| !v.is_empty() && *v != "null") else {
        return Ok(None);
    };
    serde_json::from_str(text)
        .map(Some)
        .map_err(|err| ApiError::bad_request(format!("error reading {what} ({key}): {err}")))
}

/// docker-compat: one of `ulimits`, as the docker CLI encodes `--ulimit`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireUlimit {
    name: String,
    soft: i64,
    hard: i64,
}

impl WireUlimit {
    /// Back to the flag's `name=soft:hard`, which the engine takes.
    fn to_flag(&self) -> String {
        format!("{}={}:{}", self.name, self.soft, self.hard)
    }
}

/// The secrets header: base64 of `{"id": "base64(bytes)", …}`. Errors name
/// the secret, never its bytes.
fn decode_secrets(header: &[u8]) -> Result<Vec<Secret>, ApiError> {
    let invalid =
        |why: &str| ApiError::bad_request(format!("invalid {SECRETS_HEADER} header: {why}"));
    let json = base64_decode(header).ok_or_else(|| invalid("not base64"))?;
    let map: BTreeMap<String, String> = serde_json::from_slice(&json)
        .map_err(|_| invalid("not a JSON object of secret ids to base64 strings"))?;
    map.into_iter()
        .map(|(id, data)| {
            if id.is_empty() {
                return Err(invalid("a secret has an empty id"));
            }
            let data = base64_decode(data.as_bytes())
                .ok_or_else(|| invalid(&format!("secret {id:?} is not base64")))?;
            Ok(Secret { id, data })
        })
        .collect()
}

/// Standard base64 (RFC 4648, `+/`), padding optional; `None` when `text`
/// is not base64.
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let text = text.trim_ascii();
    let unpadded = match text {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] => rest,
        _ => text,
    };
    if unpadded.len() % 4 == 1 || (unpadded.len() != text.len() && text.len() % 4 != 0) {
        return None;
    }
    let mut out = Vec::with_capacity(unpadded.len() / 4 * 3 + 2);
    for group in unpadded.chunks(4) {
        let mut bits = 0u32;
        for (i, c) in group.iter().enumerate() {
            bits |= value(*c)? << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    Some(out)
}

/// Build events as dockerd's classic builder writes them, one JSON line
/// each. Holds back the end of a RUN output chunk that cuts a UTF-8
/// character in two, so that it is not garbled.
#[derive(Debug)]
struct Messages {
    quiet: bool,
    /// Output bytes that end inside a UTF-8 sequence.
    pending: Vec<u8>,
    built: bool,
}

impl Messages {
    fn new(quiet: bool) -> Messages {
        Messages { quiet, pending: Vec::new(), built: false }
    }

    /// The lines for one event (none for most events when quiet).
    fn event(&mut self, event: BuildEvent) -> Vec<Bytes> {
        let mut lines = Vec::new();
        if let BuildEvent::Output(bytes) = event {
            if !self.quiet {
                self.pending.extend_from_slice(&bytes);
                let whole = self.pending.len() - incomplete_utf8_tail(&self.pending);
                if whole > 0 {
                    let rest = self.pending.split_off(whole);
                    let text = String::from_utf8_lossy(&self.pending).into_owned();
                    self.pending = rest;
                    lines.push(stream(text));
                }
            }
            return lines;
        }
        lines.extend(self.flush());
        match event {
            BuildEvent::Built { id } => {
                self.built = true;
                lines.push(aux_id(&id.to_string()));
                if self.quiet {
                    // docker-compat: with `-q` the docker CLI prints the
                    // stream text it got, which dockerd makes the id alone.
                    lines.push(stream(format!("{id}\n")));
                } else {
                    lines.push(stream(format!("Successfully built {}\n", short_id(id.hex()))));
                }
            }
            _ if self.quiet => {}
            BuildEvent::Step { number, total, text } => {
                lines.push(stream(format!("Step {number}/{total} : {text}\n")));
            }
            BuildEvent::Cached => lines.push(stream(" ---> Using cache\n".to_owned())),
            BuildEvent::StepDone { id, .. } => {
                lines.push(stream(format!(" ---> {}\n", short_id(id.hex()))));
            }
            // docker-compat: dockerd prints Dockerfile warnings this way.
            BuildEvent::Warning(text) => lines.push(stream(format!("[WARNING]: {text}\n"))),
            BuildEvent::Tagged { reference } => {
                lines.push(stream(format!("Successfully tagged {reference}\n")));
            }
            BuildEvent::Output(_) => {}
        }
        lines
    }

    /// The last lines of a build that succeeded: the image id, if the
    /// engine did not report it as an event.
    fn finish(&mut self, outcome: &BuildOutcome) -> Vec<Bytes> {
        let mut lines: Vec<Bytes> = self.flush().into_iter().collect();
        if !self.built {
            lines.extend(self.event(BuildEvent::Built { id: outcome.id.clone() }));
        }
        lines
    }

    /// What a failed build still has to say before its error: output held
    /// back, and the failed step's output when quiet kept it from the
    /// client (as dockerd sends what it held back for `-q` on a failure).
    fn failed(&mut self, err: &BuildError) -> Vec<Bytes> {
        let mut lines: Vec<Bytes> = self.flush().into_iter().collect();
        let tail = err.output_tail();
        if self.quiet && !tail.is_empty() {
            let mut text = tail.join("\n");
            text.push('\n');
            lines.push(stream(text));
        }
        lines
    }

    /// Output held back, as it is (a cut character becomes U+FFFD).
    fn flush(&mut self) -> Option<Bytes> {
        if self.pending.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        Some(stream(text))
    }
}

/// How many bytes at the end of `bytes` start a UTF-8 sequence that is not
/// complete yet (0 to 3).
fn incomplete_utf8_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let needed = match byte {
            b if b & 0xE0 == 0xC0 => 2,
            b if b & 0xF0 == 0xE0 => 3,
            b if b & 0xF8 == 0xF0 => 4,
            _ => return 0,
        };
        return if back < needed { back } else { 0 };
    }
    0
}

/// docker-compat: ids print as their first 12 hex digits.
fn short_id(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

fn stream(text: String) -> Bytes {
    json_line(&serde_json::json!({ "stream": text }))
}

fn aux_id(id: &str) -> Bytes {
    json_line(&serde_json::json!({ "aux": { "ID": id } }))
}

/// dockerd's in-stream error, without a code: the docker CLI would take a
/// code as its exit status.
fn error_line(message: &str) -> Bytes {
    json_line(&serde_json::json!({ "errorDetail": { "message": message }, "error": message }))
}

fn json_line(value: &serde_json::Value) -> Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    line.into()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::BodyExt as _;
    use kiln_types::{Digest, ErrorKind};

    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn digest() -> Digest {
        format!("sha256:{HEX}").parse().expect("digest")
    }

    fn text(lines: &[Bytes]) -> String {
        lines.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect()
    }

    /// Standard base64 with padding, for the tests' headers.
    fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let mut group = [0u8; 3];
            group[..chunk.len()].copy_from_slice(chunk);
            let bits = u32::from_be_bytes([0, group[0], group[1], group[2]]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((bits >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn the_query_becomes_the_build_request() {
        let query = Query::parse(Some(
            "t=app%3A1&t=app%3Alatest&dockerfile=build%2FDockerfile\
             &buildargs=%7B%22A%22%3A%221%22%2C%22B%22%3Anull%7D&target=final&nocache=1&q=1\
             &labels=%7B%22org.x%22%3A%22y%22%7D&pull=1&networkmode=none\
             &extrahosts=db%3A10.0.0.2&extrahosts=cache%3A10.0.0.3&shmsize=67108864\
             &ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Soft%22%3A1024%2C%22Hard%22%3A2048%7D%5D\
             &platform=linux%2Famd64&cachefrom=%5B%22type%3Dlocal%2Csrc%3D%2Fc%22%5D\
             &cacheto=%5B%22type%3Dlocal%2Cdest%3D%2Fc%22%5D&nocachefilter=%5B%22deps%22%5D\
             &checkreproducible=1&rm=0&forcerm=1&memory=0&version=1",
        ));
        let request = parse_request(&query).expect("request");
        assert_eq!(request.tags, ["app:1", "app:latest"]);
        assert_eq!(request.dockerfile, "build/Dockerfile");
        assert_eq!(request.build_args.get("A"), Some(&Some("1".to_owned())));
        assert_eq!(request.build_args.get("B"), Some(&None), "a null value stays unset");
        assert_eq!(request.target.as_deref(), Some("final"));
        assert!(request.no_cache && request.quiet && request.pull && request.check_reproducible);
        assert_eq!(request.labels["org.x"], "y");
        assert_eq!(request.network.as_deref(), Some("none"));
        assert_eq!(request.extra_hosts, ["db:10.0.0.2", "cache:10.0.0.3"]);
        assert_eq!(request.shm_size, 64 << 20);
        assert_eq!(request.ulimits, ["nofile=1024:2048"]);
        assert_eq!(request.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(request.cache_from, ["type=local,src=/c"]);
        assert_eq!(request.cache_to, ["type=local,dest=/c"]);
        assert_eq!(request.no_cache_filter, ["deps"]);
        assert!(request.secrets.is_empty());

        let plain = parse_request(&Query::parse(Some("nocache=0&q=false"))).expect("plain");
        assert_eq!(plain.dockerfile, "", "the engine reads Dockerfile");
        assert!(!plain.no_cache && !plain.quiet && plain.target.is_none());
        assert!(plain.build_args.is_empty() && plain.tags.is_empty());
    }

    #[test]
    fn bad_parameters_are_refused_with_their_status() {
        let status = |q: &str| parse_request(&Query::parse(Some(q))).expect_err(q).status;
        assert_eq!(status("buildargs=%5B1%5D"), 400);
        assert_eq!(status("buildargs=%7B%22A%22%3A1%7D"), 400);
        assert_eq!(status("labels=nope"), 400);
        assert_eq!(status("shmsize=-1"), 400);
        assert_eq!(status("ulimits=%7B%7D"), 400);
        assert_eq!(status("securityopt=seccomp%3Dunconfined"), 400);
        assert_eq!(status("version=3"), 400);
        assert_eq!(status("version=2"), 501);
        let err = parse_request(&Query::parse(Some("buildargs=x"))).expect_err("x");
        assert!(err.message.starts_with("error reading build args (buildargs): "), "{err:?}");
        let request = parse_request(&Query::parse(Some("remote=git%3A%2F%2Fh%2Fr%23main%3Asub")))
            .expect("a remote context");
        assert_eq!(request.remote.as_deref(), Some("git://h/r#main:sub"));
    }

    #[test]
    fn secrets_decode_from_the_header_and_bad_ones_name_the_secret() {
        let json = format!(
            r#"{{"npmrc":"{}","token":"{}","empty":""}}"#,
            encode(b"//registry/:_authToken=x\n"),
            encode(&[0, 255, 1])
        );
        let secrets = decode_secrets(encode(json.as_bytes()).as_bytes()).expect("secrets");
        let ids: Vec<&str> = secrets.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["empty", "npmrc", "token"]);
        assert_eq!(secrets[1].data, b"//registry/:_authToken=x\n");
        assert_eq!(secrets[2].data, [0, 255, 1]);
        assert!(secrets[0].data.is_empty());

        let err = decode_secrets(b"not base64!").expect_err("bad base64");
        assert_eq!(err.status, 400);
        assert_eq!(err.message, "invalid x-kiln-build-secrets header: not base64");
        let err = decode_secrets(encode(b"[1]").as_bytes()).expect_err("not an object");
        assert_eq!(err.status, 400);
        let bad_value = r#"{"npmrc":"s3cr3t value!"}"#;
        let err = decode_secrets(encode(bad_value.as_bytes()).as_bytes()).expect_err("value");
        assert!(err.message.contains("\"npmrc\" is not base64"), "{}", err.message);
        assert!(!err.message.contains("s3cr3t"), "the bytes never show: {}", err.message);
        let err = decode_secrets(encode(br#"{"":"YQ=="}"#).as_bytes()).expect_err("empty id");
        assert!(err.message.contains("empty id"), "{}", err.message);
    }

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        for input in [&b""[..], b"a", b"ab", b"abc", b"abcd", &[0, 0xff, 0x10, 0x80]] {
            let encoded = encode(input);
            assert_eq!(base64_decode(encoded.as_bytes()).as_deref(), Some(input), "{encoded}");
            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(base64_decode(unpadded.as_bytes()).as_deref(), Some(input), "{unpadded}");
        }
        for bad in [&b"a"[..], b"ab-_", b"YQ=", b"Y===", b"Y Q=="] {
            assert_eq!(base64_decode(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn events_are_worded_as_dockerds_classic_builder() {
        let mut m = Messages::new(false);
        let mut lines = Vec::new();
        for event in [
            BuildEvent::Step { number: 1, total: 3, text: "FROM busybox".into() },
            BuildEvent::StepDone { id: digest(), elapsed: Duration::ZERO },
            BuildEvent::Step { number: 2, total: 3, text: "RUN echo hi".into() },
            BuildEvent::Cached,
            BuildEvent::Output(b"hi\n".to_vec()),
            BuildEvent::Warning("Empty continuation line found in: RUN a".into()),
            BuildEvent::Built { id: digest() },
            BuildEvent::Tagged { reference: "app:1".into() },
        ] {
            lines.extend(m.event(event));
        }
        let expected = [
            r#"{"stream":"Step 1/3 : FROM busybox\n"}"#,
            r#"{"stream":" ---> e3b0c44298fc\n"}"#,
            r#"{"stream":"Step 2/3 : RUN echo hi\n"}"#,
            r#"{"stream":" ---> Using cache\n"}"#,
            r#"{"stream":"hi\n"}"#,
            r#"{"stream":"[WARNING]: Empty continuation line found in: RUN a\n"}"#,
            &format!(r#"{{"aux":{{"ID":"sha256:{HEX}"}}}}"#),
            r#"{"stream":"Successfully built e3b0c44298fc\n"}"#,
            r#"{"stream":"Successfully tagged app:1\n"}"#,
        ];
        assert_eq!(text(&lines), expected.map(|l| format!("{l}\n")).concat());
        assert!(m.finish(&BuildOutcome { id: digest(), tags: vec![] }).is_empty());
    }

    #[test]
    fn quiet_sends_only_the_image_id_as_aux_and_as_the_one_stream_line() {
        let mut m = Messages::new(true);
        let mut lines = Vec::new();
        for event in [
            BuildEvent::Step { number: 1, total: 1, text: "RUN echo hi".into() },
            BuildEvent::Output(b"hi\n".to_vec()),
            BuildEvent::Warning("w".into()),
            BuildEvent::Built { id: digest() },
            BuildEvent::Tagged { reference: "app:1".into() },
        ] {
            lines.extend(m.event(event));
        }
        let id_only = format!(
            "{{\"aux\":{{\"ID\":\"sha256:{HEX}\"}}}}\n{{\"stream\":\"sha256:{HEX}\\n\"}}\n"
        );
        assert_eq!(text(&lines), id_only);

        // An engine that did not report Built: the outcome's id is sent.
        let mut m = Messages::new(true);
        let lines = m.finish(&BuildOutcome { id: digest(), tags: vec![] });
        assert_eq!(text(&lines), id_only);
    }

    #[test]
    fn a_failed_step_ends_the_stream_with_its_error_and_quiet_shows_its_output() {
        let err = BuildError::Step {
            file: "Dockerfile".into(),
            line: 7,
            instruction: "RUN make".into(),
            message: "exit code 2".into(),
            kind: ErrorKind::InvalidArgument,
            output_tail: vec!["make: *** No rule".into(), "oops".into()],
        };
        assert!(Messages::new(false).failed(&err).is_empty(), "the tail was streamed already");
        let loud = text(&[error_line(&ApiError::from_error(&err).message)]);
        assert_eq!(
            loud,
            "{\"error\":\"Dockerfile:7: RUN make: exit code 2\",\
             \"errorDetail\":{\"message\":\"Dockerfile:7: RUN make: exit code 2\"}}\n",
            "no code, which docker would take as its exit status"
        );
        let quiet = text(&Messages::new(true).failed(&err));
        assert_eq!(quiet, "{\"stream\":\"make: *** No rule\\noops\\n\"}\n");
        assert!(Messages::new(true).failed(&BuildError::Cancelled).is_empty());
    }

    #[test]
    fn output_that_cuts_a_character_in_two_is_not_garbled() {
        let mut m = Messages::new(false);
        let snow = "é☃😀".as_bytes();
        let mut lines = Vec::new();
        for piece in snow.chunks(1) {
            lines.extend(m.event(BuildEvent::Output(piece.to_vec())));
        }
        lines.extend(m.event(BuildEvent::Output(b"\n".to_vec())));
        let joined: String = lines
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_slice(l).expect("json");
                v["stream"].as_str().expect("stream").to_owned()
            })
            .collect();
        assert_eq!(joined, "é☃😀\n");
        assert_eq!(incomplete_utf8_tail(b"ab"), 0);
        assert_eq!(incomplete_utf8_tail(&[b'a', 0xE2, 0x98]), 2);
        assert_eq!(incomplete_utf8_tail(&[0xF0, 0x9F, 0x98, 0x80]), 0);
        // Invalid bytes are not held forever: they go out as U+FFFD.
        let lines = m.event(BuildEvent::Output(vec![0xFF, b'x']));
        assert_eq!(text(&lines), "{\"stream\":\"\u{FFFD}x\"}\n");
        // A cut character left at a step's end is flushed before the next line.
        m.event(BuildEvent::Output(vec![0xE2]));
        let lines = m.event(BuildEvent::Cached);
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn build_prune_is_not_implemented() {
        assert_eq!(prune().expect_err("501").status, 501);
    }

    /// `POST path` through the whole API with `headers`, a tar-ish body and
    /// the request marked as coming over `transport`: status and body.
    fn post(path: &str, headers: &[(&str, String)], transport: Transport) -> (u16, String) {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let config = kiln_engine::Config::new(dir.path().join("root"), dir.path().join("run"));
        let api = crate::Api::new(Arc::new(Engine::open(config).expect("engine")));
        let mut request = Request::builder().method("POST").uri(path);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut request =
            request.body(http_body_util::Full::new(Bytes::from(vec![0u8; 1024]))).expect("req");
        request.extensions_mut().insert(transport);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let response = api.handle(request).await;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.expect("body").to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        })
    }

    #[test]
    fn bad_requests_are_answered_before_any_build() {
        let (status, body) = post("/v1.47/build?buildargs=nope", &[], Transport::Unix);
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("error reading build args"), "{body}");
        let header = [(SECRETS_HEADER, "%%%".to_owned())];
        let (status, body) = post("/build", &header, Transport::Unix);
        assert_eq!(
            (status, body.as_str()),
            (400, "{\"message\":\"invalid x-kiln-build-secrets header: not base64\"}\n")
        );
        let (status, _) = post("/v1.41/build/prune", &[], Transport::Unix);
        assert_eq!(status, 501);
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime")
    }

    fn context(bytes: &'static [u8]) -> BodyReader {
        body_reader(http_body_util::Full::new(Bytes::from_static(bytes)))
    }

    #[test]
    fn a_build_streams_its_messages_and_reads_the_whole_context() {
        let (status, body, read) = runtime().block_on(async {
            let (read_tx, read_rx) = std::sync::mpsc::channel();
            let response =
                stream_build(false, context(b"the context tar"), move |ctx, events, _| {
                    let mut seen = Vec::new();
                    ctx.read_to_end(&mut seen).map_err(|e| BuildError::internal(e.to_string()))?;
                    read_tx.send(seen).expect("report");
                    events(BuildEvent::Step { number: 1, total: 1, text: "FROM scratch".into() });
                    events(BuildEvent::Built { id: digest() });
                    Ok(BuildOutcome { id: digest(), tags: vec![] })
                })
                .await
                .expect("answer");
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.expect("body").to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned(), read_rx.recv().expect("read"))
        });
        assert_eq!(status, 200);
        assert_eq!(read, b"the context tar");
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines[0], r#"{"stream":"Step 1/1 : FROM scratch\n"}"#);
        assert_eq!(lines[1], format!(r#"{{"aux":{{"ID":"sha256:{HEX}"}}}}"#));
        assert_eq!(lines.len(), 3, "{body}");
    }

    #[test]
    fn a_failure_before_any_message_is_an_error_answer_and_after_one_the_last_line() {
        let (before, after) = runtime().block_on(async {
            let before = stream_build(false, context(b"x"), |_, _, _| {
                Err(BuildError::invalid("target stage \"nope\" could not be found"))
            })
            .await
            .expect_err("error answer");
            let after = stream_build(false, context(b"x"), |_, events, _| {
                events(BuildEvent::Step { number: 1, total: 2, text: "RUN false".into() });
                Err(BuildError::internal("snapshot gone"))
            })
            .await
            .expect("200");
            let body = after.into_body().collect().await.expect("body").to_bytes();
            (before, String::from_utf8_lossy(&body).into_owned())
        });
        assert_eq!(before.status, 400);
        assert_eq!(before.message, "target stage \"nope\" could not be found");
        assert_eq!(
            after,
            "{\"stream\":\"Step 1/2 : RUN false\\n\"}\n\
             {\"error\":\"snapshot gone\",\"errorDetail\":{\"message\":\"snapshot gone\"}}\n"
        );
    }

    #[test]
    fn a_client_that_goes_away_cancels_the_build() {
        let cancelled = runtime().block_on(async {
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            let response = stream_build(false, context(b"x"), move |_, events, cancel| {
                events(BuildEvent::Step { number: 1, total: 1, text: "RUN sleep 1d".into() });
                // A step that prints nothing: only the watcher can notice.
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while !cancel.is_cancelled() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let _ = done_tx.send(cancel.is_cancelled());
                Err(BuildError::Cancelled)
            })
            .await
            .expect("200");
            drop(response);
            done_rx.await.expect("build ended")
        });
        assert!(cancelled, "dropping the answer cancels the build");
    }

    #[test]
    fn secrets_over_tcp_are_refused() {
        let header = [(SECRETS_HEADER, encode(br#"{"a":"YQ=="}"#))];
        let (status, body) = post("/build", &header, Transport::Tcp);
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("only over the unix socket"), "{body}");
    }
}
