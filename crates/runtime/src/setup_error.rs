//! Errors inside the container's init while it is being set up. They travel
//! to the runtime as text (the init cannot share Rust values with it), so a
//! message carries all its context: what failed, on which path, and why.

use std::fmt;

#[derive(Debug)]
pub(crate) struct SetupError {
    pub message: String,
    /// 127: command not found; 126: not executable; 1 otherwise.
    pub exit_code: i32,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl SetupError {
    pub fn new(message: impl Into<String>) -> SetupError {
        SetupError { message: message.into(), exit_code: 1 }
    }
}

pub(crate) type SetupResult<T> = Result<T, SetupError>;

/// Adds "what was being done" to an error: `cannot mount proc on /proc: EPERM`.
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> SetupResult<T>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> SetupResult<T> {
        self.map_err(|e| SetupError::new(format!("{}: {e}", what())))
    }
}
