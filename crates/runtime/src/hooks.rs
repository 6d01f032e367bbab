//! OCI hooks: programs run at points of the lifecycle with the container's
//! state JSON on their stdin, each within its timeout.

use std::io::Write as _;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::spec::Hook;

/// Runs hooks in order; the first failure stops the rest.
pub(crate) fn run_hooks(hooks: &[Hook], state_json: &str) -> Result<(), (Hook, String)> {
    for hook in hooks {
        run_hook(hook, state_json).map_err(|why| (hook.clone(), why))?;
    }
    Ok(())
}

fn run_hook(hook: &Hook, state_json: &str) -> Result<(), String> {
    let mut cmd = Command::new(&hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    // Its own process group, so that a timeout kills what the hook started
    // too: a leftover child would hold our stdout and stderr open.
    cmd.process_group(0);
    for kv in &hook.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = hook
        .timeout
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t.unsigned_abs()));
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return if status.success() {
                Ok(())
            } else {
                Err(match status.code() {
                    Some(code) => format!("exit status {code}"),
                    None => format!("killed by {status}"),
                })
            };
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            if let Ok(pgid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", hook.timeout.unwrap_or_default()));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
