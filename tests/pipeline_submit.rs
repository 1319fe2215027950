//! `svcgen pipeline submit` against a fake orchestrator (tests/fake_http: plain
//! HTTP/1.1 on a loopback port): it records every request and plays back
//! the workflow's and its tasks' states, the way the orchestrator's API
//! answers them. The posted blueprint and dockerinfo are checked by
//! tests/conformance/blueprint_check.py.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

mod common;
mod fake_http;

use fake_http::{FakeHttp, Request};

/// What the fake answers to each look at the workflow, in turn (the last
/// one repeats): the workflow's status and its tasks.
type Script = Vec<(&'static str, Value)>;

/// A fake orchestrator API playing `script`.
fn fake_orchestrator(script: Script) -> FakeHttp {
    let mut looks = 0;
    FakeHttp::start(move |request| answer(request, &script, &mut looks))
}

/// The orchestrator's answer to `request` at this point of `script`.
fn answer(request: &Request, script: &Script, looks: &mut usize) -> (&'static str, String) {
    let at = (*looks).min(script.len() - 1);
    let (status, tasks) = &script[at];
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/workflows") => (
            "200 OK",
            json!({"workflow_id": "wf-0123456789ab", "status": "running"}).to_string(),
        ),
        ("GET", "/workflows/wf-0123456789ab") => (
            "200 OK",
            json!({"workflow_id": "wf-0123456789ab", "status": status,
                   "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:01Z",
                   "error": null})
            .to_string(),
        ),
        ("GET", "/workflows/wf-0123456789ab/tasks") => {
            *looks += 1;
            (
                "200 OK",
                json!({"workflow_id": "wf-0123456789ab", "tasks": tasks}).to_string(),
            )
        }
        _ => ("404 Not Found", json!({"detail": "Not Found"}).to_string()),
    }
}

/// A task as `GET /workflows/{id}/tasks` lists it.
fn task(id: &str, node_key: &str, status: &str, error: Option<&str>) -> Value {
    json!({"task_id": id, "node_key": node_key, "status": status,
           "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:01Z",
           "error": error, "input_refs": [], "output_refs": []})
}

/// One look at the two tasks' workflow (as the script plays it): the
/// workflow's status, then alpha1:Make's and beta1:Take's status and error.
fn look(
    workflow: &'static str,
    (alpha, alpha_error): (&str, Option<&str>),
    (beta, beta_error): (&str, Option<&str>),
) -> (&'static str, Value) {
    let tasks = json!([
        task("task_aaaaaaaa", "alpha1:Make", alpha, alpha_error),
        task("task_bbbbbbbb", "beta1:Take", beta, beta_error)
    ]);
    (workflow, tasks)
}

/// A two-node use case (alpha.Make feeds beta.Take), protos written by hand.
fn use_case(root: &Path) -> String {
    let dir = root.join("sub_demo");
    common::write_alpha_beta_protos(&dir);
    common::write(
        &dir,
        "connections.json",
        r#"{"pipeline": {"name": "sub_demo",
  "service_mapping": {"alpha": {"ip_address": "alpha", "port": 8080}, "beta": {"ip_address": "beta", "port": 8081}},
  "connections": [{"from_service": "alpha", "from_method": "Make", "to_service": "beta", "to_method": "Take"}]}}
"#,
    );
    dir.to_string_lossy().into_owned()
}

/// `svcgen pipeline submit DIR --api URL <extra>`, no key from the environment.
fn submit(dir: &str, api: &str, extra: &[&str]) -> Output {
    let mut args = vec!["pipeline", "submit", dir, "--api", api];
    args.extend(["--poll-interval", "0.1", "--timeout", "30"]);
    args.extend_from_slice(extra);
    common::svcgen_without_keys(&args)
}

const INPUT: &str = r#"{"protocol": "s3", "uri": "s3://bucket/raw.csv", "format": "csv"}"#;

#[test]
fn submit_posts_the_export_and_follows_the_workflow_to_completion() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = use_case(work.path());
    let fake = fake_orchestrator(vec![
        look("running", ("running", None), ("pending", None)),
        look("running", ("completed", None), ("running", None)),
        look("completed", ("completed", None), ("completed", None)),
    ]);
    let out = submit(
        &dir,
        &fake.url,
        &[
            "--api-key",
            "orch-key",
            "--services-api-key",
            "svc-key",
            "--input",
            INPUT,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::describe(&out));
    assert!(
        common::stdout(&out).contains("wf-0123456789ab completed"),
        "{}",
        common::describe(&out)
    );
    let err = common::stderr(&out);
    for line in [
        "alpha1:Make: running",
        "beta1:Take: pending",
        "beta1:Take: complete",
    ] {
        assert!(err.contains(line), "no {line:?} in {err}");
    }

    let requests = fake.requests();
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/workflows");
    assert!(
        requests
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer orch-key")),
        "{requests:?}"
    );
    let body: Value = serde_json::from_str(&requests[0].body).expect("a JSON body");
    let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
    assert_eq!(
        keys,
        ["blueprint", "dockerinfo", "inputs", "services_api_key"]
    );
    assert_eq!(body["services_api_key"], "svc-key");
    assert_eq!(
        body["inputs"],
        json!([{"protocol": "s3", "uri": "s3://bucket/raw.csv", "format": "csv",
                "schema_uri": null, "size_bytes": null, "checksum": null, "metadata": {}}])
    );
    let containers: Vec<&str> = body["blueprint"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["container_name"].as_str())
        .collect();
    assert_eq!(containers, ["alpha1", "beta1"]);
    assert_eq!(body["blueprint"]["type"], "pipeline-topology/v2");
    assert_eq!(
        body["dockerinfo"],
        json!({"docker_info_list": [
            {"container_name": "alpha1", "ip_address": "alpha", "port": "8080"},
            {"container_name": "beta1", "ip_address": "beta", "port": "8081"}]})
    );
    let looks = requests
        .iter()
        .filter(|r| r.path.ends_with("/tasks"))
        .count();
    assert_eq!(looks, 3, "{requests:?}");
    assert_orchestrator_accepts(&body);
}

/// blueprint_check.py on the blueprint and dockerinfo of a posted body.
fn assert_orchestrator_accepts(body: &Value) {
    let posted = tempfile::tempdir().expect("temp dir");
    for name in ["blueprint", "dockerinfo"] {
        std::fs::write(
            posted.path().join(format!("{name}.json")),
            body[name].to_string(),
        )
        .expect("write");
    }
    common::assert_orchestrator_accepts(posted.path());
}

#[test]
fn submit_exits_1_with_the_failing_tasks_error() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = use_case(work.path());
    let fake = fake_orchestrator(vec![
        look("running", ("running", None), ("pending", None)),
        look(
            "failed",
            ("completed", None),
            ("failed", Some("HTTP 500: disk full")),
        ),
    ]);
    let out = submit(&dir, &fake.url, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", common::describe(&out));
    assert!(out.stdout.is_empty(), "{}", common::describe(&out));
    let err = common::stderr(&out);
    let last = err.lines().last().unwrap_or("");
    for needle in [
        "error: workflow wf-0123456789ab failed at beta1:Take",
        "HTTP 500: disk full",
    ] {
        assert!(last.contains(needle), "{needle:?} not in {last}");
    }
    assert!(
        err.contains("beta1:Take: failed: HTTP 500: disk full"),
        "{err}"
    );

    // Neither inputs nor a services key were given: neither is sent, nor
    // is an Authorization header.
    let requests = fake.requests();
    let body: Value = serde_json::from_str(&requests[0].body).expect("a JSON body");
    let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["blueprint", "dockerinfo"]);
    assert!(requests.iter().all(|r| r.authorization.is_none()));
}

#[test]
fn submit_reports_the_orchestrators_refusal_and_bad_usage() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = use_case(work.path());
    // Nothing answers there.
    let closed = common::closed_loopback_url();
    let out = submit(&dir, &closed, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", common::describe(&out));
    assert!(
        common::stderr(&out).contains("cannot reach"),
        "{}",
        common::describe(&out)
    );
    // The orchestrator refuses the workflow: its detail, exit 1.
    let refusing = FakeHttp::start(|_| {
        (
            "400 Bad Request",
            json!({"detail": "Invalid blueprint: No start nodes found"}).to_string(),
        )
    });
    let out = submit(&dir, &refusing.url, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", common::describe(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("/workflows: HTTP 400: Invalid blueprint: No start nodes found"),
        "{err}"
    );
    // An answer without a workflow_id: one line naming the address.
    let odd = FakeHttp::start(|_| ("200 OK", json!({"status": "running"}).to_string()));
    let out = submit(&dir, &odd.url, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", common::describe(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("/workflows: unexpected answer from the orchestrator"),
        "{err}"
    );
    // A malformed input or API address: usage, exit 2.
    let out = submit(&dir, &closed, &["--input", "{\"protocol\":"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::describe(&out));
    let out = submit(&dir, "localhost:18000", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", common::describe(&out));
    // https: said plainly, not in terms of how services are called.
    let out = submit(&dir, "https://orchestrator.example:18000", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", common::describe(&out));
    let err = common::stderr(&out);
    assert!(err.contains("https is not supported"), "{err}");
    assert!(!err.contains("calls services"), "{err}");
    // A poll interval under 0.05 s, as for run and exec: usage, exit 2,
    // before anything is posted.
    let listening = fake_orchestrator(vec![("completed", json!([]))]);
    let out = Command::new(common::SVCGEN)
        .args(["pipeline", "submit", &dir, "--api", &listening.url])
        .args(["--poll-interval", "0.001"])
        .env_remove("ORCHESTRATOR_API_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run svcgen");
    assert_eq!(out.status.code(), Some(2), "{}", common::describe(&out));
    assert!(
        common::stderr(&out).contains("0.001: at least 0.05 seconds"),
        "{}",
        common::describe(&out)
    );
    assert!(listening.requests().is_empty());
}

#[test]
fn a_blank_task_error_is_reported_as_no_error_given() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = use_case(work.path());
    let fake = fake_orchestrator(vec![look(
        "failed",
        ("failed", Some("")),
        ("pending", None),
    )]);
    let out = submit(&dir, &fake.url, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", common::describe(&out));
    let err = common::stderr(&out);
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.ends_with("failed at alpha1:Make (task_aaaaaaaa): (no error given)"),
        "{err}"
    );
    assert!(
        err.contains("alpha1:Make: failed: (no error given)"),
        "{err}"
    );
}
