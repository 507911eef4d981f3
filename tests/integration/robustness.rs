//! No input, however broken, makes kiln panic: mutated manifests go through the whole
//! pipeline (load, resolve, graph, emit) in-process, and hostile files through the
//! `kiln` binary.

use std::fmt::Write as _;
use std::process::Stdio;

use crate::Case;
use crate::harness::{Test, repo_root};
use crate::random::{Rng, mutate};

const TOKENS: &[&str] = &[
    "{",
    "}",
    "\"",
    "=",
    "#true",
    "#null",
    "image",
    "stage",
    "from",
    "copy",
    "run",
    "\n",
    "\\",
    "/",
    "..",
    "*",
    "[",
    "!",
    "{X}",
    "(t)",
    "variant",
    "template",
    "extends",
    "group",
    "include \"*\"",
    "é",
    "\t",
    ";",
    "0755",
    "$",
    "<<EOF",
    "image=a",
    "from=b",
    "{git.sha}",
    "…",
    "\r",
    "/*",
    "*/",
    "#\"",
    "\"\"\"",
];

/// `KILN_FUZZ_ROUNDS` and `KILN_FUZZ_SEED` run a longer or a different search locally.
fn fuzz_setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn mutated_manifests_never_panic() {
    let mut seeds: Vec<String> = Vec::new();
    for dir in ["tests/corpus", "examples/python-app", "examples/monorepo", "examples/rust-service"] {
        for entry in std::fs::read_dir(repo_root().join(dir)).expect("folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "kdl") {
                seeds.push(std::fs::read_to_string(path).expect("read"));
            }
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = dir.path().join("kiln.kdl");
    let mut rng = Rng(fuzz_setting("KILN_FUZZ_SEED", 0x6b69_6c6e));
    for round in 0..fuzz_setting("KILN_FUZZ_ROUNDS", 400) {
        let seed = rng.below(seeds.len());
        let text = mutate(&mut rng, TOKENS, &seeds[seed]);
        std::fs::write(&manifest, &text).expect("write");
        let options = kiln_manifest::LoadOptions {
            manifest: manifest.clone(),
            sets: vec![("git.sha".into(), "0".repeat(40)), ("git.short-sha".into(), "0".repeat(12))],
            ..Default::default()
        };
        let outcome = std::panic::catch_unwind(|| {
            let Ok((project, mut diags)) = kiln_manifest::load_project(&options) else { return };
            let graph = kiln_graph::Graph::build(&project, &mut diags);
            for diagnostic in diags.iter() {
                let _ = kiln_manifest::render_diagnostic(
                    diagnostic,
                    &project.sources,
                    kiln_manifest::RenderOptions::default(),
                );
            }
            if !diags.has_errors() {
                let _ = kiln_emit::output_files(&project, &graph);
            }
        });
        assert!(outcome.is_ok(), "round {round} panicked on:\n{text}");
    }
}

/// Mutated Dockerfiles through `kiln import`: no panic, and what it writes is always a
/// manifest KDL reads and whose strings hold no accidental `{variable}`.
fn mutated_dockerfiles_import_into_readable_manifests() {
    let corpus = repo_root().join("tests/import");
    let seeds: Vec<String> = std::fs::read_dir(&corpus)
        .expect("tests/import")
        .map(|e| std::fs::read_to_string(e.expect("entry").path().join("Dockerfile")).expect("a Dockerfile"))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = dir.path().join("kiln.kdl");
    let mut rng = Rng(fuzz_setting("KILN_FUZZ_SEED", 0x696d_706f));
    for round in 0..fuzz_setting("KILN_FUZZ_ROUNDS", 300) {
        let seed = rng.below(seeds.len());
        let text = mutate(&mut rng, TOKENS, &seeds[seed]);
        let source = kiln_import::Source {
            name: "app".into(),
            path: "Dockerfile".into(),
            text: text.clone(),
            context: ".".into(),
            dockerignore: Some(mutate(&mut rng, TOKENS, "*.log\n!keep.log\n")),
        };
        let imported = std::panic::catch_unwind(|| kiln_import::import(std::slice::from_ref(&source)));
        let Ok(imported) = imported else { panic!("round {round}: import panicked on:\n{text}") };
        // A Dockerfile Docker refuses is refused at its line; anything else imports.
        let imported = match imported {
            Ok(imported) => imported,
            Err(refused) => {
                assert!(refused.at.line >= 1, "round {round}: a refusal without a line");
                continue;
            }
        };
        std::fs::write(&manifest, &imported.manifest).expect("write");
        let options = kiln_manifest::LoadOptions { manifest: manifest.clone(), ..Default::default() };
        let loaded = std::panic::catch_unwind(|| kiln_manifest::load_project(&options));
        let Ok(Ok((_, diags))) = loaded else {
            panic!("round {round}: loading the import failed on:\n{text}")
        };
        for diagnostic in diags.iter() {
            let code = diagnostic.code.to_string();
            assert!(
                !code.starts_with("kdl-syntax") && code != "undefined-variable",
                "round {round}: {code}: {}\nDockerfile:\n{text}\nmanifest:\n{}",
                diagnostic.message,
                imported.manifest
            );
        }
    }
}

/// `count` images, each with an unknown node: as many errors.
fn images_with_unknown_nodes(count: usize) -> String {
    (0..count).fold(String::new(), |mut out, i| {
        let _ = write!(out, "image a{i} {{ from \"x:1\"\n    unknown{i} 1\n}}\n");
        out
    })
}

/// Files made to break a parser or a renderer, each with what the error must say.
fn hostile_files() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let long_line = format!("image app {{ from \"x:1\" run \"{}\" bad }}\n", "a".repeat(200_000));
    let many_errors = images_with_unknown_nodes(5_000);
    let deep = format!("image app {{ {} }}\n", "stage s { ".repeat(5_000));
    let properties = (0..20_000).fold(String::new(), |mut out, i| {
        let _ = write!(out, " p{i}=1");
        out
    });
    let many_properties = format!("image app {{\n    from \"x:1\"\n    copy \"a\" \"b\"{properties}\n}}\n");
    vec![
        ("a 200,000-character line", long_line.into_bytes(), "(a line of"),
        ("5,000 errors", many_errors.into_bytes(), "error[unknown-node]"),
        ("blocks nested 5,000 deep", deep.into_bytes(), "blocks nest more than"),
        ("20,000 unknown properties", many_properties.into_bytes(), "error[unknown-property]"),
        ("old Mac line endings", b"image app {\r    from \"x:1\"\r    bad 1\r}\r".to_vec(), "kiln.kdl:3:5"),
        ("invalid UTF-8", b"image app {\n    cmd \"caf\xe9\"\n}\n".to_vec(), "kiln.kdl:2:13"),
        ("an unterminated comment", b"image app {\n    /* never closed\n}\n".to_vec(), "kiln.kdl:2:5"),
        ("a NUL in a value", b"image app {\n    from \"x:1\"\n    cmd \"a\\u{0}\"\n}\n".to_vec(), "NUL"),
        (
            "raw control characters",
            b"image app {\n    from \"x:1\"\n    label a=\"\x1b[2J\"\n}\n".to_vec(),
            "kiln.kdl:3",
        ),
    ]
}

fn hostile_files_get_located_errors() {
    for (what, bytes, expected) in hostile_files() {
        let test = Test::new();
        std::fs::write(test.path().join("kiln.kdl"), &bytes).expect("write");
        // Every command that loads the manifest reports it the same way; `check` on all.
        let commands: &[&str] =
            if what.contains("line") { &["check", "emit", "plan", "graph"] } else { &["check"] };
        for command in commands {
            let output = crate::harness::kiln_command()
                .args([command, "--color", "never"])
                .current_dir(test.path())
                .output()
                .expect("run kiln");
            let stderr = String::from_utf8_lossy(&output.stderr);
            let what = format!("{what} (kiln {command})");
            assert_eq!(output.status.code(), Some(2), "{what}:\n{}", tail(&stderr));
            assert!(!stderr.contains("internal error"), "{what}:\n{}", tail(&stderr));
            assert!(stderr.contains(expected), "{what}: no `{expected}` in\n{}", tail(&stderr));
            // What kiln prints cannot drive the terminal.
            assert!(!stderr.contains('\u{1b}'), "{what}: an escape character reached the terminal");
        }
    }
}

/// Old Mac line endings (CR only): the text and the JSON output agree on positions.
fn carriage_returns_count_as_line_breaks_everywhere() {
    let test = Test::new();
    std::fs::write(test.path().join("kiln.kdl"), "image app {\r    from \"x:1\"\r    bad 1\r}\r")
        .expect("write");
    let output = crate::harness::kiln_command()
        .args(["check", "--json"])
        .current_dir(test.path())
        .output()
        .expect("run kiln");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["diagnostics"][0]["location"], "kiln.kdl:3:5", "{report:#}");
}

/// The end of a long output, for failure messages.
fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(2_000);
    let start = (start..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    &text[start..]
}

/// A reader that goes away (`kiln check | head -1`) does not make kiln panic.
fn a_closed_pipe_is_not_a_crash() {
    let many_errors = images_with_unknown_nodes(2_000);
    let test = Test::new().manifest(&many_errors);
    let mut child = crate::harness::kiln_command()
        .args(["check", "--color", "never"])
        .current_dir(test.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kiln");
    drop(child.stderr.take());
    drop(child.stdout.take());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(2), "{status}");
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::plain("mutated_manifests_never_panic", mutated_manifests_never_panic),
    Case::plain(
        "mutated_dockerfiles_import_into_readable_manifests",
        mutated_dockerfiles_import_into_readable_manifests,
    ),
    Case::plain("hostile_files_get_located_errors", hostile_files_get_located_errors),
    Case::plain("a_closed_pipe_is_not_a_crash", a_closed_pipe_is_not_a_crash),
    Case::plain(
        "carriage_returns_count_as_line_breaks_everywhere",
        carriage_returns_count_as_line_breaks_everywhere,
    ),
];
