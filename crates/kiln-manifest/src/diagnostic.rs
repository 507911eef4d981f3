//! Diagnostics: errors and warnings as data, with spans into the manifest files.
//!
//! Every stage collects diagnostics instead of stopping at the first one. Rendering is
//! separate ([`render`]), through miette, so that tests can assert codes and spans while
//! snapshots check the text users read.

use std::fmt::{self, Write as _};

use std::sync::Arc;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, NamedSource,
    SourceCode, SourceSpan, SpanContents,
};

use crate::source::{FileId, SourceMap, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Only used to draw the parts of a diagnostic that are in other files.
    Note,
    Warning,
    Error,
}

macro_rules! codes {
    ($($variant:ident => $name:literal, $severity:ident,)*) => {
        /// A stable identifier for each kind of diagnostic, shown as `error[name]`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            /// Every code, in the table's order (the corpus test checks each has a
            /// fixture).
            pub const ALL: &[Code] = &[$(Code::$variant,)*];

            pub fn name(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            /// Whether a diagnostic of this code is an error or a warning.
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }
        }
    };
}

codes! {
    Io => "io", Error,
    KdlSyntax => "kdl-syntax", Error,
    UnknownNode => "unknown-node", Error,
    UnknownProperty => "unknown-property", Error,
    MisplacedNode => "misplaced-node", Error,
    ArgumentCount => "argument-count", Error,
    ArgumentType => "argument-type", Error,
    MissingValue => "missing-value", Error,
    ConflictingValues => "conflicting-values", Error,
    DuplicateName => "duplicate-name", Error,
    InvalidName => "invalid-name", Error,
    UnknownReference => "unknown-reference", Error,
    Cycle => "cycle", Error,
    IncludeNotFound => "include-not-found", Error,
    UndefinedVariable => "undefined-variable", Error,
    VariableNotAllowed => "variable-not-allowed", Error,
    InvalidReference => "invalid-reference", Error,
    InvalidTag => "invalid-tag", Error,
    TagCollision => "tag-collision", Error,
    RelativeWorkdir => "relative-workdir", Error,
    PathOutsideContext => "path-outside-context", Error,
    MissingContext => "missing-context", Error,
    IgnoredCopySource => "ignored-copy-source", Error,
    InvalidIgnorePattern => "invalid-ignore-pattern", Error,
    InvalidValue => "invalid-value", Error,
    Unexpressible => "unexpressible", Error,
    UnsupportedAtLevel => "unsupported-at-level", Error,
    MissingBase => "missing-base", Error,
    CommandInOneArgument => "command-in-one-argument", Error,
    MissingFile => "missing-file", Warning,
    UnusedStage => "unused-stage", Warning,
    UndeclaredBuildArg => "undeclared-build-arg", Warning,
    BaseNotPinned => "base-not-pinned", Warning,
    DuplicateInstruction => "duplicate-instruction", Warning,
    CacheOrder => "cache-order", Warning,
    SecretInEnv => "secret-in-env", Warning,
    MissingWorkdir => "missing-workdir", Warning,
    ShipsHostPackages => "ships-host-packages", Warning,
    RunsAsRoot => "runs-as-root", Warning,
    BuildToolsInImage => "build-tools-in-image", Warning,
    BuildFailed => "build-failed", Error,
    InvalidLock => "invalid-lock", Error,
    StaleLock => "stale-lock", Warning,
    UnpinnableBase => "unpinnable-base", Warning,
    InvalidUtf8 => "invalid-utf8", Error,
}

impl Code {
    /// Advice: a best practice rather than a likely mistake. It is withdrawn while the
    /// manifest has errors ([`Diagnostics::withdraw_advice_on_errors`]), so that they stand out.
    pub fn is_advice(self) -> bool {
        matches!(self, Code::RunsAsRoot)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A span with the text shown under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    /// Lower-case, no trailing period, names in backticks.
    pub message: String,
    /// The first label is the primary one.
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic of `code`, with the severity the code table gives it.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { severity: code.severity(), code, message: message.into(), labels: Vec::new(), help: None }
    }

    #[must_use]
    pub fn label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label { span, message: message.into() });
        self
    }

    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn help_opt(mut self, help: Option<String>) -> Self {
        self.help = help.or(self.help);
        self
    }

    /// "`what` `name` is declared twice", pointing at both declarations.
    pub fn duplicate(what: &str, name: &str, again: Span, first: Span) -> Self {
        Self::new(Code::DuplicateName, format!("{what} `{name}` is declared twice"))
            .label(again, "declared again here")
            .label(first, "first declared here")
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }
}

/// A growing list of diagnostics, shared by a stage's passes.
#[derive(Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    /// Drops the advice when there are errors (see [`Code::is_advice`]).
    pub fn withdraw_advice_on_errors(&mut self) {
        if self.has_errors() {
            self.items.retain(|d| !d.code.is_advice());
        }
    }

    pub fn retain(&mut self, keep: impl FnMut(&Diagnostic) -> bool) {
        self.items.retain(keep);
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(other);
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// The diagnostics in source order (file, then position), errors and warnings mixed,
    /// so that the output reads top to bottom and never depends on pass order.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| d.primary_span().map_or((u32::MAX, 0, 0), |s| (s.file.0, s.start, s.end)));
        self.items.dedup();
        self.items
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// How diagnostics are drawn.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    pub color: bool,
    pub width: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self { color: false, width: 80 }
    }
}

/// Renders one diagnostic with its source excerpts.
pub fn render(diagnostic: &Diagnostic, sources: &SourceMap, options: RenderOptions) -> String {
    let theme = if options.color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(options.width)
        .with_links(false)
        .with_break_words(false);
    let mut report = Report::new(diagnostic, sources);
    // miette draws one file per report and prefixes related reports with `Error:`;
    // labels in other files are drawn as notes of their own, right after.
    let others = std::mem::take(&mut report.related);
    let mut out = String::new();
    handler.render_report(&mut out, &report).expect("writing to a String cannot fail");
    for other in others {
        handler.render_report(&mut out, &other).expect("writing to a String cannot fail");
    }
    out
}

/// Adapts a [`Diagnostic`] to miette. miette draws one source file per report, so the
/// labels that point into other files become related reports of their own.
#[derive(Debug)]
struct Report {
    severity: Severity,
    header: String,
    help: Option<String>,
    source: Option<NamedSource<Excerpt>>,
    labels: Vec<LabeledSpan>,
    related: Vec<Report>,
}

/// Lines drawn around a label (miette draws 1 by default); an excerpt keeps a margin.
const CONTEXT_LINES: usize = 3;

/// The lines of a file around a report's labels. miette finds a span's line by reading
/// what it is given from the start: given the whole file, drawing each of N diagnostics
/// of a long file costs its length, N times.
#[derive(Debug)]
struct Excerpt {
    text: Arc<String>,
    start: usize,
    end: usize,
    /// The 0-based number of the excerpt's first line in the file.
    first_line: usize,
}

impl Excerpt {
    fn new(sources: &SourceMap, file: FileId, labels: &[LabeledSpan]) -> NamedSource<Self> {
        let source = sources.file(file);
        let start = labels.iter().map(LabeledSpan::offset).min().unwrap_or(0);
        let end = labels.iter().map(|l| l.offset() + l.len()).max().unwrap_or(0);
        let (start, end, first_line) = source.lines_around(start, end, CONTEXT_LINES);
        let excerpt = Self { text: source.shown.clone(), start, end, first_line };
        NamedSource::new(printable(&source.name), excerpt).with_language("kdl")
    }
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let window = &self.text.as_bytes()[self.start..self.end];
        let local = SourceSpan::new(span.offset().saturating_sub(self.start).into(), span.len());
        let inner = window.read_span(&local, before, after)?;
        Ok(Box::new(MietteSpanContents::new(
            inner.data(),
            SourceSpan::new((inner.span().offset() + self.start).into(), inner.span().len()),
            inner.line() + self.first_line,
            inner.column(),
            inner.line_count(),
        )))
    }
}

/// Source lines longer than this are not drawn: the location is written instead. (miette
/// draws a whole line for each label, which makes many labels on one very long line
/// cost its length each, and fails past 65,535 columns.)
const LONGEST_DRAWN_LINE: usize = 1000;

impl Report {
    fn new(diagnostic: &Diagnostic, sources: &SourceMap) -> Self {
        let kind = match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        let mut header = format!("{kind}[{}]: {}", diagnostic.code, printable(&diagnostic.message));
        let too_long =
            diagnostic.labels.iter().any(|label| sources.line_length(label.span) > LONGEST_DRAWN_LINE);
        if too_long {
            for label in &diagnostic.labels {
                let length = sources.line_length(label.span);
                let _ =
                    write!(header, "\nat {} (a line of {length} characters)", sources.location(label.span));
                if !label.message.is_empty() {
                    let _ = write!(header, ": {}", printable(&label.message));
                }
            }
        }
        let mut report = Self {
            severity: diagnostic.severity,
            header,
            help: diagnostic.help.as_deref().map(printable),
            source: None,
            labels: Vec::new(),
            related: Vec::new(),
        };
        if too_long {
            return report;
        }
        let primary_file = diagnostic.primary_span().map(|s| s.file);
        // The labels of each other file, in the order the files first appear.
        let mut others: Vec<(FileId, Vec<LabeledSpan>)> = Vec::new();
        for (index, label) in diagnostic.labels.iter().enumerate() {
            let labeled = labeled_span(label, index == 0);
            if Some(label.span.file) == primary_file {
                report.labels.push(labeled);
            } else if let Some((_, labels)) = others.iter_mut().find(|(f, _)| *f == label.span.file) {
                labels.push(labeled);
            } else {
                others.push((label.span.file, vec![labeled]));
            }
        }
        report.source = primary_file.map(|file| Excerpt::new(sources, file, &report.labels));
        report.related = others
            .into_iter()
            .map(|(file, labels)| Self {
                severity: Severity::Note,
                header: format!("and in `{}`:", printable(&sources.file(file).name)),
                help: None,
                source: Some(Excerpt::new(sources, file, &labels)),
                labels,
                related: Vec::new(),
            })
            .collect();
        report
    }
}

/// Text with its control characters written as escapes (`\u{1b}`): values from a
/// manifest appear in messages, and must not drive the terminal or break lines.
fn printable(text: &str) -> String {
    let hidden = |c: char| c == '\t' || crate::check::hidden_in_review(c);
    if !text.chars().any(hidden) {
        return text.to_owned();
    }
    text.chars().map(|c| if hidden(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

fn labeled_span(label: &Label, primary: bool) -> LabeledSpan {
    let span = SourceSpan::new((label.span.start as usize).into(), label.span.len());
    let text = (!label.message.is_empty()).then(|| printable(&label.message));
    if primary {
        LabeledSpan::new_primary_with_span(text, span)
    } else {
        LabeledSpan::new_with_span(text, span)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Note => miette::Severity::Advice,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() { None } else { Some(Box::new(self.labels.iter().cloned())) }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)))
        }
    }
}
