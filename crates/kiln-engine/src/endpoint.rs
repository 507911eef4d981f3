//! Which Docker engine to talk to, found as the docker CLI finds it: `--host`, else
//! `DOCKER_HOST`, else the current docker context (`DOCKER_CONTEXT`, or `currentContext`
//! in `~/.docker/config.json`), else `/var/run/docker.sock`.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where the endpoint came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    DockerHost,
    Context(String),
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///path` or `tcp://host:port`.
    pub host: String,
    pub source: Source,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Flag => write!(f, "{} (from --host)", self.host),
            Source::DockerHost => write!(f, "{} (from DOCKER_HOST)", self.host),
            Source::Context(name) => write!(f, "{} (from docker context `{name}`)", self.host),
            Source::Default => write!(f, "{} (the default)", self.host),
        }
    }
}

/// Reads the environment through a function, so that tests need not touch the process.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Finds the endpoint. Errors describe a broken docker configuration.
pub fn resolve(flag: Option<&str>, env: Env<'_>) -> Result<Endpoint, String> {
    if let Some(host) = flag {
        return Ok(Endpoint { host: normalize(host), source: Source::Flag });
    }
    if let Some(host) = env("DOCKER_HOST").filter(|h| !h.is_empty()) {
        return Ok(Endpoint { host: normalize(&host), source: Source::DockerHost });
    }
    let config_dir = env("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".docker")));
    let context = env("DOCKER_CONTEXT")
        .filter(|c| !c.is_empty())
        .or_else(|| config_dir.as_deref().and_then(current_context));
    match context {
        Some(name) if name != "default" => {
            let dir = config_dir.ok_or("no docker config folder to read the context from")?;
            let host = context_host(&dir, &name)?;
            Ok(Endpoint { host: normalize(&host), source: Source::Context(name) })
        }
        _ => Ok(Endpoint { host: DEFAULT_HOST.to_owned(), source: Source::Default }),
    }
}

/// A bare path means a socket.
fn normalize(host: &str) -> String {
    if host.starts_with('/') { format!("unix://{host}") } else { host.to_owned() }
}

fn current_context(config_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("currentContext")?.as_str().filter(|c| !c.is_empty()).map(str::to_owned)
}

/// A context's metadata lives in `contexts/meta/<sha256 of its name>/meta.json`.
fn context_host(config_dir: &Path, name: &str) -> Result<String, String> {
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    let path = config_dir.join("contexts/meta").join(digest).join("meta.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("docker context `{name}` cannot be read ({}): {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("docker context `{name}` is not valid JSON: {e}"))?;
    json.pointer("/Endpoints/docker/Host")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("docker context `{name}` has no docker endpoint"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve_with(flag: Option<&str>, vars: &[(&str, &str)]) -> Result<Endpoint, String> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        resolve(flag, &|key| vars.get(key).cloned())
    }

    #[test]
    fn flag_wins_then_docker_host_then_default() {
        let e = resolve_with(Some("tcp://10.0.0.1:2375"), &[("DOCKER_HOST", "unix:///x.sock")]).unwrap();
        assert_eq!((e.host.as_str(), e.source), ("tcp://10.0.0.1:2375", Source::Flag));
        let e = resolve_with(None, &[("DOCKER_HOST", "unix:///x.sock")]).unwrap();
        assert_eq!((e.host.as_str(), e.source), ("unix:///x.sock", Source::DockerHost));
        let e = resolve_with(None, &[("HOME", "/nonexistent")]).unwrap();
        assert_eq!((e.host.as_str(), e.source), (DEFAULT_HOST, Source::Default));
    }

    #[test]
    fn reads_the_current_context() {
        let home = tempfile::tempdir().unwrap();
        let docker = home.path().join(".docker");
        let meta = docker.join("contexts/meta").join(hex::encode(Sha256::digest(b"remote")));
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(docker.join("config.json"), r#"{"currentContext": "remote"}"#).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"remote","Endpoints":{"docker":{"Host":"unix:///run/remote.sock"}}}"#,
        )
        .unwrap();
        let home_str = home.path().to_string_lossy().into_owned();
        let e = resolve_with(None, &[("HOME", &home_str)]).unwrap();
        assert_eq!(e.host, "unix:///run/remote.sock");
        assert_eq!(e.source, Source::Context("remote".into()));
        // DOCKER_CONTEXT=default goes back to the default socket.
        let e = resolve_with(None, &[("HOME", &home_str), ("DOCKER_CONTEXT", "default")]).unwrap();
        assert_eq!(e.source, Source::Default);
        // A context that does not exist is an error, not a silent fallback.
        assert!(resolve_with(None, &[("HOME", &home_str), ("DOCKER_CONTEXT", "gone")]).is_err());
    }
}
