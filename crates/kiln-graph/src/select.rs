//! Choosing images by name: the images and groups named on the command line, with
//! what they depend on.

use kiln_manifest::did_you_mean;
use kiln_manifest::{ImageId, PerImage, Project};

use crate::Graph;

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
