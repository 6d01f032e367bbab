//! Routing: method and path → handler, after the API version check.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response};
use hyper::body::Body as HttpBody;
use kiln_engine::Engine;

use crate::auth;
use crate::bootstrap;
use crate::build;
use crate::commit;
use crate::container;
use crate::error::ApiError;
use crate::events;
use crate::image;
use crate::network;
use crate::push;
use crate::query::{self, Query};
use crate::reply::{self, Body};
use crate::stream::body_reader;
use crate::system;
use crate::versioning;
use crate::volume;

/// The API of one engine: turns requests into answers. Cheap to clone; one
/// per server, shared by every connection.
#[derive(Debug, Clone)]
pub struct Api {
    engine: Arc<Engine>,
}

/// The endpoints we serve, by their path after the version prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Ping,
    PingHead,
    Version,
    Info,
    DiskUsage,
    /// `POST /auth`: `docker login`.
    Auth,
    ImageList,
    ImageLoad,
    ImageCreate,
    ImagePrune,
    /// `GET /images/get?names=…`.
    ImageSaveMany,
    ImageInspect(String),
    ImageHistory(String),
    ImageTag(String),
    ImagePush(String),
    /// `GET /images/{name}/get`.
    ImageSave(String),
    ImageDelete(String),
    /// `POST /kiln/images/bootstrap`: Kiln's own, not dockerd's.
    ImageBootstrap,
    Build,
    BuildPrune,
    ContainerCreate,
    ContainerList,
    ContainerPrune,
    /// `POST /commit?container=…`.
    Commit,
    /// `/containers/{id}/{action}` (`""` for `DELETE /containers/{id}`).
    Container(String, ContainerAction),
    /// `/exec/{id}/{action}`.
    Exec(String, ExecAction),
    Events,
    VolumeList,
    VolumeCreate,
    VolumePrune,
    VolumeInspect(String),
    VolumeDelete(String),
    NetworkList,
    NetworkCreate,
    NetworkPrune,
    NetworkInspect(String),
    NetworkDelete(String),
    NetworkConnect(String),
    NetworkDisconnect(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContainerAction {
    Inspect,
    Start,
    Stop,
    Restart,
    Kill,
    Wait,
    Pause,
    Unpause,
    Rename,
    Resize,
    Attach,
    Logs,
    Top,
    Stats,
    Changes,
    ArchiveHead,
    ArchiveGet,
    Export,
    ArchivePut,
    ExecCreate,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExecAction {
    Start,
    Resize,
    Inspect,
}

/// `/containers/{id}/…` and `/exec/{id}/…`: ids and names hold no `/`.
fn container_route(method: &Method, path: &str) -> Option<Route> {
    if let Some(rest) = path.strip_prefix("/containers/") {
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        if id.is_empty() {
            return None;
        }
        use ContainerAction as A;
        let action = match (method, action) {
            (&Method::GET, "json") => A::Inspect,
            (&Method::POST, "start") => A::Start,
            (&Method::POST, "stop") => A::Stop,
            (&Method::POST, "restart") => A::Restart,
            (&Method::POST, "kill") => A::Kill,
            (&Method::POST, "wait") => A::Wait,
            (&Method::POST, "pause") => A::Pause,
            (&Method::POST, "unpause") => A::Unpause,
            (&Method::POST, "rename") => A::Rename,
            (&Method::POST, "resize") => A::Resize,
            (&Method::POST, "attach") => A::Attach,
            (&Method::GET, "logs") => A::Logs,
            (&Method::GET, "top") => A::Top,
            (&Method::GET, "stats") => A::Stats,
            (&Method::GET, "changes") => A::Changes,
            (&Method::HEAD, "archive") => A::ArchiveHead,
            (&Method::GET, "archive") => A::ArchiveGet,
            (&Method::GET, "export") => A::Export,
            (&Method::PUT, "archive") => A::ArchivePut,
            (&Method::POST, "exec") => A::ExecCreate,
            (&Method::DELETE, "") => A::Delete,
            _ => return None,
        };
        return Some(Route::Container(query::decode(id, false), action));
    }
    let rest = path.strip_prefix("/exec/")?;
    let (id, action) = rest.split_once('/')?;
    let action = match (method, action) {
        (&Method::POST, "start") => ExecAction::Start,
        (&Method::POST, "resize") => ExecAction::Resize,
        (&Method::GET, "json") => ExecAction::Inspect,
        _ => return None,
    };
    Some(Route::Exec(query::decode(id, false), action))
}

/// The route of a method and (unversioned) path, if any.
fn route(method: &Method, path: &str) -> Option<Route> {
    let route = match (method, path) {
        (&Method::GET, "/_ping") => Route::Ping,
        (&Method::HEAD, "/_ping") => Route::PingHead,
        (&Method::GET, "/version") => Route::Version,
        (&Method::GET, "/info") => Route::Info,
        (&Method::GET, "/system/df") => Route::DiskUsage,
        (&Method::POST, "/auth") => Route::Auth,
        (&Method::GET, "/images/json") => Route::ImageList,
        (&Method::POST, "/images/load") => Route::ImageLoad,
        (&Method::POST, "/images/create") => Route::ImageCreate,
        (&Method::POST, "/images/prune") => Route::ImagePrune,
        (&Method::GET, "/images/get") => Route::ImageSaveMany,
        (&Method::POST, "/kiln/images/bootstrap") => Route::ImageBootstrap,
        (&Method::POST, "/build") => Route::Build,
        (&Method::POST, "/build/prune") => Route::BuildPrune,
        (&Method::POST, "/containers/create") => Route::ContainerCreate,
        (&Method::GET, "/containers/json") => Route::ContainerList,
        (&Method::POST, "/containers/prune") => Route::ContainerPrune,
        (&Method::POST, "/commit") => Route::Commit,
        (&Method::GET, "/events") => Route::Events,
        (&Method::GET, "/volumes") => Route::VolumeList,
        (&Method::POST, "/volumes/create") => Route::VolumeCreate,
        (&Method::POST, "/volumes/prune") => Route::VolumePrune,
        (&Method::GET, p) if p.starts_with("/volumes/") && p.len() > 9 => {
            Route::VolumeInspect(query::decode(&p[9..], false))
        }
        (&Method::DELETE, p) if p.starts_with("/volumes/") && p.len() > 9 => {
            Route::VolumeDelete(query::decode(&p[9..], false))
        }
        (&Method::GET, "/networks") => Route::NetworkList,
        (&Method::POST, "/networks/create") => Route::NetworkCreate,
        (&Method::POST, "/networks/prune") => Route::NetworkPrune,
        _ if path.starts_with("/networks/") => return network_route(method, &path[10..]),
        _ if path.starts_with("/containers/") || path.starts_with("/exec/") => {
            return container_route(method, path)
        }
        _ => return image_route(method, path.strip_prefix("/images/")?),
    };
    Some(route)
}

/// `/networks/{id}` and `/networks/{id}/connect|disconnect`: names hold no `/`.
fn network_route(method: &Method, rest: &str) -> Option<Route> {
    let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
    if id.is_empty() {
        return None;
    }
    let id = query::decode(id, false);
    match (method, action) {
        (&Method::GET, "") => Some(Route::NetworkInspect(id)),
        (&Method::DELETE, "") => Some(Route::NetworkDelete(id)),
        (&Method::POST, "connect") => Some(Route::NetworkConnect(id)),
        (&Method::POST, "disconnect") => Some(Route::NetworkDisconnect(id)),
        _ => None,
    }
}

/// `/images/{name}/…`: image names may hold `/` (`localhost:5000/a/b:1`),
/// so the route is told by its suffix and the name is what precedes it.
fn image_route(method: &Method, rest: &str) -> Option<Route> {
    let name = |suffix: &str| {
        rest.strip_suffix(suffix)
            .filter(|name| !name.is_empty())
            .map(|name| query::decode(name, false))
    };
    match *method {
        Method::GET => name("/json")
            .map(Route::ImageInspect)
            .or_else(|| name("/history").map(Route::ImageHistory))
            .or_else(|| name("/get").map(Route::ImageSave)),
        Method::POST => {
            name("/tag").map(Route::ImageTag).or_else(|| name("/push").map(Route::ImagePush))
        }
        Method::DELETE => name("").map(Route::ImageDelete),
        _ => None,
    }
}

impl Api {
    pub fn new(engine: Arc<Engine>) -> Api {
        Api { engine }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Answer one request. Never fails: errors become `{"message": ...}`
    /// answers with their status. Request bodies (archives to load or
    /// import) stream to the engine as they arrive.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let mut response = self.dispatch(request).await.unwrap_or_else(|err| reply::error(&err));
        reply::add_common_headers(&mut response);
        let status = response.status().as_u16();
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if response.status().is_server_error() {
            tracing::error!(%method, %path, status, micros, "request failed");
        } else {
            tracing::debug!(%method, %path, status, micros, "request");
        }
        response
    }

    async fn dispatch<B>(&self, request: Request<B>) -> Result<Response<Body>, ApiError>
    where
        B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let (requested, rest) = versioning::split_version(request.uri().path());
        // As dockerd: an unknown path is 404 whatever version it names.
        let route = route(request.method(), rest).ok_or_else(ApiError::page_not_found)?;
        let version = versioning::negotiate(requested)?;
        let query = Query::parse(request.uri().query());
        let engine = Arc::clone(&self.engine);
        let response = match route {
            Route::Ping => system::ping(),
            Route::PingHead => system::ping_head(),
            Route::Version => system::version(&self.engine, version),
            Route::Info => system::info(&self.engine, version),
            Route::DiskUsage => image::disk_usage(engine).await?,
            Route::Auth => auth::login(request.into_body()).await?,
            Route::ImageList => image::list(engine, &query).await?,
            Route::ImageInspect(name) => image::inspect(engine, name).await?,
            Route::ImageHistory(name) => image::history(engine, name).await?,
            Route::ImageTag(name) => image::tag(engine, name, &query).await?,
            Route::ImagePush(name) => push::push(engine, name, &query, request.headers()).await?,
            Route::ImageDelete(name) => image::remove(engine, name, &query).await?,
            Route::ImageSave(name) => image::save(engine, vec![name]).await?,
            Route::ImagePrune => image::prune(engine, &query).await?,
            Route::ImageSaveMany => image::save(engine, query.all("names")).await?,
            Route::ImageBootstrap => bootstrap::bootstrap(engine, &query).await?,
            Route::Build => build::build(engine, &query, request).await?,
            Route::BuildPrune => build::prune()?,
            Route::ImageLoad => image::load(engine, body_reader(request.into_body())).await?,
            Route::ImageCreate => {
                let headers = request.headers().clone();
                image::create(engine, &query, &headers, body_reader(request.into_body())).await?
            }
            Route::ContainerCreate => {
                container::create(engine, &query, request.into_body()).await?
            }
            Route::ContainerList => container::list(engine, &query).await?,
            Route::ContainerPrune => container::prune(engine, &query).await?,
            Route::Commit => commit::commit(engine, &query, request.into_body()).await?,
            Route::Container(id, action) => {
                use ContainerAction as A;
                match action {
                    A::Inspect => container::inspect(engine, id, &query).await?,
                    A::Start => container::start(engine, id).await?,
                    A::Stop => container::stop(engine, id, &query).await?,
                    A::Restart => container::restart(engine, id, &query).await?,
                    A::Kill => container::kill(engine, id, &query).await?,
                    A::Wait => container::wait(engine, id, &query).await?,
                    A::Pause => container::pause(engine, id, true).await?,
                    A::Unpause => container::pause(engine, id, false).await?,
                    A::Rename => container::rename(engine, id, &query).await?,
                    A::Resize => container::resize(engine, id, &query).await?,
                    A::Attach => container::attach(engine, id, &query, request).await?,
                    A::Logs => container::logs(engine, id, &query).await?,
                    A::Top => container::top(engine, id, &query).await?,
                    A::Stats => container::stats(engine, id, &query).await?,
                    A::Changes => container::changes(engine, id).await?,
                    A::ArchiveHead => container::archive_head(engine, id, &query).await?,
                    A::ArchiveGet => container::archive_get(engine, id, &query).await?,
                    A::Export => container::export(engine, id).await?,
                    A::ArchivePut => {
                        container::archive_put(engine, id, &query, request.into_body()).await?
                    }
                    A::ExecCreate => {
                        container::exec_create(engine, id, request.into_body()).await?
                    }
                    A::Delete => container::remove(engine, id, &query).await?,
                }
            }
            Route::Events => events::stream(engine, &query).await?,
            Route::VolumeList => volume::list(engine, &query).await?,
            Route::VolumeCreate => volume::create(engine, request.into_body()).await?,
            Route::VolumePrune => volume::prune(engine, &query).await?,
            Route::VolumeInspect(name) => volume::inspect(engine, name).await?,
            Route::VolumeDelete(name) => volume::remove(engine, name, &query).await?,
            Route::NetworkList => network::list(engine, &query).await?,
            Route::NetworkCreate => network::create(engine, request.into_body()).await?,
            Route::NetworkPrune => network::prune(engine, &query).await?,
            Route::NetworkInspect(id) => network::inspect(engine, id, &query).await?,
            Route::NetworkDelete(id) => network::remove(engine, id).await?,
            Route::NetworkConnect(id) => network::connect(engine, id, request.into_body()).await?,
            Route::NetworkDisconnect(id) => {
                network::disconnect(engine, id, request.into_body()).await?
            }
            Route::Exec(id, action) => match action {
                ExecAction::Start => container::exec_start(engine, id, request).await?,
                ExecAction::Resize => container::exec_resize(engine, id, &query).await?,
                ExecAction::Inspect => container::exec_inspect(engine, id).await?,
            },
        };
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use kiln_engine::Config;

    struct Fixture {
        api: Api,
        _dir: kiln_testing::ScratchDir,
    }

    fn fixture() -> Fixture {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let engine = Engine::open(Config::new(dir.path().join("root"), dir.path().join("run")))
            .expect("engine");
        Fixture { api: Api::new(Arc::new(engine)), _dir: dir }
    }

    async fn call(api: &Api, method: Method, path: &str) -> (u16, http::HeaderMap, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("request");
        let response = api.handle(request).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        (status, headers, String::from_utf8(body.to_vec()).expect("utf-8"))
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
    }

    #[test]
    fn routes_match_method_and_path() {
        assert_eq!(route(&Method::GET, "/_ping"), Some(Route::Ping));
        assert_eq!(route(&Method::HEAD, "/_ping"), Some(Route::PingHead));
        assert_eq!(route(&Method::POST, "/info"), None);
        assert_eq!(route(&Method::GET, "/nope"), None);
        assert_eq!(route(&Method::GET, "/images/json"), Some(Route::ImageList));
        assert_eq!(
            route(&Method::GET, "/images/localhost:5000/a/b:1/json"),
            Some(Route::ImageInspect("localhost:5000/a/b:1".into()))
        );
        assert_eq!(route(&Method::DELETE, "/images/a%2Fb"), Some(Route::ImageDelete("a/b".into())));
        assert_eq!(route(&Method::GET, "/images/x/get"), Some(Route::ImageSave("x".into())));
        assert_eq!(route(&Method::POST, "/images/x/tag"), Some(Route::ImageTag("x".into())));
        assert_eq!(
            route(&Method::POST, "/images/127.0.0.1:5000/a/push"),
            Some(Route::ImagePush("127.0.0.1:5000/a".into()))
        );
        assert_eq!(route(&Method::GET, "/images//json"), None);
        assert_eq!(route(&Method::POST, "/commit"), Some(Route::Commit));
        assert_eq!(route(&Method::POST, "/auth"), Some(Route::Auth));
        assert_eq!(route(&Method::POST, "/kiln/images/bootstrap"), Some(Route::ImageBootstrap));
    }

    #[test]
    fn network_routes_match_method_and_path() {
        assert_eq!(route(&Method::GET, "/networks"), Some(Route::NetworkList));
        assert_eq!(route(&Method::POST, "/networks/create"), Some(Route::NetworkCreate));
        assert_eq!(route(&Method::POST, "/networks/prune"), Some(Route::NetworkPrune));
        assert_eq!(
            route(&Method::GET, "/networks/a%2Eb"),
            Some(Route::NetworkInspect("a.b".into()))
        );
        assert_eq!(
            route(&Method::DELETE, "/networks/web"),
            Some(Route::NetworkDelete("web".into()))
        );
        assert_eq!(
            route(&Method::POST, "/networks/web/connect"),
            Some(Route::NetworkConnect("web".into()))
        );
        assert_eq!(
            route(&Method::POST, "/networks/web/disconnect"),
            Some(Route::NetworkDisconnect("web".into()))
        );
        assert_eq!(route(&Method::GET, "/networks/web/connect"), None);
        assert_eq!(route(&Method::GET, "/networks/"), None);
    }

    #[test]
    fn an_unknown_image_is_dockers_404() {
        let f = fixture();
        let (status, _, body) = block_on(call(&f.api, Method::GET, "/images/nope:1/json"));
        assert_eq!((status, body.as_str()), (404, "{\"message\":\"No such image: nope:1\"}\n"));
        let (status, _, body) = block_on(call(&f.api, Method::GET, "/images/json"));
        assert_eq!((status, body.as_str()), (200, "[]\n"));
        let (status, _, _) = block_on(call(&f.api, Method::GET, "/images/get?names=nope"));
        assert_eq!(status, 404);
    }

    #[test]
    fn ping_answers_ok_with_dockers_headers() {
        let f = fixture();
        let (status, headers, body) = block_on(call(&f.api, Method::GET, "/_ping"));
        assert_eq!((status, body.as_str()), (200, "OK"));
        assert_eq!(headers["api-version"], "1.47");
        assert_eq!(headers["ostype"], "linux");
        assert_eq!(headers["cache-control"], "no-cache, no-store, must-revalidate");
        assert!(headers["server"].to_str().expect("ascii").starts_with("Kiln/"));
        let (status, _, body) = block_on(call(&f.api, Method::HEAD, "/v1.41/_ping"));
        assert_eq!((status, body.as_str()), (200, ""));
    }

    #[test]
    fn errors_are_json_messages_with_their_status() {
        let f = fixture();
        let (status, headers, body) = block_on(call(&f.api, Method::GET, "/v1.40/version"));
        assert_eq!(status, 400);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["api-version"], "1.47");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert!(json["message"].as_str().expect("message").contains("is too old"), "{body}");
        let (status, _, body) = block_on(call(&f.api, Method::GET, "/v1.41/containers/x/nope"));
        assert_eq!((status, body.as_str()), (404, "{\"message\":\"page not found\"}\n"));
    }

    #[test]
    fn info_reports_the_engine_root() {
        let f = fixture();
        let (status, _, body) = block_on(call(&f.api, Method::GET, "/info"));
        assert_eq!(status, 200);
        let info: kiln_api_types::SystemInfo = serde_json::from_str(&body).expect("info");
        assert_eq!(info.docker_root_dir, f.api.engine().config().root.display().to_string());
        assert_eq!(info.driver, "overlay2");
    }
}
