//! Oracle 1 for `run` nodes (docs/transformations.md, T06 and T29): random sequences of
//! shell snippets (`cd`, `export`, `set -e`/`+e`, subshells, braces, `;`, `&&`, `||`,
//! `exit`, traps, functions, `umask`, background jobs) are written as `run` nodes,
//! emitted by kiln, and the generated RUNs are run in dash, bash and busybox sh. They
//! must do what the nodes say, as a reference that runs each node in a shell of its own
//! does: each node's commands one after the other, the node stopping at the first that
//! fails with its status, and the build stopping at the first node that fails. Compared:
//! the exit status, the output and the files written (with their modes).
//!
//! Nodes are written as plain `run`s, and inside a build-only `apk` block, where kiln
//! runs them among its own commands (a stand-in `apk` does nothing).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Case;
use crate::random::{Rng, kdl_list};
use crate::reader::{self, Args};

/// The shells, as the program and the arguments before `-c`.
const SHELLS: &[&[&str]] = &[&["dash"], &["bash"], &["busybox", "sh"]];

/// What the snippets do. `@` becomes a number unique in the case.
const PIECES: &[&str] = &[
    "cd d",
    "cd d && cd d",
    "export X=exported",
    "X=assigned",
    "unset X",
    "echo X=$X",
    "echo at=$PWD",
    "pwd",
    "set -e",
    "set +e",
    "set -eu",
    "false",
    "true",
    "exit 0",
    "exit 3",
    "(exit 2)",
    "f() { echo in-f; }",
    "f",
    "trap 'echo trapped' EXIT",
    "umask 077",
    "touch t@",
    "echo @ > f@",
    "echo status=$?",
    "case $- in *e*) echo errexit-on;; *) echo errexit-off;; esac",
    "if false; then echo then; fi",
    "! true",
    "true | false",
    "false | true",
    "sleep 0 & wait",
    "echo a; echo b",
    "{ echo braced; false; }",
    "(set -e; false; echo STILL-RUNNING)",
    "(cd d; touch in-subshell)",
    "read v < /dev/null",
    "test -f t1 && echo has-t1",
    "true &",
    // Long, so that kiln writes the command on several lines (quotes keep their blanks).
    "echo 'a quoted ; && || text,   with blanks, long enough to break the line' >> long",
    "printf '%s\\n' \"one  two\" three >> long",
];

/// One command: one to three pieces, joined or grouped.
fn command(rng: &mut Rng, counter: &mut usize) -> String {
    let mut piece = |rng: &mut Rng| {
        *counter += 1;
        PIECES[rng.below(PIECES.len())].replace('@', &counter.to_string())
    };
    let mut text = piece(rng);
    for _ in 0..rng.below(3) {
        let next = piece(rng);
        // After a background job nothing more joins (`a & && b`, `a &; b` do not parse),
        // and one starts a list of its own: `a && true &` would put `a` in the background,
        // where its output and files would race with the rest.
        let join = if text.ends_with('&') {
            " "
        } else if next.ends_with('&') {
            "; "
        } else {
            ["; ", " && ", " || "][rng.below(3)]
        };
        text = format!("{text}{join}{next}");
    }
    match rng.below(6) {
        0 => format!("( {text} )"),
        1 if text.ends_with('&') => format!("{{ {text} }}"),
        1 => format!("{{ {text}; }}"),
        _ => text,
    }
}

struct Generated {
    /// The commands of each node.
    nodes: Vec<Vec<String>>,
    /// Whether the nodes are in a build-only block.
    block: bool,
}

impl Generated {
    /// The manifest, for a stage whose SHELL is `shell` (so that what kiln writes for the
    /// stage's shell is the shell under test).
    fn manifest(&self, shell: &[&str]) -> String {
        let runs: String = self.nodes.iter().fold(String::new(), |mut out, node| {
            let _ = writeln!(out, "        run {}", kdl_list(node));
            out
        });
        let body =
            if self.block { format!("    apk curl build-only=#true {{\n{runs}    }}\n") } else { runs };
        let shell: Vec<String> = shell.iter().map(|w| (*w).to_owned()).chain(["-c".to_owned()]).collect();
        format!(
            "image s {{\n    from \"alpine:3.20\"\n    workdir \"/w\"\n    shell {}\n{body}}}\n",
            kdl_list(&shell)
        )
    }
}

fn generate(rng: &mut Rng) -> Generated {
    let mut counter = 0;
    let nodes: Vec<Vec<String>> = (0..=rng.below(4))
        .map(|_| (0..=rng.below(3)).map(|_| command(rng, &mut counter)).collect())
        .collect();
    Generated { nodes, block: rng.below(3) == 0 }
}

/// What running a sequence of RUNs did.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// The status of the last command run: 0, or that of the first RUN that failed.
    status: i32,
    output: String,
    files: BTreeMap<String, String>,
}

/// A fresh folder to run in: a chain of folders `d/d/d/...` for the `cd`s, and a
/// stand-in `apk` (kiln's commands in a build-only block) on the PATH.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d")).expect("folders");
    dir
}

fn stand_ins() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let apk = dir.path().join("apk");
    std::fs::write(&apk, "#!/bin/sh\nexit 0\n").expect("write apk");
    std::fs::set_permissions(&apk, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// Runs each script as a RUN would (a fresh `SHELL -c`, in the workspace), stopping at
/// the first that fails.
fn run_all(shell: &[&str], scripts: &[String], stand_ins: &Path) -> Outcome {
    let dir = workspace();
    let root = dir.path().to_str().expect("UTF-8 temp path").to_owned();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", stand_ins.display());
    let (mut status, mut output) = (0, String::new());
    for script in scripts {
        let mut child = Command::new(shell[0])
            .args(&shell[1..])
            .arg("-c")
            .arg(script)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", &path)
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("a shell");
        let started = Instant::now();
        let exit = loop {
            if let Some(exit) = child.try_wait().expect("wait") {
                break exit;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{shell:?} hangs on:\n{script}");
            std::thread::sleep(Duration::from_millis(2));
        };
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut stdout).expect("read");
        output.push_str(&stdout.replace(&root, "W"));
        status = exit.code().unwrap_or(-1);
        if status != 0 {
            break;
        }
    }
    // A background `echo` may print after its shell ended: give it a moment.
    std::thread::sleep(Duration::from_millis(1));
    Outcome { status, output, files: files(dir.path(), &root) }
}

/// Every file under `root` with its mode and content (`root` itself written `W`).
fn files(root: &Path, root_text: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            let name = path.strip_prefix(root).expect("under root").display().to_string();
            if meta.is_dir() {
                found.insert(name, format!("dir {:o}", meta.permissions().mode() & 0o777));
                stack.push(path);
            } else {
                let content = std::fs::read_to_string(&path).unwrap_or_default().replace(root_text, "W");
                found.insert(name, format!("{:o} {content}", meta.permissions().mode() & 0o777));
            }
        }
    }
    found
}

/// The reference: each node in a shell of its own, its commands on lines of their own,
/// each followed by a check that ends the node with the status of a command that
/// failed. Written from what the node means, not from kiln's join.
fn reference(nodes: &[Vec<String>]) -> Vec<String> {
    nodes
        .iter()
        .map(|commands| {
            commands.join("\nreference_status=$?; if [ \"$reference_status\" -ne 0 ]; then exit \"$reference_status\"; fi\n")
        })
        .collect()
}

/// The shell text of each RUN of the generated Dockerfile.
fn emitted_runs(manifest: &str) -> Result<(String, Vec<String>), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kiln.kdl");
    std::fs::write(&path, manifest).expect("write");
    let options = kiln_manifest::LoadOptions { manifest: path, ..Default::default() };
    let (project, mut diags) = kiln_manifest::load_project(&options).expect("no unknown override");
    let graph = kiln_graph::Graph::build(&project, &mut diags);
    if diags.has_errors() {
        let messages: Vec<String> =
            diags.iter().filter(|d| d.is_error()).map(|d| d.message.clone()).collect();
        return Err(messages.join("\n"));
    }
    let dockerfile = kiln_emit::output_files(&project, &graph).swap_remove(0).contents;
    let runs = reader::read(&dockerfile, false)
        .into_iter()
        .filter(|r| r.keyword == "RUN")
        .map(|r| match r.args {
            Args::Text(text) => text,
            Args::Json(words) => panic!("a RUN in exec form: {words:?}"),
        })
        .collect();
    Ok((dockerfile, runs))
}

fn check_case(seed: u64, case: &Generated, stand_ins: &Path) {
    let expected = reference(&case.nodes);
    for shell in SHELLS {
        let manifest = case.manifest(shell);
        let (dockerfile, runs) = emitted_runs(&manifest)
            .unwrap_or_else(|errors| panic!("seed {seed:#x}: kiln refused\n{manifest}\n{errors}"));
        let ours = run_all(shell, &runs, stand_ins);
        let theirs = run_all(shell, &expected, stand_ins);
        assert_eq!(
            ours, theirs,
            "seed {seed:#x}, {shell:?}: the generated RUNs (left) do not do what the nodes say (right)\n{manifest}\n--- Dockerfile\n{dockerfile}"
        );
    }
}

/// Random nodes do in real shells what they say.
fn generated_runs_do_what_the_nodes_say() {
    let rounds: u64 = std::env::var("KILN_SHELL_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(150);
    let stand_ins = stand_ins();
    let mut joined = 0;
    for round in 0..rounds {
        let seed = 0x7368_656c + round;
        let case = generate(&mut Rng(seed));
        joined += usize::from(case.nodes.iter().any(|n| n.len() > 1));
        check_case(seed, &case, stand_ins.path());
    }
    assert!(joined > 0 || rounds < 20, "no case joined commands");
}

/// The cases that `&&` between nodes got wrong, one by one.
fn separate_nodes_stay_separate_shells() {
    let stand_ins = stand_ins();
    let cases: &[&[&[&str]]] = &[
        &[&["cd d"], &["pwd > where"]],
        &[&["export X=1"], &["echo \"X=$X\""]],
        &[&["false"], &["echo x; exit 0"]],
        &[&["false"], &["echo a || echo b; echo c"]],
        &[&["(set -e; false; echo STILL-RUNNING)"], &["echo next"]],
        &[&["set -e"], &["false; echo after"]],
        &[&["set -e", "false; echo after"]],
        &[&["true", "false && true", "echo not-reached"]],
        &[&["true &", "echo b"]],
        &[&["false", "true || echo runs-when-false-did-not-stop"]],
        &[&["false || false", "echo not-reached"]],
        &[&["umask 077"], &["touch open"]],
        &[&["f() { echo f; }"], &["f"]],
    ];
    for (index, nodes) in cases.iter().enumerate() {
        let nodes: Vec<Vec<String>> =
            nodes.iter().map(|n| n.iter().map(|c| (*c).to_owned()).collect()).collect();
        for block in [false, true] {
            let case = Generated { nodes: nodes.clone(), block };
            check_case(index as u64, &case, stand_ins.path());
        }
    }
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::tools("separate_nodes_stay_separate_shells", separate_nodes_stay_separate_shells, SHELL_TOOLS),
    Case::tools("generated_runs_do_what_the_nodes_say", generated_runs_do_what_the_nodes_say, SHELL_TOOLS),
];

/// What these tests run: `apt-get install dash bash busybox-static`.
const SHELL_TOOLS: &[&str] = &["dash", "bash", "busybox"];
