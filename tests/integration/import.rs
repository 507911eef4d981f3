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
use crate::engine::{self, Cleanup, Removed};
use crate::harness::{Test, kiln, repo_root};

/// What an image holds: per path, its type, mode, owner and content (or link target).
pub(crate) fn files(image: &str) -> BTreeMap<String, String> {
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
        // The entry's, not the header's: a long or non-ASCII target is in an extension.
        let link =
            entry.link_name().ok().flatten().map(|l| l.to_string_lossy().into_owned()).unwrap_or_default();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).expect("content");
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
pub(crate) fn config(image: &str) -> BTreeMap<&'static str, Value> {
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

/// What a corpus folder expects, from its optional `kiln-import-case` file: `builders
/// classic buildkit` (the default), `builders buildkit`, or `builders none` for a
/// Dockerfile that Engine 20.10's builders cannot build (heredocs, `COPY --link`: the
/// parse oracle covers those); `differences L1 L2` for the Dockerfile lines that import
/// must report as differences (then it is run with `--accept-differences`).
struct Expect {
    builders: Vec<kiln_engine::Builder>,
    differences: Vec<usize>,
}

fn expect(dir: &Path) -> Expect {
    let text = std::fs::read_to_string(dir.join("kiln-import-case")).unwrap_or_default();
    let mut expect = Expect {
        builders: vec![kiln_engine::Builder::Classic, kiln_engine::Builder::BuildKit],
        differences: Vec::new(),
    };
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("builders") => {
                expect.builders = words
                    .filter_map(|w| match w {
                        "classic" => Some(kiln_engine::Builder::Classic),
                        "buildkit" => Some(kiln_engine::Builder::BuildKit),
                        _ => None,
                    })
                    .collect();
            }
            Some("differences") => expect.differences = words.filter_map(|w| w.parse().ok()).collect(),
            _ => {}
        }
    }
    expect
}

fn builder_flag(builder: kiln_engine::Builder) -> &'static str {
    match builder {
        kiln_engine::Builder::Classic => "classic",
        kiln_engine::Builder::BuildKit => "buildkit",
    }
}

/// Oracle 2 for import: each Dockerfile under `tests/import/` is built as it is, then
/// imported and built by kiln, with each builder it can use; both images must hold the
/// same files and configuration. Import reports exactly the differences the case
/// expects, at their lines.
fn dockerfiles_round_trip_through_import() {
    let Some(_engine) = engine::engine_test() else { return };
    let corpus = repo_root().join("tests/import");
    let mut cases: Vec<String> = std::fs::read_dir(&corpus)
        .expect("tests/import")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "the corpus has {} Dockerfiles", cases.len());
    let mut mismatches = Vec::new();
    let mut builds = 0;
    for case in &cases {
        let test = Test::new();
        kiln_testkit::copy_tree(&corpus.join(case), test.path());
        let expect = expect(test.path());
        let mut originals = Vec::new();
        // Removed however the case ends.
        let mut built_originals = Removed(Vec::new());
        for &builder in &expect.builders {
            let original = format!("kiln-it/import-original/{case}:{}", builder_flag(builder));
            built_originals.0.push(original.clone());
            let built = engine::build_dockerfile(test.path(), builder, &original);
            assert!(built.is_ok(), "{case}: the original with {}: {built:?}", builder_flag(builder));
            originals.push((builder, original));
        }
        let name = format!("imported-{case}");
        let mut args = vec!["import".to_owned(), "--name".to_owned(), name.clone(), "--json".to_owned()];
        if !expect.differences.is_empty() {
            args.push("--accept-differences".to_owned());
        }
        let imported = kiln(test.path(), &args, &[]);
        assert_eq!(imported.status, 0, "{case}: {}", imported.stderr);
        let report: Value = serde_json::from_str(&imported.stdout).expect("JSON");
        let mut reported: Vec<usize> = report["notes"]
            .as_array()
            .expect("notes")
            .iter()
            .filter(|n| n["kind"] == "difference")
            .filter_map(|n| n["line"].as_u64().and_then(|l| usize::try_from(l).ok()))
            .collect();
        reported.dedup();
        if reported != expect.differences {
            mismatches.push(format!(
                "{case}: differences at lines {reported:?}, expected {:?}",
                expect.differences
            ));
        }
        let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
        let emitted = kiln(test.path(), &["emit".to_owned()], &[]);
        assert_eq!(emitted.status, 0, "{case}: {}", emitted.stderr);
        for (builder, original) in &originals {
            let build = kiln(
                test.path(),
                &[
                    "build",
                    "--network",
                    "none",
                    "--builder",
                    builder_flag(*builder),
                    "--progress",
                    "plain",
                    "-q",
                ]
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
            builds += 1;
            let ours = format!("{name}:latest");
            let (theirs_files, ours_files) = (files(original), files(&ours));
            let (theirs_config, ours_config) = (config(original), config(&ours));
            let label = format!("{case} ({})", builder_flag(*builder));
            for (path, description) in &theirs_files {
                if ours_files.get(path) != Some(description) {
                    mismatches.push(format!("{label}: /{path}: {description} vs {:?}", ours_files.get(path)));
                }
            }
            for path in ours_files.keys().filter(|p| !theirs_files.contains_key(*p)) {
                mismatches.push(format!("{label}: /{path} is only in kiln's image"));
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
                    mismatches.push(format!("{label}: {key}: {value} vs {}", ours_config[key]));
                }
            }
        }
    }
    assert!(builds >= 40, "only {builds} builds compared");
    assert!(mismatches.is_empty(), "{} differences:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// Differences are reported with the Dockerfile's line and column, and nothing is written
/// unless they are accepted; nothing is overwritten; a Dockerfile Docker refuses, or a
/// node the manifest refuses, is reported at its Dockerfile line.
fn import_reports_what_it_cannot_say_and_keeps_files() {
    let corpus = repo_root().join("tests/import");
    let mut test = Test::new();
    kiln_testkit::copy_tree(&corpus.join("onbuild"), test.path());
    let refused = test.args(&["import", "--name", "base"]).expect(1).run();
    assert!(
        refused.stderr.contains("difference: Dockerfile:2:1: `ONBUILD COPY . /app` cannot be said"),
        "{}",
        refused.stderr
    );
    assert!(!test.path().join("kiln.kdl").exists(), "a manifest with differences was written");
    let accepted = test.args(&["import", "--name", "base", "--accept-differences"]).run();
    assert!(accepted.stderr.contains("1 difference"), "{}", accepted.stderr);
    insta::assert_snapshot!("import_onbuild", test.read("kiln.kdl"));
    let again = test.args(&["import", "--name", "base", "--accept-differences"]).expect(2).run();
    assert!(again.stderr.contains("kiln import does not overwrite it"), "{}", again.stderr);
    let json = test.args(&["import", "--force", "--json", "-o", "other.kdl", "--accept-differences"]).run();
    let value: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        (&value["notes"][0]["line"], &value["notes"][0]["column"]),
        (&Value::from(2), &Value::from(1))
    );
    assert_eq!(value["notes"][0]["kind"], "difference");
    assert!(Path::new(&test.path().join("other.kdl")).exists());

    // Docker's own refusal, at its line.
    let bad = Test::new();
    std::fs::write(bad.path().join("Dockerfile"), "FROM kiln-test/busybox:1\nRUN <<EOF\necho never ends\n")
        .expect("write");
    let mut bad = bad;
    let refused = bad.args(&["import"]).expect(2).run();
    insta::assert_snapshot!("import_refused_by_docker", refused.stderr);
    // A node the manifest refuses, at the Dockerfile line it came from.
    let relative = Test::new();
    std::fs::write(relative.path().join("Dockerfile"), "FROM kiln-test/busybox:1\nCOPY ../outside /x\n")
        .expect("write");
    let mut relative = relative;
    let refused = relative.args(&["import"]).expect(2).run();
    assert!(
        refused.stderr.contains("error: Dockerfile:2:1: the manifest cannot say this:"),
        "{}",
        refused.stderr
    );
}

pub(crate) const TESTS: &[Case] = &[
    Case::engine("dockerfiles_round_trip_through_import", dockerfiles_round_trip_through_import),
    Case::plain(
        "import_reports_what_it_cannot_say_and_keeps_files",
        import_reports_what_it_cannot_say_and_keeps_files,
    ),
];
