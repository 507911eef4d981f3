//! Variables: `var` declarations, their overrides, and `{NAME}` interpolation.
//!
//! A reference is `{NAME}` (or a built-in such as `{git.sha}`). A `{` right after a `$`
//! is left alone, so shell and Dockerfile expansions like `${HOME}` pass through; `{{`
//! and `}}` write a literal brace.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::ast::{StringRole, Text, VarDecl};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::source::{SourceMap, Span};
use crate::suggest::did_you_mean;

/// The environment variable prefix that overrides a manifest variable.
pub(crate) const ENV_PREFIX: &str = "KILN_VAR_";

/// Built-in variables, computed from the git repository on first use.
pub(crate) const BUILTINS: &[&str] = &["git.sha", "git.short-sha", "git.branch"];

/// Whether `name` is a built-in variable (`git.sha`): `--set` may override it, and its
/// dot does not make `--set git.sha=...` an image override.
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// Where a variable's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Manifest,
    Environment,
    CommandLine,
}

#[derive(Debug, Clone)]
struct Variable {
    /// The declaration, for errors and cycle detection.
    decl: VarDecl,
    /// Set once resolved.
    value: Option<String>,
    origin: Origin,
}

/// The variables of a project and the overrides given on the command line.
#[derive(Debug)]
pub(crate) struct Variables {
    vars: IndexMap<String, Variable>,
    /// Variables whose value could not be computed (a cycle or an undefined reference,
    /// already reported): strings that use them are not checked further.
    poisoned: std::collections::HashSet<String>,
    builtin_overrides: IndexMap<String, String>,
    git_dir: PathBuf,
    git: OnceCell<Option<GitInfo>>,
}

#[derive(Debug, Clone)]
struct GitInfo {
    sha: String,
    branch: Option<String>,
}

/// An override that names no declared variable; the caller reports it (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOverride {
    pub name: String,
    pub suggestion: Option<String>,
}

impl Variables {
    /// Collects declarations (reporting duplicates), then applies overrides: the
    /// environment (`KILN_VAR_NAME`) first, then `--set NAME=VALUE`.
    pub(crate) fn new(
        decls: &[VarDecl],
        env: &[(String, String)],
        sets: &[(String, String)],
        git_dir: &Path,
        sources: &SourceMap,
        diags: &mut Diagnostics,
    ) -> Result<Self, Vec<UnknownOverride>> {
        let mut vars: IndexMap<String, Variable> = IndexMap::new();
        for decl in decls {
            if !is_var_name(&decl.name.value) {
                diags.push(
                    Diagnostic::new(
                        Code::InvalidName,
                        format!("`{}` is not a valid variable name", decl.name.value),
                    )
                    .label(decl.name.span, "invalid name")
                    .help("use letters, digits and `_`, not starting with a digit"),
                );
                continue;
            }
            if let Some(first) = vars.get(&decl.name.value) {
                diags.push(Diagnostic::duplicate(
                    "variable",
                    &decl.name.value,
                    decl.name.span,
                    first.decl.name.span,
                ));
                continue;
            }
            vars.insert(
                decl.name.value.clone(),
                Variable { decl: decl.clone(), value: None, origin: Origin::Manifest },
            );
        }
        let mut unknown = Vec::new();
        let mut builtin_overrides = IndexMap::new();
        let env_overrides = env
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(ENV_PREFIX).map(|name| (name, v, Origin::Environment)));
        let cli_overrides = sets.iter().map(|(k, v)| (k.as_str(), v, Origin::CommandLine));
        for (name, value, origin) in env_overrides.chain(cli_overrides) {
            if BUILTINS.contains(&name) {
                builtin_overrides.insert(name.to_owned(), value.clone());
            } else if let Some(var) = vars.get_mut(name) {
                var.value = Some(value.clone());
                var.origin = origin;
            } else if origin == Origin::CommandLine {
                unknown.push(UnknownOverride {
                    name: name.to_owned(),
                    suggestion: did_you_mean(name, vars.keys().map(String::as_str)),
                });
            }
        }
        if !unknown.is_empty() {
            return Err(unknown);
        }
        let mut variables = Self {
            vars,
            poisoned: std::collections::HashSet::new(),
            builtin_overrides,
            git_dir: git_dir.to_path_buf(),
            git: OnceCell::new(),
        };
        variables.resolve_all(sources, diags);
        Ok(variables)
    }

    /// Resolves declared values that refer to other variables, reporting cycles.
    fn resolve_all(&mut self, sources: &SourceMap, diags: &mut Diagnostics) {
        let names: Vec<String> = self.vars.keys().cloned().collect();
        for name in names {
            let mut stack = Vec::new();
            self.resolve_var(sources, &name, &mut stack, diags);
        }
    }

    fn resolve_var(
        &mut self,
        sources: &SourceMap,
        name: &str,
        stack: &mut Vec<String>,
        diags: &mut Diagnostics,
    ) -> Option<String> {
        let var = self.vars.get(name)?;
        if let Some(value) = &var.value {
            return Some(value.clone());
        }
        if let Some(start) = stack.iter().position(|n| n == name) {
            let mut cycle: Vec<&str> = stack[start..].iter().map(String::as_str).collect();
            cycle.push(name);
            let mut diagnostic = Diagnostic::new(
                Code::Cycle,
                format!("variables refer to each other in a cycle: {}", cycle.join(" -> ")),
            );
            for member in &stack[start..] {
                let decl = &self.vars[member.as_str()].decl;
                diagnostic = diagnostic.label(decl.value.span, format!("`{member}` is defined here"));
            }
            diags.push(diagnostic);
            // Break the cycle so that each member is reported once.
            for member in &stack[start..] {
                if let Some(v) = self.vars.get_mut(member.as_str()) {
                    v.value = Some(String::new());
                }
                self.poisoned.insert(member.clone());
            }
            return None;
        }
        stack.push(name.to_owned());
        let raw = var.decl.value.clone();
        let mut value = String::new();
        let mut ok = true;
        for piece in scan(&raw.value) {
            match piece {
                Piece::Literal(text) => value.push_str(text),
                Piece::Reference { name: reference } => {
                    if self.vars.contains_key(reference) {
                        match self.resolve_var(sources, reference, stack, diags) {
                            Some(v) => value.push_str(&v),
                            None => ok = false,
                        }
                    } else if BUILTINS.contains(&reference) {
                        match self.builtin(reference, raw.span, diags) {
                            Some(v) => value.push_str(&v),
                            None => ok = false,
                        }
                    } else {
                        self.undefined(sources, &raw, reference, diags);
                        ok = false;
                    }
                }
            }
        }
        stack.pop();
        if !ok {
            self.poisoned.insert(name.to_owned());
        }
        let var = self.vars.get_mut(name)?;
        if var.value.is_none() {
            var.value = Some(value.clone());
        }
        ok.then_some(value)
    }

    /// The final values, in declaration order.
    pub(crate) fn values(&self) -> IndexMap<String, String> {
        self.vars.iter().map(|(k, v)| (k.clone(), v.value.clone().unwrap_or_default())).collect()
    }

    /// Interpolates the variables in one string. `None` when a reference could not be
    /// resolved (reported here, or already reported for the variable it uses).
    pub(crate) fn interpolate(
        &self,
        sources: &SourceMap,
        text: &Text,
        role: StringRole,
        diags: &mut Diagnostics,
    ) -> Option<String> {
        if !text.value.contains(['{', '}']) {
            return Some(text.value.clone());
        }
        let mut ok = true;
        let mut out = String::with_capacity(text.value.len());
        for piece in scan(&text.value) {
            match piece {
                Piece::Literal(literal) => out.push_str(literal),
                Piece::Reference { name } => {
                    if let Some(var) = self.vars.get(name) {
                        ok &= !self.poisoned.contains(name);
                        out.push_str(var.value.as_deref().unwrap_or(""));
                    } else if BUILTINS.contains(&name) {
                        if role == StringRole::Generated {
                            let span = narrow(sources, text, name);
                            diags.push(
                                Diagnostic::new(
                                    Code::VariableNotAllowed,
                                    format!("`{{{name}}}` can only be used in `tags` and `build-arg` values"),
                                )
                                .label(span, "changes with every commit")
                                .help("generated files must not change with every commit, or `kiln emit --check` could never pass; put the commit in a tag"),
                            );
                            ok = false;
                        } else if let Some(value) = self.builtin(name, text.span, diags) {
                            out.push_str(&value);
                        } else {
                            ok = false;
                        }
                    } else {
                        self.undefined(sources, text, name, diags);
                        ok = false;
                    }
                }
            }
        }
        ok.then_some(out)
    }

    fn undefined(&self, sources: &SourceMap, text: &Text, name: &str, diags: &mut Diagnostics) {
        let span = narrow(sources, text, name);
        let candidates = self.vars.keys().map(String::as_str).chain(BUILTINS.iter().copied());
        diags.push(
            Diagnostic::new(Code::UndefinedVariable, format!("undefined variable `{name}`"))
                .label(span, "not declared with `var`")
                .help_opt(did_you_mean(name, candidates).or_else(|| {
                    Some(format!(
                        "declare it with `var {name} \"...\"`, or write `{{{{{name}}}}}` for a literal `{{{name}}}`"
                    ))
                })),
        );
    }

    fn builtin(&self, name: &str, span: Span, diags: &mut Diagnostics) -> Option<String> {
        if let Some(value) = self.builtin_overrides.get(name) {
            return Some(value.clone());
        }
        let Some(git) = self.git.get_or_init(|| read_git(&self.git_dir)) else {
            diags.push(
                Diagnostic::new(Code::UndefinedVariable, format!("`{{{name}}}` needs a git repository"))
                    .label(span, "used here")
                    .help(format!("run kiln inside a git checkout with at least one commit, or pass `--set {name}=VALUE`")),
            );
            return None;
        };
        match name {
            "git.sha" => Some(git.sha.clone()),
            "git.short-sha" => Some(git.sha.chars().take(12).collect()),
            "git.branch" => {
                if let Some(branch) = &git.branch {
                    Some(sanitize_branch(branch))
                } else {
                    diags.push(
                        Diagnostic::new(
                            Code::UndefinedVariable,
                            "`{git.branch}` is not set: HEAD is detached",
                        )
                        .label(span, "used here")
                        .help("pass `--set git.branch=NAME`"),
                    );
                    None
                }
            }
            _ => None,
        }
    }
}

/// A branch name made fit for a tag: `feature/x` becomes `feature-x`.
fn sanitize_branch(branch: &str) -> String {
    branch
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' })
        .collect()
}

fn read_git(dir: &Path) -> Option<GitInfo> {
    let sha = crate::git::git(dir, &["rev-parse", "--verify", "HEAD"])?;
    let branch = crate::git::git(dir, &["symbolic-ref", "--short", "-q", "HEAD"]);
    Some(GitInfo { sha, branch })
}

/// Points at `{name}` inside the string's source when it appears there once. (The span
/// covers the KDL value with its quotes and escapes, so offsets in the value itself do
/// not carry over.)
fn narrow(sources: &SourceMap, text: &Text, name: &str) -> Span {
    let source = sources.text(text.span);
    let needle = format!("{{{name}}}");
    let mut found = source.match_indices(&needle);
    match (found.next(), found.next()) {
        (Some((offset, _)), None) => text.span.sub(offset, needle.len()),
        _ => text.span,
    }
}

pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_reference_name(name: &str) -> bool {
    is_var_name(name) || BUILTINS.contains(&name) || (name.starts_with("git.") && name.len() > 4)
}

#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Literal(&'a str),
    Reference { name: &'a str },
}

/// Splits a string into literal text and `{NAME}` references.
fn scan(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let bytes = text.as_bytes();
    let mut literal_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let escaped_brace = (bytes[i] == b'{' || bytes[i] == b'}') && bytes.get(i + 1) == Some(&bytes[i]);
        if escaped_brace {
            pieces.push(Piece::Literal(&text[literal_start..=i]));
            i += 2;
            literal_start = i;
            continue;
        }
        if bytes[i] == b'{'
            && (i == 0 || bytes[i - 1] != b'$')
            && let Some(close) = text[i + 1..].find('}')
        {
            let name = &text[i + 1..i + 1 + close];
            if is_reference_name(name) {
                if literal_start < i {
                    pieces.push(Piece::Literal(&text[literal_start..i]));
                }
                pieces.push(Piece::Reference { name });
                i += close + 2;
                literal_start = i;
                continue;
            }
        }
        i += 1;
    }
    if literal_start < text.len() {
        pieces.push(Piece::Literal(&text[literal_start..]));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_references_and_escapes() {
        assert_eq!(
            scan("python:{PYTHON}-slim"),
            [Piece::Literal("python:"), Piece::Reference { name: "PYTHON" }, Piece::Literal("-slim")]
        );
        assert_eq!(scan("echo ${HOME}"), [Piece::Literal("echo ${HOME}")]);
        let literal: String = scan("{{x}} and }}")
            .iter()
            .map(|p| match p {
                Piece::Literal(text) => *text,
                Piece::Reference { .. } => panic!("no reference expected"),
            })
            .collect();
        assert_eq!(literal, "{x} and }");
        assert_eq!(scan("{ echo; }"), [Piece::Literal("{ echo; }")]);
        assert_eq!(scan("{a,b}"), [Piece::Literal("{a,b}")]);
        assert_eq!(scan("{git.sha}"), [Piece::Reference { name: "git.sha" }]);
    }

    #[test]
    fn branch_names_become_tags() {
        assert_eq!(sanitize_branch("feature/new-ui"), "feature-new-ui");
    }
}
