//! The command line itself: help, usage errors, exit codes, finding the manifest.

use crate::Case;
use crate::harness::Test;

const MINIMAL: &str = "allow runs-as-root\nimage app {\n    from \"alpine:3.20\"\n    cmd \"true\"\n}\n";

fn help_text() {
    let output = Test::new().args(&["--help"]).run();
    insta::assert_snapshot!("help", output.stdout);
    for command in [
        "check", "emit", "plan", "graph", "build", "lock", "pull", "images", "tag", "push", "rmi", "clean",
        "prune", "history", "inspect", "explain", "manifest", "schema",
    ] {
        let output = Test::new().args(&[command, "--help"]).run();
        insta::assert_snapshot!(format!("help_{command}"), output.stdout);
    }
}

fn finds_the_manifest_in_a_parent_folder() {
    let mut test = Test::new().manifest(MINIMAL).dir("sub/deeper").current_dir("sub/deeper");
    test.args(&["check"]).run();
}

fn missing_manifest_is_a_usage_error() {
    let output = Test::new().args(&["check"]).expect(2).run();
    assert!(output.stderr().contains("no `kiln.kdl` in `[TMP]` or any parent folder"), "{}", output.stderr());
    let output = Test::new().args(&["-f", "nope.kdl", "check"]).expect(2).run();
    insta::assert_snapshot!(output.stderr(), @"error: manifest `nope.kdl` does not exist\n");
}

fn file_flag_picks_another_manifest() {
    let mut test = Test::new().file("deploy/other.kdl", MINIMAL);
    test.args(&["-f", "deploy/other.kdl", "plan", "--json"]).run();
}

fn unknown_command_line_values_exit_2() {
    Test::new().manifest(MINIMAL).args(&["frobnicate"]).expect(2).run();
    Test::new().manifest(MINIMAL).args(&["graph", "--format", "png"]).expect(2).run();
    let output = Test::new().manifest(MINIMAL).args(&["--level", "2.0", "check"]).expect(2).run();
    insta::assert_snapshot!(output.stderr(), @r"
    error: invalid value '2.0' for '--level <LEVEL>': use one of `classic`, `1.2`, `1.4`

    For more information, try '--help'.
    ");
    let output = Test::new().manifest(MINIMAL).args(&["--set", "VERSON=2", "check"]).expect(2).run();
    insta::assert_snapshot!(output.stderr(), @"error: `--set VERSON`: the manifest declares no variable `VERSON`\n");
    let output = Test::new().manifest(MINIMAL).args(&["--set", "novalue", "check"]).expect(2).run();
    insta::assert_snapshot!(output.stderr(), @r"
    error: invalid value 'novalue' for '--set <NAME=VALUE>': needs the form `NAME=VALUE`

    For more information, try '--help'.
    ");
    // An unknown option says what exists, not clap's `-- --squash`, which fails too.
    let output = Test::new().manifest(MINIMAL).args(&["build", "--squash"]).expect(2).run();
    insta::assert_snapshot!(output.stderr(), @"
    error: unknown option `--squash`

    hint: kiln has no `--squash` here; `kiln build --help` lists the options
    ");
    let output = Test::new().manifest(MINIMAL).args(&["build", "--no-cach"]).expect(2).run();
    insta::assert_snapshot!(output.stderr(), @"
    error: unknown option `--no-cach`

    hint: did you mean `--no-cache`? `kiln build --help` lists the options
    ");
    let output = Test::new().manifest(MINIMAL).args(&["plan", "ap"]).expect(2).run();
    insta::assert_snapshot!(output.stderr(), @r"
    error: no image or group named `ap`

    hint: did you mean `app`?
    ");
}

fn variables_are_overridden_by_environment_then_command_line() {
    let manifest = "var VERSION \"1.0\"\nimage app {\n    from \"alpine:3.20\"\n    tags \"{VERSION}\"\n}\n";
    let plan =
        |test: &mut Test| -> serde_json::Value { serde_json::from_str(&test.run().stdout).expect("json") };
    let mut test = Test::new().manifest(manifest);
    test.args(&["plan", "--json"]);
    assert_eq!(plan(&mut test)["images"][0]["tags"][0], "app:1.0");
    let mut test = Test::new().manifest(manifest).env("KILN_VAR_VERSION", "2.0");
    test.args(&["plan", "--json"]);
    assert_eq!(plan(&mut test)["images"][0]["tags"][0], "app:2.0");
    let mut test = Test::new().manifest(manifest).env("KILN_VAR_VERSION", "2.0");
    test.args(&["--set", "VERSION=3.0", "plan", "--json"]);
    assert_eq!(plan(&mut test)["images"][0]["tags"][0], "app:3.0");
}

fn check_json_lists_diagnostics() {
    let output = Test::new()
        .manifest("image app {\n    from image=nope\n}\n")
        .args(&["check", "--json"])
        .expect(2)
        .run();
    insta::assert_snapshot!(output.stdout);
}

fn plan_selects_images_with_their_dependencies() {
    let manifest = r#"
image base { from "alpine:3.20" }
image api { from image=base }
image web { from "nginx:1.27" }
image worker { from image=api }
group backend worker
"#;
    let mut test = Test::new().manifest(manifest);
    test.args(&["plan", "--json", "backend"]);
    let plan: serde_json::Value = serde_json::from_str(&test.run().stdout).expect("json");
    let names: Vec<&str> = plan["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["base", "api", "worker"]);
}

fn broken_pipe_is_not_an_error() {
    // `kiln graph | head -1`: kiln must not panic when stdout closes early.
    let test = Test::new().manifest(MINIMAL);
    let mut child = crate::harness::kiln_command()
        .args(["graph", "--format", "json"])
        .current_dir(test.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let status = child.wait().expect("wait");
    assert!(status.code().is_some(), "killed by a signal");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr).expect("read");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// This module's tests, for the harness (`main.rs`).
/// A file the build would copy is missing, or reached through a link out of the
/// context: `kiln build` refuses before it builds anything (no engine is needed to
/// see this).
fn build_refuses_missing_context_files_before_starting() {
    let manifest = r#"
allow runs-as-root
image app {
    from "alpine:3.20"
    workdir "/app"
    copy "nope.txt" "./"
    copy "outside/passwd" "./"
}
image other {
    from "alpine:3.20"
}
"#;
    let mut test = Test::new().manifest(manifest);
    std::os::unix::fs::symlink("/etc", test.path().join("outside")).expect("symlink");
    let output = test.args(&["build", "app"]).expect(1).run();
    insta::assert_snapshot!(output.stderr(), @r#"
      ⚠ warning[missing-file]: `nope.txt` does not exist in the build context
       ╭─[kiln.kdl:6:10]
     5 │     workdir "/app"
     6 │     copy "nope.txt" "./"
       ·          ─────┬────
       ·               ╰── not found
     7 │     copy "outside/passwd" "./"
       ╰────
      ⚠ warning[missing-file]: `outside/passwd` leads outside the build context
      │ through a symbolic link
       ╭─[kiln.kdl:7:10]
     6 │     copy "nope.txt" "./"
     7 │     copy "outside/passwd" "./"
       ·          ────────┬───────
       ·                  ╰── the builder does not follow links out of the context
     8 │ }
       ╰────
      help: copy the file into the context, or widen the image's `context`
    error: cannot build: 2 copied files are not in the build context
      image `app`, at kiln.kdl:6:10
      image `app`, at kiln.kdl:7:10

    hint: add what is missing to the context, or fix the paths (see the `missing-file` warnings)
    "#);
    // Images that copy nothing missing still build (here: nothing to refuse).
    let plan = test.args(&["build", "other", "--dry-run"]).run();
    assert!(plan.stdout.contains("other"), "{}", plan.stdout);
}

/// `kiln completions`: a script for each shell; bash's, sourced in a real bash,
/// completes commands, flags, and the image and group names of the manifest.
fn shell_completions_and_the_manual_page() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = Test::new().args(&["completions", shell]).run();
        assert!(output.stdout.contains("build") && output.stdout.len() > 1000, "{shell}");
    }
    let manifest = "allow runs-as-root\nimage api {\n    from \"alpine:3.20\"\n}\nimage app {\n    from \"alpine:3.20\"\n}\ngroup all api app\n";
    let test = Test::new().manifest(manifest);
    let bin =
        std::path::Path::new(env!("CARGO_BIN_EXE_kiln")).parent().expect("bin folder").display().to_string();
    let complete = |words: &str| -> String {
        let script = format!(
            "source <(kiln completions bash); COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _kiln_with_names kiln \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; echo \"${{COMPREPLY[*]}}\""
        );
        let output = std::process::Command::new("bash")
            .args(["-c", &script])
            .current_dir(test.path())
            .env("PATH", format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()))
            .output()
            .expect("bash");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    assert_eq!(complete("kiln bui"), "build");
    assert_eq!(complete("kiln build a"), "api app all");
    assert_eq!(complete("kiln push al"), "all");
    assert_eq!(complete("kiln build --prog"), "--progress");
    let man = Test::new().args(&["man"]).run();
    assert!(man.stdout.contains(".TH kiln 1") && man.stdout.contains("completions"), "{}", man.stdout);
}

pub(crate) const TESTS: &[Case] = &[
    Case::plain(
        "build_refuses_missing_context_files_before_starting",
        build_refuses_missing_context_files_before_starting,
    ),
    Case::plain("help_text", help_text),
    Case::plain("shell_completions_and_the_manual_page", shell_completions_and_the_manual_page),
    Case::plain("finds_the_manifest_in_a_parent_folder", finds_the_manifest_in_a_parent_folder),
    Case::plain("missing_manifest_is_a_usage_error", missing_manifest_is_a_usage_error),
    Case::plain("file_flag_picks_another_manifest", file_flag_picks_another_manifest),
    Case::plain("unknown_command_line_values_exit_2", unknown_command_line_values_exit_2),
    Case::plain(
        "variables_are_overridden_by_environment_then_command_line",
        variables_are_overridden_by_environment_then_command_line,
    ),
    Case::plain("check_json_lists_diagnostics", check_json_lists_diagnostics),
    Case::plain("plan_selects_images_with_their_dependencies", plan_selects_images_with_their_dependencies),
    Case::plain("broken_pipe_is_not_an_error", broken_pipe_is_not_an_error),
];
