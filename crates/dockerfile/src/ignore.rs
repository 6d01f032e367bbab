//! `.dockerignore`: which files of the build context are left out.
//!
//! The rules are Docker's: one pattern a line; lines starting with `#` are
//! comments; whitespace around a pattern is trimmed; a leading `!` makes an
//! exception that re-includes what earlier patterns excluded; the last
//! pattern that matches a path decides. Patterns are cleaned like Go's
//! `filepath.Clean` and a leading `/` is dropped, so `/dist`, `dist/` and
//! `./dist` are the same pattern. `*` and `?` match within one path
//! element, `**` any number of elements, `[a-z]`/`[^a-z]` one character of
//! a class, and `\` escapes. A pattern that matches a directory excludes
//! everything below it.
//!
//! The same matcher serves `COPY --exclude` ([`Rules::from_patterns`]).

use kiln_types::{ErrorKind, HasKind};

/// Why an ignore file or exclude pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// A line that is only `!`.
    #[error("line {line}: illegal exclusion pattern: \"!\"")]
    EmptyExclusion { line: usize },
    /// An unclosed `[`, an empty class, a trailing `\`.
    #[error("line {line}: syntax error in pattern {pattern:?}")]
    BadPattern { line: usize, pattern: String },
}

impl HasKind for IgnoreError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// The patterns of one ignore file, ready to match context paths.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    patterns: Vec<Pattern>,
}

/// One cleaned pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    exception: bool,
    tokens: Vec<Token>,
}

impl Pattern {
    /// The pattern after cleaning, without its `!`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A `!` pattern: it re-includes what it matches.
    pub fn is_exception(&self) -> bool {
        self.exception
    }
}

impl Rules {
    /// Reads `.dockerignore` text.
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, line) in text.lines().enumerate() {
            // Only a `#` in the first column starts a comment.
            if line.starts_with('#') {
                continue;
            }
            if let Some(p) = Pattern::new(line, index + 1)? {
                patterns.push(p);
            }
        }
        Ok(Self { patterns })
    }

    /// Rules from a list of patterns, such as `COPY --exclude` values.
    /// Errors count patterns from 1 as lines.
    pub fn from_patterns<I, S>(patterns: I) -> Result<Self, IgnoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for (index, p) in patterns.into_iter().enumerate() {
            if let Some(p) = Pattern::new(p.as_ref(), index + 1)? {
                out.push(p);
            }
        }
        Ok(Self { patterns: out })
    }

    /// The patterns in file order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// No patterns: nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the context path (relative to the context root, `/`
    /// separated) is left out of the build context.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean_path(path);
        if path.is_empty() || path == "." {
            return false;
        }
        let chars: Vec<char> = path.chars().collect();
        let mut excluded = false;
        for p in &self.patterns {
            // Evaluation order does not change the answer, but skipping
            // patterns that cannot change it saves the work.
            if p.exception != excluded {
                continue;
            }
            if p.matches_self_or_parent(&chars) {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether the walk of the context can skip directory `dir` without
    /// looking inside: it is excluded and no exception could re-include
    /// anything below it.
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        if !self.is_excluded(dir) {
            return false;
        }
        let mut prefix: Vec<char> = clean_path(dir).chars().collect();
        prefix.push('/');
        !self.patterns.iter().any(|p| p.exception && p.could_match_below(&prefix))
    }
}

/// Which ignore file a build uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreSource {
    /// `<Dockerfile>.dockerignore` next to the Dockerfile.
    Dockerfile,
    /// `.dockerignore` at the root of the context.
    Context,
}

/// The name of the Dockerfile-specific ignore file: `<path>.dockerignore`,
/// in the Dockerfile's own directory (`build/gpu.Dockerfile` →
/// `build/gpu.Dockerfile.dockerignore`).
pub fn dockerfile_ignore_path(dockerfile_path: &str) -> String {
    format!("{dockerfile_path}.dockerignore")
}

/// Picks the ignore file as Docker does: the Dockerfile-specific file wins
/// over the context's `.dockerignore`; they are never merged. The caller
/// passes the contents of the files that exist.
pub fn select_ignore_file<'a>(
    dockerfile_specific: Option<&'a str>,
    context: Option<&'a str>,
) -> Option<(IgnoreSource, &'a str)> {
    dockerfile_specific
        .map(|t| (IgnoreSource::Dockerfile, t))
        .or(context.map(|t| (IgnoreSource::Context, t)))
}

/// A compiled piece of a pattern.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    Question,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**/` or a `**` in the middle: nothing, or anything ending in `/`.
    AnyDirs,
    /// A trailing `**`: anything.
    AnyTail,
}

impl Pattern {
    fn new(line: &str, number: usize) -> Result<Option<Self>, IgnoreError> {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let (exception, body) = match trimmed.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, trimmed),
        };
        if exception && body.is_empty() {
            return Err(IgnoreError::EmptyExclusion { line: number });
        }
        let mut text = clean_path_keep_root(body);
        if text.len() > 1 && text.starts_with('/') {
            text.remove(0);
        }
        let tokens = compile(&text)
            .ok_or_else(|| IgnoreError::BadPattern { line: number, pattern: body.to_owned() })?;
        Ok(Some(Self { text, exception, tokens }))
    }

    /// Matches the path itself or any of its parent directories, in one
    /// pass: a parent matches when the pattern accepts just before a `/`.
    fn matches_self_or_parent(&self, path: &[char]) -> bool {
        let accept = 2 * self.tokens.len();
        let mut states = self.start();
        for &c in path {
            if c == '/' && states.last() == Some(&accept) {
                return true;
            }
            states = self.step(&states, c);
            if states.is_empty() {
                return false;
            }
        }
        states.last() == Some(&accept)
    }

    /// Whether some path starting with `prefix` (which ends in `/`) could
    /// match: the pattern has not failed after reading the prefix.
    fn could_match_below(&self, prefix: &[char]) -> bool {
        let mut states = self.start();
        for &c in prefix {
            states = self.step(&states, c);
        }
        // Accepting exactly at the prefix does not count: cleaned patterns
        // never end in `/`, so a live state needs more characters anyway.
        !states.is_empty()
    }

    // A set of live states, sorted: 2k is "before token k", 2k+1 is
    // "inside token k" (the `.*` part of `(.*/)?`). State 2n accepts.
    // Sparse, because most patterns are literal and keep one state alive.
    fn start(&self) -> Vec<usize> {
        self.close(vec![0])
    }

    /// Adds the states reachable without reading a character: skipping a
    /// `*`, `**/` or `**` moves from state 2k to 2k+2. One merge pass over
    /// the sorted states, since such moves only go forward.
    fn close(&self, mut states: Vec<usize>) -> Vec<usize> {
        states.sort_unstable();
        states.dedup();
        let mut out = Vec::with_capacity(states.len() + 1);
        let mut i = 0;
        let mut carry: Option<usize> = None;
        loop {
            let s = match (states.get(i).copied(), carry) {
                (Some(a), Some(c)) if c <= a => {
                    carry = None;
                    if c == a {
                        i += 1;
                    }
                    c
                }
                (Some(a), _) => {
                    i += 1;
                    a
                }
                (None, Some(c)) => {
                    carry = None;
                    c
                }
                (None, None) => break,
            };
            if out.last() != Some(&s) {
                out.push(s);
            }
            let skippable = s % 2 == 0
                && matches!(
                    self.tokens.get(s / 2),
                    Some(Token::Star | Token::AnyDirs | Token::AnyTail)
                );
            if skippable {
                carry = Some(s + 2);
            }
        }
        out
    }

    fn step(&self, states: &[usize], c: char) -> Vec<usize> {
        let mut next = Vec::with_capacity(states.len() + 1);
        for &s in states {
            let k = s / 2;
            let Some(token) = self.tokens.get(k) else { continue };
            if s % 2 == 1 {
                // Inside the `.*` of `(.*/)?`: any character; a `/` may end it.
                next.push(s);
                if c == '/' {
                    next.push(2 * (k + 1));
                }
                continue;
            }
            match token {
                Token::Literal(l) if *l == c => next.push(2 * (k + 1)),
                Token::Literal(_) => {}
                Token::Star if c != '/' => next.push(s),
                Token::Question if c != '/' => next.push(2 * (k + 1)),
                Token::Star | Token::Question => {}
                Token::Class { negated, ranges } => {
                    if ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated {
                        next.push(2 * (k + 1));
                    }
                }
                Token::AnyTail => next.push(s),
                Token::AnyDirs => {
                    next.push(s + 1);
                    if c == '/' {
                        next.push(2 * (k + 1));
                    }
                }
            }
        }
        self.close(next)
    }
}

/// Compiles a cleaned pattern, as Docker turns it into a regular expression.
fn compile(pattern: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                let slash = chars.get(i) == Some(&'/');
                if slash {
                    i += 1;
                }
                if i == chars.len() {
                    tokens.push(Token::AnyTail);
                } else if tokens.is_empty()
                    && !slash
                    && !chars[i..].iter().any(|c| matches!(c, '*' | '?' | '[' | ']'))
                {
                    // docker-compat: a leading `**` followed by plain text
                    // is a suffix match in Docker (`**.log` matches `a.log`
                    // and `x/ya.log`), not `(.*/)?`.
                    tokens.push(Token::AnyTail);
                } else {
                    tokens.push(Token::AnyDirs);
                }
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Question),
            '\\' => {
                let escaped = chars.get(i)?;
                i += 1;
                tokens.push(Token::Literal(*escaped));
            }
            '[' => {
                let (token, used) = compile_class(&chars[i..])?;
                i += used;
                tokens.push(token);
            }
            c => tokens.push(Token::Literal(c)),
        }
    }
    Some(tokens)
}

/// A class after its `[`: Go's `filepath.Match` syntax, which is what
/// Docker checks patterns with. Gives the token and the characters used.
fn compile_class(chars: &[char]) -> Option<(Token, usize)> {
    let mut i = 0;
    let negated = chars.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        let lo = class_char(chars, &mut i)?;
        let hi = if chars.get(i) == Some(&'-') {
            i += 1;
            class_char(chars, &mut i)?
        } else {
            lo
        };
        if lo > hi {
            return None;
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], i: &mut usize) -> Option<char> {
    let c = *chars.get(*i)?;
    if c == '-' || c == ']' {
        return None;
    }
    *i += 1;
    if c == '\\' {
        let escaped = *chars.get(*i)?;
        *i += 1;
        return Some(escaped);
    }
    Some(c)
}

/// Go's `filepath.Clean` on a `/`-separated path.
fn clean_path_keep_root(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// A context path, cleaned and relative.
fn clean_path(path: &str) -> String {
    let cleaned = clean_path_keep_root(path);
    match cleaned.strip_prefix('/') {
        Some("") => ".".to_owned(),
        Some(rest) => rest.to_owned(),
        None => cleaned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Rules {
        Rules::parse(text).unwrap()
    }

    #[test]
    fn docker_cases() {
        // (ignore file, path, excluded?)
        let cases: &[(&str, &str, bool)] = &[
            ("*.md\n!README.md", "README.md", false),
            ("*.md\n!README.md", "CHANGES.md", true),
            ("*.md\n!README.md", "docs/x.md", false),
            ("**/*.md", "docs/x.md", true),
            ("**/*.go", "main.go", true),
            ("**/*.go", "a/b/c/main.go", true),
            ("**/*.go", "main.gox", false),
            ("dir", "dir", true),
            ("dir", "dir/a/b.txt", true),
            ("dir", "dirt", false),
            ("dir/", "dir/x", true),
            ("/dir", "dir/x", true),
            ("./dir", "dir/x", true),
            ("dir\n!dir/keep.txt", "dir/keep.txt", false),
            ("dir\n!dir/keep.txt", "dir/other.txt", true),
            ("!dir/keep.txt\ndir", "dir/keep.txt", true),
            ("*/temp*", "a/temporary", true),
            ("*/temp*", "a/b/temp", false),
            ("*/*/temp*", "a/b/temp1", true),
            ("temp?", "temp1", true),
            ("temp?", "temp12", false),
            ("temp?", "tem/", false),
            ("**", "anything/at/all", true),
            ("a/**", "a/b/c", true),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/xb", false),
            ("**.log", "x/ya.log", true),
            ("[a-c]*.txt", "b1.txt", true),
            ("[a-c]*.txt", "d1.txt", false),
            ("[^a-c]*.txt", "d1.txt", true),
            ("\\*.txt", "*.txt", true),
            ("\\*.txt", "a.txt", false),
            ("a/../b", "b", true),
            ("  spaced  ", "spaced", true),
            (" # not a comment", "# not a comment", true),
            ("# comment\n\n", "# comment", false),
            ("*\n!dir\ndir/secret", "dir/secret", true),
            ("*\n!dir\ndir/secret", "dir/other", false),
            ("*", "Dockerfile", true),
        ];
        for (text, path, want) in cases {
            assert_eq!(rules(text).is_excluded(path), *want, "{text:?} on {path:?}");
        }
    }

    #[test]
    fn paths_are_cleaned() {
        let r = rules("build");
        assert!(r.is_excluded("./build/x"));
        assert!(r.is_excluded("/build/x"));
        assert!(r.is_excluded("build//x"));
        assert!(!r.is_excluded("."));
        assert!(!r.is_excluded(""));
    }

    #[test]
    fn directories_are_skipped_only_when_nothing_below_can_come_back() {
        let r = rules("node_modules\n.git");
        assert!(r.can_skip_dir("node_modules"));
        assert!(!r.can_skip_dir("src"), "not excluded at all");
        let r = rules("dir\n!dir/keep.txt");
        assert!(!r.can_skip_dir("dir"));
        let r = rules("dir\n!other/keep.txt");
        assert!(r.can_skip_dir("dir"));
        let r = rules("*\n!**/*.py");
        assert!(!r.can_skip_dir("pkg"), "an exception with ** can reach anything");
        let r = rules("*\n!*/keep");
        assert!(!r.can_skip_dir("a"));
        assert!(r.is_excluded("a/b") && r.can_skip_dir("a/b"));
        let r = rules("data\n!data/*/meta.json");
        assert!(!r.can_skip_dir("data"));
        assert!(r.can_skip_dir("data/x/y"));
    }

    #[test]
    fn refuses_bad_patterns() {
        assert_eq!(
            Rules::parse("ok\n!").unwrap_err().to_string(),
            "line 2: illegal exclusion pattern: \"!\""
        );
        assert!(matches!(
            Rules::parse("[abc").unwrap_err(),
            IgnoreError::BadPattern { line: 1, .. }
        ));
        assert!(matches!(Rules::parse("[]").unwrap_err(), IgnoreError::BadPattern { .. }));
        assert!(matches!(Rules::parse("a\\").unwrap_err(), IgnoreError::BadPattern { .. }));
        assert!(matches!(Rules::parse("[z-a]").unwrap_err(), IgnoreError::BadPattern { .. }));
    }

    #[test]
    fn exclude_flag_patterns() {
        let r = Rules::from_patterns(["*.pyc", "!keep.pyc"]).unwrap();
        assert!(r.is_excluded("a.pyc"));
        assert!(!r.is_excluded("keep.pyc"));
        assert_eq!(r.patterns().len(), 2);
        assert!(r.patterns()[1].is_exception());
        assert_eq!(r.patterns()[1].as_str(), "keep.pyc");
    }

    #[test]
    fn dockerfile_specific_file_wins() {
        assert_eq!(
            dockerfile_ignore_path("build/gpu.Dockerfile"),
            "build/gpu.Dockerfile.dockerignore"
        );
        assert_eq!(select_ignore_file(Some("a"), Some("b")), Some((IgnoreSource::Dockerfile, "a")));
        assert_eq!(select_ignore_file(None, Some("b")), Some((IgnoreSource::Context, "b")));
        assert_eq!(select_ignore_file(None, None), None);
    }
}
