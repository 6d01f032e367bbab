//! The container engine: the state behind `kiln daemon`.
//!
//! [`Engine::open`] claims a state root (`/var/lib/kiln` by default) for this
//! process alone, with a lock held for the engine's life, and creates the
//! runtime-state dir (`/run/kiln`). It opens the stores under the root
//! (`content/` blobs, `snapshots/` unpacked layers, `kiln.db` metadata),
//! answers what the daemon is and where it runs ([`Engine::info`],
//! [`Engine::version`]) and serves images ([`Engine::images`]: list,
//! inspect, history, tag, remove, load, save, import). Containers, volumes
//! and networks join it as they are built, each as its own module.
//!
//! The engine speaks its own types, never the wire format: `kiln-api-server`
//! translates [`EngineInfo`] into the Docker Engine API. Nothing here forks:
//! the daemon that hosts the engine is multi-threaded, so runtimes and shims
//! run as separate processes.

pub mod bootstrap;
pub mod build;
mod config;
pub mod containers;
pub mod events;
mod glob;
mod host;
mod identity;
mod images;
mod info;
mod lock;
pub mod networks;
pub mod pull;
pub mod push;
pub mod volumes;

use std::path::PathBuf;
use std::sync::Arc;

use kiln_types::{ErrorKind, HasKind};

pub use config::{Config, FirewallBackend, NetworkConfig};
pub use containers::{ContainerError, Containers};
pub use host::{CgroupVersion, HostFacts};
pub use images::{
    ContainerConfig, Deleted, Healthcheck, History, HistoryEntry, ImageDetails, ImageDiskUsage,
    ImageError, ImageFilter, ImageSummary, ImageUsers, Images, ImportRequest, LoadedImage, NoUsers,
};
pub use info::{ContainerCounts, EngineInfo, EngineVersion, RuntimeEntry, SecurityOption};
pub use networks::{NetworkError, Networks};

/// The engine of one state root. Dropping it releases the root.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    id: String,
    images: Arc<Images>,
    containers: Arc<Containers>,
    volumes: Arc<volumes::Volumes>,
    networks: Arc<Networks>,
    events: Arc<events::Events>,
    _lock: lock::RootLock,
}

/// Why [`Engine::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create directory {}", .path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error("cannot open the content store")]
    Content(#[source] kiln_content::ContentError),
    #[error("cannot open the snapshot store")]
    Snapshots(#[source] kiln_snapshot::SnapshotError),
    #[error("cannot open the metadata database {}", .path.display())]
    Database {
        path: PathBuf,
        #[source]
        source: Box<redb::DatabaseError>,
    },
    #[error("cannot open the image metadata")]
    Metadata(#[source] kiln_image::MetadataError),
    #[error("cannot open the volume store")]
    Volumes(#[source] volumes::VolumeError),
    #[error("cannot open the networks")]
    Networks(#[source] NetworkError),
    #[error("cannot open the container store")]
    Containers(#[source] ContainerError),
}

impl HasKind for OpenError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::CreateDir { source, .. } => io_kind(source),
            Self::Lock(err) => err.kind(),
            Self::Identity(_)
            | Self::Content(_)
            | Self::Snapshots(_)
            | Self::Database { .. }
            | Self::Metadata(_)
            | Self::Containers(_)
            | Self::Networks(_)
            | Self::Volumes(_) => ErrorKind::Internal,
        }
    }
}

fn io_kind(err: &std::io::Error) -> ErrorKind {
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::Internal,
    }
}

pub use lock::LockError;

impl Engine {
    /// Create the root and exec-root dirs when missing (mode 0711), lock the
    /// root for this process (`<root>/kiln.lock`, holding our pid), and load
    /// or create the engine's id. Then open the stores under the root,
    /// removing blob ingests a killed daemon left behind.
    pub fn open(config: Config) -> Result<Engine, OpenError> {
        for dir in [&config.root, &config.exec_root] {
            create_dir(dir)?;
        }
        let lock = lock::RootLock::acquire(&config.root)?;
        let id = identity::load_or_create(&config.root)?;
        let root = std::path::absolute(&config.root)
            .map_err(|source| OpenError::CreateDir { path: config.root.clone(), source })?;
        let content =
            kiln_content::Store::open(&root.join("content")).map_err(OpenError::Content)?;
        content.gc_ingests().map_err(OpenError::Content)?;
        let snapshots = kiln_snapshot::Snapshots::open(&root.join("snapshots"))
            .map_err(OpenError::Snapshots)?;
        let db_path = root.join("kiln.db");
        let database = redb::Database::create(&db_path)
            .map_err(|source| OpenError::Database { path: db_path, source: Box::new(source) })?;
        let database = Arc::new(database);
        let metadata = kiln_image::Metadata::with_database(Arc::clone(&database))
            .map_err(OpenError::Metadata)?;
        let events = Arc::new(events::Events::default());
        let exec_root = std::path::absolute(&config.exec_root)
            .map_err(|source| OpenError::CreateDir { path: config.exec_root.clone(), source })?;
        build::sweep_leftovers(&root, &exec_root, &snapshots);
        let images = Arc::new(Images::new(content, snapshots, metadata, Arc::clone(&events)));
        let exe = match &config.exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe()
                .map_err(|source| OpenError::CreateDir { path: "/proc/self/exe".into(), source })?,
        };
        let paths = containers::ContainerPaths {
            bundles: root.join("containers"),
            states: exec_root.join("containers"),
            runtime_root: exec_root.join("runtime"),
            exe,
        };
        let volumes = Arc::new(
            volumes::Volumes::open(
                &root.join("volumes"),
                Arc::clone(&database),
                Arc::clone(&events),
            )
            .map_err(OpenError::Volumes)?,
        );
        let networks =
            Networks::open(&exec_root, &config.network, Arc::clone(&database), Arc::clone(&events))
                .map_err(OpenError::Networks)?;
        let containers = Arc::new(
            Containers::open(
                paths,
                Arc::clone(&images),
                Arc::clone(&volumes),
                Arc::clone(&networks),
                Arc::clone(&events),
                database,
            )
            .map_err(OpenError::Containers)?,
        );
        tracing::info!(root = %config.root.display(), exec_root = %config.exec_root.display(), id = %id, "engine opened");
        Ok(Engine { config, id, images, containers, volumes, networks, events, _lock: lock })
    }

    /// The image service.
    pub fn images(&self) -> &Images {
        &self.images
    }

    /// The event stream.
    pub fn events(&self) -> &Arc<events::Events> {
        &self.events
    }

    /// The volume service.
    pub fn volumes(&self) -> &Arc<volumes::Volumes> {
        &self.volumes
    }

    /// The network service.
    pub fn networks(&self) -> &Arc<Networks> {
        &self.networks
    }

    /// The container service.
    pub fn containers(&self) -> &Arc<Containers> {
        &self.containers
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What this engine is and where it runs. Host facts that cannot be read
    /// are left empty rather than failing the call.
    pub fn info(&self) -> EngineInfo {
        let mut info = info::collect(&self.config, &self.id);
        let (running, paused, stopped) = self.containers.counts();
        info.containers = ContainerCounts { running, paused, stopped };
        info.default_shm_size = self.containers.default_shm_size(0);
        match self.images.count() {
            Ok(count) => info.images = count,
            Err(err) => tracing::warn!(error = %err, "cannot count images"),
        }
        info
    }

    /// The engine's version and build facts.
    pub fn version(&self) -> EngineVersion {
        info::version()
    }
}

fn create_dir(path: &std::path::Path) -> Result<(), OpenError> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(path)
        .map_err(|source| OpenError::CreateDir { path: path.to_owned(), source })
}
