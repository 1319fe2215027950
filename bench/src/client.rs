//! The load client: HTTP/1.1 keep-alive connections (hyper, one request at
//! a time per connection, `TCP_NODELAY`), reconnecting when the server has
//! closed an idle one, and a closed-loop load generator over N of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::procfs;
use crate::stats;

/// The longest one request may take before the harness gives up on it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An answer: status, `Retry-After` in seconds if any, the whole body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// The `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON, with the status in the error.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "HTTP {} with a body that is not JSON: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            )
        })
    }
}

/// One keep-alive HTTP/1.1 connection to `addr`, reopened when needed.
pub struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection to `addr`, opened now.
    pub async fn open(addr: SocketAddr) -> Result<Conn> {
        let mut conn = Conn {
            addr,
            host: addr.to_string(),
            sender: None,
        };
        conn.connect().await?;
        Ok(conn)
    }

    async fn connect(&mut self) -> Result<()> {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // Ends when the connection closes; errors show up on requests.
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// A ready sender: the current one, or a new connection when the
    /// server closed the old one (an idle keep-alive connection).
    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        let usable = match self.sender.as_mut() {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            self.connect().await?;
        }
        self.sender.as_mut().context("no connection")
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Result<Reply> {
        self.send(Method::GET, path, Bytes::new()).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&mut self, path: &str, body: Bytes) -> Result<Reply> {
        self.send(Method::POST, path, body).await
    }

    async fn send(&mut self, method: Method, path: &str, body: Bytes) -> Result<Reply> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, &self.host);
        if method == Method::POST {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body))
            .context("building a request")?;
        let exchange = async {
            let sender = self.ready().await?;
            let response = sender
                .send_request(request)
                .await
                .with_context(|| format!("{method} {path}"))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse().ok());
            let body = response
                .into_body()
                .collect()
                .await
                .with_context(|| format!("reading the answer to {method} {path}"))?
                .to_bytes();
            Ok::<_, anyhow::Error>(Reply {
                status,
                retry_after,
                body,
            })
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(reply) => reply,
            Err(_) => {
                self.sender = None;
                bail!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}")
            }
        }
    }
}

/// What a closed-loop run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    /// Connections, each with one request in flight at a time.
    pub connections: usize,
    /// Length of the measured window, after the warm-up.
    pub seconds: f64,
    /// Requests answered 200 within the window.
    pub requests: u64,
    /// Answers other than 200, and failed requests, within the window.
    pub errors: u64,
    /// Requests per second.
    pub rps: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Slowest request.
    pub max_ms: f64,
    /// Server CPU time (user + system) per request.
    pub server_cpu_us_per_req: f64,
    /// Server CPU use over the window, in cores.
    pub server_cpu_cores: f64,
    /// The load client's own CPU time per request (this process).
    pub client_cpu_us_per_req: f64,
    /// The load client's CPU use over the window, in cores.
    pub client_cpu_cores: f64,
}

/// `GET path` as fast as `connections` connections can, for `warmup`
/// then `duration` (measured): throughput, latency percentiles, and the
/// CPU time of `server_pid` and of this process over the measured window.
pub async fn closed_loop(
    addr: SocketAddr,
    path: &str,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    server_pid: u32,
) -> Result<LoadResult> {
    let begin = Instant::now();
    let measure_from = begin + warmup;
    let end = measure_from + duration;
    let path: Arc<str> = Arc::from(path);
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let path = path.clone();
        let mut conn = Conn::open(addr).await?;
        workers.push(tokio::spawn(async move {
            let mut latencies_us: Vec<u32> = Vec::with_capacity(1 << 14);
            let mut errors = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let ok = matches!(conn.get(&path).await, Ok(reply) if reply.status == 200);
                let done = Instant::now();
                if sent >= measure_from && done <= end {
                    if ok {
                        let us = done.duration_since(sent).as_micros();
                        latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies_us, errors)
        }));
    }
    let own_pid = std::process::id();
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_from = (procfs::cpu_time(server_pid)?, procfs::cpu_time(own_pid)?);
    let window_from = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let cpu_to = (procfs::cpu_time(server_pid)?, procfs::cpu_time(own_pid)?);
    let seconds = window_from.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mine, failed) = worker
            .await
            .map_err(|err| anyhow!("a load worker failed: {err}"))?;
        latencies.extend(mine);
        errors += failed;
    }
    latencies.sort_unstable();
    let requests = latencies.len() as u64;
    if requests == 0 {
        bail!("no request to {path} succeeded within the window ({errors} failed)");
    }
    let pct = |p: f64| stats::percentile(&latencies, p).map_or(0.0, |us| f64::from(us) / 1000.0);
    let server_cpu = cpu_to.0.saturating_sub(cpu_from.0).as_secs_f64();
    let client_cpu = cpu_to.1.saturating_sub(cpu_from.1).as_secs_f64();
    Ok(LoadResult {
        connections,
        seconds,
        requests,
        errors,
        rps: requests as f64 / seconds,
        p50_ms: pct(50.0),
        p99_ms: pct(99.0),
        max_ms: pct(100.0),
        server_cpu_us_per_req: server_cpu * 1e6 / requests as f64,
        server_cpu_cores: server_cpu / seconds,
        client_cpu_us_per_req: client_cpu * 1e6 / requests as f64,
        client_cpu_cores: client_cpu / seconds,
    })
}
