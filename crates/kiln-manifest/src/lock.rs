//! `kiln.lock`: the outside images a project builds on, each resolved to what it was
//! when it was locked, beside the root manifest and reviewed like `Cargo.lock`.
//!
//! ```kdl
//! version 1
//! image "python:3.11-slim" digest="sha256:…"   // the registry's digest
//! image "kiln-test/busybox:1" id="sha256:…"     // no registry has it: the image ID
//! ```
//!
//! `kiln lock` writes it; builds use the locked images; `kiln build --locked` refuses a
//! lock that does not match the manifest's outside images.

use std::collections::BTreeMap;
use std::path::Path;

use kdl::KdlDocument;

use crate::ast::Text;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::{Image, StageInput};
use crate::source::{FileId, SourceMap, Span};

/// The lock file's name, beside the root manifest.
pub const LOCK_FILE: &str = "kiln.lock";

const VERSION: i128 = 1;

/// What an outside image was locked to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Locked {
    /// The registry's manifest digest (`sha256:…`), the same on every machine.
    Digest(String),
    /// A local image ID, for an image no registry has (imported or built elsewhere).
    Id(String),
}

impl Locked {
    /// The identity a build's key records.
    pub fn identity(&self) -> &str {
        match self {
            Self::Digest(d) | Self::Id(d) => d,
        }
    }
}

/// A lock file, read.
#[derive(Debug, Clone, Default)]
pub struct Lock {
    /// Reference as the manifest writes it → what it is locked to, and where.
    pub entries: BTreeMap<String, (Locked, Span)>,
}

impl Lock {
    /// Reads `kiln.lock` beside the root manifest, if there is one. Problems are reported
    /// into `diags`, pointing into the lock file.
    pub(crate) fn load(root_dir: &Path, sources: &mut SourceMap, diags: &mut Diagnostics) -> Option<Self> {
        let path = root_dir.join(LOCK_FILE);
        let text = fs_err::read_to_string(&path).ok()?;
        let file = sources.add(path, LOCK_FILE.to_owned(), text);
        let text = sources.file(file).text.clone();
        Some(Self::parse(&text, file, diags))
    }

    fn parse(text: &str, file: FileId, diags: &mut Diagnostics) -> Self {
        let mut lock = Self::default();
        let doc = match KdlDocument::parse_v2(text) {
            Ok(doc) => doc,
            Err(err) => {
                for d in err.diagnostics {
                    let span = Span::new(file, d.span.offset(), d.span.len());
                    diags.push(
                        Diagnostic::new(Code::InvalidLock, "`kiln.lock` is not valid KDL")
                            .label(span, d.message.unwrap_or_else(|| "here".to_owned()))
                            .help("run `kiln lock --update` to write it again"),
                    );
                }
                return lock;
            }
        };
        let span_of = |node: &kdl::KdlNode| Span::new(file, node.span().offset(), node.span().len());
        let mut invalid = |span: Span, what: &str| {
            diags.push(
                Diagnostic::new(Code::InvalidLock, format!("`kiln.lock` has {what}"))
                    .label(span, "here")
                    .help("`kiln lock --update` writes it again"),
            );
        };
        for node in doc.nodes() {
            let span = span_of(node);
            match node.name().value() {
                "version" => {
                    if node.get(0).and_then(kdl::KdlValue::as_integer) != Some(VERSION) {
                        invalid(span, "a version this kiln does not read (it reads version 1)");
                    }
                }
                "image" => {
                    let reference = node.get(0).and_then(kdl::KdlValue::as_string);
                    // Diagnostics about the entry point at its reference.
                    let span = node
                        .entries()
                        .first()
                        .filter(|e| e.name().is_none())
                        .map_or(span, |e| Span::new(file, e.span().offset(), e.span().len()));
                    let digest = node.get("digest").and_then(kdl::KdlValue::as_string);
                    let id = node.get("id").and_then(kdl::KdlValue::as_string);
                    let hex = |value: &str| {
                        value
                            .strip_prefix("sha256:")
                            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    };
                    let locked = match (digest, id) {
                        (Some(d), None) if hex(d) => Locked::Digest(d.to_owned()),
                        (None, Some(i)) if hex(i) => Locked::Id(i.to_owned()),
                        _ => {
                            invalid(
                                span,
                                "an `image` without one `digest=\"sha256:…\"` or `id=\"sha256:…\"`",
                            );
                            continue;
                        }
                    };
                    match reference {
                        Some(reference) if !lock.entries.contains_key(reference) => {
                            lock.entries.insert(reference.to_owned(), (locked, span));
                        }
                        Some(_) => invalid(span, "an image listed twice"),
                        None => invalid(span, "an `image` without its reference"),
                    }
                }
                other => invalid(span, &format!("an unknown node `{other}`")),
            }
        }
        lock
    }

    /// What the lock says of a reference.
    pub fn get(&self, reference: &str) -> Option<&Locked> {
        self.entries.get(reference).map(|(locked, _)| locked)
    }
}

/// Warns when the lock and the manifest's outside images disagree (`stale-lock`), and
/// when `pin-bases` cannot pin an image (it has no locked digest).
pub(crate) fn check(
    images: &[Image],
    lock: Option<&Lock>,
    pin_bases: Option<&Text>,
    diags: &mut Diagnostics,
) {
    let mut used: BTreeMap<&str, Span> = BTreeMap::new();
    for image in images {
        for stage in &image.stages {
            for input in stage.inputs() {
                if let StageInput::External(reference, span) = input
                    && reference != "scratch"
                {
                    used.entry(reference).or_insert(span);
                }
            }
        }
    }
    let Some(lock) = lock else {
        if let Some(setting) = pin_bases
            && !used.is_empty()
        {
            diags.push(
                Diagnostic::new(
                    Code::StaleLock,
                    "`pin-bases` is set, but there is no `kiln.lock` to pin from",
                )
                .label(setting.span, "nothing to pin from")
                .help("run `kiln lock` to write one"),
            );
        }
        return;
    };
    for (reference, span) in &used {
        match lock.get(reference) {
            None => diags.push(
                Diagnostic::new(Code::StaleLock, format!("`{reference}` is not in `kiln.lock`"))
                    .label(*span, "not locked")
                    .help("run `kiln lock` to add it"),
            ),
            Some(Locked::Id(_)) if pin_bases.is_some() => diags.push(
                Diagnostic::new(
                    Code::UnpinnableBase,
                    format!("`{reference}` is locked to a local image ID, which a `FROM` line cannot name"),
                )
                .label(*span, "left unpinned")
                .help("push it to a registry and run `kiln lock --update` to lock its digest"),
            ),
            Some(_) => {}
        }
    }
    for (reference, (_, span)) in &lock.entries {
        if !used.contains_key(reference.as_str()) {
            diags.push(
                Diagnostic::new(
                    Code::StaleLock,
                    format!("`kiln.lock` locks `{reference}`, which no image uses"),
                )
                .label(*span, "unused")
                .help("run `kiln lock` to drop it"),
            );
        }
    }
}

/// The text of a lock file with these entries, sorted.
pub fn render(entries: &BTreeMap<String, Locked>) -> String {
    let mut text = String::from(
        "// Generated by `kiln lock`: the outside images this project builds on, each resolved.\n\
         // Review it like code; `kiln lock --update [IMAGE...]` refreshes it.\n",
    );
    text.push_str(&format!("version {VERSION}\n"));
    for (reference, locked) in entries {
        // References, digests and IDs hold no quote or backslash (their grammars forbid
        // them), so they can be written as plain quoted strings.
        let (key, value) = match locked {
            Locked::Digest(d) => ("digest", d),
            Locked::Id(i) => ("id", i),
        };
        text.push_str(&format!("image \"{reference}\" {key}=\"{value}\"\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    fn parse(text: &str) -> (Lock, Diagnostics) {
        let mut sources = SourceMap::default();
        let file = sources.add("kiln.lock".into(), "kiln.lock".into(), text.to_owned());
        let mut diags = Diagnostics::default();
        (Lock::parse(text, file, &mut diags), diags)
    }

    #[test]
    fn reads_what_it_writes() {
        let entries: BTreeMap<String, Locked> = [
            ("python:3.11-slim".to_owned(), Locked::Digest(SHA.to_owned())),
            ("kiln-test/busybox:1".to_owned(), Locked::Id(SHA.to_owned())),
        ]
        .into();
        let text = render(&entries);
        let (lock, diags) = parse(&text);
        assert_eq!(diags.iter().count(), 0, "{diags:?}");
        let read: BTreeMap<String, Locked> = lock.entries.into_iter().map(|(k, (v, _))| (k, v)).collect();
        assert_eq!(read, entries);
        insta::assert_snapshot!(text, @r#"
        // Generated by `kiln lock`: the outside images this project builds on, each resolved.
        // Review it like code; `kiln lock --update [IMAGE...]` refreshes it.
        version 1
        image "kiln-test/busybox:1" id="sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        image "python:3.11-slim" digest="sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        "#);
    }

    #[test]
    fn points_at_what_is_wrong() {
        let (_, diags) = parse(&format!(
            "version 2\nimage \"a\"\nimage \"b\" digest=\"{SHA}\"\nimage \"b\" id=\"{SHA}\"\nother\n"
        ));
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(diags.iter().all(|d| d.code == Code::InvalidLock));
    }
}
