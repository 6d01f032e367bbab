use std::fmt;
use std::str::FromStr;

/// A content digest as the OCI image spec writes it: `algorithm:hex`.
///
/// Only the registered algorithms sha256 and sha512 are accepted, with
/// lower-case hex of the right length, so a `Digest` is always safe to use
/// as a file name (`blobs/sha256/<hex>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// Length of the hex encoding.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {digest:?}: want algorithm:hex")]
    Malformed { digest: String },
    #[error("invalid digest {digest:?}: unsupported algorithm")]
    UnsupportedAlgorithm { digest: String },
    #[error("invalid digest {digest:?}: want {len} lower-case hex digits")]
    BadHex { digest: String, len: usize },
}

impl Digest {
    /// A digest from an algorithm and its hex encoding, checked.
    pub fn new(algorithm: Algorithm, hex: &str) -> Result<Digest, DigestError> {
        format!("{}:{hex}", algorithm.as_str()).parse()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) =
            s.split_once(':').ok_or_else(|| DigestError::Malformed { digest: s.to_owned() })?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            "" => return Err(DigestError::Malformed { digest: s.to_owned() }),
            _ => return Err(DigestError::UnsupportedAlgorithm { digest: s.to_owned() }),
        };
        let len = algorithm.hex_len();
        let is_hex = hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex.len() != len || !is_hex {
            return Err(DigestError::BadHex { digest: s.to_owned(), len });
        }
        Ok(Digest { algorithm, hex: hex.to_owned() })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_digests_parse_and_print_back() {
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.hex(), HEX);
        assert_eq!(d.to_string(), format!("sha256:{HEX}"));
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }

    #[test]
    fn malformed_digests_are_refused() {
        for bad in [
            String::new(),
            HEX.to_owned(),
            format!("md5:{HEX}"),
            format!("sha256:{}", HEX.to_uppercase()),
            format!("sha256:{}", &HEX[1..]),
            format!("sha256:../{}", &HEX[3..]),
            format!(":{HEX}"),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?}");
        }
    }
}
