//! What kiln reads in the text of a shell command without running it: its words and
//! operators, whether it is a single AND-OR list, how it ends, whether it may turn on
//! `set -e`, and whether it holds a comment or a heredoc. The checks use it to refuse
//! what cannot be written, and the emitter to join a node's commands without changing
//! what they do (`docs/transformations.md`, T06).
//!
//! The scan follows quotes (`'…'`, `"…"`), `\` escapes, `$(…)`, `` `…` ``, `${…}`,
//! `$((…))` and parentheses. Where it cannot follow the text (an unbalanced quote or
//! parenthesis, a `case` whose patterns end in `)`), it says so, and every answer that
//! depends on the structure then takes its safe side: a pair of braces too many, never
//! a join that changes the program.

/// A token of a command: a word (quotes and escapes kept) or an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    pub text: &'a str,
    pub operator: bool,
    /// 0 at the command's own level; one more inside each `( … )`, `$( … )` and `` `…` ``.
    pub depth: usize,
}

/// A command's tokens. Tokens inside a substitution come before the word that holds
/// them; at one depth they are in the order of the text.
#[derive(Debug, Default)]
pub struct Scan<'a> {
    pub tokens: Vec<Token<'a>>,
    /// A `#` starting a word outside quotes: the shell ignores the rest of the line.
    pub comment: bool,
    /// Something the scan could not follow.
    pub unsure: bool,
}

pub fn scan(command: &str) -> Scan<'_> {
    let mut scanner = Scanner { text: command, bytes: command.as_bytes(), at: 0, scan: Scan::default() };
    scanner.list(0, None);
    scanner.scan
}

impl Scan<'_> {
    /// Whether the command is one AND-OR list (`a && b || c | d`): no `;`, `&` or line
    /// break at its own level. `&&` then joins it to the next command as a whole.
    pub fn is_one_list(&self) -> bool {
        !self.unsure
            && !self.comment
            && !self.tokens.iter().any(|t| {
                (t.operator && t.depth == 0 && matches!(t.text, ";" | "&" | "\n" | ";;"))
                    || (!t.operator && plain(t.text) == "case")
            })
    }

    /// Whether the command has an `||` at its own level: after `a &&`, `b || c` would
    /// read `(a && b) || c`, which runs `c` when `a` fails.
    pub fn has_or(&self) -> bool {
        self.tokens.iter().any(|t| t.operator && t.depth == 0 && t.text == "||")
    }

    /// Whether the command ends with `;` or `&` (so that `{ command; }` would not parse).
    pub fn ends_with_terminator(&self) -> bool {
        self.tokens.last().is_some_and(|t| t.operator && t.depth == 0 && matches!(t.text, ";" | "&"))
    }

    /// Whether running the command may turn on `errexit`: a `set` with an option word
    /// holding `e` (`-e`, `-eux`, `-o errexit`) or one kiln cannot read (`set $opts`),
    /// or a builtin that runs other text in the current shell (`eval`, `.`, `source`,
    /// `alias`, `command`, `builtin`, `shopt`). At any depth: a `set -e` inside a
    /// subshell is what an AND-OR list ignores.
    pub fn may_enable_errexit(&self) -> bool {
        let commands = self.command_words();
        commands.iter().any(|&index| {
            let token = &self.tokens[index];
            match plain(token.text).as_str() {
                "eval" | "." | "source" | "alias" | "command" | "builtin" | "shopt" => true,
                "set" => {
                    let arguments = self.tokens[index + 1..]
                        .iter()
                        .filter(|t| t.depth == token.depth)
                        .take_while(|t| !t.operator);
                    let mut option_name_next = false;
                    for argument in arguments {
                        let text = plain(argument.text);
                        if text.contains('$') || text.contains('`') {
                            return true;
                        }
                        if option_name_next {
                            if text == "errexit" {
                                return true;
                            }
                            option_name_next = false;
                            continue;
                        }
                        if text == "--" || !(text.starts_with('-') || text.starts_with('+')) {
                            break;
                        }
                        let letters = &text[1..];
                        if text.starts_with('-') && letters.contains('e') {
                            return true;
                        }
                        option_name_next = letters.ends_with('o');
                    }
                    false
                }
                _ => false,
            }
        })
    }

    /// The words that name the command the shell runs (indexes into `tokens`): the first
    /// word after an operator or at the start of a nested list, after a reserved word
    /// such as `then`, or after `NAME=value` assignments.
    fn command_words(&self) -> Vec<usize> {
        let mut words = Vec::new();
        for (index, token) in self.tokens.iter().enumerate() {
            if token.operator {
                continue;
            }
            let starts_command = match index.checked_sub(1).map(|i| (i, &self.tokens[i])) {
                None => true,
                Some((_, previous)) if previous.depth != token.depth => true,
                Some((_, previous)) if previous.operator => {
                    matches!(
                        previous.text,
                        ";" | "&&" | "||" | "|" | "|&" | "&" | "(" | "\n" | ";;" | ";&" | ")"
                    )
                }
                Some((previous_index, previous)) => {
                    let text = plain(previous.text);
                    words.contains(&previous_index)
                        && (RESERVED.contains(&text.as_str()) || is_assignment(&text))
                }
            };
            if starts_command {
                words.push(index);
            }
        }
        words
    }
}

/// Reserved words after which the next word names a command.
const RESERVED: &[&str] = &["if", "then", "else", "elif", "while", "until", "do", "{", "!", "time"];

/// `NAME=value`, which the shell takes as an assignment before a command.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A word as the shell reads it once quotes and escapes are removed (substitutions left
/// as they are): enough to tell which builtin a word names.
fn plain(word: &str) -> String {
    word.chars().filter(|c| !matches!(c, '\'' | '"' | '\\')).collect()
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    scan: Scan<'a>,
}

impl Scanner<'_> {
    fn peek(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.at + offset).copied()
    }

    fn push(&mut self, start: usize, operator: bool, depth: usize) {
        self.scan.tokens.push(Token { text: &self.text[start..self.at], operator, depth });
    }

    /// Tokens up to `close` (`)` or `` ` ``), or to the end of the text.
    fn list(&mut self, depth: usize, close: Option<u8>) {
        loop {
            while matches!(self.peek(0), Some(b' ' | b'\t')) {
                self.at += 1;
            }
            let Some(c) = self.peek(0) else {
                if close.is_some() {
                    self.scan.unsure = true;
                }
                return;
            };
            if Some(c) == close {
                self.at += 1;
                return;
            }
            let start = self.at;
            match c {
                b'#' => {
                    self.scan.comment = true;
                    while self.peek(0).is_some_and(|c| c != b'\n') {
                        self.at += 1;
                    }
                }
                b'(' => {
                    self.at += 1;
                    self.push(start, true, depth);
                    self.list(depth + 1, Some(b')'));
                    self.scan.tokens.push(Token { text: ")", operator: true, depth });
                }
                b')' => {
                    // A `)` that closes nothing: a `case` pattern.
                    self.scan.unsure = true;
                    self.at += 1;
                    self.push(start, true, depth);
                }
                b'\n' | b';' | b'&' | b'|' | b'<' | b'>' => {
                    self.at += 1;
                    let second = self.peek(0);
                    let two = matches!(
                        (c, second),
                        (b';', Some(b';' | b'&'))
                            | (b'&', Some(b'&'))
                            | (b'|', Some(b'|' | b'&'))
                            | (b'<', Some(b'<' | b'&' | b'>'))
                            | (b'>', Some(b'>' | b'&' | b'|'))
                    );
                    if two {
                        self.at += 1;
                        if c == b'<' && second == Some(b'<') && self.peek(0) == Some(b'-') {
                            self.at += 1;
                        }
                    }
                    self.push(start, true, depth);
                }
                _ => self.word(depth, close),
            }
        }
    }

    fn word(&mut self, depth: usize, close: Option<u8>) {
        let start = self.at;
        while let Some(c) = self.peek(0) {
            match c {
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>' => break,
                b'`' if close == Some(b'`') => break,
                b'`' => {
                    self.at += 1;
                    self.list(depth + 1, Some(b'`'));
                }
                b'\\' => self.at = (self.at + 2).min(self.bytes.len()),
                b'\'' => self.single_quoted(),
                b'"' => self.double_quoted(depth),
                b'$' => self.dollar(depth),
                _ => self.at += 1,
            }
        }
        self.push(start, false, depth);
    }

    fn single_quoted(&mut self) {
        self.at += 1;
        if let Some(end) = self.text[self.at..].find('\'') {
            self.at += end + 1;
        } else {
            self.scan.unsure = true;
            self.at = self.bytes.len();
        }
    }

    fn double_quoted(&mut self, depth: usize) {
        self.at += 1;
        while let Some(c) = self.peek(0) {
            match c {
                b'"' => {
                    self.at += 1;
                    return;
                }
                b'\\' => self.at = (self.at + 2).min(self.bytes.len()),
                b'$' => self.dollar(depth),
                b'`' => {
                    self.at += 1;
                    self.list(depth + 1, Some(b'`'));
                }
                _ => self.at += 1,
            }
        }
        self.scan.unsure = true;
    }

    /// `$(…)`, `$((…))`, `${…}` or a plain `$`.
    fn dollar(&mut self, depth: usize) {
        match (self.peek(1), self.peek(2)) {
            (Some(b'('), Some(b'(')) => {
                self.at += 3;
                let mut open = 2;
                while let Some(c) = self.peek(0) {
                    self.at += 1;
                    match c {
                        b'(' => open += 1,
                        b')' => {
                            open -= 1;
                            if open == 0 {
                                return;
                            }
                        }
                        _ => {}
                    }
                }
                self.scan.unsure = true;
            }
            (Some(b'('), _) => {
                self.at += 2;
                self.list(depth + 1, Some(b')'));
            }
            (Some(b'{'), _) => {
                self.at += 2;
                let mut open = 1;
                while let Some(c) = self.peek(0) {
                    match c {
                        b'}' => {
                            self.at += 1;
                            open -= 1;
                            if open == 0 {
                                return;
                            }
                        }
                        b'\\' => self.at = (self.at + 2).min(self.bytes.len()),
                        b'\'' => self.single_quoted(),
                        b'"' => self.double_quoted(depth),
                        b'$' if self.peek(1) == Some(b'{') => {
                            self.at += 2;
                            open += 1;
                        }
                        b'$' => self.dollar(depth),
                        _ => self.at += 1,
                    }
                }
                self.scan.unsure = true;
            }
            _ => self.at += 1,
        }
    }
}

/// A word of a shell command: its text, quotes and `\` kept.
pub(crate) struct ShellWord<'a> {
    pub(crate) text: &'a str,
}

/// Splits a command into words as `sh` and Docker's parser both do: at blanks and
/// operators (`;`, `&`, `|`, `(`, `)`), except inside quotes or after `\`.
pub(crate) fn shell_words(command: &str) -> Vec<ShellWord<'_>> {
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in command.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == '\\' => escaped = true,
            Some(_) => {}
            None if c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')') => {
                if let Some(s) = start.take() {
                    words.push(ShellWord { text: &command[s..i] });
                }
            }
            None => {
                start.get_or_insert(i);
                match c {
                    '\\' => escaped = true,
                    '"' | '\'' => quote = Some(c),
                    _ => {}
                }
            }
        }
    }
    if let Some(s) = start {
        words.push(ShellWord { text: &command[s..] });
    }
    words
}

/// Docker's rule for a heredoc word in RUN: `<<WORD`, optionally after a file
/// descriptor and with `-`, whatever quoting or escaping WORD has (`<<\EOF`, `2<<"EOF"`).
pub(crate) fn is_dockerfile_heredoc(word: &str) -> bool {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = rest.strip_prefix("<<") else { return false };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    !rest.is_empty() && !rest.contains('<')
}

/// A shell heredoc anywhere: `<<EOF`, `cat<<-'END'`, but not `<<<` (a here-string) or
/// `1<<2`.
pub(crate) fn has_heredoc(command: &str) -> bool {
    let bytes = command.as_bytes();
    let mut i = 0;
    while let Some(found) = command[i..].find("<<") {
        let at = i + found;
        let mut j = at + 2;
        let before_ok = at == 0 || bytes[at - 1] != b'<';
        if bytes.get(j) == Some(&b'<') {
            i = j + 1;
            continue;
        }
        if bytes.get(j) == Some(&b'-') {
            j += 1;
        }
        if matches!(bytes.get(j), Some(b'\'' | b'"' | b'\\')) {
            j += 1;
        }
        while matches!(bytes.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if before_ok && bytes.get(j).is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_') {
            return true;
        }
        i = at + 2;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heredocs() {
        assert!(has_heredoc("cat <<EOF"));
        assert!(has_heredoc("cat <<-'END'"));
        assert!(!has_heredoc("cat <<< hi"));
        assert!(!has_heredoc("echo $((1<<2))"));
        assert!(!has_heredoc("echo hi"));
        assert!(has_heredoc(r"cat <<\EOF"));
        assert!(has_heredoc("cat <<\tEOF"));
        assert!(has_heredoc("cat <<- EOF"));
        for word in ["<<EOF", "2<<EOF", r"<<\EOF", "<<-\"EOF\"", "<<$X"] {
            assert!(is_dockerfile_heredoc(word), "{word}");
        }
        for word in ["<<", "<<<x", "cat<<EOF", "\"<<EOF\""] {
            assert!(!is_dockerfile_heredoc(word), "{word}");
        }
    }

    #[test]
    fn shell_words_keep_quotes_together() {
        let words = |c: &str| shell_words(c).into_iter().map(|w| w.text.to_owned()).collect::<Vec<_>>();
        assert_eq!(words("echo 'a b' \"c # d\"&&e#f"), ["echo", "'a b'", "\"c # d\"", "e#f"]);
        assert_eq!(words(r"echo a\ #b;#c"), ["echo", r"a\ #b", "#c"]);
        assert_eq!(words("echo ${#x} $#"), ["echo", "${#x}", "$#"]);
    }

    #[test]
    fn one_list_or_not() {
        for command in [
            "make",
            "a && b || c | d",
            "(cd x; make)",
            "echo 'a;b' \"c;d\" e\\;f",
            "x=$(a; b) && echo \"$(c; d)\" `e; f`",
            "find . -exec rm {} \\;",
            "echo ${x:-a;b} $((1+2))",
        ] {
            assert!(scan(command).is_one_list(), "{command}");
        }
        for command in [
            "a; b",
            "a & b",
            "a &",
            "a;",
            "if a; then b; fi",
            "case x in a) b;; esac",
            "( case x in a) b;; esac )",
            "echo 'unterminated",
            "echo a # b",
            "a\nb",
        ] {
            assert!(!scan(command).is_one_list(), "{command}");
        }
    }

    #[test]
    fn terminators() {
        for command in ["a;", "a &", "a; b &", "a ;  "] {
            assert!(scan(command).ends_with_terminator(), "{command}");
        }
        for command in ["a", "a && b", "find . -exec rm {} \\;", "echo ';'", "(a &)", "a &&"] {
            assert!(!scan(command).ends_with_terminator(), "{command}");
        }
    }

    #[test]
    fn errexit() {
        for command in [
            "set -e",
            "set -eux; make",
            "set -Eeuo pipefail",
            "set -o errexit",
            "set -xo errexit",
            "(set -e; false; echo x)",
            "x=$(set -e; false)",
            "\"set\" -e",
            "set $saved",
            "eval \"$cmd\"",
            ". ./env.sh",
            "source ./env.sh",
            "alias x='set -e'",
            "command set -e",
            "a && . ./env.sh",
            "if true; then set -e; fi",
            "X=1 set -e",
            "echo $(. ./x)",
            "(true) && (. ./x)",
        ] {
            assert!(scan(command).may_enable_errexit(), "{command}");
        }
        for command in [
            "make",
            "set -x",
            "set +e",
            "set -o pipefail",
            "set -- -e",
            "echo settings -e",
            "echo 'set -e'",
            "offset -e",
            "go build -o /out/app .",
            "cp a . && ls .",
            "echo set -e",
        ] {
            assert!(!scan(command).may_enable_errexit(), "{command}");
        }
    }

    #[test]
    fn comments() {
        assert!(scan("echo a # b").comment);
        assert!(scan("a;#c").comment);
        assert!(!scan("echo a#b '#' \"#\" \\# ${#x} $#").comment);
    }
}
