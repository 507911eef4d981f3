//! Checks on the values of one stage's instructions: what Docker would reject, what
//! could not be written safely into a Dockerfile, and what is likely a mistake.

use std::path::Path;

use kiln_dockerignore::Matcher;

use crate::ast::{Copy, CopyFrom, Healthcheck, Instruction, KeyValue, Npm, Packages, Pip, Run, Text, User};
use crate::build_tools::{ToolsKept, is_build_tool};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::Level;
use crate::shell::{has_heredoc, is_dockerfile_heredoc, shell_words};
use crate::source::{Span, Spanned};

/// What the checks of a stage need to know about its image.
pub(crate) struct StageContext<'a> {
    pub level: Level,
    pub context_dir: &'a Path,
    /// The image's declared ignore patterns, compiled, and the text of each.
    pub ignore: &'a Matcher,
    pub ignore_texts: &'a [Text],
    /// Whether the stage starts from an outside image (whose WORKDIR kiln cannot know).
    pub external_base: bool,
    /// Whether this is the image's target stage, the one that ships.
    pub is_target: bool,
    /// Whether another stage starts from this one (`from stage=`).
    pub is_base: bool,
    /// Why `build-tools-split` left the stage's build tools in it.
    pub tools_kept: Option<&'a ToolsKept>,
}

pub(crate) fn check_stage(
    instructions: &[Spanned<Instruction>],
    ctx: &StageContext<'_>,
    diags: &mut Diagnostics,
) {
    let mut has_workdir = !ctx.external_base;
    let mut copied_whole_context: Option<(&Copy, Text)> = None;
    let mut seen_single: Vec<(&'static str, crate::source::Span)> = Vec::new();
    // With an ENTRYPOINT, CMD holds its arguments, where a blank is an ordinary character.
    let has_entrypoint = instructions.iter().any(|i| matches!(i.value, Instruction::Entrypoint(_)));
    // The nodes of a build-only block still to come, and the stage's own SHELL so far.
    let mut block_left = 0usize;
    let mut shell: Option<&[Text]> = None;
    for instruction in instructions {
        let span = instruction.span;
        let in_block = block_left > 0;
        block_left = block_left.saturating_sub(1);
        match &instruction.value {
            Instruction::Workdir(path) => {
                check_line(path, "a path", diags);
                if !(path.value.starts_with('/') || path.value.starts_with('$')) {
                    diags.push(
                        Diagnostic::new(
                            Code::RelativeWorkdir,
                            format!("`workdir` must be absolute, got `{}`", path.value),
                        )
                        .label(path.span, "relative path")
                        .help(format!("write `workdir \"/{}\"`", path.value.trim_start_matches("./"))),
                    );
                }
                has_workdir = true;
            }
            Instruction::Copy(copy) => {
                check_copy(copy, ctx, diags);
                if copy.copies_whole_context() {
                    copied_whole_context.get_or_insert_with(|| (copy, copy.sources[0].clone()));
                }
            }
            Instruction::Run(run) => {
                check_run(run, ctx.level, in_block, shell, diags);
                if let Some((_, copy)) = &copied_whole_context
                    && let Some(command) = run.commands.iter().find(|c| installs_packages(&c.value))
                {
                    diags.push(
                        Diagnostic::new(Code::CacheOrder, "`run` installs packages after the sources are copied")
                            .label(command.span, "reinstalls whenever any source file changes")
                            .label(copy.span, "sources copied here")
                            .help("install before the `copy` of the sources, or with an `apt`, `apk`, `pip` or `npm` node placed there"),
                    );
                }
            }
            Instruction::Env(pairs) => {
                check_pairs(pairs, "environment variable", is_env_key, diags);
                check_secrets(pairs.iter().map(|p| &p.key), diags);
            }
            Instruction::Arg { name, default } => {
                check_key(name, "build argument", is_env_key, diags);
                if let Some(default) = default {
                    check_line(default, "a value", diags);
                }
                check_secrets(std::iter::once(name), diags);
            }
            Instruction::Label(pairs) => check_pairs(pairs, "label", is_label_key, diags),
            Instruction::User(user) => check_user(user, diags),
            Instruction::Expose(ports) => {
                for port in ports {
                    check_port(port, diags);
                }
            }
            Instruction::Volume(paths) => {
                for path in paths {
                    check_line(path, "a path", diags);
                    if !(path.value.starts_with('/') || path.value.starts_with('$')) {
                        diags.push(
                            Diagnostic::new(Code::InvalidValue, "a volume must be an absolute path")
                                .label(path.span, "relative path"),
                        );
                    } else if path.value.ends_with(char::is_whitespace) {
                        diags.push(
                            Diagnostic::new(Code::Unexpressible, "a volume path cannot end with a blank")
                                .label(path.span, "Docker trims blanks around a VOLUME path"),
                        );
                    }
                }
            }
            Instruction::Entrypoint(_) | Instruction::Cmd(_) | Instruction::Healthcheck(_) => {
                let name = instruction.value.node_name();
                if let Some((_, first)) = seen_single.iter().find(|(n, _)| *n == name) {
                    diags.push(
                        Diagnostic::new(
                            Code::DuplicateInstruction,
                            format!("`{name}` is set twice in one stage; only the last counts"),
                        )
                        .label(span, "this one wins")
                        .label(*first, "this one is ignored"),
                    );
                }
                seen_single.push((name, span));
                match &instruction.value {
                    Instruction::Healthcheck(Some(check)) => {
                        check_healthcheck(check, diags);
                        check_program(&check.command, "healthcheck", diags);
                    }
                    Instruction::Entrypoint(args) => check_program(args, name, diags),
                    Instruction::Cmd(args) if !has_entrypoint => check_program(args, name, diags),
                    _ => {}
                }
            }
            Instruction::Shell(words) => shell = Some(words),
            Instruction::StopSignal(signal) => {
                let ok = signal.value.parse::<u8>().is_ok_and(|n| (1..=64).contains(&n))
                    || (signal.value.len() > 3
                        && signal.value.starts_with("SIG")
                        && signal.value[3..]
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+' || c == '-'));
                if !ok {
                    diags.push(
                        Diagnostic::new(Code::InvalidValue, format!("`{}` is not a signal", signal.value))
                            .label(signal.span, "expected a name like `SIGTERM` or a number")
                            .help("write `stopsignal \"SIGTERM\"`"),
                    );
                }
            }
            Instruction::Apt(packages) | Instruction::Apk(packages) => {
                block_left = packages.build_only_for.unwrap_or(0);
                let is_apt = matches!(instruction.value, Instruction::Apt(_));
                for package in &packages.names {
                    check_package(package, is_apt, diags);
                }
                if ctx.is_target && packages.build_only_for.is_none() {
                    check_build_tools(packages, instruction.value.node_name(), ctx, diags);
                }
                cache_order(instruction, copied_whole_context.as_ref(), ctx, diags);
            }
            Instruction::Pip(pip) => {
                check_pip(pip, span, ctx, diags);
                cache_order(instruction, copied_whole_context.as_ref(), ctx, diags);
                if pip.requirements.is_some() {
                    needs_workdir(instruction, has_workdir, diags);
                }
            }
            Instruction::Npm(_) | Instruction::GoMod(_) | Instruction::CargoFetch(_) => {
                if let Instruction::GoMod(downloads) | Instruction::CargoFetch(downloads) = &instruction.value
                    && downloads.cache
                {
                    check_download_cache(instruction.value.node_name(), span, ctx, diags);
                }
                if let Instruction::Npm(npm) = &instruction.value {
                    check_npm(npm, ctx.level, diags);
                }
                let files = instruction.value.dependency_files();
                check_files_exist(ctx, files, span, instruction.value.node_name(), diags);
                cache_order(instruction, copied_whole_context.as_ref(), ctx, diags);
                needs_workdir(instruction, has_workdir, diags);
            }
        }
    }
}

/// A package node after the whole context is copied reinstalls on every source change.
/// `deps-first` has already moved those it could; say why this one stayed.
fn cache_order(
    instruction: &Spanned<Instruction>,
    copied_whole_context: Option<&(&Copy, Text)>,
    ctx: &StageContext<'_>,
    diags: &mut Diagnostics,
) {
    let Some((copy_node, copy)) = copied_whole_context else { return };
    let name = instruction.value.node_name();
    let reason = crate::deps_first::sources_needed(&instruction.value, ctx.context_dir)
        .filter(|r| !r.is_empty())
        .or_else(|| crate::deps_first::copy_feeds(&instruction.value, copy_node, ctx.context_dir));
    let help = match reason {
        Some(reason) => format!(
            "kiln moves installs above the sources only when they need none of them, and {reason}; copy what it needs first, then `{name}`, then the rest"
        ),
        _ => format!(
            "move `{name}` before the `copy` of the sources and what depends on them, so its layer stays cached"
        ),
    };
    diags.push(
        Diagnostic::new(Code::CacheOrder, format!("`{name}` comes after the sources are copied"))
            .label(instruction.span, "packages reinstall whenever any source file changes")
            .label(copy.span, "sources copied here")
            .help(help),
    );
}

/// A dependency node copies its manifest files into the working directory, which an
/// outside base may leave at `/`.
fn needs_workdir(instruction: &Spanned<Instruction>, has_workdir: bool, diags: &mut Diagnostics) {
    if has_workdir {
        return;
    }
    let name = instruction.value.node_name();
    diags.push(
        Diagnostic::new(
            Code::MissingWorkdir,
            format!("`{name}` copies files into the working directory, but this stage sets none"),
        )
        .label(instruction.span, "files would land in the base image's WORKDIR, often `/`")
        .help("add a `workdir \"/app\"` before it"),
    );
}

/// Whether a shell command installs packages that do not depend on the sources: system
/// packages, or dependencies from a lock or requirements file (`pip install .` and
/// `npm install some-package` need or change the sources, and are left alone).
fn installs_packages(command: &str) -> bool {
    let words: Vec<&str> = command.split_whitespace().collect();
    let is_separator = |w: &&str| matches!(*w, "&&" | ";" | "||" | "|");
    // The words of each simple command that starts with `tool`, up to the next separator.
    let arguments = |tool: &[&str]| -> Vec<&[&str]> {
        (0..words.len())
            .filter(|&at| words[at..].starts_with(tool))
            .map(|at| {
                let rest = &words[at + tool.len()..];
                &rest[..rest.iter().position(is_separator).unwrap_or(rest.len())]
            })
            .collect()
    };
    let any = |tool: &[&str], test: fn(&[&str]) -> bool| arguments(tool).into_iter().any(test);
    let always = |_: &[&str]| true;
    let from_requirements =
        |args: &[&str]| args.iter().any(|a| a.starts_with("-r") || a.starts_with("--requirement"));
    let no_package_named = |args: &[&str]| args.iter().all(|a| a.starts_with('-'));
    any(&["apt-get", "install"], always)
        || any(&["apt", "install"], always)
        || any(&["apk", "add"], always)
        || any(&["pip", "install"], from_requirements)
        || any(&["pip3", "install"], from_requirements)
        || any(&["npm", "ci"], always)
        || any(&["npm", "install"], no_package_named)
        || any(&["yarn", "install"], always)
        || any(&["go", "mod", "download"], always)
        || any(&["cargo", "fetch"], always)
        || any(&["bundle", "install"], always)
}

/// `cmd "gunicorn -b 0.0.0.0:8000 app:app"` passes every check and fails when the
/// container starts: exec form runs a program of that whole name.
fn check_program(args: &[Text], node: &str, diags: &mut Diagnostics) {
    let Some(program) = args.first() else { return };
    if !program.value.trim().contains(char::is_whitespace) {
        return;
    }
    let shell_syntax = program.value.contains(['$', '|', '&', ';', '<', '>', '*', '"', '\'', '`', '(']);
    let help = if shell_syntax {
        format!(
            "this reads as a shell command: write `{node} \"/bin/sh\" \"-c\" {}`",
            kdl_string(&program.value)
        )
    } else {
        let mut words: Vec<String> = program.value.split_whitespace().map(str::to_owned).collect();
        words.extend(args[1..].iter().map(|a| a.value.clone()));
        let first = words.remove(0);
        let rest: Vec<String> = words.iter().map(|w| kdl_string(w)).collect();
        format!("write one argument per word: `{node} {} {}`", kdl_string(&first), rest.join(" "))
    };
    diags.push(
        Diagnostic::new(
            Code::CommandInOneArgument,
            format!("`{node}` would run a program named `{}`", program.value),
        )
        .label(
            program.span,
            "Docker looks for an executable of this whole name, and the container fails to start",
        )
        .help(help),
    );
}

/// `value` as the manifest would write it.
fn kdl_string(value: &str) -> String {
    kdl::KdlValue::String(value.to_owned()).to_string()
}

fn check_copy(copy: &Copy, ctx: &StageContext<'_>, diags: &mut Diagnostics) {
    check_line(&copy.dest, "a path", diags);
    for source in &copy.sources {
        check_line(source, "a path", diags);
        if copy.from == CopyFrom::Context {
            check_context_path(source, ctx, diags);
        }
    }
    if copy.sources.len() > 1 && !copy.dest.value.ends_with('/') {
        diags.push(
            Diagnostic::new(
                Code::InvalidValue,
                "copying several sources needs a destination folder ending in `/`",
            )
            .label(copy.dest.span, "not a folder")
            .help(format!("write `\"{}/\"`", copy.dest.value)),
        );
    }
    if let Some(chown) = &copy.chown
        && !is_user_spec(&chown.value)
    {
        diags.push(
            Diagnostic::new(Code::InvalidValue, format!("`{}` is not a valid owner", chown.value))
                .label(chown.span, "expected `user`, `user:group`, `uid` or `uid:gid`"),
        );
    }
    if let Some(chmod) = &copy.chmod {
        let octal =
            (3..=4).contains(&chmod.value.len()) && chmod.value.chars().all(|c| ('0'..='7').contains(&c));
        if !octal {
            diags.push(
                Diagnostic::new(Code::InvalidValue, format!("`{}` is not an octal mode", chmod.value))
                    .label(chmod.span, "expected 3 or 4 octal digits, such as `0755`")
                    .help("quote the mode so that KDL keeps its leading zero: `chmod=\"0755\"`"),
            );
        } else if !ctx.level.copy_chmod() {
            diags.push(
                Diagnostic::new(Code::UnsupportedAtLevel, "`chmod` needs `dockerfile-level \"1.2\"` or later")
                    .label(chmod.span, "COPY --chmod is not available at the `classic` level")
                    .help("set `dockerfile-level \"1.2\"` in the root manifest (builds then need BuildKit), or drop `chmod`"),
            );
        }
    }
}

/// A path inside the build context: relative, not leaving it, not ignored.
pub(crate) fn check_context_path(source: &Text, ctx: &StageContext<'_>, diags: &mut Diagnostics) {
    let value = &source.value;
    if value.starts_with('/') {
        diags.push(
            Diagnostic::new(Code::PathOutsideContext, format!("`{value}` is an absolute path, outside the build context"))
                .label(source.span, "absolute path")
                .help("paths copied from the context are relative to it; to copy from a stage or image, add `from=` or `image=`"),
        );
        return;
    }
    let cleaned = kiln_dockerignore::clean_path(value);
    if cleaned == ".." || cleaned.starts_with("../") {
        diags.push(
            Diagnostic::new(Code::PathOutsideContext, format!("`{value}` leaves the build context"))
                .label(source.span, "goes above the context folder")
                .help("Docker only sends the context folder to the builder; widen the image's `context`, or move the file into it"),
        );
        return;
    }
    if let Some(index) = ctx.ignore.excluded_by(&cleaned) {
        let pattern = ctx.ignore_texts.get(index);
        let mut diagnostic = Diagnostic::new(
            Code::IgnoredCopySource,
            format!("`{value}` is copied, but the image's ignore patterns exclude it"),
        )
        .label(source.span, "copied here");
        if let Some(pattern) = pattern {
            diagnostic = diagnostic
                .label(pattern.span, "excluded by this pattern")
                .help(format!("remove the pattern, or add an exception: `ignore \"!{cleaned}\"`"));
        }
        diags.push(diagnostic);
        return;
    }
    // kiln writes COPY paths so that Docker reads them literally (no `$VAR`).
    if cleaned == "." {
        return;
    }
    let exists = if value.contains(['*', '?', '[']) {
        let pattern = format!("{}/{}", glob::Pattern::escape(&ctx.context_dir.to_string_lossy()), cleaned);
        glob::glob(&pattern).is_ok_and(|mut paths| paths.next().is_some())
    } else {
        ctx.context_dir.join(&cleaned).exists()
    };
    if exists && leads_outside(ctx.context_dir, &cleaned) {
        diags.push(
            Diagnostic::new(
                Code::MissingFile,
                format!("`{value}` leads outside the build context through a symbolic link"),
            )
            .label(source.span, "the builder does not follow links out of the context")
            .help("copy the file into the context, or widen the image's `context`"),
        );
        return;
    }
    if !exists && ctx.context_dir.is_dir() {
        let siblings = list_siblings(ctx.context_dir, &cleaned);
        diags.push(
            Diagnostic::new(Code::MissingFile, format!("`{value}` does not exist in the build context"))
                .label(source.span, "not found")
                .help_opt(crate::suggest::did_you_mean(&cleaned, siblings.iter().map(String::as_str)))
                .help_opt(
                    Some(format!(
                        "the context is `{}`",
                        ctx.context_dir
                            .file_name()
                            .map_or_else(|| ".".into(), |n| n.to_string_lossy().into_owned())
                    ))
                    .filter(|_| siblings.is_empty()),
                ),
        );
    }
}

/// Whether `path` (relative, cleaned) resolves, through symbolic links, to a place
/// outside `context`: Docker sends links as links and resolves them inside the context.
fn leads_outside(context: &Path, path: &str) -> bool {
    match (context.canonicalize(), context.join(path).canonicalize()) {
        (Ok(context), Ok(real)) => !real.starts_with(context),
        _ => false,
    }
}

/// Names in the folder of `path` (relative paths), for "did you mean" hints.
fn list_siblings(context: &Path, path: &str) -> Vec<String> {
    let (dir, prefix) = match path.rsplit_once('/') {
        Some((dir, _)) => (context.join(dir), format!("{dir}/")),
        None => (context.to_path_buf(), String::new()),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| format!("{prefix}{}", e.file_name().to_string_lossy()))
        .collect();
    names.sort();
    names
}

fn check_files_exist(
    ctx: &StageContext<'_>,
    files: &[&str],
    span: crate::source::Span,
    node: &str,
    diags: &mut Diagnostics,
) {
    if !ctx.context_dir.is_dir() {
        return;
    }
    let missing: Vec<&str> = files.iter().copied().filter(|f| !ctx.context_dir.join(f).exists()).collect();
    if !missing.is_empty() {
        let list = missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(" and ");
        diags.push(
            Diagnostic::new(Code::MissingFile, format!("`{node}` needs {list} in the build context"))
                .label(span, "not found in the context")
                .help("the build will fail until the file exists"),
        );
    }
}

fn check_pip(pip: &Pip, span: Span, ctx: &StageContext<'_>, diags: &mut Diagnostics) {
    if pip.builder && pip.venv.is_none() {
        diags.push(
            Diagnostic::new(Code::MissingValue, "`builder=#true` needs a venv to copy out of the builder")
                .label(span, "installs into no venv")
                .help("add `venv=\"/opt/venv\"`: the builder stage installs into it, and only it is copied into this stage"),
        );
    }
    for package in &pip.packages {
        check_line(package, "a requirement", diags);
        if package.value.starts_with('-') {
            diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("`{}` looks like an option, not a package", package.value),
                )
                .label(package.span, "pip options are not passed as packages")
                .help("write options as properties: `requirements=`, `venv=`, `no-compile=`, `index-url=`, `extra-index-url=`, `require-hashes=`"),
            );
        }
    }
    if let Some(requirements) = &pip.requirements {
        check_line(requirements, "a path", diags);
        check_context_path(requirements, ctx, diags);
    }
    if let Some(venv) = &pip.venv {
        check_line(venv, "a path", diags);
        if !venv.value.starts_with('/') {
            diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("`venv` must be an absolute path, got `{}`", venv.value),
                )
                .label(venv.span, "relative path")
                .help("for example `venv=\"/opt/venv\"`"),
            );
        }
        if pip.user {
            diags.push(
                Diagnostic::new(
                    Code::ConflictingValues,
                    "`pip` cannot install into a venv and with `user=#true`",
                )
                .label(venv.span, "installs into this environment")
                .help("drop `user=#true`: the venv is the place to copy into the runtime stage"),
            );
        }
    }
    for url in pip.index_url.iter().chain(&pip.extra_index_url) {
        check_url(url, diags);
    }
    if let Some(secret) = &pip.index_url_secret {
        check_mount_id(secret, "index-url-secret", ctx.level, diags);
        if let Some(url) = &pip.index_url {
            diags.push(
                Diagnostic::new(
                    Code::ConflictingValues,
                    "`pip` takes its index from `index-url` or from `index-url-secret`, not both",
                )
                .label(url.span, "here")
                .label(secret.span, "and here")
                .help("an index whose URL holds credentials belongs in the secret; drop `index-url`"),
            );
        }
    }
}

fn check_npm(npm: &Npm, level: Level, diags: &mut Diagnostics) {
    if let Some(secret) = &npm.npmrc_secret {
        check_mount_id(secret, "npmrc-secret", level, diags);
    }
    for kind in &npm.omit {
        if !matches!(kind.value.as_str(), "dev" | "optional" | "peer") {
            diags.push(
                Diagnostic::new(Code::InvalidValue, format!("npm cannot omit `{}`", kind.value))
                    .label(kind.span, "not a kind of dependency")
                    .help("`omit` takes `dev`, `optional` and `peer`, separated by blanks"),
            );
        }
    }
    if let Some(registry) = &npm.registry {
        check_url(registry, diags);
    }
}

/// Compilers, build systems, headers and installers only serve while something is
/// built; in the image that ships they are dead weight (and attack surface). Those that
/// `build-tools-split` could not take out are reported, with why.
fn check_build_tools(packages: &Packages, node: &str, ctx: &StageContext<'_>, diags: &mut Diagnostics) {
    let tools: Vec<&Text> = packages.names.iter().filter(|p| is_build_tool(&p.value)).collect();
    if tools.is_empty() || packages.keep {
        return;
    }
    let names: Vec<&str> = tools.iter().map(|t| t.value.as_str()).collect();
    let mut diagnostic = Diagnostic::new(
        Code::BuildToolsInImage,
        format!(
            "build tools stay in the image: {}",
            names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        ),
    );
    for tool in &tools {
        diagnostic = diagnostic.label(tool.span, "only needed while building");
    }
    if let Some(kept) = ctx.tools_kept {
        diagnostic = diagnostic.label(kept.span, format!("kiln leaves them: {}", kept.reason));
    }
    diags.push(diagnostic.help(format!(
        "install them with `{node} {} build-only=#true {{ ... }}` around the commands that need them, or build in another stage and copy the result; `build-only=#false` keeps them without this warning",
        names.iter().map(|n| kdl_string(n)).collect::<Vec<_>>().join(" ")
    )));
}

/// `cache=#true` on `go-mod`/`cargo-fetch` keeps the downloads out of the stage's layers:
/// right for a builder stage, whose later `run`s mount them; wrong for a stage that
/// ships, or that another stage builds on, which would lack them.
fn check_download_cache(node: &str, span: Span, ctx: &StageContext<'_>, diags: &mut Diagnostics) {
    if !ctx.level.cache_mounts() {
        diags.push(
            Diagnostic::new(
                Code::UnsupportedAtLevel,
                format!("`{node} cache=#true` needs `dockerfile-level \"1.2\"` or later"),
            )
            .label(span, "cache mounts are not available at the `classic` level")
            .help("set `dockerfile-level \"1.2\"` in the root manifest, or drop `cache=#true`"),
        );
    }
    let reason = if ctx.is_target {
        Some("this stage ships: its image would lack what the node downloads")
    } else if ctx.is_base {
        Some("another stage starts from this one and would lack what the node downloads")
    } else {
        None
    };
    if let Some(reason) = reason {
        diags.push(
            Diagnostic::new(
                Code::ConflictingValues,
                format!("`{node} cache=#true` keeps the downloads out of the stage's layers"),
            )
            .label(span, reason)
            .help("use it in a builder stage that the shipped stage copies its build output from"),
        );
    }
}

/// A package index URL, written into a RUN: one line, and http(s).
fn check_url(url: &Text, diags: &mut Diagnostics) {
    check_line(url, "a URL", diags);
    if !(url.value.starts_with("https://") || url.value.starts_with("http://")) {
        diags.push(
            Diagnostic::new(Code::InvalidValue, format!("`{}` is not an http(s) URL", url.value))
                .label(url.span, "expected `https://...`"),
        );
    }
}

/// `in_block`: the node is in a build-only block, where kiln runs it among its own
/// commands. `shell`: the stage's SHELL, when the stage sets one.
fn check_run(run: &Run, level: Level, in_block: bool, shell: Option<&[Text]>, diags: &mut Diagnostics) {
    // Commands that kiln joins to others: several in the node, or one in a block.
    let joined = in_block || run.commands.len() > 1;
    if run.exec {
        // JSON carries any character, and no shell reads it; a block's RUN is a shell line.
        if in_block {
            diags.push(
                Diagnostic::new(Code::Unexpressible, "a `run exec=#true` cannot be in a build-only block")
                    .label(run.commands[0].span, "the block's RUN is one shell line")
                    .help("write the program and its arguments as a shell command there"),
            );
        }
    } else if run.script {
        check_script(&run.commands[0], level, in_block, diags);
    } else {
        for command in &run.commands {
            check_run_command(command, level, joined, diags);
        }
    }
    if joined
        && !run.exec
        && let Some(program) = shell.and_then(|words| words.first())
        && !is_posix_shell(&program.value)
    {
        let why = if in_block { "run among kiln's commands here" } else { "joined here" };
        diags.push(
            Diagnostic::new(
                Code::Unexpressible,
                format!("kiln cannot join commands for the shell `{}`", program.value),
            )
            .label(run.commands[0].span, why)
            .label(program.span, "not a POSIX shell")
            .help("write one command per `run`, outside build-only blocks"),
        );
    }
    let ids = run.secrets.iter().map(|s| (&s.id, "secret")).chain(run.ssh.iter().map(|id| (id, "ssh")));
    for (id, node) in ids {
        check_mount_id(id, node, level, diags);
    }
    for target in run.secrets.iter().filter_map(|s| s.target.as_ref()) {
        check_mount_path(target, "a secret's `target`", diags);
    }
    for cache in &run.caches {
        check_mount_path(cache, "a cache directory", diags);
    }
}

/// The id of a secret or ssh mount: a word of the `--mount` flag, at a level that has
/// mounts.
fn check_mount_id(id: &Text, node: &str, level: Level, diags: &mut Diagnostics) {
    if !level.cache_mounts() {
        diags.push(
            Diagnostic::new(Code::UnsupportedAtLevel, format!("`{node}` needs `dockerfile-level \"1.2\"` or later"))
                .label(id.span, format!("RUN --mount=type={} is not available at the `classic` level", if node == "ssh" { "ssh" } else { "secret" }))
                .help("set `dockerfile-level \"1.2\"` in the root manifest: builds then use BuildKit, which mounts it for this RUN only"),
        );
    }
    let valid = !id.value.is_empty()
        && id.value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        let example = if node == "ssh" { "--ssh default" } else { "--secret id=npmrc,src=.npmrc" };
        diags.push(
            Diagnostic::new(
                Code::InvalidValue,
                format!("`{}` is not a valid {} id", id.value, if node == "ssh" { "ssh" } else { "secret" }),
            )
            .label(id.span, "letters, digits, `-`, `_` and `.` only")
            .help(format!("the id names what `kiln build` is given, as `{example}`")),
        );
    }
}

/// A path written into a `--mount` flag: absolute, and one word of the flag.
fn check_mount_path(path: &Text, what: &str, diags: &mut Diagnostics) {
    check_line(path, "a path", diags);
    if !path.value.starts_with('/') {
        diags.push(
            Diagnostic::new(Code::InvalidValue, format!("{what} must be an absolute path"))
                .label(path.span, "relative path"),
        );
    }
    if path.value.chars().any(|c| matches!(c, ',' | '"' | '\'' | '=') || c.is_whitespace()) {
        diags.push(
            Diagnostic::new(Code::Unexpressible, format!("{what} cannot contain blanks, quotes, `,` or `=`"))
                .label(path.span, "cannot be written in a `--mount` flag"),
        );
    }
}

/// A `run script=#true`: written as a heredoc or a JSON string, it may hold any text a
/// reviewer can see.
fn check_script(script: &Text, level: Level, in_block: bool, diags: &mut Diagnostics) {
    if let Some(c) = script.value.chars().find(|c| hidden_in_review(*c) && *c != '\n') {
        diags.push(
            Diagnostic::new(
                Code::Unexpressible,
                format!("a `run` script cannot contain the invisible character U+{:04X}", u32::from(c)),
            )
            .label(script.span, "reviewers of the generated Dockerfile would not see it"),
        );
    }
    if in_block {
        diags.push(
            Diagnostic::new(Code::Unexpressible, "a `run` script cannot be in a build-only block")
                .label(script.span, "the block's RUN is one shell line")
                .help("give the block `run` commands, or put the script in a file of the context and run it"),
        );
    }
    if script.value.starts_with("#!") && !level.heredocs() {
        diags.push(
            Diagnostic::new(
                Code::UnsupportedAtLevel,
                "a `run` script starting with `#!` needs `dockerfile-level \"1.4\"`",
            )
            .label(script.span, "BuildKit runs such a heredoc with its own interpreter")
            .help("set `dockerfile-level \"1.4\"`, or start the script without `#!` to run it in the stage's shell"),
        );
    }
}

/// Shells whose language kiln writes joins in (`run.rs` of kiln-emit).
fn is_posix_shell(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    ["sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "busybox", "yash", "posh", "oksh", "loksh"]
        .contains(&name)
}

/// One command of a `run`. Docker reads the RUN line before the shell does: the
/// command must not read as a flag, a Dockerfile heredoc or a line continuation. When
/// kiln joins it to other commands (`joined`) on one shell line, a comment would
/// swallow what comes after it.
fn check_run_command(command: &Text, level: Level, joined: bool, diags: &mut Diagnostics) {
    let value = &command.value;
    let mut error = |message: &str, label: &str, help: &str| {
        diags.push(Diagnostic::new(Code::Unexpressible, message).label(command.span, label).help(help));
    };
    if let Some(c) = value.chars().find(|c| hidden_in_review(*c)) {
        let message =
            format!("a `run` command cannot contain the invisible character U+{:04X}", u32::from(c));
        error(&message, "reviewers of the generated Dockerfile would not see it", "remove it");
    }
    if value.trim_start().starts_with('-') {
        error(
            "a `run` command cannot start with `-`",
            "Docker would read this as a flag of RUN",
            "RUN's flags are kiln's to write (from `cache`); start the command with a program name",
        );
    }
    if value.trim_end().ends_with('\\') {
        error(
            "a `run` command cannot end with `\\`",
            "the Dockerfile would join the next instruction to it",
            "remove the trailing `\\`",
        );
    }
    let words = shell_words(value);
    if joined && crate::shell::scan(value).comment {
        error(
            "a joined `run` command cannot hold a shell comment",
            "`#` starts a comment that would swallow what kiln joins after it",
            "write the comment as a KDL comment (`// ...`) on a line of its own, or give the command a `run` of its own",
        );
    }
    if has_heredoc(value) || words.iter().any(|w| is_dockerfile_heredoc(w.text)) {
        let help = if level.heredocs() {
            "at level 1.4 the Dockerfile parser would read it as a Dockerfile heredoc; put the text in a file and `copy` it"
        } else {
            "each line of a `run` string is a separate command, and BuildKit would read a Dockerfile heredoc; put the text in a file and `copy` it"
        };
        error("shell heredocs (`<<WORD`) are not supported in `run`", "heredoc here", help);
    }
}

fn check_pairs(pairs: &[KeyValue], what: &str, valid_key: fn(&str) -> bool, diags: &mut Diagnostics) {
    for pair in pairs {
        check_key(&pair.key, what, valid_key, diags);
        check_line(&pair.value, "a value", diags);
    }
}

fn check_key(key: &Text, what: &str, valid: fn(&str) -> bool, diags: &mut Diagnostics) {
    if !valid(&key.value) {
        diags.push(
            Diagnostic::new(Code::InvalidName, format!("`{}` is not a valid {what} name", key.value))
                .label(key.span, "invalid name")
                .help(if what == "label" {
                    "label keys start with a letter or digit and use letters, digits, `.`, `-`, `_` and `/`, such as `org.opencontainers.image.title`"
                } else {
                    "use letters, digits and `_`, not starting with a digit"
                }),
        );
    }
}

/// BuildKit's `SecretsUsedInArgOrEnv` rule: these names suggest a secret baked into an
/// image layer, where anyone with the image can read it.
fn check_secrets<'a>(keys: impl Iterator<Item = &'a Text>, diags: &mut Diagnostics) {
    const SECRET: &[&str] = &[
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    const HARMLESS: &[&str] = &["public", "file", "version"];
    for key in keys {
        let lower = key.value.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('_').collect();
        if parts.iter().any(|p| SECRET.contains(p)) && !parts.iter().any(|p| HARMLESS.contains(p)) {
            diags.push(
                Diagnostic::new(
                    Code::SecretInEnv,
                    format!("`{}` looks like a secret, and would be stored in the image", key.value),
                )
                .label(key.span, "readable by anyone who has the image")
                .help("pass secrets at run time, not at build time"),
            );
        }
    }
}

fn check_user(user: &User, diags: &mut Diagnostics) {
    check_line(&user.name, "a user", diags);
    if user.uid.is_some() || user.gid.is_some() {
        let valid = user.name.value.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && user
                .name
                .value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
            && user.name.value.len() <= 32;
        if !valid {
            diags.push(
                Diagnostic::new(
                    Code::InvalidName,
                    format!("`{}` is not a valid name for a new user", user.name.value),
                )
                .label(user.name.span, "expected lowercase letters, digits, `_` and `-`"),
            );
        }
        if user.uid.is_none()
            && let Some(gid) = &user.gid
        {
            diags.push(
                Diagnostic::new(Code::MissingValue, "creating a user needs `uid=` as well as `gid=`")
                    .label(gid.span, "`gid=` alone"),
            );
        }
    } else if !is_user_spec(&user.name.value) {
        diags.push(
            Diagnostic::new(Code::InvalidValue, format!("`{}` is not a valid user", user.name.value))
                .label(user.name.span, "expected `user`, `user:group`, `uid` or `uid:gid`"),
        );
    }
}

/// `user`, `user:group`, `uid`, `uid:gid`, where Docker's `$VAR` references may stand
/// for either part (`${UID:-1000}:${GID:-1000}`). No blank or quote: the value is one
/// word of a flag or instruction.
fn is_user_spec(spec: &str) -> bool {
    if spec.chars().any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\')) {
        return false;
    }
    let spec = without_references(spec, "x");
    let part_ok = |p: &str| {
        !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    match spec.split_once(':') {
        Some((user, group)) => part_ok(user) && part_ok(group),
        None => part_ok(&spec),
    }
}

fn check_port(port: &Text, diags: &mut Diagnostics) {
    // `$PORT`, `${PORT}/udp`: Docker expands EXPOSE's values; a reference stands for
    // a port here (what it holds is the build's to check).
    let value = without_references(&port.value, "1");
    let (number, protocol) = match value.split_once('/') {
        Some((n, p)) => (n, Some(p)),
        None => (value.as_str(), None),
    };
    let in_range = |n: &str| n.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n));
    let numbers_ok = match number.split_once('-') {
        Some((lo, hi)) => in_range(lo) && in_range(hi) && lo.parse::<u32>().ok() <= hi.parse::<u32>().ok(),
        None => in_range(number),
    };
    let protocol_ok = protocol.is_none_or(|p| matches!(p, "tcp" | "udp" | "sctp"));
    if !numbers_ok || !protocol_ok {
        diags
            .push(Diagnostic::new(Code::InvalidValue, format!("`{}` is not a valid port", port.value)).label(
            port.span,
            "expected a port from 1 to 65535, a range `8000-8010`, optionally with `/tcp`, `/udp` or `/sctp`",
        ));
    }
}

/// `text` with each `$NAME` and `${...}` replaced by `with`.
fn without_references(text: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let used = match after.strip_prefix('{') {
            Some(inner) => inner.find('}').map_or(after.len(), |end| end + 2),
            None => after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len()),
        };
        if used == 0 {
            out.push('$');
        } else {
            out.push_str(with);
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// The command is written as JSON (exec form), which carries any character.
fn check_healthcheck(check: &Healthcheck, diags: &mut Diagnostics) {
    for duration in [&check.interval, &check.timeout, &check.start_period].into_iter().flatten() {
        if !is_duration(&duration.value) {
            diags.push(
                Diagnostic::new(Code::InvalidValue, format!("`{}` is not a duration", duration.value))
                    .label(duration.span, "expected a duration such as `30s`, `1m30s` or `500ms`"),
            );
        }
    }
}

/// Go's `time.ParseDuration` syntax, without a sign: `1h30m`, `1.5s`, `250ms`.
fn is_duration(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"].iter().find(|u| rest.starts_with(**u));
        match unit {
            Some(unit) => rest = &rest[unit.len()..],
            None => return false,
        }
    }
    true
}

/// A package, with an optional version (`libpq5=15.*`: apt takes a glob there).
fn check_package(package: &Text, glob_versions: bool, diags: &mut Diagnostics) {
    let value = &package.value;
    let (name, version) = value.split_once('=').unwrap_or((value, ""));
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | ':' | '~' | '_' | '-' | '/');
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(allowed)
        && version.chars().all(|c| allowed(c) || c == '=' || (glob_versions && c == '*'));
    if !ok {
        let expected = if glob_versions {
            "expected letters, digits and `+.:=~_-/`, and `*` in a version"
        } else {
            "expected letters, digits and `+.:=~_-/`"
        };
        diags.push(
            Diagnostic::new(Code::InvalidValue, format!("`{value}` is not a valid package name"))
                .label(package.span, expected)
                .help("one package per argument: `apt curl ca-certificates`"),
        );
    }
}

/// A value written on one Dockerfile line: a line break would end the instruction.
/// Nor a character a reviewer of the generated file could not see: Dockerfile words
/// have no escape for it.
pub(crate) fn check_line(text: &Text, what: &str, diags: &mut Diagnostics) {
    if text.value.contains(['\n', '\r']) {
        diags.push(
            Diagnostic::new(Code::Unexpressible, format!("{what} cannot contain a line break"))
                .label(text.span, "a Dockerfile cannot express this line break")
                .help("Dockerfile values are written on one line; remove the line break"),
        );
    } else {
        check_visible(text, what, diags);
    }
}

fn check_visible(text: &Text, what: &str, diags: &mut Diagnostics) {
    if let Some(c) = text.value.chars().find(|c| hidden_in_review(*c)) {
        diags.push(
            Diagnostic::new(
                Code::Unexpressible,
                format!("{what} cannot contain the invisible character U+{:04X}", u32::from(c)),
            )
            .label(text.span, "reviewers of the generated Dockerfile would not see it")
            .help("remove it; a tab is the only control character allowed"),
        );
    }
}

/// A character that text views do not show, or that reorders the text around it
/// (bidirectional controls, as in "Trojan Source"): control characters other than a
/// tab, line and paragraph separators, and bidirectional marks and overrides.
pub fn hidden_in_review(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// An image-level label: a valid key, a value on one line.
pub(crate) fn check_label(pair: &KeyValue, diags: &mut Diagnostics) {
    check_pairs(std::slice::from_ref(pair), "label", is_label_key, diags);
}

pub(crate) fn is_env_key(key: &str) -> bool {
    crate::vars::is_var_name(key)
}

/// Starting with a letter or digit: a leading `-` would read as a flag of LABEL.
fn is_label_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_installs() {
        for command in [
            "apt-get update && apt-get install -y curl",
            "pip install --no-cache-dir -r requirements.txt",
            "npm install",
            "npm install --omit=dev",
            "npm ci && npm run build",
            "go mod download",
        ] {
            assert!(installs_packages(command), "{command}");
        }
        for command in [
            "pip install .",
            "pip install -e .",
            "npm install left-pad",
            "npm run build",
            "cargo build --release",
            "echo apt-get",
        ] {
            assert!(!installs_packages(command), "{command}");
        }
    }

    #[test]
    fn kdl_strings() {
        let shown: Vec<String> = ["gunicorn", "-b", "0.0.0.0:8000", "a \"b\"", "#x"].map(kdl_string).to_vec();
        assert_eq!(shown, ["gunicorn", "-b", "\"0.0.0.0:8000\"", r#""a \"b\"""#, "\"#x\""]);
    }

    #[test]
    fn durations() {
        for ok in ["30s", "1m30s", "500ms", "1.5h", "10us"] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in ["", "30", "s", "1x", "-1s", "1..2s"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }
}
