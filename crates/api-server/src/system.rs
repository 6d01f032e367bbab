//! `/_ping`, `/version`, `/info`: the engine's facts in the API's shapes.

use std::collections::BTreeMap;
use std::time::SystemTime;

use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, PRAGMA};
use http::{Response, StatusCode};
use kiln_api_types::{
    ApiVersion, ComponentVersion, Platform, RuntimeInfo, SwarmInfo, SystemInfo, Version,
};
use kiln_engine::{CgroupVersion, Engine, EngineInfo, EngineVersion, SecurityOption};

use crate::reply::{self, Body};
use crate::versioning::{API_VERSION, MIN_API_VERSION};

const TEXT: &str = "text/plain; charset=utf-8";

/// The product name, shown by `docker version` as "Server: <name>".
const PLATFORM_NAME: &str = "Kiln Engine";

pub fn ping() -> Response<Body> {
    let mut response = reply::with_type(StatusCode::OK, TEXT, "OK");
    add_ping_headers(&mut response);
    response
}

pub fn ping_head() -> Response<Body> {
    let mut response = reply::head(TEXT);
    add_ping_headers(&mut response);
    response
}

fn add_ping_headers(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    // docker-compat: clients read these from the ping. Builder-Version 1 is
    // the classic `POST /build`; Kiln has no swarm mode.
    headers.insert(HeaderName::from_static("builder-version"), HeaderValue::from_static("1"));
    headers.insert(HeaderName::from_static("swarm"), HeaderValue::from_static("inactive"));
}

pub fn version(engine: &Engine, _api: ApiVersion) -> Response<Body> {
    reply::json(StatusCode::OK, &to_wire_version(&engine.version()))
}

pub fn info(engine: &Engine, _api: ApiVersion) -> Response<Body> {
    reply::json(StatusCode::OK, &to_wire_info(&engine.info()))
}

fn to_wire_version(v: &EngineVersion) -> Version {
    let git_commit = v.git_commit.clone().unwrap_or_else(|| "unknown".to_owned());
    let build_time = v.build_time.clone().unwrap_or_default();
    let arch = go_arch(&v.arch).to_owned();
    // docker-compat: GoVersion is shown by `docker version`; we have none.
    let go_version = "n/a".to_owned();
    let mut details = BTreeMap::from([
        ("ApiVersion".to_owned(), API_VERSION.to_string()),
        ("Arch".to_owned(), arch.clone()),
        ("Experimental".to_owned(), "false".to_owned()),
        ("GitCommit".to_owned(), git_commit.clone()),
        ("GoVersion".to_owned(), go_version.clone()),
        ("KernelVersion".to_owned(), v.kernel_version.clone()),
        ("MinAPIVersion".to_owned(), MIN_API_VERSION.to_string()),
        ("Os".to_owned(), v.os.clone()),
    ]);
    if !build_time.is_empty() {
        details.insert("BuildTime".to_owned(), build_time.clone());
    }
    Version {
        platform: Platform { name: PLATFORM_NAME.to_owned() },
        components: vec![
            ComponentVersion { name: "Engine".to_owned(), version: v.version.clone(), details },
            ComponentVersion {
                name: v.runtime.name.clone(),
                version: v.version.clone(),
                details: BTreeMap::from([("GitCommit".to_owned(), git_commit.clone())]),
            },
        ],
        version: v.version.clone(),
        api_version: Some(API_VERSION),
        min_api_version: Some(MIN_API_VERSION),
        git_commit,
        go_version,
        os: v.os.clone(),
        arch,
        kernel_version: v.kernel_version.clone(),
        experimental: false,
        build_time,
    }
}

fn to_wire_info(info: &EngineInfo) -> SystemInfo {
    SystemInfo {
        id: info.id.clone(),
        containers: info.containers.total(),
        containers_running: info.containers.running,
        containers_paused: info.containers.paused,
        containers_stopped: info.containers.stopped,
        kiln_default_shm_size: info.default_shm_size,
        images: info.images,
        driver: info.storage_driver.clone(),
        driver_status: info
            .storage_driver_status
            .iter()
            .map(|(k, v)| [k.clone(), v.clone()])
            .collect(),
        docker_root_dir: info.root.display().to_string(),
        debug: info.debug,
        system_time: rfc3339_nanos(info.now),
        logging_driver: info.logging_driver.clone(),
        cgroup_driver: info.cgroup_driver.clone(),
        cgroup_version: match info.host.cgroup_version {
            CgroupVersion::V1 => "1",
            CgroupVersion::V2 => "2",
        }
        .to_owned(),
        kernel_version: info.host.kernel_version.clone(),
        operating_system: info.host.operating_system.clone(),
        os_type: info.version.os.clone(),
        architecture: info.host.machine.clone(),
        ncpu: info.host.ncpu,
        mem_total: info.host.mem_total,
        name: info.host.hostname.clone(),
        server_version: info.version.version.clone(),
        runtimes: info
            .runtimes
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    RuntimeInfo { path: r.path.display().to_string(), runtime_args: Vec::new() },
                )
            })
            .collect(),
        default_runtime: info.default_runtime.clone(),
        swarm: SwarmInfo { local_node_state: "inactive".to_owned(), ..SwarmInfo::default() },
        security_options: info.security_options.iter().map(security_option).collect(),
        warnings: info.warnings.clone(),
    }
}

/// docker-compat: `name=seccomp,profile=builtin`, the form the CLI parses.
fn security_option(option: &SecurityOption) -> String {
    match option {
        SecurityOption::Seccomp { profile } => format!("name=seccomp,profile={profile}"),
    }
}

/// docker-compat: `Arch` in `/version` is Go's GOARCH name.
fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// `2025-06-01T12:00:00.123456789Z`, Go's RFC 3339 with nanoseconds in UTC.
fn rfc3339_nanos(time: SystemTime) -> String {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    kiln_types::time::UtcTime::from_unix(secs).rfc3339_nanos(since.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_rfc3339_with_nanoseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_748_779_200, 5);
        assert_eq!(rfc3339_nanos(t), "2025-06-01T12:00:00.000000005Z");
        assert_eq!(rfc3339_nanos(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_nanos(leap), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn arch_names_are_gos() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("s390x"), "s390x");
    }

    #[test]
    fn seccomp_is_written_as_the_cli_parses_it() {
        let option = SecurityOption::Seccomp { profile: "builtin".to_owned() };
        assert_eq!(security_option(&option), "name=seccomp,profile=builtin");
    }
}
