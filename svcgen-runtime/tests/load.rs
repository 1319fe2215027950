//! Many short tasks with the default limits: every one is accepted, every
//! one completes, and every result can still be read afterwards.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::client::{fetch, Client};
use common::{Harness, ProduceResponse, PROBE, RPC};
use hyper::StatusCode;
use serde_json::json;
use svcgen_runtime::testing::{poll_id, WAIT};
use tokio::task::JoinSet;

const TASKS: usize = 5000;
const IN_FLIGHT: usize = 50;

/// Runs `work` for each number below `count` on [`IN_FLIGHT`] workers,
/// each with its own connection, and returns what it returned, in order.
async fn on_workers<T, F, Fut>(h: &Arc<Harness>, count: usize, work: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<Harness>, Client, usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = (Client, T)> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (h, next, work) = (h.clone(), next.clone(), work.clone());
        workers.spawn(async move {
            let mut client = Client::connect(h.http_addr()).await;
            let mut done = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return done;
                }
                let (returned, value) = work(h.clone(), client, n).await;
                client = returned;
                done.push((n, value));
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(joined) = workers.join_next().await {
        all.extend(joined.expect("a worker panicked"));
    }
    all.sort_by_key(|(n, _)| *n);
    assert_eq!(all.len(), count);
    all.into_iter().map(|(_, value)| value).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_short_tasks_complete_and_every_result_stays_readable() {
    let h = Arc::new(Harness::start().await);
    let started = Instant::now();
    let ids = on_workers(&h, TASKS, |_h, mut client, n| async move {
        let body = json!({"method": PROBE, "workflow_id": "wf-load",
                          "task_id": format!("task_{n}"),
                          "parameters": {"steps": 1, "step_ms": 1}});
        let answer = client.execute(&body).await;
        assert_eq!(answer.status, StatusCode::OK, "task {n}: {answer:?}");
        assert_eq!(answer.body["status"], "running", "task {n}: {answer:?}");
        let id = poll_id(&answer.body);
        // Bounded in count and in time.
        let deadline = tokio::time::Instant::now() + WAIT;
        for _ in 0..10_000 {
            let status = client.status(&id).await;
            assert_eq!(status.status, StatusCode::OK, "{id}: {status:?}");
            match status.body["status"].as_str() {
                Some("running") => {}
                Some("complete") => return (client, id),
                _ => panic!("{id}: {status:?}"),
            }
            assert!(tokio::time::Instant::now() < deadline, "{id} still running");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("{id} still running after 10000 polls");
    })
    .await;
    let ran = started.elapsed();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), TASKS, "a poll id was given twice");

    // Every result, read after all have completed: none was dropped.
    let ids = Arc::new(ids);
    let channel = h.channel().await;
    let read_from = Instant::now();
    let all = ids.clone();
    on_workers(&h, TASKS, move |_h, mut client, n| {
        let (all, channel) = (all.clone(), channel.clone());
        async move {
            let id = &all[n];
            let status = client.status(id).await;
            assert_eq!(
                (status.status, status.body["status"].as_str()),
                (StatusCode::OK, Some("complete")),
                "{id}: {status:?}"
            );
            let output = client.output(id).await;
            assert_eq!(output.status, StatusCode::OK, "{id}: {output:?}");
            assert_eq!(output.body["output"]["metadata"]["task_id"], id.as_str());
            let result = fetch::<ProduceResponse>(&channel, RPC, id).await;
            let result = result.unwrap_or_else(|err| panic!("{id}: {err:?}"));
            assert_eq!(result.value, *id);
            (client, ())
        }
    })
    .await;
    eprintln!(
        "{TASKS} tasks, {IN_FLIGHT} in flight: run in {ran:?}, every result read in {:?}",
        read_from.elapsed()
    );
    let h = Arc::into_inner(h).expect("every worker has finished");
    h.stop().await;
}
