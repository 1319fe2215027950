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

/// One mapping of a process's address space and its resident bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mapping {
    /// Its `/proc/<pid>/smaps` header: address range, permissions, offset,
    /// device, inode and path (`[heap]`, a file, or nothing for anonymous
    /// memory: glibc's thread arenas and large `mmap`ed allocations).
    pub header: String,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// Its resident bytes.
    pub rss_bytes: u64,
}

/// The mappings of a `/proc/<pid>/smaps` text, largest RSS first.
pub fn parse_smaps(smaps: &str) -> Vec<Mapping> {
    let mut mappings: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if first.contains('-') && !first.ends_with(':') {
            mappings.push(Mapping {
                header: line.split_whitespace().collect::<Vec<_>>().join(" "),
                size_bytes: 0,
                rss_bytes: 0,
            });
            continue;
        }
        let mut kb = || {
            words
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        match (first, mappings.last_mut()) {
            ("Size:", Some(mapping)) => mapping.size_bytes = kb(),
            ("Rss:", Some(mapping)) => mapping.rss_bytes = kb(),
            _ => {}
        }
    }
    mappings.sort_by_key(|mapping| std::cmp::Reverse(mapping.rss_bytes));
    mappings
}

/// The `count` mappings of `pid` with the most resident memory.
pub fn largest_mappings(pid: u32, count: usize) -> Result<Vec<Mapping>> {
    let path = proc_path(pid, "smaps");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut mappings = parse_smaps(&text);
    mappings.truncate(count);
    Ok(mappings)
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
    fn smaps_mappings_are_sorted_by_rss() {
        let smaps = "\
55d0c000-55d0e000 r--p 00000000 fd:01 1234 /usr/bin/bench-svc
Size:                  8 kB
Rss:                   8 kB
VmFlags: rd mr mw me dw sd
55d1a000-55e1a000 rw-p 00000000 00:00 0 [heap]
Size:               1024 kB
Rss:                 900 kB
7f00000000-7f04000000 rw-p 00000000 00:00 0
Size:              65536 kB
Rss:                2048 kB
";
        let mappings = parse_smaps(smaps);
        assert_eq!(mappings.len(), 3);
        assert_eq!(
            mappings[0].header,
            "7f00000000-7f04000000 rw-p 00000000 00:00 0"
        );
        assert_eq!(mappings[0].rss_bytes, 2048 * 1024);
        assert_eq!(mappings[0].size_bytes, 65536 * 1024);
        assert!(mappings[1].header.ends_with("[heap]"));
        assert_eq!(mappings[2].rss_bytes, 8 * 1024);
    }

    #[test]
    fn this_process_can_be_measured() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).unwrap() > 0);
        cpu_time(pid).unwrap();
        let sampler = RssSampler::start(pid).unwrap();
        assert!(sampler.peak() > 0);
        assert!(!largest_mappings(pid, 3).unwrap().is_empty());
    }
}
