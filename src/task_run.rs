//! One task run the way the orchestrator's worker runs it: execute; on
//! `running`, poll the status (first at once, then every poll interval)
//! until `complete` (then fetch the output) or `failed`. Any error of a
//! call (unreachable service, HTTP error, an answer breaking the
//! contract) fails the task with that error, as the worker does.

use std::time::Duration;

use clap::Args;

use crate::control_client::{ControlClient, ExecuteRequest, Started, State};
use crate::data_reference::DataReference;
use crate::deadline::{self, Deadline};
use crate::progress::TaskProgress;

/// Flags shared by the commands that drive services directly.
#[derive(Debug, Args)]
pub struct WaitFlags {
    /// The services' bearer key (SERVICE_API_KEY), sent as `Authorization: Bearer KEY`.
    #[arg(
        long,
        value_name = "KEY",
        env = "SERVICE_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,

    /// Give up after this many seconds in all.
    #[arg(long, value_name = "SECS", default_value = "3600", value_parser = deadline::seconds)]
    pub timeout: Duration,

    /// Seconds between two status polls of a running task (the orchestrator's worker: 5).
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = deadline::poll_interval)]
    pub poll_interval: Duration,
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Complete, with its output if it has one.
    Complete(Option<DataReference>),
    /// Failed, with the error the orchestrator would record.
    Failed(String),
}

/// One task to run.
pub struct Task<'a> {
    /// The service.
    pub client: &'a ControlClient<'a>,
    /// What execute is sent.
    pub request: ExecuteRequest<'a>,
}

/// Runs `task` to its end, showing its progress on `bar`.
pub fn run(
    task: &Task<'_>,
    poll_every: Duration,
    deadline: &Deadline,
    bar: &TaskProgress,
) -> Outcome {
    let outcome = match task.client.execute(&task.request, deadline) {
        Ok(Started::Complete(output)) => Outcome::Complete(output),
        Ok(Started::Failed(error)) => Outcome::Failed(error),
        Ok(Started::Running(poll_id)) => poll(task.client, &poll_id, poll_every, deadline, bar),
        Err(error) => Outcome::Failed(format!("{error:#}")),
    };
    match &outcome {
        Outcome::Complete(Some(output)) => bar.complete(&output.summary()),
        Outcome::Complete(None) => bar.complete("(no output)"),
        Outcome::Failed(error) => bar.failed(error),
    }
    outcome
}

/// Polls a running task until it ends, then fetches its output.
fn poll(
    client: &ControlClient<'_>,
    poll_id: &str,
    every: Duration,
    deadline: &Deadline,
    bar: &TaskProgress,
) -> Outcome {
    for _ in 0..deadline.polls(every) {
        let status = match client.status(poll_id, deadline) {
            Ok(status) => status,
            Err(error) => return Outcome::Failed(format!("{error:#}")),
        };
        match status.state {
            State::Complete => {
                return match client.output(poll_id, deadline) {
                    Ok(output) => Outcome::Complete(Some(output)),
                    Err(error) => Outcome::Failed(format!("{error:#}")),
                }
            }
            State::Failed => {
                return Outcome::Failed(
                    status
                        .error
                        .unwrap_or_else(|| "the service task failed without an error".into()),
                )
            }
            State::Running => bar.running(status.progress, status.message.as_deref()),
        }
        if let Err(error) = deadline.check(&format!("task {poll_id}")) {
            return Outcome::Failed(format!("{error:#}"));
        }
        deadline.sleep(every);
    }
    Outcome::Failed(format!(
        "task {poll_id} still running when the --timeout ran out"
    ))
}
