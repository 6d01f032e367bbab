//! `kiln network create|ls|inspect|rm|prune|connect|disconnect` and
//! `kiln port`: networks and published ports, printed as the docker CLI
//! prints them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use clap::Args;
use kiln_api_types::{
    EndpointSettings, Ipam, IpamConfig, Network, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, PortBinding,
};
use serde_json::{json, Value};

use crate::container_list::{parse_filters, short_id};
use crate::format::cells;
use crate::output::{indented_json, table};
use crate::volume::natural_cmp;
use crate::{GlobalArgs, NetworkCommand};

const DEFAULT_TABLE: &str = "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

const PRUNE_WARNING: &str =
    "WARNING! This will remove all custom networks not used by at least one container.";

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver to manage the Network (Kiln has "bridge")
    #[arg(short = 'd', long, value_name = "string", default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment (e.g.
    /// 10.1.0.0/24); by default the first free one of the address pools
    #[arg(long = "subnet", value_name = "strings")]
    subnets: Vec<String>,
    /// IPv4 Gateway for the subnet; by default its first address
    #[arg(long = "gateway", value_name = "strings")]
    gateways: Vec<String>,
    /// Allocate container ip from a sub-range of the subnet
    #[arg(long = "ip-range", value_name = "strings")]
    ip_ranges: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Set metadata on a network
    #[arg(long = "label", value_name = "list")]
    labels: Vec<String>,
    /// Set driver specific options (com.docker.network.bridge.name=NAME
    /// names the bridge interface)
    #[arg(short = 'o', long = "opt", value_name = "map")]
    opts: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", value_name = "string", default_value = "default")]
    ipam_driver: String,
    /// Enable IPv6 networking (not supported by Kiln yet)
    #[arg(long)]
    ipv6: bool,
    /// Enable manual container attachment
    #[arg(long)]
    attachable: bool,
    #[arg(value_name = "NETWORK")]
    name: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only display network IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Provide filter values (e.g. "driver=bridge", "name=", "id=", "label=",
    /// "scope=", "type=custom|builtin", "dangling=true")
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Format output: 'table', 'table TEMPLATE', 'json', or a Go-style
    /// template such as '{{.Name}}'
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Do not truncate the output
    #[arg(long)]
    no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json', or a Go-style template
    /// such as '{{.IPAM.Config}}'
    #[arg(short = 'f', long, value_name = "FORMAT")]
    format: Option<String>,
    #[arg(required = true, value_name = "NETWORK")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(required = true, value_name = "NETWORK")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long = "alias", value_name = "strings")]
    aliases: Vec<String>,
    /// IPv4 address (e.g. "172.30.100.104")
    #[arg(long = "ip", value_name = "string")]
    ip: Option<String>,
    /// IPv6 address (not supported by Kiln yet)
    #[arg(long = "ip6", value_name = "string")]
    ip6: Option<String>,
    #[arg(value_name = "NETWORK")]
    network: String,
    #[arg(value_name = "CONTAINER")]
    container: String,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(value_name = "NETWORK")]
    network: String,
    #[arg(value_name = "CONTAINER")]
    container: String,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    container: String,
    /// Only this port: PRIVATE_PORT[/PROTO], such as 80 or 53/udp
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    port: Option<String>,
}

/// `kiln network …`.
pub async fn run(global: &GlobalArgs, command: NetworkCommand) -> anyhow::Result<()> {
    match command {
        NetworkCommand::Create(args) => create(global, &args).await,
        NetworkCommand::Ls(args) => list(global, &args).await,
        NetworkCommand::Inspect(args) => inspect(global, &args).await,
        NetworkCommand::Rm(args) => remove(global, &args).await,
        NetworkCommand::Prune(args) => prune(global, &args).await,
        NetworkCommand::Connect(args) => connect(global, &args).await,
        NetworkCommand::Disconnect(args) => disconnect(global, &args).await,
    }
}

/// Print the new network's id (and the daemon's warning, if any).
pub async fn create(global: &GlobalArgs, args: &CreateArgs) -> anyhow::Result<()> {
    let request = create_request(args)?;
    let client = crate::connect(global).await?;
    let created = client.network_create(&request).await?;
    if !created.warning.is_empty() {
        eprintln!("{}", created.warning);
    }
    println!("{}", created.id);
    Ok(())
}

/// The body `network create`'s flags make, as the docker CLI builds it.
fn create_request(args: &CreateArgs) -> anyhow::Result<NetworkCreateRequest> {
    let config = ipam_config(&args.subnets, &args.ip_ranges, &args.gateways)?;
    let mut labels = BTreeMap::new();
    for label in &args.labels {
        let (key, value) = label.split_once('=').unwrap_or((label, ""));
        if key.trim().is_empty() {
            anyhow::bail!("invalid label '{label}': empty name");
        }
        labels.insert(key.to_owned(), value.to_owned());
    }
    let options = args
        .opts
        .iter()
        .map(|opt| {
            let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
            (key.to_owned(), value.to_owned())
        })
        .collect();
    Ok(NetworkCreateRequest {
        name: args.name.clone(),
        driver: args.driver.clone(),
        internal: args.internal,
        attachable: args.attachable,
        ipam: Some(Ipam {
            driver: args.ipam_driver.clone(),
            options: Some(BTreeMap::new()),
            config,
        }),
        enable_ipv6: args.ipv6.then_some(true),
        options: Some(options),
        labels: Some(labels),
        ..NetworkCreateRequest::default()
    })
}

/// `--subnet`, `--ip-range` and `--gateway` as IPAM configs, one per
/// subnet, each range and gateway with the subnet holding it: the docker
/// CLI's checks and messages.
fn ipam_config(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
) -> anyhow::Result<Vec<IpamConfig>> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        anyhow::bail!("every ip-range or gateway must have a corresponding subnet");
    }
    let mut configs: Vec<(Cidr, IpamConfig)> = Vec::new();
    for subnet in subnets {
        let cidr = Cidr::parse(subnet).map_err(|e| anyhow::anyhow!("invalid subnet: {e}"))?;
        if configs.iter().any(|(other, _)| other.overlaps(&cidr)) {
            anyhow::bail!("multiple overlapping subnet configuration is not supported");
        }
        configs.push((cidr, IpamConfig { subnet: subnet.clone(), ..IpamConfig::default() }));
    }
    for range in ranges {
        let ip = if range.contains('/') {
            Cidr::parse(range).map_err(|e| anyhow::anyhow!("invalid cidr: {e}"))?.address
        } else {
            range.parse().ok().ok_or_else(|| no_match("range", range))?
        };
        let (_, config) = configs
            .iter_mut()
            .find(|(c, _)| c.contains(ip))
            .ok_or_else(|| no_match("range", range))?;
        if !config.ip_range.is_empty() {
            anyhow::bail!(
                "cannot configure multiple ranges ({range}, {}) on the same subnet ({})",
                config.ip_range,
                config.subnet
            );
        }
        config.ip_range = range.clone();
    }
    for gateway in gateways {
        let ip: IpAddr = gateway.parse().map_err(|_| no_match("gateway", gateway))?;
        let (_, config) = configs
            .iter_mut()
            .find(|(c, _)| c.contains(ip))
            .ok_or_else(|| no_match("gateway", gateway))?;
        if !config.gateway.is_empty() {
            anyhow::bail!(
                "cannot configure multiple gateways ({gateway}, {}) for the same subnet ({})",
                config.gateway,
                config.subnet
            );
        }
        config.gateway = gateway.clone();
    }
    Ok(configs.into_iter().map(|(_, config)| config).collect())
}

fn no_match(what: &str, value: &str) -> anyhow::Error {
    anyhow::anyhow!("no matching subnet for {what} {value}")
}

/// An address and prefix length (`10.1.0.0/24`, `fd00::/64`), for telling
/// which subnet holds a gateway or range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    address: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    fn parse(text: &str) -> Result<Cidr, String> {
        let invalid = || format!("invalid CIDR address: {text}");
        let (address, len) = text.split_once('/').ok_or_else(invalid)?;
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix_len = len.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(invalid)?;
        Ok(Cidr { address, prefix_len })
    }

    /// The address's bits as one number, and the family's width.
    fn bits(ip: IpAddr) -> (u128, u8) {
        match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ((net, width), (addr, other)) = (Self::bits(self.address), Self::bits(ip));
        if width != other {
            return false;
        }
        let host_bits = u32::from(width - self.prefix_len);
        let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
        net & mask == addr & mask
    }

    fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other.address) || other.contains(self.address)
    }
}

pub async fn list(global: &GlobalArgs, args: &ListArgs) -> anyhow::Result<()> {
    let filters = parse_filters(&args.filters)?;
    let client = crate::connect(global).await?;
    let mut networks = client.networks(&filters).await?;
    // docker-compat: the CLI sorts by name, digits compared as numbers.
    networks.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    print!("{}", render_list(args, &networks)?);
    Ok(())
}

/// The listing as text: IDs (`-q`), JSON lines, a template per network, or
/// an aligned table.
fn render_list(args: &ListArgs, networks: &[Network]) -> anyhow::Result<String> {
    let trunc = !args.no_trunc;
    let format =
        args.format.as_deref().unwrap_or("table").replace("\\t", "\t").replace("\\n", "\n");
    // docker-compat: `-q` only replaces the default table; a custom format wins.
    if args.quiet && format.trim() == "table" {
        return Ok(networks.iter().map(|n| format!("{}\n", short_id(&n.id, trunc))).collect());
    }
    if format.trim() == "json" {
        return Ok(networks.iter().map(|n| format!("{}\n", row_value(n, trunc))).collect());
    }
    let Some(table_format) = format.strip_prefix("table") else {
        let mut out = String::new();
        for network in networks {
            out.push_str(&crate::format::render(&format, &template_value(network, trunc))?);
        }
        return Ok(out);
    };
    let template = match table_format.trim() {
        "" => DEFAULT_TABLE,
        custom => custom,
    };
    let mut lines = vec![cells(template, &headers())?];
    for network in networks {
        lines.push(cells(template, &template_value(network, trunc))?);
    }
    Ok(table(&lines))
}

/// Column titles, by field, as docker names them.
fn headers() -> Value {
    json!({
        "CreatedAt": "CREATED AT", "Driver": "DRIVER", "ID": "NETWORK ID", "IPv6": "IPV6",
        "Internal": "INTERNAL", "Label": "LABEL", "Labels": "LABELS", "Name": "NAME",
        "Scope": "SCOPE",
    })
}

/// What `--format json` prints for a network: docker's fields and texts.
fn row_value(n: &Network, trunc: bool) -> Value {
    let labels: Vec<String> =
        n.labels.iter().map(|(key, value)| format!("{key}={value}")).collect();
    json!({
        "CreatedAt": go_time_text(&n.created),
        "Driver": n.driver,
        "ID": short_id(&n.id, trunc),
        "IPv6": n.enable_ipv6.to_string(),
        "Internal": n.internal.to_string(),
        "Labels": labels.join(","),
        "Name": n.name,
        "Scope": n.scope,
    })
}

/// [`row_value`], plus the labels as a map for `{{.Label "key"}}`.
fn template_value(n: &Network, trunc: bool) -> Value {
    let mut value = row_value(n, trunc);
    value["Label"] = json!(n.labels);
    value
}

/// An RFC 3339 time in UTC as Go's `time.Time.String()` prints it:
/// `2023-11-14 22:13:20.123456789 +0000 UTC`; other texts as they are.
fn go_time_text(rfc3339: &str) -> String {
    let Some((date, time)) = rfc3339.strip_suffix('Z').and_then(|t| t.split_once('T')) else {
        return rfc3339.to_owned();
    };
    let time = match time.split_once('.') {
        Some((whole, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                whole.to_owned()
            } else {
                format!("{whole}.{fraction}")
            }
        }
        None => time.to_owned(),
    };
    format!("{date} {time} +0000 UTC")
}

/// Print every network found (a JSON array, as docker prints it), then fail
/// if some were not.
pub async fn inspect(global: &GlobalArgs, args: &InspectArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        match client.network_inspect(name).await {
            Ok(network) => found.push(network),
            Err(err) => errors.push(err.into()),
        }
    }
    print!("{}", render_inspect(args.format.as_deref(), &found)?);
    crate::container_ops::fail_with(errors)
}

/// A JSON array with four-space indents in docker's field order (`[]` when
/// nothing was found), or the template once per network.
fn render_inspect(format: Option<&str>, networks: &[Network]) -> anyhow::Result<String> {
    match format.map(str::trim) {
        None | Some("" | "json") => Ok(format!("{}\n", indented_json(&networks))),
        Some(_) => {
            let template = format.unwrap_or_default().replace("\\t", "\t").replace("\\n", "\n");
            let mut out = String::new();
            for network in networks {
                out.push_str(&crate::format::render(&template, &serde_json::to_value(network)?)?);
            }
            Ok(out)
        }
    }
}

/// Remove each network in turn, printing its name; then report every
/// failure and fail if there was one. With `-f` an unknown network is no
/// failure.
pub async fn remove(global: &GlobalArgs, args: &RemoveArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let mut errors = Vec::new();
    for name in &args.names {
        match client.network_remove(name).await {
            Ok(()) => println!("{name}"),
            Err(err) if args.force && err.is_not_found() => {}
            Err(err) => errors.push(err.into()),
        }
    }
    crate::container_ops::fail_with(errors)
}

pub async fn prune(global: &GlobalArgs, args: &PruneArgs) -> anyhow::Result<()> {
    let filters = parse_filters(&args.filters)?;
    let client = crate::connect(global).await?;
    if !args.force && !crate::output::confirm(PRUNE_WARNING)? {
        return Ok(());
    }
    let report = client.networks_prune(&filters).await?;
    print!("{}", render_prune(report.networks_deleted.as_deref()));
    Ok(())
}

/// `Deleted Networks:` and the names, then a blank line; nothing when none
/// was removed.
fn render_prune(deleted: Option<&[String]>) -> String {
    match deleted.filter(|d| !d.is_empty()) {
        None => String::new(),
        Some(names) => {
            let mut out = "Deleted Networks:\n".to_owned();
            for name in names {
                out.push_str(name);
                out.push('\n');
            }
            out.push('\n');
            out
        }
    }
}

pub async fn connect(global: &GlobalArgs, args: &ConnectArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    client.network_connect(&args.network, &connect_request(args)).await?;
    Ok(())
}

/// The body `network connect`'s flags make.
fn connect_request(args: &ConnectArgs) -> NetworkConnectRequest {
    let mut ipam = serde_json::Map::new();
    if let Some(ip) = &args.ip {
        ipam.insert("IPv4Address".to_owned(), ip.clone().into());
    }
    if let Some(ip) = &args.ip6 {
        ipam.insert("IPv6Address".to_owned(), ip.clone().into());
    }
    NetworkConnectRequest {
        container: args.container.clone(),
        endpoint_config: Some(EndpointSettings {
            ipam_config: (!ipam.is_empty()).then_some(Value::Object(ipam)),
            aliases: Some(args.aliases.clone()).filter(|a| !a.is_empty()),
            ..EndpointSettings::default()
        }),
    }
}

pub async fn disconnect(global: &GlobalArgs, args: &DisconnectArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let request = NetworkDisconnectRequest { container: args.container.clone(), force: args.force };
    client.network_disconnect(&args.network, &request).await?;
    Ok(())
}

/// `kiln port CONTAINER [PRIVATE_PORT[/PROTO]]`, from the container's
/// inspect as the docker CLI does it.
pub async fn port(global: &GlobalArgs, args: &PortArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let container = client.container_inspect(&args.container).await?;
    let text =
        render_port(&container.network_settings.ports, &args.container, args.port.as_deref())?;
    print!("{text}");
    Ok(())
}

/// `80/tcp -> 0.0.0.0:8080` per published binding, or only the host sides
/// (`0.0.0.0:8080`) of `wanted`; lines in natural order.
fn render_port(
    ports: &BTreeMap<String, Option<Vec<PortBinding>>>,
    container: &str,
    wanted: Option<&str>,
) -> anyhow::Result<String> {
    let host = |b: &PortBinding| {
        if b.host_ip.contains(':') {
            format!("[{}]:{}", b.host_ip, b.host_port)
        } else {
            format!("{}:{}", b.host_ip, b.host_port)
        }
    };
    let mut lines: Vec<String> = match wanted {
        Some(spec) => {
            let (port, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
            if port.parse::<u16>().is_err() {
                anyhow::bail!("invalid port ({port})");
            }
            match ports.get(&format!("{port}/{proto}")) {
                Some(Some(bindings)) => bindings.iter().map(host).collect(),
                _ => anyhow::bail!("No public port '{spec}' published for {container}"),
            }
        }
        None => ports
            .iter()
            .flat_map(|(key, bindings)| {
                bindings.iter().flatten().map(move |b| format!("{key} -> {}", host(b)))
            })
            .collect(),
    };
    lines.sort_by(|a, b| natural_cmp(a, b));
    Ok(lines.iter().map(|l| format!("{l}\n")).collect())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse<T: clap::Args>(argv: &[&str]) -> Result<T, clap::Error> {
        #[derive(Debug, Parser)]
        struct Cli<T: clap::Args> {
            #[command(flatten)]
            args: T,
        }
        let mut full = vec!["network"];
        full.extend_from_slice(argv);
        Cli::<T>::try_parse_from(full).map(|cli| cli.args)
    }

    fn network(name: &str, id: &str) -> Network {
        Network {
            name: name.to_owned(),
            id: id.repeat(64 / id.len()),
            created: "2023-11-14T22:13:20.120000000Z".to_owned(),
            scope: "local".to_owned(),
            driver: "bridge".to_owned(),
            ..Network::default()
        }
    }

    #[test]
    fn create_flags_become_dockers_request() {
        let argv = "--subnet 10.1.0.0/24 --gateway 10.1.0.254 --ip-range 10.1.0.128/25 --internal --label a=1 -o com.docker.network.bridge.name=br-x web";
        let args: CreateArgs = parse(&argv.split(' ').collect::<Vec<_>>()).expect("flags");
        let request = create_request(&args).expect("request");
        assert_eq!((request.name.as_str(), request.driver.as_str()), ("web", "bridge"));
        assert!(request.internal);
        assert_eq!(request.enable_ipv6, None);
        let ipam = request.ipam.expect("ipam");
        assert_eq!(ipam.driver, "default");
        assert_eq!(
            ipam.config,
            [IpamConfig {
                subnet: "10.1.0.0/24".into(),
                ip_range: "10.1.0.128/25".into(),
                gateway: "10.1.0.254".into(),
                auxiliary_addresses: None,
            }]
        );
        assert_eq!(request.labels.expect("labels")["a"], "1");
        assert_eq!(request.options.expect("opts")["com.docker.network.bridge.name"], "br-x");

        let bare = create_request(&parse(&["x"]).expect("flags")).expect("request");
        assert!(bare.ipam.expect("ipam").config.is_empty());
        assert!(parse::<CreateArgs>(&[]).is_err());
        assert!(parse::<CreateArgs>(&["a", "b"]).is_err());
        assert!(create_request(&parse(&["--label", "=v", "x"]).expect("flags")).is_err());
    }

    #[test]
    fn gateways_and_ranges_must_lie_in_a_subnet_as_the_docker_cli_checks() {
        let err = |s: &[&str], r: &[&str], g: &[&str]| {
            let owned = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
            ipam_config(&owned(s), &owned(r), &owned(g)).expect_err("refused").to_string()
        };
        assert_eq!(
            err(&["10.1.0.0/24"], &[], &["10.2.0.1"]),
            "no matching subnet for gateway 10.2.0.1"
        );
        assert_eq!(
            err(&[], &[], &["10.2.0.1"]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            err(&["10.1.0.0/24"], &["10.9.0.0/25"], &[]),
            "no matching subnet for range 10.9.0.0/25"
        );
        assert_eq!(
            err(&["10.1.0.0/16", "10.1.2.0/24"], &[], &[]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(err(&["10.1.0.0"], &[], &[]), "invalid subnet: invalid CIDR address: 10.1.0.0");
        assert_eq!(
            err(&["10.1.0.0/33"], &[], &[]),
            "invalid subnet: invalid CIDR address: 10.1.0.0/33"
        );
        let two = ["10.1.0.0/24".to_owned(), "10.2.0.0/24".to_owned()];
        let configs =
            ipam_config(&two, &[], &["10.2.0.9".to_owned(), "10.1.0.9".to_owned()]).expect("ok");
        assert_eq!(
            (configs[0].gateway.as_str(), configs[1].gateway.as_str()),
            ("10.1.0.9", "10.2.0.9")
        );
        let v6 = Cidr::parse("fd00:1::/64").expect("v6");
        assert!(v6.contains("fd00:1::9".parse().expect("ip")));
        assert!(!v6.contains("10.1.0.1".parse().expect("ip")));
        assert!(Cidr::parse("0.0.0.0/0").expect("all").contains("8.8.8.8".parse().expect("ip")));
    }

    #[test]
    fn the_default_list_is_dockers_four_column_table() {
        let args: ListArgs = parse(&[]).expect("flags");
        let text =
            render_list(&args, &[network("bridge", "1"), network("web", "ab")]).expect("render");
        assert_eq!(
            text,
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             111111111111   bridge    bridge    local\n\
             abababababab   web       bridge    local\n"
        );
        assert_eq!(
            render_list(&args, &[]).expect("empty"),
            "NETWORK ID   NAME      DRIVER    SCOPE\n"
        );
    }

    #[test]
    fn quiet_templates_and_json_lines() {
        let mut web = network("web", "ab");
        web.labels.insert("b".to_owned(), "2".to_owned());
        web.labels.insert("a".to_owned(), "1".to_owned());
        web.internal = true;
        let networks = [web];
        let render = |argv: &[&str]| render_list(&parse(argv).expect("flags"), &networks);
        assert_eq!(render(&["-q"]).expect("quiet"), "abababababab\n");
        assert_eq!(render(&["-q", "--no-trunc"]).expect("quiet"), format!("{}\n", "ab".repeat(32)));
        assert_eq!(render(&["-q", "--format", "{{.Name}}"]).expect("format wins"), "web\n");
        assert_eq!(
            render(&[
                "--format",
                r#"{{.Name}} {{.Internal}} {{.IPv6}} {{.Labels}} {{.Label "b"}}"#
            ])
            .expect("template"),
            "web true false a=1,b=2 2\n"
        );
        assert_eq!(
            render(&["--format", "table {{.Name}}\\t{{.CreatedAt}}"]).expect("table"),
            "NAME      CREATED AT\nweb       2023-11-14 22:13:20.12 +0000 UTC\n"
        );
        let line = render(&["--format", "json"]).expect("json");
        let v: Value = serde_json::from_str(line.trim()).expect("one json line");
        assert_eq!(v["Name"], "web");
        assert_eq!(v["ID"], "abababababab");
        assert_eq!(v["Internal"], "true");
        assert!(v.get("Label").is_none());
    }

    #[test]
    fn go_times_drop_trailing_zeros() {
        assert_eq!(go_time_text("2023-11-14T22:13:20Z"), "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(go_time_text("2023-11-14T22:13:20.000000000Z"), "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(go_time_text("2023-11-14T22:13:20.5Z"), "2023-11-14 22:13:20.5 +0000 UTC");
        assert_eq!(go_time_text("yesterday"), "yesterday");
    }

    #[test]
    fn inspect_prints_an_indented_array_in_dockers_field_order() {
        let text = render_inspect(None, &[network("web", "ab")]).expect("render");
        let fields: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("        \"") && !l.starts_with("         "))
            .filter_map(|l| l.trim().split('"').nth(1))
            .collect();
        assert_eq!(
            fields,
            [
                "Name",
                "Id",
                "Created",
                "Scope",
                "Driver",
                "EnableIPv6",
                "IPAM",
                "Internal",
                "Attachable",
                "Ingress",
                "ConfigFrom",
                "ConfigOnly",
                "Containers",
                "Options",
                "Labels"
            ]
        );
        assert!(text.starts_with("[\n    {\n        \"Name\": \"web\",\n"), "{text}");
        assert_eq!(render_inspect(Some("json"), &[]).expect("empty"), "[]\n");
        assert_eq!(
            render_inspect(
                Some("{{.Name}}\\t{{.Driver}}"),
                &[network("a", "1"), network("b", "2")]
            )
            .expect("template"),
            "a\tbridge\nb\tbridge\n"
        );
        assert!(parse::<InspectArgs>(&[]).is_err());
    }

    #[test]
    fn prune_reports_names_like_docker() {
        assert_eq!(render_prune(None), "");
        assert_eq!(render_prune(Some(&[])), "");
        let names = ["a".to_owned(), "b".to_owned()];
        assert_eq!(render_prune(Some(&names)), "Deleted Networks:\na\nb\n\n");
        let args: PruneArgs = parse(&["-f", "--filter", "label=x"]).expect("flags");
        assert!(args.force);
        assert_eq!(parse_filters(&args.filters).expect("filters")["label"], ["x"]);
    }

    #[test]
    fn connect_sends_aliases_and_addresses_only_when_given() {
        let args: ConnectArgs =
            parse(&["--alias", "db", "--alias", "sql", "--ip", "10.1.0.9", "web", "c"])
                .expect("flags");
        let request = connect_request(&args);
        assert_eq!(request.container, "c");
        let endpoint = request.endpoint_config.expect("endpoint");
        assert_eq!(endpoint.aliases, Some(vec!["db".to_owned(), "sql".to_owned()]));
        assert_eq!(endpoint.ipam().ipv4_address, "10.1.0.9");
        let bare = connect_request(&parse(&["web", "c"]).expect("flags"));
        let endpoint = bare.endpoint_config.expect("endpoint");
        assert_eq!((endpoint.aliases, endpoint.ipam_config), (None, None));
        assert!(parse::<ConnectArgs>(&["web"]).is_err());
        let args: DisconnectArgs = parse(&["-f", "web", "c"]).expect("flags");
        assert!(args.force);
    }

    #[test]
    fn port_prints_dockers_lines_and_errors() {
        let binding =
            |ip: &str, port: &str| PortBinding { host_ip: ip.into(), host_port: port.into() };
        let mut ports = BTreeMap::new();
        ports.insert("80/tcp".to_owned(), Some(vec![binding("0.0.0.0", "8080")]));
        ports.insert("443/tcp".to_owned(), None);
        ports.insert(
            "53/udp".to_owned(),
            Some(vec![binding("127.0.0.1", "5353"), binding("::", "5353")]),
        );
        ports.insert("9000/tcp".to_owned(), Some(vec![binding("0.0.0.0", "9000")]));
        assert_eq!(
            render_port(&ports, "web", None).expect("all"),
            "53/udp -> 127.0.0.1:5353\n53/udp -> [::]:5353\n80/tcp -> 0.0.0.0:8080\n9000/tcp -> 0.0.0.0:9000\n"
        );
        assert_eq!(render_port(&ports, "web", Some("80")).expect("one"), "0.0.0.0:8080\n");
        assert_eq!(render_port(&ports, "web", Some("80/tcp")).expect("one"), "0.0.0.0:8080\n");
        assert_eq!(
            render_port(&ports, "web", Some("81/tcp")).expect_err("none").to_string(),
            "No public port '81/tcp' published for web"
        );
        assert_eq!(
            render_port(&ports, "web", Some("443")).expect_err("unpublished").to_string(),
            "No public port '443' published for web"
        );
        assert_eq!(
            render_port(&ports, "web", Some("abc")).expect_err("bad").to_string(),
            "invalid port (abc)"
        );
        assert_eq!(render_port(&BTreeMap::new(), "web", None).expect("none"), "");
    }
}
