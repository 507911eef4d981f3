//! Lowering: KDL nodes into the typed declarations of [`crate::ast`].
//!
//! This pass checks the shape of each node (known names, argument counts and types,
//! known properties) and keeps a span on every value. It does not look across nodes:
//! names, references and values are checked later, by `resolve`.
//!
//! This module owns the grammar of files, images and stages (which node goes where);
//! `instruction` lowers the instruction nodes and `reader` reads one node's entries.

use kdl::{KdlDocument, KdlNode};

use crate::ast::{
    Declarations, From, GroupDecl, ImageBody, ImageDecl, Instruction, InstructionKind, KeyValue, StageBody,
    StageDecl, Text, VarDecl, VariantDecl,
};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::source::{FileId, Span, Spanned};
use crate::suggest::did_you_mean;

mod instruction;
mod reader;

use reader::{NodeReader, PropsAny};

const TOP_LEVEL: &[&str] = &[
    "project",
    "registry",
    "output",
    "dockerfile-level",
    "syntax-directive",
    "pin-bases",
    "allow",
    "var",
    "include",
    "template",
    "image",
    "group",
];
const ROOT_ONLY: &[&str] =
    &["project", "registry", "output", "dockerfile-level", "syntax-directive", "pin-bases", "allow"];
const IMAGE_SETTINGS: &[&str] = &[
    "extends",
    "description",
    "context",
    "repository",
    "tags",
    "needs",
    "build-arg",
    "label",
    "platform",
    "target",
    "pull-policy",
    "ignore",
    "stage",
    "variant",
    "from",
];

/// Every instruction node name, for did-you-mean.
fn instruction_names() -> impl Iterator<Item = &'static str> {
    InstructionKind::ALL.iter().map(|k| k.name())
}

/// What kind of block an image-like body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Image,
    Template,
    Variant,
}

/// Lowers one parsed file into `decls`. Returns the `include` patterns it lists.
pub(crate) fn lower_file(
    doc: &KdlDocument,
    file: FileId,
    text: &str,
    is_root: bool,
    decls: &mut Declarations,
    diags: &mut Diagnostics,
) -> Vec<Text> {
    let mut lowerer = Lowerer { file, text, diags };
    let mut includes = Vec::new();
    for node in doc.nodes() {
        lowerer.top_level(node, is_root, decls, &mut includes);
    }
    includes
}

struct Lowerer<'a> {
    file: FileId,
    text: &'a str,
    diags: &'a mut Diagnostics,
}

impl Lowerer<'_> {
    fn span(&self, span: miette::SourceSpan) -> Span {
        Span::new(self.file, span.offset(), span.len())
    }

    fn name_span(&self, node: &KdlNode) -> Span {
        self.span(node.name().span())
    }

    fn error(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    fn top_level(
        &mut self,
        node: &KdlNode,
        is_root: bool,
        decls: &mut Declarations,
        includes: &mut Vec<Text>,
    ) {
        let name = node.name().value();
        if !self.check_annotations(node) {
            return;
        }
        if ROOT_ONLY.contains(&name) && !is_root {
            let span = self.name_span(node);
            self.error(
                Diagnostic::new(
                    Code::MisplacedNode,
                    format!("`{name}` can only be set in the root manifest"),
                )
                .label(span, "in an included file")
                .help("project-wide settings live in the root `kiln.kdl`; move this node there"),
            );
            return;
        }
        match name {
            "project" => self.setting(node, &mut decls.project),
            "registry" => self.setting(node, &mut decls.registry),
            "output" => self.setting(node, &mut decls.output),
            "dockerfile-level" => self.setting(node, &mut decls.level),
            "syntax-directive" => self.setting(node, &mut decls.syntax_directive),
            "pin-bases" => self.setting_scalar(node, &mut decls.pin_bases),
            "allow" => {
                let mut n = self.node(node, &[], false);
                if n.arg_count(1, None) {
                    decls.allow.extend(n.arg_scalars(0, "a warning code"));
                }
            }
            "var" => {
                let mut n = self.node(node, &[], false);
                if let (Some(name), Some(value)) =
                    (n.arg_text(0, "a variable name"), n.arg_scalar(1, "a value"))
                {
                    n.arg_count(2, Some(2));
                    decls.vars.push(VarDecl { name, value });
                } else {
                    n.arg_count(2, Some(2));
                }
            }
            "include" => {
                let mut n = self.node(node, &[], false);
                n.arg_count(1, None);
                includes.extend(n.arg_texts(0, "a file path or glob"));
            }
            "template" | "image" => {
                let kind = if name == "image" { BodyKind::Image } else { BodyKind::Template };
                if let Some(decl) = self.image_decl(node, kind) {
                    if kind == BodyKind::Image {
                        decls.images.push(decl);
                    } else {
                        decls.templates.push(decl);
                    }
                }
            }
            "group" => {
                let mut n = self.node(node, &[], false);
                n.arg_count(2, None);
                if let Some(name) = n.arg_text(0, "a group name") {
                    let members = n.arg_texts(1, "an image or group name");
                    decls.groups.push(GroupDecl { name, members });
                }
            }
            _ => self.unknown_node(node, TOP_LEVEL, "at the top level"),
        }
    }

    /// A setting that takes one string and may be given once (the first one counts).
    fn setting(&mut self, node: &KdlNode, slot: &mut Option<Text>) {
        self.setting_of(node, slot, false);
    }

    /// A setting whose value may be a boolean or a number (kept as its text).
    fn setting_scalar(&mut self, node: &KdlNode, slot: &mut Option<Text>) {
        self.setting_of(node, slot, true);
    }

    fn setting_of(&mut self, node: &KdlNode, slot: &mut Option<Text>, scalar: bool) {
        let mut n = self.node(node, &[], false);
        n.arg_count(1, Some(1));
        let value = if scalar { n.arg_scalar(0, "a value") } else { n.arg_text(0, "a string") };
        let Some(value) = value else {
            return;
        };
        if let Some(previous) = slot {
            let previous = previous.span;
            let name = node.name().value();
            self.error(
                Diagnostic::new(Code::DuplicateName, format!("`{name}` is set twice"))
                    .label(value.span, "set again here")
                    .label(previous, "first set here"),
            );
            return;
        }
        *slot = Some(value);
    }

    fn image_decl(&mut self, node: &KdlNode, kind: BodyKind) -> Option<ImageDecl> {
        let mut n = self.node(node, &[], true);
        n.arg_count(1, Some(1));
        let what = if kind == BodyKind::Image { "an image name" } else { "a template name" };
        let name = n.arg_text(0, what)?;
        let body = self.image_body(node, kind);
        Some(ImageDecl { name, span: self.span(node.span()), file: self.file, body })
    }

    fn image_body(&mut self, node: &KdlNode, kind: BodyKind) -> ImageBody {
        let mut body = ImageBody::default();
        for child in self.children(node) {
            let name = child.name().value();
            match name {
                "extends" if kind != BodyKind::Variant => {
                    let mut n = self.node(child, &[], false);
                    n.arg_count(1, None);
                    body.extends.extend(n.arg_texts(0, "a template name"));
                }
                "description" => self.setting(child, &mut body.description),
                "context" if kind != BodyKind::Variant => self.setting(child, &mut body.context),
                "repository" if kind != BodyKind::Variant => {
                    self.setting(child, &mut body.repository);
                }
                "platform" => self.setting(child, &mut body.platform),
                "target" => self.setting(child, &mut body.target),
                "pull-policy" => self.setting(child, &mut body.pull_policy),
                "tags" => {
                    let mut n = self.node(child, &[], false);
                    n.arg_count(1, None);
                    body.tags.get_or_insert_with(Vec::new).extend(n.arg_scalars(0, "a tag"));
                }
                "needs" => {
                    let mut n = self.node(child, &[], false);
                    n.arg_count(1, None);
                    body.needs.extend(n.arg_texts(0, "an engine label"));
                }
                "build-arg" => {
                    let pairs = self.key_values(child);
                    body.build_args.extend(pairs);
                }
                "label" => {
                    let pairs = self.key_values(child);
                    body.labels.extend(pairs);
                }
                "ignore" => {
                    let mut n = self.node(child, &[], false);
                    n.arg_count(1, None);
                    body.ignore.extend(n.arg_texts(0, "an ignore pattern"));
                }
                "stage" => {
                    let mut n = self.node(child, &[], true);
                    n.arg_count(1, Some(1));
                    if let Some(stage_name) = n.arg_text(0, "a stage name") {
                        let stage_body = self.stage_body(child);
                        body.stages.push(StageDecl {
                            name: stage_name,
                            span: self.span(child.span()),
                            body: stage_body,
                        });
                    }
                }
                "variant" if kind != BodyKind::Variant => {
                    let mut n = self.node(child, &[], true);
                    n.arg_count(1, Some(1));
                    if let Some(variant_name) = n.arg_text(0, "a variant name") {
                        let variant_body = self.image_body(child, BodyKind::Variant);
                        body.variants.push(VariantDecl {
                            name: variant_name,
                            span: self.span(child.span()),
                            body: variant_body,
                        });
                    }
                }
                "from" => self.from(child, &mut body.implicit),
                "extends" | "context" | "repository" | "variant" => {
                    let span = self.name_span(child);
                    self.error(
                        Diagnostic::new(Code::MisplacedNode, format!("`{name}` cannot be set in a variant"))
                            .label(span, "not allowed here")
                            .help(
                                "a variant shares its image's context and repository; set them on the image",
                            ),
                    );
                }
                _ if let Some(kind) = InstructionKind::from_name(name) => {
                    self.push_instruction(child, kind, &mut body.implicit.instructions);
                }
                _ => {
                    let candidates: Vec<&str> =
                        IMAGE_SETTINGS.iter().copied().chain(instruction_names()).collect();
                    let place = match kind {
                        BodyKind::Image => "in an image",
                        BodyKind::Template => "in a template",
                        BodyKind::Variant => "in a variant",
                    };
                    self.unknown_node(child, &candidates, place);
                }
            }
        }
        body
    }

    fn stage_body(&mut self, node: &KdlNode) -> StageBody {
        let mut body = StageBody::default();
        for child in self.children(node) {
            let name = child.name().value();
            if name == "from" {
                self.from(child, &mut body);
            } else if let Some(kind) = InstructionKind::from_name(name) {
                self.push_instruction(child, kind, &mut body.instructions);
            } else if IMAGE_SETTINGS.contains(&name) {
                let span = self.name_span(child);
                self.error(
                    Diagnostic::new(
                        Code::MisplacedNode,
                        format!("`{name}` is an image setting, not a stage instruction"),
                    )
                    .label(span, "not allowed in a stage")
                    .help(format!("move `{name}` to the image block")),
                );
            } else {
                let candidates: Vec<&str> = instruction_names().chain(["from"]).collect();
                self.unknown_node(child, &candidates, "in a stage");
            }
        }
        body
    }

    /// Lowers an instruction node onto a stage's list, followed by its block if it is a
    /// build-only package node.
    fn push_instruction(
        &mut self,
        node: &KdlNode,
        kind: InstructionKind,
        instructions: &mut Vec<Spanned<Instruction>>,
    ) {
        let Some(instruction) = self.instruction(node, kind) else { return };
        let at = instructions.len();
        instructions.push(instruction);
        let (Instruction::Apt(packages) | Instruction::Apk(packages)) = &instructions[at].value else {
            return;
        };
        if packages.build_only_for.is_none() || node.children().is_none() {
            return;
        }
        let count = self.build_only_block(node, instructions);
        if let Instruction::Apt(packages) | Instruction::Apk(packages) = &mut instructions[at].value {
            packages.build_only_for = Some(count);
        }
    }

    /// `from "python:3.11"`, `from stage=deps` or `from image=base`.
    fn from(&mut self, node: &KdlNode, body: &mut StageBody) {
        let mut n = self.node(node, &["stage", "image", "platform"], false);
        n.arg_count(0, Some(1));
        let external = n.arg_text(0, "an image reference");
        let stage = n.prop_text("stage");
        let image = n.prop_text("image");
        let platform = n.prop_text("platform");
        let node_span = n.node_span();
        let mut given: Vec<From> = Vec::new();
        given.extend(external.map(From::External));
        given.extend(stage.map(From::Stage));
        given.extend(image.map(From::Image));
        // On error the node still gives the stage a base (a placeholder, or the first
        // one written), so that "no `from`" is not reported on top.
        let from = match given.len() {
            1 => given.remove(0),
            0 => {
                self.error(
                    Diagnostic::new(Code::MissingValue, "`from` needs a base")
                        .label(node_span, "no base given")
                        .help("write `from \"python:3.11-slim\"`, `from stage=NAME` or `from image=NAME`"),
                );
                From::External(Spanned::new("scratch".to_owned(), node_span))
            }
            _ => {
                self.error(
                    Diagnostic::new(Code::ConflictingValues, "`from` takes exactly one base")
                        .label(node_span, "several bases given")
                        .help("use one of an image reference, `stage=` or `image=`"),
                );
                given.remove(0)
            }
        };
        if let Some(previous) = &body.from {
            self.error(
                Diagnostic::new(Code::DuplicateName, "a stage has one `from`")
                    .label(node_span, "second `from`")
                    .label(previous.span, "first `from`")
                    .help("start another stage with `stage NAME { from ... }`"),
            );
            return;
        }
        body.from = Some(Spanned::new(from, node_span));
        body.platform = platform;
    }

    /// `env KEY="value" …`: properties, at least one.
    fn key_values(&mut self, node: &KdlNode) -> Vec<KeyValue> {
        let mut n = self.node(node, PropsAny::ANY, false);
        n.arg_count(0, Some(0));
        let pairs = n.all_props();
        if pairs.is_empty() {
            let span = n.node_span();
            let name = node.name().value();
            self.error(
                Diagnostic::new(Code::MissingValue, format!("`{name}` needs at least one `KEY=\"value\"`"))
                    .label(span, "nothing set"),
            );
        }
        pairs
    }

    fn unknown_node(&mut self, node: &KdlNode, candidates: &[&str], place: &str) {
        let name = node.name().value();
        let span = self.name_span(node);
        let mut diagnostic = Diagnostic::new(Code::UnknownNode, format!("unknown node `{name}` {place}"))
            .label(span, "not a kiln node here");
        let elsewhere = TOP_LEVEL.iter().chain(IMAGE_SETTINGS).any(|n| *n == name)
            || InstructionKind::from_name(name).is_some();
        if elsewhere {
            diagnostic = diagnostic.help(format!("`{name}` is valid elsewhere, not {place}"));
        } else {
            diagnostic = diagnostic.help_opt(did_you_mean(name, candidates.iter().copied()));
        }
        self.error(diagnostic);
    }

    /// The nodes of `node`'s `{ ... }` block that `check_annotations` lets through.
    fn children<'n>(&mut self, node: &'n KdlNode) -> Vec<&'n KdlNode> {
        let children = node.children().map_or(&[][..], |doc| doc.nodes());
        children.iter().filter(|child| self.check_annotations(child)).collect()
    }

    /// Rejects KDL type annotations, which kiln gives no meaning to.
    fn check_annotations(&mut self, node: &KdlNode) -> bool {
        let mut ok = true;
        for ty in node.ty().into_iter().chain(node.entries().iter().filter_map(|entry| entry.ty())) {
            let span = self.span(ty.span());
            self.error(
                Diagnostic::new(Code::ArgumentType, "type annotations are not used by kiln")
                    .label(span, "remove this annotation"),
            );
            ok = false;
        }
        ok
    }

    fn node<'r>(
        &'r mut self,
        node: &'r KdlNode,
        props: &'r [&'r str],
        children_allowed: bool,
    ) -> NodeReader<'r> {
        let mut reader = NodeReader::new(self.file, self.text, self.diags, node, props);
        if !children_allowed && let Some(children) = node.children() {
            let span = reader.span(children.span());
            let name = node.name().value();
            reader.error(
                Diagnostic::new(Code::MisplacedNode, format!("`{name}` takes no block"))
                    .label(span, "unexpected `{ ... }`"),
            );
        }
        reader
    }
}
