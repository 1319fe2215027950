//! The measurements, one function each. Every one starts its own service
//! (so memory is measured from that process's idle state), bounds its
//! waits, and stops what it started when it returns (or fails).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::client::{self, Conn, LoadResult};
use crate::procfs::{self, RssSampler};
use crate::service::{Process, Service};
use crate::stats;
use crate::tasks::{self, Outcomes};
use crate::wrk::{self, WrkRun};

/// `CONTROL_MAX_BODY_BYTES`' default: 4 MiB.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How many of a process's largest mappings the report keeps.
const MAPPINGS_SHOWN: usize = 8;

/// How big each large execute body is: just under the limit.
pub const BIG_BODY_BYTES: usize = MAX_BODY_BYTES - 256;

/// How much work each measurement does: [`Scale::full`] for the numbers,
/// [`Scale::quick`] for a smoke run.
#[derive(Debug, Clone, Serialize)]
pub struct Scale {
    /// Service starts timed.
    pub startup_runs: usize,
    /// Connections of the status load.
    pub load_connections: usize,
    /// Warm-up before each measured load window.
    pub load_warmup_secs: f64,
    /// Each measured load window.
    pub load_secs: f64,
    /// Rounds of (bare hyper, service) loads; the median round is reported.
    /// wrk, when found, runs as many rounds of its own after them.
    pub load_rounds: usize,
    /// wrk's `-t`.
    pub wrk_threads: usize,
    /// wrk's `-c`.
    pub wrk_connections: usize,
    /// Concurrent long tasks of the first, smaller long-task run.
    pub long_tasks_small: usize,
    /// Concurrent long tasks.
    pub long_tasks: usize,
    /// How long each of them sleeps.
    pub long_sleep_ms: u64,
    /// Short tasks.
    pub short_tasks: usize,
    /// `TASK_RETENTION_SECS` of the short-task service.
    pub retention_secs: u64,
    /// Concurrent executes with a body just under 4 MiB.
    pub big_executes: usize,
    /// How long each of those tasks sleeps (so all bodies are held at once).
    pub big_sleep_ms: u64,
    /// Connections used to submit tasks and read their status.
    pub task_connections: usize,
    /// `svcgen new` / `cargo new` pairs timed.
    pub new_runs: usize,
    /// After eviction, also call glibc's `malloc_trim(0)` in the service
    /// (through gdb) and read RSS again: how much of what stayed is freed
    /// memory glibc kept, and how much is still allocated.
    pub malloc_trim_probe: bool,
    /// Keep the short-task service this many seconds after measuring it,
    /// for a look with gdb or /proc (its pid is printed).
    pub hold_secs: u64,
}

impl Scale {
    /// The scale of the issue's targets.
    pub fn full() -> Scale {
        Scale {
            startup_runs: 7,
            load_connections: 64,
            load_warmup_secs: 1.0,
            load_secs: 5.0,
            load_rounds: 3,
            wrk_threads: 2,
            wrk_connections: 64,
            long_tasks_small: 1_000,
            long_tasks: 5_000,
            long_sleep_ms: 5_000,
            short_tasks: 100_000,
            retention_secs: 30,
            big_executes: 20,
            big_sleep_ms: 1_000,
            task_connections: 64,
            new_runs: 7,
            malloc_trim_probe: false,
            hold_secs: 0,
        }
    }

    /// wrk's `-d`, in whole seconds (all it takes): the in-process window
    /// rounded up.
    pub fn wrk_secs(&self) -> u64 {
        self.load_secs.ceil().max(1.0) as u64
    }

    /// A smoke run: everything once, small.
    pub fn quick() -> Scale {
        Scale {
            startup_runs: 2,
            load_connections: 16,
            load_warmup_secs: 0.2,
            load_secs: 1.0,
            load_rounds: 1,
            wrk_threads: 2,
            wrk_connections: 64,
            long_tasks_small: 100,
            long_tasks: 300,
            long_sleep_ms: 1_000,
            short_tasks: 2_000,
            retention_secs: 2,
            big_executes: 4,
            big_sleep_ms: 300,
            task_connections: 16,
            new_runs: 2,
            malloc_trim_probe: false,
            hold_secs: 0,
        }
    }
}

/// Startup and idle memory.
#[derive(Debug, Clone, Serialize)]
pub struct Startup {
    /// Starts timed.
    pub runs: usize,
    /// Median time from spawn to the first 200 on `/health`.
    pub median_ms: f64,
    /// Fastest start.
    pub min_ms: f64,
    /// Slowest start.
    pub max_ms: f64,
    /// RSS one second after the last start, nothing done.
    pub idle_rss_bytes: u64,
}

/// Times `runs` starts of `binary` to the first 200 on `/health`.
pub async fn startup(binary: &Path, env: &[(String, String)], runs: usize) -> Result<Startup> {
    let mut times = Vec::new();
    let mut idle = 0;
    for run in 0..runs.max(1) {
        let service = Service::start(binary, env)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let healthy = match Conn::open(service.http).await {
                Ok(mut conn) => matches!(conn.get("/health").await, Ok(r) if r.status == 200),
                Err(_) => false,
            };
            if healthy {
                times.push(service.process.started.elapsed());
                break;
            }
            if Instant::now() > deadline {
                bail!("/health did not answer 200 within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if run + 1 == runs.max(1) {
            idle = idle_rss(&service)?;
        }
    }
    times.sort();
    Ok(Startup {
        runs: times.len(),
        median_ms: stats::ms(stats::median(&times).unwrap_or_default()),
        min_ms: stats::ms(times[0]),
        max_ms: stats::ms(times[times.len() - 1]),
        idle_rss_bytes: idle,
    })
}

/// RSS of a service left alone for a second: see [`settled_rss`].
fn idle_rss(service: &Service) -> Result<u64> {
    std::thread::sleep(Duration::from_secs(1));
    settled_rss(service)
}

/// RSS of `service` now: the median of ten reads 50 ms apart.
fn settled_rss(service: &Service) -> Result<u64> {
    procfs::settled_rss(service.pid(), 10, Duration::from_millis(50))
}

/// The status endpoint under load, and bare hyper answering the same body.
#[derive(Debug, Clone, Serialize)]
pub struct StatusLoad {
    /// The status answer's body, in bytes (bare hyper sends the same).
    pub body_bytes: usize,
    /// `GET /control/status/{id}` of the generated service (median round).
    pub service: LoadResult,
    /// Bare hyper (median round): also the load client's ceiling.
    pub bare_hyper: LoadResult,
    /// Service req/s over bare hyper req/s.
    pub ratio: f64,
    /// The same endpoint and bare hyper under wrk, when it is on PATH.
    pub wrk: WrkStatus,
}

/// The status endpoint and bare hyper under wrk, or why not.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WrkStatus {
    /// Measured: the median round of each, like the in-process load.
    Measured {
        /// `wrk -v`'s first line.
        version: String,
        /// `GET /control/status/{id}` of the generated service.
        service: WrkRun,
        /// Bare hyper, the same body.
        bare_hyper: WrkRun,
        /// Service req/s over bare hyper req/s, both under wrk.
        ratio: f64,
    },
    /// Not run: wrk is not on PATH, or `--no-wrk`.
    Skipped {
        /// Why.
        reason: String,
    },
    /// wrk was there but a run failed (also in the report's errors).
    Failed {
        /// Why.
        error: String,
    },
}

/// Loads `GET /control/status/{id}` of a finished task, alternating with
/// bare hyper (a child process running `bench_exe bare-hyper`), with the
/// in-process client, then with `wrk` (the found executable, or why it is
/// not run) for as many rounds, each as long as an in-process window.
pub async fn status_load(
    binary: &Path,
    env: &[(String, String)],
    bench_exe: &Path,
    wrk: &Result<PathBuf, String>,
    scale: &Scale,
) -> Result<StatusLoad> {
    let service = Service::start(binary, env)?;
    let mut conn = Conn::open(service.http).await?;
    let answer = conn
        .post_json(
            "/control/execute",
            r#"{"method":"Noop","workflow_id":"bench-status","task_id":"status"}"#.into(),
        )
        .await?
        .json()?;
    let id = answer["task_id"]
        .as_str()
        .with_context(|| format!("a Noop execute answered {answer}"))?
        .to_string();
    let path = format!("/control/status/{id}");
    let reply = conn.get(&path).await?;
    if reply.status != 200 {
        bail!("status answered {}", reply.status);
    }
    let body = String::from_utf8(reply.body.to_vec()).context("a status body in UTF-8")?;
    drop(conn);

    let mut bare = Process::spawn(bench_exe, &["bare-hyper", "--body", &body], &[])?;
    let line = bare.wait_for_line("listening", Duration::from_secs(10))?;
    let bare_addr = crate::service::addr_field(&line, "http_addr=")?;

    let warmup = Duration::from_secs_f64(scale.load_warmup_secs);
    let window = Duration::from_secs_f64(scale.load_secs);
    let load = |addr: SocketAddr, pid: u32| {
        let path = path.clone();
        async move {
            client::closed_loop(addr, &path, scale.load_connections, warmup, window, pid).await
        }
    };
    let mut servers = Servers {
        service: &service,
        bare: &mut bare,
        bare_addr,
    };
    let (service_runs, bare_runs) = servers.alternate(scale.load_rounds, "", load).await?;
    let service_load = median_run(service_runs, |r| r.rps);
    let bare_load = median_run(bare_runs, |r| r.rps);

    let wrk = match wrk {
        Err(reason) => WrkStatus::Skipped {
            reason: reason.clone(),
        },
        Ok(wrk) => {
            let secs = scale.wrk_secs();
            let load = |addr: SocketAddr, pid: u32| {
                let path = path.clone();
                async move {
                    let (threads, connections) = (scale.wrk_threads, scale.wrk_connections);
                    wrk::run(wrk, addr, &path, threads, connections, secs, pid).await
                }
            };
            match servers.alternate(scale.load_rounds, "wrk: ", load).await {
                Ok((service_runs, bare_runs)) => {
                    let service = median_run(service_runs, |r| r.rps);
                    let bare_hyper = median_run(bare_runs, |r| r.rps);
                    WrkStatus::Measured {
                        version: wrk::version(wrk),
                        ratio: service.rps / bare_hyper.rps,
                        service,
                        bare_hyper,
                    }
                }
                Err(err) => WrkStatus::Failed {
                    error: format!("{err:#}"),
                },
            }
        }
    };
    Ok(StatusLoad {
        body_bytes: body.len(),
        ratio: service_load.rps / bare_load.rps,
        service: service_load,
        bare_hyper: bare_load,
        wrk,
    })
}

/// The two servers a status load alternates between.
struct Servers<'a> {
    service: &'a Service,
    bare: &'a mut Process,
    bare_addr: SocketAddr,
}

impl Servers<'_> {
    /// `rounds` (at least one) rounds of `load`, bare hyper first, then the
    /// service, so that both see the machine as it is in that round; fails
    /// if bare hyper has died. Returns the service's runs, then bare
    /// hyper's. `what` prefixes the error context.
    async fn alternate<R, Fut>(
        &mut self,
        rounds: usize,
        what: &str,
        load: impl Fn(SocketAddr, u32) -> Fut,
    ) -> Result<(Vec<R>, Vec<R>)>
    where
        Fut: std::future::Future<Output = Result<R>>,
    {
        let mut service_runs = Vec::new();
        let mut bare_runs = Vec::new();
        for _ in 0..rounds.max(1) {
            let bare_run = load(self.bare_addr, self.bare.pid()).await;
            bare_runs.push(bare_run.with_context(|| format!("{what}loading bare hyper"))?);
            let service_run = load(self.service.http, self.service.pid()).await;
            service_runs.push(service_run.with_context(|| format!("{what}loading the service"))?);
            self.bare.check_alive()?;
        }
        Ok((service_runs, bare_runs))
    }
}

/// The run with the median throughput.
fn median_run<T>(mut runs: Vec<T>, rps: impl Fn(&T) -> f64) -> T {
    runs.sort_by(|a, b| rps(a).total_cmp(&rps(b)));
    runs.swap_remove((runs.len() - 1) / 2)
}

/// Many concurrent long tasks.
#[derive(Debug, Clone, Serialize)]
pub struct LongTasks {
    /// Tasks started at once.
    pub tasks: usize,
    /// How long each sleeps.
    pub sleep_ms: u64,
    /// Connections the executes went over.
    pub connections: usize,
    /// First execute sent to the last one answered.
    pub accepted_secs: f64,
    /// Executes answered per second while accepting.
    pub accepted_per_sec: f64,
    /// First execute sent to no task running (checked every 20 ms).
    pub all_complete_secs: f64,
    /// How they ended.
    pub outcomes: Outcomes,
    /// 429/503 answers waited out.
    pub refused: u64,
    /// RSS before the first execute.
    pub idle_rss_bytes: u64,
    /// Highest RSS seen (sampled every 50 ms).
    pub peak_rss_bytes: u64,
}

/// `count` long tasks sleeping `scale.long_sleep_ms`, all started at
/// once (the service runs with `MAX_RUNNING_TASKS` above `count`).
pub async fn long_tasks(
    binary: &Path,
    env: &[(String, String)],
    scale: &Scale,
    count: usize,
) -> Result<LongTasks> {
    let mut env = env.to_vec();
    env.push(("MAX_RUNNING_TASKS".into(), (count + 1000).to_string()));
    let service = Service::start(binary, &env)?;
    let idle = idle_rss(&service)?;
    let sampler = RssSampler::start(service.pid())?;
    let sleep_ms = scale.long_sleep_ms;
    let body: tasks::BodyFn = Arc::new(move |i| tasks::sleep_body("bench-long", i, sleep_ms));
    let limit = Duration::from_secs(60);
    let submitted = tasks::submit(service.http, scale.task_connections, count, body, limit).await?;
    let done = tasks::wait_none_running(
        service.http,
        Duration::from_millis(20),
        Duration::from_millis(sleep_ms) + limit,
    )
    .await?;
    let peak = sampler.peak();
    let outcomes = tasks::outcomes(service.http, &submitted.ids, scale.task_connections).await?;
    let accepted = submitted.all_accepted.duration_since(submitted.first_sent);
    Ok(LongTasks {
        tasks: count,
        sleep_ms,
        connections: scale.task_connections,
        accepted_secs: accepted.as_secs_f64(),
        accepted_per_sec: count as f64 / accepted.as_secs_f64(),
        all_complete_secs: done.duration_since(submitted.first_sent).as_secs_f64(),
        outcomes,
        refused: submitted.refused,
        idle_rss_bytes: idle,
        peak_rss_bytes: peak,
    })
}

/// Many short tasks, then their eviction.
#[derive(Debug, Clone, Serialize)]
pub struct ShortTasks {
    /// Tasks run.
    pub tasks: usize,
    /// `TASK_RETENTION_SECS` of the service.
    pub retention_secs: u64,
    /// First execute sent to the last one answered.
    pub submit_secs: f64,
    /// Executes answered per second.
    pub accepted_per_sec: f64,
    /// 429/503 answers waited out (`MAX_RUNNING_TASKS` is its default).
    pub refused: u64,
    /// How they ended (read before their retention ran out).
    pub outcomes: Outcomes,
    /// RSS before the first execute.
    pub idle_rss_bytes: u64,
    /// Highest RSS seen (sampled every 50 ms).
    pub peak_rss_bytes: u64,
    /// RSS 2 s after the last task completed, all of them still kept.
    pub settled_rss_bytes: u64,
    /// Whether every task was still kept when `settled_rss_bytes` was read
    /// (the run was shorter than the retention).
    pub all_kept_when_settled: bool,
    /// RSS once tasks and tombstones are gone (past 2x retention).
    pub evicted_rss_bytes: u64,
    /// Whether the first task's poll id answered 404 by then.
    pub evicted: bool,
    /// The largest mappings when `settled_rss_bytes` was read.
    pub settled_mappings: Vec<procfs::Mapping>,
    /// The largest mappings when `evicted_rss_bytes` was read: where the
    /// memory that did not come back is.
    pub evicted_mappings: Vec<procfs::Mapping>,
    /// RSS after `malloc_trim(0)` (with `--malloc-trim-probe`).
    pub trimmed_rss_bytes: Option<u64>,
    /// The largest mappings then.
    pub trimmed_mappings: Vec<procfs::Mapping>,
}

/// `tasks` short tasks (`Sleep` with 0 ms) through a service with the
/// default `MAX_RUNNING_TASKS`; their outcomes; RSS at peak, settled, and
/// once everything is evicted (the store is touched every second while
/// waiting, as an orchestrator's polls would).
pub async fn short_tasks(
    binary: &Path,
    env: &[(String, String)],
    scale: &Scale,
) -> Result<ShortTasks> {
    let mut env = env.to_vec();
    env.push((
        "TASK_RETENTION_SECS".into(),
        scale.retention_secs.to_string(),
    ));
    let service = Service::start(binary, &env)?;
    let idle = idle_rss(&service)?;
    let sampler = RssSampler::start(service.pid())?;
    let body: tasks::BodyFn = Arc::new(|i| tasks::sleep_body("bench-short", i, 0));
    let limit = Duration::from_secs(600);
    let submitted = tasks::submit(
        service.http,
        scale.task_connections,
        scale.short_tasks,
        body,
        limit,
    )
    .await?;
    let done = tasks::wait_none_running(
        service.http,
        Duration::from_millis(20),
        Duration::from_secs(60),
    )
    .await?;
    let outcomes = tasks::outcomes(service.http, &submitted.ids, scale.task_connections).await?;
    let settle_at = done + Duration::from_secs(2);
    tokio::time::sleep_until(settle_at.into()).await;
    let settled = settled_rss(&service)?;
    let settled_mappings = procfs::largest_mappings(service.pid(), MAPPINGS_SHOWN)?;
    let retention = Duration::from_secs(scale.retention_secs);
    let all_kept = submitted.first_sent.elapsed() < retention;
    let peak = sampler.peak();

    // Past twice the retention after the last task finished, every task and
    // tombstone is gone. The store evicts when it is used: poke it.
    let gone_at = done + retention * 2 + Duration::from_secs(2);
    let mut conn = Conn::open(service.http).await?;
    while Instant::now() < gone_at {
        conn.get("/control/status/none").await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let first = submitted.ids.first().cloned().unwrap_or_default();
    let evicted = conn.get(&format!("/control/status/{first}")).await?.status == 404;
    drop(conn);
    std::thread::sleep(Duration::from_secs(1));
    let evicted_rss = settled_rss(&service)?;
    let evicted_mappings = procfs::largest_mappings(service.pid(), MAPPINGS_SHOWN)?;
    let (trimmed_rss, trimmed_mappings) = if scale.malloc_trim_probe {
        malloc_trim(service.pid())?;
        let rss = settled_rss(&service)?;
        let mappings = procfs::largest_mappings(service.pid(), MAPPINGS_SHOWN)?;
        (Some(rss), mappings)
    } else {
        (None, Vec::new())
    };
    if scale.hold_secs > 0 {
        eprintln!(
            "   holding the service (pid {}, {}) for {} s",
            service.pid(),
            service.http,
            scale.hold_secs
        );
        tokio::time::sleep(Duration::from_secs(scale.hold_secs)).await;
    }
    let submit = submitted.all_accepted.duration_since(submitted.first_sent);
    Ok(ShortTasks {
        tasks: scale.short_tasks,
        retention_secs: scale.retention_secs,
        submit_secs: submit.as_secs_f64(),
        accepted_per_sec: scale.short_tasks as f64 / submit.as_secs_f64(),
        refused: submitted.refused,
        outcomes,
        idle_rss_bytes: idle,
        peak_rss_bytes: peak,
        settled_rss_bytes: settled,
        all_kept_when_settled: all_kept,
        evicted_rss_bytes: evicted_rss,
        evicted,
        settled_mappings,
        evicted_mappings,
        trimmed_rss_bytes: trimmed_rss,
        trimmed_mappings,
    })
}

/// Makes process `pid` call glibc's `malloc_trim(0)` (returning the free
/// pages of every arena to the kernel), through gdb.
fn malloc_trim(pid: u32) -> Result<()> {
    let output = std::process::Command::new("gdb")
        .args(["-p", &pid.to_string(), "-batch", "-nx"])
        .args(["-ex", "call (int) malloc_trim(0)", "-ex", "detach"])
        .stdin(std::process::Stdio::null())
        .output()
        .context("running gdb (needed by --malloc-trim-probe)")?;
    if !output.status.success() {
        bail!(
            "gdb could not call malloc_trim in {pid}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Concurrent executes with bodies just under 4 MiB.
#[derive(Debug, Clone, Serialize)]
pub struct BigBodies {
    /// Executes sent at once.
    pub executes: usize,
    /// Bytes in each body.
    pub body_bytes: usize,
    /// How long each task sleeps (holding its inputs).
    pub sleep_ms: u64,
    /// First execute sent to the last one answered.
    pub accepted_secs: f64,
    /// How they ended.
    pub outcomes: Outcomes,
    /// RSS before the first execute.
    pub idle_rss_bytes: u64,
    /// Highest RSS seen (sampled every 50 ms).
    pub peak_rss_bytes: u64,
    /// RSS 2 s after the last task completed.
    pub settled_rss_bytes: u64,
    /// RSS after `malloc_trim(0)` (with `--malloc-trim-probe`).
    pub trimmed_rss_bytes: Option<u64>,
}

/// `executes` executes of ~4 MiB each, all at once, one per connection.
pub async fn big_bodies(
    binary: &Path,
    env: &[(String, String)],
    scale: &Scale,
) -> Result<BigBodies> {
    let service = Service::start(binary, env)?;
    let idle = idle_rss(&service)?;
    let sampler = RssSampler::start(service.pid())?;
    let sleep_ms = scale.big_sleep_ms;
    let bodies: Vec<bytes::Bytes> = (0..scale.big_executes)
        .map(|i| tasks::big_body(i, sleep_ms, BIG_BODY_BYTES))
        .collect::<Result<_>>()?;
    let bodies = Arc::new(bodies);
    let body: tasks::BodyFn = Arc::new(move |i| bodies[i].clone());
    let limit = Duration::from_secs(120);
    let submitted = tasks::submit(
        service.http,
        scale.big_executes,
        scale.big_executes,
        body,
        limit,
    )
    .await?;
    let done = tasks::wait_none_running(service.http, Duration::from_millis(20), limit).await?;
    let outcomes = tasks::outcomes(service.http, &submitted.ids, 4).await?;
    tokio::time::sleep_until((done + Duration::from_secs(2)).into()).await;
    let settled = settled_rss(&service)?;
    let peak = sampler.peak();
    let trimmed = if scale.malloc_trim_probe {
        malloc_trim(service.pid())?;
        Some(settled_rss(&service)?)
    } else {
        None
    };
    Ok(BigBodies {
        executes: scale.big_executes,
        body_bytes: BIG_BODY_BYTES,
        sleep_ms,
        accepted_secs: submitted
            .all_accepted
            .duration_since(submitted.first_sent)
            .as_secs_f64(),
        outcomes,
        idle_rss_bytes: idle,
        peak_rss_bytes: peak,
        settled_rss_bytes: settled,
        trimmed_rss_bytes: trimmed,
    })
}
