//! Pins as leases (`kiln_marks::pin`): what a running build uses is never removed by
//! `rmi`, `clean` or `prune`; what a run that is gone left behind is removed; and a build
//! survives other clients removing images on the engine while it runs.

use crate::Case;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::engine::{self, Cleanup, docker, docker_try, image_id};
use crate::harness::{Test, kiln};

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A pin as a run on another machine, started `age` seconds ago, would have made.
fn pin_of_another_machine(image: &str, age: u64) -> String {
    format!("kiln.local/run-feedf00d-4242-{}/{image}:0123456789abcdef", unix_now() - age)
}

/// A base and an app whose build takes a while (never found in the layer cache: the
/// step is new to every run).
fn manifest(namespace: &str) -> String {
    let nonce = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!(
        "registry \"kiln-it/{namespace}\"\nimage base {{\n    from \"kiln-test/busybox:1\"\n    run \"echo base > /base.txt\"\n}}\nimage app {{\n    from image=base\n    run \"echo {nonce}\" \"sleep 8\"\n    cmd \"cat\" \"/base.txt\"\n}}\n"
    )
}

/// Starts `kiln build` of [`manifest`] and returns once `app` runs its long step, with
/// the rest of its JSON events.
fn start_build_until_long_step(
    dir: &std::path::Path,
    args: &[&str],
) -> (std::process::Child, std::io::Lines<BufReader<std::process::ChildStdout>>) {
    let mut child = crate::harness::kiln_command()
        .args(["build", "--network", "none", "--progress", "json"])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kiln");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let deadline = Instant::now() + Duration::from_mins(1);
    for line in lines.by_ref() {
        let event: Value = serde_json::from_str(&line.expect("a line")).expect("JSON");
        if event["event"] == "step"
            && event["image"] == "app"
            && event["step"].as_str().is_some_and(|s| s.contains("sleep"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the build never reached its long step");
    }
    (child, lines)
}

fn build(test: &mut Test, args: &[&str]) {
    let mut all = vec!["build", "--network", "none", "--progress", "plain", "-q"];
    all.extend_from_slice(args);
    test.args(&all).run();
}

fn clean_never_removes_what_a_running_build_uses() {
    if !engine::available() {
        return;
    }
    let _engine = engine::ENGINE_LOCK.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let test = Test::new().manifest(&manifest("in-use"));
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    // `base` is built, pinned and in use.
    let (mut child, lines) = start_build_until_long_step(test.path(), &[]);
    let clean = kiln(test.path(), &["clean".to_owned()], &[]);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert_eq!(clean.status, 1, "{}", clean.stderr);
    assert!(
        clean.stderr.contains("cannot remove base")
            && clean.stderr.contains("a running `kiln build` (pid ")
            && clean.stderr.contains("on this machine"),
        "{}",
        clean.stderr
    );
    assert_eq!(status.code(), Some(0), "the build failed after `clean`: {rest:#?}");
    assert_eq!(engine::run_image("kiln-it/in-use/app:latest"), "base\n");
    // Once the build is over, nothing holds the images any more.
    let last = kiln(test.path(), &["clean".to_owned()], &[]).success();
    assert!(image_id("kiln-it/in-use/base:latest").is_none(), "{}\n{}", last.stdout, last.stderr);
}

fn a_live_pin_keeps_an_image_from_rmi_clean_and_prune() {
    if !engine::available() {
        return;
    }
    let _engine = engine::ENGINE_LOCK.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut test = Test::new().manifest(&manifest("leased"));
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    build(&mut test, &["base"]);
    let old = image_id("kiln-it/leased/base:latest").expect("base");
    build(&mut test, &["--label", "rev=2", "base"]);
    // The superseded build is pinned by a run on another machine, started an hour ago.
    let pin = pin_of_another_machine("base", 3600);
    docker(&["tag", &old, &pin]);
    let dry = test.args(&["prune", "--dry-run", "--json"]).run();
    let listed: Value = serde_json::from_str(&dry.stdout).expect("JSON");
    assert!(
        listed[0]["in_use_by"].as_str().is_some_and(|s| s.starts_with("a running `kiln build`")),
        "{listed:#}"
    );
    let prune = test.args(&["prune"]).run();
    assert!(
        prune.stderr.contains("kept base") && prune.stderr.contains("on another machine"),
        "{}",
        prune.stderr
    );
    assert!(image_id(&old).is_some(), "prune removed a pinned build");
    let rmi = test.args(&["rmi", "base"]).expect(1).run();
    assert!(rmi.stderr.contains("cannot remove base") && rmi.stderr.contains("uses it"), "{}", rmi.stderr);
    assert!(image_id(&old).is_some(), "rmi removed a pinned build");
    let clean = test.args(&["clean"]).expect(1).run();
    assert!(clean.stderr.contains("cannot remove base"), "{}", clean.stderr);
    assert!(image_id(&old).is_some(), "clean removed a pinned build");
    assert!(image_id("kiln-it/leased/base:latest").is_none(), "clean kept the build nobody uses");
    let _ = docker_try(&["rmi", &pin]);
}

fn pins_of_runs_that_are_gone_are_removed() {
    if !engine::available() {
        return;
    }
    // Alone: any `kiln build` removes every pin of a run that is gone.
    let _alone = engine::ENGINE_LOCK.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut test = Test::new().manifest(&manifest("stale"));
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    build(&mut test, &["base"]);
    let id = image_id("kiln-it/stale/base:latest").expect("base");
    // Left by runs that are gone: one from another machine two days ago, one from a
    // process of this machine that no longer exists (pids are below 2^22 on Linux).
    let remote = pin_of_another_machine("base", 2 * 86_400);
    docker(&["tag", &id, &remote]);
    let dry: Value =
        serde_json::from_str(&test.args(&["prune", "--dry-run", "--json"]).run().stdout).expect("JSON");
    assert!(
        dry.as_array()
            .expect("a list")
            .iter()
            .any(|r| r["tags"][0] == remote.as_str() && r["whole"] == false),
        "{dry:#}"
    );
    assert!(image_id(&remote).is_some(), "--dry-run removed a pin");
    let prune = test.args(&["prune"]).run();
    assert!(prune.stdout.contains(&format!("removed tag {remote}")), "{}", prune.stdout);
    assert!(image_id(&remote).is_none());
    // A run that builds removes them too (a run that builds nothing leaves the engine
    // as it is).
    docker(&["tag", &id, &remote]);
    build(&mut test, &["--label", "rev=2", "base"]);
    assert!(image_id(&remote).is_none(), "a build left a dead run's pin");
    assert!(image_id("kiln-it/stale/base:latest").is_some());
}

fn classic_builds_survive_images_removed_meanwhile() {
    if !engine::available() {
        return;
    }
    // Alone: the churn would make other tests' `docker build`s retry too.
    let _alone = engine::ENGINE_LOCK.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    // Each image's last stage starts `FROM scratch`: the classic builder's cache probe
    // for its first step reads every image without a parent, so any removal on the
    // engine meanwhile can fail it.
    let mut manifest = String::from("registry \"kiln-it/churn\"\n");
    for n in 0..10 {
        manifest.push_str(&format!(
            "image i{n} {{\n    stage build {{\n        from \"kiln-test/busybox:1\"\n        run \"echo {n} > /n\"\n    }}\n    stage out {{\n        from \"scratch\"\n        copy \"/n\" \"/n\" from=build\n    }}\n}}\n"
        ));
    }
    let mut test = Test::new().manifest(&manifest).file("f.txt", "churn\n");
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        let dir = test.path().to_path_buf();
        let tag = format!("kiln-it/churn-{}", std::process::id());
        std::thread::spawn(move || {
            // Parentless images, imported and removed as fast as the engine goes.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for n in 0..4 {
                    let _ = Command::new("sh")
                        .arg("-c")
                        .arg(format!("tar -C '{}' -c f.txt | docker import - {tag}:{n}", dir.display()))
                        .output();
                }
                for n in 0..4 {
                    let _ = docker_try(&["rmi", &format!("{tag}:{n}")]);
                }
            }
        })
    };
    for args in [&["--builder", "classic"][..], &["--builder", "classic", "--rebuild"]] {
        let mut all = vec!["build", "--network", "none", "--progress", "plain"];
        all.extend_from_slice(args);
        let output = test.args(&all).run_unchecked();
        if output.status != 0 {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        assert_eq!(output.status, 0, "{}", output.stderr);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().expect("churn thread");
}

fn an_engine_killed_mid_build_leaves_no_pin_after_the_next_run() {
    if !engine::available() {
        return;
    }
    let mut second = engine::SecondEngine::start();
    let mut test = Test::new().manifest(&manifest("killed"));
    let (mut child, lines) = start_build_until_long_step(test.path(), &["--host", &second.host]);
    second.kill();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1), "{rest:#?}");
    // Said as what happened, not as a transport error.
    assert!(rest.iter().any(|l| l.contains("lost the connection to the engine at unix://")), "{rest:#?}");
    second.restart();
    let pins = |second: &engine::SecondEngine| {
        let (_, listing) = second.docker_try(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        listing.lines().filter(|l| l.starts_with("kiln.local/")).map(str::to_owned).collect::<Vec<_>>()
    };
    assert!(!pins(&second).is_empty(), "the killed run left no pin: nothing to test");
    let output = test
        .args(&["build", "--network", "none", "--progress", "plain", "--host", &second.host])
        .run_unchecked();
    assert_eq!(output.status, 0, "{}", output.stderr);
    assert_eq!(pins(&second), Vec::<String>::new(), "pins left behind");
    let (ok, out) = second.docker_try(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pull",
        "never",
        "kiln-it/killed/app:latest",
    ]);
    assert!(ok && out == "base\n", "{out}");
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::engine(
        "clean_never_removes_what_a_running_build_uses",
        clean_never_removes_what_a_running_build_uses,
    ),
    Case::engine(
        "a_live_pin_keeps_an_image_from_rmi_clean_and_prune",
        a_live_pin_keeps_an_image_from_rmi_clean_and_prune,
    ),
    Case::engine("pins_of_runs_that_are_gone_are_removed", pins_of_runs_that_are_gone_are_removed),
    Case::engine(
        "classic_builds_survive_images_removed_meanwhile",
        classic_builds_survive_images_removed_meanwhile,
    ),
    Case::engine(
        "an_engine_killed_mid_build_leaves_no_pin_after_the_next_run",
        an_engine_killed_mid_build_leaves_no_pin_after_the_next_run,
    ),
];
