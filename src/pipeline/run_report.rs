//! The report of `svcgen pipeline run`: each task's state, inputs, outputs
//! and error, as text for people or JSON (`--json`) for CI.

use serde::Serialize;

use crate::data_reference::DataReference;

/// A task's state, named as the orchestrator's API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Not run (an earlier task failed).
    Pending,
    /// Ran to completion.
    Completed,
    /// Failed.
    Failed,
}

/// One task of the run.
#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    /// The task id sent with execute.
    pub task_id: String,
    /// `container:operation`.
    pub node_key: String,
    /// The node's container name.
    pub node: String,
    /// The operation run.
    pub method: String,
    /// The control address called (none when dockerinfo has no entry).
    pub url: Option<String>,
    /// How it ended.
    pub status: TaskState,
    /// The references it was sent.
    pub inputs: Vec<DataReference>,
    /// The references it produced (none or one).
    pub outputs: Vec<DataReference>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The pipeline's name.
    pub pipeline: String,
    /// The workflow id sent with every execute.
    pub workflow_id: String,
    /// `completed` or `failed`.
    pub status: TaskState,
    /// The first failure, in one line.
    pub error: Option<String>,
    /// Every task, in the order they run.
    pub tasks: Vec<TaskReport>,
}

impl RunReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
            + "\n"
    }

    /// The report for people: one line per task.
    pub fn to_text(&self) -> String {
        let done = self
            .tasks
            .iter()
            .filter(|t| t.status == TaskState::Completed)
            .count();
        let mut text = format!(
            "pipeline {}: {done} of {} tasks completed (workflow {})\n",
            self.pipeline,
            self.tasks.len(),
            self.workflow_id
        );
        let width = self
            .tasks
            .iter()
            .map(|t| t.node_key.len())
            .max()
            .unwrap_or(0);
        for task in &self.tasks {
            let outcome = match (&task.status, task.outputs.first()) {
                (TaskState::Completed, Some(output)) => {
                    format!("completed -> {}", output.summary())
                }
                (TaskState::Completed, None) => "completed (no output)".to_string(),
                (TaskState::Failed, _) => "failed".to_string(),
                (TaskState::Pending, _) => "not run".to_string(),
            };
            text.push_str(&format!(
                "  {:width$}  {} input(s)  {outcome}\n",
                task.node_key,
                task.inputs.len()
            ));
        }
        text
    }
}
