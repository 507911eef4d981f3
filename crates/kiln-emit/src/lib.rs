//! kiln's generated files: an optimized Dockerfile and a `.dockerignore` per image, and
//! writing them to disk safely or checking that the committed ones are up to date.

mod dockerfile;
mod ignore;
mod write;

use kiln_graph::{GeneratedFiles, Graph};
use kiln_manifest::Project;

pub use dockerfile::{
    GeneratedText, HEADER_MARK, ImageRefs, OutsideRefs, Rendering, StepOrigin, dockerfile, header,
};
pub use ignore::{DEFAULT_PATTERNS, copied_paths, dockerignore};
pub use write::{
    Change, OutputFile, PlannedChange, WriteError, apply_changes, diff, has_header, plan_changes,
};

/// Every file `kiln emit` writes, in build order: each image's Dockerfile, then its
/// ignore file.
pub fn output_files(project: &Project, graph: &Graph) -> Vec<OutputFile> {
    let first_tag = |index: usize| project.images[index].reference();
    let pinned = |reference: &str| pinned_base(project, reference);
    let mut files = Vec::with_capacity(project.images.len() * 2);
    for &index in graph.order() {
        let image = &project.images[index];
        let paths = GeneratedFiles::of(project, image);
        let (dockerfile_name, ignore_name) = paths.display(project);
        files.push(OutputFile {
            path: paths.dockerfile,
            display: dockerfile_name,
            contents: dockerfile(
                project,
                graph,
                index,
                Rendering {
                    refs: &first_tag,
                    outside: project.pin_bases.then_some(&pinned as &dyn Fn(&str) -> String),
                    context_prefix: None,
                },
            )
            .text,
        });
        files.push(OutputFile {
            path: paths.dockerignore,
            display: ignore_name,
            contents: dockerignore(project, image).text,
        });
    }
    files
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
