//! The credentials the docker CLI stores for a registry (`~/.docker/config.json`):
//! a credential helper (`credHelpers`, then `credsStore`), else an `auths` entry.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;

/// What a registry accepts as proof of who we are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The server address the credentials were stored under.
    pub server: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// An OAuth2 refresh token (`docker login` to registries that hand one out).
    pub identity_token: Option<String>,
}

/// Credentials for a registry from the docker CLI's configuration: a credential helper
/// (`credHelpers`, then `credsStore`), else an `auths` entry.
pub fn credentials_for(registry: &str) -> Option<Credentials> {
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
    let mut credentials = Credentials { server: keys[0].clone(), ..Credentials::default() };
    if let Some(token) = entry.get("identitytoken").and_then(serde_json::Value::as_str) {
        credentials.identity_token = Some(token.to_owned());
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
fn from_helper(helper: &str, server: &str) -> Option<Credentials> {
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
        Credentials { identity_token: Some(secret), server: server.to_owned(), ..Credentials::default() }
    } else {
        Credentials {
            username: Some(username),
            password: Some(secret),
            server: server.to_owned(),
            ..Credentials::default()
        }
    })
}
