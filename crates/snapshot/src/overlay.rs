//! Mount specs for a stack of layers: computed as data, mounted elsewhere.
//!
//! An overlay mount lists its lower directories top layer first in
//! `lowerdir=`. The whole option string must fit in one page (the kernel
//! copies mount data into a single page), so [`Snapshots::mounts`] falls
//! back from full paths to the short links under `<root>/l/` when a deep
//! image would not fit; see there.
//!
//! [`Snapshots::mounts`]: crate::Snapshots::mounts

use std::path::{Path, PathBuf};

use crate::error::SnapshotError;

/// The longest option string the kernel accepts: a page, less the final NUL.
pub const MAX_OPTIONS_LEN: usize = 4095;

/// One mount, as `mount(2)` would be called: `mount(source, target, fstype, options)`.
///
/// `fstype` is `"overlay"` or `"bind"`; for a bind mount `source` is the
/// directory to bind and `options` say `rbind` and `ro` or `rw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub fstype: String,
    pub source: PathBuf,
    pub options: Vec<String>,
}

impl MountSpec {
    /// The options as `mount -o` and `mount(2)` take them.
    pub fn options_string(&self) -> String {
        self.options.join(",")
    }
}

/// A container's writable layer: overlay's upper and work directories, which
/// must be on the same filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpperDirs {
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// The mount of `lowers` (top layer first) with an optional writable upper.
///
/// - no lowers, an upper: a read-write bind of the upper directory;
/// - one lower, no upper: a read-only bind of it (overlay wants two lowers
///   to be read-only);
/// - otherwise an overlay.
///
/// Paths must be UTF-8 without `:` `,` or `\`, which overlay would parse as
/// separators; the caller ([`crate::Snapshots`]) guarantees that.
pub fn plan_mount(lowers: &[&Path], upper: Option<&UpperDirs>) -> Result<MountSpec, SnapshotError> {
    let text = |p: &Path| p.to_string_lossy().into_owned();
    let spec = match (lowers, upper) {
        ([], None) => return Err(SnapshotError::NoLayers),
        ([], Some(dirs)) => MountSpec {
            fstype: "bind".to_owned(),
            source: dirs.upper.clone(),
            options: vec!["rbind".to_owned(), "rw".to_owned()],
        },
        ([only], None) => MountSpec {
            fstype: "bind".to_owned(),
            source: only.to_path_buf(),
            options: vec!["rbind".to_owned(), "ro".to_owned()],
        },
        (lowers, upper) => {
            let lowerdir: Vec<String> = lowers.iter().map(|p| text(p)).collect();
            let mut options = vec![format!("lowerdir={}", lowerdir.join(":"))];
            if let Some(dirs) = upper {
                options.push(format!("upperdir={}", text(&dirs.upper)));
                options.push(format!("workdir={}", text(&dirs.work)));
            }
            MountSpec { fstype: "overlay".to_owned(), source: PathBuf::from("overlay"), options }
        }
    };
    let len = spec.options_string().len();
    if spec.fstype == "overlay" && len > MAX_OPTIONS_LEN {
        return Err(SnapshotError::OptionsTooLong {
            layers: lowers.len(),
            len,
            max: MAX_OPTIONS_LEN,
        });
    }
    Ok(spec)
}

/// Whether `path` can be written into overlay options unescaped.
pub(crate) fn is_option_safe(path: &Path) -> bool {
    path.to_str().is_some_and(|s| !s.contains([':', ',', '\\']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_lists_lowers_top_first_then_upper_and_work() {
        let upper = UpperDirs { upper: "/s/c/upper".into(), work: "/s/c/work".into() };
        let spec = plan_mount(
            &[Path::new("/s/top"), Path::new("/s/mid"), Path::new("/s/base")],
            Some(&upper),
        )
        .unwrap();
        assert_eq!(spec.fstype, "overlay");
        assert_eq!(spec.source, PathBuf::from("overlay"));
        assert_eq!(
            spec.options,
            ["lowerdir=/s/top:/s/mid:/s/base", "upperdir=/s/c/upper", "workdir=/s/c/work"]
        );
    }

    #[test]
    fn single_read_only_layer_is_a_bind_mount() {
        let spec = plan_mount(&[Path::new("/s/base")], None).unwrap();
        assert_eq!(spec.fstype, "bind");
        assert_eq!(spec.source, PathBuf::from("/s/base"));
        assert_eq!(spec.options, ["rbind", "ro"]);
    }

    #[test]
    fn two_read_only_layers_are_an_overlay_without_upper() {
        let spec = plan_mount(&[Path::new("/b"), Path::new("/a")], None).unwrap();
        assert_eq!(spec.options, ["lowerdir=/b:/a"]);
    }

    #[test]
    fn nothing_to_mount_is_an_error() {
        assert!(matches!(plan_mount(&[], None), Err(SnapshotError::NoLayers)));
    }

    #[test]
    fn options_longer_than_a_page_are_refused() {
        let long = PathBuf::from(format!("/{}", "x".repeat(200)));
        let lowers: Vec<&Path> = std::iter::repeat_n(long.as_path(), 30).collect();
        let err = plan_mount(&lowers, None).unwrap_err();
        assert!(matches!(err, SnapshotError::OptionsTooLong { layers: 30, .. }), "{err}");
    }
}
