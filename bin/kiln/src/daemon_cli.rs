//! `kiln daemon`: flags and daemon.json → `kiln_api_server::daemon`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use kiln_api_server::daemon::{self, ConfigFile, Flags, Settings};

#[derive(Debug, Args)]
#[command(
    after_help = "Flags win over daemon.json, which wins over the defaults. daemon.json keys read: \
data-root, exec-root, hosts, debug, and for networks bridge (the default bridge's interface, \
default kiln0), bip (its address and subnet, e.g. 172.26.0.1/16), default-address-pools \
([{\"base\":\"10.10.0.0/16\",\"size\":24}]) and firewall-backend (nftables or iptables; \
default nftables where the nft program is installed, else iptables); other keys are ignored."
)]
pub struct DaemonArgs {
    /// Directory of persistent state [env: KILN_ROOT] [default: /var/lib/kiln]
    #[arg(long, visible_alias = "data-root", value_name = "DIR")]
    root: Option<PathBuf>,
    /// Directory of runtime state: the API socket, pid files
    /// [env: KILN_EXEC_ROOT] [default: /run/kiln]
    #[arg(long, value_name = "DIR")]
    exec_root: Option<PathBuf>,
    /// Address to serve the API on, repeatable: unix:///PATH or tcp://IP:PORT
    /// [default: unix://<exec-root>/kiln.sock]
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Daemon configuration file (Docker's daemon.json keys)
    #[arg(long, value_name = "FILE", default_value = daemon::DEFAULT_CONFIG_FILE)]
    config_file: PathBuf,
    /// Log debug messages
    #[arg(short = 'D', long)]
    debug: bool,
    /// Become a session leader (set by the CLI when it starts the daemon)
    #[arg(long, hide = true)]
    detach_session: bool,
}

pub fn main(args: DaemonArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kiln daemon: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: DaemonArgs) -> anyhow::Result<()> {
    if args.detach_session {
        // Leave the CLI's session and terminal, before any thread exists.
        let _ = nix::unistd::setsid();
    }
    let must_exist = args.config_file.as_os_str() != daemon::DEFAULT_CONFIG_FILE;
    let file = ConfigFile::load(&args.config_file, must_exist)?;
    init_logging(args.debug || file.debug.unwrap_or(false));
    let network = network_config(&file.ignored)
        .with_context(|| format!("invalid configuration file {}", args.config_file.display()))?;
    for key in file.ignored.keys().filter(|k| !NETWORK_KEYS.contains(&k.as_str())) {
        tracing::debug!(key = %key, file = %args.config_file.display(), "ignoring a daemon.json key Kiln does not use");
    }
    let flags = Flags {
        root: args.root.or_else(|| env_path("KILN_ROOT")),
        exec_root: args.exec_root.or_else(|| env_path("KILN_EXEC_ROOT")),
        hosts: args.hosts,
        debug: args.debug,
    };
    let mut settings = Settings::resolve(flags, &file)?;
    settings.engine.network = network;
    // Shims start from a read-only view of this binary made once here, while
    // the process has one thread: each shim is then protected from the start
    // (CVE-2019-5736) instead of re-executing itself, which saves an exec of
    // the whole binary per container. The descriptor lives as long as the
    // daemon. Without mount rights, shims protect themselves as before.
    if settings.engine.exe.is_none() {
        if let Ok(view) = kiln_sys::exe::readonly_binary() {
            let fd = std::os::fd::IntoRawFd::into_raw_fd(view);
            settings.engine.exe = Some(PathBuf::from(format!("/proc/self/fd/{fd}")));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kiln-daemon")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(daemon::run(settings))?;
    Ok(())
}

/// daemon.json's network keys, read here because the API server's settings
/// do not know them.
const NETWORK_KEYS: [&str; 4] = ["bridge", "bip", "default-address-pools", "firewall-backend"];

/// `bridge`, `bip`, `default-address-pools` and `firewall-backend`, with
/// Docker's meaning.
fn network_config(
    keys: &std::collections::BTreeMap<String, serde_json::Value>,
) -> anyhow::Result<kiln_engine::NetworkConfig> {
    let mut config = kiln_engine::NetworkConfig::default();
    if let Some(value) = keys.get("bridge") {
        let name = value.as_str().context("\"bridge\" must be a string")?;
        if name == "none" {
            anyhow::bail!("\"bridge\": \"none\" (no default bridge) is not supported yet");
        }
        let any = kiln_network::Subnet::containing(std::net::Ipv4Addr::UNSPECIFIED, 0);
        kiln_network::nft::BridgeNetwork::new(name, any, false).context("invalid \"bridge\"")?;
        config.bridge = Some(name.to_owned()).filter(|n| !n.is_empty());
    }
    if let Some(value) = keys.get("bip") {
        let text = value.as_str().context("\"bip\" must be a string")?;
        config.bip = Some(text.parse().context("invalid \"bip\"")?);
    }
    if let Some(value) = keys.get("default-address-pools") {
        config.default_address_pools =
            serde_json::from_value(value.clone()).context("invalid \"default-address-pools\"")?;
    }
    if let Some(value) = keys.get("firewall-backend") {
        let text = value.as_str().context("\"firewall-backend\" must be a string")?;
        config.firewall_backend = Some(text.parse().context("invalid \"firewall-backend\"")?);
    }
    Ok(config)
}

/// A flag's environment variable, when set and not empty.
fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn init_logging(debug: bool) {
    let level = if debug { tracing::Level::DEBUG } else { tracing::Level::INFO };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
}
