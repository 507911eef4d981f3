//! The manifest files kiln has read, and positions inside them.
//!
//! Every user-written value carries a [`Span`] (file and byte range) so that any later
//! stage, up to a failed build, can point back at the `.kdl` text that caused it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index of a file in the [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A byte range in one manifest file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, len: usize) -> Self {
        Self { file, start: to_u32(start), end: to_u32(start + len) }
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// A span covering `range` of this span's text (byte offsets relative to its start).
    #[must_use]
    pub fn sub(self, offset: usize, len: usize) -> Self {
        Self::new(self.file, self.start as usize + offset, len)
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A value together with where it was written. Serialized as the value alone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Spanned<T> {
    pub value: T,
    #[serde(skip)]
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned::new(f(self.value), self.span)
    }

    pub fn as_ref(&self) -> Spanned<&T> {
        Spanned::new(&self.value, self.span)
    }
}

impl Spanned<String> {
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

/// One manifest file.
#[derive(Debug)]
pub struct SourceFile {
    /// Absolute path on disk.
    pub path: PathBuf,
    /// The path shown to users: relative to the root manifest's folder, `/`-separated.
    pub name: String,
    pub text: Arc<String>,
    /// The text as diagnostics draw it: `text`, with control characters (which could
    /// drive the terminal) and bidirectional controls replaced by placeholders of the
    /// same length in bytes.
    pub shown: Arc<String>,
    line_starts: Vec<usize>,
    /// Whether each line is ASCII, so that a column is its byte offset (counting the
    /// characters of a very long line for each of many diagnostics would be quadratic).
    ascii_lines: Vec<bool>,
}

impl SourceFile {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let end = offset.min(self.text.len());
        let column = if self.ascii_lines[line] {
            end - start
        } else {
            self.text.get(start..end).map_or(end - start, |s| s.chars().count())
        };
        (line + 1, column + 1)
    }

    /// How many characters line `line` (1-based) has, its line break left out.
    fn line_length(&self, line: usize) -> usize {
        let start = self.line_starts[line - 1];
        let end = self.line_starts.get(line).map_or(self.text.len(), |next| next - 1);
        if self.ascii_lines[line - 1] {
            end.saturating_sub(start)
        } else {
            self.text.get(start..end).map_or(end.saturating_sub(start), |s| s.chars().count())
        }
    }

    /// The lines from `context` lines before byte `start` to `context` lines after byte
    /// `end`: their first byte, the byte after their last line break, and the 0-based
    /// number of the first.
    pub fn lines_around(&self, start: usize, end: usize, context: usize) -> (usize, usize, usize) {
        let line_of = |offset: usize| self.line_starts.partition_point(|&s| s <= offset).saturating_sub(1);
        let first = line_of(start).saturating_sub(context);
        let last = line_of(end) + context;
        let end = self.line_starts.get(last + 1).copied().unwrap_or(self.text.len());
        (self.line_starts[first], end, first)
    }

    /// The directory the file is in, against which its relative paths are resolved.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }
}

/// A character that could drive the terminal or reorder the line, other than a line
/// break or a tab.
fn is_hidden_control(c: char) -> bool {
    c != '\n' && crate::check::hidden_in_review(c)
}

/// `?` repeated to the character's UTF-8 length, so that byte offsets stay valid.
fn placeholder(c: char) -> String {
    "?".repeat(c.len_utf8())
}

/// All the manifest files of a project, root first.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
    paths: std::collections::HashSet<PathBuf>,
}

impl SourceMap {
    pub fn add(&mut self, path: PathBuf, name: String, text: String) -> FileId {
        let line_starts: Vec<usize> =
            std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        let ascii_lines = line_starts
            .iter()
            .enumerate()
            .map(|(i, &start)| {
                let end = line_starts.get(i + 1).copied().unwrap_or(text.len());
                text.as_bytes()[start..end].is_ascii()
            })
            .collect();
        self.paths.insert(path.clone());
        let text = Arc::new(text);
        let shown = if text.chars().any(is_hidden_control) {
            Arc::new(
                text.chars()
                    .map(|c| if is_hidden_control(c) { placeholder(c) } else { c.to_string() })
                    .collect(),
            )
        } else {
            text.clone()
        };
        self.files.push(SourceFile { path, name, text, shown, line_starts, ascii_lines });
        FileId(u32::try_from(self.files.len() - 1).expect("fewer than 2^32 manifest files"))
    }

    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (FileId(u32::try_from(i).unwrap_or(u32::MAX)), f))
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.paths.contains(path)
    }

    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files().find(|(_, f)| f.path == path).map(|(id, _)| id)
    }

    /// The text a span covers.
    pub fn text(&self, span: Span) -> &str {
        self.file(span.file).text.get(span.start as usize..span.end as usize).unwrap_or("")
    }

    /// How many characters the line holding the start of `span` has.
    pub fn line_length(&self, span: Span) -> usize {
        let file = self.file(span.file);
        let (line, _) = file.line_col(span.start as usize);
        file.line_length(line)
    }

    /// `file:line:col` of the start of a span, for messages and JSON output.
    pub fn location(&self, span: Span) -> String {
        let file = self.file(span.file);
        let (line, col) = file.line_col(span.start as usize);
        format!("{}:{line}:{col}", file.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let mut map = SourceMap::default();
        let id = map.add("/x/kiln.kdl".into(), "kiln.kdl".into(), "a\néé b\nc".into());
        let file = map.file(id);
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(2), (2, 1));
        // `b` is after two two-byte characters and a space.
        assert_eq!(file.line_col(7), (2, 4));
        assert_eq!(file.line_col(9), (3, 1));
        assert_eq!(map.location(Span::new(id, 7, 1)), "kiln.kdl:2:4");
    }
}
