//! Content tags: the mark of a build kiln made. A successful build gets
//! `<repository>:kiln-<key prefix>`, and "up to date" means that exact tag exists.
//! Labels cannot say so: Docker copies an image's labels into every image built `FROM`
//! it, so any child image carries them too; a tag is never inherited.

/// The prefix of content tags.
pub const CONTENT_TAG_PREFIX: &str = "kiln-";

/// How many hex digits of the key a content tag carries (96 bits).
pub const CONTENT_TAG_DIGITS: usize = 24;

/// `<repository>:kiln-<key prefix>`.
pub fn content_tag(repository: &str, key: &str) -> String {
    let hex = key.rsplit(':').next().unwrap_or(key);
    format!("{repository}:{CONTENT_TAG_PREFIX}{}", &hex[..hex.len().min(CONTENT_TAG_DIGITS)])
}

/// The tag an older build of a key keeps when a rebuild takes the key's content tag but
/// other tags still name the older one: `kiln-<key prefix>-<image ID prefix>`.
pub fn retired_tag(content_tag: &str, image_id: &str) -> String {
    let id = image_id.rsplit(':').next().unwrap_or(image_id);
    format!("{content_tag}-{}", &id[..id.len().min(12)])
}

/// Whether a tag (the part after `:`) is a content tag, current or retired: the mark of
/// a build kiln made.
pub fn is_content_tag(tag: &str) -> bool {
    let hex = |text: &str, digits: usize| text.len() == digits && text.bytes().all(|b| b.is_ascii_hexdigit());
    tag.strip_prefix(CONTENT_TAG_PREFIX).is_some_and(|rest| match rest.split_once('-') {
        None => hex(rest, CONTENT_TAG_DIGITS),
        Some((key, id)) => hex(key, CONTENT_TAG_DIGITS) && hex(id, 12),
    })
}

/// The repository of a `repository:tag` reference whose tag is a content tag.
pub fn content_tag_repository(reference: &str) -> Option<&str> {
    let (repository, tag) = reference.rsplit_once(':')?;
    is_content_tag(tag).then_some(repository)
}

/// The project an image belongs to: the manifest's `project` name, else the root
/// manifest's path within its git repository (`kiln.kdl`, `services/shop/kiln.kdl`),
/// else its file name. Never an absolute path: clones elsewhere are the same project.
pub fn project_id(project: &kiln_manifest::Project) -> String {
    if let Some(name) = &project.project {
        return name.clone();
    }
    let manifest = project.manifest_path();
    let manifest = manifest.canonicalize().unwrap_or_else(|_| manifest.to_path_buf());
    // The repository's top is the nearest folder with a `.git` (a folder, or a file in a
    // worktree), as git finds it; looked for here rather than asked of git, which would
    // cost a process per run.
    let top = manifest.ancestors().skip(1).find(|dir| dir.join(".git").exists());
    match top.and_then(|top| manifest.strip_prefix(top).ok()) {
        Some(relative) => relative.to_string_lossy().replace('\\', "/"),
        None => {
            manifest.file_name().map_or_else(|| "kiln.kdl".to_owned(), |n| n.to_string_lossy().into_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_tags_carry_a_key_prefix() {
        let key = "blake3:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let tag = content_tag("127.0.0.1:5000/shop/api", key);
        assert_eq!(tag, "127.0.0.1:5000/shop/api:kiln-0123456789abcdef01234567");
        assert_eq!(content_tag_repository(&tag), Some("127.0.0.1:5000/shop/api"));
        assert_eq!(content_tag_repository("127.0.0.1:5000/shop/api:latest"), None);
        let retired = retired_tag(&tag, "sha256:abcdef0123456789");
        assert_eq!(retired, "127.0.0.1:5000/shop/api:kiln-0123456789abcdef01234567-abcdef012345");
        assert_eq!(content_tag_repository(&retired), Some("127.0.0.1:5000/shop/api"));
        assert!(!is_content_tag("kiln-xyz"));
        assert!(!is_content_tag("kiln-0123"));
    }
}
