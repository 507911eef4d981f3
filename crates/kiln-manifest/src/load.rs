//! Finding the root manifest, reading it and the files it includes, and parsing KDL.

use std::path::{Component, Path, PathBuf};

use kdl::KdlDocument;

use crate::ast::{Declarations, Text};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::lower::lower_file;
use crate::source::{SourceMap, Span};

/// The name of the root manifest file.
pub const MANIFEST_FILE: &str = "kiln.kdl";

/// Looks for `kiln.kdl` in `start` and its parents, as cargo looks for `Cargo.toml`.
pub fn find_manifest(start: &Path) -> Option<PathBuf> {
    start.ancestors().map(|dir| dir.join(MANIFEST_FILE)).find(|candidate| candidate.is_file())
}

/// Reads the root manifest and every file it includes, depth first, each file once.
/// The root must be an absolute path. Problems are reported into `diags`.
pub(crate) fn load(root: &Path, sources: &mut SourceMap, diags: &mut Diagnostics) -> Declarations {
    let mut decls = Declarations::default();
    let root_dir = root.parent().unwrap_or(Path::new("/")).to_path_buf();
    let Some(parsed) = parse_files(vec![normalize(root)]).pop() else {
        return decls;
    };
    let mut loader = Loader { root_dir, sources, decls: &mut decls, diags };
    loader.add(parsed, None, true);
    decls
}

/// A file read and parsed, not yet lowered.
struct Parsed {
    path: PathBuf,
    text: Read,
    /// Parsed when the text is valid UTF-8 and does not nest too deep.
    doc: Option<Result<KdlDocument, kdl::KdlError>>,
}

/// A file's text as read.
enum Read {
    Text(String),
    Failed(std::io::Error),
    /// Not UTF-8: the text up to `valid` is good, the rest is shown with replacement
    /// characters.
    NotUtf8 {
        text: String,
        valid: usize,
    },
    /// Blocks nest deeper than `syntax::MAX_NESTING`, at the `{` at `offset`.
    TooDeep {
        text: String,
        offset: usize,
    },
}

/// Reads a file: UTF-8, with its line endings made `\n` (KDL also ends lines with `\r`,
/// and every position kiln shows must count lines the same way).
fn read(path: &Path) -> Read {
    let bytes = match fs_err::read(path) {
        Ok(bytes) => bytes,
        Err(err) => return Read::Failed(err),
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let valid = err.utf8_error().valid_up_to();
            return Read::NotUtf8 { text: String::from_utf8_lossy(err.as_bytes()).into_owned(), valid };
        }
    };
    let text = if text.contains('\r') { text.replace("\r\n", "\n").replace('\r', "\n") } else { text };
    match crate::syntax::too_deep(&text) {
        Some(offset) => Read::TooDeep { text, offset },
        None => Read::Text(text),
    }
}

/// Reads and parses files on several threads: KDL parsing dominates loading a large
/// monorepo, and included files are independent of each other.
fn parse_files(paths: Vec<PathBuf>) -> Vec<Parsed> {
    let parse = |path: PathBuf| {
        let text = read(&path);
        let doc = match &text {
            Read::Text(text) => Some(KdlDocument::parse_v2(text)),
            _ => None,
        };
        Parsed { path, text, doc }
    };
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(8);
    if paths.len() < 2 || threads < 2 {
        return paths.into_iter().map(parse).collect();
    }
    let chunk = paths.len().div_ceil(threads);
    let chunks: Vec<Vec<PathBuf>> = paths.chunks(chunk).map(<[PathBuf]>::to_vec).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.into_iter().map(parse).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a parser thread panicked")).collect()
    })
}

struct Loader<'a> {
    root_dir: PathBuf,
    sources: &'a mut SourceMap,
    decls: &'a mut Declarations,
    diags: &'a mut Diagnostics,
}

impl Loader<'_> {
    /// Lowers a parsed file, then the files it includes, in order.
    fn add(&mut self, parsed: Parsed, included_by: Option<&Text>, is_root: bool) {
        let name = display_name(&self.root_dir, &parsed.path);
        let text = match parsed.text {
            Read::Text(text) => text,
            Read::Failed(err) => {
                let mut diagnostic = Diagnostic::new(Code::Io, err.to_string());
                if let Some(include) = included_by {
                    diagnostic = diagnostic.label(include.span, "included here");
                }
                self.diags.push(diagnostic);
                return;
            }
            Read::NotUtf8 { text, valid } => {
                let file = self.sources.add(parsed.path, name.clone(), text);
                self.diags.push(
                    Diagnostic::new(Code::InvalidUtf8, format!("`{name}` is not valid UTF-8"))
                        .label(Span::new(file, valid, 1), "this byte is not UTF-8")
                        .help("manifests are UTF-8 text; save the file as UTF-8"),
                );
                return;
            }
            Read::TooDeep { text, offset } => {
                let file = self.sources.add(parsed.path, name, text);
                self.diags.push(
                    Diagnostic::new(
                        Code::KdlSyntax,
                        format!("blocks nest more than {} levels deep", crate::syntax::MAX_NESTING),
                    )
                    .label(Span::new(file, offset, 1), "one level too many")
                    .help("kiln's nodes nest four levels at most (`image`, `stage`, `run`, `cache`)"),
                );
                return;
            }
        };
        let file = self.sources.add(parsed.path, name, text);
        let doc = match parsed.doc {
            Some(Ok(doc)) => doc,
            Some(Err(err)) => {
                let text = self.sources.file(file).text.clone();
                for diagnostic in crate::syntax::errors(file, &text, &err.diagnostics) {
                    self.diags.push(diagnostic);
                }
                return;
            }
            None => return,
        };
        let text = self.sources.file(file).text.clone();
        let includes = lower_file(&doc, file, &text, is_root, self.decls, self.diags);
        let dir = self.sources.file(file).dir().to_path_buf();
        for include in includes {
            let mut fresh: Vec<PathBuf> = Vec::new();
            for path in expand_include(&include, &dir, self.diags) {
                // First come, first served: a file is read once, where first included.
                if !self.sources.contains(&path) && !fresh.contains(&path) {
                    fresh.push(path);
                }
            }
            for parsed in parse_files(fresh) {
                if !self.sources.contains(&parsed.path) {
                    self.add(parsed, Some(&include), false);
                }
            }
        }
    }
}

/// The files an `include` pattern names, sorted, as absolute normalized paths.
fn expand_include(include: &Text, dir: &Path, diags: &mut Diagnostics) -> Vec<PathBuf> {
    let pattern_text = include.value.as_str();
    let is_glob = pattern_text.contains(['*', '?', '[']);
    let full = if Path::new(pattern_text).is_absolute() {
        pattern_text.to_owned()
    } else {
        format!("{}/{pattern_text}", glob::Pattern::escape(&dir.to_string_lossy()))
    };
    let mut found: Vec<PathBuf> = match glob::glob(&full) {
        Ok(paths) => paths.filter_map(Result::ok).filter(|p| p.is_file()).map(|p| normalize(&p)).collect(),
        Err(err) => {
            diags.push(
                Diagnostic::new(Code::InvalidValue, format!("invalid include pattern: {}", err.msg))
                    .label(include.span, "in this pattern"),
            );
            return Vec::new();
        }
    };
    found.sort();
    if found.is_empty() {
        let message = if is_glob {
            format!("include pattern `{pattern_text}` matches no file")
        } else {
            format!("included file `{pattern_text}` does not exist")
        };
        diags.push(
            Diagnostic::new(Code::IncludeNotFound, message)
                .label(include.span, "nothing found")
                .help("include paths are relative to the file that includes them"),
        );
    }
    found
}

/// A path relative to `base`, `/`-separated, as shown to users and written in generated
/// files (so that they do not depend on where the repository is checked out).
pub fn display_name(base: &Path, path: &Path) -> String {
    let relative = relative_path(base, path);
    let text = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    if text.is_empty() { ".".to_owned() } else { text }
}

/// `path` relative to `base`, both absolute and normalized; uses `..` where needed.
pub fn relative_path(base: &Path, path: &Path) -> PathBuf {
    let base: Vec<Component> = base.components().collect();
    let path_parts: Vec<Component> = path.components().collect();
    let common = base.iter().zip(&path_parts).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for part in &path_parts[common..] {
        out.push(part.as_os_str());
    }
    out
}

/// Removes `.` and resolves `..` lexically, so that the same file always has the same
/// path (symlinks are left alone: the user's layout is what they wrote).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(display_name(Path::new("/a/b"), Path::new("/a/b/c/kiln.kdl")), "c/kiln.kdl");
        assert_eq!(display_name(Path::new("/a/b"), Path::new("/a/x/kiln.kdl")), "../x/kiln.kdl");
        assert_eq!(display_name(Path::new("/a/b"), Path::new("/a/b")), ".");
    }

    #[test]
    fn tidies_kdl_messages() {}
}
