//! `venv-builder` (T34) and `npm-builder` (T37): `pip venv="/opt/venv" builder=#true`
//! and `npm builder=#true` install in a builder stage of their own, and the stage that
//! had the node copies only the venv or `node_modules`. What the install needed (pip or npm themselves, compilers,
//! headers: the packages of a build-only block around the node) never reaches the image,
//! and no purge leaves files behind: the expert's two-stage Dockerfile, from one node.
//!
//! The builder is the stage up to the node, so it has everything the install could need
//! (and BuildKit shares the common steps); the build-only block around the node, if any,
//! is installed there for good. In the stage itself, the node becomes a copy of what it
//! installed, and the block loses the node (and goes when it held nothing else). The
//! builder lists the system packages that the installed native modules link, and the
//! stage installs them with its first `apt` (or, without one, after the copy).

use std::fs;
use std::path::Path;

use crate::ast::{Copy, CopyFrom, Instruction, KeyValue, LinkedBy, Packages, Text};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::{BuilderFor, Stage};
use crate::source::{Span, Spanned};

/// What a builder installs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Venv,
    NodeModules,
}

impl Kind {
    fn node(self) -> &'static str {
        match self {
            Kind::Venv => "pip",
            Kind::NodeModules => "npm",
        }
    }

    /// The builder stage is named `<stage>-<suffix>`.
    fn suffix(self) -> &'static str {
        match self {
            Kind::Venv => "venv",
            Kind::NodeModules => "npm",
        }
    }

    fn is_builder(self, instruction: &Instruction) -> bool {
        match (self, instruction) {
            (Kind::Venv, Instruction::Pip(pip)) => pip.builder,
            (Kind::NodeModules, Instruction::Npm(npm)) => npm.builder,
            _ => false,
        }
    }
}

/// Inserts a builder stage before each stage with a `pip builder=#true` or `npm
/// builder=#true` node (the first of each kind in the stage), and rewrites the node into
/// a copy of what it installed.
pub(crate) fn split_install_builders(stages: &mut Vec<Stage>, context_dir: &Path, diags: &mut Diagnostics) {
    let mut index = 0;
    while index < stages.len() {
        for kind in [Kind::Venv, Kind::NodeModules] {
            let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
            if let Some(builder) = split(&mut stages[index], kind, &names, context_dir, diags) {
                stages.insert(index, builder);
                index += 1;
            }
        }
        index += 1;
    }
}

/// The absolute folder `npm` installs `node_modules` into: under the stage's last
/// `workdir` before `at`, when the manifest says which.
pub(crate) fn node_modules_folder(instructions: &[Spanned<Instruction>], at: usize) -> Option<String> {
    instructions[..at]
        .iter()
        .rev()
        .find_map(|i| match &i.value {
            Instruction::Workdir(path) => Some(path),
            _ => None,
        })
        .filter(|path| path.value.starts_with('/') && !path.value.contains('$'))
        .map(|path| format!("{}/node_modules", path.value.trim_end_matches('/')))
}

fn split(
    stage: &mut Stage,
    kind: Kind,
    names: &[String],
    context_dir: &Path,
    diags: &mut Diagnostics,
) -> Option<Stage> {
    let at = stage.instructions.iter().position(|i| kind.is_builder(&i.value))?;
    let span = stage.instructions[at].span;
    let node = kind.node();
    if let Some(second) = stage.instructions[at + 1..].iter().find(|i| kind.is_builder(&i.value)) {
        diags.push(
            Diagnostic::new(Code::ConflictingValues, format!("a stage has one `{node}` builder"))
                .label(second.span, format!("a second `{node} builder=#true`"))
                .label(span, "the first")
                .help(format!(
                    "install everything with one `{node}` node, or use a builder stage of your own"
                )),
        );
        return None;
    }
    let folder = if let Instruction::Pip(pip) = &stage.instructions[at].value {
        pip.venv.clone()?.value
    } else {
        let folder = node_modules_folder(&stage.instructions, at);
        if folder.is_none() {
            diags.push(
                Diagnostic::new(Code::MissingValue, "`npm builder=#true` needs to know where `node_modules` is")
                    .label(span, "installs into the working directory")
                    .help("write an absolute `workdir` before it: the stage copies `<workdir>/node_modules` from the builder"),
            );
        }
        folder?
    };
    let name = format!("{}-{}", stage.name, kind.suffix());
    if names.contains(&name) {
        diags.push(
            Diagnostic::new(
                Code::DuplicateName,
                format!("the builder stage `{name}` would clash with a stage of that name"),
            )
            .label(span, "installs in a stage of its own")
            .help(format!("rename the stage `{name}`")),
        );
        return None;
    }
    // Listing what the install links needs dpkg: not on an Alpine base.
    let debian_like = !stage.instructions.iter().any(|i| matches!(i.value, Instruction::Apk(_)));
    let mut builder = builder_stage(stage, at, &name, debian_like, context_dir);
    builder.builder_for =
        Some(BuilderFor { stage: stage.name.clone(), node: node.to_owned(), folder: folder.clone() });

    let copies_sources_later = stage.instructions[at + 1..]
        .iter()
        .any(|i| matches!(&i.value, Instruction::Copy(c) if c.copies_whole_context()));
    let block = enclosing_block(&stage.instructions, at);
    let removed = stage.instructions.remove(at);
    let insert_at = leave_block(&mut stage.instructions, block, at);
    let text = |value: &str| Spanned::new(value.to_owned(), span);
    let mut added = Vec::new();
    if kind == Kind::NodeModules && !copies_sources_later {
        // The app reads `package.json` at run time (`"type": "module"`); without a copy
        // of the sources later, it came with the install.
        let sources = removed.value.dependency_files().iter().map(|f| text(f)).collect();
        added.push(copy(sources, text("./"), CopyFrom::Context));
    }
    added.push(copy(vec![text(&folder)], text(&folder), CopyFrom::Stage(text(&name))));
    // What the native modules link came with the builder's packages (`libpq5` with
    // `libpq-dev`): the stage's first `apt` installs them too, in its one layer; without
    // one, a step after the copy installs those the stage lacks.
    if debian_like {
        let linked_by = LinkedBy { builder: name, folder: folder.clone() };
        let first_apt = stage.instructions[..insert_at].iter_mut().find_map(|i| match &mut i.value {
            Instruction::Apt(p)
                if p.build_only_for.is_none() && !p.names.is_empty() && p.linked_by.is_none() =>
            {
                Some(p)
            }
            _ => None,
        });
        match first_apt {
            Some(packages) => packages.linked_by = Some(linked_by),
            None => added.push(Spanned::new(
                Instruction::Apt(Packages {
                    names: Vec::new(),
                    build_only_for: None,
                    keep: false,
                    linked_by: Some(linked_by),
                }),
                span,
            )),
        }
    }
    if kind == Kind::Venv {
        added.push(Spanned::new(venv_env(&folder, span), span));
    }
    stage.instructions.splice(insert_at..insert_at, added);
    Some(builder)
}

/// The stage up to the node at `at`, the build-only block around it installed for good,
/// and the install, which lists what it links.
fn builder_stage(stage: &Stage, at: usize, name: &str, debian_like: bool, context_dir: &Path) -> Stage {
    let mut steps = stage.instructions[..at].to_vec();
    if let Some(start) = enclosing_block(&stage.instructions, at) {
        if let Instruction::Apt(packages) | Instruction::Apk(packages) = &mut steps[start].value {
            packages.build_only_for = None;
        }
        // Installed for good, the block's packages join the stage's first install of the
        // same manager: one `apt-get update` less.
        let same_manager =
            |a: &Instruction, b: &Instruction| std::mem::discriminant(a) == std::mem::discriminant(b);
        if let Some(first) = steps[..start].iter().position(|i| {
            same_manager(&i.value, &steps[start].value)
                && matches!(&i.value, Instruction::Apt(p) | Instruction::Apk(p) if p.build_only_for.is_none())
        }) {
            let block = steps.remove(start);
            if let (
                Instruction::Apt(into) | Instruction::Apk(into),
                Instruction::Apt(from) | Instruction::Apk(from),
            ) = (&mut steps[first].value, block.value)
            {
                into.names.extend(from.names);
            }
        }
    }
    // An earlier install that has a builder of its own installs here in full: builders
    // do not nest, and this one needs no other builder's list of linked packages.
    for step in &mut steps {
        match &mut step.value {
            Instruction::Pip(pip) => pip.builder = false,
            Instruction::Npm(npm) => npm.builder = false,
            Instruction::Apt(packages) => packages.linked_by = None,
            _ => {}
        }
    }
    steps.retain(|step| !matches!(&step.value, Instruction::Apt(p) if p.names.is_empty()));
    let mut install = stage.instructions[at].clone();
    match &mut install.value {
        Instruction::Pip(pip) => {
            pip.builder = false;
            pip.lists_linked_packages = debian_like;
            let listed = pip
                .requirements
                .as_ref()
                .and_then(|file| fs::read_to_string(context_dir.join(&file.value)).ok());
            pip.drops_pip = !pip.packages.iter().any(|p| names_pip(&p.value))
                && !listed.is_some_and(|text| requirements_name_pip(&text));
        }
        Instruction::Npm(npm) => {
            npm.builder = false;
            npm.lists_linked_packages = debian_like;
        }
        _ => {}
    }
    steps.push(install);
    Stage {
        name: name.to_owned(),
        name_span: stage.instructions[at].span,
        implicit: false,
        from: stage.from.clone(),
        platform: stage.platform.clone(),
        instructions: steps,
        missing_files: stage.missing_files.clone(),
        builder_for: None,
    }
}

/// Whether a requirement names pip itself (`pip`, `pip==24.0`, `pip[x]>=23`).
fn names_pip(requirement: &str) -> bool {
    let name =
        requirement.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')).next();
    name.is_some_and(|n| n.eq_ignore_ascii_case("pip"))
}

/// Whether a requirements file lists pip itself (whoever pins pip wants it).
fn requirements_name_pip(text: &str) -> bool {
    text.lines()
        .map(|line| line.split(" #").next().unwrap_or_default().trim())
        .filter(|line| !line.starts_with('#') && !line.starts_with('-'))
        .any(names_pip)
}

/// The block (starting at `block`) that held the node removed from `at` loses it, and
/// goes when that was all it held; returns where the node's replacement goes: after what
/// is left of the block.
fn leave_block(instructions: &mut Vec<Spanned<Instruction>>, block: Option<usize>, at: usize) -> usize {
    let Some(start) = block else { return at };
    let (Instruction::Apt(packages) | Instruction::Apk(packages)) = &mut instructions[start].value else {
        unreachable!("a block starts with a package node")
    };
    let left = packages.build_only_for.map_or(0, |n| n - 1);
    if left == 0 {
        instructions.remove(start);
        start
    } else {
        packages.build_only_for = Some(left);
        start + left + 1
    }
}

fn copy(sources: Vec<Text>, dest: Text, from: CopyFrom) -> Spanned<Instruction> {
    let span = dest.span;
    Spanned::new(Instruction::Copy(Copy { sources, dest, from, chown: None, chmod: None, link: false }), span)
}

/// The runtime runs the venv's Python: logs unbuffered, and no bytecode written next to
/// files the running user may not own.
fn venv_env(venv: &str, span: Span) -> Instruction {
    Instruction::Env(
        [
            ("VIRTUAL_ENV", venv.to_owned()),
            ("PATH", format!("{venv}/bin:$PATH")),
            ("PYTHONDONTWRITEBYTECODE", "1".to_owned()),
            ("PYTHONUNBUFFERED", "1".to_owned()),
        ]
        .into_iter()
        .map(|(key, value)| KeyValue {
            key: Spanned::new(key.to_owned(), span),
            value: Text::new(value, span),
        })
        .collect(),
    )
}

/// The build-only package node whose block holds the instruction at `at`.
fn enclosing_block(instructions: &[Spanned<Instruction>], at: usize) -> Option<usize> {
    instructions[..at].iter().enumerate().rev().find_map(|(start, instruction)| match &instruction.value {
        Instruction::Apt(packages) | Instruction::Apk(packages) => {
            packages.build_only_for.filter(|&n| start + n >= at).map(|_| start)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_named_in_requirements() {
        assert!(names_pip("pip") && names_pip("pip==24.0") && names_pip("PIP>=23") && names_pip("pip[x]"));
        assert!(!names_pip("pip-tools") && !names_pip("pipx") && !names_pip("flask"));
        assert!(requirements_name_pip("flask==3.0\npip==24.0  # for plugins\n"));
        assert!(!requirements_name_pip("# pip==24.0\n--index-url https://x/simple\npip-tools==7\n"));
    }
}
