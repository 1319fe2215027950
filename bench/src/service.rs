//! Processes the harness starts (generated services, the bare hyper
//! reference): started with piped stdout, their log read on a thread of its
//! own (last lines kept for error messages), addresses taken from their
//! `listening` line, killed and reaped on drop.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// How many log lines of a process are kept for error messages.
const TAIL_LINES: usize = 40;

/// The environment every generated service gets: loopback only, ports
/// chosen by the kernel, plain log lines.
pub const SERVICE_ENV: [(&str, &str); 5] = [
    ("HOST", "127.0.0.1"),
    ("PORT", "0"),
    ("GRPC_PORT", "0"),
    ("RUST_LOG", "info"),
    ("NO_COLOR", "1"),
];

/// A running child process; killed on drop.
pub struct Process {
    child: Child,
    name: String,
    lines: Option<Receiver<String>>,
    tail: Arc<Mutex<VecDeque<String>>>,
    /// When it was spawned.
    pub started: Instant,
}

impl Process {
    /// Starts `program` with `args` and `env` (added to the harness's own).
    pub fn spawn(program: &Path, args: &[&str], env: &[(String, String)]) -> Result<Process> {
        let name = program
            .file_name()
            .map_or_else(|| "process".into(), |n| n.to_string_lossy().into_owned());
        let started = Instant::now();
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let stdout = child.stdout.take().context("the child's stdout")?;
        let (sender, lines) = mpsc::channel();
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        let kept = tail.clone();
        std::thread::Builder::new()
            .name(format!("log-{name}"))
            .spawn(move || {
                let mut forward = true;
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Ok(mut tail) = kept.lock() {
                        if tail.len() == TAIL_LINES {
                            tail.pop_front();
                        }
                        tail.push_back(line.clone());
                    }
                    // Once nobody waits for lines, keep draining the pipe
                    // so the process never blocks on its log.
                    if forward && sender.send(line).is_err() {
                        forward = false;
                    }
                }
            })
            .context("starting the log reader thread")?;
        Ok(Process {
            child,
            name,
            lines: Some(lines),
            tail,
            started,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for a log line containing `needle`; stops
    /// forwarding lines after it (the log keeps being drained).
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let lines = self.lines.take().context("the log was already consumed")?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    bail!(
                        "{} logged no `{needle}` line within {timeout:?}; its last lines:\n{}",
                        self.name,
                        self.tail()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.try_wait().ok().flatten();
                    bail!(
                        "{} closed its log ({status:?}) before a `{needle}` line; its last lines:\n{}",
                        self.name,
                        self.tail()
                    )
                }
            }
        }
    }

    /// The last log lines, for error messages.
    pub fn tail(&self) -> String {
        self.tail
            .lock()
            .map(|tail| tail.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Fails when the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(anyhow!(
                "{} exited ({status}); its last lines:\n{}",
                self.name,
                self.tail()
            )),
            Err(err) => Err(anyhow!("checking on {}: {err}", self.name)),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A generated service on loopback, with the addresses it logged.
pub struct Service {
    /// The process.
    pub process: Process,
    /// The HTTP control address.
    pub http: SocketAddr,
}

impl Service {
    /// Starts `binary` with [`SERVICE_ENV`] plus `env`, and waits (at most
    /// 30 s) for its `listening http_addr=… grpc_addr=…` line.
    pub fn start(binary: &Path, env: &[(String, String)]) -> Result<Service> {
        let mut all: Vec<(String, String)> = SERVICE_ENV
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.extend(env.iter().cloned());
        let mut process = Process::spawn(binary, &[], &all)?;
        let line = process.wait_for_line("listening", Duration::from_secs(30))?;
        let http = addr_field(&line, "http_addr=")?;
        // The data port is not measured; its address must be there all the same.
        addr_field(&line, "grpc_addr=")?;
        Ok(Service { process, http })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// The socket address after `key` in a log line, up to the next space.
pub fn addr_field(line: &str, key: &str) -> Result<SocketAddr> {
    let start = line
        .find(key)
        .with_context(|| format!("no {key} in {line:?}"))?
        + key.len();
    let value = line[start..].split_whitespace().next().unwrap_or("");
    value
        .parse()
        .with_context(|| format!("{key}{value:?} is not a socket address, in {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_from_the_listening_line() {
        let line = "2026-11-28T18:00:00.000000Z  INFO svcgen_runtime::server: listening \
                    http_addr=127.0.0.1:40123 grpc_addr=127.0.0.1:40125";
        assert_eq!(
            addr_field(line, "http_addr=").unwrap(),
            "127.0.0.1:40123".parse().unwrap()
        );
        assert_eq!(
            addr_field(line, "grpc_addr=").unwrap(),
            "127.0.0.1:40125".parse().unwrap()
        );
        assert!(addr_field(line, "other=").is_err());
        assert!(addr_field("listening http_addr=nowhere", "http_addr=").is_err());
    }
}
