//! Bounded shutdown: health turns `NOT_SERVING` (overall too) and execute
//! answers 503 while running tasks drain; a task that finishes within the
//! grace period finishes; a task that ignores its cancellation (an async
//! loop, a blocking job) cannot hold the shutdown past the grace period.
//!
//! Timings are checked only against generous bounds. The second signal and
//! the process exit (`run_until_signal`) are not covered here: they end the
//! process.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::client::Client;
use common::{health, Fixture, Output, ProduceResponse, RPC};
use serde_json::{json, Value};
use svcgen_runtime::testing::{poll_id, TestService};
use svcgen_runtime::{CancellationToken, Config, Definition, MethodKind, Methods};
use tonic_health::pb::health_check_response::ServingStatus;

/// A long method whose handler waits for `release` and finishes.
const WAITS: &str = "SvcgenWaits";
/// A long method whose handler loops on `.await`s, never looking at its
/// cancellation.
const SPINS: &str = "SvcgenSpins";
/// A long method whose handler runs a blocking job that never looks at its
/// cancellation, until the test releases it.
const BLOCKS: &str = "SvcgenBlocks";

/// What the probes of one test share with it.
#[derive(Default)]
struct Probes {
    /// Lets `WAITS` finish.
    release: tokio::sync::Notify,
    /// Set when `WAITS` has returned its result.
    finished: AtomicBool,
    /// Lets the blocking job of `BLOCKS` end (at the end of the test, so
    /// that the test's runtime is not held by it).
    unblock: AtomicBool,
    /// The tokens of the tasks that ignore them.
    tokens: Mutex<Vec<CancellationToken>>,
}

async fn start(grace: Duration) -> (TestService, Arc<Probes>) {
    let probes = Arc::new(Probes::default());
    let mut methods: Methods<Fixture> = Fixture::methods();
    let shared = probes.clone();
    methods.add_served_by(WAITS, RPC, MethodKind::Long, move |_ctx| {
        let probes = shared.clone();
        async move {
            probes.release.notified().await;
            probes.finished.store(true, Ordering::SeqCst);
            Ok(result())
        }
    });
    let shared = probes.clone();
    methods.add_served_by(SPINS, RPC, MethodKind::Long, move |ctx| {
        shared.tokens.lock().unwrap().push(ctx.cancellation());
        async move {
            // Ticks for ever (the bound only gives the loop a type).
            for _ in 0..u64::MAX {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(result())
        }
    });
    let shared = probes.clone();
    methods.add_served_by(BLOCKS, RPC, MethodKind::Long, move |ctx| {
        let probes = shared.clone();
        probes.tokens.lock().unwrap().push(ctx.cancellation());
        async move {
            tokio::task::spawn_blocking(move || {
                while !probes.unblock.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
            .await
            .ok();
            Ok(result())
        }
    });
    let config = Config {
        shutdown_grace: grace,
        ..Config::default()
    };
    (
        TestService::start_with::<Fixture>(config, methods).await,
        probes,
    )
}

fn result() -> Output {
    Output::Produce(ProduceResponse {
        value: "done".to_string(),
        steps: 1,
    })
}

async fn execute(client: &mut Client, method: &str, task_id: &str) -> common::client::Reply {
    client
        .execute(&json!({
            "method": method,
            "workflow_id": "wf-shutdown",
            "task_id": task_id,
            "parameters": {},
        }))
        .await
}

/// Starts the shutdown on its own task; the handle gives how long it took.
fn begin_shutdown(service: TestService) -> tokio::task::JoinHandle<Duration> {
    tokio::spawn(async move {
        let started = Instant::now();
        service.stop().await;
        started.elapsed()
    })
}

/// Waits (bounded) until execute answers 503: the drain has begun.
async fn until_draining(addr: SocketAddr) -> common::client::Reply {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut client = Client::connect(addr).await;
        let reply = execute(&mut client, RPC, "late").await;
        if reply.status == 503 {
            return reply;
        }
        assert!(Instant::now() < deadline, "execute still answers {reply:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_finishes_within_the_grace_completes_and_the_service_drains_meanwhile() {
    let (service, probes) = start(Duration::from_secs(10)).await;
    let http = service.http_addr();
    let channel = service.channel().await;
    assert_eq!(health(channel.clone(), "").await, ServingStatus::Serving);
    let mut client = Client::connect(http).await;
    let started = execute(&mut client, WAITS, "waits").await;
    assert_eq!(started.status, 200, "{:?}", started.body);
    let poll_id = poll_id(&started.body);

    let stopping = begin_shutdown(service);
    let refused = until_draining(http).await;
    assert_eq!(refused.body, json!({"detail": "shutting down"}));
    assert!(refused.retry_after().is_some(), "no Retry-After");
    for name in ["", Fixture::GRPC_SERVICE] {
        assert_eq!(
            health(channel.clone(), name).await,
            ServingStatus::NotServing,
            "health {name:?} during the drain"
        );
    }
    // Status keeps answering while the task drains.
    let mut client = Client::connect(http).await;
    let status = client.status(&poll_id).await;
    assert_eq!(
        (status.status.as_u16(), &status.body["status"]),
        (200, &Value::from("running")),
        "{:?}",
        status.body
    );
    assert!(
        !stopping.is_finished(),
        "shutdown did not wait for the task"
    );

    probes.release.notify_one();
    let took = tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .expect("shutdown returns")
        .expect("shutdown did not panic");
    assert!(probes.finished.load(Ordering::SeqCst), "the task finished");
    assert!(
        took < Duration::from_secs(8),
        "shutdown took {took:?}: it waited out the grace period instead of the task"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_that_ignore_their_cancellation_cannot_hold_the_shutdown() {
    let grace = Duration::from_secs(1);
    let (service, probes) = start(grace).await;
    let mut client = Client::connect(service.http_addr()).await;
    for (method, task_id) in [(SPINS, "spins"), (BLOCKS, "blocks")] {
        let started = execute(&mut client, method, task_id).await;
        assert_eq!(started.status, 200, "{:?}", started.body);
    }
    drop(client);

    let took = tokio::time::timeout(Duration::from_secs(5), begin_shutdown(service))
        .await
        .expect("shutdown returns within the grace period and a margin")
        .expect("shutdown did not panic");
    assert!(
        (grace..grace + Duration::from_secs(3)).contains(&took),
        "shutdown took {took:?}"
    );
    let tokens = probes.tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    assert!(
        tokens.iter().all(CancellationToken::is_cancelled),
        "the tasks were not cancelled"
    );
    probes.unblock.store(true, Ordering::SeqCst);
}

/// Set in a child process of this test binary: which of the process
/// tests it serves (`exit` or `second`).
const CHILD: &str = "SVCGEN_SHUTDOWN_CHILD";

/// The child's side of the process tests (does nothing in a normal run):
/// a service, started as a generated `main` does, with a blocking task
/// that never ends, until `run_until_signal` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_service() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let grace = if mode == "second" { 60 } else { 1 };
    let probes = Arc::new(Probes::default());
    let mut methods: Methods<Fixture> = Fixture::methods();
    let shared = probes.clone();
    methods.add_served_by(BLOCKS, RPC, MethodKind::Long, move |_ctx| {
        let probes = shared.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                while !probes.unblock.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
            .await
            .ok();
            Ok(result())
        }
    });
    let config = Config {
        host: [127, 0, 0, 1].into(),
        http_port: Some(0),
        grpc_port: Some(0),
        shutdown_grace: Duration::from_secs(grace),
        ..Config::default()
    };
    let service = svcgen_runtime::run_with::<Fixture>(config, methods)
        .await
        .expect("the service starts");
    let mut client = Client::connect(service.http_addr()).await;
    let started = execute(&mut client, BLOCKS, "blocks").await;
    assert_eq!(started.status, 200, "{:?}", started.body);
    drop(client);
    // "ready" only once `run_until_signal` listens: its first poll installs
    // the signal handlers, before which a SIGTERM would kill the process.
    let mut run = std::pin::pin!(service.run_until_signal());
    tokio::select! {
        biased;
        _ = &mut run => panic!("the service stopped before any signal"),
        () = std::future::ready(()) => {}
    }
    println!("ready");
    let _ = run.await;
    // Returning drops this test's runtime, which waits for the blocking
    // job: only the exit watchdog ends the process.
}

/// Runs [`child_process_service`] in a child process, sends it SIGTERM
/// `signals` times (a little apart) once it is ready, and returns its exit
/// code and how long it took to exit after the first signal.
#[cfg(unix)]
fn signalled_child(mode: &str, signals: usize) -> (Option<i32>, Duration) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["child_process_service", "--exact", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("the child's stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("ready"));
    assert!(ready, "the child never got ready");
    let pid = child.id().to_string();
    let started = Instant::now();
    for n in 0..signals {
        if n > 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
    }
    let deadline = started + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return (status.code(), started.elapsed());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child still runs {:?} after SIGTERM", started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn a_blocking_job_that_ignores_cancellation_does_not_hold_the_process() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let (code, took) = signalled_child("exit", 1);
    assert_eq!(code, Some(0), "after {took:?}");
    // Grace 1 s, the servers' margin 1 s, the exit watchdog 1 s.
    assert!(
        took < Duration::from_secs(6),
        "the process exited after {took:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_second_signal_ends_the_process_at_once() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let (code, took) = signalled_child("second", 2);
    assert_eq!(code, Some(143), "after {took:?}");
    // The grace period is 60 s: only the second signal ends it this soon.
    assert!(
        took < Duration::from_secs(5),
        "the process exited after {took:?}"
    );
}
