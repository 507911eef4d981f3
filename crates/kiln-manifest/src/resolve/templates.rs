//! Templates and variants: `extends` chains flattened into each image's body, and
//! each variant laid over its image.

use std::collections::HashMap;

use indexmap::IndexMap;

use super::Resolver;
use crate::ast::{ImageBody, ImageDecl, StageBody, StageDecl, Text, VisitStrings};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::merge::merge_bodies;
use crate::suggest::did_you_mean;

/// Applies `extends` chains, remembering each template's flattened body.
pub(super) struct Flattener<'d> {
    pub(super) templates: &'d IndexMap<String, &'d ImageDecl>,
    pub(super) images: &'d IndexMap<String, &'d ImageDecl>,
    pub(super) done: HashMap<String, ImageBody>,
}

impl Flattener<'_> {
    pub(super) fn flatten(
        &mut self,
        decl: &ImageDecl,
        stack: &mut Vec<String>,
        diags: &mut Diagnostics,
    ) -> ImageBody {
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

impl Resolver<'_> {
    /// A variant is its image with the variant's body laid over it. Instructions written
    /// directly in the variant go to the end of the image's target stage.
    pub(super) fn variant_body(&mut self, image: &ImageBody, variant: &ImageBody, name: &Text) -> ImageBody {
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
                        overlay.stages.push(StageDecl {
                            name: base.name.clone(),
                            span: base.span,
                            body: StageBody { from: None, platform: None, instructions },
                        });
                    }
                }
            }
        }
        merge_bodies(image, &overlay)
    }

    pub(super) fn interpolate_body(&mut self, body: &mut ImageBody) {
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
}
