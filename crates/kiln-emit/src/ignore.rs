//! Writing an image's `.dockerignore`.

use kiln_manifest::lock::LOCK_FILE;
use kiln_manifest::{Image, Project, keeps_default_ignore};

use crate::dockerfile::{GeneratedText, header, sanitize_comment};
use crate::encode;

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
    push(&format!("# Build context: {}", sanitize_comment(&image.context)));
    let copied = image.context_paths();
    // `ignore-keeps-copied`: a default that would exclude a copied file is left out.
    let keeps = |pattern: &str| keeps_default_ignore(pattern, &copied);
    // A default the manifest lists itself is written once, under the manifest's patterns.
    let declared = |pattern: &str| image.ignore.iter().any(|p| p.value == pattern);
    let mut section = |comment: &str, patterns: Vec<String>| {
        let kept: Vec<String> = patterns.into_iter().filter(|p| keeps(p) && !declared(p)).collect();
        if !kept.is_empty() {
            push("");
            push(comment);
            for pattern in &kept {
                push(pattern);
            }
        }
    };
    section(
        "# kiln defaults: version control, editor and system files",
        DEFAULT_PATTERNS.iter().map(|p| (*p).to_owned()).collect(),
    );
    section(
        "# what the package managers of this image install, as the host has it",
        image.package_outputs().into_iter().map(str::to_owned).collect(),
    );
    section("# the manifest: editing it must not rebuild the image", manifest_files(project, image));
    // `ignore-output`: the generated files, when they live inside the context.
    if project.output_dir.starts_with(&image.context_dir) && project.output_dir != image.context_dir {
        let inside = kiln_manifest::display_name(&image.context_dir, &project.output_dir);
        section("# the files kiln generates", vec![encode::ignore_literal(&inside)]);
    }
    if !image.ignore.is_empty() {
        push("");
        push("# from the manifest");
        for pattern in &image.ignore {
            push(&encode::ignore_pattern(&pattern.value));
        }
    }
    out
}

/// `ignore-manifest`: the project's `.kdl` files and its lock file that sit inside the
/// image's context, as literal patterns.
fn manifest_files(project: &Project, image: &Image) -> Vec<String> {
    let kdl_files = project
        .sources
        .files()
        .map(|(_, file)| file.path.clone())
        .filter(|path| path.extension().is_some_and(|ext| ext == "kdl"));
    let lock = std::iter::once(project.root_dir.join(LOCK_FILE));
    let mut patterns: Vec<String> = kdl_files
        .chain(lock)
        .filter(|path| path.starts_with(&image.context_dir))
        .map(|path| encode::ignore_literal(&kiln_manifest::display_name(&image.context_dir, &path)))
        .collect();
    patterns.sort();
    patterns.dedup();
    patterns
}
