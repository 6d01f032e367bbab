//! The store: where committed blobs live and how they are found.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use kiln_types::{Algorithm, Digest};

use crate::error::ContentError;
use crate::ingest::{hex, sync_dir, Ingest};

/// The default limit of [`Store::read`]: manifests and configs are far smaller.
pub const READ_LIMIT: u64 = 16 * 1024 * 1024;

/// A content-addressed blob store rooted at a directory.
///
/// Readers only ever look in `blobs/`, where files appear by rename once
/// whole and verified. Cheap to clone; safe to share between threads and
/// processes (writers never touch a committed blob).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Open the store at `root`, creating its directories as needed.
    ///
    /// Leftovers of killed writers stay in `ingest/` until
    /// [`gc_ingests`](Store::gc_ingests) is run.
    pub fn open(root: &Path) -> Result<Store, ContentError> {
        let store = Store { root: root.to_owned() };
        for dir in [store.blobs_dir(), store.ingest_dir()] {
            std::fs::create_dir_all(&dir).map_err(|e| ContentError::io("create", &dir, e))?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Remove every file in `ingest/` and return how many there were.
    ///
    /// Call only while no writer can be active, as the daemon does at start
    /// under its lock: an ingest in progress would fail at commit.
    pub fn gc_ingests(&self) -> Result<usize, ContentError> {
        let dir = self.ingest_dir();
        let entries = std::fs::read_dir(&dir).map_err(|e| ContentError::io("read", &dir, e))?;
        let mut removed = 0;
        for entry in entries {
            let path = entry.map_err(|e| ContentError::io("read", &dir, e))?.path();
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(ContentError::io("remove", &path, e)),
            }
        }
        if removed > 0 {
            tracing::info!(removed, "removed unfinished blob ingests");
        }
        Ok(removed)
    }

    /// Start writing a blob. With `expected`, commit refuses other content;
    /// with `expected_size`, writing more is refused and commit refuses less.
    pub fn writer(
        &self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<Ingest, ContentError> {
        if let Some(digest) = expected {
            if digest.algorithm() != Algorithm::Sha256 {
                return Err(ContentError::UnsupportedAlgorithm { digest: digest.clone() });
            }
        }
        let dir = self.ingest_dir();
        let (file, temp) = loop {
            let temp = dir.join(random_name()?);
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => break (file, temp),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ContentError::io("create", &temp, e)),
            }
        };
        Ok(Ingest::new(file, temp, self.blobs_dir(), expected.cloned(), expected_size))
    }

    /// Store `bytes` and return their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, ContentError> {
        let mut ingest = self.writer(None, Some(bytes.len() as u64))?;
        ingest.write_all(bytes).map_err(|e| ContentError::io("write", ingest.temp_path(), e))?;
        ingest.commit()
    }

    /// Whether a committed blob has this digest.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Size in bytes of a committed blob.
    pub fn size(&self, digest: &Digest) -> Result<u64, ContentError> {
        let path = self.path(digest);
        std::fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| self.not_found_or(digest, "stat", &path, e))
    }

    /// Open a committed blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| self.not_found_or(digest, "open", &path, e))
    }

    /// Read a small blob (a manifest, a config) into memory; refuses blobs
    /// over [`READ_LIMIT`].
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        self.read_limited(digest, READ_LIMIT)
    }

    /// Read a blob into memory; refuses blobs over `limit` bytes.
    pub fn read_limited(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, ContentError> {
        let path = self.path(digest);
        let file = self.open_blob(digest)?;
        let size = file.metadata().map_err(|e| ContentError::io("stat", &path, e))?.len();
        if size > limit {
            return Err(ContentError::TooLarge { digest: digest.clone(), size, limit });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.take(limit).read_to_end(&mut bytes).map_err(|e| ContentError::io("read", &path, e))?;
        Ok(bytes)
    }

    /// Hash a committed blob again and compare it with its name (a check
    /// for damage after commit, such as a disk fault).
    pub fn verify(&self, digest: &Digest) -> Result<(), ContentError> {
        let path = self.path(digest);
        let mut file = self.open_blob(digest)?;
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        io::copy(&mut file, &mut hasher).map_err(|e| ContentError::io("read", &path, e))?;
        let actual = Digest::new(Algorithm::Sha256, &hex(&sha2::Digest::finalize(hasher)))
            .expect("a sha256 hash is 64 lower-case hex digits");
        if actual != *digest {
            return Err(ContentError::DigestMismatch { expected: digest.clone(), actual });
        }
        Ok(())
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest.algorithm().as_str()).join(digest.hex())
    }

    /// Remove a committed blob.
    pub fn delete(&self, digest: &Digest) -> Result<(), ContentError> {
        let path = self.path(digest);
        std::fs::remove_file(&path).map_err(|e| self.not_found_or(digest, "remove", &path, e))?;
        sync_dir(&self.blobs_dir())
    }

    /// Digests of all committed blobs, sorted. Files in `blobs/sha256` whose
    /// names are not digests are skipped.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let dir = self.blobs_dir();
        let entries = std::fs::read_dir(&dir).map_err(|e| ContentError::io("read", &dir, e))?;
        let mut digests = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ContentError::io("read", &dir, e))?;
            let name = entry.file_name();
            match name.to_str().and_then(|hex| Digest::new(Algorithm::Sha256, hex).ok()) {
                Some(digest) => digests.push(digest),
                None => tracing::debug!(path = %entry.path().display(), "not a blob; skipped"),
            }
        }
        digests.sort();
        Ok(digests)
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join(Algorithm::Sha256.as_str())
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    fn not_found_or(
        &self,
        digest: &Digest,
        action: &'static str,
        path: &Path,
        e: io::Error,
    ) -> ContentError {
        if e.kind() == io::ErrorKind::NotFound {
            ContentError::NotFound { digest: digest.clone() }
        } else {
            ContentError::io(action, path, e)
        }
    }
}

/// 16 random hex digits for an ingest file name.
fn random_name() -> Result<String, ContentError> {
    let mut bytes = [0u8; 8];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| ContentError::io("read", "/dev/urandom", e))?;
    Ok(hex(&bytes))
}
