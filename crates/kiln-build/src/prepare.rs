//! What an image's build needs before it starts: its build context (files selected by
//! its generated ignore file), the Dockerfile as the build sends it, its inputs and
//! their key (see [`crate::identity`]), and the labels it gets.

use std::collections::{BTreeMap, HashMap};
use std::io;

use kiln_context::{Context, HashCache};
use kiln_emit::{GeneratedText, Rendering};
use kiln_engine::Builder;
use kiln_graph::Graph;
use kiln_manifest::{ImageId, Project};

use crate::identity::{self, Inputs};
use crate::labels;
use kiln_emit::CONTEXT_FOLDER;

/// The Dockerfile's name in the build's tar.
pub const DOCKERFILE: &str = "kiln.Dockerfile";

/// What every build of a run shares.
pub struct Recipe<'a> {
    pub project: &'a Project,
    pub graph: &'a Graph,
    /// See [`kiln_marks::tags::project_id`].
    pub project_id: &'a str,
    pub builder: Builder,
    /// `--label`s.
    pub extra_labels: &'a [(String, String)],
    pub hashes: &'a HashCache,
}

pub struct Prepared {
    pub context: Context,
    pub inputs: Inputs,
    /// `blake3:<hex>`.
    pub key: String,
    /// The labels the build sets, but for `labels::build_time_labels`.
    pub labels: BTreeMap<String, String>,
}

/// Prepares image `index`. `dependencies` are the keys of the manifest images it uses,
/// `bases` the identities of its outside images (by reference as written); both must
/// hold every one it uses.
pub fn prepare(
    recipe: &Recipe<'_>,
    index: ImageId,
    dependencies: &HashMap<ImageId, String>,
    bases: &HashMap<String, String>,
) -> io::Result<Prepared> {
    let project = recipe.project;
    let image = &project[index];
    let ignore = kiln_emit::dockerignore(project, image).text;
    let context = Context::new(&image.context_dir, &ignore)?;

    // The key sees dependencies by name here and by key in `dependencies`, and outside
    // images as written (their identities are in `bases`): pins change with every run.
    let by_name = |dependency: ImageId| format!("kiln-image/{}", project[dependency].name);
    let keyed = kiln_emit::dockerfile(
        project,
        recipe.graph,
        index,
        Rendering { refs: &by_name, outside: None, context_prefix: Some(CONTEXT_FOLDER) },
    );

    let files = context.hashes(recipe.hashes)?;
    let mut all_files = blake3::Hasher::new();
    for (path, hash) in &files {
        all_files.update(path.as_bytes());
        all_files.update(&[0]);
        all_files.update(hash.as_bytes());
    }
    let mut labels = labels::image_labels(image, recipe.project_id, recipe.extra_labels);
    let mut inputs = Inputs {
        recipe: identity::RECIPE,
        project: recipe.project_id.to_owned(),
        image: image.name.clone(),
        dockerfile: identity::hash(without_header(&keyed.text).as_bytes()),
        syntax: project.syntax_directive.clone(),
        level: project.dockerfile_level.name().to_owned(),
        builder: builder_name(recipe.builder).to_owned(),
        target: image.target_stage().name.clone(),
        platform: image.platform.as_ref().map(|p| p.value.clone()),
        build_args: image
            .build_args
            .iter()
            .map(|kv| (kv.key.value.clone(), identity::hash(kv.value.value.as_bytes())))
            .collect(),
        labels: labels
            .iter()
            .filter(|(name, _)| !identity::volatile_label(name))
            .map(|(name, value)| (name.clone(), identity::hash(value.as_bytes())))
            .collect(),
        bases: image
            .external_bases()
            .into_iter()
            .map(|reference| (reference.to_owned(), bases.get(reference).cloned().unwrap_or_default()))
            .collect(),
        dependencies: BTreeMap::new(),
        file_count: files.len(),
        files: files.iter().map(|(path, hash)| (path.clone(), hash.to_hex().to_string())).collect(),
        files_digest: all_files.finalize().to_hex().to_string(),
        folders: BTreeMap::new(),
    };
    for &dependency in recipe.graph.dependencies(index) {
        let identity = dependencies.get(&dependency).cloned().unwrap_or_default();
        inputs.dependencies.insert(project[dependency].name.clone(), identity);
    }
    let key = inputs.key();
    labels.insert(kiln_marks::labels::KEY.to_owned(), key.clone());
    labels.insert(
        kiln_marks::labels::INPUTS.to_owned(),
        serde_json::to_string(&inputs.recorded()).expect("inputs serialize"),
    );
    Ok(Prepared { context, inputs, key, labels })
}

/// The Dockerfile a build sends: dependencies and outside images named by the run's
/// pins (`dependencies` by image, `bases` by reference as written).
pub fn render(
    project: &Project,
    graph: &Graph,
    index: ImageId,
    dependencies: &HashMap<ImageId, String>,
    bases: &HashMap<String, String>,
) -> GeneratedText {
    let pinned = |dependency: ImageId| {
        dependencies.get(&dependency).cloned().unwrap_or_else(|| project[dependency].reference())
    };
    let outside = |reference: &str| bases.get(reference).cloned().unwrap_or_else(|| reference.to_owned());
    kiln_emit::dockerfile(
        project,
        graph,
        index,
        Rendering { refs: &pinned, outside: Some(&outside), context_prefix: Some(CONTEXT_FOLDER) },
    )
}

/// The builder's name in the inputs.
pub fn builder_name(builder: Builder) -> &'static str {
    match builder {
        Builder::BuildKit => "buildkit",
        Builder::Classic => "classic",
    }
}

/// The Dockerfile from its first instruction on: kiln's header and the image's
/// description are comments that change nothing in the image.
fn without_header(text: &str) -> &str {
    let mut rest = text;
    while let Some((line, after)) = rest.split_once('\n') {
        if !(line.is_empty() || line.starts_with('#')) {
            break;
        }
        rest = after;
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::without_header;

    #[test]
    fn the_header_is_not_an_input() {
        let text =
            "# syntax=docker/dockerfile:1.7\n# Generated by kiln\n# a description\n\nFROM x\n# kept\nRUN y\n";
        assert_eq!(without_header(text), "FROM x\n# kept\nRUN y\n");
    }
}
