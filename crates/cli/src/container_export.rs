//! `kiln export`: a container's filesystem as a tar archive.

use std::path::PathBuf;

use clap::Args;

use crate::image_archive::write_output;
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    container: String,
}

pub async fn run(global: &GlobalArgs, args: &ExportArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let container = args.container.clone();
    write_output(args.output.as_deref(), "export container", "export", async move |out| {
        client.container_export(&container, out).await
    })
    .await
}
