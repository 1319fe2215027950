//! `svcgen exec`: runs one task on a running service over its HTTP control
//! interface (execute, poll status with a progress bar, fetch the output),
//! the way the orchestrator would.

use clap::Args;

/// Flags of `svcgen exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The service's HTTP control address, e.g. http://127.0.0.1:8080.
    #[arg(value_name = "URL")]
    pub url: String,

    /// The method to run, e.g. TrainModel.
    #[arg(value_name = "METHOD")]
    pub method: String,

    /// An input DataReference as JSON (repeatable).
    #[arg(long = "input", value_name = "JSON")]
    pub inputs: Vec<String>,
}

/// Runs `svcgen exec`.
pub fn run(args: ExecArgs) -> anyhow::Result<String> {
    let _ = args;
    anyhow::bail!("svcgen exec is not built yet")
}
