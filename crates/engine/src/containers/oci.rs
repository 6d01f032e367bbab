//! A container's runtime spec (config.json), computed from its request and
//! its image as Docker would run it. Pure: the caller resolves users and
//! writes files; nothing here touches the system.

use std::path::PathBuf;

use kiln_image::ContainerConfig as ImageDefaults;
use kiln_runtime::spec::{
    Capabilities, ConsoleSize, Device, Linux, Mount, Namespace, NamespaceType, Process, Rlimit,
    Root, Spec, User,
};
use kiln_runtime::template;

use super::model::{ContainerRecord, HostOptions};

/// Docker's PATH when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// /dev/shm when neither `--shm-size` nor a memory limit says otherwise.
pub const SHM_CAP: i64 = 8 << 30;
/// Docker's /dev/shm size, the floor of ours.
pub const DOCKER_SHM: i64 = 64 << 20;

/// The uid, gid and groups a user name resolved to in the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Where the network of a container comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkPlan {
    /// A namespace of its own with only loopback (`none`, and the default
    /// until bridges exist).
    Private,
    /// The host's network (`--network host`).
    Host,
    /// Another container's namespace (`--network container:x`), by path.
    Join(PathBuf),
}

/// Files the engine writes for the container and binds in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

/// What, besides the record and image, decides the spec.
#[derive(Debug, Clone)]
pub struct SpecInputs<'a> {
    pub record: &'a ContainerRecord,
    pub image: &'a ImageDefaults,
    pub user: ResolvedUser,
    pub hostname: String,
    pub etc: Option<EtcFiles>,
    pub network: NetworkPlan,
    /// Bytes of /dev/shm when the request does not say (the ML default).
    pub default_shm: i64,
    pub cgroups_path: String,
    /// Host devices for `--device`, with their kind and numbers.
    pub devices: Vec<Device>,
    /// Volume and bind mounts, resolved to host paths.
    pub volume_mounts: Vec<Mount>,
}

/// Why a spec cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("no command specified")]
    NoCommand,
    #[error("invalid capability {name:?}")]
    Capability { name: String },
    #[error("invalid --security-opt: {value:?}")]
    SecurityOpt { value: String },
    #[error("invalid seccomp profile: {reason}")]
    Seccomp { reason: String },
    #[error("invalid ulimit {name:?}")]
    Ulimit { name: String },
    #[error("invalid tmpfs option {option:?} for {path}")]
    Tmpfs { path: String, option: String },
    #[error("Minimum memory limit allowed is 6MB")]
    MemoryTooLow,
    #[error("Minimum memoryswap limit should be larger than memory limit, see usage")]
    SwapBelowMemory,
    #[error("Range of CPUs is from 0.01 to {available}.00, as there are only {available} CPUs available")]
    TooManyCpus { available: usize },
}

/// The command a container runs: the entrypoint and cmd after the image's
/// defaults, as Docker picks them. A request that sets an entrypoint drops
/// the image's cmd.
pub fn command(
    request_entrypoint: Option<&[String]>,
    request_cmd: Option<&[String]>,
    image: &ImageDefaults,
) -> Vec<String> {
    let entrypoint: Vec<String> = match request_entrypoint {
        Some(ep) => ep.iter().filter(|s| !s.is_empty() || ep.len() > 1).cloned().collect(),
        None => image.entrypoint.clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = match (request_cmd, request_entrypoint) {
        (Some(cmd), _) => cmd.to_vec(),
        (None, Some(_)) => Vec::new(),
        (None, None) => image.cmd.clone().unwrap_or_default(),
    };
    entrypoint.into_iter().chain(cmd).collect()
}

/// The environment: PATH and HOSTNAME first (and TERM with a tty), then the
/// image's, then the request's; a later value of a key replaces an earlier
/// one in place.
pub fn environment(
    image: &ImageDefaults,
    request: &[String],
    hostname: &str,
    tty: bool,
) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let mut set = |kv: &str| {
        let key = kv.split_once('=').map_or(kv, |(k, _)| k);
        match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key) {
            Some(slot) => *slot = kv.to_owned(),
            None => env.push(kv.to_owned()),
        }
    };
    if image.env_var("PATH").is_none() && !request.iter().any(|e| e.starts_with("PATH=")) {
        set(&format!("PATH={DEFAULT_PATH}"));
    }
    set(&format!("HOSTNAME={hostname}"));
    if tty {
        set("TERM=xterm");
    }
    for kv in image.env.iter().chain(request) {
        if kv.contains('=') {
            set(kv);
        }
    }
    env
}

/// The capabilities after `--cap-add`, `--cap-drop` (each may say `ALL`)
/// and `--privileged`.
pub fn capabilities(host: &HostOptions) -> Result<Vec<String>, SpecError> {
    let last = kiln_sys::caps::last_cap();
    let all: Vec<String> = kiln_sys::caps::Capability::all()
        .filter(|c| c.number() <= last)
        .map(|c| c.to_string())
        .collect();
    if host.privileged {
        return Ok(all);
    }
    let normalise = |name: &str| -> Result<String, SpecError> {
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
        if full == "CAP_ALL" || all.contains(&full) {
            Ok(full)
        } else {
            Err(SpecError::Capability { name: name.to_owned() })
        }
    };
    let adds: Vec<String> = host.cap_add.iter().map(|c| normalise(c)).collect::<Result<_, _>>()?;
    let drops: Vec<String> =
        host.cap_drop.iter().map(|c| normalise(c)).collect::<Result<_, _>>()?;
    let mut caps: Vec<String> = if drops.iter().any(|c| c == "CAP_ALL") {
        Vec::new()
    } else {
        template::default_capabilities().into_iter().filter(|c| !drops.contains(c)).collect()
    };
    if adds.iter().any(|c| c == "CAP_ALL") {
        caps = all.into_iter().filter(|c| !drops.contains(c) || adds.contains(c)).collect();
    } else {
        for cap in adds {
            if !caps.contains(&cap) {
                caps.push(cap);
            }
        }
    }
    Ok(caps)
}

/// `--security-opt` values Kiln applies.
#[derive(Debug, Clone, Default, PartialEq)]
struct SecurityOpts {
    no_new_privileges: bool,
    seccomp_unconfined: bool,
    seccomp_profile: Option<kiln_seccomp::Profile>,
}

fn security_opts(values: &[String]) -> Result<SecurityOpts, SpecError> {
    let mut opts = SecurityOpts::default();
    for value in values {
        let (key, val) = value.split_once(['=', ':']).unwrap_or((value.as_str(), ""));
        match key {
            "no-new-privileges" => {
                opts.no_new_privileges = match val {
                    "" | "true" => true,
                    "false" => false,
                    _ => return Err(SpecError::SecurityOpt { value: value.clone() }),
                }
            }
            "seccomp" if val == "unconfined" => opts.seccomp_unconfined = true,
            "seccomp" if !val.is_empty() => {
                let profile: kiln_seccomp::Profile = serde_json::from_str(val)
                    .map_err(|e| SpecError::Seccomp { reason: e.to_string() })?;
                opts.seccomp_profile = Some(profile);
            }
            // Accepted and not applied: this host has neither.
            "apparmor" | "label" => {}
            _ => return Err(SpecError::SecurityOpt { value: value.clone() }),
        }
    }
    Ok(opts)
}

/// The OCI spec of a container.
pub fn build_spec(inputs: &SpecInputs<'_>) -> Result<Spec, SpecError> {
    let record = inputs.record;
    let request = &record.request;
    let host = &request.host;
    let args: Vec<String> =
        std::iter::once(record.path.clone()).chain(record.args.iter().cloned()).collect();
    if record.path.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let caps = capabilities(host)?;
    let security = security_opts(&host.security_opt)?;
    let cwd = match request.config.working_dir.as_str() {
        "" => {
            inputs.image.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into())
        }
        dir => dir.to_owned(),
    };
    let mut rlimits = Vec::new();
    for u in &host.ulimits {
        let kind = format!("RLIMIT_{}", u.name.to_ascii_uppercase());
        if !RLIMITS.contains(&kind.as_str()) || u.soft < 0 || u.hard < 0 {
            return Err(SpecError::Ulimit { name: u.name.clone() });
        }
        rlimits.push(Rlimit { kind, soft: u.soft as u64, hard: u.hard as u64 });
    }
    let process = Process {
        terminal: request.config.tty,
        console_size: host.console_size.filter(|_| request.config.tty).map(|[h, w]| ConsoleSize {
            height: u16::try_from(h).unwrap_or(u16::MAX),
            width: u16::try_from(w).unwrap_or(u16::MAX),
        }),
        user: User {
            uid: inputs.user.uid,
            gid: inputs.user.gid,
            additional_gids: inputs.user.additional_gids.clone(),
            ..User::default()
        },
        args,
        env: environment(inputs.image, &request.config.env, &inputs.hostname, request.config.tty),
        cwd: PathBuf::from(cwd),
        capabilities: Some(Capabilities {
            bounding: caps.clone(),
            effective: caps.clone(),
            permitted: caps.clone(),
            ..Capabilities::default()
        }),
        rlimits,
        no_new_privileges: security.no_new_privileges,
        oom_score_adj: (host.resources.oom_score_adj != 0)
            .then(|| i32::try_from(host.resources.oom_score_adj).unwrap_or(0)),
        ..Process::default()
    };

    let mut namespaces =
        vec![NamespaceType::Pid, NamespaceType::Ipc, NamespaceType::Mount, NamespaceType::Cgroup];
    if host.uts_mode != "host" {
        namespaces.push(NamespaceType::Uts);
    }
    let mut namespaces: Vec<Namespace> =
        namespaces.into_iter().map(|kind| Namespace { kind, path: None }).collect();
    match &inputs.network {
        NetworkPlan::Private => {
            namespaces.push(Namespace { kind: NamespaceType::Network, path: None })
        }
        NetworkPlan::Host => {}
        NetworkPlan::Join(path) => {
            namespaces.push(Namespace { kind: NamespaceType::Network, path: Some(path.clone()) })
        }
    }
    if host.pid_mode == "host" {
        namespaces.retain(|ns| ns.kind != NamespaceType::Pid);
    }
    if host.ipc_mode == "host" {
        namespaces.retain(|ns| ns.kind != NamespaceType::Ipc);
    }

    let shm_size =
        if host.resources.shm_size > 0 { host.resources.shm_size } else { inputs.default_shm };
    let mut mounts: Vec<Mount> = template::default_mounts()
        .into_iter()
        .map(|mut m| {
            if m.destination == std::path::Path::new("/dev/shm") {
                m.options.retain(|o| !o.starts_with("size="));
                m.options.push(format!("size={}k", (shm_size / 1024).max(4)));
            }
            if m.destination == std::path::Path::new("/sys") && host.privileged {
                m.options.retain(|o| o != "ro");
            }
            m
        })
        .collect();
    if let Some(etc) = &inputs.etc {
        for (dest, source) in [
            ("/etc/hostname", &etc.hostname),
            ("/etc/hosts", &etc.hosts),
            ("/etc/resolv.conf", &etc.resolv_conf),
        ] {
            mounts.push(bind(dest, source, false));
        }
    }
    for (path, options) in &host.tmpfs {
        mounts.push(tmpfs_mount(path, options)?);
    }
    mounts.extend(inputs.volume_mounts.iter().cloned());
    // Parents before children, as Docker sorts them; stable otherwise.
    let user_start = template::default_mounts().len();
    mounts[user_start..].sort_by_key(|m| m.destination.components().count());

    let resources = resources(host)?;
    let seccomp = if host.privileged || security.seccomp_unconfined {
        None
    } else {
        Some(
            security
                .seccomp_profile
                .clone()
                .unwrap_or_else(|| kiln_seccomp::default_profile(&caps)),
        )
    };
    let (masked, readonly) = if host.privileged {
        (Vec::new(), Vec::new())
    } else {
        (
            template::MASKED_PATHS.iter().map(PathBuf::from).collect(),
            template::READONLY_PATHS.iter().map(PathBuf::from).collect(),
        )
    };
    let hostname = (host.uts_mode != "host").then(|| inputs.hostname.clone());
    let domainname =
        Some(request.config.domainname.clone()).filter(|d| !d.is_empty() && hostname.is_some());
    Ok(Spec {
        oci_version: template::OCI_VERSION.into(),
        root: Some(Root { path: PathBuf::from("rootfs"), readonly: host.readonly_rootfs }),
        mounts,
        process: Some(process),
        hostname,
        domainname,
        hooks: None,
        // `--init`: the runtime keeps a tiny init as PID 1 (no binary needed).
        annotations: host
            .init
            .filter(|&init| init)
            .map(|_| (kiln_runtime::INIT_ANNOTATION.to_owned(), "true".to_owned()))
            .into_iter()
            .collect(),
        linux: Some(Linux {
            namespaces,
            devices: inputs.devices.clone(),
            cgroups_path: Some(inputs.cgroups_path.clone()),
            resources: Some(resources),
            seccomp,
            sysctl: host.sysctls.clone(),
            masked_paths: masked,
            readonly_paths: readonly,
            ..Linux::default()
        }),
    })
}

const RLIMITS: [&str; 16] = [
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
];

fn bind(dest: &str, source: &std::path::Path, read_only: bool) -> Mount {
    let mut options = vec!["rbind".to_owned(), "rprivate".to_owned()];
    if read_only {
        options.push("ro".to_owned());
    }
    Mount {
        destination: dest.into(),
        kind: Some("bind".into()),
        source: Some(source.to_owned()),
        options,
        ..Mount::default()
    }
}

/// `--tmpfs /path:size=64m,mode=1777` → a tmpfs mount, `noexec,nosuid,nodev`
/// unless the options say otherwise (as Docker).
fn tmpfs_mount(path: &str, options: &str) -> Result<Mount, SpecError> {
    let mut opts: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let flip = |o: &mut Vec<String>, off: &str| o.retain(|x| x != off);
        match option {
            "exec" => flip(&mut opts, "noexec"),
            "suid" => flip(&mut opts, "nosuid"),
            "dev" => flip(&mut opts, "nodev"),
            "noexec" | "nosuid" | "nodev" | "ro" | "rw" | "sync" | "async" | "dirsync"
            | "atime" | "noatime" | "relatime" | "strictatime" | "nodiratime" | "diratime" => {
                opts.push(option.to_owned())
            }
            o if o.starts_with("size=")
                || o.starts_with("mode=")
                || o.starts_with("uid=")
                || o.starts_with("gid=")
                || o.starts_with("nr_inodes=") =>
            {
                opts.push(normalise_size_option(o))
            }
            _ => return Err(SpecError::Tmpfs { path: path.to_owned(), option: option.to_owned() }),
        }
    }
    Ok(Mount {
        destination: path.into(),
        kind: Some("tmpfs".into()),
        source: Some("tmpfs".into()),
        options: opts,
        ..Mount::default()
    })
}

/// tmpfs takes `size=64m`; Docker also accepts `size=64mb` and plain bytes.
fn normalise_size_option(option: &str) -> String {
    match option.strip_prefix("size=") {
        Some(size) => {
            let lower = size.to_ascii_lowercase();
            let trimmed =
                lower.strip_suffix('b').filter(|s| s.ends_with(['k', 'm', 'g'])).unwrap_or(&lower);
            format!("size={trimmed}")
        }
        None => option.to_owned(),
    }
}

/// Docker's default device rules: deny all, then the usual character devices.
fn device_rules(host: &HostOptions, devices: &[Device]) -> Vec<kiln_cgroups::DeviceRule> {
    let rule = |allow: bool, kind: &str, major: Option<i64>, minor: Option<i64>, access: &str| {
        kiln_cgroups::DeviceRule {
            allow,
            r#type: Some(kind.to_owned()),
            major,
            minor,
            access: Some(access.to_owned()),
        }
    };
    if host.privileged {
        return vec![rule(true, "a", None, None, "rwm")];
    }
    let mut rules = vec![
        rule(false, "a", None, None, "rwm"),
        rule(true, "c", None, None, "m"),
        rule(true, "b", None, None, "m"),
    ];
    for (major, minor) in
        [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (10, 200)]
    {
        rules.push(rule(true, "c", Some(major), Some(minor), "rwm"));
    }
    rules.push(rule(true, "c", Some(136), None, "rwm"));
    for (device, request) in devices.iter().zip(&host.devices) {
        let access =
            if request.cgroup_permissions.is_empty() { "rwm" } else { &request.cgroup_permissions };
        rules.push(rule(true, &device.kind, Some(device.major), Some(device.minor), access));
    }
    rules
}

fn resources(host: &HostOptions) -> Result<kiln_cgroups::Resources, SpecError> {
    let r = &host.resources;
    let mut resources = kiln_cgroups::Resources::default();
    if r.memory != 0 && r.memory < 6 * 1024 * 1024 {
        return Err(SpecError::MemoryTooLow);
    }
    if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
        return Err(SpecError::SwapBelowMemory);
    }
    if r.memory > 0 || r.memory_reservation > 0 || r.oom_kill_disable.is_some() {
        let swap = match (r.memory, r.memory_swap) {
            (0, _) => None,
            (_, -1) => Some(-1),
            (m, 0) => Some(m * 2),
            (_, s) => Some(s),
        };
        resources.memory = Some(kiln_cgroups::Memory {
            limit: (r.memory > 0).then_some(r.memory),
            reservation: (r.memory_reservation > 0).then_some(r.memory_reservation),
            swap,
            disable_oom_killer: r.oom_kill_disable.filter(|d| *d),
            ..kiln_cgroups::Memory::default()
        });
    }
    let mut cpu = kiln_cgroups::Cpu::default();
    let mut any_cpu = false;
    if r.nano_cpus > 0 {
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        if r.nano_cpus > (available as i64) * 1_000_000_000 {
            return Err(SpecError::TooManyCpus { available });
        }
        cpu.period = Some(100_000);
        cpu.quota = Some(r.nano_cpus * 100_000 / 1_000_000_000);
        any_cpu = true;
    } else if r.cpu_quota != 0 || r.cpu_period != 0 {
        cpu.period = (r.cpu_period > 0).then_some(r.cpu_period as u64);
        cpu.quota = (r.cpu_quota != 0).then_some(r.cpu_quota);
        any_cpu = true;
    }
    if r.cpu_shares > 0 {
        cpu.shares = Some(r.cpu_shares as u64);
        any_cpu = true;
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.cpus = Some(r.cpuset_cpus.clone());
        any_cpu = true;
    }
    if !r.cpuset_mems.is_empty() {
        cpu.mems = Some(r.cpuset_mems.clone());
        any_cpu = true;
    }
    if any_cpu {
        resources.cpu = Some(cpu);
    }
    if let Some(limit) = r.pids_limit.filter(|l| *l > 0) {
        resources.pids = Some(kiln_cgroups::Pids { limit });
    }
    if r.blkio_weight > 0 {
        resources.block_io =
            Some(kiln_cgroups::BlockIo { weight: Some(r.blkio_weight), ..Default::default() });
    }
    Ok(resources)
}

/// Docker's "ML default" refinement: /dev/shm of half the memory limit, or
/// half the host's memory when unlimited, capped at [`SHM_CAP`] and never
/// below Docker's 64 MB.
pub fn default_shm_size(memory_limit: i64, host_memory: i64) -> i64 {
    let base = if memory_limit > 0 { memory_limit } else { host_memory };
    (base / 2).clamp(DOCKER_SHM, SHM_CAP)
}

/// Ids of the devices requested, checked and typed by the caller.
pub fn device_entries(devices: &[(String, char, i64, i64, u32)]) -> Vec<Device> {
    devices
        .iter()
        .map(|(path, kind, major, minor, mode)| Device {
            kind: kind.to_string(),
            path: PathBuf::from(path),
            major: *major,
            minor: *minor,
            file_mode: Some(*mode),
            uid: Some(0),
            gid: Some(0),
        })
        .collect()
}

/// Attach the device rules of `host` to a spec's resources.
pub fn add_device_rules(spec: &mut Spec, host: &HostOptions) {
    if let Some(linux) = spec.linux.as_mut() {
        let rules = device_rules(host, &linux.devices);
        if let Some(resources) = linux.resources.as_mut() {
            resources.devices = rules;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::model::{CreateRequest, ResourceRequest};
    use kiln_types::Digest;

    fn record(request: CreateRequest, path: &str, args: &[&str]) -> ContainerRecord {
        ContainerRecord {
            id: "a".repeat(64),
            name: "t".into(),
            created: 0,
            image_id: Digest::new(kiln_types::Algorithm::Sha256, &"b".repeat(64)).expect("digest"),
            request,
            path: path.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            mounts: Vec::new(),
            state: Default::default(),
        }
    }

    fn inputs<'a>(record: &'a ContainerRecord, image: &'a ImageDefaults) -> SpecInputs<'a> {
        SpecInputs {
            record,
            image,
            user: ResolvedUser::default(),
            hostname: "aaaaaaaaaaaa".into(),
            etc: None,
            network: NetworkPlan::Private,
            default_shm: 1 << 30,
            cgroups_path: "/kiln/aaa".into(),
            devices: Vec::new(),
            volume_mounts: Vec::new(),
        }
    }

    #[test]
    fn an_entrypoint_of_the_request_drops_the_images_cmd() {
        let image = ImageDefaults {
            entrypoint: Some(vec!["/ep".into()]),
            cmd: Some(vec!["default".into()]),
            ..ImageDefaults::default()
        };
        assert_eq!(command(None, None, &image), ["/ep", "default"]);
        assert_eq!(command(None, Some(&["x".into()]), &image), ["/ep", "x"]);
        assert_eq!(command(Some(&["sh".into()]), None, &image), ["sh"]);
        assert_eq!(command(Some(&["".into()]), Some(&["ls".into()]), &image), ["ls"]);
    }

    #[test]
    fn environment_puts_path_first_and_lets_the_request_win() {
        let image = ImageDefaults { env: vec!["A=1".into(), "B=2".into()], ..Default::default() };
        let env = environment(&image, &["B=3".into(), "C".into()], "host", true);
        assert_eq!(
            env,
            [
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=host".into(),
                "TERM=xterm".into(),
                "A=1".into(),
                "B=3".into()
            ]
        );
    }

    #[test]
    fn caps_follow_add_drop_and_all() {
        let host = HostOptions {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["net_admin".into()],
            ..Default::default()
        };
        assert_eq!(capabilities(&host).expect("caps"), ["CAP_NET_ADMIN"]);
        let host = HostOptions { cap_drop: vec!["CHOWN".into()], ..Default::default() };
        let caps = capabilities(&host).expect("caps");
        assert!(!caps.contains(&"CAP_CHOWN".to_owned()) && caps.len() == 13);
        let host = HostOptions { cap_add: vec!["bogus".into()], ..Default::default() };
        assert!(matches!(capabilities(&host), Err(SpecError::Capability { .. })));
        let host = HostOptions { privileged: true, ..Default::default() };
        assert!(capabilities(&host).expect("caps").len() > 30);
    }

    #[test]
    fn the_spec_carries_limits_shm_and_readonly_root() {
        let request = CreateRequest {
            host: HostOptions {
                readonly_rootfs: true,
                resources: ResourceRequest {
                    memory: 64 << 20,
                    nano_cpus: 500_000_000,
                    pids_limit: Some(10),
                    ..Default::default()
                },
                tmpfs: [("/scratch".to_owned(), "size=1m,exec".to_owned())].into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let rec = record(request, "sh", &["-c", "true"]);
        let image = ImageDefaults::default();
        let spec = build_spec(&inputs(&rec, &image)).expect("spec");
        assert!(spec.root.as_ref().expect("root").readonly);
        let resources = spec.linux.as_ref().and_then(|l| l.resources.clone()).expect("resources");
        assert_eq!(resources.memory.as_ref().and_then(|m| m.limit), Some(64 << 20));
        assert_eq!(resources.memory.as_ref().and_then(|m| m.swap), Some(128 << 20));
        assert_eq!(resources.cpu.as_ref().and_then(|c| c.quota), Some(50_000));
        assert_eq!(resources.pids.map(|p| p.limit), Some(10));
        let shm = spec
            .mounts
            .iter()
            .find(|m| m.destination == std::path::Path::new("/dev/shm"))
            .expect("shm");
        assert!(shm.options.contains(&"size=1048576k".to_owned()), "{:?}", shm.options);
        let scratch = spec
            .mounts
            .iter()
            .find(|m| m.destination == std::path::Path::new("/scratch"))
            .expect("tmpfs");
        assert!(
            scratch.options.contains(&"size=1m".to_owned())
                && !scratch.options.contains(&"noexec".to_owned())
        );
        assert_eq!(spec.process.as_ref().expect("process").args, ["sh", "-c", "true"]);
        assert!(!spec.process.as_ref().expect("process").no_new_privileges);
    }

    #[test]
    fn tiny_memory_limits_are_refused_like_docker() {
        let request = CreateRequest {
            host: HostOptions {
                resources: ResourceRequest { memory: 1024, ..Default::default() },
                ..Default::default()
            },
            ..Default::default()
        };
        let rec = record(request, "true", &[]);
        let image = ImageDefaults::default();
        assert_eq!(build_spec(&inputs(&rec, &image)).expect_err("1k"), SpecError::MemoryTooLow);
    }

    #[test]
    fn security_opts_turn_off_seccomp_or_set_no_new_privileges() {
        let request = CreateRequest {
            host: HostOptions {
                security_opt: vec!["seccomp=unconfined".into(), "no-new-privileges".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let rec = record(request, "true", &[]);
        let image = ImageDefaults::default();
        let spec = build_spec(&inputs(&rec, &image)).expect("spec");
        assert!(spec.linux.as_ref().expect("linux").seccomp.is_none());
        assert!(spec.process.as_ref().expect("process").no_new_privileges);
        let request = CreateRequest {
            host: HostOptions { security_opt: vec!["bogus=1".into()], ..Default::default() },
            ..Default::default()
        };
        let rec = record(request, "true", &[]);
        assert!(matches!(build_spec(&inputs(&rec, &image)), Err(SpecError::SecurityOpt { .. })));
    }

    #[test]
    fn shm_defaults_to_half_the_memory_within_bounds() {
        assert_eq!(default_shm_size(0, 24 << 30), SHM_CAP);
        assert_eq!(default_shm_size(1 << 30, 24 << 30), 512 << 20);
        assert_eq!(default_shm_size(64 << 20, 24 << 30), DOCKER_SHM);
    }
}
