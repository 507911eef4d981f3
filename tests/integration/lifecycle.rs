//! The image commands (pull, images, tag, push, rmi, clean, prune, history, inspect)
//! against a real engine and a real registry on loopback.

use std::fmt::Write as _;

use crate::Case;
use serde_json::Value;

use crate::engine::{self, BUSYBOX, Cleanup, Registry, docker, docker_try, image_id};
use crate::harness::Test;

fn json(test: &mut Test, args: &[&str]) -> Value {
    let output = test.args(args).run_unchecked();
    assert!(output.status == 0, "kiln {args:?} failed:\n{}{}", output.stderr, output.stdout);
    serde_json::from_str(&output.stdout)
        .unwrap_or_else(|e| panic!("kiln {args:?}: not JSON ({e}): {}", output.stdout))
}

fn build(test: &mut Test, args: &[&str]) {
    let mut all = vec!["build", "--network", "none", "--progress", "plain", "-q"];
    all.extend_from_slice(args);
    let output = test.args(&all).run_unchecked();
    assert_eq!(output.status, 0, "{}", output.stderr);
}

/// A manifest with a base and an app, pushed to `registry`.
fn project(registry: &str, namespace: &str) -> Test {
    let manifest = format!(
        r#"
registry "{registry}/{namespace}"
image base {{
    tags latest "1.0"
    from "kiln-test/busybox:1"
    run "echo base > /base.txt"
}}
image app {{
    from image=base
    workdir "/app"
    copy "app.sh" "./"
    run "chmod +x app.sh"
    cmd "./app.sh"
}}
"#
    );
    Test::new().manifest(&manifest).file("app.sh", "#!/bin/sh\necho app running\n")
}

fn pull_fetches_bases_from_a_registry_by_policy() {
    let Some(_engine) = engine::engine_test() else { return };
    let registry = Registry::start();
    let base = format!("{}/bases/busybox:1", registry.address);
    docker(&["tag", BUSYBOX, &base]);
    docker(&["push", &base]);
    docker(&["rmi", &base]);
    let manifest = format!("image app {{\n    from \"{base}\"\n    cmd \"true\"\n}}\n");
    let mut test = Test::new().manifest(&manifest);
    let mut cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    cleanup.also(&base);
    // `never` refuses to fetch what is missing.
    let output = test.args(&["pull", "--policy", "never"]).run_unchecked();
    assert_eq!(output.status, 1);
    assert!(
        output.stderr.contains(&format!("cannot pull `{base}`: not here, and its pull policy is `never`")),
        "{}",
        output.stderr
    );
    let pulled = json(&mut test, &["pull", "--json"]);
    assert_eq!(pulled[0]["status"], "pulled", "{pulled:#}");
    assert!(image_id(&base).is_some());
    // `missing` (the default) does not fetch it again.
    let again = json(&mut test, &["pull", "--json"]);
    assert_eq!(again[0]["status"], "present");
}

fn digest_pinned_bases_pull_and_build() {
    let Some(_engine) = engine::engine_test() else { return };
    let registry = Registry::start();
    let base = format!("{}/bases/busybox:1", registry.address);
    docker(&["tag", BUSYBOX, &base]);
    docker(&["push", &base]);
    let pinned =
        docker(&["image", "inspect", "--format", "{{index .RepoDigests 0}}", &base]).trim().to_owned();
    assert!(pinned.contains("@sha256:"), "{pinned}");
    docker(&["rmi", &base]);
    let manifest = format!(
        "registry \"{}/digests\"\nimage app {{\n    from \"{pinned}\"\n    cmd \"echo\" \"on a pinned base\"\n}}\n",
        registry.address
    );
    let mut test = Test::new().manifest(&manifest);
    let mut cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    cleanup.also(&pinned);
    let pulled = json(&mut test, &["pull", "--json"]);
    assert_eq!(pulled[0]["reference"], pinned.as_str(), "{pulled:#}");
    assert_eq!(pulled[0]["status"], "pulled", "{pulled:#}");
    assert!(image_id(&pinned).is_some());
    build(&mut test, &[]);
    let app = format!("{}/digests/app:latest", registry.address);
    assert_eq!(engine::run_image(&app), "on a pinned base\n");
    // The image built on it goes to the same registry, and comes back.
    test.args(&["push"]).run();
    let pushed =
        docker(&["image", "inspect", "--format", "{{index .RepoDigests 0}}", &app]).trim().to_owned();
    docker(&["rmi", &app]);
    docker(&["pull", &pushed]);
    cleanup.also(&pushed);
}

fn push_round_trip_keeps_the_image_id() {
    let Some(_engine) = engine::engine_test() else { return };
    let registry = Registry::start();
    let mut test = project(&registry.address, "roundtrip");
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    build(&mut test, &[]);
    let app = format!("{}/roundtrip/app:latest", registry.address);
    let built = image_id(&app).expect("app built");
    let pushed = json(&mut test, &["push", "--json"]);
    assert_eq!(pushed.as_array().map(Vec::len), Some(3), "{pushed:#}");
    assert!(pushed.as_array().expect("list").iter().all(|p| p["status"] == "pushed"), "{pushed:#}");
    // Remove locally, pull back: the same image.
    test.args(&["clean"]).run();
    assert!(image_id(&app).is_none());
    let pulled = json(&mut test, &["pull", "--built", "--json"]);
    assert!(pulled.as_array().expect("list").iter().all(|p| p["status"] == "pulled"), "{pulled:#}");
    assert_eq!(image_id(&app).as_deref(), Some(built.as_str()));
    assert_eq!(engine::run_image(&app), "app running\n");
}

fn push_refuses_images_that_are_not_ready() {
    let Some(_engine) = engine::engine_test() else { return };
    let registry = Registry::start();
    let mut test = project(&registry.address, "notready");
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    build(&mut test, &["base"]);
    // `app` is not built: with --all-or-nothing nothing goes.
    let output = test.args(&["push", "--all-or-nothing"]).run_unchecked();
    assert_eq!(output.status, 1);
    assert!(output.stderr.contains("app: `") && output.stderr.contains("is not built"), "{}", output.stderr);
    assert!(!registry_has(&registry, "notready/base"), "something was pushed");
    // Without it, the ready image goes and the other is reported.
    let output = test.args(&["push"]).run_unchecked();
    assert_eq!(output.status, 1);
    assert!(registry_has(&registry, "notready/base"));
    assert!(!registry_has(&registry, "notready/app"));
}

/// Whether the registry holds a repository (its catalog, read over loopback HTTP).
fn registry_has(registry: &Registry, repository: &str) -> bool {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(&registry.address).expect("connect to the registry");
    write!(stream, "GET /v2/_catalog HTTP/1.0\r\nHost: {}\r\n\r\n", registry.address).expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response.contains(&format!("\"{repository}\""))
}

fn failed_pushes_and_pulls_are_clear_and_change_nothing() {
    let Some(_engine) = engine::engine_test() else { return };
    // A registry address where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let nowhere = format!("127.0.0.1:{port}");
    let mut test = project(&nowhere, "failing");
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    build(&mut test, &[]);
    let app = format!("{nowhere}/failing/app:latest");
    let before = image_id(&app);
    let output = test.args(&["push", "app"]).run_unchecked();
    assert_eq!(output.status, 1);
    assert!(output.stderr.contains(&format!("cannot push `{app}`")), "{}", output.stderr);
    assert!(output.stderr.contains("connection refused"), "{}", output.stderr);
    assert_eq!(image_id(&app), before, "a failed push changed the local image");

    let registry = Registry::start();
    let missing = format!("{}/nothing/here:1", registry.address);
    let manifest = format!("image app {{\n    from \"{missing}\"\n}}\n");
    let mut test = Test::new().manifest(&manifest);
    let output = test.args(&["pull"]).run_unchecked();
    assert_eq!(output.status, 1);
    assert!(output.stderr.contains(&format!("cannot pull `{missing}`")), "{}", output.stderr);
    assert!(
        output.stderr.contains("manifest unknown") || output.stderr.contains("not found"),
        "{}",
        output.stderr
    );
}

fn tag_promotes_and_retags_for_a_registry() {
    let Some(_engine) = engine::engine_test() else { return };
    let mut test = project("kiln-it", "tagging");
    let mut cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    build(&mut test, &[]);
    let tagged = json(&mut test, &["tag", "latest", "v1.0", "--json"]);
    assert_eq!(tagged.as_array().map(Vec::len), Some(2));
    assert_eq!(image_id("kiln-it/tagging/app:v1.0"), image_id("kiln-it/tagging/app:latest"));
    let output =
        test.args(&["tag", "latest", "v1.0", "app", "--registry", "127.0.0.1:5999/team"]).run_unchecked();
    assert_eq!(output.stdout, "tagged kiln-it/tagging/app:latest as 127.0.0.1:5999/team/app:v1.0\n");
    cleanup.also("127.0.0.1:5999/team/app:v1.0");
    assert_eq!(image_id("127.0.0.1:5999/team/app:v1.0"), image_id("kiln-it/tagging/app:latest"));
    // A tag that does not exist is reported, and is a failure.
    let output = test.args(&["tag", "nope", "v2"]).run_unchecked();
    assert_eq!(output.status, 1);
    assert!(output.stderr.contains("no `kiln-it/tagging/base:nope` here"), "{}", output.stderr);
}

fn tag_works_on_manifests_with_variants() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = format!(
        "registry \"kiln-it/variants\"\nallow runs-as-root\nimage api {{\n    from \"{BUSYBOX}\"\n    cmd \"echo\" \"api\"\n    variant debug {{\n        env LOG_LEVEL=debug\n    }}\n}}\n"
    );
    let mut test = Test::new().manifest(&manifest);
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    build(&mut test, &["api", "api.debug"]);
    // `latest` is `api`'s: `api.debug` is skipped, said so, and the command succeeds.
    let output = test.args(&["tag", "latest", "v1.0"]).run();
    assert_eq!(output.stdout, "tagged kiln-it/variants/api:latest as kiln-it/variants/api:v1.0\n");
    insta::assert_snapshot!(output.stderr(), @"api.debug: skipped: `kiln-it/variants/api:latest` is `api`'s build");
    assert_eq!(image_id("kiln-it/variants/api:v1.0"), image_id("kiln-it/variants/api:latest"));
    // The variant's own tag is promoted by naming it.
    let output = test.args(&["tag", "debug", "v1.0-debug", "api.debug"]).run();
    assert_eq!(output.stdout, "tagged kiln-it/variants/api:debug as kiln-it/variants/api:v1.0-debug\n");
    assert_eq!(image_id("kiln-it/variants/api:v1.0-debug"), image_id("kiln-it/variants/api:debug"));
    // Skipping is data too.
    let tagged = json(&mut test, &["tag", "latest", "v1.1", "--json"]);
    assert_eq!(tagged[1]["skipped"], "`kiln-it/variants/api:latest` is `api`'s build", "{tagged:#}");
}

fn images_lists_builds_with_sizes() {
    let Some(_engine) = engine::engine_test() else { return };
    let mut test = project("kiln-it", "listing");
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    build(&mut test, &[]);
    build(&mut test, &["--label", "rev=2", "app"]);
    let current = json(&mut test, &["images", "--json"]);
    let names: Vec<&str> =
        current.as_array().expect("list").iter().map(|i| i["image"].as_str().expect("name")).collect();
    assert_eq!(names, ["base", "app"]);
    let app = &current[1];
    assert_eq!(app["current"], true);
    assert!(app["own_size"].as_u64().expect("own") > 0);
    assert_eq!(
        app["own_size"].as_u64().expect("own") + app["base_size"].as_u64().expect("base"),
        app["size"].as_u64().expect("size")
    );
    let all = json(&mut test, &["images", "--all", "--json"]);
    // `--label` changed `base`'s key too (it is selected as a dependency).
    assert_eq!(all.as_array().map(Vec::len), Some(4), "the superseded builds too: {all:#}");
    assert_eq!(all[1]["current"], false);
    let ids = test.args(&["images", "-q", "app"]).run().stdout;
    assert_eq!(ids.lines().count(), 1);
    assert!(image_id("kiln-it/listing/app:latest").is_some_and(|id| id.contains(ids.trim())));
}

fn prune_keeps_the_newest_and_never_touches_unlabelled_images() {
    let Some(_engine) = engine::engine_test() else { return };
    let mut test = project("kiln-it", "pruning");
    let mut cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    build(&mut test, &[]);
    build(&mut test, &["--label", "rev=2", "app"]);
    build(&mut test, &["--label", "rev=3", "app"]);
    // Decoys: an unlabelled tagged image and an unlabelled dangling one.
    docker(&["tag", BUSYBOX, "kiln-it/pruning/decoy:1"]);
    cleanup.also("kiln-it/pruning/decoy:1");
    let dangling = decoy_dangling_image();
    let all = |test: &mut Test| json(test, &["images", "--all", "--json"]).as_array().expect("list").len();
    // Three builds each of `base` and `app` (a label is an input of every selected image,
    // `app`'s dependency included).
    assert_eq!(all(&mut test), 6);
    let dry = json(&mut test, &["prune", "--keep", "2", "--dry-run", "--json"]);
    let builds = dry.as_array().expect("a list").iter().filter(|r| r["whole"] == true).count();
    assert_eq!(builds, 2, "the oldest build of each: {dry:#}");
    assert_eq!(all(&mut test), 6, "--dry-run removed something");
    json(&mut test, &["prune", "--keep", "2", "--json"]);
    assert_eq!(all(&mut test), 4);
    json(&mut test, &["prune", "--json"]);
    assert_eq!(all(&mut test), 2, "the current base and app");
    assert!(image_id("kiln-it/pruning/app:latest").is_some());
    assert!(image_id("kiln-it/pruning/decoy:1").is_some(), "prune removed an unlabelled image");
    assert!(image_id(&dangling).is_some(), "prune removed an unlabelled dangling image");
    let _ = docker_try(&["rmi", "-f", &dangling]);
}

/// Builds a small image with no label and no tag.
fn decoy_dangling_image() -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {BUSYBOX}\nRUN echo decoy-{} > /d\n", std::process::id()),
    )
    .expect("Dockerfile");
    let output = engine::docker_build_classic(dir.path(), &["-q", "--network", "none", "."]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn rmi_and_clean_remove_only_this_manifests_images() {
    let Some(_engine) = engine::engine_test() else { return };
    let mut test = project("kiln-it", "removing");
    let mut cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    build(&mut test, &[]);
    docker(&["tag", BUSYBOX, "kiln-it/removing/app:decoy"]);
    cleanup.also("kiln-it/removing/app:decoy");
    let output = test.args(&["rmi", "app:decoy"]).run_unchecked();
    assert_eq!(output.status, 1);
    assert!(
        output.stderr.contains("was not built from this manifest; kiln leaves it alone"),
        "{}",
        output.stderr
    );
    assert!(image_id("kiln-it/removing/app:decoy").is_some());
    // A tag of ours: only that tag goes when the image has others.
    test.args(&["rmi", "base:1.0"]).run();
    assert!(image_id("kiln-it/removing/base:1.0").is_none());
    assert!(image_id("kiln-it/removing/base:latest").is_some());
    let dry = test.args(&["clean", "--dry-run"]).run();
    assert!(
        dry.stdout.contains("would remove app") && dry.stdout.contains("would remove base"),
        "{}",
        dry.stdout
    );
    assert!(image_id("kiln-it/removing/app:latest").is_some());
    test.args(&["rmi", "app"]).run();
    assert!(image_id("kiln-it/removing/app:latest").is_none());
    test.args(&["clean"]).run();
    assert!(image_id("kiln-it/removing/base:latest").is_none());
    assert!(image_id("kiln-it/removing/app:decoy").is_some(), "clean removed an image it did not build");
    let output = test.args(&["rmi", "ap"]).run_unchecked();
    assert_eq!(output.status, 2);
    assert!(output.stderr.contains("did you mean `app`?"), "{}", output.stderr);
}

fn history_maps_layers_to_manifest_lines() {
    let Some(_engine) = engine::engine_test() else { return };
    for builder in ["buildkit", "classic"] {
        let mut test = project("kiln-it", &format!("history-{builder}"));
        let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
        build(&mut test, &["--builder", builder]);
        let layers = json(&mut test, &["history", "app", "--json"]);
        let layers = layers.as_array().expect("layers");
        let origin = |needle: &str| -> Value {
            layers.iter().find(|l| l["created_by"].as_str().is_some_and(|c| c.contains(needle))).map_or_else(
                || panic!("{builder}: no layer with `{needle}` in {layers:#?}"),
                |l| l["origin"].clone(),
            )
        };
        let manifest = |location: &str, image: &str| serde_json::json!({"kind": "manifest", "image": image, "location": location});
        assert_eq!(origin("chmod +x app.sh"), manifest("kiln.kdl:12:5", "app"), "{builder}");
        assert_eq!(origin("COPY"), manifest("kiln.kdl:11:5", "app"), "{builder}");
        assert_eq!(origin("WORKDIR"), manifest("kiln.kdl:10:5", "app"), "{builder}");
        assert_eq!(origin("echo base > /base.txt"), manifest("kiln.kdl:6:5", "base"), "{builder}");
        assert_eq!(
            layers.last().expect("a layer")["origin"]["kind"],
            "base",
            "{builder}: the bottom layer is the base image"
        );
        assert!(layers.iter().any(|l| l["largest"] == true));
        let text = test.args(&["history", "app"]).run().stdout;
        assert!(text.contains("kiln.kdl:12:5 (app)") && text.contains("◀"), "{text}");
    }
}

fn inspect_shows_kilns_labels() {
    let Some(_engine) = engine::engine_test() else { return };
    let mut test = project("kiln-it", "inspecting");
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    build(&mut test, &[]);
    let info = json(&mut test, &["inspect", "base", "--json"]);
    assert_eq!(info["image"], "base");
    assert_eq!(info["from_this_manifest"], true);
    assert!(info["key"].as_str().is_some_and(|d| d.starts_with("blake3:")));
    assert_eq!(info["platform"], "linux/amd64");
    // Its two tags and its content tag.
    let tags = info["tags"].as_array().expect("tags");
    assert_eq!(tags.len(), 3, "{tags:?}");
    assert!(
        tags.iter().any(|t| t.as_str().is_some_and(|t| t.starts_with("kiln-it/inspecting/base:kiln-"))),
        "{tags:?}"
    );
    assert_eq!(info["labels"]["org.opencontainers.image.version"], "1.0");
    let app = json(&mut test, &["inspect", "app:latest", "--json"]);
    // A base's version label is not inherited as the image's own.
    assert_eq!(app["labels"]["org.opencontainers.image.version"], "");
    let output = test.args(&["inspect", "base:nope"]).run_unchecked();
    assert_eq!(output.status, 1);
    assert!(output.stderr.contains("there is no `kiln-it/inspecting/base:nope` here"), "{}", output.stderr);
}

/// This module's tests, for the harness (`main.rs`).
/// The classic builder builds each image on the previous one's layers: a chain of four
/// goes in one `kiln clean`, children before parents, intermediates and all.
fn clean_removes_a_classic_chain_in_one_run() {
    let Some(_engine) = engine::engine_test() else { return };
    let mut manifest = format!(
        "registry \"kiln-it/chain\"\nimage i0 {{\n    from \"{BUSYBOX}\"\n    run \"echo 0 > /0\"\n}}\n"
    );
    for i in 1..4 {
        let _ =
            write!(manifest, "image i{i} {{\n    from image=i{}\n    run \"echo {i} > /{i}\"\n}}\n", i - 1);
    }
    let mut test = Test::new().manifest(&manifest);
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    build(&mut test, &["--builder", "classic"]);
    // Every image of the chain, down to (not including) busybox.
    let busybox = image_id(BUSYBOX).expect("busybox");
    let mut chain = Vec::new();
    let mut id = image_id("kiln-it/chain/i3:latest").expect("built");
    while id != busybox && !id.is_empty() {
        chain.push(id.clone());
        let parent = docker(&["image", "inspect", "--format", "{{.Parent}}", &id]);
        parent.trim().clone_into(&mut id);
    }
    assert!(chain.len() >= 4, "{chain:?}");
    let output = test.args(&["clean"]).run();
    assert!(!output.stderr.contains("cannot remove"), "{}", output.stderr);
    let left: Vec<&String> = chain.iter().filter(|id| image_id(id).is_some()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

pub(crate) const TESTS: &[Case] = &[
    Case::engine("clean_removes_a_classic_chain_in_one_run", clean_removes_a_classic_chain_in_one_run),
    Case::engine(
        "pull_fetches_bases_from_a_registry_by_policy",
        pull_fetches_bases_from_a_registry_by_policy,
    ),
    Case::engine("digest_pinned_bases_pull_and_build", digest_pinned_bases_pull_and_build),
    Case::engine("push_round_trip_keeps_the_image_id", push_round_trip_keeps_the_image_id),
    Case::engine("push_refuses_images_that_are_not_ready", push_refuses_images_that_are_not_ready),
    Case::engine(
        "failed_pushes_and_pulls_are_clear_and_change_nothing",
        failed_pushes_and_pulls_are_clear_and_change_nothing,
    ),
    Case::engine("tag_promotes_and_retags_for_a_registry", tag_promotes_and_retags_for_a_registry),
    Case::engine("tag_works_on_manifests_with_variants", tag_works_on_manifests_with_variants),
    Case::engine("images_lists_builds_with_sizes", images_lists_builds_with_sizes),
    Case::engine(
        "prune_keeps_the_newest_and_never_touches_unlabelled_images",
        prune_keeps_the_newest_and_never_touches_unlabelled_images,
    ),
    Case::engine(
        "rmi_and_clean_remove_only_this_manifests_images",
        rmi_and_clean_remove_only_this_manifests_images,
    ),
    Case::engine("history_maps_layers_to_manifest_lines", history_maps_layers_to_manifest_lines),
    Case::engine("inspect_shows_kilns_labels", inspect_shows_kilns_labels),
];
