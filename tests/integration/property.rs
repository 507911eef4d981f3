//! Property: for random values in every field, a Dockerfile reader that follows
//! BuildKit's rules (`reader.rs`) reads back from kiln's output exactly the
//! instructions and values of the manifest, or kiln refused the manifest with a
//! located `unexpressible` error. Fast, so it tries many values; the engine itself
//! checks fewer in `oracle.rs`.

use std::collections::HashMap;

use crate::Case;
use crate::random::{INVISIBLE, Rng, kdl, kdl_list, kdl_pairs, runnable};
use crate::reader::{self, Args, Read};

/// What a generated manifest sets, in the order its Dockerfile must have it.
struct Generated {
    manifest: String,
    env: Vec<(String, String)>,
    arg: (String, String),
    labels: Vec<(String, String)>,
    workdir: String,
    commands: Vec<String>,
    sources: Vec<String>,
    dest: String,
    volumes: Vec<String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    health: Vec<String>,
    shell: Vec<String>,
}

/// Pieces of shell commands: words, operators, quotes, and what kiln must refuse or
/// carry (a `#`, a heredoc, a trailing `\`, a command equal to a heredoc delimiter).
const COMMAND_PIECES: &[&str] = &[
    "echo", "true", " ", "  ", "'a b'", "\"q\"", "$HOME", "${X}", "&&", "||", ";", "|", "\\", "#", "a#b",
    "<<EOF", "<<-X", "2<<E", "EOF", "EOF_1", "-", "--x", "é", "{", "}", "=", "\t",
];

fn generate(rng: &mut Rng) -> Generated {
    let json_args = |rng: &mut Rng| -> Vec<String> {
        (0..=rng.below(3))
            .map(|_| {
                let invisible = if rng.below(3) == 0 { INVISIBLE[rng.below(INVISIBLE.len())] } else { "" };
                format!("{}{invisible}{}", rng.hostile(), if rng.below(2) == 0 { "\n" } else { "" })
            })
            .collect()
    };
    // Level 1.4 reads heredocs: kiln must still write none.
    let level_1_4 = rng.below(2) == 0;
    let env: Vec<(String, String)> =
        (0..=rng.below(3)).map(|i| (format!("E{i}"), rng.hostile_without_dollar())).collect();
    let arg = ("A0".to_owned(), rng.hostile_without_dollar());
    let labels: Vec<(String, String)> =
        (0..=rng.below(3)).map(|i| (format!("l.{i}"), rng.hostile())).collect();
    let workdir = format!("/w/{}", rng.hostile_without_dollar());
    let commands: Vec<String> = (0..=rng.below(4))
        .map(|_| {
            if rng.below(6) == 0 {
                return ["EOF", "EOF_1"][rng.below(2)].to_owned();
            }
            let mut command = String::from("echo ");
            for _ in 0..=rng.below(5) {
                command.push_str(COMMAND_PIECES[rng.below(COMMAND_PIECES.len())]);
            }
            command.trim().to_owned()
        })
        .collect();
    let sources: Vec<String> =
        (0..=rng.below(2)).map(|_| rng.hostile().replace(['*', '?', '['], "_").trim().to_owned()).collect();
    let dest = format!("/d/{}/", rng.hostile());
    // Docker expands `$VAR` in a volume, as kiln writes it.
    let volumes: Vec<String> =
        (0..=rng.below(2)).map(|_| format!("/v/{}", rng.hostile_without_dollar())).collect();
    let (entrypoint, cmd, health, shell) =
        (runnable(json_args(rng)), json_args(rng), runnable(json_args(rng)), json_args(rng));

    let manifest = format!(
        "dockerfile-level {level}\nimage p {{\n    from \"alpine:3.20\"\n    env {env}\n    arg A0 {arg}\n    \
         label {labels}\n    workdir {workdir}\n    run {commands}\n    copy {sources} {dest}\n    \
         volume {volumes}\n    entrypoint {entrypoint}\n    cmd {cmd}\n    healthcheck {health}\n    \
         shell {shell}\n    stopsignal \"SIGTERM\"\n}}\n",
        level = if level_1_4 { "\"1.4\"" } else { "\"classic\"" },
        env = kdl_pairs(&env),
        arg = kdl(&arg.1),
        labels = kdl_pairs(&labels),
        workdir = kdl(&workdir),
        commands = kdl_list(&commands),
        sources = kdl_list(&sources),
        dest = kdl(&dest),
        volumes = kdl_list(&volumes),
        entrypoint = kdl_list(&entrypoint),
        cmd = kdl_list(&cmd),
        health = kdl_list(&health),
        shell = kdl_list(&shell),
    );
    Generated {
        manifest,
        env,
        arg,
        labels,
        workdir,
        commands,
        sources,
        dest,
        volumes,
        entrypoint,
        cmd,
        health,
        shell,
    }
}

/// The paths of a COPY or VOLUME, through the lexer.
fn lexed_paths(args: &Args, env: &HashMap<String, String>) -> Vec<String> {
    match args {
        Args::Json(values) => values.iter().map(|v| reader::process_word(v, env)).collect(),
        Args::Text(text) => text.split_whitespace().map(|w| reader::process_word(w, env)).collect(),
    }
}

fn json(args: &Args) -> Vec<String> {
    match args {
        Args::Json(values) => values.clone(),
        Args::Text(text) => panic!("expected a JSON array, read `{text}`"),
    }
}

fn text(args: &Args) -> &str {
    match args {
        Args::Text(text) => text,
        Args::Json(values) => panic!("expected text, read JSON {values:?}"),
    }
}

/// Whether a RUN's shell text is the commands, in order and each exactly (blanks
/// aside), with nothing between them but kiln's joins (`run.rs` in kiln-emit): ` && `,
/// braces around a command, or the `case` that stops at a failure. What the joins do
/// in real shells is `shells.rs`'s to prove.
fn carries_commands(text: &str, commands: &[String]) -> bool {
    const STOP: &str = "case $? in 0) ;; *) exit ;; esac; ";
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = squeeze(text);
    let mut rest = text.as_str();
    for (index, command) in commands.iter().enumerate() {
        let command = squeeze(command);
        if index > 0 {
            let joined = rest
                .strip_prefix("&& ")
                .or_else(|| rest.strip_prefix("; ").and_then(|r| r.strip_prefix(STOP)))
                .or_else(|| rest.strip_prefix(STOP));
            let Some(after) = joined else { return false };
            rest = after;
        }
        let braced = rest.strip_prefix("{ ");
        let Some(after) = braced.unwrap_or(rest).strip_prefix(command.as_str()) else {
            return false;
        };
        rest = after.trim_start();
        if braced.is_some() {
            let Some(closed) = rest.strip_prefix("; }").or_else(|| rest.strip_prefix('}')) else {
                return false;
            };
            rest = closed.trim_start();
        }
    }
    rest.is_empty()
}

/// Checks what the reader read against what the manifest set.
fn check(case: &Generated, read: &[Read]) {
    let keywords: Vec<&str> = read.iter().map(|r| r.keyword.as_str()).collect();
    // `labels-last`: labels end the stage.
    let expected = [
        "FROM",
        "ENV",
        "ARG",
        "WORKDIR",
        "RUN",
        "COPY",
        "VOLUME",
        "ENTRYPOINT",
        "CMD",
        "HEALTHCHECK",
        "SHELL",
        "STOPSIGNAL",
        "LABEL",
    ];
    assert_eq!(keywords, expected, "instructions");
    let mut env: HashMap<String, String> = HashMap::new();
    for r in read {
        match r.keyword.as_str() {
            "ENV" => {
                let pairs = reader::pairs(text(&r.args), &env);
                assert_eq!(pairs, case.env, "ENV");
                env.extend(pairs);
            }
            "ARG" => {
                let pairs = reader::pairs(text(&r.args), &env);
                assert_eq!(pairs, std::slice::from_ref(&case.arg), "ARG");
                env.extend(pairs);
            }
            "LABEL" => assert_eq!(reader::pairs(text(&r.args), &env), case.labels, "LABEL"),
            "WORKDIR" => assert_eq!(reader::process_word(text(&r.args), &env), case.workdir, "WORKDIR"),
            "RUN" => {
                assert!(r.flags.is_empty(), "RUN flags {:?}", r.flags);
                assert!(r.heredocs.is_empty(), "heredocs {:?}", r.heredocs);
                assert!(carries_commands(text(&r.args), &case.commands), "RUN");
            }
            "COPY" => {
                assert!(r.flags.is_empty(), "COPY flags {:?}", r.flags);
                let mut paths = lexed_paths(&r.args, &env);
                let dest = paths.pop().expect("a destination");
                assert_eq!(paths, case.sources, "COPY sources");
                assert_eq!(dest, case.dest, "COPY destination");
            }
            "VOLUME" => assert_eq!(lexed_paths(&r.args, &env), case.volumes, "VOLUME"),
            "ENTRYPOINT" => assert_eq!(json(&r.args), case.entrypoint, "ENTRYPOINT"),
            "CMD" => assert_eq!(json(&r.args), case.cmd, "CMD"),
            "SHELL" => assert_eq!(json(&r.args), case.shell, "SHELL"),
            "HEALTHCHECK" => {
                let rest = text(&r.args).strip_prefix("CMD ").expect("HEALTHCHECK CMD");
                let array: Vec<String> = serde_json::from_str(rest).expect("a JSON array");
                assert_eq!(array, case.health, "HEALTHCHECK");
            }
            "STOPSIGNAL" => assert_eq!(reader::process_word(text(&r.args), &env), "SIGTERM"),
            _ => {}
        }
    }
}

/// Random values in every field: read back exactly, or refused with a located error.
fn random_values_are_read_back_exactly() {
    let rounds: u64 = std::env::var("KILN_PROPERTY_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(400);
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = dir.path().join("kiln.kdl");
    let (mut accepted, mut joined_runs) = (0, 0);
    for round in 0..rounds {
        let seed = 0x7072_6f70 + round;
        let case = generate(&mut Rng(seed));
        std::fs::write(&manifest, &case.manifest).expect("write");
        let options = kiln_manifest::LoadOptions { manifest: manifest.clone(), ..Default::default() };
        let (project, mut diags) = kiln_manifest::load_project(&options).expect("no unknown override");
        let graph = kiln_graph::Graph::build(&project, &mut diags);
        if diags.has_errors() {
            // Refused: only for values Docker cannot be given exactly, and located.
            for d in diags.iter().filter(|d| d.is_error()) {
                assert_eq!(
                    d.code,
                    kiln_manifest::Code::Unexpressible,
                    "seed {seed:#x}: {}\n{}",
                    d.message,
                    case.manifest
                );
                assert!(d.primary_span().is_some(), "seed {seed:#x}: `{}` points nowhere", d.message);
            }
            continue;
        }
        accepted += 1;
        let files = kiln_emit::output_files(&project, &graph);
        let dockerfile = &files[0].contents;
        // BuildKit reads heredocs whatever the level kiln writes for.
        let read = reader::read(dockerfile, true);
        joined_runs += usize::from(case.commands.len() > 1);
        let outcome = std::panic::catch_unwind(|| check(&case, &read));
        assert!(outcome.is_ok(), "seed {seed:#x}:\n{}\n--- Dockerfile\n{dockerfile}", case.manifest);
    }
    // The search is not vacuous: most cases are accepted, and some joined commands.
    assert!(accepted * 3 > rounds, "only {accepted} of {rounds} cases accepted");
    assert!(joined_runs > 0 || rounds < 50, "no case joined commands");
}

/// The reader itself, on Dockerfile lines whose reading Docker's documentation shows.
fn the_reader_follows_dockers_rules() {
    let read = reader::read("RUN a \\\n# comment\n\n    && b\nENV A=\"x y\" B=it\\'s C='$A'\n", false);
    assert_eq!(read[0].args, Args::Text("a     && b".into()));
    let env = HashMap::new();
    assert_eq!(
        reader::pairs(text(&read[1].args), &env),
        [("A".into(), "x y".into()), ("B".into(), "it's".into()), ("C".into(), "$A".into())]
    );
    let mut env = HashMap::new();
    env.insert("A".to_owned(), "1".to_owned());
    assert_eq!(reader::process_word(r#""a\b\"$A" '\$A' \$A ${A}"#, &env), r#"a\b"1 \$A $A 1"#);
    let read = reader::read("RUN <<EOF\necho hi\nEOF\nUSER x\n", true);
    assert_eq!(read[0].heredocs, ["echo hi\n"]);
    assert_eq!(read[1].keyword, "USER");
    let read = reader::read("RUN --mount=type=cache,target=\"/a b\" make\n", false);
    assert_eq!(read[0].flags, ["--mount=type=cache,target=\"/a b\""]);
    assert_eq!(read[0].args, Args::Text("make".into()));
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::plain("the_reader_follows_dockers_rules", the_reader_follows_dockers_rules),
    Case::plain("random_values_are_read_back_exactly", random_values_are_read_back_exactly),
];
