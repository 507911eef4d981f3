//! `kiln build` against a real Docker engine (no mocks). Each test works in its own
//! temporary folder, with repositories of its own, and removes its images when it ends.

use crate::Case;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::engine::{self, BUSYBOX, Cleanup, image_id, run_image};
use crate::harness::{Output, Test};

/// Runs `kiln build --network none --progress json ARGS` (unchecked); returns the output
/// and the parsed events.
pub(crate) fn build(test: &mut Test, args: &[&str]) -> (Output, Vec<Value>) {
    let mut all = vec!["build", "--network", "none", "--progress", "json"];
    all.extend_from_slice(args);
    let output = test.args(&all).run_unchecked();
    let events = output
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    (output, events)
}

/// Index of the first event of `kind` for `image`.
fn position(events: &[Value], kind: &str, image: &str) -> usize {
    events
        .iter()
        .position(|e| e["event"] == kind && e["image"] == image)
        .unwrap_or_else(|| panic!("no `{kind}` event for `{image}` in {events:#?}"))
}

fn cleanup(test: &Test) -> Cleanup {
    Cleanup::new(&test.path().join("kiln.kdl"))
}

const DIAMOND: &str = r#"
registry "kiln-it/diamond-BUILDER"
image base {
    from "kiln-test/busybox:1"
    run "echo base > /base.txt"
}
image left {
    from image=base
    run "sleep 2" "echo left > /left.txt"
}
image right {
    from image=base
    run "sleep 2" "echo right > /right.txt"
}
image top {
    from image=left
    copy "/right.txt" "/right.txt" image=right
    cmd "cat" "/base.txt" "/left.txt" "/right.txt"
}
"#;

fn diamond_builds_in_order_with_overlap(builder: &str) {
    let Some(_engine) = engine::engine_test() else { return };
    let mut test = Test::new().manifest(&DIAMOND.replace("BUILDER", builder));
    let _cleanup = cleanup(&test);
    let (output, events) = build(&mut test, &["-j", "2", "--builder", builder]);
    assert_eq!(output.status, 0, "{}\n{events:#?}", output.stderr);
    let finished = |image| position(&events, "finished", image);
    let started = |image| position(&events, "started", image);
    // Dependency order.
    assert!(finished("base") < started("left") && finished("base") < started("right"));
    assert!(finished("left") < started("top") && finished("right") < started("top"));
    // Independent images overlap: both started before either finished.
    assert!(started("left") < finished("right") && started("right") < finished("left"), "{events:#?}");
    let top = format!("kiln-it/diamond-{builder}/top:latest");
    assert_eq!(run_image(&top), "base\nleft\nright\n");
    // The dependents were built against the exact images just built (pinned), and the
    // pins are gone after the run.
    assert!(
        events.iter().any(|e| e["event"] == "step"
            && e["image"] == "left"
            && e["step"].as_str().is_some_and(|s| s.contains("FROM kiln.local/") && s.contains("/base:"))),
        "{events:#?}"
    );
    for image in ["base", "left", "right"] {
        let reference = format!("kiln-it/diamond-{builder}/{image}");
        let tags = engine::docker(&["image", "inspect", "--format", "{{json .RepoTags}}", &reference]);
        assert!(!tags.contains("kiln.local/"), "pins left behind on `{image}`: {tags}");
    }
}

fn diamond_with_buildkit() {
    diamond_builds_in_order_with_overlap("buildkit");
}

fn diamond_with_the_classic_builder() {
    diamond_builds_in_order_with_overlap("classic");
}

fn a_failure_skips_only_its_dependents_and_moves_no_tag() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = r#"
registry "kiln-it/failure"
image base {
    from "kiln-test/busybox:1"
}
image broken {
    from image=base
    run "echo about to fail" "false"
}
image child {
    from image=broken
}
image grandchild {
    from image=child
}
image sibling {
    from image=base
    cmd "echo" "sibling"
}
"#;
    let mut test = Test::new().manifest(manifest);
    let mut cleanup = cleanup(&test);
    // The failing image's tag already points somewhere; it must stay there.
    engine::docker(&["tag", BUSYBOX, "kiln-it/failure/broken:latest"]);
    cleanup.also("kiln-it/failure/broken:latest");
    let before = image_id("kiln-it/failure/broken:latest");
    let (output, events) = build(&mut test, &[]);
    assert_eq!(output.status, 1, "{}", output.stderr);
    assert_eq!(image_id("kiln-it/failure/broken:latest"), before, "a failed build moved a tag");
    let failed = &events[position(&events, "failed", "broken")];
    assert_eq!(failed["location"], "kiln.kdl:8:5", "{failed:#}");
    assert!(failed["log"].as_str().is_some_and(|l| l.contains("about to fail")), "{failed:#}");
    for skipped in ["child", "grandchild"] {
        let event = &events[position(&events, "skipped", skipped)];
        assert!(event["reason"].as_str().is_some_and(|r| r.contains("`broken` failed")), "{event:#}");
    }
    position(&events, "finished", "sibling");
    assert_eq!(run_image("kiln-it/failure/sibling:latest"), "sibling\n");
    assert!(image_id("kiln-it/failure/child:latest").is_none());
    let summary = events.last().expect("a summary");
    assert_eq!(summary["event"], "summary");
    assert_eq!((summary["failed"].as_u64(), summary["skipped"].as_u64()), (Some(1), Some(2)));
}

fn fail_fast_stops_starting_builds() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = r#"
registry "kiln-it/failfast"
image broken {
    from "kiln-test/busybox:1"
    run "false"
}
image later {
    from "kiln-test/busybox:1"
    run "echo later"
}
"#;
    let mut test = Test::new().manifest(manifest);
    let _cleanup = cleanup(&test);
    let (output, events) = build(&mut test, &["-j", "1", "--fail-fast", "broken", "later"]);
    assert_eq!(output.status, 1);
    let skipped = &events[position(&events, "skipped", "later")];
    assert!(skipped["reason"].as_str().is_some_and(|r| r.contains("--fail-fast")), "{skipped:#}");
}

fn failure_output_points_into_the_manifest() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = "registry \"kiln-it/failmsg\"\nimage app {\n    from \"kiln-test/busybox:1\"\n    run \"echo checking\" \"ls /missing\"\n}\n";
    let mut test = Test::new().manifest(manifest);
    let _cleanup = cleanup(&test);
    let output = test.args(&["build", "--network", "none", "--progress", "plain"]).run_unchecked();
    assert_eq!(output.status, 1);
    let stderr = output.stderr();
    assert!(stderr.contains("--- log of `app`"), "{stderr}");
    assert!(stderr.contains("ls: /missing: No such file or directory"), "{stderr}");
    assert!(stderr.contains("error[build-failed]: image `app` failed"), "{stderr}");
    assert!(stderr.contains("╭─[kiln.kdl:4:5]"), "{stderr}");
    assert!(stderr.contains("this instruction failed"), "{stderr}");
}

fn an_unchanged_image_is_not_rebuilt() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = "registry \"kiln-it/uptodate\"\nimage app {\n    from \"kiln-test/busybox:1\"\n    copy \"a.txt\" \"/a.txt\"\n    cmd \"cat\" \"/a.txt\"\n}\n";
    let mut test = Test::new().manifest(manifest).file("a.txt", "one\n");
    let _cleanup = cleanup(&test);
    let (_, first) = build(&mut test, &[]);
    let id = first[position(&first, "finished", "app")]["id"].clone();
    let (_, second) = build(&mut test, &[]);
    let again = &second[position(&second, "finished", "app")];
    assert_eq!((again["up_to_date"].as_bool(), &again["id"]), (Some(true), &id));
    // A change in the context makes a new image.
    let mut test = test.file("a.txt", "two\n");
    let (_, third) = build(&mut test, &[]);
    let changed = &third[position(&third, "finished", "app")];
    assert_eq!(changed["up_to_date"], false);
    assert_ne!(changed["id"], id);
    assert_eq!(run_image("kiln-it/uptodate/app:latest"), "two\n");
}

fn images_carry_oci_and_kiln_labels() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = "registry \"kiln-it/labels\"\nimage app {\n    tags \"1.2.3\" latest\n    from \"kiln-test/busybox:1\"\n}\n";
    let mut test = Test::new().manifest(manifest);
    let _cleanup = cleanup(&test);
    let (output, _) = build(&mut test, &["--label", "kiln.test=yes"]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    let labels: Value = serde_json::from_str(&engine::docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        "kiln-it/labels/app:1.2.3",
    ]))
    .expect("labels");
    assert_eq!(labels["org.opencontainers.image.title"], "app");
    assert_eq!(labels["org.opencontainers.image.version"], "1.2.3");
    assert!(labels["org.opencontainers.image.created"].as_str().is_some_and(|c| c.ends_with('Z')));
    assert_eq!(labels["dev.kiln.image"], "app");
    // No path of this machine: the project is named by the manifest's place in its
    // repository (here, no repository: its file name).
    assert_eq!(labels["dev.kiln.project"], "kiln.kdl");
    let key = labels["dev.kiln.key"].as_str().expect("a key");
    assert!(key.starts_with("blake3:"), "{key}");
    let inputs: Value =
        serde_json::from_str(labels["dev.kiln.inputs"].as_str().expect("inputs")).expect("JSON");
    assert_eq!(inputs["image"], "app");
    assert!(inputs["labels"]["kiln.test"].is_string(), "--label is an input: {inputs:#}");
    assert!(
        !labels.to_string().contains(&*test.path().to_string_lossy()),
        "a path of this machine: {labels:#}"
    );
    assert_eq!(labels["kiln.test"], "yes");
    // Both tags, and the content tag that records the key, point at the same image.
    let hex = key.strip_prefix("blake3:").expect("blake3");
    let content = format!("kiln-it/labels/app:kiln-{}", &hex[..24]);
    assert_eq!(image_id("kiln-it/labels/app:1.2.3"), image_id("kiln-it/labels/app:latest"));
    assert_eq!(image_id(&content), image_id("kiln-it/labels/app:latest"));
}

/// Builds one of `tests/build-examples`, then runs images and checks what they print.
fn build_example(name: &str, builder: &str, targets: &[&str], checks: &[(&str, &str)]) {
    let Some(_engine) = engine::engine_test() else { return };
    let mut test = Test::new().copy_from_repo(&format!("tests/build-examples/{name}"));
    let _cleanup = cleanup(&test);
    let mut args = vec!["--builder", builder];
    args.extend_from_slice(targets);
    let (output, events) = build(&mut test, &args);
    let failures: Vec<&Value> = events.iter().filter(|e| e["event"] == "failed").collect();
    assert_eq!(output.status, 0, "{name} with {builder}: {failures:#?}\n{}", output.stderr);
    for (reference, expected) in checks {
        assert_eq!(run_image(reference), *expected, "{name} with {builder}: `{reference}`");
    }
}

fn example_python_app_builds_and_runs() {
    let checks = [
        ("my-app:latest", "app=hello deps=flask==3.0.3 env=development tests=ignored\n"),
        ("my-app:v1.0", "app=hello deps=flask==3.0.3 env=development tests=ignored\n"),
        ("my-app:prod", "app=hello deps=flask==3.0.3 env=production tests=ignored\n"),
    ];
    build_example("python-app", "buildkit", &[], &checks);
    build_example("python-app", "classic", &[], &checks);
}

fn example_monorepo_builds_and_runs() {
    let checks = [
        ("kiln-it/monorepo/api:latest", "api as 10001 with fastapi==0.111.0 and serving\n"),
        ("kiln-it/monorepo/api:debug", "api as 10001 with fastapi==0.111.0 and serving\n"),
        ("kiln-it/monorepo/billing:2.3.0", "billing with stripe==9.9.0\n"),
        ("kiln-it/monorepo/worker:latest", "no job queued (run-next)\n"),
        ("kiln-it/monorepo/frontend:latest", "welcome to the shop\n"),
    ];
    // The `default` group, and a variant outside it.
    build_example("monorepo", "buildkit", &["default", "api.debug"], &checks);
    build_example("monorepo", "classic", &["default", "api.debug"], &checks);
}

fn example_rust_service_builds_and_runs() {
    // Level 1.2 (cache mounts, COPY --chmod) needs BuildKit.
    build_example("rust-service", "buildkit", &[], &[("greeter:0.3.1", "Hello, world (as 65532)\n")]);
}

/// `ignore-package-outputs` on the engine: the host's `node_modules` stays out, the one
/// `npm` makes stays in. The base has no npm: a stand-in script plays it.
fn the_hosts_node_modules_stay_out_of_the_image() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = r#"
registry "kiln-it/host-packages"
image app {
    from "kiln-test/busybox:1"
    workdir "/app"
    run "echo 'mkdir -p node_modules/installed' > /bin/npm" "chmod +x /bin/npm"
    npm production=#true
    copy "." "."
    cmd "sh" "-c" "find node_modules | sort"
}
"#;
    let mut test = Test::new()
        .manifest(manifest)
        .file("package.json", "{}")
        .file("package-lock.json", "{}")
        .file("index.js", "")
        .file("node_modules/from-the-host/index.js", "");
    let _cleanup = cleanup(&test);
    let (output, _) = build(&mut test, &[]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    assert_eq!(run_image("kiln-it/host-packages/app:latest"), "node_modules\nnode_modules/installed\n");
}

/// Build-only packages leave no bytes behind, where a later `run` that removes them
/// reclaims nothing. The base has no apt: a stand-in `apt-get` writes a 5 MB "package".
fn build_only_packages_leave_no_layer_behind() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = r#"
registry "kiln-it/build-only"
template fake-apt {
    from "kiln-test/busybox:1"
    run "echo 'case $1 in install) dd if=/dev/zero of=/opt/tool bs=1024 count=5120 2>/dev/null;; purge) rm -f /opt/tool;; esac' > /bin/apt-get" "chmod +x /bin/apt-get" "mkdir -p /opt"
}
image expert {
    extends fake-apt
    apt tool build-only=#true {
        run "test -f /opt/tool" "echo built > /built.txt"
    }
    cmd "cat" "/built.txt"
}
image naive {
    extends fake-apt
    apt tool
    run "echo built > /built.txt"
    run "apt-get purge -y tool"
    cmd "cat" "/built.txt"
}
"#;
    let mut test = Test::new().manifest(manifest);
    let _cleanup = cleanup(&test);
    let (output, _) = build(&mut test, &[]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    let base = image_size(BUSYBOX);
    assert_eq!(run_image("kiln-it/build-only/expert:latest"), "built\n");
    assert_eq!(run_image("kiln-it/build-only/naive:latest"), "built\n");
    let expert = image_size("kiln-it/build-only/expert:latest") - base;
    let naive = image_size("kiln-it/build-only/naive:latest") - base;
    assert!(expert < 100_000, "build-only packages left {expert} bytes");
    assert!(naive > 5_000_000, "the naive image should keep the 5 MB it removed later: {naive}");
}

/// `venv-builder`: the venv is built in a stage of its own, with the build-only
/// packages around it, and the image gets the venv alone. The base has no apt and no
/// Python: stand-ins write a 5 MB "compiler" and a venv that records it was there.
fn a_venv_builder_ships_the_venv_alone() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = r##"
registry "kiln-it/venv-builder"
image app {
    from "kiln-test/busybox:1"
    run #"echo 'case $1 in install) dd if=/dev/zero of=/opt/compiler bs=1024 count=5120 2>/dev/null;; purge) rm -f /opt/compiler;; esac' > /bin/apt-get"# #"echo 'test "$1 $2" = "-m venv" && mkdir -p "$3/bin"' > /bin/python3"# #"echo 'test -f /opt/compiler && echo "built with the compiler" > "$VIRTUAL_ENV/installed"' > /bin/pip"# "chmod +x /bin/apt-get /bin/python3 /bin/pip" "mkdir -p /opt"
    apt compiler build-only=#true {
        pip flask venv="/opt/venv" builder=#true
    }
    user app uid=10001
    cmd "sh" "-c" "cat $VIRTUAL_ENV/installed; ls /opt; echo $PYTHONUNBUFFERED"
}
"##;
    let mut test = Test::new().manifest(manifest);
    let _cleanup = cleanup(&test);
    let (output, _) = build(&mut test, &[]);
    assert_eq!(output.status, 0, "{}{}", output.stderr, output.stdout);
    assert_eq!(run_image("kiln-it/venv-builder/app:latest"), "built with the compiler\nvenv\n1\n");
    let added = image_size("kiln-it/venv-builder/app:latest") - image_size(BUSYBOX);
    assert!(added < 100_000, "the builder's packages reached the image: {added} bytes");
}

/// An image's size in bytes, as the engine counts it.
fn image_size(reference: &str) -> i64 {
    engine::docker(&["image", "inspect", "--format", "{{.Size}}", reference]).trim().parse().expect("a size")
}

/// `build-tools-split`: compilers and headers written on the stage's one `apt` stay out
/// of the image, and the library that the venv's compiled module (or an npm native addon)
/// links comes with the runtime's `apt`. The base has no apt, dpkg or Python (busybox's `dpkg` applet aside, which the
/// stand-ins in `/usr/local/bin` come before): stand-ins install a 5 MB "compiler" and a
/// library, build a module only with the compiler there, and tell which package owns the
/// library the module links.
fn naive_build_tools_stay_out_and_linked_libraries_in() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = r##"
registry "kiln-it/build-tools-split"
image standins {
    from "kiln-test/busybox:1"
    run "mkdir -p /opt /usr/lib /usr/local/bin /var" #"printf '%s\n' 'test "$1" = install || exit 0' 'shift; for p; do case $p in -*) ;; *) echo "$p" >> /var/installed;; esac; case $p in gcc) dd if=/dev/zero of=/opt/compiler bs=1024 count=5120 2>/dev/null;; libdemo1*) echo demo > /usr/lib/libdemo.so.1;; esac; done' > /usr/local/bin/apt-get"# #"printf '%s\n' 'test "$1 $2" = "-m venv" && mkdir -p "$3/bin"' > /usr/local/bin/python3"# #"printf '%s\n' 'test -f /opt/compiler && mkdir -p "$VIRTUAL_ENV/lib" && echo module > "$VIRTUAL_ENV/lib/_demo.so"' > /usr/local/bin/pip"# #"printf '%s\n' 'test "$1" = ci && test -f /opt/compiler && mkdir -p node_modules/demo && echo addon > node_modules/demo/demo.node; exit 0' > /usr/local/bin/npm"# #"printf '%s\n' 'for f; do echo "$f:"; printf "\tlibdemo.so.1 => /usr/lib/libdemo.so.1 (0x1)\n"; done' > /usr/local/bin/ldd"# #"printf '%s\n' 'shift; for f; do test "$f" = /usr/lib/libdemo.so.1 && echo "libdemo1:amd64: $f"; done; exit 0' > /usr/local/bin/dpkg-query"# #"printf '%s\n' 'grep -qx "$2" /var/installed 2>/dev/null' > /usr/local/bin/dpkg"# "cd /usr/local/bin && chmod +x apt-get python3 pip npm ldd dpkg-query dpkg"
}
image app {
    from image=standins
    apt python3 gcc libdemo-dev
    workdir "/app"
    pip "demo" venv="/opt/venv"
    user app uid=10001
    cmd "sh" "-c" "ls /opt; cat /var/installed; cat /usr/lib/libdemo.so.1 $VIRTUAL_ENV/lib/_demo.so"
}
image web {
    from image=standins
    apt nodejs gcc libdemo-dev
    workdir "/app"
    copy "." "."
    npm
    user web uid=10002
    cmd "sh" "-c" "ls /opt; cat /var/installed; cat /usr/lib/libdemo.so.1 node_modules/demo/demo.node"
}
"##;
    let mut test = Test::new()
        .manifest(manifest)
        .file("package.json", r#"{"dependencies": {"demo": "1.0.0"}}"#)
        .file("package-lock.json", "{}");
    let _cleanup = cleanup(&test);
    let (output, _) = build(&mut test, &[]);
    assert_eq!(output.status, 0, "{}{}", output.stderr, output.stdout);
    assert!(!output.stderr.contains("build-tools-in-image"), "{}", output.stderr);
    assert_eq!(
        run_image("kiln-it/build-tools-split/app:latest"),
        "venv\npython3\nlibdemo1:amd64\ndemo\nmodule\n",
        "the image has the venv and the library, without the compiler"
    );
    assert_eq!(
        run_image("kiln-it/build-tools-split/web:latest"),
        "nodejs\nlibdemo1:amd64\ndemo\naddon\n",
        "the image has node_modules and the library, without the compiler"
    );
    let standins = image_size("kiln-it/build-tools-split/standins:latest");
    for image in ["app", "web"] {
        let added = image_size(&format!("kiln-it/build-tools-split/{image}:latest")) - standins;
        assert!(added < 100_000, "the build tools reached `{image}`: {added} bytes");
    }
}

/// `go-mod cache=#true` in a builder stage: the modules live in a cache mount that the
/// stage's later `run`s mount too, so a change to `go.mod` downloads only what is new.
/// The base has no Go: a stand-in `go` "downloads" each `dep` of `go.mod` into
/// `$GOMODCACHE` (saying which it already had) and "builds" only when all are there.
fn go_modules_stay_in_their_cache_across_builds() {
    let Some(_engine) = engine::engine_test() else { return };
    let nonce =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let manifest = r##"
dockerfile-level "1.2"
allow runs-as-root
registry "kiln-it/download-caches"
image app {
    stage build {
        from "kiln-test/busybox:1"
        run #"printf '#!/bin/sh\nfor dep in $(sed -n "s/^dep //p" go.mod); do\n  if [ "$1" = mod ]; then if [ -f "$GOMODCACHE/$dep" ]; then echo "had $dep" >> /log.txt; else echo "fetched $dep" >> /log.txt; touch "$GOMODCACHE/$dep"; fi\n  else test -f "$GOMODCACHE/$dep" || exit 1; fi\ndone\n' > /bin/go"# "chmod +x /bin/go"
        workdir "/src"
        go-mod cache=#true
        copy "main.go" "."
        run "go build" "echo built > /out.txt"
    }
    stage runtime {
        from "kiln-test/busybox:1"
        copy "/out.txt" "/log.txt" "/" from=build
        cmd "cat" "/out.txt" "/log.txt"
    }
}
"##;
    let first = format!("module example.com/app\ndep a{nonce}\n");
    let mut test =
        Test::new().manifest(manifest).file("go.mod", &first).file("go.sum", "").file("main.go", "");
    let _cleanup = cleanup(&test);
    let (output, _) = build(&mut test, &[]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    assert_eq!(run_image("kiln-it/download-caches/app:latest"), format!("built\nfetched a{nonce}\n"));
    let mut test = test.file("go.mod", &format!("{first}dep b{nonce}\n"));
    let (output, _) = build(&mut test, &[]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    assert_eq!(
        run_image("kiln-it/download-caches/app:latest"),
        format!("built\nhad a{nonce}\nfetched b{nonce}\n")
    );
}

/// At level 1.2, pip's downloads go to a cache mount that a non-root user can write,
/// and not into the image. The base has no pip: a stand-in writes a "wheel" to its cache.
fn package_caches_stay_out_of_the_image() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = r##"
dockerfile-level "1.2"
registry "kiln-it/package-caches"
image app {
    from "kiln-test/busybox:1"
    run #"echo 'for a in "$@"; do case $a in --cache-dir=*) touch "$(echo $a | cut -d= -f2)/wheel" || exit 1;; esac; done; mkdir -p /tmp/installed' > /bin/pip"# "chmod +x /bin/pip" "chmod 1777 /tmp"
    user "65534:65534"
    pip flask
    cmd "sh" "-c" "ls -A /tmp/kiln-cache/pip 2>/dev/null | wc -l; ls -d /tmp/installed"
}
"##;
    let mut test = Test::new().manifest(manifest);
    let _cleanup = cleanup(&test);
    let (output, _) = build(&mut test, &["--builder", "buildkit"]);
    assert_eq!(output.status, 0, "{}{}", output.stderr, output.stdout);
    assert_eq!(run_image("kiln-it/package-caches/app:latest"), "0\n/tmp/installed\n");
}

/// The engines of these machines have no bridge network (`--bridge=none`): a RUN on the
/// default network fails, and kiln says which `--network` to use.
fn a_missing_bridge_network_says_which_network_to_use() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = "allow runs-as-root\nregistry \"kiln-it/bridge\"\nimage app {\n    from \"kiln-test/busybox:1\"\n    run \"echo no network\"\n}\n";
    for builder in ["classic", "buildkit"] {
        let mut test = Test::new().manifest(manifest);
        let _cleanup = cleanup(&test);
        let output = test.args(&["build", "--progress", "plain", "--builder", builder]).run_unchecked();
        if output.status != 0 {
            assert!(
                output.stderr.contains("network bridge not found")
                    && output.stderr.contains("--network none"),
                "{builder}: {}",
                output.stderr
            );
        }
    }
}

/// `--target STAGE` builds that stage of the images that have it, as `docker build
/// --target`; it is another image (its key), and the next build without it gets the
/// manifest's target again. A stage no image has is refused.
fn target_from_the_command_line() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = r#"
allow runs-as-root
registry "kiln-it/target"
image app {
    stage debug {
        from "kiln-test/busybox:1"
        run "echo debug > /stage.txt"
        cmd "cat" "/stage.txt"
    }
    stage release {
        from "kiln-test/busybox:1"
        run "echo release > /stage.txt"
        cmd "cat" "/stage.txt"
    }
}
"#;
    let mut test = Test::new().manifest(manifest);
    let _cleanup = cleanup(&test);
    let (output, _) = build(&mut test, &["--target", "debug", "--load"]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    assert_eq!(run_image("kiln-it/target/app:latest"), "debug\n");
    let (output, _) = build(&mut test, &[]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    assert_eq!(run_image("kiln-it/target/app:latest"), "release\n");
    let refused = test.args(&["build", "--target", "nope"]).expect(2).run();
    assert!(refused.stderr.contains("no image being built has a stage `nope`"), "{}", refused.stderr);
}

/// bake's `--set IMAGE.FIELD=VALUE` (`*` for every image): args, labels, tags, target
/// and platform of one image, or of all, for this build; a variable is still `--set
/// NAME=VALUE`. Mistakes are refused before anything is built.
fn bake_style_overrides() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = r#"
allow runs-as-root
registry "kiln-it/overrides"
var GREETING "hello"
image app {
    stage debug {
        from "kiln-test/busybox:1"
        arg MODE "slow"
        run "echo debug-$MODE-{GREETING} > /out.txt"
        cmd "cat" "/out.txt"
    }
    stage release {
        from "kiln-test/busybox:1"
        run "echo release > /out.txt"
        cmd "cat" "/out.txt"
    }
}
image other {
    from "kiln-test/busybox:1"
    cmd "true"
}
"#;
    let mut test = Test::new().manifest(manifest);
    let mut cleanup = cleanup(&test);
    cleanup.also("kiln-it/overrides/app:one");
    cleanup.also("kiln-it/overrides/app:two");
    let sets = [
        "--set",
        "app.target=debug",
        "--set",
        "app.args.MODE=fast",
        "--set",
        "*.labels.team=core",
        "--set",
        "app.tags=one,two",
        "--set",
        "GREETING=hi",
        "--set",
        "*.no-cache=true",
        "--set",
        "*.platform=linux/amd64",
    ];
    let (output, _) = build(&mut test, &sets);
    assert_eq!(output.status, 0, "{}", output.stderr);
    assert_eq!(run_image("kiln-it/overrides/app:two"), "debug-fast-hi\n");
    for image in ["kiln-it/overrides/app:one", "kiln-it/overrides/other:latest"] {
        let label =
            engine::docker(&["image", "inspect", "--format", "{{index .Config.Labels \"team\"}}", image]);
        assert_eq!(label.trim(), "core", "{image}");
    }
    for (set, says) in [
        ("app.squash=true", "images have no field `squash`"),
        ("nope.tags=x", "the manifest has no image `nope`"),
        ("other.args.MODE=x", "image `other` declares no `arg MODE`"),
        ("app.target=nope", "image `app` has no stage `nope`"),
    ] {
        let refused = test.args(&["build", "--set", set]).expect(2).run();
        assert!(refused.stderr.contains(says), "{set}: {}", refused.stderr);
    }
}

/// `--build-arg` sets what the manifest's `build-arg` says, for this build only; the
/// image is another one (its key covers the value), and an argument nothing declares is
/// refused before anything is built.
fn build_args_from_the_command_line() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = r#"
allow runs-as-root
registry "kiln-it/build-args"
image app {
    from "kiln-test/busybox:1"
    build-arg GREETING="hello"
    arg GREETING
    run "echo $GREETING > /greeting.txt"
    cmd "cat" "/greeting.txt"
}
"#;
    let mut test = Test::new().manifest(manifest);
    let _cleanup = cleanup(&test);
    let (output, _) = build(&mut test, &["--build-arg", "GREETING=bonjour"]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    assert_eq!(run_image("kiln-it/build-args/app:latest"), "bonjour\n");
    let (output, _) = build(&mut test, &[]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    assert_eq!(
        run_image("kiln-it/build-args/app:latest"),
        "hello\n",
        "the manifest's value, not the last build's"
    );
    let output = test.args(&["build", "--build-arg", "GREETNG=x"]).expect(2).run();
    assert!(output.stderr.contains("no image being built declares `arg GREETNG`"), "{}", output.stderr);
}

/// `--iidfile` (one image) and `--metadata-file` (every image: ID, tags, status, with
/// bake's keys), checked against the engine.
fn iidfile_and_metadata_file() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = r#"
allow runs-as-root
registry "kiln-it/metadata"
image base {
    tags latest "1.0"
    from "kiln-test/busybox:1"
    run "echo base > /base.txt"
}
image app {
    from image=base
    cmd "cat" "/base.txt"
}
"#;
    let mut test = Test::new().manifest(manifest);
    let mut cleanup = cleanup(&test);
    cleanup.also("kiln-it/metadata-extra/base:candidate");
    cleanup.also("kiln-it/metadata-extra/base:latest");
    // Outside the context, which a file written there would change.
    let results = tempfile::tempdir().expect("temp dir");
    let metadata = results.path().join("out/metadata.json");
    let (output, _) = build(&mut test, &["--metadata-file", &metadata.display().to_string()]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).expect("written")).expect("JSON");
    let base_id = image_id("kiln-it/metadata/base:latest").expect("base");
    assert_eq!(written["base"]["containerimage.config.digest"], base_id.as_str(), "{written:#}");
    assert_eq!(written["base"]["image.name"], "kiln-it/metadata/base:latest,kiln-it/metadata/base:1.0");
    assert_eq!(written["app"]["kiln.status"], "built", "{written:#}");
    // One image: its ID, as `docker build --iidfile`, and more tags, as `-t`.
    let iid = results.path().join("iid");
    let iid_arg = iid.display().to_string();
    let tags = ["-t", "kiln-it/metadata-extra/base:candidate", "--tag", "kiln-it/metadata-extra/base"];
    let (output, _) = build(&mut test, &[&["base", "--iidfile", &iid_arg][..], &tags].concat());
    assert_eq!(output.status, 0, "{}", output.stderr);
    assert_eq!(std::fs::read_to_string(&iid).expect("written"), base_id);
    assert_eq!(image_id("kiln-it/metadata-extra/base:candidate").as_deref(), Some(base_id.as_str()));
    assert_eq!(image_id("kiln-it/metadata-extra/base:latest").as_deref(), Some(base_id.as_str()));
    let output = test.args(&["build", "-t", "kiln-it/metadata-extra/x:1"]).expect(2).run();
    assert!(output.stderr.contains("-t/--tag names one image"), "{}", output.stderr);
    // Several: refused before anything runs.
    let output = test.args(&["build", "--iidfile", &iid.display().to_string()]).expect(2).run();
    assert!(
        output.stderr.contains("--iidfile writes one image ID, and this build has 2 images"),
        "{}",
        output.stderr
    );
}

/// `--platform`: the engine's own platform builds; several at once are refused with why.
fn platform_from_the_command_line() {
    let Some(_engine) = engine::engine_test() else { return };
    let arch = engine::docker(&["version", "--format", "{{.Server.Arch}}"]).trim().to_owned();
    let manifest = "allow runs-as-root\nregistry \"kiln-it/platform\"\nimage app {\n    from \"kiln-test/busybox:1\"\n    run \"echo built\"\n}\n";
    let mut test = Test::new().manifest(manifest);
    let _cleanup = cleanup(&test);
    let platform = format!("linux/{arch}");
    let (output, _) = build(&mut test, &["--platform", &platform]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    let built = engine::docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Os}}/{{.Architecture}}",
        "kiln-it/platform/app:latest",
    ]);
    assert_eq!(built.trim(), platform);
    let output = test.args(&["build", "--platform", "linux/amd64,linux/arm64"]).expect(2).run();
    assert!(output.stderr.contains("one platform per build"), "{}", output.stderr);
}

/// `--progress quiet` says only how the run ended; `--progress tty` without a terminal is
/// refused before anything runs.
fn progress_quiet_and_tty() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = "allow runs-as-root\nregistry \"kiln-it/quiet\"\nimage app {\n    from \"kiln-test/busybox:1\"\n    run \"echo quiet\"\n}\n";
    let mut test = Test::new().manifest(manifest);
    let _cleanup = cleanup(&test);
    let quiet = test.args(&["build", "--network", "none", "--progress", "quiet"]).run();
    let plain = test.args(&["build", "--network", "none", "--progress", "plain", "--rebuild"]).run();
    assert!(
        quiet.stderr.lines().count() < plain.stderr.lines().count(),
        "{}\n---\n{}",
        quiet.stderr,
        plain.stderr
    );
    assert!(!quiet.stderr.contains("[app]"), "{}", quiet.stderr);
    let output = test.args(&["build", "--progress", "tty"]).expect(2).run();
    insta::assert_snapshot!(output.stderr(), @"
    error: --progress tty needs a terminal on stderr

    hint: use `--progress plain` (or `json`) when the output goes to a file or a pipe
    ");
}

fn ignored_files_stay_out_of_the_image() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = r#"
registry "kiln-it/ignore"
image app {
    from "kiln-test/busybox:1"
    ignore "*.log" "secret/" "!secret/public.txt"
    copy "." "/ctx/"
    cmd "sh" "-c" "cd /ctx && find . | sort"
}
"#;
    let mut test = Test::new()
        .manifest(manifest)
        .file("keep.txt", "k")
        .file("debug.log", "l")
        .file("secret/key.pem", "s")
        .file("secret/public.txt", "p")
        .file(".git/HEAD", "ref");
    let _cleanup = cleanup(&test);
    let (output, _) = build(&mut test, &[]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    let listing = run_image("kiln-it/ignore/app:latest");
    // Neither the generated files, the Dockerfile nor the manifest enter the image.
    assert_eq!(listing, ".\n./keep.txt\n./secret\n./secret/public.txt\n", "{listing}");
}

fn an_unreachable_engine_is_one_clear_line() {
    let manifest = "allow runs-as-root\nimage app {\n    from \"kiln-test/busybox:1\"\n}\n";
    let output = Test::new()
        .manifest(manifest)
        .args(&["build", "--host", "unix:///nonexistent/docker.sock"])
        .run_unchecked();
    assert_eq!(output.status, 1);
    insta::assert_snapshot!(output.stderr(), @"error: cannot reach the Docker engine at unix:///nonexistent/docker.sock (from --host): Socket not found: /nonexistent/docker.sock");
}

fn dry_run_prints_the_schedule_and_builds_nothing() {
    let manifest = DIAMOND.replace("registry \"kiln-it/diamond-BUILDER\"", "");
    let output = Test::new()
        .manifest(&manifest)
        .env("XDG_CACHE_HOME", "/nonexistent")
        .args(&["build", "--dry-run", "-j", "2", "--host", "unix:///nonexistent.sock"])
        .run();
    insta::assert_snapshot!(output.stdout);
}

/// Cancelling (SIGINT or SIGTERM) mid-build exits 130, leaves no container and moves no
/// tag.
fn cancellation(builder: &str, signal: &str) {
    if !engine::available() {
        return;
    }
    let _alone = engine::ENGINE_LOCK.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    let manifest = format!(
        "registry \"kiln-it/cancel-{builder}\"\nimage slow {{\n    from \"kiln-test/busybox:1\"\n    run \"echo started\" \"sleep 60\"\n}}\n"
    );
    let test = Test::new().manifest(&manifest);
    let _cleanup = cleanup(&test);
    let containers_before = container_ids();
    let mut child = crate::harness::kiln_command()
        .args(["build", "--network", "none", "--progress", "json", "--builder", builder])
        .current_dir(test.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kiln");
    let stdout = child.stdout.take().expect("stdout");
    // Wait until the long step runs.
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_mins(1);
    for line in lines.by_ref() {
        let line = line.expect("a line");
        if line.contains("started\\n") || line.contains("\"text\":\"started") {
            break;
        }
        assert!(Instant::now() < deadline, "the build never reached its long step");
    }
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().expect("kill");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{rest:#?}");
    assert!(
        rest.iter().any(|l| l.contains("\"event\":\"summary\"") && l.contains("\"interrupted\":true")),
        "{rest:#?}"
    );
    assert!(
        image_id(&format!("kiln-it/cancel-{builder}/slow:latest")).is_none(),
        "a cancelled build moved a tag"
    );
    // The engine removes the build's containers once it notices the client left.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let leftover: Vec<String> =
            container_ids().into_iter().filter(|c| !containers_before.contains(c)).collect();
        if leftover.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "containers left behind: {leftover:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn container_ids() -> Vec<String> {
    engine::docker(&["ps", "-aq", "--no-trunc"]).lines().map(str::to_owned).collect()
}

fn cancelling_a_buildkit_build_with_ctrl_c() {
    cancellation("buildkit", "INT");
}

fn terminating_a_classic_build() {
    cancellation("classic", "TERM");
}

fn the_default_group_is_built_when_nothing_is_named() {
    let manifest = "image a { from \"alpine:3.20\" }\nimage b { from image=a }\nimage c { from \"alpine:3.20\" }\ngroup default b\n";
    let output = Test::new()
        .manifest(manifest)
        .env("XDG_CACHE_HOME", "/nonexistent")
        .args(&["build", "--dry-run", "--progress", "json"])
        .run_unchecked();
    let plan: Value = serde_json::from_str(&output.stdout).expect("json");
    assert_eq!(plan["waves"], serde_json::json!([["a"], ["b"]]), "{plan:#}");
    let output = Test::new().manifest(manifest).args(&["build", "--dry-run", "nope"]).run_unchecked();
    assert_eq!(output.status, 2);
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::engine("diamond_with_buildkit", diamond_with_buildkit),
    Case::engine("diamond_with_the_classic_builder", diamond_with_the_classic_builder),
    Case::engine(
        "a_failure_skips_only_its_dependents_and_moves_no_tag",
        a_failure_skips_only_its_dependents_and_moves_no_tag,
    ),
    Case::engine("fail_fast_stops_starting_builds", fail_fast_stops_starting_builds),
    Case::engine("failure_output_points_into_the_manifest", failure_output_points_into_the_manifest),
    Case::engine("an_unchanged_image_is_not_rebuilt", an_unchanged_image_is_not_rebuilt),
    Case::engine("images_carry_oci_and_kiln_labels", images_carry_oci_and_kiln_labels),
    Case::engine("example_python_app_builds_and_runs", example_python_app_builds_and_runs),
    Case::engine("example_monorepo_builds_and_runs", example_monorepo_builds_and_runs),
    Case::engine("example_rust_service_builds_and_runs", example_rust_service_builds_and_runs),
    Case::engine("ignored_files_stay_out_of_the_image", ignored_files_stay_out_of_the_image),
    Case::engine("build_only_packages_leave_no_layer_behind", build_only_packages_leave_no_layer_behind),
    Case::engine("a_venv_builder_ships_the_venv_alone", a_venv_builder_ships_the_venv_alone),
    Case::engine(
        "naive_build_tools_stay_out_and_linked_libraries_in",
        naive_build_tools_stay_out_and_linked_libraries_in,
    ),
    Case::engine("target_from_the_command_line", target_from_the_command_line),
    Case::engine("bake_style_overrides", bake_style_overrides),
    Case::engine(
        "go_modules_stay_in_their_cache_across_builds",
        go_modules_stay_in_their_cache_across_builds,
    ),
    Case::engine("package_caches_stay_out_of_the_image", package_caches_stay_out_of_the_image),
    Case::engine("build_args_from_the_command_line", build_args_from_the_command_line),
    Case::engine("iidfile_and_metadata_file", iidfile_and_metadata_file),
    Case::engine("platform_from_the_command_line", platform_from_the_command_line),
    Case::engine("progress_quiet_and_tty", progress_quiet_and_tty),
    Case::engine(
        "a_missing_bridge_network_says_which_network_to_use",
        a_missing_bridge_network_says_which_network_to_use,
    ),
    Case::engine(
        "the_hosts_node_modules_stay_out_of_the_image",
        the_hosts_node_modules_stay_out_of_the_image,
    ),
    Case::plain("an_unreachable_engine_is_one_clear_line", an_unreachable_engine_is_one_clear_line),
    Case::plain(
        "dry_run_prints_the_schedule_and_builds_nothing",
        dry_run_prints_the_schedule_and_builds_nothing,
    ),
    Case::engine("cancelling_a_buildkit_build_with_ctrl_c", cancelling_a_buildkit_build_with_ctrl_c),
    Case::engine("terminating_a_classic_build", terminating_a_classic_build),
    Case::plain(
        "the_default_group_is_built_when_nothing_is_named",
        the_default_group_is_built_when_nothing_is_named,
    ),
];
