//! `kiln bake`: the plan as a `docker-bake.json`.

use crate::cli::{BakeArgs, GlobalArgs};
use crate::session;
use crate::term::Term;
use crate::{CliError, ExitStatus};

pub(crate) fn run(global: &GlobalArgs, args: &BakeArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let session = session::load(global)?;
    session::report(&session, term)?;
    let bake = kiln_emit::bake_file(&session.project, &session.graph)
        .map_err(|clash| CliError::invalid(clash.to_string()).hint("rename one of them"))?;
    let text = serde_json::to_string_pretty(&bake).expect("JSON values serialize") + "\n";
    match &args.output {
        None => term.out(&text),
        Some(path) => {
            kiln_emit::write_atomically(path, &text)
                .map_err(|e| CliError::failure(format!("cannot write `{}`: {e}", path.display())))?;
            term.info(&format!("wrote {}", path.display()));
        }
    }
    Ok(ExitStatus::Success)
}
