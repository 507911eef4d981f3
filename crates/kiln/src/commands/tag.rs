//! `kiln tag FROM TO`: adds tag TO wherever tag FROM exists, for the selected images.
//! Variants share their image's repository: `api:latest` is `api`'s build, so `api.prod`
//! skips it (and says so) rather than failing.

use kiln_images::retarget;
use kiln_reference::{validate_repository, validate_tag};
use serde::Serialize;

use super::engine_session;
use crate::cli::{GlobalArgs, TagArgs};
use crate::session;
use crate::term::Term;
use crate::{CliError, ExitStatus};

#[derive(Serialize)]
struct Tagged {
    image: String,
    from: String,
    to: String,
    /// Why it was left alone, when `from` names another image's build of this manifest
    /// (a variant's sibling).
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
    /// Why it was not tagged, if it was not.
    error: Option<String>,
}

pub(crate) fn run(global: &GlobalArgs, args: &TagArgs, term: &Term) -> Result<ExitStatus, CliError> {
    if let Err(err) = validate_tag(&args.to) {
        return Err(CliError::invalid(format!("`{}` is not a valid tag: {err}", args.to)));
    }
    if let Some(registry) = &args.registry
        && let Err(err) = validate_repository(&format!("{}/x", registry.trim_end_matches('/')))
    {
        return Err(CliError::invalid(format!("`{registry}` is not a valid registry: {err}")));
    }
    let connected = engine_session::connect(global, term)?;
    let (project, engine) = (&connected.session.project, &connected.engine);
    let scope = connected.scope();
    let selected = scope.select(&args.targets, false).map_err(session::unknown_names)?;
    let mut results = Vec::new();
    for &index in &selected.images {
        let image = &project[index];
        let from = format!("{}:{}", image.repository, args.from);
        let repository = match &args.registry {
            Some(registry) => retarget(&image.repository, &image.name, registry),
            None => image.repository.clone(),
        };
        let to = format!("{repository}:{}", args.to);
        let (skipped, error) = connected.runtime.block_on(async {
            let info = match engine.inspect(&from).await {
                Ok(Some(info)) => info,
                Ok(None) if image.variant.is_some() => {
                    return (
                        Some(format!("no `{from}` (the variant has no build tagged `{}`)", args.from)),
                        None,
                    );
                }
                Ok(None) => return (None, Some(format!("no `{from}` here (build it first)"))),
                Err(err) => return (None, Some(err.to_string())),
            };
            match scope.owner(&info) {
                Some(owner) if owner == image.name => {
                    (None, engine.tag(&info.id, &to).await.err().map(|e| e.to_string()))
                }
                Some(owner) => (Some(format!("`{from}` is `{owner}`'s build")), None),
                None => {
                    (None, Some(format!("`{from}` was not built from this manifest; kiln leaves it alone")))
                }
            }
        });
        results.push(Tagged { image: image.name.clone(), from, to, skipped, error });
    }
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    let tagged = results.iter().filter(|r| r.error.is_none() && r.skipped.is_none()).count();
    if args.json {
        term.json(&results);
    } else {
        for result in &results {
            match (&result.skipped, &result.error) {
                (Some(reason), _) => term.info(&format!("{}: skipped: {reason}", result.image)),
                (None, None) => term.out(&format!("tagged {} as {}\n", result.from, result.to)),
                (None, Some(error)) => term.error(&format!("{}: {error}", result.image)),
            }
        }
    }
    Ok(if failed > 0 || tagged == 0 { ExitStatus::Failure } else { ExitStatus::Success })
}
