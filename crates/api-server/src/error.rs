//! Errors as the API answers them: a status and `{"message": ...}`.

use http::StatusCode;
use kiln_types::{ErrorKind, HasKind};

use crate::versioning::VersionError;

/// An error answer: the status picked from the error's kind, and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

/// The HTTP status for an error kind, as dockerd picks it from its errdefs.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        // docker-compat: errdefs.Forbidden → 403, errdefs.NotImplemented → 501.
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// Any error that knows its kind; the message is its whole source chain,
    /// so the user sees why, not only what.
    pub fn from_error<E: HasKind + std::error::Error>(err: &E) -> ApiError {
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        ApiError { status: status_for(err.kind()), message }
    }

    /// A bad parameter (400) with dockerd's message.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    /// A fault of ours (500).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: message.into() }
    }

    /// dockerd's answer for a path no route matches.
    pub fn page_not_found() -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, message: "page not found".to_owned() }
    }
}

impl HasKind for VersionError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::TooOld { .. } | Self::TooNew { .. } | Self::Malformed { .. } => {
                ErrorKind::InvalidArgument
            }
        }
    }
}

impl From<VersionError> for ApiError {
    fn from(err: VersionError) -> ApiError {
        ApiError::from_error(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("no such image: {0}")]
    struct NoSuchImage(String);
    impl HasKind for NoSuchImage {
        fn kind(&self) -> ErrorKind {
            ErrorKind::NotFound
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write blob {path}")]
    struct WriteBlob {
        path: String,
        #[source]
        source: std::io::Error,
    }
    impl HasKind for WriteBlob {
        fn kind(&self) -> ErrorKind {
            ErrorKind::Internal
        }
    }

    #[test]
    fn kinds_map_to_dockers_statuses() {
        assert_eq!(status_for(ErrorKind::NotFound), 404);
        assert_eq!(status_for(ErrorKind::Conflict), 409);
        assert_eq!(status_for(ErrorKind::InvalidArgument), 400);
        assert_eq!(status_for(ErrorKind::Internal), 500);
        assert_eq!(status_for(ErrorKind::PermissionDenied), 403);
        assert_eq!(status_for(ErrorKind::Unsupported), 501);
    }

    #[test]
    fn error_messages_carry_their_sources() {
        let err = ApiError::from_error(&NoSuchImage("pyton:3.10".into()));
        assert_eq!(
            err,
            ApiError { status: StatusCode::NOT_FOUND, message: "no such image: pyton:3.10".into() }
        );
        let err = ApiError::from_error(&WriteBlob {
            path: "/r/blob".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        });
        assert_eq!(err.status, 500);
        assert!(err.message.starts_with("cannot write blob /r/blob: "), "{}", err.message);
    }

    #[test]
    fn version_errors_are_bad_requests() {
        let err = ApiError::from(crate::versioning::negotiate(Some("1.40")).expect_err("old"));
        assert_eq!(err.status, 400);
    }
}
