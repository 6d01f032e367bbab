//! `POST /images/create?fromImage=`: a pull, its progress read as it comes.

use http::{HeaderName, HeaderValue, Method};
use http_body_util::BodyExt as _;
use kiln_api_types::JsonMessage;

use crate::error::ClientError;
use crate::image::split_tag;
use crate::query::with_query;
use crate::transport;
use crate::{check_status, Client};

/// What `docker pull` sends besides the reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullOptions {
    /// `--platform os/arch[/variant]`.
    pub platform: Option<String>,
    /// The `X-Registry-Auth` header's value ([`crate::AuthConfig::encode`])
    /// for the image's registry; none is sent when `None`.
    pub registry_auth: Option<String>,
}

/// `name[:tag|@digest]` as `fromImage` and `tag`, as the docker CLI sends
/// them: a digest goes in `tag`, and a bare name gets `latest`.
pub fn pull_query(reference: &str) -> (String, String) {
    if let Some((name, digest)) = reference.split_once('@') {
        return (name.to_owned(), digest.to_owned());
    }
    match split_tag(reference) {
        (name, Some(tag)) => (name.to_owned(), tag.to_owned()),
        (name, None) => (name.to_owned(), "latest".to_owned()),
    }
}

impl Client {
    /// Pull `reference`, calling `on_message` for each progress message as
    /// it arrives. An error before the pull starts is [`ClientError::Api`]
    /// (404 for an unknown tag); one inside the stream is
    /// [`ClientError::Stream`].
    pub async fn image_pull(
        &self,
        reference: &str,
        options: &PullOptions,
        mut on_message: impl FnMut(&JsonMessage),
    ) -> Result<(), ClientError> {
        let (image, tag) = pull_query(reference);
        let mut query = vec![("fromImage", image), ("tag", tag)];
        if let Some(platform) = &options.platform {
            query.push(("platform", platform.clone()));
        }
        let path = self.versioned(&with_query("/images/create", &query));
        let mut headers = Vec::new();
        if let Some(auth) = &options.registry_auth {
            let value = HeaderValue::from_str(auth)
                .map_err(|e| ClientError::Request { path: path.clone(), source: e.into() })?;
            headers.push((HeaderName::from_static("x-registry-auth"), value));
        }
        let response =
            transport::send_with(&self.host, Method::POST, &path, &headers, transport::empty())
                .await?;
        let (parts, mut body) = response.into_parts();
        let http_err = |source| ClientError::Http { host: self.host.clone(), source };
        if !parts.status.is_success() {
            let bytes = body.collect().await.map_err(http_err)?.to_bytes();
            return check_status(parts.status, &bytes);
        }
        let mut pending: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(http_err)?.into_data() else { continue };
            pending.extend_from_slice(&data);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                handle_line(&path, &line, &mut on_message)?;
            }
        }
        handle_line(&path, &pending, &mut on_message)
    }
}

pub(crate) fn handle_line(
    path: &str,
    line: &[u8],
    on_message: &mut impl FnMut(&JsonMessage),
) -> Result<(), ClientError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let message: JsonMessage = serde_json::from_slice(line)
        .map_err(|source| ClientError::Decode { path: path.to_owned(), source })?;
    if let Some(error) =
        message.error.clone().or_else(|| message.error_detail.clone().map(|d| d.message))
    {
        return Err(ClientError::Stream { message: error });
    }
    on_message(&message);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_from_image_and_tag() {
        assert_eq!(pull_query("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(pull_query("localhost:5000/a:1"), ("localhost:5000/a".into(), "1".into()));
        assert_eq!(pull_query("a@sha256:ab"), ("a".into(), "sha256:ab".into()));
    }

    #[tokio::test]
    async fn credentials_go_in_x_registry_auth_and_only_when_given() {
        use crate::fake_daemon::{json_answer, send, FakeDaemon};
        for auth in [Some("eyJ1c2VybmFtZSI6ImEifQ=="), None] {
            let mut daemon = FakeDaemon::new();
            let server = daemon.serve(|mut stream| async move {
                let body = r#"{"status":"Status: Image is up to date for a:1"}"#;
                send(&mut stream, &json_answer("200 OK", body)).await;
            });
            let options =
                PullOptions { registry_auth: auth.map(str::to_owned), ..PullOptions::default() };
            daemon.client.image_pull("a:1", &options, |_| {}).await.expect("pull");
            let head = server.await.expect("server").to_ascii_lowercase();
            match auth {
                Some(value) => assert!(
                    head.contains(&format!("x-registry-auth: {}\r\n", value.to_ascii_lowercase())),
                    "{head}"
                ),
                None => assert!(!head.contains("x-registry-auth"), "{head}"),
            }
        }
    }

    #[test]
    fn a_stream_error_line_ends_the_pull() {
        let mut seen = Vec::new();
        let ok = br#"{"status":"Pulling from a","id":"1"}"#;
        handle_line("/p", ok, &mut |m: &JsonMessage| seen.push(m.status.clone())).unwrap();
        assert_eq!(seen, [Some("Pulling from a".to_owned())]);
        let bad = br#"{"errorDetail":{"message":"boom"},"error":"boom"}"#;
        let err = handle_line("/p", bad, &mut |_: &JsonMessage| {}).unwrap_err();
        assert_eq!(err.to_string(), "boom");
    }
}
