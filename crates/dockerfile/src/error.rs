//! Why a Dockerfile was refused, and where.

use std::fmt;

use kiln_types::{ErrorKind, HasKind};

use crate::mount::MountError;
use crate::substitution::SubstitutionError;

/// The file name errors carry unless the caller names another one.
pub const DEFAULT_FILE_NAME: &str = "Dockerfile";

/// A Dockerfile the parser refuses: what is wrong and on which line.
///
/// Displays as one line, `Dockerfile:7: unknown instruction: RUNN`, the way
/// a user looks for it in the file. The file name defaults to
/// [`DEFAULT_FILE_NAME`]; a builder reading `-f build/gpu.Dockerfile` sets
/// it with [`ParseError::with_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    file: String,
    line: Option<usize>,
    column: Option<usize>,
    // Boxed: the reasons are large and errors are rare.
    reason: Box<ErrorReason>,
}

impl ParseError {
    pub(crate) fn new(reason: ErrorReason) -> Self {
        Self {
            file: DEFAULT_FILE_NAME.to_owned(),
            line: None,
            column: None,
            reason: Box::new(reason),
        }
    }

    pub(crate) fn at_line(line: usize, reason: ErrorReason) -> Self {
        Self { line: Some(line), ..Self::new(reason) }
    }

    pub(crate) fn with_column(mut self, column: Option<usize>) -> Self {
        self.column = column;
        self
    }

    /// Names the file in the message (`gpu.Dockerfile:3: ...`).
    #[must_use]
    pub fn with_file(mut self, file: impl Into<String>) -> Self {
        self.file = file.into();
        self
    }

    /// The file name the message starts with.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line (from 1) the error is on; `None` for errors about the whole
    /// file (empty, no `FROM`).
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The column (from 1), where it helps find the problem in a long line.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// What is wrong, without the location.
    pub fn reason(&self) -> &ErrorReason {
        &self.reason
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "{}:{line}:{column}: {}", self.file, self.reason)
            }
            (Some(line), None) => write!(f, "{}:{line}: {}", self.file, self.reason),
            _ => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

impl std::error::Error for ParseError {}

impl HasKind for ParseError {
    fn kind(&self) -> ErrorKind {
        self.reason.kind()
    }
}

/// What is wrong with a Dockerfile. Messages follow BuildKit's wording where
/// it has one, so users can search for them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorReason {
    /// Nothing but comments, directives and blank lines.
    #[error("file with no instructions")]
    Empty,
    /// Only `ARG`s: there is no stage to build.
    #[error("no FROM instruction: the Dockerfile has no build stage")]
    NoStage,
    /// An instruction other than `ARG` before the first `FROM`.
    #[error("{keyword} before the first FROM: no build stage in current context")]
    NoStageInContext { keyword: String },
    /// The first word of a line is not an instruction.
    #[error("unknown instruction: {name}{}", suggestion_text(.suggestion.as_deref()))]
    UnknownInstruction { name: String, suggestion: Option<String> },
    /// `# escape=` with something other than a backslash or a backtick.
    #[error("invalid escape directive {value:?}: must be ` or \\")]
    InvalidEscape { value: String },
    /// The same parser directive twice.
    #[error("only one {name} parser directive can be used")]
    DuplicateDirective { name: String },
    /// A heredoc whose delimiter line never comes.
    #[error("unterminated heredoc: no line {name:?} ends it")]
    UnterminatedHeredoc { name: String },
    /// A heredoc delimiter the shell lexer cannot read.
    #[error("invalid heredoc delimiter {word:?}: {reason}")]
    InvalidHeredoc { word: String, reason: SubstitutionError },
    /// `COPY <<EOF <<DEST`: the destination is a heredoc.
    #[error("{keyword} cannot accept a heredoc as a destination")]
    HeredocDestination { keyword: String },
    /// A JSON array with something other than strings in it.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    /// `FROM` with two, four or more words, or `FROM a B c` without `AS`.
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    /// `FROM x AS 1st`: Docker's stage-name rule.
    #[error(
        "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
    )]
    InvalidStageName { name: String },
    /// Two stages with the same name.
    #[error("duplicate stage name {name:?} (first used on line {first_line})")]
    DuplicateStageName { name: String, first_line: usize },
    #[error("{keyword} requires at least one argument")]
    AtLeastOneArgument { keyword: String },
    #[error("{keyword} requires at least two arguments")]
    AtLeastTwoArguments { keyword: String },
    #[error("{keyword} requires exactly one argument")]
    ExactlyOneArgument { keyword: String },
    /// Legacy `ENV name` / `LABEL name` without a value.
    #[error("{keyword} must have two arguments")]
    NameWithoutValue { keyword: String },
    /// `ENV =x`, `LABEL ""=x`.
    #[error("{keyword} names can not be blank")]
    BlankName { keyword: String },
    /// `ENV a=b c`: a later word without `=`.
    #[error("syntax error - can't find = in {word:?}. Must be of the form: name=value")]
    MissingEquals { word: String },
    /// A flag the instruction does not take.
    #[error("unknown flag: --{flag} for {keyword}{}", suggestion_text(.suggestion.as_deref()))]
    UnknownFlag { keyword: String, flag: String, suggestion: Option<String> },
    /// A flag word that does not start with `--`.
    #[error("arg should start with -- : {word}")]
    FlagSyntax { word: String },
    /// `--from` without `=value`.
    #[error("missing a value on flag: --{flag}")]
    FlagMissingValue { flag: String },
    /// `--link=yes`.
    #[error("expecting boolean value for flag --{flag}, not: {value}")]
    FlagNotBool { flag: String, value: String },
    /// A flag that can be given once, given twice.
    #[error("duplicate flag specified: --{flag}")]
    DuplicateFlag { flag: String },
    /// A `RUN --mount` value that is not a valid mount.
    #[error("invalid --mount={value}: {reason}")]
    InvalidMount { value: String, reason: MountError },
    #[error("unsupported network mode {value:?}: expected default, none or host")]
    InvalidNetwork { value: String },
    #[error("unsupported security mode {value:?}: expected sandbox or insecure")]
    InvalidSecurity { value: String },
    #[error("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    #[error("{keyword} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger { keyword: String },
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    #[error("unknown type {kind:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType { kind: String },
    #[error("missing command after HEALTHCHECK CMD")]
    HealthcheckCommand,
    #[error("invalid duration {value:?} for --{flag}")]
    Duration { flag: String, value: String },
    #[error("--{flag} cannot be less than 1ms")]
    DurationTooShort { flag: String },
    #[error("invalid value {value:?} for --retries: expected a number from 0")]
    Retries { value: String },
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellNotJson,
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
}

impl HasKind for ErrorReason {
    fn kind(&self) -> ErrorKind {
        // Every refusal is about the text the user wrote.
        ErrorKind::InvalidArgument
    }
}

fn suggestion_text(suggestion: Option<&str>) -> String {
    suggestion.map(|s| format!(" (did you mean {s}?)")).unwrap_or_default()
}

/// The candidate closest to `word`, if it looks like a typo of it: within
/// one edit per three letters (at least one), or `word` is its start
/// (`--plat` for `--platform`).
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let word = word.to_ascii_lowercase();
    let letters = word.chars().count();
    let allowed = (letters / 3).max(1);
    candidates
        .into_iter()
        .map(|c| {
            let lower = c.to_ascii_lowercase();
            let score = if letters >= 3 && lower.starts_with(&word) {
                0
            } else if lower.chars().count().abs_diff(letters) > allowed {
                // Too different in length to be within reach.
                usize::MAX
            } else {
                edit_distance(&word, &lower)
            };
            (score, c)
        })
        .filter(|&(score, _)| score <= allowed && score < letters)
        .min_by_key(|&(score, _)| score)
        .map(|(_, c)| c.to_owned())
}

/// Levenshtein distance, counting a swap of neighbours as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Typos are short; cap the work for absurd input.
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["RUN", "FROM", "COPY", "ADD"];
        assert_eq!(suggest("RUNN", names).as_deref(), Some("RUN"));
        assert_eq!(suggest("FORM", names).as_deref(), Some("FROM"));
        assert_eq!(suggest("frobnicate", names), None);
        assert_eq!(suggest("AS", names), None);
        assert_eq!(suggest("hello", ["SHELL"]), None);
        assert_eq!(suggest("plat", ["platform"]).as_deref(), Some("platform"));
    }

    #[test]
    fn message_names_file_line_and_column() {
        let e = ParseError::at_line(7, ErrorReason::FromArguments);
        assert_eq!(e.to_string(), "Dockerfile:7: FROM requires either one or three arguments");
        let e = e.with_file("gpu.Dockerfile").with_column(Some(3));
        assert_eq!(
            e.to_string(),
            "gpu.Dockerfile:7:3: FROM requires either one or three arguments"
        );
        assert_eq!(
            ParseError::new(ErrorReason::Empty).to_string(),
            "Dockerfile: file with no instructions"
        );
    }
}
