//! Every example compiles cleanly, its committed generated files are up to date, and
//! its outputs are pinned by snapshots.

use crate::harness::{Test, examples, kiln_in_example};

#[test]
fn there_are_at_least_three_examples() {
    assert!(examples().len() >= 3, "{:?}", examples());
}

#[test]
fn examples_check_without_warnings() {
    for example in examples() {
        let output = kiln_in_example(&example, &["check"]).success();
        assert!(output.stderr.contains("no problems"), "{example}:\n{}", output.stderr);
    }
}

#[test]
fn committed_generated_files_are_up_to_date() {
    for example in examples() {
        let output = kiln_in_example(&example, &["emit", "--check"]);
        assert_eq!(
            output.status, 0,
            "{example}: run `kiln emit` in examples/{example}\n{}{}",
            output.stdout, output.stderr
        );
    }
}

#[test]
fn generated_files() {
    for example in examples() {
        let mut test = Test::new().copy_from_repo(&format!("examples/{example}"));
        // Emit into a fresh folder, so that the snapshot does not depend on what is
        // committed (that is checked above).
        test.args(&["emit", "-o", "fresh", "--set", "git.short-sha=0123456789ab"]).run().success();
        let mut names: Vec<String> = std::fs::read_dir(test.path().join("fresh"))
            .expect("output folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(!names.is_empty());
        for name in names {
            let contents = test.read(&format!("fresh/{name}"));
            insta::assert_snapshot!(format!("{example}__{name}"), contents);
        }
    }
}

#[test]
fn plan() {
    for example in examples() {
        let json = kiln_in_example(&example, &["plan", "--json"]).success().stdout;
        insta::assert_snapshot!(format!("{example}__plan.json"), json);
        let text = kiln_in_example(&example, &["plan"]).success().stdout;
        insta::assert_snapshot!(format!("{example}__plan.txt"), text);
    }
}

#[test]
fn graph_in_every_format() {
    for example in examples() {
        for format in ["text", "dot", "mermaid", "json"] {
            let output = kiln_in_example(&example, &["graph", "--format", format]).success().stdout;
            insta::assert_snapshot!(format!("{example}__graph.{format}"), output);
        }
    }
}

#[test]
fn resolved_manifest() {
    for example in examples() {
        let output = kiln_in_example(&example, &["manifest"]).success().stdout;
        let value: serde_json::Value = serde_json::from_str(&output).expect("valid JSON");
        assert!(value["images"].as_array().is_some_and(|i| !i.is_empty()), "{example}");
    }
}
