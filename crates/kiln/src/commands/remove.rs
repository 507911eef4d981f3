//! `kiln rmi`, `kiln clean` and `kiln prune`: removing the manifest's images. Only
//! builds of this manifest (`Scope::owner`) are ever removed, whatever the arguments,
//! and never one that a running build has pinned (see `kiln_marks::pin`).

use kiln_graph::UnknownSelection;
use kiln_images::Build;
use kiln_marks::pin::{self, Liveness};
use serde::Serialize;

use super::engine_session::{self, Connected};
use crate::cli::{GlobalArgs, PruneArgs, RemovalArgs, RmiArgs};
use crate::progress::short_id;
use crate::session::unknown_names;
use crate::term::Term;
use crate::{CliError, ExitStatus};

#[derive(Debug, Clone, Serialize)]
struct Removal {
    image: String,
    id: String,
    /// The tags removed.
    tags: Vec<String>,
    /// Whether the image itself goes (not only some tags).
    whole: bool,
    /// The running build that pinned the image, which is therefore kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    in_use_by: Option<String>,
    error: Option<String>,
}

pub(crate) fn rmi(global: &GlobalArgs, args: &RmiArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let connected = engine_session::connect(global, term)?;
    let scope = connected.scope();
    let builds = connected.builds(&scope)?;
    let project = &connected.session.project;
    let mut plan: Vec<Removal> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    for name in &args.names {
        if let Some((image, tag)) = name.rsplit_once(':') {
            let Some(index) = project.image_id(image) else {
                return Err(unknown(image, project, &builds));
            };
            let reference = format!("{}:{tag}", project[index].repository);
            match connected.runtime.block_on(connected.engine.inspect(&reference)) {
                Ok(Some(info)) if scope.owner(&info).is_some() => {
                    // The build goes with its last tag (its content tag is no name of
                    // the user's).
                    let whole = kiln_images::user_tags(&info.tags).len() <= 1;
                    plan.push(Removal {
                        image: image.to_owned(),
                        id: info.id,
                        tags: if whole { info.tags } else { vec![reference] },
                        whole,
                        in_use_by: None,
                        error: None,
                    });
                }
                Ok(Some(_)) => refused
                    .push(format!("`{reference}` was not built from this manifest; kiln leaves it alone")),
                Ok(None) => refused.push(format!("there is no `{reference}`")),
                Err(err) => refused.push(err.to_string()),
            }
            continue;
        }
        let images: Vec<String> = match project.groups.get(name) {
            Some(group) => group.images.clone(),
            None => vec![name.clone()],
        };
        let mut matched = false;
        for image in images {
            for build in builds.iter().filter(|b| b.image == image) {
                matched = true;
                plan.push(whole(build));
            }
        }
        if !matched {
            if project.image_id(name).is_none() && !project.groups.contains_key(name) {
                return Err(unknown(name, project, &builds));
            }
            term.info(&format!("no build of `{name}` to remove"));
        }
    }
    for reason in &refused {
        term.error(reason);
    }
    let status = execute(&connected, plan, &args.removal, InUse::Fails, term);
    Ok(if refused.is_empty() { status } else { ExitStatus::Failure })
}

pub(crate) fn clean(global: &GlobalArgs, args: &RemovalArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let connected = engine_session::connect(global, term)?;
    let scope = connected.scope();
    let plan: Vec<Removal> = connected.builds(&scope)?.iter().map(whole).collect();
    Ok(execute(&connected, plan, args, InUse::Fails, term))
}

/// Per image: keep the newest `keep` builds and every build that still has a tag (a pin
/// is not one); remove the other builds (untagged ones: superseded by later builds, or
/// dangling). Then the pins that runs which are gone left behind, on any image.
pub(crate) fn prune(global: &GlobalArgs, args: &PruneArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let connected = engine_session::connect(global, term)?;
    let scope = connected.scope();
    let builds = connected.builds(&scope)?;
    let mut plan = Vec::new();
    let mut kept_of: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    // `builds` lists each image's builds newest first.
    for build in &builds {
        let kept = kept_of.entry(build.image.as_str()).or_default();
        let tagged = !build.user_tags().is_empty();
        if *kept < args.keep || tagged || build.current {
            *kept += 1;
            continue;
        }
        plan.push(whole(build));
    }
    let pins = connected.runtime.block_on(connected.engine.tags_starting_with(pin::PREFIX))?;
    for (id, tag) in pins {
        let gone = pin::Run::of_pin(&tag).is_some_and(|run| run.liveness() == Liveness::Gone);
        // A pin on an image removed above goes with it.
        if gone && !plan.iter().any(|r| r.whole && r.id == id) {
            let image =
                tag.rsplit_once(':').and_then(|(repo, _)| repo.rsplit_once('/')).map_or("", |(_, n)| n);
            plan.push(Removal {
                image: image.to_owned(),
                id,
                tags: vec![tag],
                whole: false,
                in_use_by: None,
                error: None,
            });
        }
    }
    let removal = RemovalArgs { dry_run: args.dry_run, force: false, json: args.json };
    Ok(execute(&connected, plan, &removal, InUse::Kept, term))
}

/// Whether an image kept because a running build uses it makes the command fail: it
/// does for `rmi` and `clean`, which were asked to remove it; not for `prune`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InUse {
    Fails,
    Kept,
}

/// The running build whose pin an image carries, if any.
fn in_use_by(tags: &[String]) -> Option<String> {
    tags.iter()
        .filter_map(|tag| pin::Run::of_pin(tag))
        .find(|run| run.liveness() == Liveness::Alive)
        .map(|run| run.describe())
}

fn whole(build: &Build) -> Removal {
    Removal {
        image: build.image.clone(),
        id: build.info.id.clone(),
        tags: build.info.tags.clone(),
        whole: true,
        in_use_by: None,
        error: None,
    }
}

/// Reports a name that is no image or group; built images that left the manifest are
/// suggested too, since `rmi` can still remove them.
fn unknown(name: &str, project: &kiln_manifest::Project, builds: &[Build]) -> CliError {
    let candidates = builds.iter().map(|b| b.image.as_str());
    unknown_names(vec![UnknownSelection::among(project, name, candidates)])
}

/// Removes a build's tags, then (when it goes whole) the image; the error, if any.
async fn remove(engine: &kiln_engine::Engine, removal: &Removal, force: bool) -> Option<String> {
    for tag in &removal.tags {
        match engine.remove(tag, false, true).await {
            Ok(()) => {}
            // Gone already: a tag removed in an earlier round, or by someone else.
            Err(err) if err.to_string().contains("No such image") => {}
            Err(err) => return Some(err.to_string()),
        }
    }
    if !removal.whole {
        return None;
    }
    match engine.inspect(&removal.id).await {
        Ok(Some(_)) => engine.remove(&removal.id, force, true).await.err().map(|e| e.to_string()),
        _ => None,
    }
}

fn execute(
    connected: &Connected,
    mut plan: Vec<Removal>,
    &RemovalArgs { dry_run, force, json }: &RemovalArgs,
    in_use: InUse,
    term: &Term,
) -> ExitStatus {
    // One entry per image ID: the same build may be named twice.
    plan.dedup_by(|a, b| a.id == b.id && a.whole && b.whole);
    for removal in plan.iter_mut().filter(|r| r.whole) {
        removal.in_use_by = in_use_by(&removal.tags);
    }
    if !dry_run {
        // An image the classic builder built another one on cannot go before it (a
        // chain base -> app -> tests is removed in up to three rounds): removals refused
        // for that go round again, as long as a round removes something.
        let has_children =
            |r: &Removal| r.error.as_deref().is_some_and(|e| e.contains("dependent child images"));
        let mut first = true;
        loop {
            let mut progress = false;
            for removal in plan.iter_mut().filter(|r| r.in_use_by.is_none()) {
                if !first && !has_children(removal) {
                    continue;
                }
                removal.error = connected.runtime.block_on(remove(&connected.engine, removal, force));
                progress |= removal.error.is_none();
            }
            first = false;
            if !progress || !plan.iter().any(has_children) {
                break;
            }
        }
    }
    let failed = plan
        .iter()
        .filter(|r| r.error.is_some() || (in_use == InUse::Fails && r.in_use_by.is_some()))
        .count();
    if json {
        term.json(&plan);
    } else {
        let verb = if dry_run { "would remove" } else { "removed" };
        for removal in &plan {
            let what = if removal.whole {
                let tags =
                    if removal.tags.is_empty() { "untagged".to_owned() } else { removal.tags.join(", ") };
                format!("{} {} ({tags})", removal.image, short_id(&removal.id))
            } else {
                format!("tag {}", removal.tags.join(", "))
            };
            match (&removal.in_use_by, &removal.error) {
                (Some(user), _) if in_use == InUse::Fails => {
                    term.error(&format!("cannot remove {what}: {user} uses it"));
                }
                (Some(user), _) => term.info(&format!("kept {what}: {user} uses it")),
                (None, None) => term.out(&format!("{verb} {what}\n")),
                (None, Some(error)) => term.error(&format!("cannot remove {what}: {error}")),
            }
        }
        if plan.is_empty() {
            term.info("nothing to remove");
        }
    }
    if failed > 0 { ExitStatus::Failure } else { ExitStatus::Success }
}
