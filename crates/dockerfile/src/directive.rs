//! Parser directives: `# syntax=`, `# escape=` and `# check=` comments at
//! the very top of a Dockerfile.
//!
//! Docker's rule: directives are read only before anything else. The first
//! line that is not a known directive (an instruction, a blank line, any
//! other comment, an unknown `# key=value`) ends them, and later directive
//! lines are plain comments.

use crate::error::ErrorReason;

/// The parser directives a Dockerfile set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=docker/dockerfile:1`: the frontend image BuildKit would use.
    /// Kiln has one built-in frontend; the builder may warn about others.
    pub syntax: Option<String>,
    /// `# escape=`: the escape and line-continuation character, `\` or `` ` ``.
    pub escape: char,
    /// `# check=skip=...`: build-check settings, kept as written.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Self { syntax: None, escape: '\\', check: None }
    }
}

/// Reads directives from the first lines until one is not a directive.
#[derive(Debug, Default)]
pub(crate) struct DirectiveScanner {
    directives: Directives,
    seen: Vec<&'static str>,
    done: bool,
}

impl DirectiveScanner {
    /// Looks at the next line (leading whitespace already removed).
    pub(crate) fn observe(&mut self, line: &str) -> Result<(), ErrorReason> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = directive_line(line) else {
            self.done = true;
            return Ok(());
        };
        let key: &'static str = match key.to_ascii_lowercase().as_str() {
            "syntax" => "syntax",
            "escape" => "escape",
            "check" => "check",
            _ => {
                self.done = true;
                return Ok(());
            }
        };
        if self.seen.contains(&key) {
            return Err(ErrorReason::DuplicateDirective { name: key.to_owned() });
        }
        self.seen.push(key);
        match key {
            "escape" => {
                self.directives.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err(ErrorReason::InvalidEscape { value: value.to_owned() }),
                };
            }
            "syntax" => self.directives.syntax = Some(value.to_owned()),
            _ => self.directives.check = Some(value.to_owned()),
        }
        Ok(())
    }

    /// The escape character in force now.
    pub(crate) fn escape(&self) -> char {
        self.directives.escape
    }

    pub(crate) fn finish(self) -> Directives {
        self.directives
    }
}

/// Regex whitespace (`\s` in Go's RE2).
fn is_re_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0c}' | '\r')
}

/// `#` key `=` value, with optional whitespace around each part, as
/// Docker's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn directive_line(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start_matches(is_re_space);
    let key_end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let (key, rest) = rest.split_at(key_end);
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let rest = rest.trim_start_matches(is_re_space).strip_prefix('=')?;
    let value = rest.trim_matches(is_re_space);
    if !value.is_empty() {
        return Some((key, value));
    }
    // The lazy `.+?` still takes one character of an all-blank value.
    let first = rest.chars().next()?;
    Some((key, &rest[..first.len_utf8()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_directive_lines() {
        assert_eq!(
            directive_line("# syntax=docker/dockerfile:1"),
            Some(("syntax", "docker/dockerfile:1"))
        );
        assert_eq!(directive_line("#escape = `  "), Some(("escape", "`")));
        assert_eq!(directive_line("# ESCAPE=\\"), Some(("ESCAPE", "\\")));
        assert_eq!(directive_line("# just a comment"), None);
        assert_eq!(directive_line("# 1x=y"), None);
        assert_eq!(directive_line("# x="), None);
        assert_eq!(directive_line("RUN x"), None);
    }

    #[test]
    fn stops_at_the_first_other_line() {
        let mut s = DirectiveScanner::default();
        s.observe("# syntax=a").unwrap();
        s.observe("# unknown=1").unwrap();
        s.observe("# escape=`").unwrap();
        let d = s.finish();
        assert_eq!(d.syntax.as_deref(), Some("a"));
        assert_eq!(d.escape, '\\', "escape after an unknown directive is a comment");
    }

    #[test]
    fn refuses_repeats_and_bad_escapes() {
        let mut s = DirectiveScanner::default();
        s.observe("# escape=`").unwrap();
        assert_eq!(
            s.observe("# Escape=`").unwrap_err().to_string(),
            "only one escape parser directive can be used"
        );
        let mut s = DirectiveScanner::default();
        assert_eq!(
            s.observe("# escape=x").unwrap_err().to_string(),
            "invalid escape directive \"x\": must be ` or \\"
        );
    }
}
