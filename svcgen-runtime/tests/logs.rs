//! What reaches the log: a client's ids appear shortened, however long
//! they are. (A file of its own: the test installs the process's log
//! subscriber.)

mod common;

use std::sync::{Arc, Mutex};

use common::client::{fetch, Client};
use common::{Harness, ProduceResponse, PROBE, RPC};
use hyper::StatusCode;
use serde_json::json;
use svcgen_runtime::testing::poll_id;

/// A writer that keeps what is logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_log_line_holds_a_long_id_whole() {
    let log = Captured::default();
    let writer = log.clone();
    // The level a service logs at by default (`RUST_LOG` unset).
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let h = Harness::start().await;
    let mut client = Client::connect(h.http_addr()).await;
    let huge = "w".repeat(1 << 20);
    let refused = client
        .execute(&json!({"method": PROBE, "workflow_id": huge, "task_id": huge}))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{refused:?}"
    );

    let longest = "v".repeat(256);
    let answer = client
        .execute(
            &json!({"method": PROBE, "workflow_id": longest, "task_id": "t",
                         "parameters": {"fail": "disk full"}}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let done = h.wait_until_done(&poll_id(&answer.body)).await;
    assert_eq!(done["status"], "failed", "{done}");

    let unknown = "z".repeat(4096);
    let missing = client.status(&unknown).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{missing:?}");
    assert!(missing.detail().len() < 200, "{missing:?}");
    let channel = h.channel().await;
    let missing = fetch::<ProduceResponse>(&channel, RPC, &unknown).await;
    let missing = missing.expect_err("no such task");
    assert!(missing.message().len() < 200, "{missing:?}");
    h.stop().await;

    let logged = String::from_utf8_lossy(&log.0.lock().expect("the log")).to_string();
    let started = logged
        .lines()
        .find(|line| line.contains("task started"))
        .unwrap_or_else(|| panic!("no `task started` line in {logged}"));
    assert!(
        started.contains(&format!("{}…", "v".repeat(64))),
        "the workflow id, shortened: {started}"
    );
    for line in logged.lines() {
        for id in ['w', 'v', 'z'] {
            let whole = id.to_string().repeat(65);
            assert!(
                !line.contains(&whole),
                "a line holds more than 64 characters of an id: {}…",
                line.chars().take(300).collect::<String>()
            );
        }
    }
}
