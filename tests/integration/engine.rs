//! Helpers for tests that need a real Docker engine: finding it (or skipping loudly),
//! the docker CLI, and cleanup by repository. The engines and registries themselves come
//! from `kiln_testkit`.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

pub(crate) use kiln_testkit::{BUSYBOX, Registry, SecondEngine};

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
            kiln_testkit::ensure_busybox();
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

/// Shared access to the engine (see `ENGINE_LOCK`), or `None` (the test then skips)
/// without an engine.
pub(crate) fn engine_test() -> Option<std::sync::RwLockReadGuard<'static, ()>> {
    available().then(|| ENGINE_LOCK.read().unwrap_or_else(std::sync::PoisonError::into_inner))
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

/// Runs `program` with `args` in an image (no network, never pulling) and returns its
/// output.
pub(crate) fn run_in_image(reference: &str, program: &str, args: &[&str]) -> String {
    let mut all =
        vec!["run", "--rm", "--network", "none", "--pull", "never", "--entrypoint", program, reference];
    all.extend_from_slice(args);
    docker(&all)
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
        let output = crate::harness::kiln_command()
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
        // before them, so removal goes round until nothing is left or nothing moves. The
        // children include the untagged images a failed classic build keeps of its steps
        // (as `docker build` does), which name no repository.
        let mut left = usize::MAX;
        loop {
            let (_, listing) = docker_try(&["images", "--format", "{{.ID}} {{.Repository}}"]);
            let ours: Vec<&str> = listing
                .lines()
                .filter_map(|line| line.split_once(' '))
                .filter(|(_, repository)| self.repositories.iter().any(|r| r == repository))
                .map(|(id, _)| id)
                .collect();
            let mut ids = with_descendants(&ours);
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() || ids.len() >= left {
                break;
            }
            left = ids.len();
            for id in ids {
                let _ = docker_try(&["rmi", "-f", &id]);
            }
        }
    }
}

/// `roots` (short image ids) and every image built on them, by their short ids.
fn with_descendants(roots: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = roots.iter().map(|id| (*id).to_owned()).collect();
    if found.is_empty() {
        return found;
    }
    let (_, all) = docker_try(&["images", "-a", "-q", "--no-trunc"]);
    let all: Vec<&str> = all.lines().collect();
    if all.is_empty() {
        return found;
    }
    let mut args = vec!["image", "inspect", "--format", "{{.Id}} {{.Parent}}"];
    args.extend(&all);
    let (_, parents) = docker_try(&args);
    let short = |id: &str| id.trim_start_matches("sha256:").chars().take(12).collect::<String>();
    let edges: Vec<(String, String)> = parents
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, parent)| !parent.is_empty())
        .map(|(id, parent)| (short(id), short(parent)))
        .collect();
    let mut index = 0;
    while index < found.len() {
        let parent = found[index].clone();
        for (child, _) in edges.iter().filter(|(_, p)| *p == parent) {
            if !found.contains(child) {
                found.push(child.clone());
            }
        }
        index += 1;
    }
    found
}

/// The dangling images on the engine (untagged, no child): what `sweep_dangling` leaves
/// alone when taken before the run.
pub(crate) fn dangling_images() -> Vec<String> {
    let (_, listing) = docker_try(&["images", "--filter", "dangling=true", "--format", "{{.ID}}"]);
    listing.lines().map(str::to_owned).collect()
}

/// Removes the dangling images the run made. The classic builder keeps the images of a
/// multi-stage build's other stages as its layer cache, untagged (as `docker build`
/// does), and a test that builds with it leaves them. Only images that did not exist
/// before the run and that come from a build (they have a parent, or kiln's labels) go.
pub(crate) fn sweep_dangling(before: &[String]) {
    for id in dangling_images().iter().filter(|id| !before.contains(id)) {
        let (ok, described) = docker_try(&[
            "image",
            "inspect",
            "--format",
            "{{.Parent}} {{index .Config.Labels \"dev.kiln.project\"}}",
            id,
        ]);
        if ok && !described.trim().is_empty() {
            let _ = docker_try(&["rmi", id]);
        }
    }
}

/// Builds the Dockerfile of `dir` as `docker build` does (its ignore file applied by the
/// client: `Dockerfile.dockerignore`, else `.dockerignore`), with the classic builder
/// or BuildKit, through the engine's API (the docker CLI here has no BuildKit plugin),
/// tagged `tag`. Steps run with network `none`.
pub(crate) fn build_dockerfile(
    dir: &Path,
    builder: kiln_engine::Builder,
    tag: &str,
) -> Result<String, String> {
    let ignore = std::fs::read_to_string(dir.join("Dockerfile.dockerignore"))
        .or_else(|_| std::fs::read_to_string(dir.join(".dockerignore")))
        .unwrap_or_default();
    let context = kiln_context::Context::new(dir, &ignore).map_err(|e| e.to_string())?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let engine = kiln_engine::Engine::connect(None).await.map_err(|e| e.to_string())?;
        let spec = kiln_engine::BuildSpec {
            dockerfile: "Dockerfile".to_owned(),
            builder,
            build_args: std::collections::HashMap::new(),
            labels: std::collections::HashMap::new(),
            platform: None,
            network: Some("none".to_owned()),
            target: None,
            pull: false,
            no_cache: false,
            cache_from: Vec::new(),
            session: format!("kiln-it-{}-{}", std::process::id(), tag.replace(['/', ':'], "-")),
            tag: Some(tag.to_owned()),
            secrets: Vec::new(),
            ssh: false,
        };
        let stream = context.tar_stream("", Vec::new());
        engine.build(&spec, stream, &mut |_| {}).await.map_err(|e| e.message)
    })
}

/// Images removed when the guard goes, however the test ends.
pub(crate) struct Removed(pub(crate) Vec<String>);

impl Drop for Removed {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = docker_try(&["rmi", image]);
        }
    }
}
