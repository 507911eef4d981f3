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
pub(crate) const TESTS: &[Case] = &[
    Case::plain("plan_schema_is_current_and_followed", plan_schema_is_current_and_followed),
    Case::plain("manifest_schema_is_current_and_followed", manifest_schema_is_current_and_followed),
    Case::engine("build_events_schema_is_current_and_followed", build_events_schema_is_current_and_followed),
];
