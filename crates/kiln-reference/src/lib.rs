//! Docker image references, by the grammar of distribution/reference:
//! `[domain[:port]/]path[:tag][@digest]`. The manifest's checks and every engine and
//! registry call parse references here, and nowhere else.

use std::fmt;

/// A parsed, valid image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub domain: Option<String>,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Why a reference is invalid, phrased for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("the reference is empty")]
    Empty,
    #[error("repository name must be lowercase")]
    Uppercase,
    #[error(
        "`{0}` is not a valid repository path component (lowercase letters and digits, separated by `.`, `_`, `__` or `-`)"
    )]
    BadComponent(String),
    #[error("`{0}` is not a valid registry host")]
    BadDomain(String),
    #[error("{0}")]
    BadTag(TagError),
    #[error("`{0}` is not a valid digest (`algorithm:hex`, sha256 with 64 hex digits)")]
    BadDigest(String),
    #[error("the repository name is longer than 255 characters")]
    TooLong,
    #[error("a 64-hex-digit name is ambiguous with an image ID")]
    AmbiguousId,
}

/// Why a tag is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("a tag cannot be empty")]
    Empty,
    #[error("a tag is at most 128 characters")]
    TooLong,
    #[error("a tag must start with a letter, digit or `_`")]
    BadStart,
    #[error("a tag may only contain letters, digits, `_`, `.` and `-`; `{0}` is not allowed")]
    BadChar(char),
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(domain) = &self.domain {
            write!(f, "{domain}/")?;
        }
        f.write_str(&self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl ImageRef {
    /// Parses a full reference such as `registry.example.com:5000/shop/api:1.4@sha256:…`.
    pub fn parse(text: &str) -> Result<Self, RefError> {
        if text.is_empty() {
            return Err(RefError::Empty);
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                validate_digest(digest)?;
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        // The tag follows the last `:` unless a `/` comes after it (then it was a port).
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => {
                validate_tag(tag).map_err(RefError::BadTag)?;
                (name, Some(tag.to_owned()))
            }
            _ => (rest, None),
        };
        let (domain, path) = parse_name(name)?;
        if digest.is_none() && tag.is_none() && domain.is_none() && is_hex64(&path) {
            return Err(RefError::AmbiguousId);
        }
        Ok(Self { domain, path, tag, digest })
    }

    /// The repository: domain and path, without tag or digest.
    pub fn repository(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// The repository as the engine lists it (in `RepoTags` and `RepoDigests`): Docker
    /// Hub's domain and its `library/` namespace left out.
    pub fn familiar_repository(&self) -> String {
        match self.domain.as_deref() {
            None | Some(DOCKER_HUB | "index.docker.io" | "registry-1.docker.io") => self
                .path
                .strip_prefix("library/")
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_owned(),
            Some(domain) => format!("{domain}/{}", self.path),
        }
    }

    /// The registry host: the domain, or Docker Hub's when the reference names none.
    pub fn registry(&self) -> &str {
        self.domain.as_deref().unwrap_or(DOCKER_HUB)
    }

    /// The repository's name on its registry's API: Docker Hub puts one-component names
    /// under `library/`.
    pub fn remote_path(&self) -> String {
        if self.domain.is_none() && !self.path.contains('/') {
            format!("library/{}", self.path)
        } else {
            self.path.clone()
        }
    }

    /// What names the image within its repository, as the engine's pull and the
    /// registry API take it: the digest when there is one (it wins over a tag), else the
    /// tag, else `latest`.
    pub fn tag_or_digest(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// The tag, or `latest`.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }
}

/// The registry of references that name none.
pub const DOCKER_HUB: &str = "docker.io";

/// Checks a repository name (`[domain/]path`, no tag or digest).
pub fn validate_repository(name: &str) -> Result<(), RefError> {
    if name.is_empty() {
        return Err(RefError::Empty);
    }
    parse_name(name).map(|_| ())
}

/// Checks a tag against `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), TagError> {
    let mut chars = tag.chars();
    let first = chars.next().ok_or(TagError::Empty)?;
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err(TagError::BadStart);
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return Err(TagError::BadChar(bad));
    }
    if tag.len() > 128 {
        return Err(TagError::TooLong);
    }
    Ok(())
}

/// Splits `[domain/]path` as the docker CLI does: the first component is the registry
/// when it looks like a host (it has a `.` or a `:`, is `localhost`, or has capitals,
/// which a path cannot) and is a valid one; otherwise everything is the path (on Docker
/// Hub).
fn parse_name(name: &str) -> Result<(Option<String>, String), RefError> {
    if name.len() > 255 {
        return Err(RefError::TooLong);
    }
    let first = name.split_once('/');
    if let Some((first, rest)) = first
        && looks_like_registry(first)
        && is_domain(first)
    {
        validate_path(rest)?;
        return Ok((Some(first.to_owned()), rest.to_owned()));
    }
    validate_path(name).map(|()| (None, name.to_owned())).map_err(|err| match first {
        // Tell the user about a bad host when the first part looks like one.
        Some((first, _)) if first.contains(['.', ':']) && !is_domain(first) => {
            RefError::BadDomain(first.to_owned())
        }
        _ => err,
    })
}

fn looks_like_registry(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.starts_with('[')
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn validate_path(path: &str) -> Result<(), RefError> {
    for component in path.split('/') {
        if !is_path_component(component) {
            if component.chars().any(|c| c.is_ascii_uppercase())
                && is_path_component(&component.to_ascii_lowercase())
            {
                return Err(RefError::Uppercase);
            }
            return Err(RefError::BadComponent(component.to_owned()));
        }
    }
    Ok(())
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator: `.`, `_`, `__`, or a run of `-`.
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || !bytes.get(i).copied().is_some_and(alnum) {
            return false;
        }
    }
    true
}

/// `host[:port]`, where host is dot-separated `[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?`
/// components or a bracketed IPv6 address.
fn is_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((ipv6, after)) = rest.split_once(']') else {
            return false;
        };
        if ipv6.is_empty() || !ipv6.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    host.is_none_or(|host| !host.is_empty() && host.split('.').all(is_domain_component))
}

fn is_domain_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

fn validate_digest(digest: &str) -> Result<(), RefError> {
    let bad = || RefError::BadDigest(digest.to_owned());
    let (algorithm, hex) = digest.split_once(':').ok_or_else(bad)?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.split(['+', '.', '-', '_']).all(|c| {
            c.starts_with(|ch: char| ch.is_ascii_alphabetic())
                && c.chars().all(|ch| ch.is_ascii_alphanumeric())
        });
    if !algorithm_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    match algorithm {
        "sha256" if hex.len() == 64 && hex.bytes().all(|b| !b.is_ascii_uppercase()) => Ok(()),
        "sha384" if hex.len() == 96 && hex.bytes().all(|b| !b.is_ascii_uppercase()) => Ok(()),
        "sha512" if hex.len() == 128 && hex.bytes().all(|b| !b.is_ascii_uppercase()) => Ok(()),
        _ => Err(bad()),
    }
}

fn is_hex64(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> (Option<String>, String, Option<String>) {
        let r = ImageRef::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (r.domain, r.path, r.tag)
    }

    #[test]
    fn valid_references() {
        let sha = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        for text in [
            "test_com",
            "test.com:tag",
            "test.com:5000",
            "test.com/repo:tag",
            "test:5000/repo",
            "test:5000/repo:tag",
            &format!("test:5000/repo@{sha}"),
            &format!("test:5000/repo:tag@{sha}"),
            "lowercase:Uppercase",
            "Uppercase/lowercase",
            "LOCALDOMAIN/x",
            "foo_bar.com/app",
            "project--id.module--name.ver---sion",
            "a/b/c/d",
            "[::1]:5000/foo",
            "[fe80::1]/foo:bar",
            "python:3.11-slim",
            "registry.example.com/shop/api:1.4.0",
            "localhost/x",
            "127.0.0.1:5000/kiln/test:latest",
        ] {
            assert!(ImageRef::parse(text).is_ok(), "{text} should be valid");
        }
    }

    #[test]
    fn invalid_references() {
        for text in [
            "",
            ":justtag",
            "@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "repo@sha256:ffffffffffffffffffffffffffffffffff",
            "validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "Uppercase:tag",
            "test:5000/Uppercase/lowercase:tag",
            "aa/asdf$$^/aa",
            "foo_bar.com:8080/app",
            "a/",
            "-a",
            "a-",
            "a..b",
            "__a",
            "a/__b",
            "a:/b",
            "[fe80::1%eth0]:5000/foo",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "foo:bar:baz",
            "python:3.11 slim",
        ] {
            assert!(ImageRef::parse(text).is_err(), "{text:?} should be invalid");
        }
    }

    #[test]
    fn splits_domain_and_tag() {
        assert_eq!(parts("test.com:5000"), (None, "test.com".into(), Some("5000".into())));
        assert_eq!(parts("test:5000/repo"), (Some("test:5000".into()), "repo".into(), None));
        assert_eq!(
            parts("127.0.0.1:5000/a/b:t"),
            (Some("127.0.0.1:5000".into()), "a/b".into(), Some("t".into()))
        );
        assert_eq!(parts("python:3.11"), (None, "python".into(), Some("3.11".into())));
        // A first component that is no host belongs to the path (on Docker Hub).
        assert_eq!(parts("library/python"), (None, "library/python".into(), None));
        assert_eq!(parts("localhost/x"), (Some("localhost".into()), "x".into(), None));
        assert_eq!(parts("foo_bar.com/app"), (None, "foo_bar.com/app".into(), None));
    }

    #[test]
    fn names_registries_and_remote_paths() {
        let sha = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        let at = |text: &str| ImageRef::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(at("python:3.11").registry(), "docker.io");
        assert_eq!(at("python:3.11").remote_path(), "library/python");
        assert_eq!(at("bitnami/redis").remote_path(), "bitnami/redis");
        assert_eq!(at("127.0.0.1:5000/a/b").registry(), "127.0.0.1:5000");
        assert_eq!(at("localhost/x").remote_path(), "x");
        assert_eq!(at("a/b").tag_or_digest(), "latest");
        assert_eq!(at(&format!("h:5000/img:1@{sha}")).tag_or_digest(), sha);
        assert_eq!(at(&format!("h:5000/img:1@{sha}")).tag_or_latest(), "1");
        assert_eq!(at(&format!("h:5000/img@{sha}")).repository(), "h:5000/img");
        assert_eq!(at("docker.io/library/python:3.11").familiar_repository(), "python");
        assert_eq!(at("docker.io/bitnami/redis").familiar_repository(), "bitnami/redis");
        assert_eq!(at("127.0.0.1:5000/library/x").familiar_repository(), "127.0.0.1:5000/library/x");
    }

    #[test]
    fn explains_uppercase() {
        assert_eq!(ImageRef::parse("My-App:1").unwrap_err(), RefError::Uppercase);
    }

    #[test]
    fn tags() {
        assert!(validate_tag("v1.0").is_ok());
        assert!(validate_tag("_x").is_ok());
        assert_eq!(validate_tag(".x"), Err(TagError::BadStart));
        assert_eq!(validate_tag("a/b"), Err(TagError::BadChar('/')));
        assert_eq!(validate_tag(&"a".repeat(129)), Err(TagError::TooLong));
        assert!(validate_tag(&"a".repeat(128)).is_ok());
    }
}
