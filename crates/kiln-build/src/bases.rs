//! Outside images (bases and `copy` sources that are not the manifest's), resolved once
//! per run.
//!
//! Two questions, asked separately so that an image whose build can be skipped never
//! pulls its base: what is the image's identity (for the key), and which local image is
//! it (for a build). The identity is, in order: what `kiln.lock` says; the digest the
//! reference names; the registry digest the engine recorded for that repository (the
//! same on every machine that pulls it); the local image ID when no registry has it; the
//! registry's digest when the engine does not have it.

use std::collections::HashMap;
use std::sync::Arc;

use kiln_engine::{Engine, ImageInfo};
use kiln_manifest::PullPolicy;
use kiln_manifest::lock::{Lock, Locked};
use kiln_reference::ImageRef;
use kiln_registry::Client;
use tokio::sync::{Mutex, OnceCell};

/// One resolution, shared by the images that wait for it.
type Cell<T> = Arc<OnceCell<Result<T, String>>>;

/// The registry client of a run, made when first needed: making it asks the engine
/// which registries it reaches over plain HTTP, which a run that finds everything on
/// the engine need not do.
pub struct Registries {
    engine: Engine,
    client: OnceCell<Arc<Client>>,
}

impl Registries {
    pub fn new(engine: Engine) -> Self {
        Self { engine, client: OnceCell::new() }
    }

    pub async fn client(&self) -> Arc<Client> {
        self.client
            .get_or_init(|| async { Arc::new(Client::new(self.engine.insecure_registries().await)) })
            .await
            .clone()
    }
}

/// Resolves each outside reference at most once per run, however many images use it.
pub struct Bases {
    lock: Option<Lock>,
    registries: Arc<Registries>,
    identities: Mutex<HashMap<String, Cell<String>>>,
    locals: Mutex<HashMap<String, Cell<String>>>,
}

impl Bases {
    pub fn new(lock: Option<Lock>, registries: Arc<Registries>) -> Self {
        Self { lock, registries, identities: Mutex::default(), locals: Mutex::default() }
    }

    /// The identity the key records for `reference`. Pulls nothing.
    pub async fn identity(&self, engine: &Engine, reference: &str) -> Result<String, String> {
        let cell = self.identities.lock().await.entry(reference.to_owned()).or_default().clone();
        cell.get_or_init(|| async {
            let parsed = parse(reference)?;
            if let Some(locked) = self.lock.as_ref().and_then(|l| l.get(reference)) {
                return Ok(locked.identity().to_owned());
            }
            if let Some(digest) = &parsed.digest {
                return Ok(digest.clone());
            }
            if let Some(info) = engine.inspect(reference).await.map_err(|e| e.to_string())? {
                return Ok(identity(&parsed, &info));
            }
            let registry = self.registries.client().await;
            let name = reference.to_owned();
            match tokio::task::spawn_blocking(move || registry.digest(&name)).await {
                Ok(Ok(Some(digest))) => Ok(digest),
                Ok(Ok(None)) => Err(format!("`{reference}` is not here, and its registry does not have it")),
                Ok(Err(err)) => {
                    Err(format!("`{reference}` is not here, and its registry cannot tell what it is: {err}"))
                }
                Err(err) => Err(format!("internal error: {err}")),
            }
        })
        .await
        .clone()
    }

    /// The local image a build uses for `reference`: the locked one when there is a lock,
    /// pulled when missing (unless its pull policy is `never`). `note` hears about a
    /// pull before it starts.
    pub async fn local(
        &self,
        engine: &Engine,
        reference: &str,
        policy: PullPolicy,
        note: &mut (dyn FnMut(String) + Send),
    ) -> Result<String, String> {
        // Per engine: each engine of a pool has its own copy, or pulls it.
        let key = format!("{}\n{reference}", engine.endpoint.host);
        let cell = self.locals.lock().await.entry(key).or_default().clone();
        cell.get_or_init(|| async {
            let parsed = parse(reference)?;
            let source = match self.lock.as_ref().and_then(|l| l.get(reference)) {
                Some(Locked::Id(id)) => {
                    return engine.inspect(id).await.map_err(|e| e.to_string())?.map(|info| info.id).ok_or_else(|| {
                        format!(
                            "`{reference}` is locked to image `{id}`, which this engine does not have; `kiln lock --update {reference}` locks the one it has"
                        )
                    });
                }
                // The locked image, whatever the tag points at today.
                Some(Locked::Digest(digest)) if parsed.digest.is_none() => format!("{}@{digest}", parsed.repository()),
                _ => reference.to_owned(),
            };
            if let Some(info) = engine.inspect(&source).await.map_err(|e| e.to_string())? {
                return Ok(info.id);
            }
            if policy == PullPolicy::Never {
                return Err(format!("`{source}` is not here, and its pull policy is `never`"));
            }
            note(format!("kiln: pulling `{source}`, which is not here\n"));
            engine.pull(&source, &mut |_| {}).await.map_err(|e| format!("cannot pull `{source}`: {e}"))?;
            engine
                .inspect(&source)
                .await
                .map_err(|e| e.to_string())?
                .map(|info| info.id)
                .ok_or_else(|| format!("`{source}` is not here after pulling it"))
        })
        .await
        .clone()
    }
}

/// What `kiln lock` records for `reference`: the digest it names; else its registry's
/// digest, the same on every machine; else, when no registry answers for it, the
/// engine's: the digest it recorded for that repository, or the image ID.
pub async fn lock_entry(engine: &Engine, registry: &Arc<Client>, reference: &str) -> Result<Locked, String> {
    let parsed = parse(reference)?;
    if let Some(digest) = &parsed.digest {
        return Ok(Locked::Digest(digest.clone()));
    }
    let client = registry.clone();
    let name = reference.to_owned();
    let remote = tokio::task::spawn_blocking(move || client.digest(&name))
        .await
        .map_err(|e| format!("internal error: {e}"))?;
    if let Ok(Some(digest)) = remote {
        return Ok(Locked::Digest(digest));
    }
    match engine.inspect(reference).await.map_err(|e| e.to_string())? {
        Some(info) => Ok(match identity(&parsed, &info) {
            id if id == info.id => Locked::Id(id),
            digest => Locked::Digest(digest),
        }),
        None => Err(match remote {
            Ok(_) => format!("neither the engine nor the registry of `{reference}` has it"),
            Err(err) => {
                format!("the engine does not have `{reference}`, and its registry cannot tell: {err}")
            }
        }),
    }
}

fn parse(reference: &str) -> Result<ImageRef, String> {
    ImageRef::parse(reference).map_err(|e| format!("invalid reference `{reference}`: {e}"))
}

/// The digest a reference names, or that the engine recorded when it pulled (or pushed)
/// the image from that repository, else the image ID.
pub fn identity(reference: &ImageRef, info: &ImageInfo) -> String {
    if let Some(digest) = &reference.digest {
        return digest.clone();
    }
    let repository = reference.familiar_repository();
    info.digests
        .iter()
        .filter_map(|d| d.split_once('@'))
        .find(|(repo, _)| *repo == repository)
        .map_or_else(|| info.id.clone(), |(_, digest)| digest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(digests: &[&str]) -> ImageInfo {
        ImageInfo {
            id: "sha256:1d".into(),
            digests: digests.iter().map(|d| (*d).to_owned()).collect(),
            ..ImageInfo::default()
        }
    }

    #[test]
    fn prefers_the_digest_of_the_same_repository() {
        let at = |text: &str| ImageRef::parse(text).expect("reference");
        let sha = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        assert_eq!(
            identity(&at("python:3.11"), &info(&["python@sha256:aa", "other@sha256:bb"])),
            "sha256:aa"
        );
        assert_eq!(identity(&at("docker.io/library/python:3.11"), &info(&["python@sha256:aa"])), "sha256:aa");
        assert_eq!(identity(&at("python:3.11"), &info(&["other@sha256:bb"])), "sha256:1d");
        assert_eq!(identity(&at("kiln-test/busybox:1"), &info(&[])), "sha256:1d");
        assert_eq!(identity(&at(&format!("h:5000/x@{sha}")), &info(&[])), sha);
    }
}
