//! The corpus of bad manifests under `tests/corpus/`: each one's rendered diagnostics
//! (no colour, 80 columns) and exit status are pinned by a snapshot.
//!
//! A corpus file is a root `kiln.kdl`; it may hold more files, each after a line
//! `// ---- path/of/file`.

use crate::Case;
use crate::harness::{Test, repo_root};

fn corpus() -> Vec<(String, String)> {
    let dir = repo_root().join("tests/corpus");
    let mut cases: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("tests/corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "kdl"))
        .map(|p| {
            let name = p.file_stem().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("read case"))
        })
        .collect();
    cases.sort();
    cases
}

fn setup(text: &str) -> Test {
    let mut test = Test::new();
    let mut path = "kiln.kdl".to_owned();
    let mut contents = String::new();
    for line in text.lines() {
        if let Some(next) = line.strip_prefix("// ---- ") {
            test = write(test, &path, &contents);
            next.trim().clone_into(&mut path);
            contents.clear();
        } else {
            contents.push_str(line);
            contents.push('\n');
        }
    }
    write(test, &path, &contents)
}

fn write(test: Test, path: &str, contents: &str) -> Test {
    if path.ends_with('/') { test.dir(path) } else { test.file(path, contents) }
}

fn corpus_has_at_least_thirty_cases() {
    assert!(corpus().len() >= 30, "{} cases", corpus().len());
}

fn bad_manifests() {
    for (name, text) in corpus() {
        let mut test = setup(&text);
        let output = test.args(&["check", "--set", "git.short-sha=0123456789ab"]).run();
        assert_eq!(output.status, 2, "{name} should be rejected:\n{}", output.stderr);
        assert!(!output.stderr.contains("panicked"), "{name}:\n{}", output.stderr);
        insta::assert_snapshot!(name.clone(), output.stderr());
        // Emission is refused just the same, and writes nothing.
        test.args(&["emit", "--set", "git.short-sha=0123456789ab"]).run().status(2);
        assert!(!test.exists("dockerfiles"), "{name}: emit wrote files");
    }
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::plain("corpus_has_at_least_thirty_cases", corpus_has_at_least_thirty_cases),
    Case::plain("bad_manifests", bad_manifests),
];
