//! `SERVICE_API_KEY` on both ports: the data port's rpcs (the project's
//! and the runtime's streaming one) require the key unless
//! `DATA_PORT_AUTH=off`, health and reflection stay open; a blank key is
//! refused at start-up, a key with surrounding whitespace is trimmed; the
//! start-up line says which ports are protected.

mod common;

use common::client::fetch_as;
use common::{
    health, reflected_services, stream_as, Fixture, Harness, LastResult, ProduceResponse,
    CHAIN_PROBE, PROBE, RPC,
};
use hyper::{Method, StatusCode};
use serde_json::json;
use svcgen_runtime::testing::{poll_id, TestService};
use svcgen_runtime::{run_with, Config, Definition};
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;

const KEY: &str = "s3cret-0123456789";

fn keyed(data_port_auth: bool) -> Config {
    Config {
        api_key: Some(KEY.to_string()),
        data_port_auth,
        ..Config::default()
    }
}

/// Calls the unary rpc `rpc` for the task `poll_id`, with the metadata
/// `authorization: <authorization>` when it is given.
async fn unary<M>(
    service: &TestService,
    rpc: &str,
    poll_id: &str,
    authorization: Option<&str>,
) -> Result<M, Status>
where
    M: prost::Message + Default + Send + 'static,
{
    fetch_as(&service.channel().await, rpc, poll_id, authorization).await
}

/// The codes of `Produce`, `GetLastResult` and the streaming rpc for the
/// task `poll_id`, called with `authorization`.
async fn codes(h: &TestService, poll_id: &str, authorization: Option<&str>) -> [Code; 3] {
    let code = |status: Option<Status>| status.map_or(Code::Ok, |status| status.code());
    let produce = unary::<ProduceResponse>(h, RPC, poll_id, authorization).await;
    let last = unary::<LastResult>(h, "GetLastResult", poll_id, authorization).await;
    let streamed = stream_as(h, RPC, Some(poll_id), authorization).await;
    [code(produce.err()), code(last.err()), code(streamed.err())]
}

/// Whether the health service answers `SERVING` and reflection lists the
/// project's service, both called without a key.
async fn health_and_reflection_answer(service: &TestService) -> bool {
    let serving = health(service.channel().await, Fixture::GRPC_SERVICE).await;
    let services = reflected_services(service).await;
    serving == ServingStatus::Serving
        && services
            .iter()
            .any(|service| service == Fixture::GRPC_SERVICE)
}

#[tokio::test]
async fn with_a_key_both_kinds_of_data_rpc_require_it_and_health_and_reflection_stay_open() {
    let h = Harness::start_with(keyed(true)).await;
    let id = h.run_to_completion(PROBE, json!({"steps": 1})).await;
    let unauthenticated = [Code::Unauthenticated; 3];
    for authorization in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cret-012345678"),
        Some("Bearer s3cret-01234567890"),
        Some(KEY),
        Some("Basic s3cret-0123456789"),
    ] {
        let codes = codes(&h, &id, authorization).await;
        assert_eq!(codes, unauthenticated, "{authorization:?}");
    }
    let err = stream_as(&h, RPC, Some(&id), None)
        .await
        .expect_err("no key");
    assert_eq!(
        err.message(),
        "missing or invalid bearer token: send the metadata authorization: Bearer \
         <SERVICE_API_KEY>"
    );
    let unknown = unary::<ProduceResponse>(&h, "Nope", &id, None).await;
    assert_eq!(
        unknown.expect_err("no key").code(),
        Code::Unauthenticated,
        "the rpcs of the service, whether it has them or not"
    );

    let bearer = format!("Bearer {KEY}");
    let lower = format!("bearer {KEY}");
    for authorization in [bearer.as_str(), lower.as_str()] {
        let codes = codes(&h, &id, Some(authorization)).await;
        assert_eq!(codes, [Code::Ok; 3], "{authorization}");
    }
    let produced = unary::<ProduceResponse>(&h, RPC, &id, Some(&bearer)).await;
    assert_eq!(produced.expect("the key").value, id);
    let streamed = stream_as(&h, RPC, Some(&id), Some(&bearer)).await;
    let data = streamed.expect("the key").data();
    let decoded: ProduceResponse = prost::Message::decode(&data[..]).expect("a ProduceResponse");
    assert_eq!(decoded.value, id);
    assert!(
        health_and_reflection_answer(&h).await,
        "health and reflection need no key"
    );

    // A handler's hand-made request carries the key: a task of this
    // service reads a result of this service over the data port.
    let chained = h.output_reference(&id).await;
    let answer = h
        .execute_with_inputs(CHAIN_PROBE, &[chained], json!({}))
        .await;
    let done = h.wait_until_done(&poll_id(&answer)).await;
    assert_eq!(done["status"], "complete", "{done}");
    h.stop().await;
}

#[tokio::test]
async fn with_data_port_auth_off_results_are_open_and_control_still_needs_the_key() {
    let h = Harness::start_with(keyed(false)).await;
    let id = h.run_to_completion(PROBE, json!({"steps": 1})).await;
    for authorization in [None, Some("Bearer wrong")] {
        let codes = codes(&h, &id, authorization).await;
        assert_eq!(codes, [Code::Ok; 3], "{authorization:?}");
    }
    assert!(health_and_reflection_answer(&h).await);
    let path = format!("/control/status/{id}");
    let (status, body) = h.http(Method::GET, &path, None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    h.stop().await;
}

#[tokio::test]
async fn without_a_key_nothing_asks_for_one() {
    let h = Harness::start().await;
    let id = h.run_to_completion(PROBE, json!({"steps": 1})).await;
    assert_eq!(codes(&h, &id, None).await, [Code::Ok; 3]);
    assert_eq!(codes(&h, &id, Some("Bearer x")).await, [Code::Ok; 3]);
    h.stop().await;
}

#[tokio::test]
async fn a_blank_key_is_refused_at_start_up_naming_the_variable() {
    let blank = "SERVICE_API_KEY is set but blank: unset it to disable auth, or give a key";
    for value in ["", " ", "\n"] {
        let err = Config::from_lookup(|name| (name == "SERVICE_API_KEY").then(|| value.into()))
            .expect_err("a blank key");
        assert_eq!(err.to_string(), blank, "{value:?}");
    }
    // A `Config` built by hand is checked too.
    let config = Config {
        host: [127, 0, 0, 1].into(),
        http_port: Some(0),
        grpc_port: Some(0),
        api_key: Some("  ".to_string()),
        ..Config::default()
    };
    let started = run_with::<Fixture>(config, Fixture::methods()).await;
    let err = started.err().expect("a blank key stops the start");
    assert_eq!(err.to_string(), blank);
}

#[tokio::test]
async fn a_key_read_with_a_trailing_newline_works_on_both_ports() {
    let config = Config::from_lookup(|name| match name {
        "SERVICE_API_KEY" => Some(format!("  {KEY}\n")),
        _ => None,
    })
    .expect("a key from a file");
    assert_eq!(config.api_key.as_deref(), Some(KEY));
    // Built by hand, untrimmed: trimmed at start-up as well.
    let by_hand = Config {
        api_key: Some(format!("{KEY}\r\n")),
        ..Config::default()
    };
    for config in [config, by_hand] {
        let h = Harness::start_with(config).await;
        let bearer = format!("Bearer {KEY}");
        let (status, body) = h
            .http(
                Method::GET,
                "/control/status/nope.1",
                None,
                &[("authorization", &bearer)],
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "authorised: {body}");
        let id = h.run_to_completion(PROBE, json!({"steps": 1})).await;
        assert_eq!(codes(&h, &id, Some(&bearer)).await, [Code::Ok; 3]);
        h.stop().await;
    }
}

#[test]
fn the_start_up_line_says_which_ports_need_the_key() {
    assert_eq!(Config::default().auth_summary(), "auth off");
    assert_eq!(
        keyed(true).auth_summary(),
        "auth on (control and data ports)"
    );
    assert_eq!(
        keyed(false).auth_summary(),
        "auth on (control port only; DATA_PORT_AUTH=off)"
    );
    let from_env = Config::from_lookup(|name| match name {
        "SERVICE_API_KEY" => Some(KEY.into()),
        "DATA_PORT_AUTH" => Some("off".into()),
        _ => None,
    })
    .expect("valid");
    let line = from_env.auth_summary();
    assert_eq!(line, "auth on (control port only; DATA_PORT_AUTH=off)");
    assert!(!line.contains(KEY));
}
