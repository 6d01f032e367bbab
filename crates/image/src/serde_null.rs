//! `null` read as the empty value: Docker writes `"Env": null`, `"Labels": null`.

use serde::{Deserialize, Deserializer};

/// Deserialise `null` (or an absent field, with `#[serde(default)]`) as `T::default()`.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
