//! `kiln run` and `kiln create` flags → the body of `POST /containers/create`.
//!
//! [`ContainerArgs`] has docker run's flags: names, short forms and help.
//! [`ContainerArgs::plan`] turns them into a [`CreatePlan`] (the request
//! body, the name, the platform, the pull policy) and does no I/O of its
//! own: what it reads from where `kiln` runs (environment variables, env
//! and label files, the working directory, the terminal's size) comes
//! through [`Local`], so every flag is tested without a daemon. Bad values
//! fail with docker's messages, pflag's `invalid argument "V" for "F" flag:`
//! form for the flags docker checks while parsing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use clap::{ArgAction, Args};
use kiln_api_types::{
    BindOptions, ContainerConfig, ContainerCreateRequest, DeviceMapping, EmptyObject,
    EndpointSettings, Healthcheck, HostConfig, LogConfig, Mount, NetworkingConfig, PortBinding,
    RestartPolicy, TmpfsOptions, Ulimit, VolumeOptions,
};

/// The flags `kiln run` and `kiln create` share, then `IMAGE [COMMAND] [ARG...]`.
#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct ContainerArgs {
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    add_host: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "list")]
    attach: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    cap_drop: Vec<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long = "cgroupns", value_name = "string")]
    cgroupns: Option<String>,
    /// Write the container ID to the file
    #[arg(long = "cidfile", value_name = "string")]
    cidfile: Option<PathBuf>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    cpu_shares: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int")]
    cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int")]
    cpu_quota: Option<String>,
    /// Number of CPUs
    #[arg(long = "cpus", value_name = "decimal")]
    cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    cpuset_mems: Option<String>,
    /// Add a host device to the container
    #[arg(long = "device", value_name = "list")]
    device: Vec<String>,
    /// Set custom DNS servers
    #[arg(long = "dns", value_name = "list")]
    dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "list")]
    dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    dns_search: Vec<String>,
    /// Container NIS domain name
    #[arg(long = "domainname", value_name = "string")]
    domainname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long = "entrypoint", value_name = "string")]
    entrypoint: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    env_file: Vec<PathBuf>,
    /// Expose a port or a range of ports
    #[arg(long = "expose", value_name = "list")]
    expose: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    group_add: Vec<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string")]
    health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", value_name = "duration")]
    health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", value_name = "int")]
    health_retries: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", value_name = "duration")]
    health_start_interval: Option<String>,
    /// Start period for the container to initialize before starting health-retries
    /// countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", value_name = "duration")]
    health_start_period: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", value_name = "duration")]
    health_timeout: Option<String>,
    /// Container host name
    #[arg(short = 'h', long = "hostname", value_name = "string")]
    hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long = "init")]
    init: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    interactive: bool,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long = "ip", value_name = "string")]
    ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long = "ip6", value_name = "string")]
    ip6: Option<String>,
    /// IPC mode to use
    #[arg(long = "ipc", value_name = "string")]
    ipc: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    label_file: Vec<PathBuf>,
    /// Logging driver for the container
    #[arg(long = "log-driver", value_name = "string")]
    log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    log_opt: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "string")]
    mac_address: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long = "memory", value_name = "bytes")]
    memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount", value_name = "mount")]
    mount: Vec<String>,
    /// Assign a name to the container
    #[arg(long = "name", value_name = "string")]
    name: Option<String>,
    /// Connect a container to a network ("host", "none", or
    /// "container:NAME" to share another container's)
    #[arg(long = "network", alias = "net", value_name = "network")]
    network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    network_alias: Vec<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    no_healthcheck: bool,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", allow_hyphen_values = true)]
    oom_score_adj: Option<String>,
    /// PID namespace to use
    #[arg(long = "pid", value_name = "string")]
    pid: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pids_limit: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform", value_name = "string")]
    platform: Option<String>,
    /// Give extended privileges to this container
    #[arg(long = "privileged")]
    privileged: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "list")]
    publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long = "pull", value_name = "string", default_value = "missing")]
    pull: String,
    /// Suppress the pull output (accepted; there is no pull output yet)
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart", value_name = "string", default_value = "no")]
    restart: String,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long = "rm")]
    rm: bool,
    /// Runtime to use for this container
    #[arg(long = "runtime", value_name = "string")]
    runtime: Option<String>,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    security_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes")]
    shm_size: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int", allow_hyphen_values = true)]
    stop_timeout: Option<String>,
    /// Sysctl options
    #[arg(long = "sysctl", value_name = "map")]
    sysctl: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs", value_name = "list")]
    tmpfs: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    tty: bool,
    /// Ulimit options
    #[arg(long = "ulimit", value_name = "ulimit")]
    ulimit: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user", value_name = "string")]
    user: Option<String>,
    /// User namespace to use
    #[arg(long = "userns", value_name = "string")]
    userns: Option<String>,
    /// UTS namespace to use
    #[arg(long = "uts", value_name = "string")]
    uts: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    volume: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    volumes_from: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    workdir: Option<String>,
    /// The image, then the command and its arguments
    // Everything after the image belongs to the command, as with docker.
    #[arg(
        value_name = "IMAGE [COMMAND] [ARG...]",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    image_and_command: Vec<String>,
}

/// What the flags may read from where `kiln` runs.
pub(crate) trait Local {
    /// An environment variable (`-e KEY`, a bare `KEY` in an env file).
    fn var(&self, name: &str) -> Option<String>;
    /// A file named by a flag (`--env-file`, `--label-file`, a seccomp profile).
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    /// The working directory, for relative bind sources (`-v ./data:/data`).
    fn current_dir(&self) -> Option<PathBuf>;
    /// `[height, width]` of the terminal on stdout, when it is one.
    fn console_size(&self) -> Option<[u32; 2]>;
}

/// The `kiln` process itself.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ThisProcess;

impl Local for ThisProcess {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn current_dir(&self) -> Option<PathBuf> {
        std::env::current_dir().ok()
    }

    fn console_size(&self) -> Option<[u32; 2]> {
        crate::terminal::size().map(|size| [size.height, size.width])
    }
}

/// `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PullPolicy {
    Missing,
    /// Accepted; pulling is not there yet, so it acts as `missing`.
    Always,
    Never,
}

/// What `kiln create` (and `kiln run`) sends, and how.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CreatePlan {
    pub request: ContainerCreateRequest,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub pull: PullPolicy,
    pub cidfile: Option<PathBuf>,
    /// The image as docker names it when it is missing (`busybox:latest`);
    /// `None` for an image id.
    pub image_display: Option<String>,
}

/// A flag that does not say something the daemon can be asked for.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FlagError {
    /// A value docker checks while parsing flags (pflag's wording).
    #[error("invalid argument \"{value}\" for \"{flag}\" flag: {reason}")]
    InvalidArgument { flag: &'static str, value: String, reason: String },
    /// An option before the image that is not one of ours.
    #[error("unknown flag: {0}")]
    UnknownFlag(String),
    #[error("unknown shorthand flag: '{letter}' in {arg}")]
    UnknownShorthand { letter: char, arg: String },
    #[error("{0}")]
    Reference(#[from] ReferenceError),
    #[error("conflicting options: cannot specify both {first} and {second}")]
    Conflict { first: &'static str, second: &'static str },
    #[error("--no-healthcheck conflicts with --health-* options")]
    HealthcheckConflict,
    #[error("{flag} cannot be negative")]
    Negative { flag: &'static str },
    #[error("invalid restart policy format: {reason}")]
    RestartFormat { reason: &'static str },
    #[error("invalid empty volume spec")]
    EmptyVolume,
    /// `-p`: the reason, as docker's `nat.ParsePortSpec` says it.
    #[error("{0}")]
    Publish(String),
    /// `--device`: the reason, as docker's `ValidateDevice` says it.
    #[error("{0}")]
    Device(String),
    #[error("invalid port format for --expose: {0}")]
    ExposeFormat(String),
    #[error("invalid range format for --expose: {value}, error: {reason}")]
    ExposeRange { value: String, reason: String },
    #[error("{0} is not a valid mac address")]
    MacAddress(String),
    #[error("{flag}: invalid {kind} mode")]
    NamespaceMode { flag: &'static str, kind: &'static str },
    #[error("Invalid --security-opt: {0:?}")]
    SecurityOpt(String),
    #[error("opening seccomp profile ({path}) failed: {reason}")]
    SeccompProfile { path: String, reason: String },
    #[error("invalid logging opts for driver {0}")]
    LogOpts(String),
    #[error("invalid pull option: '{0}': must be one of \"always\", \"missing\" or \"never\"")]
    Pull(String),
    #[error("open {}: {reason}", .path.display())]
    ReadFile { path: PathBuf, reason: String },
    #[error("{} contains invalid utf8 bytes at line {line}", .path.display())]
    FileEncoding { path: PathBuf, line: usize },
    #[error("poorly formatted environment: {0}")]
    BadKey(String),
}

impl FlagError {
    /// Errors docker's flag parser reports, followed by the usage line.
    pub(crate) fn shows_usage(&self) -> bool {
        matches!(
            self,
            FlagError::InvalidArgument { .. }
                | FlagError::UnknownFlag(_)
                | FlagError::UnknownShorthand { .. }
        )
    }

    /// docker's exit code: 125 for flags, but 1 for `-a` with `-d`, which
    /// docker finds only after parsing.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            FlagError::Conflict { first: "--attach", .. } => 1,
            _ => 125,
        }
    }
}

fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> FlagError {
    FlagError::InvalidArgument { flag, value: value.to_owned(), reason: reason.into() }
}

impl ContainerArgs {
    /// The image as given.
    pub(crate) fn image(&self) -> &str {
        self.image_and_command.first().map_or("", String::as_str)
    }

    /// The command after the image.
    fn command(&self) -> &[String] {
        self.image_and_command.get(1..).unwrap_or_default()
    }

    /// The request and how to send it. `detach` is `kiln run -d`: nothing is
    /// attached and stdin is not closed with the attach.
    pub(crate) fn plan(&self, detach: bool, local: &impl Local) -> Result<CreatePlan, FlagError> {
        let image = self.image();
        if let Some(flag) = image.strip_prefix('-') {
            // docker-compat: an unknown option before the image is pflag's
            // error, not a reference.
            return Err(match flag.strip_prefix('-') {
                Some(_) => FlagError::UnknownFlag(image.to_owned()),
                None => FlagError::UnknownShorthand {
                    letter: flag.chars().next().unwrap_or('-'),
                    arg: image.to_owned(),
                },
            });
        }
        let image_display = familiar_tagged(image)?;
        let pull = match self.pull.as_str() {
            "missing" => PullPolicy::Missing,
            "always" => PullPolicy::Always,
            "never" => PullPolicy::Never,
            other => return Err(FlagError::Pull(other.to_owned())),
        };

        let mut attach = BTreeSet::new();
        for stream in &self.attach {
            attach.insert(parse_attach(stream)?);
        }
        if detach && !self.attach.is_empty() {
            return Err(FlagError::Conflict { first: "--attach", second: "--detach" });
        }
        let (mut attach_stdin, mut attach_stdout, mut attach_stderr) =
            (attach.contains("stdin"), attach.contains("stdout"), attach.contains("stderr"));
        if self.interactive {
            attach_stdin = true;
        }
        if self.attach.is_empty() {
            attach_stdout = true;
            attach_stderr = true;
        }
        // When stdin is attached, close it when the client goes (as docker).
        let mut stdin_once = self.interactive && attach_stdin;
        if detach {
            (attach_stdin, attach_stdout, attach_stderr, stdin_once) = (false, false, false, false);
        }

        let mut env = read_kv_files(&self.env_file, local, true)?;
        for value in &self.env {
            if let Some(value) = env_value(value, local)? {
                env.push(value);
            }
        }
        let mut label_lines = read_kv_files(&self.label_file, local, false)?;
        for value in &self.label {
            label_lines.push(check_label(value)?);
        }
        let labels = kv_map(&label_lines);

        let mut exposed: BTreeMap<String, EmptyObject> = BTreeMap::new();
        let mut bindings: BTreeMap<String, Option<Vec<PortBinding>>> = BTreeMap::new();
        for spec in &self.publish {
            for (port, binding) in parse_publish(spec)? {
                exposed.insert(port.clone(), EmptyObject {});
                bindings
                    .entry(port)
                    .or_insert_with(|| Some(Vec::new()))
                    .get_or_insert_default()
                    .push(binding);
            }
        }
        for spec in &self.expose {
            for port in parse_expose(spec)? {
                exposed.insert(port, EmptyObject {});
            }
        }

        let mut binds = Vec::new();
        let mut volumes = BTreeMap::new();
        for spec in &self.volume {
            match parse_volume(spec, local)? {
                VolumeFlag::Anonymous(target) => {
                    volumes.insert(target, EmptyObject {});
                }
                VolumeFlag::Bind(bind) => binds.push(bind),
            }
        }
        let mut mounts = Vec::new();
        for spec in &self.mount {
            mounts
                .push(parse_mount(spec, local).map_err(|reason| invalid("--mount", spec, reason))?);
        }
        let mut tmpfs = BTreeMap::new();
        for spec in &self.tmpfs {
            let (path, options) = spec.split_once(':').unwrap_or((spec, ""));
            tmpfs.insert(path.to_owned(), options.to_owned());
        }

        let mut devices = Vec::new();
        for spec in &self.device {
            devices.push(parse_device(spec).map_err(FlagError::Device)?);
        }
        let mut ulimits: Vec<Ulimit> = Vec::new();
        for spec in &self.ulimit {
            let ulimit = parse_ulimit(spec).map_err(|reason| invalid("--ulimit", spec, reason))?;
            match ulimits.iter_mut().find(|u| u.name == ulimit.name) {
                Some(existing) => *existing = ulimit,
                None => ulimits.push(ulimit),
            }
        }
        let mut sysctls = BTreeMap::new();
        for spec in &self.sysctl {
            let (key, value) =
                check_sysctl(spec).map_err(|reason| invalid("--sysctl", spec, reason))?;
            sysctls.insert(key.to_owned(), value.to_owned());
        }
        let mut dns = Vec::new();
        for server in &self.dns {
            dns.push(check_ip(server).map_err(|reason| invalid("--dns", server, reason))?);
        }
        let mut extra_hosts = Vec::new();
        for host in &self.add_host {
            extra_hosts.push(
                check_extra_host(host).map_err(|reason| invalid("--add-host", host, reason))?,
            );
        }
        let security_opt = security_opts(&self.security_opt, local)?;
        let (cap_add, cap_drop) = effective_caps(&self.cap_add, &self.cap_drop);

        let restart_policy = parse_restart(&self.restart)?;
        if self.rm && !matches!(restart_policy.name.as_str(), "" | "no") {
            return Err(FlagError::Conflict { first: "--restart", second: "--rm" });
        }
        let healthcheck = self.healthcheck()?;
        let log_config = self.log_config()?;

        check_mode(self.pid.as_deref(), "--pid", "PID", &["host"], true)?;
        check_mode(self.uts.as_deref(), "--uts", "UTS", &["host"], false)?;
        check_mode(self.userns.as_deref(), "--userns", "USER", &["host"], false)?;
        check_mode(self.cgroupns.as_deref(), "--cgroupns", "CGROUP", &["host", "private"], false)?;
        if let Some(mac) = &self.mac_address {
            if !is_mac_address(mac) {
                return Err(FlagError::MacAddress(mac.clone()));
            }
        }

        let memory = self.size_flag("-m, --memory", self.memory.as_deref())?;
        let memory_reservation =
            self.size_flag("--memory-reservation", self.memory_reservation.as_deref())?;
        let shm_size = self.size_flag("--shm-size", self.shm_size.as_deref())?;
        let memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => -1,
            other => self.size_flag("--memory-swap", other)?,
        };
        let nano_cpus = match &self.cpus {
            Some(cpus) => {
                parse_nano_cpus(cpus).map_err(|reason| invalid("--cpus", cpus, reason))?
            }
            None => 0,
        };

        let config = ContainerConfig {
            hostname: self.hostname.clone().unwrap_or_default(),
            domainname: self.domainname.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            attach_stdin,
            attach_stdout,
            attach_stderr,
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            tty: self.tty,
            open_stdin: self.interactive,
            stdin_once,
            env: (!env.is_empty()).then_some(env),
            cmd: (!self.command().is_empty()).then(|| self.command().to_vec()),
            healthcheck,
            image: image.to_owned(),
            volumes: (!volumes.is_empty()).then_some(volumes),
            working_dir: self.workdir.clone().unwrap_or_default(),
            // docker-compat: `--entrypoint ""` clears the image's entrypoint.
            entrypoint: self.entrypoint.as_ref().map(|e| vec![e.clone()]),
            mac_address: self.mac_address.clone(),
            labels: (!labels.is_empty()).then_some(labels),
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.int_flag("--stop-timeout", self.stop_timeout.as_deref())?,
            ..ContainerConfig::default()
        };
        let network_mode = self.network.first().cloned().unwrap_or_else(|| "default".to_owned());
        let host_config = HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            container_id_file: self
                .cidfile
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            log_config,
            network_mode,
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            restart_policy,
            auto_remove: self.rm,
            volumes_from: non_empty(&self.volumes_from),
            mounts: (!mounts.is_empty()).then_some(mounts),
            console_size: if self.tty { local.console_size() } else { None },
            cap_add,
            cap_drop,
            cgroupns_mode: self.cgroupns.clone().unwrap_or_default(),
            dns: (!dns.is_empty()).then_some(dns),
            dns_options: non_empty(&self.dns_option),
            dns_search: non_empty(&self.dns_search),
            extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
            group_add: non_empty(&self.group_add),
            ipc_mode: self.ipc.clone().unwrap_or_default(),
            oom_score_adj: self
                .int_flag("--oom-score-adj", self.oom_score_adj.as_deref())?
                .unwrap_or(0),
            pid_mode: self.pid.clone().unwrap_or_default(),
            privileged: self.privileged,
            publish_all_ports: self.publish_all,
            readonly_rootfs: self.read_only,
            security_opt: (!security_opt.is_empty()).then_some(security_opt),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            uts_mode: self.uts.clone().unwrap_or_default(),
            userns_mode: self.userns.clone().unwrap_or_default(),
            shm_size,
            sysctls: (!sysctls.is_empty()).then_some(sysctls),
            runtime: self.runtime.clone().unwrap_or_default(),
            init: self.init.then_some(true),
            cpu_shares: self.int_flag("-c, --cpu-shares", self.cpu_shares.as_deref())?.unwrap_or(0),
            memory,
            cpu_period: self.int_flag("--cpu-period", self.cpu_period.as_deref())?.unwrap_or(0),
            cpu_quota: self.int_flag("--cpu-quota", self.cpu_quota.as_deref())?.unwrap_or(0),
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: self.cpuset_mems.clone().unwrap_or_default(),
            devices: (!devices.is_empty()).then_some(devices),
            memory_reservation,
            memory_swap,
            nano_cpus,
            oom_kill_disable: Some(self.oom_kill_disable),
            pids_limit: self.int_flag("--pids-limit", self.pids_limit.as_deref())?,
            ulimits: (!ulimits.is_empty()).then_some(ulimits),
            ..HostConfig::default()
        };
        let networking_config = self.networking_config(&host_config.network_mode);
        Ok(CreatePlan {
            request: ContainerCreateRequest { config, host_config, networking_config },
            name: self.name.clone(),
            platform: self.platform.clone(),
            pull,
            cidfile: self.cidfile.clone(),
            image_display,
        })
    }

    fn size_flag(&self, flag: &'static str, value: Option<&str>) -> Result<i64, FlagError> {
        value.map_or(Ok(0), |v| ram_in_bytes(v).map_err(|reason| invalid(flag, v, reason)))
    }

    fn int_flag(&self, flag: &'static str, value: Option<&str>) -> Result<Option<i64>, FlagError> {
        value
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    invalid(flag, v, format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
                })
            })
            .transpose()
    }

    fn duration_flag(&self, flag: &'static str, value: Option<&str>) -> Result<i64, FlagError> {
        let nanos = value
            .map(|v| parse_go_duration(v).map_err(|reason| invalid(flag, v, reason)))
            .transpose()?
            .unwrap_or(0);
        if nanos < 0 {
            return Err(FlagError::Negative { flag });
        }
        Ok(nanos)
    }

    fn healthcheck(&self) -> Result<Option<Healthcheck>, FlagError> {
        let interval = self.duration_flag("--health-interval", self.health_interval.as_deref())?;
        let timeout = self.duration_flag("--health-timeout", self.health_timeout.as_deref())?;
        let start_period =
            self.duration_flag("--health-start-period", self.health_start_period.as_deref())?;
        let start_interval =
            self.duration_flag("--health-start-interval", self.health_start_interval.as_deref())?;
        let retries =
            self.int_flag("--health-retries", self.health_retries.as_deref())?.unwrap_or(0);
        if retries < 0 {
            return Err(FlagError::Negative { flag: "--health-retries" });
        }
        let cmd = self.health_cmd.as_deref().unwrap_or("");
        let any_setting = !cmd.is_empty()
            || interval != 0
            || timeout != 0
            || start_period != 0
            || start_interval != 0
            || retries != 0;
        if self.no_healthcheck {
            if any_setting {
                return Err(FlagError::HealthcheckConflict);
            }
            return Ok(Some(Healthcheck {
                test: vec!["NONE".to_owned()],
                ..Healthcheck::default()
            }));
        }
        if !any_setting {
            return Ok(None);
        }
        let test =
            if cmd.is_empty() { Vec::new() } else { vec!["CMD-SHELL".to_owned(), cmd.to_owned()] };
        Ok(Some(Healthcheck {
            test,
            interval: Some(interval),
            timeout: Some(timeout),
            start_period: Some(start_period),
            start_interval: Some(start_interval),
            retries: Some(retries),
        }))
    }

    fn log_config(&self) -> Result<LogConfig, FlagError> {
        let kind = self.log_driver.clone().unwrap_or_default();
        if kind == "none" && !self.log_opt.is_empty() {
            return Err(FlagError::LogOpts(kind));
        }
        Ok(LogConfig { kind, config: kv_map(&self.log_opt) })
    }

    /// Aliases, addresses and the MAC address belong to the endpoint on the
    /// first network; more networks are attached as endpoints too.
    fn networking_config(&self, mode: &str) -> Option<NetworkingConfig> {
        let mut ipam = serde_json::Map::new();
        // docker-compat: addresses are checked by the daemon.
        if let Some(ip) = &self.ip {
            ipam.insert("IPv4Address".to_owned(), ip.clone().into());
        }
        if let Some(ip) = &self.ip6 {
            ipam.insert("IPv6Address".to_owned(), ip.clone().into());
        }
        let first = EndpointSettings {
            ipam_config: (!ipam.is_empty()).then_some(serde_json::Value::Object(ipam)),
            aliases: non_empty(&self.network_alias),
            mac_address: self.mac_address.clone().unwrap_or_default(),
            ..EndpointSettings::default()
        };
        let mut endpoints = BTreeMap::new();
        if first != EndpointSettings::default() || self.network.len() > 1 {
            endpoints.insert(mode.to_owned(), first);
        }
        for network in self.network.iter().skip(1) {
            endpoints.insert(network.clone(), EndpointSettings::default());
        }
        (!endpoints.is_empty()).then_some(NetworkingConfig { endpoints_config: Some(endpoints) })
    }
}

fn non_empty(values: &[String]) -> Option<Vec<String>> {
    (!values.is_empty()).then(|| values.to_vec())
}

/// `KEY=VALUE` lines → a map; a bare `KEY` is `KEY=""`.
fn kv_map(lines: &[String]) -> BTreeMap<String, String> {
    lines
        .iter()
        .map(|line| {
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

fn parse_attach(stream: &str) -> Result<&'static str, FlagError> {
    match stream.to_ascii_lowercase().as_str() {
        "stdin" => Ok("stdin"),
        "stdout" => Ok("stdout"),
        "stderr" => Ok("stderr"),
        _ => Err(invalid("-a, --attach", stream, "valid streams are STDIN, STDOUT and STDERR")),
    }
}

/// `-e KEY=VALUE`, or `-e KEY` from our environment (dropped when unset).
pub(crate) fn env_value(value: &str, local: &impl Local) -> Result<Option<String>, FlagError> {
    let (key, _) = value.split_once('=').unwrap_or((value, ""));
    if key.is_empty() {
        return Err(invalid("-e, --env", value, format!("invalid environment variable: {value}")));
    }
    if value.contains('=') {
        return Ok(Some(value.to_owned()));
    }
    Ok(local.var(key).map(|v| format!("{key}={v}")))
}

/// The lines of env (or label) files, as docker reads them: blank lines
/// and `#` comments skipped, values kept verbatim, a bare `KEY` taken from
/// our environment (env files) or dropped.
pub(crate) fn read_kv_files(
    paths: &[PathBuf],
    local: &impl Local,
    from_env: bool,
) -> Result<Vec<String>, FlagError> {
    let mut lines = Vec::new();
    for path in paths {
        let bytes = local
            .read(path)
            .map_err(|err| FlagError::ReadFile { path: path.clone(), reason: io_reason(&err) })?;
        lines.extend(parse_kv_file(
            path,
            &bytes,
            |key| if from_env { local.var(key) } else { None },
        )?);
    }
    Ok(lines)
}

fn parse_kv_file(
    path: &Path,
    bytes: &[u8],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, FlagError> {
    const WHITESPACE: &[char] = &[' ', '\t'];
    let mut lines = Vec::new();
    for (number, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = std::str::from_utf8(raw)
            .map_err(|_| FlagError::FileEncoding { path: path.to_owned(), line: number + 1 })?;
        let line = text.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (variable, value) = match line.split_once('=') {
            Some((variable, value)) => (variable, Some(value)),
            None => (line, None),
        };
        let variable = variable.trim_start_matches(WHITESPACE);
        if variable.contains(WHITESPACE) {
            return Err(FlagError::BadKey(format!("variable '{variable}' contains whitespaces")));
        }
        if variable.is_empty() {
            return Err(FlagError::BadKey(format!("no variable name on line '{line}'")));
        }
        match value {
            Some(value) => lines.push(format!("{variable}={value}")),
            None => {
                if let Some(value) = lookup(variable.trim()) {
                    lines.push(format!("{}={value}", variable.trim()));
                }
            }
        }
    }
    Ok(lines)
}

fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

fn check_label(value: &str) -> Result<String, FlagError> {
    let (key, _) = value.split_once('=').unwrap_or((value, ""));
    let key = key.trim();
    if key.is_empty() {
        return Err(invalid("-l, --label", value, format!("invalid label '{value}': empty name")));
    }
    if key.contains(char::is_whitespace) {
        return Err(invalid("-l, --label", value, format!("label '{key}' contains whitespaces")));
    }
    Ok(value.to_owned())
}

/// Sizes as docker's `units.RAMInBytes`: `64m`, `1g`, `512k`, `1.5GiB`,
/// plain bytes; binary units.
pub(crate) fn ram_in_bytes(text: &str) -> Result<i64, String> {
    let Some(sep) = text.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{text}'"));
    };
    let (number, suffix) = if text.as_bytes()[sep] == b' ' {
        (&text[..sep], &text[sep + 1..])
    } else {
        (&text[..=sep], &text[sep + 1..])
    };
    let size: f64 = number
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing {number:?}: invalid syntax"))?;
    if size < 0.0 {
        return Err(format!("invalid size: '{text}'"));
    }
    let bad_suffix = || format!("invalid suffix: '{}'", suffix.to_ascii_lowercase());
    let suffix_lower = suffix.to_ascii_lowercase();
    let multiplier: f64 = match suffix_lower.as_bytes() {
        [] => 1.0,
        [b'b'] => 1.0,
        [unit, rest @ ..] if rest.is_empty() || rest == b"b" || rest == b"ib" => match unit {
            b'k' => 1024.0,
            b'm' => 1024.0 * 1024.0,
            b'g' => 1024.0 * 1024.0 * 1024.0,
            b't' => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            b'p' => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
            _ => return Err(bad_suffix()),
        },
        _ => return Err(bad_suffix()),
    };
    #[allow(clippy::cast_possible_truncation)]
    Ok((size * multiplier) as i64)
}

/// Durations as Go's `time.ParseDuration` (`30s`, `1m30s`, `500ms`, `1.5h`)
/// → nanoseconds.
pub(crate) fn parse_go_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration \"{text}\"");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (whole, after) = rest.split_at(digits);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => {
                let n = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
                after.split_at(n)
            }
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_len = after.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(after.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration \"{text}\""));
        }
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit \"{unit}\" in duration \"{text}\"")),
        };
        let whole: u128 =
            if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
        let mut value = whole.checked_mul(scale).ok_or_else(invalid)?;
        if !fraction.is_empty() {
            // Go truncates the fraction's contribution to whole nanoseconds.
            let digits = &fraction[..fraction.len().min(30)];
            let numerator: u128 = digits.parse().map_err(|_| invalid())?;
            let denominator = 10u128.pow(u32::try_from(digits.len()).map_err(|_| invalid())?);
            value += numerator * scale / denominator;
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > i64::MAX as u128 + u128::from(negative) {
            return Err(invalid());
        }
        rest = after;
    }
    let total = i128::try_from(total).map_err(|_| invalid())?;
    i64::try_from(if negative { -total } else { total }).map_err(|_| invalid())
}

/// `--cpus 1.5` → 1.5 × 10⁹ (docker's `NanoCPUs`).
pub(crate) fn parse_nano_cpus(text: &str) -> Result<i64, String> {
    let failed = || format!("failed to parse {text} as a rational number");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(failed());
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > 9 {
        return Err("value is too precise".to_owned());
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| failed())? };
    let fraction: i64 = format!("{fraction:0<9}").parse().map_err(|_| failed())?;
    let nanos = whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(fraction))
        .ok_or_else(failed)?;
    Ok(if negative { -nanos } else { nanos })
}

/// One `-p` value → `port/proto` keys with their host side, as docker's
/// `nat.ParsePortSpec` (and the long `target=,published=` form).
fn parse_publish(spec: &str) -> Result<Vec<(String, PortBinding)>, FlagError> {
    let standard = if spec.contains('=') {
        let mut params = BTreeMap::from([("protocol", "tcp")]);
        for param in spec.split(',') {
            match param.split_once('=') {
                Some((key, value)) if !key.is_empty() => {
                    params.insert(key, value);
                }
                _ => {
                    return Err(FlagError::Publish(format!(
                        "invalid publish opts format (should be name=value but got '{param}')"
                    )))
                }
            }
        }
        let get = |k: &str| params.get(k).copied().unwrap_or("");
        format!("{}:{}/{}", get("published"), get("target"), get("protocol"))
    } else {
        spec.to_owned()
    };
    port_spec(&standard).map_err(FlagError::Publish)
}

fn port_spec(raw: &str) -> Result<Vec<(String, PortBinding)>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let container_part = parts[parts.len() - 1];
    let (ip, host_port) = match parts.len() {
        1 => ("".to_owned(), ""),
        2 => ("".to_owned(), parts[0]),
        n => (parts[..n - 2].join(":"), parts[n - 2]),
    };
    let (proto, container_port) = split_proto_port(container_part);
    let mut ip = ip;
    if let Some(inner) = ip.strip_prefix('[') {
        ip = inner.strip_suffix(']').ok_or_else(|| format!("invalid IP address {ip}"))?.to_owned();
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container_port.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) = port_range(container_port)
        .map_err(|_| format!("invalid containerPort: {container_port}"))?;
    let (host_start, host_end) = if host_port.is_empty() {
        (0, 0)
    } else {
        port_range(host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?
    };
    if !host_port.is_empty() && end - start != host_end - host_start && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container_port} and \
                {host_port}"
        ));
    }
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let mut ports = Vec::new();
    for offset in 0..=(end - start) {
        let host = if host_port.is_empty() {
            String::new()
        } else if start == end && host_start != host_end {
            // One container port, a host range: the daemon picks within it.
            format!("{host_start}-{host_end}")
        } else {
            (host_start + offset).to_string()
        };
        ports.push((
            format!("{}/{proto}", start + offset),
            PortBinding { host_ip: ip.clone(), host_port: host },
        ));
    }
    Ok(ports)
}

/// `80/udp` → (`udp`, `80`); `80` → (`tcp`, `80`).
fn split_proto_port(raw: &str) -> (&str, &str) {
    let mut parts = raw.split('/');
    let port = parts.next().unwrap_or("");
    if raw.is_empty() || port.is_empty() {
        return ("", "");
    }
    match parts.next() {
        None | Some("") => ("tcp", port),
        Some(proto) => (proto, port),
    }
}

/// `80` or `8000-8010`.
fn port_range(text: &str) -> Result<(u32, u32), String> {
    let parse = |s: &str| s.parse::<u16>().map(u32::from).map_err(|e| e.to_string());
    if text.is_empty() {
        return Err("empty string specified for ports".to_owned());
    }
    match text.split_once('-') {
        None => parse(text).map(|p| (p, p)),
        Some((start, end)) => {
            let (start, end) = (parse(start)?, parse(end)?);
            if end < start {
                return Err(format!("invalid range specified for port: {text}"));
            }
            Ok((start, end))
        }
    }
}

fn parse_expose(spec: &str) -> Result<Vec<String>, FlagError> {
    if spec.contains(':') {
        return Err(FlagError::ExposeFormat(spec.to_owned()));
    }
    let (proto, port) = split_proto_port(spec);
    let (start, end) = port_range(port)
        .map_err(|reason| FlagError::ExposeRange { value: spec.to_owned(), reason })?;
    Ok((start..=end).map(|p| format!("{p}/{}", proto.to_ascii_lowercase())).collect())
}

/// What a `-v` value becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum VolumeFlag {
    /// `-v /data`: an anonymous volume (`Config.Volumes`).
    Anonymous(String),
    /// `-v src:dst[:mode]`, the source made absolute when it is a relative
    /// host path (`HostConfig.Binds`).
    Bind(String),
}

/// docker-compat: the CLI only sorts `-v` values into volumes and binds;
/// the daemon checks them (modes, absolute targets, colons).
fn parse_volume(spec: &str, local: &impl Local) -> Result<VolumeFlag, FlagError> {
    if spec.is_empty() {
        return Err(FlagError::EmptyVolume);
    }
    let Some((source, rest)) = spec.split_once(':') else {
        return Ok(VolumeFlag::Anonymous(spec.to_owned()));
    };
    if !source.starts_with('.') {
        return Ok(VolumeFlag::Bind(spec.to_owned()));
    }
    let cwd = local.current_dir().unwrap_or_else(|| PathBuf::from("/"));
    let source = clean_path(&cwd.join(source));
    Ok(VolumeFlag::Bind(format!("{}:{rest}", source.to_string_lossy())))
}

/// `path` with `.` and `..` resolved lexically, as Go's `filepath.Clean`.
fn clean_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// One `--mount` value, as docker's `MountOpt.Set` (CSV fields).
fn parse_mount(spec: &str, local: &impl Local) -> Result<Mount, String> {
    let mut mount = Mount { kind: "volume".to_owned(), ..Mount::default() };
    let mut bind: Option<BindOptions> = None;
    let mut volume: Option<VolumeOptions> = None;
    let mut tmpfs: Option<TmpfsOptions> = None;
    let parse_bool = |key: &str, value: &str| match value.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => Err(format!("invalid value for {key}: {value}")),
    };
    let set_kv = |map: &mut Option<BTreeMap<String, String>>, value: &str| {
        let (k, v) = value.split_once('=').unwrap_or((value, ""));
        if !k.is_empty() {
            map.get_or_insert_default().insert(k.to_owned(), v.to_owned());
        }
    };
    for field in csv_fields(spec) {
        let Some((key, value)) = field.split_once('=') else {
            match field.to_ascii_lowercase().as_str() {
                "readonly" | "ro" => mount.read_only = true,
                "volume-nocopy" => volume.get_or_insert_default().no_copy = true,
                "bind-nonrecursive" => bind.get_or_insert_default().non_recursive = true,
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let key = key.to_ascii_lowercase();
        match key.as_str() {
            "type" => mount.kind = value.to_ascii_lowercase(),
            "source" | "src" => {
                mount.source = value.to_owned();
                if value == "." || value.starts_with("./") {
                    let cwd = local.current_dir().unwrap_or_else(|| PathBuf::from("/"));
                    mount.source = clean_path(&cwd.join(value)).to_string_lossy().into_owned();
                }
            }
            "target" | "dst" | "destination" => mount.target = value.to_owned(),
            "readonly" | "ro" => mount.read_only = parse_bool(&key, value)?,
            "consistency" => mount.consistency = value.to_ascii_lowercase(),
            "bind-propagation" => {
                bind.get_or_insert_default().propagation = value.to_ascii_lowercase();
            }
            "bind-nonrecursive" => {
                bind.get_or_insert_default().non_recursive = parse_bool(&key, value)?;
            }
            "bind-create-mountpoint" => {
                bind.get_or_insert_default().create_mountpoint = parse_bool(&key, value)?;
            }
            "volume-nocopy" => {
                volume.get_or_insert_default().no_copy = parse_bool(&key, value)
                    .map_err(|_| format!("invalid value for volume-nocopy: {value}"))?;
            }
            "volume-label" => set_kv(&mut volume.get_or_insert_default().labels, value),
            "volume-driver" => {
                volume.get_or_insert_default().driver_config.get_or_insert_default().name =
                    value.to_owned();
            }
            "volume-opt" => {
                let driver = volume.get_or_insert_default().driver_config.get_or_insert_default();
                set_kv(&mut driver.options, value);
            }
            "volume-subpath" => volume.get_or_insert_default().subpath = value.to_owned(),
            "tmpfs-size" => {
                tmpfs.get_or_insert_default().size_bytes =
                    ram_in_bytes(value).map_err(|_| format!("invalid value for {key}: {value}"))?;
            }
            "tmpfs-mode" => {
                tmpfs.get_or_insert_default().mode = u32::from_str_radix(value, 8)
                    .map_err(|_| format!("invalid value for {key}: {value}"))?;
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if mount.kind.is_empty() {
        return Err("type is required".to_owned());
    }
    if mount.target.is_empty() {
        return Err("target is required".to_owned());
    }
    for (present, family, kind) in [
        (volume.is_some(), "volume", "volume"),
        (bind.is_some(), "bind", "bind"),
        (tmpfs.is_some(), "tmpfs", "tmpfs"),
    ] {
        if present && mount.kind != kind {
            return Err(format!(
                "cannot mix '{family}-*' options with mount type '{}'",
                mount.kind
            ));
        }
    }
    mount.bind_options = bind;
    mount.volume_options = volume;
    mount.tmpfs_options = tmpfs;
    Ok(mount)
}

/// A line of CSV as Go's `encoding/csv` reads it: `,` separates, a field
/// may be quoted with `"` and `""` inside it is a quote.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        break;
                    }
                } else {
                    field.push(c);
                }
            }
            // Anything after the closing quote up to the comma is kept.
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return fields;
        }
    }
}

/// `--device /dev/x[:/dev/y][:rwm]`, as docker's `parseLinuxDevice` and
/// `ValidateDevice`.
fn parse_device(spec: &str) -> Result<DeviceMapping, String> {
    let is_mode = |m: &str| {
        !m.is_empty()
            && m.len() <= 3
            && m.chars().all(|c| "rwm".contains(c))
            && m.chars().collect::<BTreeSet<_>>().len() == m.len()
    };
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() > 3 || parts[0].is_empty() {
        return Err(format!("bad format for path: {spec}"));
    }
    let (host, container, mode) = match parts[..] {
        [host] => (host, host, "rwm"),
        [host, second] if is_mode(second) => (host, host, second),
        [host, container] => (host, container, "rwm"),
        [host, container, mode] => {
            if !is_mode(mode) {
                return Err(format!("bad mode specified: {mode}"));
            }
            (host, container, mode)
        }
        _ => return Err(format!("bad format for path: {spec}")),
    };
    if !container.starts_with('/') {
        return Err(format!("{container} is not an absolute path"));
    }
    Ok(DeviceMapping {
        path_on_host: host.to_owned(),
        path_in_container: container.to_owned(),
        cgroup_permissions: mode.to_owned(),
    })
}

const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit name=soft[:hard]`, as docker's `units.ParseUlimit`.
pub(crate) fn parse_ulimit(spec: &str) -> Result<Ulimit, String> {
    let Some((name, limits)) = spec.split_once('=') else {
        return Err(format!("invalid ulimit argument: {spec}"));
    };
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let int = |s: &str| {
        s.parse::<i64>().map_err(|_| format!("strconv.ParseInt: parsing {s:?}: invalid syntax"))
    };
    let values: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match values[..] {
        [soft] => (int(soft)?, int(soft)?),
        [soft, hard] => (int(soft)?, int(hard)?),
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ))
        }
    };
    if hard != -1 && soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(Ulimit { name: name.to_owned(), soft, hard })
}

/// `--sysctl key=value`: only namespaced sysctls, as docker's `ValidateSysctl`.
fn check_sysctl(spec: &str) -> Result<(&str, &str), String> {
    const ALLOWED: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let not_allowed = || format!("sysctl '{spec}' is not allowed");
    let (key, value) = spec.split_once('=').ok_or_else(not_allowed)?;
    if ALLOWED.contains(&key) || key.starts_with("net.") || key.starts_with("fs.mqueue.") {
        Ok((key, value))
    } else {
        Err(not_allowed())
    }
}

fn check_ip(value: &str) -> Result<String, String> {
    value
        .trim()
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("IP address is not correctly formatted: {value}"))
}

/// `--add-host name:ip` (or `name=ip`, `[v6]`, `host-gateway`) → `name:ip`.
fn check_extra_host(value: &str) -> Result<String, String> {
    let (name, address) = value
        .split_once('=')
        .or_else(|| value.split_once(':'))
        .filter(|(name, _)| !name.is_empty() && !name.contains(':'))
        .ok_or_else(|| format!("bad format for add-host: {value:?}"))?;
    let mut address = address;
    if address != "host-gateway" {
        if address.len() > 2 && address.starts_with('[') && address.ends_with(']') {
            address = &address[1..address.len() - 1];
        }
        if address.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("invalid IP address in add-host: {address:?}"));
        }
    }
    Ok(format!("{name}:{address}"))
}

/// `--security-opt`, with `seccomp=FILE` replaced by the profile's JSON.
fn security_opts(values: &[String], local: &impl Local) -> Result<Vec<String>, FlagError> {
    let mut out = Vec::new();
    for opt in values {
        let split = opt.split_once('=').or_else(|| {
            if opt == "no-new-privileges" {
                None
            } else {
                opt.split_once(':')
            }
        });
        let (key, value) = match split {
            Some((key, value)) if !value.is_empty() => (key, value),
            _ if opt == "no-new-privileges" => {
                out.push(opt.clone());
                continue;
            }
            _ => return Err(FlagError::SecurityOpt(opt.clone())),
        };
        if key == "seccomp" && value != "builtin" && value != "unconfined" {
            let bad = |reason: String| FlagError::SeccompProfile { path: value.to_owned(), reason };
            let bytes = local.read(Path::new(value)).map_err(|e| bad(io_reason(&e)))?;
            let profile: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?;
            out.push(format!("seccomp={profile}"));
        } else {
            out.push(opt.clone());
        }
    }
    Ok(out)
}

/// Capabilities as docker sends them: upper case, `CAP_` prefixed, `ALL`
/// winning over any other, a capability both added and dropped only
/// added; sorted.
fn effective_caps(add: &[String], drop: &[String]) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let normalize = |caps: &[String]| -> BTreeSet<String> {
        caps.iter()
            .map(|c| {
                let c = c.trim().to_ascii_uppercase();
                if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
                    c
                } else {
                    format!("CAP_{c}")
                }
            })
            .collect()
    };
    let (mut add, mut drop) = (normalize(add), normalize(drop));
    if add.contains("ALL") {
        add = BTreeSet::from(["ALL".to_owned()]);
    }
    if drop.contains("ALL") {
        drop = BTreeSet::from(["ALL".to_owned()]);
    }
    let drop: Vec<String> = drop.into_iter().filter(|c| !add.contains(c)).collect();
    let add: Vec<String> = add.into_iter().collect();
    ((!add.is_empty()).then_some(add), (!drop.is_empty()).then_some(drop))
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
fn parse_restart(policy: &str) -> Result<RestartPolicy, FlagError> {
    if policy.is_empty() {
        return Ok(RestartPolicy::default());
    }
    let (name, count) = policy.split_once(':').unwrap_or((policy, ""));
    if policy.contains(':') && name.is_empty() {
        return Err(FlagError::RestartFormat { reason: "no policy provided before colon" });
    }
    let maximum_retry_count = if count.is_empty() {
        0
    } else {
        count.parse::<i64>().map_err(|_| FlagError::RestartFormat {
            reason: "maximum retry count must be an integer",
        })?
    };
    // docker-compat: the name and the count's use are the daemon's to check.
    Ok(RestartPolicy { name: name.to_owned(), maximum_retry_count })
}

/// `--pid`, `--ipc`, `--uts`, `--userns`, `--cgroupns`: one of `names`, or
/// `container:ID` where that is allowed.
fn check_mode(
    value: Option<&str>,
    flag: &'static str,
    kind: &'static str,
    names: &[&str],
    container: bool,
) -> Result<(), FlagError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let joins_container =
        container && value.strip_prefix("container:").is_some_and(|id| !id.is_empty());
    if names.contains(&value) || joins_container {
        Ok(())
    } else {
        Err(FlagError::NamespaceMode { flag, kind })
    }
}

fn is_mac_address(text: &str) -> bool {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    parts.len() == 6
        && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An image reference the daemon could not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReferenceError {
    #[error("invalid reference format")]
    Format,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("invalid reference format: repository name must not be more than 255 characters")]
    TooLong,
}

/// The image as docker names it when it is not there (`busybox` →
/// `busybox:latest`, `docker.io/library/x:1` → `x:1`); `None` for an image
/// id (64 hex digits, or `sha256:` and them).
pub(crate) fn familiar_tagged(reference: &str) -> Result<Option<String>, ReferenceError> {
    let is_hex64 =
        |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if is_hex64(reference) || reference.strip_prefix("sha256:").is_some_and(is_hex64) {
        return Ok(None);
    }
    let (domain, remainder) = split_domain(reference);
    let remainder = remainder.as_str();
    let remote = remainder.split_once(':').map_or(remainder, |(r, _)| r);
    if remote.to_ascii_lowercase() != remote {
        return Err(ReferenceError::Uppercase(remote.to_owned()));
    }
    let (rest, digest) = match remainder.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (remainder, None),
    };
    let (path, tag) = match rest.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
        _ => (rest, None),
    };
    if !is_domain(domain)
        || path.is_empty()
        || !path.split('/').all(is_path_component)
        || !tag.is_none_or(is_tag)
        || !digest.is_none_or(is_digest)
    {
        return Err(ReferenceError::Format);
    }
    if domain.len() + 1 + path.len() > 255 {
        return Err(ReferenceError::TooLong);
    }
    let familiar = match domain {
        "docker.io" => {
            path.strip_prefix("library/").filter(|p| !p.contains('/')).unwrap_or(path).to_owned()
        }
        _ => format!("{domain}/{path}"),
    };
    Ok(Some(match (tag, digest) {
        (None, None) => format!("{familiar}:latest"),
        (Some(tag), None) => format!("{familiar}:{tag}"),
        (None, Some(digest)) => format!("{familiar}@{digest}"),
        (Some(tag), Some(digest)) => format!("{familiar}:{tag}@{digest}"),
    }))
}

/// docker's `splitDockerDomain`: the first component is a registry when it
/// has a `.` or `:`, is `localhost`, or has upper case; official images on
/// Docker Hub are under `library/`.
fn split_domain(name: &str) -> (&str, String) {
    let (domain, remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_ascii_lowercase() != first =>
        {
            (if first == "index.docker.io" { "docker.io" } else { first }, rest)
        }
        _ => ("docker.io", name),
    };
    if domain == "docker.io" && !remainder.contains('/') {
        return (domain, format!("library/{remainder}"));
    }
    (domain, remainder.to_owned())
}

fn is_domain(domain: &str) -> bool {
    let (host, port) = if let Some(v6) = domain.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, rest)) => {
                if addr.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                ("", rest.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !c.starts_with('-')
            && !c.ends_with('-')
    };
    (domain.starts_with('[') || host.split('.').all(component_ok))
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn is_path_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// `algorithm:hex` with at least 32 hex digits.
fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    !algorithm.is_empty()
        && algorithm.as_bytes()[0].is_ascii_alphabetic()
        && algorithm.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_+.".contains(&b))
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// `kiln run`'s flags, as a parser of their own.
    #[derive(Debug, Parser)]
    #[command(no_binary_name = true)]
    struct Cli {
        #[arg(short = 'd', long = "detach")]
        detach: bool,
        #[command(flatten)]
        args: ContainerArgs,
    }

    #[derive(Debug, Default)]
    struct FakeLocal {
        vars: BTreeMap<String, String>,
        files: BTreeMap<PathBuf, Vec<u8>>,
        console: Option<[u32; 2]>,
    }

    impl Local for FakeLocal {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }

        fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            self.files.get(path).cloned().ok_or_else(|| std::io::ErrorKind::NotFound.into())
        }

        fn current_dir(&self) -> Option<PathBuf> {
            Some(PathBuf::from("/home/me/project"))
        }

        fn console_size(&self) -> Option<[u32; 2]> {
            self.console
        }
    }

    fn local() -> FakeLocal {
        let mut local = FakeLocal { console: Some([24, 80]), ..FakeLocal::default() };
        local.vars.insert("HOME".to_owned(), "/home/me".to_owned());
        local.files.insert(
            PathBuf::from("/env.list"),
            b"# comment\n\n  A=from file\nB= spaced value \nHOME\nUNSET\r\nC=1=2\n".to_vec(),
        );
        local.files.insert(PathBuf::from("/labels"), b"team=ml\n#x=y\nbare\n".to_vec());
        local.files.insert(PathBuf::from("/bad.env"), b"MY VAR=1\n".to_vec());
        local.files.insert(PathBuf::from("/noname.env"), b"=1\n".to_vec());
        local.files.insert(
            PathBuf::from("/seccomp.json"),
            b"{ \"defaultAction\" : \"SCMP_ACT_ALLOW\" }".to_vec(),
        );
        local
    }

    /// A command line split as a shell would, with '...' quoting.
    fn words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word: Option<String> = None;
        let mut quoted = false;
        for c in line.chars() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    word.get_or_insert_default();
                }
                ' ' if !quoted => words.extend(word.take()),
                c => word.get_or_insert_default().push(c),
            }
        }
        words.extend(word);
        words
    }

    fn plan(args: &str) -> Result<CreatePlan, FlagError> {
        let cli = Cli::try_parse_from(words(args)).expect("clap parses");
        cli.args.plan(cli.detach, &local())
    }

    fn request(args: &str) -> ContainerCreateRequest {
        plan(args).expect("valid flags").request
    }

    fn host(args: &str) -> HostConfig {
        request(args).host_config
    }

    fn error(args: &str) -> String {
        plan(args).expect_err("invalid flags").to_string()
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn a_bare_image_runs_its_own_command_attached_to_stdout_and_stderr() {
        let plan = plan("busybox").expect("plan");
        let config = &plan.request.config;
        assert_eq!(config.image, "busybox");
        assert_eq!(config.cmd, None);
        assert_eq!(config.entrypoint, None);
        assert!(config.attach_stdout && config.attach_stderr && !config.attach_stdin);
        assert!(!config.open_stdin && !config.stdin_once && !config.tty);
        assert_eq!(plan.request.host_config.network_mode, "default");
        assert_eq!(plan.request.host_config.restart_policy.name, "no");
        assert_eq!(plan.request.host_config.console_size, None);
        assert_eq!(plan.request.networking_config, None);
        assert_eq!(plan.image_display.as_deref(), Some("busybox:latest"));
        assert_eq!(plan.pull, PullPolicy::Missing);
        assert_eq!((plan.name, plan.platform, plan.cidfile), (None, None, None));
    }

    #[test]
    fn everything_after_the_image_belongs_to_the_command() {
        let config = request("busybox sh -c 'echo hi'").config;
        assert_eq!(config.cmd, Some(strings(&["sh", "-c", "echo hi"])));
        let req = request("-c 512 busybox --rm -c 3");
        assert_eq!(req.config.cmd, Some(strings(&["--rm", "-c", "3"])));
        assert_eq!(req.host_config.cpu_shares, 512);
        assert!(!req.host_config.auto_remove);
        assert_eq!(request("-- busybox -x").config.cmd, Some(strings(&["-x"])));
    }

    #[test]
    fn h_is_the_hostname_not_help() {
        let config = request("-h box --domainname example.com busybox").config;
        assert_eq!((config.hostname.as_str(), config.domainname.as_str()), ("box", "example.com"));
    }

    #[test]
    fn an_unknown_option_before_the_image_is_a_flag_error() {
        assert_eq!(error("--bogus busybox"), "unknown flag: --bogus");
        assert_eq!(error("-x busybox"), "unknown shorthand flag: 'x' in -x");
    }

    #[test]
    fn interactive_tty_keeps_stdin_open_and_closes_it_with_the_attach() {
        let req = request("-it busybox sh");
        let config = &req.config;
        assert!(config.open_stdin && config.stdin_once && config.attach_stdin && config.tty);
        assert!(config.attach_stdout && config.attach_stderr);
        assert_eq!(req.host_config.console_size, Some([24, 80]));
        let config = request("-i busybox").config;
        assert!(config.open_stdin && config.stdin_once && !config.tty);
    }

    #[test]
    fn detached_containers_attach_nothing() {
        let config = request("-d -i busybox").config;
        assert!(config.open_stdin);
        assert!(!config.stdin_once && !config.attach_stdin);
        assert!(!config.attach_stdout && !config.attach_stderr);
        assert!(request("-d --rm busybox").host_config.auto_remove);
        let err = plan("-d -a stdout busybox").expect_err("conflict");
        assert_eq!(
            err.to_string(),
            "conflicting options: cannot specify both --attach and --detach"
        );
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn attach_names_the_streams() {
        let config = request("-a stdin -a STDOUT busybox").config;
        assert!(config.attach_stdin && config.attach_stdout && !config.attach_stderr);
        // -a stdin alone without -i attaches stdin but keeps it open only with -i.
        assert!(!config.open_stdin && !config.stdin_once);
        let config = request("-a stderr busybox").config;
        assert!(!config.attach_stdout && config.attach_stderr);
        assert_eq!(
            error("-a stdlog busybox"),
            "invalid argument \"stdlog\" for \"-a, --attach\" flag: valid streams are STDIN, \
                STDOUT and STDERR"
        );
    }

    #[test]
    fn env_comes_from_files_then_flags_and_from_our_environment() {
        let env =
            request("--env-file /env.list -e X=1 -e HOME -e NOPE busybox").config.env.expect("env");
        assert_eq!(
            env,
            strings(&[
                "A=from file",
                "B= spaced value ",
                "HOME=/home/me",
                "C=1=2",
                "X=1",
                "HOME=/home/me"
            ])
        );
        assert_eq!(request("-e NOPE busybox").config.env, None);
        assert_eq!(
            error("-e =x busybox"),
            "invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x"
        );
        assert_eq!(
            error("--env-file /bad.env busybox"),
            "poorly formatted environment: variable 'MY VAR' contains whitespaces"
        );
        assert_eq!(
            error("--env-file /noname.env busybox"),
            "poorly formatted environment: no variable name on line '=1'"
        );
        assert_eq!(
            error("--env-file /missing busybox"),
            "open /missing: no such file or directory"
        );
    }

    #[test]
    fn labels_come_from_files_then_flags() {
        let labels = request("--label-file /labels -l a=b -l flag -l team=infra busybox")
            .config
            .labels
            .expect("labels");
        let expected: BTreeMap<String, String> = [("a", "b"), ("flag", ""), ("team", "infra")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(labels, expected);
        assert_eq!(
            error("-l =x busybox"),
            "invalid argument \"=x\" for \"-l, --label\" flag: invalid label '=x': empty name"
        );
    }

    #[test]
    fn an_empty_entrypoint_clears_the_images() {
        assert_eq!(request("--entrypoint '' busybox").config.entrypoint, Some(strings(&[""])));
        assert_eq!(request("--entrypoint= busybox").config.entrypoint, Some(strings(&[""])));
        let config = request("--entrypoint /bin/sh busybox -c true").config;
        assert_eq!(config.entrypoint, Some(strings(&["/bin/sh"])));
        assert_eq!(config.cmd, Some(strings(&["-c", "true"])));
    }

    fn binding(ip: &str, port: &str) -> PortBinding {
        PortBinding { host_ip: ip.to_owned(), host_port: port.to_owned() }
    }

    #[test]
    fn published_ports_are_exposed_and_bound() {
        let req = request("-p 8080:80 -p 127.0.0.1:53:53/udp -p 9000 busybox");
        let exposed: Vec<&String> =
            req.config.exposed_ports.as_ref().expect("exposed").keys().collect();
        assert_eq!(exposed, ["53/udp", "80/tcp", "9000/tcp"]);
        let bindings = req.host_config.port_bindings.expect("bindings");
        assert_eq!(bindings["80/tcp"], Some(vec![binding("", "8080")]));
        assert_eq!(bindings["53/udp"], Some(vec![binding("127.0.0.1", "53")]));
        assert_eq!(bindings["9000/tcp"], Some(vec![binding("", "")]));
    }

    #[test]
    fn published_ranges_pair_up_or_become_a_host_range() {
        let bindings = host("-p 8000-8001:80-81 busybox").port_bindings.expect("b");
        assert_eq!(bindings["80/tcp"], Some(vec![binding("", "8000")]));
        assert_eq!(bindings["81/tcp"], Some(vec![binding("", "8001")]));
        let bindings = host("-p 8000-8010:80 busybox").port_bindings.expect("b");
        assert_eq!(bindings["80/tcp"], Some(vec![binding("", "8000-8010")]));
        let bindings = host("-p [::1]:80:80 -p 81:80 busybox").port_bindings.expect("b");
        assert_eq!(bindings["80/tcp"], Some(vec![binding("::1", "80"), binding("", "81")]));
        let bindings =
            host("-p target=80,published=8080,protocol=udp busybox").port_bindings.expect("b");
        assert_eq!(bindings["80/udp"], Some(vec![binding("", "8080")]));
        let req = request("-P --expose 7000-7001/udp --expose 22 busybox");
        assert!(req.host_config.publish_all_ports);
        let exposed: Vec<&String> =
            req.config.exposed_ports.as_ref().expect("exposed").keys().collect();
        assert_eq!(exposed, ["22/tcp", "7000/udp", "7001/udp"]);
    }

    #[test]
    fn bad_published_ports_say_what_is_wrong() {
        let cases = [
            ("x", "invalid containerPort: x"),
            ("80:x", "invalid containerPort: x"),
            ("x:80", "invalid hostPort: x"),
            ("80/xyz", "invalid proto: xyz"),
            ("1.2.3:80:80", "invalid IP address: 1.2.3"),
            (
                "8000-8001:80-82",
                "invalid ranges specified for container and host Ports: 80-82 and 8000-8001",
            ),
            ("70000", "invalid containerPort: 70000"),
            (
                "target=80,bogus",
                "invalid publish opts format (should be name=value but got 'bogus')",
            ),
        ];
        for (spec, reason) in cases {
            assert_eq!(error(&format!("-p {spec} busybox")), reason, "{spec}");
        }
        assert_eq!(error("--expose 80:80 busybox"), "invalid port format for --expose: 80:80");
        assert!(
            error("--expose x busybox").starts_with("invalid range format for --expose: x, error:")
        );
    }

    #[test]
    fn volumes_are_anonymous_binds_or_named() {
        let req = request(
            "-v /data -v /host:/c:ro -v ./rel:/r -v ../up/./x:/u:rw,z -v cache:/cache busybox",
        );
        let volumes: Vec<&String> = req.config.volumes.as_ref().expect("volumes").keys().collect();
        assert_eq!(volumes, ["/data"]);
        assert_eq!(
            req.host_config.binds,
            Some(strings(&[
                "/host:/c:ro",
                "/home/me/project/rel:/r",
                "/home/me/up/x:/u:rw,z",
                "cache:/cache"
            ]))
        );
    }

    #[test]
    fn volumes_the_daemon_must_judge_pass_through() {
        // docker-compat: the daemon checks colons, modes and targets.
        let binds = |spec: &str| host(&format!("-v {spec} busybox")).binds;
        assert_eq!(binds("a:b:c:d"), Some(strings(&["a:b:c:d"])));
        assert_eq!(binds("/a:/b:bogus"), Some(strings(&["/a:/b:bogus"])));
        assert_eq!(binds("./x::y"), Some(strings(&["/home/me/project/x::y"])));
        let volumes = request("-v data busybox").config.volumes.expect("volumes");
        assert_eq!(volumes.keys().collect::<Vec<_>>(), ["data"]);
        assert_eq!(error("-v '' busybox"), "invalid empty volume spec");
    }

    #[test]
    fn mounts_follow_dockers_csv_fields() {
        let mounts = host("--mount \
            type=bind,source=/a,target=/b,readonly,bind-propagation=rshared --mount \
            type=volume,src=v,dst=/d,volume-nocopy,volume-label=a=b,volume-opt=o=1,volume-driver=local \
            --mount type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770 --mount \
            src=./here,target=/h,ro=false --mount \
            '\"type=bind\",source=/x,target=/y,readonly=true' busybox")
        .mounts
        .expect("mounts");
        assert_eq!(mounts.len(), 5);
        assert_eq!(
            (mounts[0].kind.as_str(), mounts[0].source.as_str(), mounts[0].target.as_str()),
            ("bind", "/a", "/b")
        );
        assert!(mounts[0].read_only);
        assert_eq!(mounts[0].bind_options.as_ref().expect("bind").propagation, "rshared");
        let volume = mounts[1].volume_options.as_ref().expect("volume options");
        assert!(volume.no_copy);
        assert_eq!(volume.labels.as_ref().expect("labels")["a"], "b");
        let driver = volume.driver_config.as_ref().expect("driver");
        assert_eq!(
            (driver.name.as_str(), driver.options.as_ref().expect("opts")["o"].as_str()),
            ("local", "1")
        );
        let tmpfs = mounts[2].tmpfs_options.as_ref().expect("tmpfs");
        assert_eq!(
            (mounts[2].kind.as_str(), tmpfs.size_bytes, tmpfs.mode),
            ("tmpfs", 64 << 20, 0o1770)
        );
        assert_eq!(
            (mounts[3].kind.as_str(), mounts[3].source.as_str()),
            ("volume", "/home/me/project/here")
        );
        assert!(!mounts[3].read_only);
        assert!(mounts[4].read_only && mounts[4].kind == "bind");
    }

    #[test]
    fn bad_mounts_say_what_is_wrong() {
        let cases = [
            ("type=bind,source=/a", "target is required"),
            (
                "type=bind,target=/b,volume-nocopy",
                "cannot mix 'volume-*' options with mount type 'bind'",
            ),
            (
                "type=volume,target=/b,tmpfs-size=1m",
                "cannot mix 'tmpfs-*' options with mount type 'volume'",
            ),
            (
                "type=tmpfs,target=/b,bind-propagation=shared",
                "cannot mix 'bind-*' options with mount type 'tmpfs'",
            ),
            ("type=bind,target=/b,color=red", "unexpected key 'color' in 'color=red'"),
            ("type=bind,target=/b,ro=maybe", "invalid value for ro: maybe"),
            ("type=bind,target=/b,shiny", "invalid field 'shiny' must be a key=value pair"),
            ("type=tmpfs,target=/b,tmpfs-mode=9", "invalid value for tmpfs-mode: 9"),
        ];
        for (spec, reason) in cases {
            assert_eq!(
                error(&format!("--mount {spec} busybox")),
                format!("invalid argument \"{spec}\" for \"--mount\" flag: {reason}"),
            );
        }
    }

    #[test]
    fn tmpfs_devices_ulimits_and_sysctls() {
        let host = host(
            "--tmpfs /run:rw,size=64m --tmpfs /tmp --device /dev/fuse --device \
            /dev/sda:/dev/xvda:r --device /dev/kvm:rw --ulimit nofile=1024:2048 --ulimit nproc=10 \
            --ulimit nofile=4096 --sysctl net.ipv4.ip_forward=1 --sysctl kernel.shmmax=1 busybox",
        );
        let tmpfs = host.tmpfs.expect("tmpfs");
        assert_eq!((tmpfs["/run"].as_str(), tmpfs["/tmp"].as_str()), ("rw,size=64m", ""));
        let devices = host.devices.expect("devices");
        let device = |h: &str, c: &str, m: &str| DeviceMapping {
            path_on_host: h.to_owned(),
            path_in_container: c.to_owned(),
            cgroup_permissions: m.to_owned(),
        };
        assert_eq!(
            devices,
            [
                device("/dev/fuse", "/dev/fuse", "rwm"),
                device("/dev/sda", "/dev/xvda", "r"),
                device("/dev/kvm", "/dev/kvm", "rw")
            ]
        );
        let ulimit = |n: &str, soft, hard| Ulimit { name: n.to_owned(), soft, hard };
        assert_eq!(
            host.ulimits.expect("ulimits"),
            [ulimit("nofile", 4096, 4096), ulimit("nproc", 10, 10)]
        );
        let sysctls = host.sysctls.expect("sysctls");
        assert_eq!(sysctls["net.ipv4.ip_forward"], "1");
        assert_eq!(sysctls["kernel.shmmax"], "1");
    }

    #[test]
    fn bad_devices_ulimits_and_sysctls_say_what_is_wrong() {
        // docker checks devices after parsing: no pflag wording.
        assert_eq!(error("--device /dev/a:/dev/b:xyz busybox"), "bad mode specified: xyz");
        assert_eq!(error("--device /dev/a:dev/b busybox"), "dev/b is not an absolute path");
        assert_eq!(error("--device /a:/b:r:w busybox"), "bad format for path: /a:/b:r:w");
        let cases: [(&str, &str, &str); 5] = [
            ("--ulimit", "nofile", "invalid ulimit argument: nofile"),
            ("--ulimit", "files=1", "invalid ulimit type: files"),
            (
                "--ulimit",
                "nofile=1:2:3",
                "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`",
            ),
            (
                "--ulimit",
                "nofile=20:10",
                "ulimit soft limit must be less than or equal to hard limit: 20 > 10",
            ),
            ("--sysctl", "kernel.domainname=x", "sysctl 'kernel.domainname=x' is not allowed"),
        ];
        for (flag, value, reason) in cases {
            assert_eq!(
                error(&format!("{flag} {value} busybox")),
                format!("invalid argument \"{value}\" for \"{flag}\" flag: {reason}")
            );
        }
        assert_eq!(
            error("--ulimit nofile=x busybox"),
            "invalid argument \"nofile=x\" for \"--ulimit\" flag: strconv.ParseInt: parsing \
                \"x\": invalid syntax"
        );
    }

    #[test]
    fn capabilities_are_normalised_and_all_wins() {
        let caps = host("--cap-add net_admin --cap-add CAP_SYS_TIME --cap-drop ALL busybox");
        assert_eq!(caps.cap_add, Some(strings(&["CAP_NET_ADMIN", "CAP_SYS_TIME"])));
        assert_eq!(caps.cap_drop, Some(strings(&["ALL"])));
        let caps = host("--cap-add all --cap-add chown --cap-drop chown --cap-drop mknod busybox");
        assert_eq!(caps.cap_add, Some(strings(&["ALL"])));
        assert_eq!(caps.cap_drop, Some(strings(&["CAP_CHOWN", "CAP_MKNOD"])));
        let caps = host("--cap-add chown --cap-drop chown busybox");
        assert_eq!((caps.cap_add, caps.cap_drop), (Some(strings(&["CAP_CHOWN"])), None));
    }

    #[test]
    fn resources_use_dockers_units() {
        let host = host(
            "-m 64m --memory-swap -1 --memory-reservation 1g --shm-size 512k --cpus \
            1.5 -c 512 --cpuset-cpus 0-1 --cpuset-mems 0 --cpu-period 100000 --cpu-quota 50000 \
            --pids-limit -1 --oom-kill-disable --oom-score-adj -500 busybox",
        );
        assert_eq!(
            (host.memory, host.memory_swap, host.memory_reservation),
            (64 << 20, -1, 1 << 30)
        );
        assert_eq!(
            (host.shm_size, host.nano_cpus, host.cpu_shares),
            (512 << 10, 1_500_000_000, 512)
        );
        assert_eq!((host.cpuset_cpus.as_str(), host.cpuset_mems.as_str()), ("0-1", "0"));
        assert_eq!((host.cpu_period, host.cpu_quota, host.pids_limit), (100_000, 50_000, Some(-1)));
        assert_eq!((host.oom_kill_disable, host.oom_score_adj), (Some(true), -500));
        // The daemon refuses too little memory, with docker's message; the CLI lets it through.
        assert_eq!(self::host("--memory 1k busybox").memory, 1024);
        assert_eq!(self::host("--memory-swap 2g busybox").memory_swap, 2 << 30);
        let defaults = self::host("busybox");
        assert_eq!((defaults.memory, defaults.nano_cpus, defaults.pids_limit), (0, 0, None));
    }

    #[test]
    fn bad_resources_say_what_is_wrong() {
        assert_eq!(
            error("-m lots busybox"),
            "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'"
        );
        assert_eq!(
            error("-m 1x busybox"),
            "invalid argument \"1x\" for \"-m, --memory\" flag: invalid suffix: 'x'"
        );
        assert_eq!(
            error("--cpus one busybox"),
            "invalid argument \"one\" for \"--cpus\" flag: failed to parse one as a rational number"
        );
        assert_eq!(
            error("--cpus 0.0000000001 busybox"),
            "invalid argument \"0.0000000001\" for \"--cpus\" flag: value is too precise"
        );
        assert_eq!(
            error("-c x busybox"),
            "invalid argument \"x\" for \"-c, --cpu-shares\" flag: strconv.ParseInt: parsing \
                \"x\": invalid syntax"
        );
    }

    #[test]
    fn sizes_parse_like_dockers_ram_in_bytes() {
        let cases = [
            ("32", 32),
            ("32b", 32),
            ("32B", 32),
            ("32k", 32 << 10),
            ("32K", 32 << 10),
            ("32kb", 32 << 10),
            ("32KiB", 32 << 10),
            ("32m", 32 << 20),
            ("32mb", 32 << 20),
            ("1g", 1 << 30),
            ("1.5g", 3 << 29),
            ("2t", 2 << 40),
            ("1p", 1 << 50),
            ("32 MB", 32 << 20),
            ("0.5k", 512),
        ];
        for (text, bytes) in cases {
            assert_eq!(ram_in_bytes(text), Ok(bytes), "{text}");
        }
        assert_eq!(ram_in_bytes(""), Err("invalid size: ''".to_owned()));
        assert_eq!(ram_in_bytes("m"), Err("invalid size: 'm'".to_owned()));
        assert_eq!(ram_in_bytes("-1"), Err("invalid size: '-1'".to_owned()));
        assert_eq!(ram_in_bytes("32kk"), Err("invalid suffix: 'kk'".to_owned()));
        assert_eq!(ram_in_bytes("32bb"), Err("invalid suffix: 'bb'".to_owned()));
        assert_eq!(ram_in_bytes("32x"), Err("invalid suffix: 'x'".to_owned()));
        assert_eq!(
            ram_in_bytes("1.2.3"),
            Err("strconv.ParseFloat: parsing \"1.2.3\": invalid syntax".to_owned())
        );
    }

    #[test]
    fn durations_parse_like_gos() {
        let cases = [
            ("0", 0),
            ("30s", 30_000_000_000),
            ("1m30s", 90_000_000_000),
            ("500ms", 500_000_000),
            ("1.5h", 5_400_000_000_000),
            ("2us", 2_000),
            ("2µs", 2_000),
            ("10ns", 10),
            (".5s", 500_000_000),
            ("1h2m3s4ms", 3_723_004_000_000),
            ("-1s", -1_000_000_000),
            ("+2s", 2_000_000_000),
        ];
        for (text, nanos) in cases {
            assert_eq!(parse_go_duration(text), Ok(nanos), "{text}");
        }
        assert_eq!(parse_go_duration("x"), Err("time: invalid duration \"x\"".to_owned()));
        assert_eq!(parse_go_duration(""), Err("time: invalid duration \"\"".to_owned()));
        assert_eq!(
            parse_go_duration("30"),
            Err("time: missing unit in duration \"30\"".to_owned())
        );
        assert_eq!(
            parse_go_duration("3d"),
            Err("time: unknown unit \"d\" in duration \"3d\"".to_owned())
        );
        assert_eq!(parse_go_duration(".s"), Err("time: invalid duration \".s\"".to_owned()));
        assert!(parse_go_duration("9999999999h").is_err());
    }

    #[test]
    fn healthchecks_are_set_or_disabled() {
        let check = request(
            "--health-cmd 'curl -f localhost' --health-interval 30s \
            --health-timeout 5s --health-retries 3 --health-start-period 1m busybox",
        )
        .config
        .healthcheck
        .expect("healthcheck");
        assert_eq!(check.test, strings(&["CMD-SHELL", "curl -f localhost"]));
        assert_eq!(
            (check.interval, check.timeout, check.retries),
            (Some(30_000_000_000), Some(5_000_000_000), Some(3))
        );
        assert_eq!((check.start_period, check.start_interval), (Some(60_000_000_000), Some(0)));
        let check = request("--no-healthcheck busybox").config.healthcheck.expect("none");
        assert_eq!(check.test, strings(&["NONE"]));
        let check = request("--health-retries 2 busybox").config.healthcheck.expect("retries");
        assert!(check.test.is_empty());
        assert_eq!(request("busybox").config.healthcheck, None);
        assert_eq!(
            error("--no-healthcheck --health-cmd true busybox"),
            "--no-healthcheck conflicts with --health-* options"
        );
        assert_eq!(error("--health-interval=-1s busybox"), "--health-interval cannot be negative");
        assert_eq!(error("--health-retries=-1 busybox"), "--health-retries cannot be negative");
        assert_eq!(
            error("--health-timeout soon busybox"),
            "invalid argument \"soon\" for \"--health-timeout\" flag: time: invalid duration \
                \"soon\""
        );
    }

    #[test]
    fn restart_policies_parse_and_conflict_with_rm() {
        let policy = |spec: &str| host(&format!("--restart {spec} busybox")).restart_policy;
        assert_eq!(
            policy("on-failure:3"),
            RestartPolicy { name: "on-failure".into(), maximum_retry_count: 3 }
        );
        assert_eq!(policy("always").name, "always");
        assert_eq!(policy("unless-stopped").name, "unless-stopped");
        assert_eq!(policy("on-failure").maximum_retry_count, 0);
        assert_eq!(
            error("--restart :3 busybox"),
            "invalid restart policy format: no policy provided before colon"
        );
        assert_eq!(
            error("--restart on-failure:x busybox"),
            "invalid restart policy format: maximum retry count must be an integer"
        );
        // docker-compat: names and counts are the daemon's to judge.
        assert_eq!(policy("sometimes").name, "sometimes");
        assert_eq!(policy("always:3").maximum_retry_count, 3);
        let err = plan("--rm --restart always busybox").expect_err("conflict");
        assert_eq!(err.to_string(), "conflicting options: cannot specify both --restart and --rm");
        assert_eq!(err.exit_code(), 125);
        assert!(host("--rm --restart no busybox").auto_remove);
    }

    #[test]
    fn networks_aliases_and_addresses_go_to_the_endpoint() {
        let req = request(
            "--network mynet --network-alias web --ip 10.0.0.5 --mac-address \
            92:d0:c6:0a:29:33 busybox",
        );
        assert_eq!(req.host_config.network_mode, "mynet");
        assert_eq!(req.config.mac_address.as_deref(), Some("92:d0:c6:0a:29:33"));
        let endpoints =
            req.networking_config.expect("networking").endpoints_config.expect("endpoints");
        let endpoint = &endpoints["mynet"];
        assert_eq!(endpoint.aliases, Some(strings(&["web"])));
        assert_eq!(endpoint.ipam_config, Some(serde_json::json!({"IPv4Address": "10.0.0.5"})));
        assert_eq!(endpoint.mac_address, "92:d0:c6:0a:29:33");
        let req = request("--net a --network b busybox");
        assert_eq!(req.host_config.network_mode, "a");
        let endpoints =
            req.networking_config.expect("networking").endpoints_config.expect("endpoints");
        assert_eq!(endpoints.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(request("--network none busybox").networking_config, None);
        // docker-compat: the daemon checks addresses.
        let endpoints = request("--network n --ip6 2001:db8::33 busybox")
            .networking_config
            .and_then(|n| n.endpoints_config)
            .expect("endpoints");
        assert_eq!(
            endpoints["n"].ipam_config,
            Some(serde_json::json!({"IPv6Address": "2001:db8::33"}))
        );
        assert_eq!(error("--mac-address 92:d0 busybox"), "92:d0 is not a valid mac address");
    }

    #[test]
    fn dns_and_extra_hosts_are_checked() {
        let host = host(
            "--dns 8.8.8.8 --dns-search example.com --dns-option ndots:2 --add-host \
            db:10.0.0.2 --add-host v6=[::1] --add-host gw:host-gateway busybox",
        );
        assert_eq!(host.dns, Some(strings(&["8.8.8.8"])));
        assert_eq!(host.dns_search, Some(strings(&["example.com"])));
        assert_eq!(host.dns_options, Some(strings(&["ndots:2"])));
        assert_eq!(host.extra_hosts, Some(strings(&["db:10.0.0.2", "v6:::1", "gw:host-gateway"])));
        assert_eq!(
            error("--dns dns.example busybox"),
            "invalid argument \"dns.example\" for \"--dns\" flag: IP address is not correctly \
                formatted: dns.example"
        );
        assert_eq!(
            error("--add-host db busybox"),
            "invalid argument \"db\" for \"--add-host\" flag: bad format for add-host: \"db\""
        );
        assert_eq!(
            error("--add-host db:nowhere busybox"),
            "invalid argument \"db:nowhere\" for \"--add-host\" flag: invalid IP address in \
                add-host: \"nowhere\""
        );
    }

    #[test]
    fn namespace_modes_are_checked() {
        let host =
            host("--pid host --ipc shareable --uts host --userns host --cgroupns private busybox");
        assert_eq!(
            (host.pid_mode.as_str(), host.ipc_mode.as_str(), host.uts_mode.as_str()),
            ("host", "shareable", "host")
        );
        assert_eq!((host.userns_mode.as_str(), host.cgroupns_mode.as_str()), ("host", "private"));
        assert_eq!(self::host("--pid container:db busybox").pid_mode, "container:db");
        assert_eq!(error("--pid bogus busybox"), "--pid: invalid PID mode");
        assert_eq!(error("--pid container: busybox"), "--pid: invalid PID mode");
        assert_eq!(self::host("--ipc bogus busybox").ipc_mode, "bogus", "the daemon checks --ipc");
        assert_eq!(error("--uts bogus busybox"), "--uts: invalid UTS mode");
        assert_eq!(error("--userns bogus busybox"), "--userns: invalid USER mode");
        assert_eq!(error("--cgroupns bogus busybox"), "--cgroupns: invalid CGROUP mode");
    }

    #[test]
    fn the_remaining_flags_land_where_docker_puts_them() {
        let plan = plan(
            "--name web --platform linux/amd64 --cidfile /tmp/cid -w /srv -u \
            1000:1000 --init --read-only --privileged --stop-signal SIGINT --stop-timeout 5 \
            --runtime runc --group-add audio --volumes-from db:ro --security-opt \
            no-new-privileges --security-opt label:disable --security-opt seccomp=/seccomp.json \
            --log-driver json-file --log-opt max-size=10m --rm --pull never -q busybox:1.36",
        )
        .expect("plan");
        assert_eq!(plan.name.as_deref(), Some("web"));
        assert_eq!(plan.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(plan.cidfile, Some(PathBuf::from("/tmp/cid")));
        assert_eq!(plan.pull, PullPolicy::Never);
        assert_eq!(plan.image_display.as_deref(), Some("busybox:1.36"));
        let (config, host) = (&plan.request.config, &plan.request.host_config);
        assert_eq!((config.working_dir.as_str(), config.user.as_str()), ("/srv", "1000:1000"));
        assert_eq!((config.stop_signal.as_deref(), config.stop_timeout), (Some("SIGINT"), Some(5)));
        assert_eq!(host.init, Some(true));
        assert!(host.readonly_rootfs && host.privileged && host.auto_remove);
        assert_eq!((host.runtime.as_str(), host.container_id_file.as_str()), ("runc", "/tmp/cid"));
        assert_eq!(host.group_add, Some(strings(&["audio"])));
        assert_eq!(host.volumes_from, Some(strings(&["db:ro"])));
        assert_eq!(
            host.security_opt,
            Some(strings(&[
                "no-new-privileges",
                "label:disable",
                "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"
            ]))
        );
        assert_eq!(host.log_config.kind, "json-file");
        assert_eq!(host.log_config.config["max-size"], "10m");
        assert_eq!(self::host("busybox").init, None);
    }

    #[test]
    fn bad_miscellaneous_flags_say_what_is_wrong() {
        assert_eq!(
            error("--security-opt apparmor busybox"),
            "Invalid --security-opt: \"apparmor\""
        );
        assert_eq!(
            error("--security-opt seccomp=/nope.json busybox"),
            "opening seccomp profile (/nope.json) failed: no such file or directory"
        );
        assert_eq!(
            error("--log-driver none --log-opt a=b busybox"),
            "invalid logging opts for driver none"
        );
        assert_eq!(
            error("--pull sometimes busybox"),
            "invalid pull option: 'sometimes': must be one of \"always\", \"missing\" or \"never\""
        );
        assert_eq!(
            error("--stop-timeout soon busybox"),
            "invalid argument \"soon\" for \"--stop-timeout\" flag: strconv.ParseInt: parsing \
                \"soon\": invalid syntax"
        );
    }

    #[test]
    fn images_are_named_as_docker_names_them() {
        let cases = [
            ("busybox", "busybox:latest"),
            ("busybox:1.36", "busybox:1.36"),
            ("library/busybox", "busybox:latest"),
            ("docker.io/library/busybox:1", "busybox:1"),
            ("index.docker.io/library/busybox", "busybox:latest"),
            ("docker.io/me/app", "me/app:latest"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("localhost/app:v1", "localhost/app:v1"),
            ("ghcr.io/org/sub/app:2", "ghcr.io/org/sub/app:2"),
            ("my-app__x.y", "my-app__x.y:latest"),
            (
                "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ),
        ];
        for (reference, familiar) in cases {
            assert_eq!(familiar_tagged(reference), Ok(Some(familiar.to_owned())), "{reference}");
        }
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(familiar_tagged(id), Ok(None));
        assert_eq!(familiar_tagged(&format!("sha256:{id}")), Ok(None));
        for bad in ["", "a:b:c", "-x", "app:", "a//b", "app:-tag", "a@sha256:12", ":tag", "a_-b"] {
            assert_eq!(familiar_tagged(bad), Err(ReferenceError::Format), "{bad:?}");
        }
        assert_eq!(
            familiar_tagged("Busybox").map_err(|e| e.to_string()),
            Err("invalid reference format: repository name (library/Busybox) must be lowercase"
                .to_owned())
        );
        assert_eq!(familiar_tagged(&"a".repeat(256)), Err(ReferenceError::TooLong));
        assert_eq!(
            error("UPPER"),
            "invalid reference format: repository name (library/UPPER) must be lowercase"
        );
        assert_eq!(error("bad:tag:x"), "invalid reference format");
    }

    #[test]
    fn the_body_has_dockers_shape_on_the_wire() {
        let req = request("-p 80:80 --entrypoint '' -it busybox");
        let json = serde_json::to_value(&req).expect("json");
        assert_eq!(json["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert_eq!(json["Entrypoint"], serde_json::json!([""]));
        assert_eq!(json["Cmd"], serde_json::Value::Null);
        assert_eq!(json["OpenStdin"], true);
        assert_eq!(json["StdinOnce"], true);
        assert_eq!(json["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"], "80");
        assert_eq!(json["HostConfig"]["ConsoleSize"], serde_json::json!([24, 80]));
        assert_eq!(json["HostConfig"]["NetworkMode"], "default");
        assert_eq!(json["HostConfig"]["RestartPolicy"]["Name"], "no");
    }
}
