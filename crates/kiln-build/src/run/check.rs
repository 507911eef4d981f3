//! An image's check: its inputs and key, then its content tag, looked for on the engine
//! and in its registry. Builds nothing; pulls only when the registry has the image and
//! the run does not push.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kiln_manifest::{ImageId, Span, StageInput};

use super::build::finish;
use super::{Checked, Dependency, Failure, Shared, TaskResult, ready};
use crate::event::{Event, Origin};
use crate::prepare::{self, Prepared, Recipe};

pub(super) async fn check(
    shared: &Arc<Shared>,
    index: ImageId,
    dependencies: &HashMap<ImageId, Dependency>,
) -> Result<Checked, Failure> {
    let begin = Instant::now();
    let image = &shared.project[index];
    let name = image.name.clone();
    let log = |text: String| shared.send(Event::Log { image: name.clone(), step: None, text });

    let bases = base_identities(shared, index).await?;
    let keys: HashMap<ImageId, String> = dependencies.iter().map(|(i, d)| (*i, d.key.clone())).collect();
    // Reading and hashing the context is file IO: off the async threads.
    let prepared = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            let recipe = Recipe {
                project: &shared.project,
                graph: &shared.graph,
                project_id: &shared.project_id,
                builder: shared.options.builder,
                extra_labels: &shared.options.labels,
                hashes: &shared.hashes,
            };
            prepare::prepare(&recipe, index, &keys, &bases)
        })
        .await
    };
    let prepared = match prepared {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(err)) => {
            return Err(Failure::new(
                format!("cannot read the build context `{}`: {err}", image.context),
                None,
            ));
        }
        Err(err) => return Err(Failure::new(format!("internal error: {err}"), None)),
    };
    let no_cache = shared.options.no_cache || shared.options.no_cache_images.contains(&index);
    if shared.options.rebuild || no_cache {
        return Ok(Checked::Build(Box::new(prepared)));
    }
    let content = kiln_marks::tags::content_tag(&image.repository, &prepared.key);
    // On an engine of the pool, the home engine first.
    let home = shared.pool.home();
    let engines = std::iter::once(home).chain((0..shared.pool.engines.len()).filter(|&e| e != home));
    for engine in engines.filter(|&e| shared.is_up(e)) {
        if let Ok(Some(info)) = shared.engine_at(engine).inspect(&content).await {
            shared.send(Event::Started { image: name.clone(), engine: shared.engine_name(engine) });
            return finish(
                shared,
                index,
                &prepared,
                info.id.clone(),
                Origin::Local,
                Some(info),
                engine,
                begin,
            )
            .await
            .map(Checked::Done);
        }
    }
    // In its registry.
    if let Some(found) = in_registry(shared, index, &content, &log).await {
        shared.send(Event::Started { image: name.clone(), engine: shared.engine_name(home) });
        if shared.options.push {
            return tag_in_registry(shared, index, &prepared, &found, begin).await.map(Checked::Done);
        }
        let id = pull(shared, home, &content, &log).await.map_err(|e| Failure::new(e, None))?;
        return finish(shared, index, &prepared, id, Origin::Pulled, None, home, begin)
            .await
            .map(Checked::Done);
    }
    Ok(Checked::Build(Box::new(prepared)))
}

/// The identity of each outside image the image uses (pulling nothing).
async fn base_identities(shared: &Arc<Shared>, index: ImageId) -> Result<HashMap<String, String>, Failure> {
    let image = &shared.project[index];
    let mut identities = HashMap::new();
    for reference in image.external_bases() {
        let identity = shared
            .bases
            .identity(&shared.engine, reference)
            .await
            .map_err(|error| Failure::new(error, reference_span(image, reference)))?;
        identities.insert(reference.to_owned(), identity);
    }
    Ok(identities)
}

/// Where the manifest names an outside image.
pub(super) fn reference_span(image: &kiln_manifest::Image, reference: &str) -> Option<Span> {
    image.stages.iter().flat_map(kiln_manifest::Stage::inputs).find_map(|input| match input {
        StageInput::External(r, span) if r == reference => Some(span),
        _ => None,
    })
}

/// The content tag's manifest in the image's registry, when it has one. A registry that
/// cannot answer is no reason to fail: the image is built instead.
async fn in_registry(
    shared: &Arc<Shared>,
    index: ImageId,
    content: &str,
    log: &(dyn Fn(String) + Sync),
) -> Option<kiln_registry::Manifest> {
    let image = &shared.project[index];
    let has_registry = kiln_reference::ImageRef::parse(&image.repository).is_ok_and(|r| r.domain.is_some());
    if shared.options.offline || !has_registry {
        return None;
    }
    let registry = shared.registries.client().await;
    let reference = content.to_owned();
    match tokio::task::spawn_blocking(move || registry.manifest(&reference)).await {
        Ok(Ok(found)) => found,
        Ok(Err(err)) => {
            log(format!("kiln: cannot ask the registry for `{content}` ({err}); building\n"));
            None
        }
        Err(_) => None,
    }
}

/// Pulls `reference` on an engine of the pool; the image ID.
pub(super) async fn pull(
    shared: &Shared,
    engine: usize,
    reference: &str,
    log: &(dyn Fn(String) + Sync),
) -> Result<String, String> {
    log(format!("kiln: pulling `{reference}`\n"));
    let engine = shared.engine_at(engine);
    engine.pull(reference, &mut |_| {}).await.map_err(|e| format!("cannot pull `{reference}`: {e}"))?;
    match engine.inspect(reference).await {
        Ok(Some(info)) => Ok(info.id),
        Ok(None) => Err(format!("`{reference}` is not here after pulling it")),
        Err(err) => Err(err.to_string()),
    }
}

/// `push` and the content tag is in the registry: the image's tags are added there, as
/// copies of its manifest; nothing is pulled.
async fn tag_in_registry(
    shared: &Arc<Shared>,
    index: ImageId,
    prepared: &Prepared,
    manifest: &kiln_registry::Manifest,
    begin: Instant,
) -> Result<TaskResult, Failure> {
    let image = &shared.project[index];
    let registry = shared.registries.client().await;
    for reference in image.references() {
        let (registry, manifest, target) = (registry.clone(), manifest.clone(), reference.clone());
        tokio::task::spawn_blocking(move || registry.put_manifest(&target, &manifest))
            .await
            .map_err(|e| Failure::new(format!("internal error: {e}"), None))?
            .map_err(|e| Failure::new(format!("cannot tag `{reference}` in its registry: {e}"), None))?;
    }
    let (id, size) = manifest_summary(manifest);
    Ok(ready(shared, index, prepared, id, false, size, Origin::Registry, begin))
}

/// The image ID (its config's digest) and size a manifest describes; for an index of
/// several platforms, its own digest and no size.
fn manifest_summary(manifest: &kiln_registry::Manifest) -> (String, u64) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&manifest.bytes) else {
        return (manifest.digest.clone(), 0);
    };
    let Some(config) = json["config"]["digest"].as_str() else {
        return (manifest.digest.clone(), 0);
    };
    let size =
        json["layers"].as_array().map_or(0, |layers| layers.iter().filter_map(|l| l["size"].as_u64()).sum());
    (config.to_owned(), size)
}
