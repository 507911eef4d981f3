//! The context files of the builds this machine made or met, by key, so that `kiln
//! explain` can name the file that changed: an image's label carries only a summary
//! ([`Inputs::recorded`]), whatever the size of its context.
//!
//! One file per key, `<state>/kiln/records/<key hex>.json` (`$XDG_STATE_HOME`, else
//! `~/.local/state`), holding each context path with its hash shortened. The folder keeps
//! the newest [`KEPT`] records and at most [`KEPT_BYTES`]; older ones are removed when a
//! record is written. Losing one costs only detail: `explain` then names folders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::identity::Inputs;

/// How many records the folder keeps.
pub const KEPT: usize = 200;

/// How many bytes of records the folder keeps (a 50,000-file context is about 4 MB).
pub const KEPT_BYTES: u64 = 256 * 1024 * 1024;

/// The records folder of this machine's user.
pub struct Records {
    dir: PathBuf,
}

impl Records {
    /// The user's records folder; `None` without a home or state folder.
    pub fn open() -> Option<Self> {
        let state = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local").join("state")))?;
        Some(Self::at(state.join("kiln").join("records")))
    }

    /// Records in `dir`.
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn file(&self, key: &str) -> PathBuf {
        let hex = key.strip_prefix("blake3:").unwrap_or(key);
        self.dir.join(format!("{}.json", hex.chars().filter(char::is_ascii_hexdigit).collect::<String>()))
    }

    /// The context files recorded for `key` (path → short hash), if this machine has them.
    pub fn files(&self, key: &str) -> Option<BTreeMap<String, String>> {
        let text = std::fs::read(self.file(key)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Records the context files of the build with `key` (kept as it is when there),
    /// then prunes. Errors are ignored: a record only adds detail to `explain`.
    pub fn save(&self, key: &str, inputs: &Inputs) {
        let file = self.file(key);
        if file.exists() {
            // Touched, so that pruning keeps what is in use.
            let _ = std::fs::File::options()
                .append(true)
                .open(&file)
                .and_then(|f| f.set_modified(SystemTime::now()));
            return;
        }
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let Ok(text) = serde_json::to_vec(&inputs.recorded_files()) else { return };
        // Written whole or not at all: a reader never sees half a record.
        let Ok(mut temp) = tempfile::NamedTempFile::new_in(&self.dir) else { return };
        if std::io::Write::write_all(&mut temp, &text).is_ok() {
            let _ = temp.persist(&file);
        }
        self.prune();
    }

    /// Removes the oldest records past [`KEPT`] or [`KEPT_BYTES`].
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let mut records: Vec<(SystemTime, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        records.sort_by_key(|record| std::cmp::Reverse(record.0));
        let mut bytes = 0;
        for (index, (_, len, path)) in records.into_iter().enumerate() {
            bytes += len;
            if index >= KEPT || bytes > KEPT_BYTES {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity;

    fn inputs(files: usize) -> Inputs {
        Inputs {
            files: (0..files).map(|i| (format!("src/f{i}"), identity::hash(&i.to_le_bytes()))).collect(),
            file_count: files,
            ..Inputs::default()
        }
    }

    #[test]
    fn keeps_the_files_of_a_key_and_prunes_the_oldest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let records = Records::at(dir.path().join("records"));
        assert_eq!(records.files("blake3:00"), None);
        records.save("blake3:aa", &inputs(3));
        let files = records.files("blake3:aa").expect("recorded");
        assert_eq!(files.len(), 3);
        assert!(files.values().all(|h| h.len() == 16));
        for i in 0..KEPT + 5 {
            records.save(&format!("blake3:{i:04x}"), &inputs(1));
        }
        let left = std::fs::read_dir(dir.path().join("records")).expect("dir").count();
        assert_eq!(left, KEPT);
    }

    #[test]
    fn a_key_names_a_file_of_the_folder_only() {
        let records = Records::at(PathBuf::from("/r"));
        assert_eq!(records.file("blake3:../../etc/passwd"), PathBuf::from("/r/ecad.json"));
    }
}
