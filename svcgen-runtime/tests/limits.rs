//! What the service does at its limits: too many running tasks (429), the
//! result budget used up (503), results past their retention (tombstones),
//! and ids longer than the contract allows (422).

mod common;

use std::time::Duration;

use common::client::{fetch, Client};
use common::{Harness, LastResult, ProduceResponse, PROBE, QUICK_PROBE, RPC};
use hyper::StatusCode;
use serde_json::{json, Value};
use svcgen_runtime::testing::poll_id;
use svcgen_runtime::Config;
use tonic::Code;

fn execute_body(task_id: &str, method: &str, parameters: Value) -> Value {
    json!({"method": method, "workflow_id": "wf-limits", "task_id": task_id,
           "parameters": parameters})
}

#[tokio::test]
async fn beyond_max_running_tasks_execute_answers_429_and_starts_nothing() {
    let h = Harness::start_with(Config {
        max_running_tasks: 2,
        ..Config::default()
    })
    .await;
    let mut client = Client::connect(h.http_addr()).await;
    let hold = json!({"steps": 0, "hold": true});
    let first = poll_id(&h.execute_as("wf-limits", "a", PROBE, hold.clone()).await);
    let second = poll_id(&h.execute_as("wf-limits", "b", PROBE, hold.clone()).await);

    for method in [PROBE, QUICK_PROBE] {
        let refused = client.execute(&execute_body("c", method, json!({}))).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{refused:?}");
        assert!(
            refused.detail().contains("MAX_RUNNING_TASKS"),
            "{refused:?}"
        );
        assert!(
            refused.retry_after().is_some_and(|secs| secs >= 1),
            "{refused:?}"
        );
    }
    let joined = client.execute(&execute_body("a", PROBE, hold)).await;
    assert_eq!(
        (joined.status, &joined.body),
        (
            StatusCode::OK,
            &json!({"status": "running", "task_id": first})
        ),
        "a repeat joins its running task, whatever the limit"
    );

    h.gate.add_permits(2);
    for id in [&first, &second] {
        let done = h.wait_until_done(id).await;
        assert_eq!(done["status"], "complete", "{id}: {done}");
    }
    // Both places are free again: nothing was left running.
    let hold = json!({"steps": 0, "hold": true});
    let third = poll_id(&h.execute_as("wf-limits", "c", PROBE, hold.clone()).await);
    let fourth = poll_id(&h.execute_as("wf-limits", "d", PROBE, hold).await);
    let quick = client
        .execute(&execute_body("e", QUICK_PROBE, json!({})))
        .await;
    assert_eq!(quick.status, StatusCode::TOO_MANY_REQUESTS, "{quick:?}");
    h.gate.add_permits(2);
    for id in [&third, &fourth] {
        let done = h.wait_until_done(id).await;
        assert_eq!(done["status"], "complete", "{id}: {done}");
    }
    let quick = client
        .execute(&execute_body("e", QUICK_PROBE, json!({})))
        .await;
    assert_eq!(quick.body["status"], "complete", "{quick:?}");
    h.stop().await;
}

#[tokio::test]
async fn when_the_result_budget_is_used_up_execute_answers_503_and_results_stay() {
    let h = Harness::start_with(Config {
        max_result_store_bytes: 4096,
        ..Config::default()
    })
    .await;
    let mut client = Client::connect(h.http_addr()).await;
    let held = poll_id(
        &h.execute_as(
            "wf-limits",
            "held",
            PROBE,
            json!({"steps": 0, "hold": true}),
        )
        .await,
    );
    let big_value = "v".repeat(5000);
    let big = h
        .run_to_completion(RPC, json!({"steps": 1, "value": big_value}))
        .await;

    let refused = client
        .execute(&execute_body("next", PROBE, json!({})))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{refused:?}"
    );
    assert!(
        refused.detail().contains("MAX_RESULT_STORE_BYTES=4096"),
        "{refused:?}"
    );
    let retry_after = refused.retry_after().expect("a Retry-After header");
    assert!((1..=3600).contains(&retry_after), "{refused:?}");

    let joined = client
        .execute(&execute_body("held", PROBE, json!({"hold": true})))
        .await;
    assert_eq!(
        joined.body,
        json!({"status": "running", "task_id": held}),
        "a repeat of a running task is joined, not refused"
    );
    let last = client
        .execute(&execute_body("last", "GetLastResult", json!({})))
        .await;
    assert_eq!(
        (last.status, last.body["status"].as_str()),
        (StatusCode::OK, Some("complete")),
        "GetLastResult stores no result: {last:?}"
    );

    // Nothing finished was dropped to make room.
    let output = client.output(&big).await;
    assert_eq!(output.status, StatusCode::OK, "{output:?}");
    let fetched = h.fetch::<ProduceResponse>(RPC, &big).await;
    assert_eq!(fetched.expect("the big result").value, big_value);

    // A running task still completes, and stores its result past the budget.
    h.gate.add_permits(1);
    let done = h.wait_until_done(&held).await;
    assert_eq!(done["status"], "complete", "{done}");
    let fetched = h.fetch::<ProduceResponse>(RPC, &held).await;
    assert_eq!(fetched.expect("the held result").value, held);
    h.stop().await;
}

#[tokio::test]
async fn past_its_retention_a_task_leaves_a_tombstone_then_is_forgotten() {
    let retention = Duration::from_secs(1);
    let h = Harness::start_with(Config {
        task_retention: retention,
        ..Config::default()
    })
    .await;
    let mut client = Client::connect(h.http_addr()).await;
    let complete = h.run_to_completion(PROBE, json!({"steps": 2})).await;
    let failed = poll_id(&h.execute(PROBE, json!({"fail": "disk full"})).await);
    let done = h.wait_until_done(&failed).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(client.output(&complete).await.status, StatusCode::OK);

    // Output answers 410 once the result has expired (bounded: 100 polls).
    let mut expired = None;
    for _ in 0..100 {
        let output = client.output(&complete).await;
        if output.status != StatusCode::OK {
            expired = Some(output);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expired = expired.expect("the result outlived 5 s with a retention of 1 s");
    assert_eq!(expired.status, StatusCode::GONE, "{expired:?}");
    assert!(expired.detail().contains("expired"), "{expired:?}");

    let status = client.status(&complete).await;
    assert_eq!(status.status, StatusCode::OK, "{status:?}");
    assert_eq!(
        (
            &status.body["status"],
            &status.body["progress"],
            &status.body["error"],
            &status.body["method"]
        ),
        (&json!("complete"), &json!(100), &Value::Null, &json!(PROBE)),
        "{status:?}"
    );
    let channel = h.channel().await;
    for rpc in [RPC, "GetLastResult"] {
        let gone = fetch::<LastResult>(&channel, rpc, &complete).await;
        let gone = gone.expect_err("the result expired");
        assert_eq!(gone.code(), Code::NotFound, "{rpc}: {gone:?}");
        assert!(gone.message().contains("expired"), "{rpc}: {gone:?}");
    }
    let status = client.status(&failed).await;
    assert_eq!(
        (status.status, status.body["status"].as_str()),
        (StatusCode::OK, Some("failed")),
        "{status:?}"
    );
    assert_eq!(status.body["error"], "disk full", "{status:?}");
    let output = client.output(&failed).await;
    assert_eq!(output.status, StatusCode::BAD_REQUEST, "{output:?}");
    assert!(output.detail().contains("disk full"), "{output:?}");
    let gone = fetch::<ProduceResponse>(&channel, RPC, &failed).await;
    let gone = gone.expect_err("a failed task has no result");
    assert_eq!(gone.code(), Code::FailedPrecondition, "{gone:?}");

    // The latest result is kept past its task's retention.
    let latest = h.call::<ProduceResponse>(RPC, None).await;
    assert_eq!(latest.expect("the latest result").value, complete);

    // The tombstone goes after another retention period (bounded: 100 polls).
    let mut forgotten = false;
    for _ in 0..100 {
        if client.status(&complete).await.status == StatusCode::NOT_FOUND {
            forgotten = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        forgotten,
        "the tombstone outlived 5 s with a retention of 1 s"
    );
    h.stop().await;
}

#[tokio::test]
async fn ids_longer_than_256_bytes_are_refused_naming_the_field_and_the_limit() {
    let h = Harness::start().await;
    let mut client = Client::connect(h.http_addr()).await;
    let long = "x".repeat(257);
    let huge = "w".repeat(1 << 20);
    for (field, value) in [
        ("workflow_id", &huge),
        ("task_id", &long),
        ("method", &long),
    ] {
        let mut body = json!({"method": PROBE, "workflow_id": "wf", "task_id": "t"});
        body[field] = json!(value);
        let refused = client.execute(&body).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {refused:?}"
        );
        let detail = refused.detail();
        assert!(
            detail.contains(&format!("`{field}`")) && detail.contains("256 bytes"),
            "{detail}"
        );
        assert!(detail.len() < 200, "{detail}");
    }
    let longest = "y".repeat(256);
    let answer = client
        .execute(&json!({"method": PROBE, "workflow_id": longest, "task_id": longest}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "256 bytes: {answer:?}");
    let id = poll_id(&answer.body);
    assert!(id.len() <= 128 && id.starts_with(&"y".repeat(100)), "{id}");
    let done = h.wait_until_done(&id).await;
    assert_eq!(done["status"], "complete", "{done}");
    h.stop().await;
}
