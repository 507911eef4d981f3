//! kiln's benchmarks, run with `just bench`, `just bench-build`, `just bench-noop`,
//! `just bench-registry`, `just bench-images` and `just bench-pool` (see the README's Performance section).
//! Each times the release `kiln` binary beside this one.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

mod build;
mod emit;
mod images;
mod noop;
mod pool;
mod registry;

#[derive(Debug, Parser)]
#[command(name = "kiln-bench", about = "kiln's benchmarks", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Without a command: the compile benchmark
    #[command(flatten)]
    emit: emit::Args,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The compile benchmark: `kiln emit` and `kiln check` on generated monorepos
    Emit(emit::Args),
    /// The scheduling benchmark: a graph of sleeping steps, against docker and compose
    Build(build::Args),
    /// A rebuild where nothing changed, against `docker-compose build`
    Noop(noop::Args),
    /// A fresh engine whose registry holds every image: `kiln build --push`
    Registry(registry::Args),
    /// The scheduling graph on two engines x 2 slots, against one engine x 4 and x 2
    Pool(pool::Args),
    /// Image quality on real apps: naive and expert Dockerfiles against kiln (network)
    Images(images::Args),
}

fn main() {
    let cli = Cli::parse();
    match &cli.command {
        None => emit::run_bench(&cli.emit),
        Some(Command::Emit(args)) => emit::run_bench(args),
        Some(Command::Build(args)) => build::run_bench(args),
        Some(Command::Noop(args)) => noop::run_bench(args),
        Some(Command::Registry(args)) => registry::run_bench(args),
        Some(Command::Images(args)) => images::run_bench(args),
        Some(Command::Pool(args)) => pool::run_bench(args),
    }
}

/// The median of `runs` timings of `work`, each after `prepare` (not timed).
fn time(runs: usize, prepare: impl Fn(), work: impl Fn()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            prepare();
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}

/// The release `kiln` binary beside this one.
fn kiln_binary() -> PathBuf {
    let me = std::env::current_exe().expect("own path");
    let kiln = me.with_file_name("kiln");
    if !kiln.is_file() {
        eprintln!("error: build kiln first: `cargo build --release -p kiln` ({} is missing)", kiln.display());
        std::process::exit(2);
    }
    kiln
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn arguments_are_checked_not_panicked_on() {
        Cli::command().debug_assert();
        let error = Cli::try_parse_from(["kiln-bench", "--bogus"]).expect_err("an unknown flag");
        assert_eq!(error.kind(), clap::error::ErrorKind::UnknownArgument);
        let error = Cli::try_parse_from(["kiln-bench", "build", "--images", "3"]).expect_err("out of range");
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(Cli::try_parse_from(["kiln-bench", "noop", "--images", "10", "--megabytes", "1"]).is_ok());
    }
}
