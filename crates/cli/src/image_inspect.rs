//! `kiln image inspect` and `kiln history`.

use clap::Args;
use serde_json::{json, Value};

use crate::image_list::short_id;
use crate::output::{ago, human_size, table};
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format the output: `json`, or a Go-style template such as '{{.Id}}'
    #[arg(short = 'f', long, value_name = "FORMAT")]
    format: Option<String>,
    /// Images to inspect
    #[arg(required = true, value_name = "IMAGE")]
    names: Vec<String>,
}

/// Print every image found (a JSON array, as docker prints it), then fail
/// if some were not.
pub async fn inspect(global: &GlobalArgs, args: &InspectArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let mut found = Vec::new();
    let mut first_error = None;
    for name in &args.names {
        match client.image_inspect(name).await {
            Ok(value) => found.push(value),
            Err(err) => {
                if first_error.is_some() {
                    eprintln!("{}", crate::error_line(&err.into()));
                } else {
                    first_error = Some(err);
                }
            }
        }
    }
    match args.format.as_deref() {
        Some(template) if template.trim() != "json" => {
            for image in &found {
                print!("{}", crate::format::render(template, &serde_json::to_value(image)?)?);
            }
        }
        _ => println!("{}", indented(&found)),
    }
    match first_error {
        Some(err) => Err(err.into()),
        None => Ok(()),
    }
}

/// JSON with four-space indentation, fields in the model's order, as
/// docker prints inspect output.
fn indented(value: &impl serde::Serialize) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    if value.serialize(&mut serializer).is_err() {
        return "[]".to_owned();
    }
    String::from_utf8(out).unwrap_or_default()
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    human: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Format output: 'table', 'json', or a Go-style template
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    #[arg(value_name = "IMAGE")]
    name: String,
}

pub async fn history(global: &GlobalArgs, args: &HistoryArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let items = client.image_history(&args.name).await?;
    let trunc = !args.no_trunc;
    let values: Vec<Value> = items
        .iter()
        .map(|item| {
            let id =
                if item.id == "<missing>" { item.id.clone() } else { short_id(&item.id, trunc) };
            let created_by = item.created_by.replace(['\t', '\n'], " ");
            let size = u64::try_from(item.size).unwrap_or(0);
            json!({
                "ID": id,
                "CreatedSince": if args.human { ago(item.created) } else { item.created.to_string() },
                "CreatedAt": item.created.to_string(),
                "CreatedBy": if trunc { ellipsis(&created_by, 45) } else { created_by },
                "Size": if args.human { human_size(size) } else { size.to_string() },
                "Comment": item.comment,
            })
        })
        .collect();
    if args.quiet {
        for value in &values {
            println!("{}", value["ID"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    match args.format.as_deref().map(str::trim) {
        None | Some("table") => {
            let mut rows = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
                .map(str::to_owned)
                .to_vec()];
            for v in &values {
                rows.push(
                    ["ID", "CreatedSince", "CreatedBy", "Size", "Comment"]
                        .iter()
                        .map(|k| v[*k].as_str().unwrap_or_default().to_owned())
                        .collect(),
                );
            }
            print!("{}", table(&rows));
        }
        Some("json") => values.iter().for_each(|v| println!("{v}")),
        Some(template) => {
            for value in &values {
                print!("{}", crate::format::render(template, value)?);
            }
        }
    }
    Ok(())
}

/// At most `max` characters, the last one `…` when cut.
fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_commands_are_cut_with_an_ellipsis() {
        assert_eq!(ellipsis("short", 45), "short");
        assert_eq!(ellipsis("abcdef", 4), "abc…");
    }

    #[test]
    fn inspect_json_is_indented_by_four() {
        assert_eq!(indented(&json!([{"Id": "x"}])), "[\n    {\n        \"Id\": \"x\"\n    }\n]");
    }
}
