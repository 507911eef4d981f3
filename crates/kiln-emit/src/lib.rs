//! kiln's generated files: an optimized Dockerfile and a `.dockerignore` per image, and
//! writing them to disk safely or checking that the committed ones are up to date.

mod bake;
mod dockerfile;
mod encode;
mod files;
mod ignore;
mod linked;
mod run;
mod write;

use kiln_graph::Graph;
use kiln_manifest::{Code, Diagnostic, Diagnostics, ImageId, Project};

pub use bake::{BakeNameClash, bake_file};
pub use dockerfile::{
    CONTEXT_FOLDER, GeneratedText, HEADER_MARK, ImageRefs, OutsideRefs, Rendering, StepOrigin, dockerfile,
    header,
};
pub use files::GeneratedFiles;
pub use ignore::{DEFAULT_PATTERNS, dockerignore};
pub use write::{
    Change, OutputFile, PlannedChange, WriteError, apply_changes, diff, has_header, plan_changes,
    write_atomically,
};

/// Every file `kiln emit` writes, in build order: each image's Dockerfile, then its
/// ignore file.
pub fn output_files(project: &Project, graph: &Graph) -> Vec<OutputFile> {
    let mut files = Vec::with_capacity(project.images.len() * 2);
    for &id in graph.order() {
        let image = &project[id];
        let paths = GeneratedFiles::of(project, image);
        let (dockerfile_name, ignore_name) = paths.display(project);
        files.push(OutputFile {
            path: paths.dockerfile,
            display: dockerfile_name,
            contents: committed_dockerfile(project, graph, id).text,
        });
        files.push(OutputFile {
            path: paths.dockerignore,
            display: ignore_name,
            contents: dockerignore(project, image).text,
        });
    }
    files
}

/// An image's Dockerfile as `kiln emit` writes it: other images named by a tag that
/// does not change with every commit, outside images as the manifest (or, with `pin-bases`, the lock) names them.
fn committed_dockerfile(project: &Project, graph: &Graph, id: ImageId) -> GeneratedText {
    let stable_tag = |id: ImageId| project[id].committed_reference();
    let pinned = |reference: &str| pinned_base(project, reference);
    let rendering = Rendering {
        refs: &stable_tag,
        outside: project.pin_bases.then_some(&pinned as &dyn Fn(&str) -> String),
        context_prefix: None,
    };
    dockerfile(project, graph, id, rendering)
}

/// Docker reads a Dockerfile with Go's line scanner and refuses a line longer than
/// this (`dockerfile line greater than max allowed size of 65535`).
pub const MAX_LINE_BYTES: usize = 65_535;

/// Reports every generated Dockerfile line Docker would refuse as too long, at the
/// manifest value that made it. Run on a project without errors.
pub fn check_line_lengths(project: &Project, graph: &Graph, diags: &mut Diagnostics) {
    for &id in graph.order() {
        let generated = committed_dockerfile(project, graph, id);
        for (line, origin) in generated.text.lines().zip(&generated.origins) {
            if line.len() <= MAX_LINE_BYTES {
                continue;
            }
            let message = format!(
                "image `{}` would have a Dockerfile line of {} bytes; Docker reads at most {MAX_LINE_BYTES}",
                project[id].name,
                line.len()
            );
            let mut diagnostic = Diagnostic::new(Code::Unexpressible, message)
                .help("shorten the value, or split it (several `copy` or `env` nodes)");
            if let Some(span) = origin {
                diagnostic = diagnostic.label(*span, "this instruction's line is too long");
            }
            diags.push(diagnostic);
        }
    }
}

/// With `pin-bases`, an outside image as the committed Dockerfile names it: by its
/// locked digest (`python:3.11-slim@sha256:…`), when the lock has one.
pub fn pinned_base(project: &Project, reference: &str) -> String {
    match project.lock.as_ref().and_then(|lock| lock.get(reference)) {
        Some(kiln_manifest::lock::Locked::Digest(digest)) if !reference.contains('@') => {
            format!("{reference}@{digest}")
        }
        _ => reference.to_owned(),
    }
}
