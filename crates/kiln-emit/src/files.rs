//! Where kiln writes the files it generates for an image.

use std::path::PathBuf;

use kiln_manifest::{Image, Project, display_name};

/// An image's generated Dockerfile and ignore file. The ignore file follows Docker's
/// per-Dockerfile convention (`<name>.Dockerfile.dockerignore`), so that a plain
/// `docker build -f <out>/<name>.Dockerfile <context>` with BuildKit picks it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFiles {
    pub dockerfile: PathBuf,
    pub dockerignore: PathBuf,
}

impl GeneratedFiles {
    pub fn of(project: &Project, image: &Image) -> Self {
        let dockerfile = project.output_dir.join(format!("{}.Dockerfile", image.name));
        let dockerignore = project.output_dir.join(format!("{}.Dockerfile.dockerignore", image.name));
        Self { dockerfile, dockerignore }
    }

    /// The paths as shown to users, relative to the root manifest's folder.
    pub fn display(&self, project: &Project) -> (String, String) {
        (
            display_name(&project.root_dir, &self.dockerfile),
            display_name(&project.root_dir, &self.dockerignore),
        )
    }
}
