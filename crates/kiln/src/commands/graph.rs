//! `kiln graph [IMAGE|GROUP...]`: the dependency graph, or the part of it the named
//! images need (and, with `--dependents`, what is built on them), in several formats.

use crate::cli::{GlobalArgs, GraphArgs, GraphFormat};
use crate::session;
use crate::term::Term;
use crate::{CliError, ExitStatus};

pub(crate) fn run(global: &GlobalArgs, args: &GraphArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let session = session::load(global)?;
    session::report(&session, term)?;
    let (project, graph) = (&session.project, &session.graph);
    let shown =
        kiln_graph::shown(project, graph, &args.targets, args.dependents).map_err(session::unknown_names)?;
    let text = match args.format {
        GraphFormat::Text => kiln_graph::render_text(project, graph, &shown),
        GraphFormat::Dot => kiln_graph::render_dot(project, graph, &shown),
        GraphFormat::Mermaid => kiln_graph::render_mermaid(project, graph, &shown),
        GraphFormat::Json => kiln_graph::render_json(project, graph, &shown),
    };
    term.out(&text);
    Ok(ExitStatus::Success)
}
