//! The exact build cache: a step's key is a hash of its parent's key and
//! everything that decides its result (the instruction after substitution,
//! the build arguments a RUN sees, the content hash of exactly the files a
//! COPY selects). The index maps a key to the image state after the step;
//! an entry whose layers are gone is a miss, never a wrong answer.
//!
//! Entries are small JSON files named by their key, written by rename: a
//! crash leaves an entry whole or absent, and two builds writing the same
//! key write the same bytes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use kiln_image::{Descriptor, ImageConfig};
use kiln_snapshot::chain_ids;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::state::ImageState;
use crate::worker::Worker;

/// A step's cache key: sha256 hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(pub String);

impl Key {
    /// The key of a step on top of `parent` described by `description`
    /// (a JSON value holding everything the step's result depends on).
    pub fn child(parent: &Key, description: &serde_json::Value) -> Key {
        let mut hasher = Sha256::new();
        hasher.update(parent.0.as_bytes());
        hasher.update(b"\n");
        hasher.update(description.to_string().as_bytes());
        Key(hex(&hasher.finalize()))
    }

    /// The key of a stage's start.
    pub fn root(description: &serde_json::Value) -> Key {
        let mut hasher = Sha256::new();
        hasher.update(description.to_string().as_bytes());
        Key(hex(&hasher.finalize()))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    config: ImageConfig,
    layers: Vec<Descriptor>,
}

/// The cache index under the worker's cache directory.
#[derive(Debug)]
pub struct Index {
    dir: PathBuf,
}

impl Index {
    pub fn new(cache_dir: &Path) -> Index {
        Index { dir: cache_dir.join("index") }
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(&key.0)
    }

    /// The state stored for `key`, if its layers are all still there.
    pub fn get(&self, key: &Key, worker: &dyn Worker) -> Option<ImageState> {
        let bytes = fs::read(self.path(key)).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        let diff_ids = &entry.config.rootfs.diff_ids;
        if diff_ids.len() != entry.layers.len()
            || !entry.layers.iter().all(|l| worker.content().contains(&l.digest))
        {
            return None;
        }
        // Layers imported with `--cache-from` are blobs until first used.
        for (chain, layer) in chain_ids(diff_ids).iter().zip(&entry.layers) {
            if worker.snapshots().has_layer(chain) {
                continue;
            }
            let blob = worker.content().open_blob(&layer.digest).ok()?;
            match worker.snapshots().unpack(chain, blob) {
                Ok(_) | Err(kiln_snapshot::SnapshotError::Exists { .. }) => {}
                Err(err) => {
                    tracing::warn!(chain = %chain, error = %err, "cannot unpack a cached layer");
                    return None;
                }
            }
        }
        Some(ImageState { config: entry.config, layers: entry.layers })
    }

    /// The stored bytes of `key`'s entry.
    pub fn raw(&self, key: &Key) -> Option<Vec<u8>> {
        fs::read(self.path(key)).ok()
    }

    /// Store an entry's bytes as they are (an import); a damaged entry
    /// only ever reads as a miss.
    pub fn put_raw(&self, key: &Key, bytes: &[u8]) {
        if let Err(err) = self.write(key, bytes) {
            tracing::warn!(key = %key.0, error = %err, "cannot import a build cache entry");
        }
    }

    fn write(&self, key: &Key, bytes: &[u8]) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.persist(self.path(key)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Remember `state` as the result of `key`. A failure only costs a
    /// later rebuild, so it is logged, not returned.
    pub fn put(&self, key: &Key, state: &ImageState) {
        let entry = Entry { config: state.config.clone(), layers: state.layers.clone() };
        let result = serde_json::to_vec(&entry)
            .map_err(std::io::Error::other)
            .and_then(|bytes| self.write(key, &bytes));
        if let Err(err) = result {
            tracing::warn!(key = %key.0, error = %err, "cannot write a build cache entry");
        }
    }
}
