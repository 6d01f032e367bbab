//! Image metadata in `<root>/kiln.db`: images by id, tags and digest references.
//!
//! Three redb tables, every change one write transaction:
//!
//! ```text
//! images         "sha256:<config hex>"                    → ImageRecord (JSON)
//! image_tags     "docker.io/library/python:3.10"          → "sha256:<id hex>"
//! image_digests  "docker.io/library/python@sha256:<hex>"  → "sha256:<id hex>"
//! ```
//!
//! A reference is written in the same transaction that checks (or writes)
//! its image, so no reference ever names a missing image.

use std::path::Path;
use std::sync::Arc;

use kiln_types::{Digest, ErrorKind, HasKind, ImageRef};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("image_tags");
const DIGESTS: TableDefinition<&str, &str> = TableDefinition::new("image_digests");

/// An image as the store knows it; its id is its config's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    /// The manifest blob in the content store.
    pub manifest: Digest,
    /// The config blob (the same digest as `id`).
    pub config: Digest,
    /// The layer blobs, bottom first, as stored (compressed or not).
    pub layers: Vec<Digest>,
    /// sha256 of each layer's uncompressed tar, from the config.
    pub diff_ids: Vec<Digest>,
    /// The snapshot key of each layer with everything below it.
    pub chain_ids: Vec<Digest>,
    /// Bytes of the layer blobs as stored.
    pub size: u64,
    /// RFC 3339 creation time from the config, if it has one.
    pub created: Option<String>,
}

/// What can go wrong reading or changing image metadata.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("no such image: {reference}")]
    NotFound { reference: String },
    #[error("image {id} does not exist")]
    ImageNotFound { id: Digest },
    #[error("short id {prefix} matches more than one image")]
    Ambiguous { prefix: String },
    #[error("image {id} is referenced by {} and must be forced to be deleted", .references.join(", "))]
    Referenced { id: Digest, references: Vec<String> },
    #[error("cannot {action} the image metadata database")]
    Database {
        action: &'static str,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("image record {key} in the metadata database is damaged")]
    Corrupt {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl HasKind for MetadataError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } | Self::ImageNotFound { .. } => ErrorKind::NotFound,
            Self::Ambiguous { .. } => ErrorKind::InvalidArgument,
            Self::Referenced { .. } => ErrorKind::Conflict,
            Self::Database { .. } | Self::Corrupt { .. } => ErrorKind::Internal,
        }
    }
}

fn db(action: &'static str) -> impl FnOnce(redb::Error) -> MetadataError {
    move |source| MetadataError::Database { action, source: Box::new(source) }
}

/// Shorthand for `map_err` from any redb error.
trait DbResult<T> {
    fn or_db(self, action: &'static str) -> Result<T, MetadataError>;
}

impl<T, E: Into<redb::Error>> DbResult<T> for Result<T, E> {
    fn or_db(self, action: &'static str) -> Result<T, MetadataError> {
        self.map_err(|e| db(action)(e.into()))
    }
}

/// The image metadata store. Cheap to clone; share it between threads.
#[derive(Debug, Clone)]
pub struct Metadata {
    db: Arc<Database>,
}

impl Metadata {
    /// Open (creating if needed) the database file at `path`, usually
    /// `<root>/kiln.db`. redb locks the file: one opener per process.
    pub fn open(path: &Path) -> Result<Metadata, MetadataError> {
        let db = Database::create(path).or_db("open")?;
        Metadata::with_database(Arc::new(db))
    }

    /// Use a database the caller also keeps other tables in (the engine's
    /// containers, volumes, networks live in the same `kiln.db`).
    pub fn with_database(db: Arc<Database>) -> Result<Metadata, MetadataError> {
        let txn = db.begin_write().or_db("write")?;
        {
            txn.open_table(IMAGES).or_db("create tables in")?;
            txn.open_table(TAGS).or_db("create tables in")?;
            txn.open_table(DIGESTS).or_db("create tables in")?;
        }
        txn.commit().or_db("commit to")?;
        Ok(Metadata { db })
    }

    /// The underlying database.
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    /// Save an image and point `references` at it, in one transaction.
    /// Returns, for each reference that moved, the image it named before.
    pub fn put_image(
        &self,
        record: &ImageRecord,
        references: &[ImageRef],
    ) -> Result<Vec<(ImageRef, Digest)>, MetadataError> {
        self.put_images(&[(record.clone(), references.to_vec())])
    }

    /// Save several images and their references in one transaction: all or none.
    /// Returns, for each reference that moved, the image it named before.
    pub fn put_images(
        &self,
        images: &[(ImageRecord, Vec<ImageRef>)],
    ) -> Result<Vec<(ImageRef, Digest)>, MetadataError> {
        let txn = self.db.begin_write().or_db("write")?;
        let mut moved = Vec::new();
        {
            let mut table = txn.open_table(IMAGES).or_db("write")?;
            for (record, _) in images {
                let json = serde_json::to_vec(record).expect("an image record always serialises");
                table.insert(record.id.to_string().as_str(), json.as_slice()).or_db("write")?;
            }
            let mut tags = txn.open_table(TAGS).or_db("write")?;
            let mut digests = txn.open_table(DIGESTS).or_db("write")?;
            for (record, references) in images {
                let id = record.id.to_string();
                for reference in references {
                    let (key, by_digest) = reference_key(reference);
                    let table = if by_digest { &mut digests } else { &mut tags };
                    let old = table.insert(key.as_str(), id.as_str()).or_db("write")?;
                    if let Some(old) = old.map(|v| v.value().to_owned()) {
                        if old != id {
                            moved.push((reference.clone(), parse_id(&key, &old)?));
                        }
                    }
                }
            }
        }
        txn.commit().or_db("commit to")?;
        Ok(moved)
    }

    /// The image with this id, if stored.
    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>, MetadataError> {
        let txn = self.db.begin_read().or_db("read")?;
        let table = txn.open_table(IMAGES).or_db("read")?;
        let key = id.to_string();
        let value = table.get(key.as_str()).or_db("read")?;
        value.map(|v| parse_record(&key, v.value())).transpose()
    }

    /// Every stored image, by id.
    pub fn images(&self) -> Result<Vec<ImageRecord>, MetadataError> {
        let txn = self.db.begin_read().or_db("read")?;
        let table = txn.open_table(IMAGES).or_db("read")?;
        let mut out = Vec::new();
        for row in table.iter().or_db("read")? {
            let (key, value) = row.or_db("read")?;
            out.push(parse_record(key.value(), value.value())?);
        }
        Ok(out)
    }

    /// Point `reference` at image `id` (`docker tag`). A reference with a
    /// digest is kept as a digest reference. Returns the image it named before.
    pub fn tag(&self, reference: &ImageRef, id: &Digest) -> Result<Option<Digest>, MetadataError> {
        let txn = self.db.begin_write().or_db("write")?;
        let old;
        {
            let images = txn.open_table(IMAGES).or_db("write")?;
            if images.get(id.to_string().as_str()).or_db("read")?.is_none() {
                return Err(MetadataError::ImageNotFound { id: id.clone() });
            }
            let (key, by_digest) = reference_key(reference);
            let mut table =
                txn.open_table(if by_digest { DIGESTS } else { TAGS }).or_db("write")?;
            let previous = table.insert(key.as_str(), id.to_string().as_str()).or_db("write")?;
            old = previous.map(|v| parse_id(&key, v.value())).transpose()?;
        }
        txn.commit().or_db("commit to")?;
        Ok(old)
    }

    /// Remove `reference` (`docker rmi name` before deleting). Returns the
    /// image it named, or `None` if it named none.
    pub fn untag(&self, reference: &ImageRef) -> Result<Option<Digest>, MetadataError> {
        let txn = self.db.begin_write().or_db("write")?;
        let old;
        {
            let (key, by_digest) = reference_key(reference);
            let mut table =
                txn.open_table(if by_digest { DIGESTS } else { TAGS }).or_db("write")?;
            let removed = table.remove(key.as_str()).or_db("write")?;
            old = removed.map(|v| parse_id(&key, v.value())).transpose()?;
        }
        txn.commit().or_db("commit to")?;
        Ok(old)
    }

    /// Every reference (tags, then digest references) with its image id.
    pub fn references(&self) -> Result<Vec<(ImageRef, Digest)>, MetadataError> {
        let txn = self.db.begin_read().or_db("read")?;
        let mut out = Vec::new();
        for def in [TAGS, DIGESTS] {
            let table = txn.open_table(def).or_db("read")?;
            for row in table.iter().or_db("read")? {
                let (key, value) = row.or_db("read")?;
                let reference = parse_reference(key.value())?;
                out.push((reference, parse_id(key.value(), value.value())?));
            }
        }
        Ok(out)
    }

    /// The tags (`name:tag`) naming image `id`, sorted.
    pub fn tags_of(&self, id: &Digest) -> Result<Vec<ImageRef>, MetadataError> {
        Ok(self.references_of(id)?.into_iter().filter(|r| r.digest().is_none()).collect())
    }

    /// The digest references (`name@sha256:…`) naming image `id`, sorted.
    pub fn digests_of(&self, id: &Digest) -> Result<Vec<ImageRef>, MetadataError> {
        Ok(self.references_of(id)?.into_iter().filter(|r| r.digest().is_some()).collect())
    }

    fn references_of(&self, id: &Digest) -> Result<Vec<ImageRef>, MetadataError> {
        Ok(self.references()?.into_iter().filter(|(_, i)| i == id).map(|(r, _)| r).collect())
    }

    /// Find an image as `docker` does: a full id (`sha256:…` or 64 hex
    /// digits), a reference (`python:3.10`, `x@sha256:…`), or a unique id
    /// prefix of at least one hex digit (`4a3f`, `sha256:4a3f`).
    pub fn resolve(&self, name: &str) -> Result<ImageRecord, MetadataError> {
        let not_found = || MetadataError::NotFound { reference: name.to_owned() };
        let txn = self.db.begin_read().or_db("read")?;
        let images = txn.open_table(IMAGES).or_db("read")?;
        let by_id = |id: &str| -> Result<Option<ImageRecord>, MetadataError> {
            let value = images.get(id).or_db("read")?;
            value.map(|v| parse_record(id, v.value())).transpose()
        };

        if let Some(hex) = name.strip_prefix("sha256:") {
            if hex.len() == 64 {
                return by_id(name)?.ok_or_else(not_found);
            }
            if !hex.is_empty() && hex.bytes().all(is_lower_hex) {
                return self.by_prefix(&images, hex)?.ok_or_else(not_found);
            }
            return Err(not_found());
        }
        if name.len() == 64 && name.bytes().all(is_lower_hex) {
            return by_id(&format!("sha256:{name}"))?.ok_or_else(not_found);
        }
        if let Ok(reference) = name.parse::<ImageRef>() {
            let (key, by_digest) = reference_key(&reference);
            let table = txn.open_table(if by_digest { DIGESTS } else { TAGS }).or_db("read")?;
            let id = table.get(key.as_str()).or_db("read")?.map(|v| v.value().to_owned());
            if let Some(id) = id {
                return by_id(&id)?.ok_or_else(not_found);
            }
        }
        if !name.is_empty() && name.bytes().all(is_lower_hex) {
            return self.by_prefix(&images, name)?.ok_or_else(not_found);
        }
        Err(not_found())
    }

    fn by_prefix(
        &self,
        images: &redb::ReadOnlyTable<&str, &[u8]>,
        hex: &str,
    ) -> Result<Option<ImageRecord>, MetadataError> {
        let start = format!("sha256:{hex}");
        let mut found = None;
        for row in images.range(start.as_str()..).or_db("read")? {
            let (key, value) = row.or_db("read")?;
            if !key.value().starts_with(&start) {
                break;
            }
            if found.is_some() {
                return Err(MetadataError::Ambiguous { prefix: hex.to_owned() });
            }
            found = Some(parse_record(key.value(), value.value())?);
        }
        Ok(found)
    }

    /// Delete image `id`'s record. While references name it, refuse unless
    /// `force`, which removes them too (in the same transaction). Returns the
    /// references removed. Blobs and snapshots are left for garbage collection.
    pub fn delete_image(&self, id: &Digest, force: bool) -> Result<Vec<ImageRef>, MetadataError> {
        let id_str = id.to_string();
        let txn = self.db.begin_write().or_db("write")?;
        let mut removed = Vec::new();
        {
            let mut images = txn.open_table(IMAGES).or_db("write")?;
            if images.get(id_str.as_str()).or_db("read")?.is_none() {
                return Err(MetadataError::ImageNotFound { id: id.clone() });
            }
            for def in [TAGS, DIGESTS] {
                let mut table = txn.open_table(def).or_db("write")?;
                let mut keys = Vec::new();
                for row in table.iter().or_db("read")? {
                    let (key, value) = row.or_db("read")?;
                    if value.value() == id_str {
                        keys.push(key.value().to_owned());
                    }
                }
                for key in keys {
                    removed.push(parse_reference(&key)?);
                    if force {
                        table.remove(key.as_str()).or_db("write")?;
                    }
                }
            }
            if !removed.is_empty() && !force {
                let references = removed.iter().map(ImageRef::familiar).collect();
                return Err(MetadataError::Referenced { id: id.clone(), references });
            }
            images.remove(id_str.as_str()).or_db("write")?;
        }
        txn.commit().or_db("commit to")?;
        Ok(removed)
    }
}

/// The table key of a reference, and whether it goes in the digests table.
/// A name-only reference means `:latest`; a tag beside a digest is dropped.
fn reference_key(reference: &ImageRef) -> (String, bool) {
    match reference.digest() {
        Some(digest) => {
            (reference.without_tag_or_digest().with_digest(digest.clone()).to_string(), true)
        }
        None => (reference.normalized().to_string(), false),
    }
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn parse_record(key: &str, bytes: &[u8]) -> Result<ImageRecord, MetadataError> {
    serde_json::from_slice(bytes)
        .map_err(|e| MetadataError::Corrupt { key: key.to_owned(), source: Box::new(e) })
}

fn parse_id(key: &str, value: &str) -> Result<Digest, MetadataError> {
    value.parse().map_err(|e| MetadataError::Corrupt { key: key.to_owned(), source: Box::new(e) })
}

fn parse_reference(key: &str) -> Result<ImageRef, MetadataError> {
    key.parse().map_err(|e| MetadataError::Corrupt { key: key.to_owned(), source: Box::new(e) })
}
