//! One ignore pattern, compiled the way moby/patternmatcher compiles it.
//!
//! Docker turns a pattern into one of four match kinds: an exact string, a prefix (a
//! literal followed by a final `**`), a suffix (a leading `**` followed by a literal), or
//! a regular expression in which `*` is `[^/]*`, `?` is `[^/]`, a final `**` is `.*` and
//! any other `**` (with the `/` after it) is `(.*/)?`. We keep the same four kinds, and
//! run the regular-expression kind as a small NFA over tokens, so no regex engine is
//! needed and compiling thousands of patterns costs nothing.

use std::fmt;

/// Why a pattern is rejected.
///
/// The first kinds are the ones Docker rejects too (Go's `filepath.Match` syntax
/// check). The last two are patterns Docker accepts but whose meaning there comes from
/// how Go's regular expressions read the translated text (`\d` becomes "a digit",
/// `[*]` becomes a different class): kiln refuses them rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("`!` alone is not a pattern")]
    LoneExclamation,
    #[error("unterminated character class: `[` has no closing `]`")]
    UnclosedClass,
    #[error("malformed character class: `-` and `]` must be escaped with `\\` inside `[...]`")]
    BadClass,
    #[error("a pattern cannot end with a lone `\\`")]
    TrailingBackslash,
    #[error("`\\{0}` would be a regular-expression class in Docker; escape only punctuation")]
    EscapedAlphanumeric(char),
    #[error("`{0}` inside `[...]` has no reliable meaning in Docker; list the characters instead")]
    WildcardInClass(char),
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    exclusion: bool,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix(String),
    Suffix(String),
    Tokens(Vec<Token>),
}

#[derive(Debug, Clone)]
enum Token {
    Literal(char),
    /// `?`: one character other than `/`.
    AnyOne,
    /// `*`: any run of characters other than `/`.
    Star,
    /// A final `**` after something non-literal: any run of characters.
    Any,
    /// `**` (and the `/` after it) elsewhere: nothing, or anything that ends in `/`.
    AnyDirs,
    Class(Class),
}

#[derive(Debug, Clone)]
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

impl Pattern {
    /// Compiles one pattern as `PatternMatcher.New` does: trimmed, cleaned like a path,
    /// and with a leading `!` marking an exception. Returns `Ok(None)` for a blank pattern.
    pub fn new(raw: &str) -> Result<Option<Self>, PatternError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let cleaned = crate::clean_path(trimmed);
        let (exclusion, text) = match cleaned.strip_prefix('!') {
            Some("") => return Err(PatternError::LoneExclamation),
            Some(rest) => (true, rest.to_owned()),
            None => (false, cleaned),
        };
        let kind = compile(&text)?;
        Ok(Some(Self { text, exclusion, kind }))
    }

    /// The cleaned pattern, without its `!`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this is an exception (`!pattern`), which re-includes what it matches.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// Whether the pattern matches `path` itself (a clean, `/`-separated relative path).
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || suffix.strip_prefix('/').is_some_and(|bare| path == bare)
            }
            Kind::Tokens(tokens) => run_tokens(tokens, path),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exclusion {
            f.write_str("!")?;
        }
        f.write_str(&self.text)
    }
}

/// Mirrors `Pattern.compile` in moby/patternmatcher: scan the pattern once, deciding the
/// match kind as we go (exact until something non-literal shows up).
fn compile(text: &str) -> Result<Kind, PatternError> {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Tokens,
    }

    let chars: Vec<char> = text.chars().collect();
    let mut detected = Detected::Exact;
    let mut tokens = Vec::new();
    let mut pos = 0;
    let mut iteration = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                // `**/` is read as `**`.
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        tokens.push(Token::Any);
                        detected = Detected::Tokens;
                    }
                } else {
                    tokens.push(Token::AnyDirs);
                    detected = Detected::Tokens;
                }
                if iteration == 0 {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                detected = Detected::Tokens;
            }
            '?' => {
                tokens.push(Token::AnyOne);
                detected = Detected::Tokens;
            }
            '\\' => match chars.get(pos) {
                Some(&next) => {
                    if next.is_ascii_alphanumeric() {
                        return Err(PatternError::EscapedAlphanumeric(next));
                    }
                    pos += 1;
                    tokens.push(Token::Literal(next));
                    detected = Detected::Tokens;
                }
                None => return Err(PatternError::TrailingBackslash),
            },
            '[' => {
                let (class, next) = parse_class(&chars, pos)?;
                pos = next;
                tokens.push(Token::Class(class));
                detected = Detected::Tokens;
            }
            // A stray `]` is a literal for both Go's filepath.Match and the regex engine,
            // but Docker's translation still switches to regex matching because of it,
            // which changes how a leading `**` or a trailing `**` is read.
            ']' => {
                tokens.push(Token::Literal(']'));
                detected = Detected::Tokens;
            }
            other => tokens.push(Token::Literal(other)),
        }
        iteration += 1;
    }

    Ok(match detected {
        Detected::Exact => Kind::Exact,
        // Strip the trailing `**` (the `/` before it stays, as in Docker).
        Detected::Prefix => Kind::Prefix(text[..text.len() - 2].to_owned()),
        Detected::Suffix => Kind::Suffix(text[2..].to_owned()),
        Detected::Tokens => Kind::Tokens(tokens),
    })
}

/// Parses a class whose `[` is just before `start`, with the rules of Go's
/// `filepath.Match`: an optional `^`, then one or more characters or ranges `lo-hi`,
/// where `-` and `]` must be escaped. Returns the class and the index after its `]`.
fn parse_class(chars: &[char], start: usize) -> Result<(Class, usize), PatternError> {
    let mut pos = start;
    let negated = chars.get(pos) == Some(&'^');
    if negated {
        pos += 1;
    }
    let mut ranges = Vec::new();
    loop {
        match chars.get(pos) {
            None => return Err(PatternError::UnclosedClass),
            Some(']') if !ranges.is_empty() => return Ok((Class { negated, ranges }, pos + 1)),
            _ => {}
        }
        let (lo, next) = class_char(chars, pos)?;
        pos = next;
        let mut hi = lo;
        if chars.get(pos) == Some(&'-') {
            let (end, next) = class_char(chars, pos + 1)?;
            hi = end;
            pos = next;
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], pos: usize) -> Result<(char, usize), PatternError> {
    match chars.get(pos) {
        None => Err(PatternError::UnclosedClass),
        Some('-' | ']') => Err(PatternError::BadClass),
        Some('\\') => match chars.get(pos + 1) {
            None => Err(PatternError::UnclosedClass),
            Some(&c) if c.is_ascii_alphanumeric() => Err(PatternError::EscapedAlphanumeric(c)),
            Some(&c) => Ok((c, pos + 2)),
        },
        Some(&c @ ('*' | '?')) => Err(PatternError::WildcardInClass(c)),
        Some('[') if chars.get(pos + 1) == Some(&':') => Err(PatternError::WildcardInClass('[')),
        Some(&c) => Ok((c, pos + 1)),
    }
}

/// Runs the token sequence as an NFA over the characters of `path`, anchored at both
/// ends. A state is a token index, plus a flag for "inside an `AnyDirs`, waiting for the
/// `/` that may end it". Go's `.` does not match a newline; neither do we.
fn run_tokens(tokens: &[Token], path: &str) -> bool {
    let width = tokens.len() + 1;
    let mut current = vec![false; width * 2];
    let mut next = vec![false; width * 2];
    add_state(tokens, &mut current, 0, false);
    for c in path.chars() {
        next.fill(false);
        for index in 0..tokens.len() {
            for inside in [false, true] {
                if !current[index * 2 + usize::from(inside)] {
                    continue;
                }
                match (&tokens[index], inside) {
                    (Token::AnyDirs, _) => {
                        if c == '/' {
                            add_state(tokens, &mut next, index + 1, false);
                        }
                        if c != '\n' {
                            add_state(tokens, &mut next, index, true);
                        }
                    }
                    (Token::Literal(l), false) if *l == c => {
                        add_state(tokens, &mut next, index + 1, false);
                    }
                    (Token::AnyOne, false) if c != '/' => {
                        add_state(tokens, &mut next, index + 1, false);
                    }
                    (Token::Class(class), false) if class.matches(c) => {
                        add_state(tokens, &mut next, index + 1, false);
                    }
                    (Token::Star, false) if c != '/' => add_state(tokens, &mut next, index, false),
                    (Token::Any, false) if c != '\n' => add_state(tokens, &mut next, index, false),
                    _ => {}
                }
            }
        }
        std::mem::swap(&mut current, &mut next);
        if !current.contains(&true) {
            return false;
        }
    }
    current[tokens.len() * 2]
}

/// Adds a state and, for the tokens that may match nothing, the states after it.
fn add_state(tokens: &[Token], states: &mut [bool], index: usize, inside: bool) {
    let slot = index * 2 + usize::from(inside);
    if states[slot] {
        return;
    }
    states[slot] = true;
    if !inside && matches!(tokens.get(index), Some(Token::Star | Token::Any | Token::AnyDirs)) {
        add_state(tokens, states, index + 1, false);
    }
}
