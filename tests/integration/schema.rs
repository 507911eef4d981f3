//! The committed JSON Schemas are current, and kiln's JSON output follows them.

use crate::Case;
use crate::harness::{Test, examples, kiln_in_example, repo_root};

fn check_committed(kind: &str) -> serde_json::Value {
    let path = repo_root().join(format!("schema/{kind}.schema.json"));
    let generated = Test::new().args(&["schema", kind]).run().stdout;
    if std::env::var_os("KILN_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &generated).expect("write schema");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/{kind}.schema.json is stale: run `just schema` (or `KILN_UPDATE_SCHEMAS=1 cargo test --test integration schema`)"
    );
    serde_json::from_str(&generated).expect("schema is JSON")
}

fn validate(schema: &serde_json::Value, document: &str, what: &str) {
    let validator = jsonschema::validator_for(schema).expect("a valid schema");
    let instance: serde_json::Value = serde_json::from_str(document).expect("output is JSON");
    let errors: Vec<String> =
        validator.iter_errors(&instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not follow its schema:\n{}", errors.join("\n"));
}

fn plan_schema_is_current_and_followed() {
    let schema = check_committed("plan");
    for example in examples() {
        let plan = kiln_in_example(&example, &["plan", "--json"]).success().stdout;
        validate(&schema, &plan, &format!("the plan of {example}"));
    }
}

fn manifest_schema_is_current_and_followed() {
    let schema = check_committed("manifest");
    for example in examples() {
        let manifest = kiln_in_example(&example, &["manifest"]).success().stdout;
        validate(&schema, &manifest, &format!("the manifest of {example}"));
    }
}

fn build_events_schema_is_current_and_followed() {
    let schema = check_committed("build-events");
    if !crate::engine::available() {
        return;
    }
    let _engine = crate::engine::ENGINE_LOCK.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let manifest = "registry \"kiln-it/events\"\nimage app {\n    from \"kiln-test/busybox:1\"\n    run \"echo hi\"\n}\nimage broken {\n    from image=app\n    run \"false\"\n}\n";
    let mut test = Test::new().manifest(manifest);
    let _cleanup = crate::engine::Cleanup::new(&test.path().join("kiln.kdl"));
    let output = test.args(&["build", "--network", "none", "--progress", "json"]).run_unchecked();
    assert_eq!(output.status, 1, "{}", output.stderr);
    for line in output.stdout.lines() {
        validate(&schema, line, &format!("the build event {line}"));
    }
}

/// This module's tests, for the harness (`main.rs`).
/// One vocabulary: `kiln manifest` names every instruction by its KDL node name (a
/// stage holding one node of each kind), and follows the schema.
fn instructions_are_named_as_in_the_manifest() {
    use kiln_manifest::ast::InstructionKind;
    // A node of each kind, with the values it needs.
    let node = |name: &str| -> String {
        let values = match name {
            "workdir" => r#""/app""#,
            "copy" => r#""a" "./""#,
            "run" | "entrypoint" | "cmd" | "shell" | "healthcheck" => r#""true""#,
            "env" | "label" => r#"A="1""#,
            "arg" => "B",
            "user" => r#""1000""#,
            "expose" => "80",
            "volume" => r#""/data""#,
            "stopsignal" => r#""SIGTERM""#,
            "apt" | "apk" | "pip" => r#""curl""#,
            _ => "",
        };
        format!("    {name} {values}\n")
    };
    let nodes: String = InstructionKind::ALL.iter().map(|kind| node(kind.name())).collect();
    let manifest = format!("image app {{\n    from \"python:3.12-slim\"\n{nodes}}}\n");
    let mut test = Test::new().manifest(&manifest);
    for file in ["a", "package.json", "package-lock.json", "go.mod", "go.sum", "Cargo.toml", "Cargo.lock"] {
        test = test.file(file, "");
    }
    let output = test.args(&["manifest"]).run().stdout;
    validate(&check_committed("manifest"), &output, "the manifest with every instruction");
    let json: serde_json::Value = serde_json::from_str(&output).expect("JSON");
    let names: Vec<String> = json["images"][0]["stages"][0]["instructions"]
        .as_array()
        .expect("instructions")
        .iter()
        .map(|i| {
            i.as_object()
                .and_then(|o| o.keys().next().cloned())
                .or_else(|| i.as_str().map(str::to_owned))
                .expect("a name")
        })
        .collect();
    // `label` nodes of a stage are kept with the image's labels, at the end.
    let expected: Vec<&str> =
        InstructionKind::ALL.iter().map(|k| k.name()).filter(|n| *n != "label").collect();
    let mut got: Vec<&str> = names.iter().map(String::as_str).filter(|n| *n != "label").collect();
    got.dedup();
    assert_eq!(got, expected, "{output}");
}

pub(crate) const TESTS: &[Case] = &[
    Case::plain("instructions_are_named_as_in_the_manifest", instructions_are_named_as_in_the_manifest),
    Case::plain("plan_schema_is_current_and_followed", plan_schema_is_current_and_followed),
    Case::plain("manifest_schema_is_current_and_followed", manifest_schema_is_current_and_followed),
    Case::engine("build_events_schema_is_current_and_followed", build_events_schema_is_current_and_followed),
];
