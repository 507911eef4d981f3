//! `kiln check`: every diagnostic of the manifest, at once.

use serde::Serialize;

use crate::cli::{CheckArgs, GlobalArgs};
use crate::session::{self, count};
use crate::term::Term;
use crate::{CliError, ExitStatus};

#[derive(Serialize)]
struct JsonReport {
    errors: usize,
    warnings: usize,
    diagnostics: Vec<JsonDiagnostic>,
}

#[derive(Serialize)]
struct JsonDiagnostic {
    severity: &'static str,
    code: &'static str,
    message: String,
    /// `file:line:col` of the primary label.
    location: Option<String>,
    labels: Vec<JsonLabel>,
    help: Option<String>,
}

#[derive(Serialize)]
struct JsonLabel {
    location: String,
    message: String,
}

pub(crate) fn run(global: &GlobalArgs, args: &CheckArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let session = session::load(global)?;
    let errors = session.error_count();
    if args.json {
        let sources = &session.project.sources;
        let report = JsonReport {
            errors,
            warnings: session.warning_count(),
            diagnostics: session
                .diagnostics
                .iter()
                .map(|d| JsonDiagnostic {
                    severity: if d.is_error() { "error" } else { "warning" },
                    code: d.code.name(),
                    message: d.message.clone(),
                    location: d.primary_span().map(|s| sources.location(s)),
                    labels: d
                        .labels
                        .iter()
                        .map(|l| JsonLabel { location: sources.location(l.span), message: l.message.clone() })
                        .collect(),
                    help: d.help.clone(),
                })
                .collect(),
        };
        term.json(&report);
        return Ok(if errors > 0 { ExitStatus::Invalid } else { ExitStatus::Success });
    }
    session::report(&session, term)?;
    let project = &session.project;
    let warnings = session.warning_count();
    let mut summary = format!(
        "`{}`: {} and {} checked",
        project.manifest,
        count(project.images.len(), "image"),
        count(project.sources.files().count(), "file"),
    );
    if warnings > 0 {
        summary.push_str(&format!(", {}", count(warnings, "warning")));
    } else {
        summary.push_str(", no problems");
    }
    term.info(&summary);
    Ok(ExitStatus::Success)
}
