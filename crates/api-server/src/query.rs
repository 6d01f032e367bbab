//! Query strings and percent-encoded path segments, decoded as Go's
//! `net/url` does (dockerd's clients encode with it).

/// The decoded `key=value` pairs of a query string, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k, true), decode(v, true))
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (`names=a&names=b`).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }

    /// docker-compat: dockerd's `BoolValue`: anything but empty, `0`, `no`,
    /// `false` and `none` is true.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "no" | "false" | "none")
        })
    }
}

/// Percent-decode `text`; with `plus_is_space`, `+` is a space (query strings).
/// Malformed escapes are kept as they are.
pub fn decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_like_go() {
        let q = Query::parse(Some("names=a%3A1&names=b&force=1&changes=CMD+%5B%22sh%22%5D&x"));
        assert_eq!(q.all("names"), ["a:1", "b"]);
        assert!(q.flag("force"));
        assert!(!q.flag("x"));
        assert!(!q.flag("missing"));
        assert_eq!(q.get("changes"), Some(r#"CMD ["sh"]"#));
        assert_eq!(decode("a%2Fb+c%", false), "a/b+c%");
        assert_eq!(decode("%zz%4", true), "%zz%4");
    }
}
