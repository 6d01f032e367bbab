//! `kiln tag`, `kiln rmi` and `kiln image prune`.

use clap::Args;
use kiln_client::split_tag;

use crate::output::human_size_4;
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    target: String,
}

pub async fn tag(global: &GlobalArgs, args: &TagArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let (repo, tag) = split_tag(&args.target);
    client.image_tag(&args.source, repo, tag.unwrap_or_default()).await?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    force: bool,
    /// Do not delete untagged parents (accepted for docker compatibility)
    #[arg(long)]
    no_prune: bool,
    #[arg(required = true, value_name = "IMAGE")]
    names: Vec<String>,
}

/// Remove each image in turn; report each failure and fail at the end.
pub async fn remove(global: &GlobalArgs, args: &RemoveArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let mut failed = None;
    for name in &args.names {
        match client.image_remove(name, args.force).await {
            Ok(items) => {
                for item in items {
                    if let Some(reference) = item.untagged {
                        println!("Untagged: {reference}");
                    }
                    if let Some(id) = item.deleted {
                        println!("Deleted: {id}");
                    }
                }
            }
            Err(err) => {
                if let Some(previous) = failed.replace(err) {
                    eprintln!("{}", crate::error_line(&previous.into()));
                }
            }
        }
    }
    match failed {
        Some(err) => Err(err.into()),
        None => Ok(()),
    }
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
}

pub async fn prune(global: &GlobalArgs, args: &PruneArgs) -> anyhow::Result<()> {
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !crate::output::confirm(warning)? {
            return Ok(());
        }
    }
    let client = crate::connect(global).await?;
    let report = client.image_prune(args.all).await?;
    let deleted = report.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for item in deleted {
            if let Some(reference) = item.untagged {
                println!("untagged: {reference}");
            }
            if let Some(id) = item.deleted {
                println!("deleted: {id}");
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size_4(report.space_reclaimed));
    Ok(())
}
