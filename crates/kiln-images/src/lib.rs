//! The life of the images a manifest describes, after (and before) they are built:
//! which outside images to pull, which built images exist, tagging, pushing, removing,
//! pruning, and reading an image's history back to the manifest lines it came from.
//!
//! Everything is scoped by content tags ([`Scope::owner`]): an image is this manifest's
//! when kiln built it for this project. Nothing here removes any other image, whatever
//! the arguments.

mod history;
mod scope;

use std::collections::HashMap;

use kiln_manifest::{ImageId, Project, PullPolicy};

pub use history::{Layer, LayerOrigin, history};
pub use scope::{Build, Scope, Selected, user_tags};

/// The outside images (bases and `copy` sources) the selected images use, each with the
/// strictest pull policy of the images that use it, in build order.
pub fn pull_targets(
    project: &Project,
    selected: &[ImageId],
    override_policy: Option<PullPolicy>,
) -> Vec<(String, PullPolicy)> {
    let mut targets: Vec<(String, PullPolicy)> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for &index in selected {
        let image = &project[index];
        let policy = override_policy.unwrap_or(image.pull_policy);
        for reference in image.external_bases() {
            if let Some(&at) = position.get(reference) {
                let current = &mut targets[at].1;
                // `always` beats `missing` beats `never`.
                if rank(policy) > rank(*current) {
                    *current = policy;
                }
            } else {
                position.insert(reference.to_owned(), targets.len());
                targets.push((reference.to_owned(), policy));
            }
        }
    }
    targets
}

fn rank(policy: PullPolicy) -> u8 {
    match policy {
        PullPolicy::Never => 0,
        PullPolicy::Missing => 1,
        PullPolicy::Always => 2,
    }
}

/// `registry/namespace` + the image's repository name: the reference `kiln tag
/// --registry` gives a tag.
pub fn retarget(repository: &str, image_name: &str, registry: &str) -> String {
    // Keep the last path component of the repository (the image's own name).
    let name = repository.rsplit('/').next().unwrap_or(image_name);
    format!("{}/{name}", registry.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::retarget;

    #[test]
    fn retargets_to_a_registry() {
        assert_eq!(retarget("shop/api", "api", "127.0.0.1:5000/team/"), "127.0.0.1:5000/team/api");
        assert_eq!(retarget("api", "api", "registry.example.com"), "registry.example.com/api");
    }
}
