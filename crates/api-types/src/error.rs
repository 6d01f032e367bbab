//! The body of every error answer.

use serde::{Deserialize, Serialize};

/// `{"message": "..."}`, the body of every non-2xx answer of the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    #[serde(default)]
    pub message: String,
}
