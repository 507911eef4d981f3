//! A Dockerfile reader that follows the rules of BuildKit's parser and word lexer, for
//! the property test (`property.rs`): what would Docker read back from a generated
//! file? Written from the rules, not from kiln's encoder:
//!
//! - lines: a line ending in `\` (then blanks) continues on the next, which is joined
//!   to it directly; comment lines (`#` first) and blank lines inside a continuation
//!   are dropped;
//! - heredocs (RUN, COPY at level 1.4): a word `<<WORD` (optionally `<<-`, quoted or
//!   escaped) makes the lines up to one equal to `WORD` the instruction's body;
//! - flags: leading words starting with `--` (quotes keep blanks inside one);
//! - arguments: a JSON array of strings when the rest is one, else words;
//! - words go through the lexer: `'…'` literal, `"…"` with `\` escaping only `"`, `$`
//!   and `\`, `\` escaping anything outside quotes, and `$VAR`/`${VAR}` expanded.

use std::collections::HashMap;

/// One instruction as Docker reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Read {
    pub keyword: String,
    pub flags: Vec<String>,
    pub args: Args,
    /// Heredoc bodies, in order.
    pub heredocs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Args {
    /// A JSON array (exec form, or JSON-form paths before the lexer).
    Json(Vec<String>),
    /// The rest of the line, as written (shell form).
    Text(String),
}

/// Reads a Dockerfile into instructions.
pub(crate) fn read(dockerfile: &str, heredocs: bool) -> Vec<Read> {
    let lines: Vec<&str> = dockerfile.split('\n').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if is_comment_or_blank(line) {
            continue;
        }
        // Continuations.
        let mut logical = String::new();
        let mut current = line.to_owned();
        loop {
            let trimmed = current.trim_end();
            match trimmed.strip_suffix('\\') {
                Some(head) if i <= lines.len() => {
                    logical.push_str(head);
                    // The next line that is neither a comment nor blank continues it.
                    while i < lines.len() && is_comment_or_blank(lines[i]) {
                        i += 1;
                    }
                    if i >= lines.len() {
                        break;
                    }
                    lines[i].clone_into(&mut current);
                    i += 1;
                }
                _ => {
                    logical.push_str(&current);
                    break;
                }
            }
        }
        let logical = logical.trim_start();
        let (keyword, rest) = logical.split_once(char::is_whitespace).unwrap_or((logical, ""));
        let keyword = keyword.to_ascii_uppercase();
        let (flags, rest) = split_flags(rest.trim_start());
        let mut bodies = Vec::new();
        if heredocs && matches!(keyword.as_str(), "RUN" | "COPY") {
            for (delimiter, chomp) in heredoc_words(rest) {
                let mut body = String::new();
                while i < lines.len() {
                    let mut body_line = lines[i];
                    i += 1;
                    if chomp {
                        body_line = body_line.trim_start_matches('\t');
                    }
                    if body_line == delimiter {
                        break;
                    }
                    body.push_str(body_line);
                    body.push('\n');
                }
                bodies.push(body);
            }
        }
        let args = match serde_json::from_str::<Vec<String>>(rest.trim()) {
            Ok(array) if rest.trim_start().starts_with('[') => Args::Json(array),
            _ => Args::Text(rest.trim().to_owned()),
        };
        out.push(Read { keyword, flags, args, heredocs: bodies });
    }
    out
}

fn is_comment_or_blank(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// Leading `--flag` words; a quoted part of a flag keeps its blanks.
fn split_flags(rest: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = rest;
    while rest.starts_with("--") {
        let mut quote: Option<char> = None;
        let mut end = rest.len();
        for (at, c) in rest.char_indices() {
            match quote {
                Some(q) if c == q => quote = None,
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c.is_whitespace() => {
                    end = at;
                    break;
                }
                _ => {}
            }
        }
        flags.push(rest[..end].to_owned());
        rest = rest[end..].trim_start();
    }
    (flags, rest)
}

/// The heredoc words of a line: BuildKit splits it into words (quotes kept) and takes
/// those matching `^\d*<<(-?)(.+)$`, unquoting the delimiter.
fn heredoc_words(line: &str) -> Vec<(String, bool)> {
    words(line)
        .into_iter()
        .filter_map(|word| {
            let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
            let rest = rest.strip_prefix("<<")?;
            let (chomp, rest) = match rest.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, rest),
            };
            if rest.is_empty() || rest.contains('<') {
                return None;
            }
            Some((process_word(rest, &HashMap::new()), chomp))
        })
        .collect()
}

/// Splits at blanks outside quotes, keeping quotes and escapes in the words (BuildKit's
/// `parseWords`).
pub(crate) fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            word.push(c);
            escaped = false;
            continue;
        }
        match quote {
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                }
            }
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            None => {
                word.push(c);
                match c {
                    '\\' => escaped = true,
                    '"' | '\'' => quote = Some(c),
                    _ => {}
                }
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// `KEY=value` words (ENV, LABEL, ARG): the value through the lexer.
pub(crate) fn pairs(text: &str, env: &HashMap<String, String>) -> Vec<(String, String)> {
    words(text)
        .into_iter()
        .filter_map(|word| {
            let (key, value) = word.split_once('=')?;
            Some((process_word(key, env), process_word(value, env)))
        })
        .collect()
}

/// One word through Docker's lexer: quotes and escapes taken away, variables expanded.
pub(crate) fn process_word(word: &str, env: &HashMap<String, String>) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                }
                i += 2;
            }
            '\'' => {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    out.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    match chars[i] {
                        '\\' if matches!(chars.get(i + 1), Some('"' | '$' | '\\')) => {
                            out.push(chars[i + 1]);
                            i += 2;
                        }
                        '$' => i = expand(&chars, i, env, &mut out),
                        c => {
                            out.push(c);
                            i += 1;
                        }
                    }
                }
                i += 1;
            }
            '$' => i = expand(&chars, i, env, &mut out),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `$NAME` or `${NAME}` at `i`; returns where the word goes on. A `$` not followed by a
/// name is kept.
fn expand(chars: &[char], i: usize, env: &HashMap<String, String>, out: &mut String) -> usize {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if chars.get(i + 1) == Some(&'{') {
        let end = (i + 2..chars.len()).find(|&j| chars[j] == '}').unwrap_or(chars.len());
        let name: String = chars[i + 2..end].iter().collect();
        out.push_str(env.get(&name).map_or("", String::as_str));
        return end + 1;
    }
    let end = (i + 1..chars.len()).find(|&j| !is_name(chars[j])).unwrap_or(chars.len());
    if end == i + 1 {
        out.push('$');
        return i + 1;
    }
    let name: String = chars[i + 1..end].iter().collect();
    out.push_str(env.get(&name).map_or("", String::as_str));
    end
}
