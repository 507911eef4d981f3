//! An image's layers, newest first, each traced back to the manifest line that made it.
//!
//! An image's history is its base's history with one entry per instruction of its
//! stage on top (and so on down a chain of `from stage=` and `from image=`). kiln
//! regenerates the Dockerfiles of that chain and walks both lists from the newest end,
//! pairing entries with instructions of the same kind; what is left below the chain came
//! from the outside base image.

use kiln_emit::Rendering;
use kiln_engine::{EngineError, HistoryEntry};
use kiln_manifest::ast::From;
use kiln_manifest::{ImageId, Span};
use schemars::JsonSchema;
use serde::Serialize;

use crate::Scope;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Layer {
    /// The instruction, as the engine recorded it.
    pub created_by: String,
    pub size: u64,
    /// Whether the entry added data (metadata instructions add an empty layer).
    pub empty: bool,
    pub origin: LayerOrigin,
    /// One of the three largest layers.
    pub largest: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LayerOrigin {
    /// An instruction of the manifest.
    Manifest {
        /// The manifest image whose Dockerfile holds the instruction.
        image: String,
        /// `file:line:col` of the manifest node.
        location: String,
        #[serde(skip)]
        #[schemars(skip)]
        span: Span,
    },
    /// A layer of an outside base image.
    Base {
        reference: String,
    },
    /// The classic builder's step for the labels kiln passes at build time.
    BuildLabels,
    Unknown,
}

/// One expected history entry: an instruction of the chain, newest first.
struct Expected {
    keyword: String,
    image: String,
    span: Span,
}

/// The history of a manifest image's build (`reference` names the build to read).
pub async fn history(scope: &Scope<'_>, image: ImageId, reference: &str) -> Result<Vec<Layer>, EngineError> {
    let entries = scope.engine.history(reference).await?;
    let (expected, base) = chain(scope, image);
    Ok(align(scope, &entries, &expected, base.as_deref()))
}

/// The instructions of the target stage and of every stage and image below it, newest
/// first, and the outside image at the bottom (if any).
fn chain(scope: &Scope<'_>, mut image: ImageId) -> (Vec<Expected>, Option<String>) {
    let project = scope.project;
    let mut expected = Vec::new();
    let mut stage = project[image].target;
    loop {
        let first_tag = |i: ImageId| project[i].reference();
        let generated = kiln_emit::dockerfile(
            project,
            scope.graph,
            image,
            Rendering { refs: &first_tag, outside: None, context_prefix: Some(kiln_emit::CONTEXT_FOLDER) },
        );
        let named = scope.graph.stage_order(image).len() > 1;
        let stage_name = if named { project[image].stage(stage).name.as_str() } else { "" };
        let steps: Vec<_> =
            generated.steps.iter().filter(|s| s.stage == stage_name && s.number > 1).collect();
        for step in steps.iter().rev() {
            expected.push(Expected {
                keyword: step.keyword.clone(),
                image: project[image].name.clone(),
                span: step.span,
            });
        }
        match &project[image].stage(stage).from.value {
            From::Stage(name) => match project[image].stage_id(&name.value) {
                Some(next) => stage = next,
                None => return (expected, None),
            },
            From::Image(name) => match project.image_id(&name.value) {
                Some(next) => {
                    image = next;
                    stage = project[next].target;
                }
                None => return (expected, None),
            },
            From::External(reference) => {
                let base = (reference.value != "scratch").then(|| reference.value.clone());
                return (expected, base);
            }
        }
    }
}

fn align(
    scope: &Scope<'_>,
    entries: &[HistoryEntry],
    expected: &[Expected],
    base: Option<&str>,
) -> Vec<Layer> {
    let mut layers = Vec::with_capacity(entries.len());
    let mut next = 0;
    for entry in entries {
        let keyword = keyword_of(&entry.created_by);
        let origin = if next < expected.len() {
            // Instructions that leave no entry (BuildKit records no ARG) are skipped over.
            let ahead = expected[next..].iter().take(3).position(|e| e.keyword == keyword);
            match ahead {
                Some(skip) => {
                    let found = &expected[next + skip];
                    next += skip + 1;
                    LayerOrigin::Manifest {
                        image: found.image.clone(),
                        location: scope.project.sources.location(found.span),
                        span: found.span,
                    }
                }
                None if keyword == "LABEL" => LayerOrigin::BuildLabels,
                None => LayerOrigin::Unknown,
            }
        } else {
            match base {
                Some(reference) => LayerOrigin::Base { reference: reference.to_owned() },
                None => LayerOrigin::Unknown,
            }
        };
        layers.push(Layer {
            created_by: entry.created_by.clone(),
            size: entry.size,
            empty: entry.size == 0,
            origin,
            largest: false,
        });
    }
    let mut by_size: Vec<usize> = (0..layers.len()).filter(|&i| layers[i].size > 0).collect();
    by_size.sort_by(|a, b| layers[*b].size.cmp(&layers[*a].size));
    for index in by_size.into_iter().take(3) {
        layers[index].largest = true;
    }
    layers
}

/// Dockerfile instructions, as history entries name them.
const KEYWORDS: &[&str] = &[
    "RUN",
    "COPY",
    "ADD",
    "WORKDIR",
    "ENV",
    "ARG",
    "LABEL",
    "USER",
    "EXPOSE",
    "VOLUME",
    "ENTRYPOINT",
    "CMD",
    "HEALTHCHECK",
    "SHELL",
    "STOPSIGNAL",
    "ONBUILD",
    "MAINTAINER",
];

/// The instruction keyword of a history entry, as BuildKit (`RUN /bin/sh -c ...`,
/// `COPY ...`) or the classic builder (`/bin/sh -c #(nop) COPY ...`, `/bin/sh -c cmd`
/// for RUN, with `|N ARG=value` in front when build arguments were set) records it.
fn keyword_of(created_by: &str) -> String {
    let mut text = created_by.trim();
    if let Some(rest) = text.strip_prefix('|') {
        // `|2 A=1 B=2 /bin/sh -c ...`: skip the count and the arguments.
        let count: usize = rest.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let mut words = rest.splitn(count + 2, char::is_whitespace);
        text = words.nth(count + 1).unwrap_or("").trim_start();
    }
    if let Some(rest) = text.strip_prefix("/bin/sh -c #(nop)") {
        return rest.split_whitespace().next().unwrap_or("").to_owned();
    }
    if text.starts_with("/bin/sh -c") {
        return "RUN".to_owned();
    }
    let first = text.split_whitespace().next().unwrap_or("");
    if KEYWORDS.contains(&first) { first.to_owned() } else { "RUN".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::keyword_of;

    #[test]
    fn reads_keywords_of_both_builders() {
        assert_eq!(keyword_of("RUN /bin/sh -c apt-get update # buildkit"), "RUN");
        assert_eq!(keyword_of("COPY context/app ./app # buildkit"), "COPY");
        assert_eq!(keyword_of("WORKDIR /app"), "WORKDIR");
        assert_eq!(keyword_of("/bin/sh -c #(nop) COPY file:abc in /app "), "COPY");
        assert_eq!(keyword_of("/bin/sh -c #(nop)  CMD [\"sh\"]"), "CMD");
        assert_eq!(keyword_of("/bin/sh -c echo hi"), "RUN");
        assert_eq!(keyword_of("|1 MODE=release /bin/sh -c make"), "RUN");
        assert_eq!(keyword_of("|2 A=1 B=2 /bin/sh -c #(nop) LABEL x=y"), "LABEL");
    }
}
