use std::fmt;
use std::str::FromStr;

/// A container's id: safe as a single path component.
///
/// Like runc, ids are made of ASCII letters, digits and `_ + - .`, are at
/// most 1024 bytes long, and may not be `.` or `..`; `/` is never accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContainerIdError {
    #[error("container id must not be empty")]
    Empty,
    #[error("invalid container id {id:?}: longer than 1024 bytes")]
    TooLong { id: String },
    #[error("invalid container id {id:?}: only letters, digits and _ + - . are allowed")]
    BadCharacter { id: String },
    #[error("invalid container id {id:?}")]
    Reserved { id: String },
}

impl ContainerId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContainerId {
    type Err = ContainerIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ContainerIdError::Empty);
        }
        if s.len() > 1024 {
            return Err(ContainerIdError::TooLong { id: s.chars().take(64).collect() });
        }
        if s == "." || s == ".." {
            return Err(ContainerIdError::Reserved { id: s.to_owned() });
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.');
        if !s.chars().all(allowed) {
            return Err(ContainerIdError::BadCharacter { id: s.to_owned() });
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<std::path::Path> for ContainerId {
    fn as_ref(&self) -> &std::path::Path {
        self.0.as_ref()
    }
}

impl serde::Serialize for ContainerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ContainerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["abc", "a.b-c_d+e", "0123456789abcdef", "x..y"] {
            assert_eq!(id.parse::<ContainerId>().unwrap().as_str(), id);
        }
    }

    #[test]
    fn refuses_path_like_ids() {
        for id in ["", ".", "..", "a/b", "../x", "/abs", "a b", "ü", "a\0b"] {
            assert!(id.parse::<ContainerId>().is_err(), "{id:?} was accepted");
        }
        assert!("a".repeat(1025).parse::<ContainerId>().is_err());
    }
}
