//! Helpers for tests that need a real Docker engine: finding it (or skipping loudly),
//! the local base image, the docker CLI, and cleanup by label.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// The local base image every build test starts from: a root filesystem holding the
/// static busybox, imported with `docker import` (nothing is pulled).
pub(crate) const BUSYBOX: &str = "kiln-test/busybox:1";

/// Engine tests share the engine; the few that must see it alone (they count its
/// containers) take this lock exclusively, the others shared.
pub(crate) static ENGINE_LOCK: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Whether an engine answers. Without one, tests skip with a loud message, unless
/// `KILN_REQUIRE_DOCKER=1`, which makes them fail (CI sets it).
pub(crate) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    let available = *AVAILABLE.get_or_init(|| {
        let ok = Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            ensure_busybox();
        }
        ok
    });
    if !available {
        assert!(
            std::env::var("KILN_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "KILN_REQUIRE_DOCKER=1 but no Docker engine answers (is dockerd running?)"
        );
        eprintln!(
            "\n!!! SKIPPED: no Docker engine answers; set KILN_REQUIRE_DOCKER=1 to make this a failure !!!\n"
        );
    }
    available
}

/// Runs the docker CLI; panics with its output when it fails.
pub(crate) fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("run docker");
    assert!(
        output.status.success(),
        "docker {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the docker CLI and returns whether it succeeded, and its output.
pub(crate) fn docker_try(args: &[&str]) -> (bool, String) {
    let output = Command::new("docker").args(args).output().expect("run docker");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
    )
}

/// `docker build` with the classic builder, in `dir`. Other tests remove images all the
/// time, and the classic builder fails when one disappears during its cache probe; kiln
/// builds again in that case (see `kiln_engine::lost_an_image`), and so does this.
pub(crate) fn docker_build_classic(dir: &Path, args: &[&str]) -> std::process::Output {
    let build = || {
        Command::new("docker")
            .arg("build")
            .args(args)
            .env("DOCKER_BUILDKIT", "0")
            .current_dir(dir)
            .output()
            .expect("docker build")
    };
    let mut output = build();
    for _ in 1..3 {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() || !stderr.lines().any(kiln_engine::lost_an_image) {
            break;
        }
        output = build();
    }
    output
}

/// Runs an image's default command (no network, never pulling) and returns its output.
pub(crate) fn run_image(reference: &str) -> String {
    docker(&["run", "--rm", "--network", "none", "--pull", "never", reference])
}

/// The ID a reference points at, if any. Any failure other than "no such image" is the
/// test's failure, not an answer.
pub(crate) fn image_id(reference: &str) -> Option<String> {
    let (ok, out) = docker_try(&["image", "inspect", "--format", "{{.Id}}", reference]);
    if !ok {
        assert!(out.contains("No such image"), "docker image inspect {reference} failed: {out}");
    }
    ok.then(|| out.trim().to_owned())
}

fn ensure_busybox() {
    if image_id(BUSYBOX).is_some() {
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

/// Removes, when dropped, every image in the repositories of a test's manifest (kiln's
/// builds, content tags, pins and all), and any extra references the test names.
pub(crate) struct Cleanup {
    repositories: Vec<String>,
    extra: Vec<String>,
}

impl Cleanup {
    /// The repositories come from `kiln plan` on the manifest, read now (a test may
    /// change its manifest later).
    pub(crate) fn new(manifest: &Path) -> Self {
        let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["plan", "--json", "-f"])
            .arg(manifest)
            .output()
            .expect("run kiln plan");
        let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("kiln plan of {}: {e}: {}", manifest.display(), String::from_utf8_lossy(&output.stderr))
        });
        let repositories = plan["images"]
            .as_array()
            .expect("images")
            .iter()
            .filter_map(|image| {
                image["reference"].as_str()?.rsplit_once(':').map(|(repo, _)| repo.to_owned())
            })
            .collect();
        Self { repositories, extra: Vec::new() }
    }

    pub(crate) fn also(&mut self, reference: &str) {
        self.extra.push(reference.to_owned());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for reference in &self.extra {
            let _ = docker_try(&["rmi", "-f", reference]);
        }
        // The classic builder's images have parents: an image with children cannot go
        // before them, so removal goes round until nothing is left or nothing moves.
        let mut left = usize::MAX;
        loop {
            let (_, listing) = docker_try(&["images", "--format", "{{.ID}} {{.Repository}}"]);
            let mut ids: Vec<&str> = listing
                .lines()
                .filter_map(|line| line.split_once(' '))
                .filter(|(_, repository)| self.repositories.iter().any(|r| r == repository))
                .map(|(id, _)| id)
                .collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() || ids.len() >= left {
                break;
            }
            left = ids.len();
            for id in ids {
                let _ = docker_try(&["rmi", "-f", id]);
            }
        }
    }
}

/// A real registry (Debian's `docker-registry`, Distribution 2.8) on a free loopback
/// port, with its storage in a temporary folder; stopped when dropped.
pub(crate) struct Registry {
    child: std::process::Child,
    pub(crate) address: String,
    _storage: tempfile::TempDir,
}

impl Registry {
    pub(crate) fn start() -> Self {
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

/// A second Docker engine of this test's own (see `../shared/docs/ENVIRONMENT.md`): its
/// own socket, data root, exec root and pid file in a temporary folder, no network, and
/// the `vfs` storage driver (no mounts left behind if it is killed). Stopped and removed
/// when dropped.
pub(crate) struct SecondEngine {
    root: tempfile::TempDir,
    child: Option<std::process::Child>,
    /// `unix:///…/docker.sock`, for `--host` and `DOCKER_HOST`.
    pub(crate) host: String,
}

impl SecondEngine {
    pub(crate) fn start() -> Self {
        let root = tempfile::Builder::new().prefix("kiln-engine-").tempdir().expect("temp dir");
        let host = format!("unix://{}", root.path().join("docker.sock").display());
        let mut engine = Self { root, child: None, host };
        engine.run();
        // The test base image, moved over as is (same ID).
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("docker save {BUSYBOX} | docker -H '{}' load -q", engine.host))
            .status()
            .expect("docker save | docker load");
        assert!(status.success(), "could not load the test base image into the second engine");
        engine
    }

    fn run(&mut self) {
        let root = self.root.path();
        let log = std::fs::File::create(root.join("dockerd.log")).expect("log file");
        let child = Command::new("dockerd")
            .arg("-H")
            .arg(&self.host)
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .args(["--iptables=false", "--bridge=none", "--storage-driver", "vfs"])
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
    pub(crate) fn docker_try(&self, args: &[&str]) -> (bool, String) {
        let output =
            Command::new("docker").arg("-H").arg(&self.host).args(args).output().expect("run docker");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
        )
    }

    /// Kills the engine at once (`kill -9`), as a crash would.
    pub(crate) fn kill(&mut self) {
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
    pub(crate) fn restart(&mut self) {
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
