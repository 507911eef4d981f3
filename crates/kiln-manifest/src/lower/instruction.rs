//! Lowering of instruction nodes (`run`, `copy`, `pip`, …) inside a stage.

use kdl::KdlNode;

use super::Lowerer;
use crate::ast::{
    Copy, CopyFrom, Downloads, Healthcheck, Instruction, InstructionKind, Npm, Packages, Pip, Run,
    SecretMount, Text, User,
};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::{Span, Spanned};

impl Lowerer<'_> {
    /// Lowers an instruction node. A node with shape errors is dropped, so that later
    /// checks do not report consequences of the same mistake.
    pub(super) fn instruction(
        &mut self,
        node: &KdlNode,
        kind: InstructionKind,
    ) -> Option<Spanned<Instruction>> {
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
            K::Apt => Instruction::Apt(self.packages(node)?),
            K::Apk => Instruction::Apk(self.packages(node)?),
            K::StopSignal => {
                let mut n = self.node(node, &[], false);
                n.arg_count(1, Some(1));
                Instruction::StopSignal(n.arg_scalar(0, "a signal")?)
            }
            K::Healthcheck => self.healthcheck(node)?,
            K::Pip => {
                let mut n = self.node(
                    node,
                    &[
                        "requirements",
                        "user",
                        "venv",
                        "builder",
                        "no-compile",
                        "index-url",
                        "extra-index-url",
                        "index-url-secret",
                        "require-hashes",
                    ],
                    false,
                );
                let packages = n.arg_texts(0, "a package requirement");
                let requirements = n.prop_text("requirements");
                let user = n.prop_bool("user").unwrap_or(false);
                let venv = n.prop_text("venv");
                let builder = n.prop_bool("builder").unwrap_or(false);
                let no_compile = n.prop_bool("no-compile").unwrap_or(false);
                let index_url = n.prop_text("index-url");
                let extra_index_url = n.prop_text("extra-index-url");
                let index_url_secret = n.prop_text("index-url-secret");
                let require_hashes = n.prop_bool("require-hashes").unwrap_or(false);
                if packages.is_empty() && requirements.is_none() {
                    let span = n.node_span();
                    self.error(
                        Diagnostic::new(Code::MissingValue, "`pip` needs packages or `requirements=`")
                            .label(span, "nothing to install")
                            .help("write `pip requirements=\"requirements.txt\"` or `pip flask gunicorn`"),
                    );
                    return None;
                }
                Instruction::Pip(Pip {
                    packages,
                    requirements,
                    user,
                    venv,
                    builder,
                    no_compile,
                    index_url,
                    extra_index_url,
                    index_url_secret,
                    require_hashes,
                    lists_linked_packages: false,
                    drops_pip: false,
                })
            }
            K::Npm => {
                let mut n =
                    self.node(node, &["production", "omit", "registry", "npmrc-secret", "builder"], false);
                n.arg_count(0, Some(0));
                let production = n.prop_bool("production").unwrap_or(false);
                let omit = n.prop_text("omit").map_or_else(Vec::new, |text| split_words(&text));
                let registry = n.prop_text("registry");
                let npmrc_secret = n.prop_text("npmrc-secret");
                let builder = n.prop_bool("builder").unwrap_or(false);
                Instruction::Npm(Npm {
                    production,
                    omit,
                    registry,
                    npmrc_secret,
                    builder,
                    lists_linked_packages: false,
                })
            }
            K::GoMod | K::CargoFetch => {
                let mut n = self.node(node, &["cache"], false);
                n.arg_count(0, Some(0));
                let downloads = Downloads { cache: n.prop_bool("cache").unwrap_or(false) };
                if kind == K::GoMod {
                    Instruction::GoMod(downloads)
                } else {
                    Instruction::CargoFetch(downloads)
                }
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

    /// `apt gcc libpq-dev build-only=#true { ... }`: the block is lowered by the stage
    /// (`build_only_block`), which sets how many instructions it holds.
    fn packages(&mut self, node: &KdlNode) -> Option<Packages> {
        let mut n = self.node(node, &["build-only"], true);
        if !n.arg_count(1, None) {
            return None;
        }
        let names = n.arg_scalars(0, "a package name");
        let build_only_prop = n.prop_bool("build-only");
        let build_only = build_only_prop.unwrap_or(false);
        let name = node.name().value();
        match (build_only, node.children()) {
            (true, None) => {
                let span = self.span(node.span());
                self.error(
                    Diagnostic::new(
                        Code::MissingValue,
                        format!("build-only `{name}` packages need the commands that use them"),
                    )
                    .label(span, "removed again before anything uses them")
                    .help(format!(
                        "put those commands in a block: `{name} gcc build-only=#true {{ run \"make\" }}`"
                    )),
                );
            }
            (false, Some(children)) => {
                let span = self.span(children.span());
                self.error(
                    Diagnostic::new(Code::MisplacedNode, format!("`{name}` takes a block only with `build-only=#true`"))
                        .label(span, "unexpected `{ ... }`")
                        .help("with `build-only=#true`, the block's commands run while the packages are installed, and the packages are removed in the same layer"),
                );
            }
            _ => {}
        }
        Some(Packages {
            names,
            build_only_for: build_only.then_some(0),
            keep: build_only_prop == Some(false),
            linked_by: None,
        })
    }

    /// The block of a build-only `apt`/`apk`: `run`, `pip` and `npm` nodes, lowered after
    /// the package node; returns how many instructions it added.
    pub(super) fn build_only_block(
        &mut self,
        node: &KdlNode,
        instructions: &mut Vec<Spanned<Instruction>>,
    ) -> usize {
        let before = instructions.len();
        for child in self.children(node) {
            let name = child.name().value();
            if let Some(kind @ (InstructionKind::Run | InstructionKind::Pip | InstructionKind::Npm)) =
                InstructionKind::from_name(name)
            {
                instructions.extend(self.instruction(child, kind));
                continue;
            }
            let span = self.name_span(child);
            let parent = node.name().value();
            self.error(
                Diagnostic::new(
                    Code::MisplacedNode,
                    format!("`{name}` cannot run inside a build-only `{parent}` block"),
                )
                .label(span, "only `run`, `pip` and `npm` here")
                .help(
                    "the block holds the commands that need the packages; put other nodes before or after it",
                ),
            );
        }
        instructions.len() - before
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
        let mut n = self.node(node, &["script", "exec"], true);
        let script = n.prop_bool("script").unwrap_or(false);
        let exec = n.prop_bool("exec").unwrap_or(false);
        let span = n.node_span();
        if !n.arg_count(1, script.then_some(1)) {
            return None;
        }
        if script && exec {
            self.error(
                Diagnostic::new(Code::ConflictingValues, "a `run` is a script or a program, not both")
                    .label(span, "`script=#true` and `exec=#true`")
                    .help("keep `exec=#true` to run a program without a shell, or `script=#true` for a shell script"),
            );
            return None;
        }
        let args = n.arg_texts(0, "a shell command");
        let mut commands = Vec::new();
        for arg in args {
            if script || exec {
                commands.push(arg);
            } else {
                commands.extend(self.split_commands(&arg));
            }
        }
        let (mut caches, mut secrets, mut ssh) = (Vec::new(), Vec::new(), Vec::new());
        for child in self.children(node) {
            match child.name().value() {
                "cache" => {
                    let mut c = self.node(child, &[], false);
                    c.arg_count(1, None);
                    caches.extend(c.arg_texts(0, "a cache directory"));
                }
                "secret" => {
                    let mut c = self.node(child, &["target"], false);
                    c.arg_count(1, Some(1));
                    let target = c.prop_text("target");
                    if let Some(id) = c.arg_text(0, "a secret id") {
                        secrets.push(SecretMount { id, target });
                    }
                }
                "ssh" => {
                    let span = self.span(child.span());
                    let mut c = self.node(child, &[], false);
                    c.arg_count(0, Some(1));
                    ssh.push(
                        c.arg_text(0, "an ssh id")
                            .unwrap_or_else(|| Spanned::new("default".to_owned(), span)),
                    );
                }
                _ => self.unknown_node(child, &["cache", "secret", "ssh"], "in `run`"),
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
        Some(Instruction::Run(Run { commands, caches, secrets, ssh, script, exec }))
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
}

/// The blank-separated words of a property value, each spanned as the whole value.
fn split_words(text: &Text) -> Vec<Text> {
    text.value.split_whitespace().map(|word| Spanned::new(word.to_owned(), text.span)).collect()
}
