//! A blob being written: hashed while written, verified and renamed on commit.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use kiln_types::{Algorithm, Digest};
use sha2::{Digest as _, Sha256};

use crate::error::ContentError;

/// Buffer between callers' writes (often 8 KiB from `io::copy`) and the file.
const BUFFER: usize = 256 * 1024;

/// A blob in progress, in a temp file under `ingest/`.
///
/// Write the bytes, then [`commit`](Ingest::commit). Until then nothing is
/// visible in `blobs/`. Dropping an uncommitted ingest removes its temp file.
#[derive(Debug)]
pub struct Ingest {
    /// `None` once committed or given up.
    file: Option<BufWriter<File>>,
    temp: PathBuf,
    blobs: PathBuf,
    hasher: Sha256,
    written: u64,
    expected: Option<Digest>,
    expected_size: Option<u64>,
    /// The first write that failed; a failed ingest can only be dropped.
    failure: Option<Failure>,
}

#[derive(Debug, Clone, Copy)]
enum Failure {
    TooManyBytes { expected: u64 },
    Io { kind: io::ErrorKind },
}

impl Ingest {
    /// Start an ingest in the new, empty file `temp`; committed blobs go to
    /// `blobs` (the `blobs/sha256` directory).
    pub(crate) fn new(
        file: File,
        temp: PathBuf,
        blobs: PathBuf,
        expected: Option<Digest>,
        expected_size: Option<u64>,
    ) -> Ingest {
        Ingest {
            file: Some(BufWriter::with_capacity(BUFFER, file)),
            temp,
            blobs,
            hasher: Sha256::new(),
            written: 0,
            expected,
            expected_size,
            failure: None,
        }
    }

    /// Bytes accepted so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The digest this ingest must produce, if one was given.
    pub fn expected(&self) -> Option<&Digest> {
        self.expected.as_ref()
    }

    pub(crate) fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Verify, fsync and rename the blob into place, and return its digest.
    ///
    /// When an expected size or digest was given and the bytes do not match,
    /// the temp file is removed and nothing becomes visible. If the blob
    /// already exists (blobs are immutable), the temp file is simply removed.
    pub fn commit(mut self) -> Result<Digest, ContentError> {
        match self.failure {
            Some(Failure::TooManyBytes { expected }) => {
                return Err(ContentError::TooManyBytes { expected })
            }
            Some(Failure::Io { kind }) => {
                let source = io::Error::new(kind, "an earlier write to this blob failed");
                return Err(ContentError::io("write", &self.temp, source));
            }
            None => {}
        }
        let actual =
            Digest::new(Algorithm::Sha256, &hex(&std::mem::take(&mut self.hasher).finalize()))
                .expect("a sha256 hash is 64 lower-case hex digits");
        if let Some(expected) = self.expected_size {
            if expected != self.written {
                let digest = self.expected.clone().unwrap_or_else(|| actual.clone());
                return Err(ContentError::SizeMismatch { digest, expected, actual: self.written });
            }
        }
        if let Some(expected) = &self.expected {
            if *expected != actual {
                return Err(ContentError::DigestMismatch { expected: expected.clone(), actual });
            }
        }

        let target = self.blobs.join(actual.hex());
        if target.exists() {
            tracing::debug!(digest = %actual, "blob already present");
            // Drop removes the temp file.
            return Ok(actual);
        }
        let writer = self.file.take().expect("an ingest holds its file until it is committed");
        let file = writer
            .into_inner()
            .map_err(|e| ContentError::io("write", &self.temp, e.into_error()))?;
        file.sync_all().map_err(|e| ContentError::io("fsync", &self.temp, e))?;
        drop(file);
        std::fs::rename(&self.temp, &target)
            .map_err(|e| ContentError::io("rename into place", &target, e))?;
        // The temp file is gone; nothing for Drop to remove.
        self.temp = PathBuf::new();
        sync_dir(&self.blobs)?;
        tracing::debug!(digest = %actual, size = self.written, "blob committed");
        Ok(actual)
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(failure) = self.failure {
            return Err(match failure {
                Failure::TooManyBytes { expected } => io::Error::new(
                    io::ErrorKind::InvalidData,
                    ContentError::TooManyBytes { expected },
                ),
                Failure::Io { kind } => {
                    io::Error::new(kind, "an earlier write to this blob failed")
                }
            });
        }
        if let Some(expected) = self.expected_size {
            if self.written.saturating_add(buf.len() as u64) > expected {
                self.failure = Some(Failure::TooManyBytes { expected });
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    ContentError::TooManyBytes { expected },
                ));
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("blob ingest already finished"));
        };
        match file.write(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.written += n as u64;
                Ok(n)
            }
            Err(err) => {
                self.failure = Some(Failure::Io { kind: err.kind() });
                Err(err)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush().inspect_err(|err| {
                self.failure.get_or_insert(Failure::Io { kind: err.kind() });
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // Close without flushing what is buffered: the file is going away.
        if let Some(writer) = self.file.take() {
            drop(writer.into_parts());
        }
        if self.temp.as_os_str().is_empty() {
            return;
        }
        if let Err(err) = std::fs::remove_file(&self.temp) {
            if err.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.temp.display(), error = %err, "cannot remove blob ingest");
            }
        }
    }
}

/// Make a rename or unlink in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ContentError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ContentError::io("fsync directory", dir, e))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}
