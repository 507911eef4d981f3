//! The corpus under `tests/corpus/`: one manifest per fixture, named after the
//! diagnostic code it shows (`cycle.images.kdl` shows `cycle`). Each fixture's exit
//! status and rendered diagnostics (no colour, 80 columns) are pinned by a snapshot of
//! its own, and every code kiln's checks can report has a fixture.
//!
//! A fixture is a root `kiln.kdl`; it may hold more files, each after a line
//! `// ---- path/of/file` (a path ending in `/` makes a folder).

use std::path::Path;

use kiln_manifest::{Code, Severity};

use crate::Case;
use crate::harness::{Test, repo_root};

/// Codes no manifest can show to `kiln check`, and where they are tested instead.
const NOT_FROM_A_MANIFEST: &[(Code, &str)] = &[
    (Code::BuildFailed, "a build's failure: build.rs"),
    (Code::InvalidUtf8, "fixtures are UTF-8 text: robustness.rs, hostile_files_get_located_errors"),
    (Code::Io, "a manifest that exists but cannot be read: file modes do not stop root, who runs CI"),
];

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

/// The code a fixture is named after.
fn fixture_code(path: &Path) -> Code {
    let name = path.file_name().expect("a name").to_string_lossy();
    let code = name.split('.').next().unwrap_or_default();
    Code::ALL
        .iter()
        .copied()
        .find(|c| c.name() == code)
        .unwrap_or_else(|| panic!("`{name}` is not named after a diagnostic code"))
}

fn corpus_fixtures() {
    insta::glob!("../corpus", "*.kdl", |path| {
        let code = fixture_code(path);
        let text = std::fs::read_to_string(path).expect("read fixture");
        let mut test = setup(&text);
        let output = test.args(&["check", "--set", "git.short-sha=0123456789ab"]).run_unchecked();
        let name = path.file_name().expect("a name").to_string_lossy().into_owned();
        let (kind, status) = match code.severity() {
            Severity::Error => ("error", 2),
            _ => ("warning", 0),
        };
        assert_eq!(output.status, status, "{name}:\n{}", output.stderr);
        assert!(output.stderr.contains(&format!("{kind}[{code}]")), "{name} shows no {kind}[{code}]");
        assert!(!output.stderr.contains("internal error"), "{name}:\n{}", output.stderr);
        insta::assert_snapshot!(format!("status: {}\n{}", output.status, output.stderr()));
        if status == 2 {
            // Emission is refused just the same, and writes nothing.
            test.args(&["emit", "--set", "git.short-sha=0123456789ab"]).expect(2).run();
            assert!(!test.exists("dockerfiles"), "{name}: emit wrote files");
        }
    });
}

fn every_code_has_a_fixture() {
    let dir = repo_root().join("tests/corpus");
    let fixtures: Vec<Code> = std::fs::read_dir(&dir)
        .expect("tests/corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "kdl"))
        .map(|p| fixture_code(&p))
        .collect();
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|code| !fixtures.contains(code) && !NOT_FROM_A_MANIFEST.iter().any(|(c, _)| c == *code))
        .map(|code| code.name())
        .collect();
    assert!(missing.is_empty(), "codes with no fixture in tests/corpus: {missing:?}");
}

/// `allow` silences the warnings it names, and only those.
fn allowed_warnings_are_not_shown() {
    let manifest = r#"
allow runs-as-root
image api {
    from "python"
}
"#;
    let mut test = Test::new().manifest(manifest);
    let output = test.args(&["check"]).run();
    assert!(!output.stderr.contains("runs-as-root"), "{}", output.stderr);
    assert!(output.stderr.contains("warning[base-not-pinned]"), "{}", output.stderr);
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::plain("corpus_fixtures", corpus_fixtures),
    Case::plain("every_code_has_a_fixture", every_code_has_a_fixture),
    Case::plain("allowed_warnings_are_not_shown", allowed_warnings_are_not_shown),
];
