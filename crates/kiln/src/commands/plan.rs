//! `kiln plan`: what would be built, in order.

use std::fmt::Write;

use kiln_graph::Plan;

use crate::cli::{GlobalArgs, PlanArgs};
use crate::session::{self, count};
use crate::term::Term;
use crate::{CliError, ExitStatus};

pub(crate) fn run(global: &GlobalArgs, args: &PlanArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let session = session::load(global)?;
    session::report(&session, term)?;
    let targets = match &args.changed_since {
        Some(reference) => {
            let changed = session::changed_since(&session, &args.targets, reference)?;
            if changed.is_empty() {
                term.info(&format!("nothing changed since `{reference}`"));
            }
            changed
        }
        None => args.targets.clone(),
    };
    let plan = if args.changed_since.is_some() && targets.is_empty() {
        Plan::empty(&session.project)
    } else {
        Plan::new(&session.project, &session.graph, &targets).map_err(session::unknown_names)?
    };
    if args.json {
        term.json(&plan);
    } else {
        term.out(&render(&plan));
    }
    Ok(ExitStatus::Success)
}

fn render(plan: &Plan) -> String {
    let mut out = format!(
        "{}: {} in build order (dockerfile level {}, output `{}`)\n",
        plan.manifest,
        count(plan.images.len(), "image"),
        plan.dockerfile_level,
        plan.output
    );
    let width = plan.images.len().to_string().len();
    for (position, image) in plan.images.iter().enumerate() {
        let _ = writeln!(out, "\n{:>width$}. {}", position + 1, image.name);
        let pad = " ".repeat(width + 2);
        let mut field = |name: &str, values: &[String]| {
            for (i, value) in values.iter().enumerate() {
                let label = if i == 0 { name } else { "" };
                let _ = writeln!(out, "{pad}{label:<9}{value}");
            }
        };
        if let Some(of) = &image.variant_of {
            field("variant", &[format!("of `{of}`")]);
        }
        field("tags", &image.tags);
        field("needs", &image.depends_on);
        field("uses", &image.external_images);
        field("context", std::slice::from_ref(&image.context));
        let stages = if image.stages.len() > 1 { image.stages.join(" -> ") } else { image.target.clone() };
        field("stages", &[stages]);
        let args: Vec<String> = image.build_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        field("args", &args);
        if let Some(platform) = &image.platform {
            field("platform", std::slice::from_ref(platform));
        }
        field("files", &[image.dockerfile.clone(), image.dockerignore.clone()]);
        field("declared", std::slice::from_ref(&image.location));
    }
    out
}
