//! docker-compat: dockerd sends `null` for an empty list or map (Go's nil
//! slices and maps); fields that Kiln keeps as plain lists read it as empty.

use serde::{Deserialize, Deserializer};

/// `null` as `T::default()`; with `#[serde(default)]` a missing field is too.
pub(crate) fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #[test]
    fn dockerds_nulls_read_as_empty_lists_and_maps() {
        let image: crate::ImageSummary = serde_json::from_str(
            r#"{"Id":"sha256:ab","Labels":null,"RepoDigests":null,"RepoTags":["bb:1"]}"#,
        )
        .expect("summary");
        assert_eq!(image.repo_tags, ["bb:1"]);
        assert!(image.labels.is_empty() && image.repo_digests.is_empty());
        let info: crate::SystemInfo =
            serde_json::from_str(r#"{"ServerVersion":"20.10.24","Warnings":null}"#).expect("info");
        assert_eq!(info.server_version, "20.10.24");
        assert!(info.warnings.is_empty());
        let df: crate::DiskUsage = serde_json::from_str(
            r#"{"Images":[{"Labels":null,"RepoDigests":null}],"BuildCache":null}"#,
        )
        .expect("df");
        assert_eq!(df.images.len(), 1);
    }
}
