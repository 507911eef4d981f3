//! Differential test of the build context: for each of many `.dockerignore` pattern
//! sets, the files kiln sends must be exactly the files the docker CLI sends. The CLI
//! side is the classic builder with `COPY . /ctx`, listed from inside the image.

use crate::Case;
use std::collections::BTreeSet;
use std::path::Path;

use crate::engine::{self, docker, docker_try};

/// A tree with the names that trip pattern matchers up.
#[rustfmt::skip]
const FILES: &[&str] = &[
    "a.txt", "b.md", "c.MD", "README", "readme.md", ".hidden", ".env", ".env.local",
    "docs/readme.md", "docs/guide/intro.md", "docs/keep/x.md", "docs/sub/deep/y.txt",
    "src/main.rs", "src/lib/mod.rs", "src/lib/test_util.rs", "src/.cache/z",
    "build/out.o", "build/keep.txt", "build/sub/keep.txt",
    "node_modules/pkg/index.js", "node_modules/.bin/tool",
    "x.pyc", "pkg/__pycache__/m.pyc", "pkg/m.py",
    "a/b/c/d.txt", "a/b/e.txt", "abc", "axb", "a.b", "ab",
    "dir with space/f.txt", "spaced.txt", "file[1].txt", "weird(1).txt", "plus+sign.txt",
    ".git/HEAD", ".git/objects/ab/cd",
    "logs/2024/jan.log", "logs/keep.log", "util/docker/web/foo",
];

const PATTERN_SETS: &[&[&str]] = &[
    &[],
    &["*"],
    &["*.md"],
    &["**/*.md"],
    &["docs"],
    &["docs/"],
    &["docs/*"],
    &["docs", "!docs/keep"],
    &["docs", "!docs/keep/x.md"],
    &["docs/**", "!docs/keep/**"],
    &["**/keep*"],
    &["*", "!src"],
    &["*", "!src/**"],
    &["**", "!a.txt"],
    &["**", "!util/docker/web"],
    &["a**b"],
    &["a*b"],
    &["a?b"],
    &["a[b-x]b"],
    &["[!a]*"],
    &["[^a]*"],
    &["/docs"],
    &["./src"],
    &["src/../docs"],
    &["  spaced.txt  ", "dir with space"],
    &["#comment", "b.md"],
    &[" #notcomment", "README"],
    &["**/__pycache__", "*.pyc"],
    &["node_modules", ".git"],
    &[".*"],
    &[".*", "!.env"],
    &["build", "!build/keep.txt"],
    &["build", "!build/**/keep.txt"],
    &["build/*", "!build/sub"],
    &["logs/**/*.log", "!logs/keep.log"],
    &["**/*.log"],
    &["file\\[1\\].txt"],
    &["weird(1).txt", "plus+sign.txt"],
    &["emptydir", "emptyparent/child"],
    &["link", "dirlink"],
    &["docs/**/y.txt"],
    &["**/deep"],
    &["a/b", "!a/b/e.txt"],
    &["*/*"],
    &["!a.txt", "*.txt"],
    &["src/lib", "!src/lib/mod.rs", "src/lib/mod.rs"],
    &["**/.cache", "src/main.rs"],
    &["docs", "!**/x.md"],
];

fn make_tree(root: &Path) {
    for file in FILES {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, file).expect("write");
    }
    std::fs::create_dir_all(root.join("emptydir")).expect("mkdir");
    std::fs::create_dir_all(root.join("emptyparent/child")).expect("mkdir");
    std::os::unix::fs::symlink("a.txt", root.join("link")).expect("symlink");
    std::os::unix::fs::symlink("docs", root.join("dirlink")).expect("symlink");
    std::fs::write(root.join("Dockerfile"), format!("FROM {}\nCOPY . /ctx\n", engine::BUSYBOX))
        .expect("Dockerfile");
}

/// The Dockerfile and the ignore file reach the builder whatever the patterns; they are
/// not part of what is compared.
fn is_build_file(path: &str) -> bool {
    path == "Dockerfile" || path == ".dockerignore"
}

fn cli_listing(root: &Path, tag: &str) -> BTreeSet<String> {
    let output = engine::docker_build_classic(root, &["-q", "-t", tag, "."]);
    assert!(output.status.success(), "docker build failed: {}", String::from_utf8_lossy(&output.stderr));
    let listing =
        docker(&["run", "--rm", "--network", "none", "--pull", "never", "--entrypoint", "find", tag, "/ctx"]);
    let _ = docker_try(&["rmi", "-f", tag]);
    listing
        .lines()
        .filter_map(|line| line.strip_prefix("/ctx/"))
        .filter(|path| !is_build_file(path))
        .map(str::to_owned)
        .collect()
}

fn kiln_listing(root: &Path, patterns: &str) -> BTreeSet<String> {
    let context = kiln_context::Context::new(root, patterns).expect("kiln context");
    let mut paths = BTreeSet::new();
    for entry in context.entries {
        // Parents of an included file exist in the image even when the tar has no entry
        // for them (Docker creates them on extraction).
        let mut path = entry.path.as_str();
        loop {
            paths.insert(path.to_owned());
            match path.rsplit_once('/') {
                Some((parent, _)) => path = parent,
                None => break,
            }
        }
    }
    paths.retain(|p| !is_build_file(p));
    paths
}

fn kiln_sends_what_the_docker_cli_sends() {
    if !engine::available() {
        return;
    }
    let _engine = engine::ENGINE_LOCK.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    assert!(PATTERN_SETS.len() >= 40);
    let dir = tempfile::tempdir().expect("temp dir");
    make_tree(dir.path());
    let mut mismatches = Vec::new();
    for (number, patterns) in PATTERN_SETS.iter().enumerate() {
        let text = patterns.join("\n") + "\n";
        std::fs::write(dir.path().join(".dockerignore"), &text).expect("write .dockerignore");
        let tag = format!("kiln-difftest-{}:{number}", std::process::id());
        let cli = cli_listing(dir.path(), &tag);
        let kiln = kiln_listing(dir.path(), &text);
        if patterns.is_empty() {
            // Sanity: with no pattern, everything is there (files, folders, links).
            assert!(
                cli.len() > FILES.len() && cli.contains("dir with space/f.txt") && cli.contains("link"),
                "{cli:?}"
            );
        }
        if cli != kiln {
            let only_cli: Vec<&String> = cli.difference(&kiln).collect();
            let only_kiln: Vec<&String> = kiln.difference(&cli).collect();
            mismatches.push(format!(
                "{patterns:?}: only the CLI sends {only_cli:?}; only kiln sends {only_kiln:?}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} pattern sets differ:\n{}",
        mismatches.len(),
        PATTERN_SETS.len(),
        mismatches.join("\n")
    );
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] =
    &[Case::engine("kiln_sends_what_the_docker_cli_sends", kiln_sends_what_the_docker_cli_sends)];
