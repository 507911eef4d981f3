//! Docker's `.dockerignore` semantics, as the docker CLI and BuildKit apply them
//! (moby/patternmatcher and its `ignorefile` reader).
//!
//! The `ignore` and `globset` crates implement gitignore rules, which differ from Docker's:
//! Docker anchors every pattern at the context root, `*` never crosses `/`, a pattern
//! matching a parent directory matches everything under it, and `!` can re-include a
//! file under an excluded directory. This crate reproduces Docker's rules exactly,
//! including its odd corners (`a**b` means `a(.*/)?b`), and rejects the few patterns
//! whose Docker meaning depends on Go regular-expression accidents (see [`PatternError`]).

mod clean;
mod matcher;
mod pattern;

pub use clean::clean_path;
pub use matcher::{Matcher, ParentState};
pub use pattern::{Pattern, PatternError};

/// Reads the lines of an ignore file the way Docker's `ignorefile.ReadAll` does: a `#`
/// in column 1 starts a comment, lines are trimmed, a leading `!` is peeled off, the
/// rest is cleaned like a path and loses one leading `/`.
///
/// Returns the normalized pattern strings (with their `!`), in file order.
pub fn read_ignore_file(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines().filter_map(normalize_line).collect()
}

/// Normalizes one line of an ignore file; `None` for comments and blank lines.
pub fn normalize_line(line: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return None;
    }
    let (exclusion, body) = match trimmed.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, trimmed),
    };
    let mut body = if body.is_empty() { String::new() } else { clean_path(body) };
    if body.len() > 1 && body.starts_with('/') {
        body.remove(0);
    }
    Some(if exclusion { format!("!{body}") } else { body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_like_docker() {
        let text =
            "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        assert_eq!(
            read_ignore_file(text),
            ["test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!"]
        );
    }

    #[test]
    fn comment_only_in_column_one() {
        assert_eq!(read_ignore_file(" #x\n#y"), ["#x"]);
    }

    #[test]
    fn strips_bom_and_cleans() {
        assert_eq!(read_ignore_file("\u{feff}docs/\nfoo/./bar/../baz//\n"), ["docs", "foo/baz"]);
    }
}
