//! `kiln build`: the selected images and what they depend on, against the engine.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::Arc;

use kiln_build::{CostUnit, Event, Schedule, Status, Summary, TimedEvent, history};
use kiln_emit::Rendering;
use kiln_manifest::{ImageId, PerImage};
use tokio_util::sync::CancellationToken;

use super::engine_session;
use crate::cli::{BuildArgs, CacheTo, EngineSpec, GlobalArgs, ProgressMode};
use crate::overrides;
use crate::progress::{Display, human_duration};
use crate::session::{self, Session};
use crate::term::Term;
use crate::{CliError, ExitStatus};

pub(crate) fn run(global: &GlobalArgs, args: &BuildArgs, term: &Term) -> Result<ExitStatus, CliError> {
    if args.progress == ProgressMode::Tty && !std::io::stderr().is_terminal() {
        return Err(CliError::invalid("--progress tty needs a terminal on stderr")
            .hint("use `--progress plain` (or `json`) when the output goes to a file or a pipe"));
    }
    let mut session = session::load(global)?;
    session::report(&session, term)?;
    if let Some(platform) = &args.platform {
        // Every image of this run: its key covers the platform, so nothing built for another
        // platform is taken for it.
        for image in &mut session.project.images {
            image.platform = Some(kiln_manifest::Spanned::new(platform.clone(), image.name_span));
        }
    }
    if args.target.is_some() || !args.arg_overrides.is_empty() {
        let selected = kiln_graph::select(&session.project, &session.graph, &args.targets)
            .map_err(session::unknown_names)?;
        if let Some(stage) = &args.target {
            overrides::target(&mut session.project, &selected, stage)?;
            // The stages each image needs follow its target.
            let mut diagnostics = kiln_manifest::Diagnostics::default();
            session.graph = kiln_graph::Graph::build(&session.project, &mut diagnostics);
        }
        overrides::build_args(&mut session.project, &selected, &args.arg_overrides)?;
    }
    let labels = args.labels.clone();
    let project = &session.project;
    let targets = if args.targets.is_empty() && project.groups.contains_key("default") {
        vec!["default".to_owned()]
    } else {
        args.targets.clone()
    };
    let targets = match &args.changed_since {
        Some(reference) => {
            let changed = session::changed_since(&session, &targets, reference)?;
            if changed.is_empty() {
                term.info(&format!("nothing changed since `{reference}`: nothing to build"));
                return Ok(ExitStatus::Success);
            }
            changed
        }
        None => targets,
    };
    let selected = kiln_graph::select(project, &session.graph, &targets).map_err(session::unknown_names)?;
    let one_image_only = if args.iidfile.is_some() {
        Some("--iidfile writes one image ID")
    } else if args.extra_tags.is_empty() {
        None
    } else {
        Some("-t/--tag names one image")
    };
    if let Some(what) = one_image_only
        && selected.chosen().count() != 1
    {
        return Err(CliError::invalid(format!(
            "{what}, and this build has {} images",
            selected.chosen().count()
        ))
        .hint("name one image without dependencies (or give the others their tags in the manifest)"));
    }
    if args.locked {
        check_locked(&session)?;
    }
    if args.push {
        check_pushable(project, &selected)?;
    }
    check_context_files(project, &selected)?;
    check_secrets(project, &selected, args)?;
    let steps = step_counts(&session);
    let durations_file = history::durations_file(session.project.manifest_path());
    let durations = history::load(durations_file.as_deref());
    let schedule = Schedule::new(project, &session.graph, selected, &steps, &durations);
    let jobs = args.jobs.unwrap_or_else(default_jobs).max(1);
    let engines = pool_specs(args)?;
    if engines.is_empty() {
        // `needs` places images on a pool; one engine builds them all.
        for image in &mut session.project.images {
            image.needs.clear();
        }
    } else {
        check_needs(&session.project, &schedule, &engines)?;
    }

    if args.dry_run {
        if args.progress == ProgressMode::Json {
            term.json(&dry_run_json(&session, &schedule, jobs));
        } else {
            let mut text = dry_run_text(&session, &schedule, jobs, &durations);
            if !engines.is_empty() {
                let slots: usize = engines.iter().map(|e| e.slots.unwrap_or(jobs)).sum();
                let pool = format!(
                    "on {}, {}",
                    session::count(engines.len(), "engine"),
                    session::count(slots, "slot")
                );
                text = text.replacen(&format!("with -j {jobs}"), &pool, 1);
                text.push_str(&placement_text(&session, &schedule, &engines, jobs));
            }
            term.out(&text);
        }
        return Ok(ExitStatus::Success);
    }

    let runtime = engine_session::runtime()?;
    let Session { project, graph, no_cache: no_cache_images, .. } = session;
    let (project, graph) = (Arc::new(project), Arc::new(graph));
    runtime.block_on(async move {
        let pool = connect_pool(global, &engines, args.transfer_registry.clone(), jobs).await?;
        let engine = pool.engines[pool.home()].engine.clone();
        let tagger = engine.clone();
        // `--pull` refreshes the outside bases first, so that every build uses them.
        if args.pull {
            let targets = kiln_images::pull_targets(
                &project,
                &schedule.images,
                Some(kiln_manifest::PullPolicy::Always),
            );
            let pulled = super::pull::pull(&engine, targets, 4, term.quiet).await;
            let failed = pulled
                .iter()
                .filter_map(|(reference, result)| result.as_ref().err().map(|e| (reference, e)))
                .map(|(reference, error)| CliError::failure(format!("cannot pull `{reference}`: {error}")))
                .reduce(CliError::and);
            if let Some(error) = failed {
                return Err(error);
            }
        }
        let mode = match args.progress {
            // `tty` without a terminal was refused at the start.
            ProgressMode::Tty => None,
            ProgressMode::Auto if std::io::stderr().is_terminal() => None,
            ProgressMode::Auto | ProgressMode::Plain | ProgressMode::Quiet => Some(ProgressMode::Plain),
            ProgressMode::Json => Some(ProgressMode::Json),
        };
        let quiet = term.quiet || args.progress == ProgressMode::Quiet;
        let mut display = Display::new(mode, &project, &schedule, quiet);
        let options = kiln_build::Options {
            jobs,
            builder: args.builder.builder(),
            network: args.network.clone(),
            fail_fast: args.fail_fast,
            // Bases were refreshed above, once, rather than by every build.
            pull: false,
            rebuild: args.rebuild,
            no_cache: args.no_cache,
            no_cache_images,
            push: args.push,
            offline: args.offline,
            cache_from: args.cache_from.clone(),
            cache_to_inline: args.cache_to == Some(CacheTo::Inline),
            labels,
            secrets: args.secrets.clone(),
            ssh: args.ssh.is_some(),
        };
        let cancel = CancellationToken::new();
        watch_signals(cancel.clone());
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<TimedEvent>();
        let scheduler = tokio::spawn(kiln_build::run(
            project.clone(),
            graph.clone(),
            schedule.clone(),
            pool,
            options,
            sender,
            cancel,
        ));
        // Only a run that writes a report keeps its events.
        let mut recorder = args.report.as_ref().map(|_| crate::report::Recorder::new());
        while let Some(event) = receiver.recv().await {
            display.event(&event);
            if let Some(recorder) = &mut recorder {
                recorder.record(&event.event);
            }
        }
        let summary =
            scheduler.await.map_err(|e| CliError::failure(format!("the scheduler stopped: {e}")))?;
        display.finish(&summary);
        record_durations(durations_file.as_deref(), &project, &summary);
        if let (Some(path), Some(recorder)) = (&args.report, &recorder) {
            crate::report::write(path, recorder, &project, &graph).map_err(|e| {
                CliError::failure(format!("cannot write the report `{}`: {e}", path.display()))
            })?;
            term.info(&format!("report: {}", path.display()));
        }
        write_result_files(args, &project, &summary)?;
        // `-t`: on the one image, once it is there (built or up to date).
        if let Some(Status::Built { id, .. }) = summary.outcomes.first().map(|o| &o.status) {
            for reference in &args.extra_tags {
                tagger
                    .tag(id, reference)
                    .await
                    .map_err(|e| CliError::failure(format!("cannot tag the image `{reference}`: {e}")))?;
            }
        }
        Ok(if summary.interrupted {
            ExitStatus::Interrupted
        } else if summary.all_built() {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        })
    })
}

/// The engines of the run: `--engine`, each connected (an engine that cannot be reached
/// stops the run before anything starts), else the one engine of `--host`.
async fn connect_pool(
    global: &GlobalArgs,
    specs: &[EngineSpec],
    transfer_registry: Option<String>,
    jobs: usize,
) -> Result<kiln_build::Pool, CliError> {
    if specs.is_empty() {
        return Ok(kiln_build::Pool::single(engine_session::engine(global).await?, jobs));
    }
    let any_tags = specs.iter().any(|s| s.tags);
    let mut engines = Vec::new();
    // One engine listed twice (two addresses of one daemon) would count its slots twice
    // and copy images onto themselves.
    let mut seen: HashMap<String, &str> = HashMap::new();
    for (index, spec) in specs.iter().enumerate() {
        let env = |key: &str| std::env::var(key).ok();
        let mut endpoint =
            kiln_engine::endpoint::resolve(Some(&spec.address), &env).map_err(CliError::invalid)?;
        endpoint.source = kiln_engine::Source::EngineFlag;
        let engine = kiln_engine::Engine::connect_to(endpoint).await?;
        // The engine ID alone is not enough: daemons on one machine share the key it
        // comes from. Their data roots differ.
        let identity = engine
            .docker()
            .info()
            .await
            .ok()
            .and_then(|info| Some(format!("{} at {}", info.id?, info.docker_root_dir?)));
        if let Some(identity) = identity
            && let Some(first) = seen.insert(identity.clone(), &spec.address)
        {
            return Err(CliError::invalid(format!(
                "`--engine {}` and `--engine {first}` are the same engine ({identity})",
                spec.address
            ))
            .hint("list each engine once, with all its slots: `--engine ADDRESS,slots=N`"));
        }
        engines.push(kiln_build::PoolEngine {
            engine,
            slots: spec.slots.unwrap_or(jobs),
            labels: spec.labels.clone(),
            tags: spec.tags || (!any_tags && index == 0),
        });
    }
    Ok(kiln_build::Pool { engines, transfer_registry })
}

/// Every secret a RUN of the build mounts is given (`--secret`, readable), the ssh agent
/// too where one is mounted, and the builder can mount them: refused before anything is
/// built, naming the manifest line.
fn check_secrets(
    project: &kiln_manifest::Project,
    selected: &PerImage<bool>,
    args: &BuildArgs,
) -> Result<(), CliError> {
    for (id, source) in &args.secrets {
        let problem = match source {
            kiln_engine::SecretSource::File(path) => {
                std::fs::File::open(path).err().map(|e| format!("cannot read `{}`: {e}", path.display()))
            }
            kiln_engine::SecretSource::Env(name) => {
                std::env::var_os(name).is_none().then(|| format!("the variable `{name}` is not set"))
            }
        };
        if let Some(problem) = problem {
            return Err(CliError::invalid(format!("--secret id={id}: {problem}")));
        }
    }
    if args.ssh.is_some() && std::env::var_os("SSH_AUTH_SOCK").is_none() {
        return Err(CliError::invalid("--ssh default, but SSH_AUTH_SOCK is not set")
            .hint("start an agent (`eval $(ssh-agent)`) and add your key (`ssh-add`)"));
    }
    for image in selected.chosen().map(|id| &project[id]) {
        let secrets = image.secrets().into_iter().map(|id| (id, "secret"));
        let mounts: Vec<_> = secrets.chain(image.ssh_mounts().into_iter().map(|id| (id, "ssh"))).collect();
        for (id, kind) in mounts {
            let location = project.sources.location(id.span);
            let given = match kind {
                "secret" => args.secrets.iter().any(|(given, _)| *given == id.value),
                _ => args.ssh.is_some(),
            };
            if !given {
                let hint = if kind == "secret" {
                    format!("give it: `--secret id={},src=PATH` (or `env=NAME`)", id.value)
                } else {
                    "forward your agent: `--ssh default`".to_owned()
                };
                return Err(CliError::invalid(format!(
                    "image `{}` mounts the {kind} `{}` ({location}), and this build does not give it",
                    image.name, id.value
                ))
                .hint(hint));
            }
            if args.builder.builder() == kiln_engine::Builder::Classic {
                return Err(CliError::invalid(format!(
                    "image `{}` mounts the {kind} `{}` ({location}): the classic builder cannot",
                    image.name, id.value
                ))
                .hint("build with BuildKit (`--builder buildkit`, the default)"));
            }
        }
    }
    Ok(())
}

/// The pool: `--engine`, else `KILN_ENGINES` (the same specs, separated by blanks or
/// lines: what a CI sets once for every job), else none (one engine, `--host`).
fn pool_specs(args: &BuildArgs) -> Result<Vec<EngineSpec>, CliError> {
    if !args.engines.is_empty() {
        return Ok(args.engines.clone());
    }
    let Ok(text) = std::env::var("KILN_ENGINES") else { return Ok(Vec::new()) };
    text.split_whitespace()
        .map(|spec| {
            crate::cli::engine_spec(spec).map_err(|e| {
                CliError::invalid(format!("KILN_ENGINES: {e}"))
                    .hint("KILN_ENGINES takes `--engine` specs separated by blanks")
            })
        })
        .collect()
}

/// Every image to build must have an engine that offers what it `needs`.
fn check_needs(
    project: &kiln_manifest::Project,
    schedule: &Schedule,
    specs: &[EngineSpec],
) -> Result<(), CliError> {
    for &image in &schedule.images {
        for need in &project[image].needs {
            if !specs.iter().any(|s| s.labels.contains(&need.value)) {
                return Err(CliError::failure(format!(
                    "image `{}` needs `{}`, and no engine of the pool offers it ({})",
                    project[image].name,
                    need.value,
                    project.sources.location(need.span)
                ))
                .hint(format!(
                    "give an engine `label={}`: `--engine ADDRESS,label={}`",
                    need.value, need.value
                )));
            }
        }
    }
    Ok(())
}

/// `--dry-run` with `--engine`: where each image would build, from the estimated costs.
fn placement_text(session: &Session, schedule: &Schedule, specs: &[EngineSpec], jobs: usize) -> String {
    let project = &session.project;
    let engines: Vec<kiln_build::SimulatedEngine> = specs
        .iter()
        .map(|s| kiln_build::SimulatedEngine { slots: s.slots.unwrap_or(jobs), labels: s.labels.clone() })
        .collect();
    let needs = |image: ImageId| project[image].needs.iter().map(|n| n.value.clone()).collect::<Vec<_>>();
    let mut placed = schedule.simulate(&session.graph, &engines, &needs);
    placed.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut out = String::from("placement (from the estimated costs):\n");
    for (index, spec) in specs.iter().enumerate() {
        let names: Vec<&str> =
            placed.iter().filter(|p| p.engine == index).map(|p| project[p.image].name.as_str()).collect();
        let _ = writeln!(
            out,
            "  {} ({}): {}",
            spec.address,
            session::count(engines[index].slots, "slot"),
            if names.is_empty() { "nothing".to_owned() } else { names.join(", ") }
        );
    }
    let end = placed.iter().map(|p| p.end).fold(0.0, f64::max);
    let _ = writeln!(out, "estimated time on the pool: {}", cost_text(schedule, end));
    out
}

/// `--locked`: the lock must exist and lock exactly the outside images the manifest uses
/// (the `stale-lock` warnings, printed already, say where it does not).
fn check_locked(session: &Session) -> Result<(), CliError> {
    let lock_file = kiln_manifest::lock::LOCK_FILE;
    if session.project.lock.is_none() {
        return Err(CliError::failure(format!("--locked, but there is no `{lock_file}`"))
            .hint("`kiln lock` writes it"));
    }
    if session.diagnostics.iter().any(|d| d.code == kiln_manifest::Code::StaleLock) {
        return Err(CliError::failure(format!("--locked, but `{lock_file}` does not match the manifest"))
            .hint("`kiln lock` updates it"));
    }
    Ok(())
}

/// A file a selected image copies from its context is missing: the build would fail
/// at that COPY, after other images were built and tagged. Refuse before starting.
fn check_context_files(project: &kiln_manifest::Project, selected: &PerImage<bool>) -> Result<(), CliError> {
    let mut missing = Vec::new();
    for image in selected.chosen().map(|id| &project[id]) {
        let needed = image.needed_stages();
        for (stage, _) in image.stages.iter().zip(needed).filter(|(_, n)| *n) {
            missing.extend(stage.missing_files.iter().map(|span| (image, *span)));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let what = if missing.len() == 1 {
        "a copied file is".to_owned()
    } else {
        format!("{} copied files are", missing.len())
    };
    let mut message = format!("cannot build: {what} not in the build context");
    for (image, span) in missing {
        let _ = write!(message, "\n  image `{}`, at {}", image.name, project.sources.location(span));
    }
    Err(CliError::failure(message)
        .hint("add what is missing to the context, or fix the paths (see the `missing-file` warnings)"))
}

/// `--push`: every image to build must name the registry it goes to.
fn check_pushable(project: &kiln_manifest::Project, selected: &PerImage<bool>) -> Result<(), CliError> {
    let unpushable = selected
        .chosen()
        .map(|id| &project[id])
        .filter(|image| kiln_reference::ImageRef::parse(&image.repository).is_ok_and(|r| r.domain.is_none()))
        .map(|image| {
            CliError::invalid(format!(
                "--push: `{}` goes to `{}`, which names no registry (it would go to Docker Hub)",
                image.name, image.repository
            ))
        })
        .reduce(CliError::and);
    match unpushable {
        Some(error) => {
            Err(error
                .hint("set `registry` in the manifest, such as `registry \"registry.example.com/shop\"`"))
        }
        None => Ok(()),
    }
}

/// Ctrl-C and SIGTERM cancel the run.
fn watch_signals(cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term_signal = async {
            match terminate.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term_signal => {}
        }
        cancel.cancel();
    });
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

/// Each image's number of Dockerfile steps, the cost used before any run is recorded.
fn step_counts(session: &Session) -> PerImage<usize> {
    let first_tag = |i: ImageId| session.project[i].reference();
    session.project.per_image(|i| {
        kiln_emit::dockerfile(
            &session.project,
            &session.graph,
            i,
            Rendering { refs: &first_tag, outside: None, context_prefix: None },
        )
        .steps
        .len()
    })
}

fn record_durations(file: Option<&std::path::Path>, project: &kiln_manifest::Project, summary: &Summary) {
    let measured: HashMap<String, f64> = summary
        .outcomes
        .iter()
        .filter(|o| matches!(o.status, Status::Built { up_to_date: false, .. }))
        .map(|o| (project[o.image].name.clone(), o.duration.as_secs_f64()))
        .collect();
    if !measured.is_empty() {
        history::save(file, &measured);
    }
}

fn cost_text(schedule: &Schedule, cost: f64) -> String {
    match schedule.unit {
        CostUnit::Seconds => human_duration(std::time::Duration::from_secs_f64(cost)),
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        CostUnit::Steps => format!("{} steps", cost.round() as u64),
    }
}

fn dry_run_text(
    session: &Session,
    schedule: &Schedule,
    jobs: usize,
    durations: &HashMap<String, f64>,
) -> String {
    let project = &session.project;
    let graph = &session.graph;
    let name = |i: &ImageId| project[*i].name.as_str();
    let mut out = format!(
        "{} to build with -j {jobs} (nothing is built: --dry-run)\n",
        session::count(schedule.images.len(), "image")
    );
    for (number, wave) in schedule.waves(graph).iter().enumerate() {
        let names: Vec<&str> = wave.iter().map(name).collect();
        let _ = writeln!(out, "wave {}: {}", number + 1, names.join(", "));
    }
    let critical = schedule.critical_path(graph);
    if !critical.is_empty() {
        let total: f64 = critical.iter().map(|i| schedule.cost[*i]).sum();
        let names: Vec<&str> = critical.iter().map(name).collect();
        let _ = writeln!(out, "critical path: {} ({})", names.join(" -> "), cost_text(schedule, total));
    }
    let mut order: Vec<ImageId> = schedule.images.clone();
    order.sort_by(|a, b| schedule.priority[*b].total_cmp(&schedule.priority[*a]));
    let _ = writeln!(out, "start order among ready images (longest remaining path first):");
    for i in order {
        let _ = writeln!(out, "  {:<24} {}", name(&i), cost_text(schedule, schedule.priority[i]));
    }
    match schedule.unit {
        CostUnit::Seconds => {
            let estimate = schedule.estimate(graph, jobs);
            let _ = writeln!(out, "estimated time: {} (from earlier runs)", cost_text(schedule, estimate));
        }
        CostUnit::Steps => {
            let known = schedule.images.iter().filter(|i| durations.contains_key(&project[**i].name)).count();
            let _ = writeln!(
                out,
                "estimated time: unknown ({known} of {} images have a recorded duration; a build records them)",
                schedule.images.len()
            );
        }
    }
    out
}

fn dry_run_json(session: &Session, schedule: &Schedule, jobs: usize) -> serde_json::Value {
    let project = &session.project;
    let graph = &session.graph;
    let names = |list: &[ImageId]| -> Vec<String> { list.iter().map(|i| project[*i].name.clone()).collect() };
    let seconds = schedule.unit == CostUnit::Seconds;
    serde_json::json!({
        "jobs": jobs,
        "unit": if seconds { "seconds" } else { "steps" },
        "waves": schedule.waves(graph).iter().map(|w| names(w)).collect::<Vec<_>>(),
        "critical_path": names(&schedule.critical_path(graph)),
        "images": schedule.images.iter().map(|&i| serde_json::json!({
            "name": project[i].name,
            "cost": schedule.cost[i],
            "priority": schedule.priority[i],
        })).collect::<Vec<_>>(),
        "estimated_seconds": seconds.then(|| schedule.estimate(graph, jobs)),
    })
}

/// `--iidfile` and `--metadata-file`, once the images are there.
fn write_result_files(
    args: &BuildArgs,
    project: &kiln_manifest::Project,
    summary: &Summary,
) -> Result<(), CliError> {
    let write = |path: &std::path::Path, text: &str| {
        kiln_emit::write_atomically(path, text)
            .map_err(|e| CliError::failure(format!("cannot write `{}`: {e}", path.display())))
    };
    if let Some(path) = &args.iidfile
        && let Some(Status::Built { id, .. }) = summary.outcomes.first().map(|o| &o.status)
    {
        write(path, id)?;
    }
    if let Some(path) = &args.metadata_file {
        let mut metadata = serde_json::Map::new();
        for outcome in &summary.outcomes {
            let image = &project[outcome.image];
            let status = match &outcome.status {
                Status::Built { up_to_date: true, .. } => "up-to-date",
                Status::Built { .. } => "built",
                Status::Failed => "failed",
                Status::Skipped(_) => "skipped",
                Status::Cancelled => "cancelled",
            };
            let mut entry =
                serde_json::json!({ "image.name": image.references().join(","), "kiln.status": status });
            if let Status::Built { id, .. } = &outcome.status {
                entry["containerimage.config.digest"] = serde_json::json!(id);
            }
            metadata.insert(image.name.clone(), entry);
        }
        write(path, &(serde_json::to_string_pretty(&metadata).expect("JSON values serialize") + "\n"))?;
    }
    Ok(())
}

/// The summary event for `--progress json`.
pub(crate) fn summary_event(summary: &Summary) -> Event {
    let count = |f: &dyn Fn(&Status) -> bool| summary.outcomes.iter().filter(|o| f(&o.status)).count();
    Event::Summary {
        wall_ms: u64::try_from(summary.wall.as_millis()).unwrap_or(u64::MAX),
        built: count(&|s| matches!(s, Status::Built { up_to_date: false, .. })),
        up_to_date: count(&|s| matches!(s, Status::Built { up_to_date: true, .. })),
        failed: count(&|s| matches!(s, Status::Failed)),
        skipped: count(&|s| matches!(s, Status::Skipped(_) | Status::Cancelled)),
        interrupted: summary.interrupted,
    }
}
