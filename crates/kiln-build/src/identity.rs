//! What makes an image "this image, up to date": its input key, the content tag that
//! records it on the engine and in registries, and the project an image belongs to.
//!
//! The key is a hash over every input of a build ([`Inputs`]): the generated Dockerfile,
//! the content of the context files that survive the ignore rules, build arguments,
//! labels, platform, target stage, builder, Dockerfile level, each outside base's
//! resolved identity and each dependency's key. Nothing in it depends on the checkout's
//! path, the time or the machine, so two clones of a repository compute the same keys.
//! `docs/identity.md` documents the recipe.
//!
//! A successful build gets the content tag `<repository>:kiln-<key prefix>` (see
//! `kiln_marks::tags`). "Up to date" means that exact tag exists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bump when the recipe changes, so that keys of the old recipe stop matching.
pub const RECIPE: u32 = 3;

/// Above this many context entries, the recorded inputs keep one digest for the files
/// rather than a hash per file (labels must stay small).
pub const MAX_RECORDED_FILES: usize = 2000;

/// Every input of one image's build. Hashes are hex; `recorded` shortens them to what
/// `kiln explain` needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// The recipe the key was computed with ([`RECIPE`]).
    pub recipe: u32,
    /// The project the image belongs to (see `kiln_marks::tags::project_id`).
    pub project: String,
    /// The image's name in the manifest.
    pub image: String,
    /// The generated Dockerfile as built, kiln's header comment left out, with each
    /// dependency named by its name (its key is in `dependencies`).
    pub dockerfile: String,
    /// The `# syntax=` frontend, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syntax: Option<String>,
    pub level: String,
    pub builder: String,
    /// The stage that is built.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Name → hash of the value.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// Every label kiln sets at build time except the ones that change with every build
    /// or commit (see [`volatile_label`]): name → hash of the value.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Outside image, as written → its identity: registry digest or local image ID.
    #[serde(default)]
    pub bases: BTreeMap<String, String>,
    /// Image of the manifest → its key.
    #[serde(default)]
    pub dependencies: BTreeMap<String, String>,
    /// Context path → hash of the entry (kind, mode, content). Empty when there are more
    /// than [`MAX_RECORDED_FILES`] in a record.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    pub file_count: usize,
    /// One hash over every context entry.
    pub files_digest: String,
}

impl Inputs {
    /// The key: `blake3:<hex>` over the inputs.
    pub fn key(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("inputs serialize");
        format!("blake3:{}", blake3::hash(&bytes).to_hex())
    }

    /// What an image records of its inputs (label [`kiln_marks::labels::INPUTS`]): hashes
    /// shortened to 16 hex digits, enough to tell that something changed, and files
    /// left out past [`MAX_RECORDED_FILES`].
    #[must_use]
    pub fn recorded(&self) -> Self {
        let short = |hash: &String| hash.chars().take(16).collect::<String>();
        let shorten =
            |map: &BTreeMap<String, String>| map.iter().map(|(k, v)| (k.clone(), short(v))).collect();
        Self {
            dockerfile: short(&self.dockerfile),
            build_args: shorten(&self.build_args),
            labels: shorten(&self.labels),
            files: if self.files.len() > MAX_RECORDED_FILES { BTreeMap::new() } else { shorten(&self.files) },
            files_digest: short(&self.files_digest),
            ..self.clone()
        }
    }
}

/// A hash as the inputs hold it.
pub fn hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Labels that change with every build or commit, and so stay out of the key: the
/// creation time, the commit and the remote. The key labels themselves are outputs.
pub fn volatile_label(name: &str) -> bool {
    matches!(
        name,
        "org.opencontainers.image.created"
            | "org.opencontainers.image.revision"
            | "org.opencontainers.image.source"
    ) || name == kiln_marks::labels::KEY
        || name == kiln_marks::labels::INPUTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_changes_the_key() {
        let base = Inputs { recipe: RECIPE, project: "p".into(), image: "api".into(), ..Inputs::default() };
        let key = base.key();
        let changed: Vec<Inputs> = vec![
            Inputs { dockerfile: hash(b"FROM x"), ..base.clone() },
            Inputs { builder: "classic".into(), ..base.clone() },
            Inputs { level: "1.2".into(), ..base.clone() },
            Inputs { target: "runtime".into(), ..base.clone() },
            Inputs { platform: Some("linux/arm64".into()), ..base.clone() },
            Inputs { build_args: [("A".into(), hash(b"1"))].into(), ..base.clone() },
            Inputs { labels: [("team".into(), hash(b"shop"))].into(), ..base.clone() },
            Inputs { bases: [("python:3.11".into(), "sha256:aa".into())].into(), ..base.clone() },
            Inputs { dependencies: [("base".into(), "blake3:bb".into())].into(), ..base.clone() },
            Inputs { files_digest: hash(b"f"), ..base.clone() },
            Inputs { project: "q".into(), ..base.clone() },
            Inputs { syntax: Some("docker/dockerfile:1.7".into()), ..base.clone() },
        ];
        for inputs in changed {
            assert_ne!(inputs.key(), key, "{inputs:?}");
        }
    }

    #[test]
    fn the_record_is_short_and_reads_back() {
        let files: BTreeMap<String, String> = (0..3).map(|i| (format!("f{i}"), hash(&[i]))).collect();
        let inputs = Inputs { files, file_count: 3, dockerfile: hash(b"x"), ..Inputs::default() };
        let recorded = inputs.recorded();
        assert_eq!(recorded.dockerfile.len(), 16);
        assert!(recorded.files.values().all(|h| h.len() == 16));
        let text = serde_json::to_string(&recorded).expect("serialize");
        assert_eq!(serde_json::from_str::<Inputs>(&text).expect("parse"), recorded);
    }
}
