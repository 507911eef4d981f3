//! Oracle 2 for the manifest's rewrites (`docs/transformations.md`): each case is a
//! manifest and, written by hand, its literal translation: each node as the instruction
//! its name says, in the order written, no optimization. Both are built on the engine on
//! a base whose package managers are stand-ins (no network: they write a file per
//! package, its recommends, their lists and caches where the real ones do), and the two
//! images must hold the same files and configuration, except what the case's rule says
//! it removes or adds.

use std::collections::BTreeMap;

use kiln_engine::Builder;

use crate::Case;
use crate::engine::{self, Cleanup, Removed};
use crate::harness::{Test, kiln};
use crate::import::{config, files};

/// The stand-in base, made once per run from the test's busybox.
const BASE: &str = "kiln-it/rules-base:1";

/// Stand-ins for apt-get, apk, python3, pip, npm and go: what each is asked leaves files
/// as the real tool would leave them (package, recommends, lists, archives, caches).
const STAND_INS: &str = r#"FROM kiln-test/busybox:1
RUN mkdir -p /usr/local/bin /root /tmp && chmod 1777 /tmp && printf '%s\n' \
    '#!/bin/sh' \
    'cmd=$1; shift; rec=yes; archives=/var/cache/apt/archives; skip=no' \
    'case $cmd in' \
    'update) mkdir -p /var/lib/apt/lists && echo lists > /var/lib/apt/lists/Packages ;;' \
    'install) for a; do if [ $skip = yes ]; then case $a in Dir::Cache::Archives=*) archives=${a#*=};; esac; skip=no; continue; fi; case $a in -o) skip=yes;; --no-install-recommends) rec=no;; esac; done; for a; do case $a in -*|*=*|*::*) ;; *) mkdir -p /usr/share/pkg $archives; echo "$a" > /usr/share/pkg/$a; echo deb > $archives/$a.deb; [ $rec = yes ] && echo recommended > /usr/share/pkg/$a-recommends;; esac; done ;;' \
    'purge|remove) for a; do case $a in -*|*=*|*::*) ;; *) rm -f /usr/share/pkg/$a /usr/share/pkg/$a-recommends;; esac; done ;;' \
    'esac' 'exit 0' > /usr/local/bin/apt-get \
 && printf '%s\n' \
    '#!/bin/sh' \
    'cmd=$1; shift; cache=yes; group=' \
    'case $cmd in' \
    'add) while [ $# -gt 0 ]; do case $1 in --no-cache) cache=no;; --virtual) shift; group=$1;; -*) ;; *) mkdir -p /usr/share/pkg; echo "$1" > /usr/share/pkg/$1; [ -n "$group" ] && echo "$1" >> /tmp/apk-$group;; esac; shift; done; [ $cache = yes ] && mkdir -p /var/cache/apk && echo index > /var/cache/apk/APKINDEX ;;' \
    'del) for g; do for p in $(cat /tmp/apk-$g 2>/dev/null); do rm -f /usr/share/pkg/$p; done; rm -f /tmp/apk-$g; done ;;' \
    'esac' 'exit 0' > /usr/local/bin/apk \
 && printf '%s\n' \
    '#!/bin/sh' \
    'test "$1" = -m && test "$2" = venv && mkdir -p "$3/bin" && echo pip > "$3/bin/pip"' 'exit 0' > /usr/local/bin/python3 \
 && printf '%s\n' \
    '#!/bin/sh' \
    'cmd=$1; shift; cache=yes; target=${VIRTUAL_ENV:-/usr/local/lib/python}; pkgs=' \
    'case $cmd in' \
    'install) while [ $# -gt 0 ]; do case $1 in --no-cache-dir) cache=no;; --cache-dir=*) cache=mount;; -r) shift; pkgs="$pkgs $(cat $1)";; --user) target=$HOME/.local/lib/python;; -*) ;; *) pkgs="$pkgs $1";; esac; shift; done; for p in $pkgs; do mkdir -p $target; echo "$p" > $target/$p; if [ $cache = yes ]; then mkdir -p $HOME/.cache/pip; echo wheel > $HOME/.cache/pip/$p.whl; fi; done ;;' \
    'uninstall) rm -f "$VIRTUAL_ENV/bin/pip" ;;' \
    'esac' 'exit 0' > /usr/local/bin/pip \
 && printf '%s\n' \
    '#!/bin/sh' \
    'case $1 in' \
    'ci) cache=$HOME/.npm; for a; do case $a in --cache=*) cache=${a#--cache=};; esac; done; mkdir -p node_modules/dep $cache/_cacache; echo dep > node_modules/dep/index.js; echo entry > $cache/_cacache/entry ;;' \
    'cache) rm -rf $HOME/.npm/_cacache ;;' \
    'esac' 'exit 0' > /usr/local/bin/npm \
 && printf '%s\n' \
    '#!/bin/sh' \
    'mods=${GOMODCACHE:-$HOME/go/pkg/mod}' \
    'case $1 in' \
    'mod) mkdir -p $mods/example.com && echo module > $mods/example.com/dep.zip ;;' \
    'build) test -f $mods/example.com/dep.zip || exit 1; mkdir -p "$(dirname "$3")" && echo binary > "$3" ;;' \
    'esac' > /usr/local/bin/go \
 && chmod +x /usr/local/bin/apt-get /usr/local/bin/apk /usr/local/bin/python3 /usr/local/bin/pip /usr/local/bin/npm /usr/local/bin/go
"#;

/// One rule's case.
struct Rule {
    id: &'static str,
    /// The manifest level (`classic`, `1.2`).
    level: &'static str,
    /// Images the case's image builds on, written before it.
    others: &'static str,
    /// The image's body, after its `from` (unless it says its own `from` or stages).
    manifest: &'static str,
    /// The literal translation, after its `FROM` (unless it starts with its own; then
    /// `{registry}` is the case's registry).
    literal: &'static str,
    /// Files of the context (besides the manifest).
    files: &'static [(&'static str, &'static str)],
    /// Paths (prefixes, no leading `/`) that the rule removes: only in the literal image.
    removed: &'static [&'static str],
    /// Paths only in kiln's image.
    added: &'static [&'static str],
    /// Configuration fields the rule changes.
    config: &'static [&'static str],
}

const APT_LEFTOVERS: &[&str] =
    &["var/lib/apt/lists/Packages", "usr/share/pkg/curl-recommends", "usr/share/pkg/git-recommends"];

const RULES: &[Rule] = &[
    Rule {
        id: "T01 apt-single-layer, T12 labels-last",
        level: "classic",
        others: "",
        manifest: "workdir \"/app\"\n    label org.example.team=\"rules\"\n    apt curl git curl\n",
        literal: "WORKDIR /app\nRUN apt-get update && apt-get install -y curl git curl\nLABEL org.example.team=\"rules\"\n",
        files: &[],
        removed: APT_LEFTOVERS,
        added: &[],
        config: &[],
    },
    Rule {
        id: "T02 apk-no-cache",
        level: "classic",
        others: "",
        manifest: "apk curl\n",
        literal: "RUN apk add curl\n",
        files: &[],
        removed: &["var/cache/apk"],
        added: &[],
        config: &[],
    },
    Rule {
        id: "T03 pip-no-cache",
        level: "classic",
        others: "",
        manifest: "pip flask \"gunicorn>=21\"\n",
        literal: "RUN pip install flask 'gunicorn>=21'\n",
        files: &[],
        removed: &["root/.cache"],
        added: &[],
        config: &[],
    },
    Rule {
        id: "T04 npm-ci-clean, T05 deps-before-sources",
        level: "classic",
        others: "",
        manifest: "workdir \"/app\"\n    npm production=#true\n",
        literal: "WORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm ci --omit=dev\n",
        files: &[("package.json", "{}"), ("package-lock.json", "{}")],
        removed: &["root/.npm/_cacache"],
        added: &[],
        config: &[],
    },
    Rule {
        id: "T06 separate-runs",
        level: "classic",
        others: "",
        manifest: "workdir \"/w\"\n    run \"cd /tmp\" \"pwd > /w/where\"\n    run \"export X=1\"\n    run \"echo X=${X:-unset} > /w/x\"\n    run \"set -e\" \"false || echo survived > /w/s; echo after >> /w/s\"\n    run \"mkdir -p d && cd d\" \"echo in-d > here\"\n",
        literal: "WORKDIR /w\nRUN [\"/bin/sh\", \"-c\", \"cd /tmp\\nstatus=$?; if [ $status -ne 0 ]; then exit $status; fi\\npwd > /w/where\"]\nRUN export X=1\nRUN echo X=${X:-unset} > /w/x\nRUN [\"/bin/sh\", \"-c\", \"set -e\\nstatus=$?; if [ $status -ne 0 ]; then exit $status; fi\\nfalse || echo survived > /w/s; echo after >> /w/s\"]\nRUN [\"/bin/sh\", \"-c\", \"mkdir -p d && cd d\\nstatus=$?; if [ $status -ne 0 ]; then exit $status; fi\\necho in-d > here\"]\n",
        files: &[],
        removed: &[],
        added: &[],
        config: &[],
    },
    Rule {
        id: "T07 packages-own-layer",
        level: "classic",
        others: "",
        manifest: "apt curl\n    apt git\n",
        literal: "RUN apt-get update && apt-get install -y curl\nRUN apt-get update && apt-get install -y git\n",
        files: &[],
        removed: APT_LEFTOVERS,
        added: &[],
        config: &[],
    },
    Rule {
        id: "T10 stage-order, T11 prune-unused-stages, T21 level-cache-mounts",
        level: "1.2",
        others: "",
        manifest: "target \"main\"\n    stage main {\n        from stage=build\n        run \"echo main > /main\"\n    }\n    stage unused {\n        from \"kiln-it/rules-base:1\"\n        run \"echo unused > /unused\"\n    }\n    stage build {\n        from \"kiln-it/rules-base:1\"\n        run \"echo kept > /cache/kept\" \"cp /cache/kept /built\" {\n            cache \"/cache\"\n        }\n    }\n",
        literal: " AS build\nRUN --mount=type=cache,target=/cache echo kept > /cache/kept && cp /cache/kept /built\nFROM kiln-it/rules-base:1 AS unused\nRUN echo unused > /unused\nFROM build AS main\nRUN echo main > /main\n",
        files: &[],
        removed: &[],
        // The cache mount's target folder, which BuildKit makes in the layer.
        added: &[],
        config: &[],
    },
    Rule {
        // This busybox has no adduser: the user is written into the files, as kiln's
        // creation does when neither `useradd` nor `adduser` is there.
        id: "T13 numeric-user, T28 users-first",
        level: "classic",
        others: "",
        manifest: "workdir \"/app\"\n    copy \"f.txt\" \"/app/f.txt\"\n    user app uid=10001\n    run \"id > /tmp/id.txt\"\n",
        literal: "WORKDIR /app\nCOPY f.txt /app/f.txt\nRUN echo 'app:x:10001:' >> /etc/group && echo 'app:x:10001:10001::/home/app:/bin/sh' >> /etc/passwd && mkdir -p /home/app && chown 10001:10001 /home/app\nUSER app\nRUN id > /tmp/id.txt\n",
        files: &[("f.txt", "f")],
        removed: &[],
        added: &[],
        config: &["User"],
    },
    Rule {
        id: "T17 ignore-defaults, T19 ignore-output, T26 ignore-package-outputs, T27 ignore-manifest, T30 pip-venv",
        level: "classic",
        others: "",
        manifest: "workdir \"/app\"\n    pip requirements=\"requirements.txt\" venv=\"/opt/venv\"\n    copy \".\" \".\"\n",
        literal: "WORKDIR /app\nENV VIRTUAL_ENV=\"/opt/venv\" PATH=\"/opt/venv/bin:$PATH\"\nRUN python3 -m venv /opt/venv\nCOPY requirements.txt ./\nRUN pip install -r requirements.txt\nCOPY . .\n",
        files: &[
            ("requirements.txt", "flask\n"),
            (".git/HEAD", "ref: refs/heads/main\n"),
            (".venv/lib/site.py", ""),
            ("src/app.py", "print(1)\n"),
            ("src/__pycache__/app.cpython-311.pyc", ""),
        ],
        removed: &[
            "app/.git",
            "app/.venv",
            "app/src/__pycache__",
            "app/kiln.kdl",
            "app/Dockerfile",
            "root/.cache",
        ],
        added: &[],
        config: &[],
    },
    Rule {
        id: "T29 build-only-packages",
        level: "classic",
        others: "",
        manifest: "apt gcc build-only=#true {\n        run \"test -f /usr/share/pkg/gcc\" \"echo built > /built\"\n    }\n",
        literal: "RUN apt-get update && apt-get install -y gcc\nRUN test -f /usr/share/pkg/gcc && echo built > /built\nRUN apt-get purge -y gcc\n",
        files: &[],
        removed: &["var/lib/apt/lists/Packages"],
        added: &[],
        config: &[],
    },
    Rule {
        id: "T31 level-package-caches",
        level: "1.2",
        others: "",
        manifest: "apt curl\n    pip flask\n",
        literal: "RUN apt-get update && apt-get install -y curl\nRUN pip install flask\n",
        files: &[],
        removed: &[
            "var/lib/apt/lists/Packages",
            "usr/share/pkg/curl-recommends",
            "var/cache/apt/archives/curl.deb",
            "root/.cache",
        ],
        added: &["var/cache/kiln", "tmp/kiln-cache"],
        config: &[],
    },
    Rule {
        id: "T33 deps-first",
        level: "classic",
        others: "",
        manifest: "workdir \"/app\"\n    copy \".\" \".\"\n    apt curl\n",
        literal: "WORKDIR /app\nCOPY . .\nRUN apt-get update && apt-get install -y curl\n",
        files: &[("src/main.c", "int main;\n")],
        removed: &[
            "var/lib/apt/lists/Packages",
            "usr/share/pkg/curl-recommends",
            "app/kiln.kdl",
            "app/Dockerfile",
        ],
        added: &[],
        config: &[],
    },
    Rule {
        id: "T34 venv-builder",
        level: "classic",
        others: "",
        manifest: "workdir \"/app\"\n    apt gcc build-only=#true {\n        pip flask venv=\"/opt/venv\" builder=#true\n    }\n",
        literal: "WORKDIR /app\nRUN apt-get update && apt-get install -y gcc\nENV VIRTUAL_ENV=\"/opt/venv\" PATH=\"/opt/venv/bin:$PATH\"\nRUN python3 -m venv /opt/venv\nRUN pip install flask\nRUN apt-get purge -y gcc\n",
        files: &[],
        removed: &["var/lib/apt/lists", "var/cache/apt", "usr/share/pkg", "opt/venv/bin/pip", "root/.cache"],
        added: &["opt/venv/.kiln-system-packages"],
        config: &["Env"],
    },
    Rule {
        id: "T36 build-tools-split",
        level: "classic",
        others: "",
        manifest: "workdir \"/app\"\n    apt python3 gcc\n    pip flask venv=\"/opt/venv\"\n",
        literal: "WORKDIR /app\nRUN apt-get update && apt-get install -y python3 gcc\nENV VIRTUAL_ENV=\"/opt/venv\" PATH=\"/opt/venv/bin:$PATH\"\nRUN python3 -m venv /opt/venv\nRUN pip install flask\n",
        files: &[],
        removed: &[
            "var/lib/apt/lists/Packages",
            "usr/share/pkg/python3-recommends",
            "usr/share/pkg/gcc",
            "usr/share/pkg/gcc-recommends",
            "var/cache/apt/archives/gcc.deb",
            "opt/venv/bin/pip",
            "root/.cache",
        ],
        added: &["opt/venv/.kiln-system-packages"],
        config: &["Env"],
    },
    Rule {
        id: "T37 npm-builder",
        level: "classic",
        others: "",
        manifest: "workdir \"/app\"\n    npm builder=#true\n",
        literal: "WORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm ci\n",
        files: &[("package.json", "{}"), ("package-lock.json", "{}")],
        removed: &["root/.npm"],
        added: &["app/node_modules/.kiln-system-packages"],
        config: &[],
    },
    Rule {
        // The literal file writes what Docker reads as the same values in its own ways
        // (single quotes, an escaped `$`, `./`), and has no ignore file.
        id: "T08 exec-form, T15 json-paths, T16 escaped-values, T18 ignore-keeps-copied, T22 level-copy-link",
        level: "1.2",
        others: "",
        manifest: "env GREETING=\"say \\\"hi\\\" \\\\ back $HOME\" PLAIN=one\n    label \"org.example.quote\"=\"a \\\"b\\\" \\\\ $c\"\n    shell \"/bin/sh\" \"-ec\"\n    copy \"a b.txt\" \"$x.txt\" \"-m.txt\" \".vscode/settings.json\" \"/p/\"\n    copy \"f.txt\" \"/l/f.txt\" link=#true\n    volume \"/data\" \"/other dir\"\n    entrypoint \"/bin/echo\" \"a b\"\n    cmd \"c  d\" \"$HOME\"\n    healthcheck \"/bin/true\" interval=\"30s\"\n    stopsignal \"SIGINT\"\n",
        literal: "ENV GREETING='say \"hi\" \\ back '$HOME PLAIN=one\nLABEL org.example.quote='a \"b\" \\ $c'\nSHELL [\"/bin/sh\", \"-ec\"]\nCOPY [\"a b.txt\", \"/p/\"]\nCOPY \\$x.txt ./-m.txt .vscode/settings.json /p/\nCOPY f.txt /l/f.txt\nVOLUME [\"/data\", \"/other dir\"]\nENTRYPOINT [\"/bin/echo\", \"a b\"]\nCMD [\"c  d\", \"$HOME\"]\nHEALTHCHECK --interval=30s CMD [\"/bin/true\"]\nSTOPSIGNAL SIGINT\n",
        files: &[
            ("a b.txt", "a"),
            ("$x.txt", "x"),
            ("-m.txt", "m"),
            (".vscode/settings.json", "{}"),
            ("f.txt", "f"),
        ],
        removed: &[],
        added: &[],
        config: &[],
    },
    Rule {
        id: "T14 dependency-refs",
        level: "classic",
        others: "image base {\n    from \"kiln-it/rules-base:1\"\n    tags \"latest\" \"1.0\"\n    run \"echo base > /base\"\n}\n",
        manifest: "from image=base\n    run \"cat /base > /copy\"\n",
        literal: "FROM {registry}/base:1.0\nRUN cat /base > /copy\n",
        files: &[],
        removed: &[],
        added: &[],
        config: &[],
    },
    Rule {
        // The stand-in `go build` fails unless it finds what `go mod download` wrote.
        id: "T35 download-caches",
        level: "1.2",
        others: "",
        manifest: "target \"main\"\n    stage build {\n        from \"kiln-it/rules-base:1\"\n        workdir \"/src\"\n        go-mod cache=#true\n        run \"go build -o /out/app\"\n    }\n    stage main {\n        from \"kiln-it/rules-base:1\"\n        copy \"/out/app\" \"/app\" from=build\n    }\n",
        literal: " AS build\nWORKDIR /src\nCOPY go.mod go.sum ./\nRUN go mod download\nRUN go build -o /out/app\nFROM kiln-it/rules-base:1 AS main\nCOPY --from=build /out/app /app\n",
        files: &[("go.mod", "module example.com/app\n"), ("go.sum", "")],
        removed: &[],
        added: &[],
        config: &[],
    },
];

/// Whether `path` is one of `prefixes`, below one, or a folder above one (which the
/// tool made to put it there).
fn under(path: &str, prefixes: &[&str]) -> bool {
    prefixes
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")) || p.starts_with(&format!("{path}/")))
}

/// What differs between kiln's image and the literal one, beyond what the rule allows.
fn differences(rule: &Rule, ours: &str, theirs: &str) -> Vec<String> {
    let (our_files, their_files) = (files(ours), files(theirs));
    let mut found = Vec::new();
    for (path, description) in &their_files {
        match our_files.get(path) {
            Some(ours) if ours == description => {}
            Some(ours) => found.push(format!("/{path}: {ours} (kiln) vs {description} (literal)")),
            None if under(path, rule.removed) => {}
            None => found.push(format!("/{path} is only in the literal image")),
        }
    }
    for path in our_files.keys().filter(|p| !their_files.contains_key(*p)) {
        if !under(path, rule.added) {
            found.push(format!("/{path} is only in kiln's image"));
        }
    }
    let (our_config, their_config): (BTreeMap<_, _>, BTreeMap<_, _>) = (config(ours), config(theirs));
    for (key, value) in &their_config {
        if rule.config.contains(key) {
            continue;
        }
        // kiln labels each build it makes (`dev.kiln.*`, `org.opencontainers.image.*`): a
        // literal image built on one of them inherits that build's, which are not the
        // Dockerfile's.
        let same = if *key == "Labels" {
            value.as_object().is_none_or(|labels| {
                labels
                    .iter()
                    .filter(|(k, _)| {
                        !k.starts_with("dev.kiln.") && !k.starts_with("org.opencontainers.image.")
                    })
                    .all(|(k, v)| our_config[key].get(k) == Some(v))
            })
        } else {
            our_config.get(key) == Some(value)
        };
        if !same {
            found.push(format!("{key}: {} (kiln) vs {value} (literal)", our_config[key]));
        }
    }
    found
}

fn optimized_images_equal_the_literal_ones() {
    let Some(_engine) = engine::engine_test() else { return };
    let base = tempfile::tempdir().expect("temp dir");
    std::fs::write(base.path().join("Dockerfile"), STAND_INS).expect("write");
    let built = engine::build_dockerfile(base.path(), Builder::Classic, BASE);
    let _base = Removed(vec![BASE.to_owned()]);
    built.unwrap_or_else(|e| panic!("the stand-in base: {e}"));
    let mut mismatches = Vec::new();
    for (index, rule) in RULES.iter().enumerate() {
        let builder = if rule.level == "classic" { Builder::Classic } else { Builder::BuildKit };
        let flag = if builder == Builder::Classic { "classic" } else { "buildkit" };
        // A case with stages, or built on another of its images, says its bases itself.
        let from = if rule.manifest.contains("stage ") || rule.manifest.starts_with("from ") {
            String::new()
        } else {
            format!("from \"{BASE}\"\n    ")
        };
        let registry = format!("kiln-it/rules-{index}");
        let manifest = format!(
            "registry \"{registry}\"\ndockerfile-level \"{}\"\n{}image t {{\n    {from}{}}}\n",
            rule.level, rule.others, rule.manifest
        );
        let mut test = Test::new().manifest(&manifest);
        for (path, content) in rule.files {
            test = test.file(path, content);
        }
        let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
        let build = kiln(
            test.path(),
            &["build", "--network", "none", "--builder", flag, "--progress", "plain", "-q"].map(String::from),
            &[],
        );
        assert_eq!(build.status, 0, "{}: {}", rule.id, build.stderr);
        // The literal build: the same context, its Dockerfile beside it (as a user writes it).
        let literal_dir = tempfile::tempdir().expect("temp dir");
        kiln_testkit::copy_tree(test.path(), literal_dir.path());
        std::fs::write(
            literal_dir.path().join("Dockerfile"),
            if rule.literal.starts_with("FROM ") {
                rule.literal.replace("{registry}", &registry)
            } else {
                format!(
                    "FROM {BASE}{}{}",
                    if rule.literal.starts_with(' ') { "" } else { "\n" },
                    rule.literal
                )
            },
        )
        .expect("write");
        let literal = format!("kiln-it/rules-literal/{index}:1");
        let _literal = Removed(vec![literal.clone()]);
        let built = engine::build_dockerfile(literal_dir.path(), builder, &literal);
        assert!(built.is_ok(), "{}: the literal translation: {built:?}", rule.id);
        for difference in differences(rule, &format!("{registry}/t:latest"), &literal) {
            mismatches.push(format!("{}: {difference}", rule.id));
        }
    }
    assert!(mismatches.is_empty(), "{} differences:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] =
    &[Case::engine("optimized_images_equal_the_literal_ones", optimized_images_equal_the_literal_ones)];
