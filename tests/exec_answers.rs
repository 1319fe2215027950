//! `svcgen exec` against a fake service (tests/fake_http) that gives the
//! answers the orchestrator's control client accepts and those it
//! refuses: what exec sends, and that it fails (exit 1, one line) exactly
//! where the orchestrator would fail the task.

use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

mod common;
mod fake_http;

use fake_http::FakeHttp;

/// A fake service answering execute, status and output with these.
fn service(execute: Answer, status: Value, output: Value) -> FakeHttp {
    FakeHttp::start(move |request| {
        if request.path == "/control/execute" {
            execute.clone()
        } else if request.path.starts_with("/control/status/") {
            ("200 OK", status.to_string())
        } else if request.path.starts_with("/control/output/") {
            ("200 OK", output.to_string())
        } else {
            (
                "404 Not Found",
                json!({"detail": "no such endpoint"}).to_string(),
            )
        }
    })
}

/// A status line and a body.
type Answer = (&'static str, String);

/// What the fake answers to execute, status and output, and what the
/// error line must say.
type Case = (Answer, Value, Value, Vec<&'static str>);

fn ok(body: Value) -> Answer {
    ("200 OK", body.to_string())
}

fn running() -> Answer {
    ok(json!({"status": "running", "task_id": "t.abc"}))
}

fn complete() -> Value {
    json!({"status": "complete", "progress": 100, "error": null})
}

fn output() -> Value {
    json!({"output": {"protocol": "grpc", "uri": "svc:50051", "format": "Work",
                      "metadata": {"task_id": "t.abc"}}})
}

/// `svcgen exec URL Work <extra>`, quick polls, no key from the environment.
fn exec(url: &str, extra: &[&str]) -> Output {
    Command::new(common::SVCGEN)
        .args([
            "exec",
            url,
            "Work",
            "--poll-interval",
            "0.05",
            "--timeout",
            "20",
        ])
        .args(extra)
        .env_remove("SERVICE_API_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run svcgen")
}

/// Exit 1 and a last stderr line `error: …` holding every needle.
fn assert_refused(out: &Output, needles: &[&str]) {
    let err = common::stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(last.starts_with("error: task Work at "), "{err}");
    for needle in needles {
        assert!(last.contains(needle), "{needle:?} not in {last}");
    }
}

#[test]
fn exec_sends_what_the_orchestrator_sends_and_prints_the_output() {
    // Extra fields and lax integers are accepted, as by the orchestrator.
    let status = json!({"status": "complete", "progress": 100.0, "error": null, "method": "Work"});
    let fake = service(running(), status, output());
    let input = r#"{"protocol": "grpc", "uri": "up:1", "format": "Make", "size_bytes": "12"}"#;
    let out = exec(
        &fake.url,
        &["--input", input, "--api-key", "k1", "--task-id", "task_1"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(printed["uri"], "svc:50051");
    assert_eq!(printed["schema_uri"], Value::Null);

    let requests = fake.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/control/execute",
            "/control/status/t.abc",
            "/control/output/t.abc"
        ]
    );
    assert!(requests
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer k1")));
    let body: Value = serde_json::from_str(&requests[0].body).expect("JSON body");
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["inputs", "method", "task_id", "workflow_id"]);
    assert_eq!(body["method"], "Work");
    assert_eq!(body["task_id"], "task_1");
    assert!(body["workflow_id"]
        .as_str()
        .is_some_and(|w| w.starts_with("svcgen-exec-")));
    assert_eq!(
        body["inputs"],
        json!([{"protocol": "grpc", "uri": "up:1", "format": "Make", "schema_uri": null,
                "size_bytes": 12, "checksum": null, "metadata": {}}])
    );
}

#[test]
fn a_complete_answer_without_output_is_a_task_without_output() {
    let fake = service(ok(json!({"status": "complete"})), complete(), output());
    let out = exec(&fake.url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    // Nothing on stdout, so `--input "$(svcgen exec …)"` never passes `null` on.
    assert_eq!(common::stdout(&out), "");
    assert!(common::stderr(&out).contains("(no output)"));
    assert_eq!(fake.requests().len(), 1, "no poll after complete");
}

#[test]
fn a_blank_method_workflow_id_or_task_id_is_bad_usage() {
    let fake = service(running(), complete(), output());
    for (args, name) in [
        (vec![" "], "METHOD"),
        (vec!["Work", "--workflow-id", ""], "--workflow-id"),
        (vec!["Work", "--task-id", " \t"], "--task-id"),
    ] {
        let out = Command::new(common::SVCGEN)
            .arg("exec")
            .arg(&fake.url)
            .args(&args)
            .env_remove("SERVICE_API_KEY")
            .stdin(Stdio::null())
            .output()
            .expect("run svcgen");
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("{name} must not be blank")), "{err}");
    }
    assert!(fake.requests().is_empty(), "nothing is sent");
}

#[test]
fn exec_fails_where_the_orchestrator_fails_the_task() {
    let cases: Vec<Case> = vec![
        (
            ok(json!({"status": "done"})),
            complete(),
            output(),
            vec!["does not follow the control contract"],
        ),
        (
            ok(json!({"status": "running"})),
            complete(),
            output(),
            vec!["running without a task_id"],
        ),
        (
            ok(json!({"status": "failed"})),
            complete(),
            output(),
            vec!["failed without an error"],
        ),
        (
            ok(json!({"status": "failed", "error": ""})),
            complete(),
            output(),
            vec!["failed: the service answered failed without an error"],
        ),
        (
            ok(json!({"status": "failed", "error": "bad input"})),
            complete(),
            output(),
            vec!["failed: bad input"],
        ),
        (
            ok(json!({"status": "complete", "output": {"protocol": "grpc", "uri": "x:1"}})),
            complete(),
            output(),
            vec!["invalid output", "format"],
        ),
        (
            running(),
            json!({"status": "running", "progress": "half"}),
            output(),
            vec!["progress"],
        ),
        (
            running(),
            json!({"status": "failed", "error": " "}),
            output(),
            vec!["failed: the service task failed without an error"],
        ),
        (
            running(),
            json!({"status": "failed", "error": "boom"}),
            output(),
            vec!["failed: boom"],
        ),
        (
            running(),
            complete(),
            json!({"output": {"protocol": "s3", "uri": "bucket/x", "format": "csv"}}),
            vec!["invalid output", "s3://"],
        ),
        (
            running(),
            complete(),
            json!({"output": null}),
            vec!["/control/output/t.abc: the answer's output is null"],
        ),
        (
            (
                "503 Service Unavailable",
                json!({"detail": "shutting down"}).to_string(),
            ),
            complete(),
            output(),
            vec!["HTTP 503: shutting down"],
        ),
        (
            ("200 OK", "<html>".to_string()),
            complete(),
            output(),
            vec!["not JSON"],
        ),
    ];
    for (execute, status, out_answer, needles) in cases {
        let fake = service(execute, status, out_answer);
        let out = exec(&fake.url, &[]);
        assert_refused(&out, &needles);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_task_that_never_ends_is_given_up_at_the_timeout() {
    let fake = service(
        running(),
        json!({"status": "running", "progress": 10}),
        output(),
    );
    let started = std::time::Instant::now();
    let out = Command::new(common::SVCGEN)
        .args([
            "exec",
            &fake.url,
            "Work",
            "--poll-interval",
            "0.1",
            "--timeout",
            "1",
        ])
        .env_remove("SERVICE_API_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run svcgen");
    assert_refused(&out, &["gave up waiting", "--timeout"]);
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    assert!(common::stderr(&out).contains("Work: running 10%"));
}

#[test]
fn a_request_cut_short_by_the_timeout_names_the_time_it_was_given() {
    // The service takes longer to answer than --timeout leaves.
    let fake = FakeHttp::start(|_| {
        std::thread::sleep(std::time::Duration::from_secs(2));
        running()
    });
    let out = Command::new(common::SVCGEN)
        .args(["exec", &fake.url, "Work", "--timeout", "1"])
        .env_remove("SERVICE_API_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run svcgen");
    assert_refused(
        &out,
        &[
            "/control/execute: no answer within ",
            "s (what was left of --timeout)",
        ],
    );
    let err = common::stderr(&out);
    assert!(!err.contains("30s"), "{err}");
}

#[test]
fn a_dropped_fake_server_stops_and_frees_its_port() {
    let fake = service(running(), complete(), output());
    let addr = fake.url.trim_start_matches("http://").to_string();
    assert!(std::net::TcpStream::connect(&addr).is_ok());
    let closed = fake.closed_flag();
    assert!(!closed.load(std::sync::atomic::Ordering::SeqCst));
    // Dropping joins the thread, which closes the listener first. (A
    // connect afterwards would race with other tests binding port 0.)
    drop(fake);
    assert!(
        closed.load(std::sync::atomic::Ordering::SeqCst),
        "{addr} was not closed"
    );
}
