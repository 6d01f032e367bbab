//! `/images/...`: list, inspect, history, tag, remove, load, save, import.

use std::collections::BTreeMap;
use std::io::Write;

use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt as _;
use kiln_api_types::{
    DeleteItem, HistoryItem, ImageInspect, ImagePruneResponse, ImageSummary, JsonMessage,
};
use tokio::io::AsyncRead;

use crate::error::ClientError;
use crate::query::{escape_path, filters_json, with_query};
use crate::transport::{self, RequestBody};
use crate::{check_status, Client};

/// What `GET /images/json` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageListOptions {
    /// Intermediate images too (`-a`).
    pub all: bool,
    /// `--filter key=value`, grouped by key.
    pub filters: BTreeMap<String, Vec<String>>,
}

/// What `POST /images/create?fromSrc=-` makes of a rootfs tar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// `REPO[:TAG]` for the new image.
    pub reference: Option<String>,
    pub changes: Vec<String>,
    pub message: Option<String>,
}

impl Client {
    /// `GET /images/json`.
    pub async fn images(
        &self,
        options: &ImageListOptions,
    ) -> Result<Vec<ImageSummary>, ClientError> {
        let mut query = Vec::new();
        if options.all {
            query.push(("all", "1".to_owned()));
        }
        if !options.filters.is_empty() {
            query.push(("filters", filters_json(&options.filters)));
        }
        self.get_json(&with_query("/images/json", &query)).await
    }

    /// `GET /images/{name}/json`, as the daemon sent it (every field, even
    /// those this client does not model).
    pub async fn image_inspect_raw(&self, name: &str) -> Result<serde_json::Value, ClientError> {
        self.get_json(&format!("/images/{}/json", escape_path(name))).await
    }

    /// `GET /images/{name}/json`.
    pub async fn image_inspect(&self, name: &str) -> Result<ImageInspect, ClientError> {
        self.get_json(&format!("/images/{}/json", escape_path(name))).await
    }

    /// `GET /images/{name}/history`.
    pub async fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>, ClientError> {
        self.get_json(&format!("/images/{}/history", escape_path(name))).await
    }

    /// `POST /images/{name}/tag?repo=&tag=`.
    pub async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<(), ClientError> {
        let path = with_query(
            &format!("/images/{}/tag", escape_path(name)),
            &[("repo", repo.to_owned()), ("tag", tag.to_owned())],
        );
        self.call(Method::POST, &path).await.map(|_| ())
    }

    /// `DELETE /images/{name}?force=`.
    pub async fn image_remove(
        &self,
        name: &str,
        force: bool,
    ) -> Result<Vec<DeleteItem>, ClientError> {
        let mut path = format!("/images/{}", escape_path(name));
        if force {
            path.push_str("?force=1");
        }
        let body = self.call(Method::DELETE, &path).await?;
        self.decode(&path, &body)
    }

    /// `POST /images/prune`: untagged images, or with `all` every unused one.
    pub async fn image_prune(&self, all: bool) -> Result<ImagePruneResponse, ClientError> {
        let mut path = "/images/prune".to_owned();
        if all {
            path = with_query(&path, &[("filters", r#"{"dangling":["false"]}"#.to_owned())]);
        }
        let body = self.call(Method::POST, &path).await?;
        self.decode(&path, &body)
    }

    /// `POST /images/load`: stream an archive to the daemon; the answer's
    /// messages (`Loaded image: …`). An error message in the stream is an error.
    pub async fn image_load(
        &self,
        archive: impl AsyncRead + Send + Unpin + 'static,
        quiet: bool,
    ) -> Result<Vec<JsonMessage>, ClientError> {
        let path = if quiet { "/images/load?quiet=1" } else { "/images/load?quiet=0" };
        self.json_stream(Method::POST, path, transport::from_reader(archive)).await
    }

    /// `GET /images/get?names=…`: write the archive to `out` as it arrives.
    pub async fn image_save(
        &self,
        names: &[String],
        out: &mut impl Write,
    ) -> Result<(), ClientError> {
        let query: Vec<(&str, String)> = names.iter().map(|n| ("names", n.clone())).collect();
        self.download(&with_query("/images/get", &query), out).await
    }

    /// `GET` an archive at `path` (unversioned) into `out` as it arrives.
    pub(crate) async fn download(
        &self,
        path: &str,
        out: &mut impl Write,
    ) -> Result<(), ClientError> {
        let path = self.versioned(path);
        let response =
            transport::send_streaming(&self.host, Method::GET, &path, transport::empty()).await?;
        let (parts, mut body) = response.into_parts();
        let http_err = |source| ClientError::Http { host: self.host.clone(), source };
        if !parts.status.is_success() {
            let bytes = body.collect().await.map_err(http_err)?.to_bytes();
            return check_status(parts.status, &bytes);
        }
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(http_err)?.into_data() {
                out.write_all(&data).map_err(|source| ClientError::Output { source })?;
            }
        }
        out.flush().map_err(|source| ClientError::Output { source })
    }

    /// `POST /images/create?fromSrc=-`: import a rootfs tar; the answer's
    /// messages (the new image's id as a `status`).
    pub async fn image_import(
        &self,
        rootfs: impl AsyncRead + Send + Unpin + 'static,
        options: &ImportOptions,
    ) -> Result<Vec<JsonMessage>, ClientError> {
        let mut query = vec![("fromSrc", "-".to_owned())];
        if let Some(reference) = &options.reference {
            let (repo, tag) = split_tag(reference);
            query.push(("repo", repo.to_owned()));
            if let Some(tag) = tag {
                query.push(("tag", tag.to_owned()));
            }
        }
        if let Some(message) = &options.message {
            query.push(("message", message.clone()));
        }
        query.extend(options.changes.iter().map(|c| ("changes", c.clone())));
        let path = with_query("/images/create", &query);
        self.json_stream(Method::POST, &path, transport::from_reader(rootfs)).await
    }

    /// Send a request whose answer is a JSON-message stream; read it whole.
    async fn json_stream(
        &self,
        method: Method,
        path: &str,
        body: RequestBody,
    ) -> Result<Vec<JsonMessage>, ClientError> {
        let path = self.versioned(path);
        let response = transport::send_streaming(&self.host, method, &path, body).await?;
        let (parts, body) = response.into_parts();
        let http_err = |source| ClientError::Http { host: self.host.clone(), source };
        let bytes = body.collect().await.map_err(http_err)?.to_bytes();
        check_status(parts.status, &bytes)?;
        parse_messages(&path, &bytes)
    }
}

/// The messages of a JSON-message stream (objects one after another);
/// the first error message becomes [`ClientError::Stream`].
fn parse_messages(path: &str, bytes: &Bytes) -> Result<Vec<JsonMessage>, ClientError> {
    let mut out = Vec::new();
    for message in serde_json::Deserializer::from_slice(bytes).into_iter::<JsonMessage>() {
        let message =
            message.map_err(|source| ClientError::Decode { path: path.to_owned(), source })?;
        if let Some(error) =
            message.error.clone().or_else(|| message.error_detail.clone().map(|d| d.message))
        {
            return Err(ClientError::Stream { message: error });
        }
        out.push(message);
    }
    Ok(out)
}

/// `name:tag` → (`name`, `tag`); the colon of a registry port is not a tag.
pub fn split_tag(reference: &str) -> (&str, Option<&str>) {
    match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (reference, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(split_tag("busybox:1"), ("busybox", Some("1")));
        assert_eq!(split_tag("localhost:5000/a"), ("localhost:5000/a", None));
        assert_eq!(split_tag("localhost:5000/a:2"), ("localhost:5000/a", Some("2")));
        assert_eq!(split_tag("a"), ("a", None));
    }

    #[test]
    fn an_error_in_a_message_stream_is_an_error() {
        let ok = Bytes::from_static(b"{\"stream\":\"Loaded image: a:1\\n\"}\n{\"status\":\"x\"}");
        assert_eq!(parse_messages("/p", &ok).expect("ok").len(), 2);
        let bad =
            Bytes::from_static(b"{\"errorDetail\":{\"message\":\"boom\"},\"error\":\"boom\"}");
        assert_eq!(parse_messages("/p", &bad).expect_err("error").to_string(), "boom");
    }
}
