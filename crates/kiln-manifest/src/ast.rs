//! The manifest as written: KDL nodes lowered into typed declarations, with a span on
//! every value, before templates are applied and variables interpolated.

use schemars::JsonSchema;
use serde::Serialize;

use crate::source::{FileId, Span, Spanned};

pub type Text = Spanned<String>;

/// A `key=value` pair (env, label, build-arg).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct KeyValue {
    pub key: Text,
    pub value: Text,
}

/// All the declarations of a project, merged from its files in include order.
#[derive(Debug, Default)]
pub struct Declarations {
    pub project: Option<Text>,
    pub registry: Option<Text>,
    pub output: Option<Text>,
    pub level: Option<Text>,
    pub syntax_directive: Option<Text>,
    pub pin_bases: Option<Text>,
    /// Warning codes the project does not want to see.
    pub allow: Vec<Text>,
    pub vars: Vec<VarDecl>,
    pub templates: Vec<ImageDecl>,
    pub images: Vec<ImageDecl>,
    pub groups: Vec<GroupDecl>,
}

#[derive(Debug, Clone)]
pub struct VarDecl {
    pub name: Text,
    pub value: Text,
}

#[derive(Debug, Clone)]
pub struct GroupDecl {
    pub name: Text,
    pub members: Vec<Text>,
}

/// An `image` or a `template` (same body).
#[derive(Debug, Clone)]
pub struct ImageDecl {
    pub name: Text,
    /// The whole node, for "declared here" labels.
    pub span: Span,
    /// The file it was declared in; its relative paths are resolved from that file.
    pub file: FileId,
    pub body: ImageBody,
}

#[derive(Debug, Clone, Default)]
pub struct ImageBody {
    pub extends: Vec<Text>,
    pub description: Option<Text>,
    pub context: Option<Text>,
    pub repository: Option<Text>,
    pub tags: Option<Vec<Text>>,
    pub build_args: Vec<KeyValue>,
    pub labels: Vec<KeyValue>,
    pub platform: Option<Text>,
    pub target: Option<Text>,
    pub pull_policy: Option<Text>,
    pub ignore: Vec<Text>,
    /// Labels an engine of the pool must offer to build the image (`needs "big"`).
    pub needs: Vec<Text>,
    /// `from` and instructions written directly in the image: its single, implicit stage.
    pub implicit: StageBody,
    pub stages: Vec<StageDecl>,
    pub variants: Vec<VariantDecl>,
}

#[derive(Debug, Clone)]
pub struct StageDecl {
    pub name: Text,
    pub span: Span,
    pub body: StageBody,
}

#[derive(Debug, Clone)]
pub struct VariantDecl {
    pub name: Text,
    pub span: Span,
    pub body: ImageBody,
}

#[derive(Debug, Clone, Default)]
pub struct StageBody {
    pub from: Option<Spanned<From>>,
    /// `from ... platform="$BUILDPLATFORM"`: the platform the stage's base is for.
    pub platform: Option<Text>,
    pub instructions: Vec<Spanned<Instruction>>,
}

impl StageBody {
    pub fn is_empty(&self) -> bool {
        self.from.is_none() && self.instructions.is_empty()
    }
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum From {
    /// An image from a registry, such as `python:3.11-slim`, or `scratch`.
    External(Text),
    /// Another stage of the same image.
    Stage(Text),
    /// Another image of the manifest: a cross-image dependency.
    Image(Text),
}

/// Where a `copy` takes its files from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CopyFrom {
    Context,
    Stage(Text),
    Image(Text),
    External(Text),
}

macro_rules! instruction_kinds {
    ($($kind:ident => $name:literal,)*) => {
        /// The instruction nodes of a stage: the one list of their names, which the
        /// lowering dispatches on and suggests from, and messages and JSON use.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum InstructionKind { $($kind,)* }

        impl InstructionKind {
            pub const ALL: &[InstructionKind] = &[$(Self::$kind,)*];

            /// The KDL node name.
            pub fn name(self) -> &'static str {
                match self { $(Self::$kind => $name,)* }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(Self::$kind),)* _ => None }
            }
        }
    };
}

instruction_kinds! {
    Workdir => "workdir",
    Copy => "copy",
    Run => "run",
    Env => "env",
    Arg => "arg",
    Label => "label",
    User => "user",
    Expose => "expose",
    Volume => "volume",
    Entrypoint => "entrypoint",
    Cmd => "cmd",
    Healthcheck => "healthcheck",
    Shell => "shell",
    StopSignal => "stopsignal",
    Apt => "apt",
    Apk => "apk",
    Pip => "pip",
    Npm => "npm",
    GoMod => "go-mod",
    CargoFetch => "cargo-fetch",
}

/// An instruction node, lowered. Serialized under its node name (`InstructionKind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Instruction {
    Workdir(Text),
    Copy(Copy),
    Run(Run),
    Env(Vec<KeyValue>),
    Arg {
        name: Text,
        default: Option<Text>,
    },
    Label(Vec<KeyValue>),
    User(User),
    Expose(Vec<Text>),
    Volume(Vec<Text>),
    Entrypoint(Vec<Text>),
    Cmd(Vec<Text>),
    Healthcheck(Option<Healthcheck>),
    Shell(Vec<Text>),
    #[serde(rename = "stopsignal")]
    StopSignal(Text),
    Apt(Packages),
    Apk(Packages),
    Pip(Pip),
    Npm(Npm),
    GoMod(Downloads),
    CargoFetch(Downloads),
}

/// Options of `go-mod` and `cargo-fetch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Downloads {
    /// `cache=#true` (level 1.2+, a stage that is not shipped): the modules or crates go
    /// to a cache mount that this node and every later `run` of the stage mount, instead
    /// of a layer (T35 `download-caches`).
    pub cache: bool,
}

impl Instruction {
    pub fn kind(&self) -> InstructionKind {
        match self {
            Self::Workdir(_) => InstructionKind::Workdir,
            Self::Copy(_) => InstructionKind::Copy,
            Self::Run(_) => InstructionKind::Run,
            Self::Env(_) => InstructionKind::Env,
            Self::Arg { .. } => InstructionKind::Arg,
            Self::Label(_) => InstructionKind::Label,
            Self::User(_) => InstructionKind::User,
            Self::Expose(_) => InstructionKind::Expose,
            Self::Volume(_) => InstructionKind::Volume,
            Self::Entrypoint(_) => InstructionKind::Entrypoint,
            Self::Cmd(_) => InstructionKind::Cmd,
            Self::Healthcheck(_) => InstructionKind::Healthcheck,
            Self::Shell(_) => InstructionKind::Shell,
            Self::StopSignal(_) => InstructionKind::StopSignal,
            Self::Apt(_) => InstructionKind::Apt,
            Self::Apk(_) => InstructionKind::Apk,
            Self::Pip(_) => InstructionKind::Pip,
            Self::Npm(_) => InstructionKind::Npm,
            Self::GoMod(_) => InstructionKind::GoMod,
            Self::CargoFetch(_) => InstructionKind::CargoFetch,
        }
    }

    /// The manifest node name, for messages.
    pub fn node_name(&self) -> &'static str {
        self.kind().name()
    }

    /// The files a package-manager node copies from the context before the sources,
    /// so that its install layer stays cached (`pip` copies its `requirements=` file).
    pub fn dependency_files(&self) -> &'static [&'static str] {
        match self {
            Self::Npm(_) => &["package.json", "package-lock.json"],
            Self::GoMod(_) => &["go.mod", "go.sum"],
            Self::CargoFetch(_) => &["Cargo.toml", "Cargo.lock"],
            _ => &[],
        }
    }

    /// What a package-manager node installs or builds that a developer's checkout holds
    /// too, built for the host (with dev dependencies, host binaries, stale bytecode):
    /// left out of the context so that a later `copy .` cannot ship it over the image's
    /// own (`ignore-package-outputs`).
    pub fn package_outputs(&self) -> &'static [&'static str] {
        match self {
            Self::Npm(_) => &["**/node_modules"],
            Self::Pip(_) => &[".venv", "**/__pycache__", "**/*.pyc"],
            Self::GoMod(_) => &["vendor"],
            Self::CargoFetch(_) => &["target"],
            _ => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Copy {
    pub sources: Vec<Text>,
    pub dest: Text,
    pub from: CopyFrom,
    pub chown: Option<Text>,
    pub chmod: Option<Text>,
    pub link: bool,
}

impl Copy {
    /// Whether it copies the whole build context (`copy "." "."`).
    pub fn copies_whole_context(&self) -> bool {
        self.from == CopyFrom::Context
            && self.sources.iter().any(|s| matches!(s.value.as_str(), "." | "./" | "*" | "./*"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Run {
    /// One entry per command; a multi-line string is split into its lines.
    pub commands: Vec<Text>,
    /// Cache mount targets.
    pub caches: Vec<Text>,
    /// Build secrets the commands read (`secret npmrc target="/root/.npmrc"`): mounted
    /// for this RUN only, never in a layer.
    pub secrets: Vec<SecretMount>,
    /// SSH agent sockets forwarded to this RUN (`ssh`, or `ssh deploy-key`).
    pub ssh: Vec<Text>,
    /// `script=#true`: the one argument is a shell script, run as one text (its lines
    /// are the script's, not commands of their own), as a Dockerfile heredoc runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub script: bool,
    /// `exec=#true`: the arguments are a program and its arguments, run without a shell
    /// (`RUN ["program", "arg"]`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exec: bool,
}

/// A secret a `run` reads, provided at build time (`kiln build --secret id=...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct SecretMount {
    pub id: Text,
    /// Where the commands find it [default: `/run/secrets/<id>`].
    pub target: Option<Text>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct User {
    pub name: Text,
    pub uid: Option<Spanned<u32>>,
    pub gid: Option<Spanned<u32>>,
}

impl User {
    /// Whether the spec names root, by name or number, whatever its group (`root`, `0`,
    /// `0:0`).
    pub fn names_root(&self) -> bool {
        let name = self.name.value.split(':').next().unwrap_or_default();
        name == "root" || name.parse::<u32>() == Ok(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Healthcheck {
    pub command: Vec<Text>,
    pub interval: Option<Text>,
    pub timeout: Option<Text>,
    pub start_period: Option<Text>,
    pub retries: Option<Spanned<u32>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Pip {
    pub packages: Vec<Text>,
    pub requirements: Option<Text>,
    pub user: bool,
    /// A virtual environment to create (if missing) and install into; the stage's
    /// `PATH` then starts with its `bin`.
    pub venv: Option<Text>,
    /// With `builder=#true` (and a venv): installs in a builder stage of its own and
    /// copies only the venv into this stage (T34, `venv-builder`).
    pub builder: bool,
    /// `--no-compile`: no `.pyc` files in the layer.
    pub no_compile: bool,
    pub index_url: Option<Text>,
    pub extra_index_url: Option<Text>,
    /// A build secret that holds the index URL (with its credentials):
    /// `--index-url "$(cat /run/secrets/<id>)"`, never in a layer or the Dockerfile.
    pub index_url_secret: Option<Text>,
    pub require_hashes: bool,
    /// Set by kiln on a venv builder's install (T34): it also lists the system packages
    /// that its compiled modules link, in `<venv>/.kiln-system-packages`, for the stage
    /// that copies the venv.
    pub lists_linked_packages: bool,
    /// Set by kiln on a venv builder's install (T34): pip leaves the venv afterwards,
    /// unless something in it requires pip, or the node or its requirements name it.
    pub drops_pip: bool,
}

/// The packages of an `apt` or `apk` node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Packages {
    pub names: Vec<Text>,
    /// With `build-only=#true`: how many of the instructions that follow (the node's
    /// block) run while the packages are installed. They are removed in the same layer.
    pub build_only_for: Option<usize>,
    /// `build-only=#false`: every package stays in the image, build tools included (no
    /// `build-tools-split`, no `build-tools-in-image` warning).
    pub keep: bool,
    /// Set by kiln in a stage that copies a venv from its builder stage (T34): the node
    /// also installs the system packages that the venv's compiled modules link, which
    /// the builder listed.
    pub linked_by: Option<LinkedBy>,
}

/// A venv or `node_modules` built in a builder stage, whose list of linked packages a
/// stage installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct LinkedBy {
    pub builder: String,
    /// The venv or `node_modules` folder (absolute) that holds the list.
    pub folder: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Npm {
    /// `--omit=dev`.
    pub production: bool,
    /// More `--omit=` kinds: `dev`, `optional`, `peer`.
    pub omit: Vec<Text>,
    pub registry: Option<Text>,
    /// A build secret that holds an `.npmrc` (registry tokens): `npm ci --userconfig`
    /// reads it from the secret's mount.
    pub npmrc_secret: Option<Text>,
    /// With `builder=#true`: installs in a builder stage of its own and copies only
    /// `node_modules` into this stage (T37, `npm-builder`).
    pub builder: bool,
    /// Set by kiln on a builder's install: it also lists the system packages that its
    /// native modules link, in `node_modules/.kiln-system-packages`.
    pub lists_linked_packages: bool,
}

/// Calls `f` on every user string of an image body that variables may be interpolated
/// into, with what the string is (so that some variables can be refused in some places).
pub trait VisitStrings {
    fn visit_strings(&mut self, f: &mut dyn FnMut(&mut Text, StringRole));
}

/// What a string is used for, as far as interpolation cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringRole {
    /// A tag: may use `{git.*}`, which changes with every commit.
    Tag,
    /// A build argument value: passed at build time, not written into generated files.
    BuildArg,
    /// Anything written into a generated file, or a name.
    Generated,
}

fn visit_opt(text: &mut Option<Text>, role: StringRole, f: &mut dyn FnMut(&mut Text, StringRole)) {
    if let Some(text) = text {
        f(text, role);
    }
}

fn visit_all(texts: &mut [Text], role: StringRole, f: &mut dyn FnMut(&mut Text, StringRole)) {
    for text in texts {
        f(text, role);
    }
}

fn visit_values(pairs: &mut [KeyValue], role: StringRole, f: &mut dyn FnMut(&mut Text, StringRole)) {
    for pair in pairs {
        f(&mut pair.value, role);
    }
}

impl VisitStrings for ImageBody {
    fn visit_strings(&mut self, f: &mut dyn FnMut(&mut Text, StringRole)) {
        use StringRole::{BuildArg, Generated, Tag};
        visit_opt(&mut self.description, Generated, f);
        visit_opt(&mut self.context, Generated, f);
        visit_opt(&mut self.repository, Generated, f);
        if let Some(tags) = &mut self.tags {
            visit_all(tags, Tag, f);
        }
        visit_values(&mut self.build_args, BuildArg, f);
        visit_values(&mut self.labels, Generated, f);
        visit_opt(&mut self.platform, Generated, f);
        visit_opt(&mut self.pull_policy, Generated, f);
        visit_all(&mut self.ignore, Generated, f);
        visit_all(&mut self.needs, Generated, f);
        self.implicit.visit_strings(f);
        for stage in &mut self.stages {
            stage.body.visit_strings(f);
        }
        for variant in &mut self.variants {
            variant.body.visit_strings(f);
        }
    }
}

impl VisitStrings for StageBody {
    fn visit_strings(&mut self, f: &mut dyn FnMut(&mut Text, StringRole)) {
        if let Some(Spanned { value: From::External(text), .. }) = &mut self.from {
            f(text, StringRole::Generated);
        }
        visit_opt(&mut self.platform, StringRole::Generated, f);
        for instruction in &mut self.instructions {
            instruction.value.visit_strings(f);
        }
    }
}

impl VisitStrings for Instruction {
    fn visit_strings(&mut self, f: &mut dyn FnMut(&mut Text, StringRole)) {
        use StringRole::Generated;
        match self {
            Self::Workdir(text) | Self::StopSignal(text) => f(text, Generated),
            Self::Copy(copy) => {
                visit_all(&mut copy.sources, Generated, f);
                f(&mut copy.dest, Generated);
                if let CopyFrom::External(text) = &mut copy.from {
                    f(text, Generated);
                }
                visit_opt(&mut copy.chown, Generated, f);
                visit_opt(&mut copy.chmod, Generated, f);
            }
            Self::Run(run) => {
                visit_all(&mut run.commands, Generated, f);
                visit_all(&mut run.caches, Generated, f);
                for secret in &mut run.secrets {
                    f(&mut secret.id, Generated);
                    visit_opt(&mut secret.target, Generated, f);
                }
                visit_all(&mut run.ssh, Generated, f);
            }
            Self::Env(pairs) | Self::Label(pairs) => visit_values(pairs, Generated, f),
            Self::Arg { default, .. } => visit_opt(default, Generated, f),
            Self::User(user) => f(&mut user.name, Generated),
            Self::Expose(texts)
            | Self::Volume(texts)
            | Self::Entrypoint(texts)
            | Self::Cmd(texts)
            | Self::Shell(texts) => visit_all(texts, Generated, f),
            Self::Apt(packages) | Self::Apk(packages) => visit_all(&mut packages.names, Generated, f),
            Self::Healthcheck(Some(check)) => {
                visit_all(&mut check.command, Generated, f);
                visit_opt(&mut check.interval, Generated, f);
                visit_opt(&mut check.timeout, Generated, f);
                visit_opt(&mut check.start_period, Generated, f);
            }
            Self::Pip(pip) => {
                visit_all(&mut pip.packages, Generated, f);
                visit_opt(&mut pip.requirements, Generated, f);
                visit_opt(&mut pip.venv, Generated, f);
                visit_opt(&mut pip.index_url, Generated, f);
                visit_opt(&mut pip.extra_index_url, Generated, f);
                visit_opt(&mut pip.index_url_secret, Generated, f);
            }
            Self::Npm(npm) => {
                visit_all(&mut npm.omit, Generated, f);
                visit_opt(&mut npm.registry, Generated, f);
                visit_opt(&mut npm.npmrc_secret, Generated, f);
            }
            Self::Healthcheck(None) | Self::GoMod(_) | Self::CargoFetch(_) => {}
        }
    }
}
