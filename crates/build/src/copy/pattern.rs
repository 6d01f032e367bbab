//! Wildcards in COPY and ADD sources: one pattern per path component, with
//! the syntax of Go's `filepath.Match`, which Docker checks sources with.
//!
//! `*` is any run of characters, `?` one character, `[a-z]`/`[^a-z]` one
//! character of (or not of) a class, `\x` the character `x`. A component
//! without an unescaped `*`, `?` or `[` is not a pattern: it names a file
//! literally, backslashes included, as in Docker.

/// One compiled component pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `[...]`
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Whether a component holds a wildcard: an unescaped `*`, `?` or `[`.
pub(crate) fn has_wildcard(component: &str) -> bool {
    let mut chars = component.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

impl Pattern {
    /// Compiles a component; `None` when it is malformed the way Go's
    /// `filepath.ErrBadPattern` is (an unclosed or empty class, a trailing
    /// `\`, an unescaped `-` or `]` where a class character belongs).
    pub(crate) fn new(component: &str) -> Option<Pattern> {
        let chars: Vec<char> = component.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => {
                    // Consecutive stars match what one does.
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::One),
                '\\' => {
                    let escaped = *chars.get(i)?;
                    i += 1;
                    tokens.push(Token::Literal(escaped));
                }
                '[' => {
                    let negated = chars.get(i) == Some(&'^');
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    loop {
                        if chars.get(i) == Some(&']') && !ranges.is_empty() {
                            i += 1;
                            break;
                        }
                        let lo = class_char(&chars, &mut i)?;
                        let hi = if chars.get(i) == Some(&'-') {
                            i += 1;
                            class_char(&chars, &mut i)?
                        } else {
                            lo
                        };
                        if lo > hi {
                            return None;
                        }
                        ranges.push((lo, hi));
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                c => tokens.push(Token::Literal(c)),
            }
        }
        Some(Pattern { tokens })
    }

    /// Whether the whole of `name` (one path component) matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        // The classic single-backtrack glob match: on a mismatch, let the
        // last star eat one more character and retry from there.
        let (mut t, mut n) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match self.tokens.get(t) {
                Some(Token::Star) => {
                    star = Some((t, n));
                    t += 1;
                    continue;
                }
                Some(token) if token.accepts(name[n]) => {
                    t += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((st, sn)) => {
                    t = st + 1;
                    n = sn + 1;
                    star = Some((st, sn + 1));
                }
                None => return false,
            }
        }
        self.tokens[t..].iter().all(|token| *token == Token::Star)
    }
}

impl Token {
    fn accepts(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::One => c != '/',
            Token::Star => true,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// One character of a class, unescaping `\x`; `-` and `]` must be escaped.
fn class_char(chars: &[char], i: &mut usize) -> Option<char> {
    let mut c = *chars.get(*i)?;
    if c == '-' || c == ']' {
        return None;
    }
    if c == '\\' {
        *i += 1;
        c = *chars.get(*i)?;
    }
    *i += 1;
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, name: &str) -> bool {
        Pattern::new(pattern).expect("valid pattern").matches(name)
    }

    #[test]
    fn stars_and_questions_match_like_go() {
        assert!(matches("*.txt", "a.txt"));
        assert!(matches("*.txt", ".txt"));
        assert!(matches("*.txt", ".hidden.txt"), "Go's `*` matches a leading dot");
        assert!(!matches("*.txt", "a.txt.bak"));
        assert!(matches("a*b*c", "abc"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(matches("file?.go", "file1.go"));
        assert!(!matches("file?.go", "file.go"));
        assert!(matches("*", ""));
        assert!(matches("**", "anything"));
    }

    #[test]
    fn classes_ranges_negation_and_escapes() {
        assert!(matches("[abc].txt", "b.txt"));
        assert!(!matches("[abc].txt", "d.txt"));
        assert!(matches("[a-c]x", "cx"));
        assert!(matches("[^a-c]x", "dx"));
        assert!(!matches("[^a-c]x", "ax"));
        assert!(matches("[\\]]", "]"));
        assert!(matches("\\*", "*"));
        assert!(!matches("\\*", "a"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["[", "[]", "[a", "a\\", "[z-a]", "[-]", "[a-]"] {
            assert_eq!(Pattern::new(bad), None, "{bad}");
        }
    }

    #[test]
    fn wildcards_are_found_unless_escaped() {
        assert!(has_wildcard("*.txt"));
        assert!(has_wildcard("a?"));
        assert!(has_wildcard("[ab]"));
        assert!(!has_wildcard("plain.txt"));
        assert!(!has_wildcard("a\\*b"));
    }
}
