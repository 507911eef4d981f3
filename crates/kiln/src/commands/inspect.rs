//! `kiln inspect IMAGE`: what the engine knows of an image, with kiln's labels read out.

use std::fmt::Write as _;

use kiln_marks::labels;
use serde::Serialize;

use super::engine_session;
use crate::cli::{GlobalArgs, InspectArgs};
use crate::progress::human_size;
use crate::session;
use crate::term::Term;
use crate::{CliError, ExitStatus};

#[derive(Serialize)]
struct Inspected {
    image: String,
    reference: String,
    id: String,
    digests: Vec<String>,
    tags: Vec<String>,
    size: u64,
    created: String,
    platform: Option<String>,
    /// The input key, when kiln built the image.
    key: Option<String>,
    /// The project kiln built the image for.
    project: Option<String>,
    /// Whether kiln built the image from this manifest (it carries a content tag of one
    /// of the manifest's images, for this project).
    from_this_manifest: bool,
    labels: std::collections::BTreeMap<String, String>,
}

pub(crate) fn run(global: &GlobalArgs, args: &InspectArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let connected = engine_session::connect(global, term)?;
    let (project, engine) = (&connected.session.project, &connected.engine);
    let scope = connected.scope();
    let (index, reference) =
        super::history::resolve(&scope, &args.image).map_err(|u| session::unknown_names(vec![u]))?;
    let info = match connected.runtime.block_on(engine.inspect(&reference)) {
        Ok(Some(info)) => info,
        Ok(None) => {
            return Err(CliError::failure(format!(
                "there is no `{reference}` here (build it with `kiln build {}`)",
                project[index].name
            )));
        }
        Err(err) => return Err(err.into()),
    };
    let inspected = Inspected {
        image: project[index].name.clone(),
        reference,
        from_this_manifest: scope.owner(&info).is_some(),
        key: scope.owner(&info).and(info.labels.get(labels::KEY).cloned()),
        project: scope.owner(&info).and(info.labels.get(labels::PROJECT).cloned()),
        id: info.id,
        digests: info.digests,
        tags: info.tags,
        size: info.size,
        created: info.created,
        platform: info.platform,
        labels: info.labels.into_iter().collect(),
    };
    if args.json {
        term.json(&inspected);
        return Ok(ExitStatus::Success);
    }
    let mut out = String::new();
    let mut field = |name: &str, value: &str| {
        let _ = writeln!(out, "{name:<14}{value}");
    };
    field("image", &inspected.image);
    field("reference", &inspected.reference);
    field("id", &inspected.id);
    for (i, digest) in inspected.digests.iter().enumerate() {
        field(if i == 0 { "digests" } else { "" }, digest);
    }
    for (i, tag) in inspected.tags.iter().enumerate() {
        field(if i == 0 { "tags" } else { "" }, tag);
    }
    field("size", &human_size(inspected.size));
    field("created", &inspected.created);
    field("platform", inspected.platform.as_deref().unwrap_or("-"));
    field("key", inspected.key.as_deref().unwrap_or("- (not built by kiln for this project)"));
    field("project", inspected.project.as_deref().unwrap_or("-"));
    field("this manifest", if inspected.from_this_manifest { "yes" } else { "no" });
    for (i, (key, value)) in inspected.labels.iter().enumerate() {
        field(if i == 0 { "labels" } else { "" }, &format!("{key}={value}"));
    }
    term.out(&out);
    Ok(ExitStatus::Success)
}
