//! `kiln inspect` (containers, then images) and `kiln container inspect`.

use clap::{Args, ValueEnum};
use kiln_api_types::{ContainerInspect, ImageInspect};
use kiln_client::Client;
use serde::Serialize;
use serde_json::Value;

use crate::output::indented_json;
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json', or a Go-style template
    /// such as '{{.State.Status}}'
    #[arg(short = 'f', long, value_name = "FORMAT")]
    format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    kind: Option<ObjectKind>,
    #[arg(required = true, value_name = "NAME|ID")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContainerInspectArgs {
    /// Format output using a custom template: 'json', or a Go-style template
    /// such as '{{.State.Status}}'
    #[arg(short = 'f', long, value_name = "FORMAT")]
    format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    size: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    names: Vec<String>,
}

/// What `--type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectKind {
    Container,
    Image,
}

/// `kiln inspect`: each name as a container, else as an image.
pub async fn inspect(global: &GlobalArgs, args: &InspectArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        match inspect_object(&client, name, args.kind, args.size).await {
            Ok(object) => found.push(object),
            Err(err) => errors.push(err),
        }
    }
    print_objects(args.format.as_deref(), &found)?;
    crate::container_ops::fail_with(errors)
}

/// `kiln container inspect`.
pub async fn inspect_containers(
    global: &GlobalArgs,
    args: &ContainerInspectArgs,
) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        match inspect_object(&client, name, Some(ObjectKind::Container), args.size).await {
            Ok(object) => found.push(object),
            Err(err) => errors.push(err),
        }
    }
    print_objects(args.format.as_deref(), &found)?;
    crate::container_ops::fail_with(errors)
}

/// What was found under a name: the daemon's answer as sent (for
/// templates) and as a model, which prints its fields in docker's order.
#[derive(Debug)]
struct Object {
    raw: Value,
    ordered: Ordered,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Ordered {
    Container(Box<ContainerInspect>),
    Image(Box<ImageInspect>),
    /// An answer the model cannot read, as sent.
    Raw(Value),
}

async fn inspect_object(
    client: &Client,
    name: &str,
    kind: Option<ObjectKind>,
    size: bool,
) -> anyhow::Result<Object> {
    if kind != Some(ObjectKind::Image) {
        match client.container_inspect_raw_sized(name, size).await {
            Ok(raw) => {
                let ordered = match serde_json::from_value::<ContainerInspect>(raw.clone()) {
                    Ok(model) => Ordered::Container(Box::new(model)),
                    Err(_) => Ordered::Raw(raw.clone()),
                };
                return Ok(Object { raw, ordered });
            }
            Err(err) if err.is_not_found() && kind.is_none() => {}
            Err(err) if err.is_not_found() => {
                return Err(anyhow::anyhow!("No such container: {name}"));
            }
            Err(err) => return Err(err.into()),
        }
    }
    match client.image_inspect_raw(name).await {
        Ok(raw) => {
            let ordered = match serde_json::from_value::<ImageInspect>(raw.clone()) {
                Ok(model) => Ordered::Image(Box::new(model)),
                Err(_) => Ordered::Raw(raw.clone()),
            };
            Ok(Object { raw, ordered })
        }
        Err(err) if err.is_not_found() && kind.is_none() => {
            Err(anyhow::anyhow!("No such object: {name}"))
        }
        Err(err) if err.is_not_found() => Err(anyhow::anyhow!("No such image: {name}")),
        Err(err) => Err(err.into()),
    }
}

/// A JSON array with four-space indents (`[]` when nothing was found), or
/// the template once per object.
fn print_objects(format: Option<&str>, objects: &[Object]) -> anyhow::Result<()> {
    print!("{}", render(format, objects)?);
    Ok(())
}

fn render(format: Option<&str>, objects: &[Object]) -> anyhow::Result<String> {
    match format.map(str::trim) {
        None | Some("" | "json") => {
            let ordered: Vec<&Ordered> = objects.iter().map(|o| &o.ordered).collect();
            Ok(format!("{}\n", indented_json(&ordered)))
        }
        Some(_) => {
            let template = format.unwrap_or_default().replace("\\t", "\t").replace("\\n", "\n");
            let mut out = String::new();
            for object in objects {
                out.push_str(&crate::format::render(&template, &object.raw)?);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> Object {
        let model = ContainerInspect {
            id: "abc".to_owned(),
            name: "/web".to_owned(),
            ..ContainerInspect::default()
        };
        let raw = serde_json::to_value(&model).expect("json");
        Object { raw, ordered: Ordered::Container(Box::new(model)) }
    }

    #[test]
    fn nothing_found_prints_an_empty_array() {
        assert_eq!(render(None, &[]).expect("render"), "[]\n");
    }

    #[test]
    fn inspect_prints_indented_arrays_or_templates() {
        let text = render(None, &[object()]).expect("render");
        // The model's order (Id, Created, Path, …), not alphabetical.
        assert!(
            text.starts_with("[\n    {\n        \"Id\": \"abc\",\n        \"Created\""),
            "{text}"
        );
        assert_eq!(
            render(Some("{{.Name}} {{.State.Running}}"), &[object(), object()]).expect("t"),
            "/web false\n/web false\n"
        );
    }
}
