//! One module per subcommand.

mod build;

pub(crate) use build::summary_event;
mod check;
mod emit;
mod graph;
mod manifest;
mod plan;
mod schema;

use crate::Status;
use crate::cli::{Cli, Command};
use crate::term::Term;

pub(crate) fn run(cli: &Cli, term: &Term) -> Status {
    let result = match &cli.command {
        Command::Check(args) => check::run(&cli.global, args, term),
        Command::Emit(args) => emit::run(&cli.global, args, term),
        Command::Plan(args) => plan::run(&cli.global, args, term),
        Command::Graph(args) => graph::run(&cli.global, args, term),
        Command::Build(args) => build::run(&cli.global, args, term),
        Command::Manifest => manifest::run(&cli.global, term),
        Command::Schema(args) => Ok(schema::run(args, term)),
    };
    result.unwrap_or_else(|status| status)
}
