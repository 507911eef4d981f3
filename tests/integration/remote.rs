//! Engines beyond the local socket: a `dockerd` on a loopback TCP port that only talks
//! TLS with client certificates, reached as the docker CLI reaches it
//! (`DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`, `DOCKER_HOST` or `--host`); and the engine
//! behind an `sshd` on loopback, through `ssh ... docker system dial-stdio`.

use crate::Case;
use crate::engine::{self, BUSYBOX, Cleanup, SecondEngine};
use crate::harness::Test;

const MANIFEST: &str = "allow runs-as-root\nregistry \"kiln-it/tls\"\nimage app {\n    from \"kiln-test/busybox:1\"\n    run \"echo over tls > /tls.txt\"\n    cmd \"cat\" \"/tls.txt\"\n}\n";

/// A build that mounts a secret: kiln's own session and build call, over the same
/// connection kinds.
const SECRET_MANIFEST: &str = "dockerfile-level \"1.2\"\nallow runs-as-root\nregistry \"kiln-it/remote-secret\"\nimage app {\n    from \"kiln-test/busybox:1\"\n    run \"cp /run/secrets/token /got.txt\" {\n        secret token\n    }\n    cmd \"cat\" \"/got.txt\"\n}\n";

/// Builds `SECRET_MANIFEST` with `env` and `args`, and returns what the image says.
fn build_with_a_secret(env: &[(&str, &str)], args: &[&str], run: impl Fn(&[&str]) -> String) -> String {
    let mut test = Test::new().manifest(SECRET_MANIFEST).env("KILN_IT_TOKEN", "remote-token");
    for (key, value) in env {
        test = test.env(key, value);
    }
    // Images on the local engine (through ssh) go with the test; a second engine's go
    // with it.
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let mut all =
        vec!["build", "--network", "none", "--progress", "plain", "--secret", "id=token,env=KILN_IT_TOKEN"];
    all.extend_from_slice(args);
    let output = test.args(&all).run_unchecked();
    assert_eq!(output.status, 0, "{}", output.stderr);
    run(&["run", "--rm", "--network", "none", "kiln-it/remote-secret/app:latest"])
}

fn builds_through_a_tls_engine() {
    let Some(_engine) = engine::engine_test() else { return };
    assert_eq!(BUSYBOX, "kiln-test/busybox:1");
    let tls = SecondEngine::start_tls();
    let certs = tls.tls.clone().expect("TLS material");
    let certs = certs.display().to_string();

    // From the environment, as `docker` itself is configured.
    let mut test = Test::new()
        .manifest(MANIFEST)
        .env("DOCKER_HOST", &tls.host)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &certs);
    let output = test.args(&["build", "--network", "none", "--progress", "plain"]).run_unchecked();
    assert_eq!(output.status, 0, "{}", output.stderr);
    let (ok, out) = tls.docker_try(&["run", "--rm", "--network", "none", "kiln-it/tls/app:latest"]);
    assert!(ok && out == "over tls\n", "{out}");
    // The image commands talk to it the same way.
    let output = test.args(&["images", "--json"]).run();
    assert!(output.stdout.contains("kiln-it/tls/app"), "{}", output.stdout);

    // `--host` with the same TLS settings.
    let output = Test::new()
        .manifest(MANIFEST)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &certs)
        .args(&["build", "--network", "none", "--progress", "plain", "--host", &tls.host])
        .run_unchecked();
    assert_eq!(output.status, 0, "{}", output.stderr);
    let said = build_with_a_secret(
        &[("DOCKER_HOST", &tls.host), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", &certs)],
        &[],
        |args| {
            let (ok, out) = tls.docker_try(args);
            assert!(ok, "{out}");
            out
        },
    );
    assert_eq!(said, "remote-token");
}

/// A CA that did not sign the engine's certificate, plain TCP to a TLS port, missing
/// certificates: each is one clear line naming the endpoint and what to check.
fn a_tls_engine_refuses_what_it_should() {
    let Some(_engine) = engine::engine_test() else { return };
    let tls = SecondEngine::start_tls();
    let certs = tls.tls.clone().expect("TLS material");
    let other = tempfile::tempdir().expect("temp dir");
    kiln_testkit::make_ca(&other.path().join("ca"));
    std::fs::copy(other.path().join("ca/ca.pem"), other.path().join("ca.pem")).expect("ca.pem");
    for file in ["cert.pem", "key.pem"] {
        std::fs::copy(certs.join(file), other.path().join(file)).expect("client files");
    }
    let build = |env: &[(&str, &str)]| {
        let mut test = Test::new().manifest(MANIFEST).env("DOCKER_HOST", &tls.host);
        for (key, value) in env {
            test = test.env(key, value);
        }
        test.args(&["build", "--network", "none", "--progress", "plain"]).run_unchecked()
    };
    let wrong_ca =
        build(&[("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", &other.path().display().to_string())]);
    assert_eq!(wrong_ca.status, 1, "{}", wrong_ca.stderr);
    assert!(
        wrong_ca.stderr.contains(&tls.host) && wrong_ca.stderr.contains("not signed by the CA in ca.pem"),
        "{}",
        wrong_ca.stderr
    );
    let plain = build(&[]);
    assert_eq!(plain.status, 1, "{}", plain.stderr);
    assert!(
        plain.stderr.contains(&tls.host) && plain.stderr.contains("set DOCKER_TLS_VERIFY=1"),
        "{}",
        plain.stderr
    );
    let empty = tempfile::tempdir().expect("temp dir");
    let missing =
        build(&[("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", &empty.path().display().to_string())]);
    assert_ne!(missing.status, 0, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("ca.pem` is missing") && missing.stderr.contains("DOCKER_CERT_PATH"),
        "{}",
        missing.stderr
    );
    let (_, images) = tls.docker_try(&["images", "-q", "kiln-it/tls/app"]);
    assert!(images.trim().is_empty(), "a refused connection built something: {images}");
}

/// Through ssh, to the engine of the machine sshd runs on (here: this one).
fn builds_through_ssh() {
    let Some(_engine) = engine::engine_test() else { return };
    let sshd = kiln_testkit::SshServer::start();
    let manifest = MANIFEST.replace("kiln-it/tls", "kiln-it/ssh").replace("over tls", "over ssh");
    let mut test = Test::new().manifest(&manifest).env("KILN_SSH_COMMAND", &sshd.ssh_command);
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let output = test
        .args(&["build", "--network", "none", "--progress", "plain", "--host", &sshd.host])
        .run_unchecked();
    assert_eq!(output.status, 0, "{}", output.stderr);
    assert_eq!(engine::run_image("kiln-it/ssh/app:latest"), "over ssh\n");
    let said = build_with_a_secret(
        &[("KILN_SSH_COMMAND", &sshd.ssh_command)],
        &["--host", &sshd.host],
        engine::docker,
    );
    assert_eq!(said, "remote-token");
    // A key the server does not accept: what ssh said, with the endpoint.
    let output = Test::new()
        .manifest(&manifest)
        .env("KILN_SSH_COMMAND", &sshd.stranger_command())
        .args(&["images", "--host", &sshd.host])
        .run_unchecked();
    assert_eq!(output.status, 1, "{}", output.stderr);
    assert!(
        output.stderr.contains(&sshd.host)
            && output.stderr.contains("ssh: ")
            && output.stderr.contains("Permission denied"),
        "{}",
        output.stderr
    );
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::engine("builds_through_a_tls_engine", builds_through_a_tls_engine),
    Case::engine("a_tls_engine_refuses_what_it_should", a_tls_engine_refuses_what_it_should),
    Case::engine("builds_through_ssh", builds_through_ssh),
];
