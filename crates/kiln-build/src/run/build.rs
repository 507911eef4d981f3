//! An image's build, once its check found it must be built: its dependencies and outside
//! images pinned, the Dockerfile rendered with the pins, the build itself (again when the
//! engine lost an image under it), and [`finish`], which tags (and pushes) what is ready.

use kiln_manifest::ImageId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kiln_engine::{BuildSpec, ImageInfo, StepState};
use tokio_util::sync::CancellationToken;

use super::check::{pull, reference_span};
use super::transfer::{self, ensure_on};
use super::{BUILD_ATTEMPTS, Dependency, Failure, Shared, TaskResult, millis, ready};
use crate::event::{Event, Origin};
use crate::labels;
use crate::prepare::{self, DOCKERFILE, Prepared};
use crate::records::Records;

pub(super) async fn build(
    shared: &Arc<Shared>,
    index: ImageId,
    engine: usize,
    prepared: &Prepared,
    dependencies: &HashMap<ImageId, Dependency>,
    cancel: &CancellationToken,
    begin: Instant,
) -> Result<TaskResult, Failure> {
    if cancel.is_cancelled() {
        return Ok(TaskResult::Cancelled);
    }
    let image = &shared.project[index];
    let name = image.name.clone();
    let log = |text: String| shared.send(Event::Log { image: name.clone(), step: None, text });
    shared.send(Event::Started { image: name.clone(), engine: shared.engine_name(engine) });
    shared.sweep();
    let (dependency_pins, base_pins) =
        pin_inputs(shared, index, engine, dependencies, prepared, &log).await?;
    let dockerfile = prepare::render(&shared.project, &shared.graph, index, &dependency_pins, &base_pins);
    let mut build_args: HashMap<String, String> =
        image.build_args.iter().map(|kv| (kv.key.value.clone(), kv.value.value.clone())).collect();
    if shared.options.cache_to_inline {
        build_args.insert("BUILDKIT_INLINE_CACHE".to_owned(), "1".to_owned());
    }
    let mut build_labels: HashMap<String, String> = prepared.labels.clone().into_iter().collect();
    build_labels.extend(labels::build_time_labels(shared.git()));
    // Born pinned: a build is never untagged, so never pruned, before `finish` tags it.
    let pin = shared.run.pin(&image.name, &prepared.key);
    shared.pins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((engine, pin.clone()));
    // Only the secrets this image's RUNs mount reach its build.
    let mounted = image.secret_ids();
    let spec = BuildSpec {
        dockerfile: DOCKERFILE.to_owned(),
        builder: shared.options.builder,
        build_args,
        labels: build_labels,
        platform: image.platform.as_ref().map(|p| p.value.clone()),
        network: shared.options.network.clone(),
        target: None,
        pull: shared.options.pull,
        no_cache: shared.options.no_cache || shared.options.no_cache_images.contains(&index),
        cache_from: shared
            .options
            .cache_from
            .iter()
            .map(|tag| format!("{}:{tag}", image.repository))
            .collect(),
        session: format!("kiln-{}-{}-{}", std::process::id(), index.index(), millis(begin.elapsed())),
        tag: Some(pin.clone()),
        secrets: shared.options.secrets.iter().filter(|(id, _)| mounted.contains(id)).cloned().collect(),
        ssh: shared.options.ssh && !image.ssh_mounts().is_empty(),
    };
    let events = shared.clone();
    let step_image = name.clone();
    // A step is reported once, when first seen (BuildKit may report a quick step only
    // once it is already done).
    let mut seen = std::collections::HashSet::new();
    let mut emit = move |event: kiln_engine::BuildEvent| match event {
        kiln_engine::BuildEvent::Step { id, name: step, state } => {
            if seen.insert(id) {
                events.send(Event::Step {
                    image: step_image.clone(),
                    step,
                    cached: state == StepState::Cached,
                });
            }
        }
        kiln_engine::BuildEvent::Log { step, text } => {
            if !text.trim().is_empty() {
                events.send(Event::Log { image: step_image.clone(), step, text });
            }
        }
    };
    let mut attempt = 1;
    let result = loop {
        let tar = prepared.context.tar_stream(
            kiln_emit::CONTEXT_FOLDER,
            vec![(DOCKERFILE.to_owned(), dockerfile.text.clone().into_bytes())],
        );
        let result = tokio::select! {
            result = shared.engine_at(engine).build(&spec, tar, &mut emit) => result,
            () = cancel.cancelled() => return Ok(TaskResult::Cancelled),
        };
        match result {
            Err(err) if err.lost_image && attempt < BUILD_ATTEMPTS => {
                attempt += 1;
                log(format!(
                    "kiln: the engine lost an image during the build ({}), most likely removed by another client meanwhile; building again (attempt {attempt} of {BUILD_ATTEMPTS})\n",
                    err.message
                ));
            }
            result => break result,
        }
    };
    let id = match result {
        Ok(id) => id,
        Err(err) => {
            let origin = err.step.as_deref().and_then(|s| dockerfile.step_origin(s)).map(|o| o.span);
            return Err(Failure {
                error: users_words(&err.message, spec.network.as_deref()),
                step: err.step.map(|s| without_context_folder(&s)),
                span: origin.or_else(|| dockerfile.failed_command_origin(&err.message)),
                log: without_context_folder(&err.log),
            });
        }
    };
    // What was sent must be what the key says: a file edited during the build makes an
    // image that no key describes.
    if let Some(path) = prepared.context.changed_since_walk() {
        return Err(Failure::new(
            format!(
                "`{path}` changed during the build, so the image matches no version of the context; build again"
            ),
            None,
        ));
    }
    finish(shared, index, prepared, id, Origin::Built, None, engine, begin).await
}

/// Pins what a build uses on its engine: its dependencies (copied from the engine of the
/// pool that has them, or pulled by content tag when only their registry does) and its
/// outside images (pulled when missing). Returns the pins, by dependency and by outside
/// reference.
async fn pin_inputs(
    shared: &Arc<Shared>,
    index: ImageId,
    engine: usize,
    dependencies: &HashMap<ImageId, Dependency>,
    prepared: &Prepared,
    log: &(dyn Fn(String) + Sync),
) -> Result<(HashMap<ImageId, String>, HashMap<String, String>), Failure> {
    let image = &shared.project[index];
    let mut dependency_pins = HashMap::new();
    for (&dependency, found) in dependencies {
        let id = if let Some(id) = &found.local {
            let ready = transfer::PoolImage { image: dependency, id, content_tag: &found.content };
            ensure_on(shared, &ready, engine).await.map_err(|e| Failure::new(e, None))?;
            id.clone()
        } else {
            let id = pull(shared, engine, &found.content, log).await.map_err(|e| Failure::new(e, None))?;
            shared.add_holder(dependency, engine);
            id
        };
        let name = &shared.project[dependency].name;
        let pin = shared.run.pin(name, &found.key);
        shared.pin(engine, &id, &pin).await.map_err(|e| {
            Failure::new(format!("`{name}` ({id}) went away before this build could use it: {e}"), None)
        })?;
        dependency_pins.insert(dependency, pin);
    }
    let mut base_pins = HashMap::new();
    let mut note = |text: String| log(text);
    for reference in image.external_bases() {
        let span = reference_span(image, reference);
        let id = shared
            .bases
            .local(shared.engine_at(engine), reference, image.pull_policy, &mut note)
            .await
            .map_err(|error| Failure::new(error, span))?;
        let identity = prepared.inputs.bases.get(reference).cloned().unwrap_or_default();
        if engine != shared.pool.home() {
            same_base_as_home(shared, engine, reference, &id, &identity)
                .await
                .map_err(|e| Failure::new(e, span))?;
        }
        let pin = shared.run.pin_outside(reference, &identity);
        shared
            .pin(engine, &id, &pin)
            .await
            .map_err(|e| Failure::new(format!("cannot pin `{reference}` for the build: {e}"), span))?;
        base_pins.insert(reference.to_owned(), pin);
    }
    Ok((dependency_pins, base_pins))
}

/// Applies the image's content tag on the engine that has it (`engine`), and its tags
/// (those it lacks, when `known` says which it has) on each engine that takes tags,
/// copying it there first; pushes them with `push`, then reports the image ready. Not
/// cancellable: the tags of an image are applied all or nothing.
#[allow(clippy::too_many_arguments)]
pub(super) async fn finish(
    shared: &Arc<Shared>,
    index: ImageId,
    prepared: &Prepared,
    id: String,
    origin: Origin,
    known: Option<ImageInfo>,
    engine: usize,
    begin: Instant,
) -> Result<TaskResult, Failure> {
    let image = &shared.project[index];
    let here = shared.engine_at(engine);
    let content = kiln_marks::tags::content_tag(&image.repository, &prepared.key);
    // A rebuild of a key takes its content tag from the build it replaces.
    let replaced = match origin {
        Origin::Built => here.inspect(&content).await.ok().flatten().map(|i| i.id).filter(|old| *old != id),
        _ => None,
    };
    let mut tags = vec![content.clone()];
    tags.extend(image.references());
    let has = known.as_ref().map(|info| info.tags.clone()).unwrap_or_default();
    let takes_tags = shared.pool.engines[engine].tags;
    for reference in tags.iter().take(if takes_tags { tags.len() } else { 1 }).filter(|t| !has.contains(t)) {
        if let Err(err) = here.tag(&id, reference).await {
            return Err(Failure::new(
                format!("`{id}` is ready but could not be tagged `{reference}`: {err}"),
                None,
            ));
        }
    }
    if let Some(old) = replaced {
        retire(here, &old, &content).await;
    }
    // This machine keeps the key's context files for `kiln explain`.
    if let Some(records) = Records::open() {
        records.save(&prepared.key, &prepared.inputs);
    }
    shared.add_holder(index, engine);
    let others: Vec<usize> = shared.tag_engines().filter(|&t| t != engine).collect();
    for other in others {
        let ready = transfer::PoolImage { image: index, id: &id, content_tag: &content };
        ensure_on(shared, &ready, other).await.map_err(|e| Failure::new(e, None))?;
        for reference in &tags[1..] {
            if let Err(err) = shared.engine_at(other).tag(&id, reference).await {
                return Err(Failure::new(
                    format!(
                        "`{id}` is ready but could not be tagged `{reference}` on the engine at {}: {err}",
                        shared.engine_at(other).endpoint
                    ),
                    None,
                ));
            }
        }
    }
    // Pushed from an engine that has the tags.
    let pusher = shared.engine_at(if takes_tags { engine } else { shared.pool.home() });
    if shared.options.push {
        for reference in &tags {
            shared.send(Event::Log {
                image: image.name.clone(),
                step: None,
                text: format!("kiln: pushing `{reference}`\n"),
            });
            if let Err(err) = pusher.push(reference, &mut |_| {}).await {
                return Err(Failure::new(
                    format!("`{id}` is ready but could not be pushed as `{reference}`: {err}"),
                    None,
                ));
            }
        }
    }
    let size = match known {
        Some(info) => info.size,
        None => here.inspect(&id).await.ok().flatten().map_or(0, |info| info.size),
    };
    Ok(ready(shared, index, prepared, id, true, size, origin, begin))
}

/// An older build of the same key, whose content tag a rebuild just took: removed when
/// nothing else names it (with the classic builder's intermediate images it leaves
/// untagged), else kept with a retired content tag (so that kiln still knows it as its
/// own).
async fn retire(engine: &kiln_engine::Engine, old: &str, content: &str) {
    let Ok(Some(info)) = engine.inspect(old).await else { return };
    if info.tags.is_empty() {
        let _ = engine.remove(old, false, true).await;
    } else {
        let _ = engine.tag(old, &kiln_marks::tags::retired_tag(content, old)).await;
    }
}

/// An outside image on another engine than the home one must be the one the image's key
/// names (the home engine's, or the lock's): the same tag may name another image there.
async fn same_base_as_home(
    shared: &Shared,
    engine: usize,
    reference: &str,
    id: &str,
    identity: &str,
) -> Result<(), String> {
    let here = shared.engine_at(engine);
    let Ok(Some(info)) = here.inspect(id).await else {
        return Err(format!("`{reference}` went away from the engine at {}", here.endpoint));
    };
    let parsed = kiln_reference::ImageRef::parse(reference).map_err(|e| e.to_string())?;
    let found = crate::bases::identity(&parsed, &info);
    if found == identity || info.id == identity || info.digests.iter().any(|d| d.ends_with(identity)) {
        return Ok(());
    }
    Err(format!(
        "`{reference}` is another image on the engine at {} ({found}) than the one this build's key names ({identity}); load the same image on every engine, or lock it with `kiln lock`",
        here.endpoint
    ))
}

/// Paths as the user knows them: the build's tar holds the context in a folder of its
/// own (`CONTEXT_FOLDER`), which the engine's messages name (`"/context/app.py" not found`).
fn without_context_folder(text: &str) -> String {
    let folder = kiln_emit::CONTEXT_FOLDER;
    text.replace(&format!("\"/{folder}/"), "\"")
        .replace(&format!(" /{folder}/"), " ")
        .replace(&format!(" {folder}/"), " ")
}

/// The engine's message in the user's words, with what to do where kiln knows it.
fn users_words(message: &str, network: Option<&str>) -> String {
    let mut text = without_context_folder(message);
    if text.contains("network bridge not found") && network.is_none() {
        text.push_str(
            " (this engine has no bridge network: build with `--network none`, or `--network host` for steps that download)",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_users_paths() {
        let engine = r#"failed to compute cache key: "/context/app.py" not found: not found"#;
        assert_eq!(
            without_context_folder(engine),
            r#"failed to compute cache key: "app.py" not found: not found"#
        );
        assert_eq!(
            without_context_folder(
                "COPY failed: file not found in build context: stat context/x: no such file"
            ),
            "COPY failed: file not found in build context: stat x: no such file"
        );
        let bridge = users_words("network bridge not found", None);
        assert!(bridge.contains("--network none"), "{bridge}");
        assert_eq!(users_words("network bridge not found", Some("none")), "network bridge not found");
    }
}
