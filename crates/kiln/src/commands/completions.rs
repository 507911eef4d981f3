//! Shell completions (clap_complete), with image and group names read from the manifest
//! where the shell lets a script ask for them (bash, fish), and the manual page
//! (clap_mangen).

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, GlobalArgs};
use crate::session;
use crate::term::Term;
use crate::{CliError, ExitStatus};

/// The commands whose positional arguments are image or group names.
const TAKE_NAMES: &str = "plan graph build pull images tag push rmi history inspect explain";

pub(crate) fn script(shell: Shell, term: &Term) -> ExitStatus {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "kiln", &mut script);
    let mut text = String::from_utf8_lossy(&script).into_owned();
    match shell {
        // After clap's completion: when it offers nothing for a word that is not a flag,
        // offer the manifest's names (`kiln __names` reads the manifest found from here).
        Shell::Bash => text.push_str(&format!(
            r#"
_kiln_with_names() {{
    _kiln "$@"
    local cur="${{COMP_WORDS[COMP_CWORD]}}" command="${{COMP_WORDS[1]}}"
    if [[ ${{#COMPREPLY[@]}} -eq 0 && "$cur" != -* && " {TAKE_NAMES} " == *" $command "* ]]; then
        COMPREPLY=($(compgen -W "$(kiln __names 2>/dev/null)" -- "$cur"))
    fi
}}
complete -F _kiln_with_names -o bashdefault -o default kiln
"#
        )),
        Shell::Fish => text.push_str(&format!(
            "complete -c kiln -n '__fish_seen_subcommand_from {TAKE_NAMES}' -f -a '(kiln __names 2>/dev/null)'\n"
        )),
        _ => {}
    }
    term.out(&text);
    ExitStatus::Success
}

pub(crate) fn man(term: &Term) -> Result<ExitStatus, CliError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| CliError::failure(format!("cannot write the manual page: {e}")))?;
    term.out(&String::from_utf8_lossy(&page));
    Ok(ExitStatus::Success)
}

/// Image and group names, for completion scripts: nothing (and success) where there is
/// no manifest or it does not load, so that completion never prints errors.
pub(crate) fn names(global: &GlobalArgs, term: &Term) -> ExitStatus {
    let Ok(session) = session::load(global) else { return ExitStatus::Success };
    let mut names: Vec<&str> = session.project.images.iter().map(|i| i.name.as_str()).collect();
    names.extend(session.project.groups.keys().map(String::as_str));
    let mut text = names.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    term.out(&text);
    ExitStatus::Success
}
