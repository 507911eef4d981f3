//! `kiln rmi`, `kiln clean` and `kiln prune`: removing the manifest's images. Only
//! images that carry this manifest's label are ever removed, whatever the arguments.

use kiln_build::labels;
use kiln_graph::UnknownSelection;
use kiln_images::Build;
use serde::Serialize;

use super::engine_session::{self, Connected};
use crate::Status;
use crate::cli::{GlobalArgs, PruneArgs, RemovalArgs, RmiArgs};
use crate::progress::short_id;
use crate::session::unknown_names;
use crate::term::Term;

#[derive(Debug, Clone, Serialize)]
struct Removal {
    image: String,
    id: String,
    /// The tags removed.
    tags: Vec<String>,
    /// Whether the image itself goes (not only some tags).
    whole: bool,
    error: Option<String>,
}

pub(crate) fn rmi(global: &GlobalArgs, args: &RmiArgs, term: &Term) -> Result<Status, Status> {
    let connected = engine_session::connect(global, term)?;
    let scope = connected.scope();
    let builds = connected.builds(&scope, term)?;
    let project = &connected.session.project;
    let mut plan: Vec<Removal> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    for name in &args.names {
        if let Some((image, tag)) = name.rsplit_once(':') {
            let Some(index) = project.image_index(image) else {
                return Err(unknown(term, image, project, &builds));
            };
            let reference = format!("{}:{tag}", project.images[index].repository);
            match connected.runtime.block_on(connected.engine.inspect(&reference)) {
                Ok(Some(info)) if info.labels.get(labels::MANIFEST) == Some(&scope.manifest) => {
                    let whole = info.tags.len() <= 1;
                    plan.push(Removal {
                        image: image.to_owned(),
                        id: info.id,
                        tags: vec![reference],
                        whole,
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
            if project.image_index(name).is_none() && !project.groups.contains_key(name) {
                return Err(unknown(term, name, project, &builds));
            }
            term.info(&format!("no build of `{name}` to remove"));
        }
    }
    for reason in &refused {
        term.error(reason);
    }
    let status = execute(&connected, plan, &args.removal, term);
    Ok(if refused.is_empty() { status } else { Status::Failure })
}

pub(crate) fn clean(global: &GlobalArgs, args: &RemovalArgs, term: &Term) -> Result<Status, Status> {
    let connected = engine_session::connect(global, term)?;
    let scope = connected.scope();
    let plan: Vec<Removal> = connected.builds(&scope, term)?.iter().map(whole).collect();
    Ok(execute(&connected, plan, args, term))
}

/// Per image: keep the newest `keep` builds and every build that still has a tag;
/// remove the other builds (untagged ones: superseded by later builds, or dangling).
pub(crate) fn prune(global: &GlobalArgs, args: &PruneArgs, term: &Term) -> Result<Status, Status> {
    let connected = engine_session::connect(global, term)?;
    let scope = connected.scope();
    let builds = connected.builds(&scope, term)?;
    let mut plan = Vec::new();
    let mut kept_of: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    // `builds` lists each image's builds newest first.
    for build in &builds {
        let kept = kept_of.entry(build.image.as_str()).or_default();
        if *kept < args.keep || !build.info.tags.is_empty() || build.current {
            *kept += 1;
            continue;
        }
        plan.push(whole(build));
    }
    let removal = RemovalArgs { dry_run: args.dry_run, force: false, json: args.json };
    Ok(execute(&connected, plan, &removal, term))
}

fn whole(build: &Build) -> Removal {
    Removal {
        image: build.image.clone(),
        id: build.info.id.clone(),
        tags: build.info.tags.clone(),
        whole: true,
        error: None,
    }
}

/// Reports a name that is no image or group; built images that left the manifest are
/// suggested too, since `rmi` can still remove them.
fn unknown(term: &Term, name: &str, project: &kiln_manifest::Project, builds: &[Build]) -> Status {
    let candidates = builds.iter().map(|b| b.image.as_str());
    unknown_names(term, vec![UnknownSelection::among(project, name, candidates)])
}

fn execute(
    connected: &Connected,
    mut plan: Vec<Removal>,
    &RemovalArgs { dry_run, force, json }: &RemovalArgs,
    term: &Term,
) -> Status {
    // One entry per image ID: the same build may be named twice.
    plan.dedup_by(|a, b| a.id == b.id && a.whole && b.whole);
    if !dry_run {
        for removal in &mut plan {
            removal.error = connected.runtime.block_on(async {
                for tag in &removal.tags {
                    if let Err(err) = connected.engine.remove(tag, false, false).await {
                        return Some(err.to_string());
                    }
                }
                if removal.whole {
                    match connected.engine.inspect(&removal.id).await {
                        Ok(Some(_)) => connected
                            .engine
                            .remove(&removal.id, force, true)
                            .await
                            .err()
                            .map(|e| e.to_string()),
                        _ => None,
                    }
                } else {
                    None
                }
            });
        }
    }
    let failed = plan.iter().filter(|r| r.error.is_some()).count();
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
            match &removal.error {
                None => term.out(&format!("{verb} {what}\n")),
                Some(error) => term.error(&format!("cannot remove {what}: {error}")),
            }
        }
        if plan.is_empty() {
            term.info("nothing to remove");
        }
    }
    if failed > 0 { Status::Failure } else { Status::Success }
}
