//! Lowering: KDL nodes into the typed declarations of [`crate::ast`].
//!
//! This pass checks the shape of each node (known names, argument counts and types,
//! known properties) and keeps a span on every value. It does not look across nodes:
//! names, references and values are checked later, by `resolve`.

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};

use crate::ast::{
    Copy, CopyFrom, Declarations, From, GroupDecl, Healthcheck, ImageBody, ImageDecl, Instruction,
    InstructionKind, KeyValue, Pip, Run, StageBody, StageDecl, Text, User, VarDecl, VariantDecl,
};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::source::{FileId, Span, Spanned};
use crate::suggest::did_you_mean;

const TOP_LEVEL: &[&str] = &[
    "project",
    "registry",
    "output",
    "dockerfile-level",
    "syntax-directive",
    "pin-bases",
    "var",
    "include",
    "template",
    "image",
    "group",
];
const ROOT_ONLY: &[&str] =
    &["project", "registry", "output", "dockerfile-level", "syntax-directive", "pin-bases"];
const IMAGE_SETTINGS: &[&str] = &[
    "extends",
    "description",
    "context",
    "repository",
    "tags",
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
                    if let Some(instruction) = self.instruction(child, kind) {
                        body.implicit.instructions.push(instruction);
                    }
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
                if let Some(instruction) = self.instruction(child, kind) {
                    body.instructions.push(instruction);
                }
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

    /// `from "python:3.11"`, `from stage=deps` or `from image=base`.
    fn from(&mut self, node: &KdlNode, body: &mut StageBody) {
        let mut n = self.node(node, &["stage", "image"], false);
        n.arg_count(0, Some(1));
        let external = n.arg_text(0, "an image reference");
        let stage = n.prop_text("stage");
        let image = n.prop_text("image");
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
    }

    /// Lowers an instruction node. A node with shape errors is dropped, so that later
    /// checks do not report consequences of the same mistake.
    fn instruction(&mut self, node: &KdlNode, kind: InstructionKind) -> Option<Spanned<Instruction>> {
        let errors_before = self.diags.error_count();
        let instruction = self.instruction_inner(node, kind)?;
        (self.diags.error_count() == errors_before).then_some(instruction)
    }

    fn instruction_inner(&mut self, node: &KdlNode, kind: InstructionKind) -> Option<Spanned<Instruction>> {
        use InstructionKind as K;
        let span = self.span(node.span());
        let instruction = match kind {
            K::Workdir => {
                let mut n = self.node(node, &[], false);
                n.arg_count(1, Some(1));
                Instruction::Workdir(n.arg_text(0, "a path")?)
            }
            K::Copy => self.copy(node)?,
            K::Run => self.run(node)?,
            K::Env => Instruction::Env(self.key_values(node)),
            K::Label => Instruction::Label(self.key_values(node)),
            K::Arg => {
                let mut n = self.node(node, &[], false);
                n.arg_count(1, Some(2));
                let name = n.arg_text(0, "an argument name")?;
                let default = n.arg_scalar(1, "a default value");
                Instruction::Arg { name, default }
            }
            K::User => {
                let mut n = self.node(node, &["uid", "gid"], false);
                n.arg_count(1, Some(1));
                let name = n.arg_scalar(0, "a user name or uid")?;
                let uid = n.prop_u32("uid");
                let gid = n.prop_u32("gid");
                Instruction::User(User { name, uid, gid })
            }
            K::Expose => self.list(node, "a port", Instruction::Expose)?,
            K::Volume => self.list(node, "a path", Instruction::Volume)?,
            K::Entrypoint => self.list(node, "a program or argument", Instruction::Entrypoint)?,
            K::Cmd => self.list(node, "a program or argument", Instruction::Cmd)?,
            K::Shell => self.list(node, "a program or argument", Instruction::Shell)?,
            K::Apt => self.list(node, "a package name", Instruction::Apt)?,
            K::Apk => self.list(node, "a package name", Instruction::Apk)?,
            K::StopSignal => {
                let mut n = self.node(node, &[], false);
                n.arg_count(1, Some(1));
                Instruction::StopSignal(n.arg_scalar(0, "a signal")?)
            }
            K::Healthcheck => self.healthcheck(node)?,
            K::Pip => {
                let mut n = self.node(node, &["requirements", "user"], false);
                let packages = n.arg_texts(0, "a package requirement");
                let requirements = n.prop_text("requirements");
                let user = n.prop_bool("user").unwrap_or(false);
                if packages.is_empty() && requirements.is_none() {
                    let span = n.node_span();
                    self.error(
                        Diagnostic::new(Code::MissingValue, "`pip` needs packages or `requirements=`")
                            .label(span, "nothing to install")
                            .help("write `pip requirements=\"requirements.txt\"` or `pip flask gunicorn`"),
                    );
                    return None;
                }
                Instruction::Pip(Pip { packages, requirements, user })
            }
            K::Npm => {
                let mut n = self.node(node, &["production"], false);
                n.arg_count(0, Some(0));
                Instruction::Npm { production: n.prop_bool("production").unwrap_or(false) }
            }
            K::GoMod => {
                self.node(node, &[], false).arg_count(0, Some(0));
                Instruction::GoMod
            }
            K::CargoFetch => {
                self.node(node, &[], false).arg_count(0, Some(0));
                Instruction::CargoFetch
            }
        };
        Some(Spanned::new(instruction, span))
    }

    fn list(
        &mut self,
        node: &KdlNode,
        what: &str,
        make: fn(Vec<Text>) -> Instruction,
    ) -> Option<Instruction> {
        let mut n = self.node(node, &[], false);
        if !n.arg_count(1, None) {
            return None;
        }
        Some(make(n.arg_scalars(0, what)))
    }

    fn copy(&mut self, node: &KdlNode) -> Option<Instruction> {
        let mut n = self.node(node, &["from", "image", "ref", "chown", "chmod", "link"], false);
        if !n.arg_count(2, None) {
            return None;
        }
        let mut paths = n.arg_texts(0, "a path");
        let from = n.prop_text("from");
        let image = n.prop_text("image");
        let reference = n.prop_text("ref");
        let chown = n.prop_scalar("chown");
        let chmod = n.prop_scalar("chmod");
        let link = n.prop_bool("link").unwrap_or(false);
        let node_span = n.node_span();
        let dest = paths.pop()?;
        let mut sources: Vec<CopyFrom> = Vec::new();
        sources.extend(from.map(CopyFrom::Stage));
        sources.extend(image.map(CopyFrom::Image));
        sources.extend(reference.map(CopyFrom::External));
        if sources.len() > 1 {
            self.error(
                Diagnostic::new(Code::ConflictingValues, "`copy` takes files from one place")
                    .label(node_span, "several of `from=`, `image=` and `ref=`")
                    .help("use `from=` for a stage of this image, `image=` for another image of the manifest, `ref=` for an outside image"),
            );
            return None;
        }
        if paths.is_empty() {
            return None;
        }
        Some(Instruction::Copy(Copy {
            sources: paths,
            dest,
            from: sources.pop().unwrap_or(CopyFrom::Context),
            chown,
            chmod,
            link,
        }))
    }

    fn run(&mut self, node: &KdlNode) -> Option<Instruction> {
        let mut n = self.node(node, &[], true);
        if !n.arg_count(1, None) {
            return None;
        }
        let args = n.arg_texts(0, "a shell command");
        let mut commands = Vec::new();
        for arg in args {
            commands.extend(self.split_commands(&arg));
        }
        let mut caches = Vec::new();
        for child in self.children(node) {
            if child.name().value() == "cache" {
                let mut c = self.node(child, &[], false);
                c.arg_count(1, None);
                caches.extend(c.arg_texts(0, "a cache directory"));
            } else {
                self.unknown_node(child, &["cache"], "in `run`");
            }
        }
        if commands.is_empty() {
            let span = self.span(node.span());
            self.error(
                Diagnostic::new(Code::MissingValue, "`run` has no command")
                    .label(span, "only blank or comment lines"),
            );
            return None;
        }
        Some(Instruction::Run(Run { commands, caches }))
    }

    /// A `run` string may hold several commands, one per line. Lines ending in `\` go
    /// on, blank lines and `#` comment lines are dropped.
    fn split_commands(&self, arg: &Text) -> Vec<Text> {
        let is_comment = |line: &str| line.is_empty() || line.starts_with('#');
        if !arg.value.contains('\n') {
            return if is_comment(arg.value.trim()) { Vec::new() } else { vec![arg.clone()] };
        }
        let source = self.text.get(arg.span.start as usize..arg.span.end as usize).unwrap_or("");
        // Points at a line of the string when it can be found in the source.
        let line_span =
            |line: &str| source.find(line).map_or(arg.span, |offset| arg.span.sub(offset, line.len()));
        let mut commands = Vec::new();
        let mut pending: Option<(String, Span)> = None;
        for line in arg.value.lines().map(str::trim) {
            if pending.is_none() && is_comment(line) {
                continue;
            }
            let (mut command, span) = pending.take().unwrap_or_else(|| (String::new(), line_span(line)));
            if let Some(head) = line.strip_suffix('\\') {
                command.push_str(head.trim_end());
                command.push(' ');
                pending = Some((command, span));
            } else {
                command.push_str(line);
                commands.push(Spanned::new(command.trim().to_owned(), span));
            }
        }
        // A last line that continues into nothing is kept as written, to be reported.
        if let Some((command, span)) = pending {
            commands.push(Spanned::new(format!("{} \\", command.trim()), span));
        }
        commands
    }

    fn healthcheck(&mut self, node: &KdlNode) -> Option<Instruction> {
        let mut n = self.node(node, &["interval", "timeout", "start-period", "retries", "none"], false);
        let none = n.prop_bool("none").unwrap_or(false);
        let command = n.arg_scalars(0, "a program or argument");
        let interval = n.prop_scalar("interval");
        let timeout = n.prop_scalar("timeout");
        let start_period = n.prop_scalar("start-period");
        let retries = n.prop_u32("retries");
        let span = n.node_span();
        if none {
            if !command.is_empty()
                || interval.is_some()
                || timeout.is_some()
                || start_period.is_some()
                || retries.is_some()
            {
                self.error(
                    Diagnostic::new(Code::ConflictingValues, "`healthcheck none=#true` takes nothing else")
                        .label(span, "a command or option beside `none=#true`"),
                );
                return None;
            }
            return Some(Instruction::Healthcheck(None));
        }
        if command.is_empty() {
            self.error(
                Diagnostic::new(Code::MissingValue, "`healthcheck` needs a command")
                    .label(span, "no command")
                    .help("write `healthcheck curl \"-f\" \"http://localhost/\"`, or `healthcheck none=#true` to disable an inherited check"),
            );
            return None;
        }
        Some(Instruction::Healthcheck(Some(Healthcheck {
            command,
            interval,
            timeout,
            start_period,
            retries,
        })))
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

/// Marker for nodes whose properties are free-form keys (`env`, `label`, `build-arg`).
struct PropsAny;

impl PropsAny {
    const ANY: &'static [&'static str] = &["*"];
}

/// Reads the entries of one node, reporting shape errors as it goes. On drop, any
/// property that was never asked for is reported as unknown.
struct NodeReader<'n> {
    file: FileId,
    text: &'n str,
    diags: &'n mut Diagnostics,
    node: &'n KdlNode,
    args: Vec<&'n KdlEntry>,
    props: Vec<&'n KdlEntry>,
}

impl<'n> NodeReader<'n> {
    fn new(
        file: FileId,
        text: &'n str,
        diags: &'n mut Diagnostics,
        node: &'n KdlNode,
        allowed: &'n [&'n str],
    ) -> Self {
        let args = node.entries().iter().filter(|e| e.name().is_none()).collect();
        let props: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_some()).collect();
        let mut reader = Self { file, text, diags, node, args, props };
        reader.check_props(allowed);
        reader
    }

    fn span(&self, span: miette::SourceSpan) -> Span {
        Span::new(self.file, span.offset(), span.len())
    }

    fn error(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    fn node_span(&self) -> Span {
        self.span(self.node.span())
    }

    fn name(&self) -> &str {
        self.node.name().value()
    }

    fn check_props(&mut self, allowed: &[&str]) {
        // A map, not a scan: a node may have tens of thousands of properties.
        let mut seen: std::collections::HashMap<&str, Span> = std::collections::HashMap::new();
        for entry in self.props.clone() {
            let key = entry.name().map_or("", kdl::KdlIdentifier::value);
            let span = self.span(entry.span());
            if let Some(first) = seen.get(key) {
                let first = *first;
                let node_name = self.node.name().value();
                self.error(
                    Diagnostic::new(
                        Code::DuplicateName,
                        format!("property `{key}` is given twice on `{node_name}`"),
                    )
                    .label(span, "given again here")
                    .label(first, "first given here"),
                );
                continue;
            }
            seen.insert(key, span);
            if allowed != PropsAny::ANY && !allowed.contains(&key) {
                let node_name = self.node.name().value().to_owned();
                let mut diagnostic = Diagnostic::new(
                    Code::UnknownProperty,
                    format!("unknown property `{key}` on `{node_name}`"),
                )
                .label(span, "not a property of this node");
                diagnostic = match (node_name.as_str(), key) {
                    ("copy", "stage") => diagnostic.help("to copy from a stage of this image, use `from=`"),
                    ("from", "from") => {
                        diagnostic.help("use `stage=` for a stage of this image, `image=` for another image")
                    }
                    _ if allowed.is_empty() => diagnostic.help(format!("`{node_name}` takes no properties")),
                    _ => diagnostic.help_opt(did_you_mean(key, allowed.iter().copied()).or_else(|| {
                        Some(format!(
                            "`{node_name}` takes {}",
                            allowed.iter().map(|a| format!("`{a}=`")).collect::<Vec<_>>().join(", ")
                        ))
                    })),
                };
                self.error(diagnostic);
            }
        }
    }

    /// Checks the number of positional arguments; `false` (with an error) when wrong.
    fn arg_count(&mut self, min: usize, max: Option<usize>) -> bool {
        let count = self.args.len();
        if count >= min && max.is_none_or(|max| count <= max) {
            return true;
        }
        let name = self.name().to_owned();
        let expected = match (min, max) {
            (0, Some(0)) => "no arguments".to_owned(),
            (min, Some(max)) if min == max => plural(min, "argument"),
            (min, None) => format!("at least {}", plural(min, "argument")),
            (min, Some(max)) => format!("{min} to {max} arguments"),
        };
        let span = if count > max.unwrap_or(usize::MAX) {
            self.span(self.args[max.unwrap_or(0)].span())
        } else {
            self.span(self.node.name().span())
        };
        let label = if count < min { "missing arguments" } else { "extra argument" };
        self.error(
            Diagnostic::new(Code::ArgumentCount, format!("`{name}` takes {expected}, got {count}"))
                .label(span, label),
        );
        false
    }

    fn entry_span(&self, entry: &KdlEntry) -> Span {
        self.span(entry.span())
    }

    /// The span of a property's value alone (the entry span covers `key=value`).
    fn value_span(&self, entry: &KdlEntry) -> Span {
        let span = self.entry_span(entry);
        let Some(name) = entry.name() else {
            return span;
        };
        let name_end = name.span().offset() + name.span().len();
        let text = self.text;
        let end = span.end as usize;
        let Some(equals) = text.get(name_end..end).and_then(|s| s.find('=')) else {
            return span;
        };
        let mut start = name_end + equals + 1;
        while text[start..end].starts_with(char::is_whitespace) {
            start += text[start..].chars().next().map_or(1, char::len_utf8);
        }
        Span::new(self.file, start, end - start)
    }

    /// A string value.
    fn text_of(&mut self, entry: &KdlEntry, span: Span, what: &str) -> Option<Text> {
        if let KdlValue::String(s) = entry.value() {
            return Some(self.string(s, span));
        }
        let found = describe(entry.value());
        self.error(
            Diagnostic::new(Code::ArgumentType, format!("expected {what}, found {found}"))
                .label(span, "not a string")
                .help_opt(
                    matches!(entry.value(), KdlValue::Integer(_) | KdlValue::Float(_))
                        .then(|| "quote it: `\"...\"`".to_owned()),
                ),
        );
        None
    }

    /// A string, or a number or boolean taken as its text (`var PORT 8000`).
    fn scalar_of(&mut self, entry: &KdlEntry, span: Span, what: &str) -> Option<Text> {
        match entry.value() {
            KdlValue::String(s) => Some(self.string(s, span)),
            KdlValue::Integer(_) | KdlValue::Float(_) => {
                let raw = self.text.get(span.start as usize..span.end as usize).unwrap_or("");
                Some(Spanned::new(raw.replace('_', ""), span))
            }
            KdlValue::Bool(b) => Some(Spanned::new(b.to_string(), span)),
            KdlValue::Null => {
                self.error(
                    Diagnostic::new(Code::ArgumentType, format!("expected {what}, found `#null`"))
                        .label(span, "no value"),
                );
                None
            }
        }
    }

    /// A string value; one holding a NUL (`"\u{0}"`) is an error (kept, so that no
    /// follow-up error appears): no command line or environment can carry a NUL.
    fn string(&mut self, value: &str, span: Span) -> Text {
        if value.contains('\0') {
            self.error(
                Diagnostic::new(Code::Unexpressible, "a value cannot contain a NUL character (`\\u{0}`)")
                    .label(span, "Docker cannot carry this character"),
            );
        }
        Spanned::new(value.to_owned(), span)
    }

    fn arg_text(&mut self, index: usize, what: &str) -> Option<Text> {
        let entry = *self.args.get(index)?;
        let span = self.entry_span(entry);
        self.text_of(entry, span, what)
    }

    fn arg_scalar(&mut self, index: usize, what: &str) -> Option<Text> {
        let entry = *self.args.get(index)?;
        let span = self.entry_span(entry);
        self.scalar_of(entry, span, what)
    }

    fn arg_texts(&mut self, from: usize, what: &str) -> Vec<Text> {
        let entries: Vec<&KdlEntry> = self.args.iter().skip(from).copied().collect();
        entries
            .into_iter()
            .filter_map(|e| {
                let span = self.entry_span(e);
                self.text_of(e, span, what)
            })
            .collect()
    }

    fn arg_scalars(&mut self, from: usize, what: &str) -> Vec<Text> {
        let entries: Vec<&KdlEntry> = self.args.iter().skip(from).copied().collect();
        entries
            .into_iter()
            .filter_map(|e| {
                let span = self.entry_span(e);
                self.scalar_of(e, span, what)
            })
            .collect()
    }

    fn prop(&self, key: &str) -> Option<&'n KdlEntry> {
        self.props.iter().find(|e| e.name().is_some_and(|n| n.value() == key)).copied()
    }

    fn prop_text(&mut self, key: &str) -> Option<Text> {
        let entry = self.prop(key)?;
        let span = self.value_span(entry);
        self.text_of(entry, span, &format!("a string for `{key}=`"))
    }

    fn prop_scalar(&mut self, key: &str) -> Option<Text> {
        let entry = self.prop(key)?;
        let span = self.value_span(entry);
        self.scalar_of(entry, span, &format!("a value for `{key}=`"))
    }

    fn prop_bool(&mut self, key: &str) -> Option<bool> {
        let entry = self.prop(key)?;
        if let KdlValue::Bool(b) = entry.value() {
            return Some(*b);
        }
        let span = self.value_span(entry);
        let found = describe(entry.value());
        self.error(
            Diagnostic::new(
                Code::ArgumentType,
                format!("expected `#true` or `#false` for `{key}=`, found {found}"),
            )
            .label(span, "not a boolean")
            .help("KDL v2 writes booleans as `#true` and `#false`"),
        );
        None
    }

    fn prop_u32(&mut self, key: &str) -> Option<Spanned<u32>> {
        let entry = self.prop(key)?;
        let span = self.value_span(entry);
        if let KdlValue::Integer(i) = entry.value()
            && let Ok(value) = u32::try_from(*i)
        {
            return Some(Spanned::new(value, span));
        }
        let found = describe(entry.value());
        self.error(
            Diagnostic::new(
                Code::ArgumentType,
                format!("expected a whole number for `{key}=`, found {found}"),
            )
            .label(span, "not a number from 0 to 4294967295"),
        );
        None
    }

    /// Every property as a key/value pair, in order (duplicates were reported).
    fn all_props(&mut self) -> Vec<KeyValue> {
        let entries = self.props.clone();
        let mut pairs: Vec<KeyValue> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for entry in entries {
            let Some(name) = entry.name() else { continue };
            if !seen.insert(name.value()) {
                continue;
            }
            let key = Spanned::new(name.value().to_owned(), self.span(name.span()));
            let span = self.value_span(entry);
            if let Some(value) = self.scalar_of(entry, span, "a value") {
                pairs.push(KeyValue { key, value });
            }
        }
        pairs
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn describe(value: &KdlValue) -> String {
    match value {
        KdlValue::String(_) => "a string".to_owned(),
        KdlValue::Integer(i) => format!("the number `{i}`"),
        KdlValue::Float(_) => "a number".to_owned(),
        KdlValue::Bool(b) => format!("`#{b}`"),
        KdlValue::Null => "`#null`".to_owned(),
    }
}
