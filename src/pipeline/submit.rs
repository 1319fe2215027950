//! `svcgen pipeline submit`: posts the exported use case to a running
//! orchestrator and follows the workflow to its end, one progress bar (or
//! plain line) per task; fails with the failing task's error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;

use super::export;
use super::orchestrator_api::{check_api_url, OrchestratorApi, RunState, Submission, TaskInfo};
use super::usecase::UseCase;
use crate::cli::Usage;
use crate::data_reference::parse_inputs;
use crate::deadline::{self, Deadline};
use crate::http_json;
use crate::progress::{Display, TaskProgress};

/// Flags of `svcgen pipeline submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The use-case folder (default: the nearest folder with connections.json).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The orchestrator's API, e.g. http://localhost:18000.
    #[arg(long, value_name = "URL")]
    pub api: String,

    /// The orchestrator's own key (ORCHESTRATOR_API_KEY), sent as a bearer token.
    #[arg(
        long,
        value_name = "KEY",
        env = "ORCHESTRATOR_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,

    /// The key the orchestrator sends to the services (SERVICE_API_KEY): the
    /// workflow's services_api_key.
    #[arg(
        long,
        value_name = "KEY",
        env = "SERVICE_API_KEY",
        hide_env_values = true
    )]
    pub services_api_key: Option<String>,

    /// A folder the nodes' proto imports are found in, besides each proto's own (repeatable).
    #[arg(long = "include", value_name = "DIR")]
    pub includes: Vec<PathBuf>,

    /// An input DataReference (JSON) for the start tasks (repeatable).
    #[arg(long = "input", value_name = "JSON")]
    pub inputs: Vec<String>,

    /// Give up following the workflow after this many seconds.
    #[arg(long, value_name = "SECS", default_value = "3600", value_parser = deadline::seconds)]
    pub timeout: Duration,

    /// Seconds between two looks at the workflow.
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = deadline::poll_interval)]
    pub poll_interval: Duration,
}

/// Runs `svcgen pipeline submit`.
pub fn run(args: SubmitArgs) -> anyhow::Result<String> {
    let inputs = parse_inputs(&args.inputs)?;
    check_api_url(&args.api).map_err(|e| Usage(format!("--api {e:#}")))?;
    let usecase = UseCase::load(&UseCase::locate(args.dir.as_deref())?)?;
    let exported = export::build(&usecase, &args.includes)?;
    let api = OrchestratorApi::new(&args.api, args.api_key.as_deref());
    let deadline = Deadline::after(args.timeout);
    let submission = Submission {
        blueprint: &exported.blueprint,
        dockerinfo: &exported.dockerinfo,
        inputs: &inputs,
        services_api_key: http_json::given_key(args.services_api_key.as_deref()),
    };
    let id = api.submit(&submission, &deadline)?;
    eprintln!("submitted {} as workflow {id}", usecase.name);
    follow(&api, &id, args.poll_interval, &deadline)
}

/// Follows workflow `id` to its end.
fn follow(
    api: &OrchestratorApi,
    id: &str,
    every: Duration,
    deadline: &Deadline,
) -> anyhow::Result<String> {
    let display = Display::for_stderr();
    let mut bars: HashMap<String, TaskProgress> = HashMap::new();
    for _ in 0..deadline.polls(every) {
        let workflow = api.workflow(id, deadline)?;
        let tasks = api.tasks(id, deadline)?;
        for task in &tasks {
            let bar = bars
                .entry(task.task_id.clone())
                .or_insert_with(|| display.task(&task.node_key));
            show(bar, task);
        }
        match workflow.status {
            RunState::Completed => {
                return Ok(format!("workflow {id} completed: {} tasks\n", tasks.len()))
            }
            RunState::Failed => return Err(failure(id, &tasks, workflow.error)),
            RunState::Pending | RunState::Running => {}
        }
        deadline.check(&format!("workflow {id}"))?;
        deadline.sleep(every);
    }
    Err(anyhow!(
        "workflow {id} still running when the --timeout ran out"
    ))
}

/// A task's state on its bar.
fn show(bar: &TaskProgress, task: &TaskInfo) {
    match task.status {
        RunState::Pending => bar.pending(),
        RunState::Running => bar.running(None, None),
        RunState::Completed => bar.complete(""),
        RunState::Failed => bar.failed(task.error.as_deref().unwrap_or("(no error given)")),
    }
}

/// One line naming the failed task and its error.
fn failure(id: &str, tasks: &[TaskInfo], workflow_error: Option<String>) -> anyhow::Error {
    match tasks.iter().find(|t| t.status == RunState::Failed) {
        Some(task) => anyhow!(
            "workflow {id} failed at {} ({}): {}",
            task.node_key,
            task.task_id,
            task.error.as_deref().unwrap_or("(no error given)")
        ),
        None => anyhow!(
            "workflow {id} failed: {}",
            workflow_error.as_deref().unwrap_or("(no error given)")
        ),
    }
}
