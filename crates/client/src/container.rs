//! `/containers/...`: create, start, stop, wait, remove, list, inspect,
//! logs, attach and the smaller verbs.

use std::collections::BTreeMap;
use std::fmt;

use http::{Method, Response};
use hyper::body::Incoming;
use kiln_api_types::{
    ContainerConfig, ContainerCreateRequest, ContainerCreateResponse, ContainerInspect,
    ContainerPruneResponse, ContainerSummary, ContainerTopResponse, ContainerWaitResponse,
    IdResponse,
};

use crate::attach::{hijacked, Attached};
use crate::error::ClientError;
use crate::query::{escape_segment, filters_json, push_flag, with_query};
use crate::stream::{framing, OutputStream};
use crate::{transport, Client};

/// What `GET /containers/json` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerListOptions {
    /// Stopped containers too (`-a`).
    pub all: bool,
    /// Only the N most recently created (`-n`, `-l`); implies `all`.
    pub limit: Option<i64>,
    /// `SizeRw` and `SizeRootFs` (`-s`).
    pub size: bool,
    /// `--filter key=value`, grouped by key.
    pub filters: BTreeMap<String, Vec<String>>,
}

/// What `GET /containers/{id}/logs` sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsOptions {
    /// Keep streaming new output until the container stops.
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Prefix each line with its RFC 3339 time.
    pub timestamps: bool,
    /// Unix seconds (`1700000000` or `1700000000.000000001`).
    pub since: Option<String>,
    /// Unix seconds.
    pub until: Option<String>,
    /// Lines from the end, or `all`.
    pub tail: Option<String>,
}

/// What `POST /containers/{id}/attach` connects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachOptions {
    /// Stream output as it comes (else only `logs`).
    pub stream: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Replay the output so far first.
    pub logs: bool,
    /// Keys that detach, such as `ctrl-p,ctrl-q`.
    pub detach_keys: Option<String>,
}

/// What `POST /commit` makes of a container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitOptions {
    /// `REPO[:TAG]` for the new image.
    pub reference: Option<String>,
    /// `--message`.
    pub comment: Option<String>,
    /// `--author`.
    pub author: Option<String>,
    /// Pause the container while its layer is read (docker's default).
    pub pause: bool,
    /// `--change` instructions.
    pub changes: Vec<String>,
    /// A config over the container's (sent as the body).
    pub config: Option<ContainerConfig>,
}

/// A wait whose request was accepted; its answer comes when the condition
/// is met (dockerd sends the head at once and the body then).
pub struct PendingWait {
    response: Response<Incoming>,
    client: Client,
    path: String,
}

impl fmt::Debug for PendingWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingWait").field("path", &self.path).finish_non_exhaustive()
    }
}

impl PendingWait {
    /// Wait for the answer: the exit code (and the daemon's error, if any).
    pub async fn result(self) -> Result<ContainerWaitResponse, ClientError> {
        let body = self.client.read_body(self.response.into_body()).await?;
        self.client.decode(&self.path, &body)
    }
}

impl Client {
    /// `POST /containers/create?name=&platform=`.
    pub async fn container_create(
        &self,
        name: Option<&str>,
        platform: Option<&str>,
        body: &ContainerCreateRequest,
    ) -> Result<ContainerCreateResponse, ClientError> {
        let mut query = Vec::new();
        if let Some(name) = name {
            query.push(("name", name.to_owned()));
        }
        if let Some(platform) = platform.filter(|p| !p.is_empty()) {
            query.push(("platform", platform.to_owned()));
        }
        let path = with_query("/containers/create", &query);
        let answer = self.call_json(Method::POST, &path, body).await?;
        self.decode(&path, &answer)
    }

    /// `POST /containers/{id}/start`; starting a running container is not
    /// an error (`304`).
    pub async fn container_start(&self, id: &str) -> Result<(), ClientError> {
        self.call(Method::POST, &container_path(id, "/start")).await.map(|_| ())
    }

    /// `POST /containers/{id}/stop?signal=&t=`: the stop signal, then
    /// SIGKILL after `timeout` seconds (the container's own default when
    /// `None`).
    pub async fn container_stop(
        &self,
        id: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), ClientError> {
        let path = stop_path(id, "/stop", signal, timeout);
        self.call(Method::POST, &path).await.map(|_| ())
    }

    /// `POST /containers/{id}/restart?signal=&t=`.
    pub async fn container_restart(
        &self,
        id: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), ClientError> {
        let path = stop_path(id, "/restart", signal, timeout);
        self.call(Method::POST, &path).await.map(|_| ())
    }

    /// `POST /containers/{id}/kill?signal=` (SIGKILL when `None`).
    pub async fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<(), ClientError> {
        let path = stop_path(id, "/kill", signal, None);
        self.call(Method::POST, &path).await.map(|_| ())
    }

    /// `POST /containers/{id}/wait?condition=`: block until the container
    /// stops (`not-running`, the default), next exits (`next-exit`) or is
    /// removed (`removed`).
    pub async fn container_wait(
        &self,
        id: &str,
        condition: Option<&str>,
    ) -> Result<ContainerWaitResponse, ClientError> {
        self.container_wait_begin(id, condition).await?.result().await
    }

    /// The first half of [`Client::container_wait`]: returns once the
    /// daemon accepted the wait, so a container started after this cannot
    /// exit unseen (`run` waits before it starts).
    pub async fn container_wait_begin(
        &self,
        id: &str,
        condition: Option<&str>,
    ) -> Result<PendingWait, ClientError> {
        let path = wait_path(id, condition);
        let response = self.open(Method::POST, &path, &[], transport::empty()).await?;
        Ok(PendingWait { response, client: self.clone(), path })
    }

    /// `DELETE /containers/{id}?force=&v=`.
    pub async fn container_remove(
        &self,
        id: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), ClientError> {
        let mut query = Vec::new();
        push_flag(&mut query, "force", force);
        push_flag(&mut query, "v", volumes);
        let path = with_query(&container_path(id, ""), &query);
        self.call(Method::DELETE, &path).await.map(|_| ())
    }

    /// `GET /containers/json`.
    pub async fn containers(
        &self,
        options: &ContainerListOptions,
    ) -> Result<Vec<ContainerSummary>, ClientError> {
        self.get_json(&list_path(options)).await
    }

    /// `GET /containers/{id}/json`.
    pub async fn container_inspect(&self, id: &str) -> Result<ContainerInspect, ClientError> {
        self.get_json(&container_path(id, "/json")).await
    }

    /// `GET /containers/{id}/json`, as the daemon sent it (every field, even
    /// those this client does not model).
    pub async fn container_inspect_raw(&self, id: &str) -> Result<serde_json::Value, ClientError> {
        self.container_inspect_raw_sized(id, false).await
    }

    /// [`Client::container_inspect_raw`], with `SizeRw` and `SizeRootFs`
    /// when `size` (`?size=1`, `inspect --size`).
    pub async fn container_inspect_raw_sized(
        &self,
        id: &str,
        size: bool,
    ) -> Result<serde_json::Value, ClientError> {
        let mut query = Vec::new();
        push_flag(&mut query, "size", size);
        self.get_json(&with_query(&container_path(id, "/json"), &query)).await
    }

    /// `GET /containers/{id}/logs`: the output, streamed as it comes.
    /// `tty` says how to read it when the answer does not (the container's
    /// `Config.Tty`).
    pub async fn container_logs(
        &self,
        id: &str,
        options: &LogsOptions,
        tty: bool,
    ) -> Result<OutputStream, ClientError> {
        let response =
            self.open(Method::GET, &logs_path(id, options), &[], transport::empty()).await?;
        let framing = framing(response.headers(), tty, self.api_version);
        Ok(OutputStream::from_body(response.into_body(), self.host.clone(), framing))
    }

    /// `POST /containers/{id}/attach`, hijacking the connection.
    pub async fn container_attach(
        &self,
        id: &str,
        options: &AttachOptions,
        tty: bool,
    ) -> Result<Attached, ClientError> {
        let path = attach_path(id, options);
        let response = self
            .open(Method::POST, &path, &transport::upgrade_headers(), transport::empty())
            .await?;
        hijacked(&self.host, self.api_version, &path, response, tty).await
    }

    /// `POST /containers/{id}/resize?h=&w=`: the tty's size.
    pub async fn container_resize(
        &self,
        id: &str,
        height: u32,
        width: u32,
    ) -> Result<(), ClientError> {
        let path = resize_path(&container_path(id, "/resize"), height, width);
        self.call(Method::POST, &path).await.map(|_| ())
    }

    /// `POST /containers/{id}/pause`.
    pub async fn container_pause(&self, id: &str) -> Result<(), ClientError> {
        self.call(Method::POST, &container_path(id, "/pause")).await.map(|_| ())
    }

    /// `POST /containers/{id}/unpause`.
    pub async fn container_unpause(&self, id: &str) -> Result<(), ClientError> {
        self.call(Method::POST, &container_path(id, "/unpause")).await.map(|_| ())
    }

    /// `POST /containers/{id}/rename?name=`.
    pub async fn container_rename(&self, id: &str, new_name: &str) -> Result<(), ClientError> {
        let path = with_query(&container_path(id, "/rename"), &[("name", new_name.to_owned())]);
        self.call(Method::POST, &path).await.map(|_| ())
    }

    /// `GET /containers/{id}/top?ps_args=`.
    /// `GET /containers/{id}/export`: the container's filesystem as a tar,
    /// written to `out` as it arrives.
    pub async fn container_export(
        &self,
        id: &str,
        out: &mut impl std::io::Write,
    ) -> Result<(), ClientError> {
        self.download(&format!("/containers/{}/export", escape_segment(id)), out).await
    }

    pub async fn container_top(
        &self,
        id: &str,
        ps_args: Option<&str>,
    ) -> Result<ContainerTopResponse, ClientError> {
        let mut query = Vec::new();
        if let Some(args) = ps_args.filter(|a| !a.is_empty()) {
            query.push(("ps_args", args.to_owned()));
        }
        self.get_json(&with_query(&container_path(id, "/top"), &query)).await
    }

    /// `POST /commit?container=…`: make an image of a container's changes;
    /// the new image's id.
    pub async fn container_commit(
        &self,
        container: &str,
        options: &CommitOptions,
    ) -> Result<IdResponse, ClientError> {
        let mut query = vec![("container", container.to_owned())];
        if let Some(reference) = &options.reference {
            let (repo, tag) = crate::image::split_tag(reference);
            query.push(("repo", repo.to_owned()));
            if let Some(tag) = tag {
                query.push(("tag", tag.to_owned()));
            }
        }
        if let Some(comment) = &options.comment {
            query.push(("comment", comment.clone()));
        }
        if let Some(author) = &options.author {
            query.push(("author", author.clone()));
        }
        query.push(("pause", options.pause.to_string()));
        query.extend(options.changes.iter().map(|c| ("changes", c.clone())));
        let path = with_query("/commit", &query);
        let answer = self.call_json(Method::POST, &path, &options.config).await?;
        self.decode(&path, &answer)
    }

    /// `POST /containers/prune?filters=`: remove stopped containers.
    pub async fn containers_prune(
        &self,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<ContainerPruneResponse, ClientError> {
        let mut query = Vec::new();
        if !filters.is_empty() {
            query.push(("filters", filters_json(filters)));
        }
        let path = with_query("/containers/prune", &query);
        let body = self.call(Method::POST, &path).await?;
        self.decode(&path, &body)
    }
}

/// `/containers/{id}{rest}`.
fn container_path(id: &str, rest: &str) -> String {
    format!("/containers/{}{rest}", escape_segment(id))
}

/// `stop`, `restart` and `kill`: `?signal=&t=`.
fn stop_path(id: &str, verb: &str, signal: Option<&str>, timeout: Option<i64>) -> String {
    let mut query = Vec::new();
    if let Some(signal) = signal.filter(|s| !s.is_empty()) {
        query.push(("signal", signal.to_owned()));
    }
    if let Some(timeout) = timeout {
        query.push(("t", timeout.to_string()));
    }
    with_query(&container_path(id, verb), &query)
}

fn wait_path(id: &str, condition: Option<&str>) -> String {
    let mut query = Vec::new();
    if let Some(condition) = condition.filter(|c| !c.is_empty()) {
        query.push(("condition", condition.to_owned()));
    }
    with_query(&container_path(id, "/wait"), &query)
}

/// `?h=&w=` on a resize path.
pub(crate) fn resize_path(path: &str, height: u32, width: u32) -> String {
    with_query(path, &[("h", height.to_string()), ("w", width.to_string())])
}

fn list_path(options: &ContainerListOptions) -> String {
    let mut query = Vec::new();
    push_flag(&mut query, "all", options.all);
    if let Some(limit) = options.limit.filter(|l| *l > 0) {
        query.push(("limit", limit.to_string()));
    }
    push_flag(&mut query, "size", options.size);
    if !options.filters.is_empty() {
        query.push(("filters", filters_json(&options.filters)));
    }
    with_query("/containers/json", &query)
}

fn logs_path(id: &str, options: &LogsOptions) -> String {
    let mut query = Vec::new();
    push_flag(&mut query, "stdout", options.stdout);
    push_flag(&mut query, "stderr", options.stderr);
    push_flag(&mut query, "follow", options.follow);
    push_flag(&mut query, "timestamps", options.timestamps);
    let texts = [("since", &options.since), ("until", &options.until), ("tail", &options.tail)];
    for (name, value) in texts {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            query.push((name, value.clone()));
        }
    }
    with_query(&container_path(id, "/logs"), &query)
}

fn attach_path(id: &str, options: &AttachOptions) -> String {
    let mut query = Vec::new();
    push_flag(&mut query, "stream", options.stream);
    push_flag(&mut query, "stdin", options.stdin);
    push_flag(&mut query, "stdout", options.stdout);
    push_flag(&mut query, "stderr", options.stderr);
    push_flag(&mut query, "logs", options.logs);
    if let Some(keys) = options.detach_keys.as_ref().filter(|k| !k.is_empty()) {
        query.push(("detachKeys", keys.clone()));
    }
    with_query(&container_path(id, "/attach"), &query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_queries_carry_only_what_is_set() {
        assert_eq!(list_path(&ContainerListOptions::default()), "/containers/json");
        let mut filters = BTreeMap::new();
        filters.insert("status".to_owned(), vec!["exited".to_owned()]);
        let options = ContainerListOptions { all: true, limit: Some(1), size: true, filters };
        assert_eq!(
            list_path(&options),
            "/containers/json?all=1&limit=1&size=1&filters=%7B%22status%22%3A%5B%22exited%22%5D%7D"
        );
        let no_limit = ContainerListOptions { limit: Some(-1), ..ContainerListOptions::default() };
        assert_eq!(list_path(&no_limit), "/containers/json");
    }

    #[test]
    fn verb_queries_name_the_container_and_options() {
        assert_eq!(
            stop_path("web", "/stop", Some("SIGTERM"), Some(3)),
            "/containers/web/stop?signal=SIGTERM&t=3"
        );
        assert_eq!(stop_path("web", "/kill", None, None), "/containers/web/kill");
        assert_eq!(
            wait_path("a b", Some("next-exit")),
            "/containers/a%20b/wait?condition=next-exit"
        );
        assert_eq!(wait_path("x", None), "/containers/x/wait");
        assert_eq!(resize_path("/exec/e/resize", 24, 80), "/exec/e/resize?h=24&w=80");
    }

    #[test]
    fn logs_and_attach_queries_follow_the_docker_client() {
        let logs = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            timestamps: false,
            since: Some("1700000000".to_owned()),
            until: None,
            tail: Some("all".to_owned()),
        };
        assert_eq!(
            logs_path("c", &logs),
            "/containers/c/logs?stdout=1&stderr=1&follow=1&since=1700000000&tail=all"
        );
        let attach = AttachOptions {
            stream: true,
            stdin: true,
            stdout: true,
            stderr: true,
            logs: false,
            detach_keys: Some("ctrl-p,ctrl-q".to_owned()),
        };
        assert_eq!(
            attach_path("c", &attach),
            "/containers/c/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-p%2Cctrl-q"
        );
    }
}

#[cfg(test)]
mod daemon_tests {
    use std::time::Duration;

    use crate::fake_daemon::{frame, send, FakeDaemon};
    use crate::stream::StreamKind;

    use super::*;

    #[tokio::test]
    async fn logs_stream_frames_split_across_chunks() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            send(
                &mut stream,
                b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\
                  Transfer-Encoding: chunked\r\n\r\n",
            )
            .await;
            let mut wire = frame(1, b"line 1\n");
            wire.extend(frame(2, b"warn\n"));
            wire.extend(frame(1, b"line 2\n"));
            for piece in wire.chunks(5) {
                send(&mut stream, format!("{:x}\r\n", piece.len()).as_bytes()).await;
                send(&mut stream, piece).await;
                send(&mut stream, b"\r\n").await;
            }
            send(&mut stream, b"0\r\n\r\n").await;
        });
        let options = LogsOptions { stdout: true, stderr: true, ..LogsOptions::default() };
        // The answer's Content-Type wins over the tty argument.
        let mut logs = daemon.client.container_logs("c", &options, true).await.expect("logs");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some((kind, bytes)) = logs.next().await.expect("next") {
            match kind {
                StreamKind::Stdout => out.extend_from_slice(&bytes),
                _ => err.extend_from_slice(&bytes),
            }
        }
        assert_eq!((out.as_slice(), err.as_slice()), (&b"line 1\nline 2\n"[..], &b"warn\n"[..]));
        let head = server.await.expect("server");
        assert!(head.starts_with("GET /v1.47/containers/c/logs?stdout=1&stderr=1 HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn a_wait_begins_when_the_head_arrives_and_ends_with_the_body() {
        let mut daemon = FakeDaemon::new();
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel::<()>();
        let server = daemon.serve(|mut stream| async move {
            send(
                &mut stream,
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            )
            .await;
            exit_rx.await.expect("the client saw the head first");
            let body = br#"{"StatusCode":3,"Error":null}"#;
            send(&mut stream, format!("{:x}\r\n", body.len()).as_bytes()).await;
            send(&mut stream, body).await;
            send(&mut stream, b"\r\n0\r\n\r\n").await;
        });
        let pending = tokio::time::timeout(
            Duration::from_secs(5),
            daemon.client.container_wait_begin("c", Some("next-exit")),
        )
        .await
        .expect("begin returns before the body")
        .expect("begin");
        exit_tx.send(()).expect("server waiting");
        let result = pending.result().await.expect("result");
        assert_eq!(result.status_code, 3);
        let head = server.await.expect("server");
        assert!(head.starts_with("POST /v1.47/containers/c/wait?condition=next-exit HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn starting_a_running_container_is_not_an_error() {
        let mut daemon = FakeDaemon::new();
        let _server = daemon.serve(|mut stream| async move {
            send(&mut stream, b"HTTP/1.1 304 Not Modified\r\n\r\n").await;
        });
        daemon.client.container_start("c").await.expect("304 is success");
    }

    #[tokio::test]
    async fn create_sends_json_with_name_and_platform() {
        let mut daemon = FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            let body = br#"{"Id":"abc","Warnings":[]}"#;
            let head = format!("HTTP/1.1 201 Created\r\nContent-Length: {}\r\n\r\n", body.len());
            send(&mut stream, head.as_bytes()).await;
            send(&mut stream, body).await;
        });
        let request = ContainerCreateRequest::default();
        let created = daemon
            .client
            .container_create(Some("web"), Some("linux/amd64"), &request)
            .await
            .expect("create");
        assert_eq!(created.id, "abc");
        let head = server.await.expect("server").to_ascii_lowercase();
        assert!(
            head.starts_with("post /v1.47/containers/create?name=web&platform=linux%2famd64 "),
            "{head}"
        );
        assert!(head.contains("content-type: application/json\r\n"), "{head}");
    }
}
