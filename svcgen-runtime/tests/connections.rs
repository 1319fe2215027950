//! Hostile clients at the connection level: slow or idle connections are
//! closed, a trickled body gets 408, connections beyond `MAX_CONNECTIONS`
//! are turned away on both ports, and handlers that block every thread of
//! the main runtime leave health, status and execute answering.
//!
//! The clients here are plain blocking sockets with read timeouts: every
//! wait is bounded, and a blocked runtime cannot stall the test's client.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Fixture, Harness, Output, ProduceResponse};
use svcgen_runtime::testing::TestService;
use svcgen_runtime::{Config, Definition, MethodKind};

/// The longest any read here waits.
const READ_WAIT: Duration = Duration::from_secs(10);

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(READ_WAIT)).expect("timeout");
    stream
}

/// Reads until the peer closes (or [`READ_WAIT`] passes) and returns what
/// came, and whether the connection was closed.
fn read_to_close(stream: &mut TcpStream) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (String::from_utf8_lossy(&got).into_owned(), false)
            }
            // Reset by the peer: closed.
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
}

/// One request on a fresh connection that asks to be closed after it;
/// returns the whole answer.
fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    let mut stream = connect(addr);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(body.as_bytes()).expect("write");
    let (answer, closed) = read_to_close(&mut stream);
    assert!(
        closed,
        "{method} {path}: no complete answer within {READ_WAIT:?}: {answer:?}"
    );
    answer
}

fn quick_config() -> Config {
    Config {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..Config::default()
    }
}

#[tokio::test]
async fn slow_headers_idle_keep_alive_and_silent_grpc_connections_are_closed() {
    let service = Harness::start_with(quick_config()).await;
    let (http, grpc) = (service.http_addr(), service.grpc_addr());
    tokio::task::spawn_blocking(move || {
        // Headers that never end (slowloris).
        let mut slow = connect(http);
        slow.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
            .expect("write");
        let (_, closed) = read_to_close(&mut slow);
        assert!(closed, "a connection with unfinished headers stayed open");

        // A keep-alive connection left idle after one answer.
        let mut idle = connect(http);
        idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .expect("write");
        let (answer, closed) = read_to_close(&mut idle);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(closed, "an idle keep-alive connection stayed open");

        // A data-port connection that never says a word.
        let mut silent = connect(grpc);
        let (_, closed) = read_to_close(&mut silent);
        assert!(closed, "a silent gRPC connection stayed open");
    })
    .await
    .expect("the clients");
    service.stop().await;
}

#[tokio::test]
async fn a_trickled_execute_body_gets_a_json_408() {
    let service = Harness::start_with(quick_config()).await;
    let http = service.http_addr();
    tokio::task::spawn_blocking(move || {
        let mut stream = connect(http);
        stream
            .write_all(
                b"POST /control/execute HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                  content-length: 200\r\n\r\n{\"method\":",
            )
            .expect("write");
        let (answer, _) = read_to_close(&mut stream);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.contains(r#"{"detail":"the request body did not arrive within 1s (REQUEST_BODY_TIMEOUT_SECS)"}"#),
            "{answer}"
        );
    })
    .await
    .expect("the client");
    service.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_turned_away_on_both_ports() {
    let service = Harness::start_with(Config {
        max_connections: 3,
        ..Config::default()
    })
    .await;
    let (http, grpc) = (service.http_addr(), service.grpc_addr());
    tokio::task::spawn_blocking(move || {
        // Three held connections, each shown to be served.
        let mut held: Vec<TcpStream> = (0..3)
            .map(|_| {
                let mut stream = connect(http);
                stream
                    .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
                    .expect("write");
                let mut buf = [0u8; 512];
                let n = stream.read(&mut buf).expect("an answer");
                assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
                stream
            })
            .collect();
        let answer = request(http, "GET", "/health", "");
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("retry-after: 1"), "{answer}");
        assert!(answer.ends_with(
            r#"{"detail":"too many open connections (MAX_CONNECTIONS): retry shortly"}"#
        ));
        // Room again once one closes.
        drop(held.pop());
        let mut answered = String::new();
        for _ in 0..100 {
            answered = request(http, "GET", "/health", "");
            if answered.starts_with("HTTP/1.1 200") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

        // The data port closes a connection beyond the cap at once.
        let _grpc_held: Vec<TcpStream> = (0..3).map(|_| connect(grpc)).collect();
        let mut turned_away = connect(grpc);
        let (_, closed) = read_to_close(&mut turned_away);
        assert!(closed, "a fourth gRPC connection was kept");
    })
    .await
    .expect("the clients");
    service.stop().await;
}

/// A long method whose handler blocks its runtime thread (no
/// `spawn_blocking`) until the test lets it go.
const BLOCKER: &str = "SvcgenBlocker";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_blocking_every_runtime_thread_do_not_stall_health_status_or_execute() {
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (release, release_rx) = mpsc::channel::<()>();
    let entered_tx = Arc::new(Mutex::new(entered_tx));
    let release_rx = Arc::new(Mutex::new(release_rx));
    let mut methods = Fixture::methods();
    methods.add_served_by(BLOCKER, "Produce", MethodKind::Long, move |_ctx| {
        let (entered_tx, release_rx) = (entered_tx.clone(), release_rx.clone());
        async move {
            let _ = entered_tx.lock().map(|tx| tx.send(()));
            // Blocks this worker thread: exactly what handlers must not do.
            let _ = release_rx
                .lock()
                .map(|rx| rx.recv_timeout(Duration::from_secs(60)));
            Ok(Output::Produce(ProduceResponse::default()))
        }
    });
    let service = TestService::start_with::<Fixture>(Config::default(), methods).await;
    let http = service.http_addr();
    let execute = |task: &str| {
        let body = format!(r#"{{"method":"{BLOCKER}","workflow_id":"w","task_id":"{task}"}}"#);
        request(http, "POST", "/control/execute", &body)
    };
    // The test's own thread is not one of the runtime's workers, and its
    // clients are blocking sockets: nothing here needs the runtime.
    let first = execute("t1");
    assert!(first.contains(r#""status":"running""#), "{first}");
    entered
        .recv_timeout(READ_WAIT)
        .expect("the first handler to start");
    // The second blocks on the first's lock of the release channel: both
    // worker threads are then blocked.
    let second = execute("t2");
    assert!(second.contains(r#""status":"running""#), "{second}");
    entered
        .recv_timeout(READ_WAIT)
        .expect("the second handler to start");

    let health = request(http, "GET", "/health", "");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let poll_id = first
        .split(r#""task_id":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a poll id");
    let status = request(http, "GET", &format!("/control/status/{poll_id}"), "");
    assert!(status.contains(r#""status":"running""#), "{status}");
    let third = execute("t3");
    assert!(third.contains(r#""status":"running""#), "{third}");

    for _ in 0..3 {
        let _ = release.send(());
    }
    entered
        .recv_timeout(READ_WAIT)
        .expect("the third handler to start once released");
    service.stop().await;
}
