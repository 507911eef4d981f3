//! `kiln import`: existing Dockerfiles (with their contexts and `.dockerignore`) become a
//! `kiln.kdl`, so that a team adopts kiln in one step.
//!
//! The Dockerfile is read as BuildKit reads it (`dockerfile.rs`, `lexer.rs`), then each
//! instruction becomes the node that makes kiln write an instruction with the same
//! meaning. Import never lies: where the manifest cannot say the same thing, it says so
//! with the Dockerfile's `file:line:col`, as a *difference* (what the image or its build
//! arguments do changes) or an *info* (the same meaning, said another way).

pub mod dockerfile;
mod kdl;
pub mod lexer;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use dockerfile::{Args, Instruction, Position};
use kdl::{name, quoted, quoted_all};
use lexer::{Scope, Value, Word};

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
    /// The ignore file BuildKit would use (`<Dockerfile>.dockerignore`, else the
    /// context's `.dockerignore`), if there is one.
    pub dockerignore: Option<String>,
}

/// Whether a note changes what the build does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The manifest cannot say what the Dockerfile says: the image, or what a build
    /// argument changes, differs.
    Difference,
    /// Said another way, with the same meaning.
    Info,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Difference => "difference",
            Self::Info => "info",
        }
    }
}

/// Something about the translation, where the Dockerfile says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub file: String,
    pub at: Position,
    pub kind: Kind,
    pub message: String,
}

/// Where a line of the manifest came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// 1-based line of the generated manifest.
    pub manifest_line: usize,
    pub file: String,
    pub at: Position,
}

/// A Dockerfile that Docker itself would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub file: String,
    pub at: Position,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Imported {
    pub manifest: String,
    pub notes: Vec<Note>,
    pub origins: Vec<Origin>,
}

impl Imported {
    /// The Dockerfile position of a line of the manifest (the nearest node at or above).
    pub fn origin_of(&self, manifest_line: usize) -> Option<&Origin> {
        self.origins.iter().filter(|o| o.manifest_line <= manifest_line).max_by_key(|o| o.manifest_line)
    }

    pub fn differences(&self) -> usize {
        self.notes.iter().filter(|n| n.kind == Kind::Difference).count()
    }
}

/// Which Dockerfile features the manifest needs (`dockerfile-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
enum Level {
    #[default]
    Classic,
    V1_2,
    V1_4,
}

pub fn import(sources: &[Source]) -> Result<Imported, Refused> {
    let mut project = Project::default();
    let mut images = Vec::new();
    for source in sources {
        let file = dockerfile::parse(&source.text).map_err(|e| Refused {
            file: source.path.clone(),
            at: e.at,
            message: e.message,
        })?;
        let mut writer = ImageWriter::new(source, &file, &mut project);
        let image = writer.write()?;
        images.push(image);
    }
    let mut out = Output::default();
    out.line("// Imported by `kiln import`: review it, then `kiln emit` writes the Dockerfiles.", None);
    match project.level {
        Level::Classic => {}
        Level::V1_2 => out.line("dockerfile-level \"1.2\"", None),
        Level::V1_4 => out.line("dockerfile-level \"1.4\"", None),
    }
    if let Some((syntax, _)) = &project.syntax {
        out.line(&format!("syntax-directive {}", quoted(syntax)), None);
    }
    for (var_name, variable) in &project.variables {
        out.line(
            &format!("var {var_name} {}", kdl::string_of_kiln_text(&variable.kiln_value)),
            Some(variable.origin.clone()),
        );
    }
    for image in images {
        image.render(&mut out);
    }
    Ok(Imported { manifest: out.text, notes: project.notes, origins: out.origins })
}

/// What the images of one import share.
#[derive(Default)]
struct Project {
    notes: Vec<Note>,
    /// ARGs before a FROM, as manifest variables, by name.
    variables: BTreeMap<String, Variable>,
    level: Level,
    syntax: Option<(String, String)>,
}

struct Variable {
    /// The value in kiln's syntax (`{OTHER}` for a reference to another variable).
    kiln_value: String,
    origin: (String, Position),
}

/// The generated manifest, with where each line came from.
#[derive(Default)]
struct Output {
    text: String,
    lines: usize,
    origins: Vec<Origin>,
}

impl Output {
    fn line(&mut self, text: &str, origin: Option<(String, Position)>) {
        if let Some((file, at)) = origin {
            self.origins.push(Origin { manifest_line: self.lines + 1, file, at });
        }
        for line in text.split('\n') {
            self.text.push_str(line);
            self.text.push('\n');
            self.lines += 1;
        }
    }
}

/// A node of the manifest and the instruction it came from.
struct Node {
    text: String,
    at: Position,
}

/// A stage being written.
struct Stage {
    name: String,
    from: Node,
    body: Vec<Node>,
    /// The working directory, when import knows it (`None`: the base image's).
    workdir: Option<String>,
    /// `SHELL`, for shell-form `CMD`, `ENTRYPOINT` and `HEALTHCHECK`.
    shell: Vec<String>,
    /// ENV values and ARGs, as they stand here.
    env: Scope,
    args: Scope,
    /// Whether names that the Dockerfile does not set may come from the base image's
    /// environment (an outside base).
    outside_base: bool,
}

impl Stage {
    /// What `$NAME` reads here: ENV beats ARG; names nobody set read as empty, unless
    /// the base image may set them.
    fn scope(&self, referenced: &[&lexer::Var]) -> Scope {
        let mut scope = self.args.clone();
        scope.extend(self.env.clone());
        if self.outside_base {
            for var in referenced {
                scope.entry(var.name.clone()).or_insert(Value::Unknown);
            }
        }
        scope
    }
}

struct ImageWriter<'a> {
    source: &'a Source,
    file: &'a dockerfile::Dockerfile,
    project: &'a mut Project,
    stages: Vec<Stage>,
    /// ARGs before the first FROM: their values, for FROM lines.
    meta: Scope,
    /// The Dockerfile's escape character (`# escape=`).
    escape: char,
}

impl<'a> ImageWriter<'a> {
    fn new(source: &'a Source, file: &'a dockerfile::Dockerfile, project: &'a mut Project) -> Self {
        Self { source, file, project, stages: Vec::new(), meta: Scope::new(), escape: file.escape }
    }

    fn note(&mut self, at: Position, kind: Kind, message: impl Into<String>) {
        self.project.notes.push(Note { file: self.source.path.clone(), at, kind, message: message.into() });
    }

    fn refuse(&self, at: Position, message: impl Into<String>) -> Refused {
        Refused { file: self.source.path.clone(), at, message: message.into() }
    }

    fn needs(&mut self, level: Level) {
        self.project.level = self.project.level.max(level);
    }

    fn write(&mut self) -> Result<ImageOut, Refused> {
        if let Some(syntax) = &self.file.syntax {
            match &self.project.syntax {
                None => self.project.syntax = Some((syntax.clone(), self.source.path.clone())),
                Some((first, from)) if first != syntax => {
                    let message = format!(
                        "`# syntax={syntax}`: the project has one frontend, `{first}` from {from}, which this image gets too"
                    );
                    self.note(Position { line: 1, column: 1 }, Kind::Difference, message);
                }
                Some(_) => {}
            }
        }
        for line in self.file.empty_continuation_lines.clone() {
            self.note(
                Position { line, column: 1 },
                Kind::Info,
                "a blank line inside a continued instruction is skipped, as BuildKit skips it",
            );
        }
        for instruction in &self.file.instructions {
            if instruction.keyword == "FROM" {
                let stage = self.from(instruction)?;
                self.stages.push(stage);
                continue;
            }
            if self.stages.is_empty() {
                if instruction.keyword == "ARG" {
                    self.meta_arg(instruction)?;
                } else {
                    return Err(self.refuse(
                        instruction.at,
                        format!(
                            "`{}` before the first FROM: Docker accepts only ARG there",
                            instruction.keyword
                        ),
                    ));
                }
                continue;
            }
            let nodes = self.translate(instruction)?;
            let stage = self.stages.last_mut().expect("a stage");
            for text in nodes {
                stage.body.push(Node { text, at: instruction.at });
            }
        }
        if self.stages.is_empty() {
            return Err(self.refuse(Position { line: 1, column: 1 }, "the Dockerfile has no FROM"));
        }
        Ok(ImageOut {
            name: self.source.name.clone(),
            path: self.source.path.clone(),
            context: self.source.context.clone(),
            dockerignore: self.source.dockerignore.clone(),
            stages: std::mem::take(&mut self.stages),
        })
    }

    fn lex(&self, text: &str, at: Position) -> Result<Word, Refused> {
        lexer::word(text, self.escape).map_err(|e| self.refuse(at, e.0))
    }

    /// `ARG NAME[=default]` before the first FROM: a manifest variable, and a value for
    /// the FROM lines.
    fn meta_arg(&mut self, instruction: &Instruction) -> Result<(), Refused> {
        for (arg_name, default) in self.arg_words(instruction)? {
            let at = instruction.position_of(&arg_name);
            if !is_variable_name(&arg_name) {
                self.note(at, Kind::Difference, format!("`ARG {arg_name}` cannot be a manifest variable (letters, digits and `_` only): FROM lines read it as empty"));
                continue;
            }
            let (value, kiln_value) = if let Some(word) = &default {
                let value = word.evaluate(&self.meta).unwrap_or_default();
                (
                    Value::Known { value: value.clone(), from_arg: true },
                    self.meta_text(word, at, "an ARG default"),
                )
            } else {
                self.note(at, Kind::Info, format!("`ARG {arg_name}` has no default: the variable `{arg_name}` is empty unless `--set {arg_name}=...` gives it"));
                (Value::Known { value: String::new(), from_arg: true }, String::new())
            };
            self.meta.insert(arg_name.clone(), value);
            // Variables are the project's: a second Dockerfile with another default for
            // the same ARG gets the first one's, and is told.
            let origin = (self.source.path.clone(), at);
            match self.project.variables.get(&arg_name) {
                Some(first) if first.kiln_value != kiln_value => {
                    let message = format!(
                        "`ARG {arg_name}`: the variable `{arg_name}` already has the default `{}` from {}; this image gets it too (`--set {arg_name}=...` changes both)",
                        first.kiln_value, first.origin.0
                    );
                    self.note(at, Kind::Difference, message);
                }
                Some(_) => {}
                None => {
                    self.project.variables.insert(arg_name, Variable { kiln_value, origin });
                }
            }
        }
        Ok(())
    }

    /// A word of the ARGs before FROM (a variable's default, a FROM reference) as
    /// manifest text: references to those ARGs as `{NAME}`, as kiln's variables.
    fn meta_text(&mut self, word: &Word, at: Position, what: &str) -> String {
        let mut out = String::new();
        for piece in &word.pieces {
            match piece {
                lexer::Piece::Text(text) => out.push_str(&kdl::escape_braces(text)),
                lexer::Piece::Var(var) if var.modifier.is_none() && self.meta.contains_key(&var.name) => {
                    let _ = write!(out, "{{{}}}", var.name);
                }
                lexer::Piece::Var(var) => {
                    let value = Word { pieces: vec![piece.clone()] }.evaluate(&self.meta).unwrap_or_default();
                    if self.meta.contains_key(&var.name) {
                        self.note(at, Kind::Difference, format!("`{}` in {what} is written as its value with the defaults, `{value}`: manifest variables hold no `${{...}}` expressions", var.raw));
                    } else {
                        self.note(
                            at,
                            Kind::Info,
                            format!(
                                "`{}` in {what} is no ARG before FROM: Docker reads it as empty",
                                var.raw
                            ),
                        );
                    }
                    out.push_str(&kdl::escape_braces(&value));
                }
            }
        }
        out
    }

    /// `ARG a=1 b`: names with their defaults (BuildKit's quote-aware words).
    fn arg_words(&self, instruction: &Instruction) -> Result<Vec<(String, Option<Word>)>, Refused> {
        let mut out = Vec::new();
        for word in dockerfile::words(&instruction.args.text(), self.escape) {
            let (key, value) = match word.split_once('=') {
                Some((key, value)) => (key.to_owned(), Some(value.to_owned())),
                None => (word.clone(), None),
            };
            if key.is_empty() {
                return Err(self.refuse(instruction.at, "ARG names can not be blank"));
            }
            let key = self.lex(&key, instruction.at)?.literal().unwrap_or(key);
            let value = value.map(|v| self.lex(&v, instruction.at)).transpose()?;
            out.push((key, value));
        }
        if out.is_empty() {
            return Err(self.refuse(instruction.at, "ARG requires at least one argument"));
        }
        Ok(out)
    }

    fn from(&mut self, instruction: &Instruction) -> Result<Stage, Refused> {
        let at = instruction.at;
        let text = instruction.args.text();
        let words: Vec<&str> = text.split_whitespace().collect();
        let (base, stage_name) = match words.as_slice() {
            [base] => (*base, None),
            [base, r#as, stage_name] if r#as.eq_ignore_ascii_case("as") => {
                (*base, Some(stage_name.to_ascii_lowercase()))
            }
            _ => return Err(self.refuse(at, "FROM requires either one or three arguments")),
        };
        if let Some(stage_name) = &stage_name {
            let valid = stage_name.starts_with(|c: char| c.is_ascii_lowercase())
                && stage_name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
            if !valid {
                return Err(self.refuse(at, format!("invalid name for build stage: `{stage_name}`")));
            }
        }
        let name = stage_name.unwrap_or_else(|| format!("stage-{}", self.stages.len()));
        let mut from = String::from("from ");
        let word = self.lex(base, at)?;
        let lowered = word.literal().map(|l| l.to_ascii_lowercase());
        let parent = lowered.as_ref().and_then(|l| self.stages.iter().position(|s| s.name == *l));
        let (outside_base, env, workdir, shell) = if let Some(index) = parent {
            let parent = &self.stages[index];
            let _ = write!(from, "stage={}", name_for(&parent.name));
            (parent.outside_base, parent.env.clone(), parent.workdir.clone(), parent.shell.clone())
        } else {
            let reference =
                kdl::string_of_kiln_text(&self.meta_text(&word, instruction.position_of(base), "FROM"));
            let scratch = reference == "\"scratch\"";
            from.push_str(&reference);
            (!scratch, Scope::new(), scratch.then(|| "/".to_owned()), vec!["/bin/sh".into(), "-c".into()])
        };
        for flag in &instruction.flags {
            match (flag.name.as_str(), &flag.value) {
                ("platform", Some(value)) => {
                    let platform = self.platform(value, instruction.position_of("--platform"))?;
                    let _ = write!(from, " platform={}", quoted(&platform));
                }
                (other, _) => {
                    self.note(at, Kind::Difference, format!("`FROM --{other}` is left out"));
                }
            }
        }
        // Only ENV crosses from a stage to the one built on it; ARGs stay in their stage.
        Ok(Stage {
            name,
            from: Node { text: from, at },
            body: Vec::new(),
            workdir,
            shell,
            env,
            args: Scope::new(),
            outside_base,
        })
    }

    /// `FROM --platform=...`: BuildKit's variables kept, ARGs before FROM as `{NAME}`.
    fn platform(&mut self, value: &str, at: Position) -> Result<String, Refused> {
        let word = self.lex(value, at)?;
        let mut out = String::new();
        for piece in &word.pieces {
            match piece {
                lexer::Piece::Text(text) => out.push_str(&kdl::escape_braces(text)),
                lexer::Piece::Var(var)
                    if var.modifier.is_none()
                        && kiln_manifest::BUILD_PLATFORM_VARIABLES.contains(&var.name.as_str()) =>
                {
                    let _ = write!(out, "${}", var.name);
                    self.needs(Level::V1_2);
                }
                lexer::Piece::Var(var) if var.modifier.is_none() && self.meta.contains_key(&var.name) => {
                    let _ = write!(out, "{{{}}}", var.name);
                }
                lexer::Piece::Var(var) => {
                    let value = Word { pieces: vec![piece.clone()] }.evaluate(&self.meta).unwrap_or_default();
                    self.note(
                        at,
                        Kind::Difference,
                        format!("`{}` in `--platform` is written as `{value}`", var.raw),
                    );
                    out.push_str(&kdl::escape_braces(&value));
                }
            }
        }
        Ok(out)
    }

    fn stage(&mut self) -> &mut Stage {
        self.stages.last_mut().expect("a stage")
    }

    /// One instruction of a stage as manifest nodes (none, with a note, when the
    /// manifest cannot say it).
    fn translate(&mut self, instruction: &Instruction) -> Result<Vec<String>, Refused> {
        let at = instruction.at;
        let text = instruction.args.text();
        Ok(match instruction.keyword.as_str() {
            "RUN" => self.run(instruction).into_iter().collect(),
            "COPY" | "ADD" => self.copy(instruction)?.into_iter().collect(),
            "ENV" => vec![self.env(instruction)?],
            "LABEL" => vec![self.label(instruction)?],
            "ARG" => self.stage_arg(instruction)?,
            "WORKDIR" => vec![self.workdir(instruction)?],
            "USER" => {
                let word = self.lex(text.trim(), at)?;
                vec![format!("user {}", self.expanding(&word, instruction, "USER"))]
            }
            "EXPOSE" => vec![self.expose(instruction)?],
            "VOLUME" => self.volume(instruction)?.into_iter().collect(),
            "CMD" | "ENTRYPOINT" => {
                let shell = self.stage().shell.clone();
                let words = exec_form(instruction, &shell);
                let node = instruction.keyword.to_ascii_lowercase();
                if words.is_empty() {
                    self.note(
                        at,
                        Kind::Difference,
                        format!(
                            "an empty `{}` (which clears the base image's) is left out",
                            instruction.keyword
                        ),
                    );
                    return Ok(Vec::new());
                }
                if matches!(instruction.args, Args::Shell(_)) {
                    self.note(
                        at,
                        Kind::Info,
                        format!(
                            "a shell-form `{}` is written as the exec form Docker stores for it (`{}`)",
                            instruction.keyword,
                            shell.join(" ")
                        ),
                    );
                }
                vec![format!("{node} {}", quoted_all(words.iter().map(String::as_str)))]
            }
            "SHELL" => match &instruction.args {
                Args::Json(words) if !words.is_empty() => {
                    self.stage().shell.clone_from(words);
                    vec![format!("shell {}", quoted_all(words.iter().map(String::as_str)))]
                }
                _ => return Err(self.refuse(at, "SHELL requires the arguments to be in JSON form")),
            },
            "STOPSIGNAL" => {
                let word = self.lex(text.trim(), at)?;
                let signal = self.literal(&word, instruction, "STOPSIGNAL");
                vec![format!("stopsignal {}", quoted(&signal))]
            }
            "HEALTHCHECK" => self.healthcheck(instruction)?.into_iter().collect(),
            "MAINTAINER" => {
                self.note(at, Kind::Difference, "`MAINTAINER` (deprecated) becomes the label `maintainer`; the image's Author field stays empty");
                vec![format!("label maintainer={}", quoted(text.trim()))]
            }
            "ONBUILD" => {
                self.note(at, Kind::Difference, format!("`ONBUILD {text}` cannot be said in a manifest (kiln builds each image from its own manifest); left out"));
                Vec::new()
            }
            other => return Err(self.refuse(at, format!("unknown instruction: {other}"))),
        })
    }

    /// A word for a field where kiln expands `$VAR` as Docker does.
    fn expanding(&mut self, word: &Word, instruction: &Instruction, what: &str) -> String {
        match word.for_kiln() {
            Ok(text) => quoted(&text),
            Err(why) => {
                let scope = self.stage().scope(&word.vars());
                let value = word.evaluate(&scope).unwrap_or_default();
                self.note(
                    instruction.at,
                    Kind::Difference,
                    format!("{what}: {why} cannot be written for kiln; written as its value here, `{value}`"),
                );
                quoted(&value.replace('$', "\\$"))
            }
        }
    }

    /// A word for a field kiln writes literally (`copy` paths, `label` values): its value
    /// here, told when it reads a variable.
    fn literal(&mut self, word: &Word, instruction: &Instruction, what: &str) -> String {
        if let Some(text) = word.literal() {
            return text;
        }
        let vars = word.vars();
        let scope = self.stage().scope(&vars);
        let names: Vec<String> = vars.iter().map(|v| format!("`{}`", v.raw)).collect();
        let names = names.join(", ");
        match word.evaluate(&scope) {
            Ok(value) if word.depends_on_args(&scope) => {
                self.note(instruction.at, Kind::Difference, format!("{what}: {names} is written as its default, `{value}`: kiln writes this field as it is, so a build argument no longer changes it"));
                value
            }
            Ok(value) => {
                self.note(
                    instruction.at,
                    Kind::Info,
                    format!("{what}: {names} is written as its value here, `{value}`"),
                );
                value
            }
            Err(unknown) => {
                let value = word.evaluate(&Scope::new()).unwrap_or_default();
                self.note(instruction.at, Kind::Difference, format!("{what}: `${unknown}` has a value import cannot know (an ARG without a default, or the base image's environment); written as `{value}`"));
                value
            }
        }
    }

    fn run(&mut self, instruction: &Instruction) -> Option<String> {
        let at = instruction.at;
        let mut children = Vec::new();
        for flag in &instruction.flags {
            let value = flag.value.clone().unwrap_or_default();
            if flag.name != "mount" {
                self.note(
                    at,
                    Kind::Difference,
                    format!(
                        "`RUN --{}{}` is left out: kiln sets the network and security of a build itself",
                        flag.name,
                        flag.value.as_ref().map(|v| format!("={v}")).unwrap_or_default()
                    ),
                );
                continue;
            }
            let options: Vec<(String, String)> = value
                .split(',')
                .map(|o| match o.split_once('=') {
                    Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_owned()),
                    None => (o.trim().to_ascii_lowercase(), String::new()),
                })
                .collect();
            let get = |keys: &[&str]| {
                options.iter().find(|(k, _)| keys.contains(&k.as_str())).map(|(_, v)| v.clone())
            };
            let kind = get(&["type"]).unwrap_or_else(|| "bind".to_owned());
            let target = get(&["target", "dst", "destination"]);
            let extra: Vec<&str> = options
                .iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| !matches!(*k, "type" | "target" | "dst" | "destination" | "id"))
                .collect();
            match kind.as_str() {
                "cache" => {
                    self.needs(Level::V1_2);
                    if let Some(target) = target {
                        children.push(format!("cache {}", quoted(&target)));
                    }
                    if !extra.is_empty() || get(&["id"]).is_some() {
                        self.note(at, Kind::Difference, format!("cache mount options other than the target are left out (`{value}`): the cache is shared by target"));
                    }
                }
                "secret" => {
                    self.needs(Level::V1_2);
                    let id = get(&["id"]).or_else(|| target.as_ref().and_then(|t| t.rsplit('/').next().map(str::to_owned)));
                    let Some(id) = id else {
                        self.note(at, Kind::Difference, format!("a secret mount without an id is left out (`{value}`)"));
                        continue;
                    };
                    let mut node = format!("secret {}", name(&id));
                    if let Some(target) = target {
                        let _ = write!(node, " target={}", quoted(&target));
                    }
                    children.push(node);
                    if !extra.is_empty() {
                        self.note(at, Kind::Difference, format!("secret mount options other than the id and target are left out (`{value}`)"));
                    }
                }
                "ssh" => {
                    self.needs(Level::V1_2);
                    children.push(match get(&["id"]) {
                        Some(id) if id != "default" => format!("ssh {}", name(&id)),
                        _ => "ssh".to_owned(),
                    });
                    if !extra.is_empty() || target.is_some() {
                        self.note(at, Kind::Difference, format!("ssh mount options other than the id are left out (`{value}`)"));
                    }
                }
                other => self.note(at, Kind::Difference, format!("a `{other}` mount is left out (`--mount={value}`): write `copy` or a `cache` in the manifest")),
            }
        }
        let mut node = match &instruction.args {
            Args::Shell(text) if !instruction.heredocs.is_empty() => {
                let script = run_script(text, &instruction.heredocs);
                if script.starts_with("#!") {
                    self.needs(Level::V1_4);
                }
                format!("run script=#true {}", quoted(&script))
            }
            // Each `run` node is a RUN of its own (T06): the command is kept as it is.
            Args::Shell(text) => format!("run {}", quoted(text)),
            Args::Json(words) if words.is_empty() => {
                self.note(
                    at,
                    Kind::Difference,
                    "an empty exec-form RUN (which Docker refuses to run) is left out",
                );
                return None;
            }
            Args::Json(words) => format!("run exec=#true {}", quoted_all(words.iter().map(String::as_str))),
        };
        if !children.is_empty() {
            node.push_str(" {\n");
            for child in children {
                let _ = writeln!(node, "    {child}");
            }
            node.push('}');
        }
        Some(node)
    }

    fn copy(&mut self, instruction: &Instruction) -> Result<Option<String>, Refused> {
        let at = instruction.at;
        let keyword = instruction.keyword.clone();
        let raw: Vec<String> = match &instruction.args {
            Args::Json(words) => words.clone(),
            Args::Shell(text) => text.split_whitespace().map(str::to_owned).collect(),
        };
        if raw.len() < 2 {
            return Err(self.refuse(at, format!("{keyword} requires at least two arguments, but only one was provided. Destination could not be determined")));
        }
        if raw.iter().any(|w| dockerfile::heredoc_word(w).is_some()) && !instruction.heredocs.is_empty() {
            self.note(at, Kind::Difference, format!("`{keyword} <<...` (a file written from a heredoc) has no manifest equivalent; left out: put the text in a file of the context and `copy` it"));
            return Ok(None);
        }
        let mut options = String::new();
        let mut from_context = true;
        for flag in &instruction.flags {
            let value = flag.value.clone().unwrap_or_default();
            match flag.name.as_str() {
                "from" => {
                    from_context = false;
                    let lowered = value.to_ascii_lowercase();
                    let stage = match lowered.parse::<usize>() {
                        Ok(index) => self.stages.get(index).map(|s| s.name.clone()),
                        Err(_) => self.stages.iter().find(|s| s.name == lowered).map(|s| s.name.clone()),
                    };
                    if let Some(stage) = stage {
                        let _ = write!(options, " from={}", name_for(&stage));
                    } else {
                        if value.contains('$') {
                            self.note(
                                at,
                                Kind::Difference,
                                format!("`--from={value}` is written as it is: kiln does not expand a `ref`"),
                            );
                        }
                        let _ = write!(options, " ref={}", quoted(&value));
                    }
                }
                "chown" => {
                    let word = self.lex(&value, at)?;
                    let text = self.expanding(&word, instruction, "--chown");
                    let _ = write!(options, " chown={text}");
                }
                "chmod" => {
                    self.needs(Level::V1_2);
                    let _ = write!(options, " chmod={}", quoted(&value));
                }
                "link" if flag.value.as_deref().is_none_or(|v| v == "true") => {
                    self.needs(Level::V1_4);
                    options.push_str(" link=#true");
                }
                "link" => {}
                other => self.note(at, Kind::Difference, format!("`{keyword} --{other}` is left out")),
            }
        }
        let mut words = Vec::new();
        for raw_word in &raw {
            let word = self.lex(raw_word, at)?;
            words.push(self.literal(&word, instruction, &keyword));
        }
        let (dest, sources) = words.split_last().expect("two or more");
        if keyword == "ADD" && from_context {
            let remote_or_archive = sources.iter().any(|s| {
                s.contains("://")
                    || [
                        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".gz", ".bz2",
                        ".xz",
                    ]
                    .iter()
                    .any(|e| s.ends_with(e))
            });
            if remote_or_archive {
                self.note(at, Kind::Difference, "`ADD` of a URL or an archive (which ADD downloads or unpacks) has no manifest equivalent; left out: use a `run` that fetches or unpacks it, or `copy` it as is");
                return Ok(None);
            }
            self.note(at, Kind::Info, "`ADD` of plain files is a `copy`");
        }
        // A context source is relative to the context's root, with or without a `/`.
        let sources: Vec<String> = sources
            .iter()
            .map(|s| if from_context { s.trim_start_matches('/').to_owned() } else { s.clone() })
            .map(|s| if s.is_empty() { ".".to_owned() } else { s })
            .collect();
        Ok(Some(format!("copy {} {}{options}", quoted_all(sources.iter().map(String::as_str)), quoted(dest))))
    }

    /// `ENV a=b c="d e"`, or the legacy `ENV a b c` (one pair, the rest of the line).
    fn env(&mut self, instruction: &Instruction) -> Result<String, Refused> {
        let pairs = self.name_values(instruction, "ENV")?;
        let mut written = Vec::new();
        let mut updates = Vec::new();
        for (key, value) in &pairs {
            let vars = value.vars();
            let scope = self.stage().scope(&vars);
            let new = match value.evaluate(&scope) {
                Ok(v) => Value::Known { value: v, from_arg: value.depends_on_args(&scope) },
                Err(_) => Value::Unknown,
            };
            updates.push((key.clone(), new));
            written.push(format!("{}={}", name(key), self.expanding(value, instruction, "ENV")));
        }
        // Values in one ENV see the values from before it, as in Docker.
        let stage = self.stage();
        for (key, value) in updates {
            stage.env.insert(key, value);
        }
        Ok(format!("env {}", written.join(" ")))
    }

    fn label(&mut self, instruction: &Instruction) -> Result<String, Refused> {
        let pairs = self.name_values(instruction, "LABEL")?;
        let mut written = Vec::new();
        for (key, value) in &pairs {
            let value = self.literal(value, instruction, "LABEL");
            written.push(format!("{}={}", name(key), quoted(&value)));
        }
        Ok(format!("label {}", written.join(" ")))
    }

    /// BuildKit's `parseNameVal`, then each key and value through the lexer.
    fn name_values(&mut self, instruction: &Instruction, what: &str) -> Result<Vec<(String, Word)>, Refused> {
        let at = instruction.at;
        let rest = instruction.args.text();
        let words = dockerfile::words(&rest, self.escape);
        if words.is_empty() {
            return Err(self.refuse(at, format!("{what} requires at least one argument")));
        }
        let mut raw_pairs = Vec::new();
        if words[0].contains('=') {
            for word in &words {
                let Some((key, value)) = word.split_once('=') else {
                    return Err(self.refuse(
                        at,
                        format!("Syntax error - can't find = in `{word}`. Must be of the form: name=value"),
                    ));
                };
                raw_pairs.push((key.to_owned(), value.to_owned()));
            }
        } else {
            let Some((key, value)) = dockerfile::legacy_pair(rest.trim()) else {
                return Err(self.refuse(at, format!("{what} must have two arguments")));
            };
            raw_pairs.push((key.to_owned(), value.to_owned()));
            self.note(
                at,
                Kind::Info,
                format!("the legacy `{what} key value` form is written as `key=\"value\"`"),
            );
        }
        let mut pairs = Vec::new();
        for (key, value) in raw_pairs {
            if key.is_empty() {
                return Err(self.refuse(at, format!("{what} names can not be blank")));
            }
            let key_word = self.lex(&key, at)?;
            let key = self.literal(&key_word, instruction, what);
            pairs.push((key, self.lex(&value, at)?));
        }
        Ok(pairs)
    }

    fn stage_arg(&mut self, instruction: &Instruction) -> Result<Vec<String>, Refused> {
        let mut nodes = Vec::new();
        for (arg_name, default) in self.arg_words(instruction)? {
            let at = instruction.position_of(&arg_name);
            if !is_variable_name(&arg_name) {
                self.note(
                    at,
                    Kind::Difference,
                    format!("`ARG {arg_name}` is not a name kiln writes (letters, digits and `_`); left out"),
                );
                continue;
            }
            let (node, value) = match &default {
                Some(word) => {
                    let scope = self.stage().scope(&word.vars());
                    let value = match word.evaluate(&scope) {
                        Ok(v) => Value::Known { value: v, from_arg: true },
                        Err(_) => Value::Unknown,
                    };
                    (format!("arg {} {}", name(&arg_name), self.expanding(word, instruction, "ARG")), value)
                }
                // A stage's `ARG NAME` takes the default of the ARG of that name before FROM.
                None => match self.meta.get(&arg_name) {
                    Some(Value::Known { value, .. })
                        if self.project.variables.contains_key(&arg_name) && !value.is_empty() =>
                    {
                        (
                            format!("arg {} \"{{{arg_name}}}\"", name(&arg_name)),
                            Value::Known { value: value.clone(), from_arg: true },
                        )
                    }
                    _ if kiln_manifest::BUILD_PLATFORM_VARIABLES.contains(&arg_name.as_str()) => {
                        (format!("arg {}", name(&arg_name)), Value::Unknown)
                    }
                    _ => (
                        format!("arg {}", name(&arg_name)),
                        Value::Known { value: String::new(), from_arg: true },
                    ),
                },
            };
            self.stage().args.insert(arg_name, value);
            nodes.push(node);
        }
        Ok(nodes)
    }

    fn workdir(&mut self, instruction: &Instruction) -> Result<String, Refused> {
        let at = instruction.at;
        let text = instruction.args.text();
        let word = self.lex(text.trim(), at)?;
        let Some(path) = word.literal() else {
            // Expanded by Docker, as kiln writes it: where it leads is the build's.
            let written = self.expanding(&word, instruction, "WORKDIR");
            let first = word.pieces.first();
            let absolute = matches!(first, Some(lexer::Piece::Var(_)))
                || matches!(first, Some(lexer::Piece::Text(t)) if t.starts_with('/'));
            if !absolute {
                self.note(
                    at,
                    Kind::Difference,
                    format!("`WORKDIR {text}` is relative; kiln needs an absolute one"),
                );
            }
            self.stage().workdir = None;
            return Ok(format!("workdir {written}"));
        };
        let resolved = if path.starts_with('/') {
            Some(clean(&path))
        } else {
            self.stage().workdir.clone().map(|base| clean(&format!("{base}/{path}")))
        };
        let absolute = if let Some(absolute) = resolved {
            if !path.starts_with('/') {
                self.note(
                    at,
                    Kind::Info,
                    format!("`WORKDIR {path}` is written as the folder it leads to, `{absolute}`"),
                );
            }
            absolute
        } else {
            let guess = clean(&format!("/{path}"));
            self.note(at, Kind::Difference, format!("`WORKDIR {path}` is relative to the base image's working directory, which import cannot know; written as `{guess}`"));
            guess
        };
        self.stage().workdir = Some(absolute.clone());
        Ok(format!("workdir {}", quoted(&absolute.replace('$', "\\$"))))
    }

    fn expose(&mut self, instruction: &Instruction) -> Result<String, Refused> {
        let at = instruction.at;
        let mut ports = Vec::new();
        for raw in instruction.args.text().split_whitespace() {
            let words = lexer::words(raw, self.escape).map_err(|e| self.refuse(at, e.0))?;
            for word in words {
                let mut text = match word.for_kiln() {
                    Ok(text) => text,
                    Err(_) => self.literal(&word, instruction, "EXPOSE"),
                };
                // Docker reads the protocol in any case (`80/TCP` is `80/tcp`).
                if let Some((port, protocol)) = text.split_once('/')
                    && protocol.chars().any(|c| c.is_ascii_uppercase())
                {
                    text = format!("{port}/{}", protocol.to_ascii_lowercase());
                }
                ports.push(text);
            }
        }
        if ports.is_empty() {
            return Err(self.refuse(at, "EXPOSE requires at least one argument"));
        }
        Ok(format!("expose {}", quoted_all(ports.iter().map(String::as_str))))
    }

    fn volume(&mut self, instruction: &Instruction) -> Result<Option<String>, Refused> {
        let at = instruction.at;
        let raw: Vec<String> = match &instruction.args {
            Args::Json(paths) => paths.iter().map(|p| p.trim().to_owned()).collect(),
            Args::Shell(text) => text.split_whitespace().map(str::to_owned).collect(),
        };
        if raw.is_empty() || raw.iter().any(String::is_empty) {
            return Err(self.refuse(at, "VOLUME specified can not be an empty string"));
        }
        let mut paths = Vec::new();
        for path in raw {
            let word = self.lex(&path, at)?;
            paths.push(self.expanding(&word, instruction, "VOLUME"));
        }
        Ok(Some(format!("volume {}", paths.join(" "))))
    }

    fn healthcheck(&mut self, instruction: &Instruction) -> Result<Option<String>, Refused> {
        let at = instruction.at;
        let text = instruction.args.text();
        let text = text.trim();
        let (kind, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        if kind.is_empty() {
            return Err(self.refuse(at, "HEALTHCHECK requires at least one argument"));
        }
        if kind.eq_ignore_ascii_case("none") {
            if !rest.trim().is_empty() {
                return Err(self.refuse(at, "HEALTHCHECK NONE takes no arguments"));
            }
            return Ok(Some("healthcheck none=#true".to_owned()));
        }
        if !kind.eq_ignore_ascii_case("cmd") {
            return Err(self.refuse(at, format!("Unknown type `{kind}` in HEALTHCHECK (try CMD)")));
        }
        let command = rest.trim();
        let words = match serde_json::Deserializer::from_str(command).into_iter::<Vec<String>>().next() {
            Some(Ok(words)) if command.starts_with('[') => words,
            _ => {
                if command.is_empty() {
                    return Err(self.refuse(at, "Missing command after HEALTHCHECK CMD"));
                }
                self.note(at, Kind::Info, "a shell-form HEALTHCHECK runs as an exec form under the stage's shell (`CMD` rather than `CMD-SHELL`: the same check)");
                let shell = self.stage().shell.clone();
                shell.into_iter().chain([command.to_owned()]).collect()
            }
        };
        if words.is_empty() {
            return Err(self.refuse(at, "Missing command after HEALTHCHECK CMD"));
        }
        let mut node = format!("healthcheck {}", quoted_all(words.iter().map(String::as_str)));
        for flag in &instruction.flags {
            let value = flag.value.clone().unwrap_or_default();
            match flag.name.as_str() {
                "interval" | "timeout" | "start-period" => {
                    let _ = write!(node, " {}={}", flag.name, quoted(&value));
                }
                "retries" => match value.parse::<u32>() {
                    Ok(retries) if retries >= 1 => {
                        let _ = write!(node, " retries={retries}");
                    }
                    _ => {
                        return Err(self.refuse(
                            at,
                            format!("--retries must be a number of at least 1 (not `{value}`)"),
                        ));
                    }
                },
                other => self.note(at, Kind::Difference, format!("`HEALTHCHECK --{other}` is left out")),
            }
        }
        Ok(Some(node))
    }
}

/// A RUN with heredocs as one script (what BuildKit passes to the shell): a lone
/// `<<EOF` is its body; a command with heredocs keeps them, written out after it.
fn run_script(command: &str, heredocs: &[dockerfile::Heredoc]) -> String {
    let only_heredoc = heredocs.len() == 1 && dockerfile::heredoc_word(command.trim()).is_some();
    if only_heredoc {
        let heredoc = &heredocs[0];
        let content = if heredoc.chomp { chomp(&heredoc.content) } else { heredoc.content.clone() };
        return content.strip_suffix('\n').unwrap_or(&content).to_owned();
    }
    let mut full = command.to_owned();
    for heredoc in heredocs {
        full.push('\n');
        full.push_str(&heredoc.content);
        full.push_str(&heredoc.name);
    }
    full
}

/// `<<-`: leading tabs of every line removed.
fn chomp(text: &str) -> String {
    text.split_inclusive('\n').map(|line| line.trim_start_matches('\t')).collect()
}

/// CMD/ENTRYPOINT words: the JSON form as is; the shell form as Docker stores it, under
/// the stage's shell.
fn exec_form(instruction: &Instruction, shell: &[String]) -> Vec<String> {
    match &instruction.args {
        Args::Json(words) => words.clone(),
        Args::Shell(text) if text.is_empty() => Vec::new(),
        Args::Shell(text) => shell.iter().cloned().chain([text.clone()]).collect(),
    }
}

/// A written image.
struct ImageOut {
    name: String,
    path: String,
    context: String,
    dockerignore: Option<String>,
    stages: Vec<Stage>,
}

impl ImageOut {
    fn render(self, out: &mut Output) {
        out.line("", None);
        out.line(&format!("image {} {{", name(&self.name)), None);
        out.line(&format!("    // from {}", self.path), None);
        if self.context != "." {
            out.line(&format!("    context {}", quoted(&self.context)), None);
        }
        if let Some(ignore) = &self.dockerignore {
            let patterns: Vec<&str> =
                ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
            if !patterns.is_empty() {
                out.line(&format!("    ignore {}", quoted_all(patterns.into_iter())), None);
            }
        }
        let origin = |at: Position| Some((self.path.clone(), at));
        let indent = |text: &str, by: &str| -> String {
            text.lines().map(|line| format!("{by}{line}")).collect::<Vec<_>>().join("\n")
        };
        if let [stage] = self.stages.as_slice()
            && stage.name == "stage-0"
        {
            out.line(&indent(&stage.from.text, "    "), origin(stage.from.at));
            for node in &stage.body {
                out.line(&indent(&node.text, "    "), origin(node.at));
            }
        } else {
            for stage in &self.stages {
                out.line(&format!("    stage {} {{", name_for(&stage.name)), origin(stage.from.at));
                out.line(&indent(&stage.from.text, "        "), origin(stage.from.at));
                for node in &stage.body {
                    out.line(&indent(&node.text, "        "), origin(node.at));
                }
                out.line("    }", None);
            }
        }
        out.line("}", None);
    }
}

/// A stage name as a node argument.
fn name_for(stage: &str) -> String {
    name(stage)
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

    fn manifest(text: &str) -> Imported {
        import(&[source("app", text)]).expect("imports")
    }

    #[test]
    fn args_before_from_become_one_variable_per_name() {
        let imported = import(&[
            source("api", "ARG TAG=1\nFROM busybox:${TAG}\n"),
            source("web", "\nARG TAG=2\nFROM busybox:$TAG\n"),
        ])
        .expect("imports");
        assert!(imported.manifest.contains("var TAG \"1\""), "{}", imported.manifest);
        assert_eq!(imported.manifest.matches("from \"busybox:{TAG}\"").count(), 2, "{}", imported.manifest);
        assert_eq!(imported.notes.len(), 1);
        assert_eq!((imported.notes[0].file.as_str(), imported.notes[0].at.line), ("web/Dockerfile", 2));
    }

    #[test]
    fn values_keep_their_meaning() {
        let imported = manifest(
            "ARG VARIANT=slim\nARG BASE=python:3-$VARIANT\nFROM $BASE\nARG X='-i 2' Y=\"a b\"\nENV P='$HOME' Q=\"$HOME\" R=a\\ b\nEXPOSE ${PORT} 80/TCP\nVOLUME $DIR /data\n",
        );
        let text = &imported.manifest;
        assert!(text.contains("var BASE \"python:3-{VARIANT}\""), "{text}");
        assert!(text.contains("from \"{BASE}\""), "{text}");
        assert!(text.contains("arg X \"-i 2\"\n"), "{text}");
        assert!(text.contains("arg Y \"a b\"\n"), "{text}");
        assert!(text.contains(r#"env P="\\$HOME" Q="$HOME" R="a b""#), "{text}");
        assert!(text.contains("expose \"${PORT}\" \"80/tcp\""), "{text}");
        assert!(text.contains("volume \"$DIR\" \"/data\""), "{text}");
    }

    #[test]
    fn a_stage_arg_takes_the_global_default() {
        let imported = manifest("ARG V=1.2\nFROM busybox:$V\nARG V\nRUN echo $V\n");
        assert!(imported.manifest.contains("arg V \"{V}\""), "{}", imported.manifest);
    }

    #[test]
    fn platforms_and_heredocs() {
        let imported = manifest(
            "FROM --platform=$BUILDPLATFORM busybox AS build\nRUN <<EOF\nset -e\necho hi\nEOF\nRUN cat <<'X' > /f\n$notexpanded\nX\n",
        );
        let text = &imported.manifest;
        assert!(text.contains("from \"busybox\" platform=\"$BUILDPLATFORM\""), "{text}");
        assert!(text.contains(r#"run script=#true "set -e\necho hi""#), "{text}");
        assert!(text.contains(r#"run script=#true "cat <<'X' > /f\n$notexpanded\nX""#), "{text}");
        assert!(text.starts_with("// Imported by `kiln import`: review it, then `kiln emit` writes the Dockerfiles.\ndockerfile-level \"1.2\""), "{text}");
    }

    #[test]
    fn refusals_name_the_dockerfile_line() {
        let refused = import(&[source("app", "FROM a\nBOGUS x\n")]).expect_err("refused");
        assert_eq!((refused.at.line, refused.message.as_str()), (2, "unknown instruction: BOGUS"));
        let refused = import(&[source("app", "FROM a\nRUN <<EOF\nx\n")]).expect_err("refused");
        assert_eq!(refused.at.line, 2);
    }

    #[test]
    fn notes_are_located_and_classified() {
        let imported = manifest("FROM busybox\nARG V=1\nCOPY src/$V /app/\nLABEL a=$V\n");
        let differences: Vec<(usize, Kind)> = imported.notes.iter().map(|n| (n.at.line, n.kind)).collect();
        assert_eq!(differences, [(3, Kind::Difference), (4, Kind::Difference)]);
        assert!(imported.manifest.contains("copy \"src/1\" \"/app/\""), "{}", imported.manifest);
        let origin =
            imported.origin_of(imported.manifest.lines().position(|l| l.contains("copy")).unwrap() + 1);
        assert_eq!(origin.map(|o| o.at.line), Some(3));
    }
}
