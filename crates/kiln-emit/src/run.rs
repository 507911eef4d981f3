//! How the commands of a `run` node become the shell text of a RUN, and how a build-only
//! block runs a node among kiln's own commands, without changing what the commands do
//! (`docs/transformations.md`, T06).
//!
//! A Dockerfile's RUN is a fresh `sh -c`: nothing of its shell state reaches the next
//! one. kiln writes each `run` node as a RUN of its own and never joins two nodes. The
//! commands of one node share a shell, as the node says: each runs when the one before
//! succeeded, and the first that fails ends the step with its status.

use kiln_manifest::Level;
use kiln_manifest::shell::{Scan, scan};

use crate::encode::{exec_array, shell_quote};

/// Between the lines of a RUN.
const NEXT_LINE: &str = " \\\n    ";

/// Ends the step with the status of the command before it when that failed. `$?` is
/// still that status inside the `case`, and `exit` with no number exits with it.
const STOP_ON_FAILURE: &str = "case $? in 0) ;; *) exit ;; esac";

/// A node's commands as one shell text. One command is written as it is. Several are
/// joined with `&&`, each as one whole: in braces when it holds a `;`, `&` or line
/// break of its own (`a && b; c` would run `c` whatever `a` did), or, after the first,
/// an `||` (`a && b || c` would run `c` when `a` failed). When one of them may
/// turn on `set -e`, or the shell starts with it, `&&` would change what they do: a
/// shell ignores `set -e` in any command of an AND-OR list but the last. They are then
/// written one after the other, each followed by a `case` that stops at its failure.
pub(crate) fn join(commands: &[String], shell_errexit: bool) -> String {
    if let [command] = commands {
        return wrapped(command);
    }
    let scans: Vec<Scan<'_>> = commands.iter().map(|c| scan(c)).collect();
    if !(shell_errexit || scans.iter().any(Scan::may_enable_errexit)) {
        let units: Vec<String> = commands
            .iter()
            .zip(&scans)
            .enumerate()
            .map(|(i, (c, s))| whole(&wrapped(c), s, i == 0))
            .collect();
        return units.join(&format!("{NEXT_LINE}&& "));
    }
    let mut text = String::new();
    for (index, command) in commands.iter().enumerate() {
        if index > 0 {
            let previous = &scans[index - 1];
            let separator = if previous.ends_with_terminator() { "" } else { "; " };
            text.push_str(&format!("{NEXT_LINE}{separator}{STOP_ON_FAILURE}; "));
        }
        text.push_str(&wrapped(command));
    }
    text
}

/// A long command on several lines of the Dockerfile, for review: a line break (`\`
/// then a new line, which Docker removes before the shell reads the command) before each
/// `&&` and `||` and after each `;` of the command's own level. Only blanks outside
/// quotes change there, which the shell does not see. A command the scan cannot follow,
/// or where the next line would start with `#` (a comment line to Docker), stays whole.
fn wrapped(command: &str) -> String {
    const LONG: usize = 100;
    if command.len() <= LONG || command.contains('\n') {
        return command.to_owned();
    }
    let scan = scan(command);
    if scan.unsure || scan.comment {
        return command.to_owned();
    }
    let base = command.as_ptr() as usize;
    let mut breaks: Vec<usize> = Vec::new();
    for token in scan.tokens.iter().filter(|t| t.operator && t.depth == 0) {
        let Some(start) = (token.text.as_ptr() as usize).checked_sub(base).filter(|s| *s < command.len())
        else {
            continue;
        };
        match token.text {
            "&&" | "||" => breaks.push(start),
            ";" => breaks.push(start + 1),
            _ => {}
        }
    }
    let mut out = String::with_capacity(command.len() + breaks.len() * 8);
    let mut from = 0;
    for at in breaks {
        let rest = command[at..].trim_start();
        if at <= from || rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        push_segment(&mut out, &command[from..at]);
        out.push_str(NEXT_LINE);
        from = at + (command[at..].len() - rest.len());
    }
    push_segment(&mut out, &command[from..]);
    out
}

/// A segment of a wrapped command: the blanks it ends with, and those after the `&&` or
/// `||` it starts with, left out (one blank after the operator).
fn push_segment(out: &mut String, segment: &str) {
    let segment = segment.trim_end_matches([' ', '\t']);
    match ["&&", "||"].iter().find(|op| segment.starts_with(**op)) {
        Some(op) => {
            out.push_str(op);
            out.push(' ');
            out.push_str(segment[2..].trim_start_matches([' ', '\t']));
        }
        None => out.push_str(segment),
    }
}

/// A command that `&&` takes as a whole: as it is when it is one AND-OR list (without
/// `||` unless it comes `first`), else in braces, which keep it in the same shell.
fn whole(command: &str, scan: &Scan<'_>, first: bool) -> String {
    if scan.is_one_list() && (first || !scan.has_or()) {
        command.to_owned()
    } else if scan.ends_with_terminator() {
        format!("{{ {command} }}")
    } else {
        format!("{{ {command}; }}")
    }
}

/// A node's commands as one command of kiln's `&&` chain in a build-only block (T29),
/// in a shell of their own as a RUN of their own would be: a subshell, so that nothing
/// they change reaches the next node or kiln's commands after them. When they may turn
/// on `set -e`, which a subshell inside an AND-OR list would ignore, the stage's shell
/// is started anew for them.
pub(crate) fn isolated(commands: &[String], shell: &[String], shell_errexit: bool) -> String {
    let joined = join(commands, shell_errexit);
    let errexit = shell_errexit || commands.iter().any(|c| scan(c).may_enable_errexit());
    if errexit {
        let program: Vec<String> = shell.iter().map(|w| shell_quote(w)).collect();
        format!("{} {}", program.join(" "), shell_quote(&joined))
    } else {
        format!("( {joined} )")
    }
}

/// A `run script=#true` node: the script goes to the stage's shell as one text, as a
/// Dockerfile heredoc's does (`RUN <<EOF`, level 1.4: BuildKit passes the body to the
/// shell), or, at levels without heredocs, as the exec form of the same call
/// (`RUN ["/bin/sh", "-c", "..."]`), which carries its line breaks. A script starting
/// with `#!` is refused below level 1.4 by the checks: BuildKit runs such a body as a
/// file, with its own interpreter.
pub(crate) fn script(script: &str, shell: &[String], level: Level) -> String {
    if level.heredocs() {
        let delimiter = heredoc_delimiter(script);
        return format!("<<{delimiter}\n{script}\n{delimiter}");
    }
    let mut words: Vec<&str> = shell.iter().map(String::as_str).collect();
    words.push(script);
    exec_array(&words)
}

/// A heredoc delimiter that no line of `body` equals (Docker ends a heredoc at the first
/// line equal to its delimiter).
fn heredoc_delimiter(body: &str) -> String {
    let taken =
        |candidate: &str| body.lines().any(|l| l == candidate || l.trim_start_matches('\t') == candidate);
    let mut delimiter = "EOF".to_owned();
    let mut n = 0;
    while taken(&delimiter) {
        n += 1;
        delimiter = format!("EOF_{n}");
    }
    delimiter
}

/// Whether a SHELL starts with `errexit` on (`["/bin/bash", "-e", "-c"]`,
/// `["/bin/bash", "-eo", "pipefail", "-c"]`, `-o errexit`).
pub(crate) fn shell_errexit(shell: &[String]) -> bool {
    shell
        .iter()
        .skip(1)
        .any(|w| (w.starts_with('-') && !w.starts_with("--") && w[1..].contains('e')) || w == "errexit")
}

/// The shell a RUN runs in when no SHELL says otherwise.
pub(crate) fn default_shell() -> Vec<String> {
    vec!["/bin/sh".to_owned(), "-c".to_owned()]
}
