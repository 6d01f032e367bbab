//! `kiln ps` (`kiln container ls`).

use std::collections::BTreeMap;

use clap::Args;
use kiln_api_types::{ContainerSummary, Port};
use kiln_client::ContainerListOptions;
use serde_json::{json, Value};

use crate::format::cells;
use crate::output::{ago, ellipsis, go_time, human_size, table};
use crate::GlobalArgs;

const DEFAULT_TABLE: &str =
    "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Filter output based on conditions provided (id=, name=, label=,
    /// status=, exited=, ancestor=, health=, volume=, …)
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Format output: 'table', 'table TEMPLATE', 'json', or a Go-style
    /// template such as '{{.ID}} {{.Names}}'
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    latest: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    size: bool,
}

pub async fn run(global: &GlobalArgs, args: &ListArgs) -> anyhow::Result<()> {
    let options = list_options(args)?;
    let client = crate::connect(global).await?;
    let containers = client.containers(&options).await?;
    print!("{}", render(args, &containers, now())?);
    Ok(())
}

/// The API query `ps`'s flags make, as the docker CLI builds it.
fn list_options(args: &ListArgs) -> anyhow::Result<ContainerListOptions> {
    let filters = parse_filters(&args.filters)?;
    let limit = if args.latest && args.last == -1 { 1 } else { args.last };
    // docker-compat: a custom template that shows sizes asks for them.
    let size =
        args.size || (!args.quiet && args.format.as_deref().is_some_and(|f| f.contains(".Size")));
    Ok(ContainerListOptions { all: args.all, limit: (limit > 0).then_some(limit), size, filters })
}

/// `--filter key=value` flags, grouped by key.
pub(crate) fn parse_filters(flags: &[String]) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for filter in flags {
        let (key, value) = filter
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))?;
        filters.entry(key.trim().to_ascii_lowercase()).or_default().push(value.to_owned());
    }
    Ok(filters)
}

/// The listing as text: IDs (`-q`), JSON lines, a template per container,
/// or an aligned table.
fn render(args: &ListArgs, containers: &[ContainerSummary], now: i64) -> anyhow::Result<String> {
    let trunc = !args.no_trunc;
    if args.quiet {
        return Ok(containers.iter().map(|c| format!("{}\n", short_id(&c.id, trunc))).collect());
    }
    let format =
        args.format.as_deref().unwrap_or("table").replace("\\t", "\t").replace("\\n", "\n");
    if format.trim() == "json" {
        return Ok(containers.iter().map(|c| format!("{}\n", row_value(c, trunc, now))).collect());
    }
    let Some(table_format) = format.strip_prefix("table") else {
        let mut out = String::new();
        for container in containers {
            out.push_str(&crate::format::render(&format, &template_value(container, trunc, now))?);
        }
        return Ok(out);
    };
    let template = match table_format.trim() {
        "" if args.size => format!("{DEFAULT_TABLE}\t{{{{.Size}}}}"),
        "" => DEFAULT_TABLE.to_owned(),
        custom => custom.to_owned(),
    };
    let mut lines = vec![cells(&template, &headers())?];
    for container in containers {
        lines.push(cells(&template, &template_value(container, trunc, now))?);
    }
    Ok(table(&lines))
}

/// Column titles, by field, as docker names them.
fn headers() -> Value {
    json!({
        "Command": "COMMAND", "CreatedAt": "CREATED AT", "ID": "CONTAINER ID",
        "Image": "IMAGE", "Label": "LABEL", "Labels": "LABELS",
        "LocalVolumes": "LOCAL VOLUMES", "Mounts": "MOUNTS", "Names": "NAMES",
        "Networks": "NETWORKS", "Ports": "PORTS", "RunningFor": "CREATED",
        "Size": "SIZE", "State": "STATE", "Status": "STATUS",
    })
}

/// What `--format json` prints for a container: docker's fields and texts.
fn row_value(c: &ContainerSummary, trunc: bool, now: i64) -> Value {
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let local_volumes = c.mounts.iter().filter(|m| m.driver == "local").count();
    let networks: Vec<&str> = c.network_settings.networks.keys().map(String::as_str).collect();
    json!({
        "Command": go_quote(&if trunc { ellipsis(&c.command, 20) } else { c.command.clone() }),
        "CreatedAt": go_time(c.created),
        "ID": short_id(&c.id, trunc),
        "Image": image(c, trunc),
        "Labels": labels.join(","),
        "LocalVolumes": local_volumes.to_string(),
        "Mounts": mounts(c, trunc),
        "Names": names(&c.names, trunc),
        "Networks": networks.join(","),
        "Ports": displayable_ports(&c.ports),
        "RunningFor": running_for(c.created, now),
        "Size": size(c),
        "State": c.state,
        "Status": c.status,
    })
}

/// [`row_value`], plus the labels as a map for `{{.Label "key"}}`.
fn template_value(c: &ContainerSummary, trunc: bool, now: i64) -> Value {
    let mut value = row_value(c, trunc, now);
    value["Label"] = json!(c.labels);
    value
}

/// `2 minutes ago`, against `now` (Unix seconds).
fn running_for(created: i64, now: i64) -> String {
    if created <= 0 {
        return ago(created);
    }
    format!("{} ago", crate::output::human_duration(now - created))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A container id as `ps` shows it: 12 characters unless `--no-trunc`.
pub(crate) fn short_id(id: &str, trunc: bool) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    if trunc {
        id.chars().take(12).collect()
    } else {
        id.to_owned()
    }
}

/// docker-compat: names come with a leading `/`; truncated, only the first
/// name that is not a link (`/other/alias`) shows.
fn names(names: &[String], trunc: bool) -> String {
    let stripped: Vec<&str> = names.iter().map(|n| n.strip_prefix('/').unwrap_or(n)).collect();
    if trunc {
        if let Some(name) = stripped.iter().find(|n| !n.contains('/')) {
            return (*name).to_owned();
        }
    }
    stripped.join(",")
}

/// The image as the user named it; truncated, an image id is cut to 12
/// characters and a digest dropped from a reference.
fn image(c: &ContainerSummary, trunc: bool) -> String {
    if c.image.is_empty() {
        return "<no image>".to_owned();
    }
    if !trunc {
        return c.image.clone();
    }
    if c.image.starts_with("sha256:") || short_id(&c.image_id, true) == short_id(&c.image, true) {
        return short_id(&c.image, true);
    }
    match c.image.split_once('@') {
        Some((name, _digest)) => name.to_owned(),
        None => c.image.clone(),
    }
}

/// Mount names (volume name, else the source), comma-separated.
fn mounts(c: &ContainerSummary, trunc: bool) -> String {
    let names: Vec<String> = c
        .mounts
        .iter()
        .map(|m| {
            let name = if m.name.is_empty() { &m.source } else { &m.name };
            if trunc {
                ellipsis(name, 15)
            } else {
                name.clone()
            }
        })
        .collect();
    names.join(",")
}

/// `12B`, or `12B (virtual 4.2MB)` when the image size is known.
fn size(c: &ContainerSummary) -> String {
    let rw = human_size(u64::try_from(c.size_rw.unwrap_or(0)).unwrap_or(0));
    match c.size_root_fs.filter(|s| *s > 0) {
        Some(root) => format!("{rw} (virtual {})", human_size(u64::try_from(root).unwrap_or(0))),
        None => rw,
    }
}

/// The PORTS column, as docker's `DisplayablePorts`: unpublished ports
/// grouped into ranges (`80-81/tcp`), published ones as
/// `0.0.0.0:8080->80/tcp`.
fn displayable_ports(ports: &[Port]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        (a.private_port, &a.ip, a.public_port.unwrap_or(0), &a.kind).cmp(&(
            b.private_port,
            &b.ip,
            b.public_port.unwrap_or(0),
            &b.kind,
        ))
    });
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for port in &ports {
        let current = port.private_port;
        let mut key = port.kind.clone();
        if !port.ip.is_empty() {
            let public = port.public_port.unwrap_or(0);
            if public != current {
                let host = if port.ip.contains(':') {
                    format!("[{}]:{public}", port.ip)
                } else {
                    format!("{}:{public}", port.ip)
                };
                host_mappings.push(format!("{host}->{}/{}", port.private_port, port.kind));
                continue;
            }
            key = format!("{}/{}", port.ip, port.kind);
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, current, current)),
            Some(group) if u32::from(current) == u32::from(group.2) + 1 => group.2 = current,
            Some(group) => {
                result.push(port_group(&group.0, group.1, group.2));
                *group = (key, current, current);
            }
        }
    }
    result.extend(groups.iter().map(|(key, first, last)| port_group(key, *first, *last)));
    result.extend(host_mappings);
    result.join(", ")
}

/// One group of [`displayable_ports`]: `80/tcp`, `80-81/tcp`,
/// `0.0.0.0:80->80/tcp`.
fn port_group(key: &str, first: u16, last: u16) -> String {
    let (ip, kind) = match key.rsplit_once('/') {
        Some((ip, kind)) => (ip, kind),
        None => ("", key),
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{ip}:{group}->{group}");
    }
    format!("{group}/{kind}")
}

/// Go's `strconv.Quote`: double quotes, with `"`, `\` and control
/// characters escaped.
fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use kiln_api_types::MountPoint;

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn args(extra: &[&str]) -> ListArgs {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            args: ListArgs,
        }
        let mut argv = vec!["ps"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).expect("flags").args
    }

    fn container() -> ContainerSummary {
        ContainerSummary {
            id: "0123456789abcdef0123456789abcdef".to_owned(),
            names: vec!["/web".to_owned()],
            image: "busybox".to_owned(),
            image_id: format!("sha256:{}", "ab".repeat(32)),
            command: "sh -c 'sleep 1000000000'".to_owned(),
            created: NOW - 150,
            ports: vec![Port {
                ip: "0.0.0.0".to_owned(),
                private_port: 80,
                public_port: Some(8080),
                kind: "tcp".to_owned(),
            }],
            state: "running".to_owned(),
            status: "Up 2 minutes".to_owned(),
            ..ContainerSummary::default()
        }
    }

    #[test]
    fn the_default_table_reads_like_dockers() {
        let text = render(&args(&[]), &[container()], NOW).expect("render");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS                  NAMES"
        );
        assert_eq!(
            lines[1],
            "0123456789ab   busybox   \"sh -c 'sleep 100000…\"   2 minutes ago   Up 2 minutes   0.0.0.0:8080->80/tcp   web"
        );
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn quiet_custom_and_json_formats() {
        let c = [container()];
        assert_eq!(render(&args(&["-q"]), &c, NOW).expect("q"), "0123456789ab\n");
        assert_eq!(
            render(&args(&["-q", "--no-trunc"]), &c, NOW).expect("q"),
            "0123456789abcdef0123456789abcdef\n"
        );
        assert_eq!(
            render(&args(&["--format", "{{.ID}} {{.Names}} {{.State}}"]), &c, NOW)
                .expect("template"),
            "0123456789ab web running\n"
        );
        assert_eq!(
            render(&args(&["--format", "table {{.Names}}\\t{{.Status}}"]), &c, NOW).expect("table"),
            "NAMES     STATUS\nweb       Up 2 minutes\n"
        );
        let line = render(&args(&["--format", "json"]), &c, NOW).expect("json");
        let v: Value = serde_json::from_str(line.trim()).expect("one json line");
        assert_eq!(v["Names"], "web");
        assert_eq!(v["RunningFor"], "2 minutes ago");
        assert_eq!(v["Command"], "\"sh -c 'sleep 100000…\"");
        assert!(v.get("Label").is_none());
    }

    #[test]
    fn labels_sizes_and_exited_status_show_as_docker_shows_them() {
        let mut c = container();
        c.labels.insert("a".to_owned(), "1".to_owned());
        c.labels.insert("b".to_owned(), "2".to_owned());
        c.status = "Exited (0) 3 seconds ago".to_owned();
        c.size_rw = Some(12);
        c.size_root_fs = Some(4_400_000);
        let out = render(
            &args(&["--format", r#"{{.Labels}}|{{.Label "b"}}|{{.Status}}|{{.Size}}"#]),
            &[c],
            NOW,
        )
        .expect("render");
        assert_eq!(out, "a=1,b=2|2|Exited (0) 3 seconds ago|12B (virtual 4.4MB)\n");
        let with_size = render(&args(&["-s"]), &[container()], NOW).expect("size");
        assert!(with_size.lines().next().expect("header").ends_with("NAMES     SIZE"));
    }

    #[test]
    fn flags_become_dockers_list_query() {
        let options = list_options(&args(&["-l", "--filter", "status=exited"])).expect("ok");
        assert_eq!(options.limit, Some(1));
        assert_eq!(options.filters["status"], ["exited"]);
        assert_eq!(list_options(&args(&["-n", "3"])).expect("ok").limit, Some(3));
        assert_eq!(list_options(&args(&[])).expect("ok").limit, None);
        assert!(list_options(&args(&["--format", "{{.Size}}"])).expect("ok").size);
        assert!(list_options(&args(&["--filter", "nokey"])).is_err());
    }

    #[test]
    fn ports_group_like_dockers_displayable_ports() {
        let port = |ip: &str, private: u16, public: Option<u16>| Port {
            ip: ip.to_owned(),
            private_port: private,
            public_port: public,
            kind: "tcp".to_owned(),
        };
        assert_eq!(displayable_ports(&[]), "");
        assert_eq!(
            displayable_ports(&[port("", 81, None), port("", 80, None), port("", 443, None)]),
            "80-81/tcp, 443/tcp"
        );
        assert_eq!(
            displayable_ports(&[port("0.0.0.0", 80, Some(8080)), port("::", 80, Some(8080))]),
            "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        assert_eq!(
            displayable_ports(&[port("0.0.0.0", 80, Some(80)), port("0.0.0.0", 81, Some(81))]),
            "0.0.0.0:80-81->80-81/tcp"
        );
    }

    #[test]
    fn names_images_mounts_and_commands_are_cut_like_dockers() {
        let links = ["/web".to_owned(), "/other/alias".to_owned()];
        assert_eq!(names(&links, true), "web");
        assert_eq!(names(&links, false), "web,other/alias");
        let mut c = container();
        c.image = format!("busybox@sha256:{}", "cd".repeat(32));
        assert_eq!(image(&c, true), "busybox");
        c.image = c.image_id.clone();
        assert_eq!(image(&c, true), "abababababab");
        c.mounts = vec![MountPoint {
            source: "/var/lib/a/very/long/path".to_owned(),
            ..MountPoint::default()
        }];
        assert_eq!(mounts(&c, true), "/var/lib/a/ver…");
        assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
    }
}
