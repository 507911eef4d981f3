//! `kiln-bench pool`: the scheduling benchmark's graph (see `build.rs`) on a pool of two
//! engines of 2 slots each, against one engine with 4 slots and one with 2; and the time
//! it takes to move a dependency image from one engine to the other (streamed, and
//! through a registry).
//!
//! The engines are the benchmark's own (`kiln_testkit::SecondEngine` on `overlay2`, no
//! network), each configuration on the same kind, so that the comparison is fair. Needs
//! dockerd, the docker CLI, busybox-static and Debian's docker-registry.
#![allow(clippy::cast_precision_loss)]

use std::process::Command;
use std::time::{Duration, Instant};

use kiln_testkit::{Registry, SecondEngine};
use serde_json::Value;

use crate::build::{bounds, graph, manifest, print_row};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How many images the graph has (16 to 24)
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(16..=24))]
    images: u16,
}

/// A `kiln build` on the pool; its makespan and the transfer times it reported.
fn build_on(
    kiln: &std::path::Path,
    dir: &std::path::Path,
    engines: &[String],
    extra: &[&str],
    set: &str,
) -> (Duration, Vec<(String, u64)>) {
    let mut command = Command::new(kiln);
    command
        .args(["build", "--network", "none", "--progress", "json", "--set", set])
        .args(extra)
        .current_dir(dir);
    for engine in engines {
        command.args(["--engine", engine]);
    }
    let start = Instant::now();
    let output = command.output().expect("run kiln");
    let elapsed = start.elapsed();
    assert!(output.status.success(), "kiln build failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let transfers = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["event"] == "transferred")
        .map(|event| {
            (event["via"].as_str().unwrap_or_default().to_owned(), event["duration_ms"].as_u64().unwrap_or(0))
        })
        .collect();
    (elapsed, transfers)
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

pub(crate) fn run_bench(args: &Args) {
    let count = usize::from(args.images);
    let kiln = crate::kiln_binary();
    kiln_testkit::ensure_busybox();
    let (first, second) = (SecondEngine::start_overlay(), SecondEngine::start_overlay());
    let registry = Registry::start();
    let dir = tempfile::Builder::new().prefix("kiln-bench-pool-").tempdir().expect("temp dir");
    let nodes = graph(count);
    std::fs::write(dir.path().join("kiln.kdl"), manifest(&nodes)).expect("write manifest");
    let (critical, total) = bounds(&nodes);
    println!(
        "{count} images, {total} s of work, critical path {critical} s (sleeps only); engines: overlay2 storage"
    );
    let mut nonce =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut fresh = || {
        nonce += 1;
        format!("RUN={nonce}")
    };
    let bound = |slots: u64| critical.max(total.div_ceil(slots));

    println!("\n{:<34} {:>10} {:>12} {:>8}", "run", "makespan", "lower bound", "ratio");
    let one_engine = |slots: usize| vec![format!("{},slots={slots}", first.host)];
    let two_engines = vec![format!("{},slots=2", first.host), format!("{},slots=2", second.host)];
    let (time, _) = build_on(&kiln, dir.path(), &one_engine(2), &[], &fresh());
    print_row("one engine x 2 slots", time, bound(2));
    let (time, _) = build_on(&kiln, dir.path(), &one_engine(4), &[], &fresh());
    print_row("one engine x 4 slots", time, bound(4));
    let (time, streamed) = build_on(&kiln, dir.path(), &two_engines, &[], &fresh());
    print_row("two engines x 2 slots (save/load)", time, bound(4));
    let (time, pushed) =
        build_on(&kiln, dir.path(), &two_engines, &["--transfer-registry", &registry.address], &fresh());
    print_row("two engines x 2 slots (registry)", time, bound(4));

    println!("\ntransfers of a dependency image between the engines (each image once per engine):");
    for (what, transfers) in [("save/load", streamed), ("registry", pushed)] {
        let times: Vec<u64> = transfers.iter().map(|(_, ms)| *ms).collect();
        println!(
            "  {what:<10} {} transfers, median {} ms, max {} ms",
            times.len(),
            median(times.clone()),
            times.iter().max().copied().unwrap_or(0)
        );
    }
    // The engines and the registry go with their temporary folders.
    drop((first, second, registry));
}
