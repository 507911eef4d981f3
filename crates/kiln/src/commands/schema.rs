//! `kiln schema`: JSON Schemas of kiln's JSON documents (also committed under `schema/`).

use crate::ExitStatus;
use crate::cli::{SchemaArgs, SchemaKind};
use crate::term::Term;

/// The schema text for a document kind, as committed under `schema/`.
pub(crate) fn schema_text(kind: SchemaKind) -> String {
    let schema = match kind {
        SchemaKind::Plan => schemars::schema_for!(super::plan::Plan),
        SchemaKind::Manifest => schemars::schema_for!(kiln_manifest::Project),
        SchemaKind::BuildEvents => schemars::schema_for!(kiln_build::TimedEvent),
    };
    serde_json::to_string_pretty(&schema).expect("schemas serialize") + "\n"
}

pub(crate) fn run(args: &SchemaArgs, term: &Term) -> ExitStatus {
    term.out(&schema_text(args.which));
    ExitStatus::Success
}
