//! `created` timestamps for image configs.

/// Now, as `2024-05-06T07:08:09Z`.
pub(crate) fn now_rfc3339() -> String {
    kiln_types::time::UtcTime::from_unix(kiln_types::time::now().0).rfc3339()
}
