//! `kiln explain IMAGE`: whether the next build would reuse the image or build it again,
//! and why, input by input (see `kiln_build::explain`).

use std::fmt::Write as _;

use kiln_build::explain::{self, Change};
use kiln_build::identity::Inputs;
use kiln_build::records::Records;
use kiln_marks::labels;
use serde::Serialize;

use super::engine_session;
use crate::cli::{ExplainArgs, GlobalArgs};
use crate::session::unknown_names;
use crate::term::Term;
use crate::{CliError, ExitStatus};

#[derive(Serialize)]
struct Explained {
    image: String,
    /// The key the next build would have.
    key: String,
    /// `up-to-date` (the engine has it), `in-registry`, `changed` (a build of it exists,
    /// with other inputs) or `never-built`.
    status: &'static str,
    /// The build compared with, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    compared_with: Option<Compared>,
    changes: Vec<Change>,
}

#[derive(Serialize)]
struct Compared {
    id: String,
    key: Option<String>,
    created: String,
    tags: Vec<String>,
}

pub(crate) fn run(global: &GlobalArgs, args: &ExplainArgs, term: &Term) -> Result<ExitStatus, CliError> {
    let extra_labels = args.labels.clone();
    let connected = engine_session::connect(global, term)?;
    let scope = connected.scope();
    let project = &connected.session.project;
    let index = project
        .image_id(&args.image)
        .ok_or_else(|| unknown_names(vec![kiln_graph::UnknownSelection::new(project, &args.image)]))?;
    let image = &project[index];
    let settings = explain::Settings { builder: args.builder.builder(), labels: &extra_labels };
    let prepared = connected
        .runtime
        .block_on(explain::inputs(project, &connected.session.graph, &connected.engine, &settings, index))
        .map_err(CliError::failure)?;
    let now = &prepared[&index];
    let content = kiln_marks::tags::content_tag(&image.repository, &now.key);
    let builds = connected.builds(&scope)?;
    let here = builds.iter().find(|b| b.info.tags.contains(&content));
    let in_registry = here.is_none() && !args.offline && in_registry(&connected, &content);
    // The build to compare with: the one the image's first tag names, else its newest.
    let last = builds
        .iter()
        .filter(|b| b.image == image.name)
        .find(|b| b.current)
        .or_else(|| builds.iter().find(|b| b.image == image.name));
    let (status, compared_with, changes) = if here.is_some() {
        ("up-to-date", here, Vec::new())
    } else if in_registry {
        ("in-registry", None, Vec::new())
    } else if let Some(last) = last {
        let recorded =
            last.info.labels.get(labels::INPUTS).and_then(|text| serde_json::from_str::<Inputs>(text).ok());
        let before_files = last.key().and_then(|key| Records::open()?.files(key));
        let changes = match recorded {
            Some(before) => explain::changes(&before, before_files.as_ref(), &now.inputs),
            None => vec![Change {
                input: "record".to_owned(),
                name: None,
                message: "its last build recorded no inputs (an older kiln built it)".to_owned(),
            }],
        };
        ("changed", Some(last), changes)
    } else {
        ("never-built", None, Vec::new())
    };
    let explained = Explained {
        image: image.name.clone(),
        key: now.key.clone(),
        status,
        compared_with: compared_with.map(|b| Compared {
            id: b.info.id.clone(),
            key: b.key().map(str::to_owned),
            // kiln's label: the engine's own date is that of the newest layer, which
            // the cache may have made long before.
            created: b.info.labels.get(labels::CREATED).cloned().unwrap_or_else(|| b.info.created.clone()),
            tags: b.user_tags(),
        }),
        changes,
    };
    if args.json {
        term.json(&explained);
    } else {
        term.out(&text(&explained, &content));
    }
    Ok(ExitStatus::Success)
}

/// Whether the image's registry has its content tag (a registry that cannot answer is
/// taken for no).
fn in_registry(connected: &engine_session::Connected, content: &str) -> bool {
    let has_registry = kiln_reference::ImageRef::parse(content).is_ok_and(|r| r.domain.is_some());
    if !has_registry {
        return false;
    }
    let registry =
        kiln_registry::Client::new(connected.runtime.block_on(connected.engine.insecure_registries()));
    matches!(registry.manifest(content), Ok(Some(_)))
}

fn text(explained: &Explained, content: &str) -> String {
    let mut out = String::new();
    let name = &explained.image;
    match explained.status {
        "up-to-date" => {
            let _ = writeln!(
                out,
                "{name} is up to date: the engine has `{content}`, so the next build reuses it"
            );
        }
        "in-registry" => {
            let _ = writeln!(
                out,
                "{name} is up to date in its registry: the next build pulls `{content}` (or, with --push, only tags it there)"
            );
        }
        "never-built" => {
            let _ = writeln!(out, "{name} will be built: the engine has no build of it");
        }
        _ => {
            let _ = writeln!(out, "{name} will be built: its inputs changed since its last build");
            if let Some(last) = &explained.compared_with {
                let tags =
                    if last.tags.is_empty() { String::new() } else { format!(", {}", last.tags.join(", ")) };
                let _ = writeln!(
                    out,
                    "compared with {} (built {}{tags}):",
                    crate::progress::short_id(&last.id),
                    last.created
                );
            }
            for change in &explained.changes {
                let _ = writeln!(out, "  - {}", change.message);
            }
        }
    }
    let _ = writeln!(out, "key: {}", explained.key);
    out
}
