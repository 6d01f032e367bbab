//! Builder flags: the `--name=value` words at the start of an instruction's
//! arguments (`COPY --from=build --link a b`).

use std::collections::BTreeMap;

use crate::error::{suggest, ErrorReason};

/// What a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=x`, once.
    String,
    /// `--exclude=x`, any number of times.
    Strings,
}

/// The flags an instruction accepts.
pub(crate) type FlagSpec = &'static [(&'static str, FlagKind)];

/// Flag words taken off the front of `args`, and what follows them.
///
/// Flags end at the first word that does not start with `--`, or after a
/// lone `--`. Quotes inside a flag word are removed and the backslash
/// escapes the next character, as in BuildKit (`--chown="a b"`).
pub(crate) fn take_flags(args: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = args;
    loop {
        let trimmed = rest.trim_start();
        if !trimmed.starts_with("--") {
            return (flags, trimmed);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut blank_ok = false;
        let mut chars = trimmed.char_indices();
        let mut end = trimmed.len();
        while let Some((i, ch)) = chars.next() {
            match quote {
                Some(q) if ch == q => quote = None,
                Some(_) if ch == '\\' => {
                    if let Some((_, next)) = chars.next() {
                        word.push(next);
                    }
                }
                Some(_) => word.push(ch),
                None if ch.is_whitespace() => {
                    end = i;
                    break;
                }
                None if ch == '\'' || ch == '"' => {
                    quote = Some(ch);
                    blank_ok = true;
                }
                None if ch == '\\' => {
                    if let Some((_, next)) = chars.next() {
                        word.push(next);
                    }
                }
                None => word.push(ch),
            }
        }
        rest = &trimmed[end..];
        if word == "--" && !blank_ok {
            return (flags, rest.trim_start());
        }
        if blank_ok || !word.is_empty() {
            flags.push(word);
        }
    }
}

/// Flag values after checking them against what an instruction accepts.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Flags {
    /// Checks `words` against `spec`: unknown flags, missing values,
    /// non-boolean values and repeats of single flags are errors.
    pub(crate) fn parse(
        keyword: &str,
        words: &[String],
        spec: FlagSpec,
    ) -> Result<Self, ErrorReason> {
        let mut flags = Self::default();
        for word in words {
            let Some(body) = word.strip_prefix("--") else {
                return Err(ErrorReason::FlagSyntax { word: word.clone() });
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(known, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(ErrorReason::UnknownFlag {
                    keyword: keyword.to_owned(),
                    flag: name.to_owned(),
                    suggestion: suggest(name, spec.iter().map(|(n, _)| *n))
                        .map(|s| format!("--{s}")),
                });
            };
            let values = flags.values.entry(known).or_default();
            if kind != FlagKind::Strings && !values.is_empty() {
                return Err(ErrorReason::DuplicateFlag { flag: known.to_owned() });
            }
            let value = match (kind, value) {
                (FlagKind::Bool, None) => "true".to_owned(),
                (FlagKind::Bool, Some("")) | (FlagKind::String | FlagKind::Strings, None) => {
                    return Err(ErrorReason::FlagMissingValue { flag: known.to_owned() })
                }
                (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" => "true".to_owned(),
                    "false" => "false".to_owned(),
                    _ => {
                        return Err(ErrorReason::FlagNotBool {
                            flag: known.to_owned(),
                            value: v.to_owned(),
                        })
                    }
                },
                (_, Some(v)) => v.to_owned(),
            };
            values.push(value);
        }
        Ok(flags)
    }

    /// The value of a single-valued flag, if given.
    pub(crate) fn string(&mut self, name: &str) -> Option<String> {
        self.values.remove(name).and_then(|mut v| v.pop())
    }

    /// Every value of a repeatable flag, in order.
    pub(crate) fn strings(&mut self, name: &str) -> Vec<String> {
        self.values.remove(name).unwrap_or_default()
    }

    /// A boolean flag: false when absent.
    pub(crate) fn bool(&mut self, name: &str) -> bool {
        self.string(name).as_deref() == Some("true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: FlagSpec =
        &[("from", FlagKind::String), ("link", FlagKind::Bool), ("exclude", FlagKind::Strings)];

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn takes_leading_flag_words_only() {
        let (flags, rest) = take_flags("--from=build --link  a --b c");
        assert_eq!(flags, ["--from=build", "--link"]);
        assert_eq!(rest, "a --b c");
        let (flags, rest) = take_flags("--chown=\"a b\" --x='' src dst");
        assert_eq!(flags, ["--chown=a b", "--x="]);
        assert_eq!(rest, "src dst");
        let (flags, rest) = take_flags("--link -- --notaflag dst");
        assert_eq!(flags, ["--link"]);
        assert_eq!(rest, "--notaflag dst");
        let (flags, rest) = take_flags("  echo --mount=x");
        assert!(flags.is_empty());
        assert_eq!(rest, "echo --mount=x");
        assert_eq!(take_flags("--mount=type=cache,target=/x").0, ["--mount=type=cache,target=/x"]);
    }

    #[test]
    fn parses_values_by_kind() {
        let mut f = Flags::parse(
            "COPY",
            &words(&["--from=a", "--link", "--exclude=x", "--exclude=y"]),
            SPEC,
        )
        .unwrap();
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert!(f.bool("link"));
        assert_eq!(f.strings("exclude"), ["x", "y"]);
        let mut f = Flags::parse("COPY", &words(&["--link=FALSE", "--from="]), SPEC).unwrap();
        assert!(!f.bool("link"));
        assert_eq!(f.string("from").as_deref(), Some(""));
    }

    #[test]
    fn refuses_bad_flags() {
        let err = |w: &[&str]| Flags::parse("COPY", &words(w), SPEC).unwrap_err().to_string();
        assert_eq!(err(&["--form=a"]), "unknown flag: --form for COPY (did you mean --from?)");
        assert_eq!(err(&["--chown=a"]), "unknown flag: --chown for COPY");
        assert_eq!(err(&["--from"]), "missing a value on flag: --from");
        assert_eq!(err(&["--link="]), "missing a value on flag: --link");
        assert_eq!(err(&["--link=yes"]), "expecting boolean value for flag --link, not: yes");
        assert_eq!(err(&["--from=a", "--from=b"]), "duplicate flag specified: --from");
    }
}
