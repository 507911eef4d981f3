//! `kiln lock`: the outside images the manifest builds on, resolved into `kiln.lock`
//! (see `kiln_manifest::lock`). Without `--update`, entries already locked are kept,
//! missing ones resolved, unused ones dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kiln_manifest::lock::{self, LOCK_FILE, Locked};
use kiln_manifest::{Code, StageInput};
use serde::Serialize;

use super::engine_session;
use crate::cli::{GlobalArgs, LockArgs};
use crate::session;
use crate::term::Term;
use crate::{CliError, ExitStatus};

#[derive(Serialize)]
struct Entry {
    image: String,
    /// `digest` or `id`.
    kind: &'static str,
    value: String,
    /// `added`, `updated`, `kept` or `removed`.
    change: &'static str,
}

pub(crate) fn run(global: &GlobalArgs, args: &LockArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let session = session::load(global)?;
    // A broken or stale lock is what this command repairs (and, with `--check`, what it
    // reports): only the manifest's own errors stop it.
    let about_the_lock =
        |code: Code| matches!(code, Code::InvalidLock | Code::StaleLock | Code::UnpinnableBase);
    for diagnostic in session.diagnostics.iter().filter(|d| args.check || !about_the_lock(d.code)) {
        term.diagnostic(diagnostic, &session.project.sources);
    }
    if session.diagnostics.iter().any(|d| d.is_error() && d.code != Code::InvalidLock) {
        return Err(CliError::invalid(format!("`{}` has errors; fix them first", session.project.manifest)));
    }
    let project = &session.project;
    let used: BTreeSet<String> = project
        .images
        .iter()
        .flat_map(|image| image.stages.iter().flat_map(kiln_manifest::Stage::inputs))
        .filter_map(|input| match input {
            StageInput::External(reference, _) if reference != "scratch" => Some(reference.to_owned()),
            _ => None,
        })
        .collect();
    let current: BTreeMap<String, Locked> = project
        .lock
        .as_ref()
        .map(|l| l.entries.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let to_resolve: Vec<String> = match &args.update {
        Some(names) if !names.is_empty() => {
            if let Some(name) = names.iter().find(|n| !used.contains(*n)) {
                let candidates: Vec<&str> = used.iter().map(String::as_str).collect();
                return Err(CliError::invalid(format!("no image of the manifest builds on `{name}`"))
                    .hint_opt(kiln_manifest::did_you_mean(name, candidates)));
            }
            names.clone()
        }
        Some(_) => used.iter().cloned().collect(),
        None => used.iter().filter(|r| !current.contains_key(*r)).cloned().collect(),
    };
    let path = project.root_dir.join(LOCK_FILE);
    let before = fs_err::read_to_string(&path).ok();

    if args.check {
        let stale = !to_resolve.is_empty() || current.keys().any(|r| !used.contains(r));
        let written = before.as_deref() == Some(lock::render(&current).as_str());
        if stale || !written {
            return Err(CliError::failure(format!("`{LOCK_FILE}` is not up to date with the manifest"))
                .hint("`kiln lock` updates it"));
        }
        term.info(&format!("`{LOCK_FILE}` is up to date ({})", session::count(current.len(), "image")));
        return Ok(ExitStatus::Success);
    }

    let mut resolved: BTreeMap<String, Locked> = BTreeMap::new();
    if !to_resolve.is_empty() {
        let runtime = engine_session::runtime()?;
        let outcome = runtime.block_on(async {
            let engine = engine_session::engine(global).await?;
            let registry = Arc::new(kiln_registry::Client::new(engine.insecure_registries().await));
            let mut failed: Option<CliError> = None;
            for reference in &to_resolve {
                match kiln_build::bases::lock_entry(&engine, &registry, reference).await {
                    Ok(locked) => {
                        resolved.insert(reference.clone(), locked);
                    }
                    Err(err) => {
                        let error = CliError::failure(format!("cannot lock `{reference}`: {err}"));
                        failed = Some(match failed {
                            Some(earlier) => earlier.and(error),
                            None => error,
                        });
                    }
                }
            }
            failed.map_or(Ok(()), Err)
        });
        outcome?;
    }

    let mut entries: BTreeMap<String, Locked> = BTreeMap::new();
    let mut report = Vec::new();
    for reference in &used {
        let (locked, change) = match (resolved.remove(reference), current.get(reference)) {
            (Some(new), Some(old)) if new == *old => (new, "kept"),
            (Some(new), Some(_)) => (new, "updated"),
            (Some(new), None) => (new, "added"),
            (None, Some(old)) => (old.clone(), "kept"),
            (None, None) => continue,
        };
        report.push(entry(reference, &locked, change));
        entries.insert(reference.clone(), locked);
    }
    for (reference, old) in current.iter().filter(|(r, _)| !used.contains(*r)) {
        report.push(entry(reference, old, "removed"));
    }
    let text = lock::render(&entries);
    if before.as_deref() != Some(text.as_str()) {
        kiln_emit::write_atomically(&path, &text)
            .map_err(|err| CliError::failure(format!("cannot write `{LOCK_FILE}`: {err}")))?;
    }
    if args.json {
        term.json(&report);
    } else {
        for entry in report.iter().filter(|e| e.change != "kept") {
            term.out(&format!("{} {} ({} {})\n", entry.change, entry.image, entry.kind, entry.value));
        }
        let changed = report.iter().filter(|e| e.change != "kept").count();
        term.info(&format!(
            "`{LOCK_FILE}` locks {} ({changed} changed)",
            session::count(entries.len(), "outside image")
        ));
    }
    Ok(ExitStatus::Success)
}

fn entry(reference: &str, locked: &Locked, change: &'static str) -> Entry {
    let (kind, value) = match locked {
        Locked::Digest(d) => ("digest", d.clone()),
        Locked::Id(i) => ("id", i.clone()),
    };
    Entry { image: reference.to_owned(), kind, value, change }
}
