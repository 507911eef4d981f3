//! Durations of earlier builds, per image, so that the next run can start the longest
//! chain first. They live in the user's cache folder, not in the repository:
//! `$XDG_CACHE_HOME/kiln/<manifest key>/durations.json` (or `~/.cache/...`), beside the
//! other files kiln keeps for a checkout (the context hash cache).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A file kiln keeps for a checkout, in a folder keyed by the manifest's absolute path
/// (a cache of this machine's, never an input of a build).
pub fn cache_file(manifest: &Path, name: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
    let key = blake3::hash(manifest.as_os_str().as_encoded_bytes()).to_hex();
    Some(cache.join("kiln").join(&key.as_str()[..16]).join(name))
}

/// The durations file for a manifest.
pub fn durations_file(manifest: &Path) -> Option<PathBuf> {
    cache_file(manifest, "durations.json")
}

/// Seconds per image name; empty when nothing was recorded (or the file is unreadable:
/// durations only order the work, they never change what is built).
pub fn load(file: Option<&Path>) -> HashMap<String, f64> {
    file.and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// Merges new durations into the file. Errors are ignored for the same reason.
pub fn save(file: Option<&Path>, new: &HashMap<String, f64>) {
    let Some(file) = file else { return };
    let mut all = load(Some(file));
    all.extend(new.iter().map(|(k, v)| (k.clone(), *v)));
    let mut sorted: Vec<(&String, &f64)> = all.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let map: serde_json::Map<String, serde_json::Value> =
        sorted.into_iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect();
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(file, serde_json::to_string_pretty(&map).unwrap_or_default());
}
