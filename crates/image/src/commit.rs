//! `docker commit`: a container's writable layer, put on top of its image's
//! layers, becomes a new image.
//!
//! The overlay upper directory is written as a layer tar the OCI way (a
//! deleted `name` is an empty file `.wh.name`, an opaque directory holds
//! `.wh..wh..opq`), entries in byte order of their names, so the same upper
//! directory always gives the same diff id. Mount point stubs the runtime
//! made (an empty /etc/hostname, /proc …) are left out, as Docker's init
//! layer keeps them out of a container's own layer. The config is the
//! container's, with the commit's own config and `--change`s over it by
//! Docker's merge rules, and one more history entry.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use kiln_content::{ContentError, Store};
use kiln_snapshot::{
    chain_ids, is_opaque, is_overlay_whiteout, SnapshotError, Snapshots, OPAQUE_MARKER,
    WHITEOUT_PREFIX,
};
use kiln_types::{Digest, ErrorKind, HasKind, ImageRef};

use crate::change::{apply_change, ChangeError};
use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::descriptor::Descriptor;
use crate::manifest::ImageManifest;
use crate::metadata::{ImageRecord, Metadata as ImageMetadata, MetadataError};
use crate::{media_type, timestamp};

/// The only xattr Docker keeps in layer tars: file capabilities.
const CAPABILITY_XATTR: &str = "security.capability";
/// Overlay xattrs that mean the upper directory is not a plain diff.
const REDIRECT_XATTRS: [&str; 2] = ["trusted.overlay.redirect", "trusted.overlay.metacopy"];

/// How to make the image of a commit, besides its layer.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Tag the new image with this reference.
    pub reference: Option<ImageRef>,
    /// The container's config: its image's defaults with what it was
    /// created with. The new image's config starts from it.
    pub container_config: ContainerConfig,
    /// The commit request's own config (the API body), over the container's.
    pub config: Option<ContainerConfig>,
    /// `--change` instructions, applied to the request's config in order.
    pub changes: Vec<String>,
    /// `--message`: the comment of the new history entry.
    pub comment: Option<String>,
    /// `--author`: the image's and the history entry's author.
    pub author: Option<String>,
    /// The history entry's `created_by` (Docker: the container's command).
    pub created_by: Option<String>,
    /// RFC 3339 creation time; now when `None`.
    pub created: Option<String>,
}

/// A container's writable layer, as the snapshot store keeps it.
#[derive(Debug, Clone, Default)]
pub struct WritableLayer {
    /// The overlay upper directory.
    pub upper: PathBuf,
    /// The image's unpacked layers, top first, to tell a directory the
    /// container changed from one overlay only copied up.
    pub lowers: Vec<PathBuf>,
    /// Absolute paths where the runtime mounts something of its own; an
    /// empty file or directory there is a mount point stub, not a change.
    pub mount_points: Vec<String>,
    /// Entry times later than this (unix seconds) are written as this, so
    /// that a build gives the same bytes at any hour (`SOURCE_DATE_EPOCH`).
    pub clamp_mtime: Option<u64>,
}

/// What can go wrong committing a container.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("cannot read {} in the container's writable layer", .path.display())]
    ReadUpper {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot commit {}: {reason}", .path.display())]
    Unsupported { path: PathBuf, reason: &'static str },
    #[error("cannot add {} to the new layer", .path.display())]
    AddEntry {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot store the new layer")]
    Store {
        #[source]
        source: ContentError,
    },
    #[error("cannot read the manifest of image {id}")]
    BaseManifest {
        id: Digest,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot unpack the new layer {digest}")]
    Unpack {
        digest: Digest,
        #[source]
        source: SnapshotError,
    },
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

impl HasKind for CommitError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Change(e) => e.kind(),
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::ReadUpper { .. } | Self::AddEntry { .. } | Self::BaseManifest { .. } => {
                ErrorKind::Internal
            }
            Self::Store { source } => source.kind(),
            Self::Unpack { source, .. } => source.kind(),
            Self::Metadata(e) => e.kind(),
        }
    }
}

/// Make a new image of `base` (with config `base_config`) and the container
/// layer `layer`, and tag it when asked, in one metadata transaction.
///
/// A bad `--change` fails before anything is written. A layer without
/// changes adds no layer, only a history entry marked empty, as Docker does.
/// The new layer is stored uncompressed (its digest is its diff id) and
/// unpacked once into the snapshots, so the image does not depend on the
/// container afterwards.
pub fn commit_container(
    content: &Store,
    snapshots: &Snapshots,
    metadata: &ImageMetadata,
    base: &ImageRecord,
    base_config: &ImageConfig,
    layer: &WritableLayer,
    options: &CommitOptions,
) -> Result<ImageRecord, CommitError> {
    let mut requested = options.config.clone().unwrap_or_default();
    for change in &options.changes {
        apply_change(&mut requested, change)?;
    }
    let config = merge_config(requested, &options.container_config);

    let manifest_bytes = content
        .read(&base.manifest)
        .map_err(|e| CommitError::BaseManifest { id: base.id.clone(), source: Box::new(e) })?;
    let base_manifest = ImageManifest::from_json(&manifest_bytes)
        .map_err(|e| CommitError::BaseManifest { id: base.id.clone(), source: Box::new(e) })?;
    let mut descriptors: Vec<Descriptor> = base_manifest
        .layers
        .iter()
        .map(|d| Descriptor::new(oci_media_type(&d.media_type), d.digest.clone(), d.size))
        .collect();

    let entries = layer.entries()?;
    let mut record = ImageRecord {
        id: base.id.clone(),
        manifest: base.manifest.clone(),
        config: base.config.clone(),
        layers: base.layers.clone(),
        diff_ids: base.diff_ids.clone(),
        chain_ids: base.chain_ids.clone(),
        size: base.size,
        created: None,
    };
    let empty_layer = entries.is_empty();
    if !empty_layer {
        let (digest, size) = store_layer(content, layer, &entries)?;
        record.diff_ids.push(digest.clone());
        record.chain_ids = chain_ids(&record.diff_ids);
        if let Some(chain) = record.chain_ids.last() {
            unpack_once(content, snapshots, chain, &digest)?;
        }
        descriptors.push(Descriptor::new(media_type::OCI_LAYER, digest.clone(), size));
        record.layers.push(digest);
        record.size += size;
    }

    let created = options.created.clone().unwrap_or_else(timestamp::now_rfc3339);
    let mut history = base_config.history.clone();
    history.push(History {
        created: Some(created.clone()),
        created_by: options.created_by.clone(),
        author: options.author.clone(),
        comment: options.comment.clone(),
        empty_layer,
    });
    let image_config = ImageConfig {
        created: Some(created.clone()),
        author: options.author.clone(),
        architecture: base_config.architecture.clone(),
        os: base_config.os.clone(),
        os_version: base_config.os_version.clone(),
        variant: base_config.variant.clone(),
        config: Some(config),
        rootfs: RootFs { kind: "layers".to_owned(), diff_ids: record.diff_ids.clone() },
        history,
    };
    let config_json = image_config.to_json();
    let config_digest = put(content, &config_json)?;
    let manifest = ImageManifest::oci(
        Descriptor::new(media_type::OCI_CONFIG, config_digest.clone(), config_json.len() as u64),
        descriptors,
    );
    record.manifest = put(content, &manifest.to_json())?;
    record.id = config_digest.clone();
    record.config = config_digest;
    record.created = Some(created);

    let references: Vec<ImageRef> = options.reference.iter().cloned().collect();
    metadata.put_image(&record, &references)?;
    tracing::info!(image = %record.id, base = %base.id, empty_layer, "container committed");
    Ok(record)
}

/// Store the changes of `layer` as an uncompressed layer blob (its digest
/// is its diff id) and unpack it as the snapshot on top of
/// `parent_diff_ids`; `None` when the layer holds no change. The builder's
/// way to turn a step's upper directory into a layer.
pub fn store_changes(
    content: &Store,
    snapshots: &Snapshots,
    layer: &WritableLayer,
    parent_diff_ids: &[Digest],
) -> Result<Option<(Digest, u64)>, CommitError> {
    let entries = layer.entries()?;
    if entries.is_empty() {
        return Ok(None);
    }
    let (digest, size) = store_layer(content, layer, &entries)?;
    let mut diff_ids = parent_diff_ids.to_vec();
    diff_ids.push(digest.clone());
    if let Some(chain) = chain_ids(&diff_ids).last() {
        unpack_once(content, snapshots, chain, &digest)?;
    }
    Ok(Some((digest, size)))
}

/// Docker's layer media types as their OCI twins, for an OCI manifest.
fn oci_media_type(media_type: &str) -> &str {
    match media_type {
        media_type::DOCKER_LAYER => media_type::OCI_LAYER,
        media_type::DOCKER_LAYER_GZIP => media_type::OCI_LAYER_GZIP,
        other => other,
    }
}

fn put(content: &Store, bytes: &[u8]) -> Result<Digest, CommitError> {
    content.put(bytes).map_err(|source| CommitError::Store { source })
}

/// Write the layer tar of `entries` into the content store; its digest
/// (also its diff id: it is not compressed) and size.
fn store_layer(
    content: &Store,
    layer: &WritableLayer,
    entries: &[LayerEntry],
) -> Result<(Digest, u64), CommitError> {
    let ingest = content.writer(None, None).map_err(|source| CommitError::Store { source })?;
    let mut out = BufWriter::new(ingest);
    write_layer(&layer.upper, entries, layer.clamp_mtime, &mut out)?;
    let ingest = out
        .into_inner()
        .map_err(|e| CommitError::AddEntry { path: layer.upper.clone(), source: e.into_error() })?;
    let size = ingest.written();
    let digest = ingest.commit().map_err(|source| CommitError::Store { source })?;
    Ok((digest, size))
}

/// Unpack the stored layer as snapshot `chain`, unless another commit of
/// the same changes got there first.
fn unpack_once(
    content: &Store,
    snapshots: &Snapshots,
    chain: &Digest,
    digest: &Digest,
) -> Result<(), CommitError> {
    if snapshots.has_layer(chain) {
        return Ok(());
    }
    let blob = content.open_blob(digest).map_err(|source| CommitError::Store { source })?;
    match snapshots.unpack(chain, blob) {
        Ok(_) | Err(SnapshotError::Exists { .. }) => Ok(()),
        Err(source) => Err(CommitError::Unpack { digest: digest.clone(), source }),
    }
}

/// Docker's merge of a commit's (or create's) config over a base: what the
/// request leaves unset comes from the base; environment, labels, ports
/// and volumes add up, the request winning per key.
pub fn merge_config(mut request: ContainerConfig, base: &ContainerConfig) -> ContainerConfig {
    let unset = |value: &Option<String>| value.as_deref().is_none_or(str::is_empty);
    if unset(&request.user) {
        request.user = base.user.clone();
    }
    for (port, value) in &base.exposed_ports {
        request.exposed_ports.entry(port.clone()).or_insert(*value);
    }
    // docker-compat: the request's variables first, then the base's whose
    // names the request does not set.
    let key = |kv: &str| kv.split_once('=').map_or(kv, |(k, _)| k).to_owned();
    let requested: Vec<String> = request.env.iter().map(|kv| key(kv)).collect();
    for kv in &base.env {
        if !requested.contains(&key(kv)) {
            request.env.push(kv.clone());
        }
    }
    for (name, value) in &base.labels {
        request.labels.entry(name.clone()).or_insert_with(|| value.clone());
    }
    if request.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if request.cmd.as_ref().is_none_or(Vec::is_empty) {
            request.cmd = base.cmd.clone();
            if request.args_escaped.is_none() {
                request.args_escaped = base.args_escaped;
            }
        }
        if request.entrypoint.is_none() {
            request.entrypoint = base.entrypoint.clone();
        }
    }
    match (&mut request.healthcheck, &base.healthcheck) {
        (None, Some(theirs)) => request.healthcheck = Some(theirs.clone()),
        (Some(ours), Some(theirs)) => {
            if ours.test.is_empty() {
                ours.test = theirs.test.clone();
            }
            ours.interval = ours.interval.or(theirs.interval);
            ours.timeout = ours.timeout.or(theirs.timeout);
            ours.start_period = ours.start_period.or(theirs.start_period);
            ours.start_interval = ours.start_interval.or(theirs.start_interval);
            ours.retries = ours.retries.or(theirs.retries);
        }
        _ => {}
    }
    if unset(&request.working_dir) {
        request.working_dir = base.working_dir.clone();
    }
    for (path, value) in &base.volumes {
        request.volumes.entry(path.clone()).or_insert(*value);
    }
    if unset(&request.stop_signal) {
        request.stop_signal = base.stop_signal.clone();
    }
    if request.shell.is_empty() {
        request.shell = base.shell.clone();
    }
    request
}

/// One entry of the layer tar, in order.
#[derive(Debug)]
enum LayerEntry {
    /// A file, directory, link or device of the upper directory as it is.
    Plain { rel: PathBuf, meta: Metadata },
    /// `dir/.wh.name` for the overlay whiteout `dir/name`.
    Whiteout { rel: PathBuf, meta: Metadata },
    /// `dir/.wh..wh..opq` for the opaque directory `dir` (its metadata).
    Opaque { dir: PathBuf, meta: Metadata },
}

/// What a directory of the upper held, for its parent's decision.
#[derive(Debug, Default, Clone, Copy)]
struct Subtree {
    /// Something in it goes into the layer.
    kept: bool,
    /// It held mount point stubs, left out.
    stubs: bool,
}

impl WritableLayer {
    /// The entries of the layer tar, parents before children and siblings
    /// in byte order of their names.
    fn entries(&self) -> Result<Vec<LayerEntry>, CommitError> {
        let mut out = Vec::new();
        self.walk(Path::new(""), &mut out)?;
        Ok(out)
    }

    fn walk(&self, rel: &Path, out: &mut Vec<LayerEntry>) -> Result<Subtree, CommitError> {
        let dir = self.upper.join(rel);
        let read_err = |path: &Path| {
            let path = path.to_owned();
            move |source| CommitError::ReadUpper { path, source }
        };
        let mut names: Vec<OsString> = fs::read_dir(&dir)
            .map_err(read_err(&dir))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(read_err(&dir))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut subtree = Subtree::default();
        for name in names {
            let rel = rel.join(&name);
            let path = self.upper.join(&rel);
            let meta = fs::symlink_metadata(&path).map_err(read_err(&path))?;
            if is_overlay_whiteout(&meta) {
                let mut wh_name = OsString::from(WHITEOUT_PREFIX);
                wh_name.push(&name);
                out.push(LayerEntry::Whiteout { rel: rel.with_file_name(wh_name), meta });
                subtree.kept = true;
                continue;
            }
            if meta.file_type().is_socket() {
                // Sockets do not travel in layers.
                continue;
            }
            if self.is_stub(&rel, &path, &meta) {
                subtree.stubs = true;
                continue;
            }
            if !meta.is_dir() {
                out.push(LayerEntry::Plain { rel, meta });
                subtree.kept = true;
                continue;
            }
            for attr in REDIRECT_XATTRS {
                if matches!(xattr::get(&path, attr), Ok(Some(_))) {
                    return Err(CommitError::Unsupported {
                        path: Path::new("/").join(&rel),
                        reason: "overlay redirected or metadata-only copy-up (redirect_dir, metacopy) is not supported",
                    });
                }
            }
            let at = out.len();
            let opaque = is_opaque(&path);
            out.push(LayerEntry::Plain { rel: rel.clone(), meta: meta.clone() });
            if opaque {
                out.push(LayerEntry::Opaque { dir: rel.clone(), meta: meta.clone() });
            }
            let inner = self.walk(&rel, out)?;
            // A directory that only holds stubs, and that the container did
            // not change itself, was made or copied up for the stubs alone.
            if inner.stubs && !inner.kept && !opaque && self.matches_lower(&rel, &meta) {
                out.truncate(at);
                subtree.stubs = true;
            } else {
                subtree.kept = true;
            }
        }
        Ok(subtree)
    }

    /// Whether `rel` is an empty file or directory at a runtime mount point.
    fn is_stub(&self, rel: &Path, path: &Path, meta: &Metadata) -> bool {
        let absolute = Path::new("/").join(rel);
        let at_mount_point = self.mount_points.iter().any(|m| Path::new(m) == absolute);
        at_mount_point
            && ((meta.is_file() && meta.len() == 0)
                || (meta.is_dir() && fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())))
    }

    /// Whether the directory `rel` is as the image has it (owner and mode),
    /// or the image does not have it at all.
    fn matches_lower(&self, rel: &Path, meta: &Metadata) -> bool {
        let lower = self.lowers.iter().find_map(|l| fs::symlink_metadata(l.join(rel)).ok());
        lower.is_none_or(|l| {
            l.is_dir() && l.mode() == meta.mode() && l.uid() == meta.uid() && l.gid() == meta.gid()
        })
    }
}

/// Write `entries` of the upper directory `upper` as a tar to `out`.
fn write_layer(
    upper: &Path,
    entries: &[LayerEntry],
    clamp: Option<u64>,
    out: &mut impl Write,
) -> Result<(), CommitError> {
    let mut builder = tar::Builder::new(out);
    // Hard links inside the layer: the first path of each inode.
    let mut first_paths: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for entry in entries {
        let (rel, result) = match entry {
            LayerEntry::Plain { rel, meta } => {
                (rel, append_plain(&mut builder, upper, rel, meta, clamp, &mut first_paths))
            }
            LayerEntry::Whiteout { rel, meta } => {
                let mut header = header_for(meta, tar::EntryType::Regular, clamp);
                header.set_mode(0o600);
                (rel, builder.append_data(&mut header, rel, io::empty()))
            }
            LayerEntry::Opaque { dir, meta } => {
                let mut header = header_for(meta, tar::EntryType::Regular, clamp);
                header.set_mode(meta.mode() & 0o777);
                (dir, builder.append_data(&mut header, dir.join(OPAQUE_MARKER), io::empty()))
            }
        };
        result
            .map_err(|source| CommitError::AddEntry { path: Path::new("/").join(rel), source })?;
    }
    builder
        .into_inner()
        .map(|_| ())
        .map_err(|source| CommitError::AddEntry { path: upper.to_owned(), source })
}

fn append_plain<W: Write>(
    builder: &mut tar::Builder<W>,
    upper: &Path,
    rel: &Path,
    meta: &Metadata,
    clamp: Option<u64>,
    first_paths: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let path = upper.join(rel);
    let kind = meta.file_type();
    if meta.is_file() && meta.nlink() > 1 {
        if let Some(target) = first_paths.get(&(meta.dev(), meta.ino())) {
            let mut header = header_for(meta, tar::EntryType::Link, clamp);
            return builder.append_link(&mut header, rel, target);
        }
        first_paths.insert((meta.dev(), meta.ino()), rel.to_owned());
    }
    if !kind.is_symlink() {
        if let Ok(Some(caps)) = xattr::get(&path, CAPABILITY_XATTR) {
            let key = format!("SCHILY.xattr.{CAPABILITY_XATTR}");
            builder.append_pax_extensions([(key.as_str(), caps.as_slice())])?;
        }
    }
    if kind.is_dir() {
        let mut header = header_for(meta, tar::EntryType::Directory, clamp);
        builder.append_data(&mut header, rel, io::empty())
    } else if kind.is_file() {
        let mut header = header_for(meta, tar::EntryType::Regular, clamp);
        header.set_size(meta.len());
        let file = File::open(&path)?;
        builder.append_data(&mut header, rel, Exact::new(file, meta.len()))
    } else if kind.is_symlink() {
        let target = fs::read_link(&path)?;
        let mut header = header_for(meta, tar::EntryType::Symlink, clamp);
        builder.append_link(&mut header, rel, target)
    } else {
        let entry_type = if kind.is_char_device() {
            tar::EntryType::Char
        } else if kind.is_block_device() {
            tar::EntryType::Block
        } else {
            tar::EntryType::Fifo
        };
        let mut header = header_for(meta, entry_type, clamp);
        if entry_type != tar::EntryType::Fifo {
            let (major, minor) = device_numbers(meta.rdev());
            header.set_device_major(major)?;
            header.set_device_minor(minor)?;
        }
        builder.append_data(&mut header, rel, io::empty())
    }
}

/// A header with the owner, permission bits and mtime of `meta`, the
/// mtime no later than `clamp`.
fn header_for(meta: &Metadata, kind: tar::EntryType, clamp: Option<u64>) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(u64::from(meta.uid()));
    header.set_gid(u64::from(meta.gid()));
    let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
    header.set_mtime(clamp.map_or(mtime, |limit| mtime.min(limit)));
    header.set_size(0);
    header
}

/// Linux's `major()` and `minor()` of a device number.
fn device_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0fff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x00ff);
    (major as u32, minor as u32)
}

/// Exactly `len` bytes of a file whose size was read before: cut when it
/// grew since, padded with zeros when it shrank, so the tar stays whole
/// when a running container writes during an unpaused commit.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, len: u64) -> Exact<R> {
        Exact { inner, left: len }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let mut n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            buf[..want].fill(0);
            n = want;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{EmptyObject, Healthcheck};

    fn layer(upper: &Path, lowers: &[&Path], mount_points: &[&str]) -> WritableLayer {
        WritableLayer {
            upper: upper.to_owned(),
            lowers: lowers.iter().map(|p| p.to_path_buf()).collect(),
            mount_points: mount_points.iter().map(|m| (*m).to_owned()).collect(),
            clamp_mtime: None,
        }
    }

    /// The names and types of the entries of a tar.
    fn listing(tar_bytes: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let kind = match e.header().entry_type() {
                    tar::EntryType::Directory => "dir",
                    tar::EntryType::Regular => "file",
                    tar::EntryType::Symlink => "symlink",
                    tar::EntryType::Link => "link",
                    _ => "other",
                };
                format!("{kind} {}", e.path().expect("path").display())
            })
            .collect()
    }

    fn tar_of(layer: &WritableLayer) -> Vec<u8> {
        let entries = layer.entries().expect("entries");
        let mut out = Vec::new();
        write_layer(&layer.upper, &entries, layer.clamp_mtime, &mut out).expect("write");
        out
    }

    #[test]
    fn entry_times_are_clamped_to_the_build_epoch_and_older_ones_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let upper = tmp.path().join("upper");
        fs::create_dir_all(upper.join("dir")).expect("mkdir");
        fs::write(upper.join("dir/new"), b"new").expect("write");
        fs::write(upper.join("old"), b"old").expect("write");
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(50);
        File::options()
            .write(true)
            .open(upper.join("old"))
            .and_then(|f| f.set_modified(old))
            .expect("set mtime");
        let mut l = layer(&upper, &[], &[]);
        l.clamp_mtime = Some(100);
        let bytes = tar_of(&l);
        let mut archive = tar::Archive::new(bytes.as_slice());
        let times: BTreeMap<String, u64> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let path = e.path().expect("path").display().to_string();
                (path, e.header().mtime().expect("mtime"))
            })
            .collect();
        assert_eq!(times["dir"], 100);
        assert_eq!(times["dir/new"], 100);
        assert_eq!(times["old"], 50);
        // The same upper directory, written again later, gives the same bytes.
        assert_eq!(tar_of(&l), bytes);
    }

    #[test]
    fn the_layer_lists_parents_first_in_name_order_and_keeps_hard_links() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let upper = tmp.path().join("upper");
        fs::create_dir_all(upper.join("b/sub")).expect("mkdir");
        fs::write(upper.join("b/sub/z"), "z").expect("write");
        fs::write(upper.join("b/a"), "a").expect("write");
        fs::write(upper.join("a"), "top").expect("write");
        fs::hard_link(upper.join("a"), upper.join("c")).expect("link");
        std::os::unix::fs::symlink("a", upper.join("d")).expect("symlink");
        let tar_bytes = tar_of(&layer(&upper, &[], &[]));
        assert_eq!(
            listing(&tar_bytes),
            ["file a", "dir b", "file b/a", "dir b/sub", "file b/sub/z", "link c", "symlink d"]
        );
        // The same directory always gives the same bytes: a stable diff id.
        assert_eq!(tar_of(&layer(&upper, &[], &[])), tar_bytes);
    }

    #[test]
    fn runtime_mount_point_stubs_and_the_directories_made_for_them_are_left_out() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (upper, lower) = (tmp.path().join("upper"), tmp.path().join("lower"));
        fs::create_dir_all(lower.join("etc")).expect("mkdir");
        fs::create_dir_all(upper.join("etc")).expect("mkdir");
        fs::set_permissions(
            upper.join("etc"),
            fs::metadata(lower.join("etc")).expect("stat").permissions(),
        )
        .expect("chmod");
        fs::write(upper.join("etc/hostname"), "").expect("stub");
        fs::write(upper.join("etc/resolv.conf"), "").expect("stub");
        fs::create_dir_all(upper.join("proc")).expect("stub dir");
        fs::create_dir_all(upper.join("new/dir")).expect("mkdir");
        fs::write(upper.join("new/dir/hosts"), "").expect("stub in a new dir");
        // A mount point the user wrote into while stopped is a change.
        fs::create_dir_all(upper.join("sys")).expect("mkdir");
        fs::write(upper.join("sys/kept"), "x").expect("write");
        let points = ["/etc/hostname", "/etc/resolv.conf", "/proc", "/new/dir/hosts", "/sys"];
        assert_eq!(
            listing(&tar_of(&layer(&upper, &[&lower], &points))),
            ["dir sys", "file sys/kept"]
        );
        // The same directory with a real change in it stays, stubs still out.
        fs::write(upper.join("etc/motd"), "hi").expect("write");
        assert_eq!(
            listing(&tar_of(&layer(&upper, &[&lower], &points))),
            ["dir etc", "file etc/motd", "dir sys", "file sys/kept"]
        );
    }

    #[test]
    fn overlay_whiteouts_and_opaque_directories_become_oci_markers() {
        kiln_testing::require_privileged!();
        let tmp = tempfile::tempdir().expect("tempdir");
        let upper = tmp.path().join("upper");
        fs::create_dir_all(upper.join("etc")).expect("mkdir");
        fs::create_dir_all(upper.join("opaque")).expect("mkdir");
        fs::write(upper.join("opaque/new"), "n").expect("write");
        xattr::set(upper.join("opaque"), "trusted.overlay.opaque", b"y").expect("xattr");
        let status = std::process::Command::new("mknod")
            .arg(upper.join("etc/gone"))
            .args(["c", "0", "0"])
            .status()
            .expect("mknod");
        assert!(status.success());
        assert_eq!(
            listing(&tar_of(&layer(&upper, &[], &[]))),
            [
                "dir etc",
                "file etc/.wh.gone",
                "dir opaque",
                "file opaque/.wh..wh..opq",
                "file opaque/new"
            ]
        );
    }

    #[test]
    fn the_request_wins_and_the_container_fills_in() {
        let base = ContainerConfig {
            user: Some("app".into()),
            env: vec!["PATH=/bin".into(), "A=1".into()],
            cmd: Some(vec!["sh".into()]),
            entrypoint: Some(vec!["/init".into()]),
            working_dir: Some("/srv".into()),
            labels: BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]),
            exposed_ports: BTreeMap::from([("80/tcp".into(), EmptyObject {})]),
            healthcheck: Some(Healthcheck {
                test: vec!["CMD".into(), "true".into()],
                retries: Some(3),
                ..Healthcheck::default()
            }),
            ..ContainerConfig::default()
        };
        let request = ContainerConfig {
            env: vec!["A=2".into(), "B=3".into()],
            labels: BTreeMap::from([("b".into(), "x".into())]),
            exposed_ports: BTreeMap::from([("53/udp".into(), EmptyObject {})]),
            healthcheck: Some(Healthcheck { interval: Some(5), ..Healthcheck::default() }),
            ..ContainerConfig::default()
        };
        let merged = merge_config(request, &base);
        assert_eq!(merged.env, ["A=2", "B=3", "PATH=/bin"]);
        assert_eq!(merged.user.as_deref(), Some("app"));
        assert_eq!(merged.cmd, base.cmd);
        assert_eq!(merged.entrypoint, base.entrypoint);
        assert_eq!(merged.working_dir.as_deref(), Some("/srv"));
        assert_eq!(merged.labels.get("b").map(String::as_str), Some("x"));
        assert_eq!(merged.labels.get("a").map(String::as_str), Some("1"));
        assert_eq!(merged.exposed_ports.len(), 2);
        let check = merged.healthcheck.expect("healthcheck");
        assert_eq!((check.test.len(), check.interval, check.retries), (2, Some(5), Some(3)));
        // A new entrypoint drops the container's command, as in Docker.
        let request = ContainerConfig {
            entrypoint: Some(vec!["/other".into()]),
            ..ContainerConfig::default()
        };
        let merged = merge_config(request, &base);
        assert_eq!(merged.entrypoint.as_deref(), Some(&["/other".to_owned()][..]));
        assert_eq!(merged.cmd, None);
    }

    #[test]
    fn device_numbers_split_like_the_kernel() {
        // makedev(8, 1) and makedev(259, 65536).
        assert_eq!(device_numbers(0x801), (8, 1));
        assert_eq!(device_numbers(0x1001_0300), (259, 65536));
    }

    #[test]
    fn a_file_that_shrank_is_padded_and_one_that_grew_is_cut() {
        let mut out = Vec::new();
        Exact::new(&b"abc"[..], 5).read_to_end(&mut out).expect("read");
        assert_eq!(out, b"abc\0\0");
        out.clear();
        Exact::new(&b"abcdef"[..], 2).read_to_end(&mut out).expect("read");
        assert_eq!(out, b"ab");
    }
}
