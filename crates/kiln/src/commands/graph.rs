//! `kiln graph`: the dependency graph in several formats.

use crate::Status;
use crate::cli::{GlobalArgs, GraphArgs, GraphFormat};
use crate::session;
use crate::term::Term;

pub(crate) fn run(global: &GlobalArgs, args: &GraphArgs, term: &Term) -> Result<Status, Status> {
    let session = session::load(global, term)?;
    session::report(&session, term)?;
    let (project, graph) = (&session.project, &session.graph);
    let text = match args.format {
        GraphFormat::Text => kiln_graph::render_text(project, graph),
        GraphFormat::Dot => kiln_graph::render_dot(project, graph),
        GraphFormat::Mermaid => kiln_graph::render_mermaid(project, graph),
        GraphFormat::Json => kiln_graph::render_json(project, graph),
    };
    term.out(&text);
    Ok(Status::Success)
}
