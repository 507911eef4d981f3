//! `kiln import`: Dockerfiles into a `kiln.kdl` (see `kiln_import`). The manifest is
//! written whole or not at all, never over a file unless `--force`, then checked as
//! `kiln check` would, so that what the translation could not say shows at once.

use std::path::{Path, PathBuf};

use crate::cli::{GlobalArgs, ImportArgs};
use crate::session;
use crate::term::Term;
use crate::{CliError, ExitStatus};

pub(crate) fn run(global: &GlobalArgs, args: &ImportArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::failure(format!("cannot read the current folder: {e}")))?;
    let dockerfiles = if args.dockerfiles.is_empty() {
        vec![PathBuf::from("Dockerfile")]
    } else {
        args.dockerfiles.clone()
    };
    if dockerfiles.len() > 1 && (args.context.is_some() || args.name.is_some()) {
        return Err(CliError::invalid("--context and --name are for one Dockerfile")
            .hint("import several Dockerfiles with their folders as contexts, or one at a time"));
    }
    let output = cwd.join(&args.output);
    if output.exists() && !args.force {
        return Err(CliError::invalid(format!(
            "`{}` exists; kiln import does not overwrite it",
            args.output.display()
        ))
        .hint("write elsewhere with `-o FILE`, or replace it with `--force`"));
    }
    let manifest_dir = output.parent().map_or_else(|| cwd.clone(), Path::to_path_buf);
    let mut sources = Vec::new();
    for path in &dockerfiles {
        let file = cwd.join(path);
        let text = std::fs::read_to_string(&file)
            .map_err(|e| CliError::invalid(format!("cannot read `{}`: {e}", path.display())))?;
        let context = match &args.context {
            Some(dir) => cwd.join(dir),
            None => file.parent().map_or_else(|| cwd.clone(), Path::to_path_buf),
        };
        if !context.is_dir() {
            return Err(CliError::invalid(format!("the context `{}` is not a folder", context.display())));
        }
        let name = match &args.name {
            Some(name) => name.clone(),
            None => image_name(&file, &cwd),
        };
        if sources.iter().any(|s: &kiln_import::Source| s.name == name) {
            return Err(CliError::invalid(format!("two Dockerfiles would both be the image `{name}`"))
                .hint("import them one at a time with `--name`"));
        }
        // BuildKit reads `<Dockerfile>.dockerignore` beside the Dockerfile first.
        let own_ignore = {
            let mut name = file.file_name().unwrap_or_default().to_os_string();
            name.push(".dockerignore");
            file.with_file_name(name)
        };
        let dockerignore = std::fs::read_to_string(&own_ignore)
            .or_else(|_| std::fs::read_to_string(context.join(".dockerignore")))
            .ok();
        sources.push(kiln_import::Source {
            name,
            path: path.display().to_string(),
            text,
            context: kiln_manifest::display_name(
                &kiln_manifest::normalize(&manifest_dir),
                &kiln_manifest::normalize(&context),
            ),
            dockerignore,
        });
    }
    let imported = kiln_import::import(&sources).map_err(|refused| {
        CliError::invalid(format!(
            "{}:{}:{}: {}",
            refused.file, refused.at.line, refused.at.column, refused.message
        ))
        .hint("Docker refuses this Dockerfile too: fix it, then import it")
    })?;
    let differences = imported.differences();
    let write = differences == 0 || args.accept_differences;
    if write {
        kiln_emit::write_atomically(&output, &imported.manifest)
            .map_err(|e| CliError::failure(format!("cannot write `{}`: {e}", args.output.display())))?;
    }
    if args.json {
        term.json(&serde_json::json!({
            "manifest": args.output.display().to_string(),
            "written": write,
            "images": sources.iter().map(|s| serde_json::json!({"name": s.name, "dockerfile": s.path, "context": s.context})).collect::<Vec<_>>(),
            "notes": imported.notes.iter().map(|n| serde_json::json!({
                "file": n.file,
                "line": n.at.line,
                "column": n.at.column,
                "kind": n.kind.name(),
                "message": n.message,
            })).collect::<Vec<_>>(),
        }));
    } else {
        for note in &imported.notes {
            let prefix = format!("{}: ", note.kind.name());
            let text = format!("{}:{}:{}: {}", note.file, note.at.line, note.at.column, note.message);
            crate::term::to_stderr(&format!("{}\n", crate::term::for_stderr(&prefix, &text)));
        }
    }
    if !write {
        return Err(CliError::failure(format!(
            "the manifest would not say what the Dockerfiles say ({}); nothing written",
            session::count(differences, "difference")
        ))
        .hint(
            "change the Dockerfiles, or write the manifest with these differences: `--accept-differences`",
        ));
    }
    if !args.json {
        term.info(&format!(
            "wrote {} ({}, {})",
            args.output.display(),
            session::count(sources.len(), "image"),
            session::count(differences, "difference")
        ));
    }
    // What the manifest says, checked as `kiln check` would; an error names the
    // Dockerfile line the node came from.
    let check = GlobalArgs { file: Some(output), ..global.clone() };
    let loaded = session::load(&check)?;
    if loaded.error_count() > 0 {
        let manifest_file = loaded.project.sources.files().next().map(|(id, _)| id);
        for diagnostic in loaded.diagnostics.iter().filter(|d| d.is_error()) {
            let origin = diagnostic
                .primary_span()
                .filter(|span| Some(span.file) == manifest_file)
                .map(|span| loaded.project.sources.file(span.file).line_col(span.start as usize).0)
                .and_then(|line| imported.origin_of(line));
            if let Some(origin) = origin {
                let text = format!(
                    "{}:{}:{}: the manifest cannot say this: {}",
                    origin.file, origin.at.line, origin.at.column, diagnostic.message
                );
                crate::term::to_stderr(&format!("{}\n", crate::term::for_stderr("error: ", &text)));
            }
        }
    }
    session::report(&loaded, term)?;
    Ok(ExitStatus::Success)
}

/// `services/api/Dockerfile` → `api`; `Dockerfile.prod` → `<folder>-prod`; `worker.Dockerfile`
/// → `worker`; lower-case, other characters as `-`.
fn image_name(file: &Path, cwd: &Path) -> String {
    let folder = file
        .parent()
        .and_then(|p| p.file_name())
        .or_else(|| cwd.file_name())
        .map_or_else(|| "app".to_owned(), |n| n.to_string_lossy().into_owned());
    let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let raw = if let Some(suffix) = file_name.strip_prefix("Dockerfile.") {
        format!("{folder}-{suffix}")
    } else if let Some(prefix) =
        file_name.strip_suffix(".Dockerfile").or_else(|| file_name.strip_suffix(".dockerfile"))
    {
        prefix.to_owned()
    } else {
        folder
    };
    let mut name: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name.insert_str(0, "image-");
    }
    name
}
