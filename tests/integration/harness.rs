//! A small fluent harness: write files into a temporary folder, run `kiln` there, and
//! look at what it printed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The cache folder of this test run (`XDG_CACHE_HOME` for every `kiln` it starts, and
/// its `state` folder `XDG_STATE_HOME`), so that tests never write into the user's own
/// `~/.cache/kiln` or `~/.local/state/kiln`. Set once by `main`.
pub(crate) static CACHE_HOME: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// A command that runs the `kiln` binary under test, with the run's cache folder.
pub(crate) fn kiln_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
    if let Some(cache) = CACHE_HOME.get() {
        command.env("XDG_CACHE_HOME", cache).env("XDG_STATE_HOME", cache.join("state"));
    }
    command
}

/// The repository root (the workspace), for reading examples and fixtures.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

pub(crate) struct Test {
    dir: tempfile::TempDir,
    cwd: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The exit status the next `run` must end with (0 unless `expect` says otherwise).
    expected: i32,
}

pub(crate) struct Output {
    pub(crate) status: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    root: PathBuf,
    canonical_root: String,
}

impl Test {
    pub(crate) fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("kiln-test-").tempdir().expect("temp dir");
        let cwd = dir.path().to_path_buf();
        Self { dir, cwd, args: Vec::new(), env: Vec::new(), expected: 0 }
    }

    /// Writes a file (creating its folders), relative to the test folder.
    pub(crate) fn file(self, path: &str, contents: &str) -> Self {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("a parent")).expect("create folders");
        std::fs::write(full, contents).expect("write file");
        self
    }

    /// The root manifest.
    pub(crate) fn manifest(self, contents: &str) -> Self {
        self.file("kiln.kdl", contents)
    }

    pub(crate) fn dir(self, path: &str) -> Self {
        std::fs::create_dir_all(self.dir.path().join(path)).expect("create folder");
        self
    }

    /// Copies a folder of the repository (such as an example) into the test folder.
    pub(crate) fn copy_from_repo(self, from: &str) -> Self {
        kiln_testkit::copy_tree(&repo_root().join(from), self.dir.path());
        self
    }

    pub(crate) fn current_dir(mut self, sub: &str) -> Self {
        self.cwd = self.dir.path().join(sub);
        self
    }

    pub(crate) fn args(&mut self, args: &[&str]) -> &mut Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    pub(crate) fn exists(&self, path: &str) -> bool {
        self.dir.path().join(path).exists()
    }

    /// The exit status the next `run` must end with, instead of 0.
    pub(crate) fn expect(&mut self, status: i32) -> &mut Self {
        self.expected = status;
        self
    }

    /// Runs `kiln` with the arguments given so far, and checks its exit status (0, or
    /// what `expect` said): a test cannot forget to. The arguments are then cleared, so
    /// the same test folder can run several commands.
    #[track_caller]
    pub(crate) fn run(&mut self) -> Output {
        let expected = std::mem::replace(&mut self.expected, 0);
        self.run_unchecked().status(expected)
    }

    /// Runs `kiln` without checking its exit status, for a test that checks it itself
    /// (with a message of its own).
    pub(crate) fn run_unchecked(&mut self) -> Output {
        let output = kiln(&self.cwd, &std::mem::take(&mut self.args), &self.env);
        Output { root: self.dir.path().to_path_buf(), canonical_root: canonical(self.dir.path()), ..output }
    }
}

/// Runs `kiln` in a folder.
pub(crate) fn kiln(cwd: &Path, args: &[String], env: &[(String, String)]) -> Output {
    let mut command = kiln_command();
    command.args(args).current_dir(cwd).env("NO_COLOR", "1").env_remove("CLICOLOR_FORCE");
    for (key, value) in env {
        command.env(key, value);
    }
    // Keep the user's KILN_VAR_* overrides out of the tests.
    for (key, _) in std::env::vars() {
        if key.starts_with("KILN_VAR_") && !env.iter().any(|(k, _)| *k == key) {
            command.env_remove(key);
        }
    }
    let output = command.output().expect("run kiln");
    Output {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
        root: cwd.to_path_buf(),
        canonical_root: canonical(cwd),
    }
}

fn canonical(path: &Path) -> String {
    path.canonicalize().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
}

impl Output {
    /// stdout and stderr with the temporary folder replaced by `[TMP]`.
    pub(crate) fn stdout(&self) -> String {
        self.filter(&self.stdout)
    }

    pub(crate) fn stderr(&self) -> String {
        self.filter(&self.stderr)
    }

    fn filter(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for root in [&self.canonical_root, &self.root.to_string_lossy().into_owned()] {
            if !root.is_empty() {
                text = text.replace(root.as_str(), "[TMP]");
            }
        }
        text
    }

    #[track_caller]
    pub(crate) fn success(self) -> Self {
        assert_eq!(
            self.status, 0,
            "expected success\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub(crate) fn status(self, expected: i32) -> Self {
        assert_eq!(
            self.status, expected,
            "unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The examples, each a folder under `examples/` with a `kiln.kdl`.
pub(crate) fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("examples"))
        .expect("examples folder")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("kiln.kdl").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs kiln on an example in place (read-only commands only).
pub(crate) fn kiln_in_example(example: &str, args: &[&str]) -> Output {
    let dir = repo_root().join("examples").join(example);
    let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    // Tags that use the commit must not make snapshots change with every commit.
    all.extend(["--set".to_owned(), "git.short-sha=0123456789ab".to_owned()]);
    all.extend(["--set".to_owned(), "git.sha=0123456789abcdef0123456789abcdef01234567".to_owned()]);
    kiln(&dir, &all, &[])
}
