//! `/containers/...` and `/exec/...`: the engine's container service in the
//! API's shapes, including the hijacked streams of attach and exec.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Body as HttpBody;
use kiln_api_types as wire;
use kiln_engine::containers::archive;
use kiln_engine::containers::health::HealthStatus;
use kiln_engine::containers::{
    AttachOptions, Attached, ContainerRecord, CreateRequest, DeviceRequest, ExecRequest,
    HostOptions, ListOptions, LogOptions, MountRequest, ResourceRequest, RestartPolicy, RunConfig,
    ShimOutput, UlimitRequest, WaitCondition,
};
use kiln_engine::Engine;
use kiln_types::ContainerStatus;

use crate::error::ApiError;
use crate::query::Query;
use crate::reply::{self, Body};
use crate::stream::blocking;

const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
const MUX_STREAM: &str = "application/vnd.docker.multiplexed-stream";
/// How long an exec waits after its stream's 101, for clients that read
/// the head through a buffer (see `hijack_later`).
const EXEC_START_GRACE: std::time::Duration = std::time::Duration::from_millis(5);
/// Docker's "zero" time.
const NEVER: &str = "0001-01-01T00:00:00Z";

/// A JSON request body; an empty one is the type's default.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned + Default, B>(
    body: B,
) -> Result<T, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let bytes = body
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {}", e.into())))?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

fn no_content() -> Response<Body> {
    reply::empty(StatusCode::NO_CONTENT)
}

fn engine_err(err: kiln_engine::ContainerError) -> ApiError {
    ApiError::from_error(&err)
}

/// `POST /containers/create?name=`.
pub async fn create<B>(
    engine: Arc<Engine>,
    query: &Query,
    body: B,
) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let mut request: wire::ContainerCreateRequest = read_json(body).await?;
    if request.config.image.is_empty() {
        return Err(ApiError::bad_request("config cannot be empty in order to create a container"));
    }
    let name = query.get("name").map(str::to_owned);
    let endpoints = crate::network::endpoint_configs(request.networking_config.take());
    let request = to_engine_request(request)?;
    let (id, warnings) = blocking(move || {
        engine.containers().create_with_networks(name.as_deref(), request, endpoints)
    })
    .await?;
    Ok(reply::json(StatusCode::CREATED, &wire::ContainerCreateResponse { id, warnings }))
}

/// A config's `Healthcheck` in the engine's terms (create and commit).
pub(crate) fn healthcheck_to_engine(hc: wire::Healthcheck) -> kiln_engine::Healthcheck {
    kiln_engine::Healthcheck {
        test: hc.test,
        interval: hc.interval,
        timeout: hc.timeout,
        start_period: hc.start_period,
        start_interval: hc.start_interval,
        retries: hc.retries,
    }
}

fn to_engine_request(request: wire::ContainerCreateRequest) -> Result<CreateRequest, ApiError> {
    let c = request.config;
    let h = request.host_config;
    let healthcheck = c.healthcheck.map(healthcheck_to_engine);
    let mounts = h
        .mounts
        .unwrap_or_default()
        .into_iter()
        .map(|m| MountRequest {
            kind: m.kind,
            source: m.source,
            target: m.target,
            read_only: m.read_only,
            propagation: m.bind_options.map(|b| b.propagation).unwrap_or_default(),
            tmpfs_size: m.tmpfs_options.as_ref().map_or(0, |t| t.size_bytes),
            tmpfs_mode: m.tmpfs_options.map_or(0, |t| t.mode),
        })
        .collect();
    let port_bindings = h
        .port_bindings
        .unwrap_or_default()
        .into_iter()
        .map(|(port, bindings)| {
            let list = bindings
                .unwrap_or_default()
                .into_iter()
                .map(|b| (b.host_ip, b.host_port))
                .collect();
            (port, list)
        })
        .collect();
    Ok(CreateRequest {
        image: c.image,
        config: RunConfig {
            hostname: c.hostname,
            domainname: c.domainname,
            user: c.user,
            attach_stdin: c.attach_stdin,
            attach_stdout: c.attach_stdout,
            attach_stderr: c.attach_stderr,
            exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
            tty: c.tty,
            open_stdin: c.open_stdin,
            stdin_once: c.stdin_once,
            env: c.env.unwrap_or_default(),
            cmd: c.cmd.filter(|cmd| !cmd.is_empty()),
            healthcheck,
            volumes: c.volumes.unwrap_or_default().into_keys().collect(),
            working_dir: c.working_dir,
            entrypoint: c.entrypoint.filter(|ep| !ep.is_empty()),
            network_disabled: c.network_disabled.unwrap_or(false),
            mac_address: c.mac_address.unwrap_or_default(),
            labels: c.labels.unwrap_or_default(),
            stop_signal: c.stop_signal.filter(|s| !s.is_empty()),
            stop_timeout: c.stop_timeout,
        },
        host: HostOptions {
            binds: h.binds.unwrap_or_default(),
            mounts,
            tmpfs: h.tmpfs.unwrap_or_default(),
            volumes_from: h.volumes_from.unwrap_or_default(),
            auto_remove: h.auto_remove,
            network_mode: h.network_mode,
            port_bindings,
            publish_all_ports: h.publish_all_ports,
            restart_policy: RestartPolicy {
                name: h.restart_policy.name,
                maximum_retry_count: h.restart_policy.maximum_retry_count,
            },
            cap_add: h.cap_add.unwrap_or_default(),
            cap_drop: h.cap_drop.unwrap_or_default(),
            privileged: h.privileged,
            readonly_rootfs: h.readonly_rootfs,
            security_opt: h.security_opt.unwrap_or_default(),
            devices: h
                .devices
                .unwrap_or_default()
                .into_iter()
                .map(|d| DeviceRequest {
                    path_on_host: d.path_on_host,
                    path_in_container: d.path_in_container,
                    cgroup_permissions: d.cgroup_permissions,
                })
                .collect(),
            ulimits: h
                .ulimits
                .unwrap_or_default()
                .into_iter()
                .map(|u| UlimitRequest { name: u.name, soft: u.soft, hard: u.hard })
                .collect(),
            sysctls: h.sysctls.unwrap_or_default(),
            init: h.init,
            group_add: h.group_add.unwrap_or_default(),
            dns: h.dns.unwrap_or_default(),
            dns_search: h.dns_search.unwrap_or_default(),
            dns_options: h.dns_options.unwrap_or_default(),
            extra_hosts: h.extra_hosts.unwrap_or_default(),
            pid_mode: h.pid_mode,
            ipc_mode: h.ipc_mode,
            uts_mode: h.uts_mode,
            cgroup_parent: h.cgroup_parent,
            console_size: h.console_size.filter(|[a, b]| *a > 0 && *b > 0),
            log_driver: h.log_config.kind,
            log_options: h.log_config.config,
            resources: ResourceRequest {
                memory: h.memory,
                memory_swap: h.memory_swap,
                memory_reservation: h.memory_reservation,
                nano_cpus: h.nano_cpus,
                cpu_shares: h.cpu_shares,
                cpu_period: h.cpu_period,
                cpu_quota: h.cpu_quota,
                cpuset_cpus: h.cpuset_cpus,
                cpuset_mems: h.cpuset_mems,
                pids_limit: h.pids_limit,
                shm_size: h.shm_size,
                oom_kill_disable: h.oom_kill_disable,
                oom_score_adj: h.oom_score_adj,
                blkio_weight: h.blkio_weight,
            },
        },
    })
}

/// `GET /containers/json`.
pub async fn list(engine: Arc<Engine>, query: &Query) -> Result<Response<Body>, ApiError> {
    let filters: BTreeMap<String, Vec<String>> = match query.get("filters") {
        None | Some("") => BTreeMap::new(),
        Some(text) => parse_filters(text)?,
    };
    let mut limit = query.get("limit").and_then(|l| l.parse::<i64>().ok()).unwrap_or(0);
    if query.flag("latest") {
        limit = 1;
    }
    let options = ListOptions {
        all: query.flag("all"),
        limit: usize::try_from(limit.max(0)).unwrap_or(0),
        filters,
    };
    let records = engine.containers().list(&options).map_err(engine_err)?;
    let now = kiln_types::time::now().0;
    let with_size = query.flag("size");
    let rows = blocking(move || {
        let rows: Vec<wire::ContainerSummary> = records
            .iter()
            .map(|r| {
                let mut row = to_wire_summary(&engine, r, now);
                if with_size {
                    let (rw, rootfs) = engine.containers().sizes(&r.id);
                    row.size_rw = Some(rw);
                    row.size_root_fs = Some(rootfs);
                }
                row
            })
            .collect();
        Ok::<_, kiln_engine::ContainerError>(rows)
    })
    .await?;
    Ok(reply::json(StatusCode::OK, &rows))
}

/// `filters={"k":["v"]}` or the old `{"k":{"v":true}}`.
pub fn parse_filters(text: &str) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
    let mut out = BTreeMap::new();
    let serde_json::Value::Object(map) = value else {
        return Err(ApiError::bad_request("invalid filters: not an object"));
    };
    for (key, values) in map {
        let list = match values {
            serde_json::Value::Array(items) => {
                items.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
            }
            serde_json::Value::Object(items) => items
                .into_iter()
                .filter(|(_, v)| v.as_bool() == Some(true))
                .map(|(k, _)| k)
                .collect(),
            _ => {
                return Err(ApiError::bad_request(format!("invalid filters: bad value for {key}")))
            }
        };
        out.insert(key, list);
    }
    Ok(out)
}

fn command_line(record: &ContainerRecord) -> String {
    std::iter::once(record.path.as_str())
        .chain(record.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The ports the image of a running container exposes (`ps` shows them);
/// none for a stopped one, whose row shows no ports.
fn running_image_ports(engine: &Engine, record: &ContainerRecord) -> Vec<String> {
    if !record.state.status.is_alive() {
        return Vec::new();
    }
    engine
        .images()
        .inspect(&record.image_id.to_string())
        .ok()
        .and_then(|d| d.config.config)
        .map(|c| c.exposed_ports.into_keys().collect())
        .unwrap_or_default()
}

fn to_wire_summary(engine: &Engine, record: &ContainerRecord, now: i64) -> wire::ContainerSummary {
    let image_ports = running_image_ports(engine, record);
    let (ports, networks) = crate::network::container_summary(engine, record, &image_ports);
    wire::ContainerSummary {
        id: record.id.clone(),
        names: vec![format!("/{}", record.name)],
        image: record.request.image.clone(),
        image_id: record.image_id.to_string(),
        command: command_line(record),
        created: record.created.div_euclid(1_000_000_000),
        ports,
        labels: record.request.config.labels.clone(),
        state: record.state.status.as_str().to_owned(),
        status: status_text(record, now, engine.containers().health(&record.id).map(|h| h.status)),
        host_config: wire::SummaryHostConfig { network_mode: network_mode(record) },
        network_settings: wire::SummaryNetworkSettings { networks },
        mounts: record.mounts.iter().map(to_wire_mount).collect(),
        ..Default::default()
    }
}

fn network_mode(record: &ContainerRecord) -> String {
    match record.request.host.network_mode.as_str() {
        "" => "default".into(),
        mode => mode.to_owned(),
    }
}

/// `Up 2 minutes`, `Exited (0) 3 seconds ago`, `Created`, as `docker ps`.
fn status_text(record: &ContainerRecord, now: i64, health: Option<HealthStatus>) -> String {
    let s = &record.state;
    let since = |nanos: i64| human_duration(now - nanos.div_euclid(1_000_000_000));
    let health = match health {
        Some(HealthStatus::Starting) => " (health: starting)",
        Some(HealthStatus::Healthy) => " (healthy)",
        Some(HealthStatus::Unhealthy) => " (unhealthy)",
        None => "",
    };
    match s.status {
        ContainerStatus::Running => format!("Up {}{health}", since(s.started_at)),
        ContainerStatus::Paused => format!("Up {} (Paused)", since(s.started_at)),
        ContainerStatus::Restarting => {
            format!("Restarting ({}) {} ago", s.exit_code, since(s.finished_at))
        }
        ContainerStatus::Removing => "Removal In Progress".into(),
        ContainerStatus::Dead => "Dead".into(),
        ContainerStatus::Created => "Created".into(),
        ContainerStatus::Exited if s.finished_at == 0 => "Created".into(),
        ContainerStatus::Exited => format!("Exited ({}) {} ago", s.exit_code, since(s.finished_at)),
    }
}

/// Docker's `HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let minutes = secs / 60;
    let hours = minutes / 60;
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

fn to_wire_mount(m: &kiln_engine::containers::MountPoint) -> wire::MountPoint {
    wire::MountPoint {
        kind: m.kind.clone(),
        name: m.name.clone(),
        source: m.source.clone(),
        destination: m.destination.clone(),
        driver: if m.kind == "volume" { "local".into() } else { String::new() },
        mode: m.mode.clone(),
        rw: m.rw,
        propagation: m.propagation.clone(),
    }
}

fn rfc3339(nanos: i64) -> String {
    if nanos == 0 {
        return NEVER.to_owned();
    }
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    kiln_types::time::UtcTime::from_unix(secs).rfc3339_nanos(frac)
}

/// `GET /containers/{id}/json`.
pub async fn inspect(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let record = engine.containers().inspect(&name).map_err(engine_err)?;
    let mut inspect = to_wire_inspect(&engine, &record);
    if query.flag("size") {
        let (rw, rootfs) = blocking(move || {
            Ok::<_, kiln_engine::ContainerError>(engine.containers().sizes(&record.id))
        })
        .await?;
        inspect.size_rw = Some(rw);
        inspect.size_root_fs = Some(rootfs);
    }
    Ok(reply::json(StatusCode::OK, &inspect))
}

fn to_wire_inspect(engine: &Engine, record: &ContainerRecord) -> wire::ContainerInspect {
    let containers = engine.containers();
    let c = &record.request.config;
    let h = &record.request.host;
    let s = &record.state;
    let bundle = containers.bundle_dir(&record.id);
    let image_defaults =
        engine.images().inspect(&record.image_id.to_string()).ok().and_then(|d| d.config.config);
    let mut env = image_defaults.as_ref().map(|d| d.env.clone()).unwrap_or_default();
    for kv in &c.env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(kv.clone());
    }
    let hostname =
        if c.hostname.is_empty() { record.id[..12].to_owned() } else { c.hostname.clone() };
    let mut labels = image_defaults.as_ref().map(|d| d.labels.clone()).unwrap_or_default();
    labels.extend(c.labels.clone());
    let config = wire::ContainerConfig {
        hostname,
        domainname: c.domainname.clone(),
        user: if c.user.is_empty() {
            image_defaults.as_ref().and_then(|d| d.user.clone()).unwrap_or_default()
        } else {
            c.user.clone()
        },
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: (!c.exposed_ports.is_empty())
            .then(|| c.exposed_ports.iter().map(|p| (p.clone(), wire::EmptyObject {})).collect()),
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env: Some(env),
        cmd: c.cmd.clone().or_else(|| {
            if c.entrypoint.is_some() {
                None
            } else {
                image_defaults.as_ref().and_then(|d| d.cmd.clone())
            }
        }),
        healthcheck: None,
        args_escaped: None,
        image: c_image(record),
        volumes: (!c.volumes.is_empty())
            .then(|| c.volumes.iter().map(|v| (v.clone(), wire::EmptyObject {})).collect()),
        working_dir: if c.working_dir.is_empty() {
            image_defaults.as_ref().and_then(|d| d.working_dir.clone()).unwrap_or_default()
        } else {
            c.working_dir.clone()
        },
        entrypoint: c
            .entrypoint
            .clone()
            .or_else(|| image_defaults.as_ref().and_then(|d| d.entrypoint.clone())),
        network_disabled: None,
        mac_address: None,
        on_build: None,
        labels: Some(labels),
        stop_signal: c.stop_signal.clone(),
        stop_timeout: c.stop_timeout,
        shell: None,
        extra: BTreeMap::new(),
    };
    let host_config = wire::HostConfig {
        binds: Some(h.binds.clone()).filter(|b| !b.is_empty()),
        log_config: wire::LogConfig {
            kind: if h.log_driver.is_empty() { "json-file".into() } else { h.log_driver.clone() },
            config: h.log_options.clone(),
        },
        network_mode: network_mode(record),
        port_bindings: Some(
            h.port_bindings
                .iter()
                .map(|(port, list)| {
                    let bindings = list
                        .iter()
                        .map(|(ip, p)| wire::PortBinding {
                            host_ip: ip.clone(),
                            host_port: p.clone(),
                        })
                        .collect();
                    (port.clone(), Some(bindings))
                })
                .collect(),
        ),
        restart_policy: wire::RestartPolicy {
            name: if h.restart_policy.name.is_empty() {
                "no".into()
            } else {
                h.restart_policy.name.clone()
            },
            maximum_retry_count: h.restart_policy.maximum_retry_count,
        },
        auto_remove: h.auto_remove,
        volumes_from: Some(h.volumes_from.clone()).filter(|v| !v.is_empty()),
        mounts: None,
        console_size: Some(h.console_size.unwrap_or([0, 0])),
        cap_add: Some(h.cap_add.clone()).filter(|v| !v.is_empty()),
        cap_drop: Some(h.cap_drop.clone()).filter(|v| !v.is_empty()),
        cgroupns_mode: "private".into(),
        dns: Some(h.dns.clone()),
        dns_options: Some(h.dns_options.clone()),
        dns_search: Some(h.dns_search.clone()),
        extra_hosts: Some(h.extra_hosts.clone()).filter(|v| !v.is_empty()),
        group_add: Some(h.group_add.clone()).filter(|v| !v.is_empty()),
        ipc_mode: if h.ipc_mode.is_empty() { "private".into() } else { h.ipc_mode.clone() },
        oom_score_adj: h.resources.oom_score_adj,
        pid_mode: h.pid_mode.clone(),
        privileged: h.privileged,
        publish_all_ports: h.publish_all_ports,
        readonly_rootfs: h.readonly_rootfs,
        security_opt: Some(h.security_opt.clone()).filter(|v| !v.is_empty()),
        tmpfs: Some(h.tmpfs.clone()).filter(|v| !v.is_empty()),
        uts_mode: h.uts_mode.clone(),
        shm_size: if h.resources.shm_size > 0 {
            h.resources.shm_size
        } else {
            containers.default_shm_size(h.resources.memory)
        },
        sysctls: Some(h.sysctls.clone()).filter(|v| !v.is_empty()),
        runtime: "kiln".into(),
        init: h.init,
        memory: h.resources.memory,
        memory_swap: h.resources.memory_swap,
        memory_reservation: h.resources.memory_reservation,
        nano_cpus: h.resources.nano_cpus,
        cpu_shares: h.resources.cpu_shares,
        cpu_period: h.resources.cpu_period,
        cpu_quota: h.resources.cpu_quota,
        cpuset_cpus: h.resources.cpuset_cpus.clone(),
        cpuset_mems: h.resources.cpuset_mems.clone(),
        pids_limit: h.resources.pids_limit,
        oom_kill_disable: h.resources.oom_kill_disable,
        blkio_weight: h.resources.blkio_weight,
        cgroup_parent: h.cgroup_parent.clone(),
        devices: Some(
            h.devices
                .iter()
                .map(|d| wire::DeviceMapping {
                    path_on_host: d.path_on_host.clone(),
                    path_in_container: d.path_in_container.clone(),
                    cgroup_permissions: d.cgroup_permissions.clone(),
                })
                .collect(),
        ),
        ulimits: Some(
            h.ulimits
                .iter()
                .map(|u| wire::Ulimit { name: u.name.clone(), soft: u.soft, hard: u.hard })
                .collect(),
        ),
        masked_paths: Some(
            kiln_engine::containers::MASKED_PATHS.iter().map(|p| (*p).to_owned()).collect(),
        )
        .filter(|_| !h.privileged),
        readonly_paths: Some(
            kiln_engine::containers::READONLY_PATHS.iter().map(|p| (*p).to_owned()).collect(),
        )
        .filter(|_| !h.privileged),
        ..Default::default()
    };
    let network_settings = crate::network::container_settings(
        engine,
        record,
        image_defaults.iter().flat_map(|d| d.exposed_ports.keys()),
    );
    let exec_ids = containers.exec_ids(&record.id);
    wire::ContainerInspect {
        id: record.id.clone(),
        created: rfc3339(record.created),
        path: record.path.clone(),
        args: record.args.clone(),
        state: wire::ContainerState {
            status: s.status.as_str().to_owned(),
            running: s.status.is_alive(),
            paused: s.status == ContainerStatus::Paused,
            restarting: s.status == ContainerStatus::Restarting,
            oom_killed: s.oom_killed,
            dead: s.status == ContainerStatus::Dead,
            pid: s.pid,
            exit_code: s.exit_code,
            error: s.error.clone(),
            started_at: rfc3339(s.started_at),
            finished_at: rfc3339(s.finished_at),
            health: containers.health(&record.id).map(|h| wire::Health {
                status: h.status.as_str().to_owned(),
                failing_streak: h.failing_streak,
                log: h
                    .log
                    .iter()
                    .map(|r| wire::HealthLog {
                        start: rfc3339(r.start),
                        end: rfc3339(r.end),
                        exit_code: r.exit_code,
                        output: r.output.clone(),
                    })
                    .collect(),
            }),
        },
        image: record.image_id.to_string(),
        resolv_conf_path: bundle.join("resolv.conf").display().to_string(),
        hostname_path: bundle.join("hostname").display().to_string(),
        hosts_path: bundle.join("hosts").display().to_string(),
        log_path: containers.log_path(&record.id).display().to_string(),
        name: format!("/{}", record.name),
        restart_count: s.restart_count,
        driver: "overlay2".into(),
        platform: "linux".into(),
        exec_ids: Some(exec_ids).filter(|e| !e.is_empty()),
        host_config,
        graph_driver: wire::GraphDriver {
            name: "overlay2".into(),
            data: [("MergedDir".to_owned(), bundle.join("rootfs").display().to_string())]
                .into_iter()
                .collect(),
        },
        mounts: record.mounts.iter().map(to_wire_mount).collect(),
        config,
        network_settings,
        ..Default::default()
    }
}

fn c_image(record: &ContainerRecord) -> String {
    record.request.image.clone()
}

/// `POST /containers/{id}/start`: 204, or 304 when it already runs.
pub async fn start(engine: Arc<Engine>, name: String) -> Result<Response<Body>, ApiError> {
    let started = engine.containers().start(&name).await.map_err(engine_err)?;
    Ok(reply::empty(if started { StatusCode::NO_CONTENT } else { StatusCode::NOT_MODIFIED }))
}

fn timeout_of(query: &Query) -> Result<Option<i64>, ApiError> {
    match query.get("t").or_else(|| query.get("timeout")) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid value for t: {t}"))),
    }
}

/// `POST /containers/{id}/stop?t=&signal=`.
pub async fn stop(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let timeout = timeout_of(query)?;
    let signal = query.get("signal").filter(|s| !s.is_empty()).map(str::to_owned);
    let stopped =
        engine.containers().stop(&name, signal.as_deref(), timeout).await.map_err(engine_err)?;
    Ok(reply::empty(if stopped { StatusCode::NO_CONTENT } else { StatusCode::NOT_MODIFIED }))
}

/// `POST /containers/{id}/restart?t=&signal=`.
pub async fn restart(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let timeout = timeout_of(query)?;
    let signal = query.get("signal").filter(|s| !s.is_empty()).map(str::to_owned);
    engine.containers().restart(&name, signal.as_deref(), timeout).await.map_err(engine_err)?;
    Ok(no_content())
}

/// `POST /containers/{id}/kill?signal=`.
pub async fn kill(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let signal = query.get("signal").map(str::to_owned);
    engine.containers().kill(&name, signal.as_deref()).await.map_err(|err| {
        // docker-compat: dockerd words it "Cannot kill container: x: …".
        let mut api = engine_err(err);
        api.message = format!("Cannot kill container: {name}: {}", api.message);
        api
    })?;
    Ok(no_content())
}

/// `POST /containers/{id}/pause` and `/unpause`.
pub async fn pause(
    engine: Arc<Engine>,
    name: String,
    pause: bool,
) -> Result<Response<Body>, ApiError> {
    blocking(move || {
        if pause {
            engine.containers().pause(&name)
        } else {
            engine.containers().unpause(&name)
        }
    })
    .await?;
    Ok(no_content())
}

/// `POST /containers/{id}/rename?name=`.
pub async fn rename(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let new_name = query.get("name").unwrap_or_default().to_owned();
    if new_name.is_empty() {
        return Err(ApiError::bad_request("new name cannot be empty"));
    }
    engine.containers().rename(&name, &new_name).map_err(engine_err)?;
    Ok(no_content())
}

/// `POST /containers/{id}/resize?h=&w=`.
pub async fn resize(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let (h, w) = size_of(query)?;
    engine.containers().resize(&name, h, w).await.map_err(engine_err)?;
    Ok(reply::empty(StatusCode::OK))
}

fn size_of(query: &Query) -> Result<(u32, u32), ApiError> {
    let get = |k: &str| -> Result<u32, ApiError> {
        query
            .get(k)
            .unwrap_or("0")
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid {k}")))
    };
    Ok((get("h")?, get("w")?))
}

/// `DELETE /containers/{id}?force=&v=`.
pub async fn remove(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    if query.flag("link") {
        return Err(ApiError::bad_request(
            "Conflict, cannot remove the default link name of the container",
        ));
    }
    engine
        .containers()
        .remove(&name, query.flag("force"), query.flag("v"))
        .await
        .map_err(engine_err)?;
    Ok(no_content())
}

/// `POST /containers/prune`.
pub async fn prune(engine: Arc<Engine>, query: &Query) -> Result<Response<Body>, ApiError> {
    let filters = match query.get("filters") {
        None | Some("") => BTreeMap::new(),
        Some(text) => parse_filters(text)?,
    };
    let labels = filters.get("label").cloned().unwrap_or_default();
    let removed = engine.containers().prune(&labels).await.map_err(engine_err)?;
    Ok(reply::json(
        StatusCode::OK,
        &wire::ContainerPruneResponse {
            containers_deleted: Some(removed).filter(|r| !r.is_empty()),
            space_reclaimed: 0,
        },
    ))
}

/// `POST /containers/{id}/wait?condition=`: the headers at once, the body
/// when the condition is met.
pub async fn wait(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let condition = match query.get("condition").unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => return Err(ApiError::bad_request(format!("invalid condition: \"{other}\""))),
    };
    let waiting = engine.containers().wait(&name, condition).map_err(engine_err)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
    tokio::spawn(async move {
        let code = waiting.await;
        let mut body =
            serde_json::to_vec(&wire::ContainerWaitResponse { status_code: code, error: None })
                .unwrap_or_default();
        body.push(b'\n');
        let _ = tx.send(Ok(Bytes::from(body))).await;
    });
    let mut response = Response::new(channel_body(rx));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// A body fed by a channel of chunks.
pub(crate) fn channel_body(rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>) -> Body {
    struct ChannelBody(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>);
    impl HttpBody for ChannelBody {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
            self.0.poll_recv(cx).map(|c| c.map(|c| c.map(hyper::body::Frame::data)))
        }
    }
    ChannelBody(rx).boxed()
}

/// One frame of Docker's multiplexed stream.
fn mux_frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// `GET /containers/{id}/logs`.
pub async fn logs(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let time = |key: &str| -> Result<Option<i64>, ApiError> {
        match query.get(key) {
            None | Some("") | Some("0") => Ok(None),
            Some(text) => parse_timestamp(text).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!("invalid value for \"{key}\": {text}"))
            }),
        }
    };
    let options =
        LogOptions {
            follow: query.flag("follow"),
            stdout: query.flag("stdout"),
            stderr: query.flag("stderr"),
            since: time("since")?,
            until: time("until")?,
            tail: match query.get("tail") {
                None | Some("") | Some("all") => None,
                Some(n) => Some(n.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid value for \"tail\": {n}"))
                })?),
            },
        };
    if !options.stdout && !options.stderr {
        return Err(ApiError::bad_request("Bad parameters: you must choose at least one stream"));
    }
    let timestamps = query.flag("timestamps");
    let mut stream = engine.containers().logs(&name, options).map_err(engine_err)?;
    let tty = stream.tty();
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        while let Ok(Some(batch)) = stream.next_batch() {
            let mut out = Vec::new();
            for entry in batch {
                let mut payload = Vec::with_capacity(entry.bytes.len() + 32);
                if timestamps {
                    payload.extend_from_slice(kiln_shim_time(entry.time).as_bytes());
                    payload.push(b' ');
                }
                payload.extend_from_slice(&entry.bytes);
                if tty {
                    out.extend_from_slice(&payload);
                } else {
                    out.extend_from_slice(&mux_frame(if entry.stderr { 2 } else { 1 }, &payload));
                }
            }
            if tx.blocking_send(Ok(Bytes::from(out))).is_err() {
                break;
            }
        }
    });
    let mut response = Response::new(channel_body(rx));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(if tty { RAW_STREAM } else { MUX_STREAM }));
    Ok(response)
}

fn kiln_shim_time(nanos: i64) -> String {
    rfc3339(nanos)
}

/// Unix seconds with an optional fraction (`1700000000.123`), or RFC 3339.
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    if let Some(secs) = kiln_types::time::parse_rfc3339(text) {
        return Some(secs * 1_000_000_000);
    }
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos: i64 = if digits.is_empty() { 0 } else { format!("{digits:0<9}").parse().ok()? };
    Some(secs * 1_000_000_000 + nanos)
}

fn to_wire_cpu(sample: &kiln_engine::containers::StatsSample) -> wire::CpuStats {
    let c = &sample.cgroup;
    wire::CpuStats {
        cpu_usage: wire::CpuUsage {
            total_usage: c.cpu_total,
            percpu_usage: Some(c.cpu_per_cpu.clone()).filter(|p| !p.is_empty()),
            usage_in_kernelmode: c.cpu_system,
            usage_in_usermode: c.cpu_user,
        },
        system_cpu_usage: Some(sample.system_cpu),
        online_cpus: Some(sample.online_cpus),
        throttling_data: wire::ThrottlingData::default(),
    }
}

fn to_wire_stats(
    now: &kiln_engine::containers::StatsSample,
    before: Option<&kiln_engine::containers::StatsSample>,
) -> wire::ContainerStats {
    let c = &now.cgroup;
    wire::ContainerStats {
        name: format!("/{}", now.name),
        id: now.id.clone(),
        read: rfc3339(now.read),
        preread: before.map_or_else(|| NEVER.to_owned(), |b| rfc3339(b.read)),
        pids_stats: wire::PidsStats {
            current: c.pids_current,
            limit: Some(c.pids_limit).filter(|l| *l > 0),
        },
        num_procs: 0,
        cpu_stats: to_wire_cpu(now),
        precpu_stats: before.map(to_wire_cpu).unwrap_or_default(),
        memory_stats: wire::MemoryStats {
            usage: c.memory_usage,
            max_usage: Some(c.memory_max_usage).filter(|m| *m > 0),
            stats: c.memory_stat.clone(),
            limit: c.memory_limit.min(host_memory_bytes()),
        },
        blkio_stats: wire::BlkioStats::default(),
        networks: None,
    }
}

/// A memory limit of "none" shows as the host's memory, as Docker shows it.
fn host_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(u64::MAX, |kb| kb * 1024)
}

/// `GET /containers/{id}/stats?stream=&one-shot=`: a sample a second, or
/// one (after a second, so that CPU use can be computed, unless one-shot).
pub async fn stats(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let stream = query.get("stream").is_none_or(|_| query.flag("stream"));
    let one_shot = query.flag("one-shot");
    let first = engine.containers().stats(&name).map_err(engine_err)?;
    let encode = |now: &kiln_engine::containers::StatsSample,
                  before: Option<&kiln_engine::containers::StatsSample>| {
        let mut line = serde_json::to_vec(&to_wire_stats(now, before)).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    };
    if !stream {
        let body = if one_shot {
            encode(&first, None)
        } else {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let second = engine.containers().stats(&name).map_err(engine_err)?;
            encode(&second, Some(&first))
        };
        return Ok(reply::with_type(StatusCode::OK, "application/json", body));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(2);
    tokio::spawn(async move {
        if tx.send(Ok(encode(&first, None))).await.is_err() {
            return;
        }
        let mut before = first;
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let Ok(now) = engine.containers().stats(&name) else { break };
            if tx.send(Ok(encode(&now, Some(&before)))).await.is_err() {
                break;
            }
            before = now;
        }
    });
    let mut response = Response::new(channel_body(rx));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// `HEAD /containers/{id}/archive?path=`: the path's stat, in a header.
pub async fn archive_head(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let path = archive_path(query)?;
    let stat =
        blocking(move || engine.containers().with_filesystem(&name, &path, archive::stat)).await?;
    let mut response = reply::empty(StatusCode::OK);
    if let Ok(value) = HeaderValue::from_str(&archive::stat_header(&stat)) {
        response.headers_mut().insert("x-docker-container-path-stat", value);
    }
    Ok(response)
}

fn archive_path(query: &Query) -> Result<String, ApiError> {
    match query.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_owned()),
        _ => Err(ApiError::bad_request("bad parameter: path cannot be empty")),
    }
}

/// `GET /containers/{id}/archive?path=`: a tar of the path, its stat in a
/// header.
pub async fn archive_get(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let path = archive_path(query)?;
    let (stat_engine, stat_name, stat_path) = (Arc::clone(&engine), name.clone(), path.clone());
    let stat = blocking(move || {
        stat_engine.containers().with_filesystem(&stat_name, &stat_path, |root, inner, id| {
            archive::stat(root, inner, id)
        })
    })
    .await?;
    let mut response = crate::stream::stream_blocking("application/x-tar", move |out| {
        engine
            .containers()
            .with_filesystem(&name, &path, |root, inner, id| {
                archive::write_archive(root, inner, id, out)
            })
            .map(|_| ())
    })
    .await?;
    if let Ok(value) = HeaderValue::from_str(&archive::stat_header(&stat)) {
        response.headers_mut().insert("x-docker-container-path-stat", value);
    }
    Ok(response)
}

/// `PUT /containers/{id}/archive?path=`: extract the tar body into the
/// directory `path`.
pub async fn archive_put<B>(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
    body: B,
) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let path = archive_path(query)?;
    let mut reader = crate::stream::body_reader(body);
    blocking(move || {
        let result = engine.containers().with_filesystem(&name, &path, |root, inner, id| {
            archive::extract_archive(root, inner, id, &mut reader)
        });
        if result.is_err() {
            // Read what the client still sends (up to a bound), so that it
            // gets this answer instead of a broken pipe mid-upload.
            let _ = std::io::copy(
                &mut std::io::Read::take(&mut reader, 256 << 20),
                &mut std::io::sink(),
            );
        }
        result
    })
    .await?;
    Ok(reply::empty(StatusCode::OK))
}

/// `GET /containers/{id}/export`: the container's filesystem as a tar.
pub async fn export(engine: Arc<Engine>, name: String) -> Result<Response<Body>, ApiError> {
    engine.containers().resolve(&name).map_err(engine_err)?;
    crate::stream::stream_blocking("application/x-tar", move |out| {
        engine
            .containers()
            .with_filesystem(&name, "/", |root, _, _| archive::write_rootfs(root, out))
    })
    .await
}

/// `GET /containers/{id}/changes`.
pub async fn changes(engine: Arc<Engine>, name: String) -> Result<Response<Body>, ApiError> {
    let found = blocking(move || engine.containers().changes(&name)).await?;
    let items: Vec<serde_json::Value> =
        found.iter().map(|c| serde_json::json!({"Path": c.path, "Kind": c.kind as u8})).collect();
    Ok(reply::json(StatusCode::OK, &items))
}

/// `GET /containers/{id}/top?ps_args=`.
pub async fn top(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let pids = engine.containers().pids(&name).map_err(engine_err)?;
    let args = query.get("ps_args").filter(|a| !a.is_empty()).unwrap_or("-ef").to_owned();
    let output = tokio::process::Command::new("ps")
        .args(args.split_whitespace())
        .output()
        .await
        .map_err(|e| ApiError::internal(format!("cannot run ps: {e}")))?;
    if !output.status.success() {
        return Err(ApiError::internal(format!(
            "ps: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<String> = header.split_whitespace().map(str::to_owned).collect();
    let pid_column = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| ApiError::internal("Couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_column).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column (the command) may hold spaces.
        let mut row: Vec<String> =
            fields.iter().take(titles.len().saturating_sub(1)).map(|s| (*s).to_owned()).collect();
        row.push(
            fields
                .get(titles.len().saturating_sub(1)..)
                .map(|rest| rest.join(" "))
                .unwrap_or_default(),
        );
        processes.push(row);
    }
    Ok(reply::json(StatusCode::OK, &wire::ContainerTopResponse { titles, processes }))
}

/// `POST /containers/{id}/exec`.
pub async fn exec_create<B>(
    engine: Arc<Engine>,
    name: String,
    body: B,
) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let config: wire::ExecConfig = read_json(body).await?;
    let request = ExecRequest {
        cmd: config.cmd.unwrap_or_default(),
        env: config.env.unwrap_or_default(),
        user: config.user,
        working_dir: config.working_dir,
        tty: config.tty,
        attach_stdin: config.attach_stdin,
        attach_stdout: config.attach_stdout,
        attach_stderr: config.attach_stderr,
        privileged: config.privileged,
        console_size: config.console_size.filter(|[a, b]| *a > 0 && *b > 0),
    };
    let id = engine.containers().exec_create(&name, request).map_err(engine_err)?;
    Ok(reply::json(StatusCode::CREATED, &wire::IdResponse { id }))
}

/// `GET /exec/{id}/json`.
pub async fn exec_inspect(engine: Arc<Engine>, id: String) -> Result<Response<Body>, ApiError> {
    let details = engine.containers().exec_inspect(&id).map_err(engine_err)?;
    let (entrypoint, arguments) =
        details.request.cmd.split_first().map(|(e, a)| (e.clone(), a.to_vec())).unwrap_or_default();
    Ok(reply::json(
        StatusCode::OK,
        &wire::ExecInspect {
            can_remove: false,
            detach_keys: String::new(),
            id: details.id,
            running: details.running,
            exit_code: details.exit_code,
            process_config: wire::ExecProcessConfig {
                privileged: details.request.privileged,
                user: details.request.user.clone(),
                tty: details.request.tty,
                entrypoint,
                arguments,
            },
            open_stdin: details.request.attach_stdin,
            open_stderr: details.request.attach_stderr,
            open_stdout: details.request.attach_stdout,
            container_id: details.container_id,
            pid: details.pid,
        },
    ))
}

/// `POST /exec/{id}/resize?h=&w=`.
pub async fn exec_resize(
    engine: Arc<Engine>,
    id: String,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let (h, w) = size_of(query)?;
    engine.containers().exec_resize(&id, h, w).await.map_err(engine_err)?;
    Ok(reply::empty(StatusCode::OK))
}

/// `POST /exec/{id}/start`: hijacked unless detached.
pub async fn exec_start<B>(
    engine: Arc<Engine>,
    id: String,
    mut request: Request<B>,
) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let upgrade = wants_upgrade(&request);
    let on_upgrade = hyper::upgrade::on(&mut request);
    let config: wire::ExecStartConfig = read_json(request.into_body()).await?;
    if config.detach {
        engine.containers().exec_start(&id, true, config.console_size).await.map_err(engine_err)?;
        return Ok(reply::empty(StatusCode::OK));
    }
    // docker-compat: the connection is upgraded first and the process
    // started after, so no output races the 101 (clients read the head
    // through a buffer); a process that cannot start is reported in the
    // stream, and its exit code (126, 127) by exec inspect.
    let details = engine.containers().exec_inspect(&id).map_err(engine_err)?;
    let tty = details.request.tty;
    let options = AttachOptions { stdin: details.request.attach_stdin, stdout: true, stderr: true };
    let start = async move {
        match engine.containers().exec_start(&id, false, config.console_size).await {
            Ok(Some(attached)) => Ok(attached),
            Ok(None) => Err(kiln_engine::ContainerError::NoSuchExec { id }),
            Err(err) => Err(err),
        }
    };
    Ok(hijack_later(start, tty, upgrade, on_upgrade, options, true))
}

/// `POST /containers/{id}/attach?stream=&stdin=&stdout=&stderr=`.
pub async fn attach<B>(
    engine: Arc<Engine>,
    name: String,
    query: &Query,
    mut request: Request<B>,
) -> Result<Response<Body>, ApiError>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let upgrade = wants_upgrade(&request);
    let on_upgrade = hyper::upgrade::on(&mut request);
    let options = AttachOptions {
        stdin: query.flag("stdin"),
        stdout: query.flag("stdout"),
        stderr: query.flag("stderr"),
    };
    // Resolve now so an unknown name is a 404 before the upgrade.
    let id = engine.containers().resolve(&name).map_err(engine_err)?;
    if !query.flag("stream") {
        // Only the log was asked for (logs=1, stream=0): not supported as a
        // hijack; answer with an empty stream.
        return Ok(reply::with_type(StatusCode::OK, RAW_STREAM, Bytes::new()));
    }
    let engine2 = Arc::clone(&engine);
    let attach = async move { engine2.containers().attach(&id, options).await };
    // The attach may wait for the next start: answer the upgrade first, and
    // connect the streams in the background.
    let tty = engine.containers().inspect(&name).map(|r| r.request.config.tty).unwrap_or(false);
    Ok(hijack_later(attach, tty, upgrade, on_upgrade, options, false))
}

fn wants_upgrade<B>(request: &Request<B>) -> bool {
    request.headers().get(UPGRADE).is_some()
}

fn upgrade_response(tty: bool, upgrade: bool) -> Response<Body> {
    let content_type = if tty { RAW_STREAM } else { MUX_STREAM };
    let mut response =
        reply::empty(if upgrade { StatusCode::SWITCHING_PROTOCOLS } else { StatusCode::OK });
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("tcp"));
    }
    response
}

/// Answer 101 now; once the connection is ours, wait for the process's
/// streams and pump both ways: its output as frames (raw with a tty), our
/// input to its stdin; half-close of the client's side closes stdin.
fn hijack_later<F>(
    attached: F,
    tty: bool,
    upgrade: bool,
    on_upgrade: hyper::upgrade::OnUpgrade,
    options: AttachOptions,
    report_errors: bool,
) -> Response<Body>
where
    F: std::future::Future<Output = Result<Attached, kiln_engine::ContainerError>> + Send + 'static,
{
    if !upgrade {
        // No hijack asked for: the output as a streamed body, no stdin.
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
        tokio::spawn(async move {
            let Ok(mut attached) = attached.await else { return };
            while let Ok(Some(out)) = attached.output.next().await {
                let bytes = match out {
                    ShimOutput::Stdout(b) if tty => b.to_vec(),
                    ShimOutput::Stdout(b) => mux_frame(1, &b),
                    ShimOutput::Stderr(b) if tty => b.to_vec(),
                    ShimOutput::Stderr(b) => mux_frame(2, &b),
                    ShimOutput::Exit(_) => break,
                };
                if tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                    break;
                }
            }
        });
        let mut response = Response::new(channel_body(rx));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(if tty { RAW_STREAM } else { MUX_STREAM }),
        );
        return response;
    }
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(err) => {
                tracing::debug!(error = %err, "upgrade failed");
                return;
            }
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let (mut client_read, mut client_write) = tokio::io::split(io);
        if report_errors {
            // docker-compat: docker-py reads the 101's head through a
            // buffered reader and then the raw socket, so output that
            // arrives before it has read the head is lost. dockerd is slow
            // enough to start an exec that this never happens; give the
            // client the same moment before the exec starts.
            tokio::time::sleep(EXEC_START_GRACE).await;
        }
        let attached = match attached.await {
            Ok(a) => a,
            Err(err) => {
                // An exec that cannot start says why in its stream, as
                // dockerd does; an attach to a container whose start failed
                // just ends (the start's answer says why).
                if report_errors {
                    let text = format!("{err}\r\n");
                    let bytes = if tty { text.into_bytes() } else { mux_frame(1, text.as_bytes()) };
                    let _ = client_write.write_all(&bytes).await;
                }
                let _ = client_write.shutdown().await;
                return;
            }
        };
        let Attached { tty, mut output, mut input } = attached;
        let input_task = tokio::spawn(async move {
            if !options.stdin {
                // Drain and ignore until the client goes.
                let mut sink = [0u8; 4096];
                while let Ok(n) = client_read.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
                return;
            }
            let mut buf = vec![0u8; 32 * 1024];
            let mut detach = DetachDetector::default();
            loop {
                match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = input.close_stdin().await;
                        break;
                    }
                    Ok(n) => {
                        let (pass, detached) =
                            if tty { detach.feed(&buf[..n]) } else { (buf[..n].to_vec(), false) };
                        if !pass.is_empty() && input.write_stdin(&pass).await.is_err() {
                            break;
                        }
                        if detached {
                            break;
                        }
                    }
                }
            }
        });
        loop {
            tokio::select! {
                out = output.next() => {
                    let bytes = match out {
                        Ok(Some(ShimOutput::Stdout(b))) if options.stdout => if tty { b.to_vec() } else { mux_frame(1, &b) },
                        Ok(Some(ShimOutput::Stderr(b))) if options.stderr => if tty { b.to_vec() } else { mux_frame(2, &b) },
                        Ok(Some(ShimOutput::Stdout(_) | ShimOutput::Stderr(_))) => continue,
                        Ok(Some(ShimOutput::Exit(_)) | None) | Err(_) => break,
                    };
                    if client_write.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                _ = wait_finished(&input_task), if tty && options.stdin => {
                    // Detached (or the client went away): leave the process running.
                    break;
                }
            }
        }
        let _ = client_write.flush().await;
        let _ = client_write.shutdown().await;
        input_task.abort();
    });
    upgrade_response(tty, upgrade)
}

async fn wait_finished(task: &tokio::task::JoinHandle<()>) {
    while !task.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Docker's default detach keys, ctrl-p ctrl-q, spotted in a tty's input.
#[derive(Debug, Default)]
struct DetachDetector {
    matched: usize,
}

const DETACH_KEYS: [u8; 2] = [0x10, 0x11];

impl DetachDetector {
    /// The bytes to pass on, and whether the sequence was completed.
    fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if b == DETACH_KEYS[self.matched] {
                self.matched += 1;
                if self.matched == DETACH_KEYS.len() {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&DETACH_KEYS[..self.matched]);
                self.matched = 0;
                if b == DETACH_KEYS[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_dockers() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(300), "5 minutes");
        assert_eq!(human_duration(3700), "About an hour");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86_400), "3 days");
    }

    #[test]
    fn filters_parse_in_both_shapes() {
        let f = parse_filters(r#"{"status":["exited"],"label":{"a=b":true}}"#).expect("filters");
        assert_eq!(f["status"], ["exited"]);
        assert_eq!(f["label"], ["a=b"]);
        assert!(parse_filters("[1]").is_err());
    }

    #[test]
    fn detach_keys_end_the_stream_and_partial_matches_pass_through() {
        let mut d = DetachDetector::default();
        assert_eq!(d.feed(b"ab\x10c"), (b"ab\x10c".to_vec(), false));
        assert_eq!(d.feed(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(d.feed(b"\x11rest"), (Vec::new(), true));
    }

    #[test]
    fn timestamps_parse_as_unix_or_rfc3339() {
        assert_eq!(parse_timestamp("10"), Some(10_000_000_000));
        assert_eq!(parse_timestamp("10.5"), Some(10_500_000_000));
        assert_eq!(parse_timestamp("1970-01-01T00:00:10Z"), Some(10_000_000_000));
        assert_eq!(parse_timestamp("soon"), None);
    }
}
