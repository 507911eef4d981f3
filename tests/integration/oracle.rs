//! The engine is the oracle: hostile values go through a manifest, kiln builds the image
//! with each builder, and `docker image inspect` (and the image's files) must show
//! exactly what the manifest says. A value that ended, started, joined or flagged an
//! instruction would show here as a changed or missing value, or a failed build.

use serde_json::Value;

use crate::Case;
use crate::engine::{self, Cleanup, docker, run_in_image};
use crate::harness::Test;
use crate::random::{INVISIBLE, Rng, kdl, kdl_list, kdl_pairs, runnable};

/// What the manifest sets, to compare with what the engine reports.
struct Expected {
    labels: Vec<(String, String)>,
    env: Vec<(String, String)>,
    workdir: String,
    volumes: Vec<String>,
    cmd: Vec<String>,
    entrypoint: Vec<String>,
    health: Vec<String>,
    files: Vec<String>,
    dest: String,
    arg: String,
    build_arg: String,
    shell: Vec<String>,
}

/// A manifest with hostile values in every field, and the files its context needs.
fn hostile_manifest(seed: u64, builder: &str) -> (String, Vec<String>, Expected) {
    let mut rng = Rng(seed);
    // Label values are literal; env and workdir expand `$VAR` as Docker documents, so
    // their hostile values leave `$` out (expansion has its own check below).
    let labels: Vec<(String, String)> = (0..12).map(|i| (format!("org.kiln.v{i}"), rng.hostile())).collect();
    let mut env: Vec<(String, String)> =
        (0..12).map(|i| (format!("V{i}"), rng.hostile_without_dollar())).collect();
    // Through a variable set on the command line, and ending in `\`, which would join
    // the next line (the `user`) if it were written bare.
    let workdir = format!("/w/{}\\", rng.hostile_without_dollar().replace(['\t', '{', '}'], "x"));
    let volumes: Vec<String> =
        (0..3).map(|i| format!("/vol{i}/{}", rng.hostile_without_dollar().trim_end())).collect();
    // Exec-form arguments are JSON: line breaks and invisible characters too.
    let args = |n: usize, rng: &mut Rng| -> Vec<String> {
        (0..n)
            .map(|_| format!("{}\n{}{}", rng.hostile(), INVISIBLE[rng.below(INVISIBLE.len())], rng.hostile()))
            .collect()
    };
    // CMD holds the entrypoint's arguments, where anything goes.
    let cmd = args(4, &mut rng);
    let entrypoint = runnable(args(2, &mut rng));
    let health = runnable(args(3, &mut rng));
    let shell = args(2, &mut rng);
    // File names: no `/`, and none of the glob characters COPY gives a meaning to.
    let mut files: Vec<String> = (0..6)
        .map(|i| {
            let name = rng.hostile().replace(['/', '*', '?', '[', ']'], "_");
            format!("{i}{}", name.trim())
        })
        .collect();
    files.extend(
        [r"back\slash", "$HOME", "${X}", "it's \"q\"", "-dash", "--chmod=777", "#hash", "<<EOF", "a  b"]
            .map(str::to_owned),
    );
    let dest = format!("/dst/{}/", rng.hostile().replace('\t', "x").trim());
    let arg = rng.hostile_without_dollar();
    let build_arg = rng.hostile();

    let sources: Vec<String> = files.iter().map(|f| format!("files/{f}")).collect();
    let manifest = format!(
        r#"registry "kiln-it/oracle-{builder}"
var WORKDIR "/unused"
image hostile {{
    from "{busybox}"
    build-arg FROM_BUILD={build_arg}
    label {labels}
    env {env}
    env EXPANDED="$V0/and/${{V1}}"
    arg HOSTILE_ARG {arg}
    arg FROM_BUILD
    run "printf '%s' \"$HOSTILE_ARG\" > /arg.txt" "printf '%s' \"$FROM_BUILD\" > /build-arg.txt"
    shell {shell}
    workdir "{{WORKDIR}}"
    user "65534:65534"
    expose 8080 "9000/udp"
    copy {sources} {dest}
    volume {volumes}
    entrypoint {entrypoint}
    cmd {cmd}
    healthcheck {health} interval="30s"
    stopsignal "SIGINT"
}}
"#,
        busybox = engine::BUSYBOX,
        labels = kdl_pairs(&labels),
        env = kdl_pairs(&env),
        build_arg = kdl(&build_arg),
        shell = kdl_list(&shell),
        sources = kdl_list(&sources),
        dest = kdl(&dest),
        volumes = kdl_list(&volumes),
        entrypoint = kdl_list(&entrypoint),
        cmd = kdl_list(&cmd),
        health = kdl_list(&health),
        arg = kdl(&arg),
    );
    let expanded = format!("{}/and/{}", env[0].1, env[1].1);
    env.push(("EXPANDED".to_owned(), expanded));
    (
        manifest,
        files.clone(),
        Expected {
            labels,
            env,
            workdir,
            volumes,
            cmd,
            entrypoint,
            health,
            files,
            dest,
            arg,
            build_arg,
            shell,
        },
    )
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map_or_else(Vec::new, |a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
}

/// One seeded round per builder in CI; `KILN_ORACLE_ROUNDS=N` runs more locally.
fn values_reach_the_engine_exactly(builder: &str) {
    let Some(_engine) = engine::engine_test() else { return };
    let rounds: u64 = std::env::var("KILN_ORACLE_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(1);
    for round in 0..rounds {
        one_round(builder, 0x6f72_6163_6c65 + 2 * round + u64::from(builder == "classic"));
    }
}

fn one_round(builder: &str, seed: u64) {
    let (manifest, files, expected) = hostile_manifest(seed, builder);
    let mut test = Test::new().manifest(&manifest);
    for file in &files {
        test = test.file(&format!("files/{file}"), file);
    }
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let set_workdir = format!("WORKDIR={}", expected.workdir);
    let output = test
        .args(&[
            "build",
            "--network",
            "none",
            "--progress",
            "plain",
            "--builder",
            builder,
            "--set",
            &set_workdir,
        ])
        .run_unchecked();
    assert_eq!(output.status, 0, "seed {seed:#x}, manifest:\n{manifest}\n{}", output.stderr);

    let reference = format!("kiln-it/oracle-{builder}/hostile:latest");
    let inspected: Value =
        serde_json::from_str(&docker(&["image", "inspect", "--format", "{{json .Config}}", &reference]))
            .expect("inspect JSON");
    let context = format!("seed {seed:#x}, builder {builder}, manifest:\n{manifest}");
    for (key, value) in &expected.labels {
        assert_eq!(inspected["Labels"][key].as_str(), Some(value.as_str()), "label {key}; {context}");
    }
    let env = strings(&inspected["Env"]);
    for (key, value) in &expected.env {
        assert!(env.contains(&format!("{key}={value}")), "env {key}={value:?} not in {env:?}; {context}");
    }
    assert_eq!(inspected["WorkingDir"].as_str(), Some(expected.workdir.as_str()), "{context}");
    let volumes: Vec<&String> =
        inspected["Volumes"].as_object().map(|v| v.keys().collect()).unwrap_or_default();
    for volume in &expected.volumes {
        assert!(volumes.contains(&volume), "volume {volume:?} not in {volumes:?}; {context}");
    }
    assert_eq!(strings(&inspected["Cmd"]), expected.cmd, "{context}");
    assert_eq!(strings(&inspected["Entrypoint"]), expected.entrypoint, "{context}");
    let mut health = vec!["CMD".to_owned()];
    health.extend(expected.health.iter().cloned());
    assert_eq!(strings(&inspected["Healthcheck"]["Test"]), health, "{context}");
    assert_eq!(inspected["StopSignal"].as_str(), Some("SIGINT"), "{context}");
    assert_eq!(inspected["User"].as_str(), Some("65534:65534"), "{context}");
    assert_eq!(strings(&inspected["Shell"]), expected.shell, "{context}");
    let ports: Vec<&String> =
        inspected["ExposedPorts"].as_object().map(|p| p.keys().collect()).unwrap_or_default();
    assert_eq!(ports, ["8080/tcp", "9000/udp"], "{context}");

    // A build argument's default reached RUN's environment.
    let arg = run_in_image(&reference, "cat", &["/arg.txt"]);
    assert_eq!(arg, expected.arg, "{context}");
    let build_arg = run_in_image(&reference, "cat", &["/build-arg.txt"]);
    assert_eq!(build_arg, expected.build_arg, "{context}");

    // The destination holds exactly the files copied, each with its name and contents.
    // (`find`, not busybox's `ls`, which writes `?` for bytes outside ASCII.)
    let listing = run_in_image(&reference, "find", &[&expected.dest, "-mindepth", "1", "-maxdepth", "1"]);
    let mut listed: Vec<&str> =
        listing.lines().filter_map(|l| l.strip_prefix(expected.dest.as_str())).collect();
    let mut wanted: Vec<&str> = expected.files.iter().map(String::as_str).collect();
    listed.sort_unstable();
    wanted.sort_unstable();
    assert_eq!(listed, wanted, "{context}");
    for file in &expected.files {
        let path = format!("{}{file}", expected.dest);
        let contents = run_in_image(&reference, "cat", &[&path]);
        assert_eq!(&contents, file, "{path:?}; {context}");
    }
}

fn values_reach_the_engine_exactly_with_buildkit() {
    values_reach_the_engine_exactly("buildkit");
}

fn values_reach_the_engine_exactly_with_the_classic_builder() {
    values_reach_the_engine_exactly("classic");
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::engine(
        "values_reach_the_engine_exactly_with_buildkit",
        values_reach_the_engine_exactly_with_buildkit,
    ),
    Case::engine(
        "values_reach_the_engine_exactly_with_the_classic_builder",
        values_reach_the_engine_exactly_with_the_classic_builder,
    ),
];
