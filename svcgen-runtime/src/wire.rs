//! The JSON shapes of the control contract, exactly as the orchestrator
//! sends and validates them.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a piece of data lives: an input handed to a task, or a task's output.
///
/// `protocol` and `format` stay free strings: orchestrators send `grpc`,
/// `s3`, `http`, `inline`, `file` and more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataReference {
    /// How to reach the data: `grpc` for another service's result.
    pub protocol: String,
    /// Where: `host:port` for `grpc`.
    pub uri: String,
    /// What: for `grpc`, the rpc that returns the data.
    pub format: String,
    /// A schema for the data, when the producer names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_uri: Option<String>,
    /// The data's size, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// A checksum of the data, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Free-form details; `task_id` is the producing task's poll id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl DataReference {
    /// The `task_id` in this reference's metadata: the poll id of the
    /// upstream task that produced it, to send as `x-task-id`.
    pub fn task_id(&self) -> Option<&str> {
        self.metadata.as_ref()?.get("task_id")?.as_str()
    }
}

/// Body of `POST /control/execute`. Unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct ExecuteRequest {
    /// The method to run.
    pub method: String,
    /// The orchestrator's workflow (run) id.
    pub workflow_id: String,
    /// The orchestrator's task id: the same in every run of a workflow.
    pub task_id: String,
    /// Where the task's inputs are (absent: none).
    #[serde(default)]
    pub inputs: Option<Vec<DataReference>>,
    /// Free-form parameters (absent: none).
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
}

/// Answer to `POST /control/execute`.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ExecuteResponse {
    /// Started (or already running): poll `task_id`.
    Running {
        /// The poll id.
        task_id: String,
    },
    /// A quick method that finished within its deadline.
    Complete {
        /// The poll id.
        task_id: String,
        /// Where the result is.
        output: DataReference,
    },
    /// The task could not be started or did not finish in time.
    Failed {
        /// Why, in one line.
        error: String,
    },
}

/// Answer to `GET /control/status/{poll_id}`.
#[derive(Debug, Serialize)]
pub struct StatusResponse {
    /// Running, complete or failed.
    pub status: TaskStatus,
    /// Whole percent, 0..=100, never decreasing.
    pub progress: u8,
    /// Why the task failed (`null` otherwise).
    pub error: Option<String>,
    /// The last progress message the handler set, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The method the task runs.
    pub method: String,
}

/// Answer to `GET /control/output/{poll_id}`.
#[derive(Debug, Serialize)]
pub struct OutputResponse {
    /// Where the result is.
    pub output: DataReference,
}

/// The three states the orchestrator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Still working.
    Running,
    /// Finished with a result.
    Complete,
    /// Finished without one.
    Failed,
}

impl TaskStatus {
    /// Its name in the contract's JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TaskStatus::Running => "running",
            TaskStatus::Complete => "complete",
            TaskStatus::Failed => "failed",
        }
    }

    /// The status a query string names: `running`, `complete` or `failed`.
    pub(crate) fn parse(name: &str) -> Option<TaskStatus> {
        match name {
            "running" => Some(TaskStatus::Running),
            "complete" => Some(TaskStatus::Complete),
            "failed" => Some(TaskStatus::Failed),
            _ => None,
        }
    }
}

/// Answer to `POST /control/cancel/{poll_id}`: the task, now failed.
#[derive(Debug, Serialize)]
pub struct CancelResponse {
    /// The poll id.
    pub task_id: String,
    /// Always `failed`.
    pub status: TaskStatus,
    /// Always `cancelled`.
    pub error: String,
}

/// Answer to `GET /control/tasks`.
#[derive(Debug, Serialize)]
pub struct TaskList {
    /// Newest first.
    pub tasks: Vec<TaskEntry>,
}

/// One task of [`TaskList`].
#[derive(Debug, Serialize)]
pub struct TaskEntry {
    /// The poll id.
    pub task_id: String,
    /// The method it runs.
    pub method: String,
    /// The orchestrator's workflow id (at most 64 characters, then `…`).
    pub workflow_id: String,
    /// Running, complete or failed.
    pub status: TaskStatus,
    /// Whole percent.
    pub progress: u8,
    /// When it started, RFC 3339 in UTC with milliseconds.
    pub started_at: String,
    /// When it finished (`null` while it runs).
    pub finished_at: Option<String>,
}

/// `time` as RFC 3339 in UTC with milliseconds, e.g.
/// `2026-11-28T18:22:32.123Z`.
pub(crate) fn timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let at = |secs: u64, millis: u64| {
            timestamp(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_795_890_152, 123), "2026-11-28T18:22:32.123Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }
}
