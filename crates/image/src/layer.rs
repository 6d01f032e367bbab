//! Layer blobs: decompressing, hashing, and unpacking them into snapshots once.

use std::io::{self, Read, Write};

use kiln_content::{ContentError, Store};
use kiln_snapshot::{chain_ids, Compression, SnapshotError, Snapshots};
use kiln_types::{Algorithm, Digest, ErrorKind, HasKind};
use sha2::{Digest as _, Sha256};

/// What can go wrong turning layer blobs into snapshots.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {digest} is not in the content store")]
    Missing { digest: Digest },
    #[error("cannot read layer {digest}")]
    Read {
        digest: Digest,
        #[source]
        source: ContentError,
    },
    #[error("cannot decompress layer {digest}")]
    Decompress {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("cannot unpack layer {digest}")]
    Unpack {
        digest: Digest,
        #[source]
        source: SnapshotError,
    },
    #[error("layer {digest} has diff id {actual}, but the image config says {expected}")]
    DiffIdMismatch { digest: Digest, expected: Digest, actual: Digest },
    #[error("image has {layers} layers but its config lists {diff_ids} diff ids")]
    CountMismatch { layers: usize, diff_ids: usize },
}

impl HasKind for LayerError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Missing { .. }
            | Self::Decompress { .. }
            | Self::DiffIdMismatch { .. }
            | Self::CountMismatch { .. } => ErrorKind::InvalidArgument,
            Self::Read { source, .. } => source.kind(),
            Self::Unpack { source, .. } => source.kind(),
        }
    }
}

/// Unpack each layer of an image whose snapshot is missing, bottom first,
/// keyed by chain id, and check every layer against its diff id.
///
/// A layer whose snapshot exists already is not unpacked again; its blob is
/// still checked (for free when the blob is the uncompressed tar itself).
/// Returns the chain ids.
pub(crate) fn ensure_unpacked(
    content: &Store,
    snapshots: &Snapshots,
    layers: &[Digest],
    diff_ids: &[Digest],
) -> Result<Vec<Digest>, LayerError> {
    if layers.len() != diff_ids.len() {
        return Err(LayerError::CountMismatch { layers: layers.len(), diff_ids: diff_ids.len() });
    }
    let chains = chain_ids(diff_ids);
    for ((layer, diff_id), chain) in layers.iter().zip(diff_ids).zip(&chains) {
        if !content.contains(layer) {
            return Err(LayerError::Missing { digest: layer.clone() });
        }
        if snapshots.has_layer(chain) {
            if layer != diff_id {
                let actual = diff_id_of(content, layer)?;
                check_diff_id(layer, diff_id, &actual)?;
            }
            continue;
        }
        unpack_layer(content, snapshots, layer, diff_id, chain)?;
    }
    Ok(chains)
}

/// Unpack one stored layer blob as the snapshot `chain`, whose parent
/// (the chain id below it) must be unpacked already, and check the
/// uncompressed tar against `diff_id`; a mismatch leaves no snapshot.
///
/// A snapshot that appears meanwhile (another loader or pull got there
/// first) counts as done. Pulls call this as each layer arrives, bottom
/// first, so that unpacking overlaps the downloads above it.
pub fn unpack_layer(
    content: &Store,
    snapshots: &Snapshots,
    layer: &Digest,
    diff_id: &Digest,
    chain: &Digest,
) -> Result<(), LayerError> {
    if snapshots.has_layer(chain) {
        return Ok(());
    }
    let blob = content
        .open_blob(layer)
        .map_err(|source| LayerError::Read { digest: layer.clone(), source })?;
    let stats = match snapshots.unpack(chain, blob) {
        Ok(stats) => stats,
        Err(SnapshotError::Exists { .. }) => return Ok(()),
        Err(source) => return Err(LayerError::Unpack { digest: layer.clone(), source }),
    };
    if let Err(err) = check_diff_id(layer, diff_id, &stats.diff_id) {
        if let Err(remove) = snapshots.remove_layer(chain) {
            tracing::warn!(chain_id = %chain, error = %remove, "cannot remove mismatched layer");
        }
        return Err(err);
    }
    Ok(())
}

fn check_diff_id(layer: &Digest, expected: &Digest, actual: &Digest) -> Result<(), LayerError> {
    if expected == actual {
        return Ok(());
    }
    Err(LayerError::DiffIdMismatch {
        digest: layer.clone(),
        expected: expected.clone(),
        actual: actual.clone(),
    })
}

/// The sha256 of a stored layer's uncompressed tar.
pub(crate) fn diff_id_of(content: &Store, layer: &Digest) -> Result<Digest, LayerError> {
    let (mut tar, _) = open_uncompressed(content, layer)?;
    let mut hasher = HashWriter::default();
    io::copy(&mut tar, &mut hasher)
        .map_err(|source| LayerError::Decompress { digest: layer.clone(), source })?;
    Ok(hasher.digest())
}

/// A stored layer's uncompressed tar stream, and how the blob is compressed.
pub(crate) fn open_uncompressed(
    content: &Store,
    layer: &Digest,
) -> Result<(Box<dyn Read>, Compression), LayerError> {
    let blob = content
        .open_blob(layer)
        .map_err(|source| LayerError::Read { digest: layer.clone(), source })?;
    decompress(blob).map_err(|source| LayerError::Decompress { digest: layer.clone(), source })
}

/// The compression of a stored blob, from its first bytes.
pub(crate) fn compression_of(content: &Store, layer: &Digest) -> Result<Compression, LayerError> {
    let blob = content
        .open_blob(layer)
        .map_err(|source| LayerError::Read { digest: layer.clone(), source })?;
    let mut head = Vec::with_capacity(4);
    blob.take(4)
        .read_to_end(&mut head)
        .map_err(|source| LayerError::Decompress { digest: layer.clone(), source })?;
    Ok(Compression::detect(&head))
}

/// The uncompressed stream of `reader` (plain, gzip or zstd, told apart by
/// magic bytes), and the compression found.
pub(crate) use kiln_snapshot::decompress;

/// A writer that only hashes (sha256) and counts what it is given.
#[derive(Debug, Default)]
pub(crate) struct HashWriter {
    hasher: Sha256,
    pub(crate) written: u64,
}

impl HashWriter {
    pub(crate) fn digest(self) -> Digest {
        to_digest(self.hasher.finalize())
    }
}

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The sha256 digest of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> Digest {
    to_digest(Sha256::digest(bytes))
}

fn to_digest(hash: impl AsRef<[u8]>) -> Digest {
    use std::fmt::Write as _;
    let hex = hash.as_ref().iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    Digest::new(Algorithm::Sha256, &hex).expect("a sha256 hash is 64 lower-case hex digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_and_plain_streams_decompress_to_the_same_bytes() {
        let plain = b"hello layer".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        for (input, want) in [(&plain[..], Compression::None), (&gz[..], Compression::Gzip)] {
            let (mut r, found) = decompress(input).unwrap();
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(found, want);
            assert_eq!(out, plain);
        }
    }

    #[test]
    fn sha256_of_nothing_is_the_well_known_digest() {
        assert_eq!(
            sha256(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
