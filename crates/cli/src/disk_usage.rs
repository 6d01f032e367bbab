//! `kiln system df`.

use clap::Args;
use kiln_api_types::DiskUsage;
use serde_json::{json, Value};

use crate::output::{human_size_4, table};
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct DiskUsageArgs {
    /// Format output: 'table', 'json', or a Go-style template such as '{{.Type}}'
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
}

pub async fn run(global: &GlobalArgs, args: &DiskUsageArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let usage = client.disk_usage().await?;
    let rows = rows(&usage);
    match args.format.as_deref().map(str::trim) {
        None | Some("table") => {
            let mut lines = vec![["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
                .map(str::to_owned)
                .to_vec()];
            for row in &rows {
                lines.push(
                    ["Type", "TotalCount", "Active", "Size", "Reclaimable"]
                        .iter()
                        .map(|k| row[*k].as_str().unwrap_or_default().to_owned())
                        .collect(),
                );
            }
            print!("{}", table(&lines));
        }
        Some("json") => rows.iter().for_each(|row| println!("{row}")),
        Some(template) => {
            for row in &rows {
                print!("{}", crate::format::render(template, row)?);
            }
        }
    }
    Ok(())
}

/// docker-compat: the four rows docker prints, with its arithmetic for
/// what is reclaimable (the bytes no container uses).
fn rows(usage: &DiskUsage) -> Vec<Value> {
    let total = usage.layers_size.max(0);
    let used: i64 = usage
        .images
        .iter()
        .filter(|i| i.containers > 0 && i.size >= 0 && i.shared_size >= 0)
        .map(|i| i.size - i.shared_size)
        .sum();
    let reclaimable = (total - used).max(0);
    let bytes = |n: i64| human_size_4(u64::try_from(n).unwrap_or(0));
    let reclaim_text = if total > 0 {
        format!("{} ({}%)", bytes(reclaimable), reclaimable * 100 / total)
    } else {
        bytes(reclaimable)
    };
    let active = usage.images.iter().filter(|i| i.containers > 0).count();
    let empty = |kind: &str| json!({"Type": kind, "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"});
    vec![
        json!({
            "Type": "Images",
            "TotalCount": usage.images.len().to_string(),
            "Active": active.to_string(),
            "Size": bytes(total),
            "Reclaimable": reclaim_text,
        }),
        empty("Containers"),
        empty("Local Volumes"),
        empty("Build Cache"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_api_types::ImageSummary;

    #[test]
    fn unused_images_are_all_reclaimable() {
        let usage = DiskUsage {
            layers_size: 3_510_000,
            images: vec![ImageSummary { size: 3_510_000, ..ImageSummary::default() }],
            ..DiskUsage::default()
        };
        let rows = rows(&usage);
        assert_eq!(rows[0]["Size"], "3.51MB");
        assert_eq!(rows[0]["Reclaimable"], "3.51MB (100%)");
        assert_eq!(rows[0]["TotalCount"], "1");
        assert_eq!(rows[3]["Type"], "Build Cache");
    }
}
