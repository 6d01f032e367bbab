//! `WWW-Authenticate` challenges (RFC 7235), as registries send them.

use std::collections::BTreeMap;

/// The scheme of a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// A token from `realm` is wanted (Docker Hub, most registries).
    Bearer,
    /// A user name and password are wanted.
    Basic,
    /// Anything else, by name.
    Other(String),
}

/// One challenge: its scheme and parameters (`realm`, `service`, `scope`,
/// keys lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: Scheme,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// Parse the value of a `WWW-Authenticate` header:
    /// `Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"`.
    /// Quoted values may hold commas and `\"`; unquoted ones end at a comma.
    /// `None` when there is no scheme.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = match header.split_once(char::is_whitespace) {
            Some((scheme, rest)) => (scheme, rest),
            None => (header, ""),
        };
        if scheme.is_empty() {
            return None;
        }
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "bearer" => Scheme::Bearer,
            "basic" => Scheme::Basic,
            other => Scheme::Other(other.to_owned()),
        };
        Some(Challenge { scheme, params: parse_params(rest) })
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

fn parse_params(mut rest: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some((key, after)) = rest.split_once('=') else { break };
        let key = key.trim().to_ascii_lowercase();
        let (value, remainder) = param_value(after, ',');
        if !key.is_empty() {
            params.insert(key, value);
        }
        rest = remainder;
    }
    params
}

/// The value at the start of `after` (a `"quoted string"` with `\\`
/// escapes, or a token up to `separator`) and what follows it: HTTP's
/// parameter syntax, shared by challenges and Content-Disposition.
pub(crate) fn param_value(after: &str, separator: char) -> (String, &str) {
    let after = after.trim_start();
    let Some(quoted) = after.strip_prefix('"') else {
        let end = after.find(separator).unwrap_or(after.len());
        return (after[..end].trim().to_owned(), &after[end..]);
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    let mut end = quoted.len();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '"' => {
                end = i + 1;
                break;
            }
            c => value.push(c),
        }
    }
    (value, &quoted[end.min(quoted.len())..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_give_realm_service_and_scope() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .expect("challenge");
        assert_eq!(c.scheme, Scheme::Bearer);
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn quoted_commas_escapes_and_bare_values_are_kept() {
        let c = Challenge::parse(
            r#"bearer Realm = "http://127.0.0.1:1/t", scope="repository:a:pull,push", error=insufficient_scope, x="a\"b""#,
        )
        .expect("challenge");
        assert_eq!(c.scheme, Scheme::Bearer);
        assert_eq!(c.param("realm"), Some("http://127.0.0.1:1/t"));
        assert_eq!(c.param("scope"), Some("repository:a:pull,push"));
        assert_eq!(c.param("error"), Some("insufficient_scope"));
        assert_eq!(c.param("x"), Some("a\"b"));
    }

    #[test]
    fn basic_and_other_schemes_are_told_apart() {
        let basic = Challenge::parse(r#"Basic realm="Registry Realm""#).expect("basic");
        assert_eq!(basic.scheme, Scheme::Basic);
        assert_eq!(basic.param("realm"), Some("Registry Realm"));
        assert_eq!(
            Challenge::parse("Negotiate").expect("other").scheme,
            Scheme::Other("negotiate".into())
        );
        assert_eq!(Challenge::parse("  "), None);
        assert!(Challenge::parse(r#"Bearer realm="unterminated"#).is_some());
    }
}
