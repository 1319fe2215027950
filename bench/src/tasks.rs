//! Driving tasks like an orchestrator, at scale: submitting executes over
//! N keep-alive connections (respecting 429/503 with `Retry-After`),
//! waiting until none runs, and checking every poll id's status, so that a
//! lost task is counted, not assumed away.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use serde::Serialize;

use crate::client::Conn;

/// Makes the execute body of task `i`.
pub type BodyFn = Arc<dyn Fn(usize) -> Bytes + Send + Sync>;

/// The longest `Retry-After` the client waits in one go, in seconds.
const MAX_RETRY_WAIT_SECS: u64 = 10;

/// What a submission achieved.
pub struct Submitted {
    /// Poll ids, by task index.
    pub ids: Vec<String>,
    /// When the first execute was sent.
    pub first_sent: Instant,
    /// When the last execute was answered.
    pub all_accepted: Instant,
    /// 429 and 503 answers waited out (and retried).
    pub refused: u64,
}

/// The JSON execute body of a `Sleep` task without inputs.
pub fn sleep_body(workflow_id: &str, index: usize, sleep_ms: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"method":"Sleep","workflow_id":"{workflow_id}","task_id":"t{index}","inputs":[],"parameters":{{"sleep_ms":{sleep_ms}}}}}"#
    ))
}

/// The JSON execute body of a `Sleep` task with one inline input padded
/// so that the whole body is exactly `total` bytes (for bodies near
/// `CONTROL_MAX_BODY_BYTES`).
pub fn big_body(index: usize, sleep_ms: u64, total: usize) -> Result<Bytes> {
    let prefix = format!(
        r#"{{"method":"Sleep","workflow_id":"bench-big","task_id":"big{index}","parameters":{{"sleep_ms":{sleep_ms}}},"inputs":[{{"protocol":"inline","uri":"inline:payload","format":"bytes","metadata":{{"data":""#
    );
    let suffix = r#""}}]}"#;
    let pad = total
        .checked_sub(prefix.len() + suffix.len())
        .with_context(|| format!("a body of {total} bytes has no room for its input"))?;
    let mut body = Vec::with_capacity(total);
    body.extend_from_slice(prefix.as_bytes());
    body.extend((0..pad).map(|i| b'A' + (i % 26) as u8));
    body.extend_from_slice(suffix.as_bytes());
    Ok(Bytes::from(body))
}

/// Sends `count` executes (`body(i)` for task `i`) over `connections`
/// connections, one in flight per connection. A 429 or 503 is waited out
/// for its `Retry-After` (1 s if absent, at most 10 s) and retried; any
/// other answer but 200 fails. Gives up after `limit`.
pub async fn submit(
    addr: SocketAddr,
    connections: usize,
    count: usize,
    body: BodyFn,
    limit: Duration,
) -> Result<Submitted> {
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections.clamp(1, count.max(1)) {
        conns.push(Conn::open(addr).await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let first_sent = Instant::now();
    let deadline = first_sent + limit;
    let mut workers = Vec::with_capacity(conns.len());
    for mut conn in conns {
        let next = next.clone();
        let refused = refused.clone();
        let body = body.clone();
        workers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut last = Instant::now();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    break;
                }
                let id = execute_until_accepted(&mut conn, &body(index), &refused, deadline)
                    .await
                    .with_context(|| format!("task {index}"))?;
                last = Instant::now();
                ids.push((index, id));
            }
            Ok::<_, anyhow::Error>((ids, last))
        }));
    }
    let mut ids = vec![String::new(); count];
    let mut all_accepted = first_sent;
    for worker in workers {
        let (mine, last) = worker
            .await
            .map_err(|err| anyhow!("a submitting worker failed: {err}"))??;
        all_accepted = all_accepted.max(last);
        for (index, id) in mine {
            ids[index] = id;
        }
    }
    Ok(Submitted {
        ids,
        first_sent,
        all_accepted,
        refused: refused.load(Ordering::Relaxed),
    })
}

/// One execute, retried after 429/503 as the answer says; the poll id.
async fn execute_until_accepted(
    conn: &mut Conn,
    body: &Bytes,
    refused: &AtomicU64,
    deadline: Instant,
) -> Result<String> {
    loop {
        let reply = conn.post_json("/control/execute", body.clone()).await?;
        match reply.status {
            200 => {
                let answer = reply.json()?;
                return answer["task_id"]
                    .as_str()
                    .map(str::to_string)
                    .with_context(|| format!("an execute answer without task_id: {answer}"));
            }
            429 | 503 => {
                refused.fetch_add(1, Ordering::Relaxed);
                let wait =
                    Duration::from_secs(reply.retry_after.unwrap_or(1).min(MAX_RETRY_WAIT_SECS));
                if Instant::now() + wait > deadline {
                    bail!("still refused ({}) at the time limit", reply.status);
                }
                tokio::time::sleep(wait).await;
            }
            status => bail!(
                "execute answered {status}: {}",
                String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)])
            ),
        }
    }
}

/// Polls `GET /control/tasks?status=running&limit=1` every `every` until
/// it lists nothing; returns when that was first seen. Gives up after
/// `limit`.
pub async fn wait_none_running(
    addr: SocketAddr,
    every: Duration,
    limit: Duration,
) -> Result<Instant> {
    let mut conn = Conn::open(addr).await?;
    let deadline = Instant::now() + limit;
    loop {
        let reply = conn.get("/control/tasks?status=running&limit=1").await?;
        let answer = reply.json()?;
        let running = answer["tasks"]
            .as_array()
            .with_context(|| format!("a task list without tasks: {answer}"))?;
        if reply.status == 200 && running.is_empty() {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!("tasks still running after {limit:?}");
        }
        tokio::time::sleep(every).await;
    }
}

/// How the tasks of a run ended, from their status.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Outcomes {
    /// `complete`.
    pub complete: u64,
    /// `failed`.
    pub failed: u64,
    /// Still `running`.
    pub running: u64,
    /// Unknown to the service (404), or no poll id at all: lost.
    pub lost: u64,
}

/// The status of every poll id in `ids`, over `connections` connections.
pub async fn outcomes(addr: SocketAddr, ids: &[String], connections: usize) -> Result<Outcomes> {
    let ids: Arc<Vec<String>> = Arc::new(ids.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..connections.clamp(1, ids.len().max(1)) {
        let mut conn = Conn::open(addr).await?;
        let ids = ids.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut seen = Outcomes::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(index) else { break };
                if id.is_empty() {
                    seen.lost += 1;
                    continue;
                }
                let reply = conn.get(&format!("/control/status/{id}")).await?;
                if reply.status == 404 {
                    seen.lost += 1;
                    continue;
                }
                let answer = reply.json()?;
                match answer["status"].as_str() {
                    Some("complete") => seen.complete += 1,
                    Some("failed") => seen.failed += 1,
                    Some("running") => seen.running += 1,
                    _ => bail!("status of {id} answered {}: {answer}", reply.status),
                }
            }
            Ok::<_, anyhow::Error>(seen)
        }));
    }
    let mut total = Outcomes::default();
    for worker in workers {
        let seen = worker
            .await
            .map_err(|err| anyhow!("a status worker failed: {err}"))??;
        total.complete += seen.complete;
        total.failed += seen.failed;
        total.running += seen.running;
        total.lost += seen.lost;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_bodies_have_the_exact_size_and_are_valid_executes() {
        let total = 4_194_304 - 256;
        let body = big_body(3, 1000, total).unwrap();
        assert_eq!(body.len(), total);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["method"], "Sleep");
        assert_eq!(json["task_id"], "big3");
        assert_eq!(json["parameters"]["sleep_ms"], 1000);
        assert!(
            json["inputs"][0]["metadata"]["data"]
                .as_str()
                .unwrap()
                .len()
                > 4_000_000
        );
        assert!(big_body(0, 0, 10).is_err());
    }

    #[test]
    fn sleep_bodies_are_valid_executes() {
        let json: serde_json::Value = serde_json::from_slice(&sleep_body("wf", 7, 5000)).unwrap();
        assert_eq!(json["task_id"], "t7");
        assert_eq!(json["workflow_id"], "wf");
        assert_eq!(json["parameters"]["sleep_ms"], 5000);
    }
}
