//! The stages of one image: their names and bases, what they build on and copy from,
//! and the stages nothing uses.

use std::collections::HashMap;

use kiln_reference::ImageRef;

use super::{Names, Resolver};
use crate::ast::{From, ImageBody};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::{Image, Stage, StageInput, declares_arg};
use crate::source::{Span, Spanned};
use crate::suggest::did_you_mean;

/// Stage names Docker reserves.
const RESERVED_STAGE_NAMES: &[&str] = &["scratch", "context"];

impl Resolver<'_> {
    pub(super) fn stages(&mut self, body: &ImageBody, image: &str, name_span: Span) -> Vec<Stage> {
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
                platform: body.implicit.platform.clone(),
                instructions: body.implicit.instructions.clone(),
                missing_files: Vec::new(),
                builder_for: None,
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
                    platform: decl.body.platform.clone(),
                    instructions: decl.body.instructions.clone(),
                    missing_files: Vec::new(),
                    builder_for: None,
                }
            })
            .collect()
    }

    /// Checks what a stage builds on and copies from: stages of the same image, other
    /// images of the manifest, outside references.
    pub(super) fn check_stage_inputs(
        &mut self,
        stage: &Stage,
        stage_names: &[String],
        image: &str,
        names: &Names<'_>,
    ) {
        for input in stage.inputs() {
            match input {
                StageInput::Stage(name, span) => {
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
                StageInput::Image(name, span) => {
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
                StageInput::External(reference, span) => {
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
    pub(super) fn check_build_args(&mut self, body: &ImageBody, stages: &[Stage]) {
        for pair in &body.build_args {
            if !declares_arg(stages, &pair.key.value) {
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

    /// A stage that neither the image nor any of its variants builds is dead code.
    pub(super) fn check_unused_stages(&mut self, images: &[Image]) {
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
}
