//! Reading a Dockerfile as Docker's parser does: parser directives (`# escape=`), comment
//! lines (also inside continued instructions), line continuations with the escape
//! character, the keyword, the leading `--flag=value` options, and the JSON (exec) or
//! shell form of the rest.

/// One instruction, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where it starts.
    pub line: usize,
    /// Upper-case keyword (`RUN`, `COPY`, ...).
    pub keyword: String,
    /// Leading `--name=value` options (`--from=build`, `--chown=app`); `--link` has "".
    pub flags: Vec<(String, String)>,
    pub args: Args,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// `["a", "b"]`.
    Json(Vec<String>),
    /// Anything else, trimmed.
    Shell(String),
}

impl Args {
    pub fn text(&self) -> String {
        match self {
            Self::Json(words) => words.join(" "),
            Self::Shell(text) => text.clone(),
        }
    }
}

/// The keywords whose leading `--options` are flags.
const TAKES_FLAGS: &[&str] = &["FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"];

pub fn parse(text: &str) -> Vec<Instruction> {
    let mut escape = '\\';
    let mut lines = text.lines().enumerate().peekable();
    // Parser directives: `# name=value` lines before anything else.
    while let Some((_, line)) = lines.peek() {
        let Some(directive) = line.trim().strip_prefix('#') else { break };
        let Some((name, value)) = directive.split_once('=') else { break };
        if name.trim().eq_ignore_ascii_case("escape") {
            escape = value.trim().chars().next().unwrap_or('\\');
        } else if !name.trim().eq_ignore_ascii_case("syntax") && !name.trim().eq_ignore_ascii_case("check") {
            break;
        }
        lines.next();
    }
    let mut instructions = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, line) in lines {
        let trimmed = line.trim_start();
        if current.is_none() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        // Comment lines inside a continued instruction are dropped, as Docker does.
        if current.is_some() && trimmed.starts_with('#') {
            continue;
        }
        let (start, mut text) = current.take().unwrap_or((index + 1, String::new()));
        let body = line.trim_end();
        if let Some(continued) = body.strip_suffix(escape) {
            text.push_str(continued);
            current = Some((start, text));
        } else {
            text.push_str(body);
            instructions.extend(instruction(start, &text));
        }
    }
    if let Some((start, text)) = current {
        instructions.extend(instruction(start, &text));
    }
    instructions
}

fn instruction(line: usize, text: &str) -> Option<Instruction> {
    let text = text.trim();
    let (keyword, mut rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let keyword = keyword.to_ascii_uppercase();
    if keyword.is_empty() {
        return None;
    }
    let mut flags = Vec::new();
    if TAKES_FLAGS.contains(&keyword.as_str()) {
        loop {
            let trimmed = rest.trim_start();
            let Some(flag) = trimmed.strip_prefix("--") else { break };
            let (word, after) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
            let flag_text = &flag[..word.len() - 2];
            let (name, value) = flag_text.split_once('=').unwrap_or((flag_text, ""));
            flags.push((name.to_ascii_lowercase(), value.to_owned()));
            rest = after;
        }
    }
    let rest = rest.trim();
    let args = match serde_json::from_str::<Vec<String>>(rest) {
        Ok(words) if rest.starts_with('[') => Args::Json(words),
        _ => Args::Shell(rest.to_owned()),
    };
    Some(Instruction { line, keyword, flags, args })
}

/// Splits `ENV`/`LABEL` arguments into pairs: `a=b c="d e"`, or the legacy `ENV a b c`
/// (one pair, the rest of the line as its value). Quotes and escapes are removed as
/// Docker removes them.
pub fn pairs(text: &str) -> Vec<(String, String)> {
    let words = words(text);
    if words.first().is_some_and(|w| !w.contains('=')) {
        let (key, value) = text.trim().split_once(char::is_whitespace).unwrap_or((text.trim(), ""));
        return vec![(key.to_owned(), unquote(value.trim()))];
    }
    words
        .iter()
        .map(|word| {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            (unquote(key), unquote(value))
        })
        .collect()
}

/// Blank-separated words, keeping quoted blanks and escaped characters inside a word.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', q) if q != Some('\'') => {
                word.push(c);
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            ('"' | '\'', None) => {
                quote = Some(c);
                word.push(c);
            }
            (c, Some(q)) if c == q => {
                quote = None;
                word.push(c);
            }
            (c, None) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Removes quotes and backslash escapes, as Docker does for ENV and LABEL values.
fn unquote(text: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', Some('\'')) => out.push(c),
            ('\\', _) => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            ('"' | '\'', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_continuations_comments_flags_and_forms() {
        let text = "# syntax=docker/dockerfile:1\nFROM --platform=linux/amd64 busybox AS build\n# a comment\nRUN echo a \\\n  # inside\n  && echo b\nCOPY --from=0 --chown=app:app /a /b\nCMD [\"sh\", \"-c\", \"x\"]\n";
        let parsed = parse(text);
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[0].flags, [("platform".to_owned(), "linux/amd64".to_owned())]);
        assert_eq!(parsed[1].line, 4);
        assert_eq!(parsed[1].args, Args::Shell("echo a   && echo b".to_owned()));
        assert_eq!(parsed[2].flags.len(), 2);
        assert_eq!(parsed[3].args, Args::Json(vec!["sh".into(), "-c".into(), "x".into()]));
    }

    #[test]
    fn escape_directive_changes_the_continuation_character() {
        let parsed = parse("# escape=`\nFROM busybox\nRUN echo a `\n  b\n");
        assert_eq!(parsed[1].args, Args::Shell("echo a   b".to_owned()));
    }

    #[test]
    fn env_pairs_in_both_forms() {
        assert_eq!(
            pairs("A=1 B=\"two words\" C=a\\ b"),
            [("A".into(), "1".into()), ("B".into(), "two words".into()), ("C".into(), "a b".into())]
        );
        assert_eq!(pairs("PATH /usr/local/bin:$PATH"), [("PATH".into(), "/usr/local/bin:$PATH".into())]);
    }
}
