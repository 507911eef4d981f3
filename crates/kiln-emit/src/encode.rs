//! How a value the user wrote is written into a Dockerfile so that Docker reads back
//! exactly that value: it cannot end the instruction, start another, join the next line
//! or become a flag.
//!
//! Docker's frontend reads a Dockerfile in layers, and each layer has its own rules:
//!
//! 1. lines: one ending in `\` (then blanks) continues on the next; a line starting
//!    with `#` is a comment;
//! 2. flags: words starting with `--` at the start of `COPY`, `RUN`, ... are flags;
//! 3. arguments: the JSON form (`["a", "b"]`) is JSON; otherwise words are split on
//!    blanks, and `KEY=value` pairs honour double quotes;
//! 4. words: most instructions then run each word through a shell-like lexer, which
//!    takes quotes and `\` escapes away and expands `$VAR`. Exec-form arrays (`CMD`,
//!    `ENTRYPOINT`, `SHELL`, `HEALTHCHECK`) skip this step; `COPY` and `VOLUME` do not,
//!    even in JSON form.
//!
//! Values were checked before (no line break, no NUL): what they may hold otherwise is
//! encoded here.

/// Characters Docker's lexer gives a meaning to, outside quotes.
fn lexer_special(c: char) -> bool {
    matches!(c, '\\' | '"' | '\'' | '$') || c.is_whitespace()
}

/// A word that Docker's lexer reads back as `value` and that is not a flag: bare when
/// nothing in it is special, else in double quotes, where `\`, `"` (and, unless
/// `expand`, `$`) are escaped. With `expand`, `$VAR` expands as Docker documents it.
/// The closing quote also keeps a trailing `\` from joining the next line.
pub(crate) fn word(value: &str, expand: bool) -> String {
    let plain = !value.is_empty()
        && !value.starts_with('-')
        && !value.starts_with('[')
        && !value.starts_with('#')
        && !value.chars().any(|c| lexer_special(c) && !(expand && c == '$'));
    if plain { value.to_owned() } else { quoted(value, expand) }
}

/// A `"…"` value of a `KEY="value"` pair (`ENV`, `LABEL`, `ARG`): `\` and `"` escaped,
/// and `$` too unless `expand`.
pub(crate) fn quoted(value: &str, expand: bool) -> String {
    format!("\"{}\"", escaped(value, expand, |c| c == '\\' || c == '"'))
}

/// `value` with a `\` before each character `special` names, and before each `$` unless
/// `expand`. With `expand`, the manifest's `\$` (a literal `$`) stays `\$`, which
/// Docker reads as `$`.
fn escaped(value: &str, expand: bool, special: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if expand && c == '\\' && chars.peek() == Some(&'$') {
            out.push_str("\\$");
            chars.next();
            continue;
        }
        if special(c) || (c == '$' && !expand) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An exec-form array: JSON, which Docker decodes and uses as is. Characters a
/// reviewer could not see are written as `\uXXXX` escapes.
pub(crate) fn exec_array(values: &[&str]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(|v| {
            let json = serde_json::to_string(v).expect("strings serialize");
            if !json.chars().any(kiln_manifest::hidden_in_review) {
                return json;
            }
            json.chars()
                .map(|c| {
                    if kiln_manifest::hidden_in_review(c) {
                        // Outside the BMP none qualify: one UTF-16 unit each.
                        format!("\\u{:04x}", u32::from(c))
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// A JSON-form array whose elements Docker then runs through its lexer (`COPY`,
/// `VOLUME`): each element is escaped for the lexer first, so that it reads back as
/// the literal value (no quote, `\` or `$` is interpreted). Blanks need no escape:
/// the lexer reads each element as one word.
/// With `expand`, `$VAR` is left to the lexer, and the manifest's `\$` stays `\$`.
pub(crate) fn lexed_array(values: &[&str], expand: bool) -> String {
    let escaped: Vec<String> = values
        .iter()
        .map(|value| escaped(value, expand, |c| lexer_special(c) && !c.is_whitespace() && c != '$'))
        .collect();
    let refs: Vec<&str> = escaped.iter().map(String::as_str).collect();
    exec_array(&refs)
}

/// `COPY`'s paths: bare words when each is plain, else the JSON form (a path with a
/// blank, a quote, `\`, `$`, a leading `-`, which would read as a flag, or `<<`, which
/// BuildKit would read as a heredoc, at any Dockerfile level).
pub(crate) fn copy_paths(sources: &[String], dest: &str) -> String {
    let plain = |p: &str| {
        !p.is_empty()
            && !p.starts_with('-')
            && !p.starts_with('[')
            && !p.starts_with('#')
            && !p.contains("<<")
            && !p.chars().any(lexer_special)
    };
    if sources.iter().all(|s| plain(s)) && plain(dest) {
        let mut parts: Vec<&str> = sources.iter().map(String::as_str).collect();
        parts.push(dest);
        parts.join(" ")
    } else {
        let all: Vec<&str> = sources.iter().map(String::as_str).chain(std::iter::once(dest)).collect();
        lexed_array(&all, false)
    }
}

/// A literal path as a `.dockerignore` line: glob characters escaped, and a leading `!`
/// or `#` escaped so that it is neither an exception nor a comment.
pub(crate) fn ignore_literal(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 1);
    for (i, c) in path.chars().enumerate() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') || (i == 0 && matches!(c, '!' | '#')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A pattern from the manifest as a `.dockerignore` line: as written, but a leading `#`
/// escaped (in the manifest it is a pattern, never a comment).
pub(crate) fn ignore_pattern(pattern: &str) -> String {
    if pattern.starts_with('#') { format!("\\{pattern}") } else { pattern.to_owned() }
}

/// Quotes a word for `/bin/sh` when it has characters the shell would interpret.
pub(crate) fn shell_quote(word: &str) -> String {
    let safe =
        !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,%".contains(c));
    if safe { word.to_owned() } else { format!("'{}'", word.replace('\'', "'\\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_bare_only_when_nothing_is_special() {
        assert_eq!(word("/srv/app", false), "/srv/app");
        assert_eq!(word("/srv/it's", false), r#""/srv/it's""#);
        assert_eq!(word(r"/opt/app\", false), r#""/opt/app\\""#);
        assert_eq!(word("/srv/a b ", false), r#""/srv/a b ""#);
        assert_eq!(word("$HOME/x", true), "$HOME/x");
        assert_eq!(word("$HOME/x", false), r#""\$HOME/x""#);
        assert_eq!(word("--flag", false), r#""--flag""#);
    }

    /// In the fields where `$VAR` expands, the manifest's `\$` is a literal `$`, and
    /// every other `\` a literal `\`.
    #[test]
    fn a_dollar_stays_literal_after_a_backslash() {
        assert_eq!(quoted(r"\$HOME and $HOME", true), r#""\$HOME and $HOME""#);
        assert_eq!(quoted(r"C:\dir", true), r#""C:\\dir""#);
        assert_eq!(word(r"/srv/\$x", true), r#""/srv/\$x""#);
        assert_eq!(lexed_array(&[r"/v/\$x", "/v/$D"], true), r#"["/v/\\$x", "/v/$D"]"#);
    }

    #[test]
    fn json_elements_are_escaped_for_the_lexer() {
        assert_eq!(
            lexed_array(&[r"back\slash\", "it's", "$x", "a b"], false),
            r#"["back\\\\slash\\\\", "it\\'s", "\\$x", "a b"]"#
        );
        assert_eq!(exec_array(&["a\"b", r"c\d"]), r#"["a\"b", "c\\d"]"#);
        assert_eq!(exec_array(&["\u{7f}\u{2028}\u{202e}"]), r#"["\u007f\u2028\u202e"]"#);
        assert_eq!(copy_paths(&["src".into()], "/app/"), "src /app/");
        assert_eq!(copy_paths(&["--chmod=777".into()], "/app/"), r#"["--chmod=777", "/app/"]"#);
        assert_eq!(copy_paths(&["my files/".into()], "/srv/"), r#"["my files/", "/srv/"]"#);
        assert_eq!(copy_paths(&["<<EOF".into()], "/srv/"), r#"["<<EOF", "/srv/"]"#);
    }

    #[test]
    fn ignore_lines_mean_what_they_say() {
        assert_eq!(ignore_literal("!gen"), r"\!gen");
        assert_eq!(ignore_literal("#gen"), r"\#gen");
        assert_eq!(ignore_literal("a*b/c!"), r"a\*b/c!");
        assert_eq!(ignore_pattern("#secret"), r"\#secret");
        assert_eq!(ignore_pattern("!keep"), "!keep");
    }
}
