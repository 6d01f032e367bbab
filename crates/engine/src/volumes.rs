//! Named volumes: directories under `<root>/volumes/<name>/_data` that
//! outlive containers, with their metadata in `kiln.db`:
//!
//! ```text
//! volumes   "<name>"   → VolumeRecord (JSON)
//! ```
//!
//! A volume of the `local` driver with a `type` option (`--opt type=tmpfs
//! --opt o=size=64m`) is that filesystem, mounted on `_data` when a
//! container first needs it and unmounted when the volume is removed.
//! Anonymous volumes (an image's `VOLUME`, `-v /path`) are named volumes
//! with a random name and the `com.docker.volume.anonymous` label.
//!
//! Docker's volume events go out from here: `create` (only for a volume
//! that is new), `destroy`, `prune`, and `mount`/`unmount`, which the
//! container service reports through [`Volumes::mounted`] and
//! [`Volumes::unmounted`] when a container starts and stops.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kiln_types::{ErrorKind, HasKind};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::events::Events;

const VOLUMES: TableDefinition<&str, &[u8]> = TableDefinition::new("volumes");

/// The label Docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A volume as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// Unix seconds.
    pub created: i64,
}

impl VolumeRecord {
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("get {name}: no such volume")]
    NotFound { name: String },
    #[error("create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")]
    InvalidName { name: String },
    #[error("create {name}: volume driver {driver:?} is not supported (only \"local\")")]
    Driver { name: String, driver: String },
    #[error("create {name}: invalid option key: {key:?}")]
    Option { name: String, key: String },
    #[error("remove {name}: volume is in use - [{}]", .containers.join(", "))]
    InUse { name: String, containers: Vec<String> },
    #[error("cannot {action} the volume database")]
    Database {
        action: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot {action} {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for VolumeError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::InvalidName { .. } | Self::Driver { .. } | Self::Option { .. } => {
                ErrorKind::InvalidArgument
            }
            Self::InUse { .. } => ErrorKind::Conflict,
            Self::Database { .. } | Self::Io { .. } => ErrorKind::Internal,
        }
    }
}

fn db<E: std::error::Error + Send + Sync + 'static>(
    action: &'static str,
) -> impl FnOnce(E) -> VolumeError {
    move |source| VolumeError::Database { action, source: Box::new(source) }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError {
    let path = path.to_owned();
    move |source| VolumeError::Io { action, path, source }
}

/// Who uses a volume: the containers that mount it.
pub trait VolumeUsers {
    /// Short ids of the containers that mount volume `name`.
    fn users_of(&self, name: &str) -> Vec<String>;
}

/// The engine's volumes.
#[derive(Debug)]
pub struct Volumes {
    root: PathBuf,
    db: Arc<Database>,
    /// Serialises create and remove, so a name is made once.
    lock: Mutex<()>,
    events: Arc<Events>,
}

impl Volumes {
    pub(crate) fn open(
        root: &Path,
        db: Arc<Database>,
        events: Arc<Events>,
    ) -> Result<Volumes, VolumeError> {
        std::fs::create_dir_all(root).map_err(io("create", root))?;
        let txn = db.begin_write().map_err(db_err("write"))?;
        txn.open_table(VOLUMES).map_err(db_err("create tables in"))?;
        txn.commit().map_err(db_err("commit to"))?;
        Ok(Volumes { root: root.to_owned(), db, lock: Mutex::new(()), events })
    }

    /// `<root>/volumes/<name>/_data`.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// `docker volume create`: make `name` (a random one when empty), or
    /// return it when it already exists. The bool says whether it is new.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        options: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<(VolumeRecord, bool), VolumeError> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n.to_owned(),
            None => random_name(),
        };
        if !is_valid_name(&name) {
            return Err(VolumeError::InvalidName { name });
        }
        let driver = if driver.is_empty() { "local" } else { driver };
        if driver != "local" {
            return Err(VolumeError::Driver { name, driver: driver.to_owned() });
        }
        if let Some(key) =
            options.keys().find(|k| !matches!(k.as_str(), "type" | "device" | "o" | "size"))
        {
            return Err(VolumeError::Option { name, key: key.clone() });
        }
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = self.get_opt(&name)? {
            return Ok((existing, false));
        }
        let data = self.mountpoint(&name);
        std::fs::create_dir_all(&data).map_err(io("create", &data))?;
        let record = VolumeRecord {
            name: name.clone(),
            driver: driver.to_owned(),
            labels,
            options,
            created: kiln_types::time::now().0,
        };
        self.put(&record)?;
        tracing::info!(volume = %name, "volume created");
        self.publish("create", &name, [("driver", record.driver.clone())]);
        Ok((record, true))
    }

    fn put(&self, record: &VolumeRecord) -> Result<(), VolumeError> {
        let json = serde_json::to_vec(record).map_err(db_err("encode a record for"))?;
        let txn = self.db.begin_write().map_err(db_err("write"))?;
        {
            let mut table = txn.open_table(VOLUMES).map_err(db_err("write"))?;
            table.insert(record.name.as_str(), json.as_slice()).map_err(db_err("write"))?;
        }
        txn.commit().map_err(db_err("commit to"))
    }

    fn get_opt(&self, name: &str) -> Result<Option<VolumeRecord>, VolumeError> {
        let txn = self.db.begin_read().map_err(db_err("read"))?;
        let table = txn.open_table(VOLUMES).map_err(db_err("read"))?;
        let Some(value) = table.get(name).map_err(db_err("read"))? else { return Ok(None) };
        serde_json::from_slice(value.value()).map(Some).map_err(db_err("decode a record of"))
    }

    /// `docker volume inspect NAME`.
    pub fn get(&self, name: &str) -> Result<VolumeRecord, VolumeError> {
        self.get_opt(name)?.ok_or_else(|| VolumeError::NotFound { name: name.to_owned() })
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<VolumeRecord>, VolumeError> {
        let txn = self.db.begin_read().map_err(db_err("read"))?;
        let table = txn.open_table(VOLUMES).map_err(db_err("read"))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err("read"))? {
            let (_, value) = row.map_err(db_err("read"))?;
            match serde_json::from_slice::<VolumeRecord>(value.value()) {
                Ok(record) => out.push(record),
                Err(err) => tracing::warn!(error = %err, "skipping a damaged volume record"),
            }
        }
        Ok(out)
    }

    /// `docker volume rm [-f] NAME`: refused while a container uses it.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        users: &dyn VolumeUsers,
    ) -> Result<(), VolumeError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(record) = self.get_opt(name)? else {
            if force {
                return Ok(());
            }
            return Err(VolumeError::NotFound { name: name.to_owned() });
        };
        let containers = users.users_of(name);
        if !containers.is_empty() {
            return Err(VolumeError::InUse { name: name.to_owned(), containers });
        }
        let txn = self.db.begin_write().map_err(db_err("write"))?;
        {
            let mut table = txn.open_table(VOLUMES).map_err(db_err("write"))?;
            table.remove(name).map_err(db_err("write"))?;
        }
        txn.commit().map_err(db_err("commit to"))?;
        let data = self.mountpoint(name);
        let _ = nix::mount::umount2(&data, nix::mount::MntFlags::MNT_DETACH);
        let dir = self.root.join(name);
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(volume = %name, error = %err, "cannot remove the volume's data");
        }
        tracing::info!(volume = %name, "volume removed");
        self.publish("destroy", name, [("driver", record.driver)]);
        Ok(())
    }

    /// `docker volume prune`: unused volumes; anonymous ones only unless
    /// `all`. Returns the names removed and the bytes freed.
    pub fn prune(
        &self,
        all: bool,
        labels: &[String],
        users: &dyn VolumeUsers,
    ) -> Result<(Vec<String>, u64), VolumeError> {
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for record in self.list()? {
            if (!all && !record.is_anonymous())
                || !labels.iter().all(|l| has_label(&record.labels, l))
            {
                continue;
            }
            if !users.users_of(&record.name).is_empty() {
                continue;
            }
            let size = dir_size(&self.mountpoint(&record.name));
            if self.remove(&record.name, false, users).is_ok() {
                reclaimed += size;
                removed.push(record.name);
            }
        }
        // docker-compat: a prune is one event with no volume, after the
        // `destroy` of each volume it removed.
        self.publish("prune", "", [("reclaimed", reclaimed.to_string())]);
        Ok((removed, reclaimed))
    }

    /// Make the volume's data ready for a container: mount its filesystem
    /// when it has a `type`.
    pub fn prepare(&self, record: &VolumeRecord) -> Result<PathBuf, VolumeError> {
        let data = self.mountpoint(&record.name);
        std::fs::create_dir_all(&data).map_err(io("create", &data))?;
        if let Some(kind) = record.options.get("type") {
            if !is_mount_point(&data) {
                let device = record.options.get("device").cloned().unwrap_or_else(|| kind.clone());
                let opts = record.options.get("o").cloned().unwrap_or_default();
                nix::mount::mount(
                    Some(device.as_str()),
                    &data,
                    Some(kind.as_str()),
                    nix::mount::MsFlags::empty(),
                    Some(opts.as_str()).filter(|o| !o.is_empty()),
                )
                .map_err(|e| VolumeError::Io {
                    action: "mount",
                    path: data.clone(),
                    source: e.into(),
                })?;
            }
        }
        Ok(data)
    }

    /// Report that container `container` mounts the volume at
    /// `destination` (the `mount` event, as its start sets up its mounts).
    pub fn mounted(
        &self,
        record: &VolumeRecord,
        container: &str,
        destination: &str,
        rw: bool,
        propagation: &str,
    ) {
        self.publish(
            "mount",
            &record.name,
            [
                ("driver", record.driver.clone()),
                ("container", container.to_owned()),
                ("destination", destination.to_owned()),
                ("read/write", rw.to_string()),
                ("propagation", propagation.to_owned()),
            ],
        );
    }

    /// Report that container `container` no longer uses the volume (the
    /// `unmount` event, when it stops). The data stays mounted for the next
    /// user; [`Volumes::remove`] unmounts it.
    pub fn unmounted(&self, name: &str, container: &str) {
        let driver = self.get_opt(name).ok().flatten().map_or_else(|| "local".into(), |v| v.driver);
        self.publish("unmount", name, [("driver", driver), ("container", container.to_owned())]);
    }

    fn publish<const N: usize>(&self, action: &str, name: &str, attributes: [(&str, String); N]) {
        let attributes = attributes.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        self.events.publish("volume", action, name, attributes);
    }

    /// Whether the volume's data is empty (so an image's content may be
    /// copied in).
    pub fn is_empty(&self, name: &str) -> bool {
        std::fs::read_dir(self.mountpoint(name)).map_or(true, |mut d| d.next().is_none())
    }
}

fn db_err<E: std::error::Error + Send + Sync + 'static>(
    action: &'static str,
) -> impl FnOnce(E) -> VolumeError {
    db(action)
}

/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn random_name() -> String {
    use std::io::Read as _;
    let mut buf = [0u8; 32];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).is_err() {
        let (secs, nanos) = kiln_types::time::now();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (secs as u8).wrapping_add(nanos.to_le_bytes()[i % 4]).wrapping_add(i as u8);
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn has_label(labels: &BTreeMap<String, String>, wanted: &str) -> bool {
    match wanted.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(wanted),
    }
}

fn is_mount_point(path: &Path) -> bool {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let target = path.to_string_lossy();
    mountinfo.lines().any(|l| l.split(' ').nth(4) == Some(&*target))
}

/// Bytes of regular files under `path`.
fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nobody;
    impl VolumeUsers for Nobody {
        fn users_of(&self, _name: &str) -> Vec<String> {
            Vec::new()
        }
    }

    struct Somebody;
    impl VolumeUsers for Somebody {
        fn users_of(&self, _name: &str) -> Vec<String> {
            vec!["abc".into()]
        }
    }

    fn volumes(dir: &kiln_testing::ScratchDir) -> Volumes {
        let db = Database::create(dir.path().join("kiln.db")).expect("db");
        let events = Arc::new(Events::default());
        Volumes::open(&dir.path().join("volumes"), Arc::new(db), events).expect("volumes")
    }

    /// `(action, volume)` of every event published so far.
    fn published(volumes: &Volumes) -> Vec<(String, String)> {
        let (past, _) = volumes.events.subscribe();
        past.into_iter().map(|e| (e.action, e.id)).collect()
    }

    #[test]
    fn events_tell_the_life_of_a_volume() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let volumes = volumes(&dir);
        let (record, _) =
            volumes.create(Some("data"), "", BTreeMap::new(), BTreeMap::new()).expect("create");
        volumes.create(Some("data"), "", BTreeMap::new(), BTreeMap::new()).expect("again");
        volumes.mounted(&record, "abc", "/data", false, "");
        volumes.unmounted("data", "abc");
        volumes.remove("data", false, &Nobody).expect("remove");
        volumes.prune(true, &[], &Nobody).expect("prune");
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
        };
        assert_eq!(
            published(&volumes),
            pairs(&[
                ("create", "data"),
                ("mount", "data"),
                ("unmount", "data"),
                ("destroy", "data"),
                ("prune", ""),
            ]),
            "a second create of the same name is no event"
        );
        let (past, _) = volumes.events.subscribe();
        let mount = &past[1];
        assert_eq!(mount.kind, "volume");
        assert_eq!(mount.attributes["driver"], "local");
        assert_eq!(mount.attributes["container"], "abc");
        assert_eq!(mount.attributes["destination"], "/data");
        assert_eq!(mount.attributes["read/write"], "false");
        assert_eq!(past[4].attributes["reclaimed"], "0");
    }

    #[test]
    fn create_is_idempotent_and_remove_refuses_volumes_in_use() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let volumes = volumes(&dir);
        let labels = [("a".to_owned(), "b".to_owned())].into();
        let (first, new) =
            volumes.create(Some("data"), "", BTreeMap::new(), labels).expect("create");
        assert!(new && first.driver == "local");
        assert!(volumes.mountpoint("data").is_dir());
        let (again, new) =
            volumes.create(Some("data"), "local", BTreeMap::new(), BTreeMap::new()).expect("again");
        assert!(!new);
        assert_eq!(again.labels["a"], "b");
        let err = volumes.remove("data", false, &Somebody).expect_err("in use");
        assert_eq!(err.to_string(), "remove data: volume is in use - [abc]");
        volumes.remove("data", false, &Nobody).expect("remove");
        assert!(!volumes.mountpoint("data").exists());
        assert!(matches!(volumes.get("data"), Err(VolumeError::NotFound { .. })));
    }

    #[test]
    fn bad_names_drivers_and_options_are_refused() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let volumes = volumes(&dir);
        assert!(matches!(
            volumes.create(Some("a/b"), "", BTreeMap::new(), BTreeMap::new()),
            Err(VolumeError::InvalidName { .. })
        ));
        assert!(matches!(
            volumes.create(Some("ok"), "nfs", BTreeMap::new(), BTreeMap::new()),
            Err(VolumeError::Driver { .. })
        ));
        let opts = [("bogus".to_owned(), "1".to_owned())].into();
        assert!(matches!(
            volumes.create(Some("ok"), "", opts, BTreeMap::new()),
            Err(VolumeError::Option { .. })
        ));
    }

    #[test]
    fn prune_takes_anonymous_volumes_unless_all() {
        let dir = kiln_testing::ScratchDir::new().expect("scratch");
        let volumes = volumes(&dir);
        let anon = [(ANONYMOUS_LABEL.to_owned(), String::new())].into();
        let (a, _) = volumes.create(None, "", BTreeMap::new(), anon).expect("anonymous");
        assert_eq!(a.name.len(), 64);
        volumes.create(Some("named"), "", BTreeMap::new(), BTreeMap::new()).expect("named");
        let (removed, _) = volumes.prune(false, &[], &Nobody).expect("prune");
        assert_eq!(removed, [a.name]);
        let (removed, _) = volumes.prune(true, &[], &Nobody).expect("prune all");
        assert_eq!(removed, ["named"]);
    }
}
