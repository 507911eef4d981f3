//! Image identity (`kiln_build::identity`) against a real engine: an image is kiln's and
//! up to date by its content tag, never by a label; every input changes the key; the
//! checkout's path does not.

use crate::Case;
use serde_json::Value;

use crate::engine::{self, BUSYBOX, Cleanup, Registry, docker, docker_build_classic, image_id, run_image};
use crate::harness::{Test, kiln};

/// Builds with JSON progress; returns the status and the `finished` events by image.
fn build(test: &mut Test, args: &[&str]) -> (i32, std::collections::HashMap<String, Value>, String) {
    let mut all = vec!["build", "--network", "none", "--progress", "json"];
    all.extend_from_slice(args);
    let output = test.args(&all).run_unchecked();
    let finished = output
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["event"] == "finished")
        .map(|e| (e["image"].as_str().unwrap_or_default().to_owned(), e))
        .collect();
    (output.status, finished, output.stderr)
}

fn listed(test: &mut Test) -> Vec<Value> {
    let output = test.args(&["images", "--all", "--json"]).run();
    serde_json::from_str::<Value>(&output.stdout).expect("JSON").as_array().expect("a list").clone()
}

/// A foreign image built with the docker CLI `FROM` a kiln image inherits all its
/// labels; kiln never takes it for its own.
fn foreign_child_is_never_adopted(builder: &str) {
    let Some(_engine) = engine::engine_test() else { return };
    let namespace = format!("kiln-it/foreign-{builder}");
    let manifest = format!(
        "registry \"{namespace}\"\nimage base {{\n    from \"{BUSYBOX}\"\n    run \"echo base > /base.txt\"\n}}\nimage app {{\n    from image=base\n    cmd \"ls\" \"/\"\n}}\n"
    );
    let mut test = Test::new().manifest(&manifest);
    let mut cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let (status, first, stderr) = build(&mut test, &["--builder", builder, "base"]);
    assert_eq!(status, 0, "{stderr}");
    let base_id = first["base"]["id"].clone();
    // The user's own image, built on kiln's base.
    let foreign = format!("{namespace}/mine:1");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {namespace}/base:latest\nRUN echo foreign > /foreign\n"),
    )
    .expect("Dockerfile");
    let output = docker_build_classic(dir.path(), &["-q", "--network", "none", "-t", &foreign, "."]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    cleanup.also(&foreign);
    let foreign_id = image_id(&foreign).expect("foreign image");
    let labels = docker(&["image", "inspect", "--format", "{{json .Config.Labels}}", &foreign]);
    assert!(labels.contains("dev.kiln.key"), "the foreign image inherits kiln's labels: {labels}");

    let (status, again, stderr) = build(&mut test, &["--builder", builder]);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!((again["base"]["up_to_date"].as_bool(), &again["base"]["id"]), (Some(true), &base_id));
    assert_eq!(image_id(&format!("{namespace}/base:latest")).as_deref(), base_id.as_str());
    // The dependent is built on kiln's base, not on the user's image.
    assert!(!run_image(&format!("{namespace}/app:latest")).contains("foreign"));
    let ids: Vec<String> =
        listed(&mut test).iter().map(|b| b["id"].as_str().unwrap_or_default().to_owned()).collect();
    assert!(!ids.contains(&foreign_id), "kiln lists the foreign image as its own: {ids:?}");
    let dry = test.args(&["clean", "--dry-run", "--json"]).run();
    assert!(!dry.stdout.contains(&foreign_id), "clean would remove the foreign image: {}", dry.stdout);
    // `base` cannot go while the user's image is built on it; the user's image stays.
    let clean = test.args(&["clean"]).expect(1).run();
    assert!(
        clean.stderr.contains("cannot remove base") && clean.stderr.contains("dependent child images"),
        "{}",
        clean.stderr
    );
    assert_eq!(image_id(&foreign), Some(foreign_id), "clean removed the foreign image");
}

fn a_foreign_child_is_never_adopted_with_buildkit() {
    foreign_child_is_never_adopted("buildkit");
}

fn a_foreign_child_is_never_adopted_with_the_classic_builder() {
    foreign_child_is_never_adopted("classic");
}

fn a_failed_classic_build_leaves_nothing_kiln_takes_for_its_own() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = format!(
        "registry \"kiln-it/failed-classic\"\nimage base {{\n    from \"{BUSYBOX}\"\n    run \"echo base > /base.txt\"\n}}\nimage broken {{\n    from image=base\n    run \"echo partial > /partial\"\n    run \"false\"\n}}\n"
    );
    let mut test = Test::new().manifest(&manifest);
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let (status, first, stderr) = build(&mut test, &["--builder", "classic"]);
    assert_eq!(status, 1, "{stderr}");
    // The failed build left intermediate images, which carry `base`'s labels.
    let (status, again, stderr) = build(&mut test, &["--builder", "classic", "base"]);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(again["base"]["id"], first["base"]["id"]);
    let listed = listed(&mut test);
    assert_eq!(listed.len(), 1, "only `base` is kiln's: {listed:#?}");
}

fn a_reimported_base_rebuilds_what_is_built_on_it() {
    let Some(_engine) = engine::engine_test() else { return };
    let base = format!("kiln-it/reimport-{}/base:1", std::process::id());
    let import = |content: &str| {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("version.txt"), content).expect("write");
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("tar -C '{}' -c version.txt | docker import - {base}", dir.path().display()))
            .status()
            .expect("docker import");
        assert!(status.success());
    };
    import("1\n");
    let manifest = format!(
        "registry \"kiln-it/reimported\"\nimage app {{\n    from \"{base}\"\n}}\nimage top {{\n    from image=app\n}}\n"
    );
    let mut test = Test::new().manifest(&manifest);
    let mut cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    cleanup.also(&base);
    let (status, first, stderr) = build(&mut test, &[]);
    assert_eq!(status, 0, "{stderr}");
    let (_, same, _) = build(&mut test, &[]);
    assert_eq!(same["top"]["up_to_date"], true);
    // A security update of the base, imported under the same name (the first one, left
    // untagged, goes at the end).
    cleanup.also(&image_id(&base).expect("the first base"));
    import("2\n");
    let (status, after, stderr) = build(&mut test, &[]);
    assert_eq!(status, 0, "{stderr}");
    for image in ["app", "top"] {
        assert_eq!(after[image]["up_to_date"], false, "{image} was not rebuilt on the new base");
        assert_ne!(after[image]["id"], first[image]["id"]);
    }
}

fn a_label_is_an_input_and_is_applied() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = format!(
        "registry \"kiln-it/labelled\"\nimage app {{\n    from \"{BUSYBOX}\"\n    cmd \"true\"\n}}\n"
    );
    let mut test = Test::new().manifest(&manifest);
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let (_, plain, _) = build(&mut test, &[]);
    let (status, labelled, stderr) = build(&mut test, &["--label", "team=shop"]);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(labelled["app"]["up_to_date"], false);
    assert_ne!(labelled["app"]["key"], plain["app"]["key"]);
    let label = docker(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"team\"}}",
        "kiln-it/labelled/app:latest",
    ]);
    assert_eq!(label.trim(), "shop");
    let (_, again, _) = build(&mut test, &["--label", "team=shop"]);
    assert_eq!(
        (again["app"]["up_to_date"].as_bool(), &again["app"]["id"]),
        (Some(true), &labelled["app"]["id"])
    );
    // Back to no label: the first build is still there, and is up to date again.
    let (_, back, _) = build(&mut test, &[]);
    assert_eq!((back["app"]["up_to_date"].as_bool(), &back["app"]["id"]), (Some(true), &plain["app"]["id"]));
    assert_eq!(image_id("kiln-it/labelled/app:latest").as_deref(), plain["app"]["id"].as_str());
}

fn a_copy_of_the_project_elsewhere_is_up_to_date() {
    let Some(_engine) = engine::engine_test() else { return };
    let mut test = Test::new().copy_from_repo("tests/build-examples/monorepo");
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let (status, first, stderr) = build(&mut test, &[]);
    assert_eq!(status, 0, "{stderr}");
    let elsewhere = Test::new().copy_from_repo("tests/build-examples/monorepo");
    let output =
        kiln(elsewhere.path(), &["build", "--network", "none", "--progress", "json"].map(str::to_owned), &[]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    let finished: Vec<Value> = output
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "finished")
        .collect();
    assert_eq!(finished.len(), first.len());
    for event in &finished {
        let image = event["image"].as_str().expect("image");
        assert_eq!(event["up_to_date"], true, "{image} was rebuilt in a copy of the project");
        assert_eq!(event["id"], first[image]["id"], "{image} moved its tags");
    }
}

fn no_cache_builds_every_step_again() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = format!(
        "registry \"kiln-it/nocache\"\nimage app {{\n    from \"{BUSYBOX}\"\n    run \"echo built > /built.txt\"\n}}\n"
    );
    let mut test = Test::new().manifest(&manifest);
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    for builder in ["buildkit", "classic"] {
        let (status, first, stderr) = build(&mut test, &["--builder", builder]);
        assert_eq!(status, 0, "{stderr}");
        let output = test
            .args(&["build", "--network", "none", "--progress", "json", "--builder", builder, "--no-cache"])
            .run_unchecked();
        assert_eq!(output.status, 0, "{}", output.stderr);
        let events: Vec<Value> = output.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let run_step = events
            .iter()
            .find(|e| e["event"] == "step" && e["step"].as_str().is_some_and(|s| s.contains("echo built")))
            .unwrap_or_else(|| panic!("{builder}: no RUN step in {events:#?}"));
        assert_eq!(run_step["cached"], false, "{builder}: --no-cache used the cache");
        let finished = events.iter().find(|e| e["event"] == "finished").expect("finished");
        assert_eq!(finished["up_to_date"], false);
        assert_eq!(finished["key"], first["app"]["key"], "{builder}: the key does not depend on the cache");
        assert_ne!(finished["id"], first["app"]["id"]);
        // The build it replaced had no other name: it is gone.
        assert!(
            image_id(first["app"]["id"].as_str().expect("id")).is_none(),
            "{builder}: the replaced build was left behind"
        );
    }
}

/// A build's `finished` events, by image (any engine).
fn finished_events(stdout: &str) -> std::collections::HashMap<String, Value> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["event"] == "finished")
        .map(|e| (e["image"].as_str().unwrap_or_default().to_owned(), e))
        .collect()
}

fn a_second_engine_sharing_the_registry_builds_nothing() {
    let Some(_engine) = engine::engine_test() else { return };
    let registry = Registry::start();
    let second = engine::SecondEngine::start();
    let manifest = format!(
        "registry \"{}/shared\"\nimage base {{\n    from \"{BUSYBOX}\"\n    run \"echo base > /base.txt\"\n}}\nimage app {{\n    from image=base\n    run \"echo expensive > /expensive.txt\"\n    copy \"a.txt\" \"/a.txt\"\n    cmd \"cat\" \"/base.txt\" \"/a.txt\"\n}}\n",
        registry.address
    );
    let mut test = Test::new().manifest(&manifest).file("a.txt", "one\n");
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let build_on = |test: &mut Test, host: Option<&str>, args: &[&str]| {
        let mut all = vec!["build", "--network", "none", "--progress", "json"];
        if let Some(host) = host {
            all.extend(["--host", host]);
        }
        all.extend_from_slice(args);
        let output = test.args(&all).run_unchecked();
        assert_eq!(output.status, 0, "{}", output.stderr);
        finished_events(&output.stdout)
    };
    let first = build_on(&mut test, None, &["--push", "--cache-to", "inline"]);
    assert!(first.values().all(|e| e["origin"] == "built"), "{first:#?}");

    // The second engine has only the base image: everything is in the registry already.
    let second_run = build_on(&mut test, Some(&second.host), &["--push"]);
    for (image, event) in &second_run {
        assert_eq!(event["origin"], "registry", "{image} on the second engine: {event:#}");
        assert_eq!(event["key"], first[image]["key"]);
        assert_eq!(
            event["id"], first[image]["id"],
            "{image}: the registry's image is the one the first engine built"
        );
    }
    let (_, listing) = second.docker_try(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!listing.contains("/shared/"), "the second engine pulled something: {listing}");

    // Without --push, the registry's images are pulled rather than built.
    let pulled = build_on(&mut test, Some(&second.host), &[]);
    assert!(pulled.values().all(|e| e["origin"] == "pulled"), "{pulled:#?}");
    let (ok, out) = second.docker_try(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pull",
        "never",
        &format!("{}/shared/app:latest", registry.address),
    ]);
    assert!(ok && out == "base\none\n", "{out}");
}

fn a_cold_engine_reuses_the_registry_cache_of_a_changed_image() {
    let Some(_engine) = engine::engine_test() else { return };
    let registry = Registry::start();
    let second = engine::SecondEngine::start();
    let nonce =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let manifest = format!(
        "registry \"{}/cached\"\nimage app {{\n    from \"{BUSYBOX}\"\n    run \"echo {nonce} > /expensive.txt\"\n    copy \"a.txt\" \"/a.txt\"\n}}\n",
        registry.address
    );
    let mut test = Test::new().manifest(&manifest).file("a.txt", "one\n");
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    test.args(&["build", "--network", "none", "--progress", "plain", "--push", "--cache-to", "inline"]).run();
    // One file changes: the second engine, which has never built this, rebuilds only
    // what comes after it.
    let mut test = test.file("a.txt", "two\n");
    let output = test
        .args(&[
            "build",
            "--network",
            "none",
            "--progress",
            "json",
            "--host",
            &second.host,
            "--cache-from",
            "latest",
        ])
        .run();
    let steps: Vec<Value> = output
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "step")
        .collect();
    let expensive = steps
        .iter()
        .find(|e| e["step"].as_str().is_some_and(|s| s.contains(&nonce.to_string())))
        .unwrap_or_else(|| panic!("no RUN step in {steps:#?}"));
    assert_eq!(expensive["cached"], true, "the registry's cache was not used: {steps:#?}");
}

/// The messages of `kiln explain --json`'s changes.
fn change_messages(explained: &Value) -> Vec<&str> {
    explained["changes"].as_array().expect("changes").iter().filter_map(|c| c["message"].as_str()).collect()
}

fn explain_says_why_an_image_is_built_again() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = format!(
        "registry \"kiln-it/explaining\"\nimage base {{\n    from \"{BUSYBOX}\"\n    run \"echo base > /base.txt\"\n}}\nimage app {{\n    from image=base\n    copy \"src\" \"/src\"\n}}\n"
    );
    let mut test = Test::new().manifest(&manifest).file("src/a.txt", "a\n").file("src/b.txt", "b\n");
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let explain = |test: &mut Test, args: &[&str]| -> Value {
        let mut all = vec!["explain", "app", "--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&test.args(&all).run().stdout).expect("JSON")
    };
    assert_eq!(explain(&mut test, &[])["status"], "never-built");
    let (status, built, stderr) = build(&mut test, &[]);
    assert_eq!(status, 0, "{stderr}");
    let fresh = explain(&mut test, &[]);
    assert_eq!((fresh["status"].as_str(), &fresh["key"]), (Some("up-to-date"), &built["app"]["key"]));
    // Three changes: a file edited, a file added, and a label on every image.
    let mut test = test.file("src/a.txt", "A\n").file("src/c.txt", "c\n");
    let changed = explain(&mut test, &["--label", "team=shop"]);
    assert_eq!(changed["status"], "changed");
    assert_eq!(changed["compared_with"]["id"], built["app"]["id"]);
    let messages = change_messages(&changed);
    assert_eq!(
        messages,
        [
            "dependency `base` changed (its own inputs did)",
            "label `team` added",
            "context file `src/a.txt` changed",
            "context file `src/c.txt` added",
        ]
    );
    let text = test.args(&["explain", "app", "--label", "team=shop"]).run().stdout;
    assert!(
        text.starts_with("app will be built: its inputs changed since its last build\ncompared with "),
        "{text}"
    );
    assert!(text.contains("\n  - context file `src/c.txt` added\n"), "{text}");
    // Where the last build was made elsewhere (no record of its files on this machine),
    // the image's label still names the folder that changed.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let mut test = test.env("XDG_STATE_HOME", &elsewhere.path().to_string_lossy());
    let changed = explain(&mut test, &[]);
    let messages = change_messages(&changed);
    // `base`'s context is the project too.
    assert_eq!(
        messages[..2],
        [
            "dependency `base` changed (its own inputs did)",
            "context folder `src/` changed (4 entries, was 3)"
        ],
        "{messages:?}"
    );
    assert!(
        messages[2].ends_with("this machine has no record of that build's files, so only folders are named"),
        "{messages:?}"
    );
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::engine(
        "a_foreign_child_is_never_adopted_with_buildkit",
        a_foreign_child_is_never_adopted_with_buildkit,
    ),
    Case::engine(
        "a_foreign_child_is_never_adopted_with_the_classic_builder",
        a_foreign_child_is_never_adopted_with_the_classic_builder,
    ),
    Case::engine(
        "a_failed_classic_build_leaves_nothing_kiln_takes_for_its_own",
        a_failed_classic_build_leaves_nothing_kiln_takes_for_its_own,
    ),
    Case::engine(
        "a_reimported_base_rebuilds_what_is_built_on_it",
        a_reimported_base_rebuilds_what_is_built_on_it,
    ),
    Case::engine("a_label_is_an_input_and_is_applied", a_label_is_an_input_and_is_applied),
    Case::engine(
        "a_copy_of_the_project_elsewhere_is_up_to_date",
        a_copy_of_the_project_elsewhere_is_up_to_date,
    ),
    Case::engine("no_cache_builds_every_step_again", no_cache_builds_every_step_again),
    Case::engine(
        "a_second_engine_sharing_the_registry_builds_nothing",
        a_second_engine_sharing_the_registry_builds_nothing,
    ),
    Case::engine(
        "a_cold_engine_reuses_the_registry_cache_of_a_changed_image",
        a_cold_engine_reuses_the_registry_cache_of_a_changed_image,
    ),
    Case::engine("explain_says_why_an_image_is_built_again", explain_says_why_an_image_is_built_again),
];
