//! The results: the machine they were taken on, every measurement, and
//! the table (one row per measure, with the target of issue #10 and
//! whether it is met), printed and written as JSON.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::scenarios::{BigBodies, LongTasks, Scale, ShortTasks, Startup, StatusLoad, WrkStatus};
use crate::stats::mb;

/// Where the numbers were taken.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Online CPUs.
    pub cpus: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// /proc/loadavg when the run started.
    pub loadavg_start: String,
    /// /proc/loadavg when it ended.
    pub loadavg_end: String,
}

impl Machine {
    /// What /proc says about this machine now.
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            loadavg_start: loadavg(),
            loadavg_end: String::new(),
        }
    }
}

/// The first `model name` of a /proc/cpuinfo text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
}

/// The three load averages of /proc/loadavg.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// `svcgen new` against `cargo new`.
#[derive(Debug, Clone, Serialize)]
pub struct NewTimes {
    /// Median `svcgen new` (two methods).
    pub svcgen_new_ms: f64,
    /// Median `cargo new`.
    pub cargo_new_ms: f64,
}

/// Build times of the generated project.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Builds {
    /// The harness's own release build of the benchmark service (shared
    /// target dir, so usually incremental): informational.
    pub release_build_secs: Option<f64>,
    /// Debug rebuild after one handler edit.
    pub rebuild_after_edit_secs: Option<f64>,
    /// Debug build of a new project into a fresh target dir.
    pub cold_debug_build_secs: Option<f64>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `full` or `quick`.
    pub mode: String,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    /// The machine.
    pub machine: Machine,
    /// How much work each measurement did.
    pub scale: Scale,
    /// The service binary given with `--binary` (none: the one generated).
    pub binary: Option<String>,
    /// Extra environment given to every service (`--service-env`).
    pub service_env: Vec<(String, String)>,
    /// `svcgen new` vs `cargo new`.
    pub new: Option<NewTimes>,
    /// Build times.
    pub builds: Builds,
    /// Startup and idle RSS.
    pub startup: Option<Startup>,
    /// Status endpoint throughput against bare hyper.
    pub status: Option<StatusLoad>,
    /// The smaller run of concurrent long tasks (1,000 at full scale).
    pub long_tasks_small: Option<LongTasks>,
    /// Concurrent long tasks.
    pub long_tasks: Option<LongTasks>,
    /// Many short tasks, and eviction.
    pub short_tasks: Option<ShortTasks>,
    /// Concurrent ~4 MiB executes.
    pub big_bodies: Option<BigBodies>,
    /// Measurements that failed, with why.
    pub errors: Vec<String>,
    /// The table.
    pub rows: Vec<Row>,
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured.
    pub measure: String,
    /// The number(s).
    pub value: String,
    /// Issue #10's target, if any.
    pub target: String,
    /// Whether the target is met (`None`: no target, or a quick run).
    pub met: Option<bool>,
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// `, N errors` for a load run with errors (non-2xx answers, socket
/// errors), nothing without.
fn errors_note(errors: u64) -> String {
    if errors == 0 {
        String::new()
    } else {
        format!(", {} errors", thousands(errors as f64))
    }
}

impl Report {
    /// A report of nothing measured yet, for a run in `mode` on `machine`.
    pub fn new(mode: &str, started_unix: u64, machine: Machine, scale: Scale) -> Report {
        Report {
            mode: mode.into(),
            started_unix,
            machine,
            scale,
            binary: None,
            service_env: Vec::new(),
            new: None,
            builds: Builds::default(),
            startup: None,
            status: None,
            long_tasks_small: None,
            long_tasks: None,
            short_tasks: None,
            big_bodies: None,
            errors: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Fills `rows` from the measurements; targets are judged only at full
    /// scale.
    pub fn build_rows(&mut self) {
        let full = self.mode == "full";
        let mut rows = Vec::new();
        let mut row = |measure: String, value: String, target: &str, met: Option<bool>| {
            rows.push(Row {
                measure,
                value,
                target: target.to_string(),
                met: if full && !target.is_empty() {
                    met
                } else {
                    None
                },
            });
        };
        if let Some(s) = &self.startup {
            row(
                format!("startup to first 200 on /health (median of {})", s.runs),
                format!(
                    "{:.1} ms (min {:.1}, max {:.1})",
                    s.median_ms, s.min_ms, s.max_ms
                ),
                "< 20 ms",
                Some(s.median_ms < 20.0),
            );
            row(
                "idle RSS".into(),
                format!("{:.1} MB", mb(s.idle_rss_bytes)),
                "< 10 MB",
                Some(mb(s.idle_rss_bytes) < 10.0),
            );
        }
        if let Some(s) = &self.status {
            let l = &s.service;
            row(
                format!("GET /control/status/{{id}}, {} connections", l.connections),
                format!(
                    "{} req/s ({:.0}% of bare hyper), p99 {:.2} ms, {:.1} µs CPU/req",
                    thousands(l.rps),
                    s.ratio * 100.0,
                    l.p99_ms,
                    l.server_cpu_us_per_req
                ),
                ">= 75% of bare hyper, p99 <= 5 ms",
                Some(s.ratio >= 0.75 && l.p99_ms <= 5.0),
            );
            let b = &s.bare_hyper;
            row(
                format!("bare hyper, same {}-byte body (reference)", s.body_bytes),
                format!(
                    "{} req/s, p99 {:.2} ms, {:.1} µs CPU/req",
                    thousands(b.rps),
                    b.p99_ms,
                    b.server_cpu_us_per_req
                ),
                "",
                None,
            );
            row(
                "load client (against bare hyper: its ceiling)".into(),
                format!(
                    "{:.1} µs CPU/req, {:.2} cores busy at {} req/s",
                    b.client_cpu_us_per_req,
                    b.client_cpu_cores,
                    thousands(b.rps)
                ),
                "",
                None,
            );
            let wrk = format!(
                "wrk -t{} -c{} -d{}s",
                self.scale.wrk_threads,
                self.scale.wrk_connections,
                self.scale.wrk_secs()
            );
            match &s.wrk {
                WrkStatus::Measured {
                    service,
                    bare_hyper,
                    ratio,
                    ..
                } => {
                    row(
                        format!("GET /control/status/{{id}} under {wrk}"),
                        format!(
                            "{} req/s ({:.0}% of bare hyper under wrk), p99 {:.2} ms, {:.1} µs CPU/req{}",
                            thousands(service.rps),
                            ratio * 100.0,
                            service.p99_ms,
                            service.server_cpu_us_per_req,
                            errors_note(service.errors)
                        ),
                        ">= 75% of bare hyper, p99 <= 5 ms",
                        Some(*ratio >= 0.75 && service.p99_ms <= 5.0 && service.errors == 0),
                    );
                    row(
                        format!("bare hyper under {wrk} (reference)"),
                        format!(
                            "{} req/s, p99 {:.2} ms, {:.1} µs CPU/req{}",
                            thousands(bare_hyper.rps),
                            bare_hyper.p99_ms,
                            bare_hyper.server_cpu_us_per_req,
                            errors_note(bare_hyper.errors)
                        ),
                        "",
                        None,
                    );
                }
                WrkStatus::Skipped { reason } => row(
                    format!("GET /control/status/{{id}} under {wrk}"),
                    format!("not run: {reason}"),
                    "",
                    None,
                ),
                WrkStatus::Failed { error } => row(
                    format!("GET /control/status/{{id}} under {wrk}"),
                    format!("FAILED: {}", error.lines().next().unwrap_or_default()),
                    "",
                    None,
                ),
            }
        }
        if let Some(t) = &self.long_tasks_small {
            row(
                format!(
                    "{} × {} s tasks: accepted / all complete",
                    thousands(t.tasks as f64),
                    t.sleep_ms / 1000
                ),
                format!(
                    "{:.2} s ({} executes/s) / {:.2} s; {} complete, {} lost, {} failed; peak RSS {:.1} MB",
                    t.accepted_secs,
                    thousands(t.accepted_per_sec),
                    t.all_complete_secs,
                    thousands(t.outcomes.complete as f64),
                    t.outcomes.lost,
                    t.outcomes.failed,
                    mb(t.peak_rss_bytes)
                ),
                "< 0.5 s / <= 5.5 s, none lost",
                Some(
                    t.accepted_secs < 0.5
                        && t.all_complete_secs <= 5.5
                        && t.outcomes.complete == t.tasks as u64
                        && t.outcomes.lost == 0,
                ),
            );
        }
        if let Some(t) = &self.long_tasks {
            let name = format!(
                "{} × {} s tasks",
                thousands(t.tasks as f64),
                t.sleep_ms / 1000
            );
            row(
                format!("{name}: all accepted"),
                format!(
                    "{:.2} s ({} executes/s, {} connections)",
                    t.accepted_secs,
                    thousands(t.accepted_per_sec),
                    t.connections
                ),
                "< 0.5 s",
                Some(t.accepted_secs < 0.5),
            );
            row(
                format!("{name}: all complete, from the first execute"),
                format!(
                    "{:.2} s; {} complete, {} lost, {} failed",
                    t.all_complete_secs,
                    thousands(t.outcomes.complete as f64),
                    t.outcomes.lost,
                    t.outcomes.failed
                ),
                "<= 5.5 s, none lost",
                Some(
                    t.all_complete_secs <= 5.5
                        && t.outcomes.complete == t.tasks as u64
                        && t.outcomes.lost == 0,
                ),
            );
            row(
                format!("{name}: peak RSS"),
                format!(
                    "{:.1} MB (idle {:.1})",
                    mb(t.peak_rss_bytes),
                    mb(t.idle_rss_bytes)
                ),
                "< 30 MB",
                Some(mb(t.peak_rss_bytes) < 30.0),
            );
        }
        if let Some(t) = &self.short_tasks {
            let name = format!("{} short tasks", thousands(t.tasks as f64));
            row(
                format!("{name}: accepted and completed"),
                format!(
                    "{} complete, {} lost, {} failed in {:.1} s ({} executes/s, {} 429/503 waited out)",
                    thousands(t.outcomes.complete as f64),
                    t.outcomes.lost,
                    t.outcomes.failed,
                    t.submit_secs,
                    thousands(t.accepted_per_sec),
                    t.refused
                ),
                "all, none lost",
                Some(t.outcomes.complete == t.tasks as u64 && t.outcomes.lost == 0),
            );
            row(
                format!("{name}: peak RSS"),
                format!("{:.1} MB", mb(t.peak_rss_bytes)),
                "< 300 MB",
                Some(mb(t.peak_rss_bytes) < 300.0),
            );
            row(
                format!(
                    "{name}: settled RSS, {} kept",
                    if t.all_kept_when_settled {
                        "all"
                    } else {
                        "not all"
                    }
                ),
                format!("{:.1} MB", mb(t.settled_rss_bytes)),
                "",
                None,
            );
            row(
                format!(
                    "{name}: RSS after eviction (retention {} s, waited 2× + 2 s)",
                    t.retention_secs
                ),
                format!(
                    "{:.1} MB = {:.1}× idle ({:.1} MB){}",
                    mb(t.evicted_rss_bytes),
                    t.evicted_rss_bytes as f64 / t.idle_rss_bytes.max(1) as f64,
                    mb(t.idle_rss_bytes),
                    if t.evicted { "" } else { "; NOT evicted" }
                ),
                "<= 2× idle",
                Some(t.evicted && t.evicted_rss_bytes <= 2 * t.idle_rss_bytes),
            );
            if let Some(trimmed) = t.trimmed_rss_bytes {
                row(
                    format!("{name}: RSS after eviction and malloc_trim(0) (diagnosis)"),
                    format!("{:.1} MB", mb(trimmed)),
                    "",
                    None,
                );
            }
        }
        if let Some(b) = &self.big_bodies {
            row(
                format!(
                    "{} concurrent executes of {} bytes: RSS",
                    b.executes,
                    thousands(b.body_bytes as f64)
                ),
                format!(
                    "peak {:.1} MB, settled {:.1} MB (idle {:.1}){}; {} complete, {} lost",
                    mb(b.peak_rss_bytes),
                    mb(b.settled_rss_bytes),
                    mb(b.idle_rss_bytes),
                    b.trimmed_rss_bytes.map_or(String::new(), |rss| format!(
                        ", {:.1} MB after malloc_trim(0)",
                        mb(rss)
                    )),
                    b.outcomes.complete,
                    b.outcomes.lost
                ),
                "",
                None,
            );
        }
        if let Some(n) = &self.new {
            row(
                "`svcgen new` (2 methods) vs `cargo new`, medians".into(),
                format!(
                    "{:.1} ms vs {:.1} ms ({:.0}%)",
                    n.svcgen_new_ms,
                    n.cargo_new_ms,
                    n.svcgen_new_ms / n.cargo_new_ms * 100.0
                ),
                "<= 50% of cargo new",
                Some(n.svcgen_new_ms <= n.cargo_new_ms / 2.0),
            );
        }
        let b = &self.builds;
        if let Some(secs) = b.release_build_secs {
            row(
                "release build of the benchmark service (shared target dir)".into(),
                format!("{secs:.1} s"),
                "",
                None,
            );
        }
        if let Some(secs) = b.cold_debug_build_secs {
            row(
                "cold debug build of a new project (fresh target dir)".into(),
                format!("{secs:.1} s"),
                "< 35 s",
                Some(secs < 35.0),
            );
        }
        if let Some(secs) = b.rebuild_after_edit_secs {
            row(
                "debug rebuild after editing one handler".into(),
                format!("{secs:.2} s"),
                "< 3 s",
                Some(secs < 3.0),
            );
        }
        self.rows = rows;
    }

    /// The table, as Markdown.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| measure | value | target | met |");
        let _ = writeln!(out, "|---|---|---|---|");
        for row in &self.rows {
            let met = match row.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                row.measure, row.value, row.target, met
            );
        }
        out
    }

    /// Writes the report as pretty JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self).context("serialising the report")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(122_500.0), "122,500");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(-4200.0), "-4,200");
    }

    fn load(rps: f64, p99_ms: f64) -> crate::client::LoadResult {
        crate::client::LoadResult {
            connections: 16,
            seconds: 1.0,
            requests: rps as u64,
            errors: 0,
            rps,
            p50_ms: p99_ms / 4.0,
            p99_ms,
            max_ms: p99_ms * 2.0,
            server_cpu_us_per_req: 6.0,
            server_cpu_cores: 0.9,
            client_cpu_us_per_req: 7.0,
            client_cpu_cores: 1.0,
        }
    }

    fn wrk_run(rps: f64, errors: u64) -> crate::wrk::WrkRun {
        crate::wrk::WrkRun {
            threads: 2,
            connections: 64,
            seconds: 1.0,
            requests: rps as u64,
            errors,
            rps,
            p50_ms: 0.2,
            p99_ms: 1.5,
            max_ms: 9.0,
            server_cpu_us_per_req: 5.5,
            server_cpu_cores: 1.1,
        }
    }

    fn report_with(wrk: WrkStatus) -> Report {
        let machine = Machine {
            cpus: 2,
            cpu_model: "test".into(),
            loadavg_start: String::new(),
            loadavg_end: String::new(),
        };
        let mut report = Report::new("quick", 0, machine, Scale::quick());
        report.status = Some(StatusLoad {
            body_bytes: 65,
            service: load(90_000.0, 1.0),
            bare_hyper: load(100_000.0, 0.9),
            ratio: 0.9,
            wrk,
        });
        report.build_rows();
        report
    }

    #[test]
    fn wrk_rows_sit_beside_the_in_process_ones_or_say_why_not() {
        let report = report_with(WrkStatus::Measured {
            version: "wrk 4.1.0".into(),
            service: wrk_run(120_000.0, 0),
            bare_hyper: wrk_run(150_000.0, 3),
            ratio: 0.8,
        });
        let table = report.table();
        assert!(
            table.contains("| GET /control/status/{id} under wrk -t2 -c64 -d1s | 120,000 req/s (80% of bare hyper under wrk), p99 1.50 ms, 5.5 µs CPU/req |"),
            "{table}"
        );
        assert!(
            table.contains("| bare hyper under wrk -t2 -c64 -d1s (reference) | 150,000 req/s, p99 1.50 ms, 5.5 µs CPU/req, 3 errors |"),
            "{table}"
        );
        let json = serde_json::to_value(&report).unwrap();
        let measured = &json["status"]["wrk"]["measured"];
        assert_eq!(measured["service"]["rps"], 120_000.0);
        assert_eq!(measured["bare_hyper"]["errors"], 3);
        assert_eq!(measured["ratio"], 0.8);

        let report = report_with(WrkStatus::Skipped {
            reason: "wrk not found on PATH".into(),
        });
        assert!(report.table().contains(
            "| GET /control/status/{id} under wrk -t2 -c64 -d1s | not run: wrk not found on PATH |"
        ));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["status"]["wrk"]["skipped"]["reason"],
            "wrk not found on PATH"
        );
    }

    #[test]
    fn the_cpu_model_comes_from_cpuinfo() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert_eq!(cpu_model("processor : 0\n"), None);
    }
}
