//! A client of a service's control interface (`POST /control/execute`,
//! `GET /control/status/{poll_id}`, `GET /control/output/{poll_id}`) that
//! checks each answer the way the orchestrator's control client does: the
//! status is one of `running`, `complete`, `failed`; `progress` an integer
//! or null; `error` a string or null (blank: none, the failure's
//! default reason then applies); an `output` a valid DataReference;
//! unknown fields ignored; any HTTP status of 400 or more is an error.

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data_reference::{lax_int, DataReference};
use crate::deadline::Deadline;
use crate::http_json::{self, JsonHttp};

/// What an answer of the wrong shape breaks.
const CONTRACT: &str = "the answer does not follow the control contract";

/// The body of `POST /control/execute`, as the orchestrator sends it.
#[derive(Debug, Serialize)]
pub struct ExecuteRequest<'a> {
    /// The method to run.
    pub method: &'a str,
    /// The workflow run.
    pub workflow_id: &'a str,
    /// The step of the workflow.
    pub task_id: &'a str,
    /// Where the upstream results are.
    pub inputs: &'a [DataReference],
}

/// What execute answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    /// Finished within the request, with its output (the orchestrator
    /// accepts a `complete` without one: the task then has no output).
    Complete(Option<DataReference>),
    /// Running; poll it by this id.
    Running(String),
    /// Failed, with the reason.
    Failed(String),
}

/// The three task states of the control contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Still running.
    Running,
    /// Finished with a result.
    Complete,
    /// Finished with an error.
    Failed,
}

/// What status answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The task's state.
    pub state: State,
    /// Percent done, when the service says.
    pub progress: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The service's last progress message (an extra field, shown only).
    pub message: Option<String>,
}

/// `POST /control/execute`'s answer, before its output is checked.
#[derive(Deserialize)]
struct ExecuteAnswer {
    status: State,
    #[serde(default)]
    task_id: Option<String>,
    #[serde(default)]
    output: Option<Value>,
    #[serde(default, deserialize_with = "http_json::non_blank")]
    error: Option<String>,
}

/// `GET /control/status/{poll_id}`'s answer.
#[derive(Deserialize)]
struct StatusAnswer {
    status: State,
    #[serde(default)]
    progress: Option<Value>,
    #[serde(default, deserialize_with = "http_json::non_blank")]
    error: Option<String>,
    #[serde(default)]
    message: Option<Value>,
}

/// `GET /control/output/{poll_id}`'s answer.
#[derive(Deserialize)]
struct OutputAnswer {
    output: Value,
}

/// A client of one service's control interface.
pub struct ControlClient<'a> {
    http: &'a JsonHttp,
    base: String,
}

impl<'a> ControlClient<'a> {
    /// A client of the service at `base_url` (`http://host:port`).
    pub fn new(http: &'a JsonHttp, base_url: &str) -> ControlClient<'a> {
        ControlClient {
            http,
            base: base_url.trim_end_matches('/').to_string(),
        }
    }

    /// The service's address.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Starts a task.
    pub fn execute(
        &self,
        request: &ExecuteRequest<'_>,
        deadline: &Deadline,
    ) -> anyhow::Result<Started> {
        let url = format!("{}/control/execute", self.base);
        let body = serde_json::to_value(request).context("encoding the execute request")?;
        let answer: ExecuteAnswer = self.http.post(&url, &body, CONTRACT, deadline)?;
        // Checked whatever the status, as the orchestrator's model does.
        let output = output(answer.output, &url)?;
        match answer.status {
            State::Failed => {
                Ok(Started::Failed(answer.error.unwrap_or_else(|| {
                    "the service answered failed without an error".into()
                })))
            }
            State::Complete => Ok(Started::Complete(output)),
            State::Running => match answer.task_id.filter(|id| !id.trim().is_empty()) {
                Some(poll_id) => Ok(Started::Running(poll_id)),
                None => bail!("{url}: the answer is running without a task_id to poll"),
            },
        }
    }

    /// A running task's status.
    pub fn status(&self, poll_id: &str, deadline: &Deadline) -> anyhow::Result<Status> {
        let url = format!("{}/control/status/{poll_id}", self.base);
        let answer: StatusAnswer = self.http.get(&url, CONTRACT, deadline)?;
        let progress = match answer.progress {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                lax_int(&value)
                    .ok_or_else(|| anyhow!("{url}: progress {value} is not an integer"))?,
            ),
        };
        Ok(Status {
            state: answer.status,
            progress,
            error: answer.error,
            message: answer.message.and_then(|m| m.as_str().map(str::to_string)),
        })
    }

    /// A complete task's output reference.
    pub fn output(&self, poll_id: &str, deadline: &Deadline) -> anyhow::Result<DataReference> {
        let url = format!("{}/control/output/{poll_id}", self.base);
        let answer: OutputAnswer = self.http.get(&url, CONTRACT, deadline)?;
        output(Some(answer.output), &url)?
            .ok_or_else(|| anyhow!("{url}: the answer's output is null"))
    }
}

/// An answer's `output`, checked as a DataReference (null is none).
fn output(value: Option<Value>, url: &str) -> anyhow::Result<Option<DataReference>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => DataReference::from_value(v)
            .map(Some)
            .with_context(|| format!("{url}: invalid output")),
    }
}

/// Checks a service address given on the command line: `http://host:port`.
pub fn check_base_url(url: &str) -> anyhow::Result<()> {
    if !url.starts_with("http://") {
        bail!("{url}: a service address must start with http:// (plain HTTP, as the orchestrator calls services)");
    }
    if !http_json::is_plain_http(url) {
        bail!("{url}: a service address must be http://HOST:PORT");
    }
    Ok(())
}
