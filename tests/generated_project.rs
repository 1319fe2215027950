//! Generates real projects (one grown afterwards with `svcgen add-method`
//! over user edits, one made by svcgen 0.1.0 and converted by
//! `add-method`), then builds, tests and lints them with cargo on a PATH
//! without `protoc`, and runs them against the orchestrator conformance
//! driver (`tests/conformance/orchestrator.py`) over HTTP and gRPC.
//!
//! Slow the first time (a cold dependency build): every generated project
//! shares one CARGO_TARGET_DIR (`target/generated-projects`, or
//! `SVCGEN_TEST_TARGET_DIR`) so dependencies compile once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn generated_projects_build_test_lint_and_serve_the_orchestrator() {
    let work = tempfile::tempdir().expect("temp dir");
    let python = common::conformance_python();

    // Each project is built and driven before the next is built: two of
    // them are crates named demo-svc sharing one target dir.
    let demo = generate(
        work.path(),
        &["new", "demo-svc", "--method", "TrainModel", "--no-input"],
        "demo-svc",
    );
    grow_with_add_method(&demo);
    // --locked: the Cargo.lock svcgen writes is the one cargo would.
    check(&demo, &["--locked"]);
    // Each method gets a fresh service: GetLastResult answers "the latest
    // result of any method", which a task left from another run would change.
    for (method, answer) in [
        ("TrainModel", "running"),
        ("ScoreBatch", "running"),
        ("ExportOnnx", "complete"),
    ] {
        let service = common::RunningService::start(
            &common::generated_target_dir().join("debug/demo-svc"),
            &[],
        );
        let proto = ("demo_svc", "DemoSvc");
        conformance(&python, &service, &demo, method, answer, proto, None);
        service.stop();
    }

    let custom = generate(work.path(), &common::custom_new_args(), common::CUSTOM_DIR);
    check(&custom, &["--locked"]);
    let key = "conformance-key";
    for (method, answer) in [("ExportONNX", "complete"), ("ScoreBatch", "running")] {
        let binary = common::generated_target_dir().join("debug/report-builder");
        let service = common::RunningService::start(&binary, &[("SERVICE_API_KEY", key)]);
        let proto = ("acme.reports.v1", "ReportApi");
        conformance(&python, &service, &custom, method, answer, proto, Some(key));
        service.stop();
    }

    // A project made by svcgen 0.1.0, converted the way a user would: one
    // line in Cargo.toml, then add-method. It starts from the lock of the
    // demo project (same crate name), which cargo then completes.
    let legacy_parent = work.path().join("legacy");
    let legacy = common::legacy_project(&legacy_parent);
    common::add_runtime_dependency(&legacy);
    common::svcgen_ok(&legacy, &["add-method", "ScoreBatch"]);
    std::fs::copy(demo.join("Cargo.lock"), legacy.join("Cargo.lock")).expect("copy the lock");
    check(&legacy, &[]);
    for (method, answer) in [("TrainModel", "running"), ("ScoreBatch", "running")] {
        let service = common::RunningService::start(
            &common::generated_target_dir().join("debug/demo-svc"),
            &[],
        );
        let proto = ("demo_svc", "DemoSvc");
        conformance(&python, &service, &legacy, method, answer, proto, None);
        service.stop();
    }
}

/// The producer's Produce handler: its value is the `value` parameter, so
/// two tasks run at once produce different results.
const PRODUCE: &str = r#"//! Produce: a value chosen by the caller.

use std::time::Duration;

use crate::proto::ProduceResponse;
use crate::svcgen::{HandlerError, TaskContext};

pub async fn produce(ctx: TaskContext) -> Result<ProduceResponse, HandlerError> {
    let steps: u32 = ctx.parameter("steps")?.unwrap_or(2);
    for step in 1..=steps {
        tokio::time::sleep(Duration::from_millis(50)).await;
        ctx.set_step(step, steps);
    }
    let value: String = ctx.parameter("value")?.unwrap_or_default();
    Ok(ProduceResponse { summary: value, steps })
}
"#;

/// The consumer's Consume handler: returns what it fetched from upstream.
const CONSUME: &str = r#"//! Consume: the producer's value, fetched over gRPC.

use crate::proto::ConsumeResponse;
use crate::svcgen::upstreams::producer::producer::ProduceResponse;
use crate::svcgen::{HandlerError, TaskContext};

pub async fn consume(ctx: TaskContext) -> Result<ConsumeResponse, HandlerError> {
    let input = ctx.inputs().first().ok_or_else(|| HandlerError::new("no input"))?;
    let produced: ProduceResponse = ctx.fetch(input).await?;
    Ok(ConsumeResponse {
        summary: produced.summary,
        steps: produced.steps,
    })
}
"#;

/// The consumer's ConsumePython handler: fetches from a Python producer.
const CONSUME_PYTHON: &str = r#"//! ConsumePython: a Python producer's value, fetched by `format`.

use crate::proto::ConsumePythonResponse;
use crate::svcgen::upstreams::data_generator::data_generator::GenerateDataResponse;
use crate::svcgen::{HandlerError, TaskContext};

pub async fn consume_python(ctx: TaskContext) -> Result<ConsumePythonResponse, HandlerError> {
    let input = ctx.inputs().first().ok_or_else(|| HandlerError::new("no input"))?;
    let generated: GenerateDataResponse = ctx.fetch(input).await?;
    Ok(ConsumePythonResponse {
        summary: generated.message,
        steps: 0,
    })
}
"#;

/// A use case's shared proto, imported by its services (AI-Effect layout).
const COMMON_PROTO: &str = "syntax = \"proto3\";\npackage common;\n\nmessage EnergyRecord {\n  string household_id = 1;\n  double power_consumption = 2;\n}\n";

/// A Python producer's proto, as the platform's use cases write them.
const DATA_GENERATOR_PROTO: &str = "syntax = \"proto3\";\npackage data_generator;\n\nimport \"common.proto\";\n\nmessage GenerateDataRequest {\n  int32 num_records = 1;\n}\n\nmessage GenerateDataResponse {\n  bool success = 1;\n  string message = 2;\n  repeated common.EnergyRecord records = 3;\n}\n\nservice DataGeneratorService {\n  rpc GenerateData(GenerateDataRequest) returns (GenerateDataResponse);\n}\n";

#[test]
fn a_consumer_fetches_exactly_its_producers_results() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = work.path();
    let producer = generate(
        root,
        &["new", "producer", "--method", "Produce", "--no-input"],
        "producer",
    );
    std::fs::write(producer.join("src/methods/produce.rs"), PRODUCE).expect("write");
    let consumer = generate(
        root,
        &["new", "consumer", "--method", "Consume", "--no-input"],
        "consumer",
    );
    common::svcgen_ok(&consumer, &["add-method", "ConsumePython"]);
    common::svcgen_ok(
        &consumer,
        &["add-upstream", "../producer/proto/producer.proto"],
    );
    let shared = root.join("usecase/shared/proto");
    let python = root.join("usecase/services/data_generator/proto");
    for (dir, name, text) in [
        (&shared, "common.proto", COMMON_PROTO),
        (&python, "data_generator.proto", DATA_GENERATOR_PROTO),
    ] {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join(name), text).expect("write");
    }
    let python_proto = python.join("data_generator.proto");
    let include = shared.to_string_lossy().to_string();
    common::svcgen_ok(
        &consumer,
        &[
            "add-upstream",
            &python_proto.to_string_lossy(),
            "--include",
            &include,
        ],
    );
    std::fs::write(consumer.join("src/methods/consume.rs"), CONSUME).expect("write");
    std::fs::write(
        consumer.join("src/methods/consume_python.rs"),
        CONSUME_PYTHON,
    )
    .expect("write");
    for project in [&producer, &consumer] {
        common::cargo_in(project, &["build"]);
        common::cargo_in(
            project,
            &["clippy", "--all-targets", "--", "-D", "warnings"],
        );
    }

    let python = common::conformance_python();
    // The producer advertises a loopback address in its output references:
    // the consumer connects to what the orchestrator hands it.
    let a = common::RunningService::start(
        &common::generated_target_dir().join("debug/producer"),
        &[("GRPC_HOST", "127.0.0.1")],
    );
    let b = common::RunningService::start(
        &common::generated_target_dir().join("debug/consumer"),
        &[("UPSTREAM_TIMEOUT_SECS", "2")],
    );
    let output = Command::new(&python)
        .arg(Path::new(MANIFEST_DIR).join("tests/conformance/chain.py"))
        .args(["--producer-http", &a.http])
        .args(["--consumer-http", &b.http, "--consumer-grpc", &b.grpc])
        .arg("--consumer-proto")
        .arg(consumer.join("proto/consumer.proto"))
        .args(["--consumer-service", "Consumer"])
        .arg("--python-proto")
        .arg(&python_proto)
        .arg("--python-include")
        .arg(&shared)
        .stdin(Stdio::null())
        .output()
        .expect("run the chain driver");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(
        output.status.success() && report.contains(" passed, 0 failed"),
        "the chain failed:\n{}",
        common::describe(&output)
    );
    a.stop();
    b.stop();
}

/// Builds (with `build_flags`), tests, format-checks and lints `project`.
fn check(project: &Path, build_flags: &[&str]) {
    let mut build = vec!["build"];
    build.extend_from_slice(build_flags);
    common::cargo_in(project, &build);
    common::cargo_in(project, &["test"]);
    common::cargo_in(project, &["fmt", "--check"]);
    common::cargo_in(
        project,
        &["clippy", "--all-targets", "--", "-D", "warnings"],
    );
}

/// Runs `svcgen` in `dir` and returns the project it created at `created`.
fn generate(dir: &Path, args: &[&str], created: &str) -> PathBuf {
    common::svcgen_ok(dir, args);
    dir.join(created)
}

/// Edits a handler body and a request message the way a user would, runs
/// `cargo fmt`, then adds a long and a quick method: the edits must survive
/// byte for byte and the new rpcs must be in the proto.
fn grow_with_add_method(project: &Path) {
    let handler = project.join("src/methods/train_model.rs");
    let proto = project.join("proto/demo_svc.proto");
    let edit = |path: &Path, from: &str, to: &str| {
        let text = std::fs::read_to_string(path).expect("read");
        assert!(text.contains(from), "{} has no {from:?}", path.display());
        std::fs::write(path, text.replacen(from, to, 1)).expect("write");
    };
    edit(
        &handler,
        "\"TrainModel started\"",
        "\"TrainModel started (user code)\"",
    );
    edit(
        &proto,
        "message TrainModelRequest {}",
        "message TrainModelRequest {\n  string dataset = 1;\n}",
    );
    common::cargo_in(project, &["fmt"]);
    let handler_before = std::fs::read(&handler).expect("read");
    let proto_before = std::fs::read_to_string(&proto).expect("read");

    common::svcgen_ok(&project.join("src"), &["add-method", "ScoreBatch"]);
    common::svcgen_ok(project, &["add-method", "export-onnx", "--quick"]);

    assert_eq!(
        std::fs::read(&handler).expect("read"),
        handler_before,
        "handler edited"
    );
    let proto_after = std::fs::read_to_string(&proto).expect("read");
    for line in [
        "  rpc ScoreBatch(ScoreBatchRequest) returns (ScoreBatchResponse);",
        "  rpc ExportOnnx(ExportOnnxRequest) returns (ExportOnnxResponse);",
        "  string dataset = 1;",
    ] {
        assert!(
            proto_after.lines().any(|l| l == line),
            "no {line:?} in\n{proto_after}"
        );
    }
    let mut after = proto_after.lines();
    for line in proto_before.lines() {
        assert!(
            after.any(|l| l == line),
            "the user's line {line:?} is gone or moved"
        );
    }
}

/// Drives `method` like the orchestrator; `answer` is the status its
/// execute must give (`running` for long methods, `complete` for quick).
fn conformance(
    python: &Path,
    service: &common::RunningService,
    project: &Path,
    method: &str,
    answer: &str,
    (package, proto_service): (&str, &str),
    api_key: Option<&str>,
) {
    let proto = std::fs::read_dir(project.join("proto"))
        .expect("proto dir")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .expect("one .proto");
    let mut command = Command::new(python);
    command
        .arg(Path::new(MANIFEST_DIR).join("tests/conformance/orchestrator.py"))
        .args(["--base-url", &format!("http://{}", service.http)])
        .args(["--grpc-addr", &service.grpc])
        .args(["--method", method, "--expect-status", answer])
        .arg("--proto")
        .arg(&proto)
        .args(["--proto-package", package, "--proto-service", proto_service])
        .args(["--timeout", "60"]);
    if let Some(key) = api_key {
        command.args(["--api-key", key]);
    }
    let output = command
        .stdin(Stdio::null())
        .output()
        .expect("run the conformance driver");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(
        output.status.success() && report.contains(" passed, 0 failed"),
        "conformance of {method} failed:\n{}",
        common::describe(&output)
    );
}
