//! Task lifecycle over HTTP control: long tasks run to completion, failures
//! and panics fail their task, repeats join the running task, quick methods
//! answer at once or fail at their deadline, many tasks run concurrently.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{Harness, LastResult, ProduceResponse, PROBE, QUICK_PROBE, RPC};
use hyper::StatusCode;
use serde_json::{json, Value};
use svcgen_runtime::testing::poll_id;
use svcgen_runtime::Config;

#[tokio::test]
async fn long_task_runs_to_completion_and_its_result_is_served_over_grpc() {
    let h = Harness::start().await;
    let answer = h
        .execute_as("wf-1", "task_3f2a9c1d", PROBE, json!({"steps": 5}))
        .await;
    assert_eq!(answer["status"], "running", "{answer}");
    let id = poll_id(&answer);
    assert!(id.starts_with("task_3f2a9c1d."), "{id}");
    assert!(
        id.len() <= 128
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
        "poll id is not URL-safe and bounded: {id}"
    );

    let done = h.wait_until_done(&id).await;
    assert_eq!(
        (&done["status"], &done["progress"], &done["error"]),
        (&json!("complete"), &json!(100), &Value::Null),
        "{done}"
    );

    let (status, output) = h.output(&id).await;
    assert_eq!(status, StatusCode::OK, "{output}");
    let grpc_port = h.grpc_addr().port();
    assert_eq!(
        output,
        json!({"output": {"protocol": "grpc", "uri": format!("127.0.0.1:{grpc_port}"),
                          "format": RPC, "metadata": {"task_id": id}}})
    );

    let expected = ProduceResponse {
        value: id.clone(),
        steps: 5,
    };
    let by_id = h.fetch::<ProduceResponse>(RPC, &id).await;
    assert_eq!(by_id.expect("by x-task-id"), expected);
    let latest = h.call::<ProduceResponse>(RPC, None).await;
    assert_eq!(latest.expect("latest, without x-task-id"), expected);
    let last = h
        .call::<LastResult>("GetLastResult", None)
        .await
        .expect("GetLastResult");
    assert_eq!(
        (last.task_id.as_str(), last.method.as_str()),
        (id.as_str(), RPC),
        "{last:?}"
    );
    assert!(last.result.is_some(), "{last:?}");
    let last_by_id = h
        .fetch::<LastResult>("GetLastResult", &id)
        .await
        .expect("GetLastResult by x-task-id");
    assert_eq!(last_by_id.task_id, id, "{last_by_id:?}");
    h.stop().await;
}

#[tokio::test]
async fn a_failing_or_panicking_handler_fails_its_task_and_the_service_keeps_running() {
    let h = Harness::start().await;
    let failing = poll_id(&h.execute(PROBE, json!({"fail": "disk full"})).await);
    let done = h.wait_until_done(&failing).await;
    assert_eq!(
        (done["status"].as_str(), done["error"].as_str()),
        (Some("failed"), Some("disk full")),
        "{done}"
    );

    let boom = poll_id(&h.execute(PROBE, json!({"panic": true})).await);
    let done = h.wait_until_done(&boom).await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("handler panicked"), "{done}");
    assert!(
        !error.contains("probe asked to panic"),
        "the panic message goes to the log only: {done}"
    );

    for id in [&failing, &boom] {
        let (status, body) = h.output(id).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "output of failed {id}: {body}"
        );
    }
    let (status, body) = h.http(hyper::Method::GET, "/health", None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    h.run_to_completion(PROBE, json!({})).await;
    h.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_tasks_all_complete() {
    let h = Arc::new(Harness::start().await);
    let mut runs = tokio::task::JoinSet::new();
    for n in 0..50 {
        let h = h.clone();
        runs.spawn(async move {
            let parameters = json!({"steps": 4, "step_ms": 20});
            let answer = h
                .execute_as("wf-load", &format!("task_{n}"), PROBE, parameters)
                .await;
            let id = poll_id(&answer);
            let done = h.wait_until_done(&id).await;
            (id, done)
        });
    }
    let mut ids = HashSet::new();
    while let Some(joined) = runs.join_next().await {
        let (id, done) = joined.expect("a run panicked");
        assert_eq!(done["status"], "complete", "{id}: {done}");
        assert!(ids.insert(id.clone()), "poll id {id} given twice");
    }
    assert_eq!(ids.len(), 50);
    let h = Arc::into_inner(h).expect("every run has finished");
    h.stop().await;
}

#[tokio::test]
async fn overlapping_runs_with_one_task_id_are_told_apart_by_workflow() {
    let h = Harness::start().await;
    let hold = json!({"steps": 0, "hold": true});
    let first = poll_id(&h.execute_as("wf-a", "task_same", PROBE, hold.clone()).await);
    let repeat = h.execute_as("wf-a", "task_same", PROBE, hold.clone()).await;
    assert_eq!(
        repeat,
        json!({"status": "running", "task_id": first}),
        "a repeat joins the running task"
    );
    let other_run = poll_id(&h.execute_as("wf-b", "task_same", PROBE, hold).await);
    assert_ne!(first, other_run, "another workflow run starts its own task");

    h.gate.add_permits(2);
    for id in [&first, &other_run] {
        let done = h.wait_until_done(id).await;
        assert_eq!(done["status"], "complete", "{id}: {done}");
    }
    let rerun = poll_id(&h.execute_as("wf-a", "task_same", PROBE, json!({})).await);
    assert!(
        rerun != first && rerun != other_run,
        "after completion a repeat starts a new task, got {rerun}"
    );
    let done = h.wait_until_done(&rerun).await;
    assert_eq!(done["status"], "complete", "{rerun}: {done}");
    h.stop().await;
}

#[tokio::test]
async fn quick_methods_answer_complete_at_once_or_fail_at_their_deadline() {
    let h = Harness::start_with(Config {
        quick_deadline: Duration::from_secs(1),
        ..Config::default()
    })
    .await;
    let answer = h.execute(QUICK_PROBE, json!({"steps": 1})).await;
    assert_eq!(answer["status"], "complete", "{answer}");
    let id = poll_id(&answer);
    assert_eq!(
        answer["output"]["metadata"]["task_id"],
        id.as_str(),
        "{answer}"
    );
    assert_eq!(answer["output"]["format"], RPC, "{answer}");
    let (_, status) = h.status(&id).await;
    assert_eq!(
        (status["status"].as_str(), status["progress"].as_u64()),
        (Some("complete"), Some(100)),
        "{status}"
    );

    let slow = h
        .execute(QUICK_PROBE, json!({"steps": 0, "hold": true}))
        .await;
    assert_eq!(slow["status"], "failed", "{slow}");
    let error = slow["error"].as_str().unwrap_or_default();
    assert!(error.contains("deadline"), "{slow}");
    h.stop().await;
}

#[tokio::test]
async fn a_quick_task_whose_caller_hangs_up_still_fails_at_its_deadline() {
    let h = Harness::start_with(Config {
        quick_deadline: Duration::from_secs(1),
        ..Config::default()
    })
    .await;
    let hold = json!({"steps": 0, "hold": true});
    let hung_up = tokio::time::timeout(
        Duration::from_millis(200),
        h.execute_as("wf-1", "hangup", QUICK_PROBE, hold.clone()),
    )
    .await;
    assert!(
        hung_up.is_err(),
        "the held quick task answered early: {hung_up:?}"
    );
    // The task still runs: a repeat joins it and learns its poll id.
    let joined = h.execute_as("wf-1", "hangup", QUICK_PROBE, hold).await;
    assert_eq!(joined["status"], "running", "{joined}");
    let done = h.wait_until_done(&poll_id(&joined)).await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(error.contains("deadline"), "{done}");
    h.stop().await;
}
