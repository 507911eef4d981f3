//! Build contexts. The Docker API does not apply `.dockerignore` (the docker CLI does),
//! so kiln selects the context's files itself ([`walk`]), with Docker's exact rules,
//! hashes each entry for the image's input key ([`Context::hashes`], with a stat cache:
//! [`hashes`]), and streams them to the engine as a deterministic tar
//! ([`Context::tar_stream`]): sorted entries, fixed owners and times, never buffered
//! whole.

pub mod hashes;
mod walk;

use std::io::{self, Read, Write};
use std::path::Path;

use bytes::Bytes;
use kiln_dockerignore::{Matcher, read_ignore_file};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

pub use hashes::{HashCache, Stamp};
pub use walk::{Entry, EntryKind, walk};

/// The tar stream of a context, as the engine reads it.
pub type TarStream = ReceiverStream<io::Result<Bytes>>;

/// A context folder with its ignore rules applied.
#[derive(Debug, Clone)]
pub struct Context {
    pub entries: Vec<Entry>,
}

impl Context {
    /// Selects the files of `root` that the ignore file's text lets through.
    pub fn new(root: &Path, ignore_file: &str) -> io::Result<Self> {
        let patterns = read_ignore_file(ignore_file);
        let matcher = Matcher::new(&patterns).map_err(|(index, err)| {
            io::Error::other(format!("ignore pattern `{}`: {err}", patterns[index]))
        })?;
        Ok(Self { entries: walk(root, &matcher)? })
    }

    /// A hash of each entry: its kind, mode, link target or file content; times and
    /// owners are left out, as the tar leaves them out. In entry order.
    pub fn hashes(&self, cache: &HashCache) -> io::Result<Vec<(String, blake3::Hash)>> {
        self.entries
            .iter()
            .map(|entry| {
                let mut hasher = blake3::Hasher::new();
                hasher.update(&entry.mode.to_le_bytes());
                match &entry.kind {
                    EntryKind::Dir => {
                        hasher.update(b"d");
                    }
                    EntryKind::Symlink { target } => {
                        hasher.update(b"l");
                        hasher.update(target.as_os_str().as_encoded_bytes());
                    }
                    EntryKind::File { stamp } => {
                        hasher.update(b"f");
                        hasher.update(cache.hash(&entry.full_path, *stamp)?.as_bytes());
                    }
                }
                Ok((entry.path.clone(), hasher.finalize()))
            })
            .collect()
    }

    /// The first file that is not as the walk found it (changed, or gone), if any: what
    /// a build sent may then not be what its key describes.
    pub fn changed_since_walk(&self) -> Option<String> {
        self.entries.iter().find_map(|entry| {
            let EntryKind::File { stamp } = &entry.kind else { return None };
            let now = fs_err::symlink_metadata(&entry.full_path).ok().map(|m| Stamp::of(&m));
            (now != Some(*stamp)).then(|| entry.path.clone())
        })
    }

    /// Streams the context as a tar, its entries under `prefix` (a folder name, or ""
    /// for the root) and `extra` files (the generated Dockerfile) at the front. The tar
    /// is written on a blocking thread into a bounded channel, so a large context never
    /// sits in memory whole.
    pub fn tar_stream(&self, prefix: &str, extra: Vec<(String, Vec<u8>)>) -> TarStream {
        let (sender, receiver) = mpsc::channel(16);
        let entries = self.entries.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let writer = ChannelWriter { sender: sender.clone(), buffer: Vec::with_capacity(CHUNK) };
            if let Err(err) = write_tar(writer, &prefix, &extra, &entries) {
                // The receiver may be gone (a cancelled build); then nobody needs the error.
                let _ = sender.blocking_send(Err(err));
            }
        });
        ReceiverStream::new(receiver)
    }

    /// The whole tar in memory (for tests and small contexts).
    pub fn tar_bytes(&self, prefix: &str, extra: &[(String, Vec<u8>)]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        write_tar(&mut out, prefix, extra, &self.entries)?;
        Ok(out)
    }
}

const CHUNK: usize = 64 * 1024;

fn write_tar<W: Write>(
    writer: W,
    prefix: &str,
    extra: &[(String, Vec<u8>)],
    entries: &[Entry],
) -> io::Result<()> {
    let mut builder = tar::Builder::new(writer);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    for (name, contents) in extra {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, contents.as_slice())?;
    }
    if !prefix.is_empty() {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o755);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        builder.append_data(&mut header, format!("{prefix}/"), io::empty())?;
    }
    let name = |path: &str| if prefix.is_empty() { path.to_owned() } else { format!("{prefix}/{path}") };
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match &entry.kind {
            EntryKind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, format!("{}/", name(&entry.path)), io::empty())?;
            }
            EntryKind::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, name(&entry.path), target)?;
            }
            EntryKind::File { .. } => {
                let file = fs_err::File::open(&entry.full_path)?;
                let size = file.metadata()?.len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(size);
                // The file may change while we read it; never write more or less than
                // the header says.
                builder.append_data(
                    &mut header,
                    name(&entry.path),
                    file.take(size).chain(io::repeat(0)).take(size),
                )?;
            }
        }
    }
    builder.into_inner()?.flush()
}

/// An `io::Write` that sends fixed-size chunks into a channel (blocking).
struct ChannelWriter {
    sender: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK)));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "build cancelled"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_follow_content_not_times() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("a.txt"), "one").expect("write");
        let hashes = |ignore: &str| {
            let context = Context::new(dir.path(), ignore).expect("context");
            context.hashes(&HashCache::in_memory()).expect("hashes")
        };
        let first = hashes("");
        let file = std::fs::File::options().write(true).open(dir.path().join("a.txt")).expect("open");
        file.set_modified(std::time::SystemTime::UNIX_EPOCH).expect("touch");
        assert_eq!(first, hashes(""), "times do not count");
        std::fs::write(dir.path().join("a.txt"), "two").expect("write");
        assert_ne!(first, hashes(""), "content counts");
        assert_eq!(hashes("a.txt"), hashes("*"), "ignored files do not count");
    }

    #[test]
    fn tar_lists_extra_files_then_entries() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("src")).expect("mkdir");
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {}").expect("write");
        std::fs::write(dir.path().join("notes.md"), "x").expect("write");
        let context = Context::new(dir.path(), "*.md\n").expect("context");
        let tar = context
            .tar_bytes("context", &[("kiln.Dockerfile".into(), b"FROM scratch\n".to_vec())])
            .expect("tar");
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry").path().expect("path").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["kiln.Dockerfile", "context/", "context/src/", "context/src/main.rs"]);
        // The same context gives the same bytes.
        assert_eq!(
            tar,
            context
                .tar_bytes("context", &[("kiln.Dockerfile".into(), b"FROM scratch\n".to_vec())])
                .expect("tar")
        );
    }
}
