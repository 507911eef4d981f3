//! A pool of engines (`kiln build --engine ...`): two engines of the test's own, each
//! image built once, where it fits, its dependencies copied where they are needed, and
//! the images' tags only on the engine that takes them.

use std::collections::HashMap;

use kiln_testkit::{Registry, SecondEngine};
use serde_json::Value;

use crate::Case;
use crate::build::build;
use crate::engine;
use crate::harness::Test;

/// Twelve images: `base` under three libraries, a `tool` of its own, services that build
/// on a library and copy from `tool` or another library, and `big`, which only the
/// second engine can build (it `needs "big"`).
const REGISTRY: &str = "kiln-it/pool";
const MANIFEST: &str = r#"
allow runs-as-root
registry "kiln-it/pool"
image base {
    from "kiln-test/busybox:1"
    run "echo base > /base.txt"
}
image tool {
    from "kiln-test/busybox:1"
    run "echo tool > /tool.txt"
}
image lib-a {
    from image=base
    run "echo a > /a.txt"
}
image lib-b {
    from image=base
    run "echo b > /b.txt"
}
image lib-c {
    from image=base
    run "echo c > /c.txt"
}
image svc-1 {
    from image=lib-a
    copy "/tool.txt" "/tool.txt" image=tool
}
image svc-2 {
    from image=lib-b
    copy "/a.txt" "/a.txt" image=lib-a
}
image svc-3 {
    from image=lib-c
    copy "/tool.txt" "/tool.txt" image=tool
}
image svc-4 {
    from image=lib-a
    copy "/c.txt" "/c.txt" image=lib-c
}
image gateway {
    from image=svc-2
    copy "/tool.txt" "/tool.txt" image=svc-3
}
image big {
    needs "big"
    from image=svc-1
    copy "/b.txt" "/b.txt" image=lib-b
    run "cat /base.txt /a.txt /b.txt /tool.txt > /big.txt"
}
image edge {
    from image=big
    copy "/c.txt" "/c.txt" image=svc-4
    cmd "cat" "/big.txt" "/c.txt"
}
"#;

/// The tags of the test's images on an engine.
fn tags_on(engine: &SecondEngine, registry: &str) -> Vec<String> {
    let (ok, out) = engine.docker_try(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(ok, "{out}");
    out.lines().filter(|l| l.starts_with(&format!("{registry}/"))).map(str::to_owned).collect()
}

fn a_pool_builds_each_image_once_where_it_fits() {
    let Some(_engine) = engine::engine_test() else { return };
    let (home, worker) = (SecondEngine::start(), SecondEngine::start());
    let home_spec = format!("{},slots=2", home.host);
    let worker_spec = format!("{},slots=2,label=big", worker.host);
    let mut test = Test::new().manifest(MANIFEST);
    // One daemon named twice is refused: it would count its slots twice.
    let twice = test
        .args(&["build", "--engine", &home_spec, "--engine", &format!("{},slots=1,label=big", home.host)])
        .expect(2)
        .run();
    assert!(twice.stderr.contains("are the same engine"), "{}", twice.stderr);

    let (output, events) = build(&mut test, &["--engine", &home_spec, "--engine", &worker_spec]);
    assert_eq!(output.status, 0, "{}{}", output.stderr, output.stdout);
    let mut started: HashMap<String, Vec<String>> = HashMap::new();
    for event in events.iter().filter(|e| e["event"] == "started") {
        started
            .entry(event["image"].as_str().expect("image").to_owned())
            .or_default()
            .push(event["engine"].as_str().expect("the engine, in a pool").to_owned());
    }
    assert_eq!(started.len(), 12, "{started:?}");
    assert!(started.values().all(|engines| engines.len() == 1), "an image built twice: {started:?}");
    assert_eq!(started["big"], std::slice::from_ref(&worker.host), "`big` needs the worker's label");
    let finished = events.iter().filter(|e| e["event"] == "finished").count();
    assert_eq!(finished, 12);
    // `big`'s dependencies built on the home engine went to the worker, and everything
    // built on the worker came home for its tags.
    let copies: Vec<&Value> = events.iter().filter(|e| e["event"] == "transferred").collect();
    assert!(copies.iter().any(|c| c["to"] == worker.host.as_str()), "{copies:?}");
    assert!(copies.iter().any(|c| c["image"] == "big" && c["to"] == home.host.as_str()), "{copies:?}");
    assert!(copies.iter().all(|c| c["via"] == "save-load"), "{copies:?}");
    let mut pairs: Vec<(String, String)> =
        copies.iter().map(|c| (c["image"].to_string(), c["to"].to_string())).collect();
    let count = pairs.len();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), count, "an image copied twice to one engine: {copies:?}");

    // The tags are on the home engine only; the worker has content tags (kiln's marks).
    let home_tags = tags_on(&home, REGISTRY);
    for name in started.keys() {
        assert!(home_tags.contains(&format!("kiln-it/pool/{name}:latest")), "{name} untagged: {home_tags:?}");
    }
    let worker_tags = tags_on(&worker, REGISTRY);
    assert!(worker_tags.iter().all(|t| t.contains(":kiln-")), "user tags on the worker: {worker_tags:?}");
    let (ok, out) = home.docker_try(&["run", "--rm", "--network", "none", "kiln-it/pool/edge:latest"]);
    assert!(ok, "{out}");
    assert_eq!(out, "base\na\nb\ntool\nc\n");

    // Again through a registry: each image pushed once, pulled by digest where needed.
    let registry = Registry::start();
    let (output, events) = build(
        &mut test,
        &[
            "--rebuild",
            "--engine",
            &home_spec,
            "--engine",
            &worker_spec,
            "--transfer-registry",
            &registry.address,
        ],
    );
    assert_eq!(output.status, 0, "{}{}", output.stderr, output.stdout);
    let copies: Vec<&Value> = events.iter().filter(|e| e["event"] == "transferred").collect();
    assert!(!copies.is_empty() && copies.iter().all(|c| c["via"] == "registry"), "{copies:?}");
    assert_eq!(tags_on(&worker, REGISTRY).iter().filter(|t| !t.contains(":kiln-")).count(), 0);
}

/// An engine killed mid-run: the builds on it fail, saying so; what depends on them is
/// skipped; the rest builds on the other engine; no tag names an image not built.
fn an_engine_lost_mid_run_fails_only_its_images() {
    let Some(_engine) = engine::engine_test() else { return };
    let (home, mut worker) = (SecondEngine::start(), SecondEngine::start());
    let nonce =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let manifest = format!(
        r#"
allow runs-as-root
registry "kiln-it/pool-lost"
image base {{
    from "kiln-test/busybox:1"
    run "echo base > /base.txt"
}}
image slow {{
    needs "far"
    from image=base
    run "echo {nonce}" "sleep 30"
}}
image after-slow {{
    from image=slow
    run "true"
}}
image near {{
    from image=base
    run "echo near > /near.txt"
}}
"#
    );
    let test = Test::new().manifest(&manifest);
    let mut child = crate::harness::kiln_command()
        .args(["build", "--network", "none", "--progress", "json", "--engine"])
        .arg(format!("{},slots=2", home.host))
        .arg("--engine")
        .arg(format!("{},slots=2,label=far", worker.host))
        .current_dir(test.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn kiln");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        let event: Value = serde_json::from_str(&line).expect("JSON");
        seen.push(event.clone());
        if event["event"] == "step"
            && event["image"] == "slow"
            && event["step"].as_str().is_some_and(|s| s.contains("sleep"))
        {
            break;
        }
    }
    worker.kill();
    seen.extend(lines.map_while(Result::ok).map(|l| serde_json::from_str::<Value>(&l).expect("JSON")));
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1));
    let ended =
        |image: &str, kind: &str| seen.iter().find(|e| e["image"] == image && e["event"] == kind).cloned();
    let failed = ended("slow", "failed").expect("`slow` failed");
    assert!(
        failed["error"].as_str().is_some_and(|e| e.contains("lost the connection to the engine at")),
        "{failed}"
    );
    assert!(ended("after-slow", "skipped").is_some());
    assert!(ended("near", "finished").is_some());
    let tags = tags_on(&home, "kiln-it/pool-lost");
    assert!(tags.contains(&"kiln-it/pool-lost/near:latest".to_owned()), "{tags:?}");
    assert!(!tags.iter().any(|t| t.contains("/slow:") || t.contains("/after-slow:")), "{tags:?}");
}

pub(crate) const TESTS: &[Case] = &[
    Case::engine("a_pool_builds_each_image_once_where_it_fits", a_pool_builds_each_image_once_where_it_fits),
    Case::engine(
        "an_engine_lost_mid_run_fails_only_its_images",
        an_engine_lost_mid_run_fails_only_its_images,
    ),
    Case::plain("placement_is_planned_and_needs_are_checked", placement_is_planned_and_needs_are_checked),
];

/// `--dry-run` with a pool says where each image would build (nothing is contacted), and
/// an image that needs a label no engine offers stops the run before it starts.
fn placement_is_planned_and_needs_are_checked() {
    let manifest = r#"
allow runs-as-root
image base {
    from "kiln-test/busybox:1"
}
image api {
    from image=base
}
image worker {
    from image=base
}
image trainer {
    needs "gpu"
    from image=base
}
"#;
    let mut test = Test::new().manifest(manifest);
    let output = test
        .args(&[
            "build",
            "--dry-run",
            "--engine",
            "unix:///run/first.sock,slots=2",
            "--engine",
            "tcp://127.0.0.1:1,label=gpu,slots=1",
        ])
        .run();
    insta::assert_snapshot!("pool_dry_run", output.stdout);
    // The same pool from the environment, as a CI sets it once.
    let from_env = Test::new()
        .manifest(manifest)
        .env("KILN_ENGINES", "unix:///run/first.sock,slots=2\n  tcp://127.0.0.1:1,label=gpu,slots=1")
        .args(&["build", "--dry-run"])
        .run();
    assert_eq!(from_env.stdout, output.stdout);
    let output = test
        .args(&["build", "--engine", "unix:///run/first.sock", "--engine", "tcp://127.0.0.1:1"])
        .expect(1)
        .run();
    insta::assert_snapshot!("pool_unmet_needs", output.stderr);
    let output = test.args(&["build", "--dry-run", "--engine", "unix:///run/a.sock,slot=2"]).expect(2).run();
    assert!(output.stderr.contains("an engine takes `slots=N`"), "{}", output.stderr);
}
