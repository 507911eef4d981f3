//! Which files of a context folder go to the builder, decided exactly as the docker CLI
//! decides it (moby's `TarWithOptions`): entries in name order, each matched with its
//! parent directory's results, an excluded directory skipped unless an exception
//! pattern names something inside it. Symlinks are kept as links, never followed, so
//! nothing outside the context folder can enter it.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kiln_dockerignore::{Matcher, ParentState};

use crate::hashes::Stamp;

/// One entry of the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the context root, `/`-separated.
    pub path: String,
    pub full_path: PathBuf,
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File { stamp: Stamp },
    Symlink { target: PathBuf },
}

/// Lists the context's entries, depth first in name order, after the ignore rules.
/// Sockets, FIFOs and devices are left out (Docker cannot copy them either).
pub fn walk(root: &Path, matcher: &Matcher) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    walk_dir(root, "", &ParentState::default(), matcher, &mut entries)?;
    Ok(entries)
}

fn walk_dir(
    dir: &Path,
    prefix: &str,
    parent: &ParentState,
    matcher: &Matcher,
    out: &mut Vec<Entry>,
) -> io::Result<()> {
    let mut children: Vec<(std::ffi::OsString, PathBuf)> =
        fs_err::read_dir(dir)?.map(|e| e.map(|e| (e.file_name(), e.path()))).collect::<io::Result<_>>()?;
    // Go's WalkDir sorts by name, byte-wise.
    children.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
    for (name, full_path) in children {
        let name = name.to_string_lossy();
        let path = if prefix.is_empty() { name.into_owned() } else { format!("{prefix}/{name}") };
        let metadata = fs_err::symlink_metadata(&full_path)?;
        let (excluded, state) = matcher.matches_with_parent(&path, parent);
        let file_type = metadata.file_type();
        let mode = metadata.permissions().mode() & 0o7777;
        if file_type.is_dir() {
            if excluded && !may_hold_exceptions(matcher, &path) {
                continue;
            }
            if !excluded {
                out.push(Entry {
                    path: path.clone(),
                    full_path: full_path.clone(),
                    kind: EntryKind::Dir,
                    mode,
                });
            }
            walk_dir(&full_path, &path, &state, matcher, out)?;
            continue;
        }
        if excluded {
            continue;
        }
        let kind = if file_type.is_symlink() {
            EntryKind::Symlink { target: fs_err::read_link(&full_path)? }
        } else if file_type.is_file() {
            EntryKind::File { stamp: Stamp::of(&metadata) }
        } else {
            continue;
        };
        out.push(Entry { path, full_path, kind, mode });
    }
    Ok(())
}

/// Docker walks into an excluded directory only when some exception pattern starts
/// with the directory's path (`!dir/keep`); `!**/keep` does not count. This is a
/// heuristic of Docker's, reproduced as is.
fn may_hold_exceptions(matcher: &Matcher, dir: &str) -> bool {
    let dir_slash = format!("{dir}/");
    matcher
        .patterns()
        .iter()
        .filter(|p| p.is_exclusion())
        .any(|p| format!("{}/", p.text()).starts_with(&dir_slash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in files {
            let path = dir.path().join(file);
            if file.ends_with('/') {
                std::fs::create_dir_all(&path).expect("dir");
            } else {
                std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
                std::fs::write(&path, file).expect("file");
            }
        }
        dir
    }

    fn paths(dir: &Path, patterns: &[&str]) -> Vec<String> {
        let matcher = Matcher::new(patterns).expect("patterns");
        walk(dir, &matcher).expect("walk").into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn lists_in_name_order() {
        let dir = tree(&["b.txt", "a/z.txt", "a/b/c.txt", "A.txt", "empty/"]);
        assert_eq!(paths(dir.path(), &[]), ["A.txt", "a", "a/b", "a/b/c.txt", "a/z.txt", "b.txt", "empty"]);
    }

    #[test]
    fn excluded_directories_are_skipped_unless_an_exception_names_inside() {
        let dir = tree(&["docs/a.md", "docs/keep/b.md", "src/main.rs"]);
        assert_eq!(paths(dir.path(), &["docs"]), ["src", "src/main.rs"]);
        assert_eq!(
            paths(dir.path(), &["docs", "!docs/keep"]),
            ["docs/keep", "docs/keep/b.md", "src", "src/main.rs"]
        );
        // Docker's heuristic: a `**` exception does not make it look inside.
        assert_eq!(paths(dir.path(), &["docs", "!**/b.md"]), ["src", "src/main.rs"]);
    }

    #[test]
    fn symlinks_are_kept_as_links() {
        let dir = tree(&["real.txt"]);
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("outside")).expect("symlink");
        let matcher = Matcher::default();
        let entries = walk(dir.path(), &matcher).expect("walk");
        let link = entries.iter().find(|e| e.path == "outside").expect("link listed");
        assert_eq!(link.kind, EntryKind::Symlink { target: "/etc/passwd".into() });
    }
}
