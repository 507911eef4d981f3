//! Reading the entries (arguments and properties) of one KDL node, with a located
//! error for every entry of the wrong shape.

use kdl::{KdlEntry, KdlNode, KdlValue};

use crate::ast::{KeyValue, Text};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::source::{FileId, Span, Spanned};
use crate::suggest::did_you_mean;

/// Marker for nodes whose properties are free-form keys (`env`, `label`, `build-arg`).
pub(super) struct PropsAny;

impl PropsAny {
    pub(super) const ANY: &'static [&'static str] = &["*"];
}

/// Reads the entries of one node, reporting shape errors as it goes. On drop, any
/// property that was never asked for is reported as unknown.
pub(super) struct NodeReader<'n> {
    file: FileId,
    text: &'n str,
    diags: &'n mut Diagnostics,
    node: &'n KdlNode,
    args: Vec<&'n KdlEntry>,
    props: Vec<&'n KdlEntry>,
}

impl<'n> NodeReader<'n> {
    pub(super) fn new(
        file: FileId,
        text: &'n str,
        diags: &'n mut Diagnostics,
        node: &'n KdlNode,
        allowed: &'n [&'n str],
    ) -> Self {
        let args = node.entries().iter().filter(|e| e.name().is_none()).collect();
        let props: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_some()).collect();
        let mut reader = Self { file, text, diags, node, args, props };
        reader.check_props(allowed);
        reader
    }

    pub(super) fn span(&self, span: miette::SourceSpan) -> Span {
        Span::new(self.file, span.offset(), span.len())
    }

    pub(super) fn error(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    pub(super) fn node_span(&self) -> Span {
        self.span(self.node.span())
    }

    pub(super) fn name(&self) -> &str {
        self.node.name().value()
    }

    pub(super) fn check_props(&mut self, allowed: &[&str]) {
        // A map, not a scan: a node may have tens of thousands of properties.
        let mut seen: std::collections::HashMap<&str, Span> = std::collections::HashMap::new();
        for entry in self.props.clone() {
            let key = entry.name().map_or("", kdl::KdlIdentifier::value);
            let span = self.span(entry.span());
            if let Some(first) = seen.get(key) {
                let first = *first;
                let node_name = self.node.name().value();
                self.error(
                    Diagnostic::new(
                        Code::DuplicateName,
                        format!("property `{key}` is given twice on `{node_name}`"),
                    )
                    .label(span, "given again here")
                    .label(first, "first given here"),
                );
                continue;
            }
            seen.insert(key, span);
            if allowed != PropsAny::ANY && !allowed.contains(&key) {
                let node_name = self.node.name().value().to_owned();
                let mut diagnostic = Diagnostic::new(
                    Code::UnknownProperty,
                    format!("unknown property `{key}` on `{node_name}`"),
                )
                .label(span, "not a property of this node");
                diagnostic = match (node_name.as_str(), key) {
                    ("copy", "stage") => diagnostic.help("to copy from a stage of this image, use `from=`"),
                    ("from", "from") => {
                        diagnostic.help("use `stage=` for a stage of this image, `image=` for another image")
                    }
                    _ if allowed.is_empty() => diagnostic.help(format!("`{node_name}` takes no properties")),
                    _ => diagnostic.help_opt(did_you_mean(key, allowed.iter().copied()).or_else(|| {
                        Some(format!(
                            "`{node_name}` takes {}",
                            allowed.iter().map(|a| format!("`{a}=`")).collect::<Vec<_>>().join(", ")
                        ))
                    })),
                };
                self.error(diagnostic);
            }
        }
    }

    /// Checks the number of positional arguments; `false` (with an error) when wrong.
    pub(super) fn arg_count(&mut self, min: usize, max: Option<usize>) -> bool {
        let count = self.args.len();
        if count >= min && max.is_none_or(|max| count <= max) {
            return true;
        }
        let name = self.name().to_owned();
        let expected = match (min, max) {
            (0, Some(0)) => "no arguments".to_owned(),
            (min, Some(max)) if min == max => plural(min, "argument"),
            (min, None) => format!("at least {}", plural(min, "argument")),
            (min, Some(max)) => format!("{min} to {max} arguments"),
        };
        let span = if count > max.unwrap_or(usize::MAX) {
            self.span(self.args[max.unwrap_or(0)].span())
        } else {
            self.span(self.node.name().span())
        };
        let label = if count < min { "missing arguments" } else { "extra argument" };
        self.error(
            Diagnostic::new(Code::ArgumentCount, format!("`{name}` takes {expected}, got {count}"))
                .label(span, label),
        );
        false
    }

    pub(super) fn entry_span(&self, entry: &KdlEntry) -> Span {
        self.span(entry.span())
    }

    /// The span of a property's value alone (the entry span covers `key=value`).
    pub(super) fn value_span(&self, entry: &KdlEntry) -> Span {
        let span = self.entry_span(entry);
        let Some(name) = entry.name() else {
            return span;
        };
        let name_end = name.span().offset() + name.span().len();
        let text = self.text;
        let end = span.end as usize;
        let Some(equals) = text.get(name_end..end).and_then(|s| s.find('=')) else {
            return span;
        };
        let mut start = name_end + equals + 1;
        while text[start..end].starts_with(char::is_whitespace) {
            start += text[start..].chars().next().map_or(1, char::len_utf8);
        }
        Span::new(self.file, start, end - start)
    }

    /// A string value.
    pub(super) fn text_of(&mut self, entry: &KdlEntry, span: Span, what: &str) -> Option<Text> {
        if let KdlValue::String(s) = entry.value() {
            return Some(self.string(s, span));
        }
        let found = describe(entry.value());
        self.error(
            Diagnostic::new(Code::ArgumentType, format!("expected {what}, found {found}"))
                .label(span, "not a string")
                .help_opt(
                    matches!(entry.value(), KdlValue::Integer(_) | KdlValue::Float(_))
                        .then(|| "quote it: `\"...\"`".to_owned()),
                ),
        );
        None
    }

    /// A string, or a number or boolean taken as its text (`var PORT 8000`).
    pub(super) fn scalar_of(&mut self, entry: &KdlEntry, span: Span, what: &str) -> Option<Text> {
        match entry.value() {
            KdlValue::String(s) => Some(self.string(s, span)),
            KdlValue::Integer(_) | KdlValue::Float(_) => {
                let raw = self.text.get(span.start as usize..span.end as usize).unwrap_or("");
                Some(Spanned::new(raw.replace('_', ""), span))
            }
            KdlValue::Bool(b) => Some(Spanned::new(b.to_string(), span)),
            KdlValue::Null => {
                self.error(
                    Diagnostic::new(Code::ArgumentType, format!("expected {what}, found `#null`"))
                        .label(span, "no value"),
                );
                None
            }
        }
    }

    /// A string value; one holding a NUL (`"\u{0}"`) is an error (kept, so that no
    /// follow-up error appears): no command line or environment can carry a NUL.
    pub(super) fn string(&mut self, value: &str, span: Span) -> Text {
        if value.contains('\0') {
            self.error(
                Diagnostic::new(Code::Unexpressible, "a value cannot contain a NUL character (`\\u{0}`)")
                    .label(span, "Docker cannot carry this character"),
            );
        }
        Spanned::new(value.to_owned(), span)
    }

    pub(super) fn arg_text(&mut self, index: usize, what: &str) -> Option<Text> {
        let entry = *self.args.get(index)?;
        let span = self.entry_span(entry);
        self.text_of(entry, span, what)
    }

    pub(super) fn arg_scalar(&mut self, index: usize, what: &str) -> Option<Text> {
        let entry = *self.args.get(index)?;
        let span = self.entry_span(entry);
        self.scalar_of(entry, span, what)
    }

    pub(super) fn arg_texts(&mut self, from: usize, what: &str) -> Vec<Text> {
        let entries: Vec<&KdlEntry> = self.args.iter().skip(from).copied().collect();
        entries
            .into_iter()
            .filter_map(|e| {
                let span = self.entry_span(e);
                self.text_of(e, span, what)
            })
            .collect()
    }

    pub(super) fn arg_scalars(&mut self, from: usize, what: &str) -> Vec<Text> {
        let entries: Vec<&KdlEntry> = self.args.iter().skip(from).copied().collect();
        entries
            .into_iter()
            .filter_map(|e| {
                let span = self.entry_span(e);
                self.scalar_of(e, span, what)
            })
            .collect()
    }

    pub(super) fn prop(&self, key: &str) -> Option<&'n KdlEntry> {
        self.props.iter().find(|e| e.name().is_some_and(|n| n.value() == key)).copied()
    }

    pub(super) fn prop_text(&mut self, key: &str) -> Option<Text> {
        let entry = self.prop(key)?;
        let span = self.value_span(entry);
        self.text_of(entry, span, &format!("a string for `{key}=`"))
    }

    pub(super) fn prop_scalar(&mut self, key: &str) -> Option<Text> {
        let entry = self.prop(key)?;
        let span = self.value_span(entry);
        self.scalar_of(entry, span, &format!("a value for `{key}=`"))
    }

    pub(super) fn prop_bool(&mut self, key: &str) -> Option<bool> {
        let entry = self.prop(key)?;
        if let KdlValue::Bool(b) = entry.value() {
            return Some(*b);
        }
        let span = self.value_span(entry);
        let found = describe(entry.value());
        self.error(
            Diagnostic::new(
                Code::ArgumentType,
                format!("expected `#true` or `#false` for `{key}=`, found {found}"),
            )
            .label(span, "not a boolean")
            .help("KDL v2 writes booleans as `#true` and `#false`"),
        );
        None
    }

    pub(super) fn prop_u32(&mut self, key: &str) -> Option<Spanned<u32>> {
        let entry = self.prop(key)?;
        let span = self.value_span(entry);
        if let KdlValue::Integer(i) = entry.value()
            && let Ok(value) = u32::try_from(*i)
        {
            return Some(Spanned::new(value, span));
        }
        let found = describe(entry.value());
        self.error(
            Diagnostic::new(
                Code::ArgumentType,
                format!("expected a whole number for `{key}=`, found {found}"),
            )
            .label(span, "not a number from 0 to 4294967295"),
        );
        None
    }

    /// Every property as a key/value pair, in order (duplicates were reported).
    pub(super) fn all_props(&mut self) -> Vec<KeyValue> {
        let entries = self.props.clone();
        let mut pairs: Vec<KeyValue> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for entry in entries {
            let Some(name) = entry.name() else { continue };
            if !seen.insert(name.value()) {
                continue;
            }
            let key = Spanned::new(name.value().to_owned(), self.span(name.span()));
            let span = self.value_span(entry);
            if let Some(value) = self.scalar_of(entry, span, "a value") {
                pairs.push(KeyValue { key, value });
            }
        }
        pairs
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn describe(value: &KdlValue) -> String {
    match value {
        KdlValue::String(_) => "a string".to_owned(),
        KdlValue::Integer(i) => format!("the number `{i}`"),
        KdlValue::Float(_) => "a number".to_owned(),
        KdlValue::Bool(b) => format!("`#{b}`"),
        KdlValue::Null => "`#null`".to_owned(),
    }
}
