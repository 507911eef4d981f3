//! Writing values as the manifest reads them: KDL strings in which kiln's `{NAME}`
//! interpolation cannot be triggered by accident (`{` and `}` doubled, except in
//! `${...}`, which kiln leaves to the shell and Docker).

/// A KDL string of `value`, braces escaped for kiln.
pub(crate) fn quoted(value: &str) -> String {
    string_of_kiln_text(&escape_braces(value))
}

pub(crate) fn quoted_all<'a>(values: impl Iterator<Item = &'a str>) -> String {
    values.map(quoted).collect::<Vec<_>>().join(" ")
}

/// A name (image, stage, key) bare when KDL reads it as one, else quoted.
pub(crate) fn name(value: &str) -> String {
    let bare = value.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !matches!(value, "true" | "false" | "null" | "inf" | "nan");
    if bare { value.to_owned() } else { quoted(value) }
}

/// A KDL string of text that is already kiln text (its braces mean interpolation).
pub(crate) fn string_of_kiln_text(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(crate) fn escape_braces(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        // `${NAME}` reads the same in kiln (a `{` after `$` is no reference): kept as it is,
        // for the reader. Every other brace is doubled.
        if let Some(name_end) = rest.strip_prefix("${").and_then(|inner| {
            let end = inner.find('}')?;
            let name = &inner[..end];
            let simple = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            simple.then_some(end + 3)
        }) {
            out.push_str(&rest[..name_end]);
            rest = &rest[name_end..];
            continue;
        }
        match c {
            '{' => out.push_str("{{"),
            '}' => out.push_str("}}"),
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_and_quotes_survive() {
        assert_eq!(quoted("echo {a} ${HOME} \"x\""), r#""echo {{a}} ${HOME} \"x\"""#);
        assert_eq!(escape_braces("${races {not} a ${HOME}}"), "${{races {{not}} a ${HOME}}}");
        assert_eq!(name("api"), "api");
        assert_eq!(name("org.opencontainers.image.title"), "org.opencontainers.image.title");
        assert_eq!(name("1x"), "\"1x\"");
    }
}
