//! No input, however broken, makes kiln panic: mutated manifests go through the whole
//! pipeline (load, resolve, graph, emit) in-process.

use crate::Case;
use crate::harness::repo_root;

/// A small deterministic generator (an LCG), so that failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).expect("fits")
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.next() % n }
    }
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "\"",
    "=",
    "#true",
    "#null",
    "image",
    "stage",
    "from",
    "copy",
    "run",
    "\n",
    "\\",
    "/",
    "..",
    "*",
    "[",
    "!",
    "{X}",
    "(t)",
    "variant",
    "template",
    "extends",
    "group",
    "include \"*\"",
    "é",
    "\t",
    ";",
    "0755",
    "$",
    "<<EOF",
    "image=a",
    "from=b",
    "{git.sha}",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..=rng.below(5) {
        let at = rng.below(chars.len() + 1);
        match rng.below(3) {
            0 => {
                let token: Vec<char> = TOKENS[rng.below(TOKENS.len())].chars().collect();
                chars.splice(at..at, token);
            }
            1 => {
                let end = (at + 1 + rng.below(20)).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            _ => {
                let from = rng.below(chars.len() + 1);
                let end = (from + 1 + rng.below(40)).min(chars.len());
                let copied: Vec<char> = chars[from.min(end)..end].to_vec();
                chars.splice(at..at, copied);
            }
        }
    }
    chars.into_iter().collect()
}

fn mutated_manifests_never_panic() {
    let mut seeds: Vec<String> = Vec::new();
    for dir in ["tests/corpus", "examples/python-app", "examples/monorepo", "examples/rust-service"] {
        for entry in std::fs::read_dir(repo_root().join(dir)).expect("folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "kdl") {
                seeds.push(std::fs::read_to_string(path).expect("read"));
            }
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = dir.path().join("kiln.kdl");
    let mut rng = Rng(0x6b69_6c6e);
    for round in 0..400 {
        let seed = rng.below(seeds.len());
        let text = mutate(&mut rng, &seeds[seed]);
        std::fs::write(&manifest, &text).expect("write");
        let options = kiln_manifest::LoadOptions {
            manifest: manifest.clone(),
            sets: vec![("git.sha".into(), "0".repeat(40)), ("git.short-sha".into(), "0".repeat(12))],
            ..Default::default()
        };
        let outcome = std::panic::catch_unwind(|| {
            let Ok((project, mut diags)) = kiln_manifest::load_project(&options) else { return };
            let graph = kiln_graph::Graph::build(&project, &mut diags);
            for diagnostic in diags.iter() {
                let _ = kiln_manifest::diagnostic::render(
                    diagnostic,
                    &project.sources,
                    kiln_manifest::RenderOptions::default(),
                );
            }
            if !diags.has_errors() {
                let _ = kiln_emit::output_files(&project, &graph);
            }
        });
        assert!(outcome.is_ok(), "round {round} panicked on:\n{text}");
    }
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] =
    &[Case::plain("mutated_manifests_never_panic", mutated_manifests_never_panic)];
