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

/// How many groups of context entries a record names (top-level folders, the files at
/// the top, the rest together): what an image carries stays a few KB whatever its
/// context (the label travels in the URL of the engine's build call).
pub const MAX_RECORDED_FOLDERS: usize = 32;

/// A top-level folder whose name is longer than this is counted with the rest.
const MAX_FOLDER_NAME: usize = 64;

/// The group of the files at the top of the context, in [`Inputs::folders`].
pub const TOP_FILES: &str = ".";

/// The group of what no other group names, in [`Inputs::folders`].
pub const OTHER_FOLDERS: &str = "*";

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
    /// Context path → hash of the entry (kind, mode, content). Empty in a record (an
    /// image's label): this machine keeps them apart (`crate::records`).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    pub file_count: usize,
    /// One hash over every context entry.
    pub files_digest: String,
    /// Only in a record: the context's entries by group ([`Inputs::recorded`]). Empty in
    /// the inputs a key is computed from, and then not serialized: keys stay as they were.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub folders: BTreeMap<String, Folder>,
}

/// A group of context entries in a record: a top-level folder (`src/`), the files at the
/// top ([`TOP_FILES`]) or the rest ([`OTHER_FOLDERS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    /// Entries in the group, the folder itself included.
    pub entries: usize,
    /// A hash over the group's paths and entry hashes, 16 hex digits.
    pub digest: String,
}

impl Inputs {
    /// The key: `blake3:<hex>` over the inputs.
    pub fn key(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("inputs serialize");
        format!("blake3:{}", blake3::hash(&bytes).to_hex())
    }

    /// What an image records of its inputs (label [`kiln_marks::labels::INPUTS`]): hashes
    /// shortened to 16 hex digits, enough to tell that something changed; for the
    /// context, its entry count, digest and [`Inputs::folders`], never a path per file, so
    /// the record's size does not grow with the context.
    #[must_use]
    pub fn recorded(&self) -> Self {
        Self {
            dockerfile: short(&self.dockerfile),
            build_args: shorten(&self.build_args),
            labels: shorten(&self.labels),
            dependencies: shorten(&self.dependencies),
            files: BTreeMap::new(),
            files_digest: short(&self.files_digest),
            folders: if self.files.is_empty() { self.folders.clone() } else { folders(&self.files) },
            ..self.clone()
        }
    }

    /// The context's entries with their hashes shortened, as a record on this machine
    /// keeps them (`crate::records`).
    pub fn recorded_files(&self) -> BTreeMap<String, String> {
        shorten(&self.files)
    }
}

fn short(hash: &str) -> String {
    hash.chars().take(16).collect()
}

fn shorten(map: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), short(v))).collect()
}

/// The group a context path belongs to, before [`MAX_RECORDED_FOLDERS`] applies.
pub fn group_of(path: &str) -> &str {
    match path.split_once('/') {
        Some((top, _)) => top,
        None => TOP_FILES,
    }
}

/// Context entries by group: each top-level folder (a path without `/` that is a folder
/// is its own group's first entry), the files at the top, and past
/// [`MAX_RECORDED_FOLDERS`] or a long name, the rest together. `files` is sorted by path,
/// so a folder's entries are contiguous but for the top files.
fn folders(files: &BTreeMap<String, String>) -> BTreeMap<String, Folder> {
    let is_folder = |path: &str| {
        files.range(format!("{path}/")..).next().is_some_and(|(p, _)| p.starts_with(&format!("{path}/")))
    };
    let mut named: BTreeMap<&str, blake3::Hasher> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (path, hash) in files {
        let top = group_of(path);
        let group = if top == TOP_FILES && is_folder(path) { path.as_str() } else { top };
        let group = if group.len() > MAX_FOLDER_NAME { OTHER_FOLDERS } else { group };
        named.entry(group).or_default().update(path.as_bytes()).update(&[0]).update(hash.as_bytes());
        *counts.entry(group).or_default() += 1;
    }
    // Past the limit, the folders last in name order go together; the top files keep
    // their group.
    let mut out = BTreeMap::new();
    let mut rest: Option<(blake3::Hasher, usize)> = None;
    let mut folders_left = MAX_RECORDED_FOLDERS - 2;
    for (group, hasher) in named {
        let entries = counts[group];
        let digest = hasher.finalize().to_hex().to_string();
        let keep = group == TOP_FILES
            || group != OTHER_FOLDERS && folders_left > 0 && {
                folders_left -= 1;
                true
            };
        if keep {
            out.insert(group.to_owned(), Folder { entries, digest: short(&digest) });
        } else {
            let (all, count) = rest.get_or_insert_with(|| (blake3::Hasher::new(), 0));
            all.update(group.as_bytes()).update(&[0]).update(digest.as_bytes());
            *count += entries;
        }
    }
    if let Some((all, entries)) = rest {
        out.insert(OTHER_FOLDERS.to_owned(), Folder { entries, digest: short(&all.finalize().to_hex()) });
    }
    out
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
        assert!(recorded.files.is_empty());
        assert_eq!(recorded.folders[TOP_FILES].entries, 3);
        let text = serde_json::to_string(&recorded).expect("serialize");
        assert_eq!(serde_json::from_str::<Inputs>(&text).expect("parse"), recorded);
    }

    /// Contexts of 10 to 100,000 entries (1,500 failed to build when records held a hash
    /// per file), with 5 to 500 top-level folders and paths of 250 characters: the record
    /// stays under 4 KiB.
    #[test]
    fn the_record_does_not_grow_with_the_context() {
        let long = "d".repeat(60);
        let mut sizes = Vec::new();
        for (entries, folders) in [(10_usize, 5), (1_500, 40), (5_000, 50), (100_000, 500)] {
            let files: BTreeMap<String, String> = (0..entries)
                .map(|i| {
                    let folder = format!("{long}{:03}", i % folders);
                    (format!("{folder}/{long}/{long}/{long}/file-{i}.txt"), hash(&i.to_le_bytes()))
                })
                .collect();
            let inputs = Inputs { file_count: files.len(), files, ..Inputs::default() };
            let recorded = inputs.recorded();
            assert!(recorded.folders.len() <= MAX_RECORDED_FOLDERS, "{}", recorded.folders.len());
            assert_eq!(recorded.folders.values().map(|f| f.entries).sum::<usize>(), entries);
            sizes.push(serde_json::to_string(&recorded).expect("serialize").len());
        }
        assert!(sizes.iter().all(|&size| size < 4096), "{sizes:?}");
    }

    #[test]
    fn a_folder_is_one_group_with_its_entries() {
        let files: BTreeMap<String, String> = ["README", "src", "src/a.rs", "src/b/c.rs", "srcs.txt"]
            .iter()
            .map(|p| ((*p).to_owned(), hash(p.as_bytes())))
            .collect();
        let folders = folders(&files);
        assert_eq!(folders.keys().collect::<Vec<_>>(), [".", "src"]);
        assert_eq!((folders["."].entries, folders["src"].entries), (2, 3));
    }

    #[test]
    fn keys_are_what_they_were() {
        // Recipe 3's serialization: a record's `folders` never enter a key.
        let inputs = Inputs { recipe: RECIPE, image: "api".into(), ..Inputs::default() };
        assert_eq!(
            serde_json::to_string(&inputs).expect("serialize"),
            r#"{"recipe":3,"project":"","image":"api","dockerfile":"","level":"","builder":"","target":"","build_args":{},"labels":{},"bases":{},"dependencies":{},"files":{},"file_count":0,"files_digest":""}"#
        );
    }
}
