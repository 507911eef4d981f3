//! `deps-first` (T33): a package install that needs none of the sources moves above the
//! copies of the context written before it, so that editing a source file does not
//! reinstall it. That is the order an expert writes; a manifest written in the naive
//! order gets the same image and the same rebuilds.
//!
//! An install needs the sources when it can read more than the files its node copies in
//! itself: a requirements file that names local paths or other files, npm lifecycle
//! scripts or local dependencies, a `replace` to a local folder in `go.mod`, path
//! dependencies or a workspace in `Cargo.toml`. Such a node stays where it is, and
//! `cache-order` says why.
//!
//! It also stays below a copy that may bring a file the install reads besides its own:
//! its tool's configuration (`.npmrc`, `pip.conf`, `.cargo/config.toml`, `go.work`, or
//! anything copied into `/etc` or a home folder, such as apt's sources and keys).

use std::path::Path;

use crate::ast::{Copy, CopyFrom, Instruction};
use crate::source::Spanned;

/// The npm scripts that `npm ci` runs.
const NPM_INSTALL_SCRIPTS: &[&str] = &["preinstall", "install", "postinstall", "prepare"];

/// Moves each install that needs none of the sources above the context copies right
/// before it. A build-only package node moves with its block, when the block's nodes
/// need none of the sources either.
pub(crate) fn hoist_installs(instructions: &mut Vec<Spanned<Instruction>>, context_dir: &Path) {
    let mut index = 0;
    while index < instructions.len() {
        let len = 1 + block_len(&instructions[index].value);
        let end = (index + len).min(instructions.len());
        let unit = &instructions[index..end];
        let movable = match &unit[0].value {
            Instruction::Apt(_) | Instruction::Apk(_) => {
                unit[1..].iter().all(|i| sources_needed(&i.value, context_dir).is_none())
            }
            other => sources_needed(other, context_dir).is_none(),
        };
        let mut to = index;
        while movable
            && to > 0
            && matches!(&instructions[to - 1].value, Instruction::Copy(copy)
                if copy.from == CopyFrom::Context
                    && unit.iter().all(|i| copy_feeds(&i.value, copy, context_dir).is_none()))
        {
            to -= 1;
        }
        if to < index {
            let moved: Vec<_> = instructions.drain(index..end).collect();
            instructions.splice(to..to, moved);
        }
        index = end;
    }
}

/// How many instructions after a build-only package node belong to its block.
fn block_len(instruction: &Instruction) -> usize {
    match instruction {
        Instruction::Apt(packages) | Instruction::Apk(packages) => packages.build_only_for.unwrap_or(0),
        _ => 0,
    }
}

/// Why an install cannot move above a copy of the sources; `None` when it can. Nodes
/// that install nothing, and `run` (which may read any file), never move.
pub(crate) fn sources_needed(instruction: &Instruction, context_dir: &Path) -> Option<String> {
    let read = |name: &str| std::fs::read_to_string(context_dir.join(name)).ok();
    match instruction {
        Instruction::Apt(packages) | Instruction::Apk(packages) => {
            packages.build_only_for.map(|_| "its block's commands may read any file".to_owned())
        }
        Instruction::Pip(pip) => {
            if let Some(local) = pip.packages.iter().find(|p| is_local_requirement(&p.value)) {
                return Some(format!("`{}` is a local path", local.value));
            }
            let requirements = pip.requirements.as_ref()?;
            let text = read(&requirements.value)?;
            text.lines()
                .map(|line| line.split(" #").next().unwrap_or_default().trim())
                .find(|line| {
                    is_local_requirement(line)
                        || line.starts_with("-r")
                        || line.starts_with("-c")
                        || line.starts_with("--requirement")
                        || line.starts_with("--constraint")
                })
                .map(|line| {
                    format!("`{}` names `{line}`, which needs more than that file", requirements.value)
                })
        }
        Instruction::Npm(_) => {
            let text = read("package.json")?;
            let package: serde_json::Value = serde_json::from_str(&text).ok()?;
            if let Some(script) = NPM_INSTALL_SCRIPTS.iter().find(|s| package["scripts"].get(**s).is_some()) {
                return Some(format!("`package.json` has a `{script}` script, which may read any file"));
            }
            if package.get("workspaces").is_some() {
                return Some("`package.json` declares workspaces".to_owned());
            }
            ["dependencies", "devDependencies", "optionalDependencies"]
                .iter()
                .filter_map(|kind| package[kind].as_object())
                .flat_map(|deps| deps.values())
                .filter_map(|version| version.as_str())
                .find(|version| ["file:", "link:", ".", "/"].iter().any(|p| version.starts_with(p)))
                .map(|version| format!("`package.json` depends on `{version}`, a local path"))
        }
        Instruction::GoMod(_) => {
            let text = read("go.mod")?;
            text.lines()
                .find(|line| line.contains("=> ./") || line.contains("=> ../") || line.contains("=> /"))
                .map(|line| format!("`go.mod` has `{}`, a local folder", line.trim()))
        }
        Instruction::CargoFetch(_) => {
            let text = read("Cargo.toml")?;
            if text.contains("[workspace]") {
                return Some("`Cargo.toml` declares a workspace".to_owned());
            }
            text.lines()
                .find(|line| line.contains("path =") || line.contains("path="))
                .map(|line| format!("`Cargo.toml` has `{}`, a path dependency", line.trim()))
        }
        _ => Some(String::new()),
    }
}

/// Whether the context's `package.json` has scripts that `npm ci` runs.
pub(crate) fn has_install_scripts(context_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(context_dir.join("package.json")) else { return false };
    let package: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    NPM_INSTALL_SCRIPTS.iter().any(|s| package["scripts"].get(*s).is_some())
}

/// Files an install reads from the folders a copy may fill, besides the files its node
/// copies in itself.
fn configuration_files(install: &Instruction) -> &'static [&'static str] {
    match install {
        Instruction::Npm(_) => &[".npmrc", ".yarnrc", ".yarnrc.yml"],
        Instruction::Pip(_) => &["pip.conf", "pip.ini", ".pip", ".config/pip"],
        Instruction::CargoFetch(_) => &[".cargo"],
        Instruction::GoMod(_) => &["go.work", "go.work.sum"],
        _ => &[],
    }
}

/// Why `copy` may write a file that `install` reads (then the install stays below it),
/// or `None`.
pub(crate) fn copy_feeds(install: &Instruction, copy: &Copy, context_dir: &Path) -> Option<String> {
    let node = install.node_name();
    if configuration_files(install).is_empty()
        && !matches!(install, Instruction::Apt(_) | Instruction::Apk(_))
    {
        return None;
    }
    let dest = copy.dest.value.trim_end_matches('/');
    let system = dest.is_empty()
        || ["/etc", "/root", "/home", "/usr/share/keyrings", "/usr/local/share/ca-certificates"]
            .iter()
            .any(|folder| dest == *folder || dest.starts_with(&format!("{folder}/")));
    if system {
        return Some(format!(
            "the `copy` into `{}` may bring configuration that `{node}` reads",
            copy.dest.value
        ));
    }
    for source in &copy.sources {
        let path = context_dir.join(&source.value);
        for name in configuration_files(install) {
            let brought = path.join(name).exists()
                || Path::new(&source.value).file_name().is_some_and(|f| f.to_str() == Some(*name));
            if brought {
                return Some(format!(
                    "the `copy` of `{}` brings `{name}`, which `{node}` reads",
                    source.value
                ));
            }
        }
    }
    None
}

/// A requirement that is a path on disk rather than a package of an index.
fn is_local_requirement(line: &str) -> bool {
    line.starts_with('.')
        || line.starts_with('/')
        || line.starts_with("-e")
        || line.starts_with("--editable")
        || line.starts_with("file:")
        || line.contains("@ file:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_requirements() {
        for line in [".", "./libs/common", "-e .", "--editable=./x", "file:///src/x", "pkg @ file:///src/pkg"]
        {
            assert!(is_local_requirement(line), "{line}");
        }
        for line in ["flask==3.0.3", "requests[socks]>=2", "git+https://example.com/x.git"] {
            assert!(!is_local_requirement(line), "{line}");
        }
    }
}
