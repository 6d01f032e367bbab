//! Watching containers and the daemon: `GET /containers/{id}/stats`,
//! `GET /containers/{id}/changes` and `GET /events`.
//!
//! Stats and events come as a stream of JSON values (one a line from both
//! dockerd and Kiln), read a chunk at a time through [`JsonStream`]: a
//! value split across chunks is decoded once it is whole.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use bytes::{Buf as _, BytesMut};
use http::Method;
use kiln_api_types::{ContainerStats, EventMessage};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::ClientError;
use crate::query::{escape_segment, filters_json, with_query};
use crate::stream::{Framing, OutputStream};
use crate::{transport, Client};

/// How a path in a container's filesystem differs from its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// `0`: changed (`C` in `docker diff`).
    Modified,
    /// `1`: added (`A`).
    Added,
    /// `2`: deleted (`D`).
    Deleted,
}

impl TryFrom<u8> for ChangeKind {
    type Error = String;

    fn try_from(kind: u8) -> Result<ChangeKind, String> {
        match kind {
            0 => Ok(ChangeKind::Modified),
            1 => Ok(ChangeKind::Added),
            2 => Ok(ChangeKind::Deleted),
            other => Err(format!("unknown change kind {other}")),
        }
    }
}

impl<'de> Deserialize<'de> for ChangeKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let kind = u8::deserialize(deserializer)?;
        ChangeKind::try_from(kind).map_err(serde::de::Error::custom)
    }
}

/// One entry of `GET /containers/{id}/changes`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Change {
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Kind")]
    pub kind: ChangeKind,
}

/// JSON values one after another in a response body, decoded as they
/// arrive.
pub struct JsonStream<T> {
    output: OutputStream,
    buf: BytesMut,
    path: String,
    done: bool,
    _values: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for JsonStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonStream")
            .field("path", &self.path)
            .field("buffered", &self.buf.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// `GET /containers/{id}/stats`: one sample, or one a second.
pub type StatsStream = JsonStream<ContainerStats>;

/// `GET /events`: the daemon's events as they happen.
pub type EventStream = JsonStream<EventMessage>;

impl<T: DeserializeOwned> JsonStream<T> {
    fn new(output: OutputStream, path: String) -> JsonStream<T> {
        JsonStream { output, buf: BytesMut::new(), path, done: false, _values: PhantomData }
    }

    /// The next value; `None` when the daemon ended the stream.
    pub async fn next(&mut self) -> Result<Option<T>, ClientError> {
        loop {
            match take_value(&mut self.buf) {
                Ok(Some(value)) => return Ok(Some(value)),
                Ok(None) => {}
                Err(source) => return Err(ClientError::Decode { path: self.path.clone(), source }),
            }
            if self.done {
                return Ok(None);
            }
            match self.output.next().await? {
                Some((_, chunk)) => self.buf.extend_from_slice(&chunk),
                None => {
                    self.done = true;
                    // A value cut off by the end of the stream is an error.
                    if let Some(source) = leftover_error::<T>(&self.buf) {
                        return Err(ClientError::Decode { path: self.path.clone(), source });
                    }
                }
            }
        }
    }
}

/// The first whole value in `buf`, removed from it; `None` when more bytes
/// are needed (or there is only whitespace, which is dropped).
fn take_value<T: DeserializeOwned>(buf: &mut BytesMut) -> Result<Option<T>, serde_json::Error> {
    let mut values = serde_json::Deserializer::from_slice(buf).into_iter::<T>();
    match values.next() {
        None => {
            buf.clear();
            Ok(None)
        }
        Some(Ok(value)) => {
            let used = values.byte_offset();
            buf.advance(used);
            Ok(Some(value))
        }
        Some(Err(err)) if err.is_eof() => Ok(None),
        Some(Err(err)) => Err(err),
    }
}

/// Why the bytes left at the end of a stream are not a value, if they are
/// more than whitespace.
fn leftover_error<T: DeserializeOwned>(buf: &[u8]) -> Option<serde_json::Error> {
    if buf.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    serde_json::from_slice::<T>(buf).err()
}

impl Client {
    /// `GET /containers/{id}/stats?stream=&one-shot=`: with `stream`, a
    /// sample a second until the container stops; else one sample, which
    /// carries the previous CPU reading too unless `one_shot`.
    pub async fn container_stats(
        &self,
        id: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<StatsStream, ClientError> {
        self.open_json_stream(stats_path(id, stream, one_shot)).await
    }

    /// `GET /containers/{id}/changes`: what differs from the image, in the
    /// daemon's order.
    pub async fn container_changes(&self, id: &str) -> Result<Vec<Change>, ClientError> {
        let path = format!("/containers/{}/changes", escape_segment(id));
        // docker-compat: dockerd answers `null` when nothing changed.
        let changes: Option<Vec<Change>> = self.get_json(&path).await?;
        Ok(changes.unwrap_or_default())
    }

    /// `GET /events?since=&until=&filters=`: past events since `since`,
    /// then live ones; without `until` the stream never ends. Times are the
    /// API's Unix seconds (`1700000000` or `1700000000.000000001`).
    pub async fn events(
        &self,
        since: Option<&str>,
        until: Option<&str>,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<EventStream, ClientError> {
        self.open_json_stream(events_path(since, until, filters)).await
    }

    async fn open_json_stream<T: DeserializeOwned>(
        &self,
        path: String,
    ) -> Result<JsonStream<T>, ClientError> {
        let response = self.open(Method::GET, &path, &[], transport::empty()).await?;
        let output = OutputStream::from_body(response.into_body(), self.host.clone(), Framing::Raw);
        Ok(JsonStream::new(output, self.versioned(&path)))
    }
}

fn stats_path(id: &str, stream: bool, one_shot: bool) -> String {
    // docker-compat: `stream` is sent either way; an absent one means yes.
    let mut query = vec![("stream", if stream { "1" } else { "0" }.to_owned())];
    if one_shot {
        query.push(("one-shot", "1".to_owned()));
    }
    with_query(&format!("/containers/{}/stats", escape_segment(id)), &query)
}

fn events_path(
    since: Option<&str>,
    until: Option<&str>,
    filters: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut query = Vec::new();
    for (name, value) in [("since", since), ("until", until)] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            query.push((name, value.to_owned()));
        }
    }
    if !filters.is_empty() {
        query.push(("filters", filters_json(filters)));
    }
    with_query("/events", &query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_events_queries_follow_the_docker_client() {
        assert_eq!(stats_path("web", true, false), "/containers/web/stats?stream=1");
        assert_eq!(stats_path("a b", false, true), "/containers/a%20b/stats?stream=0&one-shot=1");
        assert_eq!(events_path(None, None, &BTreeMap::new()), "/events");
        let mut filters = BTreeMap::new();
        filters.insert("type".to_owned(), vec!["container".to_owned()]);
        assert_eq!(
            events_path(Some("1700000000"), Some(""), &filters),
            "/events?since=1700000000&filters=%7B%22type%22%3A%5B%22container%22%5D%7D"
        );
    }

    #[test]
    fn values_split_across_chunks_come_out_whole() {
        let wire = b"{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}";
        for size in 1..=wire.len() {
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(size) {
                buf.extend_from_slice(chunk);
                while let Some(v) = take_value::<serde_json::Value>(&mut buf).expect("json") {
                    got.push(v["a"].as_i64().expect("a"));
                }
            }
            assert_eq!(got, [1, 2, 3], "chunk size {size}");
            assert!(leftover_error::<serde_json::Value>(&buf).is_none());
        }
    }

    #[test]
    fn a_cut_off_or_broken_value_is_an_error() {
        let mut buf = BytesMut::from(&b"{\"a\":"[..]);
        assert!(take_value::<serde_json::Value>(&mut buf).expect("needs more").is_none());
        assert!(leftover_error::<serde_json::Value>(&buf).is_some());
        let mut buf = BytesMut::from(&b"{\"a\" 1}\n"[..]);
        assert!(take_value::<serde_json::Value>(&mut buf).is_err());
    }

    #[test]
    fn changes_decode_their_kinds() {
        let changes: Vec<Change> = serde_json::from_str(
            r#"[{"Path":"/etc","Kind":0},{"Path":"/new","Kind":1},{"Path":"/gone","Kind":2}]"#,
        )
        .expect("changes");
        let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [ChangeKind::Modified, ChangeKind::Added, ChangeKind::Deleted]);
        assert_eq!(changes[0].path, "/etc");
        assert!(serde_json::from_str::<Change>(r#"{"Path":"/x","Kind":7}"#).is_err());
    }
}

#[cfg(test)]
mod daemon_tests {
    use crate::fake_daemon::{send, FakeDaemon};

    use super::*;

    /// Answer 200 with `body` sent chunked, `piece` bytes at a time.
    async fn chunked(stream: &mut tokio::net::UnixStream, body: &[u8], piece: usize) {
        send(
            stream,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await;
        for part in body.chunks(piece) {
            send(stream, format!("{:x}\r\n", part.len()).as_bytes()).await;
            send(stream, part).await;
            send(stream, b"\r\n").await;
        }
        send(stream, b"0\r\n\r\n").await;
    }

    #[tokio::test]
    async fn stats_stream_one_sample_a_line() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            let body = b"{\"name\":\"/web\",\"id\":\"abc\",\"pids_stats\":{\"current\":3}}\n\
                         {\"name\":\"/web\",\"id\":\"abc\",\"memory_stats\":{\"usage\":10,\"limit\":20}}\n";
            chunked(&mut stream, body, 7).await;
        });
        let mut stats = daemon.client.container_stats("web", true, false).await.expect("stats");
        let first = stats.next().await.expect("first").expect("a sample");
        assert_eq!((first.name.as_str(), first.pids_stats.current), ("/web", 3));
        let second = stats.next().await.expect("second").expect("a sample");
        assert_eq!((second.memory_stats.usage, second.memory_stats.limit), (10, 20));
        assert!(stats.next().await.expect("end").is_none());
        let head = server.await.expect("server");
        assert!(
            head.starts_with("GET /v1.47/containers/web/stats?stream=1 HTTP/1.1\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn events_come_one_at_a_time_and_end_with_the_stream() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            let body = br#"{"status":"start","id":"4f1c","Type":"container","Action":"start","Actor":{"ID":"4f1c","Attributes":{"name":"web"}},"scope":"local","time":1700000000,"timeNano":1700000000000000001}
{"Type":"volume","Action":"create","Actor":{"ID":"v1","Attributes":{}},"scope":"local","time":1700000001,"timeNano":1700000001000000000}
"#;
            chunked(&mut stream, body, 50).await;
        });
        let mut filters = BTreeMap::new();
        filters.insert("type".to_owned(), vec!["container".to_owned(), "volume".to_owned()]);
        let mut events =
            daemon.client.events(Some("1"), Some("1700000002"), &filters).await.expect("events");
        let first = events.next().await.expect("first").expect("an event");
        assert_eq!((first.kind.as_str(), first.action.as_str()), ("container", "start"));
        assert_eq!(first.actor.attributes["name"], "web");
        assert_eq!(first.time_nano, 1_700_000_000_000_000_001);
        let second = events.next().await.expect("second").expect("an event");
        assert_eq!((second.kind.as_str(), second.actor.id.as_str()), ("volume", "v1"));
        assert!(events.next().await.expect("end").is_none());
        let head = server.await.expect("server");
        assert!(head.starts_with("GET /v1.47/events?since=1&until=1700000002&filters="), "{head}");
    }

    #[tokio::test]
    async fn changes_may_be_null() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            send(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnull").await;
        });
        assert!(daemon.client.container_changes("web").await.expect("changes").is_empty());
        let head = server.await.expect("server");
        assert!(head.starts_with("GET /v1.47/containers/web/changes HTTP/1.1\r\n"), "{head}");
    }
}
