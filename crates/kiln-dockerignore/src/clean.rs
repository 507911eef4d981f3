//! Lexical path cleaning with the rules of Go's `path/filepath.Clean` (on `/` systems),
//! which Docker applies to every ignore pattern and to every path it matches.

/// Returns the shortest path equivalent to `path` by purely lexical processing:
/// repeated `/` collapse, `.` elements vanish, `..` eats the element before it (or is
/// dropped at the root), and a trailing `/` is removed. An empty result is `.`.
pub fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::clean_path;

    #[test]
    fn cleans_like_go() {
        for (input, expected) in [
            ("", "."),
            (".", "."),
            ("abc", "abc"),
            ("abc/", "abc"),
            ("abc//def", "abc/def"),
            ("./abc", "abc"),
            ("abc/./def", "abc/def"),
            ("abc/../def", "def"),
            ("abc/..", "."),
            ("../abc", "../abc"),
            ("../../abc/..", "../.."),
            ("/", "/"),
            ("//", "/"),
            ("/..", "/"),
            ("/../abc", "/abc"),
            ("/abc/", "/abc"),
            ("!foo/../bar", "bar"),
        ] {
            assert_eq!(clean_path(input), expected, "clean({input:?})");
        }
    }
}
