//! Throughput of a large result from service A to service B, in one
//! process on loopback: `ctx.fetch` through the runtime's streaming rpc,
//! through the unary rpc with raised limits, and a plain TCP copy of the
//! same size as the yardstick. Not a test: run it with
//!
//! ```text
//! cargo bench -p svcgen-runtime --bench transfer
//! ```
//!
//! `TRANSFER_MIB` sets the size (default 256) and `TRANSFER_RUNS` the runs
//! of each path (default 5; the table shows the best and the median).
//! A fetch is timed inside the consumer's handler, around `ctx.fetch`:
//! request, transfer, assembly and decoding of the `MakeResponse`. With a
//! `Vec<u8>` field (prost's default) decoding copies the whole result into
//! fresh memory, which costs about as much as the transfer on a small VM;
//! with a `Bytes` field (prost-build's `.bytes(["."])`) it is a slice of
//! the fetched buffer, so those rows show the transfer itself.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::blob::{digest_with, expected_checksum, make, Blob};
use serde_json::json;
use svcgen_runtime::testing::TestService;
use svcgen_runtime::{Config, Definition};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIB: usize = 1024 * 1024;

fn main() {
    let size = env("TRANSFER_MIB", 256) * MIB;
    let runs = env("TRANSFER_RUNS", 5).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let rows = runtime.block_on(async {
        let tcp = measure(runs, || tcp_copy(size, false)).await;
        let tcp_buffer = measure(runs, || tcp_copy(size, true)).await;
        let default = Config::default();
        let streaming = fetches(size, runs, &default, &default).await;
        let raised = Config {
            max_message_bytes: size + MIB,
            ..Config::default()
        };
        let unary_only = Config {
            upstream_streaming: false,
            ..raised.clone()
        };
        let unary = fetches(size, runs, &raised, &unary_only).await;
        [
            ("(c) raw loopback TCP, tokio::io::copy to a sink", tcp),
            ("(c) raw loopback TCP, read into one buffer", tcp_buffer),
            ("(a) ctx.fetch, streaming rpc", streaming[0].clone()),
            ("(b) ctx.fetch, unary rpc, limits raised", unary[0].clone()),
            ("(a) streaming, into a `Bytes` field", streaming[1].clone()),
            ("(b) unary, into a `Bytes` field", unary[1].clone()),
        ]
    });
    let tcp_best = rows[0].1[0];
    println!(
        "\n{} MiB from A to B, {runs} runs each (MB/s = 10^6 bytes per second)\n",
        size / MIB
    );
    println!("| path | best MB/s | median MB/s | best time | vs raw TCP |");
    println!("|---|---:|---:|---:|---:|");
    for (name, times) in &rows {
        let best = times[0];
        let median = times[times.len() / 2];
        println!(
            "| {name} | {:.0} | {:.0} | {:.3} s | {:.0}% |",
            rate(size, best),
            rate(size, median),
            best.as_secs_f64(),
            100.0 * tcp_best.as_secs_f64() / best.as_secs_f64()
        );
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn rate(size: usize, took: Duration) -> f64 {
    size as f64 / took.as_secs_f64() / 1e6
}

/// The times of `runs` runs of `run`, sorted.
async fn measure<F, A>(runs: usize, mut run: F) -> Vec<Duration>
where
    F: FnMut() -> A,
    A: std::future::Future<Output = Duration>,
{
    let mut times = Vec::new();
    for _ in 0..runs {
        times.push(run().await);
    }
    times.sort();
    times
}

/// Producer A with `producer` makes one result of `size` bytes; consumer B
/// with `consumer` fetches it `runs` times as a `MakeResponse` with a
/// `Vec<u8>` field, then `runs` times with a `Bytes` field: the fetch
/// times of each, sorted.
async fn fetches(
    size: usize,
    runs: usize,
    producer: &Config,
    consumer: &Config,
) -> [Vec<Duration>; 2] {
    let a = TestService::start_with::<Blob>(producer.clone(), Blob::methods()).await;
    let b = TestService::start_with::<Blob>(consumer.clone(), Blob::methods()).await;
    let input = make(&a, 1, size).await;
    let expected = expected_checksum(1, size);
    let mut times = Vec::new();
    for bytes_field in [false, true] {
        let parameters = json!({ "bytes_field": bytes_field });
        times.push(
            measure(runs, || async {
                let digest = digest_with(&b, &input, parameters.clone())
                    .await
                    .expect("the fetch completes");
                assert_eq!(
                    (digest.length, digest.checksum),
                    (size as u64, expected),
                    "the bytes arrived intact"
                );
                Duration::from_micros(digest.fetch_micros)
            })
            .await,
        );
    }
    b.stop().await;
    a.stop().await;
    let bytes_field = times.pop().unwrap_or_default();
    let vec_field = times.pop().unwrap_or_default();
    [vec_field, bytes_field]
}

/// `size` bytes written on one loopback connection and, on the other end,
/// copied to a sink by `tokio::io::copy` or, `into_buffer`, read into one
/// buffer of `size` bytes, as a fetch assembles its result (the pages of
/// that fresh buffer are faulted in during the reads).
async fn tcp_copy(size: usize, into_buffer: bool) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("its address");
    let data = vec![7_u8; size];
    let sender = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        socket.write_all(&data).await.expect("write");
        socket.shutdown().await.expect("shutdown");
    });
    let started = Instant::now();
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    let received = if into_buffer {
        let mut received = Vec::with_capacity(size);
        socket.read_to_end(&mut received).await.expect("read");
        received.len() as u64
    } else {
        tokio::io::copy(&mut socket, &mut tokio::io::sink())
            .await
            .expect("copy")
    };
    let took = started.elapsed();
    assert_eq!(received, size as u64);
    sender.await.expect("the sender");
    took
}
