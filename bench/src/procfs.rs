//! What the kernel says about a process: resident memory (`VmRSS` in
//! `/proc/<pid>/status`) and CPU time (`utime + stime` in
//! `/proc/<pid>/stat`), plus a sampler thread that follows a process's
//! RSS every [`SAMPLE_EVERY`] to catch its peaks.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// How often the sampler reads `VmRSS`.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// Kernel clock ticks per second, the unit of `utime` and `stime`
/// (`sysconf(_SC_CLK_TCK)`, 100 on every Linux target Rust supports).
pub const CLOCK_TICKS_PER_SEC: u64 = 100;

/// The `VmRSS` of a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Result<u64> {
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words
        .next()
        .context("VmRSS has no value")?
        .parse()
        .context("VmRSS is not a number")?;
    match words.next() {
        Some("kB") => Ok(value * 1024),
        unit => bail!("VmRSS in an unknown unit {unit:?}"),
    }
}

/// `utime + stime` of a `/proc/<pid>/stat` text, in clock ticks. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn parse_cpu_ticks(stat: &str) -> Result<u64> {
    let after_name = stat
        .rfind(')')
        .map(|at| &stat[at + 1..])
        .context("no `)` after the command name")?;
    // After the name come field 3 (state) onwards; utime and stime are
    // fields 14 and 15, so the 12th and 13th words here (0-based 11, 12).
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |index: usize, name: &str| -> Result<u64> {
        fields
            .get(index)
            .with_context(|| format!("no {name} field"))?
            .parse()
            .with_context(|| format!("{name} is not a number"))
    };
    Ok(field(11, "utime")? + field(12, "stime")?)
}

/// The current resident set size of `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let path = proc_path(pid, "status");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_vm_rss(&text).with_context(|| format!("parsing {}", path.display()))
}

/// CPU time `pid` has used so far (user + system).
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let path = proc_path(pid, "stat");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let ticks = parse_cpu_ticks(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Duration::from_millis(ticks * 1000 / CLOCK_TICKS_PER_SEC))
}

fn proc_path(pid: u32, file: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{file}"))
}

/// The median RSS of `samples` reads spaced `every` apart: a settled value,
/// not one caught mid-allocation.
pub fn settled_rss(pid: u32, samples: usize, every: Duration) -> Result<u64> {
    let mut values = Vec::with_capacity(samples.max(1));
    for index in 0..samples.max(1) {
        if index > 0 {
            std::thread::sleep(every);
        }
        values.push(rss_bytes(pid)?);
    }
    values.sort_unstable();
    Ok(values[values.len() / 2])
}

/// Follows the RSS of one process on a thread of its own until dropped,
/// keeping the highest value seen since the last [`RssSampler::reset_peak`].
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pid: u32,
}

impl RssSampler {
    /// Starts sampling `pid`; sampling ends by itself when the process does.
    pub fn start(pid: u32) -> Result<RssSampler> {
        let peak = Arc::new(AtomicU64::new(rss_bytes(pid)?));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name(format!("rss-{pid}"))
            .spawn({
                let peak = peak.clone();
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        match rss_bytes(pid) {
                            Ok(rss) => {
                                peak.fetch_max(rss, Ordering::Relaxed);
                            }
                            Err(_) => break,
                        }
                        std::thread::sleep(SAMPLE_EVERY);
                    }
                }
            })
            .context("starting the RSS sampler thread")?;
        Ok(RssSampler {
            peak,
            stop,
            thread: Some(thread),
            pid,
        })
    }

    /// The highest RSS seen since the start or the last reset, including now.
    pub fn peak(&self) -> u64 {
        if let Ok(now) = rss_bytes(self.pid) {
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tbench-svc\nVmPeak:\t  10000 kB\nVmRSS:\t    5204 kB\nThreads:\t5\n";
        assert_eq!(parse_vm_rss(status).unwrap(), 5204 * 1024);
        assert!(parse_vm_rss("Name:\tx\n").is_err());
        assert!(parse_vm_rss("VmRSS:\t12 MB\n").is_err());
    }

    #[test]
    fn cpu_ticks_skip_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    250 75 0 0 20 0 5 0 12345 1000000 1300 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 325);
        assert!(parse_cpu_ticks("4242 (x) S 1 2").is_err());
    }

    #[test]
    fn this_process_can_be_measured() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).unwrap() > 0);
        cpu_time(pid).unwrap();
        let sampler = RssSampler::start(pid).unwrap();
        assert!(sampler.peak() > 0);
    }
}
