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

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::needs("texts_read_alike", texts_read_alike, needs_parser),
    Case::needs("mutated_texts_read_alike", mutated_texts_read_alike, needs_parser),
];

fn needs_parser() -> Vec<String> {
    parser_python().err().into_iter().collect()
}
