//! Runtime configuration, read from the environment.
//!
//! Every value can be overridden per deployment without rebuilding. The
//! ports and the advertised gRPC host default to what was given to
//! `svcgen new`, which the project's [`Definition`](crate::Definition)
//! carries; the rest have the same defaults in every service.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

/// Everything the runtime needs to start.
#[derive(Clone)]
pub struct Config {
    /// Address both servers bind (`HOST`, default 0.0.0.0).
    pub host: IpAddr,
    /// HTTP control port (`PORT`); 0 picks a free port; `None` is the
    /// service's default.
    pub http_port: Option<u16>,
    /// gRPC data port (`GRPC_PORT`); 0 picks a free port; `None` is the
    /// service's default.
    pub grpc_port: Option<u16>,
    /// Host name put in output references (`GRPC_HOST`); `None` is the
    /// service's default.
    pub grpc_host: Option<String>,
    /// Bearer key required on `/control/*` and, unless
    /// [`data_port_auth`](Self::data_port_auth) is off, on the gRPC data
    /// port (`SERVICE_API_KEY`); `None` (the variable unset) disables auth.
    /// The runtime also sends it to upstreams (see
    /// [`TaskContext::fetch`](crate::TaskContext::fetch)). Surrounding
    /// whitespace (a trailing newline from a secrets file) is trimmed; a
    /// value that is set but blank, is not printable ASCII, or is longer
    /// than 4096 bytes stops the service at start-up. Both hold whether
    /// the key comes from the environment or from a `Config` built by hand.
    pub api_key: Option<String>,
    /// Whether the gRPC data port requires the key too (`DATA_PORT_AUTH`,
    /// `on` or `off`, default `on`; no effect without a key). Off, only
    /// the control port is protected and anyone who can reach the data
    /// port can read every result: for pipelines whose consumers send no
    /// credentials (those made from the platform's Python templates). The
    /// gRPC health service and reflection are open either way.
    pub data_port_auth: bool,
    /// Largest gRPC message sent or received in one piece
    /// (`GRPC_MAX_MESSAGE_BYTES`, default 64 MiB): the largest result the
    /// unary rpcs hand out, and the largest [`TaskContext::fetch`](crate::TaskContext::fetch)
    /// accepts from an upstream's unary rpc. A result streamed by the
    /// runtime's own rpc is not bound by it (see
    /// [`upstream_max_result_bytes`](Self::upstream_max_result_bytes)).
    pub max_message_bytes: usize,
    /// Largest request message the data interface reads
    /// (`GRPC_MAX_REQUEST_BYTES`, default 64 KiB): requests only name a
    /// result, so a client cannot make the service buffer a large one.
    pub max_request_bytes: usize,
    /// Largest `/control/execute` body (`CONTROL_MAX_BODY_BYTES`, default
    /// 4 MiB): inline inputs are the only large part of a request; large
    /// data travels by reference.
    pub max_body_bytes: usize,
    /// How long a quick method may run before it is cut off (`QUICK_METHOD_TIMEOUT_SECS`, default 20).
    pub quick_deadline: Duration,
    /// How long a finished task keeps its result (`TASK_RETENTION_SECS`,
    /// default 3600): no result is dropped for newer ones before. After
    /// it, status still answers, and output says the result expired, for
    /// as long again.
    pub task_retention: Duration,
    /// The most tasks running at once (`MAX_RUNNING_TASKS`, default 1000):
    /// beyond it, execute answers 429 and starts nothing. A repeated
    /// execute that joins a running task is never refused.
    pub max_running_tasks: usize,
    /// The memory finished tasks may hold within their retention
    /// (`MAX_RESULT_STORE_BYTES`, default 1 GiB): their results (a failed
    /// task's error) plus 256 bytes per task. Once reached, execute answers
    /// 503 and starts nothing until results expire; finished results are
    /// never dropped to make room. Tasks already running still store
    /// theirs, so the total can pass it by what they return.
    pub max_result_store_bytes: usize,
    /// How long [`TaskContext::fetch`](crate::TaskContext::fetch) may wait
    /// (`UPSTREAM_TIMEOUT_SECS`, default 30): for the upstream to start
    /// answering, counted from the start of the fetch, retries of an
    /// unavailable upstream included; then, while the result arrives, for
    /// each next piece of it. A slow transfer that keeps moving is not cut.
    pub upstream_timeout: Duration,
    /// Whether [`TaskContext::fetch`](crate::TaskContext::fetch) asks an
    /// upstream for a result through the runtime's streaming rpc first
    /// (`UPSTREAM_STREAMING`, `on` or `off`, default `on`); off, it calls
    /// the unary rpc only, as for a producer that is not a svcgen service.
    pub upstream_streaming: bool,
    /// Largest result [`TaskContext::fetch`](crate::TaskContext::fetch)
    /// assembles from a streamed answer (`UPSTREAM_MAX_RESULT_BYTES`,
    /// default 1 GiB). The pieces of the stream are small; this bounds the
    /// whole, which is held in memory once.
    pub upstream_max_result_bytes: usize,
    /// How long a shutdown lets running tasks finish
    /// (`SHUTDOWN_GRACE_SECS`, default 10, [`SHUTDOWN_GRACE`](crate::SHUTDOWN_GRACE)):
    /// from SIGINT/SIGTERM (or [`RunningService::shutdown`](crate::RunningService::shutdown)),
    /// execute answers 503 while running tasks get this long to finish;
    /// then their tokens are cancelled and they fail, and the servers close
    /// open requests. The shutdown returns within this plus about a second,
    /// whatever the handlers do (see [`crate::contract`], section 5).
    pub shutdown_grace: Duration,
    /// How long a long method may run before it is cut off and fails
    /// (`LONG_METHOD_TIMEOUT_SECS`, default none: as long as it takes,
    /// until `POST /control/cancel/{poll_id}`).
    pub long_deadline: Option<Duration>,
    /// Deadlines of single methods, quick or long, that override the two
    /// above (`METHOD_TIMEOUT_SECS`, e.g. `TrainModel=7200,ScoreBatch=600`).
    /// A method the service does not have is refused at start-up.
    pub method_deadlines: Vec<(String, Duration)>,
    /// The most connections each port keeps open at once
    /// (`MAX_CONNECTIONS`, default 1024). Beyond it the HTTP port answers
    /// 503 and closes, the gRPC port closes at once; both log it.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers on the HTTP
    /// port (`REQUEST_HEADER_TIMEOUT_SECS`, default 10); then the
    /// connection is closed.
    pub header_timeout: Duration,
    /// How long a client may take to send an execute body
    /// (`REQUEST_BODY_TIMEOUT_SECS`, default 30); then it gets 408.
    pub body_timeout: Duration,
    /// How long a connection may stay open with nothing received on it
    /// (`IDLE_CONNECTION_TIMEOUT_SECS`, default 60), on both ports. A gRPC
    /// client answering the server's keepalive pings (every 20 s) is not
    /// idle: a pooled channel stays open, a dead or silent peer does not.
    pub idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            http_port: None,
            grpc_port: None,
            grpc_host: None,
            api_key: None,
            data_port_auth: true,
            max_message_bytes: 64 * 1024 * 1024,
            max_request_bytes: 64 * 1024,
            max_body_bytes: 4 * 1024 * 1024,
            quick_deadline: Duration::from_secs(20),
            task_retention: Duration::from_secs(3600),
            max_running_tasks: 1000,
            max_result_store_bytes: 1024 * 1024 * 1024,
            upstream_timeout: Duration::from_secs(30),
            upstream_streaming: true,
            upstream_max_result_bytes: 1024 * 1024 * 1024,
            shutdown_grace: crate::shutdown::SHUTDOWN_GRACE,
            long_deadline: None,
            method_deadlines: Vec::new(),
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for Config {
    // Hand-written so that the API key never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("http_port", &self.http_port)
            .field("grpc_port", &self.grpc_port)
            .field("grpc_host", &self.grpc_host)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("data_port_auth", &self.data_port_auth)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("quick_deadline", &self.quick_deadline)
            .field("task_retention", &self.task_retention)
            .field("max_running_tasks", &self.max_running_tasks)
            .field("max_result_store_bytes", &self.max_result_store_bytes)
            .field("upstream_timeout", &self.upstream_timeout)
            .field("upstream_streaming", &self.upstream_streaming)
            .field("upstream_max_result_bytes", &self.upstream_max_result_bytes)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("long_deadline", &self.long_deadline)
            .field("method_deadlines", &self.method_deadlines)
            .field("max_connections", &self.max_connections)
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment in
    /// production, a map in tests). Empty values count as unset, except
    /// for `SERVICE_API_KEY`, where a blank value is an error (see
    /// [`api_key`](Self::api_key)).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let defaults = Config::default();
        Ok(Config {
            host: parse(&get, "HOST", "an IP address such as 0.0.0.0")?.unwrap_or(defaults.host),
            http_port: parse(&get, "PORT", "a port number 0-65535")?,
            grpc_port: parse(&get, "GRPC_PORT", "a port number 0-65535")?,
            grpc_host: get("GRPC_HOST"),
            api_key: lookup(API_KEY).as_deref().map(check_api_key).transpose()?,
            data_port_auth: switch(&get, "DATA_PORT_AUTH")?.unwrap_or(defaults.data_port_auth),
            max_message_bytes: positive(&get, "GRPC_MAX_MESSAGE_BYTES", BYTES)?
                .unwrap_or(defaults.max_message_bytes),
            max_request_bytes: positive(&get, "GRPC_MAX_REQUEST_BYTES", BYTES)?
                .unwrap_or(defaults.max_request_bytes),
            max_body_bytes: positive(&get, "CONTROL_MAX_BODY_BYTES", BYTES)?
                .unwrap_or(defaults.max_body_bytes),
            quick_deadline: seconds(&get, "QUICK_METHOD_TIMEOUT_SECS")?
                .unwrap_or(defaults.quick_deadline),
            task_retention: seconds(&get, "TASK_RETENTION_SECS")?
                .unwrap_or(defaults.task_retention),
            max_running_tasks: positive(&get, "MAX_RUNNING_TASKS", TASKS)?
                .unwrap_or(defaults.max_running_tasks),
            max_result_store_bytes: positive(&get, "MAX_RESULT_STORE_BYTES", BYTES)?
                .unwrap_or(defaults.max_result_store_bytes),
            upstream_timeout: seconds(&get, "UPSTREAM_TIMEOUT_SECS")?
                .unwrap_or(defaults.upstream_timeout),
            upstream_streaming: switch(&get, "UPSTREAM_STREAMING")?
                .unwrap_or(defaults.upstream_streaming),
            upstream_max_result_bytes: positive(&get, "UPSTREAM_MAX_RESULT_BYTES", BYTES)?
                .unwrap_or(defaults.upstream_max_result_bytes),
            shutdown_grace: seconds(&get, "SHUTDOWN_GRACE_SECS")?
                .unwrap_or(defaults.shutdown_grace),
            long_deadline: seconds(&get, "LONG_METHOD_TIMEOUT_SECS")?,
            method_deadlines: method_deadlines(&get)?,
            max_connections: positive(
                &get,
                "MAX_CONNECTIONS",
                "a number of connections, at least 1",
            )?
            .unwrap_or(defaults.max_connections),
            header_timeout: seconds(&get, "REQUEST_HEADER_TIMEOUT_SECS")?
                .unwrap_or(defaults.header_timeout),
            body_timeout: seconds(&get, "REQUEST_BODY_TIMEOUT_SECS")?
                .unwrap_or(defaults.body_timeout),
            idle_timeout: seconds(&get, "IDLE_CONNECTION_TIMEOUT_SECS")?
                .unwrap_or(defaults.idle_timeout),
        })
    }

    /// The deadline of `method`: its own (`METHOD_TIMEOUT_SECS`), else the
    /// one of its kind (`QUICK_METHOD_TIMEOUT_SECS`,
    /// `LONG_METHOD_TIMEOUT_SECS`), if any.
    pub fn deadline(&self, method: &str, kind: crate::MethodKind) -> Option<Deadline> {
        if let Some((_, after)) = self.method_deadlines.iter().find(|(m, _)| m == method) {
            return Some(Deadline {
                after: *after,
                setting: "METHOD_TIMEOUT_SECS",
            });
        }
        match kind {
            crate::MethodKind::Quick => Some(Deadline {
                after: self.quick_deadline,
                setting: "QUICK_METHOD_TIMEOUT_SECS",
            }),
            crate::MethodKind::Long => self.long_deadline.map(|after| Deadline {
                after,
                setting: "LONG_METHOD_TIMEOUT_SECS",
            }),
        }
    }

    /// Whether auth is on, and on which ports: the line the service logs
    /// at start-up. It never includes the key.
    pub fn auth_summary(&self) -> &'static str {
        match (&self.api_key, self.data_port_auth) {
            (None, _) => "auth off",
            (Some(_), true) => "auth on (control and data ports)",
            (Some(_), false) => "auth on (control port only; DATA_PORT_AUTH=off)",
        }
    }
}

/// How long a task may run, and the setting that says so (named in the
/// error of a task cut off by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The time from the task's start.
    pub after: Duration,
    /// The environment variable it comes from.
    pub setting: &'static str,
}

/// The variable of the API key, whose value no error message shows.
const API_KEY: &str = "SERVICE_API_KEY";

/// The longest key: the auth check compares fixed-size buffers of this
/// many bytes, so that its time does not depend on the key's length.
pub(crate) const MAX_API_KEY_BYTES: usize = 4096;

/// The key `raw` (a `SERVICE_API_KEY` value) stands for: trimmed of
/// surrounding whitespace, then refused when blank (set but blank turning
/// auth off would fail open), not printable ASCII (no client could send
/// it in a header) or longer than [`MAX_API_KEY_BYTES`].
pub(crate) fn check_api_key(raw: &str) -> Result<String, ConfigError> {
    let key = raw.trim();
    let problem = if key.is_empty() {
        "is set but blank: unset it to disable auth, or give a key"
    } else if !key.bytes().all(|byte| (b' '..=b'~').contains(&byte)) {
        "is not valid: expected printable ASCII, which a client can send in a header \
         (the value is not shown)"
    } else if key.len() > MAX_API_KEY_BYTES {
        "is not valid: expected at most 4096 bytes (the value is not shown)"
    } else {
        return Ok(key.to_string());
    };
    Err(ConfigError {
        name: API_KEY,
        value: String::new(),
        expected: problem,
    })
}

fn parse<T: FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<T>, ConfigError> {
    match get(name) {
        None => Ok(None),
        Some(value) => value.trim().parse().map(Some).map_err(|_| ConfigError {
            name,
            value,
            expected,
        }),
    }
}

const BYTES: &str = "a number of bytes, at least 1";
const SECONDS: &str = "a number of seconds, at least 1";
const TASKS: &str = "a number of tasks, at least 1";

/// A count, size or duration: zero would disable the service, so it is refused.
fn positive<T: FromStr + PartialEq + Default>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<T>, ConfigError> {
    match parse::<T>(get, name, expected)? {
        Some(zero) if zero == T::default() => Err(ConfigError {
            name,
            value: "0".to_string(),
            expected,
        }),
        value => Ok(value),
    }
}

/// A positive number of seconds.
fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<Duration>, ConfigError> {
    Ok(positive(get, name, SECONDS)?.map(Duration::from_secs))
}

/// `METHOD_TIMEOUT_SECS`: `Method=seconds` pairs separated by commas.
fn method_deadlines(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Duration)>, ConfigError> {
    const NAME: &str = "METHOD_TIMEOUT_SECS";
    let Some(value) = get(NAME) else {
        return Ok(Vec::new());
    };
    let invalid = || ConfigError {
        name: NAME,
        value: value.clone(),
        expected: "Method=seconds pairs separated by commas, seconds at least 1, \
                   e.g. TrainModel=7200,ScoreBatch=600",
    };
    let mut deadlines: Vec<(String, Duration)> = Vec::new();
    for pair in value
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let (method, secs) = pair.split_once('=').ok_or_else(invalid)?;
        let (method, secs) = (method.trim(), secs.trim());
        let secs: u64 = secs.parse().map_err(|_| invalid())?;
        if method.is_empty() || secs == 0 || deadlines.iter().any(|(m, _)| m == method) {
            return Err(invalid());
        }
        deadlines.push((method.to_string(), Duration::from_secs(secs)));
    }
    Ok(deadlines)
}

/// `on`/`off` (also `true`/`false`, `1`/`0`, `yes`/`no`, in any case).
fn switch(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<bool>, ConfigError> {
    let Some(value) = get(name) else {
        return Ok(None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(Some(true)),
        "off" | "false" | "0" | "no" => Ok(Some(false)),
        _ => Err(ConfigError {
            name,
            value,
            expected: "on or off",
        }),
    }
}

/// An environment variable whose value could not be used.
#[derive(Debug)]
pub struct ConfigError {
    name: &'static str,
    value: String,
    expected: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name == API_KEY {
            // Never the key: `expected` is the whole problem.
            return write!(f, "{} {}", self.name, self.expected);
        }
        write!(
            f,
            "{}={:?} is not valid: expected {}",
            self.name, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_limits_in_the_environment_are_refused() {
        for name in [
            "MAX_RUNNING_TASKS",
            "MAX_RESULT_STORE_BYTES",
            "TASK_RETENTION_SECS",
            "QUICK_METHOD_TIMEOUT_SECS",
            "GRPC_MAX_MESSAGE_BYTES",
            "GRPC_MAX_REQUEST_BYTES",
            "CONTROL_MAX_BODY_BYTES",
            "UPSTREAM_TIMEOUT_SECS",
            "UPSTREAM_MAX_RESULT_BYTES",
            "SHUTDOWN_GRACE_SECS",
            "LONG_METHOD_TIMEOUT_SECS",
            "MAX_CONNECTIONS",
            "REQUEST_HEADER_TIMEOUT_SECS",
            "REQUEST_BODY_TIMEOUT_SECS",
            "IDLE_CONNECTION_TIMEOUT_SECS",
        ] {
            let err =
                Config::from_lookup(|key| (key == name).then(|| "0".to_string())).expect_err(name);
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn the_task_limits_are_read_with_their_defaults() {
        let defaults = Config::default();
        assert_eq!(
            (
                defaults.task_retention,
                defaults.max_running_tasks,
                defaults.max_result_store_bytes
            ),
            (Duration::from_secs(3600), 1000, 1 << 30)
        );
        // Inline inputs are the only large part of an execute.
        assert_eq!(defaults.max_body_bytes, 4 << 20);
        let connections = (
            defaults.max_connections,
            defaults.header_timeout,
            defaults.body_timeout,
            defaults.idle_timeout,
            defaults.long_deadline,
        );
        assert_eq!(
            connections,
            (
                1024,
                Duration::from_secs(10),
                Duration::from_secs(30),
                Duration::from_secs(60),
                None
            )
        );
        let config = Config::from_lookup(|key| match key {
            "MAX_RUNNING_TASKS" => Some("50".to_string()),
            "MAX_RESULT_STORE_BYTES" => Some("1048576".to_string()),
            "TASK_RETENTION_SECS" => Some("60".to_string()),
            _ => None,
        })
        .expect("valid limits");
        assert_eq!(
            (
                config.task_retention,
                config.max_running_tasks,
                config.max_result_store_bytes
            ),
            (Duration::from_secs(60), 50, 1 << 20)
        );
    }

    #[test]
    fn values_are_read_and_unset_ones_left_to_the_service() {
        let config = Config::from_lookup(|key| match key {
            "PORT" => Some("0".to_string()),
            "SERVICE_API_KEY" => Some("k".to_string()),
            "GRPC_HOST" => Some("  ".to_string()),
            "UPSTREAM_TIMEOUT_SECS" => Some("7".to_string()),
            "UPSTREAM_STREAMING" => Some(" Off ".to_string()),
            "GRPC_MAX_MESSAGE_BYTES" => Some("314572800".to_string()),
            _ => None,
        })
        .expect("valid configuration");
        assert_eq!(config.http_port, Some(0));
        assert_eq!(config.upstream_timeout, Duration::from_secs(7));
        assert!(!config.upstream_streaming);
        assert_eq!(config.max_message_bytes, 300 << 20);
        let defaults = Config::default();
        assert_eq!(
            (
                config.max_request_bytes,
                config.upstream_max_result_bytes,
                defaults.upstream_streaming
            ),
            (64 << 10, 1 << 30, true)
        );
        assert_eq!(config.grpc_port, None);
        assert_eq!(config.grpc_host, None, "blank counts as unset");
        assert_eq!(config.api_key.as_deref(), Some("k"));
        let err = Config::from_lookup(|key| (key == "GRPC_PORT").then(|| "x".to_string()))
            .expect_err("not a port");
        assert_eq!(
            err.to_string(),
            "GRPC_PORT=\"x\" is not valid: expected a port number 0-65535"
        );
        let err = Config::from_lookup(|key| (key == "UPSTREAM_STREAMING").then(|| "2".to_string()))
            .expect_err("not a switch");
        assert_eq!(
            err.to_string(),
            "UPSTREAM_STREAMING=\"2\" is not valid: expected on or off"
        );
    }

    #[test]
    fn the_shutdown_grace_is_read_with_its_default() {
        assert_eq!(Config::default().shutdown_grace, Duration::from_secs(10));
        let config =
            Config::from_lookup(|key| (key == "SHUTDOWN_GRACE_SECS").then(|| "3".to_string()))
                .expect("a valid grace");
        assert_eq!(config.shutdown_grace, Duration::from_secs(3));
    }

    #[test]
    fn the_api_key_never_reaches_debug_output() {
        let config = Config {
            api_key: Some("s3cret".to_string()),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("<set>"),
            "{shown}"
        );
    }

    #[test]
    fn the_api_key_is_trimmed_and_a_blank_or_unsendable_one_refused_unshown() {
        let key = |value: &str| {
            let value = value.to_string();
            Config::from_lookup(move |name| (name == "SERVICE_API_KEY").then(|| value.clone()))
        };
        let config = key(" s3cret\n").expect("a key with surrounding whitespace");
        assert_eq!(config.api_key.as_deref(), Some("s3cret"));
        assert!(config.data_port_auth, "on by default");
        for blank in ["", "  ", "\n"] {
            let err = key(blank).expect_err("blank");
            assert_eq!(
                err.to_string(),
                "SERVICE_API_KEY is set but blank: unset it to disable auth, or give a key"
            );
        }
        for (bad, says) in [
            ("s3cr\u{e9}t", "printable ASCII"),
            ("s3\tcret", "printable ASCII"),
        ] {
            let err = key(bad).expect_err(bad).to_string();
            assert!(err.contains(says) && !err.contains("s3"), "{err}");
        }
        let long = "k".repeat(MAX_API_KEY_BYTES + 1);
        let err = key(&long).expect_err("too long").to_string();
        assert!(
            err.contains("at most 4096 bytes") && !err.contains("kk"),
            "{err}"
        );
        assert!(key(&long[1..]).is_ok(), "4096 bytes");
    }

    #[test]
    fn the_start_up_auth_line_names_the_ports_and_never_the_key() {
        let on = Config::from_lookup(|name| (name == "SERVICE_API_KEY").then(|| "s3cret".into()))
            .expect("a key");
        assert_eq!(on.auth_summary(), "auth on (control and data ports)");
        let control_only = Config::from_lookup(|name| match name {
            "SERVICE_API_KEY" => Some("s3cret".into()),
            "DATA_PORT_AUTH" => Some("off".into()),
            _ => None,
        })
        .expect("a key, data port open");
        assert!(!control_only.data_port_auth);
        assert_eq!(
            control_only.auth_summary(),
            "auth on (control port only; DATA_PORT_AUTH=off)"
        );
        let off = Config::from_lookup(|name| (name == "DATA_PORT_AUTH").then(|| "on".into()));
        assert_eq!(off.expect("no key").auth_summary(), "auth off");
        let err = Config::from_lookup(|name| (name == "DATA_PORT_AUTH").then(|| "maybe".into()))
            .expect_err("not a switch");
        assert!(err.to_string().starts_with("DATA_PORT_AUTH="), "{err}");
    }

    #[test]
    fn deadlines_come_from_the_method_then_its_kind() {
        use crate::MethodKind::{Long, Quick};
        let config = Config::from_lookup(|name| match name {
            "METHOD_TIMEOUT_SECS" => Some(" TrainModel=7200, Export=5 ".into()),
            "LONG_METHOD_TIMEOUT_SECS" => Some("600".into()),
            _ => None,
        })
        .expect("valid deadlines");
        let after = |method: &str, kind| {
            config
                .deadline(method, kind)
                .map(|d| (d.after.as_secs(), d.setting))
        };
        assert_eq!(
            after("TrainModel", Long),
            Some((7200, "METHOD_TIMEOUT_SECS"))
        );
        assert_eq!(after("Export", Quick), Some((5, "METHOD_TIMEOUT_SECS")));
        assert_eq!(
            after("Score", Long),
            Some((600, "LONG_METHOD_TIMEOUT_SECS"))
        );
        assert_eq!(
            after("Ping", Quick),
            Some((20, "QUICK_METHOD_TIMEOUT_SECS"))
        );
        assert_eq!(
            Config::default().deadline("Score", Long),
            None,
            "long: none by default"
        );
        for bad in ["TrainModel", "TrainModel=0", "=5", "A=1,A=2", "A=x"] {
            let err =
                Config::from_lookup(|name| (name == "METHOD_TIMEOUT_SECS").then(|| bad.into()))
                    .expect_err(bad)
                    .to_string();
            assert!(
                err.starts_with("METHOD_TIMEOUT_SECS=") && err.contains("e.g. TrainModel=7200"),
                "{err}"
            );
        }
    }
}
