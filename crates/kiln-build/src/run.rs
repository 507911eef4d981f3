//! The scheduler: builds the selected images against the engine, each as soon as the
//! images it depends on are built, at most `jobs` at a time, the most critical first.
//!
//! - An image whose content tag (see [`crate::identity`]) already exists is up to date:
//!   it is reused, not rebuilt, unless `rebuild`.
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
use crate::event::{Event, TimedEvent};
use crate::identity;
use crate::labels::GitInfo;
use crate::pin::{self, Liveness};
use crate::prepare::{self, DOCKERFILE, Prepared, Recipe, Resolved};
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
    /// Extra labels for every image (`--label`).
    pub labels: Vec<(String, String)>,
}

/// How an image's build ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Built { id: String, size: u64, up_to_date: bool },
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
    /// `resolved`: the image as its dependents use it (pin and key).
    Built {
        id: String,
        size: u64,
        up_to_date: bool,
        resolved: Resolved,
    },
    Failed,
    Cancelled,
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
        bases: Bases::default(),
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
    let mut built: HashMap<usize, Resolved> = HashMap::new();
    let mut tasks: JoinSet<(usize, Duration, TaskResult)> = JoinSet::new();
    let mut stop_reason: Option<String> = None;
    let mut interrupted = false;

    loop {
        while stop_reason.is_none() && tasks.len() < options.jobs.max(1) {
            let Some((_, _, next)) = ready.pop() else { break };
            let shared = shared.clone();
            let cancel = cancel.clone();
            let dependencies: HashMap<usize, Resolved> = graph
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
            TaskResult::Built { id, size, up_to_date, resolved } => {
                built.insert(image, resolved);
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
                Status::Built { id, size, up_to_date }
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
    dependencies: HashMap<usize, Resolved>,
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
    dependencies: HashMap<usize, Resolved>,
    cancel: &CancellationToken,
    begin: Instant,
) -> Result<TaskResult, Failure> {
    let image = &shared.project.images[index];
    let name = image.name.clone();
    let log = |text: String| shared.send(Event::Log { image: name.clone(), step: None, text });

    let bases = resolve_bases(shared, index).await?;
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
            prepare::prepare(&recipe, index, &dependencies, &bases)
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

    // Up to date: the content tag exists. Pinned first, so that no `clean` or `prune`
    // removes it from now on; if one removed it since the run looked, it is built.
    let rebuild = shared.options.rebuild || shared.options.no_cache;
    let existing = shared.tags().get(&content).cloned();
    if !rebuild && let Some(id) = existing {
        if shared.engine.tag(&id, &pin).await.is_ok() {
            shared.send(Event::Started { image: name.clone() });
            return finish(shared, index, &prepared, id, true, pin, begin).await;
        }
        shared.tags().remove(&content);
    }
    if cancel.is_cancelled() {
        return Ok(TaskResult::Cancelled);
    }

    shared.send(Event::Started { image: name.clone() });
    let spec = BuildSpec {
        dockerfile: DOCKERFILE.to_owned(),
        builder: shared.options.builder,
        build_args: image
            .build_args
            .iter()
            .map(|kv| (kv.key.value.clone(), kv.value.value.clone()))
            .collect(),
        labels: prepared.labels.clone().into_iter().collect(),
        platform: image.platform.as_ref().map(|p| p.value.clone()),
        network: shared.options.network.clone(),
        target: None,
        pull: shared.options.pull,
        no_cache: shared.options.no_cache,
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
            vec![(DOCKERFILE.to_owned(), prepared.dockerfile.text.clone().into_bytes())],
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
            let origin = err.step.as_deref().and_then(|s| prepared.dockerfile.step_origin(s));
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
    finish(shared, index, &prepared, id, false, pin, begin).await
}

/// Each outside image the image uses, resolved (pulled when missing) and pinned.
async fn resolve_bases(shared: &Arc<Shared>, index: usize) -> Result<HashMap<String, Resolved>, Failure> {
    let image = &shared.project.images[index];
    let mut note = |text: String| shared.send(Event::Log { image: image.name.clone(), step: None, text });
    let mut resolved = HashMap::new();
    for reference in image.external_bases() {
        let span = image.stages.iter().flat_map(kiln_manifest::Stage::inputs).find_map(|input| {
            matches!(input, StageInput::External(r, _) if r == reference).then(|| span_of(input))
        });
        let outside = shared
            .bases
            .resolve(&shared.engine, reference, image.pull_policy, &mut note)
            .await
            .map_err(|error| Failure::new(error, span))?;
        let pin = shared.run.pin_outside(reference, &outside.identity);
        shared
            .engine
            .tag(&outside.id, &pin)
            .await
            .map_err(|e| Failure::new(format!("cannot pin `{reference}` for the build: {e}"), span))?;
        resolved.insert(reference.to_owned(), Resolved { reference: pin, identity: outside.identity });
    }
    Ok(resolved)
}

fn span_of(input: StageInput<'_>) -> Span {
    match input {
        StageInput::Stage(_, span) | StageInput::Image(_, span) | StageInput::External(_, span) => span,
    }
}

/// Applies the image's content tag and tags, then reports it built. Not cancellable:
/// the tags of an image are applied all or nothing.
async fn finish(
    shared: &Arc<Shared>,
    index: usize,
    prepared: &Prepared,
    id: String,
    up_to_date: bool,
    pin: String,
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
                format!("built `{id}` but could not tag it `{reference}`: {err}"),
                None,
            ));
        }
    }
    shared.tags().extend(tags.iter().map(|t| (t.clone(), id.clone())));
    if let Some(old) = replaced {
        retire(shared, &old, &content).await;
    }
    let size = shared.engine.inspect(&id).await.ok().flatten().map_or(0, |info| info.size);
    shared.send(Event::Finished {
        image: image.name.clone(),
        id: id.clone(),
        duration_ms: millis(begin.elapsed()),
        size,
        tags: image.references(),
        key: prepared.key.clone(),
        up_to_date,
    });
    Ok(TaskResult::Built {
        id,
        size,
        up_to_date,
        resolved: Resolved { reference: pin, identity: prepared.key.clone() },
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
