//! `kiln image bootstrap`: a base image made from Debian packages by
//! mmdebstrap, reproducibly, for machines that cannot reach Docker Hub.
//!
//! The request is parsed into types at the edge ([`Suite`], [`Variant`],
//! [`Package`], [`Mirror`]), so that nothing the client sends can become an
//! mmdebstrap option. The plan (mmdebstrap's arguments, the image's config
//! and comment) is pure; running mmdebstrap is a thin edge.
//!
//! mmdebstrap writes its tar to stdout, and that stream goes straight into
//! the image import: no copy of the tar on disk. mmdebstrap writes the tar
//! only at its very end, so the import (and its lock on the store) starts
//! when the first byte arrives: a suite or package that does not exist fails
//! before the store is touched. The tar's end is checked against
//! mmdebstrap's exit status before the image is recorded, so a failed run
//! leaves no image and no tag.
//!
//! Reproducible: `SOURCE_DATE_EPOCH` (0 unless the caller says otherwise)
//! makes mmdebstrap's tar byte-identical run after run for the same mirror
//! content, and the image's `created` is that epoch, so the same request
//! gives the same image id. The host's /etc/resolv.conf and /etc/hostname,
//! which mmdebstrap copies in, are removed: they would tie the image to the
//! host that built it, and a container gets its own anyway.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use kiln_types::time::UtcTime;
use kiln_types::{Digest, ErrorKind, HasKind, ImageRef};

use crate::images::{ImageError, Images};

/// `SOURCE_DATE_EPOCH` when the caller gives none: 1970-01-01, the usual
/// "no date" of reproducible builds. Any fixed value would do; this one
/// says plainly that the date carries no meaning.
pub const DEFAULT_SOURCE_DATE_EPOCH: i64 = 0;

/// What the image runs with unless `--change` says otherwise: the PATH and
/// command of Docker's official Debian images.
const DEFAULT_CHANGES: [&str; 2] =
    ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", r#"CMD ["bash"]"#];

/// Lines of mmdebstrap's stderr kept to explain a failure.
const KEPT_LINES: usize = 40;

/// A Debian suite: a code name (`bookworm`) or a symbolic one (`stable`).
/// `debian:bookworm` names it too, as the image it stands in for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite(String);

impl Suite {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Suite {
    type Err = BootstrapError;

    fn from_str(text: &str) -> Result<Suite, BootstrapError> {
        let invalid = |reason| BootstrapError::InvalidSuite { suite: text.to_owned(), reason };
        let name = text.strip_prefix("debian:").unwrap_or(text);
        if name.is_empty() || name.len() > 64 {
            return Err(invalid("a suite name has 1 to 64 characters"));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c))
        {
            return Err(invalid("use a Debian suite such as bookworm, trixie or stable"));
        }
        Ok(Suite(name.to_owned()))
    }
}

/// mmdebstrap's package sets (`--variant`); [`Variant::Minbase`] unless
/// asked: the Essential packages and apt, like Docker's `-slim` images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Variant {
    Extract,
    Custom,
    Essential,
    Apt,
    Required,
    #[default]
    Minbase,
    Buildd,
    Important,
    Debootstrap,
    Standard,
}

impl Variant {
    const ALL: [Variant; 10] = [
        Variant::Extract,
        Variant::Custom,
        Variant::Essential,
        Variant::Apt,
        Variant::Required,
        Variant::Minbase,
        Variant::Buildd,
        Variant::Important,
        Variant::Debootstrap,
        Variant::Standard,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Extract => "extract",
            Variant::Custom => "custom",
            Variant::Essential => "essential",
            Variant::Apt => "apt",
            Variant::Required => "required",
            Variant::Minbase => "minbase",
            Variant::Buildd => "buildd",
            Variant::Important => "important",
            Variant::Debootstrap => "debootstrap",
            Variant::Standard => "standard",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Variant {
    type Err = BootstrapError;

    fn from_str(text: &str) -> Result<Variant, BootstrapError> {
        Variant::ALL
            .into_iter()
            .find(|v| v.as_str() == text)
            .ok_or_else(|| BootstrapError::InvalidVariant { variant: text.to_owned() })
    }
}

/// A package to install: `NAME[:ARCH][=VERSION|/RELEASE]`, as apt takes it.
/// Apt patterns and file paths, which mmdebstrap would also take, are
/// refused: the daemon runs as root and installs what it is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package(String);

impl Package {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Package {
    type Err = BootstrapError;

    fn from_str(text: &str) -> Result<Package, BootstrapError> {
        let invalid = |reason| BootstrapError::InvalidPackage { package: text.to_owned(), reason };
        let (rest, pin) = match text.find(['=', '/']) {
            Some(at) => (&text[..at], Some(&text[at + 1..])),
            None => (text, None),
        };
        let (name, arch) = match rest.split_once(':') {
            Some((name, arch)) => (name, Some(arch)),
            None => (rest, None),
        };
        let is_name_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c);
        if name.len() < 2
            || !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            || !name.chars().all(is_name_char)
        {
            return Err(invalid("a Debian package name is lower-case letters, digits, + - ."));
        }
        if arch.is_some_and(|a| {
            a.is_empty()
                || !a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        }) {
            return Err(invalid("the architecture after ':' is lower-case letters and digits"));
        }
        if pin.is_some_and(|p| {
            p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || "+-.~:".contains(c))
        }) {
            return Err(invalid(
                "a version after '=' or a release after '/' is letters, digits, + - . ~ :",
            ));
        }
        Ok(Package(text.to_owned()))
    }
}

/// A mirror URL (`http://deb.debian.org/debian`); mmdebstrap's default
/// (deb.debian.org with its updates and security suites) when none is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror(String);

impl FromStr for Mirror {
    type Err = BootstrapError;

    fn from_str(text: &str) -> Result<Mirror, BootstrapError> {
        let invalid = |reason| BootstrapError::InvalidMirror { mirror: text.to_owned(), reason };
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(invalid("a mirror is a URL such as http://deb.debian.org/debian"));
        };
        if !["http", "https", "file", "mirror+http", "mirror+https"].contains(&scheme) {
            return Err(invalid("the scheme must be http, https or file"));
        }
        if rest.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("a URL has no spaces"));
        }
        Ok(Mirror(text.to_owned()))
    }
}

/// Parse `SOURCE_DATE_EPOCH` text: seconds since 1970, not negative.
pub fn parse_epoch(text: &str) -> Result<i64, BootstrapError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (0..=253_402_300_799).contains(n))
        .ok_or_else(|| BootstrapError::InvalidEpoch { epoch: text.to_owned() })
}

/// What `kiln image bootstrap` builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapRequest {
    pub suite: Suite,
    pub variant: Variant,
    /// `--include`, installed on top of the variant's set.
    pub packages: Vec<Package>,
    pub mirror: Option<Mirror>,
    /// File times in the tar and the image's `created`.
    pub source_date_epoch: i64,
    /// `--change` instructions, applied after [`DEFAULT_CHANGES`].
    pub changes: Vec<String>,
    /// `repo[:tag]` for the new image.
    pub reference: String,
}

impl BootstrapRequest {
    /// A request for `suite` with the defaults: minbase, no extra
    /// packages, the default mirror and epoch.
    pub fn new(suite: Suite, reference: impl Into<String>) -> BootstrapRequest {
        BootstrapRequest {
            suite,
            variant: Variant::default(),
            packages: Vec::new(),
            mirror: None,
            source_date_epoch: DEFAULT_SOURCE_DATE_EPOCH,
            changes: Vec::new(),
            reference: reference.into(),
        }
    }
}

/// Why a bootstrap failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("invalid suite {suite:?}: {reason}")]
    InvalidSuite { suite: String, reason: &'static str },
    #[error("invalid package {package:?}: {reason}")]
    InvalidPackage { package: String, reason: &'static str },
    #[error("invalid variant {variant:?}: use extract, custom, essential, apt, required, minbase, buildd, important, debootstrap or standard")]
    InvalidVariant { variant: String },
    #[error("invalid mirror {mirror:?}: {reason}")]
    InvalidMirror { mirror: String, reason: &'static str },
    #[error("invalid source date epoch {epoch:?}: give whole seconds since 1970-01-01")]
    InvalidEpoch { epoch: String },
    #[error("a tag for the image is required (-t NAME[:TAG])")]
    NoTag,
    #[error(
        "mmdebstrap is not installed on the daemon's host; install it (apt-get install mmdebstrap)"
    )]
    NoMmdebstrap,
    #[error("cannot run {}", .program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the output of mmdebstrap")]
    Output(#[source] io::Error),
    /// mmdebstrap failed; `message` is the line of its output that says why.
    #[error("cannot bootstrap {suite}: {message}")]
    Failed { suite: Suite, message: String, kind: ErrorKind },
    #[error("mmdebstrap wrote no root filesystem for {suite}")]
    NoOutput { suite: Suite },
    #[error("bootstrap of {suite} stopped: the client went away")]
    Cancelled { suite: Suite },
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl HasKind for BootstrapError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidSuite { .. }
            | Self::InvalidPackage { .. }
            | Self::InvalidVariant { .. }
            | Self::InvalidMirror { .. }
            | Self::InvalidEpoch { .. }
            | Self::NoTag => ErrorKind::InvalidArgument,
            Self::NoMmdebstrap => ErrorKind::Unsupported,
            Self::Failed { kind, .. } => *kind,
            Self::Spawn { .. }
            | Self::Output(_)
            | Self::NoOutput { .. }
            | Self::Cancelled { .. } => ErrorKind::Internal,
            Self::Image(e) => e.kind(),
        }
    }
}

/// mmdebstrap's command line for `request`, after the program name.
pub fn mmdebstrap_args(request: &BootstrapRequest) -> Vec<String> {
    let mut args = vec![format!("--variant={}", request.variant), "--format=tar".to_owned()];
    if !request.packages.is_empty() {
        let names: Vec<&str> = request.packages.iter().map(Package::as_str).collect();
        args.push(format!("--include={}", names.join(",")));
    }
    args.push(r#"--customize-hook=rm -f "$1/etc/resolv.conf" "$1/etc/hostname""#.to_owned());
    // Everything after `--` is an argument, never an option.
    args.extend(["--".to_owned(), request.suite.0.clone(), "-".to_owned()]);
    if let Some(mirror) = &request.mirror {
        args.push(mirror.0.clone());
    }
    args
}

/// The image's import options, checked: a tag that is a valid reference,
/// `created` at the epoch, the default config then the caller's changes,
/// and a comment naming the package set (not the mirror: the same
/// packages from another mirror are the same image).
fn prepare(request: &BootstrapRequest) -> Result<kiln_image::ImportOptions, BootstrapError> {
    if request.reference.is_empty() {
        return Err(BootstrapError::NoTag);
    }
    let reference: ImageRef = request.reference.parse().map_err(|source| {
        ImageError::InvalidReference { reference: request.reference.clone(), source }
    })?;
    if reference.digest().is_some() {
        return Err(ImageError::TagWithDigest.into());
    }
    let mut changes: Vec<String> = DEFAULT_CHANGES.iter().map(|c| (*c).to_owned()).collect();
    changes.extend(request.changes.iter().cloned());
    let mut check = kiln_image::ContainerConfig::default();
    for change in &changes {
        kiln_image::apply_change(&mut check, change)
            .map_err(|e| ImageError::Import(kiln_image::ImportError::Change(e)))?;
    }
    let mut comment = format!("mmdebstrap --variant={}", request.variant);
    if !request.packages.is_empty() {
        let names: Vec<&str> = request.packages.iter().map(Package::as_str).collect();
        comment.push_str(&format!(" --include={}", names.join(",")));
    }
    comment.push_str(&format!(" {}", request.suite));
    Ok(kiln_image::ImportOptions {
        reference: Some(reference.normalized()),
        changes,
        message: Some(comment),
        platform: None,
        created: Some(UtcTime::from_unix(request.source_date_epoch).rfc3339()),
    })
}

/// The line of mmdebstrap's output that says why it failed, and whether
/// that is the request's fault (a suite or package apt cannot find) or a
/// fault of the host or network. mmdebstrap ends with `E:` lines that wrap
/// the failed command (`apt download failed: E: apt-get … failed`,
/// `mmdebstrap failed to run`); the last `E:` line before them is apt's
/// own reason.
fn explain_failure(lines: &[String], status: ExitStatus) -> (String, ErrorKind) {
    let is_generic = |m: &str| {
        m.ends_with(" failed") || m.ends_with(" failed to run") || m.contains(" failed: ")
    };
    let errors: Vec<&str> =
        lines.iter().filter_map(|l| l.trim().strip_prefix("E: ")).map(str::trim).collect();
    let message = errors
        .iter()
        .rev()
        .find(|m| !is_generic(m))
        .or_else(|| errors.last())
        .map(|m| (*m).to_owned())
        .or_else(|| lines.iter().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_owned()))
        .unwrap_or_else(|| format!("mmdebstrap failed ({status})"));
    let not_found = [
        "Unable to locate package",
        "has no installation candidate",
        "does not have a Release file",
        "Couldn't find any package",
        "Version '",
        "Release '",
        "Unable to correct problems",
    ];
    let kind = if not_found.iter().any(|p| message.contains(p)) {
        ErrorKind::InvalidArgument
    } else {
        ErrorKind::Internal
    };
    (message, kind)
}

/// `name` on the daemon's PATH.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// mmdebstrap's stdout, read by the import. At its end the child is
/// reaped, and a failed exit is a read error, so the import never records
/// an image from a tar that mmdebstrap did not finish.
struct TarStream<'a> {
    stdout: BufReader<ChildStdout>,
    child: &'a mut Child,
    status: Option<ExitStatus>,
}

impl Read for TarStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stdout.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        let status = match self.status {
            Some(status) => status,
            None => *self.status.insert(self.child.wait()?),
        };
        if status.success() {
            Ok(0)
        } else {
            Err(io::Error::other(format!("mmdebstrap failed ({status})")))
        }
    }
}

impl Images {
    /// `kiln image bootstrap`: run mmdebstrap for `request` and import its
    /// tar as a one-layer image, tagged. `progress` gets each line mmdebstrap
    /// prints, from another thread; when it returns false (the client went
    /// away) mmdebstrap is stopped.
    pub fn bootstrap(
        &self,
        request: &BootstrapRequest,
        progress: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Digest, BootstrapError> {
        // The request's own faults first: a bad tag is a 400 wherever
        // mmdebstrap is missing.
        let options = prepare(request)?;
        let program = find_program("mmdebstrap").ok_or(BootstrapError::NoMmdebstrap)?;
        self.run_mmdebstrap(&program, request, &options, progress)
    }

    /// [`Images::bootstrap`] with a given mmdebstrap (tests use a fake one).
    #[cfg(test)]
    fn bootstrap_with(
        &self,
        program: &Path,
        request: &BootstrapRequest,
        progress: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Digest, BootstrapError> {
        let options = prepare(request)?;
        self.run_mmdebstrap(program, request, &options, progress)
    }

    fn run_mmdebstrap(
        &self,
        program: &Path,
        request: &BootstrapRequest,
        options: &kiln_image::ImportOptions,
        progress: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Digest, BootstrapError> {
        let suite = &request.suite;

        let mut child = Command::new(program)
            .args(mmdebstrap_args(request))
            .env("SOURCE_DATE_EPOCH", request.source_date_epoch.to_string())
            // apt's messages in English, which explain_failure reads.
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| BootstrapError::Spawn { program: program.to_owned(), source })?;
        let pid = child.id();
        tracing::info!(suite = %suite, variant = %request.variant, pid, "bootstrap started");
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            stop(&mut child);
            return Err(BootstrapError::Output(io::Error::other("no pipes to mmdebstrap")));
        };
        let cancelled = &AtomicBool::new(false);

        let (outcome, lines) = std::thread::scope(|scope| {
            let reader = scope.spawn(move || {
                let mut kept = VecDeque::with_capacity(KEPT_LINES);
                for line in BufReader::new(stderr).split(b'\n') {
                    let Ok(line) = line else { break };
                    let line = String::from_utf8_lossy(&line).trim_end().to_owned();
                    if !cancelled.load(Ordering::Relaxed) && !progress(&line) {
                        cancelled.store(true, Ordering::Relaxed);
                        terminate(pid);
                    }
                    if kept.len() == KEPT_LINES {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
                Vec::from(kept)
            });
            let outcome = self.import_tar(stdout, &mut child, options, suite);
            (outcome, reader.join().unwrap_or_default())
        });
        // Reaped already unless the import failed first; then mmdebstrap
        // stops on its closed pipe.
        let _ = child.wait();
        match outcome {
            TarOutcome::Imported(id) => {
                tracing::info!(suite = %suite, image = %id, "bootstrap done");
                Ok(id)
            }
            _ if cancelled.load(Ordering::Relaxed) => {
                Err(BootstrapError::Cancelled { suite: suite.clone() })
            }
            TarOutcome::ToolFailed(status) => {
                let (message, kind) = explain_failure(&lines, status);
                tracing::warn!(suite = %suite, %status, message = %message, "bootstrap failed");
                Err(BootstrapError::Failed { suite: suite.clone(), message, kind })
            }
            TarOutcome::Error(err) => Err(err),
        }
    }

    /// Wait for the tar to start, then import it. mmdebstrap is reaped by
    /// the time this returns, unless the import failed on its own (a full
    /// disk); then its pipe closes here and it stops.
    fn import_tar(
        &self,
        stdout: ChildStdout,
        child: &mut Child,
        options: &kiln_image::ImportOptions,
        suite: &Suite,
    ) -> TarOutcome {
        let mut stdout = BufReader::with_capacity(1 << 20, stdout);
        match stdout.fill_buf() {
            Ok([]) => {
                return match child.wait() {
                    Ok(status) if status.success() => {
                        TarOutcome::Error(BootstrapError::NoOutput { suite: suite.clone() })
                    }
                    Ok(status) => TarOutcome::ToolFailed(status),
                    Err(err) => TarOutcome::Error(BootstrapError::Output(err)),
                }
            }
            Ok(_) => {}
            Err(err) => return TarOutcome::Error(BootstrapError::Output(err)),
        }
        let mut tar = TarStream { stdout, child, status: None };
        match (self.import_rootfs(&mut tar, options), tar.status) {
            (Ok(id), _) => TarOutcome::Imported(id),
            (Err(_), Some(status)) if !status.success() => TarOutcome::ToolFailed(status),
            (Err(err), _) => TarOutcome::Error(err.into()),
        }
    }
}

/// How the import of mmdebstrap's tar ended.
enum TarOutcome {
    Imported(Digest),
    /// mmdebstrap exited with this failure; its output says why.
    ToolFailed(ExitStatus),
    Error(BootstrapError),
}

/// Ask mmdebstrap to stop: SIGTERM, never SIGKILL, which would leave its
/// chroot's /proc, /sys and /dev mounted under its temp dir.
fn terminate(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

fn stop(child: &mut Child) {
    terminate(child.id());
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::Mutex;

    use super::*;
    use crate::{Config, Engine, ImageFilter};

    #[test]
    fn suites_packages_and_mirrors_are_checked_before_anything_runs() {
        assert_eq!("debian:bookworm".parse::<Suite>().expect("suite").as_str(), "bookworm");
        assert_eq!("trixie".parse::<Suite>().expect("suite").as_str(), "trixie");
        for bad in ["", "debian:", "Bookworm", "-x", "book worm", "a/b", "--include=x"] {
            let err = bad.parse::<Suite>().expect_err(bad);
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
        for good in ["python3", "python3-pip", "libc6:amd64", "g++", "curl=7.88.1-10+deb12u5"] {
            assert_eq!(good.parse::<Package>().expect(good).as_str(), good);
        }
        for bad in ["", "x", "Python3", "-o", "?essential", "./local.deb", "a,b", "a b", "a=", "a:"]
        {
            assert!(bad.parse::<Package>().is_err(), "{bad} should be refused");
        }
        assert_eq!("buildd".parse::<Variant>().expect("variant"), Variant::Buildd);
        let err = "tiny".parse::<Variant>().expect_err("unknown variant");
        assert!(err.to_string().contains("minbase"), "{err}");
        assert!("http://deb.debian.org/debian".parse::<Mirror>().is_ok());
        for bad in ["deb.debian.org", "ftp://x", "http://", "http://a b", "deb http://x bookworm"] {
            assert!(bad.parse::<Mirror>().is_err(), "{bad} should be refused");
        }
        assert_eq!(parse_epoch("1700000000").expect("epoch"), 1_700_000_000);
        assert!(parse_epoch("-1").is_err() && parse_epoch("soon").is_err());
    }

    #[test]
    fn the_plan_puts_the_suite_after_a_double_dash() {
        let mut request = BootstrapRequest::new("bookworm".parse().expect("suite"), "py:1");
        request.packages = vec!["python3".parse().expect("p"), "python3-pip".parse().expect("p")];
        assert_eq!(
            mmdebstrap_args(&request),
            [
                "--variant=minbase",
                "--format=tar",
                "--include=python3,python3-pip",
                r#"--customize-hook=rm -f "$1/etc/resolv.conf" "$1/etc/hostname""#,
                "--",
                "bookworm",
                "-",
            ]
        );
        request.mirror = Some("http://mirror.example/debian".parse().expect("mirror"));
        request.variant = Variant::Apt;
        request.packages.clear();
        let args = mmdebstrap_args(&request);
        assert_eq!(args[0], "--variant=apt");
        assert_eq!(args[args.len() - 3..], ["bookworm", "-", "http://mirror.example/debian"]);
    }

    #[test]
    fn the_config_is_dated_at_the_epoch_and_changes_come_after_the_defaults() {
        let mut request = BootstrapRequest::new("bookworm".parse().expect("suite"), "py:1");
        request.source_date_epoch = 86_400;
        request.changes = vec![r#"CMD ["python3"]"#.into()];
        let options = prepare(&request).expect("options");
        assert_eq!(options.created.as_deref(), Some("1970-01-02T00:00:00Z"));
        assert_eq!(options.changes.last().map(String::as_str), Some(r#"CMD ["python3"]"#));
        assert_eq!(options.message.as_deref(), Some("mmdebstrap --variant=minbase bookworm"));
        request.changes = vec!["FROB x".into()];
        let err = prepare(&request).expect_err("bad change");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    fn failed() -> ExitStatus {
        std::os::unix::process::ExitStatusExt::from_raw(25 << 8)
    }

    #[test]
    fn failures_are_explained_by_apts_own_line() {
        let missing_package = lines(
            "I: installing remaining packages inside the chroot...\n\
             E: Unable to locate package nosuch\n\
             E: setup failed: E: apt-get --yes install nosuch failed\n\
             E: apt download failed: E: apt-get --yes install nosuch failed\n\
             I: removing tempdir /tmp/mmdebstrap.x...\n\
             E: mmdebstrap failed to run",
        );
        assert_eq!(
            explain_failure(&missing_package, failed()),
            ("Unable to locate package nosuch".to_owned(), ErrorKind::InvalidArgument)
        );
        let missing_suite = lines(
            "Err:2 http://deb.debian.org/debian nosuite Release\n\
             E: The repository 'http://deb.debian.org/debian nosuite Release' does not have a Release file.\n\
             E: apt-get update --error-on=any -oAPT::Status-Fd=<$fd> failed\n\
             E: mmdebstrap failed to run",
        );
        let (message, kind) = explain_failure(&missing_suite, failed());
        assert!(message.ends_with("does not have a Release file."), "{message}");
        assert_eq!(kind, ErrorKind::InvalidArgument);
        let network = lines(
            "E: Failed to fetch http://x/y  Could not resolve 'x'\nE: mmdebstrap failed to run",
        );
        assert_eq!(explain_failure(&network, failed()).1, ErrorKind::Internal);
        assert_eq!(explain_failure(&lines("boom\n"), failed()).0, "boom");
        assert!(explain_failure(&[], failed()).0.starts_with("mmdebstrap failed"));
    }

    /// A stand-in for mmdebstrap: prints progress, then a tar of `rootfs`
    /// (or fails like apt) and records its arguments and environment.
    fn fake_mmdebstrap(dir: &Path, rootfs: &Path, fail: bool) -> PathBuf {
        let script = dir.join(if fail { "mmdebstrap-fails" } else { "mmdebstrap" });
        let body = if fail {
            "echo 'I: running apt-get update...' >&2\n\
             echo 'E: Unable to locate package nosuch' >&2\n\
             echo 'E: mmdebstrap failed to run' >&2\n\
             exit 25\n"
                .to_owned()
        } else {
            format!(
                "echo \"$SOURCE_DATE_EPOCH $*\" > {log}\n\
                 echo 'I: creating tarball...' >&2\n\
                 tar --sort=name --mtime=@$SOURCE_DATE_EPOCH --owner=0 --group=0 -C {rootfs} -cf - .\n",
                log = dir.join("args").display(),
                rootfs = rootfs.display(),
            )
        };
        std::fs::write(&script, format!("#!/bin/sh\n{body}")).expect("write script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        script
    }

    #[test]
    fn a_bootstrap_streams_the_tar_into_a_tagged_image_with_a_fixed_id() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).expect("mkdir");
        std::fs::write(rootfs.join("etc/debian_version"), "12.10\n").expect("write");
        let program = fake_mmdebstrap(dir.path(), &rootfs, false);
        let engine = Engine::open(Config::new(dir.path().join("root"), dir.path().join("run")))
            .expect("open");
        let mut request =
            BootstrapRequest::new("debian:bookworm".parse().expect("suite"), "base:12");
        request.packages = vec!["python3".parse().expect("package")];
        let seen = Mutex::new(Vec::new());
        let progress = |line: &str| {
            seen.lock().expect("lock").push(line.to_owned());
            true
        };
        let id = engine.images().bootstrap_with(&program, &request, &progress).expect("bootstrap");
        assert_eq!(seen.lock().expect("lock").as_slice(), ["I: creating tarball..."]);
        let args = std::fs::read_to_string(dir.path().join("args")).expect("args");
        assert!(args.starts_with("0 --variant=minbase --format=tar --include=python3 "), "{args}");
        assert!(args.trim_end().ends_with("-- bookworm -"), "{args}");

        let details = engine.images().inspect("base:12").expect("tagged");
        assert_eq!(details.id, id);
        assert_eq!(details.config.created.as_deref(), Some("1970-01-01T00:00:00Z"));
        let config = details.config.config.expect("config");
        assert_eq!(config.cmd, Some(vec!["bash".to_owned()]));
        assert!(config.env.iter().any(|e| e.starts_with("PATH=/usr/local/sbin:")), "{config:?}");
        assert_eq!(details.comment, "mmdebstrap --variant=minbase --include=python3 bookworm");

        // The same request again: the same image, not a second one.
        let again = engine.images().bootstrap_with(&program, &request, &|_| true).expect("again");
        assert_eq!(again, id);
        assert_eq!(engine.images().list(&ImageFilter::default()).expect("list").len(), 1);
    }

    #[test]
    fn a_failed_mmdebstrap_leaves_no_image_tag_or_blob() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let program = fake_mmdebstrap(dir.path(), dir.path(), true);
        let engine = Engine::open(Config::new(dir.path().join("root"), dir.path().join("run")))
            .expect("open");
        let request = BootstrapRequest::new("bookworm".parse().expect("suite"), "base:12");
        let err = engine.images().bootstrap_with(&program, &request, &|_| true).expect_err("fails");
        assert_eq!(err.to_string(), "cannot bootstrap bookworm: Unable to locate package nosuch");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(engine.images().list(&ImageFilter::default()).expect("list").is_empty());
        let blobs = std::fs::read_dir(dir.path().join("root/content/blobs/sha256")).expect("blobs");
        assert_eq!(blobs.count(), 0);

        let mut bad = request.clone();
        bad.reference = "UPPER/case".into();
        let err = engine.images().bootstrap_with(&program, &bad, &|_| true).expect_err("ref");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        bad.reference = String::new();
        let err = engine.images().bootstrap_with(&program, &bad, &|_| true).expect_err("no tag");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn a_client_that_goes_away_stops_mmdebstrap_with_sigterm() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let script = dir.path().join("mmdebstrap-slow");
        let stopped = dir.path().join("stopped");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n\
                 sleep 30 & s=$!\n\
                 trap 'kill $s; echo TERM > {}; exit 143' TERM\n\
                 echo 'I: running apt-get update...' >&2\n\
                 wait $s\n",
                stopped.display()
            ),
        )
        .expect("write script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let engine = Engine::open(Config::new(dir.path().join("root"), dir.path().join("run")))
            .expect("open");
        let request = BootstrapRequest::new("bookworm".parse().expect("suite"), "base:12");
        let started = std::time::Instant::now();
        let err = engine.images().bootstrap_with(&script, &request, &|_| false).expect_err("gone");
        assert!(matches!(err, BootstrapError::Cancelled { .. }), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "stopped at once");
        assert_eq!(std::fs::read_to_string(&stopped).expect("trap ran").trim(), "TERM");
        assert!(engine.images().list(&ImageFilter::default()).expect("list").is_empty());
    }
}
