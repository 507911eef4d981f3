//! `kiln import`: existing Dockerfiles (with their contexts and `.dockerignore`) become a
//! `kiln.kdl`, so that a team adopts kiln in one step. Every instruction the manifest
//! language can say is translated; what it cannot is reported with the Dockerfile's
//! `file:line` and kept as close as possible. The round trip (import, then build what
//! kiln emits) puts the same files in the image; a test checks it on a real engine.

pub mod dockerfile;
mod kdl;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use dockerfile::{Args, Instruction};
use kdl::{name, quoted, quoted_all, substituted};

/// One Dockerfile to import.
#[derive(Debug, Clone)]
pub struct Source {
    /// The image's name in the manifest.
    pub name: String,
    /// How reports name the file (`services/api/Dockerfile`).
    pub path: String,
    pub text: String,
    /// The build context, relative to the manifest's folder (`.` for the same folder).
    pub context: String,
    /// The context's `.dockerignore`, if it has one.
    pub dockerignore: Option<String>,
}

/// Something the manifest cannot say exactly, where the Dockerfile says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub file: String,
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Imported {
    pub manifest: String,
    pub notes: Vec<Note>,
}

pub fn import(sources: &[Source]) -> Imported {
    let mut notes = Vec::new();
    let mut variables: BTreeMap<String, String> = BTreeMap::new();
    let mut images = String::new();
    for source in sources {
        let mut writer = ImageWriter { source, notes: &mut notes, variables: &mut variables };
        images.push_str(&writer.write());
    }
    let mut manifest =
        String::from("// Imported by `kiln import`: review it, then `kiln emit` writes the Dockerfiles.\n");
    for (name, value) in &variables {
        let _ = writeln!(manifest, "var {name} {}", quoted(value));
    }
    manifest.push_str(&images);
    Imported { manifest, notes }
}

/// A stage being written.
struct Stage {
    name: String,
    /// The `from` node.
    from: String,
    body: Vec<String>,
    /// `WORKDIR` so far, to make relative ones absolute (`None`: the base's, unknown).
    workdir: Option<String>,
    /// `SHELL`, for shell-form `CMD`, `ENTRYPOINT` and `HEALTHCHECK`.
    shell: Vec<String>,
}

struct ImageWriter<'a> {
    source: &'a Source,
    notes: &'a mut Vec<Note>,
    /// `ARG`s before the first `FROM`, as the manifest's variables.
    variables: &'a mut BTreeMap<String, String>,
}

impl ImageWriter<'_> {
    fn note(&mut self, line: usize, message: impl Into<String>) {
        self.notes.push(Note { file: self.source.path.clone(), line, message: message.into() });
    }

    fn write(&mut self) -> String {
        let mut stages: Vec<Stage> = Vec::new();
        let mut global_args: BTreeMap<String, String> = BTreeMap::new();
        let mut arg_lines: BTreeMap<String, usize> = BTreeMap::new();
        let mut platforms: Vec<(usize, String)> = Vec::new();
        for instruction in dockerfile::parse(&self.source.text) {
            if instruction.keyword == "FROM" {
                let stage = self.from(&instruction, &stages, &global_args, &mut platforms);
                stages.push(stage);
                continue;
            }
            let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
            match stages.last_mut() {
                Some(stage) => {
                    if let Some(line) = self.translate(&instruction, stage, &names) {
                        stage.body.push(line);
                    }
                }
                None if instruction.keyword == "ARG" => {
                    for (name, value) in arg_pairs(&instruction.args.text()) {
                        if !is_variable_name(&name) {
                            self.note(instruction.line, format!("`ARG {name}` cannot be a manifest variable (letters, digits and `_` only); FROM keeps `${name}` as Docker reads it"));
                            continue;
                        }
                        if value.is_none() {
                            self.note(instruction.line, format!("`ARG {name}` has no default: the variable `{name}` is empty unless `--set {name}=...` gives it"));
                        }
                        arg_lines.insert(name.clone(), instruction.line);
                        global_args.insert(name, value.unwrap_or_default());
                    }
                }
                None => self.note(
                    instruction.line,
                    format!("`{}` before the first FROM is left out", instruction.keyword),
                ),
            }
        }
        for (name, value) in global_args {
            // Variables are the project's: a second Dockerfile with another default for the
            // same ARG gets the first one's, and is told.
            match self.variables.get(&name) {
                Some(first) if *first != value => {
                    let message = format!(
                        "`ARG {name}={value}`: the variable `{name}` already has the default `{first}` from another Dockerfile; this image gets it too (`--set {name}=...` changes both)"
                    );
                    self.note(arg_lines.get(&name).copied().unwrap_or(1), message);
                }
                Some(_) => {}
                None => {
                    self.variables.insert(name, value);
                }
            }
        }
        self.render(&stages, &platforms)
    }

    fn from(
        &mut self,
        instruction: &Instruction,
        stages: &[Stage],
        global_args: &BTreeMap<String, String>,
        platforms: &mut Vec<(usize, String)>,
    ) -> Stage {
        let text = instruction.args.text();
        let words: Vec<&str> = text.split_whitespace().collect();
        let base = words.first().copied().unwrap_or("scratch");
        let stage_name = match words.as_slice() {
            [_, r#as, stage_name] if r#as.eq_ignore_ascii_case("as") => stage_name.to_ascii_lowercase(),
            _ => format!("stage-{}", stages.len()),
        };
        for (flag, value) in &instruction.flags {
            if flag == "platform" {
                platforms.push((instruction.line, value.clone()));
            } else {
                self.note(instruction.line, format!("`FROM --{flag}` is left out"));
            }
        }
        let lowered = base.to_ascii_lowercase();
        let from = if stages.iter().any(|s| s.name == lowered) {
            format!("from stage={}", name(&lowered))
        } else {
            let (reference, unknown) = substituted(base, global_args);
            for name in unknown {
                self.note(
                    instruction.line,
                    format!("`${name}` in FROM is no ARG before FROM; left as Docker would read it"),
                );
            }
            format!("from {reference}")
        };
        Stage {
            name: stage_name,
            from,
            body: Vec::new(),
            workdir: Some("/".to_owned()).filter(|_| base == "scratch"),
            shell: vec!["/bin/sh".into(), "-c".into()],
        }
    }

    /// One instruction of a stage as a manifest node, or `None` (with a note) when the
    /// manifest cannot say it.
    fn translate(
        &mut self,
        instruction: &Instruction,
        stage: &mut Stage,
        stages: &[String],
    ) -> Option<String> {
        let line = instruction.line;
        let text = instruction.args.text();
        match instruction.keyword.as_str() {
            "RUN" => Some(self.run(instruction)),
            "COPY" | "ADD" => self.copy(instruction, stages),
            "ENV" | "LABEL" => {
                let pairs = dockerfile::pairs(&text);
                let node = if instruction.keyword == "ENV" { "env" } else { "label" };
                let written: Vec<String> =
                    pairs.iter().map(|(k, v)| format!("{}={}", name(k), quoted(v))).collect();
                Some(format!("{node} {}", written.join(" ")))
            }
            "ARG" => {
                let mut nodes = Vec::new();
                for (arg, value) in arg_pairs(&text) {
                    nodes.push(match value {
                        Some(value) => format!("arg {} {}", name(&arg), quoted(&value)),
                        None => format!("arg {}", name(&arg)),
                    });
                }
                (!nodes.is_empty()).then(|| nodes.join("\n"))
            }
            "WORKDIR" => {
                let path = text.trim();
                let absolute = if path.starts_with('/') {
                    Some(clean(path))
                } else {
                    stage.workdir.as_ref().map(|base| clean(&format!("{base}/{path}")))
                };
                let Some(absolute) = absolute else {
                    self.note(line, format!("`WORKDIR {path}` is relative to the base image's folder, which kiln cannot know; kept as `/{path}`"));
                    stage.workdir = Some(format!("/{path}"));
                    return Some(format!("workdir {}", quoted(&format!("/{path}"))));
                };
                stage.workdir = Some(absolute.clone());
                Some(format!("workdir {}", quoted(&absolute)))
            }
            "USER" => Some(format!("user {}", quoted(text.trim()))),
            "EXPOSE" => Some(format!("expose {}", quoted_all(text.split_whitespace()))),
            "VOLUME" => Some(match &instruction.args {
                Args::Json(paths) => format!("volume {}", quoted_all(paths.iter().map(String::as_str))),
                Args::Shell(text) => format!("volume {}", quoted_all(text.split_whitespace())),
            }),
            "CMD" | "ENTRYPOINT" => {
                let words = self.exec_form(instruction, &stage.shell);
                let node = instruction.keyword.to_ascii_lowercase();
                if words.is_empty() {
                    self.note(line, format!("an empty `{}` is left out", instruction.keyword));
                    return None;
                }
                Some(format!("{node} {}", quoted_all(words.iter().map(String::as_str))))
            }
            "SHELL" => match &instruction.args {
                Args::Json(words) => {
                    stage.shell.clone_from(words);
                    Some(format!("shell {}", quoted_all(words.iter().map(String::as_str))))
                }
                Args::Shell(_) => {
                    self.note(line, "`SHELL` needs the JSON form; left out");
                    None
                }
            },
            "STOPSIGNAL" => Some(format!("stopsignal {}", quoted(text.trim()))),
            "HEALTHCHECK" => self.healthcheck(instruction, &stage.shell),
            "MAINTAINER" => {
                self.note(line, "`MAINTAINER` (deprecated) becomes the label `maintainer`; the image's Author field stays empty");
                Some(format!("label maintainer={}", quoted(text.trim())))
            }
            "ONBUILD" => {
                self.note(line, format!("`ONBUILD {text}` cannot be said in a manifest (kiln builds each image from its own manifest); left out"));
                None
            }
            other => {
                self.note(line, format!("`{other}` is not a Dockerfile instruction kiln knows; left out"));
                None
            }
        }
    }

    fn run(&mut self, instruction: &Instruction) -> String {
        let mut caches = Vec::new();
        for (flag, value) in &instruction.flags {
            let options: BTreeMap<&str, &str> = value.split(',').filter_map(|o| o.split_once('=')).collect();
            match (flag.as_str(), options.get("type").copied()) {
                ("mount", Some("cache")) => {
                    if let Some(target) = options.get("target").or_else(|| options.get("dst")).or_else(|| options.get("destination")) {
                        caches.push((*target).to_owned());
                    }
                    if options.keys().any(|k| !matches!(*k, "type" | "target" | "dst" | "destination")) {
                        self.note(instruction.line, format!("cache mount options other than the target are left out (`{value}`)"));
                    }
                }
                _ => self.note(instruction.line, format!("`RUN --{flag}{}` is left out: add it to the manifest if the step needs it (`secret`, `ssh`, `cache` in a `run`)", if value.is_empty() { String::new() } else { format!("={value}") })),
            }
        }
        // Each `run` node is a RUN of its own (T06): the command is kept as it is.
        let command = match &instruction.args {
            Args::Shell(text) => text.clone(),
            Args::Json(words) => {
                self.note(
                    instruction.line,
                    "an exec-form RUN becomes a shell command (its words quoted for the shell)",
                );
                words.iter().map(|w| kdl::shell_word(w)).collect::<Vec<_>>().join(" ")
            }
        };
        let mut node = format!("run {}", quoted(&command));
        if !caches.is_empty() {
            let _ = write!(node, " {{\n    cache {}\n}}", quoted_all(caches.iter().map(String::as_str)));
        }
        node
    }

    fn copy(&mut self, instruction: &Instruction, stages: &[String]) -> Option<String> {
        let words: Vec<String> = match &instruction.args {
            Args::Json(words) => words.clone(),
            Args::Shell(text) => text.split_whitespace().map(str::to_owned).collect(),
        };
        let Some((dest, sources)) = words.split_last().filter(|(_, sources)| !sources.is_empty()) else {
            self.note(
                instruction.line,
                format!("`{}` needs a source and a destination; left out", instruction.keyword),
            );
            return None;
        };
        let mut options = String::new();
        let mut from_context = true;
        for (flag, value) in &instruction.flags {
            match flag.as_str() {
                "from" => {
                    from_context = false;
                    let lowered = value.to_ascii_lowercase();
                    let stage = match lowered.parse::<usize>() {
                        Ok(index) => stages.get(index).cloned(),
                        Err(_) => stages.iter().find(|s| **s == lowered).cloned(),
                    };
                    match stage {
                        Some(stage) => {
                            let _ = write!(options, " from={}", name(&stage));
                        }
                        None => {
                            let _ = write!(options, " ref={}", quoted(value));
                        }
                    }
                }
                "chown" | "chmod" => {
                    let _ = write!(options, " {flag}={}", quoted(value));
                }
                "link" => options.push_str(" link=#true"),
                other => {
                    self.note(instruction.line, format!("`{} --{other}` is left out", instruction.keyword));
                }
            }
        }
        if instruction.keyword == "ADD" {
            let remote_or_archive = sources.iter().any(|s| {
                s.contains("://")
                    || [
                        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".gz", ".bz2",
                        ".xz",
                    ]
                    .iter()
                    .any(|e| s.ends_with(e))
            });
            if remote_or_archive && from_context {
                self.note(instruction.line, "`ADD` of a URL or an archive (which ADD downloads or unpacks) has no manifest equivalent; left out: use a `run` that fetches or unpacks it, or `copy` it as is");
                return None;
            }
            self.note(instruction.line, "`ADD` of plain files is a `copy`");
        }
        // A context source is relative to the context's root, with or without a `/`.
        let sources: Vec<String> = sources
            .iter()
            .map(|s| if from_context { s.trim_start_matches('/').to_owned() } else { s.clone() })
            .map(|s| if s.is_empty() { ".".to_owned() } else { s })
            .collect();
        Some(format!("copy {} {}{options}", quoted_all(sources.iter().map(String::as_str)), quoted(dest)))
    }

    /// CMD/ENTRYPOINT words: the JSON form as is; the shell form as Docker runs it, under
    /// the stage's shell.
    fn exec_form(&mut self, instruction: &Instruction, shell: &[String]) -> Vec<String> {
        match &instruction.args {
            Args::Json(words) => words.clone(),
            Args::Shell(text) if text.is_empty() => Vec::new(),
            Args::Shell(text) => shell.iter().cloned().chain([text.clone()]).collect(),
        }
    }

    fn healthcheck(&mut self, instruction: &Instruction, shell: &[String]) -> Option<String> {
        let text = instruction.args.text();
        if text.trim().eq_ignore_ascii_case("none") {
            return Some("healthcheck none=#true".to_owned());
        }
        let command =
            text.trim().strip_prefix("CMD").or_else(|| text.trim().strip_prefix("cmd")).map(str::trim);
        let Some(command) = command else {
            self.note(instruction.line, "a HEALTHCHECK without CMD is left out");
            return None;
        };
        let words = match serde_json::from_str::<Vec<String>>(command) {
            Ok(words) if command.starts_with('[') => words,
            _ => {
                self.note(instruction.line, "a shell-form HEALTHCHECK runs as an exec form under the stage's shell (`CMD` rather than `CMD-SHELL`: same check)");
                shell.iter().cloned().chain([command.to_owned()]).collect()
            }
        };
        let mut node = format!("healthcheck {}", quoted_all(words.iter().map(String::as_str)));
        for (flag, value) in &instruction.flags {
            match flag.as_str() {
                "interval" | "timeout" | "start-period" => {
                    let _ = write!(node, " {flag}={}", quoted(value));
                }
                "retries" => match value.parse::<u32>() {
                    Ok(retries) => {
                        let _ = write!(node, " retries={retries}");
                    }
                    Err(_) => {
                        self.note(instruction.line, format!("`--retries={value}` is not a number; left out"));
                    }
                },
                other => self.note(instruction.line, format!("`HEALTHCHECK --{other}` is left out")),
            }
        }
        Some(node)
    }

    fn render(&mut self, stages: &[Stage], platforms: &[(usize, String)]) -> String {
        let source = self.source;
        let mut out = format!("\nimage {} {{\n", name(&source.name));
        let _ = writeln!(out, "    // from {}", source.path);
        if source.context != "." {
            let _ = writeln!(out, "    context {}", quoted(&source.context));
        }
        if let Some(first) = platforms.first() {
            if platforms.iter().any(|(_, p)| *p != first.1) {
                self.note(first.0, "stages for several platforms: the image builds for the first one");
            }
            let _ = writeln!(out, "    platform {}", quoted(&first.1));
        }
        if let Some(ignore) = &source.dockerignore {
            let patterns: Vec<&str> =
                ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
            if !patterns.is_empty() {
                let _ = writeln!(out, "    ignore {}", quoted_all(patterns.into_iter()));
            }
        }
        let indent = |text: &str, by: &str| -> String {
            text.lines().fold(String::new(), |mut out, line| {
                let _ = writeln!(out, "{by}{line}");
                out
            })
        };
        if let [stage] = stages
            && stage.name == "stage-0"
        {
            out.push_str(&indent(&stage.from, "    "));
            for node in &stage.body {
                out.push_str(&indent(node, "    "));
            }
        } else {
            for stage in stages {
                let _ = writeln!(out, "    stage {} {{", name(&stage.name));
                out.push_str(&indent(&stage.from, "        "));
                for node in &stage.body {
                    out.push_str(&indent(node, "        "));
                }
                out.push_str("    }\n");
            }
        }
        out.push_str("}\n");
        out
    }
}

/// An absolute path with `.` and `..` resolved, as Docker cleans a WORKDIR.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether kiln takes `name` as a variable name.
fn is_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `ARG a=1 b`: names with their defaults.
fn arg_pairs(text: &str) -> Vec<(String, Option<String>)> {
    text.split_whitespace()
        .map(|word| match word.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.trim_matches('"').to_owned())),
            None => (word.to_owned(), None),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, text: &str) -> Source {
        Source {
            name: name.into(),
            path: format!("{name}/Dockerfile"),
            text: text.into(),
            context: name.into(),
            dockerignore: None,
        }
    }

    #[test]
    fn args_before_from_become_one_variable_per_name() {
        let imported = import(&[
            source("api", "ARG TAG=1\nFROM busybox:${TAG}\n"),
            source("web", "\nARG TAG=2\nFROM busybox:$TAG\n"),
        ]);
        assert!(imported.manifest.contains("var TAG \"1\""), "{}", imported.manifest);
        assert_eq!(imported.manifest.matches("from \"busybox:{TAG}\"").count(), 2, "{}", imported.manifest);
        assert_eq!(imported.notes.len(), 1);
        assert_eq!((imported.notes[0].file.as_str(), imported.notes[0].line), ("web/Dockerfile", 2));
    }
}
