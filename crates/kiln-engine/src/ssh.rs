//! `ssh://[user@]host[:port]` engines, reached as the docker CLI reaches them: each
//! connection is an `ssh ... docker system dial-stdio` on the remote machine, whose
//! standard streams carry the engine's API. kiln serves a socket of its own in a
//! temporary folder and pipes each connection to such a process, so that the rest of
//! kiln talks to a unix socket as usual.
//!
//! `ssh` reads the user's ssh configuration (keys, known hosts, jump hosts);
//! `KILN_SSH_COMMAND` replaces the program and its options (`ssh -F ./ssh_config`), as
//! `GIT_SSH_COMMAND` does for git.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::net::UnixListener;
use tokio::process::Command;

/// A running tunnel; it stops when dropped.
#[derive(Debug)]
pub(crate) struct SshTunnel {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    accept: tokio::task::JoinHandle<()>,
    /// What the last `ssh` that failed said on stderr, for the error message.
    last_error: Arc<Mutex<String>>,
}

impl Drop for SshTunnel {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl SshTunnel {
    /// Starts serving the local socket for `host` (`ssh://...`).
    pub(crate) fn start(host: &str) -> Result<Self, String> {
        let (destination, port) = parse(host)?;
        let command = std::env::var("KILN_SSH_COMMAND").ok().filter(|c| !c.trim().is_empty());
        let mut words: Vec<String> =
            command.as_deref().unwrap_or("ssh").split_whitespace().map(str::to_owned).collect();
        if let Some(port) = port {
            words.extend(["-p".to_owned(), port]);
        }
        // `--` ends ssh's options: the destination is never read as one.
        words.extend(["--".to_owned(), destination]);
        words.extend(["docker", "system", "dial-stdio"].map(str::to_owned));
        let dir = tempfile::Builder::new().prefix("kiln-ssh-").tempdir().map_err(|e| e.to_string())?;
        let socket = dir.path().join("docker.sock");
        let listener =
            UnixListener::bind(&socket).map_err(|e| format!("cannot serve a local socket: {e}"))?;
        let last_error = Arc::new(Mutex::new(String::new()));
        let errors = Arc::clone(&last_error);
        let accept = tokio::spawn(async move {
            while let Ok((mut local, _)) = listener.accept().await {
                let words = words.clone();
                let errors = Arc::clone(&errors);
                tokio::spawn(async move {
                    let child = Command::new(&words[0])
                        .args(&words[1..])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .kill_on_drop(true)
                        .spawn();
                    let mut child = match child {
                        Ok(child) => child,
                        Err(e) => {
                            *errors.lock().expect("not poisoned") = format!("cannot run `{}`: {e}", words[0]);
                            return;
                        }
                    };
                    let (Some(stdin), Some(stdout), Some(mut stderr)) =
                        (child.stdin.take(), child.stdout.take(), child.stderr.take())
                    else {
                        return;
                    };
                    let mut remote = tokio::io::join(stdout, stdin);
                    let _ = tokio::io::copy_bidirectional(&mut local, &mut remote).await;
                    let mut said = String::new();
                    let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut said).await;
                    if let Ok(status) = child.wait().await
                        && !status.success()
                        && !said.trim().is_empty()
                    {
                        said.trim().clone_into(&mut errors.lock().expect("not poisoned"));
                    }
                });
            }
        });
        Ok(Self { _dir: dir, socket, accept, last_error })
    }

    /// The local socket, for `Docker::connect_with_unix`.
    pub(crate) fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// What the last failed `ssh` said, if one failed. The client sees the connection
    /// close before its `ssh` has exited and been read: wait a little for it.
    pub(crate) async fn error_of_last_connection(&self) -> Option<String> {
        for _ in 0..100 {
            let said = self.last_error.lock().expect("not poisoned").clone();
            if !said.is_empty() {
                return Some(said);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        None
    }
}

/// `ssh://user@host:port` into ssh's destination (`user@host`) and port.
fn parse(host: &str) -> Result<(String, Option<String>), String> {
    let rest = host.strip_prefix("ssh://").ok_or_else(|| format!("`{host}` is not an ssh:// address"))?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(format!("`{host}` is not `ssh://[user@]host[:port]`"));
    }
    let (user, address) = match rest.rsplit_once('@') {
        Some((user, address)) => (Some(user), address),
        None => (None, rest),
    };
    let (name, port) = match address.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => (name, Some(port.to_owned())),
        Some(_) => return Err(format!("`{host}` has a port that is not a number")),
        None => (address, None),
    };
    if name.is_empty() || name.starts_with('-') || user.is_some_and(|u| u.is_empty() || u.starts_with('-')) {
        return Err(format!("`{host}` is not `ssh://[user@]host[:port]`"));
    }
    let destination = user.map_or_else(|| name.to_owned(), |user| format!("{user}@{name}"));
    Ok((destination, port))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn addresses() {
        assert_eq!(parse("ssh://build@ci.example.com").unwrap(), ("build@ci.example.com".into(), None));
        assert_eq!(parse("ssh://127.0.0.1:2222").unwrap(), ("127.0.0.1".into(), Some("2222".into())));
        assert_eq!(parse("ssh://me@host:22/").unwrap(), ("me@host".into(), Some("22".into())));
        for bad in ["ssh://", "ssh://-oProxyCommand=x", "ssh://host:port", "ssh://@host", "ssh://host/path"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
