//! Loading a project for a command: finding the manifest, applying command-line
//! settings, resolving, building the graph, and reporting diagnostics.

use std::path::{Path, PathBuf};

use kiln_graph::{Graph, UnknownSelection};
use kiln_manifest::{Diagnostic, LoadOptions, MANIFEST_FILE, Project, find_manifest};

use crate::CliError;
use crate::cli::GlobalArgs;
use crate::term::Term;

pub(crate) struct Session {
    /// How the project was loaded (`--changed-since` loads it again at another commit).
    pub options: LoadOptions,
    pub project: Project,
    pub graph: Graph,
    pub diagnostics: Vec<Diagnostic>,
    /// Images `--set IMAGE.no-cache=true` builds without the layer cache.
    pub no_cache: Vec<kiln_manifest::ImageId>,
}

impl Session {
    pub(crate) fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub(crate) fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }
}

/// Loads the project. Diagnostics are returned, not printed, so that commands choose
/// how to show them.
pub(crate) fn load(global: &GlobalArgs) -> Result<Session, CliError> {
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::invalid(format!("cannot read the current folder: {e}")))?;
    let manifest = match &global.file {
        Some(file) => {
            let path = absolute(&cwd, file);
            if !path.is_file() {
                return Err(CliError::invalid(format!("manifest `{}` does not exist", file.display())));
            }
            path
        }
        None => find_manifest(&cwd).ok_or_else(|| {
            CliError::invalid(format!("no `{MANIFEST_FILE}` in `{}` or any parent folder", cwd.display()))
                .hint("create one, or point at it with `-f PATH`")
        })?,
    };
    let (variables, overrides) = crate::overrides::split(&global.set)?;
    let options = LoadOptions {
        manifest,
        env: std::env::vars().collect(),
        sets: variables,
        output: global.output.as_ref().map(|o| absolute(&cwd, o)),
        level: global.level,
    };
    let (mut project, mut diags) = kiln_manifest::load_project(&options).map_err(|unknown| {
        unknown
            .into_iter()
            .map(|u| {
                CliError::invalid(format!(
                    "`--set {}`: the manifest declares no variable `{}`",
                    u.name, u.name
                ))
                .hint_opt(u.suggestion)
            })
            .reduce(CliError::and)
            .unwrap_or_else(|| CliError::invalid("unknown `--set` variables"))
    })?;
    let no_cache =
        if diags.has_errors() { Vec::new() } else { crate::overrides::apply(&mut project, &overrides)? };
    let graph = Graph::build(&project, &mut diags);
    if !diags.has_errors() {
        kiln_emit::check_line_lengths(&project, &graph, &mut diags);
    }
    diags.withdraw_advice_on_errors();
    Ok(Session { options, project, graph, diagnostics: diags.into_sorted(), no_cache })
}

/// Prints the diagnostics; an error, with a summary, when some are errors.
pub(crate) fn report(session: &Session, term: &Term) -> Result<(), CliError> {
    for diagnostic in &session.diagnostics {
        term.diagnostic(diagnostic, &session.project.sources);
    }
    let errors = session.error_count();
    if errors > 0 {
        let warnings = session.warning_count();
        let mut summary = format!("`{}` has {}", session.project.manifest, count(errors, "error"));
        if warnings > 0 && !term.quiet {
            summary.push_str(&format!(" and {}", count(warnings, "warning")));
        }
        return Err(CliError::invalid(summary));
    }
    Ok(())
}

/// Names on the command line that are neither an image nor a group: a usage error.
pub(crate) fn unknown_names(unknown: Vec<UnknownSelection>) -> CliError {
    unknown
        .into_iter()
        .map(|u| CliError::invalid(format!("no image or group named `{}`", u.name)).hint_opt(u.suggestion))
        .reduce(CliError::and)
        .unwrap_or_else(|| CliError::invalid("unknown names"))
}

pub(crate) fn count(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    kiln_manifest::normalize(&cwd.join(path))
}

/// `--changed-since REF`: the selected images (all of them when `targets` is empty)
/// whose inputs changed since `REF`, or that are built on one that did. Errors (no git,
/// no such commit) end the command.
pub(crate) fn changed_since(
    session: &Session,
    targets: &[String],
    reference: &str,
) -> Result<Vec<String>, CliError> {
    let project = &session.project;
    let selected = kiln_graph::select(project, &session.graph, targets).map_err(unknown_names)?;
    let changed = kiln_build::changed::changed_since(project, &session.graph, &session.options, reference)
        .map_err(CliError::failure)?;
    Ok(project
        .images_with_ids()
        .filter(|(i, _)| selected[*i] && changed[*i])
        .map(|(_, image)| image.name.clone())
        .collect())
}
