/// What sort of failure an error is, independent of where it happened.
///
/// Interfaces pick their answer from the kind: an HTTP status, a process exit
/// code. Every error enum that can reach a user implements [`HasKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The named thing does not exist.
    NotFound,
    /// The request conflicts with current state (a duplicate name, a running container).
    Conflict,
    /// The request itself is malformed or names something invalid.
    InvalidArgument,
    /// The operation is understood but not supported here.
    Unsupported,
    /// The caller lacks the privilege for the operation.
    PermissionDenied,
    /// A fault on our side or in the system.
    Internal,
}

/// Errors that know their [`ErrorKind`].
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}
