//! The system packages that built files link (`libpq5` for an extension compiled against
//! `libpq-dev`), found at build time: `ldd` names the libraries, `dpkg-query -S` their
//! packages. A build-only block (T29) marks them as installed on purpose so that its
//! purge keeps them; an install builder (T34) lists them for the stage that copies the
//! venv or `node_modules`, which installs them. Debian-like images only: the listing needs dpkg.

use crate::encode::shell_quote;

/// Where an install builder lists the packages its venv or `node_modules` links, inside
/// that folder.
const LIST: &str = ".kiln-system-packages";

/// The list of what a folder links, which its builder writes.
pub(crate) fn list_path(folder: &str) -> String {
    format!("{}/{LIST}", folder.trim_end_matches('/'))
}

/// A pipeline that prints, one per line, the packages owning the libraries that the
/// shared objects `find` selects (`roots` and tests) link. usr-merged systems reach a
/// library by `/lib` or `/usr/lib` while dpkg knows one of them: both are asked. Its
/// middle commands fail on what they cannot read (a non-ELF file, a path no package
/// owns), so only the last command's status counts (hadolint DL4006).
fn linked_packages(roots_and_tests: &str) -> String {
    [
        format!(
            "find {roots_and_tests} -type f \\( -name '*.so' -o -name '*.so.*' -o -name '*.node' \\) -exec ldd {{}} + 2>/dev/null"
        ),
        r#"awk '$2 == "=>" && $3 ~ /^\// { print $3; if (sub(/^\/usr\//, "/", $3)) print $3; else print "/usr" $3 }'"#
            .to_owned(),
        "sort -u".to_owned(),
        "xargs -r dpkg-query -S 2>/dev/null".to_owned(),
        r#"awk -F ': ' '!/^diversion / { n = split($1, owners, ", "); for (i = 1; i <= n; i++) print owners[i] }'"#
            .to_owned(),
        "sort -u".to_owned(),
    ]
    .join(" \\\n        | ")
}

/// For a build-only block: the command before the block's own (a time stamp) and the
/// one after them, which marks the packages linked by what the block wrote as manually
/// installed, so that `apt-get purge --auto-remove` keeps them.
pub(crate) fn keep_linked() -> (String, String) {
    let mark = format!(
        "{} \\\n        | xargs -r apt-mark manual",
        linked_packages("/ -xdev -cnewer \"$kiln_stamp\"")
    );
    ("kiln_stamp=\"$(mktemp)\"".to_owned(), format!("{mark} \\\n    && rm -f \"$kiln_stamp\""))
}

/// For an install builder: lists what the installed folder links, in that folder (made
/// if the install made none: `npm ci` of a package without dependencies).
pub(crate) fn list_links(folder: &str) -> String {
    let quoted = shell_quote(folder);
    format!(
        "mkdir -p {quoted} \\\n    && if command -v dpkg-query >/dev/null; then \\\n        {}; \\\n    fi > {}",
        linked_packages(&quoted),
        shell_quote(&list_path(folder))
    )
}

/// For a stage that copied a venv or `node_modules` and has no `apt` to install the
/// list with: installs the packages the builder listed that the stage lacks (nothing, not even `apt-get update`, when it lacks none). `archives` is
/// apt's archive folder on a cache mount, when there is one (the lists are then cached
/// too and not removed).
pub(crate) fn install_links(folder: &str, archives: Option<&str>) -> Vec<String> {
    let list = shell_quote(&list_path(folder));
    let mut install = String::from(
        "apt-get update && xargs -a \"$kiln_missing\" apt-get install -y --no-install-recommends",
    );
    match archives {
        Some(folder) => install.push_str(&format!(" -o Dir::Cache::Archives={folder}")),
        None => install.push_str(" && rm -rf /var/lib/apt/lists/*"),
    }
    vec![
        "kiln_missing=\"$(mktemp)\"".to_owned(),
        format!(
            "while read -r package; do dpkg -s \"$package\" >/dev/null 2>&1 || echo \"$package\"; done \\\n        < {list} > \"$kiln_missing\""
        ),
        format!("if [ -s \"$kiln_missing\" ]; then {install}; fi"),
        "rm -f \"$kiln_missing\"".to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listing runs the real `ldd`, `awk` and `dpkg-query` of this Debian machine on
    /// a copy of zlib, which links the C library: its package is listed, whether ldd
    /// finds it under `/lib` or `/usr/lib`.
    #[test]
    fn lists_the_packages_a_library_links() {
        let has = |tool: &str| {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !(has("dpkg-query") && has("ldd")) {
            eprintln!("skipped: not a Debian-like machine");
            return;
        }
        let zlib = [
            "/usr/lib/x86_64-linux-gnu/libz.so.1",
            "/lib/x86_64-linux-gnu/libz.so.1",
            "/usr/lib/aarch64-linux-gnu/libz.so.1",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("zlib1g is required on Debian");
        let venv = tempfile::tempdir().expect("temp dir");
        let module = venv.path().join("lib/python3/site-packages/_zlib.cpython-311.so");
        std::fs::create_dir_all(module.parent().expect("a folder")).expect("mkdir");
        std::fs::copy(zlib, &module).expect("copy zlib");
        std::fs::write(venv.path().join("plain.py"), "import os\n").expect("write");

        let venv_path = venv.path().to_str().expect("UTF-8 path");
        let status =
            std::process::Command::new("sh").args(["-c", &list_links(venv_path)]).status().expect("sh");
        assert!(status.success());
        let listed = std::fs::read_to_string(list_path(venv_path)).expect("the list");
        let packages: Vec<&str> = listed.lines().map(|l| l.split(':').next().unwrap_or_default()).collect();
        assert_eq!(packages, ["libc6"], "{listed}");
    }
}
