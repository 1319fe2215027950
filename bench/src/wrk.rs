//! wrk, the external load generator, when it is on PATH: one run of
//! `wrk -t<T> -c<C> -d<S>s --latency <url>` against a server, its
//! throughput and latency percentiles read from what it prints, and the
//! server's CPU time over the run from /proc. The harness works without
//! it; the report then says why it was not run.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::procfs;

/// How long past its `-d` a wrk run may take before it is killed.
const GRACE: Duration = Duration::from_secs(15);

/// The wrk executable on `PATH`, or why wrk is not used (`disabled`:
/// `--no-wrk`).
pub fn locate(disabled: bool) -> Result<PathBuf, String> {
    if disabled {
        return Err("--no-wrk given".into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    find_in("wrk", &path).ok_or_else(|| "wrk not found on PATH".into())
}

/// The first executable file called `name` in the directories of `path`
/// (a `PATH` value).
pub fn find_in(name: &str, path: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// The first line of `wrk -v` without its copyright, e.g.
/// `wrk debian/4.1.0-3+b2 [epoll]` (wrk exits 1 after printing it).
pub fn version(wrk: &Path) -> String {
    Command::new(wrk)
        .arg("-v")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let line = text.lines().next()?.to_string();
            let line = line.split(" Copyright").next().unwrap_or(&line);
            Some(line.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// What wrk prints, as numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Requests completed (`N requests in …`), whatever their status.
    pub requests: u64,
    /// wrk's own measure of the run (`… in 1.00s`).
    pub seconds: f64,
    /// `Requests/sec:`.
    pub rps: f64,
    /// 50% of the latency distribution.
    pub p50_ms: f64,
    /// 99% of the latency distribution.
    pub p99_ms: f64,
    /// `Max` of the latency thread stats.
    pub max_ms: f64,
    /// `Non-2xx or 3xx responses:` (0 when wrk prints no such line).
    pub non_2xx: u64,
    /// Connect, read, write and timeout errors of `Socket errors:` together.
    pub socket_errors: u64,
}

/// A wrk time (`152.00us`, `0.96ms`, `1.00s`, `1.00m`, `1.00h`) in ms.
fn time_ms(text: &str) -> Result<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .with_context(|| format!("no unit in the time {text:?}"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .with_context(|| format!("the time {text:?}"))?;
    let scale = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => bail!("unknown unit {unit:?} in the time {text:?}"),
    };
    Ok(number * scale)
}

/// The numbers of wrk's output (run with `--latency`).
pub fn parse(text: &str) -> Result<Output> {
    let mut requests = None;
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut max = None;
    let mut non_2xx = 0;
    let mut socket_errors = 0;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Latency", _avg, _stdev, max_time, ..] => max = Some(time_ms(max_time)?),
            ["50%", time] => p50 = Some(time_ms(time)?),
            ["99%", time] => p99 = Some(time_ms(time)?),
            [count, "requests", "in", time, ..] => {
                let count: u64 = count
                    .parse()
                    .with_context(|| format!("the request count in {line:?}"))?;
                let secs = time_ms(time.trim_end_matches(','))? / 1000.0;
                requests = Some((count, secs));
            }
            ["Requests/sec:", value] => {
                rps = Some(
                    value
                        .parse::<f64>()
                        .with_context(|| format!("the rate in {line:?}"))?,
                );
            }
            ["Non-2xx", "or", "3xx", "responses:", count] => {
                non_2xx = count
                    .parse()
                    .with_context(|| format!("the count in {line:?}"))?;
            }
            ["Socket", "errors:", ..] => {
                // `Socket errors: connect 0, read 0, write 0, timeout 0`
                for pair in words[2..].chunks(2) {
                    if let [_, count] = pair {
                        socket_errors += count
                            .trim_end_matches(',')
                            .parse::<u64>()
                            .with_context(|| format!("the counts in {line:?}"))?;
                    }
                }
            }
            _ => {}
        }
    }
    let missing = |what: &str| format!("no {what} in wrk's output:\n{text}");
    let (requests, seconds) = requests.with_context(|| missing("`N requests in T` line"))?;
    Ok(Output {
        requests,
        seconds,
        rps: rps.with_context(|| missing("`Requests/sec:`"))?,
        p50_ms: p50.with_context(|| missing("50% latency (was --latency given?)"))?,
        p99_ms: p99.with_context(|| missing("99% latency (was --latency given?)"))?,
        max_ms: max.with_context(|| missing("`Latency` thread stats"))?,
        non_2xx,
        socket_errors,
    })
}

/// One wrk run against a server.
#[derive(Debug, Clone, Serialize)]
pub struct WrkRun {
    /// `-t`.
    pub threads: usize,
    /// `-c`.
    pub connections: usize,
    /// wrk's measure of the run (`-d`, plus a little).
    pub seconds: f64,
    /// Requests completed.
    pub requests: u64,
    /// Non-2xx answers and socket errors.
    pub errors: u64,
    /// Requests per second, as wrk prints it.
    pub rps: f64,
    /// Median latency (wrk's distribution).
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Slowest request.
    pub max_ms: f64,
    /// Server CPU time (user + system) per request, over the whole wrk
    /// process (its connects included).
    pub server_cpu_us_per_req: f64,
    /// Server CPU use over the run, in cores.
    pub server_cpu_cores: f64,
}

/// Runs `wrk -t<threads> -c<connections> -d<secs>s --latency
/// http://<addr><path>` (killed if it has not ended `GRACE` after its
/// duration) and reads the CPU time of `server_pid` around it.
pub async fn run(
    wrk: &Path,
    addr: SocketAddr,
    path: &str,
    threads: usize,
    connections: usize,
    secs: u64,
    server_pid: u32,
) -> Result<WrkRun> {
    let url = format!("http://{addr}{path}");
    let cpu_from = procfs::cpu_time(server_pid)?;
    let started = Instant::now();
    let child = tokio::process::Command::new(wrk)
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{secs}s"))
        .arg("--latency")
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // An early return or the timeout below drops it: killed then.
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", wrk.display()))?;
    let limit = Duration::from_secs(secs) + GRACE;
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .map_err(|_| anyhow!("wrk did not end within {GRACE:?} of its {secs} s run"))?
        .context("waiting for wrk")?;
    let wall = started.elapsed().as_secs_f64();
    let cpu_to = procfs::cpu_time(server_pid)?;
    let status = output.status;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !status.success() {
        bail!(
            "`wrk … {url}` exited with {status}: {}{}",
            stdout.trim(),
            stderr.trim()
        );
    }
    let out = parse(&stdout).with_context(|| format!("`wrk … {url}`"))?;
    if out.requests == 0 {
        bail!("wrk completed no request to {url}:\n{stdout}{stderr}");
    }
    let cpu = cpu_to.saturating_sub(cpu_from).as_secs_f64();
    Ok(WrkRun {
        threads,
        connections,
        seconds: out.seconds,
        requests: out.requests,
        errors: out.non_2xx + out.socket_errors,
        rps: out.rps,
        p50_ms: out.p50_ms,
        p99_ms: out.p99_ms,
        max_ms: out.max_ms,
        server_cpu_us_per_req: cpu * 1e6 / out.requests as f64,
        server_cpu_cores: cpu / wall,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `wrk -t2 -c64 -d1s --latency` against the bare hyper reference
    /// (wrk debian/4.1.0-3+b2, 2 cores), as it printed it.
    const SAMPLE: &str = "\
Running 1s test @ http://127.0.0.1:44713/control/status/abc
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   842.95us    1.30ms  16.19ms   83.50%
    Req/Sec    99.06k     7.04k  109.81k    75.00%
  Latency Distribution
     50%  152.00us
     75%    0.96ms
     90%    3.03ms
     99%    5.18ms
  196819 requests in 1.00s, 26.84MB read
Requests/sec: 195966.35
Transfer/sec:     26.72MB
";

    /// `wrk -t2 -c64 -d2s --latency` against Python's http.server asked
    /// for a missing file (every answer a 404), as it printed it.
    const SAMPLE_404: &str = "\
Running 2s test @ http://127.0.0.1:38267/nope
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.43ms    1.15ms  25.29ms   93.45%
    Req/Sec     0.87k   589.49     1.53k    55.00%
  Latency Distribution
     50%    3.33ms
     75%    3.70ms
     90%    4.10ms
     99%    6.07ms
  3468 requests in 2.01s, 1.72MB read
  Non-2xx or 3xx responses: 3468
Requests/sec:   1729.07
Transfer/sec:      0.86MB
";

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_real_run_is_read() {
        let out = parse(SAMPLE).unwrap();
        assert_eq!(out.requests, 196_819);
        assert!(close(out.seconds, 1.0));
        assert!(close(out.rps, 195_966.35));
        assert!(close(out.p50_ms, 0.152), "{}", out.p50_ms);
        assert!(close(out.p99_ms, 5.18));
        assert!(close(out.max_ms, 16.19));
        assert_eq!((out.non_2xx, out.socket_errors), (0, 0));
    }

    #[test]
    fn non_2xx_answers_and_socket_errors_are_counted() {
        let out = parse(SAMPLE_404).unwrap();
        assert_eq!((out.requests, out.non_2xx), (3468, 3468));
        assert!(close(out.seconds, 2.01));
        assert!(close(out.p99_ms, 6.07));
        // wrk prints this line only when one count is not 0 (wrk.c).
        let with_errors = SAMPLE.replace(
            "Requests/sec:",
            "  Socket errors: connect 3, read 2, write 0, timeout 17\nRequests/sec:",
        );
        assert_eq!(parse(&with_errors).unwrap().socket_errors, 22);
    }

    #[test]
    fn output_without_latency_or_totals_is_refused() {
        let no_latency: String = SAMPLE
            .lines()
            .filter(|line| !line.contains('%') || line.contains("Stdev"))
            .map(|line| format!("{line}\n"))
            .collect();
        let err = parse(&no_latency).unwrap_err().to_string();
        assert!(err.contains("--latency"), "{err}");
        assert!(parse("unable to connect to 127.0.0.1:1 Connection refused\n").is_err());
    }

    #[test]
    fn times_carry_their_unit() {
        assert!(close(time_ms("152.00us").unwrap(), 0.152));
        assert!(close(time_ms("0.96ms").unwrap(), 0.96));
        assert!(close(time_ms("1.00s").unwrap(), 1000.0));
        assert!(close(time_ms("1.50m").unwrap(), 90_000.0));
        assert!(time_ms("12").is_err());
        assert!(time_ms("3.0parsecs").is_err());
    }

    #[test]
    fn wrk_is_looked_for_on_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        let wrk = bin.join("wrk");
        std::fs::write(&wrk, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths([&empty, &bin]).unwrap();
        // Not executable: not wrk.
        std::fs::set_permissions(&wrk, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(find_in("wrk", &path), None);
        std::fs::set_permissions(&wrk, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_in("wrk", &path), Some(wrk));
        assert_eq!(
            find_in("wrk", &std::env::join_paths([&empty]).unwrap()),
            None
        );
        assert_eq!(locate(true).unwrap_err(), "--no-wrk given");
    }
}
