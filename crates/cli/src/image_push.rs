//! `kiln push`: an image to a registry, through the daemon, with Docker's
//! progress (a line per layer, redrawn on a terminal).

use std::io::{IsTerminal as _, Write};

use anyhow::bail;
use clap::Args;
use kiln_client::PushOptions;

use crate::image_pull::full_reference;
use crate::transfer_progress::TransferDisplay;
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// Suppress verbose output (print only the pushed reference)
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Send layers compressed this way, recompressing those stored
    /// otherwise (the manifest digest changes, the image id does not);
    /// zstd layers need containerd 1.5+, podman, kiln or docker 23+ to pull
    #[arg(long, value_name = "gzip|zstd", value_parser = ["gzip", "zstd"])]
    compression: Option<String>,
    /// The image; the registry is the name's first part
    /// (`127.0.0.1:5000/app:1`), `latest` the tag when none is given.
    /// Layers the registry has are skipped, and the tag is set only once
    /// every blob is there. Plain HTTP for localhost and 127.0.0.0/8
    #[arg(value_name = "NAME[:TAG]")]
    name: String,
}

pub async fn run(global: &GlobalArgs, args: &PushArgs) -> anyhow::Result<()> {
    let has_tag = kiln_client::split_tag(&args.name).1.is_some() || args.name.contains('@');
    if args.all_tags && has_tag {
        bail!("tag can't be used with --all-tags/-a");
    }
    let client = crate::connect(global).await?;
    let options = PushOptions {
        all_tags: args.all_tags,
        registry_auth: crate::login::registry_auth_for(&args.name),
        compression: args.compression.clone(),
    };
    let mut stdout = std::io::stdout().lock();
    if !has_tag && !args.all_tags && !args.quiet {
        writeln!(stdout, "Using default tag: latest")?;
    }
    // A terminal of unknown size is taken to be 80 columns wide.
    let width = std::io::stdout().is_terminal().then(|| {
        crate::terminal::size().and_then(|size| usize::try_from(size.width).ok()).unwrap_or(80)
    });
    let mut display = TransferDisplay::new(&mut stdout, width);
    client
        .image_push(&args.name, &options, |message| {
            if !args.quiet {
                let _ = display.show(message);
            }
        })
        .await?;
    if args.quiet {
        // docker-compat: `docker push -q` prints the reference in full form.
        let reference = full_reference(&args.name);
        let reference = if args.all_tags {
            reference.trim_end_matches(":latest").to_owned()
        } else {
            reference
        };
        writeln!(stdout, "{reference}")?;
    }
    Ok(())
}
