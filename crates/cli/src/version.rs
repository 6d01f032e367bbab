//! `kiln version`.

use clap::Args;
use kiln_api_types::{ApiVersion, Platform, Version};
use serde::Serialize;

use crate::output::Section;
use crate::GlobalArgs;

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Format the output: `json`, or a Go-style template such as
    /// '{{.Server.Version}}' or '{{json .}}'
    #[arg(short = 'f', long, value_name = "FORMAT")]
    format: Option<String>,
}

/// What `--format` sees: `{"Client": ..., "Server": ...}` as docker has it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Report {
    client: ClientVersion,
    server: Option<Version>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ClientVersion {
    platform: Platform,
    version: String,
    api_version: ApiVersion,
    #[serde(rename = "DefaultAPIVersion")]
    default_api_version: ApiVersion,
    git_commit: String,
    go_version: String,
    os: String,
    arch: String,
    context: String,
}

pub async fn run(global: &GlobalArgs, args: &VersionArgs) -> anyhow::Result<()> {
    let (client, server) = match crate::connect(global).await {
        Ok(client) => {
            let server = client.version().await.map_err(anyhow::Error::from);
            (client_version(Some(client.api_version())), server)
        }
        Err(err) => (client_version(None), Err(err)),
    };
    // As docker: the client part is printed even when the daemon is not there.
    let (server, error) = match server {
        Ok(server) => (Some(server), None),
        Err(err) => (None, Some(err)),
    };
    let report = Report { client, server };
    match &args.format {
        Some(template) => {
            let mut value = serde_json::to_value(&report)?;
            add_go_names(&mut value);
            print!("{}", crate::format::render(template, &value)?)
        }
        None => print!("{}", text(&report)),
    }
    error.map_or(Ok(()), Err)
}

/// docker-compat: docker's templates name fields as Go does
/// (`{{.Server.APIVersion}}`), its JSON as the API does (`ApiVersion`);
/// both work here.
fn add_go_names(report: &mut serde_json::Value) {
    for part in ["Client", "Server"] {
        if let Some(fields) = report.get_mut(part).and_then(serde_json::Value::as_object_mut) {
            if let Some(version) = fields.get("ApiVersion").cloned() {
                fields.entry("APIVersion").or_insert(version);
            }
        }
    }
}

fn client_version(negotiated: Option<ApiVersion>) -> ClientVersion {
    ClientVersion {
        platform: Platform { name: "Kiln".to_owned() },
        version: env!("CARGO_PKG_VERSION").to_owned(),
        api_version: negotiated.unwrap_or(kiln_client::API_VERSION),
        default_api_version: kiln_client::API_VERSION,
        git_commit: option_env!("KILN_GIT_COMMIT").unwrap_or("unknown").to_owned(),
        go_version: "n/a".to_owned(),
        os: std::env::consts::OS.to_owned(),
        arch: go_arch(std::env::consts::ARCH).to_owned(),
        context: "default".to_owned(),
    }
}

/// Go's names for CPU architectures, as docker prints them in OS/Arch.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn text(report: &Report) -> String {
    let mut s = Section::default();
    let c = &report.client;
    let api = if c.api_version == c.default_api_version {
        c.api_version.to_string()
    } else {
        format!("{} (downgraded from {})", c.api_version, c.default_api_version)
    };
    s.heading("Client:")
        .field(1, "Version", &c.version)
        .field(1, "API version", api)
        .field(1, "Go version", &c.go_version)
        .field(1, "Git commit", &c.git_commit)
        .field(1, "OS/Arch", format!("{}/{}", c.os, c.arch))
        .field(1, "Context", &c.context);
    if let Some(server) = &report.server {
        s.heading("").heading(format!("Server: {}", server.platform.name).trim_end());
        for component in &server.components {
            s.heading(&format!(" {}:", component.name));
            s.field(2, "Version", &component.version);
            let detail =
                |key: &str| component.details.get(key).map(String::as_str).unwrap_or_default();
            if component.name == "Engine" {
                let min = server
                    .min_api_version
                    .map(|v| format!(" (minimum version {v})"))
                    .unwrap_or_default();
                s.field(2, "API version", format!("{}{min}", detail("ApiVersion")))
                    .field(2, "Go version", detail("GoVersion"))
                    .field(2, "Git commit", detail("GitCommit"));
                if !detail("BuildTime").is_empty() {
                    s.field(2, "Built", detail("BuildTime"));
                }
                s.field(2, "OS/Arch", format!("{}/{}", detail("Os"), detail("Arch"))).field(
                    2,
                    "Experimental",
                    detail("Experimental"),
                );
            } else if !detail("GitCommit").is_empty() {
                s.field(2, "GitCommit", detail("GitCommit"));
            }
        }
    }
    s.text().to_owned()
}
