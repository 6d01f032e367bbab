//! `kiln login` and `kiln logout`, and the credentials `kiln pull` sends.
//!
//! As with the docker CLI, the credentials live on the client's side
//! ([`crate::docker_config`]: config.json or a credential helper): `login`
//! asks the daemon to check them (`POST /auth`) and stores them only when
//! the registry took them; a pull sends those of the image's registry in
//! `X-Registry-Auth`. The daemon keeps nothing.

use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
use std::os::fd::AsFd as _;

use anyhow::Context as _;
use clap::Args;
use kiln_client::AuthConfig;
use nix::sys::termios::{self, LocalFlags, SetArg};

use crate::docker_config::{self, ConfigFile, StoredAuth, DOCKER_HUB_KEY};
use crate::GlobalArgs;

/// `kiln login [-u USER] [-p PASS | --password-stdin] [SERVER]`.
#[derive(Debug, Args)]
#[command(
    after_help = "The registry checks the credentials (through the daemon); they are then kept in\n$DOCKER_CONFIG/config.json (default ~/.docker/config.json), or in the credential\nhelper it names (credsStore, credHelpers), where docker finds them too.\nkiln pull sends them to that registry from then on."
)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long, value_name = "string")]
    username: Option<String>,
    /// Password
    #[arg(short = 'p', long, value_name = "string")]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
    /// The registry (host[:port]); Docker Hub when omitted
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

/// `kiln logout [SERVER]`.
#[derive(Debug, Args)]
#[command(
    after_help = "Removes the credentials kept for SERVER from config.json and its credential helper."
)]
pub struct LogoutArgs {
    /// The registry (host[:port]); Docker Hub when omitted
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

/// The key a server is stored under, and the address to show and send.
fn server_of(server: Option<&str>) -> (String, String) {
    match server {
        Some(server) if !server.trim().is_empty() => {
            let key = docker_config::server_key(server);
            let shown = if key == DOCKER_HUB_KEY { key.clone() } else { server.trim().to_owned() };
            (key, shown)
        }
        _ => (DOCKER_HUB_KEY.to_owned(), DOCKER_HUB_KEY.to_owned()),
    }
}

pub async fn login(global: &GlobalArgs, args: &LoginArgs) -> anyhow::Result<()> {
    // docker-compat: the docker CLI's checks and words.
    if args.password.is_some() && args.password_stdin {
        anyhow::bail!("--password and --password-stdin are mutually exclusive");
    }
    if args.password_stdin && args.username.as_deref().unwrap_or_default().is_empty() {
        anyhow::bail!("Must provide --username with --password-stdin");
    }
    if args.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let password = match (&args.password, args.password_stdin) {
        (_, true) => Some(read_password_stdin()?),
        (password, false) => password.clone(),
    };
    let (key, address) = server_of(args.server.as_deref());
    let mut config = ConfigFile::load_default()?;
    let client = crate::connect(global).await?;

    // Without -u or -p, try what is stored first, as docker does.
    if args.username.is_none() && password.is_none() {
        if let Ok(Some(stored)) = config.get(&key) {
            println!("Authenticating with existing credentials...");
            match client.login(&auth_config(&stored, &address)).await {
                Ok(_) => {
                    println!("Login Succeeded");
                    return Ok(());
                }
                Err(err) => eprintln!("Login did not succeed, error: {err}"),
            }
        }
    }

    let stored_user = config.get(&key).ok().flatten().map(|s| s.username).unwrap_or_default();
    let username = match &args.username {
        Some(username) => username.trim().to_owned(),
        None => prompt_username(&stored_user)?,
    };
    if username.is_empty() {
        anyhow::bail!("Non-null Username Required");
    }
    let password = match password {
        Some(password) => password,
        None => prompt_password()?,
    };
    if password.is_empty() {
        anyhow::bail!("Password Required");
    }
    let request = AuthConfig {
        username: username.clone(),
        password: password.clone(),
        serveraddress: address,
        ..AuthConfig::default()
    };
    let outcome = client.login(&request).await?;
    let stored = if outcome.identity_token.is_empty() {
        StoredAuth { username, password, ..StoredAuth::default() }
    } else {
        StoredAuth { username, identity_token: outcome.identity_token, ..StoredAuth::default() }
    };
    if config.stores_in_file(&key) && stored.identity_token.is_empty() {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.\nConfigure a credential helper to remove this warning.",
            config.path().display()
        );
    }
    config
        .store(&key, &stored)
        .with_context(|| format!("cannot store the credentials for {key}"))?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(args: &LogoutArgs) -> anyhow::Result<()> {
    let (key, _) = server_of(args.server.as_deref());
    let mut config = ConfigFile::load_default()?;
    // docker-compat: the docker CLI's words, and exit 0 either way.
    if !config.has_entry(&key) && config.get(&key).ok().flatten().is_none() {
        println!("Not logged in to {key}");
        return Ok(());
    }
    println!("Removing login credentials for {key}");
    config.erase(&key).with_context(|| format!("cannot remove the credentials for {key}"))?;
    Ok(())
}

/// The `X-Registry-Auth` value for the registry of `image`, when
/// config.json (or its helper) has credentials for it. A config or helper
/// that fails is a warning, and the pull goes on without credentials, as
/// the docker CLI's does.
pub(crate) fn registry_auth_for(image: &str) -> Option<String> {
    let key = docker_config::key_for_image(image);
    let found = ConfigFile::load_default().and_then(|config| config.get(&key));
    match found {
        Ok(Some(stored)) => Some(auth_config(&stored, &key).encode()),
        Ok(None) => None,
        Err(err) => {
            eprintln!("WARNING: cannot read the credentials for {key}: {}", error_chain(&err));
            None
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What is stored, as the API takes it.
fn auth_config(stored: &StoredAuth, address: &str) -> AuthConfig {
    AuthConfig {
        username: stored.username.clone(),
        password: stored.password.clone(),
        serveraddress: address.to_owned(),
        identitytoken: stored.identity_token.clone(),
    }
}

/// All of stdin, less the line end after it.
fn read_password_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).context("cannot read the password from stdin")?;
    Ok(trim_line_end(&text).to_owned())
}

fn trim_line_end(text: &str) -> &str {
    text.strip_suffix('\n').map_or(text, |t| t.strip_suffix('\r').unwrap_or(t))
}

fn require_terminal() -> anyhow::Result<()> {
    if std::io::stdin().is_terminal() {
        Ok(())
    } else {
        // docker-compat: the docker CLI's words.
        anyhow::bail!("Cannot perform an interactive login from a non TTY device")
    }
}

/// `Username: ` (with the stored one offered) and a line from stdin.
fn prompt_username(stored: &str) -> anyhow::Result<String> {
    require_terminal()?;
    if stored.is_empty() {
        print!("Username: ");
    } else {
        print!("Username ({stored}): ");
    }
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the username")?;
    let typed = line.trim();
    Ok(if typed.is_empty() { stored.to_owned() } else { typed.to_owned() })
}

/// `Password: ` and a line from stdin, not echoed.
fn prompt_password() -> anyhow::Result<String> {
    require_terminal()?;
    print!("Password: ");
    std::io::stdout().flush()?;
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let original = termios::tcgetattr(fd).context("cannot read the terminal's settings")?;
    let mut quiet = original.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    termios::tcsetattr(fd, SetArg::TCSANOW, &quiet).context("cannot turn echo off")?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    // Echo comes back whatever the read did.
    let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &original);
    println!();
    read.context("cannot read the password")?;
    Ok(trim_line_end(&line).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_default_to_docker_hub_and_keep_the_name_given() {
        assert_eq!(server_of(None), (DOCKER_HUB_KEY.to_owned(), DOCKER_HUB_KEY.to_owned()));
        assert_eq!(server_of(Some("docker.io")).0, DOCKER_HUB_KEY);
        assert_eq!(
            server_of(Some("127.0.0.1:5000")),
            ("127.0.0.1:5000".to_owned(), "127.0.0.1:5000".to_owned())
        );
        assert_eq!(server_of(Some("http://localhost:5000/")).0, "localhost:5000");
    }

    #[test]
    fn a_piped_password_loses_only_its_line_end() {
        assert_eq!(trim_line_end("s3cret\n"), "s3cret");
        assert_eq!(trim_line_end("s3cret\r\n"), "s3cret");
        assert_eq!(trim_line_end(" s p \n\n"), " s p \n");
        assert_eq!(trim_line_end("nolf"), "nolf");
    }
}
