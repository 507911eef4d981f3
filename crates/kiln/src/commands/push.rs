//! `kiln push`: the selected images' tags, to their registry, in parallel. Only images
//! that are built, with all their tags on that same build, are pushed.

use serde::Serialize;

use super::engine_session::{self, Direction, transfer_all};
use crate::cli::{GlobalArgs, PushArgs};
use crate::session;
use crate::term::Term;
use crate::{CliError, ExitStatus};

#[derive(Serialize)]
struct Outcome {
    image: String,
    reference: String,
    /// `pushed`, `not-ready` or `failed`.
    status: &'static str,
    error: Option<String>,
}

pub(crate) fn run(global: &GlobalArgs, args: &PushArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let connected = engine_session::connect(global, term)?;
    let (project, engine) = (&connected.session.project, &connected.engine);
    let scope = connected.scope();
    let selected = scope.select(&args.targets, false).map_err(session::unknown_names)?;

    // Which images are ready: every tag present, on one build of this manifest.
    let mut ready: Vec<(String, Vec<String>)> = Vec::new();
    let mut not_ready: Vec<(String, String)> = Vec::new();
    for &index in &selected.images {
        let image = &project[index];
        let references = image.references();
        if kiln_reference::ImageRef::parse(&image.repository).is_ok_and(|r| r.domain.is_none()) {
            not_ready.push((
                image.name.clone(),
                format!("`{}` names no registry (it would go to Docker Hub); set `registry` in the manifest, or retag with `kiln tag --registry`", image.repository),
            ));
            continue;
        }
        let problem = connected.runtime.block_on(async {
            let mut id: Option<String> = None;
            for reference in &references {
                let info = match engine.inspect(reference).await {
                    Ok(Some(info)) => info,
                    Ok(None) => return Some(format!("`{reference}` is not built")),
                    Err(err) => return Some(err.to_string()),
                };
                if scope.owner(&info).as_deref() != Some(image.name.as_str()) {
                    return Some(format!("`{reference}` was not built from this manifest"));
                }
                match &id {
                    Some(first) if *first != info.id => {
                        return Some(format!(
                            "`{reference}` points at another build than `{}`",
                            references[0]
                        ));
                    }
                    _ => id = Some(info.id),
                }
            }
            None
        });
        match problem {
            Some(reason) => not_ready.push((image.name.clone(), reason)),
            None => ready.push((image.name.clone(), references)),
        }
    }
    let mut outcomes: Vec<Outcome> = not_ready
        .iter()
        .map(|(image, reason)| Outcome {
            image: image.clone(),
            reference: String::new(),
            status: "not-ready",
            error: Some(reason.clone()),
        })
        .collect();
    if args.all_or_nothing && !not_ready.is_empty() {
        let reasons = not_ready.iter().map(|(image, reason)| CliError::failure(format!("{image}: {reason}")));
        let nothing =
            CliError::failure("nothing pushed: --all-or-nothing and not every selected image is ready");
        return Err(match reasons.reduce(CliError::and) {
            Some(all) => all.and(nothing),
            None => nothing,
        });
    }
    let references: Vec<String> = ready.iter().flat_map(|(_, refs)| refs.clone()).collect();
    let pushed =
        connected.runtime.block_on(transfer_all(engine, references, args.jobs, Direction::Push, term.quiet));
    for (reference, result) in pushed {
        let image = ready
            .iter()
            .find(|(_, refs)| refs.contains(&reference))
            .map(|(i, _)| i.clone())
            .unwrap_or_default();
        outcomes.push(Outcome {
            image,
            status: if result.is_ok() { "pushed" } else { "failed" },
            error: result.err(),
            reference,
        });
    }
    let failed = outcomes.iter().filter(|o| o.status != "pushed").count();
    if args.json {
        term.json(&outcomes);
    } else {
        for outcome in &outcomes {
            match (&outcome.error, outcome.status) {
                (Some(error), "failed") => {
                    term.error(&format!("cannot push `{}`: {error}", outcome.reference));
                }
                (Some(error), _) => term.error(&format!("{} not pushed: {error}", outcome.image)),
                _ => {}
            }
        }
        term.info(&format!("{} pushed, {failed} not", outcomes.len() - failed));
    }
    Ok(if failed > 0 { ExitStatus::Failure } else { ExitStatus::Success })
}
