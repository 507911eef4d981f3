//! Reading a Dockerfile as BuildKit's parser reads it (moby/buildkit
//! `frontend/dockerfile/parser`), from its documented rules:
//!
//! - parser directives (`# syntax=`, `# escape=`) are `# name=value` lines before
//!   anything else; a blank line, a comment or an instruction ends them, an unknown
//!   name is a comment, and one name twice is an error;
//! - the escape character (`\`, or `` ` `` after `# escape=`) at the end of a line,
//!   blanks after it allowed and not preceded by another escape character, continues
//!   the instruction on the next line, which is joined directly; comment lines and
//!   blank lines inside a continued instruction are dropped (the rest is kept);
//! - the first word is the keyword; leading `--name=value` words of the rest are flags
//!   (quotes removed, `\` escaping the next character);
//! - `RUN`, `COPY` and `ADD` in shell form may carry heredocs: each word `<<NAME` (also
//!   `<<-NAME`, `3<<NAME`, quoted names) takes the lines after the instruction up to
//!   one equal to `NAME` (leading tabs removed first for `<<-`) as its content;
//! - the arguments: a JSON array of strings when the rest decodes as one (`RUN`,
//!   `CMD`, `ENTRYPOINT`, `SHELL`, `COPY`, `ADD`, `VOLUME`, `HEALTHCHECK CMD`), else the
//!   shell form: the rest of the line, words split at blanks, or quote-aware words
//!   (`ENV`, `LABEL`, `ARG`).
//!
//! Values are not processed here: quotes and `$VAR` are the word lexer's
//! (`lexer.rs`), as in BuildKit, where they belong to each instruction's evaluation.

/// A Dockerfile, read.
#[derive(Debug, Clone, Default)]
pub struct Dockerfile {
    pub escape: char,
    /// The `# syntax=` directive's value.
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
    /// Blank lines inside continued instructions (BuildKit warns; still valid).
    pub empty_continuation_lines: Vec<usize>,
}

/// Where something is: 1-based line and column of the Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// One instruction, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Where its keyword starts.
    pub at: Position,
    /// The last line it takes (heredoc bodies included).
    pub end_line: usize,
    /// Upper-case keyword (`RUN`, `COPY`, ...), as BuildKit compares them.
    pub keyword: String,
    pub flags: Vec<Flag>,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    /// The joined line: keyword, flags and arguments.
    pub line: String,
    /// For `ONBUILD`: the instruction it registers.
    pub sub: Option<Box<Instruction>>,
    /// The physical lines it was read from (for positions inside it).
    source_lines: Vec<(usize, String)>,
}

/// A `--name=value` flag (`--link` has the value `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// `["a", "b"]`: a JSON array of strings.
    Json(Vec<String>),
    /// The rest of the line after the flags, trimmed.
    Shell(String),
}

impl Args {
    /// The shell-form text, or the JSON elements joined with blanks.
    pub fn text(&self) -> String {
        match self {
            Self::Json(words) => words.join(" "),
            Self::Shell(text) => text.clone(),
        }
    }
}

/// A heredoc's content, taken from the lines after its instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    /// `<<-`: leading tabs are removed from the content's lines.
    pub chomp: bool,
    /// Unquoted name: BuildKit expands `$VAR` in the content of a `COPY` heredoc.
    pub expand: bool,
    pub file_descriptor: u32,
    /// Lines with their line breaks.
    pub content: String,
}

/// A problem that makes BuildKit refuse the Dockerfile, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub at: Position,
    pub message: String,
}

/// Keywords whose shell form may carry heredocs.
const HEREDOC_KEYWORDS: &[&str] = &["RUN", "COPY", "ADD"];

pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Lines with their line breaks (heredoc contents keep them).
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut file = Dockerfile { escape: '\\', ..Dockerfile::default() };
    let mut directives = Directives::default();
    let mut index = 0;
    while index < lines.len() {
        let number = index + 1;
        let raw = trim_newline(lines[index]);
        index += 1;
        let first = raw.trim_start();
        directives.read(first, number, &mut file)?;
        let column = raw.len() - first.len() + 1;
        let first = without_comment(first);
        let (mut joined, mut ended) = trim_continuation(first, file.escape);
        if ended && joined.is_empty() {
            continue;
        }
        let mut source_lines = vec![(number, raw.to_owned())];
        while !ended && index < lines.len() {
            let raw = trim_newline(lines[index]);
            let number = index + 1;
            index += 1;
            directives.done = true;
            source_lines.push((number, raw.to_owned()));
            if raw.trim_start().starts_with('#') {
                continue;
            }
            if raw.trim().is_empty() {
                file.empty_continuation_lines.push(number);
                continue;
            }
            let (more, end) = trim_continuation(raw, file.escape);
            joined.push_str(&more);
            ended = end;
        }
        let at = Position { line: number, column };
        let mut instruction = instruction(&joined, at, file.escape)?;
        instruction.source_lines = source_lines;
        if instruction.can_hold_heredocs() {
            for mut heredoc in heredocs_of(&joined) {
                let mut terminated = false;
                while index < lines.len() {
                    let body = lines[index];
                    index += 1;
                    let mut candidate = trim_newline(body);
                    if heredoc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == heredoc.name {
                        terminated = true;
                        break;
                    }
                    heredoc.content.push_str(body);
                }
                if !terminated {
                    return Err(ParseError {
                        at,
                        message: format!("unterminated heredoc `<<{}`", heredoc.name),
                    });
                }
                instruction.heredocs.push(heredoc);
            }
        }
        instruction.end_line = index.max(number);
        if instruction.heredocs.is_empty() {
            instruction.end_line = instruction.source_lines.last().map_or(number, |(n, _)| *n);
        }
        file.instructions.push(instruction);
    }
    file.syntax = directives.syntax;
    if file.instructions.is_empty() {
        let at = Position { line: lines.len().max(1), column: 1 };
        return Err(ParseError { at, message: "file with no instructions".to_owned() });
    }
    Ok(file)
}

#[derive(Default)]
struct Directives {
    done: bool,
    seen: Vec<String>,
    syntax: Option<String>,
}

impl Directives {
    /// `line`, left-trimmed, as a possible parser directive.
    fn read(&mut self, line: &str, number: usize, file: &mut Dockerfile) -> Result<(), ParseError> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        let name = name.to_ascii_lowercase();
        if name != "escape" && name != "syntax" {
            self.done = true;
            return Ok(());
        }
        let at = Position { line: number, column: 1 };
        if self.seen.contains(&name) {
            return Err(ParseError { at, message: format!("only one {name} parser directive can be used") });
        }
        self.seen.push(name.clone());
        if name == "escape" {
            file.escape = match value {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err(ParseError {
                        at,
                        message: format!("invalid escape token `{other}` does not match ` or \\"),
                    });
                }
            };
        } else {
            self.syntax = Some(value.to_owned());
        }
        Ok(())
    }
}

/// `# name = value`: a name of letters and digits starting with a letter, and a value
/// of at least one character, blanks around it trimmed (BuildKit's
/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`: a value of blanks only is its last
/// blank).
fn directive(line: &str) -> Option<(&str, &str)> {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{c}' | '\r');
    let rest = line.strip_prefix('#')?.trim_start_matches(blank);
    let name_end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let name = &rest[..name_end];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let after = rest[name_end..].trim_start_matches(blank).strip_prefix('=')?;
    let value = after.trim_matches(blank);
    if !value.is_empty() {
        return Some((name, value));
    }
    let last = after.char_indices().last()?;
    Some((name, &after[last.0..]))
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\n', '\r'])
}

/// BuildKit's comment rule for the first line of an instruction: a line starting with
/// `#` is nothing.
fn without_comment(line: &str) -> &str {
    if line.starts_with('#') { "" } else { line }
}

/// The line without its continuation (the escape character at the end, blanks after it
/// allowed, not itself escaped), and whether the instruction ends here.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    if let Some(head) = body.strip_suffix(escape)
        && (head.is_empty() || !head.ends_with(escape))
    {
        return (head.to_owned(), false);
    }
    (line.to_owned(), true)
}

/// An instruction from its joined line.
fn instruction(line: &str, at: Position, escape: char) -> Result<Instruction, ParseError> {
    let trimmed = line.trim();
    let (keyword, rest) = match trimmed.find(char::is_whitespace) {
        Some(end) => (&trimmed[..end], trimmed[end..].trim_start()),
        None => (trimmed, ""),
    };
    let keyword = keyword.to_ascii_uppercase();
    let (rest, flags) = builder_flags(rest);
    let rest = rest.trim();
    let json_keywords = ["RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"];
    let args = if json_keywords.contains(&keyword.as_str()) {
        match json_array(rest) {
            JsonArray::Strings(words) => Args::Json(words),
            JsonArray::NotStrings => {
                return Err(ParseError {
                    at,
                    message: "when using JSON array syntax, arrays must be comprised of strings only"
                        .to_owned(),
                });
            }
            JsonArray::NotJson => Args::Shell(rest.to_owned()),
        }
    } else {
        Args::Shell(rest.to_owned())
    };
    if matches!(keyword.as_str(), "ENV" | "LABEL") {
        check_name_values(rest, &keyword, escape).map_err(|message| ParseError { at, message })?;
    }
    let sub = if keyword == "ONBUILD" && !rest.is_empty() {
        Some(Box::new(instruction(rest, at, escape)?))
    } else {
        None
    };
    Ok(Instruction {
        at,
        end_line: at.line,
        keyword,
        flags,
        args,
        heredocs: Vec::new(),
        line: trimmed.to_owned(),
        sub,
        source_lines: Vec::new(),
    })
}

/// BuildKit's `parseNameVal` refuses a legacy `ENV key` without a value, and a word
/// without `=` after the first of the `key=value` form.
fn check_name_values(rest: &str, keyword: &str, escape: char) -> Result<(), String> {
    let parsed = words(rest, escape);
    let Some(first) = parsed.first() else { return Ok(()) };
    if !first.contains('=') {
        return match legacy_pair(rest) {
            Some(_) => Ok(()),
            None => Err(format!("{keyword} must have two arguments")),
        };
    }
    match parsed.iter().find(|w| !w.contains('=')) {
        Some(word) => {
            Err(format!("Syntax error - can't find = in `{word}`. Must be of the form: name=value"))
        }
        None => Ok(()),
    }
}

/// The blanks of BuildKit's `reWhitespace` (`[\t\v\f\r ]`).
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{b}' | '\u{c}' | '\r')
}

/// The legacy `ENV key value` form: the key, and the rest after the blanks that follow
/// it, if there is a rest.
pub fn legacy_pair(rest: &str) -> Option<(&str, &str)> {
    let end = rest.find(is_blank)?;
    let value = rest[end..].trim_start_matches(is_blank);
    Some((&rest[..end], value))
}

enum JsonArray {
    Strings(Vec<String>),
    NotStrings,
    NotJson,
}

/// BuildKit decodes the first JSON value of the text: an array of strings is the exec
/// form; an array holding anything else is an error; anything else is the shell form.
fn json_array(text: &str) -> JsonArray {
    if !text.starts_with('[') {
        return JsonArray::NotJson;
    }
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    match values.next() {
        Some(Ok(serde_json::Value::Array(items))) => {
            let strings: Option<Vec<String>> =
                items.into_iter().map(|v| v.as_str().map(str::to_owned)).collect();
            strings.map_or(JsonArray::NotStrings, JsonArray::Strings)
        }
        _ => JsonArray::NotJson,
    }
}

/// The leading `--flag[=value]` words, quotes and escapes removed (BuildKit's
/// `extractBuilderFlags`), and the rest of the line. BuildKit reads the flags byte by
/// byte, each byte a character: a flag's non-ASCII text comes out as its bytes read as
/// Latin-1 (`é` as `Ã©`), and so it does here.
fn builder_flags(line: &str) -> (&str, Vec<Flag>) {
    let mut flags = Vec::new();
    let bytes = line.as_bytes();
    let mut at = 0;
    loop {
        while at < bytes.len() && (bytes[at] as char).is_whitespace() {
            at += 1;
        }
        if !bytes[at..].starts_with(b"--") {
            return (rest_from(line, at), flags);
        }
        let mut word = String::new();
        let mut quote: Option<u8> = None;
        while at < bytes.len() {
            let c = bytes[at];
            match quote {
                None if (c as char).is_whitespace() => break,
                None if c == b'\'' || c == b'"' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == b'\\' => {
                    at += 1;
                    if let Some(&next) = bytes.get(at) {
                        word.push(char::from(next));
                        at += 1;
                    }
                    continue;
                }
                _ => {
                    word.push(char::from(c));
                    at += 1;
                    continue;
                }
            }
            at += 1;
        }
        if word == "--" {
            return (rest_from(line, at), flags);
        }
        let body = &word[2..];
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (body, None),
        };
        // BuildKit's flag names are case-sensitive (`--FROM` is no flag it knows).
        flags.push(Flag { name: name.to_owned(), value });
    }
}

/// The line from byte `at`: BuildKit may stop reading flags inside a character (at a
/// byte that reads as a blank, such as the second of `à`); the rest starts at the next
/// whole character.
fn rest_from(line: &str, mut at: usize) -> &str {
    while !line.is_char_boundary(at) {
        at += 1;
    }
    &line[at..]
}

impl Instruction {
    fn can_hold_heredocs(&self) -> bool {
        let own = HEREDOC_KEYWORDS.contains(&self.keyword.as_str()) && matches!(self.args, Args::Shell(_));
        let registered = self.sub.as_ref().is_some_and(|sub| sub.can_hold_heredocs());
        own || registered
    }

    /// The flag of that name, if given.
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }

    /// Where `needle` first appears in the instruction's lines (else the keyword).
    pub fn position_of(&self, needle: &str) -> Position {
        if needle.is_empty() {
            return self.at;
        }
        for (number, text) in &self.source_lines {
            if let Some(offset) = text.find(needle) {
                return Position { line: *number, column: text[..offset].chars().count() + 1 };
            }
        }
        self.at
    }
}

/// The heredocs a line opens: its words (quotes kept) of the form `<<NAME`,
/// `<<-NAME`, `N<<NAME`, where NAME is one word once its quotes are removed.
fn heredocs_of(line: &str) -> Vec<Heredoc> {
    // A line the word lexer cannot read (an open quote or `${`) opens none.
    if crate::lexer::words(line, '\\').is_err() {
        return Vec::new();
    }
    crate::lexer::raw_words(line).iter().filter_map(|word| heredoc_word(word)).collect()
}

/// A `<<NAME` word as a heredoc (BuildKit's `ParseHeredoc`).
pub(crate) fn heredoc_word(word: &str) -> Option<Heredoc> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let unquoted = crate::lexer::unquoted_words(rest)?;
    let [name] = unquoted.as_slice() else { return None };
    Some(Heredoc {
        name: name.clone(),
        chomp,
        expand: !rest.contains(['\'', '"']),
        file_descriptor: word[..digits].parse().unwrap_or(0),
        content: String::new(),
    })
}

/// BuildKit's `parseWords`: words at blanks outside quotes, quotes and escapes kept.
pub fn words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    if chars.peek().is_none() {
                        continue;
                    }
                    word.push(c);
                    word.push(chars.next().expect("peeked"));
                    continue;
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    if chars.peek().is_none() {
                        quote = None;
                        continue;
                    }
                    word.push(c);
                    word.push(chars.next().expect("peeked"));
                    continue;
                }
                word.push(c);
            }
        }
    }
    if blank_ok || !word.is_empty() {
        words.push(word);
    }
    words
}

/// An instruction as BuildKit's parser lays it out (its AST node: keyword, flags as
/// written after quote removal, the JSON attribute, the argument values of the
/// keyword's line parser, heredoc contents, first and last line), for comparing with
/// BuildKit's own parser in the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub keyword: String,
    pub sub_keyword: Option<String>,
    pub json: bool,
    pub flags: Vec<String>,
    pub values: Vec<String>,
    pub heredocs: Vec<String>,
    pub start_line: usize,
    pub end_line: usize,
}

impl Instruction {
    pub fn shape(&self, escape: char) -> Shape {
        let (sub_keyword, json, values) = match &self.sub {
            // `ONBUILD ONBUILD ...` (which BuildKit refuses when it builds): its parser
            // lays the inner one out as one empty value.
            Some(sub) if sub.keyword == "ONBUILD" => {
                (Some(sub.keyword.clone()), false, sub.sub.iter().map(|_| String::new()).collect())
            }
            Some(sub) => (Some(sub.keyword.clone()), sub.json(), sub.values(escape)),
            None => (None, self.json(), self.values(escape)),
        };
        Shape {
            keyword: self.keyword.clone(),
            sub_keyword,
            json,
            flags: self
                .flags
                .iter()
                .map(|f| match &f.value {
                    Some(value) => format!("--{}={value}", f.name),
                    None => format!("--{}", f.name),
                })
                .collect(),
            values,
            // An `ONBUILD RUN <<EOF`'s heredocs belong to the instruction it registers,
            // where BuildKit's layout does not show them.
            heredocs: if self.sub.is_some() {
                Vec::new()
            } else {
                self.heredocs.iter().map(|h| h.content.clone()).collect()
            },
            start_line: self.at.line,
            end_line: self.end_line,
        }
    }

    /// The values of BuildKit's line parser for the keyword.
    fn values(&self, escape: char) -> Vec<String> {
        let whitespace = |text: &str| -> Vec<String> {
            if text.is_empty() {
                Vec::new()
            } else {
                text.split(is_blank).filter(|w| !w.is_empty()).map(str::to_owned).collect()
            }
        };
        let whole = |text: &str| if text.is_empty() { Vec::new() } else { vec![text.to_owned()] };
        match (&self.args, self.keyword.as_str()) {
            (Args::Json(words), _) => words.clone(),
            (Args::Shell(text), "ADD" | "COPY" | "VOLUME" | "EXPOSE" | "FROM") => whitespace(text),
            (Args::Shell(text), "ARG") => words(text, escape),
            (Args::Shell(text), "ENV" | "LABEL") => {
                let parsed = words(text, escape);
                match parsed.first() {
                    None => Vec::new(),
                    Some(first) if !first.contains('=') => match legacy_pair(text) {
                        Some((key, value)) => vec![key.to_owned(), value.to_owned()],
                        None => vec![text.clone()],
                    },
                    Some(_) => parsed
                        .iter()
                        .flat_map(|w| {
                            let (key, value) = w.split_once('=').unwrap_or((w, ""));
                            [key.to_owned(), value.to_owned()]
                        })
                        .collect(),
                }
            }
            (Args::Shell(text), "HEALTHCHECK") => {
                let Some((kind, rest)) =
                    text.split_once(char::is_whitespace).or(Some((text, ""))).filter(|(k, _)| !k.is_empty())
                else {
                    return Vec::new();
                };
                let rest = rest.trim_start();
                let mut values = vec![kind.to_owned()];
                match json_array(rest) {
                    JsonArray::Strings(words) => values.extend(words),
                    _ => values.extend(whole(rest)),
                }
                values
            }
            (
                Args::Shell(text),
                "RUN" | "CMD" | "ENTRYPOINT" | "SHELL" | "MAINTAINER" | "STOPSIGNAL" | "USER" | "WORKDIR",
            ) => whole(text),
            (Args::Shell(_), "ONBUILD") => Vec::new(),
            (Args::Shell(_), _) => vec![String::new()],
        }
    }

    /// Whether BuildKit marks the node as JSON: the exec form, also a HEALTHCHECK's.
    fn json(&self) -> bool {
        if self.keyword == "HEALTHCHECK" {
            let text = self.args.text();
            let rest = text.split_once(char::is_whitespace).map_or("", |(_, r)| r.trim_start());
            return matches!(json_array(rest), JsonArray::Strings(_));
        }
        matches!(self.args, Args::Json(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Instruction {
        let file = parse(text).expect("parses");
        file.instructions.into_iter().last().expect("an instruction")
    }

    #[test]
    fn continuations_comments_and_blank_lines() {
        let file = parse("FROM busybox\nRUN echo a \\\n  # inside\n\n  && echo b\nCMD x\n").expect("parses");
        assert_eq!(file.instructions.len(), 3);
        assert_eq!(file.instructions[1].args, Args::Shell("echo a   && echo b".to_owned()));
        assert_eq!(file.instructions[1].end_line, 5);
        assert_eq!(file.empty_continuation_lines, [4]);
        assert_eq!(file.instructions[2].at, Position { line: 6, column: 1 });
    }

    #[test]
    fn an_escaped_escape_does_not_continue() {
        let file = parse("RUN echo a\\\\\nRUN echo b\n").expect("parses");
        assert_eq!(file.instructions.len(), 2);
        assert_eq!(file.instructions[0].args, Args::Shell("echo a\\\\".to_owned()));
    }

    #[test]
    fn directives() {
        let file =
            parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\nRUN echo `\n  b\n").expect("parses");
        assert_eq!(file.escape, '`');
        assert_eq!(file.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(file.instructions[1].args, Args::Shell("echo   b".to_owned()));
        // After a comment, a directive is a comment.
        assert_eq!(parse("# hello\n# escape=`\nFROM a\n").expect("parses").escape, '\\');
        assert!(parse("# escape=x\nFROM a\n").is_err());
        assert!(parse("# escape=`\n# escape=`\nFROM a\n").is_err());
    }

    #[test]
    fn flags_lose_their_quotes() {
        let copy = one("COPY --chown=\"${U}:${G}\" --link [\"a b\", \"/c\"]\n");
        assert_eq!(copy.flag("chown").and_then(|f| f.value.clone()).as_deref(), Some("${U}:${G}"));
        assert_eq!(copy.flag("link").map(|f| f.value.clone()), Some(None));
        assert_eq!(copy.args, Args::Json(vec!["a b".into(), "/c".into()]));
    }

    #[test]
    fn json_or_shell() {
        assert_eq!(one("CMD [\"a\", \"b\"] tail\n").args, Args::Json(vec!["a".into(), "b".into()]));
        assert_eq!(one("CMD ['a']\n").args, Args::Shell("['a']".into()));
        assert!(parse("CMD [1]\n").is_err());
        assert_eq!(one("ENV A=[\"x\"]\n").args, Args::Shell("A=[\"x\"]".into()));
    }

    #[test]
    fn heredocs_take_the_lines_after() {
        let file = parse("FROM a\nRUN <<EOF\necho hi\nEOF\nRUN <<-'X' cat > f\n\tline\n\tX\nUSER u\n")
            .expect("parses");
        assert_eq!(file.instructions.len(), 4);
        let run = &file.instructions[1];
        assert_eq!(run.heredocs[0].content, "echo hi\n");
        assert!(run.heredocs[0].expand);
        assert_eq!(run.end_line, 4);
        let second = &file.instructions[2];
        assert_eq!((second.heredocs[0].chomp, second.heredocs[0].expand), (true, false));
        assert_eq!(second.heredocs[0].content, "\tline\n");
        assert_eq!(file.instructions[3].keyword, "USER");
        assert!(parse("RUN <<EOF\necho\n").is_err());
        // Not in JSON form, not in other instructions.
        assert!(one("RUN [\"<<EOF\"]\n").heredocs.is_empty());
        assert_eq!(parse("ENV A=<<EOF\nUSER u\n").expect("parses").instructions.len(), 2);
    }

    #[test]
    fn onbuild_holds_an_instruction() {
        let onbuild = one("ONBUILD COPY --from=x . /app\n");
        let sub = onbuild.sub.expect("a sub-instruction");
        assert_eq!((sub.keyword.as_str(), sub.flags.len()), ("COPY", 1));
    }
}
