//! Heredocs: `RUN <<EOF`, `COPY <<EOF /path`, the lines up to the delimiter.

use std::borrow::Cow;

use crate::error::ErrorReason;
use crate::substitution::{raw_words, LexOptions};

/// A here-document: the body of an instruction's `<<NAME` up to the line
/// that is exactly `NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter, without quotes: `EOF` for `<<"EOF"`. For `COPY` it is
    /// also the name of the file the body becomes.
    pub name: String,
    /// The lines between the instruction and the delimiter, verbatim, each
    /// ending in `\n`. See [`Heredoc::content`] for the text to use.
    pub body: String,
    /// False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): the body
    /// must not be expanded, as in the shell.
    pub expand: bool,
    /// `<<-EOF`: leading tabs are stripped from the body and the delimiter line.
    pub chomp: bool,
    /// The file descriptor in `3<<EOF`, when one was written.
    pub fd: Option<u32>,
}

impl Heredoc {
    /// The body as the instruction sees it: with `<<-`, leading tabs are
    /// removed from every line.
    pub fn content(&self) -> Cow<'_, str> {
        if !self.chomp {
            return Cow::Borrowed(&self.body);
        }
        Cow::Owned(self.body.split_inclusive('\n').map(|l| l.trim_start_matches('\t')).collect())
    }

    /// Whether `line` (without its newline) ends this heredoc.
    pub(crate) fn is_terminator(&self, line: &str) -> bool {
        let line = if self.chomp { line.trim_start_matches('\t') } else { line };
        line == self.name
    }
}

/// The heredocs a logical line opens, in order. Words are found the way
/// BuildKit finds them: the whole line is split like a shell would (quotes
/// kept), and a word that is `<<NAME`, `<<-NAME` or `N<<NAME` opens one. A
/// line the splitter cannot read (an open quote) opens none.
pub(crate) fn heredocs_in_line(line: &str) -> Result<Vec<Heredoc>, ErrorReason> {
    let options = LexOptions { raw_quotes: true, raw_escapes: true, skip_unset: false };
    let Ok(words) = raw_words(line, options) else {
        return Ok(Vec::new());
    };
    let mut heredocs = Vec::new();
    for word in words {
        if let Some(heredoc) = parse_heredoc_word(&word)? {
            heredocs.push(heredoc);
        }
    }
    Ok(heredocs)
}

/// Reads one word as a heredoc opener, or `None` when it is not one.
pub(crate) fn parse_heredoc_word(word: &str) -> Result<Option<Heredoc>, ErrorReason> {
    let digits_end = word.find(|c: char| !c.is_ascii_digit()).unwrap_or(word.len());
    let (digits, rest) = word.split_at(digits_end);
    let Some(rest) = rest.strip_prefix("<<") else { return Ok(None) };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let invalid = |reason| ErrorReason::InvalidHeredoc { word: word.to_owned(), reason };
    // The delimiter with quotes removed, and as written: if quote removal
    // changed anything, part of it was quoted and the body is not expanded.
    let plain = LexOptions { raw_quotes: false, raw_escapes: false, skip_unset: true };
    let words = raw_words(rest, plain).map_err(invalid)?;
    let [name] = words.as_slice() else { return Ok(None) };
    let raw = raw_words(rest, LexOptions { raw_quotes: true, ..plain }).map_err(invalid)?;
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let expand = raw.len() == 1 && quotes(name) == quotes(&raw[0]);
    Ok(Some(Heredoc {
        name: name.clone(),
        body: String::new(),
        expand,
        chomp,
        fd: if digits.is_empty() { None } else { digits.parse().ok() },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(line: &str) -> Vec<(String, bool, bool, Option<u32>)> {
        heredocs_in_line(line)
            .unwrap()
            .into_iter()
            .map(|h| (h.name, h.expand, h.chomp, h.fd))
            .collect()
    }

    #[test]
    fn finds_heredoc_words() {
        assert_eq!(names("RUN <<EOF"), [("EOF".to_owned(), true, false, None)]);
        assert_eq!(names("RUN <<-EOT bash"), [("EOT".to_owned(), true, true, None)]);
        assert_eq!(names(r#"RUN <<"EOF""#), [("EOF".to_owned(), false, false, None)]);
        assert_eq!(names("RUN <<'EOF'"), [("EOF".to_owned(), false, false, None)]);
        assert_eq!(
            names("RUN 3<<A cat <<B"),
            [("A".to_owned(), true, false, Some(3)), ("B".to_owned(), true, false, None)]
        );
    }

    #[test]
    fn not_heredocs() {
        assert!(names("RUN echo '<<EOF'").is_empty());
        assert!(names("RUN cat<<EOF").is_empty(), "BuildKit needs the opener to start a word");
        assert!(names("RUN cat <<<word").is_empty());
        assert!(names("RUN echo << x").is_empty());
        assert!(names("RUN echo \"open <<EOF").is_empty());
    }

    #[test]
    fn chomp_strips_leading_tabs_from_content_only() {
        let h = Heredoc {
            name: "E".into(),
            body: "\t\tone\n\ttwo\n  three\n".into(),
            expand: true,
            chomp: true,
            fd: None,
        };
        assert_eq!(h.content(), "one\ntwo\n  three\n");
        assert_eq!(h.body, "\t\tone\n\ttwo\n  three\n");
        assert!(h.is_terminator("\tE"));
        assert!(!h.is_terminator(" E"));
    }
}
