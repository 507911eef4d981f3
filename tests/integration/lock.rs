//! `kiln.lock` against a real engine and registry: what `kiln lock` records, builds that
//! stay on the locked base until it is re-locked, `--locked`, `--check` and `pin-bases`.

use crate::Case;
use crate::engine::{self, BUSYBOX, Cleanup, Registry, docker, docker_build_classic, image_id};
use crate::harness::Test;

fn build(test: &mut Test, args: &[&str]) -> String {
    let mut all = vec!["build", "--network", "none", "--progress", "plain"];
    all.extend_from_slice(args);
    test.args(&all).run().stderr
}

fn builds_stay_on_the_locked_base_until_it_is_locked_again() {
    let Some(_engine) = engine::engine_test() else { return };
    let registry = Registry::start();
    let base = format!("{}/bases/busybox:1", registry.address);
    docker(&["tag", BUSYBOX, &base]);
    docker(&["push", &base]);
    let manifest = format!(
        "registry \"kiln-it/locking\"\nimage app {{\n    from \"{base}\"\n    cmd \"sh\" \"-c\" \"cat /version.txt 2>/dev/null || echo 1\"\n}}\nimage local {{\n    from \"{BUSYBOX}\"\n}}\n"
    );
    let mut test = Test::new().manifest(&manifest);
    let mut cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    cleanup.also(&base);

    let output = test.args(&["lock", "--json"]).run_unchecked();
    let entries: serde_json::Value = serde_json::from_str(&output.stdout).expect("JSON");
    let entry =
        |image: &str| entries.as_array().expect("a list").iter().find(|e| e["image"] == image).cloned();
    let locked = entry(&base).expect("the registry base is locked");
    assert_eq!((locked["kind"].as_str(), locked["change"].as_str()), (Some("digest"), Some("added")));
    let first_digest = locked["value"].as_str().expect("digest").to_owned();
    let local = entry(BUSYBOX).expect("the local base is locked");
    assert_eq!(local["kind"], "id", "no registry has it: its image ID");
    assert_eq!(local["value"].as_str(), image_id(BUSYBOX).as_deref());
    assert!(test.read("kiln.lock").contains(&format!("image \"{base}\" digest=\"{first_digest}\"")));
    test.args(&["lock", "--check"]).run();
    build(&mut test, &["--locked"]);
    assert_eq!(engine::run_image("kiln-it/locking/app:latest"), "1\n");

    // A new version of the base, under the same tag, here and in the registry.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("Dockerfile"), format!("FROM {BUSYBOX}\nRUN echo 2 > /version.txt\n"))
        .expect("Dockerfile");
    let output = docker_build_classic(dir.path(), &["-q", "--network", "none", "-t", &base, "."]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    docker(&["push", &base]);
    cleanup.also(&format!("{}/bases/busybox@{first_digest}", registry.address));
    // The lock holds: nothing is rebuilt, and the app still runs on the locked base.
    let stderr = build(&mut test, &[]);
    assert!(stderr.contains("[app  ] up to date"), "{stderr}");
    assert_eq!(engine::run_image("kiln-it/locking/app:latest"), "1\n");

    // Locked again: the app is rebuilt on the new base.
    let output = test.args(&["lock", "--update", &base]).run();
    assert!(output.stdout.starts_with(&format!("updated {base} (digest sha256:")), "{}", output.stdout);
    assert!(!test.read("kiln.lock").contains(&first_digest));
    let stderr = build(&mut test, &[]);
    assert!(stderr.contains("[app  ] built"), "{stderr}");
    assert_eq!(engine::run_image("kiln-it/locking/app:latest"), "2\n");

    // `pin-bases` writes the locked digest into the committed Dockerfile.
    let test = test.manifest(&format!("pin-bases #true\n{manifest}"));
    let mut test = test;
    let output = test.args(&["emit"]).run();
    assert!(output.stderr.contains("warning[unpinnable-base]"), "{}", output.stderr);
    let dockerfile = test.read("dockerfiles/app.Dockerfile");
    let digest = test
        .read("kiln.lock")
        .lines()
        .find(|l| l.contains(&base))
        .and_then(|l| l.split('"').nth(3))
        .expect("locked")
        .to_owned();
    assert!(dockerfile.contains(&format!("FROM {base}@{digest}\n")), "{dockerfile}");
}

fn a_lock_that_does_not_match_the_manifest_is_stale() {
    let mut test =
        Test::new().manifest("allow runs-as-root\nimage app {\n    from \"kiln-test/busybox:2\"\n}\n");
    // No lock at all.
    let output = test.args(&["build", "--locked", "--dry-run"]).expect(1).run();
    insta::assert_snapshot!(output.stderr(), @r"
    error: --locked, but there is no `kiln.lock`

    hint: `kiln lock` writes it
    ");
    // A lock of another base.
    let sha = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    let mut test =
        test.file("kiln.lock", &format!("version 1\nimage \"kiln-test/busybox:1\" id=\"{sha}\"\n"));
    let output = test.args(&["lock", "--check"]).expect(1).run();
    insta::assert_snapshot!(output.stderr(), @r#"
      ⚠ warning[stale-lock]: `kiln-test/busybox:2` is not in `kiln.lock`
       ╭─[kiln.kdl:3:10]
     2 │ image app {
     3 │     from "kiln-test/busybox:2"
       ·          ──────────┬──────────
       ·                    ╰── not locked
     4 │ }
       ╰────
      help: run `kiln lock` to add it
      ⚠ warning[stale-lock]: `kiln.lock` locks `kiln-test/busybox:1`, which no
      │ image uses
       ╭─[kiln.lock:2:7]
     1 │ version 1
     2 │ image "kiln-test/busybox:1" id="sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
       ·       ──────────┬──────────
       ·                 ╰── unused
       ╰────
      help: run `kiln lock` to drop it
    error: `kiln.lock` is not up to date with the manifest

    hint: `kiln lock` updates it
    "#);
    let check_warnings = output.stderr().rsplit_once("error:").map(|(w, _)| w.to_owned());
    let output = test.args(&["build", "--locked", "--dry-run"]).expect(1).run();
    let stderr = output.stderr();
    let (warnings, error) = stderr.rsplit_once("error:").expect("an error");
    assert_eq!(Some(warnings.to_owned()), check_warnings, "`build --locked` warns as `lock --check` does");
    insta::assert_snapshot!(error, @r#"
     --locked, but `kiln.lock` does not match the manifest

    hint: `kiln lock` updates it
    "#);
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::engine(
        "builds_stay_on_the_locked_base_until_it_is_locked_again",
        builds_stay_on_the_locked_base_until_it_is_locked_again,
    ),
    Case::plain(
        "a_lock_that_does_not_match_the_manifest_is_stale",
        a_lock_that_does_not_match_the_manifest_is_stale,
    ),
];
