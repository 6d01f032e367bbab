//! The snapshot directory: committed layers and containers' writable layers.
//!
//! ```text
//! <root>/layers/<alg>-<hex>/fs      a committed layer, keyed by chain id
//! <root>/l/<16 hex>                 short link → ../layers/<alg>-<hex>/fs
//! <root>/containers/<id>/upper      a container's writable layer
//! <root>/containers/<id>/work       overlay's work directory for it
//! ```
//!
//! Layers and containers live in separate directories because a container id
//! may look like a digest's hex. The short links exist because the overlay
//! option string must fit in a page: with full paths an image of about 40
//! layers no longer fits, so [`Snapshots::mounts`] then names each lower by
//! its link (`<root>/l/<16 hex>`, about 20 bytes plus the root), absolute so
//! that the mount needs no particular working directory. Links are relative
//! symlinks, so the root can move.

use std::fs::{self, DirBuilder};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use kiln_types::{ContainerId, Digest};

use crate::error::SnapshotError;
use crate::overlay::{is_option_safe, plan_mount, MountSpec, UpperDirs};
use crate::unpack::{remove_tree, unpack_layer_staged, UnpackStats, STAGING_PREFIX};
use crate::whiteout::WhiteoutFormat;

const LAYERS: &str = "layers";
const LINKS: &str = "l";
const CONTAINERS: &str = "containers";
/// Hex digits of a chain id used as its short link name.
const LINK_LEN: usize = 16;

/// Snapshots under one root directory.
#[derive(Debug, Clone)]
pub struct Snapshots {
    root: PathBuf,
    whiteouts: WhiteoutFormat,
}

impl Snapshots {
    /// Open (creating if needed) the snapshot directory `root`, storing
    /// whiteouts for overlayfs.
    pub fn open(root: &Path) -> Result<Snapshots, SnapshotError> {
        Self::open_with_whiteouts(root, WhiteoutFormat::Overlay)
    }

    /// [`Snapshots::open`] with whiteouts in the given form; use
    /// [`WhiteoutFormat::Oci`] with the copying snapshotter ([`crate::materialize`]).
    pub fn open_with_whiteouts(
        root: &Path,
        whiteouts: WhiteoutFormat,
    ) -> Result<Snapshots, SnapshotError> {
        if !root.is_absolute() || !is_option_safe(root) {
            return Err(SnapshotError::InvalidRoot { path: root.to_owned() });
        }
        for dir in [LAYERS, LINKS, CONTAINERS] {
            let path = root.join(dir);
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(|source| SnapshotError::Write { path: path.clone(), source })?;
            // Layers are big unrelated trees: let ext4 spread them over
            // block groups. (Not the writable layers: a container's few
            // files are not worth the allocator's scan of every group.)
            if dir == LAYERS {
                let _ = kiln_sys::fs::mark_top_directory(&path);
            }
        }
        let snapshots = Snapshots { root: root.to_owned(), whiteouts };
        snapshots.sweep_detached();
        Ok(snapshots)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding the committed layer `chain_id` (whether or not it exists).
    pub fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.root.join(LAYERS).join(layer_key(chain_id)).join("fs")
    }

    /// Whether the layer `chain_id` is unpacked and committed.
    pub fn has_layer(&self, chain_id: &Digest) -> bool {
        self.layer_dir(chain_id).is_dir()
    }

    /// Unpack a layer blob as the snapshot `chain_id`; atomic: afterwards
    /// the layer is either whole or absent. Unpacking a layer that exists
    /// already is a [`SnapshotError::Exists`].
    pub fn unpack(
        &self,
        chain_id: &Digest,
        reader: impl Read,
    ) -> Result<UnpackStats, SnapshotError> {
        let fs_dir = self.layer_dir(chain_id);
        let key_dir = fs_dir.parent().unwrap_or(&self.root).to_owned();
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&key_dir)
            .map_err(|source| SnapshotError::Write { path: key_dir.clone(), source })?;
        self.ensure_link(chain_id)?;
        // Built under `layers/` with a random name, so that each layer gets
        // its own block group (the key dir's name is the same each time an
        // image is loaded again).
        let staging = self.root.join(LAYERS);
        let result = unpack_layer_staged(reader, &fs_dir, Some(&staging), self.whiteouts);
        if result.is_err() && !fs_dir.exists() {
            // Leave nothing behind: the key dir only if still empty.
            let _ = fs::remove_dir(&key_dir);
        }
        let stats = result?;
        tracing::info!(chain_id = %chain_id, diff_id = %stats.diff_id, files = stats.files, "layer unpacked");
        Ok(stats)
    }

    /// Remove the layer `chain_id`; it disappears at once (renamed away),
    /// then its files are deleted.
    pub fn remove_layer(&self, chain_id: &Digest) -> Result<(), SnapshotError> {
        let key_dir = self.root.join(LAYERS).join(layer_key(chain_id));
        if !key_dir.exists() {
            return Err(SnapshotError::LayerNotFound { chain_id: chain_id.clone() });
        }
        let _ = fs::remove_file(self.link_path(chain_id));
        remove_dir_atomically(&key_dir)
    }

    /// Create the writable layer of container `id`: fresh `upper` and `work`
    /// directories.
    pub fn prepare_container(&self, id: &ContainerId) -> Result<UpperDirs, SnapshotError> {
        let dir = self.container_dir(id);
        DirBuilder::new().mode(0o700).create(&dir).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                SnapshotError::Exists { path: dir.clone() }
            } else {
                SnapshotError::Write { path: dir.clone(), source }
            }
        })?;
        let dirs = UpperDirs { upper: dir.join("upper"), work: dir.join("work") };
        for path in [&dirs.upper, &dirs.work] {
            DirBuilder::new()
                .mode(0o755)
                .create(path)
                .map_err(|source| SnapshotError::Write { path: path.clone(), source })?;
        }
        Ok(dirs)
    }

    /// The writable layer of container `id`, if it was prepared.
    pub fn container_dirs(&self, id: &ContainerId) -> Option<UpperDirs> {
        let dir = self.container_dir(id);
        dir.is_dir().then(|| UpperDirs { upper: dir.join("upper"), work: dir.join("work") })
    }

    /// Remove container `id`'s writable layer; absent is fine.
    pub fn remove_container(&self, id: &ContainerId) -> Result<(), SnapshotError> {
        if let Some(doomed) = self.detach_container(id)? {
            remove_tree(&doomed);
        }
        Ok(())
    }

    /// Take container `id`'s writable layer out of the store at once (one
    /// rename) and return where it now lies, for the caller to delete when
    /// it suits it; `None` when there is none. What a crash leaves there
    /// goes at the next [`Snapshots::open`].
    pub fn detach_container(&self, id: &ContainerId) -> Result<Option<PathBuf>, SnapshotError> {
        let dir = self.container_dir(id);
        if !dir.exists() {
            return Ok(None);
        }
        let doomed = doomed_path(&dir);
        fs::rename(&dir, &doomed)
            .map_err(|source| SnapshotError::Write { path: dir.clone(), source })?;
        Ok(Some(doomed))
    }

    /// Deletes what [`Snapshots::detach_container`] returned.
    pub fn remove_detached(&self, path: &Path) {
        remove_tree(path);
    }

    /// Deletes writable layers left half-removed, and layers left half
    /// unpacked, by a crash.
    fn sweep_detached(&self) {
        for (dir, doomed) in [(CONTAINERS, false), (LAYERS, true)] {
            let Ok(entries) = fs::read_dir(self.root.join(dir)) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(REMOVING) || (doomed && name.starts_with(STAGING_PREFIX)) {
                    remove_tree(&entry.path());
                }
            }
        }
    }

    /// The mount of an image's layers, given bottom first by chain id (as
    /// [`crate::chain_ids`] returns them), with an optional writable upper.
    ///
    /// Lowers are listed top first. Full paths are used when the options fit
    /// in a page, otherwise the short links under `<root>/l/`; beyond that
    /// (about 4000 / (root length + 20) layers) it is an
    /// [`SnapshotError::OptionsTooLong`], and the copying snapshotter is the
    /// way out.
    pub fn mounts(
        &self,
        layers: &[Digest],
        upper: Option<&UpperDirs>,
    ) -> Result<MountSpec, SnapshotError> {
        if let Some(missing) = layers.iter().find(|id| !self.has_layer(id)) {
            return Err(SnapshotError::LayerNotFound { chain_id: missing.clone() });
        }
        let full: Vec<PathBuf> = layers.iter().rev().map(|id| self.layer_dir(id)).collect();
        let full_refs: Vec<&Path> = full.iter().map(PathBuf::as_path).collect();
        match plan_mount(&full_refs, upper) {
            Err(SnapshotError::OptionsTooLong { .. }) => {
                for id in layers {
                    self.ensure_link(id)?;
                }
                let short: Vec<PathBuf> =
                    layers.iter().rev().map(|id| self.link_path(id)).collect();
                let short_refs: Vec<&Path> = short.iter().map(PathBuf::as_path).collect();
                plan_mount(&short_refs, upper)
            }
            planned => planned,
        }
    }

    fn container_dir(&self, id: &ContainerId) -> PathBuf {
        self.root.join(CONTAINERS).join(id)
    }

    fn link_path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join(LINKS).join(&chain_id.hex()[..LINK_LEN])
    }

    /// Make `<root>/l/<short>` point at the layer (dangling until it is unpacked).
    fn ensure_link(&self, chain_id: &Digest) -> Result<(), SnapshotError> {
        let link = self.link_path(chain_id);
        let target = Path::new("..").join(LAYERS).join(layer_key(chain_id)).join("fs");
        match fs::read_link(&link) {
            Ok(existing) if existing == target => return Ok(()),
            Ok(_) => fs::remove_file(&link)
                .map_err(|source| SnapshotError::Write { path: link.clone(), source })?,
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&target, &link).or_else(|err| match fs::read_link(&link) {
            // Another unpack of the same layer made it first.
            Ok(existing) if existing == target => Ok(()),
            _ => Err(SnapshotError::Write { path: link, source: err }),
        })
    }
}

/// The directory name of a layer: `<alg>-<hex>` (no `:`, which overlay
/// would read as a separator).
fn layer_key(chain_id: &Digest) -> String {
    format!("{}-{}", chain_id.algorithm().as_str(), chain_id.hex())
}

/// The suffix of a directory on its way out.
const REMOVING: &str = ".removing";

fn doomed_path(dir: &Path) -> PathBuf {
    let mut doomed = dir.as_os_str().to_owned();
    doomed.push(REMOVING);
    PathBuf::from(doomed)
}

fn remove_dir_atomically(dir: &Path) -> Result<(), SnapshotError> {
    let doomed = doomed_path(dir);
    fs::rename(dir, &doomed)
        .map_err(|source| SnapshotError::Write { path: dir.to_owned(), source })?;
    remove_tree(&doomed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::sha256_digest;

    fn fake_layer(snapshots: &Snapshots, id: &Digest) {
        fs::create_dir_all(snapshots.layer_dir(id)).unwrap();
    }

    #[test]
    fn a_detached_layer_is_out_of_the_store_and_a_crash_leftover_goes_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("snap");
        let snapshots = Snapshots::open(&root).unwrap();
        let id: ContainerId = "c1".parse().unwrap();
        let upper = snapshots.prepare_container(&id).unwrap();
        fs::write(upper.upper.join("file"), b"x").unwrap();
        let doomed = snapshots.detach_container(&id).unwrap().expect("detached");
        assert!(snapshots.container_dirs(&id).is_none());
        assert!(doomed.join("upper/file").is_file());
        assert!(snapshots.detach_container(&id).unwrap().is_none());
        // The process dies before deleting it, and in the middle of an
        // unpack: the next open deletes both.
        let staging = root.join(LAYERS).join(format!("{STAGING_PREFIX}abc"));
        fs::create_dir_all(staging.join("usr")).unwrap();
        let reopened = Snapshots::open(&root).unwrap();
        assert!(!doomed.exists());
        assert!(!staging.exists());
        reopened.prepare_container(&id).unwrap();
        assert!(reopened.container_dirs(&id).is_some());
    }

    #[test]
    fn mounts_list_layers_top_first_with_full_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let snapshots = Snapshots::open(tmp.path()).unwrap();
        let ids: Vec<Digest> =
            ["a", "b", "c"].iter().map(|s| sha256_digest(s.as_bytes())).collect();
        ids.iter().for_each(|id| fake_layer(&snapshots, id));
        let id: ContainerId = "c1".parse().unwrap();
        let upper = snapshots.prepare_container(&id).unwrap();
        let spec = snapshots.mounts(&ids, Some(&upper)).unwrap();
        let dir = |id: &Digest| snapshots.layer_dir(id).display().to_string();
        assert_eq!(
            spec.options,
            [
                format!("lowerdir={}:{}:{}", dir(&ids[2]), dir(&ids[1]), dir(&ids[0])),
                format!("upperdir={}", upper.upper.display()),
                format!("workdir={}", upper.work.display()),
            ]
        );
        assert!(upper.upper.is_dir() && upper.work.is_dir());
    }

    #[test]
    fn deep_images_use_short_links_that_resolve_to_the_layers() {
        let tmp = tempfile::tempdir().unwrap();
        let snapshots = Snapshots::open(tmp.path()).unwrap();
        let ids: Vec<Digest> = (0..100).map(|i| sha256_digest(format!("{i}").as_bytes())).collect();
        ids.iter().for_each(|id| fake_layer(&snapshots, id));
        let spec = snapshots.mounts(&ids, None).unwrap();
        assert!(spec.options_string().len() <= crate::MAX_OPTIONS_LEN);
        let lowerdir = spec.options[0].strip_prefix("lowerdir=").unwrap();
        let lowers: Vec<&str> = lowerdir.split(':').collect();
        assert_eq!(lowers.len(), 100);
        let first = fs::canonicalize(lowers[0]).unwrap();
        assert_eq!(first, fs::canonicalize(snapshots.layer_dir(&ids[99])).unwrap());
        let last = fs::canonicalize(lowers[99]).unwrap();
        assert_eq!(last, fs::canonicalize(snapshots.layer_dir(&ids[0])).unwrap());
    }

    #[test]
    fn mounts_of_a_missing_layer_fail() {
        let tmp = tempfile::tempdir().unwrap();
        let snapshots = Snapshots::open(tmp.path()).unwrap();
        let id = sha256_digest(b"x");
        assert!(matches!(
            snapshots.mounts(std::slice::from_ref(&id), None),
            Err(SnapshotError::LayerNotFound { chain_id }) if chain_id == id
        ));
    }

    #[test]
    fn roots_that_overlay_would_misparse_are_refused() {
        for bad in ["/tmp/a:b", "/tmp/a,b", "relative"] {
            assert!(matches!(
                Snapshots::open(Path::new(bad)),
                Err(SnapshotError::InvalidRoot { .. })
            ));
        }
    }
}
