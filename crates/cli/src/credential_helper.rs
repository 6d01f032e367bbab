//! Docker's credential helpers: `docker-credential-NAME get|store|erase`
//! on `PATH`, which keep registry secrets in a keychain (`pass`,
//! `secretservice`, `osxkeychain`, a cloud's) instead of config.json.
//!
//! The protocol: `get` and `erase` read the server URL on stdin; `get`
//! writes `{"ServerURL","Username","Secret"}` on stdout; `store` reads that
//! JSON on stdin. A helper that has nothing for the server says
//! `credentials not found in native keychain`. An identity token is stored
//! with the user name `<token>`.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// The user name a helper keeps an identity token under.
pub(crate) const TOKEN_USERNAME: &str = "<token>";
/// What a helper says when it has nothing for a server.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// A helper's failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HelperError {
    #[error("cannot run {program} (is it on PATH?)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The helper exited with an error; `message` is what it printed.
    #[error("{program} {action} failed: {message}")]
    Failed { program: String, action: &'static str, message: String },
    #[error("{program} get printed invalid JSON")]
    Output {
        program: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A user name and secret as a helper keeps them.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct HelperCredentials {
    #[serde(rename = "ServerURL", default)]
    pub server_url: String,
    #[serde(rename = "Username", default)]
    pub username: String,
    #[serde(rename = "Secret", default)]
    pub secret: String,
}

impl std::fmt::Debug for HelperCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelperCredentials")
            .field("server_url", &self.server_url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The helper `docker-credential-NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Helper {
    program: String,
}

impl Helper {
    pub fn named(name: &str) -> Helper {
        Helper { program: format!("docker-credential-{name}") }
    }

    /// The credentials kept for `server`; `None` when the helper has none.
    pub fn get(&self, server: &str) -> Result<Option<HelperCredentials>, HelperError> {
        match self.run("get", server.as_bytes()) {
            Ok(stdout) => parse_get(&stdout)
                .map_err(|source| HelperError::Output { program: self.program.clone(), source }),
            Err(HelperError::Failed { message, .. }) if is_not_found(&message) => Ok(None),
            Err(err) => Err(err),
        }
    }

    pub fn store(&self, credentials: &HelperCredentials) -> Result<(), HelperError> {
        let json = serde_json::to_vec(credentials).unwrap_or_default();
        self.run("store", &json).map(|_| ())
    }

    /// Forget `server`; nothing to forget is not an error.
    pub fn erase(&self, server: &str) -> Result<(), HelperError> {
        match self.run("erase", server.as_bytes()) {
            Err(HelperError::Failed { message, .. }) if is_not_found(&message) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Run `program action` with `input` on stdin; its stdout, or its
    /// message (stdout, else stderr) when it fails.
    fn run(&self, action: &'static str, input: &[u8]) -> Result<Vec<u8>, HelperError> {
        let spawn_err = |source| HelperError::Spawn { program: self.program.clone(), source };
        let mut child = Command::new(&self.program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading says why in its output.
            let _ = stdin.write_all(input);
        }
        let output = child.wait_with_output().map_err(spawn_err)?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let message = if stdout.is_empty() {
            String::from_utf8_lossy(&output.stderr).trim().to_owned()
        } else {
            stdout
        };
        Err(HelperError::Failed { program: self.program.clone(), action, message })
    }
}

fn is_not_found(message: &str) -> bool {
    message.contains(NOT_FOUND)
}

/// `get`'s answer; one without a secret is no credentials.
fn parse_get(stdout: &[u8]) -> Result<Option<HelperCredentials>, serde_json::Error> {
    let credentials: HelperCredentials = serde_json::from_slice(stdout)?;
    Ok((!credentials.secret.is_empty()).then_some(credentials))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_answers_are_read_and_an_empty_secret_is_none() {
        let got = parse_get(br#"{"ServerURL":"127.0.0.1:5000","Username":"kiln","Secret":"s"}"#)
            .expect("json")
            .expect("credentials");
        assert_eq!((got.username.as_str(), got.secret.as_str()), ("kiln", "s"));
        assert_eq!(parse_get(br#"{"Username":"kiln","Secret":""}"#).expect("json"), None);
        assert!(parse_get(b"nope").is_err());
        assert!(is_not_found("credentials not found in native keychain\n"));
    }

    #[test]
    fn a_missing_helper_says_which_program() {
        let err = Helper::named("kiln-t-does-not-exist").get("x").expect_err("missing");
        assert_eq!(
            err.to_string(),
            "cannot run docker-credential-kiln-t-does-not-exist (is it on PATH?)"
        );
    }
}
