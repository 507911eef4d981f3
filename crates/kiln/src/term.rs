//! Where output goes: data to stdout, diagnostics and progress to stderr.

use std::io::{IsTerminal, Write};

use kiln_manifest::{Diagnostic, RenderOptions, SourceMap};

use crate::cli::{ColorChoice, GlobalArgs};

pub(crate) struct Term {
    color: bool,
    pub quiet: bool,
}

impl Term {
    pub(crate) fn new(global: &GlobalArgs) -> Self {
        let color = match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
            }
        };
        Self { color, quiet: global.quiet }
    }

    /// Writes data to stdout. A closed pipe (`kiln plan | head`) is not an error.
    pub(crate) fn out(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    }

    /// A value as pretty JSON on stdout, for `--json`.
    pub(crate) fn json(&self, value: &impl serde::Serialize) {
        self.out(&(serde_json::to_string_pretty(value).expect("kiln's output types serialize") + "\n"));
    }

    /// A message line on stderr.
    pub(crate) fn info(&self, text: &str) {
        if !self.quiet {
            errln!("{text}");
        }
    }

    pub(crate) fn error(&self, text: &str) {
        errln!("error: {text}");
    }

    pub(crate) fn diagnostic(&self, diagnostic: &Diagnostic, sources: &SourceMap) {
        if self.quiet && !diagnostic.is_error() {
            return;
        }
        let options = RenderOptions { color: self.color, width: 80 };
        errp!("{}", kiln_manifest::render_diagnostic(diagnostic, sources, options));
    }
}

/// Writes to stderr, ignoring a closed one (see `errln!`).
pub(crate) fn to_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes()).and_then(|()| stderr.flush());
}
