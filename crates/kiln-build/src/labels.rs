//! The labels a build puts on its image: the OCI annotations that are known, and kiln's
//! own (named in `kiln_marks::labels`), for people, `kiln inspect` and `kiln explain`.

use std::collections::BTreeMap;
use std::path::Path;

use kiln_manifest::Image;

use kiln_marks::labels::{CREATED, IMAGE, PROJECT};

/// What git says about the repository, read once per run.
#[derive(Debug, Clone, Default)]
pub struct GitInfo {
    pub revision: Option<String>,
    pub source: Option<String>,
}

impl GitInfo {
    pub fn read(dir: &Path) -> Self {
        let git = |args: &[&str]| kiln_manifest::git(dir, args);
        Self {
            revision: git(&["rev-parse", "--verify", "HEAD"]),
            source: git(&["config", "--get", "remote.origin.url"]).map(|url| without_credentials(&url)),
        }
    }
}

/// `https://user:token@host/repo` → `https://host/repo`: a label is public; a token in a
/// remote URL must not end up in it. `git@host:repo` (SSH) has no secret and is kept.
fn without_credentials(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if let Some((_, host)) = authority.rsplit_once('@') {
            return format!("{scheme}://{host}/{path}");
        }
    }
    url.to_owned()
}

/// The labels of an image that are inputs of its key: all but the key, the recorded
/// inputs and the [`build_time_labels`].
pub fn image_labels(image: &Image, project: &str, extra: &[(String, String)]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let oci = |key: &str| format!("org.opencontainers.image.{key}");
    labels.insert(oci("title"), image.name.clone());
    // Always set, even empty: labels are inherited from the base image, whose version is
    // not this image's.
    let version = image.tags.iter().map(|t| t.value.as_str()).find(|t| *t != "latest").unwrap_or("");
    labels.insert(oci("version"), version.to_owned());
    labels.insert(PROJECT.to_owned(), project.to_owned());
    labels.insert(IMAGE.to_owned(), image.name.clone());
    labels.extend(extra.iter().cloned());
    labels
}

/// The labels that change with every build or commit, set when a build runs and left
/// out of the key: the time, the commit and the remote.
pub fn build_time_labels(git: &GitInfo) -> Vec<(String, String)> {
    let oci = |key: &str| format!("org.opencontainers.image.{key}");
    let mut labels = vec![(CREATED.to_owned(), crate::event::now())];
    if let Some(revision) = &git.revision {
        labels.push((oci("revision"), revision.clone()));
    }
    if let Some(source) = &git.source {
        labels.push((oci("source"), source.clone()));
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn strips_credentials_from_remote_urls() {
        assert_eq!(
            without_credentials("https://user:token@example.com/org/repo.git"),
            "https://example.com/org/repo.git"
        );
        assert_eq!(
            without_credentials("https://example.com/org/repo.git"),
            "https://example.com/org/repo.git"
        );
        assert_eq!(without_credentials("git@github.com:org/repo.git"), "git@github.com:org/repo.git");
    }
}
