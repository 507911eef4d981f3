//! KDL syntax errors as users read them. The parser reports where it gave up, which is
//! not always where the mistake is:
//!
//! - a block missing its `}` is reported on the outermost block, at the end of the file;
//!   the indentation tells which block it was, and only that one is reported;
//! - KDL v1 habits (`true`, `null`, `r"…"` raw strings) get the KDL v2 spelling as a
//!   hint, and the errors that follow a v1 raw string on from it are left out.

use crate::diagnostic::{Code, Diagnostic};
use crate::source::{FileId, Span};

/// Turns kdl's diagnostics for one file into kiln's.
pub(crate) fn errors(file: FileId, text: &str, found: &[kdl::KdlDiagnostic]) -> Vec<Diagnostic> {
    let spelled =
        |d: &kdl::KdlDiagnostic| text.get(d.span.offset()..d.span.offset() + d.span.len()).unwrap_or("");
    let is_raw_v1 = |d: &kdl::KdlDiagnostic| spelled(d).starts_with("r\"") || spelled(d).starts_with("r#");
    // A v1 raw string derails the parser for the rest of the file: what it reports after
    // it, blocks left open included, follows from it.
    let raw_v1 = found.iter().filter(|d| is_raw_v1(d)).map(|d| d.span.offset()).min();
    let unclosed_reported = found.iter().any(is_unclosed);
    let mut out = Vec::new();
    let mut unclosed_done = raw_v1.is_some();
    for d in found {
        let (offset, len) = (d.span.offset(), d.span.len());
        if is_unclosed(d) {
            // One error for the block that is not closed, wherever the parser noticed.
            if !unclosed_done {
                unclosed_done = true;
                out.push(match unclosed_block(text) {
                    Some(block) => block.diagnostic(file),
                    None => plain(file, d),
                });
            }
            continue;
        }
        if raw_v1.is_some_and(|start| offset > start) {
            continue;
        }
        let spelled = spelled(d);
        let word = spelled.split(|c: char| !c.is_ascii_alphanumeric() && c != '-').next().unwrap_or("");
        let span = Span::new(file, offset, len);
        if matches!(word, "true" | "false" | "null" | "inf" | "nan") && spelled.len() == word.len() {
            out.push(
                Diagnostic::new(Code::KdlSyntax, format!("`{word}` is a KDL v1 keyword"))
                    .label(span, "a bare word KDL v2 does not accept")
                    .help(format!("KDL v2 writes it `#{word}`")),
            );
            continue;
        }
        if is_raw_v1(d) {
            out.push(
                Diagnostic::new(Code::KdlSyntax, "`r\"…\"` is a KDL v1 raw string")
                    .label(span, "a KDL v1 raw string")
                    .help("KDL v2 writes raw strings `#\"…\"#` (more `#` when the text holds `\"#`)"),
            );
            continue;
        }
        if spelled.starts_with('"')
            && let Some((at, escape)) = bad_escape(spelled)
        {
            out.push(
                Diagnostic::new(Code::KdlSyntax, format!("`{escape}` is not an escape KDL knows"))
                    .label(Span::new(file, offset + at, escape.len()), "unknown escape")
                    .help("write `\\\\` for a backslash, or use a raw string: `#\"a\\b\"#` keeps every `\\` as written"),
            );
            continue;
        }
        if d.message.as_deref().is_some_and(|m| m.contains("multi-line comment"))
            && let Some(open) = unclosed_comment(text)
        {
            out.push(
                Diagnostic::new(Code::KdlSyntax, "this `/*` comment is never closed")
                    .label(Span::new(file, open, 2), "opened here")
                    .help("close it with `*/` (comments nest: each `/*` needs its own `*/`)"),
            );
            continue;
        }
        out.push(plain(file, d).relocated(file, text, offset, len));
    }
    // The unclosed block's own errors came first in the parser's list only when it
    // reported them; keep the order of the file.
    if unclosed_reported {
        out.sort_by_key(|d| d.labels.first().map_or(0, |l| l.span.start));
    }
    out
}

/// The first escape of a quoted string that KDL v2 does not define, and where it is.
/// (KDL knows `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, `\s`, `\u{…}`, and `\` before
/// blanks, which it skips.)
fn bad_escape(quoted: &str) -> Option<(usize, &str)> {
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            continue;
        }
        let (next_at, next) = chars.next()?;
        if !matches!(next, '"' | '\\' | 'b' | 'f' | 'n' | 'r' | 't' | 's' | 'u') && !next.is_whitespace() {
            return Some((at, &quoted[at..next_at + next.len_utf8()]));
        }
    }
    None
}

/// The `/*` of the first block comment that is never closed.
fn unclosed_comment(text: &str) -> Option<usize> {
    let mut opened: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if starts(text, i, "/*") {
            opened.push(i);
            i += 2;
        } else if starts(text, i, "*/") && !opened.is_empty() {
            opened.pop();
            i += 2;
        } else if opened.is_empty() && starts(text, i, "//") {
            i = line_end(text, i);
        } else if opened.is_empty() && (starts(text, i, "\"") || starts(text, i, "#")) {
            let (mut line, mut line_start) = (0, 0);
            i = skip_string(text, i, &mut line, &mut line_start);
        } else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    opened.first().copied()
}

trait Relocate {
    fn relocated(self, file: FileId, text: &str, offset: usize, len: usize) -> Self;
}

impl Relocate for Diagnostic {
    /// The parser reports some errors (a property without a value, an unknown keyword)
    /// with a span from the start of the document to where it gave up: the error is at
    /// the end of that span, on its last word.
    fn relocated(mut self, file: FileId, text: &str, offset: usize, len: usize) -> Self {
        if offset != 0 || len < 2 {
            return self;
        }
        let before = text.get(..len).unwrap_or(text).trim_end();
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        if let Some(label) = self.labels.first_mut() {
            label.span = Span::new(file, start, before.len() - start);
        }
        self
    }
}

fn is_unclosed(d: &kdl::KdlDiagnostic) -> bool {
    d.message.as_deref().is_some_and(|m| m.to_lowercase().contains("closing '}'"))
}

fn plain(file: FileId, d: &kdl::KdlDiagnostic) -> Diagnostic {
    let message = d.message.as_deref().map_or_else(|| "invalid KDL".to_owned(), tidy_message);
    let span = Span::new(file, d.span.offset(), d.span.len());
    let label = d.label.as_deref().map_or_else(|| "here".to_owned(), tidy_message);
    Diagnostic::new(Code::KdlSyntax, message).label(span, label).help_opt(d.help.as_deref().map(tidy_message))
}

/// kdl's messages are sentences ("Expected valid value."); ours are lower-case phrases.
fn tidy_message(message: &str) -> String {
    let trimmed = message.trim().trim_end_matches('.');
    let mut chars = trimmed.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_none_or(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => trimmed.to_owned(),
    }
}

/// A block whose `}` is missing, found by its indentation.
#[derive(Debug, PartialEq, Eq)]
struct Unclosed {
    /// Byte offset of its `{`.
    brace: usize,
    /// What opens it (`stage deps`).
    name: String,
    /// The 1-based line before which its `}` should be, when the indentation says.
    before_line: Option<usize>,
}

impl Unclosed {
    fn diagnostic(&self, file: FileId) -> Diagnostic {
        let help = match self.before_line {
            Some(line) => {
                format!("add its `}}` before line {line}, where the indentation says the block ends")
            }
            None => "add its `}`".to_owned(),
        };
        Diagnostic::new(Code::KdlSyntax, format!("`{}` is not closed", self.name))
            .label(Span::new(file, self.brace, 1), "this block has no `}`")
            .help(help)
    }
}

/// An open block on the scan's stack.
struct Open {
    brace: usize,
    indent: usize,
    name: String,
}

/// Scans the text (skipping strings and comments) and finds the first block that a line
/// at its own indentation or less shows to be over before its `}` came: a sibling
/// opening, or a `}` that closes an outer block. At the end of the file, the innermost
/// block still open.
fn unclosed_block(text: &str) -> Option<Unclosed> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Open> = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut line_start = 0;
    // Whether the current line has had anything but blanks yet.
    let mut at_line_start = true;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\n' => {
                line += 1;
                line_start = i + 1;
                at_line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let indent = i - line_start;
        if at_line_start {
            at_line_start = false;
            // A node (or `}`) starting at the indentation of an open block, or left of it,
            // means that block is over.
            if let Some(top) = stack.last()
                && b != b'}'
                && indent <= top.indent
                && !starts(text, i, "//")
            {
                return Some(Unclosed { brace: top.brace, name: top.name.clone(), before_line: Some(line) });
            }
        }
        match b {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = line_end(text, i);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < bytes.len() {
                    if starts(text, i, "/*") {
                        depth += 1;
                        i += 2;
                    } else if starts(text, i, "*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if bytes[i] == b'\n' {
                            line += 1;
                            line_start = i + 1;
                        }
                        i += 1;
                    }
                }
            }
            b'"' | b'#' => i = skip_string(text, i, &mut line, &mut line_start),
            b'{' => {
                let start = text[line_start..i].trim();
                stack.push(Open {
                    brace: i,
                    indent: text[line_start..].len() - text[line_start..].trim_start().len(),
                    name: block_name(start),
                });
                i += 1;
            }
            b'}' => {
                if let Some(open) = stack.pop()
                    && indent < open.indent
                {
                    return Some(Unclosed { brace: open.brace, name: open.name, before_line: Some(line) });
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    stack.pop().map(|open| Unclosed { brace: open.brace, name: open.name, before_line: None })
}

/// How deep blocks may nest. kiln's own nodes go four levels deep; the parser recurses
/// once per level, and thousands of levels would overflow its stack.
pub(crate) const MAX_NESTING: usize = 100;

/// The offset of the first `{` that opens a block deeper than [`MAX_NESTING`], if any
/// (strings and comments skipped).
pub(crate) fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut line, mut line_start) = (1, 0);
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = line_end(text, i);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            b'"' | b'#' => i = skip_string(text, i, &mut line, &mut line_start),
            b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
                i += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// Skips a quoted string (`"…"`, `"""…"""`) or a raw one (`#"…"#`, with any number of
/// `#`) starting at `i`; returns the offset after it. A lone `#` (a keyword such as
/// `#true`) is skipped alone.
fn skip_string(text: &str, i: usize, line: &mut usize, line_start: &mut usize) -> usize {
    let hashes = text[i..].bytes().take_while(|b| *b == b'#').count();
    let quote = i + hashes;
    if text.as_bytes().get(quote) != Some(&b'"') {
        return i + hashes.max(1);
    }
    let triple = starts(text, quote, "\"\"\"");
    let open = if triple { 3 } else { 1 };
    let close = format!("{}{}", if triple { "\"\"\"" } else { "\"" }, "#".repeat(hashes));
    let mut j = quote + open;
    while j < text.len() {
        if hashes == 0 && text.as_bytes()[j] == b'\\' {
            j += 2;
            continue;
        }
        // Bytes, not `str` slices: `j` may sit inside a multi-byte character.
        if text.as_bytes()[j..].starts_with(close.as_bytes()) {
            return j + close.len();
        }
        if text.as_bytes()[j] == b'\n' {
            *line += 1;
            *line_start = j + 1;
        }
        j += 1;
    }
    text.len()
}

/// Whether `pattern` is at byte `i`; bytes, not `str` slices, since `i` may sit inside
/// a multi-byte character.
fn starts(text: &str, i: usize, pattern: &str) -> bool {
    text.as_bytes()[i..].starts_with(pattern.as_bytes())
}

/// The offset of the line break at or after `i`, or the end of the text.
fn line_end(text: &str, i: usize) -> usize {
    text.as_bytes()[i..].iter().position(|b| *b == b'\n').map_or(text.len(), |n| i + n)
}

/// `stage deps` for `stage deps {`, `image api` for `image api {`.
fn block_name(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().take(2).collect();
    let name = words.join(" ");
    if name.is_empty() { "this block".to_owned() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn culprit(text: &str) -> Option<(String, Option<usize>)> {
        unclosed_block(text).map(|u| (u.name, u.before_line))
    }

    #[test]
    fn the_indentation_tells_which_block_is_not_closed() {
        let missing_in_middle = "image api {\n    stage deps {\n        from \"x\"\n\n    stage runtime {\n        from \"y\"\n    }\n}\n";
        assert_eq!(culprit(missing_in_middle), Some(("stage deps".into(), Some(5))));
        let missing_at_end = "image api {\n    stage deps {\n        from \"x\"\n    }\n";
        assert_eq!(culprit(missing_at_end), Some(("image api".into(), None)));
        let closed_early = "image api {\n    from \"x\"\n    run \"a\"\nimage b {\n}\n";
        assert_eq!(culprit(closed_early), Some(("image api".into(), Some(4))));
        // Braces in strings and comments do not count.
        let fine = "image a {\n    run \"echo {\" // {\n    /* { */ cmd #\"}\"#\n}\n";
        assert_eq!(culprit(fine), None);
    }

    #[test]
    fn finds_blocks_nested_too_deep() {
        let deep = format!("{}{}", "a {".repeat(MAX_NESTING + 1), "}".repeat(MAX_NESTING + 1));
        assert_eq!(too_deep(&deep), Some(MAX_NESTING * 3 + 2));
        let fine = format!("x \"{}\" {}{}", "{".repeat(500), "a {".repeat(5), "}".repeat(5));
        assert_eq!(too_deep(&fine), None);
    }

    #[test]
    fn messages_read_as_phrases() {
        assert_eq!(tidy_message("Expected valid value."), "expected valid value");
        assert_eq!(tidy_message("KDL is fun."), "KDL is fun");
    }
}
