//! `--format`: `json`, and the part of Go's templates people use with the
//! docker CLI: `{{json .}}`, `{{.Server.Version}}`, `{{json .Client}}`,
//! with text around them.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("template {template:?}: unclosed action")]
    Unclosed { template: String },
    #[error("template {template:?}: unsupported action {action:?} (supported: .Field.Path, json .Field.Path)")]
    Unsupported { template: String, action: String },
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
    let (as_json, path) = match action.strip_prefix("json ") {
        Some(path) => (true, path.trim()),
        None => (false, action),
    };
    let field = lookup(path, value).ok_or_else(unsupported)?;
    Ok(match (as_json, field) {
        (true, Some(v)) => v.to_string(),
        (true, None) => "null".to_owned(),
        (false, Some(Value::String(s))) => s.clone(),
        (false, Some(Value::Null)) => "<nil>".to_owned(),
        (false, Some(v)) => v.to_string(),
        (false, None) => "<no value>".to_owned(),
    })
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
    fn unsupported_templates_are_errors() {
        let v = serde_json::json!({});
        assert!(matches!(render("{{range .X}}", &v), Err(FormatError::Unsupported { .. })));
        assert!(matches!(render("{{.X", &v), Err(FormatError::Unclosed { .. })));
    }
}
