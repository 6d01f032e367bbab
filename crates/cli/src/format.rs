//! `--format`: `json`, and the part of Go's templates people use with the
//! docker CLI: `{{json .}}`, `{{.Server.Version}}`, `{{json .Client}}`,
//! `{{index .Config.Labels "k"}}`, `{{.Label "k"}}`, with text around them.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("template {template:?}: unclosed action")]
    Unclosed { template: String },
    #[error("template {template:?}: unsupported action {action:?} (supported: .Field.Path, json .Field.Path, index .Field.Path \"key\")")]
    Unsupported { template: String, action: String },
}

/// A template line rendered over `value`, split into cells at tabs: one
/// row of a `--format 'table …'` listing.
pub fn cells(template: &str, value: &Value) -> anyhow::Result<Vec<String>> {
    let line = render(template, value)?;
    Ok(line.trim_end_matches('\n').split('\t').map(str::to_owned).collect())
}

/// Render `template` over `value`, with a final newline as docker prints.
pub fn render(template: &str, value: &Value) -> Result<String, FormatError> {
    if template.trim() == "json" {
        return Ok(format!("{value}\n"));
    }
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| FormatError::Unclosed { template: template.to_owned() })?;
        out.push_str(&action(template, after[..end].trim(), value)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out.push('\n');
    Ok(out)
}

fn action(template: &str, action: &str, value: &Value) -> Result<String, FormatError> {
    let unsupported =
        || FormatError::Unsupported { template: template.to_owned(), action: action.to_owned() };
    let (as_json, expression) = match action.strip_prefix("json ") {
        Some(rest) => (true, rest.trim()),
        None => (false, action),
    };
    let words = words(expression).ok_or_else(unsupported)?;
    let field: Option<Value> = match words.as_slice() {
        [path] => lookup(path, value).ok_or_else(unsupported)?.cloned(),
        // `{{index .Config.Labels "k"}}`: a key of a map; "" when absent, as
        // Go's index of a map of strings gives.
        [index, path, keys @ ..] if index == "index" && !keys.is_empty() => {
            let mut current = lookup(path, value).ok_or_else(unsupported)?;
            for key in keys {
                let key = key.strip_prefix('"').ok_or_else(unsupported)?;
                current = current.and_then(|v| v.get(key));
            }
            Some(current.cloned().unwrap_or_else(|| Value::String(String::new())))
        }
        // docker-compat: `{{.Label "k"}}` calls a method of docker's row
        // context; here the row has a map under that name (a header row has
        // a plain string, printed as is).
        [path, key] => {
            let key = key.strip_prefix('"').ok_or_else(unsupported)?;
            match lookup(path, value).ok_or_else(unsupported)? {
                Some(Value::Object(map)) => {
                    Some(map.get(key).cloned().unwrap_or_else(|| Value::String(String::new())))
                }
                Some(text @ Value::String(_)) => Some(text.clone()),
                _ => Some(Value::String(String::new())),
            }
        }
        _ => return Err(unsupported()),
    };
    Ok(match (as_json, field) {
        (true, Some(v)) => v.to_string(),
        (true, None) => "null".to_owned(),
        (false, Some(Value::String(s))) => s,
        (false, Some(Value::Null)) => "<nil>".to_owned(),
        (false, Some(v)) => v.to_string(),
        (false, None) => "<no value>".to_owned(),
    })
}

/// An action split into words; a quoted word keeps its opening `"` (and
/// loses the closing one) so it can be told from a field path. `None` for
/// an unclosed quote.
fn words(action: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = action.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            word.push(chars.next()?);
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => word.push(chars.next()?),
                    other => word.push(other),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word);
    }
    Some(out)
}

/// `.` → the value; `.A.B` → the field, `Some(None)` when absent; `None`
/// when `path` is not a field path.
fn lookup<'v>(path: &str, value: &'v Value) -> Option<Option<&'v Value>> {
    if path == "." {
        return Some(Some(value));
    }
    let fields = path.strip_prefix('.')?;
    let mut current = Some(value);
    for name in fields.split('.') {
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        current = current.and_then(|v| v.get(name));
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_fields_and_json() {
        let v = serde_json::json!({"Server": {"Version": "0.1.0", "Os": "linux"}, "N": 2});
        assert_eq!(render("{{.Server.Version}}", &v).expect("field"), "0.1.0\n");
        assert_eq!(render("{{ .Server.Os }}/{{.N}}", &v).expect("text"), "linux/2\n");
        assert_eq!(
            render("{{json .Server}}", &v).expect("json"),
            "{\"Os\":\"linux\",\"Version\":\"0.1.0\"}\n"
        );
        assert_eq!(render("json", &v).expect("json"), format!("{v}\n"));
        assert_eq!(render("{{json .}}", &v).expect("json"), format!("{v}\n"));
        assert_eq!(render("{{.Nope}}", &v).expect("missing"), "<no value>\n");
    }

    #[test]
    fn map_keys_are_indexed_by_index_and_by_method_call() {
        let v = serde_json::json!({"Config": {"Labels": {"a.b": "1"}}, "Label": {"k": "v"}});
        assert_eq!(render(r#"{{index .Config.Labels "a.b"}}"#, &v).expect("index"), "1\n");
        assert_eq!(render(r#"{{index .Config.Labels "x"}}"#, &v).expect("missing"), "\n");
        assert_eq!(render(r#"{{.Label "k"}}/{{.Label "x"}}"#, &v).expect("label"), "v/\n");
        let header = serde_json::json!({"Label": "LABEL"});
        assert_eq!(render(r#"{{.Label "k"}}"#, &header).expect("header"), "LABEL\n");
        assert!(matches!(
            render(r#"{{index .X "unclosed}}"#, &v),
            Err(FormatError::Unsupported { .. })
        ));
    }

    #[test]
    fn unsupported_templates_are_errors() {
        let v = serde_json::json!({});
        assert!(matches!(render("{{range .X}}", &v), Err(FormatError::Unsupported { .. })));
        assert!(matches!(render("{{.X", &v), Err(FormatError::Unclosed { .. })));
    }
}
