//! The shim's command line: what the daemon passes to `kiln shim`.

use std::ffi::OsString;
use std::path::PathBuf;

/// `kiln shim --id ID --bundle DIR --state-dir DIR --runtime-root DIR
/// --log-path FILE [--tty] [--open-stdin] [--stdin-once]`
#[derive(Debug, Clone, PartialEq, Eq, clap::Parser)]
#[command(name = "kiln shim", about = "Kiln's per-container supervisor (started by the daemon)")]
pub struct ShimArgs {
    /// Container id (also its id in the runtime)
    #[arg(long, value_name = "ID")]
    pub id: String,
    /// The container's OCI bundle (config.json, rootfs, kiln-rootfs.json)
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// Where the shim keeps its socket, pid file, exit record and own log
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// The runtime's state root
    #[arg(long, value_name = "DIR")]
    pub runtime_root: PathBuf,
    /// The container's log (json-file format)
    #[arg(long, value_name = "FILE")]
    pub log_path: PathBuf,
    /// Give the container a pseudo-terminal (config.json has process.terminal)
    #[arg(long)]
    pub tty: bool,
    /// Keep the container's stdin open for attach clients
    #[arg(long)]
    pub open_stdin: bool,
    /// Close the container's stdin when the first attach client closes its own
    #[arg(long)]
    pub stdin_once: bool,
}

impl ShimArgs {
    /// The arguments after `kiln shim` that give these options back.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::with_capacity(13);
        let mut pair = |flag: &str, value: &std::path::Path| {
            args.push(flag.into());
            args.push(value.into());
        };
        pair("--id", self.id.as_ref());
        pair("--bundle", &self.bundle);
        pair("--state-dir", &self.state_dir);
        pair("--runtime-root", &self.runtime_root);
        pair("--log-path", &self.log_path);
        for (set, flag) in [
            (self.tty, "--tty"),
            (self.open_stdin, "--open-stdin"),
            (self.stdin_once, "--stdin-once"),
        ] {
            if set {
                args.push(flag.into());
            }
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn to_args_parses_back_to_the_same_options() {
        let args = ShimArgs {
            id: "c1".into(),
            bundle: "/var/lib/kiln/containers/c1".into(),
            state_dir: "/run/kiln/containers/c1".into(),
            runtime_root: "/run/kiln/runtime".into(),
            log_path: "/var/lib/kiln/containers/c1/c1-json.log".into(),
            tty: true,
            open_stdin: false,
            stdin_once: true,
        };
        let argv = std::iter::once(OsString::from("kiln shim")).chain(args.to_args());
        assert_eq!(ShimArgs::parse_from(argv), args);
    }

    #[test]
    fn every_path_is_required() {
        let argv = ["kiln shim", "--id", "c1", "--bundle", "/b"];
        assert!(ShimArgs::try_parse_from(argv).is_err());
    }
}
