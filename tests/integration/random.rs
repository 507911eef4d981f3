//! Seeded random values for the tests that search for inputs kiln mishandles: a
//! failure names its seed and reproduces.

/// Characters Docker's Dockerfile reader, its word lexer, JSON, KDL or kiln's own
/// `{VAR}` syntax give a meaning to, and a few that are just unusual.
pub(crate) const HOSTILE: &[&str] = &[
    "\"", "\\", "'", "$", "$HOME", "${X}", "#", "-", "--", " ", "  ", "\t", "{", "}", "{{", "[", "]", "=",
    ",", ";", "&&", "|", "<<EOF", "`", "é", "🦀", "%", "*", "?", "!", "~", "a", "b",
];

/// Characters a reviewer could not see: kiln refuses them in Dockerfile words, and
/// writes them as `\uXXXX` in JSON (exec-form) arrays.
pub(crate) const INVISIBLE: &[&str] = &["\u{7f}", "\u{1b}", "\u{2028}", "\u{202e}", "\u{85}"];

/// A seeded generator (an LCG).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// A number below `n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).expect("fits") % n
    }

    /// A string of 1 to 8 hostile pieces.
    pub(crate) fn hostile(&mut self) -> String {
        (0..=self.below(8)).map(|_| HOSTILE[self.below(HOSTILE.len())]).collect()
    }

    /// A hostile string without `$`, for fields where Docker expands `$VAR`.
    pub(crate) fn hostile_without_dollar(&mut self) -> String {
        loop {
            let value = self.hostile();
            if !value.contains('$') {
                return value;
            }
        }
    }
}

/// Exec-form arguments whose program has no blank: kiln refuses a program name with one
/// (`command-in-one-argument`); the arguments after it may hold anything.
pub(crate) fn runnable(mut args: Vec<String>) -> Vec<String> {
    if let Some(program) = args.first_mut() {
        *program = program.replace(char::is_whitespace, "_");
    }
    args
}

/// `value` as a KDL string for a kiln manifest: KDL escapes, and braces doubled so
/// that kiln does not read `{X}` as a variable.
pub(crate) fn kdl(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '{' => out.push_str("{{"),
            '}' => out.push_str("}}"),
            c if kiln_manifest::hidden_in_review(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// KDL strings, space-separated: a node's arguments.
pub(crate) fn kdl_list(values: &[String]) -> String {
    values.iter().map(|v| kdl(v)).collect::<Vec<_>>().join(" ")
}

/// `key="value"` properties, space-separated.
pub(crate) fn kdl_pairs(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", kdl(v))).collect::<Vec<_>>().join(" ")
}

/// `text` with a few of `tokens` inserted, spans deleted and spans copied elsewhere.
pub(crate) fn mutate(rng: &mut Rng, tokens: &[&str], text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..=rng.below(5) {
        let at = rng.below(chars.len() + 1);
        match rng.below(3) {
            0 => {
                let token: Vec<char> = tokens[rng.below(tokens.len())].chars().collect();
                chars.splice(at..at, token);
            }
            1 => {
                let end = (at + 1 + rng.below(20)).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            _ => {
                let from = rng.below(chars.len() + 1);
                let end = (from + 1 + rng.below(40)).min(chars.len());
                let copied: Vec<char> = chars[from.min(end)..end].to_vec();
                chars.splice(at..at, copied);
            }
        }
    }
    chars.into_iter().collect()
}
