//! Loading a project for a command: finding the manifest, applying command-line
//! settings, resolving, building the graph, and reporting diagnostics.

use std::path::{Path, PathBuf};

use kiln_graph::{Graph, UnknownSelection};
use kiln_manifest::{Diagnostic, Level, LoadOptions, MANIFEST_FILE, Project, find_manifest};

use crate::Status;
use crate::cli::GlobalArgs;
use crate::term::Term;

pub(crate) struct Session {
    /// How the project was loaded (`--changed-since` loads it again at another commit).
    pub options: LoadOptions,
    pub project: Project,
    pub graph: Graph,
    pub diagnostics: Vec<Diagnostic>,
}

impl Session {
    pub(crate) fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub(crate) fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }
}

/// Loads the project; usage problems are printed and returned as `Status::Invalid`.
/// Diagnostics are returned, not printed, so that commands choose how to show them.
pub(crate) fn load(global: &GlobalArgs, term: &Term) -> Result<Session, Status> {
    let cwd = std::env::current_dir().map_err(|e| {
        term.error(&format!("cannot read the current folder: {e}"));
        Status::Invalid
    })?;
    let manifest = match &global.file {
        Some(file) => {
            let path = absolute(&cwd, file);
            if !path.is_file() {
                term.error(&format!("manifest `{}` does not exist", file.display()));
                return Err(Status::Invalid);
            }
            path
        }
        None => find_manifest(&cwd).ok_or_else(|| {
            term.error(&format!("no `{MANIFEST_FILE}` in `{}` or any parent folder", cwd.display()));
            errln!("\nhint: create one, or point at it with `-f PATH`");
            Status::Invalid
        })?,
    };
    let level = match &global.level {
        None => None,
        Some(text) => Some(Level::parse(text).ok_or_else(|| {
            term.error(&format!("unknown level `{text}`: use one of `classic`, `1.2`, `1.4`"));
            Status::Invalid
        })?),
    };
    let mut sets = Vec::new();
    for set in &global.set {
        let Some((name, value)) = set.split_once('=') else {
            term.error(&format!("`--set {set}` needs the form `NAME=VALUE`"));
            return Err(Status::Invalid);
        };
        sets.push((name.to_owned(), value.to_owned()));
    }
    // The output folder's path is written into `.dockerignore` files (when it is inside
    // a context), one pattern per line.
    if let Some(output) = &global.output
        && output.to_string_lossy().chars().any(|c| c == '\n' || kiln_manifest::hidden_in_review(c))
    {
        term.error("`--output` cannot hold a line break or a control character");
        errln!("\nhint: the path is written into `.dockerignore` files, one pattern per line");
        return Err(Status::Invalid);
    }
    let options = LoadOptions {
        manifest,
        env: std::env::vars().collect(),
        sets,
        output: global.output.as_ref().map(|o| absolute(&cwd, o)),
        level,
    };
    let loaded = kiln_manifest::load_project(&options);
    let (project, mut diags) = loaded.map_err(|unknown| {
        for u in unknown {
            term.error(&format!("`--set {}`: the manifest declares no variable `{}`", u.name, u.name));
            if let Some(suggestion) = u.suggestion {
                errln!("\nhint: {suggestion}");
            }
        }
        Status::Invalid
    })?;
    let graph = Graph::build(&project, &mut diags);
    if !diags.has_errors() {
        kiln_emit::check_line_lengths(&project, &graph, &mut diags);
    }
    Ok(Session { options, project, graph, diagnostics: diags.into_sorted() })
}

/// Prints the diagnostics; `Err(Status::Invalid)` when there are errors, with a summary.
pub(crate) fn report(session: &Session, term: &Term) -> Result<(), Status> {
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
        term.error(&summary);
        return Err(Status::Invalid);
    }
    Ok(())
}

/// Reports names on the command line that are neither an image nor a group: a usage
/// error.
pub(crate) fn unknown_names(term: &Term, unknown: Vec<UnknownSelection>) -> Status {
    for u in unknown {
        term.error(&format!("no image or group named `{}`", u.name));
        if let Some(suggestion) = u.suggestion {
            errln!("\nhint: {suggestion}");
        }
    }
    Status::Invalid
}

pub(crate) fn count(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    kiln_manifest::normalize(&cwd.join(path))
}

/// `--changed-since REF`: the selected images (all of them when `targets` is empty)
/// whose inputs changed since `REF`, or that are built on one that did. Errors (no git,
/// no such commit) are printed.
pub(crate) fn changed_since(
    session: &Session,
    targets: &[String],
    reference: &str,
    term: &Term,
) -> Result<Vec<String>, Status> {
    let project = &session.project;
    let selected =
        kiln_graph::select(project, &session.graph, targets).map_err(|u| unknown_names(term, u))?;
    let changed = kiln_build::changed::changed_since(project, &session.graph, &session.options, reference)
        .map_err(|err| {
            term.error(&err);
            Status::Failure
        })?;
    Ok(project
        .images
        .iter()
        .enumerate()
        .filter(|(i, _)| selected[*i] && changed[*i])
        .map(|(_, image)| image.name.clone())
        .collect())
}
