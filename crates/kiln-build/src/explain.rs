//! Why an image is, or is not, built again: its inputs now (computed as a build would,
//! without building) against the inputs its last build recorded, input by input.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kiln_context::HashCache;
use kiln_engine::{Builder, Engine};
use kiln_graph::Graph;
use kiln_manifest::{ImageId, Project};
use serde::Serialize;

use crate::bases::{Bases, Registries};
use crate::identity::{self, Inputs};
use crate::prepare::{self, Prepared, Recipe};

/// What a build would use, as a build would compute it.
pub struct Settings<'a> {
    pub builder: Builder,
    /// `--label`s.
    pub labels: &'a [(String, String)],
}

/// Computes the inputs and keys of `image` and of every image it depends on, in build
/// order, pulling nothing.
pub async fn inputs(
    project: &Project,
    graph: &Graph,
    engine: &Engine,
    settings: &Settings<'_>,
    image: ImageId,
) -> Result<HashMap<ImageId, Prepared>, String> {
    let bases = Bases::new(project.lock.clone(), Arc::new(Registries::new(engine.clone())));
    let hashes = HashCache::load(crate::history::cache_file(project.manifest_path(), "hashes"));
    let project_id = kiln_marks::tags::project_id(project);
    let mut needed = project.per_image(|_| false);
    let mut stack = vec![image];
    while let Some(next) = stack.pop() {
        if !std::mem::replace(&mut needed[next], true) {
            stack.extend(graph.dependencies(next));
        }
    }
    let mut prepared: HashMap<ImageId, Prepared> = HashMap::new();
    for &index in graph.order().iter().filter(|i| needed[**i]) {
        let mut identities = HashMap::new();
        for reference in project[index].external_bases() {
            identities.insert(reference.to_owned(), bases.identity(engine, reference).await?);
        }
        let keys: HashMap<ImageId, String> = graph
            .dependencies(index)
            .iter()
            .filter_map(|d| prepared.get(d).map(|p| (*d, p.key.clone())))
            .collect();
        let recipe = Recipe {
            project,
            graph,
            project_id: &project_id,
            builder: settings.builder,
            extra_labels: settings.labels,
            hashes: &hashes,
        };
        let ready = prepare::prepare(&recipe, index, &keys, &identities)
            .map_err(|e| format!("cannot read the build context of `{}`: {e}", project[index].name))?;
        prepared.insert(index, ready);
    }
    hashes.save();
    Ok(prepared)
}

/// One input that differs, said for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `dockerfile`, `file`, `base`, `dependency`, `label`, `build-arg`, `builder`, ...
    pub input: String,
    /// The path, reference or name it is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub message: String,
}

/// How many changed context files are named one by one.
const LISTED_FILES: usize = 20;

/// The inputs that differ between a build's record (`before`, the image's label) and
/// `now`. `before_files` are that build's context files when this machine recorded them
/// (`crate::records`); without them, changed files are named by folder.
pub fn changes(
    before: &Inputs,
    before_files: Option<&BTreeMap<String, String>>,
    now: &Inputs,
) -> Vec<Change> {
    let now_files = now.recorded_files();
    let now = now.recorded();
    let mut out = Vec::new();
    let mut push = |input: &str, name: Option<&str>, message: String| {
        out.push(Change { input: input.to_owned(), name: name.map(str::to_owned), message });
    };
    if before.recipe != now.recipe {
        push(
            "recipe",
            None,
            format!(
                "kiln computes keys another way since that build (recipe {} → {})",
                before.recipe, now.recipe
            ),
        );
    }
    for (input, was, is) in [
        ("project", Some(&before.project), Some(&now.project)),
        ("builder", Some(&before.builder), Some(&now.builder)),
        ("level", Some(&before.level), Some(&now.level)),
        ("target", Some(&before.target), Some(&now.target)),
        ("platform", before.platform.as_ref(), now.platform.as_ref()),
        ("syntax", before.syntax.as_ref(), now.syntax.as_ref()),
    ] {
        if was != is {
            let show = |v: Option<&String>| v.map_or_else(|| "none".to_owned(), |v| format!("`{v}`"));
            push(input, None, format!("{input} is {} (was {})", show(is), show(was)));
        }
    }
    if before.dockerfile != now.dockerfile {
        push("dockerfile", None, "the generated Dockerfile changed".to_owned());
    }
    for (reference, was, is) in differences(&before.bases, &now.bases) {
        let message = match (was, is) {
            (Some(was), Some(is)) => format!("base `{reference}` is now {is} (was {was})"),
            (None, Some(is)) => format!("base `{reference}` is new ({is})"),
            _ => format!("base `{reference}` is no longer used"),
        };
        push("base", Some(&reference), message);
    }
    for (name, was, is) in differences(&before.dependencies, &now.dependencies) {
        let message = match (was, is) {
            (Some(_), Some(_)) => format!("dependency `{name}` changed (its own inputs did)"),
            (None, Some(_)) => format!("dependency `{name}` is new"),
            _ => format!("dependency `{name}` is no longer used"),
        };
        push("dependency", Some(&name), message);
    }
    for (kind, was_map, is_map) in
        [("label", &before.labels, &now.labels), ("build-arg", &before.build_args, &now.build_args)]
    {
        for (name, was, is) in differences(was_map, is_map) {
            let what = if kind == "label" { "label" } else { "build argument" };
            push(kind, Some(&name), format!("{what} `{name}` {}", verb(was.as_ref(), is.as_ref())));
        }
    }
    if before.files_digest != now.files_digest {
        // A label of an older kiln may hold the files itself.
        let before_files = before_files.or((!before.files.is_empty()).then_some(&before.files));
        if let Some(before_files) = before_files {
            let changed = differences(before_files, &now_files);
            for (path, was, is) in changed.iter().take(LISTED_FILES) {
                push(
                    "file",
                    Some(path),
                    format!("context file `{path}` {}", verb(was.as_ref(), is.as_ref())),
                );
            }
            if changed.len() > LISTED_FILES {
                push("files", None, format!("and {} more context files", changed.len() - LISTED_FILES));
            }
        } else if !before.folders.is_empty() || before.file_count == 0 {
            for (name, was, is) in folder_changes(&before.folders, &now.folders).iter().take(LISTED_FILES) {
                let what = match name.as_str() {
                    identity::TOP_FILES => "the files at the top of the context".to_owned(),
                    identity::OTHER_FOLDERS => "the other folders of the context".to_owned(),
                    folder => format!("context folder `{folder}/`"),
                };
                let message = match (was, is) {
                    (Some(was), Some(is)) => format!("{what} changed ({is} entries, was {was})"),
                    (None, Some(is)) => format!("{what} is new ({is} entries)"),
                    _ => format!("{what} is gone"),
                };
                push("folder", Some(name), message);
            }
            push(
                "files",
                None,
                format!(
                    "{} context entries (was {}); this machine has no record of that build's files, so only folders are named",
                    now.file_count, before.file_count
                ),
            );
        } else {
            push(
                "files",
                None,
                format!("the context changed ({} entries, was {})", now.file_count, before.file_count),
            );
        }
    }
    out
}

/// `changed`, `added` or `removed`, from the values before and after.
fn verb(was: Option<&String>, is: Option<&String>) -> &'static str {
    match (was, is) {
        (Some(_), Some(_)) => "changed",
        (None, Some(_)) => "added",
        _ => "removed",
    }
}

/// The groups of context entries that differ, with their entry counts before and after.
fn folder_changes(
    before: &BTreeMap<String, identity::Folder>,
    now: &BTreeMap<String, identity::Folder>,
) -> Vec<(String, Option<usize>, Option<usize>)> {
    let mut names: Vec<&String> = before.keys().chain(now.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| before.get(*name) != now.get(*name))
        .map(|name| (name.clone(), before.get(name).map(|f| f.entries), now.get(name).map(|f| f.entries)))
        .collect()
}

/// The keys whose values differ, with the value before and after.
fn differences(
    before: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Vec<(String, Option<String>, Option<String>)> {
    let mut keys: Vec<&String> = before.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != now.get(*k))
        .map(|k| (k.clone(), before.get(k).cloned(), now.get(k).cloned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity;

    fn inputs() -> Inputs {
        Inputs {
            recipe: identity::RECIPE,
            project: "p".into(),
            image: "api".into(),
            dockerfile: identity::hash(b"FROM x"),
            builder: "buildkit".into(),
            level: "classic".into(),
            target: "main".into(),
            labels: [("team".to_owned(), identity::hash(b"shop"))].into(),
            bases: [("python:3.11".to_owned(), "sha256:aa".to_owned())].into(),
            files: [
                ("src/app.py".to_owned(), identity::hash(b"1")),
                ("README".to_owned(), identity::hash(b"r")),
            ]
            .into(),
            file_count: 2,
            files_digest: identity::hash(b"all1"),
            ..Inputs::default()
        }
    }

    #[test]
    fn says_what_changed_input_by_input() {
        let before = inputs().recorded();
        let mut now = inputs();
        now.files.insert("src/app.py".into(), identity::hash(b"2"));
        now.files.insert("src/new.py".into(), identity::hash(b"n"));
        now.files_digest = identity::hash(b"all2");
        now.bases.insert("python:3.11".into(), "sha256:bb".into());
        now.labels.remove("team");
        now.build_args.insert("MODE".into(), identity::hash(b"x"));
        now.builder = "classic".into();
        let recorded_files = inputs().recorded_files();
        let messages: Vec<String> =
            changes(&before, Some(&recorded_files), &now).into_iter().map(|c| c.message).collect();
        assert_eq!(
            messages,
            [
                "builder is `classic` (was `buildkit`)",
                "base `python:3.11` is now sha256:bb (was sha256:aa)",
                "label `team` removed",
                "build argument `MODE` added",
                "context file `src/app.py` changed",
                "context file `src/new.py` added",
            ]
        );
        assert!(changes(&before, None, &inputs()).is_empty(), "the same inputs, no change");
    }

    #[test]
    fn without_this_machines_record_names_the_folders() {
        let before = inputs().recorded();
        let mut now = inputs();
        now.files.insert("src/app.py".into(), identity::hash(b"2"));
        now.files.insert("docs/new.md".into(), identity::hash(b"n"));
        now.file_count = 3;
        now.files_digest = identity::hash(b"all2");
        let messages: Vec<String> = changes(&before, None, &now).into_iter().map(|c| c.message).collect();
        assert_eq!(
            messages,
            [
                "context folder `docs/` is new (1 entries)",
                "context folder `src/` changed (1 entries, was 1)",
                "3 context entries (was 2); this machine has no record of that build's files, so only folders are named",
            ]
        );
    }
}
