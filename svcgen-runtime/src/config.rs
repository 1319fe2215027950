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
    /// Bearer token required on `/control/*` (`SERVICE_API_KEY`); `None` disables auth.
    pub api_key: Option<String>,
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
    /// 64 MiB): inputs may carry inline data.
    pub max_body_bytes: usize,
    /// How long a quick method may run before it is cut off (`QUICK_METHOD_TIMEOUT_SECS`, default 20).
    pub quick_deadline: Duration,
    /// How long finished tasks stay queryable (`TASK_RETENTION_SECS`, default 3600).
    pub task_retention: Duration,
    /// How many finished tasks are kept at most (`MAX_FINISHED_TASKS`, default 1000).
    pub max_finished_tasks: usize,
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            http_port: None,
            grpc_port: None,
            grpc_host: None,
            api_key: None,
            max_message_bytes: 64 * 1024 * 1024,
            max_request_bytes: 64 * 1024,
            max_body_bytes: 64 * 1024 * 1024,
            quick_deadline: Duration::from_secs(20),
            task_retention: Duration::from_secs(3600),
            max_finished_tasks: 1000,
            upstream_timeout: Duration::from_secs(30),
            upstream_streaming: true,
            upstream_max_result_bytes: 1024 * 1024 * 1024,
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
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("quick_deadline", &self.quick_deadline)
            .field("task_retention", &self.task_retention)
            .field("max_finished_tasks", &self.max_finished_tasks)
            .field("upstream_timeout", &self.upstream_timeout)
            .field("upstream_streaming", &self.upstream_streaming)
            .field("upstream_max_result_bytes", &self.upstream_max_result_bytes)
            .finish()
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment in
    /// production, a map in tests). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let defaults = Config::default();
        Ok(Config {
            host: parse(&get, "HOST", "an IP address such as 0.0.0.0")?.unwrap_or(defaults.host),
            http_port: parse(&get, "PORT", "a port number 0-65535")?,
            grpc_port: parse(&get, "GRPC_PORT", "a port number 0-65535")?,
            grpc_host: get("GRPC_HOST"),
            api_key: get("SERVICE_API_KEY"),
            max_message_bytes: positive(&get, "GRPC_MAX_MESSAGE_BYTES", BYTES)?
                .unwrap_or(defaults.max_message_bytes),
            max_request_bytes: positive(&get, "GRPC_MAX_REQUEST_BYTES", BYTES)?
                .unwrap_or(defaults.max_request_bytes),
            max_body_bytes: positive(&get, "CONTROL_MAX_BODY_BYTES", BYTES)?
                .unwrap_or(defaults.max_body_bytes),
            quick_deadline: positive(&get, "QUICK_METHOD_TIMEOUT_SECS", SECONDS)?
                .map(Duration::from_secs)
                .unwrap_or(defaults.quick_deadline),
            task_retention: positive(&get, "TASK_RETENTION_SECS", SECONDS)?
                .map(Duration::from_secs)
                .unwrap_or(defaults.task_retention),
            max_finished_tasks: positive(&get, "MAX_FINISHED_TASKS", TASKS)?
                .unwrap_or(defaults.max_finished_tasks),
            upstream_timeout: positive(&get, "UPSTREAM_TIMEOUT_SECS", SECONDS)?
                .map(Duration::from_secs)
                .unwrap_or(defaults.upstream_timeout),
            upstream_streaming: switch(&get, "UPSTREAM_STREAMING")?
                .unwrap_or(defaults.upstream_streaming),
            upstream_max_result_bytes: positive(&get, "UPSTREAM_MAX_RESULT_BYTES", BYTES)?
                .unwrap_or(defaults.upstream_max_result_bytes),
        })
    }
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
            "MAX_FINISHED_TASKS",
            "TASK_RETENTION_SECS",
            "QUICK_METHOD_TIMEOUT_SECS",
            "GRPC_MAX_MESSAGE_BYTES",
            "GRPC_MAX_REQUEST_BYTES",
            "CONTROL_MAX_BODY_BYTES",
            "UPSTREAM_TIMEOUT_SECS",
            "UPSTREAM_MAX_RESULT_BYTES",
        ] {
            let err =
                Config::from_lookup(|key| (key == name).then(|| "0".to_string())).expect_err(name);
            assert!(err.to_string().contains(name), "{err}");
        }
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
}
