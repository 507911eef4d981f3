//! Which images are this manifest's, and what the command line selected.
//!
//! An image is the manifest's when it carries a content tag (see
//! `kiln_build::identity`) in the repository of one of the manifest's images, and was
//! built for this project. A label alone never says so: an image built `FROM` one of
//! kiln's inherits all its labels, but no tag.

use std::collections::HashSet;

use kiln_engine::{Engine, EngineError, ImageInfo};
use kiln_graph::{Graph, UnknownSelection};
use kiln_manifest::{ImageId, Project};
use kiln_marks::{labels, pin};

/// A project and the engine its images live in.
pub struct Scope<'a> {
    pub project: &'a Project,
    pub graph: &'a Graph,
    pub engine: &'a Engine,
    /// See `kiln_marks::tags::project_id`.
    pub project_id: String,
    repositories: HashSet<&'a str>,
}

/// An image built from this manifest.
#[derive(Debug, Clone)]
pub struct Build {
    /// The image's name in the manifest (from `dev.kiln.image`).
    pub image: String,
    pub info: ImageInfo,
    /// Whether the image's first tag points at this build.
    pub current: bool,
}

impl Build {
    /// The tags people gave the build: neither content tags nor pins.
    pub fn user_tags(&self) -> Vec<String> {
        user_tags(&self.info.tags)
    }

    /// The input key, from the build's label.
    pub fn key(&self) -> Option<&str> {
        self.info.labels.get(labels::KEY).map(String::as_str)
    }
}

/// Tags that are neither content tags nor pins.
pub fn user_tags(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter(|t| !t.starts_with(pin::PREFIX) && kiln_marks::tags::content_tag_repository(t).is_none())
        .cloned()
        .collect()
}

/// What the command line named.
#[derive(Debug, Clone, Default)]
pub struct Selected {
    /// Images, in build order.
    pub images: Vec<ImageId>,
    /// `image:tag` names: one tag of one image.
    pub tags: Vec<(ImageId, String)>,
}

impl<'a> Scope<'a> {
    pub fn new(project: &'a Project, graph: &'a Graph, engine: &'a Engine) -> Self {
        let repositories = project.images.iter().map(|i| i.repository.as_str()).collect();
        Self { project, graph, engine, project_id: kiln_marks::tags::project_id(project), repositories }
    }

    /// The name of the manifest image `info` is a build of, if it is one of this
    /// manifest's builds.
    pub fn owner(&self, info: &ImageInfo) -> Option<String> {
        let content_tagged = info
            .tags
            .iter()
            .filter_map(|t| kiln_marks::tags::content_tag_repository(t))
            .any(|repository| self.repositories.contains(repository));
        (content_tagged && info.labels.get(labels::PROJECT) == Some(&self.project_id))
            .then(|| info.labels.get(labels::IMAGE).cloned().unwrap_or_default())
    }

    /// Every build of this manifest, grouped by image name (manifest order, then names no
    /// longer in the manifest); within a name, the current build first, then the others
    /// newest first.
    pub async fn builds(&self) -> Result<Vec<Build>, EngineError> {
        let found = self.engine.tagged_images().await?;
        let mut current_ids = std::collections::HashMap::new();
        for image in &self.project.images {
            let reference = image.reference();
            if let Some(found) = found.iter().find(|i| i.tags.contains(&reference)) {
                current_ids.insert(image.name.clone(), found.id.clone());
            }
        }
        let mut builds: Vec<Build> = found
            .into_iter()
            .filter_map(|info| {
                let image = self.owner(&info)?;
                let current = current_ids.get(&image) == Some(&info.id);
                Some(Build { image, info, current })
            })
            .collect();
        let order = |name: &str| self.project.image_id(name).map_or(usize::MAX, ImageId::index);
        // The current build first, then the others newest first.
        builds.sort_by(|a, b| {
            (order(&a.image), &a.image, !a.current, std::cmp::Reverse(&a.info.created)).cmp(&(
                order(&b.image),
                &b.image,
                !b.current,
                std::cmp::Reverse(&b.info.created),
            ))
        });
        Ok(builds)
    }

    /// Resolves image names, group names and `image:tag` names. With no name, every
    /// image. `with_dependencies` adds what the selected images depend on.
    pub fn select(
        &self,
        names: &[String],
        with_dependencies: bool,
    ) -> Result<Selected, Vec<UnknownSelection>> {
        let project = self.project;
        let mut plain: Vec<String> = Vec::new();
        let mut tags = Vec::new();
        let mut unknown = Vec::new();
        for name in names {
            match name.rsplit_once(':') {
                Some((image, tag)) if let Some(id) = project.image_id(image) => {
                    tags.push((id, tag.to_owned()));
                }
                Some((image, _)) => unknown.push(UnknownSelection::new(project, image)),
                None if project.image_id(name).is_some() || project.groups.contains_key(name) => {
                    plain.push(name.clone());
                }
                None => unknown.push(UnknownSelection::new(project, name)),
            }
        }
        if !unknown.is_empty() {
            return Err(unknown);
        }
        let mut images: Vec<ImageId> = if names.is_empty() {
            self.graph.order().to_vec()
        } else if with_dependencies {
            let selected = kiln_graph::select(project, self.graph, &plain)?;
            self.graph.order().iter().copied().filter(|i| selected[*i]).collect()
        } else {
            let mut chosen = Vec::new();
            for name in &plain {
                match project.groups.get(name) {
                    Some(group) => chosen.extend(group.images.iter().filter_map(|n| project.image_id(n))),
                    None => chosen.extend(project.image_id(name)),
                }
            }
            self.graph.order().iter().copied().filter(|i| chosen.contains(i)).collect()
        };
        if !names.is_empty() && plain.is_empty() {
            images.clear();
        }
        Ok(Selected { images, tags })
    }
}
