//! `POST /kiln/images/bootstrap`: Kiln's own route for `kiln image
//! bootstrap` (dockerd answers it with 404). Its progress is read line by
//! line as it arrives, so that a minute-long build shows what it is doing.

use bytes::BytesMut;
use http::Method;
use kiln_api_types::JsonMessage;

use crate::error::ClientError;
use crate::query::with_query;
use crate::stream::{Framing, OutputStream};
use crate::{transport, Client};

/// What `kiln image bootstrap` asks the daemon to build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootstrapOptions {
    /// `bookworm`, `stable`, or `debian:bookworm`.
    pub suite: String,
    /// Packages on top of the variant's set.
    pub include: Vec<String>,
    /// mmdebstrap's `--variant`; the daemon's default (minbase) when `None`.
    pub variant: Option<String>,
    pub mirror: Option<String>,
    /// `SOURCE_DATE_EPOCH`; the daemon's default (0) when `None`.
    pub source_date_epoch: Option<String>,
    pub changes: Vec<String>,
    /// `REPO[:TAG]` for the new image.
    pub tag: String,
}

impl Client {
    /// `POST /kiln/images/bootstrap`: `progress` gets each line the daemon
    /// reports while it builds; the answer is the new image's id. An error
    /// in the stream (a package that does not exist) is
    /// [`ClientError::Stream`] with the daemon's message.
    pub async fn image_bootstrap(
        &self,
        options: &BootstrapOptions,
        mut progress: impl FnMut(&str),
    ) -> Result<String, ClientError> {
        let path = bootstrap_path(options);
        let response = self.open(Method::POST, &path, &[], transport::empty()).await?;
        let mut body =
            OutputStream::from_body(response.into_body(), self.host.clone(), Framing::Raw);
        let mut buf = BytesMut::new();
        let mut id = None;
        let mut done = false;
        while !done {
            match body.next().await? {
                Some((_, chunk)) => buf.extend_from_slice(&chunk),
                None => {
                    done = true;
                    if !buf.ends_with(b"\n") {
                        buf.extend_from_slice(b"\n");
                    }
                }
            }
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line = buf.split_to(end + 1);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let message: JsonMessage = serde_json::from_slice(&line).map_err(|source| {
                    ClientError::Decode { path: self.versioned(&path), source }
                })?;
                if let Some(error) =
                    message.error.or_else(|| message.error_detail.map(|d| d.message))
                {
                    return Err(ClientError::Stream { message: error });
                }
                if let Some(text) = &message.stream {
                    progress(text.trim_end_matches('\n'));
                }
                if let Some(status) = message.status {
                    id = Some(status);
                }
            }
        }
        id.ok_or_else(|| ClientError::Stream {
            message: "the daemon ended the bootstrap without an image id".to_owned(),
        })
    }
}

fn bootstrap_path(options: &BootstrapOptions) -> String {
    let mut query = vec![("suite", options.suite.clone())];
    if !options.include.is_empty() {
        query.push(("include", options.include.join(",")));
    }
    for (key, value) in [
        ("variant", &options.variant),
        ("mirror", &options.mirror),
        ("epoch", &options.source_date_epoch),
    ] {
        if let Some(value) = value {
            query.push((key, value.clone()));
        }
    }
    query.push(("tag", options.tag.clone()));
    query.extend(options.changes.iter().map(|c| ("changes", c.clone())));
    with_query("/kiln/images/bootstrap", &query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_the_query() {
        let options = BootstrapOptions {
            suite: "debian:bookworm".into(),
            include: vec!["python3".into(), "python3-pip".into()],
            source_date_epoch: Some("0".into()),
            changes: vec![r#"CMD ["python3"]"#.into()],
            tag: "py:3.11".into(),
            ..Default::default()
        };
        assert_eq!(
            bootstrap_path(&options),
            "/kiln/images/bootstrap?suite=debian%3Abookworm&include=python3%2Cpython3-pip\
             &epoch=0&tag=py%3A3.11&changes=CMD%20%5B%22python3%22%5D"
        );
    }

    async fn answer(stream: &mut tokio::net::UnixStream, body: &[u8]) {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        crate::fake_daemon::send(stream, head.as_bytes()).await;
        for piece in body.chunks(5) {
            crate::fake_daemon::send(stream, piece).await;
        }
    }

    #[tokio::test]
    async fn progress_lines_come_out_and_the_status_is_the_id() {
        let mut daemon = crate::fake_daemon::FakeDaemon::new();
        let server = daemon.serve(|mut stream| async move {
            let body = b"{\"stream\":\"I: running apt-get update...\\n\"}\n\
                         {\"stream\":\"I: creating tarball...\\n\"}\n{\"status\":\"sha256:ab\"}\n";
            answer(&mut stream, body).await;
        });
        let options =
            BootstrapOptions { suite: "sid".into(), tag: "x".into(), ..Default::default() };
        let mut lines = Vec::new();
        let id = daemon
            .client
            .image_bootstrap(&options, |line| lines.push(line.to_owned()))
            .await
            .expect("bootstrap");
        assert_eq!(id, "sha256:ab");
        assert_eq!(lines, ["I: running apt-get update...", "I: creating tarball..."]);
        let head = server.await.expect("server");
        assert!(head.starts_with("POST /v1.47/kiln/images/bootstrap?suite=sid&tag=x "), "{head}");
    }

    #[tokio::test]
    async fn an_error_in_the_stream_is_the_error() {
        let mut daemon = crate::fake_daemon::FakeDaemon::new();
        let _server = daemon.serve(|mut stream| async move {
            let body = b"{\"stream\":\"I: x\\n\"}\n\
                         {\"errorDetail\":{\"code\":400,\"message\":\"cannot bootstrap sid: no\"},\"error\":\"cannot bootstrap sid: no\"}";
            answer(&mut stream, body).await;
        });
        let options =
            BootstrapOptions { suite: "sid".into(), tag: "x".into(), ..Default::default() };
        let err = daemon.client.image_bootstrap(&options, |_| {}).await.expect_err("error");
        assert_eq!(err.to_string(), "cannot bootstrap sid: no");
    }
}
