//! What a build is asked to do and what it reports while it runs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kiln_types::Digest;

/// One build, as the API receives it (Docker's `POST /build` query and
/// Kiln's additions).
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The Dockerfile's path inside the context (`-f`); `Dockerfile` when
    /// empty.
    pub dockerfile: String,
    /// `-t`, in the order given; validated as references by the engine.
    pub tags: Vec<String>,
    /// `--build-arg NAME=VALUE`; `None` for a bare `--build-arg NAME`
    /// (the value then comes from the client's environment, or is unset).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--target`: the stage to stop at; the last stage when `None`.
    pub target: Option<String>,
    /// `--no-cache`: no step is looked up in the cache (results still go in).
    pub no_cache: bool,
    /// `--no-cache-filter`: stages that skip the cache.
    pub no_cache_filter: Vec<String>,
    /// `--pull`: resolve base images from their registry even when present.
    pub pull: bool,
    /// `--label`: labels of the final image.
    pub labels: BTreeMap<String, String>,
    /// `--network`: the default of RUN steps (`default`, `none`, `host`).
    pub network: Option<String>,
    /// `--add-host host:ip`.
    pub extra_hosts: Vec<String>,
    /// `--shm-size` in bytes, 0 for the default.
    pub shm_size: u64,
    /// `--ulimit name=soft[:hard]`, as given.
    pub ulimits: Vec<String>,
    /// `--secret id=..`: mounted at `/run/secrets/<id>` by
    /// `RUN --mount=type=secret`, never written to a layer or the cache.
    pub secrets: Vec<Secret>,
    /// `--quiet`: no step output, only the image id at the end.
    pub quiet: bool,
    /// `--platform`; the host's when `None`.
    pub platform: Option<String>,
    /// `--cache-from type=local,src=DIR`, as given.
    pub cache_from: Vec<String>,
    /// `--cache-to type=local,dest=DIR`, as given.
    pub cache_to: Vec<String>,
    /// `--check-reproducible` (Kiln's `checkreproducible=1`).
    pub check_reproducible: bool,
    /// Docker's `remote`: a Git repository (`URL#ref:dir`) to build from
    /// instead of the request body's tar.
    pub remote: Option<String>,
}

/// A secret's id and bytes, held in memory for one build.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret {
    pub id: String,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret's bytes, not even in a debug log.
        f.debug_struct("Secret").field("id", &self.id).field("len", &self.data.len()).finish()
    }
}

/// What a build reports as it goes, in order. The API turns these into
/// Docker's JSON stream (`{"stream":"Step 1/4 : FROM busybox\n"}` …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A step starts: `Step {number}/{total} : {text}`.
    Step { number: usize, total: usize, text: String },
    /// The step's result came from the cache.
    Cached,
    /// Output of a RUN step, as the process wrote it (stdout and stderr).
    Output(Vec<u8>),
    /// A step is done; `id` names the image state after it.
    StepDone { id: Digest, elapsed: Duration },
    /// Something the user should know that does not stop the build.
    Warning(String),
    /// The build's image.
    Built { id: Digest },
    /// A tag now points at the built image.
    Tagged { reference: String },
}

/// What a finished build made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutcome {
    pub id: Digest,
    pub tags: Vec<String>,
}

/// Set when the client went away or asked to stop: the build stops at the
/// next step boundary and a running step's process is killed.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
