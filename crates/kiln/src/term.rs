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
        errln!("{}", for_stderr("error: ", text));
    }

    pub(crate) fn diagnostic(&self, diagnostic: &Diagnostic, sources: &SourceMap) {
        if self.quiet && !diagnostic.is_error() {
            return;
        }
        let options = RenderOptions { color: self.color, width: 80 };
        errp!("{}", kiln_manifest::render_diagnostic(diagnostic, sources, options));
    }
}

/// A message for stderr: wrapped to the terminal's width when stderr is one; whole lines
/// otherwise, so that logs and `grep` see each message on one line.
pub(crate) fn for_stderr(prefix: &str, text: &str) -> String {
    match console::Term::stderr().size_checked() {
        Some((_, columns)) if std::io::stderr().is_terminal() => {
            wrapped(prefix, text, usize::from(columns).max(40))
        }
        _ => format!("{prefix}{text}"),
    }
}

/// `prefix` and `text`, wrapped at word boundaries to `width`: lines that go on are
/// indented under the text, and a line of `text` keeps its own indentation. A word longer
/// than a line (a path, a command, a reference) is never cut, not even at a hyphen.
fn wrapped(prefix: &str, text: &str, width: usize) -> String {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let first = if index == 0 { format!("{prefix}{indent}") } else { indent.to_owned() };
        let rest = " ".repeat(if index == 0 { prefix.len() } else { 0 })
            + indent
            + if index == 0 { "" } else { "  " };
        let options = textwrap::Options::new(width)
            .initial_indent(&first)
            .subsequent_indent(&rest)
            .break_words(false)
            .word_splitter(textwrap::WordSplitter::NoHyphenation)
            .word_separator(textwrap::WordSeparator::AsciiSpace);
        let filled = textwrap::fill(line.trim_start(), options);
        out.push(if filled.is_empty() { first.trim_end().to_owned() } else { filled });
    }
    if out.is_empty() {
        out.push(prefix.trim_end().to_owned());
    }
    out.join("\n")
}

/// Writes to stderr, ignoring a closed one (see `errln!`).
pub(crate) fn to_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes()).and_then(|()| stderr.flush());
}

#[cfg(test)]
mod tests {
    use super::wrapped;

    #[test]
    fn long_messages_wrap_at_word_boundaries() {
        let message = "cannot remove base a95a707c0f86 (kiln-it/foreign-classic/base:kiln-3d5c6591b3409d32f0440fe9): conflict: unable to delete a95a707c0f86 (cannot be forced)\n  image `api`, at services/api/kiln.kdl:12:5";
        assert_eq!(
            wrapped("error: ", message, 60),
            "error: cannot remove base a95a707c0f86\n       (kiln-it/foreign-classic/base:kiln-3d5c6591b3409d32f0440fe9):\n       conflict: unable to delete a95a707c0f86 (cannot be\n       forced)\n  image `api`, at services/api/kiln.kdl:12:5"
        );
        assert_eq!(wrapped("hint: ", "short", 60), "hint: short");
        assert_eq!(wrapped("error: ", "", 60), "error:");
    }
}
