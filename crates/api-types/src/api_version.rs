//! `MAJOR.MINOR` API versions, as in `/v1.47/info` and the `Api-Version` header.

use std::fmt;
use std::str::FromStr;

/// A Docker Engine API version such as `1.47`. Ordered numerically, so
/// `1.9 < 1.41`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u16,
    pub minor: u16,
}

impl ApiVersion {
    pub const fn new(major: u16, minor: u16) -> ApiVersion {
        ApiVersion { major, minor }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid API version {text:?}: expected MAJOR.MINOR, such as 1.47")]
pub struct ApiVersionError {
    text: String,
}

impl FromStr for ApiVersion {
    type Err = ApiVersionError;

    fn from_str(s: &str) -> Result<ApiVersion, ApiVersionError> {
        let err = || ApiVersionError { text: s.to_owned() };
        let (major, minor) = s.split_once('.').ok_or_else(err)?;
        let number = |part: &str| {
            if part.is_empty() || part.len() > 4 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            part.parse::<u16>().map_err(|_| err())
        };
        Ok(ApiVersion { major: number(major)?, minor: number(minor)? })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl serde::Serialize for ApiVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ApiVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order_numerically() {
        let v: ApiVersion = "1.41".parse().expect("1.41");
        assert_eq!(v, ApiVersion::new(1, 41));
        assert!(ApiVersion::new(1, 9) < ApiVersion::new(1, 41));
        assert!(ApiVersion::new(1, 47) < ApiVersion::new(2, 0));
        assert_eq!(v.to_string(), "1.41");
    }

    #[test]
    fn malformed_versions_are_refused() {
        for bad in ["", "1", "1.", ".1", "1.2.3", "a.b", "1.-2", "+1.2", "99999.1"] {
            assert!(bad.parse::<ApiVersion>().is_err(), "{bad:?} parsed");
        }
    }
}
