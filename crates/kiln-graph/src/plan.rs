//! The resolved plan: what would be built, in which order, from which files.

use indexmap::IndexMap;
use kiln_manifest::suggest::did_you_mean;
use kiln_manifest::{ImageId, PerImage, Project};
use schemars::JsonSchema;
use serde::Serialize;

use crate::{GeneratedFiles, Graph};

/// The output of `kiln plan --json`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Plan {
    /// The root manifest, relative to its own folder.
    pub manifest: String,
    /// The output folder, relative to the root manifest's folder.
    pub output: String,
    /// The Dockerfile feature level the files are generated for.
    pub dockerfile_level: String,
    /// The selected images and everything they depend on, in build order.
    pub images: Vec<PlanImage>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PlanImage {
    pub name: String,
    /// For a variant, the image it is a variant of.
    pub variant_of: Option<String>,
    /// Where the image is declared, `file:line:col`.
    pub location: String,
    /// The reference the image is built as (its first tag); dependents build on it.
    pub reference: String,
    /// Every `repository:tag` the image receives.
    pub tags: Vec<String>,
    /// Images of the manifest that must be built first.
    pub depends_on: Vec<String>,
    /// Outside images the build uses (bases and `copy` sources).
    pub external_images: Vec<String>,
    /// The build context, relative to the root manifest's folder.
    pub context: String,
    pub dockerfile: String,
    pub dockerignore: String,
    /// The stage that is built.
    pub target: String,
    /// The stages written to the Dockerfile, in order.
    pub stages: Vec<String>,
    pub build_args: IndexMap<String, String>,
    pub platform: Option<String>,
}

/// A name on the command line that is neither an image nor a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSelection {
    pub name: String,
    pub suggestion: Option<String>,
}

impl UnknownSelection {
    /// `name`, with the closest image or group name as a suggestion.
    pub fn new(project: &Project, name: &str) -> Self {
        Self::among(project, name, std::iter::empty())
    }

    /// `name`, with the closest of the image names, group names and `more` as a suggestion.
    pub fn among<'a>(project: &'a Project, name: &str, more: impl Iterator<Item = &'a str>) -> Self {
        let candidates = project
            .images
            .iter()
            .map(|i| i.name.as_str())
            .chain(project.groups.keys().map(String::as_str))
            .chain(more);
        Self { name: name.to_owned(), suggestion: did_you_mean(name, candidates) }
    }
}

impl Plan {
    /// The plan for the given image and group names (all images when empty), with
    /// their dependencies, in build order.
    pub fn new(
        project: &Project,
        graph: &Graph,
        selection: &[String],
    ) -> Result<Self, Vec<UnknownSelection>> {
        let selected = select(project, graph, selection)?;
        let images = graph
            .order()
            .iter()
            .copied()
            .filter(|i| selected[*i])
            .map(|i| plan_image(project, graph, i))
            .collect();
        Ok(Self { images, ..Self::empty(project) })
    }

    /// A plan of no image.
    pub fn empty(project: &Project) -> Self {
        Self {
            manifest: project.manifest.clone(),
            output: project.output.clone(),
            dockerfile_level: project.dockerfile_level.name().to_owned(),
            images: Vec::new(),
        }
    }
}

/// Marks the selected images and, transitively, what they depend on.
pub fn select(
    project: &Project,
    graph: &Graph,
    names: &[String],
) -> Result<PerImage<bool>, Vec<UnknownSelection>> {
    if names.is_empty() {
        return Ok(project.per_image(|_| true));
    }
    let mut selected = project.per_image(|_| false);
    let mut unknown = Vec::new();
    let mut stack: Vec<ImageId> = Vec::new();
    for name in names {
        if let Some(group) = project.groups.get(name) {
            stack.extend(group.images.iter().filter_map(|n| project.image_id(n)));
        } else if let Some(id) = project.image_id(name) {
            stack.push(id);
        } else {
            unknown.push(UnknownSelection::new(project, name));
        }
    }
    if !unknown.is_empty() {
        return Err(unknown);
    }
    while let Some(id) = stack.pop() {
        if !selected[id] {
            selected[id] = true;
            stack.extend(graph.dependencies(id));
        }
    }
    Ok(selected)
}

fn plan_image(project: &Project, graph: &Graph, id: ImageId) -> PlanImage {
    let image = &project[id];
    let (dockerfile, dockerignore) = GeneratedFiles::of(project, image).display(project);
    PlanImage {
        name: image.name.clone(),
        variant_of: image.variant.as_ref().map(|v| v.image.clone()),
        location: image.location.clone(),
        reference: image.reference(),
        tags: image.references(),
        depends_on: graph.dependencies(id).iter().map(|&d| project[d].name.clone()).collect(),
        external_images: image.external_bases().into_iter().map(str::to_owned).collect(),
        context: image.context.clone(),
        dockerfile,
        dockerignore,
        target: image.target_stage().name.clone(),
        stages: graph.stage_order(id).iter().map(|&s| image.stage(s).name.clone()).collect(),
        build_args: image
            .build_args
            .iter()
            .map(|kv| (kv.key.value.clone(), kv.value.value.clone()))
            .collect(),
        platform: image.platform.as_ref().map(|p| p.value.clone()),
    }
}
