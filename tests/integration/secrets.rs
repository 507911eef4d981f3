//! Build secrets and ssh forwarding (`secret`/`ssh` in a `run`, `--secret`, `--ssh`): the
//! RUN that mounts them reads them; nothing else ever holds their bytes: not a layer, the
//! history, a label, the plan, `kiln inspect` or the build's output.

use std::process::{Command, Stdio};

use crate::Case;
use crate::engine::{self, Cleanup, run_image};
use crate::harness::Test;

const TOKEN: &str = "tok-3f9a1c77-never-in-a-layer";
const NPMRC: &str = "//registry.example.com/:_authToken=npm-5b2e-never-in-a-layer";

const MANIFEST: &str = r#"
dockerfile-level "1.2"
allow runs-as-root
registry "kiln-it/secrets"
image app {
    from "kiln-test/busybox:1"
    run "test -n \"$(cat /run/secrets/token)\"" "echo token-read > /token.txt" {
        secret token
    }
    run "grep -q _authToken /root/.npmrc" "echo npmrc-read > /npmrc.txt" {
        secret npmrc target="/root/.npmrc"
    }
    run "test -S \"$SSH_AUTH_SOCK\"" "echo agent-reached > /ssh.txt" {
        ssh
    }
    cmd "cat" "/token.txt" "/npmrc.txt" "/ssh.txt"
}
"#;

/// An ssh agent of the test's own, on a socket in `dir`; killed when dropped.
struct Agent(std::process::Child);

impl Agent {
    fn start(socket: &std::path::Path) -> Self {
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent (openssh-client)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !socket.exists() {
            assert!(std::time::Instant::now() < deadline, "ssh-agent did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self(child)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The image as `docker save` writes it: every layer, its configuration and history.
fn saved(image: &str) -> Vec<u8> {
    let output = Command::new("docker").args(["save", image]).output().expect("docker save");
    assert!(output.status.success(), "docker save {image}: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

fn holds(bytes: &[u8], secret: &str) -> bool {
    bytes.windows(secret.len()).any(|w| w == secret.as_bytes())
}

fn secrets_reach_their_run_and_nothing_else() {
    let Some(_engine) = engine::engine_test() else { return };
    let test = Test::new().manifest(MANIFEST).file("secrets/npmrc", NPMRC);
    let socket = test.path().join("agent.sock");
    let _agent = Agent::start(&socket);
    let npmrc = test.path().join("secrets/npmrc");
    let mut test = test.env("KILN_IT_TOKEN", TOKEN).env("SSH_AUTH_SOCK", &socket.display().to_string());
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let build = test
        .args(&[
            "build",
            "--network",
            "none",
            "--progress",
            "json",
            "--secret",
            "id=token,env=KILN_IT_TOKEN",
            "--secret",
            &format!("id=npmrc,src={}", npmrc.display()),
            "--ssh",
            "default",
        ])
        .run();
    assert_eq!(run_image("kiln-it/secrets/app:latest"), "token-read\nnpmrc-read\nagent-reached\n");

    // Every place kiln or the engine keeps something of the build.
    let saved = saved("kiln-it/secrets/app:latest");
    let history = engine::docker(&["history", "--no-trunc", "kiln-it/secrets/app:latest"]);
    let inspect_engine = engine::docker(&["image", "inspect", "kiln-it/secrets/app:latest"]);
    let inspect = test.args(&["inspect", "app", "--json"]).run().stdout;
    let plan = test.args(&["plan", "--json"]).run().stdout;
    for secret in [TOKEN, NPMRC] {
        assert!(!holds(&saved, secret), "a layer holds the secret");
        for (what, text) in [
            ("history", &history),
            ("image inspect", &inspect_engine),
            ("kiln inspect", &inspect),
            ("plan", &plan),
            ("build output", &(build.stdout.clone() + &build.stderr)),
        ] {
            assert!(!text.contains(secret), "{what} holds the secret");
        }
    }
    // The Dockerfile says where they are mounted, not what they are.
    assert!(
        history.contains("--mount=type=secret,id=token") || history.contains("RUN /bin/sh -c test -n"),
        "{history}"
    );
}

/// A failing RUN that mounts a secret still points at its manifest line; a build that
/// does not give a secret an image mounts is refused before anything runs.
fn a_missing_or_failing_secret_run_points_into_the_manifest() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = "dockerfile-level \"1.2\"\nallow runs-as-root\nregistry \"kiln-it/secret-fails\"\nimage app {\n    from \"kiln-test/busybox:1\"\n    run \"test -s /run/secrets/token\" \"false\" {\n        secret token\n    }\n}\n";
    let mut test = Test::new().manifest(manifest).env("KILN_IT_TOKEN", TOKEN);
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let refused = test.args(&["build", "--network", "none"]).expect(2).run();
    insta::assert_snapshot!("secret_not_given", refused.stderr);
    let failed = test
        .args(&[
            "build",
            "--network",
            "none",
            "--progress",
            "plain",
            "--secret",
            "id=token,env=KILN_IT_TOKEN",
        ])
        .expect(1)
        .run();
    assert!(failed.stderr.contains("kiln.kdl:6:5"), "{}", failed.stderr);
    assert!(!failed.stderr.contains(TOKEN));
}

/// A private package index: pip's index URL and npm's `.npmrc` (tokens in both) come
/// from secrets, read by the shell or npm from the mount; the base has neither tool, so
/// stand-ins check what they are given.
fn package_indexes_with_credentials_stay_in_secrets() {
    let Some(_engine) = engine::engine_test() else { return };
    let manifest = r##"
dockerfile-level "1.2"
allow runs-as-root
registry "kiln-it/index-secrets"
image app {
    from "kiln-test/busybox:1"
    run #"printf '#!/bin/sh\nfor a; do test "$prev" = --index-url && test "$a" = "$(cat /run/secrets/pypi)" && echo pip-ok > /pip.txt; prev=$a; done\ntest -f /pip.txt\n' > /bin/pip"# #"printf '#!/bin/sh\nfor a; do f=$a; done; grep -q _authToken "$f" && echo npm-ok > /npm.txt\n' > /bin/npm"# "chmod +x /bin/pip /bin/npm"
    workdir "/app"
    pip flask index-url-secret=pypi
    npm npmrc-secret=npmrc
    cmd "cat" "/pip.txt" "/npm.txt"
}
"##;
    let test = Test::new()
        .manifest(manifest)
        .file("package.json", "{}")
        .file("package-lock.json", "{}")
        .file("secrets/npmrc", NPMRC);
    let npmrc = test.path().join("secrets/npmrc");
    let mut test = test.env("KILN_IT_INDEX", &format!("https://user:{TOKEN}@pypi.example.com/simple"));
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    test.args(&["emit"]).run();
    insta::assert_snapshot!("package_index_secrets", test.read("dockerfiles/app.Dockerfile"));
    let build = test
        .args(&[
            "build",
            "--network",
            "none",
            "--progress",
            "plain",
            "--secret",
            "id=pypi,env=KILN_IT_INDEX",
            "--secret",
            &format!("id=npmrc,src={}", npmrc.display()),
        ])
        .run();
    assert_eq!(run_image("kiln-it/index-secrets/app:latest"), "pip-ok\nnpm-ok\n");
    let saved = saved("kiln-it/index-secrets/app:latest");
    for secret in [TOKEN, "npm-5b2e"] {
        assert!(!holds(&saved, secret), "a layer holds {secret}");
        assert!(!build.stderr.contains(secret) && !build.stdout.contains(secret));
    }
}

pub(crate) const TESTS: &[Case] = &[
    Case::engine(
        "package_indexes_with_credentials_stay_in_secrets",
        package_indexes_with_credentials_stay_in_secrets,
    ),
    Case::engine("secrets_reach_their_run_and_nothing_else", secrets_reach_their_run_and_nothing_else),
    Case::engine(
        "a_missing_or_failing_secret_run_points_into_the_manifest",
        a_missing_or_failing_secret_run_points_into_the_manifest,
    ),
];
