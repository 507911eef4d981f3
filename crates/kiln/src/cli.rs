//! The command line, as close to the flags as possible. Values with a form of their own
//! (`--set NAME=VALUE`, `--label`, `--level`, `--output`) are checked and typed here, by
//! clap's value parsers, so that a mistake is a usage error before anything runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kiln_manifest::Level;

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Compile KDL image manifests into reviewed, optimized Dockerfiles",
    long_about = "kiln reads `kiln.kdl` (and the files it includes), checks it, builds the dependency \
graph of images and stages, and writes one optimized Dockerfile and .dockerignore per image.",
    after_help = "Exit status: 0 success, 1 a check or build failed, 2 invalid manifest or usage, 130 interrupted.\n\
Docs: README.md (manifest language, commands) and docs/transformations.md."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The root manifest [default: `kiln.kdl` in the current folder or its parents]
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Override a manifest variable (repeatable); also `KILN_VAR_NAME=VALUE` in the
    /// environment. `IMAGE.FIELD=VALUE` (`*` for every image) overrides an image's
    /// `args.NAME`, `tags`, `target`, `platform`, `labels.KEY` or `no-cache`, as bake's `--set`
    #[arg(long = "set", global = true, value_name = "NAME=VALUE", value_parser = key_value)]
    pub set: Vec<(String, String)>,

    /// Folder for generated files [default: the manifest's `output`, else `dockerfiles`]
    #[arg(short = 'o', long = "output", global = true, value_name = "DIR", value_parser = output_folder)]
    pub output: Option<PathBuf>,

    /// Dockerfile feature level: `classic`, `1.2` or `1.4` [default: the manifest's, else `classic`]
    #[arg(long = "level", global = true, value_name = "LEVEL", value_parser = level)]
    pub level: Option<Level>,

    /// When to color diagnostics
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Print errors only, no warnings or progress (`kiln images -q`: IDs only)
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// The Docker engine [default: DOCKER_HOST, else the docker context, else /var/run/docker.sock]
    #[arg(long = "host", global = true, value_name = "URL")]
    pub host: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and validate the manifest, printing every problem at once
    Check(CheckArgs),
    /// Write the Dockerfiles and .dockerignore files (or check that they are up to date)
    Emit(EmitArgs),
    /// Show the resolved plan: images in build order with tags, dependencies and files
    Plan(PlanArgs),
    /// Show the dependency graph of images and stages
    Graph(GraphArgs),
    /// Write the plan as a `docker-bake.json` for `docker buildx bake` (run it from the
    /// root manifest's folder, after `kiln emit`)
    Bake(BakeArgs),
    /// Build images (and what they depend on) against the Docker engine, in parallel
    Build(Box<BuildArgs>),
    /// Turn existing Dockerfiles (with their contexts and .dockerignore) into a kiln.kdl
    Import(ImportArgs),
    /// Resolve the outside images the manifest builds on into `kiln.lock`
    Lock(LockArgs),
    /// Pull the outside images the selected images build on
    Pull(PullArgs),
    /// List the images built from this manifest
    Images(ImagesArgs),
    /// Add a tag wherever another tag exists (promote `latest` to `v1.0`)
    Tag(TagArgs),
    /// Push the selected images' tags to their registry
    Push(PushArgs),
    /// Remove images built from this manifest, by name or by `name:tag`
    Rmi(RmiArgs),
    /// Remove every image built from this manifest
    Clean(RemovalArgs),
    /// Remove untagged and superseded builds of this manifest, keeping the newest
    Prune(PruneArgs),
    /// Show an image's layers, each traced to the manifest line it came from
    History(HistoryArgs),
    /// Show an image's ID, digests, tags, size, labels and input key
    Inspect(InspectArgs),
    /// Say why an image would be built again, input by input, or that it is up to date
    Explain(ExplainArgs),
    /// Print the resolved manifest (templates applied, variables interpolated) as JSON
    Manifest,
    /// Print a JSON Schema of kiln's JSON output
    Schema(SchemaArgs),
    /// Print a shell completion script: `source <(kiln completions bash)`
    Completions(CompletionsArgs),
    /// Print kiln's manual page (roff): `kiln man > kiln.1`, `man ./kiln.1`
    Man,
    /// The image and group names of the manifest, one per line (for completion scripts)
    #[command(hide = true, name = "__names")]
    Names,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell; bash and fish also complete image and group names from the manifest
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print diagnostics as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EmitArgs {
    /// Write nothing; print a diff and exit 1 if any generated file is stale or missing
    #[arg(long)]
    pub check: bool,

    /// Overwrite files that were not generated by kiln
    #[arg(long)]
    pub force: bool,

    /// Print what changed as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Images or groups to plan, with their dependencies [default: all images]
    #[arg(value_name = "IMAGE|GROUP")]
    pub targets: Vec<String>,

    /// Print the plan as JSON (schema: `kiln schema plan`)
    #[arg(long)]
    pub json: bool,

    /// Only the images whose inputs changed since this git commit (and what is built on
    /// them), with what they need
    #[arg(long, value_name = "REF")]
    pub changed_since: Option<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Images or groups to build, with their dependencies [default: the `default` group, else all images]
    #[arg(value_name = "IMAGE|GROUP")]
    pub targets: Vec<String>,

    /// How many builds run at once [default: the number of CPUs]
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,

    /// How progress is shown [default: `auto`: the live view on a terminal, `plain` otherwise]
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,

    /// Build on a pool of engines: `ADDRESS[,slots=N][,label=L]...[,tags]`, repeated, as
    /// `unix:///run/a.sock,slots=2` or `tcp://10.0.0.2:2376,slots=4,label=big`. `slots`
    /// defaults to `-j`; `tags` marks the engines that get the images' tags [default: the
    /// first]. An image that `needs` a label builds on an engine with it. Also
    /// `KILN_ENGINES`: specs separated by blanks
    #[arg(long = "engine", value_name = "SPEC", value_parser = engine_spec)]
    pub engines: Vec<EngineSpec>,

    /// A build secret for RUNs that mount it (`secret ID` in the manifest):
    /// `id=ID,src=PATH` (a file) or `id=ID,env=NAME` (a variable); repeatable. Never in a
    /// layer, a label, the plan or the log
    #[arg(long = "secret", value_name = "id=ID,src=PATH", value_parser = secret_spec)]
    pub secrets: Vec<(String, kiln_engine::SecretSource)>,

    /// Forward the ssh agent (`SSH_AUTH_SOCK`) to RUNs that mount it (`ssh` in the
    /// manifest): `--ssh default`
    #[arg(long, value_name = "default", value_parser = ssh_spec)]
    pub ssh: Option<String>,

    /// A registry (`host[:port]`) through which the pool moves images between engines:
    /// pushed once, pulled by digest [default: streamed from engine to engine, as
    /// `docker save | docker load`]
    #[arg(long, value_name = "HOST[:PORT]")]
    pub transfer_registry: Option<String>,

    /// Print the schedule (waves, critical path, estimated time) and build nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Which builder the engine uses
    #[arg(long, value_enum, default_value_t = BuilderChoice::Buildkit)]
    pub builder: BuilderChoice,

    /// Network for RUN steps: `none`, `host`, or a network name [default: the engine's]
    #[arg(long, value_name = "MODE")]
    pub network: Option<String>,

    /// Stop starting builds after the first failure
    #[arg(long)]
    pub fail_fast: bool,

    /// Pull newer versions of the outside base images first
    #[arg(long)]
    pub pull: bool,

    /// Build even images that are up to date (their content tag exists); the engine's
    /// layer cache is still used
    #[arg(long)]
    pub rebuild: bool,

    /// Build without the engine's layer cache, as `docker build --no-cache` (implies
    /// --rebuild)
    #[arg(long)]
    pub no_cache: bool,

    /// Add a label to every image (repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = key_value)]
    pub labels: Vec<(String, String)>,

    /// Build this stage instead of the manifest's `target`, in each image being built
    /// that has a stage of that name, as `docker build --target`
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,

    /// Write a report of the run: a timeline of every image per build slot, the critical
    /// path, waits, cache hits and sizes (`.html`: with a table; `.svg`: the timeline)
    #[arg(long, value_name = "FILE.html|FILE.svg", value_parser = report_path)]
    pub report: Option<std::path::PathBuf>,

    /// Load the images into the engine: what kiln always does (they are built there);
    /// accepted for `docker buildx bake --load` habits
    #[arg(long)]
    pub load: bool,

    /// Set a build argument for the images being built that declare it with `arg`,
    /// over the manifest's `build-arg` (repeatable)
    #[arg(long = "build-arg", value_name = "NAME=VALUE", value_parser = key_value)]
    pub arg_overrides: Vec<(String, String)>,

    /// Also tag the built image `NAME[:TAG]`, as `docker build -t` (one image only;
    /// repeatable)
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]", value_parser = extra_tag)]
    pub extra_tags: Vec<String>,

    /// Build for this platform (`os/arch[/variant]`), over the manifest's `platform`
    #[arg(long, value_name = "PLATFORM", value_parser = platform)]
    pub platform: Option<String>,

    /// Write the image ID to this file, as `docker build --iidfile` (one image only)
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,

    /// Write what was built as JSON to this file, per image: its ID, tags and status,
    /// with the keys `docker buildx bake --metadata-file` uses
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,

    /// Push every selected image, built or up to date, with its content tag; an image
    /// whose content tag is already in its registry is only tagged there, not pulled
    #[arg(long)]
    pub push: bool,

    /// Never ask a registry whether an image is already there
    #[arg(long)]
    pub offline: bool,

    /// Fail when `kiln.lock` does not lock exactly the outside images the manifest uses
    #[arg(long)]
    pub locked: bool,

    /// Only the images whose inputs changed since this git commit (context files,
    /// manifest files, lock entries), and what is built on them
    #[arg(long, value_name = "REF")]
    pub changed_since: Option<String>,

    /// Use the layers of each image's own `REPOSITORY:TAG` as cache (BuildKit reads it
    /// from the registry), as `docker build --cache-from`
    #[arg(long, value_name = "TAG")]
    pub cache_from: Option<String>,

    /// Export the build cache: `inline` embeds it in the images (BuildKit)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub cache_to: Option<CacheTo>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Resolve again the named outside images (as the manifest writes them), or every
    /// one when none is named; without it, only those missing from the lock are resolved
    #[arg(long, value_name = "IMAGE", num_args = 0.., default_missing_value = None)]
    pub update: Option<Vec<String>>,

    /// Write nothing; exit 1 when `kiln.lock` is not what `kiln lock` would write
    #[arg(long, conflicts_with = "update")]
    pub check: bool,

    /// Print the entries as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CacheTo {
    Inline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    /// The live view (needs a terminal on stderr)
    Tty,
    Plain,
    Json,
    /// Only failures and the summary, as `-q`
    Quiet,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BuilderChoice {
    Buildkit,
    Classic,
}

impl BuilderChoice {
    pub fn builder(self) -> kiln_engine::Builder {
        match self {
            Self::Buildkit => kiln_engine::Builder::BuildKit,
            Self::Classic => kiln_engine::Builder::Classic,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyChoice {
    Always,
    Missing,
    Never,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Images or groups whose bases to pull, with their dependencies [default: all images]
    #[arg(value_name = "IMAGE|GROUP")]
    pub targets: Vec<String>,

    /// Pull policy for every image [default: each image's `pull-policy`, else `missing`]
    #[arg(long, value_enum)]
    pub policy: Option<PolicyChoice>,

    /// Pull the manifest's own images (their tags) from their registry instead of their bases
    #[arg(long)]
    pub built: bool,

    /// How many pulls run at once
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 4)]
    pub jobs: usize,

    /// Print the results as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Images or groups to list [default: all images]
    #[arg(value_name = "IMAGE|GROUP")]
    pub targets: Vec<String>,

    /// Also list superseded builds (no longer what the image's tags point at)
    #[arg(long)]
    pub all: bool,

    /// Print the list as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The existing tag
    pub from: String,

    /// The new tag
    pub to: String,

    /// Images or groups to tag [default: all images]
    #[arg(value_name = "IMAGE|GROUP")]
    pub targets: Vec<String>,

    /// Tag into this registry and namespace instead (`host[:port]/namespace`)
    #[arg(long, value_name = "HOST/NAMESPACE")]
    pub registry: Option<String>,

    /// Print what was tagged as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Images or groups to push [default: all images]
    #[arg(value_name = "IMAGE|GROUP")]
    pub targets: Vec<String>,

    /// Push nothing unless every selected image is built with all its tags
    #[arg(long)]
    pub all_or_nothing: bool,

    /// How many pushes run at once
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 4)]
    pub jobs: usize,

    /// Print the results as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images (every build of them) or `image:tag` (that tag)
    #[arg(value_name = "IMAGE|IMAGE:TAG", required = true)]
    pub names: Vec<String>,

    #[command(flatten)]
    pub removal: RemovalArgs,
}

/// How `rmi` and `clean` remove (`clean` takes nothing else).
#[derive(Debug, Args)]
pub struct RemovalArgs {
    /// List what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Also remove images that stopped containers use
    #[arg(long)]
    pub force: bool,

    /// Print what was removed as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// How many of the newest builds of each image to keep
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub keep: usize,

    /// List what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print what was removed as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// An image of the manifest, or `image:tag`
    #[arg(value_name = "IMAGE|IMAGE:TAG")]
    pub image: String,

    /// Print the layers as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// An image of the manifest
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// The builder the build would use (an input of the key)
    #[arg(long, value_enum, default_value_t = BuilderChoice::Buildkit)]
    pub builder: BuilderChoice,

    /// Labels the build would add (inputs of the key; repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = key_value)]
    pub labels: Vec<(String, String)>,

    /// Do not ask the image's registry whether it has the image
    #[arg(long)]
    pub offline: bool,

    /// Print as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An image of the manifest, or `image:tag`
    #[arg(value_name = "IMAGE|IMAGE:TAG")]
    pub image: String,

    /// Print as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The Dockerfiles; each builds one image, with its folder as the build context
    /// [default: `Dockerfile` in the current folder]
    #[arg(value_name = "DOCKERFILE")]
    pub dockerfiles: Vec<std::path::PathBuf>,

    /// The build context, for one Dockerfile [default: the Dockerfile's folder]
    #[arg(long, value_name = "DIR")]
    pub context: Option<std::path::PathBuf>,

    /// The image's name, for one Dockerfile [default: from its folder or file name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Where to write the manifest
    #[arg(short, long, value_name = "FILE", default_value = "kiln.kdl")]
    pub output: std::path::PathBuf,

    /// Replace the output file if it exists
    #[arg(long)]
    pub force: bool,

    /// Write the manifest even where it cannot say what a Dockerfile says (each
    /// difference is reported with its line); without it, differences write nothing
    /// and exit 1
    #[arg(long)]
    pub accept_differences: bool,

    /// Print the manifest's path, its images and the notes as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BakeArgs {
    /// Write the file here (replaced atomically) instead of printing it
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Images or groups to show, with what they depend on [default: all images]
    #[arg(value_name = "IMAGE|GROUP")]
    pub targets: Vec<String>,

    /// Also show the images built on them (and what those depend on)
    #[arg(long)]
    pub dependents: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
    Json,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which document
    #[arg(value_enum)]
    pub which: SchemaKind,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    /// `kiln plan --json`
    Plan,
    /// `kiln manifest`
    Manifest,
    /// `kiln build --progress json`
    BuildEvents,
}

/// `NAME=VALUE` (`--set`, `--label`).
fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| "needs the form `NAME=VALUE`".to_owned())
}

/// `--secret id=npmrc,src=~/.npmrc` or `id=token,env=TOKEN`, as docker build takes them.
fn secret_spec(text: &str) -> Result<(String, kiln_engine::SecretSource), String> {
    let (mut id, mut source) = (None, None);
    for part in text.split(',') {
        match part.split_once('=') {
            Some(("id", value)) if !value.is_empty() => id = Some(value.to_owned()),
            Some(("src" | "source", path)) if !path.is_empty() => {
                let path = match path.strip_prefix("~/") {
                    Some(rest) => std::env::var_os("HOME")
                        .map_or_else(|| path.into(), |home| std::path::PathBuf::from(home).join(rest)),
                    None => std::path::PathBuf::from(path),
                };
                source = Some(kiln_engine::SecretSource::File(path));
            }
            Some(("env", name)) if !name.is_empty() => {
                source = Some(kiln_engine::SecretSource::Env(name.to_owned()));
            }
            Some(("type", "file" | "env")) => {}
            _ => return Err(format!("`{part}`: a secret is `id=ID,src=PATH` or `id=ID,env=NAME`")),
        }
    }
    match (id, source) {
        (Some(id), Some(source)) => Ok((id, source)),
        (None, _) => Err("a secret needs its `id=`, the id the manifest's `secret` names".to_owned()),
        (Some(id), None) => Err(format!("secret `{id}`: say where its value is, `src=PATH` or `env=NAME`")),
    }
}

fn report_path(text: &str) -> Result<std::path::PathBuf, String> {
    let path = std::path::PathBuf::from(text);
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("html" | "htm" | "svg") => Ok(path),
        _ => Err("a report is a `.html` page or an `.svg` picture".to_owned()),
    }
}

/// `--ssh default`: the agent of `SSH_AUTH_SOCK`, the one kiln can forward.
fn ssh_spec(text: &str) -> Result<String, String> {
    if text == "default" {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}`: kiln forwards the agent of SSH_AUTH_SOCK only, as `--ssh default` (load other keys into that agent with `ssh-add`)"
        ))
    }
}

/// One engine of `--engine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSpec {
    pub address: String,
    pub slots: Option<usize>,
    pub labels: Vec<String>,
    pub tags: bool,
}

pub(crate) fn engine_spec(text: &str) -> Result<EngineSpec, String> {
    let mut parts = text.split(',');
    let address = parts.next().unwrap_or_default().trim().to_owned();
    if !["unix://", "tcp://", "http://", "ssh://"].iter().any(|scheme| address.starts_with(scheme)) {
        return Err(format!(
            "`{address}` is not an engine address: use `unix:///path`, `tcp://host:port` or `ssh://[user@]host`"
        ));
    }
    let mut spec = EngineSpec { address, slots: None, labels: Vec::new(), tags: false };
    for part in parts {
        match part.split_once('=') {
            Some(("slots", n)) => match n.parse::<usize>() {
                Ok(n) if n > 0 => spec.slots = Some(n),
                _ => return Err(format!("`slots={n}`: a number of builds at once, 1 or more")),
            },
            Some(("label", label)) if !label.is_empty() => spec.labels.push(label.to_owned()),
            None if part == "tags" => spec.tags = true,
            _ => {
                return Err(format!(
                    "`{part}`: an engine takes `slots=N`, `label=NAME` (repeatable) and `tags`"
                ));
            }
        }
    }
    Ok(spec)
}

/// An image reference with a tag (none means `latest`, as for `docker build -t`).
fn extra_tag(text: &str) -> Result<String, String> {
    let parsed = kiln_reference::ImageRef::parse(text).map_err(|e| e.to_string())?;
    if parsed.digest.is_some() {
        return Err("a digest cannot be given to an image; use `NAME:TAG`".to_owned());
    }
    Ok(if parsed.tag.is_some() { text.to_owned() } else { format!("{text}:latest") })
}

/// One `os/arch[/variant]`: Engine 20.10 builds an image for one platform (several need
/// buildx's multi-platform builders).
pub(crate) fn platform(text: &str) -> Result<String, String> {
    if text.contains(',') {
        return Err("one platform per build: Engine 20.10 cannot build several into one image (that needs buildx and a multi-platform builder); build once per platform".to_owned());
    }
    let parts: Vec<&str> = text.split('/').collect();
    let valid = (2..=3).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    if valid {
        Ok(text.to_owned())
    } else {
        Err("expected `os/arch` or `os/arch/variant`, such as `linux/amd64`".to_owned())
    }
}

fn level(text: &str) -> Result<Level, String> {
    Level::parse(text).ok_or_else(|| "use one of `classic`, `1.2`, `1.4`".to_owned())
}

/// The output folder's path is written into `.dockerignore` files (when it is inside a
/// context), one pattern per line: no line break or control character.
fn output_folder(text: &str) -> Result<PathBuf, String> {
    if text.chars().any(|c| c == '\n' || kiln_manifest::hidden_in_review(c)) {
        return Err("cannot hold a line break or a control character: the path is written into `.dockerignore` files, one pattern per line".to_owned());
    }
    Ok(PathBuf::from(text))
}
