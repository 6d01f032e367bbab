//! Variable substitution and word processing, as Docker applies them to
//! instruction arguments.
//!
//! The parser keeps arguments as written (quotes included) because quote
//! removal and `$VAR` expansion are one pass in Docker: single quotes stop
//! expansion, so they cannot be removed first. The builder calls
//! [`expand_word`] (or [`expand_words`] where one argument may become
//! several, as in `EXPOSE $PORTS`) with the environment of the step; which
//! instructions get this is [`Keyword::expands_variables`].
//!
//! Supported forms: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?message}`, `${VAR?message}`,
//! `${VAR#pattern}`, `${VAR##pattern}`, `${VAR%pattern}`, `${VAR%%pattern}`;
//! the escape character (`\` unless `# escape=` says otherwise) makes the
//! next character literal; inside double quotes it escapes only `"`, `$` and
//! itself. An unset variable expands to nothing.
//!
//! [`Keyword::expands_variables`]: crate::Keyword::expands_variables

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use kiln_types::{ErrorKind, HasKind};

/// How deep `${A:-${B:-...}}` may nest; deeper input is refused rather than
/// allowed to exhaust the stack.
const MAX_DEPTH: usize = 64;

/// A source of variable values: build args and `ENV`s in scope for a step.
pub trait Variables {
    /// The value of `name`, or `None` when it is not set (which differs
    /// from set to empty for `${VAR-x}` and `${VAR+x}`).
    fn get(&self, name: &str) -> Option<&str>;
}

impl<S: BuildHasher> Variables for HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Variables for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// A list of pairs; a later pair wins, as a later `ENV` does.
impl Variables for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Variables for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Variables::get(self.as_slice(), name)
    }
}

impl<T: Variables + ?Sized> Variables for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

/// No variable is set: quote removal and escapes only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVariables;

impl Variables for NoVariables {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Why a word could not be expanded. Messages are BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstitutionError {
    /// `${VAR` without its closing brace.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${}`, `${:x}`, `${{x}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${VAR!x}` and other operators Docker does not have.
    #[error("unsupported modifier ({modifier}) in substitution")]
    UnsupportedModifier { modifier: char },
    /// `${VAR?message}` with `VAR` unset, or `${VAR:?message}` with it unset or empty.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    /// A quote that is never closed.
    #[error("unexpected end of statement while looking for matching {quote}")]
    UnterminatedQuote { quote: &'static str },
    /// More than 64 nested substitutions.
    #[error("substitutions nested too deeply")]
    TooDeep,
}

impl HasKind for SubstitutionError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Expands `$VAR` forms and removes quotes and escapes, giving one word:
/// whitespace in the result is kept (`ENV A="a b"` sets `a b`).
///
/// ```
/// use std::collections::HashMap;
/// let env = HashMap::from([("HOME".to_owned(), "/root".to_owned())]);
/// let word = kiln_dockerfile::expand_word(r#""${HOME}/a b"/'$HOME'"#, &env, '\\').unwrap();
/// assert_eq!(word, "/root/a b/$HOME");
/// ```
pub fn expand_word<V: Variables + ?Sized>(
    word: &str,
    vars: &V,
    escape: char,
) -> Result<String, SubstitutionError> {
    let mut lookup = |name: &str| vars.get(name).map(str::to_owned);
    let mut lexer = Lexer::new(word, escape, &mut lookup);
    lexer.process_all().map(|(word, _)| word)
}

/// Expands like [`expand_word`], then splits the result on whitespace that
/// was not quoted, including whitespace that came from a variable's value
/// (`EXPOSE $PORTS` with `PORTS="80 443"` gives two ports).
pub fn expand_words<V: Variables + ?Sized>(
    text: &str,
    vars: &V,
    escape: char,
) -> Result<Vec<String>, SubstitutionError> {
    let mut lookup = |name: &str| vars.get(name).map(str::to_owned);
    let mut lexer = Lexer::new(text, escape, &mut lookup);
    lexer.process_all().map(|(_, words)| words)
}

/// The names of the variables `text` refers to, in order of first use and
/// without repeats, including those only used in a default (`${A:-$B}`
/// gives `A` and `B`). Names inside single quotes or after an escape are not
/// references. The build cache uses this to key a step on the build args it
/// reads. Text that does not parse gives the names found before the error.
pub fn referenced_variables(text: &str, escape: char) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut record = |name: &str| {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
        // A value that satisfies every operator, so nothing stops the scan.
        Some("x".to_owned())
    };
    let mut lexer = Lexer::new(text, escape, &mut record);
    // Errors only end the scan early; what was found is still the answer.
    let _ = lexer.process_all();
    names
}

/// Options of the lexer that differ between word processing for expansion
/// and the raw splitting the parser does to find heredocs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LexOptions {
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset: bool,
}

/// Splits `text` into words with the given options and every variable
/// unset, as the parser does when it looks for heredocs. Fails when the
/// text does not lex (an unterminated quote).
pub(crate) fn raw_words(text: &str, options: LexOptions) -> Result<Vec<String>, SubstitutionError> {
    let mut unset = |_: &str| None;
    let mut lexer = Lexer::new(text, '\\', &mut unset);
    lexer.options = options;
    lexer.process_all().map(|(_, words)| words)
}

/// Words being collected while a text is processed: whitespace splits
/// unquoted text and expanded values, never quoted text.
#[derive(Default)]
struct Words {
    words: Vec<String>,
    word: String,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    options: LexOptions,
    lookup: &'a mut dyn FnMut(&str) -> Option<String>,
    depth: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &str, escape: char, lookup: &'a mut dyn FnMut(&str) -> Option<String>) -> Self {
        Self {
            chars: text.chars().collect(),
            pos: 0,
            escape,
            options: LexOptions::default(),
            lookup,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn process_all(&mut self) -> Result<(String, Vec<String>), SubstitutionError> {
        self.process_until(None, self.options.raw_escapes)
    }

    /// Processes until `stop` (consumed) or the end of the text.
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), SubstitutionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SubstitutionError::TooDeep);
        }
        let result = self.process_until_inner(stop, raw_escapes);
        self.depth -= 1;
        result
    }

    fn process_until_inner(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), SubstitutionError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match ch {
                '\'' => {
                    let s = self.single_quoted()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '"' => {
                    let s = self.double_quoted()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    result.push_str(&s);
                    words.add_string(&s);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        if raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // A trailing escape is dropped.
                        let Some(escaped) = self.next_char() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            // The only stop character is the `}` of `${...}`.
            Some(_) => Err(SubstitutionError::MissingBrace),
            None => Ok((result, words.finish())),
        }
    }

    /// `'...'`: everything literal; a single quote cannot be escaped inside.
    fn single_quoted(&mut self) -> Result<String, SubstitutionError> {
        let mut out = String::new();
        let open = self.next_char();
        if self.options.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.next_char() {
                None => return Err(SubstitutionError::UnterminatedQuote { quote: "single-quote" }),
                Some('\'') => {
                    if self.options.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// `"..."`: `$` expands; the escape character escapes `"`, `$` and itself
    /// and is kept before anything else.
    fn double_quoted(&mut self) -> Result<String, SubstitutionError> {
        let mut out = String::new();
        let open = self.next_char();
        if self.options.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(SubstitutionError::UnterminatedQuote { quote: "double-quote" }),
                Some('"') => {
                    self.pos += 1;
                    if self.options.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some(mut ch) => {
                    self.pos += 1;
                    if ch == self.escape {
                        if self.options.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            // An escape at the very end is dropped; the
                            // missing quote is reported next time round.
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                self.pos += 1;
                                ch = next;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    /// A name after `$`: letters, digits and `_`; or a run of digits; or
    /// one of the shell's special parameters.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!') {
                self.pos += 1;
                name.push(ch);
                return name;
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            self.pos += 1;
            name.push(ch);
        }
        name
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// `$NAME` or `${...}`, positioned on the `$`.
    fn dollar(&mut self) -> Result<String, SubstitutionError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.options.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(SubstitutionError::MissingBrace),
            Some('{' | '}' | ':') => return Err(SubstitutionError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        match self.next_char() {
            None => Err(SubstitutionError::MissingBrace),
            Some('}') => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.options.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let modifier = self.next_char().ok_or(SubstitutionError::MissingBrace)?;
                // Looked up before the word so names are seen in text order.
                let value = self.lookup(&name);
                let (word, _) = self.process_until(Some('}'), self.options.raw_escapes)?;
                let unset = value.is_none();
                let Some(value) = value.filter(|v| !v.is_empty()) else {
                    if unset && self.options.skip_unset {
                        return Ok(format!("${{{name}:{modifier}{word}}}"));
                    }
                    return match modifier {
                        '-' => Ok(word),
                        '+' => Ok(String::new()),
                        '?' => Err(required(&name, &word, unset)),
                        m => Err(SubstitutionError::UnsupportedModifier { modifier: m }),
                    };
                };
                match modifier {
                    '-' | '?' => Ok(value),
                    '+' => Ok(word),
                    m => Err(SubstitutionError::UnsupportedModifier { modifier: m }),
                }
            }
            Some(modifier @ ('-' | '+' | '?')) => {
                let value = self.lookup(&name);
                let (word, _) = self.process_until(Some('}'), self.options.raw_escapes)?;
                match (value, modifier) {
                    (None, _) if self.options.skip_unset => {
                        Ok(format!("${{{name}{modifier}{word}}}"))
                    }
                    (None, '-') => Ok(word),
                    (None, '+') => Ok(String::new()),
                    (None, _) => Err(required(&name, &word, true)),
                    (Some(_), '+') => Ok(word),
                    (Some(v), _) => Ok(v),
                }
            }
            Some(modifier @ ('#' | '%')) => {
                let longest = self.peek() == Some(modifier);
                if longest {
                    self.pos += 1;
                }
                let value = self.lookup(&name);
                // The pattern keeps its escapes so `\*` stays a literal star.
                let (pattern, _) = self.process_until(Some('}'), true)?;
                let Some(value) = value else {
                    if self.options.skip_unset {
                        let op = if longest {
                            format!("{modifier}{modifier}")
                        } else {
                            modifier.to_string()
                        };
                        return Ok(format!("${{{name}{op}{pattern}}}"));
                    }
                    return Ok(String::new());
                };
                Ok(trim_match(&value, &pattern, modifier == '#', longest, self.escape))
            }
            Some(m) => Err(SubstitutionError::UnsupportedModifier { modifier: m }),
        }
    }
}

fn required(name: &str, word: &str, unset: bool) -> SubstitutionError {
    let message = if !word.is_empty() {
        word.to_owned()
    } else if unset {
        "is not allowed to be unset".to_owned()
    } else {
        "is not allowed to be empty".to_owned()
    };
    SubstitutionError::Required { name: name.to_owned(), message }
}

/// `${VAR#p}` / `${VAR##p}` (prefix) and `${VAR%p}` / `${VAR%%p}` (suffix):
/// removes the shortest or longest match of the glob `p`.
fn trim_match(value: &str, pattern: &str, prefix: bool, longest: bool, escape: char) -> String {
    let glob = Glob::new(pattern, escape);
    let v: Vec<char> = value.chars().collect();
    let cuts: Vec<usize> = if prefix == longest {
        // prefix+longest and suffix+shortest both try the latest cut first.
        (0..=v.len()).rev().collect()
    } else {
        (0..=v.len()).collect()
    };
    for cut in cuts {
        let (matched, kept) = if prefix { (&v[..cut], &v[cut..]) } else { (&v[cut..], &v[..cut]) };
        if glob.matches(matched) {
            return kept.iter().collect();
        }
    }
    value.to_owned()
}

/// A shell glob for `#` and `%`: `*`, `?` and literal characters.
struct Glob {
    tokens: Vec<GlobToken>,
}

#[derive(Clone, Copy, PartialEq)]
enum GlobToken {
    Literal(char),
    Any,
    One,
}

impl Glob {
    fn new(pattern: &str, escape: char) -> Self {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => GlobToken::Any,
                '?' => GlobToken::One,
                c if c == escape => match chars.next() {
                    Some(n) => GlobToken::Literal(n),
                    None => GlobToken::Literal(c),
                },
                c => GlobToken::Literal(c),
            });
        }
        Self { tokens }
    }

    /// Whole-string match by dynamic programming: linear in both lengths,
    /// whatever the pattern.
    fn matches(&self, s: &[char]) -> bool {
        // alive[i]: the first i characters are matched by the tokens so far.
        let mut alive = vec![false; s.len() + 1];
        alive[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; s.len() + 1];
            match token {
                GlobToken::Any => {
                    let mut seen = false;
                    for i in 0..=s.len() {
                        seen |= alive[i];
                        next[i] = seen;
                    }
                }
                GlobToken::One => {
                    next[1..].copy_from_slice(&alive[..s.len()]);
                }
                GlobToken::Literal(c) => {
                    for i in 0..s.len() {
                        next[i + 1] = alive[i] && s[i] == *c;
                    }
                }
            }
            alive = next;
        }
        alive[s.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        [("A", "apple"), ("EMPTY", ""), ("SP", "a  b"), ("P", "/usr/local/bin.tar.gz")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn ex(s: &str) -> Result<String, SubstitutionError> {
        expand_word(s, env().as_slice(), '\\')
    }

    #[test]
    fn expands_plain_and_braced_names() {
        assert_eq!(ex("$A").unwrap(), "apple");
        assert_eq!(ex("${A}s").unwrap(), "apples");
        assert_eq!(ex("$As").unwrap(), "", "$As is the variable As, unset");
        assert_eq!(ex("x$UNSET-y").unwrap(), "x-y");
        assert_eq!(ex("cost $").unwrap(), "cost $");
        assert_eq!(ex("$/x").unwrap(), "$/x");
    }

    #[test]
    fn default_and_alternative_forms_follow_set_versus_empty() {
        assert_eq!(ex("${UNSET:-d}").unwrap(), "d");
        assert_eq!(ex("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(ex("${A:-d}").unwrap(), "apple");
        assert_eq!(ex("${UNSET-d}").unwrap(), "d");
        assert_eq!(ex("${EMPTY-d}").unwrap(), "");
        assert_eq!(ex("${A:+alt}").unwrap(), "alt");
        assert_eq!(ex("${EMPTY:+alt}").unwrap(), "");
        assert_eq!(ex("${EMPTY+alt}").unwrap(), "alt");
        assert_eq!(ex("${UNSET+alt}").unwrap(), "");
        assert_eq!(ex("${UNSET:-${A}-pie}").unwrap(), "apple-pie");
    }

    #[test]
    fn required_form_fails_with_the_message() {
        assert_eq!(ex("${UNSET:?set it}").unwrap_err().to_string(), "UNSET: set it");
        assert_eq!(ex("${EMPTY:?}").unwrap_err().to_string(), "EMPTY: is not allowed to be empty");
        assert_eq!(ex("${EMPTY?}").unwrap(), "");
        assert_eq!(ex("${UNSET?}").unwrap_err().to_string(), "UNSET: is not allowed to be unset");
    }

    #[test]
    fn prefix_and_suffix_removal() {
        assert_eq!(ex("${P#*/}").unwrap(), "usr/local/bin.tar.gz");
        assert_eq!(ex("${P##*/}").unwrap(), "bin.tar.gz");
        assert_eq!(ex("${P%.*}").unwrap(), "/usr/local/bin.tar");
        assert_eq!(ex("${P%%.*}").unwrap(), "/usr/local/bin");
        assert_eq!(ex("${P%nomatch}").unwrap(), "/usr/local/bin.tar.gz");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(ex("'$A'").unwrap(), "$A");
        assert_eq!(ex("\"$A\"").unwrap(), "apple");
        assert_eq!(ex(r"\$A").unwrap(), "$A");
        assert_eq!(ex(r#""\$A \"q\" \n""#).unwrap(), r#"$A "q" \n"#);
        assert_eq!(ex(r"a\ b").unwrap(), "a b");
        assert_eq!(ex("a\\").unwrap(), "a");
        assert_eq!(expand_word("`$A", env().as_slice(), '`').unwrap(), "$A");
        assert_eq!(expand_word(r"C:\$A", env().as_slice(), '`').unwrap(), r"C:\apple");
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(ex("${A").unwrap_err(), SubstitutionError::MissingBrace);
        assert_eq!(ex("${").unwrap_err(), SubstitutionError::MissingBrace);
        assert_eq!(ex("${}").unwrap_err(), SubstitutionError::BadSubstitution);
        assert_eq!(ex("${:-x}").unwrap_err(), SubstitutionError::BadSubstitution);
        assert_eq!(
            ex("${A!x}").unwrap_err(),
            SubstitutionError::UnsupportedModifier { modifier: '!' }
        );
        assert_eq!(
            ex("${A:x}").unwrap_err(),
            SubstitutionError::UnsupportedModifier { modifier: 'x' }
        );
        assert!(matches!(ex("'abc").unwrap_err(), SubstitutionError::UnterminatedQuote { .. }));
        assert!(matches!(ex("\"abc").unwrap_err(), SubstitutionError::UnterminatedQuote { .. }));
        let deep = format!("{}x{}", "${A:-".repeat(100), "}".repeat(100));
        assert_eq!(ex(&deep).unwrap_err(), SubstitutionError::TooDeep);
    }

    #[test]
    fn words_split_on_unquoted_and_expanded_whitespace() {
        let w = expand_words("$SP 'c d' \"$SP\" e\\ f", env().as_slice(), '\\').unwrap();
        assert_eq!(w, ["a", "b", "c d", "a  b", "e f"]);
        assert_eq!(expand_words("  ", env().as_slice(), '\\').unwrap(), Vec::<String>::new());
    }

    #[test]
    fn lists_referenced_variables_once_in_order() {
        assert_eq!(
            referenced_variables("$A ${B:-$C} '$D' \\$E \"$F\" ${A} ${G:?}", '\\'),
            ["A", "B", "C", "F", "G"]
        );
        assert_eq!(referenced_variables("${A:-$B", '\\'), ["A", "B"]);
        assert!(referenced_variables("no vars", '\\').is_empty());
    }

    #[test]
    fn maps_and_slices_are_variable_sources() {
        let map: HashMap<String, String> = HashMap::from([("X".into(), "1".into())]);
        let tree: BTreeMap<String, String> = BTreeMap::from([("X".into(), "2".into())]);
        let pairs = vec![("X".to_owned(), "3".to_owned()), ("X".to_owned(), "4".to_owned())];
        assert_eq!(expand_word("$X", &map, '\\').unwrap(), "1");
        assert_eq!(expand_word("$X", &tree, '\\').unwrap(), "2");
        assert_eq!(expand_word("$X", pairs.as_slice(), '\\').unwrap(), "4");
        assert_eq!(expand_word("[$X]", &NoVariables, '\\').unwrap(), "[]");
    }

    #[test]
    fn raw_lexing_keeps_quotes_and_unset_references() {
        let opts = LexOptions { raw_quotes: true, raw_escapes: true, skip_unset: false };
        assert_eq!(
            raw_words(r#"RUN cat <<"EOF" \x"#, opts).unwrap(),
            ["RUN", "cat", "<<\"EOF\"", "\\x"]
        );
        let opts = LexOptions { skip_unset: true, ..LexOptions::default() };
        assert_eq!(raw_words("$X ${Y}", opts).unwrap(), ["$X", "${Y}"]);
    }
}
