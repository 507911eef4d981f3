//! The resolved project: templates applied, variables interpolated, names and values
//! checked. This is what the graph, the emitter and the engine work from.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Serialize;

use crate::ast::{CopyFrom, From, Instruction, KeyValue, Text};
use crate::id::{ImageId, PerImage, StageId};
use crate::source::{FileId, SourceMap, Span, Spanned};

/// Which Dockerfile features the generated files may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
pub enum Level {
    /// Plain Dockerfile syntax that both the classic builder and BuildKit accept.
    #[serde(rename = "classic")]
    Classic,
    /// The BuildKit frontend built into Docker Engine 20.10 (Dockerfile syntax 1.2):
    /// adds `RUN --mount=type=cache` and `COPY --chmod`.
    #[serde(rename = "1.2")]
    V1_2,
    /// Dockerfile syntax 1.4 (Engine 23 and later, or a `syntax-directive`): adds
    /// `COPY --link` and heredocs.
    #[serde(rename = "1.4")]
    V1_4,
}

impl Level {
    pub const NAMES: &[&str] = &["classic", "1.2", "1.4"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "classic" => Some(Self::Classic),
            "1.2" => Some(Self::V1_2),
            "1.4" => Some(Self::V1_4),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::V1_2 => "1.2",
            Self::V1_4 => "1.4",
        }
    }

    pub fn cache_mounts(self) -> bool {
        self >= Self::V1_2
    }

    pub fn copy_chmod(self) -> bool {
        self >= Self::V1_2
    }

    pub fn copy_link(self) -> bool {
        self >= Self::V1_4
    }

    pub fn heredocs(self) -> bool {
        self >= Self::V1_4
    }
}

/// The variables BuildKit sets in every build (a stage's `platform=` may use them; the
/// classic builder sets none).
pub const BUILD_PLATFORM_VARIABLES: [&str; 8] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
];

/// When `kiln pull` (and `kiln build --pull`) fetch an image's outside bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Always ask the registry for a newer version.
    Always,
    /// Only when the engine does not have the image.
    #[default]
    Missing,
    /// Never: the image must be there already.
    Never,
}

impl PullPolicy {
    pub const NAMES: &[&str] = &["always", "missing", "never"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "always" => Some(Self::Always),
            "missing" => Some(Self::Missing),
            "never" => Some(Self::Never),
            _ => None,
        }
    }
}

/// The whole resolved project.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Project {
    #[serde(skip)]
    pub sources: SourceMap,
    /// The folder of the root manifest; every displayed path is relative to it.
    #[serde(skip)]
    pub root_dir: PathBuf,
    /// The root manifest file, relative to the current folder when it was found.
    pub manifest: String,
    /// Where generated files go, relative to the root manifest's folder.
    pub output: String,
    #[serde(skip)]
    pub output_dir: PathBuf,
    pub dockerfile_level: Level,
    pub syntax_directive: Option<String>,
    /// The project's name (`project`), which kiln's image labels and keys carry; unset,
    /// the root manifest's path within its git repository stands in (see
    /// `kiln_build::identity`).
    pub project: Option<String>,
    /// `pin-bases`: generated `FROM` lines name outside images by their locked digest.
    pub pin_bases: bool,
    /// `kiln.lock`, when there is one.
    #[serde(skip)]
    #[schemars(skip)]
    pub lock: Option<crate::lock::Lock>,
    pub registry: Option<String>,
    /// Variables with their final values.
    pub variables: IndexMap<String, String>,
    /// Images and variants, in declaration order.
    pub images: Vec<Image>,
    pub groups: IndexMap<String, Group>,
    /// Image name → its id.
    #[serde(skip)]
    pub index: std::collections::HashMap<String, ImageId>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Group {
    #[serde(skip)]
    pub span: Span,
    /// The members as written: images, variants or other groups.
    pub members: Vec<Text>,
    /// Every image the group stands for, groups expanded, in order.
    pub images: Vec<String>,
}

/// One buildable image: an `image`, or one of its variants.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Image {
    /// `api`, or `api.prod` for the variant `prod` of `api`.
    pub name: String,
    #[serde(skip)]
    pub name_span: Span,
    /// Where it is declared, `file:line:col`.
    pub location: String,
    #[serde(skip)]
    pub file: FileId,
    pub variant: Option<VariantOf>,
    pub description: Option<String>,
    /// The build context, relative to the root manifest's folder.
    pub context: String,
    #[serde(skip)]
    pub context_dir: PathBuf,
    pub repository: String,
    pub tags: Vec<Text>,
    /// The tag committed Dockerfiles name this image by: the first one that is neither
    /// `latest` nor changes with every commit (`{git.short-sha}` does).
    #[serde(skip)]
    #[schemars(skip)]
    pub committed_tag: usize,
    pub build_args: Vec<KeyValue>,
    pub labels: Vec<KeyValue>,
    pub platform: Option<Text>,
    pub pull_policy: PullPolicy,
    /// The stage that is built (an index into `stages`).
    pub target: StageId,
    /// Ignore patterns declared for the context (kiln adds its defaults when emitting).
    pub ignore: Vec<Text>,
    /// Labels the engine that builds it must offer (see `kiln build --engine`).
    pub needs: Vec<Text>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VariantOf {
    pub image: String,
    pub variant: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Stage {
    pub name: String,
    #[serde(skip)]
    pub name_span: Span,
    /// The single stage of an image written without `stage` blocks.
    pub implicit: bool,
    pub from: Spanned<From>,
    /// The platform of the base (`FROM --platform=`), when the stage says one: a
    /// platform, or BuildKit's `$BUILDPLATFORM`-like variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Text>,
    pub instructions: Vec<Spanned<Instruction>>,
    /// Where the stage copies a file its build context lacks (reported as warnings by
    /// the checks; a build refuses to start on them).
    #[serde(skip)]
    #[schemars(skip)]
    pub missing_files: Vec<Span>,
    /// For a builder stage that kiln adds (T34, T37): what it installs for which stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub builder_for: Option<BuilderFor>,
}

/// What a builder stage that kiln adds installs, and for which stage.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct BuilderFor {
    /// The stage that copies the result.
    pub stage: String,
    /// The node that installs: `pip` or `npm`.
    pub node: String,
    /// What the stage copies: the venv or `node_modules` folder.
    pub folder: String,
}

/// Something a stage needs before it can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageInput<'a> {
    Stage(&'a str, Span),
    Image(&'a str, Span),
    External(&'a str, Span),
}

impl Image {
    /// The reference the image is built as: its repository and first tag.
    pub fn reference(&self) -> String {
        match self.tags.first() {
            Some(tag) => format!("{}:{}", self.repository, tag.value),
            None => self.repository.clone(),
        }
    }

    /// `repository:tag` as committed Dockerfiles write it (see `committed_tag`).
    pub fn committed_reference(&self) -> String {
        match self.tags.get(self.committed_tag) {
            Some(tag) => format!("{}:{}", self.repository, tag.value),
            None => self.reference(),
        }
    }

    /// Every `repository:tag` the image gets.
    pub fn references(&self) -> Vec<String> {
        self.tags.iter().map(|tag| format!("{}:{}", self.repository, tag.value)).collect()
    }

    pub fn stage_id(&self, name: &str) -> Option<StageId> {
        self.stages.iter().position(|s| s.name == name).map(StageId::new)
    }

    pub fn stage(&self, id: StageId) -> &Stage {
        &self.stages[id.index()]
    }

    /// Each stage's id with the stage, in order.
    pub fn stages_with_ids(&self) -> impl Iterator<Item = (StageId, &Stage)> {
        self.stages.iter().enumerate().map(|(i, s)| (StageId::new(i), s))
    }

    /// The target stage.
    pub fn target_stage(&self) -> &Stage {
        self.stage(self.target)
    }

    /// Images of the manifest this image needs, with the span of each reference, in
    /// order of appearance (with repeats).
    pub fn image_dependencies(&self) -> Vec<(&str, Span)> {
        self.stages
            .iter()
            .flat_map(Stage::inputs)
            .filter_map(|input| match input {
                StageInput::Image(name, span) => Some((name, span)),
                _ => None,
            })
            .collect()
    }

    /// The stages the target needs, as a mask over `stages`.
    pub fn needed_stages(&self) -> Vec<bool> {
        let mut needed = vec![false; self.stages.len()];
        let mut stack = vec![self.target];
        while let Some(id) = stack.pop() {
            if id.index() >= needed.len() || needed[id.index()] {
                continue;
            }
            needed[id.index()] = true;
            for input in self.stage(id).inputs() {
                if let StageInput::Stage(name, _) = input {
                    stack.extend(self.stage_id(name));
                }
            }
        }
        needed
    }

    /// The instructions of the stages the target needs, in order.
    /// The build secrets the needed stages mount (`secret` in a `run`, a package node's
    /// `*-secret`), where the manifest names them.
    pub fn secrets(&self) -> Vec<&Text> {
        self.needed_instructions()
            .flat_map(|i| -> Vec<&Text> {
                match &i.value {
                    Instruction::Run(run) => run.secrets.iter().map(|s| &s.id).collect(),
                    Instruction::Pip(pip) => pip.index_url_secret.iter().collect(),
                    Instruction::Npm(npm) => npm.npmrc_secret.iter().collect(),
                    _ => Vec::new(),
                }
            })
            .collect()
    }

    /// Whether a stage declares `arg NAME`: a build argument reaches only those.
    pub fn declares_arg(&self, name: &str) -> bool {
        declares_arg(&self.stages, name)
    }

    /// The ids of the build secrets the needed stages mount.
    pub fn secret_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.secrets().into_iter().map(|id| id.value.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The ssh agents the needed stages' RUNs mount (`ssh`), where the manifest names them.
    pub fn ssh_mounts(&self) -> Vec<&Text> {
        self.needed_instructions()
            .flat_map(|i| match &i.value {
                Instruction::Run(run) => run.ssh.iter().collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    pub fn needed_instructions(&self) -> impl Iterator<Item = &Spanned<Instruction>> {
        self.stages
            .iter()
            .zip(self.needed_stages())
            .filter(|(_, needed)| *needed)
            .flat_map(|(stage, _)| &stage.instructions)
    }

    /// Every path the needed stages take from the context, cleaned (`.` left out).
    pub fn context_paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        for instruction in self.needed_instructions() {
            match &instruction.value {
                Instruction::Copy(copy) if copy.from == CopyFrom::Context => {
                    paths.extend(copy.sources.iter().map(|s| kiln_dockerignore::clean_path(&s.value)));
                }
                Instruction::Pip(pip) => {
                    paths.extend(pip.requirements.iter().map(|r| kiln_dockerignore::clean_path(&r.value)));
                }
                other => paths.extend(other.dependency_files().iter().map(|f| (*f).to_owned())),
            }
        }
        paths.retain(|p| p != ".");
        paths
    }

    /// The `package_outputs` of the package-manager nodes of the needed stages, once each.
    pub fn package_outputs(&self) -> Vec<&'static str> {
        let mut outputs: Vec<&'static str> = Vec::new();
        for output in self.needed_instructions().flat_map(|i| i.value.package_outputs()) {
            if !outputs.contains(output) {
                outputs.push(output);
            }
        }
        outputs
    }

    /// External images (registry references) the needed stages use.
    pub fn external_bases(&self) -> Vec<&str> {
        let needed = self.needed_stages();
        let mut refs: Vec<&str> = Vec::new();
        for (stage, _) in self.stages.iter().zip(&needed).filter(|(_, n)| **n) {
            for input in stage.inputs() {
                if let StageInput::External(reference, _) = input
                    && reference != "scratch"
                    && !refs.contains(&reference)
                {
                    refs.push(reference);
                }
            }
        }
        refs
    }
}

/// Whether one of `stages` declares `arg NAME`.
pub(crate) fn declares_arg(stages: &[Stage], name: &str) -> bool {
    stages
        .iter()
        .flat_map(|s| &s.instructions)
        .any(|i| matches!(&i.value, Instruction::Arg { name: declared, .. } if declared.value == name))
}

/// `ignore-keeps-copied`: whether a default ignore pattern stays, that is, excludes none
/// of the `copied` paths (`Image::context_paths`); one that would gives way.
pub fn keeps_default_ignore(pattern: &str, copied: &[String]) -> bool {
    let matcher = kiln_dockerignore::Matcher::new([pattern]).unwrap_or_default();
    !copied.iter().any(|path| matcher.is_excluded(path))
}

impl Stage {
    /// The base and every `copy` source that is not the build context.
    pub fn inputs(&self) -> Vec<StageInput<'_>> {
        let mut inputs = vec![match &self.from.value {
            From::External(r) => StageInput::External(&r.value, r.span),
            From::Stage(s) => StageInput::Stage(&s.value, s.span),
            From::Image(i) => StageInput::Image(&i.value, i.span),
        }];
        for instruction in &self.instructions {
            if let Instruction::Copy(copy) = &instruction.value {
                match &copy.from {
                    CopyFrom::Context => {}
                    CopyFrom::Stage(s) => inputs.push(StageInput::Stage(&s.value, s.span)),
                    CopyFrom::Image(i) => inputs.push(StageInput::Image(&i.value, i.span)),
                    CopyFrom::External(r) => inputs.push(StageInput::External(&r.value, r.span)),
                }
            }
        }
        inputs
    }
}

impl Project {
    /// The root manifest's absolute path (the first file loaded): builds label their
    /// images with it, and the image commands find those images by it.
    pub fn manifest_path(&self) -> &Path {
        self.sources.files().next().map_or(Path::new(""), |(_, f)| f.path.as_path())
    }

    pub fn image_named(&self, name: &str) -> Option<&Image> {
        self.image_id(name).map(|id| &self[id])
    }

    pub fn image_id(&self, name: &str) -> Option<ImageId> {
        self.index.get(name).copied()
    }

    /// Every image's id, in declaration order.
    pub fn image_ids(&self) -> impl Iterator<Item = ImageId> + use<> {
        (0..self.images.len()).map(ImageId::new)
    }

    /// Each image's id with the image, in declaration order.
    pub fn images_with_ids(&self) -> impl Iterator<Item = (ImageId, &Image)> {
        self.images.iter().enumerate().map(|(i, image)| (ImageId::new(i), image))
    }

    /// A value per image.
    pub fn per_image<T>(&self, f: impl FnMut(ImageId) -> T) -> PerImage<T> {
        PerImage::from_fn(self.images.len(), f)
    }
}

impl std::ops::Index<ImageId> for Project {
    type Output = Image;

    fn index(&self, id: ImageId) -> &Image {
        &self.images[id.index()]
    }
}
