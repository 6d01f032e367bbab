//! How the parser splits an instruction's arguments, before any expansion.

use crate::error::ErrorReason;

/// Splits on whitespace outside quotes, keeping quotes and escapes in the
/// words: `a="b c" d\ e` gives `a="b c"` and `d\ e`. ENV, LABEL and ARG
/// arguments are read this way; quotes go later, with expansion.
pub(crate) fn split_keeping_quotes(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A quoted empty string ("") is still a word.
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = rest.chars().peekable();
    while let Some(ch) = chars.next() {
        if let Some(q) = quote {
            if ch == q {
                quote = None;
                word.push(ch);
            } else if ch == escape && q != '\'' {
                // Single quotes escape nothing; elsewhere the escape and the
                // character after it stay together.
                match chars.next() {
                    Some(next) => {
                        word.push(ch);
                        word.push(next);
                    }
                    None => quote = None,
                }
            } else {
                word.push(ch);
            }
            continue;
        }
        if ch.is_whitespace() {
            if in_word && (blank_ok || !word.is_empty()) {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            continue;
        }
        in_word = true;
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
            word.push(ch);
        } else if ch == escape {
            if let Some(next) = chars.next() {
                word.push(ch);
                word.push(next);
            }
        } else {
            word.push(ch);
        }
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Splits on runs of spaces and tabs only, as Docker splits FROM, EXPOSE and
/// the shell form of COPY, ADD and VOLUME: quotes mean nothing here.
pub(crate) fn split_whitespace(rest: &str) -> Vec<String> {
    rest.split(is_line_space).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

/// The whitespace Docker's instruction splitter knows: space, tab, vertical
/// tab, form feed, carriage return.
pub(crate) fn is_line_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{0b}' | '\u{0c}' | '\r')
}

/// Reads `rest` as an exec-form JSON array of strings.
///
/// `Ok(None)`: not a JSON array at all (it does not start with `[` or is
/// not valid JSON), so the caller takes it as shell form, as Docker does.
/// `Err`: valid JSON array with something other than strings in it.
pub(crate) fn json_strings(rest: &str) -> Result<Option<Vec<String>>, ErrorReason> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ErrorReason::NotStringArray),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_words_keep_their_quotes_and_spaces() {
        assert_eq!(
            split_keeping_quotes(r#"a="b c" d\ e 'f g'h """#, '\\'),
            [r#"a="b c""#, r"d\ e", "'f g'h", r#""""#]
        );
        assert_eq!(split_keeping_quotes(r#"a="x\"y" b"#, '\\'), [r#"a="x\"y""#, "b"]);
        assert_eq!(split_keeping_quotes("a='x\\' b", '\\'), ["a='x\\'", "b"]);
        assert_eq!(split_keeping_quotes("a`  b", '`'), ["a` ", "b"]);
        assert_eq!(split_keeping_quotes("  ", '\\'), Vec::<String>::new());
        assert_eq!(split_keeping_quotes("a\\", '\\'), ["a"]);
    }

    #[test]
    fn whitespace_split_ignores_quotes() {
        assert_eq!(split_whitespace("\"a b\"\t c"), ["\"a", "b\"", "c"]);
    }

    #[test]
    fn json_array_or_shell_form() {
        assert_eq!(json_strings(r#"["a", "b c"]"#).unwrap().unwrap(), ["a", "b c"]);
        assert_eq!(json_strings("[]").unwrap().unwrap(), Vec::<String>::new());
        assert_eq!(json_strings("echo [a]").unwrap(), None);
        assert_eq!(json_strings("[\"a\", ]").unwrap(), None, "invalid JSON is shell form");
        assert_eq!(json_strings("[a]").unwrap(), None);
        assert_eq!(json_strings(r#"["a", 1]"#).unwrap_err(), ErrorReason::NotStringArray);
    }
}
