//! `kiln build --report`: the page of a real build, opened in headless Chromium (Debian's
//! `chromium`), renders a timeline bar and a table row for every image, the critical
//! path and the failure; the SVG alone is a picture of its own.

use std::process::Command;

use crate::Case;
use crate::engine::{self, Cleanup};
use crate::harness::Test;

const MANIFEST: &str = r#"
allow runs-as-root
registry "kiln-it/report"
image base {
    from "kiln-test/busybox:1"
    run "echo base > /base.txt"
}
image api {
    from image=base
    run "sleep 1" "echo api > /api.txt"
}
image worker {
    from image=base
    run "echo worker > /worker.txt"
}
image broken {
    from image=base
    run "test -f /nope"
}
image after-broken {
    from image=broken
    run "true"
}
"#;

/// Headless Chromium (Debian's `chromium`; the test is ignored without it, CI installs it).
const CHROMIUM: &str = "chromium";

fn the_report_renders_the_images_of_a_real_build() {
    let Some(_engine) = engine::engine_test() else { return };
    let mut test = Test::new().manifest(MANIFEST);
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let out = tempfile::tempdir().expect("temp dir");
    let (html, svg, png) =
        (out.path().join("build.html"), out.path().join("build.svg"), out.path().join("build.png"));
    let build = test
        .args(&[
            "build",
            "--network",
            "none",
            "-j",
            "2",
            "--progress",
            "plain",
            "--report",
            &html.display().to_string(),
        ])
        .expect(1)
        .run();
    assert!(build.stderr.contains("report: "), "{}", build.stderr);
    let page = std::fs::read_to_string(&html).expect("the report");
    for fetch in ["<script", "src=", "href=", "url(", "@import"] {
        assert!(!page.contains(fetch), "the page would fetch something: {fetch}");
    }

    let headless = |args: &[&str]| {
        let output = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1200,600",
            ])
            .args(args)
            .arg(format!("file://{}", html.display()))
            .output()
            .expect("run chromium");
        assert!(output.status.success(), "chromium: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // The document as Chromium parsed it: every image in the timeline and the table.
    let dom = headless(&["--dump-dom"]);
    for image in ["base", "api", "worker", "broken"] {
        assert!(dom.contains(&format!("\">{image}</text>")), "no bar for {image}");
        assert!(dom.contains(&format!("<tr><td>{image}")), "no row for {image}");
    }
    assert!(
        dom.contains("<td class=\"failed\">failed</td>") && dom.contains("skipped: `broken` failed"),
        "{dom}"
    );
    assert!(dom.contains("critical path: base → "), "{dom}");
    // And drawn: a picture with something on it.
    headless(&[&format!("--screenshot={}", png.display())]);
    let picture = std::fs::read(&png).expect("a screenshot");
    assert!(picture.starts_with(b"\x89PNG") && picture.len() > 10_000, "{} bytes", picture.len());

    // `.svg`: the timeline alone, a standalone picture.
    test.args(&["build", "--network", "none", "--progress", "plain", "--report", &svg.display().to_string()])
        .expect(1)
        .run();
    let picture = std::fs::read_to_string(&svg).expect("the svg");
    assert!(picture.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{picture}");
    assert!(picture.contains("up to date (no slot)"), "the second run found the images up to date");
    let refused = test.args(&["build", "--report", "build.pdf"]).expect(2).run();
    assert!(refused.stderr.contains("a report is a `.html` page or an `.svg` picture"), "{}", refused.stderr);
}

pub(crate) const TESTS: &[Case] = &[Case::engine_and_tools(
    "the_report_renders_the_images_of_a_real_build",
    the_report_renders_the_images_of_a_real_build,
    &[CHROMIUM],
)];
