//! `kiln import` on the corpus under `tests/import/` (one folder per Dockerfile, with its
//! context): each is built as it is with `docker build`, then imported and built by kiln;
//! both images must hold the same files (path, type, mode, owner, content) and the same
//! configuration (command, entrypoint, environment, user, working directory, ports,
//! volumes, stop signal, health check, shell, the Dockerfile's labels).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::Case;
use crate::engine::{self, Cleanup};
use crate::harness::{Test, kiln, repo_root};

/// What an image holds: per path, its type, mode, owner and content (or link target).
fn files(image: &str) -> BTreeMap<String, String> {
    let created = engine::docker(&["create", "--network", "none", image, "x"]);
    let container = created.trim();
    let export = Command::new("docker").args(["export", container]).output().expect("docker export");
    engine::docker(&["rm", container]);
    assert!(export.status.success(), "docker export {image}");
    let mut archive = tar::Archive::new(export.stdout.as_slice());
    let mut files = BTreeMap::new();
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("an entry");
        let path = entry.path().expect("a path").to_string_lossy().into_owned();
        // What `docker create` itself adds to every container.
        if [".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab"].contains(&path.as_str())
            || ["dev/", "proc/", "sys/"].iter().any(|p| path.starts_with(p))
        {
            continue;
        }
        let header = entry.header().clone();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).expect("content");
        let link =
            header.link_name().ok().flatten().map(|l| l.to_string_lossy().into_owned()).unwrap_or_default();
        let description = format!(
            "{:?} {:o} {}:{} {} {}",
            header.entry_type(),
            header.mode().unwrap_or(0) & 0o7777,
            header.uid().unwrap_or(0),
            header.gid().unwrap_or(0),
            link,
            String::from_utf8_lossy(&content).chars().take(200).collect::<String>()
                + &format!(" ({} bytes)", content.len())
        );
        files.insert(path.trim_end_matches('/').to_owned(), description);
    }
    files
}

/// The configuration both builds must agree on. A shell-form health check is the same
/// check as its exec form under the image's shell (`/bin/sh -c` unless `SHELL` says).
fn config(image: &str) -> BTreeMap<&'static str, Value> {
    let text = engine::docker(&["image", "inspect", "--format", "{{json .Config}}", image]);
    let config: Value = serde_json::from_str(&text).expect("JSON");
    let mut fields = BTreeMap::new();
    for key in
        ["Cmd", "Entrypoint", "Env", "WorkingDir", "User", "ExposedPorts", "Volumes", "StopSignal", "Shell"]
    {
        fields.insert(key, config[key].clone());
    }
    let mut health = config["Healthcheck"].clone();
    if let Some(test) = health.get("Test").and_then(Value::as_array).cloned()
        && test.first().and_then(Value::as_str) == Some("CMD-SHELL")
    {
        let shell =
            config["Shell"].as_array().cloned().unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        let mut exec = vec![Value::from("CMD")];
        exec.extend(shell);
        exec.extend(test.into_iter().skip(1));
        health["Test"] = Value::Array(exec);
    }
    fields.insert("Healthcheck", health);
    fields.insert("Labels", config["Labels"].clone());
    fields
}

fn dockerfiles_round_trip_through_import() {
    let Some(_engine) = engine::engine_test() else { return };
    let corpus = repo_root().join("tests/import");
    let mut cases: Vec<String> = std::fs::read_dir(&corpus)
        .expect("tests/import")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "the corpus has {} Dockerfiles", cases.len());
    let mut mismatches = Vec::new();
    for case in &cases {
        let test = Test::new();
        kiln_testkit::copy_tree(&corpus.join(case), test.path());
        let original = format!("kiln-it/import-original/{case}:1");
        let built = Command::new("docker")
            .args(["build", "-q", "--network", "none", "-t", &original, "."])
            .env("DOCKER_BUILDKIT", "0")
            .current_dir(test.path())
            .output()
            .expect("docker build");
        assert!(built.status.success(), "{case}: docker build: {}", String::from_utf8_lossy(&built.stderr));
        let name = format!("imported-{case}");
        let imported = kiln(test.path(), &["import".into(), "--name".into(), name.clone()], &[]);
        assert_eq!(imported.status, 0, "{case}: {}", imported.stderr);
        let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
        let build = kiln(
            test.path(),
            &["build", "--network", "none", "--builder", "classic", "--progress", "plain", "-q"]
                .map(String::from),
            &[],
        );
        assert_eq!(
            build.status,
            0,
            "{case}: {}\n{}",
            build.stderr,
            std::fs::read_to_string(test.path().join("kiln.kdl")).unwrap_or_default()
        );
        let ours = format!("{name}:latest");
        let (theirs_files, ours_files) = (files(&original), files(&ours));
        let (theirs_config, ours_config) = (config(&original), config(&ours));
        engine::docker(&["rmi", &original]);
        for (path, description) in &theirs_files {
            if ours_files.get(path) != Some(description) {
                mismatches.push(format!("{case}: /{path}: {description} vs {:?}", ours_files.get(path)));
            }
        }
        for path in ours_files.keys().filter(|p| !theirs_files.contains_key(*p)) {
            mismatches.push(format!("{case}: /{path} is only in kiln's image"));
        }
        for (key, value) in &theirs_config {
            let same = if *key == "Labels" {
                value
                    .as_object()
                    .is_none_or(|labels| labels.iter().all(|(k, v)| ours_config[key].get(k) == Some(v)))
            } else {
                ours_config.get(key) == Some(value)
            };
            if !same {
                mismatches.push(format!("{case}: {key}: {value} vs {}", ours_config[key]));
            }
        }
    }
    assert!(mismatches.is_empty(), "{} differences:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// What cannot be said is reported with the Dockerfile's line, and nothing is overwritten.
fn import_reports_what_it_cannot_say_and_keeps_files() {
    let corpus = repo_root().join("tests/import");
    let mut test = Test::new();
    kiln_testkit::copy_tree(&corpus.join("onbuild"), test.path());
    let first = test.args(&["import", "--name", "base"]).run();
    assert!(first.stderr.contains("Dockerfile:2: `ONBUILD COPY . /app` cannot be said"), "{}", first.stderr);
    insta::assert_snapshot!("import_onbuild", test.read("kiln.kdl"));
    let again = test.args(&["import", "--name", "base"]).expect(2).run();
    assert!(again.stderr.contains("kiln import does not overwrite it"), "{}", again.stderr);
    let json = test.args(&["import", "--force", "--json", "-o", "other.kdl"]).run();
    let value: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(value["notes"][0]["line"], 2);
    assert!(Path::new(&test.path().join("other.kdl")).exists());
}

pub(crate) const TESTS: &[Case] = &[
    Case::engine("dockerfiles_round_trip_through_import", dockerfiles_round_trip_through_import),
    Case::plain(
        "import_reports_what_it_cannot_say_and_keeps_files",
        import_reports_what_it_cannot_say_and_keeps_files,
    ),
];
