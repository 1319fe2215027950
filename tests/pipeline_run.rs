//! `svcgen exec` and `svcgen pipeline run` against two generated services
//! started on loopback: a producer (a long method that fails when an input
//! asks it to) and a consumer (a quick method that logs the inputs it was
//! sent). Both are built once, in the target dir the generated-project
//! tests share, and every case runs against the same two processes: the
//! complete path, a failing handler, an unreachable service, bad usage.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod common;

/// The producer's handler: fails when an input's format is `Fail`.
const PRODUCE: &str = r#"//! Produce: a value, unless an input asks for a failure.

use std::time::Duration;

use crate::proto::ProduceResponse;
use crate::svcgen::{HandlerError, TaskContext};

pub async fn produce(ctx: TaskContext) -> Result<ProduceResponse, HandlerError> {
    if ctx.inputs().iter().any(|input| input.format == "Fail") {
        return Err(HandlerError::new("asked to fail by an input"));
    }
    for step in 1..=3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ctx.set_step(step, 3);
    }
    Ok(ProduceResponse {
        summary: "produced".to_string(),
        steps: 3,
    })
}
"#;

/// The consumer's handler: logs and returns the inputs it was sent.
const CONSUME: &str = r#"//! Consume: says which inputs it was sent.

use crate::proto::ConsumeResponse;
use crate::svcgen::{HandlerError, TaskContext};

pub async fn consume(ctx: TaskContext) -> Result<ConsumeResponse, HandlerError> {
    let inputs: Vec<String> = ctx
        .inputs()
        .iter()
        .map(|i| format!("{} {} {} {}", i.protocol, i.uri, i.format, i.task_id().unwrap_or("-")))
        .collect();
    tracing::info!("Consume inputs: [{}]", inputs.join("; "));
    Ok(ConsumeResponse {
        summary: inputs.join("; "),
        steps: inputs.len() as u32,
    })
}
"#;

/// An input that makes the producer fail.
const FAIL_INPUT: &str = r#"{"protocol": "grpc", "uri": "nowhere.invalid:1", "format": "Fail"}"#;

/// The use case: pl_producer.Produce feeds pl_consumer.Consume.
const CONNECTIONS: &str = r#"{
  "pipeline": {
    "name": "pl_demo",
    "service_mapping": {
      "pl_producer": {"ip_address": "pl-producer", "port": 8080},
      "pl_consumer": {"ip_address": "pl-consumer", "port": 8080}
    },
    "connections": [
      {"from_service": "pl_producer", "from_method": "Produce", "to_service": "pl_consumer", "to_method": "Consume"}
    ]
  }
}
"#;

/// Flags that keep the cases short: fast polls, a bounded wait.
const QUICK: [&str; 4] = ["--poll-interval", "0.2", "--timeout", "60"];

#[test]
fn exec_and_pipeline_run_drive_two_generated_services() {
    let work = tempfile::tempdir().expect("temp dir");
    let usecase = make_use_case(work.path());
    let target = common::generated_target_dir().join("debug");
    // Output references name 127.0.0.1: the consumer can fetch them.
    let loopback = [("GRPC_HOST", "127.0.0.1")];
    let producer = common::RunningService::start(&target.join("pl-producer"), &loopback);
    let consumer = common::RunningService::start(&target.join("pl-consumer"), &loopback);

    exec_cases(&producer, &consumer);
    run_cases(&usecase, &producer, &consumer);
}

/// Generates both services into a use case, edits their handlers the way
/// a user would, writes connections.json and builds both.
fn make_use_case(root: &Path) -> PathBuf {
    let usecase = root.join("pl_demo");
    std::fs::create_dir_all(usecase.join("services")).expect("mkdir");
    common::ok(
        &usecase,
        &[
            "new",
            "services/pl_producer",
            "--method",
            "Produce",
            "--no-input",
        ],
    );
    common::ok(
        &usecase,
        &[
            "new",
            "services/pl_consumer",
            "--quick-method",
            "Consume",
            "--no-input",
        ],
    );
    common::write(
        &usecase,
        "services/pl_producer/src/methods/produce.rs",
        PRODUCE,
    );
    common::write(
        &usecase,
        "services/pl_consumer/src/methods/consume.rs",
        CONSUME,
    );
    common::write(&usecase, "connections.json", CONNECTIONS);
    for node in ["pl_producer", "pl_consumer"] {
        common::cargo_in(&usecase.join("services").join(node), &["build"]);
    }
    usecase
}

fn exec_cases(producer: &common::RunningService, consumer: &common::RunningService) {
    // A long method: execute answers running, then status, then output.
    let out = svcgen(&["exec", &producer.url(), "Produce"], &QUICK);
    assert_eq!(out.status.code(), Some(0), "{}", common::describe(&out));
    let output: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(output["protocol"], "grpc");
    assert_eq!(output["uri"], producer.grpc.as_str());
    assert_eq!(output["format"], "Produce");
    let poll_id = output["metadata"]["task_id"].as_str().expect("a poll id");
    assert!(poll_id.starts_with("svcgen-exec-"), "{poll_id}");
    let err = common::stderr(&out);
    assert!(err.contains("Produce: running"), "no progress line: {err}");
    assert!(
        err.contains("Produce: complete grpc"),
        "no final line: {err}"
    );

    // A quick method: execute answers complete with the output; the
    // inputs given reach the handler.
    let input = output.to_string();
    let out = svcgen(
        &["exec", &consumer.url(), "Consume", "--input", &input],
        &QUICK,
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::describe(&out));
    let consumed: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(consumed["format"], "Consume");
    let expected = format!("Consume inputs: [grpc {} Produce {poll_id}]", producer.grpc);
    assert_logged(consumer, &expected);

    // A failing handler: exit 1, its error on one line.
    let out = svcgen(
        &["exec", &producer.url(), "Produce", "--input", FAIL_INPUT],
        &QUICK,
    );
    assert_failed(
        &out,
        1,
        &["task Produce at", "failed: asked to fail by an input"],
    );

    // A service that is not there: exit 1, one line.
    let closed = common::closed_loopback_url();
    let out = svcgen(&["exec", &closed, "Produce"], &QUICK);
    assert_failed(&out, 1, &["cannot reach", &closed]);

    // An unknown method: the service's 400 detail.
    let out = svcgen(&["exec", &producer.url(), "Nope"], &QUICK);
    assert_failed(&out, 1, &["HTTP 400", "Nope"]);

    // Bad usage: exit 2, nothing sent.
    for bad in [
        r#"{"protocol": "grpc""#,
        r#"{"protocol": "ftp", "uri": "x", "format": "json"}"#,
    ] {
        let out = svcgen(
            &["exec", &producer.url(), "Produce", "--input", bad],
            &QUICK,
        );
        assert_failed(&out, 2, &["--input"]);
    }
    let out = svcgen(&["exec", "127.0.0.1:1", "Produce"], &QUICK);
    assert_failed(&out, 2, &["http://"]);
}

fn run_cases(usecase: &Path, producer: &common::RunningService, consumer: &common::RunningService) {
    let at_producer = format!("pl_producer={}", producer.url());
    let at_consumer = format!("pl_consumer={}", consumer.url());
    let dir = usecase.to_string_lossy().to_string();
    // `pipeline run --json` at both running services, with `extra`.
    let run_json = |extra: &[&str]| {
        let mut args = vec![
            "pipeline",
            "run",
            &dir,
            "--json",
            "--at",
            &at_producer,
            "--at",
            &at_consumer,
        ];
        args.extend_from_slice(extra);
        svcgen(&args, &QUICK)
    };

    // The complete path, as CI would run it.
    let out = run_json(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::describe(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(report["error"], Value::Null);
    let tasks = report["tasks"].as_array().expect("tasks");
    let keys: Vec<&str> = tasks
        .iter()
        .filter_map(|t| t["node_key"].as_str())
        .collect();
    assert_eq!(keys, ["pl_producer1:Produce", "pl_consumer1:Consume"]);
    for task in tasks {
        assert_eq!(task["status"], "completed", "{task:#}");
        let id = task["task_id"].as_str().expect("task_id");
        assert!(id.starts_with("task_") && id.len() == 13, "{id}");
    }
    assert_eq!(tasks[0]["inputs"], serde_json::json!([]));
    assert_eq!(tasks[0]["outputs"][0]["uri"], producer.grpc.as_str());
    // The consumer is sent exactly the producer's output.
    assert_eq!(tasks[1]["inputs"], tasks[0]["outputs"]);
    let produced = tasks[0]["outputs"][0]["metadata"]["task_id"]
        .as_str()
        .expect("the producer's poll id");
    assert!(produced.starts_with(tasks[0]["task_id"].as_str().unwrap_or("?")));
    let expected = format!(
        "Consume inputs: [grpc {} Produce {produced}]",
        producer.grpc
    );
    assert_logged(consumer, &expected);

    // A failing handler: exit 1, the node, method and error named; the
    // consumer is not run.
    let out = run_json(&["--input", FAIL_INPUT]);
    assert_eq!(out.status.code(), Some(1), "{}", common::describe(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["status"], "failed");
    assert_eq!(report["tasks"][0]["status"], "failed");
    assert_eq!(report["tasks"][0]["error"], "asked to fail by an input");
    assert_eq!(report["tasks"][1]["status"], "pending");
    let err = last_line(&out);
    for needle in [
        "node pl_producer1",
        "method Produce",
        "asked to fail by an input",
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }

    // The consumer is unreachable: the producer ran, the run stops there.
    let closed = common::closed_loopback_url();
    let at_closed = format!("pl_consumer={closed}");
    let out = svcgen(
        &[
            "pipeline",
            "run",
            &dir,
            "--at",
            &at_producer,
            "--at",
            &at_closed,
        ],
        &QUICK,
    );
    assert_eq!(out.status.code(), Some(1), "{}", common::describe(&out));
    let text = common::stdout(&out);
    assert!(text.contains("pl_producer1:Produce"), "{text}");
    let err = last_line(&out);
    for needle in [
        "node pl_consumer1",
        "method Consume",
        "cannot reach",
        &closed,
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }

    // Bad usage: an unknown node, a malformed address.
    let out = svcgen(
        &["pipeline", "run", &dir, "--at", "nope=http://127.0.0.1:1"],
        &QUICK,
    );
    assert_failed(&out, 2, &["nope", "pl_producer"]);
    let out = svcgen(&["pipeline", "run", &dir, "--at", "pl_producer"], &QUICK);
    assert_eq!(out.status.code(), Some(2), "{}", common::describe(&out));
}

/// `svcgen <args> <extra>` with no key from the environment.
fn svcgen(args: &[&str], extra: &[&str]) -> Output {
    common::svcgen_without_keys(&[args, extra].concat())
}

/// Exit `code`, stdout empty, the last stderr line one `error: ` line
/// holding every needle.
fn assert_failed(out: &Output, code: i32, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(code), "{}", common::describe(out));
    assert!(out.stdout.is_empty(), "{}", common::describe(out));
    let err = last_line(out);
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
}

/// The last stderr line, which must be the one `error: ` line.
fn last_line(out: &Output) -> String {
    let err = common::stderr(out);
    let last = err.lines().last().unwrap_or("").to_string();
    assert!(last.starts_with("error: "), "{}", common::describe(out));
    assert_eq!(
        err.matches("error: ").count(),
        1,
        "{}",
        common::describe(out)
    );
    last
}

/// Waits (at most 5 s) for `line` in the service's log.
fn assert_logged(service: &common::RunningService, line: &str) {
    for _ in 0..50 {
        if service.log().iter().any(|l| l.contains(line)) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{line:?} not logged:\n{}", service.log().join("\n"));
}
