//! `build-tools-split` (T36): build tools written on an `apt` node of the stage that
//! ships (compilers, headers, installers) leave the image when only kiln's own
//! installers (`pip`, `npm`) can use them. They wrap those installs in a build-only block
//! (T29, which keeps the packages that the built files link), and a pip venv or an npm
//! `node_modules` is built in a stage of its own (T34, T37, whose runtime installs what it
//! links): the expert's image from a manifest written naively. When kiln cannot tell
//! that nothing else needs them, they stay, and the `build-tools-in-image` warning says
//! why.

use crate::ast::{Instruction, Packages, Text};
use crate::builders::node_modules_folder;
use crate::source::{Span, Spanned};

/// Compilers and build systems: each package is named after the command it brings.
const BUILD_SYSTEMS: &[&str] =
    &["gcc", "g++", "clang", "make", "cmake", "autoconf", "automake", "libtool", "pkg-config", "pkgconf"];

/// Packages that only serve while something is built or installed besides those:
/// installers (the image runs `node`, or a venv's own Python) and meta-packages of
/// compilers and C headers (and every `*-dev`).
const OTHER_TOOLS: &[&str] = &[
    "npm",
    "python3-pip",
    "python3-venv",
    "build-essential",
    "build-base",
    "musl-dev",
    "libc-dev",
    "libc6-dev",
];

/// Commands the tools bring under another name than their package's: a `cmd` that runs
/// one needs them at run time.
const OTHER_COMMANDS: &[&str] = &["npm", "npx", "pip", "pip3", "cc", "c++"];

/// Whether a package (with or without its `=version`) is a build tool.
pub(crate) fn is_build_tool(package: &str) -> bool {
    let name = package.split('=').next().unwrap_or_default();
    BUILD_SYSTEMS.contains(&name) || OTHER_TOOLS.contains(&name) || name.ends_with("-dev")
}

/// Why the build tools of a stage stay in its image, and where that is written.
#[derive(Debug, Clone)]
pub(crate) struct ToolsKept {
    pub reason: String,
    pub span: Span,
}

/// Takes the build tools out of the plain `apt` nodes of a shipped stage when only the
/// stage's `pip` and `npm` installs can use them. `built_upon` says why another stage or
/// image may need the tools (they build on this one). Returns why tools stay, if any do.
pub(crate) fn split_build_tools(
    instructions: &mut Vec<Spanned<Instruction>>,
    built_upon: Option<&str>,
    context_dir: &std::path::Path,
) -> Option<ToolsKept> {
    let holds_tools = |i: &Spanned<Instruction>| match &i.value {
        Instruction::Apt(p) | Instruction::Apk(p) => {
            p.build_only_for.is_none() && !p.keep && p.names.iter().any(|n| is_build_tool(&n.value))
        }
        _ => false,
    };
    let first = instructions.iter().position(holds_tools)?;
    let first_span = instructions[first].span;
    let kept = |reason: &str, span: Span| Some(ToolsKept { reason: reason.to_owned(), span });
    if let Some(why) = built_upon {
        return kept(why, first_span);
    }
    if matches!(instructions[first].value, Instruction::Apk(_)) {
        return kept("kiln takes build tools out on its own from `apt` nodes only", first_span);
    }
    if let Some(why) = runtime_use(instructions) {
        return Some(why);
    }
    let mut consumers = Vec::new();
    for (index, instruction) in instructions.iter().enumerate().skip(first + 1) {
        match &instruction.value {
            Instruction::Run(_) => {
                return kept("a `run` after them may use them; kiln cannot tell", instruction.span);
            }
            Instruction::Apt(p) | Instruction::Apk(p) if p.build_only_for.is_some() => {
                return kept("the stage has a build-only block of its own", instruction.span);
            }
            Instruction::User(user) if consumers.is_empty() && !user.names_root() => {
                return kept(
                    "the installs after them run as another user than root, who cannot install packages",
                    instruction.span,
                );
            }
            Instruction::Pip(_) | Instruction::Npm(_) => consumers.push(index),
            _ => {}
        }
    }
    let Some(&start) = consumers.first() else {
        return kept("no `pip` or `npm` of the stage uses them", first_span);
    };
    if let Some(window) = consumers.windows(2).find(|w| w[1] != w[0] + 1) {
        return kept(
            "the installs that use them are apart; kiln wraps only consecutive ones",
            instructions[window[1]].span,
        );
    }
    let count = consumers.len();

    // The tools of every plain `apt` node before the installs move to one build-only
    // block around them; a node left with no package goes.
    let mut tools: Vec<Text> = Vec::new();
    let mut removed = 0;
    let mut index = first;
    while index < start - removed {
        if let Instruction::Apt(packages) = &mut instructions[index].value
            && packages.build_only_for.is_none()
            && !packages.keep
        {
            let (moved, left): (Vec<Text>, Vec<Text>) =
                packages.names.drain(..).partition(|n| is_build_tool(&n.value));
            tools.extend(moved);
            packages.names = left;
            if packages.names.is_empty() {
                instructions.remove(index);
                removed += 1;
                continue;
            }
        }
        index += 1;
    }
    let start = start - removed;
    // The first install into a venv builds it in a stage of its own (T34).
    if !instructions[start..start + count]
        .iter()
        .any(|i| matches!(&i.value, Instruction::Pip(p) if p.builder))
        && let Some(Instruction::Pip(pip)) = instructions[start..start + count]
            .iter_mut()
            .map(|i| &mut i.value)
            .find(|i| matches!(i, Instruction::Pip(p) if p.venv.is_some()))
    {
        pip.builder = true;
    }
    // So does the first `npm` whose `node_modules` folder the manifest tells, unless
    // `package.json` has install scripts, whose files outside `node_modules` would stay
    // in the builder.
    if !instructions[start..start + count]
        .iter()
        .any(|i| matches!(&i.value, Instruction::Npm(n) if n.builder))
        && let Some(at) = (start..start + count).find(|&at| {
            matches!(instructions[at].value, Instruction::Npm(_))
                && node_modules_folder(instructions, at).is_some()
                && !crate::deps_first::has_install_scripts(context_dir)
        })
        && let Instruction::Npm(npm) = &mut instructions[at].value
    {
        npm.builder = true;
    }
    let block = Packages { names: tools, build_only_for: Some(count), keep: false, linked_by: None };
    instructions.insert(start, Spanned::new(Instruction::Apt(block), first_span));
    // Tools on `apt` nodes after the installs stay.
    instructions
        .iter()
        .skip(start + count + 1)
        .find(|i| holds_tools(i))
        .and_then(|i| kept("installed after the `pip` and `npm` installs that would use them", i.span))
}

/// A `cmd`, `entrypoint` or `healthcheck` that runs a tool needs it in the image.
fn runtime_use(instructions: &[Spanned<Instruction>]) -> Option<ToolsKept> {
    instructions.iter().find_map(|instruction| {
        let words: Vec<&Text> = match &instruction.value {
            Instruction::Cmd(args) | Instruction::Entrypoint(args) => args.iter().collect(),
            Instruction::Healthcheck(Some(check)) => check.command.iter().collect(),
            _ => return None,
        };
        let command = words.iter().flat_map(|w| w.value.split_whitespace()).find(|word| {
            let name = word.rsplit('/').next().unwrap_or_default();
            BUILD_SYSTEMS.contains(&name) || OTHER_COMMANDS.contains(&name)
        })?;
        Some(ToolsKept {
            reason: format!("the `{}` runs `{command}`", instruction.value.node_name()),
            span: instruction.span,
        })
    })
}
