//! Resolution: from the declarations of every file to the checked [`Project`].
//!
//! Templates are applied, variants expanded, variables interpolated, and every name,
//! reference and value is checked. The project is built even when there are errors
//! (with placeholders), so that later passes such as cycle detection can still report
//! their own problems in the same run.
//!
//! `settings` reads the project-wide settings, `templates` flattens templates and
//! variants, `image` assembles each image (with `stages` for its stages) and `groups`
//! expands groups; this module runs them in order and checks names across the project.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use indexmap::IndexMap;

use crate::ast::{Declarations, From, ImageBody, ImageDecl, Text};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::{Group, Image, VariantOf};
use crate::source::{SourceMap, Span, Spanned};
use crate::vars::Variables;

mod groups;
mod image;
mod settings;
mod stages;
mod templates;
mod user;

pub use settings::DEFAULT_OUTPUT;
pub(crate) use settings::{Settings, allowed_warnings, resolve_settings};
use templates::Flattener;

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
        let image_bases = image_bases(&bodies);
        let lookup = Names {
            images: &known,
            image_list: &names,
            templates: &template_names,
            image_bases: &image_bases,
        };

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
        self.check_runs_as_root(&built);
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
}

/// Each image that another one starts from (`from image=`), with the first such image.
fn image_bases(bodies: &[(&ImageDecl, ImageBody)]) -> HashMap<String, String> {
    fn visit(name: &str, body: &ImageBody, bases: &mut HashMap<String, String>) {
        for stage in std::iter::once(&body.implicit).chain(body.stages.iter().map(|s| &s.body)) {
            if let Some(Spanned { value: From::Image(base), .. }) = &stage.from {
                bases.entry(base.value.clone()).or_insert_with(|| name.to_owned());
            }
        }
        for variant in &body.variants {
            visit(&format!("{name}.{}", variant.name.value), &variant.body, bases);
        }
    }
    let mut bases = HashMap::new();
    for (decl, body) in bodies {
        visit(&decl.name.value, body, &mut bases);
    }
    bases
}

/// The names known across the project, for references and hints.
pub(crate) struct Names<'a> {
    pub images: &'a HashSet<&'a str>,
    pub image_list: &'a [String],
    pub templates: &'a HashSet<&'a str>,
    /// Images that another image starts from (`from image=`), with one such image.
    pub image_bases: &'a HashMap<String, String>,
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
