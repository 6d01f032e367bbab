//! The instructions of a Dockerfile as typed values.
//!
//! Arguments are kept as written: quotes, escapes and `$VAR` references
//! are still in them, because Docker removes quotes and expands variables
//! in one pass with the environment of the step (see [`crate::expand_word`]
//! and [`Keyword::expands_variables`]). Exec-form arrays are the exception:
//! JSON has already decided what each element is.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use crate::heredoc::Heredoc;
use crate::mount::Mount;

/// Where an instruction is in the Dockerfile text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    /// The line the instruction starts on, counted from 1.
    pub start_line: usize,
    /// Its last line: continuation lines and heredoc bodies included.
    pub end_line: usize,
    /// Its bytes in the text given to [`crate::parse`], from the keyword to
    /// the end of the last line (newline excluded).
    pub bytes: Range<usize>,
}

/// One instruction and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub span: Span,
    /// The instruction as one line: continuations joined, comment lines
    /// inside it dropped, heredoc bodies not included. This is what Docker
    /// shows in `created_by` and in error messages.
    pub original: String,
    pub kind: InstructionKind,
}

impl Instruction {
    /// The instruction's keyword.
    pub fn keyword(&self) -> Keyword {
        self.kind.keyword()
    }
}

/// An instruction inside a stage, one variant per Dockerfile instruction
/// (`FROM` starts a [`crate::Stage`] instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    Add(Add),
    /// `ARG name[=default] ...`.
    Arg(Vec<ArgDecl>),
    Cmd(Command),
    Copy(Copy),
    Entrypoint(Command),
    /// `ENV a=b c="d e"` or the legacy `ENV a b c` (one pair, value `b c`).
    Env(Vec<KeyValue>),
    /// Ports as written (`80/tcp`, `$PORT`); expanded with [`crate::expand_words`].
    Expose(Vec<String>),
    Healthcheck(Healthcheck),
    /// `LABEL k=v ...` or the legacy `LABEL k v`.
    Label(Vec<KeyValue>),
    /// `MAINTAINER name`: deprecated, kept so the builder can turn it into
    /// the `maintainer` label as Docker does.
    Maintainer(String),
    Onbuild(Onbuild),
    Run(Run),
    /// `SHELL ["executable", "args"...]`: exec form only.
    Shell(Vec<String>),
    /// `STOPSIGNAL` as written (`SIGTERM`, `9`, `$SIG`).
    Stopsignal(String),
    /// `USER user[:group]` as written.
    User(String),
    /// Paths as written, from either the JSON or the space-separated form.
    Volume(Vec<String>),
    /// `WORKDIR` path as written.
    Workdir(String),
}

impl InstructionKind {
    /// The keyword of this instruction.
    pub fn keyword(&self) -> Keyword {
        match self {
            Self::Add(_) => Keyword::Add,
            Self::Arg(_) => Keyword::Arg,
            Self::Cmd(_) => Keyword::Cmd,
            Self::Copy(_) => Keyword::Copy,
            Self::Entrypoint(_) => Keyword::Entrypoint,
            Self::Env(_) => Keyword::Env,
            Self::Expose(_) => Keyword::Expose,
            Self::Healthcheck(_) => Keyword::Healthcheck,
            Self::Label(_) => Keyword::Label,
            Self::Maintainer(_) => Keyword::Maintainer,
            Self::Onbuild(_) => Keyword::Onbuild,
            Self::Run(_) => Keyword::Run,
            Self::Shell(_) => Keyword::Shell,
            Self::Stopsignal(_) => Keyword::Stopsignal,
            Self::User(_) => Keyword::User,
            Self::Volume(_) => Keyword::Volume,
            Self::Workdir(_) => Keyword::Workdir,
        }
    }
}

/// The instruction names Docker knows, case-insensitive in a Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Keyword {
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
}

impl Keyword {
    /// Every keyword, in alphabetical order.
    pub const ALL: [Keyword; 18] = [
        Self::Add,
        Self::Arg,
        Self::Cmd,
        Self::Copy,
        Self::Entrypoint,
        Self::Env,
        Self::Expose,
        Self::From,
        Self::Healthcheck,
        Self::Label,
        Self::Maintainer,
        Self::Onbuild,
        Self::Run,
        Self::Shell,
        Self::Stopsignal,
        Self::User,
        Self::Volume,
        Self::Workdir,
    ];

    /// The keyword in upper case, as Docker prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Arg => "ARG",
            Self::Cmd => "CMD",
            Self::Copy => "COPY",
            Self::Entrypoint => "ENTRYPOINT",
            Self::Env => "ENV",
            Self::Expose => "EXPOSE",
            Self::From => "FROM",
            Self::Healthcheck => "HEALTHCHECK",
            Self::Label => "LABEL",
            Self::Maintainer => "MAINTAINER",
            Self::Onbuild => "ONBUILD",
            Self::Run => "RUN",
            Self::Shell => "SHELL",
            Self::Stopsignal => "STOPSIGNAL",
            Self::User => "USER",
            Self::Volume => "VOLUME",
            Self::Workdir => "WORKDIR",
        }
    }

    /// The keyword for a name in any case (`run`, `Run`, `RUN`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether Docker expands `$VAR` (and removes quotes) in this
    /// instruction's arguments before running it: ADD, ARG, COPY, ENV,
    /// EXPOSE, FROM (with global args only), LABEL, STOPSIGNAL, USER,
    /// VOLUME and WORKDIR.
    ///
    /// Not in RUN, CMD, ENTRYPOINT, HEALTHCHECK or SHELL, whose shell form
    /// goes to the shell as written, nor in ONBUILD, whose trigger is
    /// expanded when it runs in a child build. Flag values (`--from`,
    /// `--chown`, `--chmod`, `--platform`, `--checksum`, `--mount`) are
    /// expanded in every instruction that has them.
    pub fn expands_variables(self) -> bool {
        matches!(
            self,
            Self::Add
                | Self::Arg
                | Self::Copy
                | Self::Env
                | Self::Expose
                | Self::From
                | Self::Label
                | Self::Stopsignal
                | Self::User
                | Self::Volume
                | Self::Workdir
        )
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command in exec form (JSON array) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `["executable", "arg"]`: run as is, no shell.
    Exec(Vec<String>),
    /// Anything else: passed to the stage's `SHELL` as one string, as
    /// written. Empty when the instruction had no arguments (`CMD`).
    Shell(String),
}

/// `ENV` or `LABEL` pair, both sides as written (quotes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// One name of an `ARG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// The default after `=`, as written; `None` for a bare `ARG name`.
    pub default: Option<String>,
}

/// `RUN [flags] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command, without the flags. With heredocs, the shell form keeps
    /// the `<<EOF` words; see [`Run::heredocs`].
    pub command: Command,
    /// `--mount=...`, in order.
    pub mounts: Vec<Mount>,
    /// `--network=`.
    pub network: Option<NetworkMode>,
    /// `--security=`.
    pub security: Option<Security>,
    /// Heredocs the command opens, in order.
    pub heredocs: Vec<Heredoc>,
}

impl Run {
    /// For a shell-form `RUN` with heredocs whose command is more than a
    /// single `<<EOF` (such as `python3 <<EOF`): the script a POSIX shell
    /// runs, the command line followed by each body and its delimiter.
    /// `None` when there are no heredocs or the command is exec form.
    ///
    /// A command that is only `<<EOF` is different in Docker: the body is
    /// the script itself (a `#!` line picks its interpreter); the builder
    /// handles that case from [`Run::heredocs`].
    pub fn shell_script(&self) -> Option<String> {
        let Command::Shell(line) = &self.command else { return None };
        if self.heredocs.is_empty() {
            return None;
        }
        let mut script = line.clone();
        script.push('\n');
        for h in &self.heredocs {
            script.push_str(&h.content());
            script.push_str(&h.name);
            script.push('\n');
        }
        Some(script)
    }
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkMode {
    /// The builder's default network.
    Default,
    /// No network: only loopback.
    None,
    /// The host's network (an entitlement the builder must grant).
    Host,
}

/// `RUN --security=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Security {
    /// The normal confinement.
    Sandbox,
    /// Privileged (an entitlement the builder must grant).
    Insecure,
}

/// A source of `COPY` or `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path, glob or (ADD) URL, as written.
    Path(String),
    /// `<<NAME`: a file named `NAME` with the heredoc's content.
    Heredoc(Heredoc),
}

/// `COPY [flags] src... dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub sources: Vec<Source>,
    pub dest: String,
    /// `--from=`: a stage name or index, an image, or a named context.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=` (octal or symbolic), as written.
    pub chmod: Option<String>,
    /// `--link`: copy into an independent layer.
    pub link: bool,
    /// `--parents`: keep the sources' directory structure.
    pub parents: bool,
    /// `--exclude=` patterns, in order.
    pub excludes: Vec<String>,
}

/// `ADD [flags] src... dest`. Docker's ADD takes no `--from` and no `--parents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub sources: Vec<Source>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub excludes: Vec<String>,
    /// `--checksum=` of a remote source, as written (`sha256:...`).
    pub checksum: Option<String>,
    /// `--keep-git-dir`: keep `.git` when adding a Git repository.
    pub keep_git_dir: bool,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any check inherited from the base image.
    None,
    /// `HEALTHCHECK [flags] CMD command`.
    Check(HealthCheck),
}

/// The check of `HEALTHCHECK CMD`. Durations not given are `None` (the
/// runtime's defaults apply); a given `0s` is `Some(ZERO)`, which Docker
/// also reads as the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Exec form becomes Docker's `CMD`, shell form `CMD-SHELL`.
    pub command: Command,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

/// `ONBUILD instruction`: stored in the image, run by builds that use it as
/// their base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger as written (`RUN make`), which is what Docker stores in
    /// the image config's `OnBuild` list.
    pub expression: String,
    /// The trigger, parsed. Never `ONBUILD`, `FROM` or `MAINTAINER`.
    pub trigger: Box<InstructionKind>,
}
