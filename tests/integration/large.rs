//! Contexts of real size: 5,000 files and more, paths past 200 characters, names with
//! blanks, quotes and non-ASCII letters, symbolic links, ignored folders. Each is built
//! with both builders, and with a secret (BuildKit), and the image's copy of the context
//! is compared with the folder, file by file. What the image records of its inputs stays
//! a few KB whatever the context.

use std::collections::BTreeMap;
use std::path::Path;

use crate::Case;
use crate::engine::{self, Cleanup};
use crate::harness::Test;
use crate::import::files as image_files;

/// Files in the context (folders and links come on top).
const FILES: usize = 5_000;

/// Files of a context of about 1,500 entries (with its 920 folders): where builds
/// failed before records were bounded (a hash per entry in a label, in the build call's
/// URL, past its 64 KiB: "uri too long"; past 2,000 entries they were dropped).
const FAILED_BEFORE: usize = 600;

/// What the record of an image's inputs (its `dev.kiln.inputs` label) may weigh.
const MAX_RECORD: usize = 4096;

/// A path segment of 60 characters, so that four of them make paths past 240.
fn segment(index: usize) -> String {
    format!("{:-<56}{index:04}", format!("folder {index} ‘é’ #{index}"))
}

/// Writes the context: `files` files under 40 top-level folders, three levels deep, of
/// sizes from 0 to 64 KiB, plus links, and what the ignore rules leave out. Returns what
/// the image's `/ctx` must hold: path → description (as `import::files` describes them).
fn write_context(root: &Path, files: usize) -> BTreeMap<String, String> {
    let mut expected = BTreeMap::new();
    for index in 0..files {
        let dir = format!("{}/{}/{}", segment(index % 40), segment(index % 7), segment(index % 3));
        let name = match index % 5 {
            0 => format!("plain-{index}.txt"),
            1 => format!("with blank {index}.txt"),
            2 => format!("quote's \"{index}\".md"),
            3 => format!("ünïcødé-{index}.rs"),
            _ => format!("$dollar-{index}"),
        };
        let path = format!("{dir}/{name}");
        let size = (index * 7919) % 65_536 * usize::from(index % 11 != 0);
        let content: Vec<u8> =
            (0..size).map(|i| u8::try_from((i * 31 + index) % 256).expect("a byte")).collect();
        let file = root.join(&path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, &content).expect("write");
        expected.insert(format!("ctx/{path}"), content);
    }
    // What the manifest's ignore rules leave out: 2,000 more files.
    for index in 0..2_000 {
        let path = root.join(segment(index % 40)).join("node_modules").join(format!("dep-{index}.js"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, "ignored").expect("write");
        std::fs::write(root.join(segment(index % 40)).join(format!("trace-{index}.log")), "ignored")
            .expect("write");
    }
    let mut expected: BTreeMap<String, String> =
        expected.into_iter().map(|(path, content)| (path, describe_file(&content))).collect();
    // Links, relative, to a file and to a folder, and one that points nowhere.
    for (index, target) in
        [segment(1), format!("{}/{}", segment(2), segment(2)), "missing".to_owned()].iter().enumerate()
    {
        let link = format!("link-{index}");
        std::os::unix::fs::symlink(target, root.join(&link)).expect("symlink");
        expected.insert(format!("ctx/{link}"), format!("Symlink 777 0:0 {target}  (0 bytes)"));
    }
    expected
}

/// A regular file as `import::files` describes it (root-owned, mode 644 as written).
fn describe_file(content: &[u8]) -> String {
    format!(
        "Regular 644 0:0  {} ({} bytes)",
        String::from_utf8_lossy(content).chars().take(200).collect::<String>(),
        content.len()
    )
}

fn manifest(registry: &str, secret: bool) -> String {
    let run = if secret {
        "    run \"test -s /run/secrets/token\" \"echo secret-read > /secret.txt\" {\n        secret token\n    }\n"
    } else {
        ""
    };
    format!(
        "dockerfile-level \"1.2\"\nallow runs-as-root\nregistry \"{registry}\"\nimage big {{\n    from \"{busybox}\"\n    ignore \"**/node_modules\" \"**/*.log\"\n{run}    copy \".\" \"/ctx\"\n}}\n",
        busybox = engine::BUSYBOX
    )
}

/// Builds a context of `files` files with `builder`, with a secret or not, and compares
/// `/ctx`.
fn build_and_compare(builder: &str, secret: bool, files: usize) {
    let _engine = engine::engine_test();
    let registry = format!("kiln-it/large-{builder}-{files}{}", if secret { "-secret" } else { "" });
    let mut test = Test::new().manifest(&manifest(&registry, secret));
    let expected = write_context(test.path(), files);
    let outside = tempfile::tempdir().expect("temp dir");
    let token = outside.path().join("token");
    std::fs::write(&token, "s3cr3t").expect("write");
    let secret_flag = format!("id=token,src={}", token.display());
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let mut args = vec!["build", "--network", "none", "--builder", builder, "--progress", "plain", "-q"];
    if secret {
        args.extend(["--secret", &secret_flag]);
    }
    test.args(&args).run();
    let image = format!("{registry}/big:latest");
    let found: BTreeMap<String, String> = image_files(&image)
        .into_iter()
        .filter(|(path, _)| path.starts_with("ctx/"))
        .filter(|(_, description)| !description.starts_with("Directory"))
        .collect();
    let missing: Vec<&String> = expected.keys().filter(|p| !found.contains_key(*p)).take(5).collect();
    let extra: Vec<&String> = found.keys().filter(|p| !expected.contains_key(*p)).take(5).collect();
    let differ: Vec<&String> =
        expected.keys().filter(|p| found.get(*p).is_some_and(|d| d != &expected[*p])).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "{} expected, {} found; missing {missing:?}, extra {extra:?}, differing {:?}",
        expected.len(),
        found.len(),
        differ.iter().map(|p| (p, &expected[*p], &found[*p])).collect::<Vec<_>>()
    );
    if secret {
        assert_eq!(engine::run_in_image(&image, "cat", &["/secret.txt"]), "secret-read\n");
    }
    let record = engine::docker(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"dev.kiln.inputs\"}}",
        &image,
    ]);
    assert!(record.len() < MAX_RECORD, "the record is {} bytes: {record}", record.len());
}

fn a_context_of_5000_files_builds_with_buildkit() {
    build_and_compare("buildkit", false, FILES);
}

fn a_context_of_5000_files_builds_with_the_classic_builder() {
    build_and_compare("classic", false, FILES);
}

fn a_context_of_1500_entries_builds() {
    build_and_compare("classic", false, FAILED_BEFORE);
}

fn a_context_of_5000_files_builds_with_a_secret() {
    build_and_compare("buildkit", true, FILES);
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::engine(
        "a_context_of_5000_files_builds_with_buildkit",
        a_context_of_5000_files_builds_with_buildkit,
    ),
    Case::engine(
        "a_context_of_5000_files_builds_with_the_classic_builder",
        a_context_of_5000_files_builds_with_the_classic_builder,
    ),
    Case::engine(
        "a_context_of_5000_files_builds_with_a_secret",
        a_context_of_5000_files_builds_with_a_secret,
    ),
    Case::engine("a_context_of_1500_entries_builds", a_context_of_1500_entries_builds),
];
