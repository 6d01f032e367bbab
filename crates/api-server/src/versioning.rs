//! API versions: the range we serve and the check of `/vX.Y/...` paths.

use kiln_api_types::ApiVersion;

/// The newest API version we implement; unversioned paths are served as it.
pub const API_VERSION: ApiVersion = ApiVersion::new(1, 47);

/// The oldest API version we accept (what docker-compose 1.29 and docker-py
/// 5 speak).
pub const MIN_API_VERSION: ApiVersion = ApiVersion::new(1, 41);

/// Why a request's API version is refused (400 on the wire).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    // docker-compat: both messages are dockerd's wording, which clients show as is.
    #[error(
        "client version {requested} is too old. Minimum supported API version is {minimum}, \
         please upgrade your client to a newer version"
    )]
    TooOld { requested: ApiVersion, minimum: ApiVersion },
    #[error("client version {requested} is too new. Maximum supported API version is {maximum}")]
    TooNew { requested: ApiVersion, maximum: ApiVersion },
    #[error("invalid API version {text:?}")]
    Malformed { text: String },
}

/// A request path split into its version prefix and the route path:
/// `/v1.41/info` → (`Some("1.41")`, `/info`); `/info` → (`None`, `/info`).
///
/// Only a first segment of `v` and then digits and dots is a version prefix,
/// as dockerd's router has it; `/vfoo/info` stays a path (and is not found).
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    let Some(rest) = path.strip_prefix("/v") else { return (None, path) };
    let end = rest.find('/').unwrap_or(rest.len());
    let (version, route) = rest.split_at(end);
    let is_version = version.starts_with(|c: char| c.is_ascii_digit())
        && version.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if is_version {
        (Some(version), route)
    } else {
        (None, path)
    }
}

/// The version a request is served as: the one it names, when in range, or
/// [`API_VERSION`] for an unversioned path.
pub fn negotiate(requested: Option<&str>) -> Result<ApiVersion, VersionError> {
    let Some(text) = requested else { return Ok(API_VERSION) };
    let requested: ApiVersion =
        text.parse().map_err(|_| VersionError::Malformed { text: text.to_owned() })?;
    if requested < MIN_API_VERSION {
        return Err(VersionError::TooOld { requested, minimum: MIN_API_VERSION });
    }
    if requested > API_VERSION {
        return Err(VersionError::TooNew { requested, maximum: API_VERSION });
    }
    Ok(requested)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_version_and_route() {
        assert_eq!(split_version("/v1.41/version"), (Some("1.41"), "/version"));
        assert_eq!(split_version("/_ping"), (None, "/_ping"));
        assert_eq!(split_version("/v1.47"), (Some("1.47"), ""));
        assert_eq!(split_version("/volumes"), (None, "/volumes"));
        assert_eq!(split_version("/vfoo/info"), (None, "/vfoo/info"));
        assert_eq!(split_version("/v1.2.3/info"), (Some("1.2.3"), "/info"));
    }

    #[test]
    fn versions_in_range_are_served_as_asked() {
        assert_eq!(negotiate(None), Ok(API_VERSION));
        assert_eq!(negotiate(Some("1.41")), Ok(ApiVersion::new(1, 41)));
        assert_eq!(negotiate(Some("1.47")), Ok(ApiVersion::new(1, 47)));
    }

    #[test]
    fn versions_out_of_range_get_dockerds_messages() {
        let old = negotiate(Some("1.40")).expect_err("too old");
        assert_eq!(
            old.to_string(),
            "client version 1.40 is too old. Minimum supported API version is 1.41, please upgrade your client to a newer version"
        );
        let new = negotiate(Some("9.99")).expect_err("too new");
        assert_eq!(
            new.to_string(),
            "client version 9.99 is too new. Maximum supported API version is 1.47"
        );
        assert!(matches!(negotiate(Some("1.2.3")), Err(VersionError::Malformed { .. })));
        // Numeric, not string, order: 1.5 is older than 1.41.
        assert!(matches!(negotiate(Some("1.5")), Err(VersionError::TooOld { .. })));
    }
}
