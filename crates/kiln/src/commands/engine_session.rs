//! What the commands that talk to the engine share: a loaded project, an async runtime
//! and a connected engine, and running many pulls or pushes at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kiln_engine::Engine;
use kiln_images::{Build, Scope};
use kiln_reference::ImageRef;

use crate::CliError;
use crate::cli::GlobalArgs;
use crate::progress::{Transfers, human_duration};
use crate::session::{self, Session};
use crate::term::Term;

pub(crate) struct Connected {
    pub session: Session,
    pub runtime: tokio::runtime::Runtime,
    pub engine: Engine,
}

/// Loads the project (a manifest with errors stops here, exit 2) and connects to the
/// engine (unreachable: exit 1).
pub(crate) fn connect(global: &GlobalArgs, term: &Term) -> Result<Connected, CliError> {
    let session = session::load(global)?;
    session::report(&session, term)?;
    let runtime = runtime()?;
    let engine = runtime.block_on(engine(global))?;
    Ok(Connected { session, runtime, engine })
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))
}

/// Connects to the engine `--host` names (or the default one).
pub(crate) async fn engine(global: &GlobalArgs) -> Result<Engine, CliError> {
    Ok(Engine::connect(global.host.as_deref()).await?)
}

impl Connected {
    /// The manifest's images in the engine.
    pub(crate) fn scope(&self) -> Scope<'_> {
        Scope::new(&self.session.project, &self.session.graph, &self.engine)
    }

    /// Every build of the manifest's images (see `Scope::builds`).
    pub(crate) fn builds(&self, scope: &Scope<'_>) -> Result<Vec<Build>, CliError> {
        Ok(self.runtime.block_on(scope.builds())?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Pull,
    Push,
}

/// Pulls or pushes the references, `jobs` at a time, with progress. Returns each
/// reference's outcome in the given order.
///
/// The tags of one repository are pushed one after another, as `docker push --all-tags`
/// does: two pushes of the same layers to one repository at once make the registry
/// (distribution's filesystem storage) fail one of them now and then, with a 500
/// "invalid checksum digest format" or a "blob unknown" on the manifest.
pub(crate) async fn transfer_all(
    engine: &Engine,
    references: Vec<String>,
    jobs: usize,
    direction: Direction,
    quiet: bool,
) -> Vec<(String, Result<String, String>)> {
    let verb = if direction == Direction::Pull { "pull" } else { "push" };
    let display = Arc::new(Transfers::new(&references, verb, quiet));
    let limit = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut repository_locks: HashMap<String, Arc<tokio::sync::Mutex<()>>> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (position, reference) in references.iter().cloned().enumerate() {
        let (engine, display, limit) = (engine.clone(), display.clone(), limit.clone());
        let repository_lock = (direction == Direction::Push).then(|| {
            let repository =
                ImageRef::parse(&reference).map_or_else(|_| reference.clone(), |r| r.repository());
            repository_locks.entry(repository).or_default().clone()
        });
        tasks.spawn(async move {
            // The repository first: a push waiting for its turn holds no job slot.
            let _repository = match &repository_lock {
                Some(lock) => Some(lock.lock().await),
                None => None,
            };
            let _permit = limit.acquire_owned().await;
            display.started(&reference);
            let begin = Instant::now();
            let progress = display.clone();
            let name = reference.clone();
            let mut emit = move |event: kiln_engine::TransferEvent| {
                let status = match event.layer {
                    Some(layer) => format!("{} {layer}", event.status),
                    None => event.status,
                };
                progress.status(&name, &status);
            };
            let result = match direction {
                Direction::Pull => engine.pull(&reference, &mut emit).await,
                Direction::Push => engine.push(&reference, &mut emit).await,
            };
            let result = result
                .map(|()| format!("{verb}ed in {}", human_duration(begin.elapsed())))
                .map_err(|e| e.to_string());
            display.finished(&reference, &result);
            (position, reference, result)
        });
    }
    let mut outcomes: Vec<(usize, String, Result<String, String>)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(outcome) = joined {
            outcomes.push(outcome);
        }
    }
    outcomes.sort_by_key(|o| o.0);
    outcomes.into_iter().map(|(_, r, o)| (r, o)).collect()
}
