//! The `kiln` command: a thin layer that parses the command line, loads the project
//! through the library crates, and prints results.

/// `eprintln!` that never panics: a closed stderr (`kiln check 2>&1 | head -1`) drops
/// what nobody reads.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::term::to_stderr(&format!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` that never panics (see `errln!`).
macro_rules! errp {
    ($($arg:tt)*) => { $crate::term::to_stderr(&format!($($arg)*)) };
}

mod cli;
mod commands;
mod error;
mod overrides;
mod progress;
mod report;
mod session;
mod term;

use std::process::ExitCode;

use clap::Parser;

pub use cli::Cli;
pub(crate) use error::CliError;

/// kiln's exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success = 0,
    /// A check failed: stale generated files.
    Failure = 1,
    /// The manifest or the command line is invalid.
    Invalid = 2,
    /// Interrupted (Ctrl-C or SIGTERM).
    Interrupted = 130,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status as u8)
    }
}

pub fn main() -> ExitCode {
    // A panic is a bug of kiln's: it is said in one line, and the exit status stays one
    // that scripts know (1), rather than 101 and a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        term::to_stderr(&format!(
            "error: internal error: {message}{place}\n\nhint: this is a bug in kiln; please report it with the command that ran into it\n"
        ));
    }));
    let cli = Cli::try_parse().unwrap_or_else(|error| exit_on_parse_error(&error));
    let term = term::Term::new(&cli.global);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commands::run(&cli, &term)))
        .unwrap_or(ExitStatus::Failure)
        .into()
}

/// clap's errors, except for an unknown option: clap's tip there ("to pass '--squash' as
/// a value, use '-- --squash'") leads to a command that fails too. Say what exists instead.
fn exit_on_parse_error(error: &clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::UnknownArgument {
        error.exit();
    }
    let text = |kind| match error.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(s)) => s.first().cloned(),
        Some(ContextValue::StyledStr(s)) => Some(s.to_string()),
        _ => None,
    };
    let argument = text(ContextKind::InvalidArg).unwrap_or_default();
    let usage = text(ContextKind::Usage).unwrap_or_default();
    // `kiln build --squash`: the command's help, found from its usage line.
    let command: Vec<&str> = usage
        .split_whitespace()
        .skip_while(|w| *w != "kiln")
        .take_while(|w| !w.starts_with('-') && !w.starts_with('[') && !w.starts_with('<'))
        .collect();
    let command = if command.is_empty() { "kiln".to_owned() } else { command.join(" ") };
    let hint = match text(ContextKind::SuggestedArg) {
        Some(similar) => format!("did you mean `{similar}`? `{command} --help` lists the options"),
        None => format!("kiln has no `{argument}` here; `{command} --help` lists the options"),
    };
    term::to_stderr(&format!("error: unknown option `{argument}`\n\nhint: {hint}\n"));
    std::process::exit(2);
}
