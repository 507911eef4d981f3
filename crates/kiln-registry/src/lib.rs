//! A small client of the registry API (the OCI distribution spec), for what the Docker
//! engine's API cannot do: ask whether a tag exists without pulling, read a digest, and
//! give a manifest another tag without moving any layer (as `crane tag` does).
//!
//! Blocking (call it off the async threads). HTTPS, except for the registries the engine
//! treats as insecure (loopback ones by default), which speak plain HTTP. Bearer-token
//! and basic authentication, with the docker CLI's stored credentials ([`credentials`]).

pub mod credentials;

use std::time::Duration;

use base64::Engine as _;
use kiln_reference::ImageRef;
use sha2::{Digest as _, Sha256};

pub use credentials::{Credentials, credentials_for};

/// Every manifest kind kiln reads and copies: single-platform manifests and indexes,
/// Docker's and OCI's.
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.oci.image.manifest.v1+json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach {registry}: {reason}")]
    Unreachable { registry: String, reason: String },
    #[error("{registry} refused the credentials (HTTP {status}); log in with `docker login {registry}`")]
    Unauthorized { registry: String, status: u16 },
    #[error("{registry} answered HTTP {status} to {what}: {body}")]
    Status { registry: String, status: u16, what: String, body: String },
    #[error("invalid reference `{0}`")]
    Reference(String),
}

/// A manifest as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
}

/// A client for the registries of one run. Tokens are per repository and per client.
pub struct Client {
    agent: ureq::Agent,
    /// Registries to talk to over plain HTTP, besides loopback ones.
    insecure: Vec<String>,
    tokens: std::sync::Mutex<std::collections::HashMap<(String, String), String>>,
}

impl Default for Client {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Client {
    /// `insecure`: registries (`host[:port]`) the engine is configured to reach over
    /// plain HTTP.
    pub fn new(insecure: Vec<String>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_mins(1)))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { agent, insecure, tokens: std::sync::Mutex::default() }
    }

    /// The digest `reference` names in its registry, or `None` when the registry has no
    /// such tag.
    pub fn digest(&self, reference: &str) -> Result<Option<String>, RegistryError> {
        let parsed = parse(reference)?;
        if let Some(digest) = &parsed.digest {
            return Ok(Some(digest.clone()));
        }
        Ok(self.manifest(reference)?.map(|m| m.digest))
    }

    /// The manifest `reference` names, or `None` when there is none.
    pub fn manifest(&self, reference: &str) -> Result<Option<Manifest>, RegistryError> {
        let parsed = parse(reference)?;
        let url = self.url(&parsed, &format!("manifests/{}", parsed.tag_or_digest()));
        let response = self.send(&parsed, "pull", &format!("GET {reference}"), |agent, auth| {
            let mut request = agent.get(&url).header("Accept", MANIFEST_TYPES);
            if let Some(auth) = auth {
                request = request.header("Authorization", auth);
            }
            request.call()
        })?;
        let Some(mut response) = response else { return Ok(None) };
        let media_type = response
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.body_mut().with_config().limit(4 << 20).read_to_vec().map_err(|e| {
            RegistryError::Unreachable { registry: parsed.registry().to_owned(), reason: e.to_string() }
        })?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        Ok(Some(Manifest { media_type, bytes, digest }))
    }

    /// Stores `manifest` under `reference`'s tag, in `reference`'s repository (whose
    /// blobs it names must already be there).
    pub fn put_manifest(&self, reference: &str, manifest: &Manifest) -> Result<(), RegistryError> {
        let parsed = parse(reference)?;
        let url = self.url(&parsed, &format!("manifests/{}", parsed.tag_or_latest()));
        let response = self.send(&parsed, "pull,push", &format!("PUT {reference}"), |agent, auth| {
            let mut request = agent.put(&url).header("Content-Type", &manifest.media_type);
            if let Some(auth) = auth {
                request = request.header("Authorization", auth);
            }
            request.send(&manifest.bytes[..])
        })?;
        match response {
            Some(_) => Ok(()),
            None => Err(RegistryError::Status {
                registry: parsed.registry().to_owned(),
                status: 404,
                what: format!("PUT {reference}"),
                body: "the repository does not exist".to_owned(),
            }),
        }
    }

    fn url(&self, reference: &ImageRef, path: &str) -> String {
        let registry = reference.registry();
        let host = if registry == kiln_reference::DOCKER_HUB { "registry-1.docker.io" } else { registry };
        let scheme = if self.plain_http(registry) { "http" } else { "https" };
        format!("{scheme}://{host}/v2/{}/{path}", reference.remote_path())
    }

    /// Loopback registries are insecure by default, as the engine has them.
    fn plain_http(&self, registry: &str) -> bool {
        let host = registry.rsplit_once(':').map_or(registry, |(host, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) { host } else { registry }
        });
        host == "localhost"
            || host.starts_with("127.")
            || host == "[::1]"
            || self.insecure.iter().any(|i| i == registry)
    }

    /// Sends a request, authenticating when the registry asks to: `Ok(None)` on 404,
    /// the response on any other success.
    fn send(
        &self,
        reference: &ImageRef,
        actions: &str,
        what: &str,
        request: impl Fn(&ureq::Agent, Option<&str>) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Option<ureq::http::Response<ureq::Body>>, RegistryError> {
        let registry = reference.registry().to_owned();
        let unreachable =
            |e: ureq::Error| RegistryError::Unreachable { registry: registry.clone(), reason: e.to_string() };
        let key = (registry.clone(), format!("{}:{actions}", reference.remote_path()));
        let cached = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key).cloned();
        let mut response = request(&self.agent, cached.as_deref()).map_err(unreachable)?;
        if response.status() == 401 {
            let challenge = response
                .headers()
                .get("WWW-Authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let auth = self.authorize(reference, &challenge, actions)?;
            self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, auth.clone());
            response = request(&self.agent, Some(&auth)).map_err(unreachable)?;
        }
        match response.status().as_u16() {
            200..=299 => Ok(Some(response)),
            404 => Ok(None),
            status @ (401 | 403) => Err(RegistryError::Unauthorized { registry, status }),
            status => {
                let body = response.body_mut().read_to_string().unwrap_or_default();
                Err(RegistryError::Status {
                    registry,
                    status,
                    what: what.to_owned(),
                    body: body.trim().to_owned(),
                })
            }
        }
    }

    /// The `Authorization` header a 401's challenge asks for: basic credentials, or a
    /// bearer token from the challenge's realm.
    fn authorize(
        &self,
        reference: &ImageRef,
        challenge: &str,
        actions: &str,
    ) -> Result<String, RegistryError> {
        let registry = reference.registry().to_owned();
        let credentials = credentials_for(&registry);
        let basic = credentials.as_ref().and_then(|c| {
            let (user, password) = (c.username.as_ref()?, c.password.as_ref()?);
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ))
        });
        let Some(params) = challenge.strip_prefix("Bearer ") else {
            return basic.ok_or(RegistryError::Unauthorized { registry, status: 401 });
        };
        let param = |name: &str| challenge_param(params, name);
        let realm = param("realm").ok_or_else(|| RegistryError::Status {
            registry: registry.clone(),
            status: 401,
            what: "authentication".to_owned(),
            body: format!("a bearer challenge without a realm: {challenge}"),
        })?;
        let scope = format!("repository:{}:{actions}", reference.remote_path());
        let mut query = vec![("scope", scope.as_str())];
        let service = param("service");
        if let Some(service) = &service {
            query.push(("service", service.as_str()));
        }
        let unreachable =
            |e: ureq::Error| RegistryError::Unreachable { registry: registry.clone(), reason: e.to_string() };
        let refresh_token = credentials.as_ref().and_then(|c| c.identity_token.as_ref());
        let mut response = if let Some(token) = refresh_token {
            // A refresh token is exchanged with a form POST (OAuth2), as the docker CLI does.
            self.agent
                .post(&realm)
                .send_form([
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                    ("service", service.as_deref().unwrap_or_default()),
                    ("scope", scope.as_str()),
                    ("client_id", "kiln"),
                ])
                .map_err(unreachable)?
        } else {
            let mut request = self.agent.get(&realm).query_pairs(query);
            if let Some(basic) = &basic {
                request = request.header("Authorization", basic);
            }
            request.call().map_err(unreachable)?
        };
        if !response.status().is_success() {
            return Err(RegistryError::Unauthorized { registry, status: response.status().as_u16() });
        }
        let text = response.body_mut().read_to_string().map_err(unreachable)?;
        let body: serde_json::Value = serde_json::from_str(&text).map_err(|e| RegistryError::Status {
            registry: registry.clone(),
            status: 200,
            what: "a token".to_owned(),
            body: e.to_string(),
        })?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(serde_json::Value::as_str)
            .map(|token| format!("Bearer {token}"))
            .ok_or(RegistryError::Unauthorized { registry, status: 401 })
    }
}

fn parse(reference: &str) -> Result<ImageRef, RegistryError> {
    ImageRef::parse(reference).map_err(|_| RegistryError::Reference(reference.to_owned()))
}

/// One `name="value"` of a `WWW-Authenticate` challenge.
fn challenge_param(params: &str, name: &str) -> Option<String> {
    let mut rest = params;
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim();
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(',').unwrap_or((after, "")),
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(value.to_owned());
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_challenges() {
        let challenge = r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull""#;
        assert_eq!(challenge_param(challenge, "realm").as_deref(), Some("https://auth.docker.io/token"));
        assert_eq!(challenge_param(challenge, "service").as_deref(), Some("registry.docker.io"));
        assert_eq!(challenge_param(challenge, "scope").as_deref(), Some("repository:library/python:pull"));
        assert_eq!(challenge_param(challenge, "error"), None);
    }

    #[test]
    fn loopback_registries_speak_plain_http() {
        let client = Client::new(vec!["registry.internal:5000".to_owned()]);
        let url = |text: &str| client.url(&ImageRef::parse(text).expect("reference"), "manifests/x");
        assert_eq!(url("127.0.0.1:5000/a/b:1"), "http://127.0.0.1:5000/v2/a/b/manifests/x");
        assert_eq!(url("localhost/b"), "http://localhost/v2/b/manifests/x");
        assert_eq!(url("registry.internal:5000/b"), "http://registry.internal:5000/v2/b/manifests/x");
        assert_eq!(
            url("registry.example.com/shop/api"),
            "https://registry.example.com/v2/shop/api/manifests/x"
        );
        assert_eq!(url("python:3.11"), "https://registry-1.docker.io/v2/library/python/manifests/x");
    }
}
