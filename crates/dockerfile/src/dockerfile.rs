//! A whole Dockerfile: directives, global build args and stages.

use crate::directive::{DirectiveScanner, Directives};
use crate::error::{ErrorReason, ParseError};
use crate::heredoc::heredocs_in_line;
use crate::instruction::{ArgDecl, Instruction, InstructionKind, Keyword, Span};
use crate::syntax::{keyword_of, parse_line, FromLine, Parsed};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Directives,
    /// The `ARG` instructions before the first `FROM`: they may be used in
    /// `FROM` lines, and inside a stage only after an `ARG name` there.
    /// Every element is an [`InstructionKind::Arg`].
    pub global_args: Vec<Instruction>,
    /// At least one.
    pub stages: Vec<Stage>,
}

/// A build stage: a `FROM` and the instructions up to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lower-cased as Docker does; unique in the Dockerfile.
    pub name: Option<String>,
    /// The base image or earlier stage, as written (it may use global args).
    pub base: String,
    /// `--platform=`, as written.
    pub platform: Option<String>,
    /// Where the `FROM` line is.
    pub span: Span,
    /// The `FROM` line as one line.
    pub original: String,
    pub instructions: Vec<Instruction>,
}

impl Dockerfile {
    /// The declarations of the global args, in order.
    pub fn global_arg_decls(&self) -> impl Iterator<Item = &ArgDecl> {
        self.global_args.iter().flat_map(|i| match &i.kind {
            InstructionKind::Arg(decls) => decls.as_slice(),
            _ => &[],
        })
    }

    /// The index of the stage `reference` names, as `COPY --from`,
    /// `RUN --mount=from=` and `FROM` use it: a stage name (any case) or a
    /// stage number. `None` means it is not a stage (an image, probably).
    pub fn find_stage(&self, reference: &str) -> Option<usize> {
        let lower = reference.to_lowercase();
        if let Some(i) = self.stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Some(i);
        }
        reference.parse::<usize>().ok().filter(|&i| i < self.stages.len())
    }
}

/// Parses Dockerfile text.
///
/// Errors name the line (`Dockerfile:7: unknown instruction: RUNN`); use
/// [`ParseError::with_file`] to name another file.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let lines = physical_lines(text);
    let mut directives = DirectiveScanner::default();
    let mut file = Assembly::default();
    let mut next = 0;
    while next < lines.len() {
        let (line_start, line_end) = lines[next];
        next += 1;
        let start_line = next;
        let raw = &text[line_start..line_end];
        let trimmed = raw.trim_start();
        directives.observe(trimmed).map_err(|r| ParseError::at_line(start_line, r))?;
        let escape = directives.escape();
        if is_comment(trimmed) {
            continue;
        }
        let (first, mut continued) = trim_continuation(trimmed, escape);
        if first.is_empty() && !continued {
            continue;
        }
        let mut logical = first.to_owned();
        while continued && next < lines.len() {
            let (s, e) = lines[next];
            next += 1;
            let raw = &text[s..e];
            // Comment and blank lines inside a continuation are skipped,
            // and the instruction goes on.
            if is_comment(raw.trim_start()) || raw.trim().is_empty() {
                continue;
            }
            let (part, more) = trim_continuation(raw, escape);
            logical.push_str(part);
            continued = more;
        }
        if logical.trim().is_empty() {
            continue;
        }
        let at = |reason| ParseError::at_line(start_line, reason);
        let mut heredocs = Vec::new();
        if matches!(keyword_of(&logical), Some(Keyword::Run | Keyword::Copy | Keyword::Add))
            && logical.contains("<<")
        {
            heredocs = heredocs_in_line(&logical).map_err(at)?;
            for heredoc in &mut heredocs {
                loop {
                    let Some(&(s, e)) = lines.get(next) else {
                        return Err(at(ErrorReason::UnterminatedHeredoc {
                            name: heredoc.name.clone(),
                        }));
                    };
                    next += 1;
                    let body_line = &text[s..e];
                    if heredoc.is_terminator(body_line) {
                        break;
                    }
                    heredoc.body.push_str(body_line);
                    heredoc.body.push('\n');
                }
            }
        }
        let span = Span {
            start_line,
            end_line: next,
            bytes: line_start + (raw.len() - trimmed.len())..lines[next - 1].1,
        };
        let original = logical.trim().to_owned();
        let parsed = parse_line(&logical, heredocs, escape).map_err(|reason| {
            let column = flag_column(raw, &reason);
            at(reason).with_column(column)
        })?;
        file.add(parsed, span, original)?;
    }
    file.finish(directives.finish())
}

/// Stages being collected, line by line.
#[derive(Default)]
struct Assembly {
    any_instruction: bool,
    global_args: Vec<Instruction>,
    stages: Vec<Stage>,
}

impl Assembly {
    fn add(&mut self, parsed: Parsed, span: Span, original: String) -> Result<(), ParseError> {
        self.any_instruction = true;
        let line = span.start_line;
        match parsed {
            Parsed::From(FromLine { base, name, platform }) => {
                if let Some(name) = &name {
                    if let Some(first) = self.stages.iter().find(|s| s.name.as_ref() == Some(name))
                    {
                        return Err(ParseError::at_line(
                            line,
                            ErrorReason::DuplicateStageName {
                                name: name.clone(),
                                first_line: first.span.start_line,
                            },
                        ));
                    }
                }
                self.stages.push(Stage {
                    name,
                    base,
                    platform,
                    span,
                    original,
                    instructions: Vec::new(),
                });
            }
            Parsed::Instruction(kind) => {
                let instruction = Instruction { span, original, kind };
                match self.stages.last_mut() {
                    Some(stage) => stage.instructions.push(instruction),
                    None if instruction.keyword() == Keyword::Arg => {
                        self.global_args.push(instruction)
                    }
                    None => {
                        return Err(ParseError::at_line(
                            line,
                            ErrorReason::NoStageInContext {
                                keyword: instruction.keyword().as_str().to_owned(),
                            },
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self, directives: Directives) -> Result<Dockerfile, ParseError> {
        if !self.any_instruction {
            return Err(ParseError::new(ErrorReason::Empty));
        }
        if self.stages.is_empty() {
            return Err(ParseError::new(ErrorReason::NoStage));
        }
        Ok(Dockerfile { directives, global_args: self.global_args, stages: self.stages })
    }
}

/// Byte ranges of the lines of `text`, without `\n` or a `\r` before it,
/// and without a leading byte-order mark.
fn physical_lines(text: &str) -> Vec<(usize, usize)> {
    let mut lines = Vec::new();
    let mut start = if text.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    while start < text.len() {
        let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let content_end = if text[start..end].ends_with('\r') { end - 1 } else { end };
        lines.push((start, content_end));
        start = end + 1;
    }
    lines
}

/// A comment line (leading whitespace already removed).
fn is_comment(line: &str) -> bool {
    line.starts_with('#')
}

/// Removes a trailing escape character (and spaces or tabs after it); the
/// flag says the instruction continues on the next line.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    match body.strip_suffix(escape) {
        Some(rest) => (rest, true),
        None => (line, false),
    }
}

/// For flag errors, the column of the flag on the instruction's first line.
fn flag_column(line: &str, reason: &ErrorReason) -> Option<usize> {
    let flag = match reason {
        ErrorReason::UnknownFlag { flag, .. }
        | ErrorReason::FlagMissingValue { flag }
        | ErrorReason::FlagNotBool { flag, .. }
        | ErrorReason::DuplicateFlag { flag } => format!("--{flag}"),
        ErrorReason::InvalidMount { .. } => "--mount".to_owned(),
        _ => return None,
    };
    let at = match reason {
        // The repeat is the one that is wrong.
        ErrorReason::DuplicateFlag { .. } => line.rfind(&flag)?,
        _ => line.find(&flag)?,
    };
    Some(line[..at].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_drop_newlines_carriage_returns_and_bom() {
        let text = "\u{feff}a\r\nb\n\nc";
        let got: Vec<&str> = physical_lines(text).into_iter().map(|(s, e)| &text[s..e]).collect();
        assert_eq!(got, ["a", "b", "", "c"]);
        assert!(physical_lines("").is_empty());
        assert_eq!(physical_lines("x\n").len(), 1);
    }

    #[test]
    fn continuation_needs_the_escape_at_the_end() {
        assert_eq!(trim_continuation("RUN a \\", '\\'), ("RUN a ", true));
        assert_eq!(trim_continuation("RUN a \\  \t", '\\'), ("RUN a ", true));
        assert_eq!(trim_continuation("RUN a \\ b", '\\'), ("RUN a \\ b", false));
        assert_eq!(trim_continuation("RUN a `", '`'), ("RUN a ", true));
        assert_eq!(trim_continuation("RUN a \\", '`'), ("RUN a \\", false));
    }
}
