//! Image references as Docker reads them: `[registry/]repository[:tag][@digest]`.
//!
//! The grammar is the distribution project's reference grammar, and
//! normalisation is Docker's: a name without a registry is on `docker.io`,
//! and a single-component name there lives under `library/`.

use std::fmt;
use std::str::FromStr;

use crate::{Digest, DigestError, ErrorKind, HasKind};

/// The registry of names that carry none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag a name-only reference means.
pub const DEFAULT_TAG: &str = "latest";
/// The old name of Docker Hub's registry, normalised to [`DEFAULT_REGISTRY`].
const LEGACY_REGISTRY: &str = "index.docker.io";
/// Where Docker Hub keeps its official images.
const OFFICIAL_PREFIX: &str = "library/";
/// Longest full name (`registry/repository`), as in the distribution grammar.
pub const NAME_MAX_LEN: usize = 255;
/// Longest tag.
const TAG_MAX_LEN: usize = 128;

/// A parsed and normalised image reference.
///
/// `"python:3.10-slim".parse()` gives registry `docker.io`, repository
/// `library/python` and tag `3.10-slim`. Parsing keeps what was written: a
/// reference without tag or digest has neither, and [`ImageRef::normalized`]
/// supplies Docker's implicit `latest`. A tag and a digest may both be
/// present (`name:tag@sha256:…`); both are kept.
///
/// [`Display`](fmt::Display) writes the full form
/// (`docker.io/library/python:3.10-slim`), [`ImageRef::familiar`] the short
/// form Docker's CLI prints (`python:3.10-slim`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference. Messages follow Docker's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Does not match the grammar (empty, `a:b:c`, a trailing `:`, bad characters).
    #[error("invalid reference format")]
    InvalidFormat { reference: String },
    /// The repository part has upper-case letters.
    #[error("invalid reference format: repository name ({repository}) must be lowercase")]
    Uppercase { reference: String, repository: String },
    /// `registry/repository` is longer than [`NAME_MAX_LEN`].
    #[error("repository name must not be more than {NAME_MAX_LEN} characters")]
    NameTooLong { reference: String },
    /// A bare 64-digit hex string, which would be read as an image id.
    #[error("invalid repository name ({reference}), cannot specify 64-byte hexadecimal strings")]
    HexName { reference: String },
    /// The part after `@` is shaped like a digest but is not a valid one.
    #[error("invalid reference format: bad digest")]
    Digest {
        reference: String,
        #[source]
        source: DigestError,
    },
}

impl ReferenceError {
    /// The string that failed to parse, for callers that add context
    /// (Docker's messages above do not repeat it).
    pub fn reference(&self) -> &str {
        match self {
            Self::InvalidFormat { reference }
            | Self::Uppercase { reference, .. }
            | Self::NameTooLong { reference }
            | Self::HexName { reference }
            | Self::Digest { reference, .. } => reference,
        }
    }
}

impl HasKind for ReferenceError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidFormat { .. }
            | Self::Uppercase { .. }
            | Self::NameTooLong { .. }
            | Self::HexName { .. }
            | Self::Digest { .. } => ErrorKind::InvalidArgument,
        }
    }
}

impl ImageRef {
    /// The registry host, with port if any: `docker.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry: `library/python`, `user/app`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Neither tag nor digest was given.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The full name without tag or digest: `docker.io/library/python`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as Docker's CLI shows it in the REPOSITORY column: `python`,
    /// `user/app`, `localhost:5000/x`, `ghcr.io/o/r`.
    pub fn familiar_name(&self) -> String {
        if self.registry != DEFAULT_REGISTRY {
            return self.name();
        }
        match self.repository.strip_prefix(OFFICIAL_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.repository.clone(),
        }
    }

    /// The short form Docker's CLI prints, with whatever tag and digest this
    /// reference has: `python:3.10-slim`, `user/app`, `localhost:5000/x:1`.
    /// Use `normalized().familiar()` for `user/app:latest`.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_name();
        self.write_suffix(&mut out);
        out
    }

    /// This reference with Docker's implicit tag: a name-only reference gets
    /// `latest`; one with a tag or a digest is returned unchanged.
    pub fn normalized(&self) -> ImageRef {
        let mut out = self.clone();
        if out.is_name_only() {
            out.tag = Some(DEFAULT_TAG.to_owned());
        }
        out
    }

    /// The same name with `tag` instead of any tag and digest
    /// (what `docker tag` makes).
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidFormat {
                reference: format!("{}:{tag}", self.name()),
            });
        }
        Ok(ImageRef { tag: Some(tag.to_owned()), digest: None, ..self.clone() })
    }

    /// The same name pinned to `digest`, keeping the tag.
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef { digest: Some(digest), ..self.clone() }
    }

    /// The same name without tag or digest.
    pub fn without_tag_or_digest(&self) -> ImageRef {
        ImageRef { tag: None, digest: None, ..self.clone() }
    }

    fn write_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ReferenceError::InvalidFormat { reference: s.to_owned() };
        if s.len() == 64 && s.bytes().all(is_lower_hex) {
            return Err(ReferenceError::HexName { reference: s.to_owned() });
        }

        let (name_tag, digest) = match s.split_once('@') {
            Some((name_tag, digest)) => (name_tag, Some(parse_digest(s, digest)?)),
            None => (s, None),
        };

        // A ':' is a tag separator only when no '/' follows it; otherwise it
        // belongs to a registry port (`localhost:5000/x`).
        let (name, tag) = match name_tag.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
            _ => (name_tag, None),
        };
        if let Some(tag) = tag {
            if !is_tag(tag) {
                return Err(invalid());
            }
        }

        // Docker's rule: the first component names a registry only when it
        // has a '.' or ':' or is "localhost".
        let (registry, remainder) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                if !is_registry(first) {
                    return Err(invalid());
                }
                let first = if first == LEGACY_REGISTRY { DEFAULT_REGISTRY } else { first };
                (first, rest)
            }
            _ => (DEFAULT_REGISTRY, name),
        };
        let repository = if registry == DEFAULT_REGISTRY && !remainder.contains('/') {
            format!("{OFFICIAL_PREFIX}{remainder}")
        } else {
            remainder.to_owned()
        };

        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase { reference: s.to_owned(), repository });
        }
        if !repository.split('/').all(is_path_component) {
            return Err(invalid());
        }
        if registry.len() + 1 + repository.len() > NAME_MAX_LEN {
            return Err(ReferenceError::NameTooLong { reference: s.to_owned() });
        }

        Ok(ImageRef {
            registry: registry.to_owned(),
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.write_suffix(&mut out);
        f.write_str(&out)
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ImageRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The digest after '@'. Something not even shaped like `algorithm:hex` (32
/// or more hex digits) is a format error, as in Docker; a well-shaped digest
/// that is still wrong (unknown algorithm, wrong length) says so.
fn parse_digest(reference: &str, digest: &str) -> Result<Digest, ReferenceError> {
    let shaped = digest.split_once(':').is_some_and(|(alg, hex)| {
        alg.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && alg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_+.".contains(&b))
            && hex.len() >= 32
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
    });
    if !shaped {
        return Err(ReferenceError::InvalidFormat { reference: reference.to_owned() });
    }
    digest
        .parse()
        .map_err(|source| ReferenceError::Digest { reference: reference.to_owned(), source })
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        // A run of alphanumerics.
        let start = i;
        while i < bytes.len() && is_alnum_lower(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        // A separator, then another run is required.
        match bytes[i] {
            b'.' => i += 1,
            b'_' => i += if bytes.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[\w][\w.-]{0,127}`
fn is_tag(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = s.as_bytes();
    bytes.len() <= TAG_MAX_LEN
        && bytes.first().is_some_and(|&b| word(b))
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// `host[:port]`, where host is a domain name (which covers IPv4
/// addresses) or a bracketed IPv6 address.
fn is_registry(s: &str) -> bool {
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) => {
                let (host, rest) = s.split_at(end + 1);
                let inner = &host[1..host.len() - 1];
                let is_ipv6 =
                    !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
                if !is_ipv6 {
                    return false;
                }
                match rest {
                    "" => (host, None),
                    _ => match rest.strip_prefix(':') {
                        Some(port) => (host, Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => {
                if !host.split('.').all(is_domain_component) {
                    return false;
                }
                (host, Some(port))
            }
            None => {
                if !s.split('.').all(is_domain_component) {
                    return false;
                }
                (s, None)
            }
        }
    };
    !host.is_empty() && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_domain_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

    fn parse(s: &str) -> ImageRef {
        s.parse().unwrap_or_else(|err| panic!("{s:?} should parse: {err}"))
    }

    #[test]
    fn official_image_gets_docker_hub_and_library() {
        let r = parse("python:3.10-slim");
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/python");
        assert_eq!(r.tag(), Some("3.10-slim"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.to_string(), "docker.io/library/python:3.10-slim");
        assert_eq!(r.familiar(), "python:3.10-slim");
        assert_eq!(r.name(), "docker.io/library/python");
        assert_eq!(r.familiar_name(), "python");
    }

    #[test]
    fn name_only_keeps_no_tag_until_normalized() {
        let r = parse("user/app");
        assert_eq!(r.tag(), None);
        assert!(r.is_name_only());
        assert_eq!(r.to_string(), "docker.io/user/app");
        assert_eq!(r.familiar(), "user/app");
        let n = r.normalized();
        assert_eq!(n.tag(), Some("latest"));
        assert_eq!(n.to_string(), "docker.io/user/app:latest");
        assert_eq!(n.familiar(), "user/app:latest");
        assert_eq!(n.normalized(), n);
    }

    #[test]
    fn normalized_does_not_add_latest_to_a_digest_reference() {
        let r = parse(&format!("alpine@sha256:{HEX}"));
        assert_eq!(r.normalized(), r);
        assert_eq!(r.normalized().tag(), None);
    }

    #[test]
    fn registry_with_port_is_not_a_tag() {
        let r = parse("localhost:5000/x");
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "x");
        assert_eq!(r.tag(), None);
        assert_eq!(r.normalized().familiar(), "localhost:5000/x:latest");
        assert_eq!(parse("localhost:5000/x:1").familiar(), "localhost:5000/x:1");
    }

    #[test]
    fn ip_registry_with_nested_repository_and_tag() {
        let r = parse("127.0.0.1:5000/a/b:t");
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "a/b");
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/a/b:t");
        assert_eq!(r.familiar(), "127.0.0.1:5000/a/b:t");
    }

    #[test]
    fn digest_reference_on_another_registry() {
        let s = format!("ghcr.io/o/r@sha256:{HEX}");
        let r = parse(&s);
        assert_eq!(r.registry(), "ghcr.io");
        assert_eq!(r.repository(), "o/r");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().map(ToString::to_string), Some(format!("sha256:{HEX}")));
        assert_eq!(r.to_string(), s);
        assert_eq!(r.familiar(), s);
    }

    #[test]
    fn tag_and_digest_are_both_kept() {
        let r = parse(&format!("name:tag@sha256:{HEX}"));
        assert_eq!(r.repository(), "library/name");
        assert_eq!(r.tag(), Some("tag"));
        assert!(r.digest().is_some());
        assert_eq!(r.to_string(), format!("docker.io/library/name:tag@sha256:{HEX}"));
        assert_eq!(r.familiar(), format!("name:tag@sha256:{HEX}"));
    }

    #[test]
    fn first_component_is_a_registry_only_with_dot_colon_or_localhost() {
        assert_eq!(parse("localhost/x").registry(), "localhost");
        assert_eq!(parse("localhost/x").familiar(), "localhost/x");
        assert_eq!(parse("example.com/x").registry(), "example.com");
        assert_eq!(parse("host:80/x").registry(), "host:80");
        let r = parse("myhost/x");
        assert_eq!((r.registry(), r.repository()), ("docker.io", "myhost/x"));
        // A lone name with a colon is name:tag, not a registry.
        let r = parse("localhost:5000");
        assert_eq!((r.repository(), r.tag()), ("library/localhost", Some("5000")));
    }

    #[test]
    fn docker_hub_spellings_normalise_to_one_name() {
        let want = parse("busybox:1");
        for s in [
            "docker.io/busybox:1",
            "docker.io/library/busybox:1",
            "index.docker.io/busybox:1",
            "index.docker.io/library/busybox:1",
        ] {
            assert_eq!(parse(s), want, "{s}");
        }
        assert_eq!(parse("index.docker.io/user/app").to_string(), "docker.io/user/app");
        assert_eq!(parse("docker.io/library/a/b").familiar(), "library/a/b");
    }

    #[test]
    fn uppercase_repository_is_refused_with_dockers_message() {
        let err = "UPPER/case".parse::<ImageRef>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid reference format: repository name (UPPER/case) must be lowercase"
        );
        assert_eq!(err.reference(), "UPPER/case");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let err = "Python:3".parse::<ImageRef>().unwrap_err();
        assert!(matches!(err, ReferenceError::Uppercase { .. }), "{err:?}");
        // Upper case in a registry or a tag is fine.
        assert_eq!(parse("Registry.Example.com/x").registry(), "Registry.Example.com");
        assert_eq!(parse("x:V1").tag(), Some("V1"));
    }

    #[test]
    fn malformed_references_say_invalid_reference_format() {
        for s in ["a:b:c", "", "python:", ":tag", "a//b", "/a", "a/"] {
            let err = s.parse::<ImageRef>().unwrap_err();
            assert_eq!(err.to_string(), "invalid reference format", "{s:?}");
            assert_eq!(err.reference(), s);
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn bare_image_id_is_not_a_name() {
        let err = HEX.parse::<ImageRef>().unwrap_err();
        assert!(matches!(err, ReferenceError::HexName { .. }));
        assert!(err.to_string().contains("cannot specify 64-byte hexadecimal strings"));
    }

    #[test]
    fn names_longer_than_255_are_refused() {
        // docker.io/library/ is 18 characters.
        let ok = "a".repeat(NAME_MAX_LEN - 18);
        assert_eq!(parse(&ok).name().len(), NAME_MAX_LEN);
        let long = "a".repeat(NAME_MAX_LEN - 17);
        let err = long.parse::<ImageRef>().unwrap_err();
        assert!(matches!(err, ReferenceError::NameTooLong { .. }), "{err:?}");
        assert_eq!(err.to_string(), "repository name must not be more than 255 characters");
    }

    #[test]
    fn tags_are_at_most_128_characters() {
        assert!(format!("x:{}", "t".repeat(128)).parse::<ImageRef>().is_ok());
        assert!(format!("x:{}", "t".repeat(129)).parse::<ImageRef>().is_err());
    }

    #[test]
    fn wrong_digest_is_a_digest_error() {
        let err = format!("x@sha256:{}", &HEX[..40]).parse::<ImageRef>().unwrap_err();
        assert!(matches!(err, ReferenceError::Digest { .. }), "{err:?}");
        let err = format!("x@md5:{HEX}").parse::<ImageRef>().unwrap_err();
        assert!(matches!(err, ReferenceError::Digest { .. }), "{err:?}");
        let err = "x@sha256:abc".parse::<ImageRef>().unwrap_err();
        assert!(matches!(err, ReferenceError::InvalidFormat { .. }), "{err:?}");
    }

    #[test]
    fn with_tag_replaces_tag_and_digest() {
        let r = parse(&format!("python:3@sha256:{HEX}")).with_tag("mine").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/python:mine");
        assert!(parse("python").with_tag("bad:tag").is_err());
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        assert_eq!(parse("python:3").with_digest(d.clone()).digest(), Some(&d));
        assert_eq!(
            parse("python:3").without_tag_or_digest().to_string(),
            "docker.io/library/python"
        );
    }

    #[test]
    fn serde_uses_the_full_string_form() {
        let r = parse("user/app:1");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"docker.io/user/app:1\"");
        assert_eq!(serde_json::from_str::<ImageRef>(&json).unwrap(), r);
        assert!(serde_json::from_str::<ImageRef>("\"a:b:c\"").is_err());
    }

    #[test]
    fn full_form_parses_back_to_the_same_reference() {
        for s in ["python:3.10-slim", "user/app", "localhost:5000/x:1", "[::1]:5000/a/b"] {
            let r = parse(s);
            assert_eq!(parse(&r.to_string()), r, "{s}");
            assert_eq!(parse(&r.familiar()), r, "{s}");
        }
    }

    /// Each input and its full form, or None when it must be refused.
    #[test]
    fn reference_table() {
        let digest = format!("sha256:{HEX}");
        let with_digest = format!("busybox@{digest}");
        let with_digest_full = format!("docker.io/library/busybox@{digest}");
        let table: Vec<(&str, Option<&str>)> = vec![
            ("busybox", Some("docker.io/library/busybox")),
            ("busybox:latest", Some("docker.io/library/busybox:latest")),
            ("busybox:1.36.1-musl", Some("docker.io/library/busybox:1.36.1-musl")),
            ("library/busybox", Some("docker.io/library/busybox")),
            ("user/app:v_1", Some("docker.io/user/app:v_1")),
            ("a/b/c/d", Some("docker.io/a/b/c/d")),
            ("my-app", Some("docker.io/library/my-app")),
            ("my--app", Some("docker.io/library/my--app")),
            ("my_app", Some("docker.io/library/my_app")),
            ("my__app", Some("docker.io/library/my__app")),
            ("my.app", Some("docker.io/library/my.app")),
            ("0", Some("docker.io/library/0")),
            ("x:_", Some("docker.io/library/x:_")),
            ("quay.io/coreos/etcd:v3.5", Some("quay.io/coreos/etcd:v3.5")),
            ("my-registry.local:443/team/svc", Some("my-registry.local:443/team/svc")),
            ("[fe80::1]:5000/x:y", Some("[fe80::1]:5000/x:y")),
            ("[::1]/x", Some("[::1]/x")),
            (with_digest.as_str(), Some(with_digest_full.as_str())),
            ("a:b:c", None),
            ("", None),
            ("python:", None),
            ("UPPER/case", None),
            ("Python", None),
            ("my___app", None),
            ("my_.app", None),
            ("-app", None),
            ("app-", None),
            ("app.", None),
            ("a..b", None),
            ("a b", None),
            ("x:.tag", None),
            ("x:-tag", None),
            ("x:t/g", None),
            ("x@", None),
            ("x@sha256:", None),
            ("-host.com/x", None),
            ("host.com:/x", None),
            ("host.com:abc/x", None),
            ("[zz::1]:5000/x", None),
            ("[::1/x", None),
            ("localhost:5000/", None),
            ("docker.io/", None),
            ("x@@sha256:abc", None),
        ];
        for (input, want) in table {
            let got = input.parse::<ImageRef>().map(|r| r.to_string());
            match want {
                Some(want) => assert_eq!(got.as_deref(), Ok(want), "{input:?}"),
                None => assert!(got.is_err(), "{input:?} parsed as {got:?}"),
            }
        }
    }
}
