//! The scheduler: builds the selected images against the engine, each as soon as the
//! images it depends on are built, at most `jobs` at a time, the most critical first.
//!
//! - An image whose content tag (see [`crate::identity`]) exists is up to date: on the
//!   engine, it is reused; in its registry, it is pulled, or with `push` only tagged
//!   there (nothing is pulled); unless `rebuild`.
//! - Every image the run builds or reuses, and every outside image it builds on, carries
//!   the run's pin (see [`crate::pin`]) from the moment the run uses it: the Dockerfile
//!   a build sends names its dependencies and bases by pin, so no tag moved by someone
//!   else can slip in, and no `clean` or `prune` removes them while the run needs them.
//!   The run removes its pins at the end, and those that earlier runs left behind at the
//!   start.
//! - A build that fails because the engine lost an image to someone else's removal (a
//!   race inside Engine 20.10's classic builder) runs again, up to [`BUILD_ATTEMPTS`]
//!   times.
//! - An image's tags move only after its build succeeded and its context did not change
//!   during the build, and are never left half applied: tagging is not interrupted.
//! - A failure skips the failed image's dependents; other images go on, unless
//!   `fail_fast`, which stops starting builds.
//! - Cancelling stops starting builds and drops the ones in flight (the engine aborts a
//!   build whose client goes away, and removes its containers: builds run with
//!   `rm` and `forcerm`).

use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_context::HashCache;
use kiln_engine::{BuildSpec, Builder, Engine, StepState};
use kiln_graph::Graph;
use kiln_manifest::{Project, Span, StageInput};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::bases::Bases;
use crate::event::{Event, Origin, TimedEvent};
use crate::identity;
use crate::labels::GitInfo;
use crate::pin::{self, Liveness};
use crate::prepare::{self, DOCKERFILE, Prepared, Recipe};
use crate::schedule::Schedule;

#[derive(Debug, Clone)]
pub struct Options {
    pub jobs: usize,
    pub builder: Builder,
    /// `none`, `host`, or the engine's default.
    pub network: Option<String>,
    pub fail_fast: bool,
    pub pull: bool,
    /// Build even when the image's content tag exists.
    pub rebuild: bool,
    /// Build without the engine's layer cache (implies `rebuild`).
    pub no_cache: bool,
    /// Push what is built or up to date, with its content tag; registry hits are tagged
    /// in the registry, not pulled.
    pub push: bool,
    /// Never ask a registry whether an image exists there.
    pub offline: bool,
    /// A tag of each image's own repository whose layers may serve as cache.
    pub cache_from: Option<String>,
    /// Embed BuildKit's cache metadata in the images (`--cache-to inline`).
    pub cache_to_inline: bool,
    /// Extra labels for every image (`--label`).
    pub labels: Vec<(String, String)>,
}

/// How an image's build ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Built { id: String, size: u64, up_to_date: bool, origin: Origin },
    Failed,
    Skipped(String),
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub image: usize,
    pub status: Status,
    pub duration: Duration,
}

#[derive(Debug, Clone)]
pub struct Summary {
    /// In build order, one per selected image.
    pub outcomes: Vec<Outcome>,
    pub wall: Duration,
    pub interrupted: bool,
}

impl Summary {
    pub fn all_built(&self) -> bool {
        self.outcomes.iter().all(|o| matches!(o.status, Status::Built { .. }))
    }
}

/// How many times a build runs when the engine keeps losing an image under it.
pub const BUILD_ATTEMPTS: u32 = 3;

/// What a build task reports back.
enum TaskResult {
    Built { id: String, size: u64, origin: Origin, dependency: Dependency },
    Failed,
    Cancelled,
}

/// A finished image as its dependents use it.
#[derive(Debug, Clone)]
struct Dependency {
    key: String,
    /// The run's pin of it, when it is on this engine.
    pin: Option<String>,
    /// Its content tag, to pull it from when it is not.
    content: String,
}

/// Everything a task needs, shared.
struct Shared {
    /// This run: the owner of its pins.
    run: pin::Run,
    project: Arc<Project>,
    graph: Arc<Graph>,
    engine: Engine,
    options: Options,
    events: UnboundedSender<TimedEvent>,
    git: GitInfo,
    project_id: String,
    hashes: Arc<HashCache>,
    registry: Arc<kiln_registry::Client>,
    bases: Bases,
    /// Tag → image ID: the engine's tags when the run started, and those it set since.
    tags: std::sync::Mutex<HashMap<String, String>>,
}

impl Shared {
    fn send(&self, event: Event) {
        // The receiver (the display) going away does not stop the build.
        let _ = self.events.send(TimedEvent::now(event));
    }

    fn tags(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.tags.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub async fn run(
    project: Arc<Project>,
    graph: Arc<Graph>,
    schedule: Schedule,
    engine: Engine,
    options: Options,
    events: UnboundedSender<TimedEvent>,
    cancel: CancellationToken,
) -> Summary {
    let started = Instant::now();
    let hashes_file = crate::history::cache_file(project.manifest_path(), "hashes");
    let registry = Arc::new(kiln_registry::Client::new(engine.insecure_registries().await));
    let shared = Arc::new(Shared {
        run: pin::Run::current(),
        git: GitInfo::read(&project.root_dir),
        project_id: identity::project_id(&project),
        hashes: Arc::new(HashCache::load(hashes_file)),
        project: project.clone(),
        graph: graph.clone(),
        engine,
        options: options.clone(),
        events,
        bases: Bases::new(project.lock.clone(), registry.clone()),
        registry,
        tags: std::sync::Mutex::new(HashMap::new()),
    });
    remove_pins(&shared.engine, |run| run.liveness() == Liveness::Gone).await;
    // One listing answers every "is it up to date" of the run.
    if let Ok(images) = shared.engine.tagged_images().await {
        *shared.tags() =
            images.into_iter().flat_map(|i| i.tags.into_iter().map(move |t| (t, i.id.clone()))).collect();
    }
    let selected = &schedule.selected;
    let position: HashMap<usize, usize> = schedule.images.iter().enumerate().map(|(p, &i)| (i, p)).collect();
    let mut waiting: HashMap<usize, usize> = schedule
        .images
        .iter()
        .map(|&i| (i, graph.dependencies(i).iter().filter(|d| selected[**d]).count()))
        .collect();
    // Ready images, most critical first, then in build order.
    let mut ready: BinaryHeap<(OrdF64, std::cmp::Reverse<usize>, usize)> = BinaryHeap::new();
    for &i in &schedule.images {
        shared.send(Event::Queued { image: project.images[i].name.clone() });
        if waiting[&i] == 0 {
            ready.push((OrdF64(schedule.priority[i]), std::cmp::Reverse(position[&i]), i));
        }
    }
    let mut outcomes: HashMap<usize, Outcome> = HashMap::new();
    let mut built: HashMap<usize, Dependency> = HashMap::new();
    let mut tasks: JoinSet<(usize, Duration, TaskResult)> = JoinSet::new();
    let mut stop_reason: Option<String> = None;
    let mut interrupted = false;

    loop {
        while stop_reason.is_none() && tasks.len() < options.jobs.max(1) {
            let Some((_, _, next)) = ready.pop() else { break };
            let shared = shared.clone();
            let cancel = cancel.clone();
            let dependencies: HashMap<usize, Dependency> = graph
                .dependencies(next)
                .iter()
                .filter_map(|d| built.get(d).map(|r| (*d, r.clone())))
                .collect();
            tasks.spawn(async move {
                let begin = Instant::now();
                let result = build_one(&shared, next, dependencies, &cancel).await;
                (next, begin.elapsed(), result)
            });
        }
        if tasks.is_empty() {
            break;
        }
        let joined = tokio::select! {
            joined = tasks.join_next() => joined,
            () = cancel.cancelled(), if !interrupted => {
                interrupted = true;
                stop_reason = Some("interrupted".to_owned());
                continue;
            }
        };
        let Some(Ok((image, duration, result))) = joined else { continue };
        let status = match result {
            TaskResult::Built { id, size, origin, dependency } => {
                built.insert(image, dependency);
                for dependent in graph.dependents(image) {
                    if let Some(count) = waiting.get_mut(&dependent) {
                        *count -= 1;
                        if *count == 0 && !outcomes.contains_key(&dependent) {
                            ready.push((
                                OrdF64(schedule.priority[dependent]),
                                std::cmp::Reverse(position[&dependent]),
                                dependent,
                            ));
                        }
                    }
                }
                Status::Built { id, size, up_to_date: origin != Origin::Built, origin }
            }
            TaskResult::Failed => {
                let name = &project.images[image].name;
                skip_dependents(&shared, &graph, selected, image, &format!("`{name}` failed"), &mut outcomes);
                if options.fail_fast && stop_reason.is_none() {
                    stop_reason = Some(format!("not started: `{name}` failed and --fail-fast is on"));
                }
                Status::Failed
            }
            TaskResult::Cancelled => Status::Cancelled,
        };
        outcomes.insert(image, Outcome { image, status, duration });
    }

    // A task may see the cancellation before this loop does.
    if cancel.is_cancelled() {
        interrupted = true;
        stop_reason.get_or_insert_with(|| "interrupted".to_owned());
    }
    // Whatever never started.
    for &i in &schedule.images {
        outcomes.entry(i).or_insert_with(|| {
            let reason = stop_reason.clone().unwrap_or_else(|| "not started".to_owned());
            shared.send(Event::Skipped { image: project.images[i].name.clone(), reason: reason.clone() });
            Outcome { image: i, status: Status::Skipped(reason), duration: Duration::ZERO }
        });
    }
    // The pins were only for this run. Looked up rather than remembered: a build the
    // run stopped waiting for may still have finished, pinned.
    remove_pins(&shared.engine, |run| *run == shared.run).await;
    let hashes = shared.hashes.clone();
    let _ = tokio::task::spawn_blocking(move || hashes.save()).await;
    let ordered = schedule.images.iter().filter_map(|i| outcomes.remove(i)).collect();
    Summary { outcomes: ordered, wall: started.elapsed(), interrupted }
}

/// Removes the pins whose run `matches`. Only the tag goes, unless it is an image's last
/// one (a build whose run died before tagging it): then that image goes too, but never
/// its parents, which other builds may be using as cache.
async fn remove_pins(engine: &Engine, matches: impl Fn(&pin::Run) -> bool) {
    let Ok(tags) = engine.tags_starting_with(pin::PREFIX).await else { return };
    for (_, tag) in tags {
        if pin::Run::of_pin(&tag).is_some_and(|run| matches(&run)) {
            let _ = engine.remove(&tag, false, false).await;
        }
    }
}

/// Marks every image that depends on `failed`, directly or not, as skipped.
fn skip_dependents(
    shared: &Shared,
    graph: &Graph,
    selected: &[bool],
    failed: usize,
    reason: &str,
    outcomes: &mut HashMap<usize, Outcome>,
) {
    let mut stack = graph.dependents(failed);
    while let Some(image) = stack.pop() {
        if !selected[image] || outcomes.contains_key(&image) {
            continue;
        }
        let name = shared.project.images[image].name.clone();
        let reason = format!("skipped: {reason}");
        shared.send(Event::Skipped { image: name, reason: reason.clone() });
        outcomes.insert(image, Outcome { image, status: Status::Skipped(reason), duration: Duration::ZERO });
        stack.extend(graph.dependents(image));
    }
}

/// A build's failure, reported as an event.
struct Failure {
    error: String,
    step: Option<String>,
    span: Option<Span>,
    log: String,
}

impl Failure {
    fn new(error: String, span: Option<Span>) -> Self {
        Self { error, step: None, span, log: String::new() }
    }
}

async fn build_one(
    shared: &Arc<Shared>,
    index: usize,
    dependencies: HashMap<usize, Dependency>,
    cancel: &CancellationToken,
) -> TaskResult {
    let project = &shared.project;
    let name = project.images[index].name.clone();
    let begin = Instant::now();
    match build_or_reuse(shared, index, dependencies, cancel, begin).await {
        Ok(result) => result,
        Err(failure) => {
            shared.send(Event::Failed {
                image: name,
                duration_ms: millis(begin.elapsed()),
                error: failure.error,
                step: failure.step,
                location: failure.span.map(|s| project.sources.location(s)),
                span: failure.span,
                log: failure.log,
            });
            TaskResult::Failed
        }
    }
}

async fn build_or_reuse(
    shared: &Arc<Shared>,
    index: usize,
    dependencies: HashMap<usize, Dependency>,
    cancel: &CancellationToken,
    begin: Instant,
) -> Result<TaskResult, Failure> {
    let image = &shared.project.images[index];
    let name = image.name.clone();
    let log = |text: String| shared.send(Event::Log { image: name.clone(), step: None, text });

    let bases = base_identities(shared, index).await?;
    let keys: HashMap<usize, String> = dependencies.iter().map(|(i, d)| (*i, d.key.clone())).collect();
    // Reading and hashing the context is file IO: off the async threads.
    let prepared = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            let recipe = Recipe {
                project: &shared.project,
                graph: &shared.graph,
                project_id: &shared.project_id,
                builder: shared.options.builder,
                git: &shared.git,
                extra_labels: &shared.options.labels,
                hashes: &shared.hashes,
            };
            prepare::prepare(&recipe, index, &keys, &bases)
        })
        .await
    };
    let prepared = match prepared {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(err)) => {
            return Err(Failure::new(
                format!("cannot read the build context `{}`: {err}", image.context),
                None,
            ));
        }
        Err(err) => return Err(Failure::new(format!("internal error: {err}"), None)),
    };
    let pin = shared.run.pin(&image.name, &prepared.key);
    let content = identity::content_tag(&image.repository, &prepared.key);

    if !(shared.options.rebuild || shared.options.no_cache) {
        // On the engine. Pinned first, so that no `clean` or `prune` removes it from now
        // on; if one removed it since the run looked, it is looked for elsewhere.
        let existing = shared.tags().get(&content).cloned();
        if let Some(id) = existing {
            if shared.engine.tag(&id, &pin).await.is_ok() {
                shared.send(Event::Started { image: name.clone() });
                return finish(shared, index, &prepared, id, Origin::Local, Some(pin), begin).await;
            }
            shared.tags().remove(&content);
        }
        if let Some(found) = in_registry(shared, index, &content, &log).await {
            shared.send(Event::Started { image: name.clone() });
            if shared.options.push {
                return tag_in_registry(shared, index, &prepared, &content, &found, begin).await;
            }
            let id = pull(shared, &content, &log).await.map_err(|e| Failure::new(e, None))?;
            shared.engine.tag(&id, &pin).await.map_err(|e| Failure::new(e.to_string(), None))?;
            return finish(shared, index, &prepared, id, Origin::Pulled, Some(pin), begin).await;
        }
    }
    if cancel.is_cancelled() {
        return Ok(TaskResult::Cancelled);
    }

    shared.send(Event::Started { image: name.clone() });
    let (dependency_pins, base_pins) = pin_inputs(shared, index, &dependencies, &prepared, &log).await?;
    let dockerfile = prepare::render(&shared.project, &shared.graph, index, &dependency_pins, &base_pins);
    let mut build_args: HashMap<String, String> =
        image.build_args.iter().map(|kv| (kv.key.value.clone(), kv.value.value.clone())).collect();
    if shared.options.cache_to_inline {
        build_args.insert("BUILDKIT_INLINE_CACHE".to_owned(), "1".to_owned());
    }
    let spec = BuildSpec {
        dockerfile: DOCKERFILE.to_owned(),
        builder: shared.options.builder,
        build_args,
        labels: prepared.labels.clone().into_iter().collect(),
        platform: image.platform.as_ref().map(|p| p.value.clone()),
        network: shared.options.network.clone(),
        target: None,
        pull: shared.options.pull,
        no_cache: shared.options.no_cache,
        cache_from: shared
            .options
            .cache_from
            .iter()
            .map(|tag| format!("{}:{tag}", image.repository))
            .collect(),
        session: format!("kiln-{}-{}-{}", std::process::id(), index, millis(begin.elapsed())),
        tag: Some(pin.clone()),
    };
    let events = shared.clone();
    let step_image = name.clone();
    // A step is reported once, when first seen (BuildKit may report a quick step only
    // once it is already done).
    let mut seen = std::collections::HashSet::new();
    let mut emit = move |event: kiln_engine::BuildEvent| match event {
        kiln_engine::BuildEvent::Step { id, name: step, state } => {
            if seen.insert(id) {
                events.send(Event::Step {
                    image: step_image.clone(),
                    step,
                    cached: state == StepState::Cached,
                });
            }
        }
        kiln_engine::BuildEvent::Log { step, text } => {
            if !text.trim().is_empty() {
                events.send(Event::Log { image: step_image.clone(), step, text });
            }
        }
    };
    let mut attempt = 1;
    let result = loop {
        let tar = prepared.context.tar_stream(
            prepare::CONTEXT_FOLDER,
            vec![(DOCKERFILE.to_owned(), dockerfile.text.clone().into_bytes())],
        );
        let result = tokio::select! {
            result = shared.engine.build(&spec, tar, &mut emit) => result,
            () = cancel.cancelled() => return Ok(TaskResult::Cancelled),
        };
        match result {
            Err(err) if err.lost_image && attempt < BUILD_ATTEMPTS => {
                attempt += 1;
                log(format!(
                    "kiln: the engine lost an image during the build ({}), most likely removed by another client meanwhile; building again (attempt {attempt} of {BUILD_ATTEMPTS})\n",
                    err.message
                ));
            }
            result => break result,
        }
    };
    let id = match result {
        Ok(id) => id,
        Err(err) => {
            let origin = err.step.as_deref().and_then(|s| dockerfile.step_origin(s));
            return Err(Failure {
                error: err.message,
                step: err.step,
                span: origin.map(|o| o.span),
                log: err.log,
            });
        }
    };
    // What was sent must be what the key says: a file edited during the build makes an
    // image that no key describes.
    if let Some(path) = prepared.context.changed_since_walk() {
        let _ = shared.engine.remove(&pin, false, false).await;
        return Err(Failure::new(
            format!(
                "`{path}` changed during the build, so the image matches no version of the context; build again"
            ),
            None,
        ));
    }
    finish(shared, index, &prepared, id, Origin::Built, Some(pin), begin).await
}

/// The identity of each outside image the image uses (pulling nothing).
async fn base_identities(shared: &Arc<Shared>, index: usize) -> Result<HashMap<String, String>, Failure> {
    let image = &shared.project.images[index];
    let mut identities = HashMap::new();
    for reference in image.external_bases() {
        let identity = shared
            .bases
            .identity(&shared.engine, reference)
            .await
            .map_err(|error| Failure::new(error, reference_span(image, reference)))?;
        identities.insert(reference.to_owned(), identity);
    }
    Ok(identities)
}

/// Where the manifest names an outside image.
fn reference_span(image: &kiln_manifest::Image, reference: &str) -> Option<Span> {
    image.stages.iter().flat_map(kiln_manifest::Stage::inputs).find_map(|input| match input {
        StageInput::External(r, span) if r == reference => Some(span),
        _ => None,
    })
}

/// Pins what a build uses: its dependencies (pulled by content tag when this engine
/// does not have them) and its outside images (pulled when missing). Returns the pins,
/// by dependency and by outside reference.
async fn pin_inputs(
    shared: &Arc<Shared>,
    index: usize,
    dependencies: &HashMap<usize, Dependency>,
    prepared: &Prepared,
    log: &(dyn Fn(String) + Sync),
) -> Result<(HashMap<usize, String>, HashMap<String, String>), Failure> {
    let image = &shared.project.images[index];
    let mut dependency_pins = HashMap::new();
    for (&dependency, found) in dependencies {
        let pin = if let Some(pin) = &found.pin {
            pin.clone()
        } else {
            let id = pull(shared, &found.content, log).await.map_err(|e| Failure::new(e, None))?;
            let pin = shared.run.pin(&shared.project.images[dependency].name, &found.key);
            shared.engine.tag(&id, &pin).await.map_err(|e| Failure::new(e.to_string(), None))?;
            pin
        };
        dependency_pins.insert(dependency, pin);
    }
    let mut base_pins = HashMap::new();
    let mut note = |text: String| log(text);
    for reference in image.external_bases() {
        let span = reference_span(image, reference);
        let id = shared
            .bases
            .local(&shared.engine, reference, image.pull_policy, &mut note)
            .await
            .map_err(|error| Failure::new(error, span))?;
        let identity = prepared.inputs.bases.get(reference).cloned().unwrap_or_default();
        let pin = shared.run.pin_outside(reference, &identity);
        shared
            .engine
            .tag(&id, &pin)
            .await
            .map_err(|e| Failure::new(format!("cannot pin `{reference}` for the build: {e}"), span))?;
        base_pins.insert(reference.to_owned(), pin);
    }
    Ok((dependency_pins, base_pins))
}

/// The content tag's manifest in the image's registry, when it has one. A registry that
/// cannot answer is no reason to fail: the image is built instead.
async fn in_registry(
    shared: &Arc<Shared>,
    index: usize,
    content: &str,
    log: &(dyn Fn(String) + Sync),
) -> Option<kiln_registry::Manifest> {
    let image = &shared.project.images[index];
    let has_registry = kiln_reference::ImageRef::parse(&image.repository).is_ok_and(|r| r.domain.is_some());
    if shared.options.offline || !has_registry {
        return None;
    }
    let registry = shared.registry.clone();
    let reference = content.to_owned();
    match tokio::task::spawn_blocking(move || registry.manifest(&reference)).await {
        Ok(Ok(found)) => found,
        Ok(Err(err)) => {
            log(format!("kiln: cannot ask the registry for `{content}` ({err}); building\n"));
            None
        }
        Err(_) => None,
    }
}

/// Pulls `reference`; the image ID.
async fn pull(shared: &Shared, reference: &str, log: &(dyn Fn(String) + Sync)) -> Result<String, String> {
    log(format!("kiln: pulling `{reference}`\n"));
    shared
        .engine
        .pull(reference, &mut |_| {})
        .await
        .map_err(|e| format!("cannot pull `{reference}`: {e}"))?;
    match shared.engine.inspect(reference).await {
        Ok(Some(info)) => Ok(info.id),
        Ok(None) => Err(format!("`{reference}` is not here after pulling it")),
        Err(err) => Err(err.to_string()),
    }
}

/// `push` and the content tag is in the registry: the image's tags are added there, as
/// copies of its manifest; nothing is pulled.
async fn tag_in_registry(
    shared: &Arc<Shared>,
    index: usize,
    prepared: &Prepared,
    content: &str,
    manifest: &kiln_registry::Manifest,
    begin: Instant,
) -> Result<TaskResult, Failure> {
    let image = &shared.project.images[index];
    for reference in image.references() {
        let registry = shared.registry.clone();
        let manifest = manifest.clone();
        let target = reference.clone();
        tokio::task::spawn_blocking(move || registry.put_manifest(&target, &manifest))
            .await
            .map_err(|e| Failure::new(format!("internal error: {e}"), None))?
            .map_err(|e| Failure::new(format!("cannot tag `{reference}` in its registry: {e}"), None))?;
    }
    let (id, size) = manifest_summary(manifest);
    shared.send(Event::Finished {
        image: image.name.clone(),
        id: id.clone(),
        duration_ms: millis(begin.elapsed()),
        size,
        tags: image.references(),
        key: prepared.key.clone(),
        up_to_date: true,
        origin: Origin::Registry,
    });
    Ok(TaskResult::Built {
        id,
        size,
        origin: Origin::Registry,
        dependency: Dependency { key: prepared.key.clone(), pin: None, content: content.to_owned() },
    })
}

/// The image ID (its config's digest) and size a manifest describes; for an index of
/// several platforms, its own digest and no size.
fn manifest_summary(manifest: &kiln_registry::Manifest) -> (String, u64) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&manifest.bytes) else {
        return (manifest.digest.clone(), 0);
    };
    let Some(config) = json["config"]["digest"].as_str() else {
        return (manifest.digest.clone(), 0);
    };
    let size =
        json["layers"].as_array().map_or(0, |layers| layers.iter().filter_map(|l| l["size"].as_u64()).sum());
    (config.to_owned(), size)
}

/// Applies the image's content tag and tags (and pushes them, with `push`), then reports
/// it. Not cancellable: the tags of an image are applied all or nothing.
async fn finish(
    shared: &Arc<Shared>,
    index: usize,
    prepared: &Prepared,
    id: String,
    origin: Origin,
    pin: Option<String>,
    begin: Instant,
) -> Result<TaskResult, Failure> {
    let image = &shared.project.images[index];
    let content = identity::content_tag(&image.repository, &prepared.key);
    let replaced = shared.tags().get(&content).filter(|old| **old != id).cloned();
    let mut tags = vec![content.clone()];
    tags.extend(image.references());
    for reference in &tags {
        if let Err(err) = shared.engine.tag(&id, reference).await {
            return Err(Failure::new(
                format!("`{id}` is ready but could not be tagged `{reference}`: {err}"),
                None,
            ));
        }
    }
    shared.tags().extend(tags.iter().map(|t| (t.clone(), id.clone())));
    if let Some(old) = replaced {
        retire(shared, &old, &content).await;
    }
    if shared.options.push {
        for reference in &tags {
            shared.send(Event::Log {
                image: image.name.clone(),
                step: None,
                text: format!("kiln: pushing `{reference}`\n"),
            });
            if let Err(err) = shared.engine.push(reference, &mut |_| {}).await {
                return Err(Failure::new(
                    format!("`{id}` is ready but could not be pushed as `{reference}`: {err}"),
                    None,
                ));
            }
        }
    }
    let size = shared.engine.inspect(&id).await.ok().flatten().map_or(0, |info| info.size);
    shared.send(Event::Finished {
        image: image.name.clone(),
        id: id.clone(),
        duration_ms: millis(begin.elapsed()),
        size,
        tags: image.references(),
        key: prepared.key.clone(),
        up_to_date: origin != Origin::Built,
        origin,
    });
    Ok(TaskResult::Built {
        id,
        size,
        origin,
        dependency: Dependency { key: prepared.key.clone(), pin, content },
    })
}

/// An older build of the same key, whose content tag a rebuild just took: removed when
/// nothing else names it, else kept with a retired content tag (so that kiln still
/// knows it as its own).
async fn retire(shared: &Shared, old: &str, content: &str) {
    let Ok(Some(info)) = shared.engine.inspect(old).await else { return };
    if info.tags.is_empty() {
        let _ = shared.engine.remove(old, false, false).await;
    } else {
        let _ = shared.engine.tag(old, &identity::retired_tag(content, old)).await;
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// An `f64` that orders totally, for the ready queue.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrdF64(f64);

impl Eq for OrdF64 {}

impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}
