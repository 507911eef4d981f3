//! Talking to registries through the engine: pulls and pushes with their progress, with
//! the credentials the docker CLI stored.

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{CreateImageOptionsBuilder, PushImageOptionsBuilder};
use futures_util::TryStreamExt;

use crate::{Engine, EngineError, parse, parse_tagged};

/// Progress of a pull or push: the engine's status lines, per layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferEvent {
    pub layer: Option<String>,
    pub status: String,
}

impl Engine {
    /// Pulls `reference` (`[registry/]repo:tag`).
    pub async fn pull(
        &self,
        reference: &str,
        emit: &mut (dyn FnMut(TransferEvent) + Send),
    ) -> Result<(), EngineError> {
        let reference = parse(reference)?;
        let options = CreateImageOptionsBuilder::default()
            .from_image(&reference.repository())
            .tag(reference.tag_or_digest())
            .build();
        let credentials = credentials_for(reference.registry());
        let stream = self.docker.create_image(Some(options), None, credentials);
        drain(stream, emit, |info| (info.error_detail.and_then(|d| d.message), info.status, info.id)).await
    }

    /// Pushes `reference` to its registry.
    pub async fn push(
        &self,
        reference: &str,
        emit: &mut (dyn FnMut(TransferEvent) + Send),
    ) -> Result<(), EngineError> {
        let reference = parse_tagged(reference)?;
        let options = PushImageOptionsBuilder::default().tag(reference.tag_or_latest()).build();
        let credentials = credentials_for(reference.registry());
        let stream = self.docker.push_image(&reference.repository(), Some(options), credentials);
        drain(stream, emit, |info| (info.error_detail.and_then(|d| d.message), info.status, None)).await
    }
}

/// Follows a pull or push stream to its end: `parts` splits an item into its error,
/// its status line and the layer it is about. An error in the stream ends it.
async fn drain<T>(
    stream: impl futures_util::Stream<Item = Result<T, bollard::errors::Error>>,
    emit: &mut (dyn FnMut(TransferEvent) + Send),
    parts: impl Fn(T) -> (Option<String>, Option<String>, Option<String>),
) -> Result<(), EngineError> {
    let mut stream = std::pin::pin!(stream);
    loop {
        match stream.try_next().await {
            Ok(Some(item)) => {
                let (error, status, layer) = parts(item);
                if let Some(message) = error {
                    return Err(EngineError::message(message));
                }
                if let Some(status) = status {
                    emit(TransferEvent { layer, status });
                }
            }
            Ok(None) => return Ok(()),
            Err(err) => return Err(EngineError::api(err)),
        }
    }
}

/// The docker CLI's credentials for a registry, as the engine takes them.
fn credentials_for(registry: &str) -> Option<DockerCredentials> {
    kiln_registry::credentials_for(registry).map(|c| DockerCredentials {
        username: c.username,
        password: c.password,
        identitytoken: c.identity_token,
        serveraddress: Some(c.server),
        ..DockerCredentials::default()
    })
}

impl Engine {
    /// Copies an image (by ID) into `target`, streaming `docker save` into `docker load`:
    /// the image arrives untagged, with the same ID. For engines that share no registry.
    pub async fn copy_image_to(&self, id: &str, target: &Engine) -> Result<(), EngineError> {
        let saved = self.docker.export_image(id);
        let options = bollard::query_parameters::ImportImageOptionsBuilder::default().quiet(true).build();
        let loaded = target.docker.import_image_stream(options, saved, None);
        drain(loaded, &mut |_| {}, |info| (info.error_detail.and_then(|d| d.message), None, None)).await
    }
}
