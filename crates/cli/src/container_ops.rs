//! The simple container verbs: `stop`, `restart`, `kill`, `rm`, `wait`,
//! `pause`, `unpause`, `rename`, `top` and `container prune`.
//!
//! Verbs that take several containers act on all of them at once (as the
//! docker CLI does), print each name as given once done, then report every
//! failure and exit 1 if there was one.

use std::future::Future;

use clap::Args;
use kiln_api_types::ContainerTopResponse;
use kiln_client::Client;

use crate::container_list::parse_filters;
use crate::output::{human_size_4, table_with_min_width};
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "SIGNAL")]
    signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    time: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "SIGNAL")]
    signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// `wait`, `pause` and `unpause`: just containers.
#[derive(Debug, Args)]
pub struct ContainersArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    container: String,
    #[arg(value_name = "NEW_NAME")]
    new_name: String,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    container: String,
    /// Options for ps, such as `-ef` or `aux`
    #[arg(value_name = "ps OPTIONS", trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
}

pub async fn stop(global: &GlobalArgs, args: &StopArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let (signal, time) = (args.signal.clone(), args.time);
    each(&client, &args.containers, move |client, name| {
        let signal = signal.clone();
        async move {
            client.container_stop(&name, signal.as_deref(), time).await?;
            Ok(Some(name))
        }
    })
    .await
}

pub async fn restart(global: &GlobalArgs, args: &StopArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let (signal, time) = (args.signal.clone(), args.time);
    each(&client, &args.containers, move |client, name| {
        let signal = signal.clone();
        async move {
            client.container_restart(&name, signal.as_deref(), time).await?;
            Ok(Some(name))
        }
    })
    .await
}

pub async fn kill(global: &GlobalArgs, args: &KillArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let signal = args.signal.clone();
    each(&client, &args.containers, move |client, name| {
        let signal = signal.clone();
        async move {
            client.container_kill(&name, signal.as_deref()).await?;
            Ok(Some(name))
        }
    })
    .await
}

pub async fn remove(global: &GlobalArgs, args: &RemoveArgs) -> anyhow::Result<()> {
    if args.link {
        anyhow::bail!("removing links is not supported: Kiln has no legacy container links");
    }
    let client = crate::connect(global).await?;
    let (force, volumes) = (args.force, args.volumes);
    each(&client, &args.containers, move |client, name| async move {
        match client.container_remove(&name, force, volumes).await {
            Ok(()) => Ok(Some(name)),
            // docker-compat: `rm -f` of a container that is not there says
            // so but does not fail.
            Err(err) if force && err.is_not_found() => {
                eprintln!("{}", crate::error_line(&err.into()));
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    })
    .await
}

/// Print each container's exit code once it stops.
pub async fn wait(global: &GlobalArgs, args: &ContainersArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    each(&client, &args.containers, |client, name| async move {
        let answer = client.container_wait(&name, None).await?;
        Ok(Some(answer.status_code.to_string()))
    })
    .await
}

pub async fn pause(global: &GlobalArgs, args: &ContainersArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    each(&client, &args.containers, |client, name| async move {
        client.container_pause(&name).await?;
        Ok(Some(name))
    })
    .await
}

pub async fn unpause(global: &GlobalArgs, args: &ContainersArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    each(&client, &args.containers, |client, name| async move {
        client.container_unpause(&name).await?;
        Ok(Some(name))
    })
    .await
}

pub async fn rename(global: &GlobalArgs, args: &RenameArgs) -> anyhow::Result<()> {
    let new_name = args.new_name.trim();
    if new_name.is_empty() {
        anyhow::bail!("Neither old nor new names may be empty");
    }
    let client = crate::connect(global).await?;
    client.container_rename(&args.container, new_name).await?;
    Ok(())
}

pub async fn top(global: &GlobalArgs, args: &TopArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let ps_args = args.ps_args.join(" ");
    let answer = client.container_top(&args.container, Some(&ps_args)).await?;
    print!("{}", render_top(&answer));
    Ok(())
}

/// Titles and processes aligned as `docker top` prints them.
fn render_top(answer: &ContainerTopResponse) -> String {
    let mut rows = vec![answer.titles.clone()];
    rows.extend(answer.processes.iter().cloned());
    table_with_min_width(&rows, 20)
}

pub async fn prune(global: &GlobalArgs, args: &PruneArgs) -> anyhow::Result<()> {
    let filters = parse_filters(&args.filters)?;
    if !args.force && !crate::output::confirm("WARNING! This will remove all stopped containers.")?
    {
        return Ok(());
    }
    let client = crate::connect(global).await?;
    let report = client.containers_prune(&filters).await?;
    print!("{}", render_prune(report.containers_deleted.as_deref(), report.space_reclaimed));
    Ok(())
}

fn render_prune(deleted: Option<&[String]>, space_reclaimed: u64) -> String {
    let mut out = String::new();
    if let Some(deleted) = deleted.filter(|d| !d.is_empty()) {
        out.push_str("Deleted Containers:\n");
        for id in deleted {
            out.push_str(id);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!("Total reclaimed space: {}\n", human_size_4(space_reclaimed)));
    out
}

/// Run `op` on every container at once; print what each success returns
/// (in the order given), then every failure, and fail if one did.
async fn each<F, Fut>(client: &Client, containers: &[String], op: F) -> anyhow::Result<()>
where
    F: Fn(Client, String) -> Fut,
    Fut: Future<Output = anyhow::Result<Option<String>>> + Send + 'static,
{
    let tasks: Vec<_> =
        containers.iter().map(|name| tokio::spawn(op(client.clone(), name.clone()))).collect();
    let mut errors = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(Some(line))) => println!("{line}"),
            Ok(Ok(None)) => {}
            Ok(Err(err)) => errors.push(err),
            Err(join) => errors.push(anyhow::anyhow!("a request task failed: {join}")),
        }
    }
    fail_with(errors)
}

/// Print every error but the last; return the last, which the caller
/// prints and turns into exit code 1.
pub(crate) fn fail_with(mut errors: Vec<anyhow::Error>) -> anyhow::Result<()> {
    let Some(last) = errors.pop() else {
        return Ok(());
    };
    for err in &errors {
        eprintln!("{}", crate::error_line(err));
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_aligns_titles_and_processes() {
        let answer = ContainerTopResponse {
            titles: vec!["UID".to_owned(), "PID".to_owned(), "CMD".to_owned()],
            processes: vec![vec!["root".to_owned(), "4242".to_owned(), "sleep 100".to_owned()]],
        };
        assert_eq!(
            render_top(&answer),
            "UID                 PID                 CMD\n\
             root                4242                sleep 100\n"
        );
    }

    #[test]
    fn prune_reports_ids_and_space_like_docker() {
        assert_eq!(render_prune(None, 0), "Total reclaimed space: 0B\n");
        let ids = ["a1".to_owned(), "b2".to_owned()];
        assert_eq!(
            render_prune(Some(&ids), 2_000),
            "Deleted Containers:\na1\nb2\n\nTotal reclaimed space: 2kB\n"
        );
    }

    #[test]
    fn only_the_last_error_is_returned() {
        assert!(fail_with(Vec::new()).is_ok());
        let err = fail_with(vec![anyhow::anyhow!("one"), anyhow::anyhow!("two")]).expect_err("e");
        assert_eq!(err.to_string(), "two");
    }

    #[test]
    fn top_takes_ps_options_after_the_container() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            args: TopArgs,
        }
        let cli = Cli::try_parse_from(["top", "web", "-ef", "--forest"]).expect("parse");
        assert_eq!(cli.args.container, "web");
        assert_eq!(cli.args.ps_args, ["-ef", "--forest"]);
    }
}
