//! The JSON shapes of the control contract, exactly as the orchestrator
//! sends and validates them.

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
