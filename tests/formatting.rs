//! svcgen runs no formatter: every template that renders Rust is written in
//! the exact form `cargo fmt` (rustfmt defaults, edition 2021) gives it, for
//! names of any allowed length. This suite checks that with rustfmt itself,
//! over projects whose names cross every length threshold of the templates,
//! and checks that what svcgen writes depends on nothing but its inputs (not
//! on the rustfmt installed, nor on a `rustfmt.toml` around it).
//!
//! The thresholds, found by running rustfmt on every length (lengths in
//! characters; rustfmt's `max_width` is 100):
//!
//! - handler signature (`src/methods/method.rs.tera`): on one line while
//!   `handler + response_type <= 41`; else the parameter goes on its own
//!   line, and when `response_type >= 72` (a 64-character UpperCamel method)
//!   the `{` too;
//! - `include_proto!` (`src/lib.rs.tera`): on one line while the package
//!   has at most 70 characters, vertical from 71 (beyond 89 rustfmt keeps
//!   either form);
//! - `open_files` (`build.rs.tera`): on one line while the proto file stem
//!   has at most 61 characters, a broken chain for 62 to 66, a vertical
//!   array from 67 (beyond 83 rustfmt keeps either form);
//! - `mod` declarations (`src/methods/mod.rs.tera`): sorted by plain string
//!   order of the handler (style edition 2021), not by method name.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

mod common;

/// Long (UpperCamel, many words) methods are prefixes of this.
const CAMEL: &str = "TrainModelScoreBatchFitGraphSampleVectorIndexPackLoadShardMergeRankTrimPlan";
/// Quick methods, by length modulo 3: snake_case (converted to UpperCamel),
/// ...
const SNAKE: &str = "score_batch_of_items_in_place_with_a_long_tail_of_words_and_more_words";
/// ... capital runs (kept as given: `ExportONNX`) ...
const CAPITALS: &str = "ExportONNXToHTTPServerV2AndGRPCGatewayWithTLSAndJSONOverHTTPSNowPlease";
/// ... and lowerCamelCase (converted).
const LOWER_CAMEL: &str =
    "loadGraphFromDiskAndWarmTheCacheBeforeServingTheFirstBatchOfUsersQuickly";

/// The longest method, crate (directory) and proto service name svcgen accepts.
const MAX_NAME: usize = 64;

/// A long method name of exactly `len` characters.
fn long_method(len: usize) -> String {
    CAMEL[..len].to_string()
}

/// A quick method name of exactly `len` characters, in one of three
/// spellings; the first letter differs per spelling (and from the long
/// methods), so no two names of a project collide.
fn quick_method(len: usize) -> String {
    match len % 3 {
        0 => {
            // A trailing `_` would be legal but odd: end on a letter.
            let mut name = SNAKE[..len].to_string();
            if name.ends_with('_') {
                name.pop();
                name.push('x');
            }
            name
        }
        1 => CAPITALS[..len].to_string(),
        _ => LOWER_CAMEL[..len].to_string(),
    }
}

/// A directory name of exactly `len` characters, kebab-case already (so the
/// crate name, crate ident and default proto package have that length too).
fn kebab_dir(len: usize) -> String {
    let words = "model-registry-".repeat(len / 15 + 1);
    let mut name = words[..len].to_string();
    if name.ends_with('-') {
        name.pop();
        name.push('x');
    }
    name
}

/// A dotted proto package of exactly `len` characters (at least 20), each
/// segment a valid lowercase identifier of at most 64 characters.
fn proto_package(len: usize) -> String {
    const BASE: &str = "acme.data_platform";
    const FILL: &str = "reports_stage_abcdefghijklmnopqrstuvwxyz_abcdefghijklmnopqrstuvwxyz";
    assert!(
        len > BASE.len() + 1 && len <= 2 * MAX_NAME,
        "package length {len}"
    );
    let rest = len - BASE.len();
    // One more segment if it fits (".", then 1 to 64 characters), else two.
    let segments = if rest <= MAX_NAME + 1 {
        vec![rest - 1]
    } else {
        vec![rest / 2 - 1, rest - rest / 2 - 1]
    };
    let mut package = BASE.to_string();
    for segment in segments {
        package.push('.');
        package.push_str(&FILL[..segment]);
    }
    assert_eq!(package.len(), len, "{package}");
    package
}

/// One `svcgen new`, run in the work directory.
struct Project {
    dir: String,
    args: Vec<String>,
}

impl Project {
    /// `svcgen new <dir> --no-input <extra>` with the given methods.
    fn new(dir: &str, long: &[String], quick: &[String], extra: &[&str]) -> Project {
        let mut args = vec!["new".to_string(), dir.to_string(), "--no-input".to_string()];
        for method in long {
            args.extend(["--method".to_string(), method.clone()]);
        }
        for method in quick {
            args.extend(["--quick-method".to_string(), method.clone()]);
        }
        args.extend(extra.iter().map(|arg| arg.to_string()));
        Project {
            dir: dir.to_string(),
            args,
        }
    }
}

/// The projects, chosen to cross every length threshold of the templates.
fn projects() -> Vec<Project> {
    let mut projects = Vec::new();

    // Every method length from 1 to 64, as a long and as a quick method,
    // eight lengths per project. The directories give crate names (and so
    // default proto packages and build.rs file names) of 1, 10 and 60 to 64
    // characters, the longest from an UpperCamel directory name that
    // kebab-case lengthens.
    let crates: [(String, &[&str]); 8] = [
        ("a".to_string(), &[]),
        ("My_Service".to_string(), &[]),
        (kebab_dir(60), &[]),
        (kebab_dir(61), &[]),
        (kebab_dir(62), &[]),
        (kebab_dir(63), &[]),
        // `abcd-abcd-…`: the default gRPC host is the crate name, and a host
        // label has at most 63 characters.
        ("Abcd".repeat(13), &["--grpc-host", "registry.internal"]),
        ("z9".to_string(), &["--proto-service", "HTTPGatewayV2"]),
    ];
    for (group, (dir, extra)) in crates.iter().enumerate() {
        let lengths = group * 8 + 1..=group * 8 + 8;
        let long: Vec<String> = lengths.clone().map(long_method).collect();
        let quick: Vec<String> = lengths.map(quick_method).collect();
        projects.push(Project::new(dir, &long, &quick, extra));
    }

    // Proto packages around the include_proto! and open_files thresholds,
    // up to the longest allowed, with proto service names up to the longest.
    let services = [
        "S",
        "ReportApi",
        "HTTPGatewayV2",
        "ABCServiceX",
        &CAMEL[..MAX_NAME],
        &"Q".repeat(MAX_NAME),
    ];
    let lengths = (60..=75).chain([82, 83, 84, 85, 88, 89, 90, 91, 100, 127, 128]);
    for (i, len) in lengths.enumerate() {
        let package = proto_package(len);
        let dir = format!("pkg{len}");
        let service = services[i % services.len()];
        let extra = ["--proto-package", &package, "--proto-service", service];
        let methods = [long_method(10), quick_method(20)];
        projects.push(Project::new(&dir, &methods[..1], &methods[1..], &extra));
    }

    // Handler modules whose plain string order (rustfmt's, style edition
    // 2021) differs from their method names' order and from a "natural"
    // order: digits, `_` against letters, capital runs.
    let tricky: Vec<String> =
        "HttpZ HTTPS HTTPGet a_z Ab2 Aa ABc A9 A10 A1 A XMLParser XmlA2 zeta_1 Zeta"
            .split(' ')
            .map(String::from)
            .collect();
    let (long, quick) = tricky.split_at(tricky.len() / 2);
    projects.push(Project::new("sorted-mods", long, quick, &[]));
    projects
}

/// Runs every project's `svcgen new` in `work`.
fn generate(work: &Path, projects: &[Project]) {
    for project in projects {
        let args: Vec<&str> = project.args.iter().map(String::as_str).collect();
        common::svcgen_ok(work, &args);
        assert!(
            work.join(&project.dir).is_dir(),
            "{} was not created",
            project.dir
        );
    }
}

/// The `.rs` files under `dir`, relative to it, sorted; the vendored
/// runtime (the same bytes in every project) only from `with_runtime`.
fn rust_files(dir: &Path, with_runtime: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|entry| entry.expect("readable entry"))
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            entry
                .path()
                .strip_prefix(dir)
                .expect("under dir")
                .to_path_buf()
        })
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .filter(|path| {
            let mut components = path.components();
            let project = components.next();
            let in_runtime = components
                .next()
                .is_some_and(|c| c.as_os_str() == "svcgen-runtime");
            !in_runtime || project.is_some_and(|p| p.as_os_str() == with_runtime)
        })
        .collect();
    files.sort();
    files
}

/// Panics, saying how to install it, unless `rustfmt` runs: this suite
/// must not pass by skipping.
fn require_rustfmt() {
    let version = Command::new("rustfmt")
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    match version {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "rustfmt is required by this test (rustup component add rustfmt); `rustfmt --version` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(err) => panic!(
            "rustfmt is required by this test (rustup component add rustfmt); it could not be run: {err}"
        ),
    }
}

#[test]
fn generated_rust_is_already_formatted() {
    let start = Instant::now();
    require_rustfmt();
    let work = tempfile::tempdir().expect("temp dir");
    let projects = projects();
    generate(work.path(), &projects);
    let generated = start.elapsed();

    let files = rust_files(work.path(), &projects[0].dir);
    let handlers = files
        .iter()
        .filter(|path| {
            path.parent()
                .is_some_and(|dir| dir.ends_with("src/methods"))
        })
        .count();
    // 2 × 64 methods of the length sweep, 27 package projects × 2, 15 tricky
    // names, and one mod.rs per project.
    assert_eq!(
        handlers,
        2 * MAX_NAME + 27 * 2 + 15 + projects.len(),
        "{files:#?}"
    );
    assert!(
        files
            .iter()
            .any(|path| path.starts_with(Path::new(&projects[0].dir).join("svcgen-runtime"))),
        "the vendored runtime's sources are checked too"
    );

    // rustfmt's defaults exactly, so no rustfmt.toml above the temp dir
    // counts.
    let output = common::rustfmt_check(work.path(), &files);
    assert!(
        output.status.success(),
        "rustfmt would reformat generated files (fix the templates; rustfmt also follows `mod` \
         declarations, so a file's diff can show more than once):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "{} projects generated in {generated:?}; rustfmt checked {} files; {:?} in all",
        projects.len(),
        files.len(),
        start.elapsed()
    );
}

/// Every file under `dir` (relative path → bytes).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|entry| entry.expect("readable entry"))
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let relative = entry.path().strip_prefix(dir).expect("under dir");
            let bytes = std::fs::read(entry.path()).expect("read a generated file");
            (relative.to_string_lossy().replace('\\', "/"), bytes)
        })
        .collect()
}

/// PATH without every directory that holds `rustfmt` or `cargo-fmt`.
fn path_without_rustfmt() -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let tools =
        ["rustfmt", "cargo-fmt"].map(|tool| format!("{tool}{}", std::env::consts::EXE_SUFFIX));
    let kept: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|dir| !tools.iter().any(|tool| dir.join(tool).exists()))
        .collect();
    std::env::join_paths(kept).expect("PATH entries join back")
}

#[test]
fn generation_depends_only_on_the_inputs() {
    let work = tempfile::tempdir().expect("temp dir");
    let args = common::custom_new_args();

    let plain = work.path().join("plain");
    std::fs::create_dir(&plain).expect("create dir");
    common::svcgen_ok(&plain, &args);

    // A working directory whose rustfmt.toml would change everything, and
    // no rustfmt on PATH.
    let hostile = work.path().join("hostile");
    std::fs::create_dir(&hostile).expect("create dir");
    let config = "max_width = 40\nhard_tabs = true\nedition = \"2015\"\nreorder_imports = false\n";
    std::fs::write(hostile.join("rustfmt.toml"), config).expect("write rustfmt.toml");
    std::fs::write(hostile.join(".rustfmt.toml"), config).expect("write .rustfmt.toml");
    let path = path_without_rustfmt();
    let output = Command::new(common::SVCGEN)
        .args(&args)
        .current_dir(&hostile)
        .env("PATH", &path)
        .stdin(Stdio::null())
        .output()
        .expect("run svcgen");
    assert!(
        output.status.success(),
        "svcgen {args:?} without rustfmt on PATH failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        Command::new("rustfmt")
            .arg("--version")
            .env("PATH", &path)
            .output()
            .is_err(),
        "rustfmt is still reachable on the reduced PATH {path:?}"
    );

    let expected = tree(&plain.join(common::CUSTOM_DIR));
    let actual = tree(&hostile.join(common::CUSTOM_DIR));
    assert!(expected.len() > 20, "{} files generated", expected.len());
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "the same files"
    );
    let differing: Vec<&String> = expected
        .iter()
        .filter(|(path, bytes)| actual.get(*path) != Some(*bytes))
        .map(|(path, _)| path)
        .collect();
    assert!(differing.is_empty(), "these files differ: {differing:?}");
}
