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
