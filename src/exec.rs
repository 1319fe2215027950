//! `svcgen exec`: runs one task on a running service over its HTTP control
//! interface (execute, poll status with a progress bar, fetch the output),
//! the way the orchestrator would. Progress goes to stderr, the output
//! reference (JSON) to stdout; nothing when the task has no output.

use anyhow::Context;
use clap::Args;

use crate::cli::Usage;
use crate::control_client::{check_base_url, ControlClient, ExecuteRequest};
use crate::data_reference::parse_inputs;
use crate::deadline::Deadline;
use crate::http_json::JsonHttp;
use crate::progress::Display;
use crate::task_run::{self, Outcome, Task, WaitFlags};

/// Flags of `svcgen exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The service's HTTP control address, e.g. http://127.0.0.1:8080.
    #[arg(value_name = "URL")]
    pub url: String,

    /// The method to run, e.g. TrainModel.
    #[arg(value_name = "METHOD")]
    pub method: String,

    /// An input DataReference as JSON (repeatable), e.g.
    /// '{"protocol":"grpc","uri":"127.0.0.1:50051","format":"Produce"}'.
    #[arg(long = "input", value_name = "JSON")]
    pub inputs: Vec<String>,

    /// The workflow id sent with execute [default: svcgen-exec-<random>].
    #[arg(long, value_name = "ID")]
    pub workflow_id: Option<String>,

    /// The task id sent with execute [default: svcgen-exec-<random>].
    #[arg(long, value_name = "ID")]
    pub task_id: Option<String>,

    /// Keys, time limit and poll interval.
    #[command(flatten)]
    pub wait: WaitFlags,
}

/// Runs `svcgen exec`.
pub fn run(args: ExecArgs) -> anyhow::Result<String> {
    let inputs = parse_inputs(&args.inputs)?;
    check_base_url(&args.url).map_err(|e| Usage(format!("{e:#}")))?;
    // The orchestrator never sends a blank one of these.
    not_blank("METHOD", Some(&args.method))?;
    not_blank("--workflow-id", args.workflow_id.as_deref())?;
    not_blank("--task-id", args.task_id.as_deref())?;
    let workflow_id = args
        .workflow_id
        .unwrap_or_else(|| crate::run_ids::fresh("svcgen-exec"));
    let task_id = args
        .task_id
        .unwrap_or_else(|| crate::run_ids::fresh("svcgen-exec"));
    let http = JsonHttp::new(args.wait.api_key.as_deref());
    let client = ControlClient::new(&http, &args.url);
    let task = Task {
        client: &client,
        request: ExecuteRequest {
            method: &args.method,
            workflow_id: &workflow_id,
            task_id: &task_id,
            inputs: &inputs,
        },
    };
    let display = Display::for_stderr();
    let bar = display.task(&args.method);
    let deadline = Deadline::after(args.wait.timeout);
    match task_run::run(&task, args.wait.poll_interval, &deadline, &bar) {
        // No output: nothing on stdout (the bar says "(no output)").
        Outcome::Complete(None) => Ok(String::new()),
        Outcome::Complete(Some(output)) => {
            let text = serde_json::to_string_pretty(&output).context("encoding the output")?;
            Ok(format!("{text}\n"))
        }
        Outcome::Failed(error) => anyhow::bail!(
            "task {} at {} failed: {error}",
            args.method,
            client.base_url()
        ),
    }
}

/// A usage error when `value` is given but blank.
fn not_blank(name: &str, value: Option<&str>) -> anyhow::Result<()> {
    match value {
        Some(v) if v.trim().is_empty() => Err(Usage(format!("{name} must not be blank")).into()),
        _ => Ok(()),
    }
}
