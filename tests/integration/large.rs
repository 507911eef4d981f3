//! Contexts of real size: 5,000 files and more, paths past 200 characters, names with
//! blanks, quotes and non-ASCII letters, symbolic links, ignored folders. Each is built
//! with both builders, and with a secret (BuildKit), and the image's copy of the context
//! is compared with the folder, file by file. What the image records of its inputs stays
//! a few KB whatever the context.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::Case;
use crate::engine::{self, Cleanup};
use crate::harness::Test;
use crate::import::files as image_files;

/// Files in the context (folders and links come on top).
const FILES: usize = 5_000;

/// Files of a context of about 1,500 entries (with its 920 folders): where builds
/// failed before records were bounded (a hash per entry in a label, in the build call's
/// URL, past its 64 KiB: "uri too long"; past 2,000 entries they were dropped).
const FAILED_BEFORE: usize = 600;

/// What the record of an image's inputs (its `dev.kiln.inputs` label) may weigh.
const MAX_RECORD: usize = 4096;

/// What the request line and headers of any call kiln makes may weigh (the engine's
/// HTTP stack refuses a URL past 64 KiB).
const MAX_REQUEST_HEAD: usize = 8192;

/// A socket between kiln and the engine that notes the head (request line and headers)
/// of every HTTP request that goes through, and passes everything on as it is.
struct RequestLog {
    dir: tempfile::TempDir,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RequestLog {
    fn start() -> Self {
        let engine = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|host| host.strip_prefix("unix://").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = UnixListener::bind(dir.path().join("engine.sock")).expect("bind");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let noted = Arc::clone(&heads);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(upstream) = UnixStream::connect(&engine) else { return };
                let noted = Arc::clone(&noted);
                let (client_out, upstream_in) =
                    (client.try_clone().expect("clone"), upstream.try_clone().expect("clone"));
                std::thread::spawn(move || pipe(upstream_in, client_out));
                std::thread::spawn(move || forward_requests(client, upstream, &noted));
            }
        });
        Self { dir, heads }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("engine.sock").display())
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("lock").clone()
    }
}

fn pipe(mut from: UnixStream, mut to: UnixStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// Reads requests from the client one after the other (heads noted, bodies passed on
/// by their length or their chunks), until an upgrade, after which bytes just flow.
fn forward_requests(client: UnixStream, mut upstream: UnixStream, noted: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client);
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        noted.lock().expect("lock").push(head.clone());
        if upstream.write_all(head.as_bytes()).is_err() {
            return;
        }
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                key.eq_ignore_ascii_case(name).then(|| value.trim().to_ascii_lowercase())
            })
        };
        if header("upgrade").is_some() {
            let _ = std::io::copy(&mut reader, &mut upstream);
            return;
        }
        if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut size_line = String::new();
                if reader.read_line(&mut size_line).unwrap_or(0) == 0 {
                    return;
                }
                let size =
                    usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                if reader.read_exact(&mut chunk).is_err()
                    || upstream.write_all(size_line.as_bytes()).is_err()
                    || upstream.write_all(&chunk).is_err()
                {
                    return;
                }
                if size == 0 {
                    break;
                }
            }
        } else if let Some(length) = header("content-length").and_then(|v| v.parse::<u64>().ok())
            && std::io::copy(&mut (&mut reader).take(length), &mut upstream).is_err()
        {
            return;
        }
    }
}

/// A path segment of 60 characters, so that four of them make paths past 240.
fn segment(index: usize) -> String {
    format!("{:-<56}{index:04}", format!("folder {index} ‘é’ #{index}"))
}

/// Writes the context: `files` files under 40 top-level folders, three levels deep, of
/// sizes from 0 to 64 KiB, plus links, and what the ignore rules leave out. Returns what
/// the image's `/ctx` must hold: path → description (as `import::files` describes them).
fn write_context(root: &Path, files: usize) -> BTreeMap<String, String> {
    let mut expected = BTreeMap::new();
    for index in 0..files {
        let dir = format!("{}/{}/{}", segment(index % 40), segment(index % 7), segment(index % 3));
        let name = match index % 5 {
            0 => format!("plain-{index}.txt"),
            1 => format!("with blank {index}.txt"),
            2 => format!("quote's \"{index}\".md"),
            3 => format!("ünïcødé-{index}.rs"),
            _ => format!("$dollar-{index}"),
        };
        let path = format!("{dir}/{name}");
        let size = (index * 7919) % 65_536 * usize::from(index % 11 != 0);
        let content: Vec<u8> =
            (0..size).map(|i| u8::try_from((i * 31 + index) % 256).expect("a byte")).collect();
        let file = root.join(&path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, &content).expect("write");
        expected.insert(format!("ctx/{path}"), content);
    }
    // What the manifest's ignore rules leave out: 2,000 more files.
    for index in 0..2_000 {
        let path = root.join(segment(index % 40)).join("node_modules").join(format!("dep-{index}.js"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, "ignored").expect("write");
        std::fs::write(root.join(segment(index % 40)).join(format!("trace-{index}.log")), "ignored")
            .expect("write");
    }
    let mut expected: BTreeMap<String, String> =
        expected.into_iter().map(|(path, content)| (path, describe_file(&content))).collect();
    // Links, relative, to a file and to a folder, and one that points nowhere.
    for (index, target) in
        [segment(1), format!("{}/{}", segment(2), segment(2)), "missing".to_owned()].iter().enumerate()
    {
        let link = format!("link-{index}");
        std::os::unix::fs::symlink(target, root.join(&link)).expect("symlink");
        expected.insert(format!("ctx/{link}"), format!("Symlink 777 0:0 {target}  (0 bytes)"));
    }
    expected
}

/// A regular file as `import::files` describes it (root-owned, mode 644 as written).
fn describe_file(content: &[u8]) -> String {
    format!(
        "Regular 644 0:0  {} ({} bytes)",
        String::from_utf8_lossy(content).chars().take(200).collect::<String>(),
        content.len()
    )
}

fn manifest(registry: &str, secret: bool) -> String {
    let run = if secret {
        "    run \"test -s /run/secrets/token\" \"echo secret-read > /secret.txt\" {\n        secret token\n    }\n"
    } else {
        ""
    };
    format!(
        "dockerfile-level \"1.2\"\nallow runs-as-root\nregistry \"{registry}\"\nimage big {{\n    from \"{busybox}\"\n    ignore \"**/node_modules\" \"**/*.log\"\n{run}    copy \".\" \"/ctx\"\n}}\n",
        busybox = engine::BUSYBOX
    )
}

/// Builds a context of `files` files with `builder`, with a secret or not, and compares
/// `/ctx`.
fn build_and_compare(builder: &str, secret: bool, files: usize) {
    let _engine = engine::engine_test();
    let registry = format!("kiln-it/large-{builder}-{files}{}", if secret { "-secret" } else { "" });
    let requests = RequestLog::start();
    let mut test = Test::new().manifest(&manifest(&registry, secret)).env("DOCKER_HOST", &requests.host());
    let expected = write_context(test.path(), files);
    let outside = tempfile::tempdir().expect("temp dir");
    let token = outside.path().join("token");
    std::fs::write(&token, "s3cr3t").expect("write");
    let secret_flag = format!("id=token,src={}", token.display());
    let _cleanup = Cleanup::new(&test.path().join("kiln.kdl"));
    let mut args = vec!["build", "--network", "none", "--builder", builder, "--progress", "plain", "-q"];
    if secret {
        args.extend(["--secret", &secret_flag]);
    }
    test.args(&args).run();
    let image = format!("{registry}/big:latest");
    let found: BTreeMap<String, String> = image_files(&image)
        .into_iter()
        .filter(|(path, _)| path.starts_with("ctx/"))
        .filter(|(_, description)| !description.starts_with("Directory"))
        .collect();
    let missing: Vec<&String> = expected.keys().filter(|p| !found.contains_key(*p)).take(5).collect();
    let extra: Vec<&String> = found.keys().filter(|p| !expected.contains_key(*p)).take(5).collect();
    let differ: Vec<&String> =
        expected.keys().filter(|p| found.get(*p).is_some_and(|d| d != &expected[*p])).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "{} expected, {} found; missing {missing:?}, extra {extra:?}, differing {:?}",
        expected.len(),
        found.len(),
        differ.iter().map(|p| (p, &expected[*p], &found[*p])).collect::<Vec<_>>()
    );
    if secret {
        assert_eq!(engine::run_in_image(&image, "cat", &["/secret.txt"]), "secret-read\n");
    }
    let record = engine::docker(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"dev.kiln.inputs\"}}",
        &image,
    ]);
    assert!(record.len() < MAX_RECORD, "the record is {} bytes: {record}", record.len());
    let heads = requests.heads();
    assert!(
        heads.iter().any(|h| h.starts_with("POST /") && h.contains("/build?")),
        "no build went through the log: {heads:?}"
    );
    let largest = heads.iter().max_by_key(|h| h.len()).expect("requests");
    assert!(largest.len() < MAX_REQUEST_HEAD, "a request of {} bytes: {largest}", largest.len());
}

fn a_context_of_5000_files_builds_with_buildkit() {
    build_and_compare("buildkit", false, FILES);
}

fn a_context_of_5000_files_builds_with_the_classic_builder() {
    build_and_compare("classic", false, FILES);
}

fn a_context_of_1500_entries_builds() {
    build_and_compare("classic", false, FAILED_BEFORE);
}

fn a_context_of_5000_files_builds_with_a_secret() {
    build_and_compare("buildkit", true, FILES);
}

/// This module's tests, for the harness (`main.rs`).
pub(crate) const TESTS: &[Case] = &[
    Case::engine(
        "a_context_of_5000_files_builds_with_buildkit",
        a_context_of_5000_files_builds_with_buildkit,
    ),
    Case::engine(
        "a_context_of_5000_files_builds_with_the_classic_builder",
        a_context_of_5000_files_builds_with_the_classic_builder,
    ),
    Case::engine(
        "a_context_of_5000_files_builds_with_a_secret",
        a_context_of_5000_files_builds_with_a_secret,
    ),
    Case::engine("a_context_of_1500_entries_builds", a_context_of_1500_entries_builds),
];
