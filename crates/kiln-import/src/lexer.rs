//! BuildKit's word lexer (moby/buildkit `frontend/dockerfile/shell`), which most
//! instructions run their arguments through: `'…'` is literal, `"…"` keeps all but `$`
//! and the escape character (which escapes only `"`, `$` and itself there), the escape
//! character escapes anything outside quotes (and is dropped at the end), and `$NAME`,
//! `${NAME}`, `${NAME:-word}`, `${NAME:+word}` expand (also `${NAME-word}`,
//! `${NAME+word}`, `${NAME:?word}` and `${NAME?word}` of newer frontends).
//!
//! A word is read into pieces (literal text and variable references) so that import can
//! both evaluate it, as Docker would with the values it knows, and write it for kiln,
//! whose expanding fields take the same `$NAME` syntax (`\$` for a literal `$`).

use std::collections::BTreeMap;

/// A word of a Dockerfile, read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word {
    pub pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text as Docker reads it (quotes and escapes removed).
    Text(String),
    /// A variable reference.
    Var(Var),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    pub name: String,
    /// `:-`, `:+`, `-`, `+`, `:?`, `?`, with its word.
    pub modifier: Option<(String, Word)>,
    /// The reference as written (`$A`, `${A:-x}`).
    pub raw: String,
}

/// The values variables have where a word is read: known (an `ENV`, or an `ARG` with
/// a default that a build argument could change), or set to something import cannot
/// know (an `ARG` without a default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Known { value: String, from_arg: bool },
    Unknown,
}

pub type Scope = BTreeMap<String, Value>;

impl Word {
    /// Whether it references no variable.
    pub fn literal(&self) -> Option<String> {
        let mut text = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => text.push_str(t),
                Piece::Var(_) => return None,
            }
        }
        Some(text)
    }

    /// The variables it references (modifier words included).
    pub fn vars(&self) -> Vec<&Var> {
        let mut vars = Vec::new();
        for piece in &self.pieces {
            if let Piece::Var(var) = piece {
                vars.push(var);
                if let Some((_, word)) = &var.modifier {
                    vars.extend(word.vars());
                }
            }
        }
        vars
    }

    /// The word as Docker reads it with these values: unset names read as empty. `Err`
    /// names a variable whose value import cannot know.
    pub fn evaluate(&self, scope: &Scope) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(var) => {
                    let value = match scope.get(&var.name) {
                        Some(Value::Known { value, .. }) => Some(value.clone()),
                        Some(Value::Unknown) => return Err(var.name.clone()),
                        None => None,
                    };
                    out.push_str(&var.evaluate(value, scope)?);
                }
            }
        }
        Ok(out)
    }

    /// Whether evaluating it reads a value a build argument could change.
    pub fn depends_on_args(&self, scope: &Scope) -> bool {
        self.vars().iter().any(|v| match scope.get(&v.name) {
            Some(Value::Known { from_arg, .. }) => *from_arg,
            Some(Value::Unknown) => true,
            None => false,
        })
    }

    /// The word in kiln's syntax for fields where `$VAR` expands (`env`, `arg`,
    /// `workdir`, `user`, `volume`, `expose`, `chown`): references as written, a literal
    /// `$` as `\$`. `Err` says what that syntax cannot hold.
    pub fn for_kiln(&self) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => {
                    for c in t.chars() {
                        if c == '$' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                }
                Piece::Var(var) => {
                    // kiln reads `\$` as a literal `$`: a literal `\` cannot precede a
                    // reference.
                    if out.ends_with('\\') {
                        return Err(format!("a literal `\\` right before `{}`", var.raw));
                    }
                    if var.raw.contains(['"', '\'', '\\', '`']) {
                        return Err(format!("quotes or escapes inside `{}`", var.raw));
                    }
                    out.push_str(&var.raw);
                }
            }
        }
        Ok(out)
    }
}

impl Var {
    /// The reference with its variable's value (`None`: unset).
    fn evaluate(&self, value: Option<String>, scope: &Scope) -> Result<String, String> {
        let Some((modifier, word)) = &self.modifier else {
            return Ok(value.unwrap_or_default());
        };
        let set = value.is_some();
        let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
        Ok(match modifier.as_str() {
            ":-" if !non_empty => word.evaluate(scope)?,
            "-" if !set => word.evaluate(scope)?,
            ":+" if non_empty => word.evaluate(scope)?,
            "+" if set => word.evaluate(scope)?,
            ":+" | "+" => String::new(),
            ":?" if !non_empty => return Err(self.name.clone()),
            "?" if !set => return Err(self.name.clone()),
            _ => value.unwrap_or_default(),
        })
    }
}

/// A lexer error, as BuildKit reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError(pub String);

/// One word (`ProcessWord`): blanks are kept.
pub fn word(text: &str, escape: char) -> Result<Word, LexError> {
    let mut lexer = Lexer { chars: text.char_indices().peekable(), text, escape };
    let (word, _) = lexer.until(None, false)?;
    Ok(word)
}

/// Words split at blanks outside quotes (`ProcessWords`, for `EXPOSE`). A blank in a
/// variable's value splits too: that is for whoever evaluates the words.
pub fn words(text: &str, escape: char) -> Result<Vec<Word>, LexError> {
    let mut lexer = Lexer { chars: text.char_indices().peekable(), text, escape };
    let (_, words) = lexer.until(None, true)?;
    Ok(words)
}

/// Words with their quotes, escapes and references kept, split at blanks outside quotes
/// (BuildKit reads heredoc markers from these).
pub fn raw_words(text: &str) -> Vec<String> {
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

/// Words with quotes removed and references left as written (a heredoc's name).
pub fn unquoted_words(text: &str) -> Option<Vec<String>> {
    let words = words(text, '\\').ok()?;
    Some(
        words
            .iter()
            .map(|w| {
                w.pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Text(t) => t.clone(),
                        Piece::Var(v) => v.raw.clone(),
                    })
                    .collect()
            })
            .collect(),
    )
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    text: &'a str,
    escape: char,
}

/// Builds a word piece by piece, and the words split at blanks.
#[derive(Default)]
struct Builder {
    word: Word,
    words: Vec<Word>,
    /// The current split word, and whether it has begun (quotes begin a word).
    split: Word,
    in_word: bool,
}

impl Builder {
    fn text(&mut self, c: char, quoted: bool) {
        push_text(&mut self.word, c);
        if !quoted && c.is_whitespace() {
            // As BuildKit's `ProcessWords`, an empty word (`""`) is no word.
            if self.in_word && !self.split.pieces.is_empty() {
                self.words.push(std::mem::take(&mut self.split));
                self.in_word = false;
            }
        } else {
            push_text(&mut self.split, c);
            self.in_word = true;
        }
    }

    fn quoted(&mut self, text: &str) {
        for c in text.chars() {
            push_text(&mut self.word, c);
            push_text(&mut self.split, c);
        }
        self.in_word = true;
    }

    fn var(&mut self, var: Var) {
        self.word.pieces.push(Piece::Var(var.clone()));
        self.split.pieces.push(Piece::Var(var));
        self.in_word = true;
    }

    fn finish(mut self) -> (Word, Vec<Word>) {
        if self.in_word && !self.split.pieces.is_empty() {
            self.words.push(self.split);
        }
        (self.word, self.words)
    }
}

fn push_text(word: &mut Word, c: char) {
    if let Some(Piece::Text(text)) = word.pieces.last_mut() {
        text.push(c);
    } else {
        word.pieces.push(Piece::Text(c.to_string()));
    }
}

impl Lexer<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|(_, c)| *c)
    }

    fn offset(&mut self) -> usize {
        self.chars.peek().map_or(self.text.len(), |(i, _)| *i)
    }

    /// Reads up to `stop` (consumed) or the end.
    fn until(&mut self, stop: Option<char>, split: bool) -> Result<(Word, Vec<Word>), LexError> {
        let mut builder = Builder::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.chars.next();
                return Ok(builder.finish());
            }
            match c {
                '\'' => {
                    let text = self.single_quoted()?;
                    builder.quoted(&text);
                }
                '"' => self.double_quoted(&mut builder)?,
                '$' => match self.dollar()? {
                    Some(var) => builder.var(var),
                    None => builder.text('$', false),
                },
                c if c == self.escape => {
                    self.chars.next();
                    match self.chars.next() {
                        Some((_, next)) => builder.text(next, true),
                        None => break,
                    }
                }
                c => {
                    self.chars.next();
                    builder.text(c, false);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(LexError(format!("unexpected end of statement while looking for matching {stop}")));
        }
        let _ = split;
        Ok(builder.finish())
    }

    fn single_quoted(&mut self) -> Result<String, LexError> {
        self.chars.next();
        let mut text = String::new();
        loop {
            match self.chars.next() {
                None => {
                    return Err(LexError(
                        "unexpected end of statement while looking for matching single-quote".to_owned(),
                    ));
                }
                Some((_, '\'')) => return Ok(text),
                Some((_, c)) => text.push(c),
            }
        }
    }

    fn double_quoted(&mut self, builder: &mut Builder) -> Result<(), LexError> {
        self.chars.next();
        builder.in_word = true;
        loop {
            match self.peek() {
                None => {
                    return Err(LexError(
                        "unexpected end of statement while looking for matching double-quote".to_owned(),
                    ));
                }
                Some('"') => {
                    self.chars.next();
                    return Ok(());
                }
                Some('$') => match self.dollar()? {
                    Some(var) => builder.var(var),
                    None => builder.text('$', true),
                },
                Some(c) => {
                    self.chars.next();
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                self.chars.next();
                                builder.text(next, true);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    builder.text(c, true);
                }
            }
        }
    }

    /// After `$`: a reference, or `None` for a `$` that starts none.
    fn dollar(&mut self) -> Result<Option<Var>, LexError> {
        let start = self.offset();
        self.chars.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok(None);
            }
            let raw = self.text[start..self.offset()].to_owned();
            return Ok(Some(Var { name, modifier: None, raw }));
        }
        self.chars.next();
        match self.peek() {
            None => return Err(LexError("syntax error: missing '}'".to_owned())),
            Some('{' | '}' | ':') => return Err(LexError("syntax error: bad substitution".to_owned())),
            Some(_) => {}
        }
        let name = self.name();
        let modifier = match self.chars.next().map(|(_, c)| c) {
            Some('}') => None,
            Some(':') => {
                let op = match self.chars.next().map(|(_, c)| c) {
                    Some(c @ ('-' | '+' | '?')) => format!(":{c}"),
                    Some(c) => return Err(LexError(format!("unsupported modifier ({c}) in substitution"))),
                    None => return Err(LexError("syntax error: missing '}'".to_owned())),
                };
                let (word, _) = self.until(Some('}'), false)?;
                Some((op, word))
            }
            Some(c @ ('-' | '+' | '?')) => {
                let (word, _) = self.until(Some('}'), false)?;
                Some((c.to_string(), word))
            }
            Some(c) => return Err(LexError(format!("unsupported modifier ({c}) in substitution"))),
            None => return Err(LexError("syntax error: missing '}'".to_owned())),
        };
        let raw = self.text[start..self.offset()].to_owned();
        Ok(Some(Var { name, modifier, raw }))
    }

    /// A name: digits, one special parameter, or letters, digits and `_`.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                    name.push(c);
                    self.chars.next();
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')) => {
                self.chars.next();
                return c.to_string();
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.chars.next();
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(pairs: &[(&str, &str)]) -> Scope {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::Known { value: (*v).to_owned(), from_arg: false }))
            .collect()
    }

    fn eval(text: &str, pairs: &[(&str, &str)]) -> String {
        word(text, '\\').expect("lexes").evaluate(&scope(pairs)).expect("known")
    }

    #[test]
    fn quotes_escapes_and_references() {
        let env = [("A", "1"), ("E", "")];
        assert_eq!(eval(r#""a\b\"$A" '\$A' \$A ${A}"#, &env), r#"a\b"1 \$A $A 1"#);
        assert_eq!(eval("'-i 2'", &[]), "-i 2");
        assert_eq!(eval("${E:-d} ${E-d} ${A:+p} ${N+p} ${N-x}", &env), "d  p  x");
        assert_eq!(eval("$ $1 a$", &[]), "$  a$");
        assert_eq!(eval("x\\", &[]), "x");
        assert!(word("'open", '\\').is_err());
        assert!(word("${A", '\\').is_err());
        assert!(word("${:x}", '\\').is_err());
    }

    #[test]
    fn the_escape_character_can_be_a_backtick() {
        let read = word("C:\\dir `$A", '`').expect("lexes");
        assert_eq!(read.evaluate(&scope(&[("A", "1")])).expect("known"), "C:\\dir $A");
    }

    #[test]
    fn words_split_at_blanks_outside_quotes() {
        let read = words("80 \"443 x\" ${P}/udp", '\\').expect("lexes");
        assert_eq!(read.len(), 3);
        assert_eq!(read[1].literal().as_deref(), Some("443 x"));
        assert_eq!(read[2].for_kiln().as_deref(), Ok("${P}/udp"));
    }

    #[test]
    fn written_for_kiln() {
        let kiln = |text: &str| word(text, '\\').expect("lexes").for_kiln();
        assert_eq!(kiln("'$HOME' \"$A\"").as_deref(), Ok("\\$HOME $A"));
        assert_eq!(kiln("${A:-/usr/local}").as_deref(), Ok("${A:-/usr/local}"));
        assert!(kiln("\\\\$A").is_err());
        assert!(kiln("${A:-\"x y\"}").is_err());
    }

    #[test]
    fn unknown_values_are_named() {
        let read = word("a$X", '\\').expect("lexes");
        let mut known = Scope::new();
        known.insert("X".into(), Value::Unknown);
        assert_eq!(read.evaluate(&known), Err("X".to_owned()));
        assert_eq!(read.evaluate(&Scope::new()).as_deref(), Ok("a"));
        assert_eq!(raw_words("RUN cat <<'EOF' >f"), ["RUN", "cat", "<<'EOF'", ">f"]);
    }
}
