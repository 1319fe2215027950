//! The gRPC data interface: results served exactly as returned, by
//! `x-task-id` or latest, `GetLastResult`, status codes for tasks without a
//! result, chained tasks, health and reflection.

mod common;

use common::{
    health, reflected_services, stream, FetchRequest, Fixture, Harness, LastResult, Output,
    ProduceResponse, CHAIN_PROBE, FETCH_PATH, OTHER_PROBE, PROBE, RPC,
};
use hyper::StatusCode;
use prost::Message;
use serde_json::{json, Value};
use svcgen_runtime::testing::{poll_id, TestService};
use svcgen_runtime::{Config, Definition};
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn a_fetched_result_is_exactly_what_the_handler_returned() {
    let service = TestService::start::<Fixture>().await;
    let id = service
        .run_to_completion(RPC, json!({"value": "v1", "steps": 3}))
        .await;
    let returned = ProduceResponse {
        value: "v1".to_string(),
        steps: 3,
    };
    let response = service.fetch::<ProduceResponse>(RPC, &id).await;
    assert_eq!(response.expect("from the rpc"), returned);
    let last = service
        .fetch::<LastResult>("GetLastResult", &id)
        .await
        .expect("GetLastResult");
    assert_eq!(
        last,
        LastResult {
            task_id: id.clone(),
            method: RPC.to_string(),
            result: Some(Output::Produce(returned)),
        },
        "in the GetLastResult envelope"
    );
    service.stop().await;
}

#[tokio::test]
async fn an_rpc_the_service_does_not_have_is_unimplemented() {
    let service = TestService::start::<Fixture>().await;
    let err = service
        .call::<ProduceResponse>("Nope", None)
        .await
        .expect_err("no rpc Nope");
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    service.stop().await;
}

#[tokio::test]
async fn grpc_reports_unknown_running_and_failed_tasks_with_the_right_codes() {
    let h = Harness::start().await;
    let none = h.call::<ProduceResponse>(RPC, None).await;
    let none = none.expect_err("nothing has completed yet");
    assert_eq!(none.code(), Code::NotFound, "{none:?}");
    let unknown = h.fetch::<ProduceResponse>(RPC, "nope.1").await;
    let unknown = unknown.expect_err("unknown id");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    let hold = json!({"steps": 0, "hold": true});
    let held = poll_id(&h.execute(PROBE, hold).await);
    let running = h.fetch::<ProduceResponse>(RPC, &held).await;
    let running = running.expect_err("still running");
    assert_eq!(running.code(), Code::FailedPrecondition, "{running:?}");
    let (status, body) = h.output(&held).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "output of a running task: {body}"
    );
    h.gate.add_permits(1);
    let done = h.wait_until_done(&held).await;
    assert_eq!(done["status"], "complete", "{done}");

    let failing = poll_id(&h.execute(PROBE, json!({"fail": "disk full"})).await);
    let done = h.wait_until_done(&failing).await;
    assert_eq!(done["status"], "failed", "{done}");
    let failed = h.fetch::<ProduceResponse>(RPC, &failing).await;
    let failed = failed.expect_err("failed");
    assert_eq!(failed.code(), Code::FailedPrecondition, "{failed:?}");
    assert!(failed.message().contains("disk full"), "{failed:?}");
    h.stop().await;
}

/// The code of a call (`Ok` for an answer).
fn code<T>(answer: &Result<T, Status>) -> Code {
    answer.as_ref().map_or_else(Status::code, |_| Code::Ok)
}

/// The codes of the unary rpc `rpc` and of the streaming rpc asked for
/// `<service>/<rpc>`, for the task `poll_id` (the latest without it); the
/// streaming rpc's status message.
async fn codes(h: &TestService, rpc: &str, poll_id: Option<&str>) -> (Code, Code, String) {
    let unary = h.call::<LastResult>(rpc, poll_id).await;
    let full = format!("{}/{rpc}", Fixture::GRPC_SERVICE);
    let streamed = stream(h, &full, poll_id).await;
    let message = streamed
        .as_ref()
        .err()
        .map(|status| status.message().to_string());
    (code(&unary), code(&streamed), message.unwrap_or_default())
}

#[tokio::test]
async fn the_streaming_rpc_answers_with_the_unary_codes_and_bytes() {
    let h = Harness::start().await;
    let not_found = (Code::NotFound, Code::NotFound);
    let (unary, streamed, _) = codes(&h, RPC, None).await;
    assert_eq!((unary, streamed), not_found, "nothing has completed yet");
    let (unary, streamed, _) = codes(&h, RPC, Some("nope.1")).await;
    assert_eq!((unary, streamed), not_found, "an unknown task");

    let hold = json!({"steps": 0, "hold": true});
    let held = poll_id(&h.execute(PROBE, hold.clone()).await);
    let (unary, streamed, _) = codes(&h, RPC, Some(&held)).await;
    let not_ready = (Code::FailedPrecondition, Code::FailedPrecondition);
    assert_eq!((unary, streamed), not_ready, "a running task");
    let other = poll_id(&h.execute(OTHER_PROBE, hold).await);
    let (unary, streamed, _) = codes(&h, RPC, Some(&other)).await;
    assert_eq!((unary, streamed), not_found, "a task of another method");
    h.gate.add_permits(2);
    for id in [&held, &other] {
        let done = h.wait_until_done(id).await;
        assert_eq!(done["status"], "complete", "{done}");
    }

    let failing = poll_id(&h.execute(PROBE, json!({"fail": "disk full"})).await);
    h.wait_until_done(&failing).await;
    let (unary, streamed, message) = codes(&h, RPC, Some(&failing)).await;
    assert_eq!((unary, streamed), not_ready, "a failed task");
    assert!(message.contains("disk full"), "{message}");

    // A result: the total alone first, then the bytes of the unary answer.
    let full = format!("{}/{RPC}", Fixture::GRPC_SERVICE);
    for rpc in [full.as_str(), RPC] {
        let streamed = stream(&h, rpc, Some(&held)).await.expect("a result");
        let first = &streamed.messages[0];
        let data = streamed.data();
        assert_eq!(first.total_bytes, Some(data.len() as u64), "{rpc}");
        assert!(first.data.is_empty(), "{rpc}: {first:?}");
        assert!(
            streamed.messages[1..]
                .iter()
                .all(|m| m.total_bytes.is_none()),
            "{rpc}"
        );
        let unary = h.fetch::<ProduceResponse>(RPC, &held).await;
        let decoded = ProduceResponse::decode(&data[..]).expect("a ProduceResponse");
        assert_eq!(decoded, unary.expect("the unary answer"), "{rpc}");
    }
    let last = stream(&h, "GetLastResult", Some(&held)).await;
    let last = LastResult::decode(&last.expect("the envelope").data()[..]).expect("a LastResult");
    assert_eq!(
        last,
        h.fetch::<LastResult>("GetLastResult", &held)
            .await
            .expect("the unary envelope")
    );

    for rpc in ["Nope", "other.v1.Other/Produce", "Produce/"] {
        let err = stream(&h, rpc, None).await.expect_err(rpc);
        assert_eq!(err.code(), Code::Unimplemented, "{rpc}: {err:?}");
    }
    h.stop().await;
}

#[tokio::test]
async fn requests_larger_than_the_request_limit_are_refused_unread() {
    let config = Config {
        max_request_bytes: 1024,
        ..Config::default()
    };
    let h = Harness::start_with(config).await;
    h.run_to_completion(PROBE, json!({})).await;
    let huge = FetchRequest {
        rpc: "x".repeat(2048),
    };
    let paths = [
        format!("/{}/{RPC}", Fixture::GRPC_SERVICE),
        FETCH_PATH.to_string(),
    ];
    for path in paths {
        let mut grpc = tonic::client::Grpc::new(h.channel().await);
        grpc.ready().await.expect("ready");
        let path = tonic::codegen::http::uri::PathAndQuery::try_from(path).expect("a path");
        let codec = tonic_prost::ProstCodec::<FetchRequest, ProduceResponse>::default();
        let answer = grpc
            .unary(tonic::Request::new(huge.clone()), path.clone(), codec)
            .await;
        let err = answer.expect_err("a request over the limit");
        assert_eq!(err.code(), Code::ResourceExhausted, "{path}: {err:?}");
        assert!(
            err.message().contains("GRPC_MAX_REQUEST_BYTES (1024)"),
            "{path}: {err:?}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_running_task_of_another_method_is_not_found_over_grpc() {
    let h = Harness::start().await;
    let hold = json!({"steps": 0, "hold": true});
    let other = poll_id(&h.execute(OTHER_PROBE, hold).await);
    let err = h.fetch::<ProduceResponse>(RPC, &other).await;
    let err = err.expect_err("not a task of this rpc");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    h.gate.add_permits(1);
    let done = h.wait_until_done(&other).await;
    assert_eq!(done["status"], "complete", "{done}");
    h.stop().await;
}

#[tokio::test]
async fn get_last_result_on_execute_fails_before_any_result_then_pins_the_latest() {
    let h = Harness::start().await;
    let early = h
        .execute_as("wf-1", "last", "GetLastResult", json!({}))
        .await;
    assert_eq!(early["status"], "failed", "no result exists yet: {early}");
    assert!(early.get("task_id").is_none(), "{early}");
    let error = early["error"].as_str().unwrap_or_default();
    assert!(error.contains("no task has completed yet"), "{early}");

    let first = h.run_to_completion(PROBE, json!({})).await;
    let pinned = h
        .execute_as("wf-1", "last", "GetLastResult", json!({}))
        .await;
    assert_eq!(pinned["status"], "complete", "{pinned}");
    let pinned_id = poll_id(&pinned);
    assert_eq!(pinned["output"]["format"], "GetLastResult", "{pinned}");
    assert_eq!(
        pinned["output"]["metadata"]["task_id"],
        pinned_id.as_str(),
        "{pinned}"
    );
    let (status, body) = h.status(&pinned_id).await;
    assert_eq!(
        (status, body["status"].as_str(), body["method"].as_str()),
        (StatusCode::OK, Some("complete"), Some("GetLastResult")),
        "{body}"
    );
    let again = poll_id(
        &h.execute_as("wf-2", "last", "GetLastResult", json!({}))
            .await,
    );
    assert_ne!(pinned_id, again, "every execute mints its own poll id");

    let second = h.run_to_completion(PROBE, json!({})).await;
    let last = h
        .fetch::<LastResult>("GetLastResult", &pinned_id)
        .await
        .expect("the pinned result");
    assert_eq!(last.task_id, first, "pinned when executed: {last:?}");
    let typed = h
        .fetch::<ProduceResponse>(RPC, &pinned_id)
        .await
        .expect("the method's rpc serves a GetLastResult poll id too");
    assert_eq!(typed.value, first, "{typed:?}");
    let latest = h.call::<LastResult>("GetLastResult", None).await;
    assert_eq!(latest.expect("the latest").task_id, second);
    h.stop().await;
}

#[tokio::test]
async fn a_task_chained_to_another_fetches_exactly_its_result() {
    let h = Harness::start().await;
    let upstream_id = h.run_to_completion(PROBE, json!({"steps": 2})).await;
    let (status, output) = h.output(&upstream_id).await;
    assert_eq!(status, StatusCode::OK, "{output}");
    let chained = |reference: &Value, task_id: &str| {
        json!({"method": CHAIN_PROBE, "workflow_id": "wf-1", "task_id": task_id,
               "inputs": [reference]})
    };
    let (status, answer) = h
        .post_json("/control/execute", &chained(&output["output"], "task_down"))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let down_id = poll_id(&answer);
    let done = h.wait_until_done(&down_id).await;
    assert_eq!(done["status"], "complete", "{done}");
    let fetched = h.fetch::<ProduceResponse>(RPC, &down_id).await;
    let upstream_result = ProduceResponse {
        value: upstream_id,
        steps: 2,
    };
    assert_eq!(fetched.expect("the downstream result"), upstream_result);

    let mut missing = output["output"].clone();
    missing["metadata"]["task_id"] = json!("task_up.gone.1");
    let (status, answer) = h
        .post_json("/control/execute", &chained(&missing, "task_down2"))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let done = h.wait_until_done(&poll_id(&answer)).await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(error.contains("task_up.gone.1"), "{done}");
    h.stop().await;
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let service = TestService::start::<Fixture>().await;
    for name in ["", Fixture::GRPC_SERVICE] {
        let status = health(service.channel().await, name).await;
        assert_eq!(status, ServingStatus::Serving, "service {name:?}");
    }

    let names = reflected_services(&service).await;
    for wanted in ["grpc.health.v1.Health", Fixture::GRPC_SERVICE] {
        assert!(
            names.iter().any(|name| name == wanted),
            "{wanted}: {names:?}"
        );
    }
    assert!(
        !names.iter().any(|name| name.starts_with("svcgen.runtime")),
        "the runtime's own rpc is no part of the project's proto: {names:?}"
    );
    service.stop().await;
}
