//! Content hashes of context files, remembered between runs by their stat data (size,
//! modification and change times, inode), as git's index does: a run where nothing
//! changed reads no file, it only stats them.
//!
//! A file written in the same instant as the cache could change again without its
//! times moving; such "racily clean" entries are not remembered, so the next run hashes
//! them again.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What identifies a version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub modified: i64,
    pub changed: i64,
    pub inode: u64,
}

impl Stamp {
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        let nanos = |secs: i64, nsec: i64| secs.saturating_mul(1_000_000_000).saturating_add(nsec);
        Self {
            size: metadata.size(),
            modified: nanos(metadata.mtime(), metadata.mtime_nsec()),
            changed: nanos(metadata.ctime(), metadata.ctime_nsec()),
            inode: metadata.ino(),
        }
    }
}

/// File hashes by path and stamp, loaded from and saved to one file. Shared by the
/// builds of a run (it locks inside).
#[derive(Debug)]
pub struct HashCache {
    file: Option<PathBuf>,
    /// When this run started looking: files stamped later are racily clean.
    started: i64,
    entries: Mutex<HashMap<PathBuf, (Stamp, blake3::Hash)>>,
    changed: Mutex<bool>,
}

/// How close to the cache's time a file's stamp must be to count as racily clean. Some
/// file systems keep times to the second.
const RACY: Duration = Duration::from_secs(2);

impl HashCache {
    /// A cache that remembers nothing between runs.
    pub fn in_memory() -> Self {
        Self::load(None)
    }

    /// Loads the cache kept in `file`; a missing or unreadable file is an empty cache
    /// (the cache only saves work, it never changes a hash).
    pub fn load(file: Option<PathBuf>) -> Self {
        Self::load_at(file, SystemTime::now())
    }

    fn load_at(file: Option<PathBuf>, started: SystemTime) -> Self {
        let entries = file
            .as_deref()
            .and_then(|f| fs_err::read_to_string(f).ok())
            .map(|t| parse(&t))
            .unwrap_or_default();
        let started =
            started.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Self { file, started, entries: Mutex::new(entries), changed: Mutex::new(false) }
    }

    /// The content hash of a file whose stamp is `stamp`: remembered, or read now.
    pub fn hash(&self, path: &Path, stamp: Stamp) -> io::Result<blake3::Hash> {
        if let Some((known, hash)) = self.lock().get(path)
            && *known == stamp
        {
            return Ok(*hash);
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(fs_err::File::open(path)?)?;
        let hash = hasher.finalize();
        let racy = i64::try_from(RACY.as_nanos()).unwrap_or(i64::MAX);
        if stamp.modified < self.started - racy && stamp.changed < self.started - racy {
            self.lock().insert(path.to_owned(), (stamp, hash));
            *self.changed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        }
        Ok(hash)
    }

    /// Writes the cache back (atomically), if anything was added. Failures are ignored
    /// for the same reason a missing file is.
    pub fn save(&self) {
        let Some(file) = &self.file else { return };
        if !*self.changed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            return;
        }
        let entries = self.lock();
        // Files that no longer exist are forgotten.
        let mut text = String::with_capacity(entries.len() * 120);
        for (path, (stamp, hash)) in entries.iter().filter(|(path, _)| path.exists()) {
            let Some(path) = path.to_str().filter(|p| !p.contains('\n')) else { continue };
            text.push_str(&format!(
                "{} {} {} {} {} {path}\n",
                hash.to_hex(),
                stamp.size,
                stamp.modified,
                stamp.changed,
                stamp.inode
            ));
        }
        drop(entries);
        if let Some(dir) = file.parent() {
            let _ = fs_err::create_dir_all(dir);
        }
        let temporary = file.with_extension(format!("tmp{}", std::process::id()));
        if fs_err::write(&temporary, text).is_ok() && fs_err::rename(&temporary, file).is_err() {
            let _ = fs_err::remove_file(&temporary);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (Stamp, blake3::Hash)>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One line per file: `hash size modified changed inode path`. A line that does not
/// read is skipped.
fn parse(text: &str) -> HashMap<PathBuf, (Stamp, blake3::Hash)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(6, ' ');
            let hash = blake3::Hash::from_hex(parts.next()?).ok()?;
            let stamp = Stamp {
                size: parts.next()?.parse().ok()?,
                modified: parts.next()?.parse().ok()?,
                changed: parts.next()?.parse().ok()?,
                inode: parts.next()?.parse().ok()?,
            };
            Some((PathBuf::from(parts.next()?), (stamp, hash)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp_of(path: &Path) -> Stamp {
        Stamp::of(&fs_err::metadata(path).expect("metadata"))
    }

    #[test]
    fn remembers_hashes_across_runs_until_the_stamp_changes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("a.txt");
        let cache_file = dir.path().join("cache");
        fs_err::write(&file, "one").expect("write");
        // As if the run started a minute after the file was written.
        let later = SystemTime::now() + Duration::from_mins(1);
        let first = HashCache::load_at(Some(cache_file.clone()), later);
        let stamp = stamp_of(&file);
        assert_eq!(first.hash(&file, stamp).expect("hash"), blake3::hash(b"one"));
        first.save();

        // Same stamp: the remembered hash, even though the content is not read.
        let second = HashCache::load(Some(cache_file.clone()));
        assert_eq!(second.lock().len(), 1);
        fs_err::write(&file, "two").expect("write");
        assert_eq!(second.hash(&file, stamp).expect("hash"), blake3::hash(b"one"));
        // A new stamp: read again.
        assert_eq!(second.hash(&file, stamp_of(&file)).expect("hash"), blake3::hash(b"two"));
    }

    #[test]
    fn racily_clean_files_are_not_remembered() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("a.txt");
        fs_err::write(&file, "one").expect("write");
        let cache = HashCache::load(Some(dir.path().join("cache")));
        cache.hash(&file, stamp_of(&file)).expect("hash");
        assert!(cache.lock().is_empty(), "a file written just now was remembered");
    }
}
