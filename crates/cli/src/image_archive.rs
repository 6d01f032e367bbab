//! `kiln load`, `kiln save` and `kiln import`: archives streamed to and
//! from the daemon.

use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use kiln_api_types::JsonMessage;
use kiln_client::ImportOptions;
use tokio::io::AsyncRead;

use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    quiet: bool,
}

pub async fn load(global: &GlobalArgs, args: &LoadArgs) -> anyhow::Result<()> {
    let source = open_source(args.input.as_deref(), "load")?;
    let client = crate::connect(global).await?;
    // docker-compat: as the docker CLI, no progress unless stdout is a terminal.
    let quiet = args.quiet || !std::io::stdout().is_terminal();
    let messages = client.image_load(source, quiet).await?;
    print_messages(&messages);
    Ok(())
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[arg(required = true, value_name = "IMAGE")]
    names: Vec<String>,
}

pub async fn save(global: &GlobalArgs, args: &SaveArgs) -> anyhow::Result<()> {
    let client = crate::connect(global).await?;
    let names = args.names.clone();
    write_output(args.output.as_deref(), "save image", "save", async move |out| {
        client.image_save(&names, out).await
    })
    .await
}

/// Where a downloaded archive goes: standard output, or a file.
pub(crate) enum Output {
    Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>),
    File(std::io::BufWriter<std::fs::File>),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File(w) => w.flush(),
        }
    }
}

/// Stream an archive from `fetch` to `output`, or to standard output when
/// it is not a terminal. As docker: a file is written beside the target,
/// then renamed, so a failure leaves no partial file under the name asked
/// for. `what` names the failure (`save image`), `verb` the refusal.
pub(crate) async fn write_output(
    output: Option<&Path>,
    what: &str,
    verb: &str,
    fetch: impl AsyncFnOnce(&mut Output) -> Result<(), kiln_client::ClientError>,
) -> anyhow::Result<()> {
    let Some(path) = output else {
        if std::io::stdout().is_terminal() {
            anyhow::bail!("cowardly refusing to {verb} to a terminal. Use the -o flag or redirect");
        }
        let mut out = Output::Stdout(std::io::BufWriter::new(std::io::stdout().lock()));
        fetch(&mut out).await?;
        return Ok(());
    };
    let temp = temp_beside(path);
    let file = std::fs::File::create(&temp)
        .with_context(|| format!("failed to {what}: cannot create {}", temp.display()))?;
    let mut out = Output::File(std::io::BufWriter::new(file));
    let fetched = fetch(&mut out).await;
    let finished = fetched.map_err(anyhow::Error::from).and_then(|()| match out {
        Output::File(out) => {
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(&temp, path)
                .with_context(|| format!("failed to {what}: cannot write {}", path.display()))
        }
        Output::Stdout(_) => Ok(()),
    });
    if finished.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    finished
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.kiln-save-{}", std::process::id()))
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "CHANGE")]
    changes: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long, value_name = "MESSAGE")]
    message: Option<String>,
    /// Set platform if server is multi-platform capable (only the host's is supported)
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// A rootfs tar (plain, gzip or zstd), or - for STDIN
    #[arg(value_name = "FILE|-")]
    source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

pub async fn import(global: &GlobalArgs, args: &ImportArgs) -> anyhow::Result<()> {
    let input = (args.source != "-").then(|| Path::new(&args.source));
    let source = open_source(input, "import")?;
    let client = crate::connect(global).await?;
    let options = ImportOptions {
        reference: args.reference.clone(),
        changes: args.changes.clone(),
        message: args.message.clone(),
    };
    let messages = client.image_import(source, &options).await?;
    print_messages(&messages);
    Ok(())
}

/// The file, or stdin when none is named (refused when stdin is a terminal).
fn open_source(
    path: Option<&Path>,
    verb: &str,
) -> anyhow::Result<Box<dyn AsyncRead + Send + Unpin>> {
    match path {
        Some(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            Ok(Box::new(tokio::fs::File::from_std(file)))
        }
        None => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!("requested {verb} from stdin, but stdin is empty");
            }
            Ok(Box::new(tokio::io::stdin()))
        }
    }
}

/// What docker prints of a JSON-message stream: `stream` text as it is,
/// a `status` on its own line.
fn print_messages(messages: &[JsonMessage]) {
    let mut out = std::io::stdout().lock();
    for message in messages {
        if let Some(text) = &message.stream {
            let _ = out.write_all(text.as_bytes());
        } else if let Some(status) = &message.status {
            let _ = writeln!(out, "{status}");
        }
    }
    let _ = out.flush();
}
