//! `kiln commit`: a new image from a container's changes.

use clap::{ArgAction, Args};
use kiln_client::CommitOptions;

use crate::container_create::familiar_tagged;
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "string")]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR)
    #[arg(short = 'c', long = "change", value_name = "list")]
    changes: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long, value_name = "string")]
    message: Option<String>,
    /// Pause container during commit (--pause=false to keep it running)
    #[arg(
        short = 'p',
        long,
        value_name = "bool",
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    pause: bool,
    /// The container (name or id)
    #[arg(value_name = "CONTAINER")]
    container: String,
    /// Tag the new image (untagged when left out)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

/// Commit, then print the new image's id (`sha256:…`) as docker does.
pub async fn run(global: &GlobalArgs, args: &CommitArgs) -> anyhow::Result<()> {
    // docker-compat: the docker client checks the reference before asking.
    if let Some(reference) = args.reference.as_deref().filter(|r| !r.is_empty()) {
        familiar_tagged(reference)?;
        if reference.contains('@') {
            anyhow::bail!("refusing to create a tag with a digest reference");
        }
    }
    let client = crate::connect(global).await?;
    let options = CommitOptions {
        reference: args.reference.clone().filter(|r| !r.is_empty()),
        comment: args.message.clone(),
        author: args.author.clone(),
        pause: args.pause,
        changes: args.changes.clone(),
        config: None,
    };
    let answer = client.container_commit(&args.container, &options).await?;
    println!("{}", answer.id);
    Ok(())
}
