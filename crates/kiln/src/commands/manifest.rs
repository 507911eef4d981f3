//! `kiln manifest`: the resolved manifest as JSON, to see what templates, variants and
//! variables produced.

use crate::cli::GlobalArgs;
use crate::session;
use crate::term::Term;
use crate::{CliError, ExitStatus};

pub(crate) fn run(global: &GlobalArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let session = session::load(global)?;
    session::report(&session, term)?;
    term.json(&session.project);
    Ok(ExitStatus::Success)
}
