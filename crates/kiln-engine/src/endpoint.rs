//! Which Docker engine to talk to, found as the docker CLI finds it: `--host`, else
//! `DOCKER_HOST`, else the current docker context (`DOCKER_CONTEXT`, or `currentContext`
//! in `~/.docker/config.json`), else `/var/run/docker.sock`. A `tcp://` engine is reached
//! over TLS with `DOCKER_TLS_VERIFY` (certificates in `DOCKER_CERT_PATH`, else
//! `~/.docker`), or with the TLS material a docker context stores.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where the endpoint came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    /// `kiln build --engine`, one engine of a pool.
    EngineFlag,
    DockerHost,
    Context(String),
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///path` or `tcp://host:port`.
    pub host: String,
    pub source: Source,
    /// The folder of `ca.pem`, `cert.pem` and `key.pem`, for a TLS engine.
    pub tls: Option<PathBuf>,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Flag => write!(f, "{} (from --host", self.host)?,
            Source::EngineFlag => write!(f, "{} (from --engine", self.host)?,
            Source::DockerHost => write!(f, "{} (from DOCKER_HOST", self.host)?,
            Source::Context(name) => write!(f, "{} (from docker context `{name}`", self.host)?,
            Source::Default => write!(f, "{} (the default", self.host)?,
        }
        match &self.tls {
            Some(dir) => write!(f, ", TLS with the certificates in {})", dir.display()),
            None => f.write_str(")"),
        }
    }
}

/// Reads the environment through a function, so that tests need not touch the process.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Finds the endpoint. Errors describe a broken docker configuration.
pub fn resolve(flag: Option<&str>, env: Env<'_>) -> Result<Endpoint, String> {
    let config_dir = env("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".docker")));
    // As the docker CLI: TLS for a host from the flag or DOCKER_HOST when
    // DOCKER_TLS_VERIFY is set, with DOCKER_CERT_PATH or the config folder.
    let tls_from_env = |host: &str| -> Result<Option<PathBuf>, String> {
        if !host.starts_with("tcp://") || env("DOCKER_TLS_VERIFY").is_none_or(|v| v.is_empty()) {
            return Ok(None);
        }
        env("DOCKER_CERT_PATH")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| config_dir.clone())
            .map(Some)
            .ok_or_else(|| "DOCKER_TLS_VERIFY is set, but neither DOCKER_CERT_PATH nor HOME says where the certificates are".to_owned())
    };
    if let Some(host) = flag {
        let host = normalize(host);
        return Ok(Endpoint { tls: tls_from_env(&host)?, host, source: Source::Flag });
    }
    if let Some(host) = env("DOCKER_HOST").filter(|h| !h.is_empty()) {
        let host = normalize(&host);
        return Ok(Endpoint { tls: tls_from_env(&host)?, host, source: Source::DockerHost });
    }
    let context = env("DOCKER_CONTEXT")
        .filter(|c| !c.is_empty())
        .or_else(|| config_dir.as_deref().and_then(current_context));
    match context {
        Some(name) if name != "default" => {
            let dir = config_dir.ok_or("no docker config folder to read the context from")?;
            let host = context_host(&dir, &name)?;
            // A context keeps its TLS material beside its metadata.
            let tls = dir.join("contexts/tls").join(context_digest(&name)).join("docker");
            let tls = tls.join("ca.pem").is_file().then_some(tls);
            Ok(Endpoint { host: normalize(&host), source: Source::Context(name), tls })
        }
        _ => Ok(Endpoint { host: DEFAULT_HOST.to_owned(), source: Source::Default, tls: None }),
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

/// A context's folders are named by the SHA-256 of its name.
fn context_digest(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))
}

/// A context's metadata lives in `contexts/meta/<sha256 of its name>/meta.json`.
fn context_host(config_dir: &Path, name: &str) -> Result<String, String> {
    let path = config_dir.join("contexts/meta").join(context_digest(name)).join("meta.json");
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

    #[test]
    fn tls_as_the_docker_cli_sets_it() {
        let tcp = "tcp://127.0.0.1:2376";
        let e = resolve_with(
            None,
            &[("DOCKER_HOST", tcp), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", "/certs")],
        )
        .unwrap();
        assert_eq!(e.tls.as_deref(), Some(Path::new("/certs")));
        assert!(e.to_string().ends_with("TLS with the certificates in /certs)"), "{e}");
        // Without DOCKER_CERT_PATH: the config folder, as the CLI does.
        let e = resolve_with(Some(tcp), &[("DOCKER_TLS_VERIFY", "1"), ("HOME", "/home/u")]).unwrap();
        assert_eq!(e.tls.as_deref(), Some(Path::new("/home/u/.docker")));
        // Not set, empty, or a socket: no TLS.
        assert_eq!(resolve_with(Some(tcp), &[]).unwrap().tls, None);
        assert_eq!(resolve_with(Some(tcp), &[("DOCKER_TLS_VERIFY", "")]).unwrap().tls, None);
        assert_eq!(resolve_with(Some("unix:///x.sock"), &[("DOCKER_TLS_VERIFY", "1")]).unwrap().tls, None);
    }

    #[test]
    fn a_context_brings_its_tls_material() {
        let home = tempfile::tempdir().unwrap();
        let docker = home.path().join(".docker");
        let meta = docker.join("contexts/meta").join(context_digest("ci"));
        let tls = docker.join("contexts/tls").join(context_digest("ci")).join("docker");
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::write(tls.join("ca.pem"), "").unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"ci","Endpoints":{"docker":{"Host":"tcp://docker:2376"}}}"#,
        )
        .unwrap();
        let home_str = home.path().to_string_lossy().into_owned();
        let e = resolve_with(None, &[("HOME", &home_str), ("DOCKER_CONTEXT", "ci")]).unwrap();
        assert_eq!((e.host.as_str(), e.tls), ("tcp://docker:2376", Some(tls)));
    }
}
