//! `svcgen pipeline run`: runs a use case against services already running,
//! as the orchestrator would run its exported blueprint: one task per node
//! operation, one at a time in the orchestrator's queue order (see
//! [`TaskGraph`]), the outputs of every upstream task appended (in
//! completion order) to the inputs of the next, the start tasks given the
//! `--input`s; the first failure stops the run. A development tool:
//! production runs use the orchestrator.

use std::path::PathBuf;

use clap::Args;

use super::endpoints::{parse_at, At, Endpoints};
use super::export;
use super::run_report::{RunReport, TaskReport, TaskState};
use super::task_graph::TaskGraph;
use super::usecase::UseCase;
use crate::control_client::{ControlClient, ExecuteRequest};
use crate::data_reference::{parse_inputs, DataReference};
use crate::deadline::Deadline;
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

    /// A folder the nodes' proto imports are found in, besides each proto's own (repeatable).
    #[arg(long = "include", value_name = "DIR")]
    pub includes: Vec<PathBuf>,

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
    let exported = export::build(&usecase, &args.includes)?;
    let graph = TaskGraph::from_blueprint(&exported.blueprint)?;
    let endpoints = Endpoints::new(&exported.dockerinfo, &usecase, &args.at)?;
    let runner = Runner {
        graph: &graph,
        endpoints: &endpoints,
        http: JsonHttp::new(args.wait.api_key.as_deref()),
        workflow_id: crate::run_ids::fresh("svcgen-run"),
        wait: &args.wait,
    };
    let report = runner.run(&usecase.name, inputs);
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
    fn run(&self, pipeline: &str, inputs: Vec<DataReference>) -> RunReport {
        let display = Display::for_stderr();
        let bars: Vec<TaskProgress> = self
            .graph
            .tasks
            .iter()
            .map(|task| display.task(&task.key()))
            .collect();
        bars.iter().for_each(TaskProgress::pending);
        let mut tasks: Vec<TaskReport> = (0..bars.len()).map(|i| self.blank_report(i)).collect();
        for (task, node) in tasks.iter_mut().zip(&self.graph.tasks) {
            if node.dependencies == 0 {
                task.inputs = inputs.clone();
            }
        }
        let error = self.run_all(&mut tasks, &bars);
        for (task, bar) in tasks.iter().zip(&bars) {
            if task.status == TaskState::Pending {
                bar.skipped();
            }
        }
        RunReport {
            pipeline: pipeline.to_string(),
            workflow_id: self.workflow_id.clone(),
            status: if error.is_some() {
                TaskState::Failed
            } else {
                TaskState::Completed
            },
            error,
            tasks,
        }
    }

    /// Runs the tasks in their order (each after all its upstreams), the
    /// outputs of each appended to the inputs of the tasks it feeds;
    /// stops at the first failure and returns it.
    fn run_all(&self, tasks: &mut [TaskReport], bars: &[TaskProgress]) -> Option<String> {
        let deadline = Deadline::after(self.wait.timeout);
        for i in 0..tasks.len() {
            match self.run_one(&tasks[i], &deadline, &bars[i]) {
                Outcome::Complete(output) => {
                    tasks[i].status = TaskState::Completed;
                    tasks[i].outputs = output.into_iter().collect();
                    for &next in &self.graph.tasks[i].next {
                        let outputs = tasks[i].outputs.clone();
                        tasks[next].inputs.extend(outputs);
                    }
                }
                Outcome::Failed(reason) => {
                    tasks[i].status = TaskState::Failed;
                    tasks[i].error = Some(reason.clone());
                    return Some(failure(&tasks[i], &reason));
                }
            }
        }
        None
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
