//! The `kiln` command: a thin layer that parses the command line, loads the project
//! through the library crates, and prints results.

mod cli;
mod commands;
mod progress;
mod session;
mod term;

use std::process::ExitCode;

use clap::Parser;

pub use cli::Cli;

/// kiln's exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success = 0,
    /// A check failed: stale generated files.
    Failure = 1,
    /// The manifest or the command line is invalid.
    Invalid = 2,
    /// Interrupted (Ctrl-C or SIGTERM).
    Interrupted = 130,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        ExitCode::from(status as u8)
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let term = term::Term::new(&cli.global);
    commands::run(&cli, &term).into()
}
