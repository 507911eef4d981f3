//! `--changed-since REF`: the images whose inputs changed between a commit and the work
//! tree, and what is built on them (plan and build share the selection).

use crate::Case;
use std::process::Command;

use serde_json::Value;

use crate::harness::Test;

fn git(test: &Test, args: &[&str]) {
    let output = Command::new("git")
        .args(["-c", "user.name=kiln", "-c", "user.email=kiln@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(test.path())
        .output()
        .expect("run git");
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// The monorepo example in a git repository of its own, committed.
fn repository() -> Test {
    let test = Test::new().copy_from_repo("tests/build-examples/monorepo");
    git(&test, &["init", "-q", "-b", "main"]);
    git(&test, &["add", "-A"]);
    git(&test, &["commit", "-q", "-m", "first"]);
    test
}

/// The images `kiln plan --changed-since HEAD` would build (what changed, what is built
/// on it, and what those need).
fn planned(test: &mut Test) -> Vec<String> {
    let output = test.args(&["plan", "--json", "--changed-since", "HEAD"]).run();
    let plan: Value = serde_json::from_str(&output.stdout).expect("JSON");
    plan["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn only_what_changed_and_what_is_built_on_it() {
    let mut test = repository();
    assert_eq!(planned(&mut test), Vec::<String>::new());
    let output = test.args(&["plan", "--changed-since", "HEAD"]).run();
    assert!(output.stderr.contains("nothing changed since `HEAD`"), "{}", output.stderr);

    // A file that the frontend's ignore rules leave out changes nothing.
    let mut test = test.file("services/frontend/node_modules/x/i.js", "changed");
    assert_eq!(planned(&mut test), Vec::<String>::new());
    // A context file: billing, with the base it needs.
    let mut test = test.file("services/billing/requirements.txt", "stripe==10.0.0\n");
    assert_eq!(planned(&mut test), ["base", "billing"]);
    git(&test, &["commit", "-q", "-am", "billing"]);
    assert_eq!(planned(&mut test), Vec::<String>::new(), "committed: nothing changed since HEAD");
    // A new, untracked file of the worker's context.
    let mut test = test.file("services/worker/notes.txt", "new");
    assert_eq!(planned(&mut test), ["base", "jobctl", "worker"]);
    git(&test, &["add", "-A"]);
    git(&test, &["commit", "-q", "-m", "notes"]);
    // The base's context: everything built on it.
    let mut test = test.file("images/base/requirements.txt", "changed\n");
    assert_eq!(planned(&mut test), ["base", "api", "api.debug", "billing", "jobctl", "worker"]);
    git(&test, &["commit", "-q", "-am", "base"]);
    // A manifest file: the images it defines differently (`api.debug`), not those whose
    // context holds it (`api`): the manifest is left out of every context.
    let api = test.read("services/api/kiln.kdl").replace("env LOG_LEVEL=debug", "env LOG_LEVEL=trace");
    let mut test = test.file("services/api/kiln.kdl", &api);
    assert_eq!(planned(&mut test), ["base", "api.debug"]);
    git(&test, &["commit", "-q", "-am", "api"]);
    // The root manifest's variable: every image tagged with it (the version label
    // follows the first tag).
    let root = test.read("kiln.kdl").replace("var VERSION \"2.3.0\"", "var VERSION \"2.4.0\"");
    let mut test = test.file("kiln.kdl", &root);
    assert_eq!(planned(&mut test), ["base", "api", "api.debug", "billing", "frontend", "jobctl", "worker"]);
}

fn a_reference_git_does_not_know_is_an_error() {
    let mut test = repository();
    let output = test.args(&["plan", "--changed-since", "nope"]).expect(1).run();
    insta::assert_snapshot!(output.stderr(), @"error: `nope` names no commit of this repository");
    let mut outside = Test::new().copy_from_repo("tests/build-examples/monorepo");
    let output = outside.args(&["build", "--dry-run", "--changed-since", "HEAD"]).expect(1).run();
    insta::assert_snapshot!(output.stderr(), @"error: --changed-since needs a git repository, and the manifest is not in one");
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::plain("only_what_changed_and_what_is_built_on_it", only_what_changed_and_what_is_built_on_it),
    Case::plain("a_reference_git_does_not_know_is_an_error", a_reference_git_does_not_know_is_an_error),
];
