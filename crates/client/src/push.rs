//! `POST /images/{name}/push?tag=`: a push, its progress read as it comes.

use http::{HeaderName, HeaderValue, Method};
use http_body_util::BodyExt as _;
use kiln_api_types::JsonMessage;

use crate::error::ClientError;
use crate::image::split_tag;
use crate::query::with_query;
use crate::transport;
use crate::{check_status, Client};

/// `X-Registry-Auth` when there are no credentials: `{}` in base64, which
/// dockerd wants at least (it reads the body for credentials otherwise).
const NO_AUTH: &str = "e30=";

/// What `docker push` sends besides the name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOptions {
    /// `--all-tags`: every tag of the repository, the name carrying none.
    pub all_tags: bool,
    /// The `X-Registry-Auth` header's value (base64url JSON credentials).
    pub registry_auth: Option<String>,
    /// `--compression gzip|zstd` (Kiln's own; dockerd ignores it).
    pub compression: Option<String>,
}

/// `name[:tag]` as the path's name and the `tag` query, as the docker CLI
/// sends them: a bare name gets `latest`, or no tag at all (every tag)
/// with `all_tags`.
pub fn push_query(reference: &str, all_tags: bool) -> (String, String) {
    match split_tag(reference) {
        (name, Some(tag)) => (name.to_owned(), tag.to_owned()),
        (name, None) if all_tags => (name.to_owned(), String::new()),
        (name, None) => (name.to_owned(), "latest".to_owned()),
    }
}

impl Client {
    /// Push `reference`, calling `on_message` for each progress message as
    /// it arrives. An error before the push starts is [`ClientError::Api`]
    /// (404 for an image that does not exist); one inside the stream is
    /// [`ClientError::Stream`].
    pub async fn image_push(
        &self,
        reference: &str,
        options: &PushOptions,
        mut on_message: impl FnMut(&JsonMessage),
    ) -> Result<(), ClientError> {
        let (name, tag) = push_query(reference, options.all_tags);
        let mut query = vec![("tag", tag)];
        if let Some(compression) = &options.compression {
            query.push(("compression", compression.clone()));
        }
        let path = self.versioned(&with_query(&format!("/images/{name}/push"), &query));
        let auth = options.registry_auth.as_deref().unwrap_or(NO_AUTH);
        let auth = HeaderValue::from_str(auth)
            .map_err(|e| ClientError::Request { path: path.clone(), source: e.into() })?;
        let headers = [(HeaderName::from_static("x-registry-auth"), auth)];
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
                crate::pull::handle_line(&path, &line, &mut on_message)?;
            }
        }
        crate::pull::handle_line(&path, &pending, &mut on_message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_name_and_tag() {
        assert_eq!(push_query("busybox", false), ("busybox".into(), "latest".into()));
        assert_eq!(push_query("busybox", true), ("busybox".into(), String::new()));
        assert_eq!(
            push_query("localhost:5000/a:1", false),
            ("localhost:5000/a".into(), "1".into())
        );
        assert_eq!(
            push_query("localhost:5000/a", false),
            ("localhost:5000/a".into(), "latest".into())
        );
    }
}
