//! Diagnostics: errors and warnings as data, with spans into the manifest files.
//!
//! Every stage collects diagnostics instead of stopping at the first one. Rendering is
//! separate ([`render`]), through miette, so that tests can assert codes and spans while
//! snapshots check the text users read.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

use crate::source::{SourceMap, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Only used to draw the parts of a diagnostic that are in other files.
    Note,
    Warning,
    Error,
}

macro_rules! codes {
    ($($variant:ident => $name:literal,)*) => {
        /// A stable identifier for each kind of diagnostic, shown as `error[name]`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &[Code] = &[$(Code::$variant,)*];

            pub fn name(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }
        }
    };
}

codes! {
    Io => "io",
    KdlSyntax => "kdl-syntax",
    UnknownNode => "unknown-node",
    UnknownProperty => "unknown-property",
    MisplacedNode => "misplaced-node",
    ArgumentCount => "argument-count",
    ArgumentType => "argument-type",
    MissingValue => "missing-value",
    ConflictingValues => "conflicting-values",
    DuplicateName => "duplicate-name",
    InvalidName => "invalid-name",
    UnknownReference => "unknown-reference",
    Cycle => "cycle",
    IncludeNotFound => "include-not-found",
    UndefinedVariable => "undefined-variable",
    VariableNotAllowed => "variable-not-allowed",
    InvalidReference => "invalid-reference",
    InvalidTag => "invalid-tag",
    TagCollision => "tag-collision",
    RelativeWorkdir => "relative-workdir",
    PathOutsideContext => "path-outside-context",
    MissingContext => "missing-context",
    IgnoredCopySource => "ignored-copy-source",
    InvalidIgnorePattern => "invalid-ignore-pattern",
    InvalidValue => "invalid-value",
    Unexpressible => "unexpressible",
    UnsupportedAtLevel => "unsupported-at-level",
    MissingBase => "missing-base",
    MissingFile => "missing-file",
    UnusedStage => "unused-stage",
    UndeclaredBuildArg => "undeclared-build-arg",
    BaseNotPinned => "base-not-pinned",
    DuplicateInstruction => "duplicate-instruction",
    CacheOrder => "cache-order",
    SecretInEnv => "secret-in-env",
    MissingWorkdir => "missing-workdir",
    BuildFailed => "build-failed",
    InvalidLock => "invalid-lock",
    StaleLock => "stale-lock",
    UnpinnableBase => "unpinnable-base",
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
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Self { severity: Severity::Error, code, message: message.into(), labels: Vec::new(), help: None }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, ..Self::error(code, message) }
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
        Self::error(Code::DuplicateName, format!("{what} `{name}` is declared twice"))
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
    source: Option<NamedSource<std::sync::Arc<String>>>,
    labels: Vec<LabeledSpan>,
    related: Vec<Report>,
}

impl Report {
    fn new(diagnostic: &Diagnostic, sources: &SourceMap) -> Self {
        let kind = match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        let header = format!("{kind}[{}]: {}", diagnostic.code, diagnostic.message);
        let primary_file = diagnostic.primary_span().map(|s| s.file);
        let mut report = Self {
            severity: diagnostic.severity,
            header,
            help: diagnostic.help.clone(),
            source: primary_file.map(|f| named_source(sources, f)),
            labels: Vec::new(),
            related: Vec::new(),
        };
        for (index, label) in diagnostic.labels.iter().enumerate() {
            let labeled = labeled_span(label, index == 0);
            if Some(label.span.file) == primary_file {
                report.labels.push(labeled);
            } else if let Some(other) = report.related.iter_mut().find(|r| {
                r.source.as_ref().map(NamedSource::name) == Some(&*sources.file(label.span.file).name)
            }) {
                other.labels.push(labeled);
            } else {
                report.related.push(Self {
                    severity: Severity::Note,
                    header: format!("and in `{}`:", sources.file(label.span.file).name),
                    help: None,
                    source: Some(named_source(sources, label.span.file)),
                    labels: vec![labeled],
                    related: Vec::new(),
                });
            }
        }
        report
    }
}

fn named_source(sources: &SourceMap, file: crate::source::FileId) -> NamedSource<std::sync::Arc<String>> {
    let file = sources.file(file);
    NamedSource::new(file.name.clone(), file.text.clone()).with_language("kdl")
}

fn labeled_span(label: &Label, primary: bool) -> LabeledSpan {
    let span = SourceSpan::new((label.span.start as usize).into(), label.span.len());
    let text = (!label.message.is_empty()).then(|| label.message.clone());
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
