//! `/containers/{id}/exec` and `/exec/...`: a second process in a running
//! container.

use http::Method;
use kiln_api_types::{ExecConfig, ExecInspect, ExecStartConfig, IdResponse};

use crate::attach::{hijacked, Attached};
use crate::container::resize_path;
use crate::error::ClientError;
use crate::query::escape_segment;
use crate::{transport, Client};

impl Client {
    /// `POST /containers/{id}/exec`: create the exec instance; its id.
    pub async fn exec_create(
        &self,
        container: &str,
        config: &ExecConfig,
    ) -> Result<IdResponse, ClientError> {
        let path = format!("/containers/{}/exec", escape_segment(container));
        let body = self.call_json(Method::POST, &path, config).await?;
        self.decode(&path, &body)
    }

    /// `POST /exec/{id}/start`: with `detach`, start it and return `None`;
    /// else hijack the connection for its stdio.
    pub async fn exec_start(
        &self,
        exec_id: &str,
        config: &ExecStartConfig,
    ) -> Result<Option<Attached>, ClientError> {
        let path = exec_path(exec_id, "/start");
        let body = transport::json_body(&path, config)?;
        if config.detach {
            let response = self.open(Method::POST, &path, &transport::json_headers(), body).await?;
            self.read_body(response.into_body()).await?;
            return Ok(None);
        }
        let [content_type] = transport::json_headers();
        let [connection, upgrade] = transport::upgrade_headers();
        let response =
            self.open(Method::POST, &path, &[content_type, connection, upgrade], body).await?;
        hijacked(&self.host, self.api_version, &path, response, config.tty).await.map(Some)
    }

    /// `POST /exec/{id}/resize?h=&w=`.
    pub async fn exec_resize(
        &self,
        exec_id: &str,
        height: u32,
        width: u32,
    ) -> Result<(), ClientError> {
        let path = resize_path(&exec_path(exec_id, "/resize"), height, width);
        self.call(Method::POST, &path).await.map(|_| ())
    }

    /// `GET /exec/{id}/json`.
    pub async fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspect, ClientError> {
        self.get_json(&exec_path(exec_id, "/json")).await
    }
}

/// `/exec/{id}{rest}`.
fn exec_path(exec_id: &str, rest: &str) -> String {
    format!("/exec/{}{rest}", escape_segment(exec_id))
}
