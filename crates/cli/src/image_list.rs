//! `kiln images` (`kiln image ls`).

use std::collections::BTreeMap;

use clap::Args;
use kiln_api_types::ImageSummary;
use kiln_client::{split_tag, ImageListOptions};
use serde_json::{json, Value};

use crate::format::cells;
use crate::output::{ago, human_size, table};
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Filter output based on conditions provided (reference=, dangling=, label=)
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Format output: 'table', 'table TEMPLATE', 'json', or a Go-style template
    /// such as '{{.Repository}}:{{.Tag}}'
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Only list images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

/// One row of the listing: an image under one repository and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    repository: String,
    tag: String,
    digest: String,
    id: String,
    created: i64,
    size: u64,
}

pub async fn run(global: &GlobalArgs, args: &ListArgs) -> anyhow::Result<()> {
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for filter in &args.filters {
        let (key, value) = filter
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))?;
        filters.entry(key.to_owned()).or_default().push(value.to_owned());
    }
    if let Some(reference) = &args.reference {
        filters.entry("reference".to_owned()).or_default().push(reference.clone());
    }
    let client = crate::connect(global).await?;
    let images = client.images(&ImageListOptions { all: args.all, filters }).await?;
    let rows: Vec<Row> = images.iter().flat_map(|i| rows(i, args.digests)).collect();
    print!("{}", render(args, &rows)?);
    Ok(())
}

fn render(args: &ListArgs, rows: &[Row]) -> anyhow::Result<String> {
    let trunc = !args.no_trunc;
    if args.quiet {
        return Ok(rows.iter().map(|r| format!("{}\n", short_id(&r.id, trunc))).collect());
    }
    let format = args.format.as_deref().unwrap_or("table").replace("\\t", "\t");
    if format.trim() == "json" {
        return Ok(rows.iter().map(|r| format!("{}\n", row_value(r, trunc))).collect());
    }
    let Some(table_format) = format.strip_prefix("table") else {
        let mut out = String::new();
        for row in rows {
            out.push_str(&crate::format::render(&format, &row_value(row, trunc))?);
        }
        return Ok(out);
    };
    let template = match table_format.trim() {
        "" if args.digests => {
            "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
        }
        "" => "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
        custom => custom,
    };
    let mut lines = vec![cells(template, &headers())?];
    for row in rows {
        lines.push(cells(template, &row_value(row, trunc))?);
    }
    Ok(table(&lines))
}

/// Column titles, by field, as docker names them.
fn headers() -> Value {
    json!({
        "Containers": "CONTAINERS", "CreatedAt": "CREATED AT", "CreatedSince": "CREATED",
        "Digest": "DIGEST", "ID": "IMAGE ID", "Repository": "REPOSITORY",
        "SharedSize": "SHARED SIZE", "Size": "SIZE", "Tag": "TAG",
        "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
    })
}

/// What a template sees for a row: docker's field names and texts.
fn row_value(row: &Row, trunc: bool) -> Value {
    json!({
        "Containers": "N/A",
        "CreatedAt": created_at(row.created),
        "CreatedSince": ago(row.created),
        "Digest": row.digest,
        "ID": short_id(&row.id, trunc),
        "Repository": row.repository,
        "SharedSize": "N/A",
        "Size": human_size(row.size),
        "Tag": row.tag,
        "UniqueSize": "N/A",
        "VirtualSize": human_size(row.size),
    })
}

/// `sha256:0123…` → `0123456789ab`.
pub fn short_id(id: &str, trunc: bool) -> String {
    if !trunc {
        return id.to_owned();
    }
    id.strip_prefix("sha256:").unwrap_or(id).chars().take(12).collect()
}

/// Go's `time.Time.String()` of a Unix time, in UTC. (The CLI sees only
/// api-types and client, so it keeps its own calendar arithmetic.)
fn created_at(created: i64) -> String {
    let days = created.div_euclid(86_400);
    let rem = created.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000 UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// docker-compat: the rows docker's formatter makes of an image: one per
/// repository and tag (and per digest with `--digests`); `<none>` for an
/// untagged image.
fn rows(image: &ImageSummary, digests: bool) -> Vec<Row> {
    let row = |repository: &str, tag: &str, digest: &str| Row {
        repository: repository.to_owned(),
        tag: tag.to_owned(),
        digest: digest.to_owned(),
        id: image.id.clone(),
        created: image.created,
        size: u64::try_from(image.size).unwrap_or(0),
    };
    let mut tags: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for reference in image.repo_tags.iter().filter(|t| *t != "<none>:<none>") {
        let (repo, tag) = split_tag(reference);
        tags.entry(repo).or_default().push(tag.unwrap_or("latest"));
    }
    let mut by_digest: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for reference in image.repo_digests.iter().filter(|d| *d != "<none>@<none>") {
        if let Some((repo, digest)) = reference.split_once('@') {
            by_digest.entry(repo).or_default().push(digest);
        }
    }
    if tags.is_empty() && by_digest.is_empty() {
        return vec![row("<none>", "<none>", "<none>")];
    }
    let mut out = Vec::new();
    for (repo, repo_tags) in &tags {
        let repo_digests = by_digest.remove(repo).unwrap_or_default();
        for tag in repo_tags {
            if !digests || repo_digests.is_empty() {
                out.push(row(repo, tag, "<none>"));
            } else {
                out.extend(repo_digests.iter().map(|d| row(repo, tag, d)));
            }
        }
    }
    for (repo, repo_digests) in &by_digest {
        if digests {
            out.extend(repo_digests.iter().map(|d| row(repo, "<none>", d)));
        } else {
            out.push(row(repo, "<none>", "<none>"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tags: &[&str], digests: &[&str]) -> ImageSummary {
        ImageSummary {
            id: format!("sha256:{}", "ab".repeat(32)),
            repo_tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            repo_digests: digests.iter().map(|t| (*t).to_owned()).collect(),
            ..ImageSummary::default()
        }
    }

    #[test]
    fn rows_follow_dockers_formatter() {
        let untagged = rows(&image(&[], &[]), false);
        assert_eq!(
            (untagged[0].repository.as_str(), untagged[0].tag.as_str()),
            ("<none>", "<none>")
        );
        let two = rows(&image(&["a:1", "localhost:5000/b:2"], &["a@sha256:cd"]), true);
        let names: Vec<(String, String, String)> =
            two.into_iter().map(|r| (r.repository, r.tag, r.digest)).collect();
        assert_eq!(
            names,
            [
                ("a".into(), "1".into(), "sha256:cd".into()),
                ("localhost:5000/b".into(), "2".into(), "<none>".into())
            ]
        );
    }

    #[test]
    fn created_at_reads_like_gos_time() {
        assert_eq!(created_at(1_700_000_000), "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(short_id("sha256:0123456789abcdef", true), "0123456789ab");
    }
}
