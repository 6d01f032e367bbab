//! `RUN --mount=...`: the mounts a step gets while it runs.
//!
//! The value is CSV, `type=cache,target=/root/.cache,sharing=locked`, as in
//! BuildKit. Values may reference build args (`target=$HOME/.cache`); the
//! parser checks what it can as written and the builder calls
//! [`Mount::expand`] with the step's environment before using a mount.

use kiln_types::{ErrorKind, HasKind};

use crate::substitution::{expand_word, SubstitutionError, Variables};

/// One `--mount` of a `RUN`.
///
/// In a parsed Dockerfile, string fields are as written (they may hold
/// `$VAR`), and a typed field whose value references a variable is left at
/// its default until [`Mount::expand`] resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The flag's value as written, for [`Mount::expand`] and messages.
    pub raw: String,
    /// `type=`; `bind` when not given, as in Docker.
    pub kind: MountType,
    /// `target=`, `dst=` or `destination=`: where the mount appears.
    pub target: Option<String>,
    /// `source=` or `src=`: the path in `from` (bind), in the cache, or the secret id's file.
    pub source: Option<String>,
    /// `from=`: a stage name, image or build context the mount comes from.
    pub from: Option<String>,
    /// `id=`: the cache id or secret id.
    pub id: Option<String>,
    /// `sharing=` for cache mounts; `None` means Docker's default, shared.
    pub sharing: Option<CacheSharing>,
    /// `mode=` (octal) for cache, secret and ssh mounts.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `readonly`/`ro` or `readwrite`/`rw`; when neither is given, bind and
    /// secret mounts are read-only and cache and tmpfs mounts writable, as in Docker.
    pub readonly: bool,
    /// `required` for secret and ssh mounts: fail when the secret is missing.
    pub required: bool,
    /// `size=` of a tmpfs mount, in bytes (`64m` means 64 MiB).
    pub size: Option<u64>,
    /// `env=` of a secret mount: expose the secret as this variable.
    pub env: Option<String>,
}

/// What a mount is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MountType {
    /// Files from the context, a stage or an image (read-only by default).
    Bind,
    /// A directory kept between builds (package caches).
    Cache,
    /// An empty tmpfs.
    Tmpfs,
    /// A secret passed to the build.
    Secret,
    /// The client's SSH agent socket. Parsed so the builder can refuse it by name.
    Ssh,
}

impl MountType {
    /// The name as written in `type=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Cache => "cache",
            Self::Tmpfs => "tmpfs",
            Self::Secret => "secret",
            Self::Ssh => "ssh",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        Some(match value.to_ascii_lowercase().as_str() {
            "bind" => Self::Bind,
            "cache" => Self::Cache,
            "tmpfs" => Self::Tmpfs,
            "secret" => Self::Secret,
            "ssh" => Self::Ssh,
            _ => return None,
        })
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheSharing {
    /// Everyone writes the same directory at once (Docker's default).
    Shared,
    /// A second user gets a fresh directory.
    Private,
    /// A second user waits.
    Locked,
}

/// Why a `--mount` value is not a mount. Messages follow BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    #[error("unsupported mount type {value:?}: expected bind, cache, tmpfs, secret or ssh")]
    UnsupportedType { value: String },
    #[error("invalid field '{field}' must be a key=value pair")]
    NotKeyValue { field: String },
    #[error("unexpected key '{key}' in '{field}'")]
    UnknownKey { key: String, field: String },
    #[error("invalid value for {key}: {value}")]
    InvalidValue { key: String, value: String },
    #[error("unexpected key '{key}' for mount type '{}'", .kind.as_str())]
    KeyNotForType { key: String, kind: MountType },
    #[error("{key} not allowed for \"{}\" type mounts", .kind.as_str())]
    FileInfoNotAllowed { key: String, kind: MountType },
    #[error("invalid cache sharing set for {} mount", .kind.as_str())]
    SharingNotCache { kind: MountType },
    #[error("secret mount should not have a from")]
    SecretFrom,
    #[error("invalid secret mount: one of source, target, id required")]
    SecretNeedsName,
    #[error("both source and id can't be set")]
    SecretSourceAndId,
    #[error("mount type '{}' requires a target", .kind.as_str())]
    TargetRequired { kind: MountType },
    #[error("'from' doesn't support variable expansion, define alias stage instead")]
    FromVariable,
    #[error("bad quoting in mount options")]
    Quoting,
    #[error("cannot expand {key}: {reason}")]
    Expand { key: String, reason: SubstitutionError },
}

impl HasKind for MountError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

impl Mount {
    /// Parses a `--mount` value as written in the Dockerfile: checks what
    /// does not depend on variables, keeps the rest for [`Mount::expand`].
    pub fn parse(raw: &str) -> Result<Self, MountError> {
        parse(raw, None)
    }

    /// This mount with every value expanded in `vars` (each value alone,
    /// as Docker does), then checked completely.
    pub fn expand<V: Variables + ?Sized>(
        &self,
        vars: &V,
        escape: char,
    ) -> Result<Self, MountError> {
        let mut expand = |key: &str, value: &str| {
            expand_word(value, vars, escape)
                .map_err(|reason| MountError::Expand { key: key.to_owned(), reason })
        };
        parse(&self.raw, Some(&mut expand))
    }
}

type Expander<'a> = &'a mut dyn FnMut(&str, &str) -> Result<String, MountError>;

fn parse(raw: &str, mut expander: Option<Expander<'_>>) -> Result<Mount, MountError> {
    let mut m = Mount {
        raw: raw.to_owned(),
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        id: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        readonly: false,
        required: false,
        size: None,
        env: None,
    };
    let mut readonly: Option<bool> = None;
    // Any typed value still waiting for expansion: checks that depend on
    // typed values wait too.
    let mut deferred = false;
    for field in csv_fields(raw)? {
        let Some((key, value)) = field.split_once('=') else {
            match field.to_ascii_lowercase().as_str() {
                "readonly" | "ro" => readonly = Some(true),
                "readwrite" | "rw" => readonly = Some(false),
                "required" => m.required = true,
                _ => return Err(MountError::NotKeyValue { field }),
            }
            continue;
        };
        let key = key.to_ascii_lowercase();
        let value = match expander.as_mut() {
            Some(expand) => expand(&key, value)?,
            None if key == "from" => {
                // As BuildKit: a stage reference is never expanded (a
                // trailing `$` alone is literal).
                if value.find('$').is_some_and(|i| i + 1 != value.len()) {
                    return Err(MountError::FromVariable);
                }
                value.to_owned()
            }
            None => value.to_owned(),
        };
        let unexpanded = expander.is_none() && value.contains('$');
        match key.as_str() {
            "type" if unexpanded => deferred = true,
            "type" => {
                m.kind = MountType::parse(&value)
                    .ok_or_else(|| MountError::UnsupportedType { value: value.clone() })?;
            }
            "src" | "source" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "from" => m.from = Some(value),
            "id" => m.id = Some(value),
            "env" => m.env = Some(value),
            _ if unexpanded => deferred = true,
            "readonly" | "ro" => readonly = Some(typed(&key, &value, parse_bool(&value))?),
            "readwrite" | "rw" => readonly = Some(!typed(&key, &value, parse_bool(&value))?),
            "required" => m.required = typed(&key, &value, parse_bool(&value))?,
            "sharing" => {
                let sharing = match value.to_ascii_lowercase().as_str() {
                    "shared" => Some(CacheSharing::Shared),
                    "private" => Some(CacheSharing::Private),
                    "locked" => Some(CacheSharing::Locked),
                    _ => None,
                };
                m.sharing = Some(typed(&key, &value, sharing)?);
            }
            "mode" => m.mode = Some(typed(&key, &value, u32::from_str_radix(&value, 8).ok())?),
            "uid" => m.uid = Some(typed(&key, &value, value.parse().ok())?),
            "gid" => m.gid = Some(typed(&key, &value, value.parse().ok())?),
            "size" => m.size = Some(typed(&key, &value, ram_in_bytes(&value))?),
            _ => return Err(MountError::UnknownKey { key, field }),
        }
    }
    if deferred {
        m.readonly = readonly.unwrap_or(false);
        return Ok(m);
    }
    validate(&mut m, readonly)?;
    Ok(m)
}

/// A value parsed for `key`, or the error naming it.
fn typed<T>(key: &str, value: &str, parsed: Option<T>) -> Result<T, MountError> {
    parsed.ok_or_else(|| MountError::InvalidValue { key: key.to_owned(), value: value.to_owned() })
}

/// Checks that need the whole mount, with its type known.
fn validate(m: &mut Mount, readonly: Option<bool>) -> Result<(), MountError> {
    let kind = m.kind;
    let file_info_allowed = matches!(kind, MountType::Secret | MountType::Ssh | MountType::Cache);
    if !file_info_allowed {
        for (key, set) in
            [("mode", m.mode.is_some()), ("uid", m.uid.is_some()), ("gid", m.gid.is_some())]
        {
            if set {
                return Err(MountError::FileInfoNotAllowed { key: key.to_owned(), kind });
            }
        }
    }
    if m.required && !matches!(kind, MountType::Secret | MountType::Ssh) {
        return Err(MountError::KeyNotForType { key: "required".to_owned(), kind });
    }
    if m.size.is_some() && kind != MountType::Tmpfs {
        return Err(MountError::KeyNotForType { key: "size".to_owned(), kind });
    }
    if m.env.is_some() && kind != MountType::Secret {
        return Err(MountError::KeyNotForType { key: "env".to_owned(), kind });
    }
    if m.sharing.is_some() && kind != MountType::Cache {
        return Err(MountError::SharingNotCache { kind });
    }
    match kind {
        MountType::Secret => {
            if m.from.is_some() {
                return Err(MountError::SecretFrom);
            }
            if m.source.is_none() && m.target.is_none() && m.id.is_none() && m.env.is_none() {
                return Err(MountError::SecretNeedsName);
            }
            if m.source.is_some() && m.id.is_some() {
                return Err(MountError::SecretSourceAndId);
            }
        }
        MountType::Ssh => {}
        MountType::Bind | MountType::Cache | MountType::Tmpfs => {
            if m.target.as_deref().is_none_or(str::is_empty) {
                return Err(MountError::TargetRequired { kind });
            }
        }
    }
    m.readonly =
        readonly.unwrap_or(matches!(kind, MountType::Bind | MountType::Secret | MountType::Ssh));
    Ok(())
}

/// Splits one CSV record: fields by `,`, a field may be `"quoted"` with
/// `""` for a quote inside.
fn csv_fields(raw: &str) -> Result<Vec<String>, MountError> {
    let mut fields = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(MountError::Quoting),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {}
                Some(_) => return Err(MountError::Quoting),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err(MountError::Quoting),
                    Some(c) => field.push(c),
                }
            }
        }
        fields.push(field);
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A size as Docker reads memory sizes: `1024`, `64m`, `1.5g`, `2GiB`,
/// binary multiples.
fn ram_in_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits_end);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let number: f64 = number.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return None,
    };
    let bytes = number * 2f64.powi(shift);
    // `as` saturates; anything beyond u64 is refused rather than clamped.
    (bytes.is_finite() && bytes < 18_446_744_073_709_551_615.0).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn cache_mount_with_all_its_options() {
        let m = Mount::parse(
            "type=cache,target=/root/.cache/pip,id=pip,sharing=locked,mode=0755,uid=1000,gid=100",
        )
        .unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache/pip"));
        assert_eq!(m.id.as_deref(), Some("pip"));
        assert_eq!(m.sharing, Some(CacheSharing::Locked));
        assert_eq!(m.mode, Some(0o755));
        assert_eq!((m.uid, m.gid), (Some(1000), Some(100)));
        assert!(!m.readonly, "cache mounts are writable by default");
    }

    #[test]
    fn type_defaults_to_read_only_bind() {
        let m = Mount::parse("target=/src,from=build,source=/out").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.readonly);
        assert_eq!(m.from.as_deref(), Some("build"));
        assert_eq!(m.source.as_deref(), Some("/out"));
        let m = Mount::parse("type=bind,dst=/src,rw").unwrap();
        assert!(!m.readonly);
        let m = Mount::parse("type=cache,destination=/c,readonly=true").unwrap();
        assert!(m.readonly);
    }

    #[test]
    fn secret_ssh_and_tmpfs() {
        let m = Mount::parse("type=secret,id=aws,target=/root/.aws/credentials,required").unwrap();
        assert_eq!(m.kind, MountType::Secret);
        assert!(m.required && m.readonly);
        let m = Mount::parse("type=secret,id=token,env=TOKEN").unwrap();
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        let m = Mount::parse("type=ssh").unwrap();
        assert_eq!(m.kind, MountType::Ssh);
        let m = Mount::parse("type=tmpfs,target=/tmp,size=64m").unwrap();
        assert_eq!(m.size, Some(64 << 20));
        assert!(!m.readonly);
    }

    #[test]
    fn refuses_what_docker_refuses() {
        let err = |s: &str| Mount::parse(s).unwrap_err().to_string();
        assert!(err("type=volume,target=/x").starts_with("unsupported mount type \"volume\""));
        assert_eq!(err("type=cache,target=/x,bogus=1"), "unexpected key 'bogus' in 'bogus=1'");
        assert_eq!(
            err("type=cache,target=/x,nokey"),
            "invalid field 'nokey' must be a key=value pair"
        );
        assert_eq!(
            err("type=bind,target=/x,sharing=locked"),
            "invalid cache sharing set for bind mount"
        );
        assert_eq!(
            err("type=cache,target=/x,sharing=sometimes"),
            "invalid value for sharing: sometimes"
        );
        assert_eq!(
            err("type=bind,target=/x,mode=0644"),
            "mode not allowed for \"bind\" type mounts"
        );
        assert_eq!(err("type=cache,target=/x,mode=999"), "invalid value for mode: 999");
        assert_eq!(
            err("type=cache,target=/x,required"),
            "unexpected key 'required' for mount type 'cache'"
        );
        assert_eq!(
            err("type=cache,target=/x,size=1g"),
            "unexpected key 'size' for mount type 'cache'"
        );
        assert_eq!(err("type=secret,id=a,from=x"), "secret mount should not have a from");
        assert_eq!(err("type=secret"), "invalid secret mount: one of source, target, id required");
        assert_eq!(err("type=cache"), "mount type 'cache' requires a target");
        assert_eq!(
            err("type=bind,target=/x,from=$STAGE"),
            "'from' doesn't support variable expansion, define alias stage instead"
        );
        assert_eq!(err("type=bind,target=\"/x"), "bad quoting in mount options");
    }

    #[test]
    fn variables_wait_for_expand() {
        let m = Mount::parse("type=cache,target=$HOME/.cache,uid=${UID}").unwrap();
        assert_eq!(m.target.as_deref(), Some("$HOME/.cache"));
        assert_eq!(m.uid, None);
        let env = HashMap::from([
            ("HOME".to_owned(), "/root".to_owned()),
            ("UID".to_owned(), "1000".to_owned()),
        ]);
        let m = m.expand(&env, '\\').unwrap();
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.uid, Some(1000));
        let bad = Mount::parse("type=$T,target=/x").unwrap();
        let env = HashMap::from([("T".to_owned(), "volume".to_owned())]);
        assert!(matches!(bad.expand(&env, '\\'), Err(MountError::UnsupportedType { .. })));
    }

    #[test]
    fn quoted_csv_fields() {
        let m = Mount::parse("type=bind,\"target=/a,b\",source=\"\"").unwrap_err();
        assert_eq!(m, MountError::Quoting);
        let m = Mount::parse("type=bind,\"target=/a,b\"").unwrap();
        assert_eq!(m.target.as_deref(), Some("/a,b"));
    }

    #[test]
    fn sizes_are_binary_multiples() {
        assert_eq!(ram_in_bytes("1024"), Some(1024));
        assert_eq!(ram_in_bytes("1k"), Some(1024));
        assert_eq!(ram_in_bytes("1.5g"), Some(3 << 29));
        assert_eq!(ram_in_bytes("2GiB"), Some(2 << 30));
        assert_eq!(ram_in_bytes("2 MB"), Some(2 << 20));
        assert_eq!(ram_in_bytes("x"), None);
        assert_eq!(ram_in_bytes("1q"), None);
        assert_eq!(ram_in_bytes("99999999999p"), None);
    }
}
