//! The executor: stages in dependency order (independent ones in
//! parallel), each instruction applied to the stage's image state, every
//! file-system step looked up in the exact cache before it runs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use kiln_dockerfile::{
    expand_word, Command, Dockerfile, Healthcheck, Instruction, InstructionKind, Keyword,
    MountType, NetworkMode, Security, Source,
};
use kiln_image::{media_type, Descriptor, History, ImageManifest, ImageRecord, WritableLayer};
use kiln_snapshot::chain_ids;
use kiln_types::{ErrorKind, HasKind, ImageRef};
use serde_json::json;

use crate::cache::{Index, Key};
use crate::copy::{self, CopyRequest};
use crate::export::{self, parse_location, CacheLocation};
use crate::state::ImageState;
use crate::users::resolve_owner;
use crate::worker::{Rootfs, StepMount, StepNetwork, StepProcess, Worker};
use crate::{BuildError, BuildEvent, BuildOutcome, BuildRequest, Cancel};

/// `SOURCE_DATE_EPOCH` when the build does not set one: the epoch itself.
pub const DEFAULT_SOURCE_DATE_EPOCH: u64 = 0;

/// Lines of a failed step's output kept for the error report.
const TAIL_LINES: usize = 20;

/// Where a RUN's heredoc script with a `#!` line is mounted.
const SCRIPT_PATH: &str = "/dev/.kiln-run-script";

/// Build `request` from the context directory `context`.
pub fn build(
    request: &BuildRequest,
    context: &Path,
    worker: &dyn Worker,
    events: &(dyn Fn(BuildEvent) + Sync),
    cancel: &Cancel,
) -> Result<BuildOutcome, BuildError> {
    let cache_to: Vec<CacheLocation> =
        request.cache_to.iter().map(|v| parse_location(v, "dest")).collect::<Result<_, _>>()?;
    let cache_from: Vec<CacheLocation> =
        request.cache_from.iter().map(|v| parse_location(v, "src")).collect::<Result<_, _>>()?;
    let index = Index::new(worker.cache_dir());
    for location in &cache_from {
        if let CacheLocation::Local(dir) = location {
            export::import(worker, &index, dir, &worker.cache_dir().join("mounts"), events)?;
        }
    }
    let file_name = if request.dockerfile.is_empty() { "Dockerfile" } else { &request.dockerfile };
    let text = read_dockerfile(context, file_name)?;
    strip_ignored_build_files(request, context);
    if request.check_reproducible {
        return check_reproducible(request, context, worker, events, cancel, &text);
    }
    let builder = Builder::new(request, context, worker, events, cancel, &text)?;
    let outcome = builder.run()?;
    for location in &cache_to {
        match location {
            CacheLocation::Local(dir) => {
                let keys = lock(&builder.visited).clone();
                let mounts = lock(&builder.mounts).clone();
                export::export(worker, &index, &keys, &mounts, dir)?;
            }
            CacheLocation::Image(name) => {
                return Err(BuildError::invalid(format!(
                    "--cache-to {name}: Kiln exports caches to type=local,dest=DIR"
                )))
            }
        }
    }
    Ok(outcome)
}

/// docker-compat: dockerd leaves the Dockerfile and `.dockerignore` out of
/// the context when `.dockerignore` excludes them (the docker CLI and
/// `kiln build` list a Dockerfile from outside the context there), so that
/// `COPY . /` does not copy them. The builder reads the Dockerfile before.
fn strip_ignored_build_files(request: &BuildRequest, context: &Path) {
    let Ok(text) = std::fs::read_to_string(context.join(".dockerignore")) else { return };
    let Ok(rules) = kiln_dockerfile::ignore::Rules::parse(&text) else { return };
    let dockerfile = if request.dockerfile.is_empty() { "Dockerfile" } else { &request.dockerfile };
    for name in [dockerfile, ".dockerignore"] {
        if rules.is_excluded(name) {
            if let Ok(path) = resolve_inside(context, name) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Build twice without the cache and compare: the second build's image
/// when both give the same digest, else the first difference as an error.
fn check_reproducible(
    request: &BuildRequest,
    context: &Path,
    worker: &dyn Worker,
    events: &(dyn Fn(BuildEvent) + Sync),
    cancel: &Cancel,
    text: &str,
) -> Result<BuildOutcome, BuildError> {
    let mut first_request = request.clone();
    first_request.no_cache = true;
    first_request.check_reproducible = false;
    let mut first = Builder::new(&first_request, context, worker, events, cancel, text)?;
    first.record = false;
    let first = first.run()?;
    (events)(BuildEvent::Output(b"Building again without the cache, to compare\n".to_vec()));
    let mut second_builder = Builder::new(&first_request, context, worker, events, cancel, text)?;
    second_builder.record = false;
    let second = second_builder.run()?;
    if first.id == second.id {
        (events)(BuildEvent::Output(
            format!("Reproducible: both builds gave {}\n", second.id).into_bytes(),
        ));
        let state = lock(&second_builder.last)
            .take()
            .ok_or_else(|| BuildError::internal("the second build left no image"))?;
        second_builder.record = true;
        return second_builder.commit(&state);
    }
    let difference = crate::compare::first_difference(worker, &first.id, &second.id)?;
    Err(BuildError::Failed {
        kind: ErrorKind::InvalidArgument,
        message: format!(
            "the build is not reproducible: two builds without cache gave {} and {}; {difference}",
            first.id, second.id
        ),
    })
}

/// One stage as planned.
#[derive(Debug)]
struct StagePlan {
    /// The FROM reference after the global args.
    base: String,
    /// The stage FROM names, when it names one.
    base_stage: Option<usize>,
    /// Stages it needs (base, COPY --from, RUN --mount from).
    deps: Vec<usize>,
    /// The step number of its FROM.
    first_step: usize,
    no_cache: bool,
}

/// A stage's result.
#[derive(Debug)]
struct StageResult {
    state: ImageState,
    key: Key,
}

/// What a stage in progress holds.
struct StageRun {
    index: usize,
    state: ImageState,
    key: Key,
    /// Args declared in the stage, with their values (`None`: unset).
    args: Vec<(String, Option<String>)>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
    no_cache: bool,
}

impl StageRun {
    /// Variables for substitution: args, then ENV, which wins.
    fn vars(&self) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = self
            .args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect();
        if let Some(config) = &self.state.config.config {
            for kv in &config.env {
                let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                vars.push((k.to_owned(), v.to_owned()));
            }
        }
        vars
    }

    fn workdir(&self) -> String {
        self.state
            .config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_owned())
    }
}

struct Builder<'a> {
    request: &'a BuildRequest,
    context: &'a Path,
    worker: &'a dyn Worker,
    events: &'a (dyn Fn(BuildEvent) + Sync),
    cancel: &'a Cancel,
    file: Dockerfile,
    file_name: String,
    escape: char,
    sde: u64,
    created: String,
    platform: String,
    global_vars: Vec<(String, String)>,
    global_declared: HashSet<String>,
    consumed: Mutex<HashSet<String>>,
    plans: Vec<StagePlan>,
    needed: Vec<usize>,
    target: usize,
    total: usize,
    index: Index,
    results: Mutex<Vec<Option<Arc<StageResult>>>>,
    failed: Mutex<Option<BuildError>>,
    changed: Condvar,
    images: Mutex<HashMap<String, crate::worker::BaseImage>>,
    /// Cache keys this build used or made, for `--cache-to`.
    visited: Mutex<Vec<Key>>,
    /// Cache mounts this build used (name, directory), for `--cache-to`.
    mounts: Mutex<Vec<(String, PathBuf)>>,
    /// Whether the image gets a record (and tags); the builds of
    /// `--check-reproducible` only store blobs until they agree.
    record: bool,
    /// The target's state when it was not recorded.
    last: Mutex<Option<ImageState>>,
}

/// Automatic platform args, usable in FROM and, once declared, in stages.
fn platform_args(platform: &str) -> Vec<(String, String)> {
    let mut parts = platform.split('/');
    let os = parts.next().unwrap_or("linux").to_owned();
    let arch = parts.next().unwrap_or("amd64").to_owned();
    let variant = parts.next().unwrap_or("").to_owned();
    let mut out = Vec::new();
    for prefix in ["TARGET", "BUILD"] {
        out.push((format!("{prefix}PLATFORM"), platform.to_owned()));
        out.push((format!("{prefix}OS"), os.clone()));
        out.push((format!("{prefix}ARCH"), arch.clone()));
        out.push((format!("{prefix}VARIANT"), variant.clone()));
    }
    out
}

fn substitution(err: impl std::fmt::Display) -> BuildError {
    BuildError::invalid(err.to_string())
}

impl<'a> Builder<'a> {
    fn new(
        request: &'a BuildRequest,
        context: &'a Path,
        worker: &'a dyn Worker,
        events: &'a (dyn Fn(BuildEvent) + Sync),
        cancel: &'a Cancel,
        text: &str,
    ) -> Result<Builder<'a>, BuildError> {
        let file_name =
            if request.dockerfile.is_empty() { "Dockerfile" } else { &request.dockerfile };
        let display_name = Path::new(file_name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".dockerfile."))
            .unwrap_or_else(|| "Dockerfile".to_owned());
        let file = kiln_dockerfile::parse(text).map_err(|e| e.with_file(&display_name))?;
        if file.stages.is_empty() {
            return Err(BuildError::invalid(format!(
                "{display_name}: the Dockerfile has no FROM instruction"
            )));
        }
        let escape = file.directives.escape;
        let platform = worker.platform();
        if let Some(wanted) = request.platform.as_deref().filter(|p| !p.is_empty()) {
            if !platform_matches(wanted, &platform) {
                return Err(BuildError::Invalid {
                    message: format!(
                        "platform {wanted} is not supported: this host builds {platform} (Kiln does not emulate other platforms)"
                    ),
                });
            }
        }
        let sde = match request.build_args.get("SOURCE_DATE_EPOCH") {
            Some(Some(v)) if !v.is_empty() => v.parse::<u64>().map_err(|_| {
                BuildError::invalid(format!(
                    "invalid SOURCE_DATE_EPOCH {v:?}: expected seconds since 1970"
                ))
            })?,
            _ => DEFAULT_SOURCE_DATE_EPOCH,
        };
        let created =
            kiln_types::time::UtcTime::from_unix(i64::try_from(sde).unwrap_or(0)).rfc3339();

        let mut consumed = HashSet::new();
        let mut global_vars = platform_args(&platform);
        let mut global_declared = HashSet::new();
        for decl in file.global_arg_decls() {
            global_declared.insert(decl.name.clone());
            let value = match request.build_args.get(&decl.name) {
                Some(Some(v)) => {
                    consumed.insert(decl.name.clone());
                    Some(v.clone())
                }
                _ => match &decl.default {
                    Some(d) => Some(expand_word(d, &global_vars, escape).map_err(substitution)?),
                    None => None,
                },
            };
            if let Some(v) = value {
                global_vars.push((decl.name.clone(), v));
            }
        }

        let mut plans = Vec::new();
        let mut first_step = 1;
        for (i, stage) in file.stages.iter().enumerate() {
            let base = expand_word(&stage.base, &global_vars, escape).map_err(|e| {
                BuildError::invalid(format!("{display_name}:{}: FROM: {e}", stage.span.start_line))
            })?;
            if base.is_empty() {
                return Err(BuildError::invalid(format!(
                    "{display_name}:{}: FROM needs an image name (got an empty one after substitution)",
                    stage.span.start_line
                )));
            }
            let base_stage =
                file.find_stage(&base).filter(|&j| j < i && base.parse::<usize>().is_err());
            let mut deps: Vec<usize> = base_stage.into_iter().collect();
            let mut refer = |from: &str| {
                let expanded = expand_word(from, &global_vars, escape).unwrap_or_default();
                if let Some(j) = file.find_stage(&expanded).filter(|&j| j < i) {
                    deps.push(j);
                }
            };
            for instruction in &stage.instructions {
                match &instruction.kind {
                    InstructionKind::Copy(c) => {
                        if let Some(from) = &c.from {
                            refer(from);
                        }
                    }
                    InstructionKind::Run(r) => {
                        for m in &r.mounts {
                            if let Some(from) = &m.from {
                                refer(from);
                            }
                        }
                    }
                    _ => {}
                }
            }
            deps.sort_unstable();
            deps.dedup();
            let no_cache = request.no_cache
                || stage.name.as_ref().is_some_and(|n| {
                    request.no_cache_filter.iter().any(|f| f.eq_ignore_ascii_case(n))
                });
            plans.push(StagePlan { base, base_stage, deps, first_step, no_cache });
            first_step += 1 + stage.instructions.len();
        }

        let target = match request.target.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => {
                let lower = t.to_lowercase();
                file.stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(lower.as_str()))
                    .ok_or_else(|| {
                        BuildError::invalid(format!("target stage \"{t}\" could not be found"))
                    })?
            }
            None => file.stages.len() - 1,
        };
        let mut needed = Vec::new();
        let mut stack = vec![target];
        let mut seen = HashSet::new();
        while let Some(i) = stack.pop() {
            if seen.insert(i) {
                needed.push(i);
                stack.extend(plans[i].deps.iter().copied());
            }
        }
        needed.sort_unstable();
        // Renumber the steps over the needed stages only.
        let mut total = 0;
        for &i in &needed {
            plans[i].first_step = total + 1;
            total += 1 + file.stages[i].instructions.len();
        }
        let stages = file.stages.len();
        Ok(Builder {
            request,
            context,
            worker,
            events,
            cancel,
            file,
            file_name: display_name,
            escape,
            sde,
            created,
            platform,
            global_vars,
            global_declared,
            consumed: Mutex::new(consumed),
            plans,
            needed,
            target,
            total,
            index: Index::new(worker.cache_dir()),
            results: Mutex::new(vec![None; stages]),
            failed: Mutex::new(None),
            changed: Condvar::new(),
            images: Mutex::new(HashMap::new()),
            visited: Mutex::new(Vec::new()),
            mounts: Mutex::new(Vec::new()),
            record: true,
            last: Mutex::new(None),
        })
    }

    fn emit(&self, event: BuildEvent) {
        if self.request.quiet {
            return;
        }
        (self.events)(event);
    }

    fn run(&self) -> Result<BuildOutcome, BuildError> {
        if self.needed.len() == 1 {
            let result = self.run_stage(self.target);
            self.finish(self.target, result);
        } else {
            std::thread::scope(|scope| {
                for &i in &self.needed {
                    let this = self;
                    scope.spawn(move || {
                        let result = this.run_stage(i);
                        this.finish(i, result);
                    });
                }
            });
        }
        if let Some(err) = lock(&self.failed).take() {
            return Err(err);
        }
        if self.cancel.is_cancelled() {
            return Err(BuildError::Cancelled);
        }
        let result = lock(&self.results)[self.target]
            .clone()
            .ok_or_else(|| BuildError::internal("the target stage left no result"))?;
        let unused: Vec<String> = {
            let consumed = lock(&self.consumed);
            self.request
                .build_args
                .keys()
                .filter(|k| !consumed.contains(*k) && !is_predefined_arg(k))
                .cloned()
                .collect()
        };
        if !unused.is_empty() {
            self.emit(BuildEvent::Warning(format!(
                "One or more build-args [{}] were not consumed",
                unused.join(" ")
            )));
        }
        self.commit(&result.state)
    }

    fn finish(&self, index: usize, result: Result<StageResult, BuildError>) {
        match result {
            Ok(r) => lock(&self.results)[index] = Some(Arc::new(r)),
            Err(err) => {
                let mut failed = lock(&self.failed);
                let replace = match &*failed {
                    None => true,
                    Some(BuildError::Cancelled) => !matches!(err, BuildError::Cancelled),
                    Some(_) => false,
                };
                if replace {
                    *failed = Some(err);
                }
            }
        }
        self.changed.notify_all();
    }

    /// The result of stage `index`, once it is done.
    fn wait_stage(&self, index: usize) -> Result<Arc<StageResult>, BuildError> {
        let mut results = lock(&self.results);
        loop {
            if let Some(r) = &results[index] {
                return Ok(Arc::clone(r));
            }
            if lock(&self.failed).is_some() || self.cancel.is_cancelled() {
                return Err(BuildError::Cancelled);
            }
            results = self.changed.wait(results).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn check_cancel(&self) -> Result<(), BuildError> {
        if self.cancel.is_cancelled() || lock(&self.failed).is_some() {
            return Err(BuildError::Cancelled);
        }
        Ok(())
    }

    fn resolve_image(&self, reference: &str) -> Result<crate::worker::BaseImage, BuildError> {
        if let Some(image) = lock(&self.images).get(reference) {
            return Ok(image.clone());
        }
        let image = self.worker.resolve_image(reference, self.request.pull, self.events)?;
        lock(&self.images).insert(reference.to_owned(), image.clone());
        Ok(image)
    }

    fn step_error(&self, instruction: &Instruction, err: BuildError) -> BuildError {
        self.locate(instruction.span.start_line, &instruction.original, err)
    }

    /// `err` as the failure of the step at `line`, unless it already names one.
    fn locate(&self, line: usize, original: &str, err: BuildError) -> BuildError {
        match err {
            BuildError::Cancelled => err,
            BuildError::Step { line: 0, message, kind, output_tail, .. } => BuildError::Step {
                file: self.file_name.clone(),
                line,
                instruction: one_line(original),
                message,
                kind,
                output_tail,
            },
            BuildError::Step { .. } => err,
            other => BuildError::Step {
                file: self.file_name.clone(),
                line,
                instruction: one_line(original),
                kind: other.kind(),
                message: other.to_string(),
                output_tail: Vec::new(),
            },
        }
    }

    fn run_stage(&self, index: usize) -> Result<StageResult, BuildError> {
        let plan = &self.plans[index];
        for &dep in &plan.deps {
            self.wait_stage(dep)?;
        }
        self.check_cancel()?;
        let stage = &self.file.stages[index];
        let started = Instant::now();
        self.emit(BuildEvent::Step {
            number: plan.first_step,
            total: self.total,
            text: one_line(&stage.original),
        });
        let from_error = |err: BuildError| self.locate(stage.span.start_line, &stage.original, err);
        let platform_key = json!({"platform": self.platform, "epoch": self.sde});
        let (state, key) = if let Some(j) = plan.base_stage {
            let base = self.wait_stage(j)?;
            (base.state.clone(), Key::child(&base.key, &platform_key))
        } else if plan.base.eq_ignore_ascii_case("scratch") {
            (
                ImageState::scratch(&self.platform),
                Key::root(&json!({"from": "scratch", "at": platform_key})),
            )
        } else {
            let image = self.resolve_image(&plan.base).map_err(from_error)?;
            let key = Key::root(&json!({"from": image.id.to_string(), "at": platform_key}));
            (ImageState { config: image.config, layers: image.layers }, key)
        };
        let mut run = StageRun {
            index,
            state,
            key,
            args: Vec::new(),
            cmd_set: false,
            no_cache: plan.no_cache,
        };
        self.emit(BuildEvent::StepDone { id: run.state.id()?, elapsed: started.elapsed() });

        let triggers = run.state.config.config.as_mut().map(|c| std::mem::take(&mut c.on_build));
        for trigger in triggers.unwrap_or_default() {
            let parsed =
                kiln_dockerfile::parse(&format!("FROM scratch\n{trigger}\n")).map_err(|e| {
                    from_error(BuildError::invalid(format!("ONBUILD trigger {trigger:?}: {e}")))
                })?;
            let Some(instruction) = parsed.stages.first().and_then(|s| s.instructions.first())
            else {
                continue;
            };
            let mut instruction = instruction.clone();
            instruction.span = stage.span.clone();
            self.emit(BuildEvent::Warning(format!("running ONBUILD trigger: {trigger}")));
            self.instruction(&mut run, &instruction).map_err(from_error)?;
        }

        for (n, instruction) in stage.instructions.iter().enumerate() {
            self.check_cancel()?;
            let started = Instant::now();
            self.emit(BuildEvent::Step {
                number: plan.first_step + 1 + n,
                total: self.total,
                text: one_line(&instruction.original),
            });
            self.instruction(&mut run, instruction).map_err(|e| self.step_error(instruction, e))?;
            self.emit(BuildEvent::StepDone { id: run.state.id()?, elapsed: started.elapsed() });
        }
        Ok(StageResult { state: run.state, key: run.key })
    }

    /// Apply one instruction to the stage.
    fn instruction(&self, run: &mut StageRun, instruction: &Instruction) -> Result<(), BuildError> {
        let escape = self.escape;
        let vars = run.vars();
        let expand = |w: &str| expand_word(w, &vars, escape).map_err(substitution);
        match &instruction.kind {
            InstructionKind::Arg(decls) => {
                for decl in decls {
                    let value = match self.request.build_args.get(&decl.name) {
                        Some(Some(v)) => Some(v.clone()),
                        _ => match &decl.default {
                            Some(d) => Some(expand(d)?),
                            None => self
                                .global_vars
                                .iter()
                                .rev()
                                .find(|(k, _)| *k == decl.name)
                                .map(|(_, v)| v.clone()),
                        },
                    };
                    if self.request.build_args.contains_key(&decl.name)
                        || self.global_declared.contains(&decl.name)
                    {
                        lock(&self.consumed).insert(decl.name.clone());
                    }
                    run.args.retain(|(k, _)| *k != decl.name);
                    run.args.push((decl.name.clone(), value.clone()));
                }
                let shown: Vec<String> = decls
                    .iter()
                    .map(|d| match run.args.iter().find(|(k, _)| *k == d.name) {
                        Some((k, Some(v))) => format!("{k}={v}"),
                        _ => d.name.clone(),
                    })
                    .collect();
                self.config_step(run, format!("ARG {}", shown.join(" ")))
            }
            InstructionKind::Env(pairs) => {
                let mut shown = Vec::new();
                for kv in pairs {
                    let key = expand(&kv.key)?;
                    let value = expand(&kv.value)?;
                    shown.push(format!("{key}={value}"));
                    run.state.container_config().set_env(&key, &value);
                }
                self.config_step(run, format!("ENV {}", shown.join(" ")))
            }
            InstructionKind::Label(pairs) => {
                let mut shown = Vec::new();
                for kv in pairs {
                    let key = expand(&kv.key)?;
                    let value = expand(&kv.value)?;
                    shown.push(format!("{key}={value}"));
                    run.state.container_config().labels.insert(key, value);
                }
                self.config_step(run, format!("LABEL {}", shown.join(" ")))
            }
            InstructionKind::Maintainer(name) => {
                run.state.config.author = Some(name.clone());
                run.state.container_config().labels.insert("maintainer".to_owned(), name.clone());
                self.config_step(run, format!("MAINTAINER {name}"))
            }
            InstructionKind::Expose(ports) => {
                let mut shown = Vec::new();
                for raw in ports {
                    for port in
                        kiln_dockerfile::expand_words(raw, &vars, escape).map_err(substitution)?
                    {
                        for p in expose_ports(&port)? {
                            shown.push(p.clone());
                            run.state
                                .container_config()
                                .exposed_ports
                                .insert(p, Default::default());
                        }
                    }
                }
                self.config_step(run, format!("EXPOSE {}", shown.join(" ")))
            }
            InstructionKind::Volume(paths) => {
                let mut shown = Vec::new();
                for raw in paths {
                    let path = expand(raw)?;
                    if path.trim().is_empty() {
                        return Err(BuildError::invalid(
                            "VOLUME specified can not be an empty string",
                        ));
                    }
                    shown.push(path.clone());
                    run.state.container_config().volumes.insert(path, Default::default());
                }
                self.config_step(run, format!("VOLUME [{}]", shown.join(" ")))
            }
            InstructionKind::User(user) => {
                let user = expand(user)?;
                run.state.container_config().user = Some(user.clone());
                self.config_step(run, format!("USER {user}"))
            }
            InstructionKind::Workdir(dir) => {
                let dir = expand(dir)?;
                let path = join_path(&run.workdir(), &dir);
                run.state.container_config().working_dir = Some(path.clone());
                self.config_step(run, format!("WORKDIR {path}"))
            }
            InstructionKind::Cmd(command) => {
                let args = self.command_args(run, command);
                run.state.container_config().cmd = Some(args.clone());
                run.cmd_set = true;
                self.config_step(run, format!("CMD {}", json_list(&args)))
            }
            InstructionKind::Entrypoint(command) => {
                let args = self.command_args(run, command);
                let cmd_set = run.cmd_set;
                let config = run.state.container_config();
                config.entrypoint = Some(args.clone());
                if !cmd_set {
                    config.cmd = None;
                }
                self.config_step(run, format!("ENTRYPOINT {}", json_list(&args)))
            }
            InstructionKind::Shell(shell) => {
                run.state.container_config().shell = shell.clone();
                self.config_step(run, format!("SHELL {}", json_list(shell)))
            }
            InstructionKind::Stopsignal(signal) => {
                let signal = expand(signal)?;
                run.state.container_config().stop_signal = Some(signal.clone());
                self.config_step(run, format!("STOPSIGNAL {signal}"))
            }
            InstructionKind::Healthcheck(check) => {
                let hc = match check {
                    Healthcheck::None => kiln_image::Healthcheck {
                        test: vec!["NONE".to_owned()],
                        ..Default::default()
                    },
                    Healthcheck::Check(c) => {
                        let test = match &c.command {
                            Command::Exec(args) => std::iter::once("CMD".to_owned())
                                .chain(args.iter().cloned())
                                .collect(),
                            Command::Shell(line) => vec!["CMD-SHELL".to_owned(), line.clone()],
                        };
                        let ns = |d: Option<std::time::Duration>| {
                            d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                        };
                        kiln_image::Healthcheck {
                            test,
                            interval: ns(c.interval),
                            timeout: ns(c.timeout),
                            start_period: ns(c.start_period),
                            start_interval: ns(c.start_interval),
                            retries: c.retries.map(i64::from),
                        }
                    }
                };
                let shown = serde_json::to_string(&hc).unwrap_or_default();
                run.state.container_config().healthcheck = Some(hc);
                self.config_step(run, format!("HEALTHCHECK {shown}"))
            }
            InstructionKind::Onbuild(onbuild) => {
                run.state.container_config().on_build.push(onbuild.expression.clone());
                self.config_step(run, format!("ONBUILD {}", onbuild.expression))
            }
            InstructionKind::Run(step) => self.run_step(run, step),
            InstructionKind::Copy(c) => self.copy_step(
                run,
                Keyword::Copy,
                &c.sources,
                &c.dest,
                c.from.as_deref(),
                c.chown.as_deref(),
                c.chmod.as_deref(),
                &c.excludes,
                c.parents,
                None,
            ),
            InstructionKind::Add(a) => {
                let checksum = a.checksum.as_deref().map(&expand).transpose()?;
                self.copy_step(
                    run,
                    Keyword::Add,
                    &a.sources,
                    &a.dest,
                    None,
                    a.chown.as_deref(),
                    a.chmod.as_deref(),
                    &a.excludes,
                    false,
                    checksum.as_deref(),
                )
            }
        }
    }

    /// A step that changes only the config: a history entry and a new key.
    fn config_step(&self, run: &mut StageRun, created_by: String) -> Result<(), BuildError> {
        run.key = Key::child(&run.key, &json!(["config", created_by]));
        self.push_history(run, created_by, true);
        Ok(())
    }

    fn push_history(&self, run: &mut StageRun, created_by: String, empty_layer: bool) {
        run.state.config.history.push(History {
            created: Some(self.created.clone()),
            created_by: Some(created_by),
            author: None,
            comment: None,
            empty_layer,
        });
        run.state.config.created = Some(self.created.clone());
    }

    /// The argv of CMD, ENTRYPOINT or a RUN: exec form as is, shell form
    /// through the stage's SHELL.
    fn command_args(&self, run: &StageRun, command: &Command) -> Vec<String> {
        match command {
            Command::Exec(args) => args.clone(),
            Command::Shell(line) if line.is_empty() => Vec::new(),
            Command::Shell(line) => {
                let mut args = self.shell(run);
                args.push(line.clone());
                args
            }
        }
    }

    fn shell(&self, run: &StageRun) -> Vec<String> {
        run.state
            .config
            .config
            .as_ref()
            .map(|c| c.shell.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned()])
    }

    fn cached(&self, run: &mut StageRun, key: &Key) -> bool {
        if run.no_cache {
            return false;
        }
        match self.index.get(key, self.worker) {
            Some(state) => {
                run.state = state;
                run.key = key.clone();
                lock(&self.visited).push(key.clone());
                self.emit(BuildEvent::Cached);
                true
            }
            None => false,
        }
    }

    /// Store the changes in `rootfs` as the stage's next layer (or none).
    fn commit_layer(
        &self,
        run: &mut StageRun,
        rootfs: &dyn Rootfs,
        mount_points: Vec<String>,
        created_by: String,
        key: Key,
    ) -> Result<(), BuildError> {
        let upper = rootfs
            .upper()
            .ok_or_else(|| BuildError::internal("the step's root has no writable layer"))?;
        let layer = WritableLayer {
            upper: upper.to_owned(),
            lowers: rootfs.lowers(),
            mount_points,
            clamp_mtime: Some(self.sde),
        };
        let stored = kiln_image::store_changes(
            self.worker.content(),
            self.worker.snapshots(),
            &layer,
            run.state.diff_ids(),
        )
        .map_err(|e| BuildError::internal(format!("cannot store the step's layer: {e}")))?;
        let empty = stored.is_none();
        if let Some((digest, size)) = stored {
            run.state.layers.push(Descriptor::new(media_type::OCI_LAYER, digest.clone(), size));
            run.state.config.rootfs.diff_ids.push(digest);
        }
        self.push_history(run, created_by, empty);
        run.key = key;
        self.index.put(&run.key, &run.state);
        lock(&self.visited).push(run.key.clone());
        Ok(())
    }

    fn run_step(&self, run: &mut StageRun, step: &kiln_dockerfile::Run) -> Result<(), BuildError> {
        let vars = run.vars();
        if step.security == Some(Security::Insecure) {
            return Err(BuildError::Invalid {
                message:
                    "RUN --security=insecure is not allowed: Kiln grants builds no entitlements"
                        .into(),
            });
        }
        let network = match step.network {
            Some(NetworkMode::None) => StepNetwork::None,
            Some(NetworkMode::Host) => StepNetwork::Host,
            Some(NetworkMode::Default) | None => match self.request.network.as_deref() {
                Some("none") => StepNetwork::None,
                Some("host") => StepNetwork::Host,
                Some("" | "default" | "bridge") | None => StepNetwork::Default,
                Some(other) => {
                    return Err(BuildError::invalid(format!(
                        "network mode {other:?} is not supported for builds (default, none or host)"
                    )))
                }
            },
        };

        // The argv, with heredoc scripts.
        let mut script: Option<(String, Vec<u8>)> = None;
        let args = match &step.command {
            Command::Exec(args) => args.clone(),
            Command::Shell(line) => {
                let mut args = self.shell(run);
                let only_heredoc = step.heredocs.len() == 1
                    && line
                        .trim()
                        .trim_start_matches(|c: char| c.is_ascii_digit())
                        .starts_with("<<")
                    && !line.trim().contains(char::is_whitespace);
                if only_heredoc {
                    let body = step.heredocs[0].content().into_owned();
                    if let Some(first) = body.lines().next().filter(|l| l.starts_with("#!")) {
                        let interpreter: Vec<String> =
                            first[2..].split_whitespace().map(str::to_owned).collect();
                        if interpreter.is_empty() {
                            args.push(body);
                        } else {
                            script = Some((SCRIPT_PATH.to_owned(), body.into_bytes()));
                            args = interpreter;
                            args.push(SCRIPT_PATH.to_owned());
                        }
                    } else {
                        args.push(body);
                    }
                } else if let Some(s) = step.shell_script() {
                    args.push(s);
                } else {
                    args.push(line.clone());
                }
                args
            }
        };
        if args.is_empty() {
            return Err(BuildError::invalid("RUN needs a command"));
        }

        // The environment: the image's, then build args the image does not
        // set, then SOURCE_DATE_EPOCH.
        let config = run.state.config.config.clone().unwrap_or_default();
        let mut env = config.env.clone();
        for (k, v) in &run.args {
            if let Some(v) = v {
                if config.env_var(k).is_none() {
                    env.push(format!("{k}={v}"));
                }
            }
        }
        if config.env_var("SOURCE_DATE_EPOCH").is_none()
            && !run.args.iter().any(|(k, _)| k == "SOURCE_DATE_EPOCH")
        {
            env.push(format!("SOURCE_DATE_EPOCH={}", self.sde));
        }
        let cwd = run.workdir();
        let user = config.user.clone().unwrap_or_default();

        // Mounts, and what of them decides the result.
        let mut mounts = Vec::new();
        let mut mount_keys = Vec::new();
        let mut secret_env = Vec::new();
        let mut keep: Vec<Box<dyn Rootfs>> = Vec::new();
        let mut temps: Vec<tempfile::TempPath> = Vec::new();
        for raw in &step.mounts {
            let m = raw.expand(&vars, self.escape).map_err(substitution)?;
            let target = m.target.clone().map(|t| join_path(&cwd, &t));
            match m.kind {
                MountType::Ssh => {
                    return Err(BuildError::Invalid {
                        message: "RUN --mount=type=ssh is not supported: Kiln does not forward SSH agents to builds".into(),
                    })
                }
                MountType::Tmpfs => {
                    let target = target.ok_or_else(|| BuildError::invalid("a tmpfs mount needs a target"))?;
                    mount_keys.push(json!({"tmpfs": target, "size": m.size}));
                    mounts.push(StepMount::Tmpfs { target, size: m.size });
                }
                MountType::Cache => {
                    let target = target.ok_or_else(|| BuildError::invalid("a cache mount needs a target"))?;
                    let id = m.id.clone().filter(|i| !i.is_empty()).unwrap_or_else(|| target.clone());
                    let dir = self.cache_mount_dir(&id, m.uid, m.gid, m.mode)?;
                    mount_keys.push(json!({"cache": target, "id": id, "readonly": m.readonly}));
                    mounts.push(StepMount::Bind { source: dir, target, readonly: m.readonly });
                }
                MountType::Secret => {
                    let id = m
                        .id
                        .clone()
                        .filter(|i| !i.is_empty())
                        .or_else(|| target.as_deref().and_then(|t| Path::new(t).file_name()).map(|n| n.to_string_lossy().into_owned()))
                        .ok_or_else(|| BuildError::invalid("a secret mount needs an id or a target"))?;
                    let Some(secret) = self.request.secrets.iter().find(|s| s.id == id) else {
                        if m.required {
                            return Err(BuildError::invalid(format!("secret {id} not found: pass it with --secret id={id},src=FILE")));
                        }
                        continue;
                    };
                    if let Some(var) = &m.env {
                        secret_env.push(format!("{var}={}", String::from_utf8_lossy(&secret.data)));
                    }
                    if m.env.is_some() && m.target.is_none() {
                        mount_keys.push(json!({"secret-env": m.env, "id": id}));
                        continue;
                    }
                    let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
                    let path = self.secret_file(&secret.data, m.uid, m.gid, m.mode)?;
                    mount_keys.push(json!({"secret": target, "id": id}));
                    mounts.push(StepMount::Bind { source: path.to_path_buf(), target, readonly: true });
                    temps.push(path);
                }
                MountType::Bind => {
                    let target = target.ok_or_else(|| BuildError::invalid("a bind mount needs a target"))?;
                    if !m.readonly {
                        return Err(BuildError::Invalid {
                            message: "RUN --mount=type=bind,rw is not supported yet: bind mounts are read-only".into(),
                        });
                    }
                    let source_rel = m.source.clone().unwrap_or_else(|| "/".to_owned());
                    let (root, origin): (PathBuf, serde_json::Value) = match m.from.as_deref() {
                        None => {
                            let digest = self.context_digest(&source_rel)?;
                            (self.context.to_owned(), json!({"context": digest}))
                        }
                        Some(from) => {
                            let (rootfs, origin) = self.mount_source(run.index, from)?;
                            let root = rootfs.path().to_owned();
                            keep.push(rootfs);
                            (root, origin)
                        }
                    };
                    let source = resolve_inside(&root, &source_rel)?;
                    mount_keys.push(json!({"bind": target, "source": source_rel, "from": origin}));
                    mounts.push(StepMount::Bind { source, target, readonly: true });
                }
            }
        }

        let created_by = format!("RUN {}", args.join(" "));
        let key = Key::child(
            &run.key,
            &json!({
                "run": args,
                "env": env,
                "cwd": cwd,
                "user": user,
                "network": format!("{network:?}"),
                "mounts": mount_keys,
                "hosts": self.request.extra_hosts,
                "shm": self.request.shm_size,
                "ulimits": self.request.ulimits,
                "script": script.as_ref().map(|(_, body)| {
                    use sha2::Digest as _;
                    crate::cache::hex(&sha2::Sha256::digest(body))
                }),
            }),
        );
        if self.cached(run, &key) {
            return Ok(());
        }
        if let Some((path, body)) = &script {
            let file = self.scratch_file(body, 0o555)?;
            mounts.push(StepMount::Bind {
                source: file.to_path_buf(),
                target: path.clone(),
                readonly: true,
            });
            temps.push(file);
        }
        env.extend(secret_env);
        let process = StepProcess {
            args,
            env,
            cwd,
            user,
            network,
            mounts,
            extra_hosts: self.request.extra_hosts.clone(),
            shm_size: self.request.shm_size,
            ulimits: self.request.ulimits.clone(),
            privileged: false,
        };
        let rootfs = self.worker.mount(run.state.diff_ids(), true)?;
        let mut tail = Tail::default();
        let quiet = self.request.quiet;
        let events = self.events;
        let mut output = |bytes: &[u8]| {
            tail.push(bytes);
            if !quiet {
                events(BuildEvent::Output(bytes.to_vec()));
            }
        };
        let result = self.worker.run(&*rootfs, &process, &mut output, self.cancel)?;
        drop(keep);
        drop(temps);
        if self.cancel.is_cancelled() {
            return Err(BuildError::Cancelled);
        }
        if result.exit_code != 0 {
            return Err(BuildError::Step {
                file: self.file_name.clone(),
                line: 0,
                instruction: String::new(),
                message: format!("exit code {}", result.exit_code),
                kind: ErrorKind::InvalidArgument,
                output_tail: tail.lines(),
            });
        }
        self.commit_layer(run, &*rootfs, result.mount_points, created_by, key)
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_step(
        &self,
        run: &mut StageRun,
        keyword: Keyword,
        sources: &[Source],
        dest: &str,
        from: Option<&str>,
        chown: Option<&str>,
        chmod: Option<&str>,
        excludes: &[String],
        parents: bool,
        checksum: Option<&str>,
    ) -> Result<(), BuildError> {
        let vars = run.vars();
        let expand = |w: &str| expand_word(w, &vars, self.escape).map_err(substitution);
        let fail = |e: copy::CopyError| BuildError::Failed {
            kind: e.kind(),
            message: format!("{keyword} failed: {}", with_causes(&e)),
        };
        let dest_raw = expand(dest)?;
        let dest = {
            let joined = join_path(&run.workdir(), &dest_raw);
            if (dest_raw.ends_with('/') || dest_raw == ".") && !joined.ends_with('/') {
                format!("{joined}/")
            } else {
                joined
            }
        };
        let chown = chown.map(expand).transpose()?;
        let mode = match chmod.map(expand).transpose()? {
            None => None,
            Some(text) => Some(
                u32::from_str_radix(&text, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(|| {
                    BuildError::invalid(format!(
                        "invalid --chmod {text:?}: Kiln takes octal modes (0755)"
                    ))
                })?,
            ),
        };
        let excludes: Vec<String> = excludes.iter().map(|e| expand(e)).collect::<Result<_, _>>()?;

        let heredocs: Vec<&kiln_dockerfile::Heredoc> = sources
            .iter()
            .filter_map(|s| if let Source::Heredoc(h) = s { Some(h) } else { None })
            .collect();
        let mut paths = Vec::new();
        let mut urls = Vec::new();
        for source in sources {
            if let Source::Path(p) = source {
                let p = expand(p)?;
                if is_git_source(&p) || (is_url(&p) && keyword != Keyword::Add) {
                    return Err(BuildError::Invalid {
                        message: format!(
                            "{keyword} of a Git repository or URL ({p}) is not supported"
                        ),
                    });
                }
                if is_url(&p) {
                    urls.push(p);
                } else {
                    paths.push(p);
                }
            }
        }
        let kinds = [!heredocs.is_empty(), !paths.is_empty(), !urls.is_empty()];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(BuildError::Invalid {
                message: format!(
                    "{keyword} of heredocs, URLs and files mixed in one instruction is not supported yet"
                ),
            });
        }
        if checksum.is_some() && urls.is_empty() {
            return Err(BuildError::invalid("ADD --checksum applies only to URL sources"));
        }

        // Where the sources are read from.
        let mut _keep: Option<Box<dyn Rootfs>> = None;
        let mut _heredoc_dir: Option<tempfile::TempDir> = None;
        let mut _download_dir: Option<tempfile::TempDir> = None;
        let (source_root, from_context, origin): (PathBuf, bool, serde_json::Value) =
            if !urls.is_empty() {
                let (dir, names) = self.download(&urls, checksum)?;
                paths = names;
                let root = dir.path().to_owned();
                _download_dir = Some(dir);
                (root, true, json!({"urls": urls}))
            } else if !heredocs.is_empty() {
                let dir = tempfile::tempdir_in(self.scratch()).map_err(|e| {
                    BuildError::internal(format!("cannot make a directory for heredocs: {e}"))
                })?;
                for h in &heredocs {
                    let name = Path::new(&h.name);
                    if name.components().count() != 1 || h.name == ".." {
                        return Err(BuildError::invalid(format!(
                            "invalid heredoc file name {:?}",
                            h.name
                        )));
                    }
                    std::fs::write(dir.path().join(name), h.content().as_bytes()).map_err(|e| {
                        BuildError::internal(format!("cannot write heredoc {}: {e}", h.name))
                    })?;
                    paths.push(h.name.clone());
                }
                let root = dir.path().to_owned();
                _heredoc_dir = Some(dir);
                (root, true, json!("heredoc"))
            } else {
                match from {
                    None => (self.context.to_owned(), true, json!("context")),
                    Some(from) => {
                        let from = expand(from)?;
                        let (rootfs, origin) = self.mount_source(run.index, &from)?;
                        let root = rootfs.path().to_owned();
                        _keep = Some(rootfs);
                        (root, false, origin)
                    }
                }
            };
        let mut request = CopyRequest {
            source_root: &source_root,
            from_context,
            sources: paths.clone(),
            dest: dest.clone(),
            owner: None,
            mode,
            excludes: excludes.clone(),
            parents,
            // Docker unpacks local archives only, never downloaded ones.
            extract_archives: keyword == Keyword::Add && urls.is_empty(),
        };
        let selection = copy::select(&request).map_err(fail)?;
        let digest = selection.digest().map_err(fail)?;
        let mut shown = Vec::new();
        if let Some(c) = &chown {
            shown.push(format!("--chown={c}"));
        }
        if let Some(m) = mode {
            shown.push(format!("--chmod={m:o}"));
        }
        shown.extend(paths.iter().cloned());
        shown.push(dest.clone());
        let created_by = format!("{keyword} {}", shown.join(" "));
        let key = Key::child(
            &run.key,
            &json!({
                "copy": keyword.as_str(),
                "sources": paths,
                "dest": dest,
                "chown": chown,
                "chmod": mode,
                "excludes": excludes,
                "parents": parents,
                "from": origin,
                "content": digest,
            }),
        );
        if self.cached(run, &key) {
            return Ok(());
        }
        let rootfs = self.worker.mount(run.state.diff_ids(), true)?;
        // The owner is resolved in the image being built (its passwd), so
        // the selection is made again with it: the key only needed the
        // --chown text.
        let selection = match &chown {
            Some(spec) => {
                request.owner = Some(resolve_owner(spec, rootfs.path())?);
                copy::select(&request).map_err(fail)?
            }
            None => selection,
        };
        copy::apply(&selection, &request, rootfs.path()).map_err(fail)?;
        self.commit_layer(run, &*rootfs, Vec::new(), created_by, key)
    }

    /// A read-only root of the stage or image `from` names, and what
    /// identifies its content for the cache.
    fn mount_source(
        &self,
        current: usize,
        from: &str,
    ) -> Result<(Box<dyn Rootfs>, serde_json::Value), BuildError> {
        if let Some(j) = self.file.find_stage(from).filter(|&j| j < current) {
            let stage = self.wait_stage(j)?;
            let rootfs = self.worker.mount(stage.state.diff_ids(), false)?;
            return Ok((rootfs, json!({"stage": stage.key.0})));
        }
        if self.file.find_stage(from).is_some() {
            return Err(BuildError::invalid(format!(
                "stage {from:?} must be defined before the stage that uses it"
            )));
        }
        let image = self.resolve_image(from)?;
        let rootfs = self.worker.mount(&image.config.rootfs.diff_ids, false)?;
        Ok((rootfs, json!({"image": image.id.to_string()})))
    }

    /// Download `urls` for `ADD` into a fresh directory, each under the
    /// name it gets in the image (mode 0600, as Docker's); the directory
    /// and those names. `checksum` (`sha256:…`) must match the download.
    fn download(
        &self,
        urls: &[String],
        checksum: Option<&str>,
    ) -> Result<(tempfile::TempDir, Vec<String>), BuildError> {
        use std::os::unix::fs::PermissionsExt;
        let parent = self.worker.cache_dir().join("downloads");
        let fail =
            |e: std::io::Error| BuildError::internal(format!("cannot store a download: {e}"));
        std::fs::create_dir_all(&parent).map_err(fail)?;
        let dir = tempfile::tempdir_in(&parent).map_err(fail)?;
        let mut names = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let partial = dir.path().join(format!(".download-{i}"));
            let file = self.worker.download(url, &partial)?;
            if let Some(expected) = checksum {
                if expected != file.digest {
                    return Err(BuildError::Invalid {
                        message: format!(
                            "ADD {url}: checksum mismatch: expected {expected}, got {}",
                            file.digest
                        ),
                    });
                }
            }
            let name = file
                .file_name
                .filter(|n| !n.is_empty() && n != "." && n != ".." && !n.contains('/'))
                .ok_or_else(|| {
                    BuildError::invalid(format!("cannot determine a file name for ADD {url}"))
                })?;
            if names.contains(&name) {
                return Err(BuildError::invalid(format!("ADD downloads two files named {name}")));
            }
            let path = dir.path().join(&name);
            std::fs::rename(&partial, &path).map_err(fail)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(fail)?;
            names.push(name);
        }
        Ok((dir, names))
    }

    /// The content hash of `rel` in the context, for a bind mount's key.
    fn context_digest(&self, rel: &str) -> Result<String, BuildError> {
        let request = CopyRequest {
            source_root: self.context,
            from_context: true,
            sources: vec![rel.to_owned()],
            dest: "/".to_owned(),
            owner: None,
            mode: None,
            excludes: Vec::new(),
            parents: false,
            extract_archives: false,
        };
        let fail = |e: copy::CopyError| BuildError::Failed {
            kind: e.kind(),
            message: format!("RUN --mount: {}", with_causes(&e)),
        };
        copy::select(&request).map_err(fail)?.digest().map_err(fail)
    }

    fn scratch(&self) -> &Path {
        self.worker.scratch_dir()
    }

    /// A file holding `data` in the scratch directory, removed when the
    /// returned path is dropped.
    fn scratch_file(&self, data: &[u8], mode: u32) -> Result<tempfile::TempPath, BuildError> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let fail =
            |e: std::io::Error| BuildError::internal(format!("cannot write a temporary file: {e}"));
        std::fs::create_dir_all(self.scratch()).map_err(fail)?;
        let mut file = tempfile::NamedTempFile::new_in(self.scratch()).map_err(fail)?;
        file.write_all(data).map_err(fail)?;
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(mode))
            .map_err(fail)?;
        Ok(file.into_temp_path())
    }

    fn secret_file(
        &self,
        data: &[u8],
        uid: Option<u32>,
        gid: Option<u32>,
        mode: Option<u32>,
    ) -> Result<tempfile::TempPath, BuildError> {
        let path = self.scratch_file(data, mode.unwrap_or(0o400))?;
        std::os::unix::fs::chown(&path, Some(uid.unwrap_or(0)), Some(gid.unwrap_or(0)))
            .map_err(|e| BuildError::internal(format!("cannot own a secret file: {e}")))?;
        Ok(path)
    }

    /// The directory of cache mount `id`, made on first use.
    fn cache_mount_dir(
        &self,
        id: &str,
        uid: Option<u32>,
        gid: Option<u32>,
        mode: Option<u32>,
    ) -> Result<PathBuf, BuildError> {
        use sha2::Digest as _;
        use std::os::unix::fs::PermissionsExt;
        let name = crate::cache::hex(&sha2::Sha256::digest(id.as_bytes()));
        let dir = self.worker.cache_dir().join("mounts").join(&name);
        {
            let mut mounts = lock(&self.mounts);
            if !mounts.iter().any(|(n, _)| *n == name) {
                mounts.push((name.clone(), dir.clone()));
            }
        }
        if !dir.is_dir() {
            let fail = |e: std::io::Error| {
                BuildError::internal(format!("cannot make cache mount {id}: {e}"))
            };
            std::fs::create_dir_all(&dir).map_err(fail)?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode.unwrap_or(0o755)))
                .map_err(fail)?;
            std::os::unix::fs::chown(&dir, Some(uid.unwrap_or(0)), Some(gid.unwrap_or(0)))
                .map_err(fail)?;
        }
        Ok(dir)
    }

    /// Write the target's image and tag it.
    fn commit(&self, state: &ImageState) -> Result<BuildOutcome, BuildError> {
        let mut state = state.clone();
        if !self.request.labels.is_empty() {
            let labels = state.container_config();
            for (k, v) in &self.request.labels {
                labels.labels.insert(k.clone(), v.clone());
            }
        }
        state.config.created = Some(self.created.clone());
        let references: Vec<ImageRef> = self
            .request
            .tags
            .iter()
            .map(|t| {
                t.parse::<ImageRef>()
                    .map_err(|e| BuildError::invalid(format!("invalid tag {t:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let content = self.worker.content();
        let store = |bytes: &[u8]| {
            content
                .put(bytes)
                .map_err(|e| BuildError::internal(format!("cannot store the image: {e}")))
        };
        let config_json = state.config.to_json();
        let config_digest = store(&config_json)?;
        let manifest = ImageManifest::oci(
            Descriptor::new(
                media_type::OCI_CONFIG,
                config_digest.clone(),
                config_json.len() as u64,
            ),
            state.layers.clone(),
        );
        let manifest_digest = store(&manifest.to_json())?;
        let diff_ids = state.config.rootfs.diff_ids.clone();
        let record = ImageRecord {
            id: config_digest.clone(),
            manifest: manifest_digest,
            config: config_digest.clone(),
            layers: state.layers.iter().map(|l| l.digest.clone()).collect(),
            chain_ids: chain_ids(&diff_ids),
            diff_ids,
            size: state.layers.iter().map(|l| l.size).sum(),
            created: Some(
                kiln_types::time::UtcTime::from_unix(kiln_types::time::now().0).rfc3339(),
            ),
        };
        if !self.record {
            *lock(&self.last) = Some(state);
            return Ok(BuildOutcome { id: record.id, tags: Vec::new() });
        }
        self.worker
            .metadata()
            .put_image(&record, &references)
            .map_err(|e| BuildError::internal(format!("cannot record the image: {e}")))?;
        (self.events)(BuildEvent::Built { id: record.id.clone() });
        let tags: Vec<String> = references.iter().map(|r| r.normalized().familiar()).collect();
        if !self.request.quiet {
            for t in &tags {
                (self.events)(BuildEvent::Tagged { reference: t.clone() });
            }
        }
        Ok(BuildOutcome { id: record.id, tags })
    }
}

/// An error with its causes: `cannot write /x: Permission denied`.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Docker's predefined proxy args, usable without ARG.
fn is_predefined_arg(name: &str) -> bool {
    matches!(
        name.to_ascii_uppercase().as_str(),
        "HTTP_PROXY" | "HTTPS_PROXY" | "FTP_PROXY" | "NO_PROXY" | "ALL_PROXY" | "SOURCE_DATE_EPOCH"
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `linux/amd64` matches `linux/amd64` and `linux/amd64/v1`-less spellings.
fn platform_matches(wanted: &str, host: &str) -> bool {
    let norm = |p: &str| {
        let p = p.to_ascii_lowercase();
        let mut parts: Vec<&str> = p.split('/').collect();
        if parts.len() == 1 {
            parts.insert(0, "linux");
        }
        let arch = match parts.get(1).copied() {
            Some("x86_64" | "x86-64") => "amd64",
            Some("aarch64") => "arm64",
            Some(a) => a,
            None => "",
        };
        format!("{}/{arch}", parts[0])
    };
    norm(wanted) == norm(host)
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// A Git source of `ADD` (BuildKit clones these; Kiln does not yet).
fn is_git_source(source: &str) -> bool {
    let repo = source.split_once('#').map_or(source, |(r, _)| r);
    source.starts_with("git@")
        || source.starts_with("git://")
        || (is_url(repo) && repo.ends_with(".git"))
}

/// `dir` joined to `base` unless absolute, cleaned of `.` and `..`
/// (which never climb above `/`).
fn join_path(base: &str, dir: &str) -> String {
    let joined = if dir.starts_with('/') { dir.to_owned() } else { format!("{base}/{dir}") };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `rel` inside `root`, refusing what climbs out of it.
fn resolve_inside(root: &Path, rel: &str) -> Result<PathBuf, BuildError> {
    let mut path = root.to_owned();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(BuildError::invalid(format!(
                    "forbidden path outside the build context: {rel}"
                )))
            }
            p => path.push(p),
        }
    }
    let canonical = path
        .canonicalize()
        .map_err(|_| BuildError::invalid(format!("mount source {rel} not found")))?;
    let root = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    if !canonical.starts_with(&root) {
        return Err(BuildError::invalid(format!(
            "forbidden path outside the build context: {rel}"
        )));
    }
    Ok(canonical)
}

/// `80`, `80/udp`, `8000-8002` → `80/tcp`, `80/udp`, `8000/tcp` …
fn expose_ports(spec: &str) -> Result<Vec<String>, BuildError> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(BuildError::invalid(format!("invalid proto: {proto}")));
    }
    let bad = || BuildError::invalid(format!("invalid containerPort: {ports}"));
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => {
            (a.parse::<u16>().map_err(|_| bad())?, b.parse::<u16>().map_err(|_| bad())?)
        }
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if end < start || end - start > 10_000 {
        return Err(bad());
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

fn json_list(args: &[String]) -> String {
    serde_json::to_string(args).unwrap_or_default()
}

/// An instruction as one line: continuations joined.
fn one_line(original: &str) -> String {
    let text = original.replace("\\\n", " ");
    match text.split_once('\n') {
        Some((first, _)) if original.contains("<<") => first.trim().to_owned(),
        _ => text.trim().to_owned(),
    }
}

/// Reads the Dockerfile from the context, refusing paths that leave it.
fn read_dockerfile(context: &Path, name: &str) -> Result<String, BuildError> {
    let path = resolve_inside(context, name).map_err(|_| {
        BuildError::invalid(format!(
            "failed to read dockerfile: open {name}: no such file or directory"
        ))
    })?;
    let bytes = std::fs::read(&path)
        .map_err(|e| BuildError::invalid(format!("failed to read dockerfile {name}: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|_| BuildError::invalid(format!("dockerfile {name} is not UTF-8 text")))
}

/// The last lines of a step's output.
#[derive(Debug, Default)]
struct Tail {
    lines: std::collections::VecDeque<String>,
    partial: Vec<u8>,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                self.lines.push_back(line);
                if self.lines.len() > TAIL_LINES {
                    self.lines.pop_front();
                }
            } else if self.partial.len() < 4096 {
                self.partial.push(b);
            }
        }
    }

    fn lines(mut self) -> Vec<String> {
        if !self.partial.is_empty() {
            self.lines.push_back(String::from_utf8_lossy(&self.partial).into_owned());
        }
        self.lines.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_and_never_climb_above_root() {
        assert_eq!(join_path("/app", "src"), "/app/src");
        assert_eq!(join_path("/app", "/etc"), "/etc");
        assert_eq!(join_path("/app", "../../.."), "/");
        assert_eq!(join_path("/", "."), "/");
        assert_eq!(join_path("/a/b", "./c/../d"), "/a/b/d");
    }

    #[test]
    fn exposed_ports_take_docker_forms() {
        assert_eq!(expose_ports("80").expect("80"), ["80/tcp"]);
        assert_eq!(expose_ports("53/udp").expect("udp"), ["53/udp"]);
        assert_eq!(expose_ports("8000-8002").expect("range"), ["8000/tcp", "8001/tcp", "8002/tcp"]);
        assert!(expose_ports("abc").is_err());
        assert!(expose_ports("80/xyz").is_err());
    }

    #[test]
    fn platforms_match_their_spellings() {
        assert!(platform_matches("linux/amd64", "linux/amd64"));
        assert!(platform_matches("linux/x86_64", "linux/amd64"));
        assert!(platform_matches("amd64", "linux/amd64"));
        assert!(!platform_matches("linux/arm64", "linux/amd64"));
    }

    #[test]
    fn output_tail_keeps_the_last_lines() {
        let mut tail = Tail::default();
        for i in 0..30 {
            tail.push(format!("line {i}\n").as_bytes());
        }
        tail.push(b"partial");
        let lines = tail.lines();
        assert_eq!(lines.len(), TAIL_LINES + 1);
        assert_eq!(lines.last().map(String::as_str), Some("partial"));
        assert_eq!(lines[0], "line 10");
    }
}
