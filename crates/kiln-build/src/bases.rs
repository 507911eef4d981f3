//! Outside images (bases and `copy` sources that are not the manifest's), resolved once
//! per run to what the engine has: the image ID a build will use, and the identity the
//! key records, its registry digest when the engine knows one for that repository (the
//! same on every machine that pulls it), else its local image ID. A missing image is
//! pulled first, unless its pull policy is `never`.

use std::collections::HashMap;
use std::sync::Arc;

use kiln_engine::{Engine, ImageInfo};
use kiln_manifest::PullPolicy;
use kiln_reference::ImageRef;
use tokio::sync::{Mutex, OnceCell};

/// What the engine has for an outside reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outside {
    /// The local image ID.
    pub id: String,
    /// The registry digest (`sha256:…`) or, without one, the image ID.
    pub identity: String,
}

/// One reference's resolution, shared by the images that wait for it.
type Resolution = Arc<OnceCell<Result<Outside, String>>>;

/// Resolves each outside reference at most once per run, however many images use it.
#[derive(Default)]
pub struct Bases {
    resolved: Mutex<HashMap<String, Resolution>>,
}

impl Bases {
    /// Resolves `reference`; `note` hears about a pull before it starts.
    pub async fn resolve(
        &self,
        engine: &Engine,
        reference: &str,
        policy: PullPolicy,
        note: &mut (dyn FnMut(String) + Send),
    ) -> Result<Outside, String> {
        let cell = self.resolved.lock().await.entry(reference.to_owned()).or_default().clone();
        cell.get_or_init(|| async {
            let parsed =
                ImageRef::parse(reference).map_err(|e| format!("invalid reference `{reference}`: {e}"))?;
            let info = match engine.inspect(reference).await.map_err(|e| e.to_string())? {
                Some(info) => info,
                None if policy == PullPolicy::Never => {
                    return Err(format!("`{reference}` is not here, and its pull policy is `never`"));
                }
                None => {
                    note(format!("kiln: pulling `{reference}`, which is not here\n"));
                    engine
                        .pull(reference, &mut |_| {})
                        .await
                        .map_err(|e| format!("cannot pull `{reference}`: {e}"))?;
                    engine
                        .inspect(reference)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("`{reference}` is not here after pulling it"))?
                }
            };
            Ok(Outside { identity: identity(&parsed, &info), id: info.id })
        })
        .await
        .clone()
    }
}

/// The digest a reference names, or that the engine recorded when it pulled (or pushed)
/// the image from that repository, else the image ID.
fn identity(reference: &ImageRef, info: &ImageInfo) -> String {
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
