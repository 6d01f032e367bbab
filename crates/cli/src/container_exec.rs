//! `kiln exec`: a second process in a running container, its stdio
//! relayed to ours, and its exit code as ours.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use kiln_api_types::{ExecConfig, ExecStartConfig};
use kiln_client::{Client, ClientError};

use crate::container_create::{env_value, read_kv_files, FlagError, Local, ThisProcess};
use crate::container_run::{exit_status, DetachKeys, Ended, Failure, Session, TtyTarget};
use crate::GlobalArgs;

/// `kiln exec`.
#[derive(Debug, Args)]
#[command(override_usage = "kiln exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long = "detach")]
    detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    env_file: Vec<PathBuf>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    interactive: bool,
    /// Give extended privileges to the command
    #[arg(long = "privileged")]
    privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long = "user", value_name = "string")]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    workdir: Option<String>,
    /// The container, then the command and its arguments
    #[arg(
        value_name = "CONTAINER COMMAND [ARG...]",
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    container_and_command: Vec<String>,
}

impl ExecArgs {
    fn container(&self) -> &str {
        self.container_and_command.first().map_or("", String::as_str)
    }

    /// The body of `POST /containers/{id}/exec`, as docker builds it:
    /// everything attached unless detached, stdin with `-i`, the
    /// terminal's size with `-t`.
    fn config(&self, local: &impl Local) -> Result<ExecConfig, FlagError> {
        let container = self.container();
        if let Some(flag) = container.strip_prefix('-') {
            return Err(match flag.strip_prefix('-') {
                Some(_) => FlagError::UnknownFlag(container.to_owned()),
                None => FlagError::UnknownShorthand {
                    letter: flag.chars().next().unwrap_or('-'),
                    arg: container.to_owned(),
                },
            });
        }
        let mut env = read_kv_files(&self.env_file, local, true)?;
        for value in &self.env {
            env.extend(env_value(value, local)?);
        }
        Ok(ExecConfig {
            attach_stdin: self.interactive && !self.detach,
            attach_stdout: !self.detach,
            attach_stderr: !self.detach,
            console_size: if self.tty { local.console_size() } else { None },
            detach_keys: self.detach_keys.clone().unwrap_or_default(),
            tty: self.tty,
            env: (!env.is_empty()).then_some(env),
            cmd: Some(self.container_and_command[1..].to_vec()),
            privileged: self.privileged,
            user: self.user.clone().unwrap_or_default(),
            working_dir: self.workdir.clone().unwrap_or_default(),
        })
    }
}

/// `kiln exec`: the process's exit code; 1 when the daemon refuses.
pub(crate) async fn exec(global: &GlobalArgs, args: &ExecArgs) -> u8 {
    exec_process(global, args).await.unwrap_or_else(Failure::report)
}

async fn exec_process(global: &GlobalArgs, args: &ExecArgs) -> Result<u8, Failure> {
    let config = args
        .config(&ThisProcess)
        .map_err(|err| Failure::flag("exec", "[OPTIONS] CONTAINER COMMAND [ARG...]", &err))?;
    let detach_keys = DetachKeys::parse(args.detach_keys.as_deref());
    let fail = |err: ClientError| Failure::plain(&err.into(), 1);
    let client = crate::connect(global).await.map_err(|err| Failure::plain(&err, 1))?;
    // As docker: a missing container is reported before the tty check, and
    // the tty is checked before an exec instance is made.
    client.container_inspect(args.container()).await.map_err(fail)?;
    if !args.detach && config.attach_stdin && config.tty && !std::io::stdin().is_terminal() {
        return Err(Failure::text("the input device is not a TTY", 1));
    }
    let created = client.exec_create(args.container(), &config).await.map_err(fail)?;
    if created.id.is_empty() {
        return Err(Failure::text("exec ID empty", 1));
    }
    let start =
        ExecStartConfig { detach: args.detach, tty: config.tty, console_size: config.console_size };
    let attached = match client.exec_start(&created.id, &start).await {
        Ok(Some(attached)) => attached,
        Ok(None) => return Ok(0),
        Err(err) => return Err(start_failure(&client, &created.id, err).await),
    };
    let session = Session {
        stdin: config.attach_stdin,
        stdout: config.attach_stdout,
        stderr: config.attach_stderr,
        tty: config.tty,
        detach_keys,
        sig_proxy: false,
    };
    let raw = session.raw_mode().map_err(|err| Failure::plain(&err.into(), 1))?;
    let ended = session.relay(&client, attached, &TtyTarget::Exec(created.id.clone())).await;
    drop(raw);
    match ended.map_err(|err| Failure::plain(&err, 1))? {
        // docker-compat: `docker exec` reports the detach as an error.
        Ended::Detached => Err(Failure::text("read escape sequence", 1)),
        Ended::OutputGone => Ok(141),
        Ended::Closed => exec_exit_code(&client, &created.id).await,
    }
}

/// A refused start, reported with the exit code the exec got when it has
/// one (127: the command is not there, 126: it cannot be executed), as
/// docker exits with it; else 1.
async fn start_failure(client: &Client, exec_id: &str, err: ClientError) -> Failure {
    let code = match client.exec_inspect(exec_id).await {
        Ok(inspect) if !inspect.running => inspect.exit_code.filter(|c| *c != 0),
        _ => None,
    };
    Failure::plain(&err.into(), code.map_or(1, exit_status))
}

/// The exec's exit code once it has one: the output can end a moment
/// before the daemon records the exit.
async fn exec_exit_code(client: &Client, exec_id: &str) -> Result<u8, Failure> {
    for attempt in 0..50 {
        match client.exec_inspect(exec_id).await {
            Ok(inspect) => {
                if let (false, Some(code)) = (inspect.running, inspect.exit_code) {
                    return Ok(exit_status(code));
                }
            }
            Err(err) if err.is_connect() => return Ok(exit_status(-1)),
            Err(err) => return Err(Failure::plain(&err.into(), 1)),
        }
        tokio::time::sleep(Duration::from_millis(if attempt < 10 { 10 } else { 100 })).await;
    }
    Ok(exit_status(-1))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    #[command(no_binary_name = true)]
    struct Cli {
        #[command(flatten)]
        args: ExecArgs,
    }

    struct FakeLocal {
        files: BTreeMap<PathBuf, Vec<u8>>,
    }

    impl Local for FakeLocal {
        fn var(&self, name: &str) -> Option<String> {
            (name == "HOME").then(|| "/home/me".to_owned())
        }

        fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            self.files.get(path).cloned().ok_or_else(|| std::io::ErrorKind::NotFound.into())
        }

        fn current_dir(&self) -> Option<PathBuf> {
            None
        }

        fn console_size(&self) -> Option<[u32; 2]> {
            Some([40, 120])
        }
    }

    fn exec_config(line: &str) -> Result<ExecConfig, FlagError> {
        let cli = Cli::try_parse_from(line.split_whitespace()).expect("parses");
        let files = BTreeMap::from([(PathBuf::from("/e"), b"A=1\n# no\nHOME\n".to_vec())]);
        cli.args.config(&FakeLocal { files })
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn an_exec_attaches_output_and_stdin_with_i() {
        let config = exec_config("web ls -l").expect("config");
        assert!(config.attach_stdout && config.attach_stderr && !config.attach_stdin);
        assert_eq!(config.cmd, Some(strings(&["ls", "-l"])));
        assert_eq!((config.tty, config.console_size), (false, None));
        let config = exec_config("-it web sh").expect("config");
        assert!(config.attach_stdin && config.tty);
        assert_eq!(config.console_size, Some([40, 120]));
    }

    #[test]
    fn a_detached_exec_attaches_nothing() {
        let config = exec_config("-d -i web sleep 10").expect("config");
        assert!(!config.attach_stdin && !config.attach_stdout && !config.attach_stderr);
    }

    #[test]
    fn exec_options_land_in_the_config() {
        let config = exec_config(
            "--env-file /e -e B=2 -e HOME -e UNSET -u 1000 -w /srv --privileged \
             --detach-keys ctrl-x web env",
        )
        .expect("config");
        assert_eq!(config.env, Some(strings(&["A=1", "HOME=/home/me", "B=2", "HOME=/home/me"])));
        assert_eq!((config.user.as_str(), config.working_dir.as_str()), ("1000", "/srv"));
        assert!(config.privileged);
        assert_eq!(config.detach_keys, "ctrl-x");
    }

    #[test]
    fn the_command_keeps_its_own_flags() {
        let config = exec_config("web sh -c -i -t").expect("config");
        assert_eq!(config.cmd, Some(strings(&["sh", "-c", "-i", "-t"])));
        assert!(!config.tty && !config.attach_stdin);
    }

    #[test]
    fn bad_exec_flags_say_what_is_wrong() {
        let err = |line: &str| exec_config(line).expect_err("invalid").to_string();
        assert_eq!(err("--bogus web ls"), "unknown flag: --bogus");
        assert_eq!(
            err("-e =x web ls"),
            "invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x"
        );
        assert_eq!(err("--env-file /nope web ls"), "open /nope: no such file or directory");
        assert!(Cli::try_parse_from(["web"]).is_err(), "a command is required");
    }
}
