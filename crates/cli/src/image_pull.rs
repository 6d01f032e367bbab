//! `kiln pull`: an image from a registry, through the daemon, with Docker's
//! progress lines.

use std::io::Write;

use clap::Args;
use kiln_api_types::JsonMessage;
use kiln_client::{Client, ClientError, PullOptions};

use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Suppress verbose output (print only the image reference)
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long, value_name = "string")]
    platform: Option<String>,
    /// NAME[:TAG|@DIGEST]; the credentials `kiln login` stored for its
    /// registry are sent along
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    name: String,
}

pub async fn run(global: &GlobalArgs, args: &PullArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let options = PullOptions {
        platform: args.platform.clone(),
        registry_auth: crate::login::registry_auth_for(&args.name),
    };
    let mut stdout = std::io::stdout().lock();
    pull_with_progress(&client, &args.name, &options, args.quiet, &mut stdout).await?;
    writeln!(stdout, "{}", full_reference(&args.name))?;
    Ok(())
}

/// Pull `reference`, writing each progress message to `out` as Docker
/// prints it when the output is not a terminal (no per-byte lines).
pub(crate) async fn pull_with_progress(
    client: &Client,
    reference: &str,
    options: &PullOptions,
    quiet: bool,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    client
        .image_pull(reference, options, |message| {
            if quiet {
                return;
            }
            if let Some(line) = progress_line(message) {
                // A closed output does not stop the pull.
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        })
        .await
}

/// One progress message as a line, or `None` for byte counts, which Docker
/// shows only as a bar on a terminal.
fn progress_line(message: &JsonMessage) -> Option<String> {
    let status = message.status.as_deref()?;
    if matches!(status, "Downloading" | "Extracting" | "Waiting") {
        return None;
    }
    Some(match message.id.as_deref() {
        Some(id) if !id.is_empty() => format!("{id}: {status}"),
        _ => status.to_owned(),
    })
}

/// The reference in Docker's full form, as `docker pull` prints it last:
/// `busybox` → `docker.io/library/busybox:latest`.
pub(crate) fn full_reference(reference: &str) -> String {
    let (name, suffix) = match reference.split_once('@') {
        Some((name, digest)) => (name, format!("@{digest}")),
        None => match kiln_client::split_tag(reference) {
            (name, Some(tag)) => (name, format!(":{tag}")),
            (name, None) => (name, ":latest".to_owned()),
        },
    };
    let first = name.split('/').next().unwrap_or_default();
    let has_registry = name.contains('/') && (first.contains(['.', ':']) || first == "localhost");
    let name = if has_registry {
        name.to_owned()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    format!("{name}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_print_in_dockers_full_form() {
        assert_eq!(full_reference("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full_reference("user/app:1"), "docker.io/user/app:1");
        assert_eq!(full_reference("127.0.0.1:5000/kiln-t/bb:1"), "127.0.0.1:5000/kiln-t/bb:1");
        assert_eq!(full_reference("localhost/a@sha256:ab"), "localhost/a@sha256:ab");
    }

    #[test]
    fn progress_lines_name_the_layer_and_skip_byte_counts() {
        let message = |status: &str, id: Option<&str>| JsonMessage {
            status: Some(status.to_owned()),
            id: id.map(str::to_owned),
            ..JsonMessage::default()
        };
        assert_eq!(
            progress_line(&message("Pulling from kiln-t/bb", Some("1"))).as_deref(),
            Some("1: Pulling from kiln-t/bb")
        );
        assert_eq!(progress_line(&message("Downloading", Some("ab"))), None);
        assert_eq!(
            progress_line(&message("Digest: sha256:ab", None)).as_deref(),
            Some("Digest: sha256:ab")
        );
    }
}
