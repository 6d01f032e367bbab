//! The OCI `linux.cgroupsPath`, and the caller's own cgroups it may be relative to.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use kiln_types::ContainerId;

use crate::CgroupError;

/// Where a container's cgroup lives inside each hierarchy.
///
/// Absolute (`/kiln/abc`) paths start at each hierarchy's root; relative
/// (`kiln/abc`) ones at the calling process's own cgroup in that hierarchy.
/// Always normalised, never the root itself, never containing `..`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CgroupPath(PathBuf);

/// The parent of containers' cgroups when the spec names no path.
const DEFAULT_PARENT: &str = "/kiln";

impl CgroupPath {
    /// Parses `linux.cgroupsPath`; absent or empty means `/kiln/<id>`.
    pub fn parse(path: Option<&str>, id: &str) -> Result<CgroupPath, CgroupError> {
        let path = match path {
            Some(p) if !p.is_empty() => p,
            _ => {
                let id: ContainerId = id
                    .parse()
                    .map_err(|source| CgroupError::InvalidId { id: id.to_owned(), source })?;
                return Ok(CgroupPath(Path::new(DEFAULT_PARENT).join(id.as_str())));
            }
        };
        let invalid = |reason| CgroupError::InvalidPath { path: path.to_owned(), reason };
        if path.contains('\0') {
            return Err(invalid("it contains a NUL byte"));
        }
        // runc's systemd driver takes "slice:prefix:name"; only cgroupfs paths are known here.
        if !path.contains('/') && path.split(':').count() == 3 {
            return Err(invalid("systemd slice paths are not supported"));
        }
        let mut normal = if path.starts_with('/') { PathBuf::from("/") } else { PathBuf::new() };
        let mut depth = 0;
        for component in Path::new(path).components() {
            match component {
                Component::ParentDir => return Err(invalid("it contains \"..\"")),
                Component::Normal(name) => {
                    normal.push(name);
                    depth += 1;
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        if depth == 0 {
            return Err(invalid("it names the root cgroup"));
        }
        Ok(CgroupPath(normal))
    }

    pub fn is_relative(&self) -> bool {
        self.0.is_relative()
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.display().fmt(f)
    }
}

/// This process's cgroups, from `/proc/self/cgroup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OwnCgroups {
    /// v1 hierarchies: (controller and `name=` names, path).
    v1: Vec<(Vec<String>, PathBuf)>,
    /// The cgroup2 hierarchy's line (`0::/path`).
    unified: Option<PathBuf>,
}

impl OwnCgroups {
    pub(crate) fn read() -> Result<OwnCgroups, CgroupError> {
        let path = Path::new("/proc/self/cgroup");
        let text = std::fs::read_to_string(path)
            .map_err(|source| CgroupError::Read { path: path.to_owned(), source })?;
        Ok(OwnCgroups::parse(&text))
    }

    /// `4:memory:/user.slice` and `0::/user.slice/session-1.scope` lines.
    pub(crate) fn parse(text: &str) -> OwnCgroups {
        let mut own = OwnCgroups::default();
        for line in text.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(_id), Some(names), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if names.is_empty() {
                own.unified = Some(PathBuf::from(path));
            } else {
                own.v1.push((names.split(',').map(str::to_owned).collect(), PathBuf::from(path)));
            }
        }
        own
    }

    /// The path in the v1 hierarchy holding any of `names`.
    pub(crate) fn v1(&self, names: &[String]) -> Option<&Path> {
        self.v1.iter().find(|(own, _)| own.iter().any(|n| names.contains(n))).map(|(_, p)| &**p)
    }

    pub(crate) fn unified(&self) -> Option<&Path> {
        self.unified.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_or_empty_path_defaults_to_kiln_and_the_id() {
        let p = CgroupPath::parse(None, "abc123").expect("parse");
        assert_eq!(p.as_path(), Path::new("/kiln/abc123"));
        assert!(!p.is_relative());
        assert_eq!(CgroupPath::parse(Some(""), "abc123").expect("parse"), p);
        assert!(matches!(CgroupPath::parse(None, "a/b"), Err(CgroupError::InvalidId { .. })));
        assert!(matches!(CgroupPath::parse(None, ".."), Err(CgroupError::InvalidId { .. })));
    }

    #[test]
    fn absolute_paths_are_normalised() {
        let p = CgroupPath::parse(Some("//docker/./abc/"), "x").expect("parse");
        assert_eq!(p.as_path(), Path::new("/docker/abc"));
        assert_eq!(p.to_string(), "/docker/abc");
    }

    #[test]
    fn relative_paths_stay_relative() {
        let p = CgroupPath::parse(Some("kiln/abc"), "x").expect("parse");
        assert!(p.is_relative());
        assert_eq!(p.as_path(), Path::new("kiln/abc"));
    }

    #[test]
    fn parent_components_and_the_root_are_refused() {
        for bad in ["/a/../b", "../a", "a/..", "/", "//", "./", "a\0b", "system.slice:docker:abc"] {
            let err = CgroupPath::parse(Some(bad), "x").expect_err(bad);
            assert!(matches!(err, CgroupError::InvalidPath { .. }), "{bad}: {err:?}");
            assert!(err.to_string().starts_with("invalid cgroups path"), "{err}");
        }
    }

    #[test]
    fn own_cgroups_are_found_by_any_controller_name() {
        let own = OwnCgroups::parse(
            "12:cpu,cpuacct:/user/a\n9:name=systemd:/user.slice\n4:memory:/m:x\n0::/init.scope\n",
        );
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(own.v1(&names(&["cpuacct"])), Some(Path::new("/user/a")));
        assert_eq!(own.v1(&names(&["name=systemd"])), Some(Path::new("/user.slice")));
        assert_eq!(own.v1(&names(&["memory"])), Some(Path::new("/m:x")));
        assert_eq!(own.v1(&names(&["pids"])), None);
        assert_eq!(own.unified(), Some(Path::new("/init.scope")));
    }
}
