//! The scheduler: builds the selected images against the engine, each as soon as the
//! images it depends on are ready, at most `jobs` builds at a time, the most critical
//! first.
//!
//! Each image goes through two phases. Its check ([`check`]) computes its key and looks
//! for its content tag (see [`crate::identity`]): on the engine, the image is reused; in
//! its registry, it is pulled, or with `push` only tagged there; unless `rebuild`.
//! Checks build nothing and take no build slot, so a run where nothing changed costs a
//! stat of each file and one request per image. Only the images that must be built wait
//! for a slot ([`build`]).
//!
//! - A build names its dependencies and outside images by the run's pins (see
//!   [`crate::pin`]), set on them just before it starts and kept to the end of the run:
//!   no tag moved by someone else can slip in, and no `clean` or `prune` removes them
//!   meanwhile. The run removes its pins at the end; a run that builds also removes,
//!   beside its builds, the pins that runs which are gone left behind.
//! - A build that fails because the engine lost an image to someone else's removal (a
//!   race inside Engine 20.10's classic builder) runs again, up to [`BUILD_ATTEMPTS`]
//!   times.
//! - An image's tags move only after its build succeeded and its context did not change
//!   during the build, and are never left half applied: tagging is not interrupted.
//! - A failure skips the failed image's dependents; other images go on, unless
//!   `fail_fast`, which stops starting builds.
//! - With several engines ([`Pool`]), a build goes to the engine that offers what the
//!   image `needs`, has a free slot and already holds most of its dependencies
//!   ([`crate::pool::place`]); the dependencies it lacks are copied there first
//!   ([`transfer`]). Tags go only to the engines that take them. An engine that stops
//!   answering gets no more builds: its images fail, the rest goes on where it can.
//! - Cancelling stops starting checks and builds and drops the builds in flight (the
//!   engine aborts a build whose client goes away, and removes its containers: builds
//!   run with `rm` and `forcerm`).

mod build;
mod check;
mod transfer;

use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kiln_context::HashCache;
use kiln_engine::{Builder, Engine};
use kiln_graph::Graph;
use kiln_manifest::{ImageId, PerImage, Project, Span};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::bases::{Bases, Registries};
use crate::event::{Event, Origin, TimedEvent};
use crate::labels::GitInfo;
use crate::pool::{EngineLoad, Pool, place};
use crate::prepare::Prepared;
use crate::schedule::Schedule;
use kiln_marks::pin::{self, Liveness};

#[derive(Debug, Clone)]
pub struct Options {
    /// Builds at once on an engine given without slots (`-j`).
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
    /// These images only build without the layer cache (`--set IMAGE.no-cache=true`).
    pub no_cache_images: Vec<ImageId>,
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
    /// Build secrets by id (`--secret`), given to the builds whose RUNs mount them.
    pub secrets: Vec<(String, kiln_engine::SecretSource)>,
    /// Forward the ssh agent (`--ssh default`) to the builds whose RUNs mount it.
    pub ssh: bool,
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
    pub image: ImageId,
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

/// How an image's check or build ended.
enum TaskResult {
    Ready { id: String, size: u64, origin: Origin, dependency: Dependency },
    Failed,
    Cancelled,
}

/// What a check found.
enum Checked {
    Done(TaskResult),
    /// The image must be built; its inputs are ready.
    Build(Box<Prepared>),
}

/// A ready image as its dependents use it.
#[derive(Debug, Clone)]
struct Dependency {
    key: String,
    /// Its image ID, when an engine of the pool has it (`Shared::holders` says which).
    local: Option<String>,
    /// Its content tag, to pull it from when it is not.
    content: String,
}

/// Everything the checks and builds need, shared.
struct Shared {
    /// This run: the owner of its pins.
    run: pin::Run,
    project: Arc<Project>,
    graph: Arc<Graph>,
    /// The home engine (the pool's first that takes tags): registry settings, `-t`.
    engine: Engine,
    pool: Pool,
    /// Engines that stopped answering: no more builds go there.
    down: Vec<AtomicBool>,
    /// The engines that hold each ready image.
    holders: Mutex<HashMap<ImageId, BTreeSet<usize>>>,
    transfers: transfer::Transfers,
    options: Options,
    events: UnboundedSender<TimedEvent>,
    /// Read when the first build needs it (its labels): a run that builds nothing does
    /// not ask git.
    git: OnceLock<GitInfo>,
    project_id: String,
    hashes: Arc<HashCache>,
    registries: Arc<Registries>,
    bases: Bases,
    /// The pins this run set, with their engine, to remove at its end.
    pins: Mutex<Vec<(usize, String)>>,
    /// The removal of the pins of runs that are gone, started by the run's first build
    /// (a run that builds nothing leaves the engine as it is).
    sweep: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Shared {
    fn send(&self, event: Event) {
        // The receiver (the display) going away does not stop the build.
        let _ = self.events.send(TimedEvent::now(event));
    }

    fn git(&self) -> &GitInfo {
        self.git.get_or_init(|| GitInfo::read(&self.project.root_dir))
    }

    /// Starts removing the pins of runs that are gone, beside the build, once per run.
    fn sweep(&self) {
        let mut sweep = self.sweep.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if sweep.is_none() {
            let engines: Vec<Engine> = self.pool.engines.iter().map(|e| e.engine.clone()).collect();
            *sweep = Some(tokio::spawn(async move {
                for engine in &engines {
                    remove_pins(engine, |run| run.liveness() == Liveness::Gone).await;
                }
            }));
        }
    }

    /// Tags `id` with `pin` on an engine and remembers it for the end of the run.
    async fn pin(&self, engine: usize, id: &str, pin: &str) -> Result<(), kiln_engine::EngineError> {
        self.pins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((engine, pin.to_owned()));
        self.engine_at(engine).tag(id, pin).await
    }

    fn engine_at(&self, engine: usize) -> &Engine {
        &self.pool.engines[engine].engine
    }

    /// How an engine is named in events: its endpoint, when the run has several.
    fn engine_name(&self, engine: usize) -> Option<String> {
        (self.pool.engines.len() > 1).then(|| self.engine_at(engine).endpoint.host.clone())
    }

    fn is_up(&self, engine: usize) -> bool {
        !self.down[engine].load(Ordering::Relaxed)
    }

    /// The engines that hold a ready image.
    fn holders_of(&self, image: ImageId) -> BTreeSet<usize> {
        self.holders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&image)
            .cloned()
            .unwrap_or_default()
    }

    fn add_holder(&self, image: ImageId, engine: usize) {
        self.holders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(image)
            .or_default()
            .insert(engine);
    }

    /// The engines that take tags, in order.
    fn tag_engines(&self) -> impl Iterator<Item = usize> + '_ {
        self.pool.engines.iter().enumerate().filter(|(_, e)| e.tags).map(|(i, _)| i)
    }
}

/// A check or build that failed, reported as an event.
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

/// The ready queue's order: most critical first, then build order.
type Ready = (OrdF64, std::cmp::Reverse<usize>, ImageId);

pub async fn run(
    project: Arc<Project>,
    graph: Arc<Graph>,
    schedule: Schedule,
    pool: Pool,
    options: Options,
    events: UnboundedSender<TimedEvent>,
    cancel: CancellationToken,
) -> Summary {
    let started = Instant::now();
    let hashes_file = crate::history::cache_file(project.manifest_path(), "hashes");
    let engine = pool.engines[pool.home()].engine.clone();
    let registries = Arc::new(Registries::new(engine.clone()));
    let shared = Arc::new(Shared {
        run: pin::Run::current(),
        git: OnceLock::new(),
        project_id: kiln_marks::tags::project_id(&project),
        hashes: Arc::new(HashCache::load(hashes_file)),
        project: project.clone(),
        graph: graph.clone(),
        engine,
        down: pool.engines.iter().map(|_| AtomicBool::new(false)).collect(),
        holders: Mutex::new(HashMap::new()),
        transfers: transfer::Transfers::default(),
        pool,
        options: options.clone(),
        events,
        bases: Bases::new(project.lock.clone(), registries.clone()),
        registries,
        pins: Mutex::new(Vec::new()),
        sweep: Mutex::new(None),
    });

    let selected = &schedule.selected;
    let position: HashMap<ImageId, usize> =
        schedule.images.iter().enumerate().map(|(p, &i)| (i, p)).collect();
    let priority = |i: ImageId| (OrdF64(schedule.priority[i]), std::cmp::Reverse(position[&i]), i);
    let mut waiting: HashMap<ImageId, usize> = schedule
        .images
        .iter()
        .map(|&i| (i, graph.dependencies(i).iter().filter(|d| selected[**d]).count()))
        .collect();
    let mut ready: BinaryHeap<Ready> = BinaryHeap::new();
    for &i in &schedule.images {
        shared.send(Event::Queued { image: project[i].name.clone() });
        if waiting[&i] == 0 {
            ready.push(priority(i));
        }
    }
    // Waiting for a slot, most critical last.
    let mut to_build: BTreeSet<Ready> = BTreeSet::new();
    let mut busy: Vec<usize> = vec![0; shared.pool.engines.len()];
    let mut prepared: HashMap<ImageId, (Box<Prepared>, Instant)> = HashMap::new();
    let mut outcomes: HashMap<ImageId, Outcome> = HashMap::new();
    let mut done: HashMap<ImageId, Dependency> = HashMap::new();
    let mut checks: JoinSet<(ImageId, Instant, Result<Checked, Failure>)> = JoinSet::new();
    // The checks in flight, by priority: a build waits for the checks of more critical
    // images, so that slots go in priority order (checks take milliseconds).
    let mut checking: std::collections::BTreeSet<Ready> = std::collections::BTreeSet::new();
    let mut builds: JoinSet<(ImageId, usize, Instant, Result<TaskResult, Failure>)> = JoinSet::new();
    let mut stop_reason: Option<String> = None;
    let mut interrupted = false;
    let dependencies_of =
        |index: ImageId, done: &HashMap<ImageId, Dependency>| -> HashMap<ImageId, Dependency> {
            graph.dependencies(index).iter().filter_map(|d| done.get(d).map(|r| (*d, r.clone()))).collect()
        };

    loop {
        // Checks start as soon as an image's dependencies are ready: they build nothing.
        while stop_reason.is_none() {
            let Some(entry) = ready.pop() else { break };
            let next = entry.2;
            checking.insert(entry);
            let (shared, dependencies) = (shared.clone(), dependencies_of(next, &done));
            checks.spawn(async move {
                let begin = Instant::now();
                (next, begin, check::check(&shared, next, &dependencies).await)
            });
        }
        if checks.is_empty() {
            // (A check that panicked left its entry behind.)
            checking.clear();
        }
        // Slots go in priority order; an image no free engine can take lets a less
        // critical one that fits go first.
        while stop_reason.is_none() {
            let most_critical = checking.last().copied();
            let candidate =
                to_build.iter().rev().take_while(|entry| most_critical.is_none_or(|c| **entry > c)).find_map(
                    |entry| match placement(&shared, &graph, entry.2, &busy) {
                        Placement::On(engine) => Some((*entry, Some(engine))),
                        Placement::Never => Some((*entry, None)),
                        Placement::Wait => None,
                    },
                );
            let Some((entry, engine)) = candidate else { break };
            to_build.remove(&entry);
            let next = entry.2;
            let (inputs, begin) = prepared.remove(&next).expect("a checked image has its inputs");
            let Some(engine) = engine else {
                // Back through the loop below as this image's failure.
                let needs: Vec<&str> = project[next].needs.iter().map(|n| n.value.as_str()).collect();
                let failure = Failure::new(
                    format!("no engine that is up offers what it needs ({})", needs.join(", ")),
                    project[next].needs.first().map(|n| n.span),
                );
                builds.spawn(async move { (next, usize::MAX, begin, Err(failure)) });
                continue;
            };
            busy[engine] += 1;
            let (shared, cancel, dependencies) =
                (shared.clone(), cancel.clone(), dependencies_of(next, &done));
            builds.spawn(async move {
                let result =
                    build::build(&shared, next, engine, &inputs, &dependencies, &cancel, begin).await;
                (next, engine, begin, result)
            });
        }
        if checks.is_empty() && builds.is_empty() {
            break;
        }
        let (image, begin, result) = tokio::select! {
            Some(Ok((image, begin, checked))) = checks.join_next(), if !checks.is_empty() => {
                checking.remove(&priority(image));
                match checked {
                Ok(Checked::Build(inputs)) => {
                    prepared.insert(image, (inputs, begin));
                    to_build.insert(priority(image));
                    continue;
                }
                Ok(Checked::Done(result)) => (image, begin, Ok(result)),
                Err(failure) => (image, begin, Err(failure)),
            }},
            Some(Ok((image, engine, begin, built))) = builds.join_next(), if !builds.is_empty() => {
                if let Some(count) = busy.get_mut(engine) {
                    *count -= 1;
                    if built.is_err() && !answers(shared.engine_at(engine)).await {
                        shared.down[engine].store(true, Ordering::Relaxed);
                    }
                }
                (image, begin, built)
            }
            () = cancel.cancelled(), if !interrupted => {
                interrupted = true;
                stop_reason = Some("interrupted".to_owned());
                continue;
            }
            else => continue,
        };
        let result = result.unwrap_or_else(|failure| report(&shared, image, begin, failure));
        let status = match result {
            TaskResult::Ready { id, size, origin, dependency } => {
                done.insert(image, dependency);
                for &dependent in graph.dependents(image) {
                    if let Some(count) = waiting.get_mut(&dependent) {
                        *count -= 1;
                        if *count == 0 && !outcomes.contains_key(&dependent) {
                            ready.push(priority(dependent));
                        }
                    }
                }
                Status::Built { id, size, up_to_date: origin != Origin::Built, origin }
            }
            TaskResult::Failed => {
                let name = &project[image].name;
                skip_dependents(&shared, &graph, selected, image, &format!("`{name}` failed"), &mut outcomes);
                if options.fail_fast && stop_reason.is_none() {
                    stop_reason = Some(format!("not started: `{name}` failed and --fail-fast is on"));
                }
                Status::Failed
            }
            TaskResult::Cancelled => Status::Cancelled,
        };
        outcomes.insert(image, Outcome { image, status, duration: begin.elapsed() });
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
            shared.send(Event::Skipped { image: project[i].name.clone(), reason: reason.clone() });
            Outcome { image: i, status: Status::Skipped(reason), duration: Duration::ZERO }
        });
    }
    // The pins were only for this run (a build it stopped waiting for may still have
    // finished, pinned: its pin is in the list from before it started).
    let pins = std::mem::take(&mut *shared.pins.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    for (engine, pin) in pins {
        if shared.is_up(engine) {
            let _ = shared.engine_at(engine).remove(&pin, false, true).await;
        }
    }
    let sweep = shared.sweep.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    if let Some(sweep) = sweep {
        let _ = sweep.await;
    }
    let hashes = shared.hashes.clone();
    let _ = tokio::task::spawn_blocking(move || hashes.save()).await;
    let ordered = schedule.images.iter().filter_map(|i| outcomes.remove(i)).collect();
    Summary { outcomes: ordered, wall: started.elapsed(), interrupted }
}

/// Reports an image ready, and says how its dependents find it: `local` when `id` is
/// its image ID on this engine, not when it is only in its registry (`id` is then its
/// config's digest, which is the image ID it gets when pulled).
#[allow(clippy::too_many_arguments)]
fn ready(
    shared: &Shared,
    index: ImageId,
    prepared: &Prepared,
    id: String,
    local: bool,
    size: u64,
    origin: Origin,
    begin: Instant,
) -> TaskResult {
    let image = &shared.project[index];
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
    let content = kiln_marks::tags::content_tag(&image.repository, &prepared.key);
    let dependency = Dependency { key: prepared.key.clone(), local: local.then(|| id.clone()), content };
    TaskResult::Ready { id, size, origin, dependency }
}

/// Where an image waiting for a slot can build now.
enum Placement {
    On(usize),
    /// Every engine that could take it is busy.
    Wait,
    /// No engine that is up offers what it needs.
    Never,
}

fn placement(shared: &Shared, graph: &Graph, image: ImageId, busy: &[usize]) -> Placement {
    let needs: Vec<String> = shared.project[image].needs.iter().map(|n| n.value.clone()).collect();
    // Where each dependency is, read once for all the engines.
    let held: Vec<BTreeSet<usize>> =
        graph.dependencies(image).iter().map(|d| shared.holders_of(*d)).collect();
    let loads: Vec<EngineLoad> = shared
        .pool
        .engines
        .iter()
        .enumerate()
        .map(|(index, engine)| EngineLoad {
            free_slots: engine.slots.saturating_sub(busy[index]),
            up: shared.is_up(index),
            offers: engine.offers(&needs),
            holds: held.iter().filter(|engines| engines.contains(&index)).count(),
        })
        .collect();
    match place(&loads) {
        Some(engine) => Placement::On(engine),
        None if loads.iter().any(|l| l.up && l.offers) => Placement::Wait,
        None => Placement::Never,
    }
}

/// Whether an engine still answers (after a build on it failed).
async fn answers(engine: &Engine) -> bool {
    matches!(tokio::time::timeout(Duration::from_secs(5), engine.docker().ping()).await, Ok(Ok(_)))
}

/// Reports a failure as an event.
fn report(shared: &Shared, image: ImageId, begin: Instant, failure: Failure) -> TaskResult {
    let project = &shared.project;
    shared.send(Event::Failed {
        image: project[image].name.clone(),
        duration_ms: millis(begin.elapsed()),
        error: failure.error,
        step: failure.step,
        location: failure.span.map(|s| project.sources.location(s)),
        span: failure.span,
        log: failure.log,
    });
    TaskResult::Failed
}

/// Removes the pins whose run `matches`. Only the tag goes, unless it is an image's last
/// one (a build whose run died before tagging it): then that image goes too, with the
/// intermediate images the classic builder made for it. (A build that was using one of
/// those as cache loses it, and is run again: see `kiln_engine::lost_an_image`.)
async fn remove_pins(engine: &Engine, matches: impl Fn(&pin::Run) -> bool) {
    let Ok(tags) = engine.tags_starting_with(pin::PREFIX).await else { return };
    for (_, tag) in tags {
        if pin::Run::of_pin(&tag).is_some_and(|run| matches(&run)) {
            let _ = engine.remove(&tag, false, true).await;
        }
    }
}

/// Marks every image that depends on `failed`, directly or not, as skipped.
fn skip_dependents(
    shared: &Shared,
    graph: &Graph,
    selected: &PerImage<bool>,
    failed: ImageId,
    reason: &str,
    outcomes: &mut HashMap<ImageId, Outcome>,
) {
    let mut stack = graph.dependents(failed).to_vec();
    while let Some(image) = stack.pop() {
        if !selected[image] || outcomes.contains_key(&image) {
            continue;
        }
        let name = shared.project[image].name.clone();
        let reason = format!("skipped: {reason}");
        shared.send(Event::Skipped { image: name, reason: reason.clone() });
        outcomes.insert(image, Outcome { image, status: Status::Skipped(reason), duration: Duration::ZERO });
        stack.extend(graph.dependents(image));
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
