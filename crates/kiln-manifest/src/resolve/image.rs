//! One image assembled from its flattened body: context, repository and tags, build
//! values, stages and target.

use std::collections::HashMap;
use std::path::PathBuf;

use kiln_dockerignore::{Matcher, Pattern, clean_path};
use kiln_reference::{validate_repository, validate_tag};

use super::{Names, Resolver};
use crate::ast::{CopyFrom, From, ImageBody, ImageDecl, Instruction, Text};
use crate::build_tools::split_build_tools;
use crate::builders::split_install_builders;
use crate::check::{StageContext, check_label, check_line, check_stage, is_env_key};
use crate::deps_first::hoist_installs;
use crate::diagnostic::{Code, Diagnostic};
use crate::id::StageId;
use crate::load::{display_name, normalize};
use crate::model::{Image, Level, PullPolicy, Stage, VariantOf, keeps_default_ignore};
use crate::source::{Span, Spanned};
use crate::suggest::did_you_mean;

impl Resolver<'_> {
    pub(super) fn build_image(
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
        let context_dir = self.context_dir(decl, &body);
        let base_name = variant.as_ref().map_or(name, |v| v.image.as_str());
        let repository = self.repository(&body, base_name);
        let tags = self.tags(&body, name_span);
        let committed_tag = self.committed_tag(&tags);
        self.check_build_values(&body);
        let pull_policy = self.pull_policy(&body);
        let (ignore, ignore_texts) = self.ignore_matcher(&body.ignore);

        let mut stages = self.stages(&body, name, name_span);
        let target = self.target(&body, &stages, name);
        let stage_names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
        let bases: Vec<String> = stages
            .iter()
            .filter_map(|s| match &s.from.value {
                From::Stage(name) => Some(name.value.clone()),
                _ => None,
            })
            .collect();
        for (index, stage) in stages.iter_mut().enumerate() {
            hoist_installs(&mut stage.instructions, &context_dir);
            let is_base = bases.contains(&stage.name);
            let tools_kept = if index == target {
                let built_upon = if is_base {
                    Some("another stage starts from this one and may use them".to_owned())
                } else {
                    names
                        .image_bases
                        .get(name)
                        .map(|child| format!("image `{child}` starts from this one and may use them"))
                };
                split_build_tools(&mut stage.instructions, built_upon.as_deref(), &context_dir)
            } else {
                None
            };
            self.check_stage_inputs(stage, &stage_names, name, names);
            if let Some(platform) = &stage.platform {
                self.check_stage_platform(platform);
            }
            let ctx = StageContext {
                level: self.settings.level,
                context_dir: &context_dir,
                ignore: &ignore,
                ignore_texts: &ignore_texts,
                external_base: matches!(stage.from.value, From::External(_)),
                is_target: index == target,
                is_base,
                tools_kept: tools_kept.as_ref(),
            };
            self.check_stage_instructions(stage, &ctx);
        }
        self.check_build_args(&body, &stages);
        // After the checks, so that the steps a builder shares with its stage are
        // reported once.
        let target_name = stages.get(target).map(|s| s.name.clone());
        split_install_builders(&mut stages, &context_dir, self.diags);
        let target = target_name.and_then(|n| stages.iter().position(|s| s.name == n)).unwrap_or(target);

        let image = Image {
            name: name.to_owned(),
            name_span,
            location: self.sources.location(name_span),
            file: decl.file,
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
            target: StageId::new(target),
            ignore: body.ignore,
            needs: body.needs,
            stages,
        };
        self.check_shipped_package_outputs(&image, &ignore_texts);
        image
    }

    /// The build context: `context`, relative to the declaring file, or that file's folder.
    fn context_dir(&mut self, decl: &ImageDecl, body: &ImageBody) -> PathBuf {
        let file_dir = self.sources.file(decl.file).dir();
        let (context_dir, context_span) = match &body.context {
            Some(text) => {
                check_line(text, "a path", self.diags);
                (normalize(&file_dir.join(&text.value)), Some(text.span))
            }
            None => (file_dir.to_path_buf(), None),
        };
        if !context_dir.is_dir() {
            let shown = display_name(self.root_dir, &context_dir);
            self.diags.push(
                Diagnostic::new(Code::MissingContext, format!("build context `{shown}` is not a folder"))
                    .label(context_span.unwrap_or(decl.name.span), "context set here")
                    .help("`context` is relative to the file that declares the image"),
            );
        }
        context_dir
    }

    /// `repository`, else the image's name under the project's registry. Variants share
    /// their image's repository.
    fn repository(&mut self, body: &ImageBody, base_name: &str) -> String {
        let Some(text) = &body.repository else {
            return match &self.settings.registry {
                Some(registry) => format!("{registry}/{base_name}"),
                None => base_name.to_owned(),
            };
        };
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

    /// Build argument names, labels and platform.
    fn check_build_values(&mut self, body: &ImageBody) {
        for pair in &body.build_args {
            if !is_env_key(&pair.key.value) {
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
            check_label(pair, self.diags);
        }
        if let Some(platform) = &body.platform {
            self.check_platform(platform);
        }
    }

    fn pull_policy(&mut self, body: &ImageBody) -> PullPolicy {
        let Some(text) = &body.pull_policy else {
            return PullPolicy::Missing;
        };
        PullPolicy::parse(&text.value).unwrap_or_else(|| {
            self.diags.push(
                Diagnostic::new(Code::InvalidValue, format!("unknown pull policy `{}`", text.value))
                    .label(text.span, "not a pull policy")
                    .help("use `always`, `missing` or `never`"),
            );
            PullPolicy::Missing
        })
    }

    /// The index of the `target` stage, else of the last stage.
    fn target(&mut self, body: &ImageBody, stages: &[Stage], image: &str) -> usize {
        let last = stages.len().saturating_sub(1);
        let Some(text) = &body.target else {
            return last;
        };
        if let Some(index) = stages.iter().position(|s| s.name == text.value) {
            return index;
        }
        self.diags.push(
            Diagnostic::new(Code::UnknownReference, format!("image `{image}` has no stage `{}`", text.value))
                .label(text.span, "unknown stage")
                .help_opt(did_you_mean(&text.value, stages.iter().map(|s| s.name.as_str()))),
        );
        last
    }

    /// Checks a stage's instructions, remembering which of its copies name missing files
    /// (the build refuses those images, the rest of the project still builds).
    fn check_stage_instructions(&mut self, stage: &mut Stage, ctx: &StageContext<'_>) {
        let before = self.diags.iter().count();
        check_stage(&stage.instructions, ctx, self.diags);
        stage.missing_files = self
            .diags
            .iter()
            .skip(before)
            .filter(|d| d.code == Code::MissingFile)
            .filter_map(Diagnostic::primary_span)
            .collect();
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

    /// The first tag that says which build it is: not `latest` (which moves, and which
    /// reviewers and linters flag in a `FROM`) and naming no git variable (a tag such as
    /// `{git.short-sha}` changes with every commit). Else the first without a git
    /// variable, else the first.
    fn committed_tag(&self, tags: &[Text]) -> usize {
        let stable = |tag: &&Text| !self.sources.text(tag.span).contains("{git.");
        tags.iter()
            .position(|tag| stable(&tag) && tag.value != "latest")
            .or_else(|| tags.iter().position(|tag| stable(&tag)))
            .unwrap_or(0)
    }

    /// A stage's `from ... platform=`: a platform, or one written with the variables
    /// BuildKit sets for every build (`$BUILDPLATFORM`, `linux/$TARGETARCH`), which the
    /// classic builder does not set.
    fn check_stage_platform(&mut self, platform: &Text) {
        let (names, rest) = build_platform_variables(&platform.value);
        if names.is_empty() {
            self.check_platform(platform);
            return;
        }
        if let Some(unknown) = rest {
            self.diags.push(
                Diagnostic::new(Code::InvalidValue, format!("`{unknown}` is not a variable BuildKit sets"))
                    .label(platform.span, "unknown variable")
                    .help(format!(
                        "use {}",
                        crate::model::BUILD_PLATFORM_VARIABLES.map(|v| format!("`${v}`")).join(", ")
                    )),
            );
        } else if self.settings.level == Level::Classic {
            self.diags.push(
                Diagnostic::new(
                    Code::UnsupportedAtLevel,
                    format!("`${}` needs `dockerfile-level \"1.2\"` or later", names[0]),
                )
                .label(platform.span, "the classic builder does not set these variables")
                .help("set `dockerfile-level \"1.2\"` (BuildKit), or write the platform: `platform=\"linux/amd64\"`"),
            );
        }
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
            check_line(pattern, "an ignore pattern", self.diags);
            match Pattern::new(&pattern.value) {
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

    /// `ignore-package-outputs` leaves the host's `node_modules` (and the like) out of
    /// the context; warn when a `copy` still ships it over what the image installs, because
    /// the copy names it (so the default gives way) or an `ignore` pattern brings it back.
    fn check_shipped_package_outputs(&mut self, image: &Image, ignore_texts: &[Text]) {
        let outputs = image.package_outputs();
        if outputs.is_empty() {
            return;
        }
        let copied = image.context_paths();
        let kept: Vec<&str> =
            outputs.iter().copied().filter(|output| keeps_default_ignore(output, &copied)).collect();
        let user = ignore_texts.iter().map(|t| t.value.as_str());
        let Ok(ignore) = Matcher::new(kept.iter().copied().chain(user)) else { return };
        let instructions: Vec<_> = image.needed_instructions().collect();
        for output in outputs {
            let name = output.trim_start_matches("**/");
            if name.contains('*') || ignore.is_excluded(name) || !image.context_dir.join(name).exists() {
                continue;
            }
            let shipping = instructions.iter().find_map(|i| match &i.value {
                Instruction::Copy(copy) if copy.from == CopyFrom::Context => {
                    copy.sources.iter().find(|source| {
                        let path = clean_path(&source.value);
                        path == "." || path == name || path.starts_with(&format!("{name}/"))
                    })
                }
                _ => None,
            });
            let installer = instructions.iter().find(|i| i.value.package_outputs().contains(&output));
            let (Some(source), Some(installer)) = (shipping, installer) else { continue };
            let node = installer.value.node_name();
            let help = if kept.contains(&output) {
                format!(
                    "an `ignore` pattern brings `{name}` back; remove it, so that `{node}` alone provides it"
                )
            } else {
                format!("copy only the sources; `{node}` provides `{name}` in the image")
            };
            self.diags.push(
                Diagnostic::new(
                    Code::ShipsHostPackages,
                    format!("the host's `{name}` is copied into image `{}`", image.name),
                )
                .label(source.span, format!("copies the context's `{name}`"))
                .label(installer.span, format!("over what `{node}` installs here"))
                .help(help),
            );
        }
    }

    pub(super) fn check_tag_collisions(&mut self, images: &[Image]) {
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
}

/// The `$NAME`/`${NAME}` references of a platform, and the first that is not one of
/// BuildKit's (or a `$` that starts no reference).
fn build_platform_variables(value: &str) -> (Vec<&str>, Option<&str>) {
    let mut names = Vec::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        let after = &rest[at + 1..];
        let (name, used) = if let Some(inner) = after.strip_prefix('{') {
            let Some(end) = inner.find('}') else {
                return (vec![&rest[at..]], Some(&rest[at..]));
            };
            (&inner[..end], end + 2)
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], end)
        };
        names.push(name);
        if !crate::model::BUILD_PLATFORM_VARIABLES.contains(&name) {
            return (names, Some(&rest[at..at + 1 + used]));
        }
        rest = &after[used..];
    }
    (names, None)
}
