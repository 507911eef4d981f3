//! kiln's integration tests: the real `kiln` binary, run in temporary folders or on the
//! examples. One test binary, one module per area, each listing its tests in `TESTS`.
//!
//! The harness is libtest-mimic's rather than libtest's, so that a test that needs the
//! Docker engine is reported as *ignored*, with what to install, when the engine (or
//! what its tests use) is missing, instead of passing without having run. With
//! `KILN_REQUIRE_DOCKER=1` (CI) such tests fail instead.

mod harness;
mod large;
mod lifecycle;

mod build;
mod buildkit_parser;
mod changed;
mod cli;
mod diagnostics;
mod dockerignore_diff;
mod emit;
mod engine;
mod examples;
mod identity;
mod import;
mod lock;
mod oracle;
mod pins;
mod pool;
mod property;
mod random;
mod reader;
mod remote;
mod report;
mod robustness;
mod schema;
mod secrets;
mod shells;
mod transformations;

use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};

/// One test: its name in its module, its function, whether it needs the engine, and
/// what else it needs that a machine may lack.
pub(crate) struct Case {
    name: &'static str,
    run: fn(),
    engine: bool,
    tools: &'static [&'static str],
    /// What is missing for the test, if anything (beyond `tools`).
    needs: Option<fn() -> Vec<String>>,
}

impl Case {
    pub(crate) const fn plain(name: &'static str, run: fn()) -> Self {
        Self { name, run, engine: false, tools: &[], needs: None }
    }

    pub(crate) const fn engine(name: &'static str, run: fn()) -> Self {
        Self { name, run, engine: true, tools: &[], needs: None }
    }

    /// A test that runs these programs (found on the PATH), and needs no engine.
    pub(crate) const fn tools(name: &'static str, run: fn(), tools: &'static [&'static str]) -> Self {
        Self { name, run, engine: false, tools, needs: None }
    }

    /// A test with a prerequisite of its own: `needs` says what is missing.
    pub(crate) const fn needs(name: &'static str, run: fn(), needs: fn() -> Vec<String>) -> Self {
        Self { name, run, engine: false, tools: &[], needs: Some(needs) }
    }

    /// An engine test that also needs these programs.
    pub(crate) const fn engine_and_tools(
        name: &'static str,
        run: fn(),
        tools: &'static [&'static str],
    ) -> Self {
        Self { name, run, engine: true, tools, needs: None }
    }
}

/// The programs of `tools` that are not on the PATH.
fn missing_tools(tools: &[&str]) -> Vec<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    tools
        .iter()
        .filter(|tool| !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .map(|tool| (*tool).to_owned())
        .collect()
}

const MODULES: &[(&str, &[Case])] = &[
    ("build", build::TESTS),
    ("buildkit_parser", buildkit_parser::TESTS),
    ("changed", changed::TESTS),
    ("cli", cli::TESTS),
    ("diagnostics", diagnostics::TESTS),
    ("dockerignore_diff", dockerignore_diff::TESTS),
    ("emit", emit::TESTS),
    ("examples", examples::TESTS),
    ("identity", identity::TESTS),
    ("import", import::TESTS),
    ("large", large::TESTS),
    ("lifecycle", lifecycle::TESTS),
    ("lock", lock::TESTS),
    ("oracle", oracle::TESTS),
    ("property", property::TESTS),
    ("pins", pins::TESTS),
    ("pool", pool::TESTS),
    ("remote", remote::TESTS),
    ("report", report::TESTS),
    ("robustness", robustness::TESTS),
    ("schema", schema::TESTS),
    ("secrets", secrets::TESTS),
    ("shells", shells::TESTS),
    ("transformations", transformations::TESTS),
];

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let missing = kiln_testkit::missing_prerequisites();
    let required = std::env::var("KILN_REQUIRE_DOCKER").as_deref() == Ok("1");
    let engine_tests = MODULES.iter().flat_map(|(_, cases)| cases.iter()).filter(|c| c.engine).count();
    if !missing.is_empty() {
        let what = if required { "fail (KILN_REQUIRE_DOCKER=1)" } else { "are ignored" };
        eprintln!("\n{engine_tests} tests need a Docker engine and {what}; this machine lacks:");
        for item in &missing {
            eprintln!("  - {item}");
        }
        eprintln!();
    }
    let trials = MODULES
        .iter()
        .flat_map(|(module, cases)| cases.iter().map(move |case| (module, case)))
        .map(|(module, case)| {
            let name = format!("{module}::{}", case.name);
            if case.engine && !missing.is_empty() {
                if required {
                    let reason = format!("the engine tests need: {}", missing.join("; "));
                    return Trial::test(name, move || Err(Failed::from(reason)));
                }
                return Trial::test(name, || Ok(())).with_ignored_flag(true);
            }
            let mut lacking = missing_tools(case.tools);
            lacking.extend(case.needs.map(|needs| needs()).unwrap_or_default());
            if !lacking.is_empty() {
                let reason = format!("this test runs {}, which this machine lacks", lacking.join(", "));
                if required {
                    return Trial::test(name, move || Err(Failed::from(reason)));
                }
                eprintln!("{name} is ignored: {reason}");
                return Trial::test(name, || Ok(())).with_ignored_flag(true);
            }
            let run = case.run;
            Trial::test(name, move || {
                run();
                Ok(())
            })
        })
        .collect();
    // The run's own cache folder, removed when the run ends.
    let cache = tempfile::Builder::new().prefix("kiln-test-cache-").tempdir().expect("temp dir");
    harness::CACHE_HOME.set(cache.path().to_path_buf()).expect("set once");
    let engine_here = missing.is_empty();
    let dangling = if engine_here { engine::dangling_images() } else { Vec::new() };
    let had_busybox = engine_here && engine::docker_try(&["image", "inspect", engine::BUSYBOX]).0;
    let conclusion = libtest_mimic::run(&args, trials);
    if engine_here {
        engine::sweep_dangling(&dangling);
        // The test base image goes if this run made it.
        if !had_busybox {
            let _ = engine::docker_try(&["rmi", engine::BUSYBOX]);
        }
    }
    drop(cache);
    conclusion.exit_code()
}
