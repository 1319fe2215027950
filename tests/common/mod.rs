//! Helpers shared by svcgen's integration tests: running the binary, and
//! the customised service several suites generate.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The svcgen binary under test.
pub const SVCGEN: &str = env!("CARGO_BIN_EXE_svcgen");

/// Every non-default setting except the methods: ports, gRPC host, a dotted
/// proto package and an explicit proto service.
pub const CUSTOM_FLAGS: [&str; 10] = [
    "--http-port",
    "9000",
    "--grpc-port",
    "9001",
    "--grpc-host",
    "reports.internal",
    "--proto-package",
    "acme.reports.v1",
    "--proto-service",
    "ReportApi",
];

/// The directory `custom_new_args` creates.
pub const CUSTOM_DIR: &str = "Report_Builder";

/// `svcgen new` of the customised service: three methods in three spellings
/// (UpperCamel, snake_case, a capital run), one of them quick.
pub fn custom_new_args() -> Vec<&'static str> {
    let mut args = vec![
        "new",
        CUSTOM_DIR,
        "--method",
        "TrainModel",
        "--method",
        "score_batch",
        "--quick-method",
        "ExportONNX",
    ];
    args.extend(CUSTOM_FLAGS);
    args.push("--no-input");
    args
}

/// Runs `svcgen <args>` in `dir` with stdin closed (a prompt would fail, not hang).
pub fn svcgen(dir: &Path, args: &[&str]) -> Output {
    Command::new(SVCGEN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run svcgen")
}

/// Runs `svcgen <args>` in `dir` and panics with its stderr unless it succeeds.
pub fn svcgen_ok(dir: &Path, args: &[&str]) -> Output {
    let output = svcgen(dir, args);
    assert!(
        output.status.success(),
        "svcgen {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

// ------------------------------------------- a project made by svcgen 0.1.0

/// The project svcgen 0.1.0 made (runtime in `src/svcgen/`, manifest schema
/// 1), committed as a fixture: see tests/fixtures/svcgen-0.1.0/README.md.
/// Never change it in place; work on a copy from [`legacy_project`].
pub fn legacy_fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/svcgen-0.1.0/demo-svc")
}

/// Copies the svcgen 0.1.0 project into `into` (created when missing);
/// returns the copy's root, `into/demo-svc`.
pub fn legacy_project(into: &Path) -> std::path::PathBuf {
    let from = legacy_fixture();
    let root = into.join("demo-svc");
    for entry in walkdir::WalkDir::new(&from) {
        let entry = entry.expect("walk the svcgen 0.1.0 fixture");
        let relative = entry.path().strip_prefix(&from).expect("under the fixture");
        let target = root.join(relative);
        let copied = if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)
        } else {
            // Read and write rather than fs::copy: the copy must be
            // writable even if the checkout is not.
            std::fs::read(entry.path()).and_then(|bytes| std::fs::write(&target, bytes))
        };
        copied.unwrap_or_else(|e| {
            panic!(
                "copy {} to {}: {e}",
                entry.path().display(),
                target.display()
            )
        });
    }
    root
}

/// The `[dependencies]` line a project needs for the vendored runtime, as
/// svcgen names it when it refuses to convert a svcgen 0.1.0 project (the
/// version is the workspace's svcgen-runtime crate's).
pub fn runtime_dependency_line() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("svcgen-runtime/Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("read svcgen-runtime/Cargo.toml");
    let manifest: toml::Table = toml::from_str(&text).expect("svcgen-runtime/Cargo.toml parses");
    let version = manifest["package"]["version"]
        .as_str()
        .expect("svcgen-runtime's version");
    format!("svcgen-runtime = {{ version = \"{version}\", path = \"svcgen-runtime\" }}")
}

/// What a user does before `svcgen add-method` can convert a svcgen 0.1.0
/// project: adds [`runtime_dependency_line`] right under `[dependencies]`
/// in its (user-owned) Cargo.toml. Nothing else changes.
pub fn add_runtime_dependency(project: &Path) {
    let path = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("read the project's Cargo.toml");
    let header = "[dependencies]";
    assert_eq!(
        text.lines().filter(|line| *line == header).count(),
        1,
        "expected one {header} line in {}",
        path.display()
    );
    let updated = text.replacen(
        &format!("{header}\n"),
        &format!("{header}\n{}\n", runtime_dependency_line()),
        1,
    );
    assert_ne!(updated, text, "no `{header}` line ending in a newline");
    std::fs::write(&path, updated).expect("write the project's Cargo.toml");
}
