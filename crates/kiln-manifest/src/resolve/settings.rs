//! The project-wide settings: `project`, `registry`, `output`, `dockerfile-level`,
//! `syntax-directive`, `pin-bases`, with the command line's overrides.

use std::path::{Path, PathBuf};

use kiln_reference::{ImageRef, validate_repository};

use crate::ast::{Declarations, StringRole, Text};
use crate::check::check_line;
use crate::diagnostic::{Code, Diagnostic, Diagnostics, Severity};
use crate::load::normalize;
use crate::model::Level;
use crate::source::{SourceMap, Spanned};
use crate::suggest::did_you_mean;
use crate::vars::Variables;

/// The default folder for generated files, relative to the root manifest.
pub const DEFAULT_OUTPUT: &str = "dockerfiles";

pub(crate) struct Settings {
    pub project: Option<String>,
    pub pin_bases: bool,
    pub registry: Option<String>,
    pub output_dir: PathBuf,
    pub level: Level,
    pub syntax_directive: Option<String>,
}

/// Resolves the project-wide settings, with command-line overrides.
pub(crate) fn resolve_settings(
    decls: &Declarations,
    vars: &Variables,
    sources: &SourceMap,
    root_dir: &Path,
    output_override: Option<&Path>,
    level_override: Option<Level>,
    diags: &mut Diagnostics,
) -> Settings {
    let interpolate = |text: &Option<Text>, diags: &mut Diagnostics| {
        let text = text.as_ref()?;
        let value = vars.interpolate(sources, text, StringRole::Generated, diags).unwrap_or_default();
        Some(Spanned::new(value, text.span))
    };
    // The order here is the order of the diagnostics.
    let registry = interpolate(&decls.registry, diags).and_then(|value| registry_prefix(&value, diags));
    let output_dir = match output_override {
        Some(path) => normalize(path),
        None => match interpolate(&decls.output, diags) {
            Some(value) => {
                check_line(&value, "a path", diags);
                normalize(&root_dir.join(&value.value))
            }
            None => root_dir.join(DEFAULT_OUTPUT),
        },
    };
    let level = level_override
        .unwrap_or_else(|| decls.level.as_ref().map_or(Level::Classic, |text| level(text, diags)));
    let syntax_directive =
        interpolate(&decls.syntax_directive, diags).and_then(|value| frontend_image(value, diags));
    let project = interpolate(&decls.project, diags).and_then(|value| project_name(value, diags));
    let pin_bases = decls.pin_bases.as_ref().is_some_and(|text| pin_bases(text, diags));
    Settings { project, pin_bases, registry, output_dir, level, syntax_directive }
}

/// The codes of `allow`: warnings only, each checked against the code table.
pub(crate) fn allowed_warnings(allow: &[Text], diags: &mut Diagnostics) -> Vec<Code> {
    let warnings = || Code::ALL.iter().filter(|c| c.severity() == Severity::Warning).map(|c| c.name());
    let mut allowed = Vec::new();
    for text in allow {
        match Code::ALL.iter().find(|c| c.name() == text.value) {
            Some(code) if code.severity() == Severity::Warning => allowed.push(*code),
            Some(_) => diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("`{}` is an error, and errors cannot be allowed", text.value),
                )
                .label(text.span, "an error code")
                .help("`allow` takes warning codes, such as `runs-as-root`"),
            ),
            None => diags.push(
                Diagnostic::new(Code::UnknownReference, format!("unknown warning `{}`", text.value))
                    .label(text.span, "not a warning code")
                    .help_opt(did_you_mean(&text.value, warnings()).or_else(|| {
                        Some(format!(
                            "the warnings are {}",
                            warnings().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")
                        ))
                    })),
            ),
        }
    }
    allowed
}

/// A registry is a repository prefix: `host[:port][/namespace...]`.
fn registry_prefix(registry: &Spanned<String>, diags: &mut Diagnostics) -> Option<String> {
    let trimmed = registry.value.trim_end_matches('/');
    match validate_repository(&format!("{trimmed}/x")) {
        Ok(()) => Some(trimmed.to_owned()),
        Err(err) => {
            diags.push(
                Diagnostic::new(Code::InvalidReference, format!("`{}` is not a valid registry: {err}", registry.value))
                    .label(registry.span, "invalid registry")
                    .help("a registry is a host with an optional port and namespace, such as `registry.example.com/shop`"),
            );
            None
        }
    }
}

fn level(text: &Text, diags: &mut Diagnostics) -> Level {
    Level::parse(&text.value).unwrap_or_else(|| {
        diags.push(
            Diagnostic::new(Code::InvalidValue, format!("unknown dockerfile level `{}`", text.value))
                .label(text.span, "not a level")
                .help(format!(
                    "use one of {}",
                    Level::NAMES.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                )),
        );
        Level::Classic
    })
}

/// The `# syntax=` frontend image.
fn frontend_image(value: Spanned<String>, diags: &mut Diagnostics) -> Option<String> {
    match ImageRef::parse(&value.value) {
        Ok(_) => Some(value.value),
        Err(err) => {
            diags.push(
                Diagnostic::new(
                    Code::InvalidReference,
                    format!("`{}` is not a valid frontend image: {err}", value.value),
                )
                .label(value.span, "invalid reference")
                .help("for example `docker/dockerfile:1.7`"),
            );
            None
        }
    }
}

fn project_name(value: Spanned<String>, diags: &mut Diagnostics) -> Option<String> {
    let valid = !value.value.is_empty()
        && value.value.len() <= 128
        && value.value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
    if valid {
        return Some(value.value);
    }
    diags.push(
        Diagnostic::new(Code::InvalidValue, format!("`{}` is not a valid project name", value.value))
            .label(value.span, "invalid project name")
            .help("use up to 128 letters, digits, `.`, `_`, `-` and `/`, such as `acme/shop`"),
    );
    None
}

fn pin_bases(text: &Text, diags: &mut Diagnostics) -> bool {
    match text.value.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("`pin-bases` takes `#true` or `#false`, not `{}`", text.value),
                )
                .label(text.span, "not a boolean"),
            );
            false
        }
    }
}
