//! `svcgen pipeline run`: runs a use case against services already running,
//! as the orchestrator would run its exported blueprint: one task per node
//! operation, one at a time in the orchestrator's queue order, the outputs
//! of every upstream task appended (in completion order) to the inputs of
//! the next, the start tasks given the `--input`s; the first failure stops
//! the run. A development tool: production runs use the orchestrator.

use std::collections::VecDeque;
use std::path::PathBuf;

use clap::Args;

use super::endpoints::{parse_at, At, Endpoints};
use super::export;
use super::run_report::{RunReport, TaskReport, TaskState};
use super::task_graph::TaskGraph;
use super::usecase::UseCase;
use crate::control_client::{ControlClient, ExecuteRequest};
use crate::data_reference::DataReference;
use crate::deadline::Deadline;
use crate::exec::parse_inputs;
use crate::http_json::JsonHttp;
use crate::progress::{Display, TaskProgress};
use crate::task_run::{self, Outcome, Task, WaitFlags};

/// Flags of `svcgen pipeline run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The use-case folder (default: the nearest folder with connections.json).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Call NODE (its folder, container or ip_address) at URL instead of
    /// http://<ip_address>:<port> (repeatable), e.g. --at producer=http://127.0.0.1:8080.
    #[arg(long = "at", value_name = "NODE=URL", value_parser = parse_at)]
    pub at: Vec<At>,

    /// An input DataReference (JSON) for the start tasks (repeatable).
    #[arg(long = "input", value_name = "JSON")]
    pub inputs: Vec<String>,

    /// Print the report as JSON on stdout (also when the run fails).
    #[arg(long)]
    pub json: bool,

    /// Keys, time limit and poll interval.
    #[command(flatten)]
    pub wait: WaitFlags,
}

/// Runs `svcgen pipeline run`.
pub fn run(args: RunArgs) -> anyhow::Result<String> {
    let inputs = parse_inputs(&args.inputs)?;
    let usecase = UseCase::load(&UseCase::locate(args.dir.as_deref())?)?;
    let exported = export::build(&usecase)?;
    let graph = TaskGraph::from_blueprint(&exported.blueprint)?;
    let endpoints = Endpoints::new(&exported.dockerinfo, &usecase, &args.at)?;
    let runner = Runner {
        graph: &graph,
        endpoints: &endpoints,
        http: JsonHttp::new(args.wait.api_key.as_deref()),
        workflow_id: crate::run_ids::fresh("svcgen-run"),
        wait: &args.wait,
    };
    let report = runner.run(&usecase.name, inputs)?;
    let text = if args.json {
        report.to_json()
    } else {
        report.to_text()
    };
    match &report.error {
        None => Ok(text),
        Some(error) => {
            print!("{text}");
            anyhow::bail!("{error}")
        }
    }
}

/// One run of a task graph.
struct Runner<'a> {
    graph: &'a TaskGraph,
    endpoints: &'a Endpoints,
    http: JsonHttp,
    workflow_id: String,
    wait: &'a WaitFlags,
}

impl Runner<'_> {
    /// Runs every task in order until one fails; reports them all.
    fn run(&self, pipeline: &str, inputs: Vec<DataReference>) -> anyhow::Result<RunReport> {
        let order = self.graph.order()?;
        let display = Display::for_stderr();
        let bars: Vec<TaskProgress> = order
            .iter()
            .map(|&i| display.task(&self.graph.tasks[i].key()))
            .collect();
        bars.iter().for_each(TaskProgress::pending);
        let mut tasks: Vec<TaskReport> = order.iter().map(|&i| self.blank_report(i)).collect();
        let row = |task: usize| order.iter().position(|&i| i == task).unwrap_or(0);
        let mut waiting: Vec<usize> = self.graph.tasks.iter().map(|t| t.dependencies).collect();
        let mut queue: VecDeque<usize> = (0..waiting.len()).filter(|&i| waiting[i] == 0).collect();
        for &start in &queue {
            tasks[row(start)].inputs = inputs.clone();
        }
        let deadline = Deadline::after(self.wait.timeout);
        let mut error = None;
        while let Some(i) = queue.pop_front() {
            let outputs = match self.run_one(&tasks[row(i)], &deadline, &bars[row(i)]) {
                Outcome::Complete(output) => output.into_iter().collect::<Vec<_>>(),
                Outcome::Failed(reason) => {
                    error = Some(failure(&tasks[row(i)], &reason));
                    tasks[row(i)].status = TaskState::Failed;
                    tasks[row(i)].error = Some(reason);
                    break;
                }
            };
            tasks[row(i)].status = TaskState::Completed;
            tasks[row(i)].outputs = outputs.clone();
            for &next in &self.graph.tasks[i].next {
                tasks[row(next)].inputs.extend(outputs.iter().cloned());
                waiting[next] -= 1;
                if waiting[next] == 0 {
                    queue.push_back(next);
                }
            }
        }
        for (task, bar) in tasks.iter().zip(&bars) {
            if task.status == TaskState::Pending {
                bar.skipped();
            }
        }
        Ok(RunReport {
            pipeline: pipeline.to_string(),
            workflow_id: self.workflow_id.clone(),
            status: if error.is_some() {
                TaskState::Failed
            } else {
                TaskState::Completed
            },
            error,
            tasks,
        })
    }

    /// The report of task `i` before it runs.
    fn blank_report(&self, i: usize) -> TaskReport {
        let node = &self.graph.tasks[i];
        let key = node.key();
        TaskReport {
            task_id: crate::run_ids::task_id(&key),
            node_key: key,
            node: node.container.clone(),
            method: node.method.clone(),
            url: self.endpoints.url(&node.container).map(str::to_string),
            status: TaskState::Pending,
            inputs: Vec::new(),
            outputs: Vec::new(),
            error: None,
        }
    }

    /// Runs one task with the inputs gathered for it.
    fn run_one(&self, task: &TaskReport, deadline: &Deadline, bar: &TaskProgress) -> Outcome {
        let Some(url) = &task.url else {
            let error = format!("dockerinfo has no address for {}", task.node);
            bar.failed(&error);
            return Outcome::Failed(error);
        };
        let client = ControlClient::new(&self.http, url);
        let request = ExecuteRequest {
            method: &task.method,
            workflow_id: &self.workflow_id,
            task_id: &task.task_id,
            inputs: &task.inputs,
        };
        let run = Task {
            client: &client,
            request,
        };
        task_run::run(&run, self.wait.poll_interval, deadline, bar)
    }
}

/// The first failure, in one line naming the node, the method and the error.
fn failure(task: &TaskReport, reason: &str) -> String {
    let url = task.url.as_deref().unwrap_or("(no address)");
    let hint = if reason.starts_with("cannot reach") {
        " (is the service running? --at NODE=URL gives its address)"
    } else {
        ""
    };
    format!(
        "pipeline failed at node {}, method {} ({url}): {reason}{hint}",
        task.node, task.method
    )
}
