//! `--cache-to type=local,dest=DIR` and `--cache-from type=local,src=DIR`:
//! the layer cache and the contents of `RUN --mount=type=cache`
//! directories, written to a plain directory a CI system can keep between
//! runs, and read back into a fresh daemon.
//!
//! ```text
//! DIR/kiln-cache.json        {"version":1}
//! DIR/index/<key>            cache entries, as the local index keeps them
//! DIR/blobs/sha256/<hex>     the layers they name
//! DIR/mounts/<name>.tar      the cache mounts, one tar each
//! ```
//!
//! Importing never trusts the directory: blobs are verified against their
//! digests as they are written into the store, entries whose layers are
//! missing stay misses, and mount tars cannot write outside their mount.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};

use kiln_types::Digest;

use crate::cache::{Index, Key};
use crate::worker::Worker;
use crate::{BuildError, BuildEvent};

const MARKER: &str = "kiln-cache.json";

/// Where a `--cache-to` or `--cache-from` value points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    /// `type=local,dest=DIR` or `type=local,src=DIR`.
    Local(PathBuf),
    /// A bare image name (Docker's legacy `--cache-from IMAGE`): its
    /// layers are already local images; nothing to import.
    Image(String),
}

/// Parse a `--cache-to` (`key` = `dest`) or `--cache-from` (`key` = `src`)
/// value.
pub fn parse_location(value: &str, key: &str) -> Result<CacheLocation, BuildError> {
    if !value.contains('=') {
        return Ok(CacheLocation::Image(value.to_owned()));
    }
    let mut kind = None;
    let mut dir = None;
    for part in value.split(',') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k.trim() {
            "type" => kind = Some(v.trim().to_owned()),
            k if k == key => dir = Some(PathBuf::from(v.trim())),
            // Options of other cache types (mode=, compression=) have no
            // meaning for a local directory of uncompressed layers.
            _ => {}
        }
    }
    match kind.as_deref() {
        Some("local") => {}
        Some(other) => {
            return Err(BuildError::invalid(format!(
                "cache type {other:?} is not supported: Kiln exports and imports type=local"
            )))
        }
        None => {
            return Err(BuildError::invalid(format!("cache option {value:?} needs type=local")))
        }
    }
    let dir = dir
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| BuildError::invalid(format!("cache option {value:?} needs {key}=DIR")))?;
    if !dir.is_absolute() {
        return Err(BuildError::invalid(format!(
            "cache directory {} must be an absolute path (the daemon reads and writes it)",
            dir.display()
        )));
    }
    Ok(CacheLocation::Local(dir))
}

fn io_err<'a>(what: &'a str, path: &'a Path) -> impl Fn(io::Error) -> BuildError + 'a {
    move |e| BuildError::invalid(format!("cannot {what} {}: {e}", path.display()))
}

/// Write the entries `keys`, their layers and the cache mounts `mounts`
/// (name → directory) to `dir`.
pub fn export(
    worker: &dyn Worker,
    index: &Index,
    keys: &[Key],
    mounts: &[(String, PathBuf)],
    dir: &Path,
) -> Result<(), BuildError> {
    let index_dir = dir.join("index");
    let blobs_dir = dir.join("blobs").join("sha256");
    let mounts_dir = dir.join("mounts");
    for d in [&index_dir, &blobs_dir, &mounts_dir] {
        fs::create_dir_all(d).map_err(io_err("create", d))?;
    }
    fs::write(dir.join(MARKER), b"{\"version\":1}\n").map_err(io_err("write", dir))?;
    for key in keys {
        let Some(bytes) = index.raw(key) else { continue };
        let Some(state) = index.get(key, worker) else { continue };
        for layer in &state.layers {
            let target = blobs_dir.join(layer.digest.hex());
            if target.exists() {
                continue;
            }
            let source = worker.content().path(&layer.digest);
            let tmp = blobs_dir.join(format!(".{}.part", layer.digest.hex()));
            copy_file(&source, &tmp)?;
            fs::rename(&tmp, &target).map_err(io_err("write", &target))?;
        }
        let path = index_dir.join(&key.0);
        fs::write(&path, bytes).map_err(io_err("write", &path))?;
    }
    for (name, source) in mounts {
        let path = mounts_dir.join(format!("{name}.tar"));
        let tmp = mounts_dir.join(format!(".{name}.tar.part"));
        let file = File::create(&tmp).map_err(io_err("write", &tmp))?;
        let mut builder = tar::Builder::new(BufWriter::new(file));
        builder.follow_symlinks(false);
        builder.append_dir_all(".", source).map_err(io_err("archive", source))?;
        builder
            .into_inner()
            .and_then(|w| w.into_inner().map_err(io::IntoInnerError::into_error))
            .map_err(io_err("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("write", &path))?;
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<(), BuildError> {
    fs::copy(from, to).map(|_| ()).map_err(io_err("copy", from))
}

/// Read the cache in `dir` into the local index, store and cache mounts.
/// Cache mounts that exist locally are kept as they are.
pub fn import(
    worker: &dyn Worker,
    index: &Index,
    dir: &Path,
    mounts_root: &Path,
    events: &(dyn Fn(BuildEvent) + Sync),
) -> Result<(), BuildError> {
    if !dir.join(MARKER).is_file() {
        // Docker treats a cache source that does not exist yet as empty.
        events(BuildEvent::Warning(format!(
            "cache source {} holds no Kiln cache; building without it",
            dir.display()
        )));
        return Ok(());
    }
    let blobs_dir = dir.join("blobs").join("sha256");
    if let Ok(entries) = fs::read_dir(&blobs_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(digest) = format!("sha256:{name}").parse::<Digest>() else { continue };
            if worker.content().contains(&digest) {
                continue;
            }
            let path = entry.path();
            let file = File::open(&path).map_err(io_err("read", &path))?;
            let mut ingest = worker.content().writer(Some(&digest), None).map_err(|e| {
                BuildError::internal(format!("cannot import cache blob {digest}: {e}"))
            })?;
            io::copy(&mut BufReader::new(file), &mut ingest).map_err(io_err("read", &path))?;
            ingest.commit().map_err(|e| {
                BuildError::invalid(format!("cache blob {} is damaged: {e}", path.display()))
            })?;
        }
    }
    let index_dir = dir.join("index");
    if let Ok(entries) = fs::read_dir(&index_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            if let Ok(bytes) = fs::read(entry.path()) {
                index.put_raw(&Key(name), &bytes);
            }
        }
    }
    if let Ok(entries) = fs::read_dir(dir.join("mounts")) {
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Some(name) = file_name.strip_suffix(".tar") else { continue };
            if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let target = mounts_root.join(name);
            if target.exists() {
                continue;
            }
            let staging = mounts_root.join(format!(".{name}.importing"));
            let _ = fs::remove_dir_all(&staging);
            fs::create_dir_all(&staging).map_err(io_err("create", &staging))?;
            let path = entry.path();
            let file = File::open(&path).map_err(io_err("read", &path))?;
            let mut archive = tar::Archive::new(BufReader::new(file));
            archive.set_preserve_permissions(true);
            archive.set_preserve_ownerships(true);
            archive.set_unpack_xattrs(false);
            archive.unpack(&staging).map_err(io_err("unpack", &path))?;
            fs::rename(&staging, &target).map_err(io_err("create", &target))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_like_docker_options() {
        assert_eq!(
            parse_location("type=local,dest=/tmp/c", "dest").expect("dest"),
            CacheLocation::Local("/tmp/c".into())
        );
        assert_eq!(
            parse_location("type=local,src=/tmp/c,mode=max", "src").expect("src"),
            CacheLocation::Local("/tmp/c".into())
        );
        assert_eq!(
            parse_location("myimage:1", "src").expect("image"),
            CacheLocation::Image("myimage:1".into())
        );
        assert!(parse_location("type=registry,ref=x", "dest").is_err());
        assert!(parse_location("type=local", "dest").is_err());
        assert!(parse_location("type=local,dest=relative", "dest").is_err());
    }
}
