//! `--changed-since REF`: the images whose inputs differ between a git commit and the
//! work tree, and every image built on them.
//!
//! An image changed when its definition did (its generated Dockerfile, ignore file,
//! build arguments, platform or context, as the manifest files at `REF` give them), when
//! a file of its context that its ignore rules let through changed (committed, staged,
//! unstaged or untracked; files git ignores are not seen), or when `kiln.lock` locks one
//! of its outside images to something else.

use std::path::{Path, PathBuf};

use kiln_emit::Rendering;
use kiln_graph::Graph;
use kiln_manifest::{ImageId, LoadOptions, PerImage, Project};

/// Which images changed since `reference`, as a mask over `project.images`, dependents
/// included.
pub fn changed_since(
    project: &Project,
    graph: &Graph,
    options: &LoadOptions,
    reference: &str,
) -> Result<PerImage<bool>, String> {
    let git = |args: &[&str]| run_git(&project.root_dir, args);
    let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"])?.trim());
    let commit = git(&["rev-parse", "--verify", "--quiet", &format!("{reference}^{{commit}}")])
        .map_err(|_| format!("`{reference}` names no commit of this repository"))?;
    let commit = commit.trim();
    let mut paths: Vec<PathBuf> = Vec::new();
    for listing in [
        git(&["diff", "--name-only", "-z", "--no-renames", commit, "--"])?,
        git(&["ls-files", "--others", "--exclude-standard", "-z", "--full-name"])?,
    ] {
        paths.extend(listing.split('\0').filter(|p| !p.is_empty()).map(|p| top.join(p)));
    }

    let before = project_at(project, options, &top, commit)?;
    let mut changed = project.per_image(|_| false);
    for (index, image) in project.images_with_ids() {
        let old = before
            .as_ref()
            .and_then(|(old, old_graph)| old.image_id(&image.name).map(|i| (old, old_graph, i)));
        changed[index] = match old {
            None => true,
            Some((old, old_graph, old_index)) => {
                definition(project, graph, index) != definition(old, old_graph, old_index)
                    || image.external_bases().iter().any(|base| {
                        project.lock.as_ref().and_then(|l| l.get(base))
                            != old.lock.as_ref().and_then(|l| l.get(base))
                    })
                    || context_changed(project, image, &paths)
            }
        };
    }
    // What is built on a changed image changes too.
    for &index in graph.order() {
        if graph.dependencies(index).iter().any(|d| changed[*d]) {
            changed[index] = true;
        }
    }
    Ok(changed)
}

/// The manifest files (and lock) at `commit`, loaded from a scratch folder: `None` when
/// the root manifest did not exist then, or had errors (every image then counts as
/// changed).
fn project_at(
    project: &Project,
    options: &LoadOptions,
    top: &Path,
    commit: &str,
) -> Result<Option<(Project, Graph)>, String> {
    let manifest = project.manifest_path().canonicalize().map_err(|e| e.to_string())?;
    let top = top.canonicalize().map_err(|e| e.to_string())?;
    let relative =
        manifest.strip_prefix(&top).map_err(|_| "the manifest is outside its git repository".to_owned())?;
    let listing = run_git(&top, &["ls-tree", "-r", "-z", "--name-only", commit])?;
    let wanted: Vec<&str> = listing
        .split('\0')
        .filter(|p| {
            Path::new(p).extension().is_some_and(|e| e.eq_ignore_ascii_case("kdl"))
                || p.ends_with(kiln_manifest::lock::LOCK_FILE)
        })
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut args = vec!["archive", "--format=tar", commit, "--"];
    args.extend(&wanted);
    let output = std::process::Command::new("git")
        .args(&args)
        .current_dir(&top)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !output.status.success() {
        return Err(format!("git archive failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    tar::Archive::new(output.stdout.as_slice()).unpack(scratch.path()).map_err(|e| e.to_string())?;
    let root = scratch.path().join(relative);
    if !root.is_file() {
        return Ok(None);
    }
    let old_root = root.parent().unwrap_or(scratch.path()).to_path_buf();
    let options = LoadOptions {
        manifest: root,
        // An output folder given on the command line, where it sits in the scratch copy.
        output: options
            .output
            .as_ref()
            .map(|o| o.strip_prefix(&project.root_dir).map_or_else(|_| o.clone(), |r| old_root.join(r))),
        ..options.clone()
    };
    let Ok((old, mut diags)) = kiln_manifest::load_project(&options) else { return Ok(None) };
    let old_graph = Graph::build(&old, &mut diags);
    // The scratch folder has no build contexts: missing ones are expected.
    let broken = diags.iter().any(|d| d.is_error() && d.code != kiln_manifest::Code::MissingContext);
    Ok((!broken).then_some((old, old_graph)))
}

/// What the manifest says an image is, in a form that does not depend on where the
/// manifest sits: the Dockerfile (dependencies by name, kiln's header left out), the
/// ignore file, build arguments, platform, context, and the labels kiln derives from the
/// manifest (see `labels::image_labels`).
fn definition(project: &Project, graph: &Graph, index: ImageId) -> String {
    let image = &project[index];
    let by_name = |dependency: ImageId| format!("kiln-image/{}", project[dependency].name);
    let dockerfile = kiln_emit::dockerfile(
        project,
        graph,
        index,
        Rendering { refs: &by_name, outside: None, context_prefix: None },
    )
    .text;
    let body = dockerfile.split_once("\nFROM ").map_or(dockerfile.as_str(), |(_, rest)| rest);
    let args: Vec<String> =
        image.build_args.iter().map(|kv| format!("{}={}", kv.key.value, kv.value.value)).collect();
    let derived = crate::labels::image_labels(image, "", &[]);
    format!(
        "{body}\0{}\0{}\0{:?}\0{}\0{derived:?}",
        kiln_emit::dockerignore(project, image).text,
        args.join("\0"),
        image.platform.as_ref().map(|p| &p.value),
        image.context
    )
}

/// Whether a changed path is a file of the image's context that its ignore rules let
/// through.
fn context_changed(project: &Project, image: &kiln_manifest::Image, paths: &[PathBuf]) -> bool {
    let context = image.context_dir.canonicalize().unwrap_or_else(|_| image.context_dir.clone());
    let ignore = kiln_dockerignore::read_ignore_file(&kiln_emit::dockerignore(project, image).text);
    let Ok(matcher) = kiln_dockerignore::Matcher::new(&ignore) else { return true };
    paths.iter().any(|path| {
        let path = path
            .parent()
            .and_then(|p| p.canonicalize().ok())
            .map_or_else(|| path.clone(), |p| p.join(path.file_name().unwrap_or_default()));
        path.strip_prefix(&context).is_ok_and(|relative| {
            let relative = relative.to_string_lossy().replace('\\', "/");
            !relative.is_empty() && !matcher.is_excluded(&relative)
        })
    })
}

fn run_git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let message = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        Err(if message.contains("not a git repository") {
            "--changed-since needs a git repository, and the manifest is not in one".to_owned()
        } else {
            format!("git {}: {message}", args.join(" "))
        })
    }
}
