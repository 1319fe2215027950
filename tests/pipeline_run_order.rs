//! `svcgen pipeline run` on the hand-made fan-in use case
//! (tests/fixtures/fan_in: two sources, three operations, feeding one sink),
//! each node a fake service (tests/fake_http): the orchestrator's task ids
//! and queue order, the start tasks given the `--input`s, the sink sent
//! the outputs of all three upstream tasks in the order they completed,
//! `--at` by folder, ip_address or container, and a failure in the middle;
//! and, without `--at`, each node called at `http://<ip_address>:<port>`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod common;
mod fake_http;

use fake_http::{FakeHttp, Request};

/// Every execute any fake received, as `(method, body)`, in order.
type Calls = Arc<Mutex<Vec<(String, Value)>>>;

/// A node answering execute for each method: quick methods complete at
/// once; `Read` runs and is polled; a method in `failing` fails.
fn node(host: &'static str, calls: &Calls, failing: &'static str) -> FakeHttp {
    let calls = calls.clone();
    FakeHttp::start(move |request: &Request| {
        let output = |method: &str| {
            json!({"protocol": "grpc", "uri": format!("{host}:50051"), "format": method,
                   "metadata": {"task_id": format!("{method}.poll")}})
        };
        if request.path == "/control/execute" {
            let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
            let method = body["method"].as_str().unwrap_or("?").to_string();
            calls.lock().expect("calls").push((method.clone(), body));
            let answer = match method.as_str() {
                m if m == failing => json!({"status": "failed", "error": format!("{m} broke")}),
                "Read" => json!({"status": "running", "task_id": "Read.poll"}),
                m => {
                    json!({"status": "complete", "task_id": format!("{m}.poll"), "output": output(m)})
                }
            };
            ("200 OK", answer.to_string())
        } else if request.path == "/control/status/Read.poll" {
            (
                "200 OK",
                json!({"status": "complete", "progress": 100}).to_string(),
            )
        } else if request.path == "/control/output/Read.poll" {
            ("200 OK", json!({"output": output("Read")}).to_string())
        } else {
            (
                "404 Not Found",
                json!({"detail": "no such endpoint"}).to_string(),
            )
        }
    })
}

/// `svcgen pipeline run <fixture> --json --at …` against three fakes.
fn run(calls: &Calls, failing: &'static str, extra: &[&str]) -> Output {
    let (a, b, c) = (
        node("a-source", calls, failing),
        node("b-source", calls, failing),
        node("c-sink", calls, failing),
    );
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fan_in");
    Command::new(common::SVCGEN)
        .args(["pipeline", "run", "--json", "--poll-interval", "0.05"])
        .arg(&fixture)
        .args(["--at", &format!("a_source={}", a.url)])
        .args(["--at", &format!("b-source={}", b.url)])
        .args(["--at", &format!("c_sink1={}", c.url)])
        .args(extra)
        .env_remove("SERVICE_API_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run svcgen")
}

/// The orchestrator's task id of `node_key`.
fn task_id(node_key: &str) -> String {
    let digest = Sha256::digest(node_key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("task_{}", &hex[..8])
}

fn output(host: &str, method: &str) -> Value {
    json!({"protocol": "grpc", "uri": format!("{host}:50051"), "format": method,
           "schema_uri": null, "size_bytes": null, "checksum": null,
           "metadata": {"task_id": format!("{method}.poll")}})
}

#[test]
fn the_sink_gets_every_upstream_output_in_completion_order() {
    let calls: Calls = Arc::default();
    let input = r#"{"protocol": "file", "uri": "/data/raw.csv", "format": "csv"}"#;
    let out = run(&calls, "none", &["--input", input]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));

    let calls = calls.lock().expect("calls").clone();
    let methods: Vec<&str> = calls.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(methods, ["Measure", "Resample", "Read", "Combine"]);
    let keys = [
        "a_source1:Measure",
        "a_source1:Resample",
        "b_source1:Read",
        "c_sink1:Combine",
    ];
    let workflow = calls[0].1["workflow_id"].clone();
    for ((_, body), key) in calls.iter().zip(keys) {
        assert_eq!(body["task_id"], task_id(key), "{key}");
        assert_eq!(body["workflow_id"], workflow, "one workflow id per run");
    }
    let given = json!([{"protocol": "file", "uri": "/data/raw.csv", "format": "csv",
                        "schema_uri": null, "size_bytes": null, "checksum": null, "metadata": {}}]);
    for (_, body) in &calls[..3] {
        assert_eq!(body["inputs"], given);
    }
    assert_eq!(
        calls[3].1["inputs"],
        json!([
            output("a-source", "Measure"),
            output("a-source", "Resample"),
            output("b-source", "Read")
        ])
    );

    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["status"], "completed");
    assert_eq!(report["pipeline"], "Fan-in demo");
    let reported: Vec<&str> = report["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["node_key"].as_str())
        .collect();
    assert_eq!(reported, keys);
    assert_eq!(report["tasks"][3]["inputs"], calls[3].1["inputs"]);
}

#[test]
fn a_failure_stops_the_run_before_the_sink() {
    let calls: Calls = Arc::default();
    let out = run(&calls, "Resample", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let methods: Vec<String> = calls
        .lock()
        .expect("calls")
        .iter()
        .map(|(m, _)| m.clone())
        .collect();
    assert_eq!(methods, ["Measure", "Resample"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let states: Vec<&str> = report["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["status"].as_str())
        .collect();
    assert_eq!(states, ["completed", "failed", "pending", "pending"]);
    let err = common::stderr(&out);
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with(
            "error: pipeline failed at node a_source1, method Resample (http://127.0.0.1:"
        ) && last.ends_with("): Resample broke"),
        "{err}"
    );
}

#[test]
fn without_at_each_node_is_called_at_its_ip_address_and_port() {
    let calls: Calls = Arc::default();
    let (alpha, beta) = (node("alpha", &calls, "none"), node("beta", &calls, "none"));
    let port = |fake: &FakeHttp| fake.url.rsplit(':').next().expect("a port").to_string();
    let (alpha_port, beta_port) = (port(&alpha), port(&beta));
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("local_demo");
    common::write_alpha_beta_protos(&dir);
    // The fakes listen on 127.0.0.1; `localhost` resolves there too.
    let connections = json!({"pipeline": {"name": "local_demo",
        "service_mapping": {
            "alpha": {"ip_address": "127.0.0.1", "port": alpha_port.parse::<u16>().expect("port")},
            "beta": {"ip_address": "localhost", "port": beta_port}},
        "connections": [{"from_service": "alpha", "from_method": "Make",
                         "to_service": "beta", "to_method": "Take"}]}});
    common::write(&dir, "connections.json", &connections.to_string());
    let out = Command::new(common::SVCGEN)
        .args(["pipeline", "run", "--json", "--poll-interval", "0.05"])
        .arg(&dir)
        .env_remove("SERVICE_API_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run svcgen");
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));

    let executes = |fake: &FakeHttp| -> Vec<String> {
        fake.requests()
            .iter()
            .filter(|r| r.path == "/control/execute")
            .map(|r| serde_json::from_str::<Value>(&r.body).expect("JSON")["method"].to_string())
            .collect()
    };
    assert_eq!(executes(&alpha), ["\"Make\""]);
    assert_eq!(executes(&beta), ["\"Take\""]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let urls: Vec<&str> = report["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["url"].as_str())
        .collect();
    assert_eq!(
        urls,
        [
            format!("http://127.0.0.1:{alpha_port}"),
            format!("http://localhost:{beta_port}")
        ]
    );
}
