//! `venv-builder` (T34): `pip venv="/opt/venv" builder=#true` installs in a builder
//! stage of its own, and the stage that had the node copies only the venv. What the
//! install needed (pip itself, compilers, headers: the packages of a build-only block
//! around the node) never reaches the image, and no purge leaves files behind: the
//! expert's two-stage Dockerfile, from one node.
//!
//! The builder is the stage up to the node, so it has everything the install could need
//! (and BuildKit shares the common steps); the build-only block around the node, if any,
//! is installed there for good. In the stage itself, the node becomes a copy of the
//! venv, and the block loses the node (and goes when it held nothing else). The builder
//! lists the system packages that the venv's compiled modules link, and the stage
//! installs those it lacks after the copy.

use crate::ast::{Copy, CopyFrom, Instruction, KeyValue, LinkedBy, Packages, Text};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::Stage;
use crate::source::Spanned;

/// Inserts a builder stage before each stage with a `pip builder=#true` node (the first
/// such node of the stage), and rewrites the node into a copy of the venv.
pub(crate) fn split_venv_builders(stages: &mut Vec<Stage>, diags: &mut Diagnostics) {
    let mut index = 0;
    while index < stages.len() {
        let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
        if let Some(builder) = split(&mut stages[index], &names, diags) {
            stages.insert(index, builder);
            index += 1;
        }
        index += 1;
    }
}

fn split(stage: &mut Stage, names: &[String], diags: &mut Diagnostics) -> Option<Stage> {
    let is_builder = |i: &Spanned<Instruction>| matches!(&i.value, Instruction::Pip(p) if p.builder);
    let at = stage.instructions.iter().position(is_builder)?;
    let span = stage.instructions[at].span;
    if let Some(second) = stage.instructions[at + 1..].iter().find(|i| is_builder(i)) {
        diags.push(
            Diagnostic::new(Code::ConflictingValues, "a stage has one venv builder")
                .label(second.span, "a second `pip builder=#true`")
                .label(span, "the first")
                .help("install every requirement with one `pip` node, or use a builder stage of your own"),
        );
        return None;
    }
    let Instruction::Pip(pip) = &stage.instructions[at].value else { unreachable!("found above") };
    let venv = pip.venv.clone()?;
    let name = format!("{}-venv", stage.name);
    if names.contains(&name) {
        diags.push(
            Diagnostic::new(
                Code::DuplicateName,
                format!("the builder stage `{name}` would clash with a stage of that name"),
            )
            .label(span, "builds its venv in a stage of its own")
            .help(format!("rename the stage `{name}`")),
        );
        return None;
    }
    let block = enclosing_block(&stage.instructions, at);

    let mut builder_steps = stage.instructions[..at].to_vec();
    if let Some(start) = block
        && let Instruction::Apt(packages) | Instruction::Apk(packages) = &mut builder_steps[start].value
    {
        packages.build_only_for = None;
    }
    let mut install = stage.instructions[at].clone();
    // Listing what the venv links needs dpkg: not on an Alpine base.
    let debian_like = !stage.instructions.iter().any(|i| matches!(i.value, Instruction::Apk(_)));
    if let Instruction::Pip(pip) = &mut install.value {
        pip.builder = false;
        pip.lists_linked_packages = debian_like;
    }
    builder_steps.push(install);
    let builder = Stage {
        name: name.clone(),
        name_span: span,
        implicit: false,
        from: stage.from.clone(),
        instructions: builder_steps,
        missing_files: stage.missing_files.clone(),
    };

    stage.instructions.remove(at);
    let insert_at = match block {
        None => at,
        Some(start) => {
            let (Instruction::Apt(packages) | Instruction::Apk(packages)) =
                &mut stage.instructions[start].value
            else {
                unreachable!("a block starts with a package node")
            };
            let left = packages.build_only_for.map_or(0, |n| n - 1);
            if left == 0 {
                stage.instructions.remove(start);
                start
            } else {
                packages.build_only_for = Some(left);
                start + left + 1
            }
        }
    };
    let text = |value: &str| Spanned::new(value.to_owned(), span);
    let copy = Instruction::Copy(Copy {
        sources: vec![venv.clone()],
        dest: venv.clone(),
        from: CopyFrom::Stage(text(&name)),
        chown: None,
        chmod: None,
        link: false,
    });
    // The runtime runs the venv's Python: logs unbuffered, and no bytecode written
    // next to files the running user may not own.
    let env = Instruction::Env(
        [
            ("VIRTUAL_ENV", venv.value.clone()),
            ("PATH", format!("{}/bin:$PATH", venv.value)),
            ("PYTHONDONTWRITEBYTECODE", "1".to_owned()),
            ("PYTHONUNBUFFERED", "1".to_owned()),
        ]
        .into_iter()
        .map(|(key, value): (&str, String)| KeyValue { key: text(key), value: Text::new(value, span) })
        .collect(),
    );
    // What the venv's compiled modules link came with the builder's packages (`libpq5`
    // with `libpq-dev`): the stage's first `apt` installs them too, in its one layer;
    // without one, a step after the copy installs those the stage lacks.
    let linked_by = LinkedBy { builder: name.clone(), venv: venv.value.clone() };
    let first_apt = stage.instructions[..insert_at].iter_mut().find_map(|i| match &mut i.value {
        Instruction::Apt(p) if p.build_only_for.is_none() && !p.names.is_empty() => Some(p),
        _ => None,
    });
    let mut added = vec![Spanned::new(copy, span)];
    if debian_like {
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
    added.push(Spanned::new(env, span));
    stage.instructions.splice(insert_at..insert_at, added);
    Some(builder)
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
