//! Request paths: query strings and escaped path segments.

use std::collections::BTreeMap;

/// `path?k=v&…`, values percent-encoded.
pub(crate) fn with_query(path: &str, query: &[(&str, String)]) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", escape(v, b""))).collect();
    format!("{path}?{}", pairs.join("&"))
}

/// An image name as a path: `/`, `:` and `@` stay (dockerd routes on them).
pub(crate) fn escape_path(name: &str) -> String {
    escape(name, b"/:@")
}

/// A container or exec id or name as one path segment.
pub(crate) fn escape_segment(name: &str) -> String {
    escape(name, b"")
}

/// `--filter` values as the API takes them: `{"key":["value",…]}`.
/// `path?filters=…`, or `path` when there are none.
pub(crate) fn filtered(path: &str, filters: &BTreeMap<String, Vec<String>>) -> String {
    let mut query = Vec::new();
    if !filters.is_empty() {
        query.push(("filters", filters_json(filters)));
    }
    with_query(path, &query)
}

pub(crate) fn filters_json(filters: &BTreeMap<String, Vec<String>>) -> String {
    serde_json::to_string(filters).unwrap_or_default()
}

/// `"1"` for a flag that is set; the docker client sends only set flags.
pub(crate) fn push_flag(query: &mut Vec<(&'static str, String)>, name: &'static str, set: bool) {
    if set {
        query.push((name, "1".to_owned()));
    }
}

fn escape(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_paths_are_escaped() {
        assert_eq!(
            with_query("/x", &[("changes", r#"CMD ["sh"]"#.to_owned()), ("n", "a:1".to_owned())]),
            "/x?changes=CMD%20%5B%22sh%22%5D&n=a%3A1"
        );
        assert_eq!(escape_path("localhost:5000/a b@sha256:ab"), "localhost:5000/a%20b@sha256:ab");
        assert_eq!(escape_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn filters_encode_as_json_lists() {
        let mut filters = BTreeMap::new();
        filters.insert("status".to_owned(), vec!["exited".to_owned()]);
        filters.insert("label".to_owned(), vec!["a=b".to_owned(), "c".to_owned()]);
        assert_eq!(filters_json(&filters), r#"{"label":["a=b","c"],"status":["exited"]}"#);
    }
}
