//! The container's root filesystem, when the engine asks the shim to mount
//! it: `<bundle>/kiln-rootfs.json` describes an overlay or a bind mount,
//! made on `<bundle>/rootfs` in the host's mount namespace before the
//! runtime creates the container, and detached when the shim is done.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use serde::{Deserialize, Serialize};

/// The description's file name in the bundle.
pub const ROOTFS_FILE: &str = "kiln-rootfs.json";

/// `{"fstype":"overlay","source":"overlay","options":["lowerdir=…",…]}` or
/// `{"fstype":"bind","source":"/dir","options":["rbind","ro"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsMount {
    pub fstype: String,
    pub source: String,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {}", .path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("rootfs type {fstype:?} is not supported (overlay or bind)")]
    Unsupported { fstype: String },
    #[error("cannot create rootfs directory {}", .path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot mount {source_path} ({fstype}) on {}", .target.display())]
    Mount {
        source_path: String,
        fstype: String,
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
}

/// One mount(2) call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountCall {
    pub source: String,
    pub fstype: Option<String>,
    pub flags: MsFlags,
    pub data: Option<String>,
}

/// Reads `<bundle>/kiln-rootfs.json`; `None` when there is none.
pub(crate) fn load(bundle: &Path) -> Result<Option<RootfsMount>, RootfsError> {
    let path = bundle.join(ROOTFS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(RootfsError::Read { path, source }),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|source| RootfsError::Parse { path, source })
}

/// The mount calls that make `spec` (pure).
pub(crate) fn plan(spec: &RootfsMount) -> Result<Vec<MountCall>, RootfsError> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut recursive = false;
    for option in &spec.options {
        match option.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags &= !MsFlags::MS_RDONLY,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "bind" => {}
            "rbind" => recursive = true,
            other => data.push(other),
        }
    }
    match spec.fstype.as_str() {
        "overlay" => Ok(vec![MountCall {
            source: spec.source.clone(),
            fstype: Some("overlay".into()),
            flags,
            data: (!data.is_empty()).then(|| data.join(",")),
        }]),
        "bind" => {
            let bind =
                if recursive { MsFlags::MS_BIND | MsFlags::MS_REC } else { MsFlags::MS_BIND };
            let mut calls = vec![MountCall {
                source: spec.source.clone(),
                fstype: None,
                flags: bind,
                data: None,
            }];
            // A bind mount takes its flags only from a remount.
            if !flags.is_empty() {
                calls.push(MountCall {
                    source: spec.source.clone(),
                    fstype: None,
                    flags: MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
                    data: None,
                });
            }
            Ok(calls)
        }
        other => Err(RootfsError::Unsupported { fstype: other.to_owned() }),
    }
}

/// The overlay option that skips every sync of the upper filesystem,
/// unmount's included (kernel 5.10 and later). The engine asks for it where
/// the writable layer is thrown away with the container (`--rm`): unmounting
/// a normal overlay syncs the whole filesystem under the upper dir, which
/// costs milliseconds per container on a busy host.
pub const VOLATILE: &str = "volatile";

/// Removes the mark a `volatile` overlay leaves in its work dir, so that the
/// same upper and work dirs mount again (the kernel refuses them otherwise).
/// Sound within one boot: what the layer holds was never at risk, since the
/// host did not crash under it; `--rm` layers do not outlive a reboot.
pub fn clear_volatile_mark(options: &[String]) {
    let Some(workdir) = options.iter().find_map(|o| o.strip_prefix("workdir=")) else {
        return;
    };
    // `incompat/volatile/dirty` is all the kernel keeps there.
    let _ = std::fs::remove_dir_all(Path::new(workdir).join("work").join("incompat"));
}

/// Makes `target` (if needed) and mounts `spec` there; on failure nothing
/// stays mounted. A `volatile` overlay the kernel does not know is mounted
/// without that option.
pub fn mount(spec: &RootfsMount, target: &Path) -> Result<(), RootfsError> {
    if spec.fstype == "overlay" && spec.options.iter().any(|o| o == VOLATILE) {
        clear_volatile_mark(&spec.options);
        match mount_planned(spec, target) {
            Err(RootfsError::Mount { source: nix::Error::EINVAL, .. }) => {
                let mut plain = spec.clone();
                plain.options.retain(|o| o != VOLATILE);
                return mount_planned(&plain, target);
            }
            other => return other,
        }
    }
    mount_planned(spec, target)
}

fn mount_planned(spec: &RootfsMount, target: &Path) -> Result<(), RootfsError> {
    let calls = plan(spec)?;
    std::fs::create_dir_all(target)
        .map_err(|source| RootfsError::CreateDir { path: target.to_owned(), source })?;
    for (i, call) in calls.iter().enumerate() {
        let source =
            if call.flags.contains(MsFlags::MS_REMOUNT) { None } else { Some(&*call.source) };
        let result = nix::mount::mount(
            source,
            target,
            call.fstype.as_deref(),
            call.flags,
            call.data.as_deref(),
        );
        if let Err(source) = result {
            if i > 0 {
                unmount(target);
            }
            return Err(RootfsError::Mount {
                source_path: call.source.clone(),
                fstype: spec.fstype.clone(),
                target: target.to_owned(),
                source,
            });
        }
    }
    Ok(())
}

/// Detaches whatever is mounted on `target`.
pub fn unmount(target: &Path) {
    if let Err(e) = nix::mount::umount2(target, MntFlags::MNT_DETACH) {
        tracing::warn!(target = %target.display(), "cannot unmount rootfs: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> RootfsMount {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn overlay_passes_its_dirs_as_data() {
        let calls = plan(&spec(
            r#"{"fstype":"overlay","source":"overlay","options":["lowerdir=/l1:/l2","upperdir=/u","workdir=/w"]}"#,
        ))
        .unwrap();
        assert_eq!(
            calls,
            [MountCall {
                source: "overlay".into(),
                fstype: Some("overlay".into()),
                flags: MsFlags::empty(),
                data: Some("lowerdir=/l1:/l2,upperdir=/u,workdir=/w".into()),
            }]
        );
    }

    #[test]
    fn read_only_rbind_is_a_bind_then_a_remount() {
        let calls =
            plan(&spec(r#"{"fstype":"bind","source":"/img","options":["rbind","ro"]}"#)).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(calls[1].flags, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY);
        let rw =
            plan(&spec(r#"{"fstype":"bind","source":"/img","options":["rbind","rw"]}"#)).unwrap();
        assert_eq!(rw.len(), 1);
    }

    #[test]
    fn other_types_are_refused() {
        let err = plan(&spec(r#"{"fstype":"zfs","source":"pool/x"}"#)).unwrap_err();
        assert!(err.to_string().contains("zfs"), "{err}");
    }

    #[test]
    fn missing_file_means_no_mount() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join(ROOTFS_FILE), "{nope").unwrap();
        assert!(matches!(load(dir.path()), Err(RootfsError::Parse { .. })));
    }
}
