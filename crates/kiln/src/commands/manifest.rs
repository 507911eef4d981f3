//! `kiln manifest`: the resolved manifest as JSON, to see what templates, variants and
//! variables produced.

use crate::Status;
use crate::cli::GlobalArgs;
use crate::session;
use crate::term::Term;

pub(crate) fn run(global: &GlobalArgs, term: &Term) -> Result<Status, Status> {
    let session = session::load(global, term)?;
    session::report(&session, term)?;
    term.json(&session.project);
    Ok(Status::Success)
}
