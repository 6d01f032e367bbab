//! `kiln image bootstrap`: a base image built by the daemon from Debian
//! packages with mmdebstrap. Kiln's own verb; dockerd has no such route.

use std::io::Write as _;

use clap::Args;
use kiln_client::BootstrapOptions;

use crate::GlobalArgs;

#[derive(Debug, Args)]
#[command(
    override_usage = "kiln image bootstrap [OPTIONS] SUITE -t NAME[:TAG]",
    after_help = "\
The daemon runs mmdebstrap (apt-get install mmdebstrap on its host), with
SOURCE_DATE_EPOCH fixed, and imports its tar as a one-layer image: the same
suite, variant, packages, changes and epoch give the same image id, as long
as the mirror serves the same package versions. The image runs `bash` with
Docker's default PATH unless --change says otherwise.

Progress goes to stderr, the image id to stdout.

Example:
  kiln image bootstrap debian:bookworm --include python3,python3-pip -t python:3.11-slim"
)]
pub struct BootstrapArgs {
    /// Packages to install on top of the variant's (comma-separated; repeatable)
    #[arg(long, value_name = "PKGS")]
    include: Vec<String>,
    /// mmdebstrap's package set: minbase (default: Essential packages and
    /// apt), essential, apt, required, buildd, important, standard, …
    #[arg(long, value_name = "VARIANT")]
    variant: Option<String>,
    /// Debian mirror URL (default: deb.debian.org, with the suite's updates
    /// and security archives)
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// File and image times, in seconds since 1970 (default:
    /// $SOURCE_DATE_EPOCH, else 0)
    #[arg(long, value_name = "N")]
    source_date_epoch: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "CHANGE")]
    changes: Vec<String>,
    /// Name and optionally a tag for the image (NAME[:TAG])
    #[arg(short = 't', long, value_name = "NAME[:TAG]", required = true)]
    tag: String,
    /// Do not print mmdebstrap's progress
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Debian suite: bookworm, trixie, stable, … (debian:bookworm too)
    #[arg(value_name = "SUITE")]
    suite: String,
}

pub async fn run(global: &GlobalArgs, args: &BootstrapArgs) -> anyhow::Result<()> {
    let options = BootstrapOptions {
        suite: args.suite.clone(),
        include: args.include.clone(),
        variant: args.variant.clone(),
        mirror: args.mirror.clone(),
        source_date_epoch: args
            .source_date_epoch
            .clone()
            .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok().filter(|v| !v.is_empty())),
        changes: args.changes.clone(),
        tag: args.tag.clone(),
    };
    let client = crate::connect(global).await?;
    let quiet = args.quiet;
    let id = client
        .image_bootstrap(&options, |line| {
            if !quiet {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{line}");
            }
        })
        .await?;
    println!("{id}");
    Ok(())
}
