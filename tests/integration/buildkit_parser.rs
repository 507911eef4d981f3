//! Oracle 3 for import: BuildKit's own Dockerfile parser (its Go code, through PyPI's
//! `dockerfile`) and kiln's (`kiln_import::dockerfile`) read the same texts the same
//! way: the same instructions, flags, JSON forms, argument values, heredoc contents and
//! lines, or both refuse. The texts: the parser corner cases of `tests/parse/`, the
//! import corpus, the Dockerfiles kiln generates for the examples, and mutations of all
//! of them.
//!
//! Needs a Python with `dockerfile` (`pip install dockerfile`); `KILN_BUILDKIT_PARSER_PYTHON`
//! names it (`.ci/run` makes one), else `python3` is tried.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::Case;
use crate::harness::repo_root;
use crate::random::{Rng, mutate};

/// The Python that has BuildKit's parser, or why there is none.
pub(crate) fn parser_python() -> Result<PathBuf, String> {
    let python = std::env::var_os("KILN_BUILDKIT_PARSER_PYTHON")
        .map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let works = Command::new(&python)
        .args(["-c", "import dockerfile"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        Ok(python)
    } else {
        Err(format!(
            "BuildKit's parser for Python (`{}` cannot `import dockerfile`): `python3 -m venv V && V/bin/pip install dockerfile==3.4.0`, then KILN_BUILDKIT_PARSER_PYTHON=V/bin/python",
            python.display()
        ))
    }
}

/// How BuildKit reads each text.
fn buildkit_reads(texts: &[String]) -> Vec<Value> {
    let python = parser_python().unwrap_or_else(|why| panic!("{why}"));
    let script = repo_root().join("tests/integration/buildkit_parse.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start BuildKit's parser");
    let input = serde_json::to_vec(texts).expect("JSON");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let output = child.wait_with_output().expect("BuildKit's parser");
    writer.join().expect("writer").expect("write texts");
    assert!(output.status.success(), "BuildKit's parser failed");
    serde_json::from_slice(&output.stdout).expect("JSON from BuildKit's parser")
}

/// How kiln reads a text, laid out as `buildkit_parse.py` lays out BuildKit's reading.
fn kiln_reads(text: &str) -> Value {
    match kiln_import::dockerfile::parse(text) {
        Err(error) => json!({ "error": error.message }),
        Ok(file) => json!({
            "instructions": file.instructions.iter().map(|i| {
                let shape = i.shape(file.escape);
                json!({
                    "keyword": shape.keyword,
                    "sub_keyword": shape.sub_keyword,
                    "json": shape.json,
                    "flags": shape.flags,
                    "values": shape.values,
                    "heredocs": shape.heredocs,
                    "start_line": shape.start_line,
                    "end_line": shape.end_line,
                })
            }).collect::<Vec<_>>()
        }),
    }
}

/// Every text of the corpus, named.
fn corpus() -> Vec<(String, String)> {
    let root = repo_root();
    let mut texts = Vec::new();
    let mut add_dir = |dir: PathBuf, pick: &dyn Fn(&std::path::Path) -> Option<PathBuf>| {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(&dir).expect("folder").map(|e| e.expect("entry").path()).collect();
        entries.sort();
        for entry in entries {
            if let Some(file) = pick(&entry) {
                let text = std::fs::read_to_string(&file).expect("read");
                texts.push((file.strip_prefix(&root).unwrap_or(&file).display().to_string(), text));
            }
        }
    };
    add_dir(root.join("tests/parse"), &|p| Some(p.to_path_buf()));
    add_dir(root.join("tests/import"), &|p| Some(p.join("Dockerfile")).filter(|f| f.is_file()));
    for example in ["monorepo", "python-app", "rust-service"] {
        add_dir(root.join("examples").join(example).join("dockerfiles"), &|p| {
            p.extension().is_some_and(|e| e == "Dockerfile").then(|| p.to_path_buf())
        });
    }
    texts
}

/// What the two readings differ in, if anything. The Python wrapper passes strings as C
/// strings: a value with a NUL (from a JSON `\u0000`) ends there, which no Dockerfile
/// means; such texts are left out.
fn compare(name: &str, text: &str, theirs: &Value) -> Option<String> {
    if text.contains("\\u0000") {
        return None;
    }
    let ours = kiln_reads(text);
    match (theirs.get("error"), ours.get("error")) {
        (Some(_), Some(_)) => None,
        (Some(error), None) => Some(format!("{name}: BuildKit refuses it ({error}), kiln reads it")),
        (None, Some(error)) => Some(format!("{name}: kiln refuses it ({error}), BuildKit reads it")),
        (None, None) => {
            let (a, b) = (&theirs["instructions"], &ours["instructions"]);
            if a == b {
                return None;
            }
            let empty = Vec::new();
            let (a, b) = (a.as_array().unwrap_or(&empty), b.as_array().unwrap_or(&empty));
            let first = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)).unwrap_or(0);
            Some(format!(
                "{name}: instruction {}: BuildKit {}\n    kiln {}",
                first + 1,
                a.get(first).map_or_else(|| "none".to_owned(), Value::to_string),
                b.get(first).map_or_else(|| "none".to_owned(), Value::to_string)
            ))
        }
    }
}

/// Tokens that Dockerfile parsing gives a meaning to.
const TOKENS: &[&str] = &[
    "\n",
    "\\\n",
    "\\",
    " \\  \n",
    "\n\n",
    "\r\n",
    "#",
    "# escape=`\n",
    "`",
    "\"",
    "'",
    "[",
    "]",
    "[\"a\", \"b\"]",
    "--",
    "--flag=",
    "=",
    " ",
    "\t",
    "$",
    "${X}",
    "<<EOF\n",
    "\nEOF\n",
    "<<-EOF",
    "\tEOF\n",
    "RUN ",
    "COPY ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "FROM ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "AS ",
    "x=y ",
];

fn texts_read_alike() {
    let corpus = corpus();
    assert!(corpus.len() >= 60, "only {} texts", corpus.len());
    let texts: Vec<String> = corpus.iter().map(|(_, t)| t.clone()).collect();
    let theirs = buildkit_reads(&texts);
    let mismatches: Vec<String> =
        corpus.iter().zip(&theirs).filter_map(|((name, text), theirs)| compare(name, text, theirs)).collect();
    assert!(mismatches.is_empty(), "{} texts read differently:\n{}", mismatches.len(), mismatches.join("\n"));
}

fn mutated_texts_read_alike() {
    let seeds: Vec<String> = corpus().into_iter().map(|(_, t)| t).collect();
    let rounds = std::env::var("KILN_FUZZ_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(600);
    let mut rng =
        Rng(std::env::var("KILN_FUZZ_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(0x6275_696c));
    let texts: Vec<String> = (0..rounds)
        .map(|_| {
            let seed = rng.below(seeds.len());
            mutate(&mut rng, TOKENS, &seeds[seed])
        })
        .collect();
    let theirs = buildkit_reads(&texts);
    let refused = theirs.iter().filter(|t| t.get("error").is_some()).count();
    let mismatches: Vec<String> = texts
        .iter()
        .enumerate()
        .zip(&theirs)
        .filter_map(|((i, text), theirs)| {
            compare(&format!("mutation {i}"), text, theirs).map(|m| format!("{m}\n--- text\n{text}\n---"))
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} mutated texts read differently (showing 3):\n{}",
        mismatches.len(),
        texts.len(),
        mismatches
            .iter()
            .take(std::env::var("KILN_SHOW").ok().and_then(|n| n.parse().ok()).unwrap_or(3))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Not vacuous: some mutations are refused, most are not.
    assert!(refused > 0 && refused * 2 < texts.len(), "{refused} of {} refused", texts.len());
}

/// The instructions BuildKit reads in a text, laid out for comparing an original with
/// what kiln writes for it after `kiln import`: kiln's documented rewrites undone (ADD of
/// plain files is COPY, labels are configuration (set last), the ARGs before FROM are
/// manifest variables,
/// a RUN with heredocs the exec form of its shell call), RUN commands with their blanks
/// squeezed (Docker passes them to the shell, for which blanks outside quotes are one).
fn layout(read: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    let mut seen_from = false;
    for instruction in read["instructions"].as_array().into_iter().flatten() {
        let keyword = instruction["keyword"].as_str().unwrap_or_default();
        let values: Vec<String> = instruction["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(|t| t.split_whitespace().collect::<Vec<_>>().join(" ")))
            .collect();
        seen_from |= keyword == "FROM";
        match keyword {
            "ARG" if !seen_from => {}
            // One name per ARG (kiln writes `arg` nodes one by one).
            "ARG" => lines.extend(values.iter().map(|_| "ARG".to_owned())),
            // Image configuration only, which kiln sets last (T12): not a step.
            "ONBUILD" | "LABEL" | "MAINTAINER" => {}
            "ADD" => lines.push("COPY".to_owned()),
            "RUN" if !instruction["heredocs"].as_array().is_none_or(Vec::is_empty) => {
                lines.push("RUN (script)".to_owned());
            }
            "RUN" if instruction["json"] == true && values.first().is_some_and(|v| v == "/bin/sh") => {
                lines.push("RUN (script)".to_owned());
            }
            "RUN" => lines.push(format!("RUN {}", values.join(" "))),
            other => lines.push(other.to_owned()),
        }
    }
    lines
}

/// BuildKit reads what kiln writes for each Dockerfile of the import corpus as it reads
/// the Dockerfile: the same instructions, in the same order, the same RUN commands.
fn imported_dockerfiles_read_alike_once_emitted() {
    let root = repo_root().join("tests/import");
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&root).expect("corpus").map(|e| e.expect("entry").path()).collect();
    cases.sort();
    let mut originals = Vec::new();
    let mut emitted = Vec::new();
    let mut names = Vec::new();
    for case in &cases {
        let text = std::fs::read_to_string(case.join("Dockerfile")).expect("a Dockerfile");
        let source = kiln_import::Source {
            name: "app".into(),
            path: "Dockerfile".into(),
            text: text.clone(),
            context: ".".into(),
            dockerignore: None,
        };
        let imported = kiln_import::import(std::slice::from_ref(&source)).expect("imports");
        let dir = tempfile::tempdir().expect("temp dir");
        kiln_testkit::copy_tree(case, dir.path());
        std::fs::write(dir.path().join("kiln.kdl"), &imported.manifest).expect("write");
        let options =
            kiln_manifest::LoadOptions { manifest: dir.path().join("kiln.kdl"), ..Default::default() };
        let (project, mut diags) = kiln_manifest::load_project(&options).expect("no override");
        let graph = kiln_graph::Graph::build(&project, &mut diags);
        assert!(!diags.has_errors(), "{}: the imported manifest has errors", case.display());
        let generated = kiln_emit::output_files(&project, &graph).swap_remove(0).contents;
        names.push(case.file_name().unwrap_or_default().to_string_lossy().into_owned());
        originals.push(text);
        emitted.push(generated);
    }
    let (theirs, ours) = (buildkit_reads(&originals), buildkit_reads(&emitted));
    let mut mismatches = Vec::new();
    for ((name, original), written) in names.iter().zip(&theirs).zip(&ours) {
        let (a, b) = (layout(original), layout(written));
        // The stages nothing uses (T11) are not written: compare what the target needs.
        if a != b {
            mismatches
                .push(format!("{name}:\n  BuildKit reads the Dockerfile as {a:?}\n  and kiln's as {b:?}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::needs("texts_read_alike", texts_read_alike, needs_parser),
    Case::needs("mutated_texts_read_alike", mutated_texts_read_alike, needs_parser),
    Case::needs(
        "imported_dockerfiles_read_alike_once_emitted",
        imported_dockerfiles_read_alike_once_emitted,
        needs_parser,
    ),
];

fn needs_parser() -> Vec<String> {
    parser_python().err().into_iter().collect()
}
