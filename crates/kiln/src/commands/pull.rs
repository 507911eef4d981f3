//! `kiln pull`: the outside images the selected images build on (or, with `--built`,
//! the manifest's own images), in parallel, by pull policy.

use kiln_images::pull_targets;
use kiln_manifest::PullPolicy;
use serde::Serialize;

use super::engine_session::{self, Direction, transfer_all};
use crate::cli::{GlobalArgs, PolicyChoice, PullArgs};
use crate::session;
use crate::term::Term;
use crate::{CliError, ExitStatus};

#[derive(Serialize)]
struct Outcome {
    reference: String,
    /// `pulled`, `present` or `failed`.
    status: &'static str,
    error: Option<String>,
}

pub(crate) fn run(global: &GlobalArgs, args: &PullArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let connected = engine_session::connect(global, term)?;
    let (project, engine) = (&connected.session.project, &connected.engine);
    let scope = connected.scope();
    let selected = scope.select(&args.targets, !args.built).map_err(session::unknown_names)?;
    let policy = args.policy.map(|p| match p {
        PolicyChoice::Always => PullPolicy::Always,
        PolicyChoice::Missing => PullPolicy::Missing,
        PolicyChoice::Never => PullPolicy::Never,
    });
    let targets: Vec<(String, PullPolicy)> = if args.built {
        selected
            .images
            .iter()
            .flat_map(|&i| project[i].references())
            .map(|r| (r, policy.unwrap_or(PullPolicy::Always)))
            .collect()
    } else {
        pull_targets(project, &selected.images, policy)
    };
    let outcomes = connected.runtime.block_on(pull(engine, targets, args.jobs, term.quiet));
    Ok(report(&outcomes, args.json, term))
}

/// Pulls what each policy asks for; used by `kiln build --pull` too (policy `always`).
pub(crate) async fn pull(
    engine: &kiln_engine::Engine,
    targets: Vec<(String, PullPolicy)>,
    jobs: usize,
    quiet: bool,
) -> Vec<(String, Result<String, String>)> {
    let mut outcomes = Vec::new();
    let mut to_pull = Vec::new();
    for (reference, policy) in targets {
        let present = matches!(engine.inspect(&reference).await, Ok(Some(_)));
        match policy {
            PullPolicy::Always => to_pull.push(reference),
            PullPolicy::Missing if !present => to_pull.push(reference),
            PullPolicy::Missing => outcomes.push((reference, Ok("present".to_owned()))),
            PullPolicy::Never if present => outcomes.push((reference, Ok("present".to_owned()))),
            PullPolicy::Never => {
                outcomes.push((reference, Err("not here, and its pull policy is `never`".to_owned())));
            }
        }
    }
    outcomes.extend(transfer_all(engine, to_pull, jobs, Direction::Pull, quiet).await);
    outcomes
}

fn report(outcomes: &[(String, Result<String, String>)], json: bool, term: &Term) -> ExitStatus {
    let failed = outcomes.iter().filter(|(_, r)| r.is_err()).count();
    if json {
        let list: Vec<Outcome> = outcomes
            .iter()
            .map(|(reference, result)| Outcome {
                reference: reference.clone(),
                status: match result {
                    Ok(text) if text == "present" => "present",
                    Ok(_) => "pulled",
                    Err(_) => "failed",
                },
                error: result.as_ref().err().cloned(),
            })
            .collect();
        term.json(&list);
    } else {
        for (reference, result) in outcomes {
            if let Err(error) = result {
                term.error(&format!("cannot pull `{reference}`: {error}"));
            }
        }
        let present = outcomes.iter().filter(|(_, r)| r.as_deref() == Ok("present")).count();
        term.info(&format!(
            "{} pulled, {present} already here, {failed} failed",
            outcomes.len() - present - failed
        ));
    }
    if failed > 0 { ExitStatus::Failure } else { ExitStatus::Success }
}
