//! Real engines and registries for kiln's integration tests and benchmarks (never
//! mocks): the local base image every build starts from, a registry on loopback, and a
//! second Docker engine of the caller's own (see `../shared/docs/ENVIRONMENT.md` of the
//! workplace: the facts these rely on were verified there).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The local base image builds start from: a root filesystem holding the static
/// busybox, imported with `docker import` (nothing is pulled).
pub const BUSYBOX: &str = "kiln-test/busybox:1";

/// Imports [`BUSYBOX`] into the engine the docker CLI reaches, unless it is there.
pub fn ensure_busybox() {
    let present = Command::new("docker").args(["image", "inspect", BUSYBOX]).output();
    if present.is_ok_and(|o| o.status.success()) {
        return;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("a static busybox (Debian's busybox-static) to make the test base image");
    let root = tempfile::tempdir().expect("temp dir");
    for dir in ["bin", "tmp", "etc", "home", "root"] {
        std::fs::create_dir_all(root.path().join(dir)).expect("mkdir");
    }
    // Enough of /etc for `adduser` and `id`.
    std::fs::write(root.path().join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    std::fs::write(root.path().join("etc/group"), "root:x:0:\n").expect("group");
    std::fs::copy(busybox, root.path().join("bin/busybox")).expect("copy busybox");
    // Every applet this busybox has (Debian's busybox-static has no adduser, for one).
    let list = Command::new(busybox).arg("--list").output().expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", root.path().join("bin").join(applet)).expect("symlink");
    }
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("tar -C '{}' -c . | docker import - {BUSYBOX}", root.path().display()))
        .status()
        .expect("docker import");
    assert!(status.success(), "could not import the test base image");
}

/// A real registry (Debian's `docker-registry`, Distribution 2.8) on a free loopback
/// port, with its storage in a temporary folder; stopped when dropped.
pub struct Registry {
    child: std::process::Child,
    pub address: String,
    _storage: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Self {
        let storage = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("address")
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{ level: error }}\nstorage: {{ filesystem: {{ rootdirectory: {} }} }}\nhttp: {{ addr: {address} }}\n",
                storage.path().join("data").display()
            ),
        )
        .expect("registry config");
        let child = Command::new("docker-registry")
            .args(["serve"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start docker-registry (Debian's docker-registry package)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(std::time::Instant::now() < deadline, "the registry did not start on {address}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Self { child, address, _storage: storage }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A second Docker engine of the caller's own (see `../shared/docs/ENVIRONMENT.md`): its
/// own socket, data root, exec root and pid file in a temporary folder, no network, and
/// the `vfs` storage driver (no mounts left behind if it is killed). Stopped and removed
/// when dropped.
pub struct SecondEngine {
    root: tempfile::TempDir,
    child: Option<std::process::Child>,
    /// `unix:///…/docker.sock` (or `tcp://127.0.0.1:PORT` over TLS), for `--host` and
    /// `DOCKER_HOST`.
    pub host: String,
    /// For a TLS engine: the client's `ca.pem`, `cert.pem` and `key.pem`, for
    /// `DOCKER_CERT_PATH`.
    pub tls: Option<PathBuf>,
    /// `vfs` for the tests (a killed engine leaves no mount); `overlay2`, as a real
    /// engine runs, for benchmarks.
    driver: &'static str,
}

impl SecondEngine {
    /// An engine with the test base image, moved over as is (same ID).
    pub fn start() -> Self {
        Self::start_with_driver("vfs")
    }

    /// The same, on the `overlay2` storage driver, as engines usually run: for
    /// benchmarks, which stop their engines cleanly.
    pub fn start_overlay() -> Self {
        Self::start_with_driver("overlay2")
    }

    fn start_with_driver(driver: &'static str) -> Self {
        let engine = Self::empty(driver);
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("docker save {BUSYBOX} | docker -H '{}' load -q", engine.host))
            .status()
            .expect("docker save | docker load");
        assert!(status.success(), "could not load the test base image into the second engine");
        engine
    }

    /// An engine with no image at all.
    pub fn start_empty() -> Self {
        Self::empty("vfs")
    }

    fn empty(driver: &'static str) -> Self {
        let root = tempfile::Builder::new().prefix("kiln-engine-").tempdir().expect("temp dir");
        let host = format!("unix://{}", root.path().join("docker.sock").display());
        let mut engine = Self { root, child: None, host, tls: None, driver };
        engine.run();
        engine
    }

    /// An engine on a loopback TCP port that only talks TLS and wants a client
    /// certificate, all signed by a CA made for it; with the test base image.
    pub fn start_tls() -> Self {
        let root = tempfile::Builder::new().prefix("kiln-engine-").tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("address")
            .port();
        let tls = root.path().join("client");
        make_certificates(root.path(), &tls);
        let host = format!("tcp://127.0.0.1:{port}");
        let mut engine = Self { root, child: None, host, tls: Some(tls), driver: "vfs" };
        engine.run();
        let load = format!("docker save {BUSYBOX} | docker {} load -q", engine.cli_args().join(" "));
        let status = Command::new("sh").arg("-c").arg(load).status().expect("docker save | docker load");
        assert!(status.success(), "could not load the test base image into the TLS engine");
        engine
    }

    /// The docker CLI's flags that reach this engine.
    fn cli_args(&self) -> Vec<String> {
        let mut args = vec!["-H".to_owned(), self.host.clone()];
        if let Some(dir) = &self.tls {
            args.push("--tlsverify".to_owned());
            for (flag, file) in
                [("--tlscacert", "ca.pem"), ("--tlscert", "cert.pem"), ("--tlskey", "key.pem")]
            {
                args.push(format!("{flag}={}", dir.join(file).display()));
            }
        }
        args
    }

    fn run(&mut self) {
        let root = self.root.path();
        let log = std::fs::File::create(root.join("dockerd.log")).expect("log file");
        let mut dockerd = Command::new("dockerd");
        if self.tls.is_some() {
            let server = root.join("server");
            dockerd.arg("--tlsverify");
            for (flag, file) in
                [("--tlscacert", "ca.pem"), ("--tlscert", "cert.pem"), ("--tlskey", "key.pem")]
            {
                dockerd.arg(format!("{flag}={}", server.join(file).display()));
            }
        }
        let child = dockerd
            .arg("-H")
            .arg(&self.host)
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .args(["--iptables=false", "--bridge=none", "--storage-driver", self.driver])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start a second dockerd");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
        while !self.docker_try(&["version"]).0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the second engine did not start; its log:\n{}",
                std::fs::read_to_string(root.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// The docker CLI on this engine.
    pub fn docker_try(&self, args: &[&str]) -> (bool, String) {
        let output = Command::new("docker").args(self.cli_args()).args(args).output().expect("run docker");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
        )
    }

    /// Kills the engine at once (`kill -9`), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Its containerd notices and stops; an engine started before that would wait
        // for the old one and time out.
        let pid = std::fs::read_to_string(self.root.path().join("exec/containerd/containerd.pid"))
            .unwrap_or_default();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !pid.trim().is_empty()
            && Path::new("/proc").join(pid.trim()).exists()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Starts it again, with the same folders.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        // A clean stop, so that the engine stops its containerd too.
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // The engine mounts its data root on itself; a killed one leaves the mount.
        let _ = Command::new("umount").arg(self.root.path().join("data")).output();
    }
}

/// An `sshd` of the caller's own on a free loopback port, letting in the user running
/// the tests with a key made for it; `ssh_command` is the `ssh` (with its own config: that
/// key, no known-hosts file) that reaches it. Stopped when dropped.
pub struct SshServer {
    dir: tempfile::TempDir,
    child: std::process::Child,
    /// `ssh://user@127.0.0.1:PORT`.
    pub host: String,
    /// For `KILN_SSH_COMMAND`.
    pub ssh_command: String,
}

impl SshServer {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("kiln-sshd-").tempdir().expect("temp dir");
        let path = |name: &str| dir.path().join(name).display().to_string();
        for key in ["host_key", "client_key", "stranger_key"] {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f", &path(key)])
                .status()
                .expect("ssh-keygen");
            assert!(status.success(), "ssh-keygen failed");
        }
        std::fs::copy(path("client_key.pub"), path("authorized_keys")).expect("authorized_keys");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("address")
            .port();
        std::fs::write(
            path("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPrintMotd no\n",
                path("host_key"),
                path("sshd.pid"),
                path("authorized_keys")
            ),
        )
        .expect("sshd_config");
        let client = |key: &str| {
            format!(
                "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n",
                path(key)
            )
        };
        std::fs::write(path("ssh_config"), client("client_key")).expect("ssh_config");
        std::fs::write(path("stranger_config"), client("stranger_key")).expect("stranger_config");
        // sshd wants its privilege separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        // sshd re-executes itself, so it must be started by its absolute path.
        let sshd = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("sshd"))
            .find(|path| path.is_file())
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/sshd"));
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f", &path("sshd_config")])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(path("sshd.log")).expect("log"))
            .spawn()
            .expect("start sshd (Debian's openssh-server)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "sshd did not start: {}",
                std::fs::read_to_string(path("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let user = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".to_owned());
        Self {
            host: format!("ssh://{user}@127.0.0.1:{port}"),
            ssh_command: format!("ssh -F {}", path("ssh_config")),
            child,
            dir,
        }
    }

    /// An `ssh` whose key the server does not know.
    pub fn stranger_command(&self) -> String {
        format!("ssh -F {}", self.dir.path().join("stranger_config").display())
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA, a server certificate for 127.0.0.1 in `root/server`, and a client certificate in
/// `client` (named as `DOCKER_CERT_PATH` wants them), made with `openssl`.
fn make_certificates(root: &Path, client: &Path) {
    let server = root.join("server");
    std::fs::create_dir_all(&server).expect("server folder");
    std::fs::create_dir_all(client).expect("client folder");
    std::fs::write(
        root.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .expect("server.ext");
    std::fs::write(root.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("client.ext");
    let ca = root.join("ca");
    make_ca(&ca);
    let sign = |key: &Path, cert: &Path, subject: &str, ext: &str| {
        openssl(&["genrsa", "-out", &s(key), "2048"]);
        let csr = key.with_extension("csr");
        openssl(&["req", "-new", "-key", &s(key), "-subj", subject, "-out", &s(&csr)]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &s(&csr),
            "-CA",
            &s(&ca.join("ca.pem")),
            "-CAkey",
            &s(&ca.join("ca-key.pem")),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &s(&root.join(ext)),
            "-out",
            &s(cert),
        ]);
    };
    sign(&server.join("key.pem"), &server.join("cert.pem"), "/CN=localhost", "server.ext");
    sign(&client.join("key.pem"), &client.join("cert.pem"), "/CN=kiln-test", "client.ext");
    for dir in [&server, &client.to_path_buf()] {
        std::fs::copy(ca.join("ca.pem"), dir.join("ca.pem")).expect("ca.pem");
    }
}

/// A certificate authority in `dir` (`ca.pem`, `ca-key.pem`).
pub fn make_ca(dir: &Path) {
    std::fs::create_dir_all(dir).expect("CA folder");
    openssl(&["genrsa", "-out", &s(&dir.join("ca-key.pem")), "2048"]);
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &s(&dir.join("ca-key.pem")),
        "-days",
        "2",
        "-subj",
        "/CN=kiln test CA",
        "-out",
        &s(&dir.join("ca.pem")),
    ]);
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

fn openssl(args: &[&str]) {
    let output = Command::new("openssl").args(args).output().expect("run openssl");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// Copies a folder and everything under it into `to` (made if missing).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// What the engine tests and benchmarks need that this machine lacks, each with how to
/// get it (Debian's packages); empty when all is there.
pub fn missing_prerequisites() -> Vec<String> {
    let engine_answers = || {
        Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    missing_from(std::env::var_os("PATH").as_deref(), engine_answers, &["/bin/busybox", "/usr/bin/busybox"])
}

fn missing_from(
    path: Option<&std::ffi::OsStr>,
    engine_answers: impl Fn() -> bool,
    busyboxes: &[&str],
) -> Vec<String> {
    let on_path = |program: &str| {
        path.as_ref().is_some_and(|path| std::env::split_paths(path).any(|dir| dir.join(program).is_file()))
    };
    let mut missing = Vec::new();
    if !on_path("docker") || !on_path("dockerd") {
        missing.push("the Docker engine and CLI: `apt-get install docker.io`".to_owned());
    } else if !engine_answers() {
        missing.push(
            "a running Docker engine: `dockerd --iptables=false --bridge=none &` (as root; `.ci/run` does it)"
                .to_owned(),
        );
    }
    if !busyboxes.iter().any(|p| Path::new(p).is_file()) {
        missing
            .push("a static busybox, for the local base image: `apt-get install busybox-static`".to_owned());
    }
    if !on_path("docker-registry") {
        missing.push("a registry to push to and pull from: `apt-get install docker-registry`".to_owned());
    }
    if !on_path("openssl") {
        missing.push("openssl, for the certificates of the TLS engine: `apt-get install openssl`".to_owned());
    }
    if !on_path("sshd") || !on_path("ssh") {
        missing.push(
            "an ssh server and client, for the ssh:// engine: `apt-get install openssh-server`".to_owned(),
        );
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::missing_from;

    #[test]
    fn says_what_to_install() {
        let nothing = missing_from(Some("/nonexistent".as_ref()), || false, &["/nonexistent/busybox"]);
        assert_eq!(
            nothing,
            [
                "the Docker engine and CLI: `apt-get install docker.io`",
                "a static busybox, for the local base image: `apt-get install busybox-static`",
                "a registry to push to and pull from: `apt-get install docker-registry`",
                "openssl, for the certificates of the TLS engine: `apt-get install openssl`",
                "an ssh server and client, for the ssh:// engine: `apt-get install openssh-server`",
            ]
        );
        let bin = tempfile::tempdir().expect("temp dir");
        for program in ["docker", "dockerd", "docker-registry", "busybox", "openssl", "ssh", "sshd"] {
            std::fs::write(bin.path().join(program), "").expect("write");
        }
        let busybox = bin.path().join("busybox");
        let stopped =
            missing_from(Some(bin.path().as_os_str()), || false, &[busybox.to_str().expect("utf-8")]);
        assert_eq!(stopped.len(), 1);
        assert!(stopped[0].starts_with("a running Docker engine"), "{stopped:?}");
        assert!(
            missing_from(Some(bin.path().as_os_str()), || true, &[busybox.to_str().expect("utf-8")])
                .is_empty()
        );
    }
}
