//! One module per subcommand.

mod bake;
mod build;
mod check;
mod completions;
mod emit;
mod engine_session;
mod explain;
mod graph;
mod history;
mod images;
mod import;
mod inspect;
mod lock;
mod manifest;
mod plan;
mod pull;
mod push;
mod remove;
mod schema;
mod tag;

pub(crate) use build::summary_event;

use crate::ExitStatus;
use crate::cli::{Cli, Command};
use crate::term::Term;

/// Runs the command; an error is printed here, in one format, and gives the exit status.
pub(crate) fn run(cli: &Cli, term: &Term) -> ExitStatus {
    let result = match &cli.command {
        Command::Check(args) => check::run(&cli.global, args, term),
        Command::Emit(args) => emit::run(&cli.global, args, term),
        Command::Plan(args) => plan::run(&cli.global, args, term),
        Command::Graph(args) => graph::run(&cli.global, args, term),
        Command::Bake(args) => bake::run(&cli.global, args, term),
        Command::Build(args) => build::run(&cli.global, args, term),
        Command::Import(args) => import::run(&cli.global, args, term),
        Command::Lock(args) => lock::run(&cli.global, args, term),
        Command::Pull(args) => pull::run(&cli.global, args, term),
        Command::Images(args) => images::run(&cli.global, args, term),
        Command::Tag(args) => tag::run(&cli.global, args, term),
        Command::Push(args) => push::run(&cli.global, args, term),
        Command::Rmi(args) => remove::rmi(&cli.global, args, term),
        Command::Clean(args) => remove::clean(&cli.global, args, term),
        Command::Prune(args) => remove::prune(&cli.global, args, term),
        Command::History(args) => history::run(&cli.global, args, term),
        Command::Inspect(args) => inspect::run(&cli.global, args, term),
        Command::Explain(args) => explain::run(&cli.global, args, term),
        Command::Manifest => manifest::run(&cli.global, term),
        Command::Schema(args) => Ok(schema::run(args, term)),
        Command::Completions(args) => Ok(completions::script(args.shell, term)),
        Command::Man => completions::man(term),
        Command::Names => Ok(completions::names(&cli.global, term)),
    };
    result.unwrap_or_else(|error| {
        error.print(term);
        error.status()
    })
}
