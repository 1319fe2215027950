//! A task's whole life as an operator sees it: cancelled on request (the
//! handler sees it, the dedupe key is free again), cut off by a long
//! method's deadline, and listed by `GET /control/tasks`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Fixture, Harness, Output, ProduceResponse, PROBE, RPC};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use svcgen_runtime::testing::{poll_id, TestService};
use svcgen_runtime::{Config, Definition, MethodKind};

/// A long method whose handler blocks a thread until its context says it
/// was cancelled, then records that it saw it.
const STUBBORN: &str = "SvcgenStubborn";

async fn cancel(service: &TestService, poll_id: &str) -> (StatusCode, Value) {
    let path = format!("/control/cancel/{poll_id}");
    service.http(Method::POST, &path, None, &[]).await
}

#[tokio::test]
async fn a_cancelled_task_fails_with_cancelled_its_handler_sees_it_and_its_key_is_free() {
    let saw_it = Arc::new(AtomicBool::new(false));
    let mut methods = Fixture::methods();
    let flag = saw_it.clone();
    methods.add_served_by(STUBBORN, RPC, MethodKind::Long, move |ctx| {
        let flag = flag.clone();
        async move {
            // Blocking work that checks its context, as the contract asks.
            // (Its async part is dropped at cancellation; the blocking
            // thread runs on and must see the token itself.)
            tokio::task::spawn_blocking(move || {
                for _ in 0..1000 {
                    if ctx.is_cancelled() {
                        flag.store(true, Ordering::SeqCst);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
            .await
            .ok();
            Ok(Output::Produce(ProduceResponse::default()))
        }
    });
    let service = TestService::start_with::<Fixture>(Config::default(), methods).await;
    let first = poll_id(&service.execute(STUBBORN, json!({})).await);

    let (status, body) = cancel(&service, &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"task_id": first, "status": "failed", "error": "cancelled"})
    );
    let (_, now) = service.status(&first).await;
    assert_eq!(
        (&now["status"], &now["error"]),
        (&json!("failed"), &json!("cancelled"))
    );

    // The blocking handler saw the cancellation through its context.
    for _ in 0..500 {
        if saw_it.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(saw_it.load(Ordering::SeqCst), "the handler never saw it");
    let (_, still) = service.status(&first).await;
    assert_eq!(
        still["error"], "cancelled",
        "a late result replaced it: {still}"
    );

    // Cancelled again, or a finished task: 409; an unknown one: 404.
    let (status, body) = cancel(&service, &first).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap_or("")
        .contains("already finished (failed)"));
    let (status, body) = cancel(&service, "nope.1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The same orchestrator ids start a new task: the key was freed.
    let second = poll_id(&service.execute(STUBBORN, json!({})).await);
    assert_ne!(first, second);
    let (status, _) = cancel(&service, &second).await;
    assert_eq!(status, StatusCode::OK);
    service.stop().await;
}

#[tokio::test]
async fn a_long_method_past_its_deadline_fails_and_names_the_setting() {
    let service = Harness::start_with(Config {
        method_deadlines: vec![(PROBE.to_string(), Duration::from_secs(1))],
        ..Config::default()
    })
    .await;
    // Held for ever: only the deadline ends it.
    let held = poll_id(
        &service
            .execute_as("w", "held", PROBE, json!({"hold": true}))
            .await,
    );
    let done = service.wait_until_done(&held).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(
        done["error"],
        format!("{PROBE} did not finish within its 1s deadline (METHOD_TIMEOUT_SECS)")
    );
    // Other long methods keep no deadline.
    let open = poll_id(&service.execute_as("w", "open", RPC, json!({})).await);
    assert_eq!(service.wait_until_done(&open).await["status"], "complete");
    service.stop().await;
}

#[tokio::test]
async fn a_deadline_for_a_method_the_service_lacks_is_refused_at_start() {
    let config = Config {
        method_deadlines: vec![("TrainModle".to_string(), Duration::from_secs(5))],
        ..Config::default()
    };
    let Err(err) = svcgen_runtime::run_with::<Fixture>(config, Fixture::methods()).await else {
        panic!("started with a deadline for an unknown method");
    };
    assert_eq!(
        err.to_string(),
        "METHOD_TIMEOUT_SECS names `TrainModle`, which this service does not have; \
         its methods: Produce"
    );
}

#[tokio::test]
async fn the_task_list_is_newest_first_with_limit_and_status_filters() {
    let service = Harness::start().await;
    let workflow = format!("wf-{}", "w".repeat(100));
    let done = poll_id(&service.execute_as(&workflow, "a", RPC, json!({})).await);
    service.wait_until_done(&done).await;
    let failed = poll_id(
        &service
            .execute_as("wf-2", "b", PROBE, json!({"fail": "no"}))
            .await,
    );
    service.wait_until_done(&failed).await;
    let running = poll_id(
        &service
            .execute_as("wf-3", "c", PROBE, json!({"hold": true}))
            .await,
    );

    let list = |query: &'static str| {
        let service = &service;
        async move {
            let (status, body) = service
                .http(Method::GET, &format!("/control/tasks{query}"), None, &[])
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body["tasks"].as_array().cloned().unwrap_or_default()
        }
    };
    let ids = |tasks: &[Value]| -> Vec<String> {
        tasks
            .iter()
            .map(|t| t["task_id"].as_str().unwrap_or_default().to_string())
            .collect()
    };

    let all = list("").await;
    assert_eq!(
        ids(&all),
        [running.as_str(), failed.as_str(), done.as_str()]
    );
    let newest = &all[0];
    assert_eq!(
        (&newest["method"], &newest["workflow_id"], &newest["status"]),
        (&json!(PROBE), &json!("wf-3"), &json!("running"))
    );
    assert!(newest["finished_at"].is_null(), "{newest}");
    let oldest = &all[2];
    assert_eq!(
        (&oldest["status"], &oldest["progress"]),
        (&json!("complete"), &json!(100))
    );
    let shown = oldest["workflow_id"].as_str().unwrap_or_default();
    assert!(
        shown.chars().count() == 65 && shown.ends_with('…'),
        "a long workflow id is shortened: {shown}"
    );
    for task in &all[1..] {
        let (started, finished) = (task["started_at"].as_str(), task["finished_at"].as_str());
        let (Some(started), Some(finished)) = (started, finished) else {
            panic!("no times in {task}");
        };
        assert!(started.ends_with('Z') && started.len() == 24, "{started}");
        assert!(started <= finished, "{task}");
    }

    assert_eq!(
        ids(&list("?limit=2").await),
        [running.as_str(), failed.as_str()]
    );
    assert_eq!(ids(&list("?status=failed").await), [failed.as_str()]);
    assert_eq!(
        ids(&list("?status=running&limit=1").await),
        [running.as_str()]
    );
    for bad in ["?limit=0", "?limit=1001", "?status=done", "?sort=asc"] {
        let (status, body) = service
            .http(Method::GET, &format!("/control/tasks{bad}"), None, &[])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    service.gate.add_permits(1);
    service.wait_until_done(&running).await;
    service.stop().await;
}

#[tokio::test]
async fn cancel_and_the_task_list_need_the_key_when_one_is_set() {
    let service = Harness::start_with(Config {
        api_key: Some("s3cret".to_string()),
        ..Config::default()
    })
    .await;
    let key = [("authorization", "Bearer s3cret")];
    for (method, path, with_key) in [
        (Method::POST, "/control/cancel/x.1", StatusCode::NOT_FOUND),
        (Method::GET, "/control/tasks", StatusCode::OK),
    ] {
        let (status, body) = service.http(method.clone(), path, None, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        let (status, body) = service.http(method, path, None, &key).await;
        assert_eq!(status, with_key, "{path} with the key: {body}");
    }
    service.stop().await;
}
