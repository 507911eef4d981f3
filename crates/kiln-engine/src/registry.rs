//! Talking to registries through the engine: credentials as the docker CLI stores them,
//! pulls and pushes with their progress.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{CreateImageOptionsBuilder, PushImageOptionsBuilder};
use futures_util::TryStreamExt;

use crate::{Engine, EngineError, describe, parse, parse_tagged};

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
                    return Err(EngineError::Api(message));
                }
                if let Some(status) = status {
                    emit(TransferEvent { layer, status });
                }
            }
            Ok(None) => return Ok(()),
            Err(err) => return Err(EngineError::Api(describe(&err))),
        }
    }
}

/// Credentials for a registry from the docker CLI's configuration: a credential helper
/// (`credHelpers`, then `credsStore`), else an `auths` entry.
pub fn credentials_for(registry: &str) -> Option<DockerCredentials> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))?;
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    let keys: Vec<String> = if registry == "docker.io" {
        vec!["https://index.docker.io/v1/".into(), "index.docker.io".into(), "docker.io".into()]
    } else {
        vec![registry.to_owned(), format!("https://{registry}"), format!("http://{registry}")]
    };
    let helper = keys
        .iter()
        .find_map(|k| config.pointer(&format!("/credHelpers/{}", k.replace('/', "~1"))))
        .or_else(|| config.get("credsStore"))
        .and_then(serde_json::Value::as_str);
    if let Some(helper) = helper
        && let Some(credentials) = from_helper(helper, &keys[0])
    {
        return Some(credentials);
    }
    let auths = config.get("auths")?.as_object()?;
    let entry = keys.iter().find_map(|k| auths.get(k))?;
    let mut credentials = DockerCredentials { serveraddress: Some(keys[0].clone()), ..Default::default() };
    if let Some(token) = entry.get("identitytoken").and_then(serde_json::Value::as_str) {
        credentials.identitytoken = Some(token.to_owned());
    }
    if let Some(auth) = entry.get("auth").and_then(serde_json::Value::as_str) {
        let decoded = base64::engine::general_purpose::STANDARD.decode(auth).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        credentials.username = Some(user.to_owned());
        credentials.password = Some(password.to_owned());
    }
    Some(credentials)
}

/// Asks `docker-credential-<helper> get`, as the docker CLI does.
fn from_helper(helper: &str, server: &str) -> Option<DockerCredentials> {
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(server.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        return None;
    }
    let reply: HashMap<String, String> = serde_json::from_slice(&output.stdout).ok()?;
    let username = reply.get("Username").cloned().unwrap_or_default();
    let secret = reply.get("Secret").cloned().unwrap_or_default();
    Some(if username == "<token>" {
        DockerCredentials {
            identitytoken: Some(secret),
            serveraddress: Some(server.to_owned()),
            ..Default::default()
        }
    } else {
        DockerCredentials {
            username: Some(username),
            password: Some(secret),
            serveraddress: Some(server.to_owned()),
            ..Default::default()
        }
    })
}
