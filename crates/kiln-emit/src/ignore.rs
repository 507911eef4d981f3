//! Writing an image's `.dockerignore`.

use kiln_dockerignore::Matcher;
use kiln_manifest::ast::{CopyFrom, Instruction};
use kiln_manifest::{Image, Project};

use crate::dockerfile::{GeneratedText, header};

/// `ignore-defaults`: what no image needs, and what only slows the context upload and
/// busts the cache of `copy .` when it changes.
pub const DEFAULT_PATTERNS: &[&str] =
    &[".git", ".hg", ".svn", ".idea", ".vscode", "**/.DS_Store", "**/Thumbs.db", "**/*.swp", "**/*~"];

pub fn dockerignore(project: &Project, image: &Image) -> GeneratedText {
    let mut out = GeneratedText::default();
    let mut push = |line: &str| {
        out.text.push_str(line);
        out.text.push('\n');
        out.origins.push(None);
    };
    push(&header(project, image));
    push(&format!("# Build context: {}", crate::dockerfile::sanitize_comment(&image.context)));
    let copied = copied_paths(image);
    // `ignore-keeps-copied`: a default that would exclude a copied file is left out.
    let keeps = |pattern: &str| {
        let matcher = Matcher::new([pattern]).unwrap_or_default();
        !copied.iter().any(|path| matcher.is_excluded(path))
    };
    push("");
    push("# kiln defaults: version control, editor and system files");
    for pattern in DEFAULT_PATTERNS.iter().copied().filter(|p| keeps(p)) {
        push(pattern);
    }
    // `ignore-output`: the generated files, when they live inside the context.
    if project.output_dir.starts_with(&image.context_dir) && project.output_dir != image.context_dir {
        let inside = kiln_manifest::display_name(&image.context_dir, &project.output_dir);
        if keeps(&inside) {
            push("");
            push("# the files kiln generates");
            push(&crate::encode::ignore_literal(&inside));
        }
    }
    if !image.ignore.is_empty() {
        push("");
        push("# from the manifest");
        for pattern in &image.ignore {
            push(&crate::encode::ignore_pattern(&pattern.value));
        }
    }
    out
}

/// Every path the Dockerfile takes from the context, cleaned.
pub fn copied_paths(image: &Image) -> Vec<String> {
    let needed = image.needed_stages();
    let mut paths = Vec::new();
    for (stage, _) in image.stages.iter().zip(&needed).filter(|(_, n)| **n) {
        for instruction in &stage.instructions {
            match &instruction.value {
                Instruction::Copy(copy) if copy.from == CopyFrom::Context => {
                    paths.extend(copy.sources.iter().map(|s| kiln_dockerignore::clean_path(&s.value)));
                }
                Instruction::Pip(pip) => {
                    paths.extend(pip.requirements.iter().map(|r| kiln_dockerignore::clean_path(&r.value)));
                }
                other => paths.extend(other.dependency_files().iter().map(|f| (*f).to_owned())),
            }
        }
    }
    paths.retain(|p| p != ".");
    paths
}
