//! The scheduler: builds the selected images against the engine, each as soon as the
//! images it depends on are built, at most `jobs` at a time, the most critical first.
//!
//! - Every image the run builds or reuses carries the run's pin (see [`crate::pin`]) from
//!   the moment it exists: a dependent's Dockerfile names its dependency by pin, so no
//!   tag moved by someone else can slip in, and no `clean` or `prune` removes it while
//!   the run needs it. The run removes its pins at the end, and those that earlier runs
//!   left behind at the start.
//! - A build that fails because the engine lost an image to someone else's removal (a
//!   race inside Engine 20.10's classic builder) runs again, up to [`BUILD_ATTEMPTS`]
//!   times.
//! - An image's own tags move only after its build succeeded, and are never left half
//!   applied: tagging is not interrupted.
//! - A failure skips the failed image's dependents; other images go on, unless
//!   `fail_fast`, which stops starting builds.
//! - Cancelling stops starting builds and drops the ones in flight (the engine aborts a
//!   build whose client goes away, and removes its containers: builds run with
//!   `rm` and `forcerm`).

use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_engine::{BuildSpec, Builder, Engine, StepState};
use kiln_graph::Graph;
use kiln_manifest::Project;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::event::{Event, TimedEvent};
use crate::labels::{self, GitInfo};
use crate::pin::{self, Liveness};
use crate::prepare::{self, DOCKERFILE};
use crate::schedule::Schedule;

#[derive(Debug, Clone)]
pub struct Options {
    pub jobs: usize,
    pub builder: Builder,
    /// `none`, `host`, or the engine's default.
    pub network: Option<String>,
    pub fail_fast: bool,
    pub pull: bool,
    /// Build even when an image with the same input digest exists.
    pub rebuild: bool,
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
    Built { id: String, size: u64, up_to_date: bool, digest: String, pin: String },
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
    manifest: std::path::PathBuf,
}

impl Shared {
    fn send(&self, event: Event) {
        // The receiver (the display) going away does not stop the build.
        let _ = self.events.send(TimedEvent::now(event));
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
    let manifest = project.manifest_path().to_path_buf();
    let shared = Arc::new(Shared {
        run: pin::Run::current(),
        git: GitInfo::read(&project.root_dir),
        project: project.clone(),
        graph: graph.clone(),
        engine,
        options: options.clone(),
        events,
        manifest,
    });
    remove_pins(&shared.engine, |run| run.liveness() == Liveness::Gone).await;
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
    let mut pins: HashMap<usize, String> = HashMap::new();
    let mut digests: HashMap<usize, String> = HashMap::new();
    let mut tasks: JoinSet<(usize, Duration, TaskResult)> = JoinSet::new();
    let mut stop_reason: Option<String> = None;
    let mut interrupted = false;

    loop {
        while stop_reason.is_none() && tasks.len() < options.jobs.max(1) {
            let Some((_, _, next)) = ready.pop() else { break };
            let shared = shared.clone();
            let cancel = cancel.clone();
            let pins = pins.clone();
            let digests = digests.clone();
            tasks.spawn(async move {
                let begin = Instant::now();
                let result = build_one(&shared, next, &pins, &digests, &cancel).await;
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
            TaskResult::Built { id, size, up_to_date, digest, pin } => {
                pins.insert(image, pin);
                digests.insert(image, digest);
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

async fn build_one(
    shared: &Arc<Shared>,
    index: usize,
    pins: &HashMap<usize, String>,
    digests: &HashMap<usize, String>,
    cancel: &CancellationToken,
) -> TaskResult {
    let project = &shared.project;
    let image = &project.images[index];
    let name = image.name.clone();
    let begin = Instant::now();
    let fail = |error: String, step: Option<String>, span: Option<kiln_manifest::Span>, log: String| {
        shared.send(Event::Failed {
            image: name.clone(),
            duration_ms: millis(begin.elapsed()),
            error,
            step,
            location: span.map(|s| project.sources.location(s)),
            span,
            log,
        });
        TaskResult::Failed
    };

    // Reading and hashing the context is file IO: off the async threads.
    let prepared = {
        let (project, graph, pins, digests) =
            (shared.project.clone(), shared.graph.clone(), pins.clone(), digests.clone());
        let builder = shared.options.builder;
        tokio::task::spawn_blocking(move || {
            prepare::prepare(&project, &graph, index, &pins, &digests).map(|mut prepared| {
                // A different builder makes a different image.
                prepared.digest = format!("{}+{builder:?}", prepared.digest).to_lowercase();
                prepared
            })
        })
        .await
    };
    let prepared = match prepared {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(err)) => {
            return fail(
                format!("cannot read the build context `{}`: {err}", image.context),
                None,
                None,
                String::new(),
            );
        }
        Err(err) => return fail(format!("internal error: {err}"), None, None, String::new()),
    };
    let digest = prepared.digest.clone();
    let pin = shared.run.pin(&image.name, &digest);
    let manifest = shared.manifest.to_string_lossy().into_owned();

    // An image built from the same inputs is reused.
    if !shared.options.rebuild {
        let found = shared
            .engine
            .images_with_labels(&[
                (labels::MANIFEST, &manifest),
                (labels::IMAGE, &image.name),
                (labels::INPUT_DIGEST, &digest),
            ])
            .await;
        if let Ok(mut found) = found {
            found.sort_by(|a, b| b.created.cmp(&a.created));
            // Pinned first, so that no `clean` or `prune` removes it from now on; if one
            // removed it since the lookup, it is built instead.
            if let Some(existing) = found.into_iter().next()
                && shared.engine.tag(&existing.id, &pin).await.is_ok()
            {
                shared.send(Event::Started { image: name.clone() });
                return finish(shared, index, existing.id, true, digest, pin, begin).await;
            }
        }
    }
    if cancel.is_cancelled() {
        return TaskResult::Cancelled;
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
        labels: labels::image_labels(image, &shared.manifest, &digest, &shared.git, &shared.options.labels),
        platform: image.platform.as_ref().map(|p| p.value.clone()),
        network: shared.options.network.clone(),
        target: None,
        pull: shared.options.pull,
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
            () = cancel.cancelled() => return TaskResult::Cancelled,
        };
        match result {
            Err(err) if err.lost_image && attempt < BUILD_ATTEMPTS => {
                attempt += 1;
                shared.send(Event::Log {
                    image: name.clone(),
                    step: None,
                    text: format!(
                        "kiln: the engine lost an image during the build ({}), most likely removed by another client meanwhile; building again (attempt {attempt} of {BUILD_ATTEMPTS})\n",
                        err.message
                    ),
                });
            }
            result => break result,
        }
    };
    match result {
        Ok(id) => finish(shared, index, id, false, digest, pin, begin).await,
        Err(err) => {
            let origin = err.step.as_deref().and_then(|s| prepared.dockerfile.step_origin(s));
            fail(err.message, err.step, origin.map(|o| o.span), err.log)
        }
    }
}

/// Applies the image's tags and the pin, then reports it built. Not cancellable: the
/// tags of an image are applied all or nothing.
async fn finish(
    shared: &Arc<Shared>,
    index: usize,
    id: String,
    up_to_date: bool,
    digest: String,
    pin: String,
    begin: Instant,
) -> TaskResult {
    let image = &shared.project.images[index];
    let mut tags = image.references();
    tags.push(pin.clone());
    for reference in &tags {
        if let Err(err) = shared.engine.tag(&id, reference).await {
            shared.send(Event::Failed {
                image: image.name.clone(),
                duration_ms: millis(begin.elapsed()),
                error: format!("built `{id}` but could not tag it `{reference}`: {err}"),
                step: None,
                location: None,
                span: None,
                log: String::new(),
            });
            return TaskResult::Failed;
        }
    }
    let size = shared.engine.inspect(&id).await.ok().flatten().map_or(0, |info| info.size);
    shared.send(Event::Finished {
        image: image.name.clone(),
        id: id.clone(),
        duration_ms: millis(begin.elapsed()),
        size,
        tags: image.references(),
        up_to_date,
    });
    TaskResult::Built { id, size, up_to_date, digest, pin }
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
