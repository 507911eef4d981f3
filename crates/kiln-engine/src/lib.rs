//! kiln's connection to a Docker engine, through bollard: finding the endpoint as the
//! docker CLI does, negotiating the API version (Engine 20.10, API 1.41, and newer),
//! building from a context stream with BuildKit or the classic builder, and the image
//! calls the scheduler and the image commands need.

mod build;
mod dial;
pub mod endpoint;
mod registry;
mod session;
mod ssh;

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use kiln_reference::ImageRef;

pub use build::{BuildError, BuildEvent, BuildSpec, Builder, SecretSource, StepState, lost_an_image};
pub use endpoint::{Endpoint, Source};
pub use registry::TransferEvent;

/// How long a single request may wait for the engine to start answering. Builds stream
/// for as long as they run; this only bounds the wait for the response to begin.
const REQUEST_TIMEOUT: Duration = Duration::from_mins(10);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the Docker engine at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("{0}")]
    Config(String),
    /// The engine refused or failed a request; `source` is bollard's error, when the
    /// request went through bollard.
    #[error("{message}")]
    Api {
        message: String,
        #[source]
        source: Option<bollard::errors::Error>,
    },
}

impl EngineError {
    fn api(err: bollard::errors::Error) -> Self {
        Self::Api { message: describe(&err), source: Some(err) }
    }

    fn message(message: String) -> Self {
        Self::Api { message, source: None }
    }
}

/// A message for a bollard error, without bollard's wrapping.
pub(crate) fn describe(err: &bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// An error on the way to an engine, said with its cause: the innermost source ("invalid
/// peer certificate: UnknownIssuer"), not hyper's wrapping of it, with what to check.
fn describe_connection(err: &bollard::errors::Error) -> String {
    let mut innermost = describe(err);
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        innermost = cause.to_string();
        source = cause.source();
    }
    if innermost.contains("HTTP request to an HTTPS server") {
        format!(
            "{} The engine talks TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the folder of ca.pem, cert.pem and key.pem",
            innermost.trim_end()
        )
    } else if innermost.contains("invalid peer certificate") {
        format!(
            "TLS: {innermost}: the engine's certificate is not signed by the CA in ca.pem (check DOCKER_CERT_PATH)"
        )
    } else if ["CertificateRequired", "bad certificate", "unknown ca"].iter().any(|t| innermost.contains(t)) {
        format!("TLS: {innermost}: the engine refused kiln's client certificate (check cert.pem and key.pem)")
    } else {
        innermost
    }
}

/// A connected engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    pub endpoint: Endpoint,
    /// For an `ssh://` engine: the tunnel the connection goes through, alive as long as
    /// a clone of the engine is.
    ssh_tunnel: Option<std::sync::Arc<ssh::SshTunnel>>,
    /// The engine's version, such as `20.10.24`.
    pub version: String,
    /// The API version both sides speak.
    pub api_version: String,
}

/// What kiln needs to know of an image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageInfo {
    pub id: String,
    pub size: u64,
    /// RFC 3339.
    pub created: String,
    pub tags: Vec<String>,
    /// `repository@sha256:...` for each registry the image was pushed to or pulled from.
    pub digests: Vec<String>,
    pub labels: HashMap<String, String>,
    /// `os/architecture[/variant]`, when inspected.
    pub platform: Option<String>,
    /// The image's layers (diff IDs), when inspected.
    pub layers: Vec<String>,
}

/// One entry of an image's history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image ID of this step, when the engine still has it (`<missing>` otherwise).
    pub id: Option<String>,
    pub created_by: String,
    pub size: u64,
    pub created: i64,
    pub comment: String,
}

impl Engine {
    /// Connects to the engine `--host` names, or the one the environment names.
    pub async fn connect(host: Option<&str>) -> Result<Self, EngineError> {
        let env = |key: &str| std::env::var(key).ok();
        let endpoint = endpoint::resolve(host, &env).map_err(EngineError::Config)?;
        Self::connect_to(endpoint).await
    }

    pub async fn connect_to(endpoint: Endpoint) -> Result<Self, EngineError> {
        let unreachable =
            |reason: String| EngineError::Unreachable { endpoint: endpoint.to_string(), reason };
        let timeout = REQUEST_TIMEOUT.as_secs();
        let version = bollard::API_DEFAULT_VERSION;
        let mut tunnel = None;
        let docker = if let Some(path) = endpoint.host.strip_prefix("unix://") {
            Docker::connect_with_unix(path, timeout, version).map_err(|e| unreachable(describe(&e)))?
        } else if endpoint.host.starts_with("ssh://") {
            let started = ssh::SshTunnel::start(&endpoint.host).map_err(EngineError::Config)?;
            let socket = started.socket().to_string_lossy().into_owned();
            tunnel = Some(std::sync::Arc::new(started));
            Docker::connect_with_unix(&socket, timeout, version).map_err(|e| unreachable(describe(&e)))?
        } else if let Some(dir) = &endpoint.tls {
            for file in ["ca.pem", "cert.pem", "key.pem"] {
                if !dir.join(file).is_file() {
                    return Err(EngineError::Config(format!(
                        "the engine at {endpoint} needs TLS, but `{}` is missing (set DOCKER_CERT_PATH to the folder of ca.pem, cert.pem and key.pem)",
                        dir.join(file).display()
                    )));
                }
            }
            Docker::connect_with_ssl(
                &endpoint.host,
                &dir.join("key.pem"),
                &dir.join("cert.pem"),
                &dir.join("ca.pem"),
                timeout,
                version,
            )
            .map_err(|e| unreachable(describe_connection(&e)))?
        } else if endpoint.host.starts_with("tcp://") || endpoint.host.starts_with("http://") {
            Docker::connect_with_http(&endpoint.host, timeout, version)
                .map_err(|e| unreachable(describe(&e)))?
        } else {
            return Err(EngineError::Config(format!(
                "unsupported engine address `{}`: use `unix:///path`, `tcp://host:port` or `ssh://[user@]host[:port]`",
                endpoint.host
            )));
        };
        // Negotiation asks the engine which API version it speaks, so that requests
        // carry a version Engine 20.10 (API 1.41) accepts.
        let negotiated = match tokio::time::timeout(Duration::from_secs(30), docker.negotiate_version()).await
        {
            Err(_) => Err("no answer within 30 seconds".to_owned()),
            Ok(Err(e)) => Err(describe_connection(&e)),
            Ok(Ok(docker)) => match docker.version().await {
                Ok(info) => Ok((docker, info)),
                Err(e) => Err(describe_connection(&e)),
            },
        };
        let (docker, info) = match negotiated {
            Ok(connected) => connected,
            // Over ssh, what `ssh` said (a refused key, an unknown host) is the reason.
            Err(described) => {
                let said = match &tunnel {
                    Some(tunnel) => tunnel.error_of_last_connection().await,
                    None => None,
                };
                return Err(unreachable(said.map_or(described, |said| format!("ssh: {said}"))));
            }
        };
        Ok(Self {
            ssh_tunnel: tunnel,
            api_version: info.api_version.clone().unwrap_or_default(),
            version: info.version.unwrap_or_default(),
            docker,
            endpoint,
        })
    }

    /// The registries the engine is configured to reach over plain HTTP (its
    /// `insecure-registries`), as `host[:port]`.
    pub async fn insecure_registries(&self) -> Vec<String> {
        let Ok(info) = self.docker.info().await else { return Vec::new() };
        info.registry_config
            .and_then(|c| c.index_configs)
            .map(|configs| {
                configs.into_iter().filter(|(_, c)| c.secure == Some(false)).map(|(name, _)| name).collect()
            })
            .unwrap_or_default()
    }

    /// The underlying client, for calls kiln does not wrap.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Points `repository:tag` at an image.
    pub async fn tag(&self, image: &str, reference: &str) -> Result<(), EngineError> {
        let reference = parse_tagged(reference)?;
        let options = TagImageOptionsBuilder::default()
            .repo(&reference.repository())
            .tag(reference.tag_or_latest())
            .build();
        self.docker.tag_image(image, Some(options)).await.map_err(EngineError::api)
    }

    /// Removes a tag or an image. `force` also removes an image used by stopped
    /// containers; `prune` removes untagged parents.
    pub async fn remove(&self, reference: &str, force: bool, prune: bool) -> Result<(), EngineError> {
        let options = RemoveImageOptionsBuilder::default().force(force).noprune(!prune).build();
        self.docker.remove_image(reference, Some(options), None).await.map(|_| ()).map_err(EngineError::api)
    }

    /// The image a reference or ID names, if any.
    pub async fn inspect(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => {
                let platform = match (image.os, image.architecture) {
                    (Some(os), Some(arch)) => Some(match image.variant.filter(|v| !v.is_empty()) {
                        Some(variant) => format!("{os}/{arch}/{variant}"),
                        None => format!("{os}/{arch}"),
                    }),
                    _ => None,
                };
                Ok(Some(ImageInfo {
                    id: image.id.unwrap_or_default(),
                    size: image.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    created: image.created.map(|d| d.to_rfc3339()).unwrap_or_default(),
                    tags: image.repo_tags.unwrap_or_default(),
                    digests: image.repo_digests.unwrap_or_default(),
                    labels: image.config.and_then(|c| c.labels).unwrap_or_default(),
                    platform,
                    layers: image.root_fs.and_then(|r| r.layers).unwrap_or_default(),
                }))
            }
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(EngineError::api(e)),
        }
    }

    /// Images carrying every given `key=value` label.
    pub async fn images_with_labels(&self, labels: &[(&str, &str)]) -> Result<Vec<ImageInfo>, EngineError> {
        let filter: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let filters =
            if filter.is_empty() { HashMap::new() } else { HashMap::from([("label".to_owned(), filter)]) };
        let options = ListImagesOptionsBuilder::default().all(false).filters(&filters).build();
        let images = self.docker.list_images(Some(options)).await.map_err(EngineError::api)?;
        Ok(images
            .into_iter()
            .map(|image| ImageInfo {
                id: image.id,
                size: u64::try_from(image.size).unwrap_or(0),
                created: chrono::DateTime::from_timestamp(image.created, 0)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                tags: image.repo_tags.into_iter().filter(|t| t != "<none>:<none>").collect(),
                digests: image.repo_digests.into_iter().filter(|d| d != "<none>@<none>").collect(),
                labels: image.labels,
                platform: None,
                layers: Vec::new(),
            })
            .collect())
    }

    /// Every tagged image, with its tags, labels, size and creation time.
    pub async fn tagged_images(&self) -> Result<Vec<ImageInfo>, EngineError> {
        Ok(self.images_with_labels(&[]).await?.into_iter().filter(|image| !image.tags.is_empty()).collect())
    }

    /// Every tag that starts with `prefix`, with the ID of the image it points at.
    pub async fn tags_starting_with(&self, prefix: &str) -> Result<Vec<(String, String)>, EngineError> {
        let options = ListImagesOptionsBuilder::default().all(false).build();
        let images = self.docker.list_images(Some(options)).await.map_err(EngineError::api)?;
        Ok(images
            .into_iter()
            .flat_map(|image| {
                let id = image.id;
                image.repo_tags.into_iter().filter(|t| t.starts_with(prefix)).map(move |t| (id.clone(), t))
            })
            .collect())
    }

    /// An image's history, newest first.
    pub async fn history(&self, reference: &str) -> Result<Vec<HistoryEntry>, EngineError> {
        let items = self.docker.image_history(reference).await.map_err(EngineError::api)?;
        Ok(items
            .into_iter()
            .map(|item| HistoryEntry {
                id: (item.id != "<missing>").then_some(item.id),
                created_by: item.created_by,
                size: u64::try_from(item.size).unwrap_or(0),
                created: item.created,
                comment: item.comment,
            })
            .collect())
    }

    /// IDs of all containers, running or not (to check that builds leave none behind).
    pub async fn container_ids(&self) -> Result<Vec<String>, EngineError> {
        let options = ListContainersOptionsBuilder::default().all(true).build();
        let containers = self.docker.list_containers(Some(options)).await.map_err(EngineError::api)?;
        Ok(containers.into_iter().filter_map(|c| c.id).collect())
    }
}

/// Parses a reference kiln is about to send to the engine.
pub(crate) fn parse(reference: &str) -> Result<ImageRef, EngineError> {
    ImageRef::parse(reference)
        .map_err(|e| EngineError::Config(format!("invalid reference `{reference}`: {e}")))
}

/// A reference that names a tag (not a digest): what `tag` and `push` take.
pub(crate) fn parse_tagged(reference: &str) -> Result<ImageRef, EngineError> {
    let parsed = parse(reference)?;
    if parsed.digest.is_some() {
        return Err(EngineError::Config(format!("`{reference}` names a digest; a tag is needed here")));
    }
    Ok(parsed)
}
