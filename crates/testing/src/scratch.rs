//! Temporary directories that clean up after themselves, mounts included.

use std::path::{Path, PathBuf};

use crate::name::unique_name;

/// A fresh directory `$TMPDIR/kiln-t-<random>`, removed with its contents on
/// drop, also when the test fails.
///
/// Before removing, mounts left under it (a runtime that failed half-way) are
/// detached, so that removal never walks into a mounted host directory. If
/// any mount cannot be detached, the directory is left in place and a warning
/// goes to stderr rather than risking what lies below the mount.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    name: String,
}

impl ScratchDir {
    /// Create a new empty directory (mode 0755) under [`std::env::temp_dir`].
    pub fn new() -> std::io::Result<ScratchDir> {
        let name = unique_name();
        let path = std::env::temp_dir().join(&name);
        std::fs::create_dir(&path)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        Ok(ScratchDir { path, name })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's file name, `kiln-t-<random>`; unique, so also usable
    /// as a container id or cgroup name for whatever lives in it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !detach_mounts_under(&self.path) {
            eprintln!("warning: mounts remain under {}; leaving it in place", self.path.display());
            return;
        }
        if let Err(err) = std::fs::remove_dir_all(&self.path) {
            eprintln!("warning: cannot remove {}: {err}", self.path.display());
        }
    }
}

/// Lazily unmount everything mounted at or below `dir`, deepest first.
/// True when nothing is mounted there any more.
fn detach_mounts_under(dir: &Path) -> bool {
    for _ in 0..8 {
        let mut points = mounts_under(dir);
        if points.is_empty() {
            return true;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for point in points {
            let _ = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    mounts_under(dir).is_empty()
}

fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mount_points(&mountinfo).into_iter().filter(|p| p.starts_with(dir)).collect()
}

/// Mount points (field 5) of a mountinfo text, with `\NNN` escapes undone.
fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo.lines().filter_map(|line| line.split(' ').nth(4)).map(unescape_octal).collect()
}

fn unescape_octal(s: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits =
            bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], digits) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_dir_is_removed_with_its_contents_on_drop() {
        let dir = ScratchDir::new().expect("scratch dir");
        let path = dir.path().to_owned();
        std::fs::create_dir(path.join("sub")).expect("mkdir");
        std::fs::write(path.join("sub/file"), "x").expect("write");
        assert!(dir.name().starts_with("kiln-t-"));
        assert_eq!(path.file_name().and_then(|n| n.to_str()), Some(dir.name()));
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn mount_points_are_unescaped() {
        let info =
            "36 35 98:0 / /tmp/a\\040b rw - tmpfs tmpfs rw\n37 35 98:0 / /proc rw - proc proc rw\n";
        assert_eq!(mount_points(info), vec![PathBuf::from("/tmp/a b"), PathBuf::from("/proc")]);
    }
}
