//! What ends a command early. Commands return `Result<ExitStatus, CliError>`; `main`
//! prints the error, in one place and one format, and exits with its status.

use crate::ExitStatus;
use crate::term::Term;

/// One or more problems (`error: …`, each with an optional `hint: …`) and the exit
/// status they mean: `Invalid` (2) for the manifest or the command line, `Failure` (1)
/// for the rest.
#[derive(Debug)]
pub(crate) struct CliError {
    status: ExitStatus,
    problems: Vec<Problem>,
}

#[derive(Debug)]
struct Problem {
    message: String,
    hint: Option<String>,
}

impl CliError {
    fn new(status: ExitStatus, message: impl Into<String>) -> Self {
        Self { status, problems: vec![Problem { message: message.into(), hint: None }] }
    }

    /// The manifest or the command line is wrong (exit status 2).
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ExitStatus::Invalid, message)
    }

    /// Something else failed (exit status 1).
    pub(crate) fn failure(message: impl Into<String>) -> Self {
        Self::new(ExitStatus::Failure, message)
    }

    /// A hint for the last problem.
    #[must_use]
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        if let Some(last) = self.problems.last_mut() {
            last.hint = Some(hint.into());
        }
        self
    }

    /// A hint, when there is one.
    #[must_use]
    pub(crate) fn hint_opt(self, hint: Option<String>) -> Self {
        match hint {
            Some(hint) => self.hint(hint),
            None => self,
        }
    }

    /// This error's problems, then `more`'s (the status stays this one's).
    #[must_use]
    pub(crate) fn and(mut self, more: CliError) -> Self {
        self.problems.extend(more.problems);
        self
    }

    pub(crate) fn status(&self) -> ExitStatus {
        self.status
    }

    pub(crate) fn print(&self, term: &Term) {
        for problem in &self.problems {
            term.error(&problem.message);
            if let Some(hint) = &problem.hint {
                errln!("\n{}", crate::term::for_stderr("hint: ", hint));
            }
        }
    }
}

impl From<kiln_engine::EngineError> for CliError {
    fn from(err: kiln_engine::EngineError) -> Self {
        Self::failure(err.to_string())
    }
}
