//! What a container changed (`docker diff`): its writable layer compared
//! with the image's layers below it.

use std::path::{Path, PathBuf};

use crate::whiteout::is_overlay_whiteout;

/// How a path changed, with Docker's numbers (0, 1, 2 on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

/// One changed path, absolute inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

/// The changes of the overlay upper directory `upper` over `lowers` (any
/// order), sorted by path: whiteouts are deletions, paths no lower has are
/// additions (with everything under them), others modifications.
pub fn changes(upper: &Path, lowers: &[&Path]) -> Vec<Change> {
    let mut out = Vec::new();
    walk(upper, Path::new(""), lowers, false, &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn in_lowers(lowers: &[&Path], rel: &Path) -> bool {
    lowers.iter().any(|l| l.join(rel).symlink_metadata().is_ok())
}

fn walk(upper: &Path, rel: &Path, lowers: &[&Path], added_parent: bool, out: &mut Vec<Change>) {
    let Ok(entries) = std::fs::read_dir(upper.join(rel)) else { return };
    for entry in entries.flatten() {
        let rel: PathBuf = rel.join(entry.file_name());
        let Ok(meta) = entry.path().symlink_metadata() else { continue };
        let path = format!("/{}", rel.display());
        if is_overlay_whiteout(&meta) {
            out.push(Change { path, kind: ChangeKind::Deleted });
            continue;
        }
        let added = added_parent || !in_lowers(lowers, &rel);
        out.push(Change {
            path,
            kind: if added { ChangeKind::Added } else { ChangeKind::Modified },
        });
        if meta.is_dir() {
            walk(upper, &rel, lowers, added, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additions_modifications_and_deletions_are_told_apart() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
        std::fs::create_dir_all(lower.join("etc")).expect("mkdir");
        std::fs::write(lower.join("etc/passwd"), "root").expect("write");
        std::fs::create_dir_all(upper.join("etc")).expect("mkdir");
        std::fs::write(upper.join("etc/passwd"), "root\nme").expect("write");
        std::fs::create_dir_all(upper.join("new/dir")).expect("mkdir");
        std::fs::write(upper.join("new/dir/f"), "x").expect("write");
        let found = changes(&upper, &[&lower]);
        let text: Vec<String> = found.iter().map(|c| format!("{:?} {}", c.kind, c.path)).collect();
        assert_eq!(
            text,
            [
                "Modified /etc",
                "Modified /etc/passwd",
                "Added /new",
                "Added /new/dir",
                "Added /new/dir/f"
            ]
        );
    }
}
