//! What an image's build needs before it starts: its build context (files selected by
//! its generated ignore file), the Dockerfile as the build sends it, and its input
//! digest, which changes exactly when something the build uses changes.

use std::collections::HashMap;
use std::io;

use kiln_context::Context;
use kiln_emit::{GeneratedText, Rendering};
use kiln_graph::Graph;
use kiln_manifest::Project;

/// The folder of the build's tar that holds the context, beside the Dockerfile.
pub const CONTEXT_FOLDER: &str = "context";
/// The Dockerfile's name in the build's tar.
pub const DOCKERFILE: &str = "kiln.Dockerfile";

/// Bump when the digest's recipe changes, so that old digests stop matching.
const DIGEST_VERSION: &str = "kiln-input-v1";

pub struct Prepared {
    pub context: Context,
    pub dockerfile: GeneratedText,
    /// `blake3:<hex>`.
    pub digest: String,
}

/// Prepares image `index`. `pins` are the exact references dependencies were built as,
/// `digests` their input digests.
pub fn prepare(
    project: &Project,
    graph: &Graph,
    index: usize,
    pins: &HashMap<usize, String>,
    digests: &HashMap<usize, String>,
) -> io::Result<Prepared> {
    let image = &project.images[index];
    let ignore = kiln_emit::dockerignore(project, image).text;
    let context = Context::new(&image.context_dir, &ignore)?;

    let pinned = |dependency: usize| {
        pins.get(&dependency).cloned().unwrap_or_else(|| project.images[dependency].reference())
    };
    let dockerfile = kiln_emit::dockerfile(
        project,
        graph,
        index,
        Rendering { refs: &pinned, context_prefix: Some(CONTEXT_FOLDER) },
    );

    // The digest sees dependencies through their own digests (not their image IDs,
    // which change with every build's timestamp), so that it is stable across runs.
    let by_digest =
        |dependency: usize| format!("kiln-input/{}", digests.get(&dependency).map_or("", String::as_str));
    let digest_text = kiln_emit::dockerfile(
        project,
        graph,
        index,
        Rendering { refs: &by_digest, context_prefix: Some(CONTEXT_FOLDER) },
    )
    .text;
    let mut hasher = blake3::Hasher::new();
    hasher.update(DIGEST_VERSION.as_bytes());
    hasher.update(&[0]);
    hasher.update(digest_text.as_bytes());
    let mut args: Vec<(&str, &str)> =
        image.build_args.iter().map(|kv| (kv.key.value.as_str(), kv.value.value.as_str())).collect();
    args.sort_unstable();
    for (key, value) in args {
        hasher.update(format!("\0arg {key}={value}").as_bytes());
    }
    if let Some(platform) = &image.platform {
        hasher.update(format!("\0platform {}", platform.value).as_bytes());
    }
    hasher.update(&[0]);
    context.digest(&mut hasher)?;
    Ok(Prepared { context, dockerfile, digest: format!("blake3:{}", hasher.finalize().to_hex()) })
}
