//! The HTTP control contract's error answers: unknown ids and paths, bad
//! execute bodies, wrong verbs, oversized bodies and the API key.

mod common;

use std::net::SocketAddr;

use common::{Fixture, RPC};
use hyper::{Method, StatusCode};
use serde_json::json;
use svcgen_runtime::testing::TestService;
use svcgen_runtime::{Config, Definition};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A bad execute body, its headers, the expected status and a word the
/// detail must mention.
type BadRequest<'a> = (&'a str, &'a [(&'a str, &'a str)], StatusCode, &'a str);

async fn start_with(config: Config) -> TestService {
    TestService::start_with::<Fixture>(config, Fixture::methods()).await
}

#[tokio::test]
async fn unknown_ids_are_404_and_bad_requests_are_400_or_422_with_detail() {
    let service = TestService::start::<Fixture>().await;
    for path in ["/control/status/nope.1", "/control/output/nope.1", "/nope"] {
        let (status, body) = service.http(Method::GET, path, None, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(body["detail"].is_string(), "{path}: {body}");
    }
    let json_type = [("content-type", "application/json")];
    let cases: [BadRequest; 7] = [
        ("{not json", &json_type, StatusCode::BAD_REQUEST, "JSON"),
        ("[1, 2]", &json_type, StatusCode::BAD_REQUEST, "object"),
        (
            r#"{"method":"Produce","workflow_id":"w","task_id":"t"}"#,
            &[],
            StatusCode::BAD_REQUEST,
            "Content-Type",
        ),
        (
            r#"{"workflow_id":"w","task_id":"t"}"#,
            &json_type,
            StatusCode::UNPROCESSABLE_ENTITY,
            "method",
        ),
        (
            r#"{"method":"Produce","workflow_id":7,"task_id":"t"}"#,
            &json_type,
            StatusCode::UNPROCESSABLE_ENTITY,
            "workflow_id",
        ),
        (
            r#"{"method":"Produce","workflow_id":"w","task_id":""}"#,
            &json_type,
            StatusCode::UNPROCESSABLE_ENTITY,
            "task_id",
        ),
        (
            r#"{"method":"Nope","workflow_id":"w","task_id":"t"}"#,
            &json_type,
            StatusCode::BAD_REQUEST,
            RPC,
        ),
    ];
    for (body, headers, expected, mentions) in cases {
        let (status, answer) = service
            .http(Method::POST, "/control/execute", Some(body), headers)
            .await;
        assert_eq!(status, expected, "{body} -> {answer}");
        let detail = answer["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}: no detail in {answer}"));
        assert!(
            detail.contains(mentions),
            "{body}: detail {detail:?} should mention {mentions}"
        );
        assert!(
            !detail.contains('\n'),
            "{body}: detail not on one line: {detail:?}"
        );
    }
    let mistyped_input = json!({"method": RPC, "workflow_id": "w", "task_id": "t",
        "inputs": [{"protocol": "grpc", "uri": 5, "format": "X"}]});
    let (status, answer) = service.post_json("/control/execute", &mistyped_input).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let detail = answer["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("inputs[0].uri"), "{answer}");
    service.stop().await;
}

#[tokio::test]
async fn control_requires_the_api_key_when_one_is_set() {
    let service = start_with(Config {
        api_key: Some("s3cret".to_string()),
        ..Config::default()
    })
    .await;
    let (status, body) = service.http(Method::GET, "/health", None, &[]).await;
    assert_eq!(
        (status, &body),
        (StatusCode::OK, &json!({"status": "ok"})),
        "health needs no key"
    );
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("s3cret"),
        Some("Bearer s3cre"),
        Some("Basic s3cret"),
    ] {
        let headers: Vec<(&str, &str)> = auth
            .map(|value| ("authorization", value))
            .into_iter()
            .collect();
        let (status, body) = service
            .http(Method::GET, "/control/status/x.1", None, &headers)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}: {body}");
        assert!(body["detail"].is_string(), "{auth:?}: {body}");
    }
    let (status, body) = service
        .http(
            Method::GET,
            "/control/status/x.1",
            None,
            &[("authorization", "bearer s3cret")],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "authorised (the scheme is case-insensitive), unknown id: {body}"
    );
    service.stop().await;
}

/// One request on a connection of its own: the answer's status line, its
/// headers but `date` in name order (the router writes `content-length`
/// itself, hyper after `connection`), and its body.
async fn raw_answer(addr: SocketAddr, method: &str, path: &str, auth: Option<&str>) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = auth.map_or(String::new(), |value| format!("authorization: {value}\r\n"));
    let request =
        format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_string(&mut answer),
    )
    .await
    .expect("an answer within 10 s")
    .expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut headers: Vec<String> = lines
        .map(str::to_ascii_lowercase)
        .filter(|line| !line.starts_with("date:"))
        .collect();
    headers.sort();
    format!("{status}\n{}\n\n{body}", headers.join("\n"))
}

#[tokio::test]
async fn status_answers_alike_before_and_through_the_router() {
    // A plain GET /control/status/{poll_id} is answered before the router;
    // the same id with a percent escape, and a HEAD, go through it.
    let service = start_with(Config {
        api_key: Some("s3cret".to_string()),
        ..Config::default()
    })
    .await;
    let id = service.run_to_completion(RPC, json!({"value": "v"})).await;
    assert!(id.contains('.'), "{id}");
    let addr = service.http_addr();
    let mut seen = Vec::new();
    for id in [id.as_str(), "nope.1"] {
        let plain = format!("/control/status/{id}");
        let escaped = plain.replace('.', "%2E");
        for auth in [Some("Bearer s3cret"), None, Some("Bearer wrong")] {
            let direct = raw_answer(addr, "GET", &plain, auth).await;
            let routed = raw_answer(addr, "GET", &escaped, auth).await;
            assert_eq!(direct, routed, "{plain} with {auth:?}");
            let head = raw_answer(addr, "HEAD", &plain, auth).await;
            let (head_top, _) = head.split_once("\n\n").expect("a HEAD answer");
            let (direct_top, _) = direct.split_once("\n\n").expect("an answer");
            assert_eq!(head_top, direct_top, "HEAD {plain} with {auth:?}");
            seen.push(direct.lines().next().unwrap_or_default().to_string());
        }
    }
    assert_eq!(
        seen,
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 401 Unauthorized",
            "HTTP/1.1 401 Unauthorized",
            "HTTP/1.1 404 Not Found",
            "HTTP/1.1 401 Unauthorized",
            "HTTP/1.1 401 Unauthorized",
        ]
    );
    let ok = raw_answer(
        addr,
        "GET",
        &format!("/control/status/{id}"),
        Some("Bearer s3cret"),
    )
    .await;
    assert!(ok.contains("content-type: application/json"), "{ok}");
    assert!(
        ok.contains(r#"{"status":"complete","progress":100,"error":null,"#)
            && ok.ends_with(r#","method":"Produce"}"#),
        "{ok}"
    );
    service.stop().await;
}

#[tokio::test]
async fn oversized_bodies_and_wrong_verbs_get_json_errors() {
    let service = start_with(Config {
        max_body_bytes: 1024,
        ..Config::default()
    })
    .await;
    let big = json!({"method": RPC, "workflow_id": "w", "task_id": "t",
        "inputs": [{"protocol": "inline", "uri": "x".repeat(4096), "format": "json"}]});
    let (status, body) = service.post_json("/control/execute", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    let (status, body) = service
        .http(Method::GET, "/control/execute", None, &[])
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    service.stop().await;
}
