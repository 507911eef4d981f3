//! A list of patterns applied in order, where the last matching pattern decides.

use crate::{Pattern, PatternError};

/// An ordered list of ignore patterns.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

/// What a directory's match results were, so its entries can be matched without
/// re-checking every parent (Docker's `MatchInfo`). The root's state is the default.
#[derive(Debug, Clone, Default)]
pub struct ParentState {
    matched: Vec<bool>,
}

impl Matcher {
    /// Compiles the patterns; blank ones are skipped. On error, returns the index of the
    /// offending pattern in the input along with the reason.
    pub fn new<I, S>(patterns: I) -> Result<Self, (usize, PatternError)>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut compiled = Vec::new();
        for (index, raw) in patterns.into_iter().enumerate() {
            if let Some(pattern) = Pattern::new(raw.as_ref()).map_err(|e| (index, e))? {
                compiled.push(pattern);
            }
        }
        Ok(Self { patterns: compiled })
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is an exception (`!`), so that an excluded directory may still
    /// hold included files.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(Pattern::is_exclusion)
    }

    /// Whether `path` (relative to the context root, `/`-separated) is left out of the
    /// build context. This is Docker's `MatchesOrParentMatches`.
    pub fn is_excluded(&self, path: &str) -> bool {
        self.excluded_by(path).is_some()
    }

    /// The index (among the compiled patterns) of the pattern that excludes `path`, if it
    /// is excluded: the last pattern that switched it to "excluded".
    pub fn excluded_by(&self, path: &str) -> Option<usize> {
        let path = crate::clean_path(path);
        if path == "." {
            return None;
        }
        let parents = parent_prefixes(&path);
        let mut decided_by = None;
        for (index, pattern) in self.patterns.iter().enumerate() {
            // An inclusion only matters while the path is included, an exception only
            // while it is excluded.
            if pattern.is_exclusion() != decided_by.is_some() {
                continue;
            }
            let hit = pattern.matches(&path) || parents.iter().any(|p| pattern.matches(p));
            if hit {
                decided_by = (!pattern.is_exclusion()).then_some(index);
            }
        }
        decided_by
    }

    /// Docker's `MatchesUsingParentResults`: matches `path` (the full relative path of an
    /// entry) given its directory's state, and returns the state to hand to the entry's
    /// own children if it is a directory.
    pub fn matches_with_parent(&self, path: &str, parent: &ParentState) -> (bool, ParentState) {
        let parents = if parent.matched.is_empty() { parent_prefixes(path) } else { Vec::new() };
        let mut matched = false;
        let mut state = ParentState { matched: vec![false; self.patterns.len()] };
        for (index, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.matched.get(index).copied().unwrap_or(false);
            if !hit {
                if pattern.is_exclusion() != matched {
                    continue;
                }
                hit = pattern.matches(path) || parents.iter().any(|p| pattern.matches(p));
            }
            state.matched[index] = hit;
            if hit {
                matched = !pattern.is_exclusion();
            }
        }
        (matched, state)
    }
}

/// `a/b/c` → `["a", "a/b"]`: every proper parent directory of a clean relative path.
fn parent_prefixes(path: &str) -> Vec<&str> {
    path.match_indices('/').map(|(i, _)| &path[..i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Expect {
        Fail,
        Exact,
        Inexact,
    }
    use Expect::{Exact, Fail, Inexact};

    fn matcher(patterns: &[&str]) -> Matcher {
        Matcher::new(patterns).unwrap_or_else(|e| panic!("{patterns:?}: {e:?}"))
    }

    /// The single-pattern table of moby/patternmatcher's tests: `Exact` matches the path
    /// itself, `Inexact` only through a parent directory.
    const SINGLE: &[(&str, &str, Expect)] = &[
        ("**", "file", Exact),
        ("**", "file/", Exact),
        ("**/", "file", Exact),
        ("**/", "file/", Exact),
        ("**", "/", Exact),
        ("**/", "/", Exact),
        ("**", "dir/file", Exact),
        ("**/", "dir/file", Exact),
        ("**", "dir/file/", Exact),
        ("**/", "dir/file/", Exact),
        ("**/**", "dir/file", Exact),
        ("**/**", "dir/file/", Exact),
        ("dir/**", "dir/file", Exact),
        ("dir/**", "dir/file/", Exact),
        ("dir/**", "dir/dir2/file", Exact),
        ("dir/**", "dir/dir2/file/", Exact),
        ("**/dir", "dir", Exact),
        ("**/dir", "dir/file", Inexact),
        ("**/dir2/*", "dir/dir2/file", Exact),
        ("**/dir2/*", "dir/dir2/file/", Inexact),
        ("**/dir2/**", "dir/dir2/dir3/file", Exact),
        ("**/dir2/**", "dir/dir2/dir3/file/", Exact),
        ("**file", "file", Exact),
        ("**file", "dir/file", Exact),
        ("**/file", "dir/file", Exact),
        ("**file", "dir/dir/file", Exact),
        ("**/file", "dir/dir/file", Exact),
        ("**/file*", "dir/dir/file", Exact),
        ("**/file*", "dir/dir/file.txt", Exact),
        ("**/file*txt", "dir/dir/file.txt", Exact),
        ("**/file*.txt", "dir/dir/file.txt", Exact),
        ("**/file*.txt*", "dir/dir/file.txt", Exact),
        ("**/**/*.txt", "dir/dir/file.txt", Exact),
        ("**/**/*.txt2", "dir/dir/file.txt", Fail),
        ("**/*.txt", "file.txt", Exact),
        ("**/**/*.txt", "file.txt", Exact),
        ("a**/*.txt", "a/file.txt", Exact),
        ("a**/*.txt", "a/dir/file.txt", Exact),
        ("a**/*.txt", "a/dir/dir/file.txt", Exact),
        ("a/*.txt", "a/dir/file.txt", Fail),
        ("a/*.txt", "a/file.txt", Exact),
        ("a/*.txt**", "a/file.txt", Exact),
        ("a[b-d]e", "ae", Fail),
        ("a[b-d]e", "ace", Exact),
        ("a[b-d]e", "aae", Fail),
        ("a[^b-d]e", "aze", Exact),
        (".*", ".foo", Exact),
        (".*", "foo", Fail),
        ("abc.def", "abcdef", Fail),
        ("abc.def", "abc.def", Exact),
        ("abc.def", "abcZdef", Fail),
        ("abc?def", "abcZdef", Exact),
        ("abc?def", "abcdef", Fail),
        ("**/foo/bar", "foo/bar", Exact),
        ("**/foo/bar", "dir/foo/bar", Exact),
        ("**/foo/bar", "dir/dir2/foo/bar", Exact),
        ("abc/**", "abc", Fail),
        ("abc/**", "abc/def", Exact),
        ("abc/**", "abc/def/ghi", Exact),
        ("**/.foo", ".foo", Exact),
        ("**/.foo", "bar.foo", Fail),
        ("a(b)c/def", "a(b)c/def", Exact),
        ("a(b)c/def", "a(b)c/xyz", Fail),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", Exact),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Exact,
        ),
        ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", Exact),
        ("a\\\\", "a\\", Exact),
        ("a\\*b", "a*b", Exact),
    ];

    #[test]
    fn single_patterns_exact() {
        for &(pattern, path, expect) in SINGLE {
            let pattern = Pattern::new(pattern).unwrap().unwrap();
            assert_eq!(pattern.matches(path), expect == Exact, "pattern {pattern} on {path:?}");
        }
    }

    #[test]
    fn single_patterns_with_parents() {
        for &(pattern, path, expect) in SINGLE {
            let m = matcher(&[pattern]);
            // Docker cleans the path before matching; so do we.
            assert_eq!(m.is_excluded(path), expect != Fail, "{pattern} on {path:?}");
        }
    }

    #[test]
    fn single_patterns_walking() {
        for &(pattern, path, expect) in SINGLE {
            let m = matcher(&[pattern]);
            assert_eq!(walk(&m, path), expect != Fail, "{pattern} on {path:?}");
        }
    }

    /// Matches `path` the way a tree walk does: each parent first, carrying its state.
    fn walk(m: &Matcher, path: &str) -> bool {
        let mut state = ParentState::default();
        let parents = parent_prefixes(path);
        for parent in parents {
            state = m.matches_with_parent(parent, &state).1;
        }
        m.matches_with_parent(path, &state).0
    }

    const MULTI: &[(&[&str], &str, bool)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (&["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", true),
        (
            &["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
        (&["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false),
        (&["docs", "!docs/README.md"], "docs/README.md", false),
        (&["docs/", "!docs/README.md"], "docs/README.md", false),
        (&["docs/*", "!docs/README.md"], "docs/README.md", false),
        (&["*.go", "!fileutils.go"], "fileutils.go", false),
        (&["!fileutils.go", "*.go"], "fileutils.go", true),
        (&["*", "!src"], "src/main.rs", false),
        (&["foo"], "a/foo", false),
        (&["*.md"], "docs/x.md", false),
        (&["a**b"], "a/x/b", true),
        (&["a**b"], "axb", false),
        (&["docs", "!docs/keep"], "docs/keep/a.txt", false),
        (&["docs", "!docs/keep"], "docs/other.txt", true),
    ];

    #[test]
    fn multiple_patterns() {
        for &(patterns, path, excluded) in MULTI {
            let m = matcher(patterns);
            assert_eq!(m.is_excluded(path), excluded, "{patterns:?} on {path}");
            assert_eq!(walk(&m, path), excluded, "walk {patterns:?} on {path}");
        }
    }

    /// Go's own `filepath.Match` table, as moby/patternmatcher runs it through `Matches`
    /// (so a pattern may match through a parent directory).
    #[test]
    fn go_match_table() {
        let table: &[(&str, &str, Result<bool, ()>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(true)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a][^a][^a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(())),
            ("[-]", "-", Err(())),
            ("[x-]", "x", Err(())),
            ("[-x]", "x", Err(())),
            ("\\", "a", Err(())),
            ("[a-b-c]", "a", Err(())),
            ("[", "a", Err(())),
            ("[^", "a", Err(())),
            ("[^bc", "a", Err(())),
            ("a[", "a", Err(())),
            ("*x", "xxx", Ok(true)),
        ];
        for &(pattern, path, expected) in table {
            let got = Matcher::new([pattern]).map(|m| m.is_excluded(path)).map_err(|_| ());
            assert_eq!(got, expected, "{pattern:?} on {path:?}");
        }
    }

    #[test]
    fn rejects_lone_exclamation() {
        assert_eq!(Matcher::new(["docs", "!"]).unwrap_err(), (1, PatternError::LoneExclamation));
    }

    #[test]
    fn rejects_patterns_docker_reads_as_regex() {
        assert_eq!(Matcher::new(["a\\d"]).unwrap_err().1, PatternError::EscapedAlphanumeric('d'));
        assert_eq!(Matcher::new(["[*]"]).unwrap_err().1, PatternError::WildcardInClass('*'));
    }

    #[test]
    fn dot_is_never_excluded() {
        assert!(!matcher(&["*"]).is_excluded("."));
        assert!(!matcher(&["**"]).is_excluded("./"));
    }

    #[test]
    fn reports_the_deciding_pattern() {
        let m = matcher(&["*.pyc", "build", "!build/keep", "build/keep/x"]);
        assert_eq!(m.excluded_by("a.pyc"), Some(0));
        assert_eq!(m.excluded_by("build/out"), Some(1));
        assert_eq!(m.excluded_by("build/keep/y"), None);
        assert_eq!(m.excluded_by("build/keep/x"), Some(3));
    }

    #[test]
    fn stray_bracket_switches_to_regex_matching() {
        // `**a]` is a regex (`(.*/)?a]`), not a suffix match.
        assert!(!matcher(&["**a]"]).is_excluded("xa]"));
        assert!(matcher(&["**a]"]).is_excluded("x/a]"));
    }
}
