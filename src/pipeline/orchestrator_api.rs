//! A client of the orchestrator's REST API: `POST /workflows` (blueprint,
//! dockerinfo, and when given the start inputs and the services' key),
//! `GET /workflows/{id}` and `GET /workflows/{id}/tasks`, with the
//! orchestrator's own key (`ORCHESTRATOR_API_KEY`) as a bearer token.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data_reference::DataReference;
use crate::deadline::Deadline;
use crate::http_json::{self, JsonHttp};

/// What an answer of the wrong shape is.
const UNEXPECTED: &str = "unexpected answer from the orchestrator";

/// The body of `POST /workflows`.
#[derive(Debug, Serialize)]
pub struct Submission<'a> {
    /// blueprint.json.
    pub blueprint: &'a Value,
    /// dockerinfo.json.
    pub dockerinfo: &'a Value,
    /// The start tasks' inputs (left out when none).
    #[serde(skip_serializing_if = "<[DataReference]>::is_empty")]
    pub inputs: &'a [DataReference],
    /// The key the orchestrator sends to the services (left out when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services_api_key: Option<&'a str>,
}

/// A workflow's or a task's state in the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Not started.
    Pending,
    /// Started.
    Running,
    /// Done.
    Completed,
    /// Failed.
    Failed,
}

/// The answer of `POST /workflows`.
#[derive(Debug, Deserialize)]
struct Submitted {
    workflow_id: String,
}

/// The answer of `GET /workflows/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Workflow {
    /// Its state.
    pub status: RunState,
    /// Why it failed.
    #[serde(default, deserialize_with = "http_json::non_blank")]
    pub error: Option<String>,
}

/// The answer of `GET /workflows/{id}/tasks`.
#[derive(Debug, Deserialize)]
struct TaskList {
    tasks: Vec<TaskInfo>,
}

/// One task of a workflow.
#[derive(Debug, Clone, Deserialize)]
pub struct TaskInfo {
    /// The orchestrator's task id.
    pub task_id: String,
    /// `container:operation`.
    pub node_key: String,
    /// Its state.
    pub status: RunState,
    /// Why it failed.
    #[serde(default, deserialize_with = "http_json::non_blank")]
    pub error: Option<String>,
}

/// The orchestrator's API at one address.
pub struct OrchestratorApi {
    http: JsonHttp,
    base: String,
}

impl OrchestratorApi {
    /// A client of the API at `base_url`, with its key when given.
    pub fn new(base_url: &str, key: Option<&str>) -> OrchestratorApi {
        OrchestratorApi {
            http: JsonHttp::new(key),
            base: base_url.trim_end_matches('/').to_string(),
        }
    }

    /// Submits a workflow; returns its id.
    pub fn submit(
        &self,
        submission: &Submission<'_>,
        deadline: &Deadline,
    ) -> anyhow::Result<String> {
        let url = format!("{}/workflows", self.base);
        let body = serde_json::to_value(submission).context("encoding the workflow")?;
        let answer: Submitted = self.http.post(&url, &body, UNEXPECTED, deadline)?;
        if answer.workflow_id.trim().is_empty() {
            bail!("{url}: the answer's workflow_id is blank");
        }
        Ok(answer.workflow_id)
    }

    /// A workflow's state.
    pub fn workflow(&self, id: &str, deadline: &Deadline) -> anyhow::Result<Workflow> {
        let url = format!("{}/workflows/{id}", self.base);
        self.http.get(&url, UNEXPECTED, deadline)
    }

    /// A workflow's tasks.
    pub fn tasks(&self, id: &str, deadline: &Deadline) -> anyhow::Result<Vec<TaskInfo>> {
        let url = format!("{}/workflows/{id}/tasks", self.base);
        let list: TaskList = self.http.get(&url, UNEXPECTED, deadline)?;
        Ok(list.tasks)
    }
}

/// Checks `--api`: the orchestrator's API as `http://HOST:PORT`. svcgen
/// speaks plain HTTP only, so an `https://` address is refused saying so.
pub fn check_api_url(url: &str) -> anyhow::Result<()> {
    if url.starts_with("https://") {
        bail!("{url}: https is not supported; svcgen talks to the orchestrator's API over plain HTTP (e.g. http://localhost:18000, or an SSH tunnel to it)");
    }
    if !http_json::is_plain_http(url) {
        bail!("{url}: the orchestrator's API address must be http://HOST:PORT, e.g. http://localhost:18000");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_api_url;

    #[test]
    fn the_api_is_a_plain_http_address() {
        check_api_url("http://localhost:18000").expect("valid");
        check_api_url("http://10.0.0.5:18000/").expect("valid");
        let https = check_api_url("https://orchestrator.example").unwrap_err();
        assert!(
            format!("{https}").contains("https is not supported"),
            "{https}"
        );
        for bad in ["localhost:18000", "http://", "http://a b", "ftp://x"] {
            let error = format!("{}", check_api_url(bad).unwrap_err());
            assert!(error.contains("must be http://HOST:PORT"), "{bad}: {error}");
            assert!(!error.contains("services"), "{bad}: {error}");
        }
    }
}
