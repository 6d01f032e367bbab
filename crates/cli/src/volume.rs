//! `kiln volume create|ls|inspect|rm|prune`: named volumes, printed as the
//! docker CLI prints them.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use clap::Args;
use kiln_api_types::{ApiVersion, Volume, VolumeCreateRequest};
use serde_json::{json, Value};

use crate::container_list::parse_filters;
use crate::format::cells;
use crate::output::{human_size, human_size_4, indented_json, table};
use crate::{GlobalArgs, VolumeCommand};

const DEFAULT_TABLE: &str = "{{.Driver}}\t{{.Name}}";

const ANONYMOUS_WARNING: &str =
    "WARNING! This will remove anonymous local volumes not used by at least one container.";
const ALL_WARNING: &str =
    "WARNING! This will remove all local volumes not used by at least one container.";

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, value_name = "DRIVER", default_value = "local")]
    driver: String,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
    opts: Vec<String>,
    /// Set metadata for a volume
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", value_name = "NAME", hide = true)]
    name_flag: Option<String>,
    #[arg(value_name = "VOLUME")]
    name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Provide filter values (e.g. "dangling=true", "name=", "label=", "driver=")
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Format output: 'table', 'table TEMPLATE', 'json', or a Go-style
    /// template such as '{{.Name}}'
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json', or a Go-style template
    /// such as '{{.Mountpoint}}'
    #[arg(short = 'f', long, value_name = "FORMAT")]
    format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
}

/// `kiln volume …`.
pub async fn run(global: &GlobalArgs, command: VolumeCommand) -> anyhow::Result<()> {
    match command {
        VolumeCommand::Create(args) => create(global, &args).await,
        VolumeCommand::Ls(args) => list(global, &args).await,
        VolumeCommand::Inspect(args) => inspect(global, &args).await,
        VolumeCommand::Rm(args) => remove(global, &args).await,
        VolumeCommand::Prune(args) => prune(global, &args).await,
    }
}

pub async fn create(global: &GlobalArgs, args: &CreateArgs) -> anyhow::Result<()> {
    let request = create_request(args)?;
    let client = crate::connect(global).await?;
    let volume = client.volume_create(&request).await?;
    println!("{}", volume.name);
    Ok(())
}

/// The body `volume create`'s flags make, as the docker CLI builds it.
fn create_request(args: &CreateArgs) -> anyhow::Result<VolumeCreateRequest> {
    let name = match (&args.name_flag, &args.name) {
        (Some(flag), Some(positional)) if flag != positional => anyhow::bail!(
            "conflicting options: either specify --name or provide positional arg, not both"
        ),
        (Some(name), _) | (None, Some(name)) => name.clone(),
        (None, None) => String::new(),
    };
    let mut labels = BTreeMap::new();
    for label in &args.labels {
        let (key, value) = label.split_once('=').unwrap_or((label, ""));
        if key.trim().is_empty() {
            anyhow::bail!("invalid label '{label}': empty name");
        }
        labels.insert(key.to_owned(), value.to_owned());
    }
    let driver_opts = args
        .opts
        .iter()
        .map(|opt| {
            let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
            (key.to_owned(), value.to_owned())
        })
        .collect();
    Ok(VolumeCreateRequest {
        name,
        driver: args.driver.clone(),
        driver_opts: Some(driver_opts),
        labels: Some(labels),
    })
}

pub async fn list(global: &GlobalArgs, args: &ListArgs) -> anyhow::Result<()> {
    let filters = parse_filters(&args.filters)?;
    let client = crate::connect(global).await?;
    let answer = client.volumes(&filters).await?;
    for warning in answer.warnings.iter().flatten() {
        eprintln!("{warning}");
    }
    let mut volumes = answer.volumes.unwrap_or_default();
    // docker-compat: the CLI sorts by name, digits compared as numbers.
    volumes.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    print!("{}", render_list(args, &volumes)?);
    Ok(())
}

/// The listing as text: names (`-q`), JSON lines, a template per volume, or
/// an aligned table.
fn render_list(args: &ListArgs, volumes: &[Volume]) -> anyhow::Result<String> {
    let format =
        args.format.as_deref().unwrap_or("table").replace("\\t", "\t").replace("\\n", "\n");
    // docker-compat: `-q` only replaces the default table; a custom format wins.
    if args.quiet && format.trim() == "table" {
        return Ok(volumes.iter().map(|v| format!("{}\n", v.name)).collect());
    }
    if format.trim() == "json" {
        return Ok(volumes.iter().map(|v| format!("{}\n", row_value(v))).collect());
    }
    let Some(table_format) = format.strip_prefix("table") else {
        let mut out = String::new();
        for volume in volumes {
            out.push_str(&crate::format::render(&format, &template_value(volume))?);
        }
        return Ok(out);
    };
    let template = match table_format.trim() {
        "" => DEFAULT_TABLE,
        custom => custom,
    };
    let mut lines = vec![cells(template, &headers())?];
    for volume in volumes {
        lines.push(cells(template, &template_value(volume))?);
    }
    Ok(table(&lines))
}

/// Column titles, by field, as docker names them.
fn headers() -> Value {
    json!({
        "Availability": "AVAILABILITY", "CreatedAt": "CREATED AT", "Driver": "DRIVER",
        "Group": "GROUP", "Label": "LABEL", "Labels": "LABELS", "Links": "LINKS",
        "Mountpoint": "MOUNTPOINT", "Name": "VOLUME NAME", "Scope": "SCOPE", "Size": "SIZE",
        "Status": "STATUS",
    })
}

/// What `--format json` prints for a volume: docker's fields and texts.
fn row_value(v: &Volume) -> Value {
    let labels: Vec<String> =
        v.labels.iter().flatten().map(|(key, value)| format!("{key}={value}")).collect();
    let (links, size) = match &v.usage_data {
        Some(usage) => (
            usage.ref_count.to_string(),
            u64::try_from(usage.size).map_or_else(|_| "N/A".to_owned(), human_size),
        ),
        None => ("N/A".to_owned(), "N/A".to_owned()),
    };
    json!({
        "Availability": "N/A",
        "Driver": v.driver,
        "Group": "N/A",
        "Labels": labels.join(","),
        "Links": links,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Scope": v.scope,
        "Size": size,
        "Status": "N/A",
    })
}

/// [`row_value`], plus the labels as a map for `{{.Label "key"}}` and the
/// creation time.
fn template_value(v: &Volume) -> Value {
    let mut value = row_value(v);
    value["Label"] = json!(v.labels.clone().unwrap_or_default());
    value["CreatedAt"] = json!(v.created_at);
    value
}

/// Go's `sortorder.NaturalLess`: runs of digits compare as numbers.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (da, ra) = split_digits(a);
                let (db, rb) = split_digits(b);
                let (ta, tb) = (da.trim_start_matches('0'), db.trim_start_matches('0'));
                let by_value = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                // Equal numbers: fewer leading zeros first.
                match by_value.then_with(|| da.len().cmp(&db.len())) {
                    Ordering::Equal => (a, b) = (ra, rb),
                    other => return other,
                }
            }
            (Some(x), Some(y)) => match x.cmp(&y) {
                Ordering::Equal => (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]),
                other => return other,
            },
        }
    }
}

/// The leading digits of `text` and the rest.
fn split_digits(text: &str) -> (&str, &str) {
    let end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    text.split_at(end)
}

/// Print every volume found (a JSON array, as docker prints it), then fail
/// if some were not.
pub async fn inspect(global: &GlobalArgs, args: &InspectArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        match client.volume_inspect_raw(name).await {
            Ok(raw) => found.push(raw),
            Err(err) if err.is_not_found() => {
                errors.push(anyhow::anyhow!("No such volume: {name}"));
            }
            Err(err) => errors.push(err.into()),
        }
    }
    print!("{}", render_inspect(args.format.as_deref(), &found)?);
    crate::container_ops::fail_with(errors)
}

/// A JSON array with four-space indents (`[]` when nothing was found), or
/// the template once per volume. The daemon's answer is printed as sent:
/// its fields sort by name, which is the order of docker's `volume.Volume`.
fn render_inspect(format: Option<&str>, volumes: &[Value]) -> anyhow::Result<String> {
    match format.map(str::trim) {
        None | Some("" | "json") => Ok(format!("{}\n", indented_json(&volumes))),
        Some(_) => {
            let template = format.unwrap_or_default().replace("\\t", "\t").replace("\\n", "\n");
            let mut out = String::new();
            for volume in volumes {
                out.push_str(&crate::format::render(&template, volume)?);
            }
            Ok(out)
        }
    }
}

/// Remove each volume in turn, printing its name; then report every
/// failure and fail if there was one.
pub async fn remove(global: &GlobalArgs, args: &RemoveArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let mut errors = Vec::new();
    for name in &args.names {
        match client.volume_remove(name, args.force).await {
            Ok(()) => println!("{name}"),
            Err(err) => errors.push(err.into()),
        }
    }
    crate::container_ops::fail_with(errors)
}

pub async fn prune(global: &GlobalArgs, args: &PruneArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let (filters, warning) = prune_filters(args, client.api_version())?;
    if !args.force && !crate::output::confirm(warning)? {
        return Ok(());
    }
    let report = client.volumes_prune(&filters).await?;
    print!("{}", render_prune(report.volumes_deleted.as_deref(), report.space_reclaimed));
    Ok(())
}

/// The prune query and the warning to confirm. docker-compat: before API
/// 1.42 a daemon prunes named volumes too, so the warning says so.
fn prune_filters(
    args: &PruneArgs,
    api_version: ApiVersion,
) -> anyhow::Result<(BTreeMap<String, Vec<String>>, &'static str)> {
    let mut filters = parse_filters(&args.filters)?;
    if api_version < ApiVersion::new(1, 42) {
        return Ok((filters, ALL_WARNING));
    }
    if !args.all {
        return Ok((filters, ANONYMOUS_WARNING));
    }
    if filters.contains_key("all") {
        anyhow::bail!("conflicting options: cannot specify both --all and --filter all=1");
    }
    filters.insert("all".to_owned(), vec!["true".to_owned()]);
    Ok((filters, ALL_WARNING))
}

fn render_prune(deleted: Option<&[String]>, space_reclaimed: u64) -> String {
    let mut out = String::new();
    if let Some(deleted) = deleted.filter(|d| !d.is_empty()) {
        out.push_str("Deleted Volumes:\n");
        for name in deleted {
            out.push_str(name);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!("Total reclaimed space: {}\n", human_size_4(space_reclaimed)));
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use kiln_api_types::VolumeUsage;

    use super::*;

    fn parse<T: clap::Args>(argv: &[&str]) -> Result<T, clap::Error> {
        #[derive(Debug, Parser)]
        struct Cli<T: clap::Args> {
            #[command(flatten)]
            args: T,
        }
        let mut full = vec!["volume"];
        full.extend_from_slice(argv);
        Cli::<T>::try_parse_from(full).map(|cli| cli.args)
    }

    fn volume(name: &str) -> Volume {
        Volume {
            name: name.to_owned(),
            driver: "local".to_owned(),
            mountpoint: format!("/var/lib/kiln/volumes/{name}/_data"),
            created_at: "2024-01-02T03:04:05Z".to_owned(),
            labels: Some(BTreeMap::new()),
            scope: "local".to_owned(),
            ..Volume::default()
        }
    }

    #[test]
    fn create_flags_become_dockers_request() {
        let argv = "-d local -o type=tmpfs --opt o=size=1m --label a=1 --label b data";
        let args: CreateArgs = parse(&argv.split(' ').collect::<Vec<_>>()).expect("flags");
        let request = create_request(&args).expect("request");
        assert_eq!(request.name, "data");
        assert_eq!(request.driver, "local");
        let opts = request.driver_opts.expect("opts");
        assert_eq!((opts["type"].as_str(), opts["o"].as_str()), ("tmpfs", "size=1m"));
        let labels = request.labels.expect("labels");
        assert_eq!((labels["a"].as_str(), labels["b"].as_str()), ("1", ""));

        let anonymous = create_request(&parse(&[]).expect("flags")).expect("request");
        assert_eq!((anonymous.name.as_str(), anonymous.driver.as_str()), ("", "local"));
        let by_flag = create_request(&parse(&["--name", "x"]).expect("flags")).expect("request");
        assert_eq!(by_flag.name, "x");
        assert!(create_request(&parse(&["--name", "x", "x"]).expect("flags")).is_ok());
        let conflict = create_request(&parse(&["--name", "x", "y"]).expect("flags"));
        assert!(conflict.expect_err("conflict").to_string().contains("conflicting options"));
        assert!(create_request(&parse(&["--label", "=v"]).expect("flags")).is_err());
        assert!(parse::<CreateArgs>(&["a", "b"]).is_err());
    }

    #[test]
    fn the_default_list_is_dockers_two_column_table() {
        let args: ListArgs = parse(&[]).expect("flags");
        let text = render_list(&args, &[volume("data"), volume("logs")]).expect("render");
        assert_eq!(text, "DRIVER    VOLUME NAME\nlocal     data\nlocal     logs\n");
        assert_eq!(render_list(&args, &[]).expect("empty"), "DRIVER    VOLUME NAME\n");
    }

    #[test]
    fn quiet_templates_and_json_lines() {
        let volumes = [volume("data")];
        let render = |argv: &[&str]| render_list(&parse(argv).expect("flags"), &volumes);
        assert_eq!(render(&["-q"]).expect("quiet"), "data\n");
        assert_eq!(render(&["-q", "--format", "{{.Driver}}"]).expect("format wins"), "local\n");
        assert_eq!(
            render(&["--format", "{{.Name}} {{.Scope}} {{.Mountpoint}} {{.CreatedAt}}"])
                .expect("template"),
            "data local /var/lib/kiln/volumes/data/_data 2024-01-02T03:04:05Z\n"
        );
        assert_eq!(
            render(&["--format", "table {{.Name}}\\t{{.Scope}}\\t{{.Size}}"]).expect("table"),
            "VOLUME NAME   SCOPE     SIZE\ndata          local     N/A\n"
        );
        let line = render(&["--format", "json"]).expect("json");
        let v: Value = serde_json::from_str(line.trim()).expect("one json line");
        assert_eq!(v["Name"], "data");
        assert_eq!(v["Links"], "N/A");
        assert!(v.get("Label").is_none());
    }

    #[test]
    fn labels_and_usage_show_as_docker_shows_them() {
        let mut v = volume("data");
        let labels = v.labels.get_or_insert_with(BTreeMap::new);
        labels.insert("b".to_owned(), "2".to_owned());
        labels.insert("a".to_owned(), "1".to_owned());
        v.usage_data = Some(VolumeUsage { size: 1_200, ref_count: 2 });
        let args: ListArgs = parse(&[
            "--format",
            r#"{{.Labels}}|{{.Label "b"}}|{{.Label "x"}}|{{.Links}}|{{.Size}}"#,
        ])
        .expect("flags");
        assert_eq!(render_list(&args, &[v]).expect("render"), "a=1,b=2|2||2|1.2kB\n");
        let mut unlabelled = volume("x");
        unlabelled.labels = None;
        let args: ListArgs = parse(&["--format", r#"{{.Labels}}|{{.Label "a"}}"#]).expect("flags");
        assert_eq!(render_list(&args, &[unlabelled]).expect("render"), "|\n");
    }

    #[test]
    fn names_sort_naturally() {
        let mut names = vec!["vol10", "vol2", "b", "a", "vol02", "vol1"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["a", "b", "vol1", "vol2", "vol02", "vol10"]);
    }

    #[test]
    fn inspect_prints_an_indented_array_in_dockers_field_order() {
        let raw = serde_json::to_value(volume("data")).expect("json");
        let text = render_inspect(None, std::slice::from_ref(&raw)).expect("render");
        assert!(
            text.starts_with(
                "[\n    {\n        \"CreatedAt\": \"2024-01-02T03:04:05Z\",\n        \"Driver\": \"local\",\n        \"Labels\": {},\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("        \"Scope\": \"local\"\n    }\n]\n"), "{text}");
        assert_eq!(render_inspect(Some("json"), &[]).expect("empty"), "[]\n");
        assert_eq!(
            render_inspect(Some("{{.Name}}\\t{{.Driver}}"), &[raw.clone(), raw]).expect("template"),
            "data\tlocal\ndata\tlocal\n"
        );
        assert!(parse::<InspectArgs>(&[]).is_err());
        assert!(parse::<InspectArgs>(&["-f", "{{.Name}}", "a", "b"]).is_ok());
    }

    #[test]
    fn prune_asks_for_anonymous_or_all_volumes() {
        let new = ApiVersion::new(1, 47);
        let args: PruneArgs = parse(&[]).expect("flags");
        let (filters, warning) = prune_filters(&args, new).expect("plain");
        assert!(filters.is_empty());
        assert_eq!(warning, ANONYMOUS_WARNING);
        let args: PruneArgs = parse(&["-a", "-f", "--filter", "label=x"]).expect("flags");
        let (filters, warning) = prune_filters(&args, new).expect("all");
        assert_eq!(filters["all"], ["true"]);
        assert_eq!(filters["label"], ["x"]);
        assert_eq!(warning, ALL_WARNING);
        let args: PruneArgs = parse(&["--all", "--filter", "all=1"]).expect("flags");
        assert!(prune_filters(&args, new).is_err());
        let (filters, warning) =
            prune_filters(&parse(&[]).expect("flags"), ApiVersion::new(1, 41)).expect("old");
        assert!(filters.is_empty());
        assert_eq!(warning, ALL_WARNING);
        assert!(prune_filters(&parse(&["--filter", "nokey"]).expect("flags"), new).is_err());
    }

    #[test]
    fn prune_reports_names_and_space_like_docker() {
        assert_eq!(render_prune(None, 0), "Total reclaimed space: 0B\n");
        assert_eq!(render_prune(Some(&[]), 0), "Total reclaimed space: 0B\n");
        let names = ["a".to_owned(), "b".to_owned()];
        assert_eq!(
            render_prune(Some(&names), 1_200),
            "Deleted Volumes:\na\nb\n\nTotal reclaimed space: 1.2kB\n"
        );
    }

    #[test]
    fn rm_takes_force_and_several_volumes() {
        let args: RemoveArgs = parse(&["-f", "a", "b"]).expect("flags");
        assert!(args.force);
        assert_eq!(args.names, ["a", "b"]);
        assert!(parse::<RemoveArgs>(&[]).is_err());
    }
}
