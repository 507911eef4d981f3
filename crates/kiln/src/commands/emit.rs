//! `kiln emit`: write the generated files, or check that they are up to date.

use std::path::Path;

use kiln_emit::{Change, PlannedChange, apply_changes, diff, output_files, plan_changes};
use serde::Serialize;

use crate::cli::{EmitArgs, GlobalArgs};
use crate::session::{self, count};
use crate::term::Term;
use crate::{CliError, ExitStatus};

#[derive(Serialize)]
struct JsonChange<'a> {
    path: &'a str,
    change: &'static str,
}

fn change_name(change: &Change) -> &'static str {
    match change {
        Change::Create => "created",
        Change::Update { .. } => "updated",
        Change::Remove { .. } => "removed",
        Change::Unchanged => "unchanged",
    }
}

pub(crate) fn run(global: &GlobalArgs, args: &EmitArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let session = session::load(global)?;
    session::report(&session, term)?;
    let project = &session.project;
    let files = output_files(project, &session.graph);
    let display = |path: &Path| kiln_manifest::display_name(&project.root_dir, path);
    let changes = plan_changes(&files, &project.output_dir, &display, args.force).map_err(|errors| {
        errors
            .iter()
            .map(|error| CliError::invalid(error.to_string()))
            .reduce(CliError::and)
            .unwrap_or_else(|| CliError::invalid("cannot write the generated files"))
            .hint("move the file away, or pass `--force` to let kiln replace it")
    })?;
    let stale: Vec<&PlannedChange> = changes.iter().filter(|c| c.change != Change::Unchanged).collect();

    if args.json {
        let list: Vec<JsonChange> =
            changes.iter().map(|c| JsonChange { path: &c.display, change: change_name(&c.change) }).collect();
        term.json(&list);
    }

    if args.check {
        if !args.json {
            for change in &stale {
                if let Some(text) = diff(change) {
                    term.out(&text);
                }
            }
        }
        if stale.is_empty() {
            term.info(&format!(
                "{} up to date in `{}`",
                count(files.len(), "generated file"),
                project.output
            ));
            return Ok(ExitStatus::Success);
        }
        return Err(CliError::failure(format!(
            "{} out of date in `{}`; run `kiln emit` and commit the result",
            count(stale.len(), "generated file"),
            project.output
        )));
    }

    apply_changes(&changes).map_err(|error| CliError::failure(error.to_string()))?;
    if !args.json {
        for change in &stale {
            term.info(&format!("{:>9} {}", change_name(&change.change), change.display));
        }
    }
    let tally = |name: &str| changes.iter().filter(|c| change_name(&c.change) == name).count();
    term.info(&format!(
        "emitted {} for {} in `{}` ({} created, {} updated, {} removed, {} unchanged)",
        count(files.len(), "file"),
        count(project.images.len(), "image"),
        project.output,
        tally("created"),
        tally("updated"),
        tally("removed"),
        tally("unchanged"),
    ));
    Ok(ExitStatus::Success)
}
