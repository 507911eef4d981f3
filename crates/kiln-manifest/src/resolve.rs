//! Resolution: from the declarations of every file to the checked [`Project`].
//!
//! Templates are applied, variants expanded, variables interpolated, and every name,
//! reference and value is checked. The project is built even when there are errors
//! (with placeholders), so that later passes such as cycle detection can still report
//! their own problems in the same run.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use kiln_dockerignore::Matcher;

use crate::ast::{
    Declarations, From, ImageBody, ImageDecl, Instruction, StageBody, StringRole, Text, VisitStrings,
};
use crate::check::{StageContext, check_stage};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::load::{display_name, normalize};
use crate::merge::merge_bodies;
use crate::model::{Group, Image, Level, Stage, VariantOf};
use crate::source::{SourceMap, Span, Spanned};
use crate::suggest::did_you_mean;
use crate::vars::Variables;
use kiln_reference::{ImageRef, validate_repository, validate_tag};

/// The default folder for generated files, relative to the root manifest.
pub const DEFAULT_OUTPUT: &str = "dockerfiles";

/// Stage names Docker reserves.
const RESERVED_STAGE_NAMES: &[&str] = &["scratch", "context"];

pub(crate) struct Settings {
    pub project: Option<String>,
    pub pin_bases: bool,
    pub registry: Option<String>,
    pub output_dir: PathBuf,
    pub level: Level,
    pub syntax_directive: Option<String>,
}

/// Resolves the project-wide settings, with command-line overrides.
pub(crate) fn resolve_settings(
    decls: &Declarations,
    vars: &Variables,
    sources: &SourceMap,
    root_dir: &Path,
    output_override: Option<&Path>,
    level_override: Option<Level>,
    diags: &mut Diagnostics,
) -> Settings {
    let interpolate = |text: &Text, diags: &mut Diagnostics| {
        let value = vars.interpolate(sources, text, StringRole::Generated, diags).unwrap_or_default();
        Spanned::new(value, text.span)
    };
    let registry = decls.registry.as_ref().map(|r| interpolate(r, diags)).and_then(|registry| {
        let trimmed = registry.value.trim_end_matches('/');
        // A registry is a repository prefix: `host[:port][/namespace...]`.
        match validate_repository(&format!("{trimmed}/x")) {
            Ok(()) => Some(trimmed.to_owned()),
            Err(err) => {
                diags.push(
                    Diagnostic::new(Code::InvalidReference, format!("`{}` is not a valid registry: {err}", registry.value))
                        .label(registry.span, "invalid registry")
                        .help("a registry is a host with an optional port and namespace, such as `registry.example.com/shop`"),
                );
                None
            }
        }
    });
    let output_dir = match (output_override, &decls.output) {
        (Some(path), _) => normalize(path),
        (None, Some(text)) => {
            let value = interpolate(text, diags);
            crate::check::check_line(&value, "a path", diags);
            normalize(&root_dir.join(&value.value))
        }
        (None, None) => root_dir.join(DEFAULT_OUTPUT),
    };
    let level = level_override.unwrap_or_else(|| match &decls.level {
        None => Level::Classic,
        Some(text) => Level::parse(&text.value).unwrap_or_else(|| {
            diags.push(
                Diagnostic::new(Code::InvalidValue, format!("unknown dockerfile level `{}`", text.value))
                    .label(text.span, "not a level")
                    .help(format!(
                        "use one of {}",
                        Level::NAMES.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                    )),
            );
            Level::Classic
        }),
    });
    let syntax_directive = decls.syntax_directive.as_ref().and_then(|text| {
        let value = interpolate(text, diags);
        match ImageRef::parse(&value.value) {
            Ok(_) => Some(value.value),
            Err(err) => {
                diags.push(
                    Diagnostic::new(
                        Code::InvalidReference,
                        format!("`{}` is not a valid frontend image: {err}", value.value),
                    )
                    .label(value.span, "invalid reference")
                    .help("for example `docker/dockerfile:1.7`"),
                );
                None
            }
        }
    });
    let project = decls.project.as_ref().and_then(|text| {
        let value = interpolate(text, diags);
        let valid = !value.value.is_empty()
            && value.value.len() <= 128
            && value
                .value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
        if valid {
            Some(value.value)
        } else {
            diags.push(
                Diagnostic::new(Code::InvalidValue, format!("`{}` is not a valid project name", value.value))
                    .label(value.span, "invalid project name")
                    .help("use up to 128 letters, digits, `.`, `_`, `-` and `/`, such as `acme/shop`"),
            );
            None
        }
    });
    let pin_bases = decls.pin_bases.as_ref().is_some_and(|text| match text.value.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("`pin-bases` takes `#true` or `#false`, not `{}`", text.value),
                )
                .label(text.span, "not a boolean"),
            );
            false
        }
    });
    Settings { project, pin_bases, registry, output_dir, level, syntax_directive }
}

pub(crate) struct Resolver<'a> {
    pub sources: &'a SourceMap,
    pub root_dir: &'a Path,
    pub vars: &'a Variables,
    pub settings: &'a Settings,
    pub diags: &'a mut Diagnostics,
    /// Strings whose interpolation failed; other problems with them are consequences.
    pub tainted: HashSet<Span>,
}

impl Resolver<'_> {
    pub(crate) fn resolve(mut self, decls: &Declarations) -> (Vec<Image>, IndexMap<String, Group>) {
        let templates = self.declare(&decls.templates, "template");
        let images = self.declare(&decls.images, "image");
        for (name, decl) in &templates {
            if let Some(image) = images.get(name) {
                self.diags.push(
                    Diagnostic::new(
                        Code::DuplicateName,
                        format!("`{name}` is both a template and an image"),
                    )
                    .label(image.name.span, "image")
                    .label(decl.name.span, "template")
                    .help(
                        "give them different names, so that `extends` and image references are unambiguous",
                    ),
                );
            }
        }
        for decl in decls.templates.iter().chain(&decls.images) {
            self.check_body_duplicates(&decl.body);
        }

        // Templates applied to every image; variants expanded beside their image.
        let mut flattener = Flattener { templates: &templates, images: &images, done: HashMap::new() };
        let mut bodies: Vec<(&ImageDecl, ImageBody)> = Vec::new();
        for decl in images.values() {
            let body = flattener.flatten(decl, &mut Vec::new(), self.diags);
            bodies.push((decl, body));
        }
        let mut names: Vec<String> = Vec::new();
        for (decl, body) in &bodies {
            names.push(decl.name.value.clone());
            for variant in &body.variants {
                names.push(format!("{}.{}", decl.name.value, variant.name.value));
            }
        }
        let known: HashSet<&str> = names.iter().map(String::as_str).collect();
        let template_names: HashSet<&str> = templates.keys().map(String::as_str).collect();
        let lookup = Names { images: &known, image_list: &names, templates: &template_names };

        let mut built = Vec::new();
        for (decl, body) in &bodies {
            let mut image_body = body.clone();
            image_body.variants.clear();
            let image = self.build_image(decl, &decl.name.value, decl.name.span, &image_body, None, &lookup);
            built.push(image);
            for variant in &body.variants {
                if !is_image_name(&variant.name.value) {
                    self.invalid_name(&variant.name, "variant");
                }
                let variant_body = self.variant_body(&image_body, &variant.body, &variant.name);
                let full_name = format!("{}.{}", decl.name.value, variant.name.value);
                let of = VariantOf { image: decl.name.value.clone(), variant: variant.name.value.clone() };
                let image =
                    self.build_image(decl, &full_name, variant.name.span, &variant_body, Some(of), &lookup);
                built.push(image);
            }
        }
        self.check_tag_collisions(&built);
        self.check_unused_stages(&built);
        let groups = self.resolve_groups(&decls.groups, &lookup);
        let tainted = std::mem::take(&mut self.tainted);
        self.diags.retain(|d| {
            matches!(d.code, Code::UndefinedVariable | Code::VariableNotAllowed | Code::Cycle)
                || !d.primary_span().is_some_and(|span| tainted.contains(&span))
        });
        (built, groups)
    }

    /// Checks names and duplicates of images or templates; returns the first of each name.
    fn declare<'d>(&mut self, decls: &'d [ImageDecl], kind: &str) -> IndexMap<String, &'d ImageDecl> {
        let mut map: IndexMap<String, &ImageDecl> = IndexMap::new();
        for decl in decls {
            if !is_image_name(&decl.name.value) {
                self.invalid_name(&decl.name, kind);
            }
            if let Some(first) = map.get(&decl.name.value) {
                self.diags.push(Diagnostic::duplicate(
                    kind,
                    &decl.name.value,
                    decl.name.span,
                    first.name.span,
                ));
                continue;
            }
            map.insert(decl.name.value.clone(), decl);
        }
        map
    }

    fn invalid_name(&mut self, name: &Text, kind: &str) {
        let suggestion = name.value.to_ascii_lowercase().replace(['.', ' '], "-");
        self.diags.push(
            Diagnostic::new(Code::InvalidName, format!("`{}` is not a valid {kind} name", name.value))
                .label(name.span, "invalid name")
                .help_opt(Some(format!(
                    "use lowercase letters, digits, `-` and `_`, starting with a letter or digit{}",
                    if is_image_name(&suggestion) {
                        format!(", such as `{suggestion}`")
                    } else {
                        String::new()
                    }
                ))),
        );
    }

    /// Two `stage` (or `variant`) blocks of the same name in one declaration would be
    /// silently merged; that is a mistake, not a merge.
    fn check_body_duplicates(&mut self, body: &ImageBody) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for stage in &body.stages {
            if let Some(first) = seen.insert(&stage.name.value, stage.name.span) {
                self.diags.push(Diagnostic::duplicate("stage", &stage.name.value, stage.name.span, first));
            }
        }
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for variant in &body.variants {
            if let Some(first) = seen.insert(&variant.name.value, variant.name.span) {
                self.diags.push(Diagnostic::duplicate(
                    "variant",
                    &variant.name.value,
                    variant.name.span,
                    first,
                ));
            }
            self.check_body_duplicates(&variant.body);
        }
    }

    /// A variant is its image with the variant's body laid over it. Instructions written
    /// directly in the variant go to the end of the image's target stage.
    fn variant_body(&mut self, image: &ImageBody, variant: &ImageBody, name: &Text) -> ImageBody {
        let mut overlay = variant.clone();
        // A variant that sets no tags of its own is tagged with its name.
        overlay.tags.get_or_insert_with(|| vec![name.clone()]);
        if image.stages.is_empty() {
            return merge_bodies(image, &overlay);
        }
        if let Some(from) = &overlay.implicit.from {
            self.diags.push(
                Diagnostic::new(
                    Code::MisplacedNode,
                    "a variant of an image with stages cannot set `from` directly",
                )
                .label(from.span, "which stage would this replace?")
                .help("write `stage NAME { from ... }` inside the variant"),
            );
        }
        let instructions = std::mem::take(&mut overlay.implicit.instructions);
        overlay.implicit = StageBody::default();
        if !instructions.is_empty() {
            let target = overlay
                .target
                .as_ref()
                .or(image.target.as_ref())
                .map(|t| t.value.clone())
                .or_else(|| image.stages.last().map(|s| s.name.value.clone()));
            if let Some(target) = target {
                if let Some(stage) = overlay.stages.iter_mut().find(|s| s.name.value == target) {
                    stage.body.instructions.extend(instructions);
                } else {
                    let base = image.stages.iter().find(|s| s.name.value == target);
                    if let Some(base) = base {
                        overlay.stages.push(crate::ast::StageDecl {
                            name: base.name.clone(),
                            span: base.span,
                            body: StageBody { from: None, instructions },
                        });
                    }
                }
            }
        }
        merge_bodies(image, &overlay)
    }

    fn interpolate_body(&mut self, body: &mut ImageBody) {
        let vars = self.vars;
        let sources = self.sources;
        let diags = &mut *self.diags;
        let tainted = &mut self.tainted;
        body.visit_strings(&mut |text, role| {
            if text.value.contains(['{', '}']) {
                match vars.interpolate(sources, text, role, diags) {
                    Some(value) => text.value = value,
                    None => {
                        tainted.insert(text.span);
                    }
                }
            }
        });
    }

    fn build_image(
        &mut self,
        decl: &ImageDecl,
        name: &str,
        name_span: Span,
        body: &ImageBody,
        variant: Option<VariantOf>,
        names: &Names<'_>,
    ) -> Image {
        let mut body = body.clone();
        self.interpolate_body(&mut body);
        let file = decl.file;
        let file_dir = self.sources.file(file).dir().to_path_buf();

        // Context folder.
        let (context_dir, context_span) = match &body.context {
            Some(text) => {
                crate::check::check_line(text, "a path", self.diags);
                (normalize(&file_dir.join(&text.value)), Some(text.span))
            }
            None => (file_dir.clone(), None),
        };
        if !context_dir.is_dir() {
            let shown = display_name(self.root_dir, &context_dir);
            let diagnostic =
                Diagnostic::new(Code::MissingContext, format!("build context `{shown}` is not a folder"))
                    .label(context_span.unwrap_or(decl.name.span), "context set here")
                    .help("`context` is relative to the file that declares the image");
            self.diags.push(diagnostic);
        }

        // Repository and tags.
        let base_name = variant.as_ref().map_or(name, |v| v.image.as_str());
        let repository = match &body.repository {
            Some(text) => {
                if let Err(err) = validate_repository(&text.value) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::InvalidReference,
                            format!("`{}` is not a valid repository: {err}", text.value),
                        )
                        .label(text.span, "invalid repository"),
                    );
                }
                text.value.clone()
            }
            None => match &self.settings.registry {
                Some(registry) => format!("{registry}/{base_name}"),
                None => base_name.to_owned(),
            },
        };
        let tags = self.tags(&body, name_span);
        let committed_tag = self.committed_tag(&tags);

        // Build arguments, labels, platform, ignore patterns.
        for pair in &body.build_args {
            if !crate::check::is_env_key(&pair.key.value) {
                self.diags.push(
                    Diagnostic::new(
                        Code::InvalidName,
                        format!("`{}` is not a valid build argument name", pair.key.value),
                    )
                    .label(pair.key.span, "invalid name"),
                );
            }
        }
        for pair in &body.labels {
            crate::check::check_label(pair, self.diags);
        }
        if let Some(platform) = &body.platform {
            self.check_platform(platform);
        }
        let (matcher, ignore_texts) = self.ignore_matcher(&body.ignore);
        let pull_policy = body.pull_policy.as_ref().map_or(crate::model::PullPolicy::Missing, |text| {
            crate::model::PullPolicy::parse(&text.value).unwrap_or_else(|| {
                self.diags.push(
                    Diagnostic::new(Code::InvalidValue, format!("unknown pull policy `{}`", text.value))
                        .label(text.span, "not a pull policy")
                        .help("use `always`, `missing` or `never`"),
                );
                crate::model::PullPolicy::Missing
            })
        });

        // Stages.
        let mut stages = self.stages(&body, name, name_span);
        let target = match &body.target {
            Some(text) => {
                if let Some(index) = stages.iter().position(|s| s.name == text.value) {
                    index
                } else {
                    let candidates = stages.iter().map(|s| s.name.as_str());
                    self.diags.push(
                        Diagnostic::new(
                            Code::UnknownReference,
                            format!("image `{name}` has no stage `{}`", text.value),
                        )
                        .label(text.span, "unknown stage")
                        .help_opt(did_you_mean(&text.value, candidates)),
                    );
                    stages.len().saturating_sub(1)
                }
            }
            None => stages.len().saturating_sub(1),
        };
        let stage_names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
        for stage in &mut stages {
            self.check_stage_inputs(stage, &stage_names, name, names);
            let ctx = StageContext {
                level: self.settings.level,
                context_dir: &context_dir,
                ignore: &matcher,
                ignore_texts: &ignore_texts,
                external_base: matches!(stage.from.value, From::External(_)),
            };
            let before = self.diags.iter().count();
            check_stage(&stage.instructions, &ctx, self.diags);
            stage.missing_files = self
                .diags
                .iter()
                .skip(before)
                .filter(|d| d.code == Code::MissingFile)
                .filter_map(Diagnostic::primary_span)
                .collect();
        }
        self.check_build_args(&body, &stages);

        Image {
            name: name.to_owned(),
            name_span,
            location: self.sources.location(name_span),
            file,
            variant,
            description: body.description.map(|d| d.value),
            context: display_name(self.root_dir, &context_dir),
            context_dir,
            repository,
            tags,
            committed_tag,
            build_args: body.build_args,
            labels: body.labels,
            platform: body.platform,
            pull_policy,
            target: crate::id::StageId::new(target),
            ignore: body.ignore,
            stages,
        }
    }

    fn tags(&mut self, body: &ImageBody, name_span: Span) -> Vec<Text> {
        let tags = body.tags.clone().unwrap_or_else(|| vec![Spanned::new("latest".to_owned(), name_span)]);
        let mut seen: Vec<&str> = Vec::new();
        let mut unique = Vec::new();
        for tag in &tags {
            if let Err(err) = validate_tag(&tag.value) {
                self.diags.push(
                    Diagnostic::new(Code::InvalidTag, format!("`{}` is not a valid tag: {err}", tag.value))
                        .label(tag.span, "invalid tag")
                        .help("a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"),
                );
            }
            if seen.contains(&tag.value.as_str()) {
                continue;
            }
            seen.push(&tag.value);
            unique.push(tag.clone());
        }
        unique
    }

    /// The first tag whose text names no git variable (a tag such as `{git.short-sha}`
    /// changes with every commit), else the first tag.
    fn committed_tag(&self, tags: &[Text]) -> usize {
        tags.iter().position(|tag| !self.sources.text(tag.span).contains("{git.")).unwrap_or(0)
    }

    fn check_platform(&mut self, platform: &Text) {
        let parts: Vec<&str> = platform.value.split('/').collect();
        let ok = (2..=3).contains(&parts.len())
            && parts.iter().all(|p| {
                !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        if !ok {
            self.diags.push(
                Diagnostic::new(Code::InvalidValue, format!("`{}` is not a platform", platform.value))
                    .label(platform.span, "expected `os/arch` or `os/arch/variant`")
                    .help("for example `linux/amd64` or `linux/arm64/v8`"),
            );
        }
    }

    fn ignore_matcher(&mut self, patterns: &[Text]) -> (Matcher, Vec<Text>) {
        let mut valid = Vec::new();
        for pattern in patterns {
            crate::check::check_line(pattern, "an ignore pattern", self.diags);
            match kiln_dockerignore::Pattern::new(&pattern.value) {
                Ok(Some(_)) => valid.push(pattern.clone()),
                Ok(None) => self.diags.push(
                    Diagnostic::new(Code::InvalidIgnorePattern, "an ignore pattern cannot be empty")
                        .label(pattern.span, "empty pattern"),
                ),
                Err(err) => self.diags.push(
                    Diagnostic::new(
                        Code::InvalidIgnorePattern,
                        format!("invalid ignore pattern `{}`: {err}", pattern.value),
                    )
                    .label(pattern.span, "invalid pattern"),
                ),
            }
        }
        let matcher = Matcher::new(valid.iter().map(|t| t.value.as_str())).unwrap_or_default();
        (matcher, valid)
    }

    fn stages(&mut self, body: &ImageBody, image: &str, name_span: Span) -> Vec<Stage> {
        let missing_from = |diags: &mut Diagnostics, span: Span, what: String| {
            diags.push(
                Diagnostic::new(Code::MissingBase, format!("{what} has no `from`"))
                    .label(span, "no base image")
                    .help("add `from \"IMAGE:TAG\"`, `from stage=NAME` or `from image=NAME`"),
            );
            Spanned::new(From::External(Spanned::new("scratch".to_owned(), span)), span)
        };
        if body.stages.is_empty() {
            let from = match &body.implicit.from {
                Some(from) => from.clone(),
                None => missing_from(self.diags, name_span, format!("image `{image}`")),
            };
            return vec![Stage {
                name: "main".to_owned(),
                name_span,
                implicit: true,
                from,
                instructions: body.implicit.instructions.clone(),
                missing_files: Vec::new(),
            }];
        }
        if let Some(first) = body
            .implicit
            .from
            .as_ref()
            .map(|f| f.span)
            .or_else(|| body.implicit.instructions.first().map(|i| i.span))
        {
            self.diags.push(
                Diagnostic::new(
                    Code::MisplacedNode,
                    format!("image `{image}` has `stage` blocks, so this belongs in one of them"),
                )
                .label(first, "outside any stage")
                .help("move it into a `stage`, or drop the `stage` blocks for a single-stage image"),
            );
        }
        body.stages
            .iter()
            .map(|decl| {
                let name = &decl.name;
                let valid = name.value.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && name.value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
                if !valid {
                    self.diags.push(
                        Diagnostic::new(Code::InvalidName, format!("`{}` is not a valid stage name", name.value))
                            .label(name.span, "invalid name")
                            .help("stage names start with a lowercase letter, then lowercase letters, digits, `-`, `_` or `.`"),
                    );
                } else if RESERVED_STAGE_NAMES.contains(&name.value.as_str()) {
                    self.diags.push(
                        Diagnostic::new(Code::InvalidName, format!("`{}` is reserved by Docker and cannot name a stage", name.value))
                            .label(name.span, "reserved name"),
                    );
                }
                let from = match &decl.body.from {
                    Some(from) => from.clone(),
                    None => missing_from(self.diags, name.span, format!("stage `{}`", name.value)),
                };
                Stage {
                    name: name.value.clone(),
                    name_span: name.span,
                    implicit: false,
                    from,
                    instructions: decl.body.instructions.clone(),
                    missing_files: Vec::new(),
                }
            })
            .collect()
    }

    /// Checks what a stage builds on and copies from: stages of the same image, other
    /// images of the manifest, outside references.
    fn check_stage_inputs(&mut self, stage: &Stage, stage_names: &[String], image: &str, names: &Names<'_>) {
        for input in stage.inputs() {
            match input {
                crate::model::StageInput::Stage(name, span) => {
                    if name == stage.name {
                        self.diags.push(
                            Diagnostic::new(Code::Cycle, format!("stage `{name}` cannot use itself"))
                                .label(span, "refers to its own stage"),
                        );
                    } else if !stage_names.iter().any(|s| s == name) {
                        let mut diagnostic = Diagnostic::new(
                            Code::UnknownReference,
                            format!("image `{image}` has no stage `{name}`"),
                        )
                        .label(span, "unknown stage");
                        diagnostic = if names.images.contains(name) {
                            diagnostic.help(format!("`{name}` is an image: use `image={name}`"))
                        } else {
                            diagnostic.help_opt(did_you_mean(name, stage_names.iter().map(String::as_str)))
                        };
                        self.diags.push(diagnostic);
                    }
                }
                crate::model::StageInput::Image(name, span) => {
                    if !names.images.contains(name) {
                        let mut diagnostic =
                            Diagnostic::new(Code::UnknownReference, format!("unknown image `{name}`"))
                                .label(span, "no image of this name in the manifest");
                        diagnostic = if stage_names.iter().any(|s| s == name) {
                            diagnostic.help(format!("`{name}` is a stage of this image: use `stage={name}` in `from`, or `from={name}` in `copy`"))
                        } else if names.templates.contains(name) {
                            diagnostic.help(format!("`{name}` is a template: use `extends {name}`"))
                        } else {
                            diagnostic.help_opt(did_you_mean(name, names.image_list.iter().map(String::as_str)).or_else(|| {
                                Some(format!("to use an image from a registry, write the reference: `from \"{name}:TAG\"`"))
                            }))
                        };
                        self.diags.push(diagnostic);
                    }
                }
                crate::model::StageInput::External(reference, span) => {
                    if reference == "scratch" {
                        continue;
                    }
                    match ImageRef::parse(reference) {
                        Err(err) => self.diags.push(
                            Diagnostic::new(
                                Code::InvalidReference,
                                format!("`{reference}` is not a valid image reference: {err}"),
                            )
                            .label(span, "invalid reference")
                            .help_opt(
                                names.images.contains(reference.split(':').next().unwrap_or("")).then(|| {
                                    format!(
                                        "to build on the manifest's image, write `image={}`",
                                        reference.split(':').next().unwrap_or("")
                                    )
                                }),
                            ),
                        ),
                        Ok(parsed) => {
                            if parsed.digest.is_none() && parsed.tag.as_deref().is_none_or(|t| t == "latest")
                            {
                                let shown = if parsed.tag.is_some() {
                                    "`latest`, which moves"
                                } else {
                                    "no tag, so it means `latest`, which moves"
                                };
                                let mut diagnostic = Diagnostic::new(Code::BaseNotPinned, format!("base image `{reference}` has {shown}"))
                                    .label(span, "not pinned")
                                    .help("pin a version, such as `python:3.11-slim`, so that builds are repeatable");
                                if names.images.contains(parsed.path.as_str()) && parsed.domain.is_none() {
                                    diagnostic = diagnostic.help(format!(
                                        "to build on the manifest's image `{}`, write `image={}`",
                                        parsed.path, parsed.path
                                    ));
                                }
                                self.diags.push(diagnostic);
                            }
                        }
                    }
                }
            }
        }
    }

    /// A `build-arg` no stage declares with `arg` is ignored by Docker (with a warning).
    fn check_build_args(&mut self, body: &ImageBody, stages: &[Stage]) {
        for pair in &body.build_args {
            let declared = stages
                .iter()
                .flat_map(|s| &s.instructions)
                .any(|i| matches!(&i.value, Instruction::Arg { name, .. } if name.value == pair.key.value));
            if !declared {
                self.diags.push(
                    Diagnostic::new(
                        Code::UndeclaredBuildArg,
                        format!("build argument `{}` is not declared by any `arg`", pair.key.value),
                    )
                    .label(pair.key.span, "Docker ignores undeclared build arguments")
                    .help(format!("add `arg {}` to the stage that uses it", pair.key.value)),
                );
            }
        }
    }

    fn check_tag_collisions(&mut self, images: &[Image]) {
        let mut owners: HashMap<String, (&str, Span)> = HashMap::new();
        for image in images {
            for tag in &image.tags {
                let reference = format!("{}:{}", image.repository, tag.value);
                match owners.get(&reference) {
                    Some((owner, span)) if *owner != image.name => {
                        self.diags.push(
                            Diagnostic::new(
                                Code::TagCollision,
                                format!(
                                    "images `{owner}` and `{}` are both tagged `{reference}`",
                                    image.name
                                ),
                            )
                            .label(tag.span, format!("`{}` claims it here", image.name))
                            .label(*span, format!("`{owner}` claims it here"))
                            .help("each tag can point at one image; give one of them another tag"),
                        );
                    }
                    Some(_) => {}
                    None => {
                        owners.insert(reference, (&image.name, tag.span));
                    }
                }
            }
        }
    }

    /// A stage that neither the image nor any of its variants builds is dead code.
    fn check_unused_stages(&mut self, images: &[Image]) {
        let mut used: HashMap<(&str, &str), bool> = HashMap::new();
        let mut order: Vec<(&str, &str, Span)> = Vec::new();
        for image in images {
            let owner = image.variant.as_ref().map_or(image.name.as_str(), |v| v.image.as_str());
            for (stage, needed) in image.stages.iter().zip(image.needed_stages()) {
                let entry = used.entry((owner, stage.name.as_str())).or_insert_with(|| {
                    order.push((owner, stage.name.as_str(), stage.name_span));
                    false
                });
                *entry |= needed;
            }
        }
        for (owner, stage, span) in order {
            if !used[&(owner, stage)] {
                self.diags.push(
                    Diagnostic::new(
                        Code::UnusedStage,
                        format!("stage `{stage}` of image `{owner}` is never used"),
                    )
                    .label(span, "not needed by the target stage")
                    .help("remove it, or use it with `from stage=` or `copy ... from=`"),
                );
            }
        }
    }

    fn resolve_groups(
        &mut self,
        decls: &[crate::ast::GroupDecl],
        names: &Names<'_>,
    ) -> IndexMap<String, Group> {
        let mut groups: IndexMap<String, Group> = IndexMap::new();
        for decl in decls {
            if !is_image_name(&decl.name.value) {
                self.invalid_name(&decl.name, "group");
            }
            if names.images.contains(decl.name.value.as_str()) {
                self.diags.push(
                    Diagnostic::new(
                        Code::DuplicateName,
                        format!("`{}` is both a group and an image", decl.name.value),
                    )
                    .label(decl.name.span, "group")
                    .help("the command line takes image and group names alike; rename the group"),
                );
                continue;
            }
            if let Some(first) = groups.get(&decl.name.value) {
                self.diags.push(Diagnostic::duplicate("group", &decl.name.value, decl.name.span, first.span));
                continue;
            }
            groups.insert(
                decl.name.value.clone(),
                Group { span: decl.name.span, members: decl.members.clone(), images: Vec::new() },
            );
        }
        let group_names: Vec<String> = groups.keys().cloned().collect();
        for name in &group_names {
            let mut images = Vec::new();
            let mut stack = Vec::new();
            self.expand_group(name, &groups, names, &mut stack, &mut images);
            groups[name].images = images;
        }
        groups
    }

    fn expand_group(
        &mut self,
        name: &str,
        groups: &IndexMap<String, Group>,
        names: &Names<'_>,
        stack: &mut Vec<String>,
        out: &mut Vec<String>,
    ) {
        if let Some(start) = stack.iter().position(|g| g == name) {
            // Report each cycle once, from the first of its groups in the manifest.
            let first = stack[start..].iter().min_by_key(|g| groups.get_index_of(g.as_str()));
            if start == 0 && first.is_some_and(|f| f == name) {
                let mut cycle: Vec<&str> = stack[start..].iter().map(String::as_str).collect();
                cycle.push(name);
                let mut diagnostic = Diagnostic::new(
                    Code::Cycle,
                    format!("groups contain each other: {}", cycle.join(" -> ")),
                );
                for pair in cycle.windows(2) {
                    if let Some(member) = groups[pair[0]].members.iter().find(|m| m.value == pair[1]) {
                        diagnostic =
                            diagnostic.label(member.span, format!("`{}` contains `{}`", pair[0], pair[1]));
                    }
                }
                self.diags.push(diagnostic);
            }
            return;
        }
        stack.push(name.to_owned());
        for member in &groups[name].members {
            if groups.contains_key(&member.value) {
                self.expand_group(&member.value, groups, names, stack, out);
            } else if names.images.contains(member.value.as_str()) {
                if !out.contains(&member.value) {
                    out.push(member.value.clone());
                }
            } else if stack.len() == 1 {
                let candidates =
                    names.image_list.iter().map(String::as_str).chain(groups.keys().map(String::as_str));
                self.diags.push(
                    Diagnostic::new(
                        Code::UnknownReference,
                        format!("group `{name}` lists unknown image `{}`", member.value),
                    )
                    .label(member.span, "no image or group of this name")
                    .help_opt(did_you_mean(&member.value, candidates)),
                );
            }
        }
        stack.pop();
    }
}

/// The names known across the project, for references and hints.
pub(crate) struct Names<'a> {
    pub images: &'a HashSet<&'a str>,
    pub image_list: &'a [String],
    pub templates: &'a HashSet<&'a str>,
}

/// Applies `extends` chains, remembering each template's flattened body.
struct Flattener<'d> {
    templates: &'d IndexMap<String, &'d ImageDecl>,
    images: &'d IndexMap<String, &'d ImageDecl>,
    done: HashMap<String, ImageBody>,
}

impl Flattener<'_> {
    fn flatten(&mut self, decl: &ImageDecl, stack: &mut Vec<String>, diags: &mut Diagnostics) -> ImageBody {
        let mut base = ImageBody::default();
        for parent in &decl.body.extends {
            let Some(template) = self.templates.get(&parent.value).copied() else {
                let mut diagnostic =
                    Diagnostic::new(Code::UnknownReference, format!("unknown template `{}`", parent.value))
                        .label(parent.span, "no template of this name");
                diagnostic = if self.images.contains_key(&parent.value) {
                    diagnostic.help(format!("`{}` is an image; only templates can be extended (use `from image={}` to build on it)", parent.value, parent.value))
                } else {
                    diagnostic
                        .help_opt(did_you_mean(&parent.value, self.templates.keys().map(String::as_str)))
                };
                diags.push(diagnostic);
                continue;
            };
            if let Some(start) = stack.iter().position(|t| *t == parent.value) {
                let mut cycle: Vec<&str> = stack[start..].iter().map(String::as_str).collect();
                cycle.push(&parent.value);
                let mut diagnostic = Diagnostic::new(
                    Code::Cycle,
                    format!("templates extend each other: {}", cycle.join(" -> ")),
                )
                .label(parent.span, format!("`{}` extends `{}` here", decl.name.value, parent.value));
                for pair in cycle.windows(2).take(cycle.len().saturating_sub(2)) {
                    if let Some(t) = self.templates.get(pair[0])
                        && let Some(e) = t.body.extends.iter().find(|e| e.value == pair[1])
                    {
                        diagnostic =
                            diagnostic.label(e.span, format!("`{}` extends `{}` here", pair[0], pair[1]));
                    }
                }
                diags.push(diagnostic);
                continue;
            }
            let flat = if let Some(flat) = self.done.get(&parent.value) {
                flat.clone()
            } else {
                stack.push(parent.value.clone());
                let flat = self.flatten(template, stack, diags);
                stack.pop();
                self.done.insert(parent.value.clone(), flat.clone());
                flat
            };
            base = merge_bodies(&base, &flat);
        }
        if decl.body.extends.is_empty() {
            return decl.body.clone();
        }
        merge_bodies(&base, &decl.body)
    }
}

/// Image, template, variant and group names: lowercase alphanumeric runs separated by
/// `-` or `_`, so that they are valid repository path components and never contain the
/// `.` that joins an image to its variant.
pub(crate) fn is_image_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && alnum(&bytes[0])
        && alnum(&bytes[bytes.len() - 1])
        && bytes.iter().all(|b| alnum(b) || *b == b'-' || *b == b'_')
        && !name.contains("__-")
        && !name.contains("-_")
        && !name.contains("_-")
        && !name.contains("___")
}
