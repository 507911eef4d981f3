//! The compile benchmark: generates monorepos of 1,000 and 10,000 images (10 images per
//! included file) and times `kiln emit` on them, cold (into an empty folder) and warm
//! (every file up to date), and `kiln check`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{kiln_binary, ms, time};

const IMAGES_PER_FILE: usize = 10;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Monorepo sizes, in images
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    sizes: Vec<usize>,

    /// Runs per measure (the median is shown)
    #[arg(long, default_value_t = 5)]
    runs: usize,

    /// Where to generate [default: the system's temporary folder]; `/dev/shm` takes the
    /// disk out of the measure (creating a file costs ~0.7 ms on some disks)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// Only write a monorepo of SIZE images into DIR, to profile kiln on it by hand
    #[arg(long, num_args = 2, value_names = ["DIR", "SIZE"])]
    generate: Option<Vec<String>>,
}

pub(crate) fn run_bench(args: &Args) {
    if let Some(generate) = &args.generate {
        let dir = PathBuf::from(&generate[0]);
        let Ok(size) = generate[1].parse() else {
            eprintln!("error: `{}` is not a number of images", generate[1]);
            std::process::exit(2);
        };
        std::fs::create_dir_all(&dir).expect("create folder");
        let files = generate_monorepo(&dir, size);
        println!("wrote {size} images in {files} files to {}", dir.display());
        return;
    }
    let (sizes, runs, base) = (&args.sizes, args.runs.max(1), &args.dir);
    let kiln = kiln_binary();
    println!("kiln: {}", kiln.display());
    println!("median of {runs} runs; cold = no generated files yet, warm = all up to date");
    println!("{:>8} {:>7} {:>12} {:>12} {:>12}", "images", "files", "emit (cold)", "emit (warm)", "check");
    let mut results = Vec::new();
    for &size in sizes {
        let mut builder = tempfile::Builder::new();
        builder.prefix("kiln-bench-");
        let dir = match &base {
            Some(base) => builder.tempdir_in(base),
            None => builder.tempdir(),
        }
        .expect("temp dir");
        let files = generate_monorepo(dir.path(), size);
        // Each cold run writes into a folder of its own, and pending writes are flushed
        // before it (not timed), so that no run pays for the previous run's files.
        let round = std::cell::Cell::new(0);
        let cold = time(
            runs,
            || {
                let _ = Command::new("sync").status();
            },
            || {
                round.set(round.get() + 1);
                run(&kiln, dir.path(), &["emit", "-q", "-o", &format!("cold-{}", round.get())]);
            },
        );
        let warm = time(runs, || {}, || run(&kiln, dir.path(), &["emit", "-q"]));
        let check = time(runs, || {}, || run(&kiln, dir.path(), &["check", "-q"]));
        println!("{size:>8} {files:>7} {:>12} {:>12} {:>12}", ms(cold), ms(warm), ms(check));
        results.push((size, cold));
    }
    if let [(small, small_time), .., (large, large_time)] = results.as_slice() {
        #[allow(clippy::cast_precision_loss)]
        let growth = large_time.as_secs_f64() / small_time.as_secs_f64() / (*large as f64 / *small as f64);
        println!("\ncold emit time per image, {large} vs {small} images: {growth:.2}x (1.00 = linear)");
    }
}

fn run(kiln: &Path, dir: &Path, args: &[&str]) {
    let status = Command::new(kiln).args(args).current_dir(dir).status().expect("run kiln");
    assert!(status.success(), "kiln {args:?} failed in {}", dir.display());
}

/// Writes a monorepo of `images` images, `IMAGES_PER_FILE` per included file, with the
/// shapes real ones have: shared bases, templates, multi-stage builds, cross-image
/// `from` and `copy`, variants. Returns the number of manifest files.
fn generate_monorepo(root: &Path, images: usize) -> usize {
    let files = images.div_ceil(IMAGES_PER_FILE);
    let mut manifest = String::from(
        r#"registry "registry.example.com/bench"
var PYTHON "3.11"
var VERSION "1.0.0"
include "services/*/kiln.kdl"

template python-service {
    tags latest "{VERSION}"
    ignore "**/__pycache__" "**/*.pyc" "tests/"
    stage deps {
        from "python:{PYTHON}-slim"
        workdir "/app"
        pip requirements="requirements.txt" user=#true
    }
    stage runtime {
        from "python:{PYTHON}-slim"
        workdir "/app"
        copy "/root/.local" "/root/.local" from=deps
        env PATH="/root/.local/bin:$PATH"
    }
}
"#,
    );
    manifest.push('\n');
    std::fs::write(root.join("kiln.kdl"), manifest).expect("write root");
    let mut index = 0;
    for file in 0..files {
        let dir = root.join(format!("services/s{file:05}"));
        std::fs::create_dir_all(dir.join("app")).expect("create service");
        std::fs::write(dir.join("requirements.txt"), "flask==3.0.3\n").expect("write requirements");
        std::fs::write(dir.join("app/main.py"), "print('hi')\n").expect("write app");
        let mut text = String::new();
        for slot in 0..IMAGES_PER_FILE {
            if index == images {
                break;
            }
            let name = format!("img{index:05}");
            match slot {
                // A base for the file's other images.
                0 => {
                    let _ = write!(
                        text,
                        "image {name} {{\n    tags latest \"{{VERSION}}\"\n    from \"debian:bookworm-slim\"\n    apt curl ca-certificates\n    user app uid=10001\n}}\n\n"
                    );
                }
                // Builds on the file's base and copies from the previous file's tool.
                1 if file > 0 => {
                    let tool = format!("img{:05}", (file - 1) * IMAGES_PER_FILE + 2);
                    let base = format!("img{:05}", file * IMAGES_PER_FILE);
                    let _ = write!(
                        text,
                        "image {name} {{\n    from image={base}\n    workdir \"/app\"\n    copy \"/usr/local/bin/tool\" \"/usr/local/bin/\" image={tool}\n    copy \"app\" \"./app\"\n    cmd python \"app/main.py\"\n}}\n\n"
                    );
                }
                // A compiled tool, multi-stage.
                2 => {
                    let _ = write!(
                        text,
                        "image {name} {{\n    stage build {{\n        from \"golang:1.22\"\n        workdir \"/src\"\n        copy \"app\" \"./\"\n        run \"go build -o /out/tool .\"\n    }}\n    stage release {{\n        from \"scratch\"\n        copy \"/out/tool\" \"/usr/local/bin/tool\" from=build\n        entrypoint \"/usr/local/bin/tool\"\n    }}\n}}\n\n"
                    );
                }
                // Services from the template, one with a variant.
                _ => {
                    let variant = if slot == 3 {
                        "    variant debug {\n        env LOG_LEVEL=debug\n    }\n"
                    } else {
                        ""
                    };
                    let _ = write!(
                        text,
                        "image {name} {{\n    extends python-service\n    stage runtime {{\n        copy \"app\" \"./app\"\n        expose 8000\n        cmd python \"app/main.py\"\n    }}\n{variant}}}\n\n"
                    );
                }
            }
            index += 1;
        }
        std::fs::write(dir.join("kiln.kdl"), text).expect("write manifest");
    }
    files + 1
}
