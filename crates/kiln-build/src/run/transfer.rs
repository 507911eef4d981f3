//! Moving a ready image to another engine of the pool, for a dependent's build there or
//! for the image's tags: through the pool's transfer registry (pushed once, pulled by
//! digest wherever needed) or, without one, streamed from an engine that holds it
//! (`docker save | docker load`). Each image goes to each engine at most once per run,
//! however many builds there wait for it.
//!
//! What arrives carries the image's content tag there (kiln's mark of what it is, so that
//! the next run finds it), never the user's tags: those go only where `finish` puts them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kiln_manifest::ImageId;
use tokio::sync::{Mutex, OnceCell};

use super::{Shared, millis};
use crate::event::Event;

type Cell<T> = Arc<OnceCell<Result<T, String>>>;

/// The transfers of a run, one per image and engine.
#[derive(Default)]
pub(super) struct Transfers {
    copies: Mutex<HashMap<(ImageId, usize), Cell<()>>>,
    /// The digest reference each image was pushed to the transfer registry as.
    pushed: Mutex<HashMap<ImageId, Cell<String>>>,
}

/// A ready image some engine of the pool holds, as a transfer knows it (not the ready
/// queue's `Ready`).
pub(super) struct PoolImage<'a> {
    pub image: ImageId,
    pub id: &'a str,
    pub content_tag: &'a str,
}

/// Makes sure `engine` holds the image; copies it there when it does not.
pub(super) async fn ensure_on(shared: &Shared, ready: &PoolImage<'_>, engine: usize) -> Result<(), String> {
    if shared.holders_of(ready.image).contains(&engine) {
        return Ok(());
    }
    let cell = shared.transfers.copies.lock().await.entry((ready.image, engine)).or_default().clone();
    cell.get_or_init(|| copy(shared, ready, engine)).await.clone()
}

async fn copy(shared: &Shared, ready: &PoolImage<'_>, engine: usize) -> Result<(), String> {
    let name = &shared.project[ready.image].name;
    let target = shared.engine_at(engine);
    let begin = Instant::now();
    let via = if let Some(registry) = &shared.pool.transfer_registry {
        let reference = push_once(shared, ready, registry).await?;
        target.pull(&reference, &mut |_| {}).await.map_err(|e| {
            format!(
                "cannot pull `{name}` from the transfer registry to the engine at {}: {e}",
                target.endpoint
            )
        })?;
        "registry"
    } else {
        let source = source_of(shared, ready.image, name)?;
        shared.engine_at(source).copy_image_to(ready.id, target).await.map_err(|e| {
            format!(
                "cannot copy `{name}` from the engine at {} to the engine at {}: {e}",
                shared.engine_at(source).endpoint,
                target.endpoint
            )
        })?;
        "save-load"
    };
    if !matches!(target.inspect(ready.id).await, Ok(Some(_))) {
        return Err(format!(
            "`{name}` ({}) is not on the engine at {} after the copy",
            ready.id, target.endpoint
        ));
    }
    target
        .tag(ready.id, ready.content_tag)
        .await
        .map_err(|e| format!("cannot mark `{name}` on the engine at {}: {e}", target.endpoint))?;
    shared.add_holder(ready.image, engine);
    shared.send(Event::Transferred {
        image: name.clone(),
        to: target.endpoint.host.clone(),
        via: via.to_owned(),
        duration_ms: millis(begin.elapsed()),
    });
    Ok(())
}

/// An engine that is up and holds the image.
fn source_of(shared: &Shared, image: ImageId, name: &str) -> Result<usize, String> {
    shared
        .holders_of(image)
        .into_iter()
        .find(|&engine| shared.is_up(engine))
        .ok_or_else(|| format!("no engine that is up holds `{name}` any more"))
}

/// Pushes the image to the transfer registry, once per run; the `repository@digest` to
/// pull it by. The tag it is pushed under is removed from the engine right after.
async fn push_once(shared: &Shared, ready: &PoolImage<'_>, registry: &str) -> Result<String, String> {
    let cell = shared.transfers.pushed.lock().await.entry(ready.image).or_default().clone();
    cell.get_or_init(|| async {
        let name = &shared.project[ready.image].name;
        let source = source_of(shared, ready.image, name)?;
        let engine = shared.engine_at(source);
        let repository = format!("{registry}/kiln-transfer/{}", name.replace('.', "-"));
        let tag = ready.content_tag.rsplit(':').next().unwrap_or("latest");
        let reference = format!("{repository}:{tag}");
        engine
            .tag(ready.id, &reference)
            .await
            .map_err(|e| format!("cannot tag `{name}` for the transfer: {e}"))?;
        let pushed = engine.push(&reference, &mut |_| {}).await;
        let digest = engine.inspect(&reference).await;
        let _ = engine.remove(&reference, false, false).await;
        pushed.map_err(|e| format!("cannot push `{name}` to the transfer registry {registry}: {e}"))?;
        digest
            .ok()
            .flatten()
            .and_then(|info| info.digests.into_iter().find(|d| d.starts_with(&format!("{repository}@"))))
            .ok_or_else(|| {
                format!("`{name}` was pushed to {registry}, but the engine does not say its digest")
            })
    })
    .await
    .clone()
}
