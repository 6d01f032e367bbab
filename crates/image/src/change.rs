//! `--change` instructions of `docker import` and `docker commit`, applied to a config.
//!
//! The Dockerfile instructions Docker allows there: CMD, ENTRYPOINT, ENV,
//! EXPOSE, LABEL, ONBUILD, USER, VOLUME and WORKDIR.

use kiln_types::{ErrorKind, HasKind};

use crate::config::{ContainerConfig, EmptyObject};

/// A `--change` that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("{instruction} is not a valid change command (in {change:?})")]
    NotAllowed { instruction: String, change: String },
    #[error("invalid change {change:?}: {reason}")]
    Invalid { change: String, reason: &'static str },
}

impl HasKind for ChangeError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotAllowed { .. } | Self::Invalid { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// Apply one change (`CMD ["sh"]`, `ENV A=b`, `EXPOSE 80/udp` …) to `config`.
pub fn apply_change(config: &mut ContainerConfig, change: &str) -> Result<(), ChangeError> {
    let invalid = |reason| ChangeError::Invalid { change: change.to_owned(), reason };
    let trimmed = change.trim();
    let (instruction, args) = match trimmed.split_once(char::is_whitespace) {
        Some((i, a)) => (i, a.trim()),
        None => (trimmed, ""),
    };
    if instruction.is_empty() {
        return Err(invalid("empty change"));
    }
    let upper = instruction.to_ascii_uppercase();
    if args.is_empty() {
        return Err(invalid("the instruction needs arguments"));
    }
    match upper.as_str() {
        "CMD" => config.cmd = Some(command(args)),
        "ENTRYPOINT" => config.entrypoint = Some(command(args)),
        "ENV" => {
            for (key, value) in pairs(args).ok_or_else(|| invalid("unbalanced quotes"))? {
                if key.is_empty() || key.contains(char::is_whitespace) {
                    return Err(invalid("ENV names must be non-empty and without spaces"));
                }
                config.set_env(&key, &value);
            }
        }
        "LABEL" => {
            for (key, value) in pairs(args).ok_or_else(|| invalid("unbalanced quotes"))? {
                if key.is_empty() {
                    return Err(invalid("LABEL names must be non-empty"));
                }
                config.labels.insert(key, value);
            }
        }
        "EXPOSE" => {
            for word in words(args).ok_or_else(|| invalid("unbalanced quotes"))? {
                for port in
                    ports(&word).ok_or_else(|| invalid("ports are PORT[-PORT][/tcp|udp|sctp]"))?
                {
                    config.exposed_ports.insert(port, EmptyObject {});
                }
            }
        }
        "ONBUILD" => {
            let trigger = args.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            if matches!(trigger.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(invalid("ONBUILD cannot trigger ONBUILD, FROM or MAINTAINER"));
            }
            config.on_build.push(args.to_owned());
        }
        "USER" => config.user = Some(single(args).ok_or_else(|| invalid("USER takes one name"))?),
        "VOLUME" => {
            let paths = match json_array(args) {
                Some(paths) => paths,
                None => words(args).ok_or_else(|| invalid("unbalanced quotes"))?,
            };
            for path in paths {
                if path.trim().is_empty() {
                    return Err(invalid("VOLUME paths must be non-empty"));
                }
                config.volumes.insert(path, EmptyObject {});
            }
        }
        "WORKDIR" => {
            let dir = single(args).ok_or_else(|| invalid("WORKDIR takes one path"))?;
            let joined = if dir.starts_with('/') {
                dir
            } else {
                let base = config.working_dir.as_deref().unwrap_or("/").trim_end_matches('/');
                format!("{base}/{dir}")
            };
            config.working_dir = Some(joined);
        }
        _ => {
            return Err(ChangeError::NotAllowed {
                instruction: upper.clone(),
                change: change.to_owned(),
            })
        }
    }
    Ok(())
}

/// Exec form (a JSON array of strings) or shell form (`/bin/sh -c …`).
fn command(args: &str) -> Vec<String> {
    json_array(args).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), args.to_owned()])
}

fn json_array(args: &str) -> Option<Vec<String>> {
    if !args.starts_with('[') {
        return None;
    }
    serde_json::from_str(args).ok()
}

/// One word (quotes allowed), or `None` if there are more or none.
fn single(args: &str) -> Option<String> {
    let mut words = words(args)?;
    (words.len() == 1).then(|| words.remove(0))
}

/// `k=v k2="v 2"` pairs, or the legacy `KEY value with spaces` form.
fn pairs(args: &str) -> Option<Vec<(String, String)>> {
    let first = args.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (key, value) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        return Some(vec![(key.to_owned(), value.trim().to_owned())]);
    }
    words(args)?
        .into_iter()
        .map(|word| word.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// Split on unquoted white space; `"…"` and `'…'` group, `\` escapes outside
/// single quotes. `None` for an unbalanced quote.
fn words(args: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('"') | None, '\\') => {
                word.push(chars.next().unwrap_or('\\'));
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        out.push(word);
    }
    Some(out)
}

/// `80` → `80/tcp`; `8000-8002/udp` → three ports.
fn ports(spec: &str) -> Option<Vec<String>> {
    let (range, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return None;
    }
    let (low, high) = range.split_once('-').unwrap_or((range, range));
    let low: u16 = low.parse().ok()?;
    let high: u16 = high.parse().ok()?;
    if low == 0 || high < low {
        return None;
    }
    Some((low..=high).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> ContainerConfig {
        let mut config = ContainerConfig::default();
        for change in changes {
            apply_change(&mut config, change).unwrap();
        }
        config
    }

    #[test]
    fn cmd_and_entrypoint_take_exec_and_shell_forms() {
        let c = applied(&[r#"CMD ["sh", "-c", "echo hi"]"#, "ENTRYPOINT top -b"]);
        assert_eq!(c.cmd.unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "top -b"]);
    }

    #[test]
    fn env_replaces_earlier_values_and_reads_quotes() {
        let c = applied(&["ENV A=1 B=\"two words\"", "env A=3", "ENV LEGACY some value"]);
        assert_eq!(c.env, ["A=3", "B=two words", "LEGACY=some value"]);
        assert_eq!(c.env_var("B"), Some("two words"));
    }

    #[test]
    fn label_expose_volume_user_workdir_onbuild_apply() {
        let c = applied(&[
            "LABEL a=b \"c d\"=e",
            "EXPOSE 80 53/udp 9000-9001",
            "VOLUME [\"/data\", \"/logs\"]",
            "VOLUME /cache",
            "USER nobody",
            "WORKDIR /srv",
            "WORKDIR app",
            "ONBUILD RUN make",
        ]);
        assert_eq!(c.labels.get("c d").map(String::as_str), Some("e"));
        assert_eq!(c.labels.get("a").map(String::as_str), Some("b"));
        let ports: Vec<_> = c.exposed_ports.keys().cloned().collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "9000/tcp", "9001/tcp"]);
        let volumes: Vec<_> = c.volumes.keys().cloned().collect();
        assert_eq!(volumes, ["/cache", "/data", "/logs"]);
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv/app"));
        assert_eq!(c.on_build, ["RUN make"]);
    }

    #[test]
    fn bad_changes_are_refused_naming_the_change() {
        let mut config = ContainerConfig::default();
        for bad in ["RUN echo", "FROM x", "EXPOSE 0", "EXPOSE 80/foo", "CMD", "ENV A=\"x", ""] {
            let err = apply_change(&mut config, bad).unwrap_err();
            if !bad.is_empty() {
                assert!(err.to_string().contains(bad.split(' ').next().unwrap()), "{err}");
            }
        }
        assert_eq!(config, ContainerConfig::default());
    }
}
