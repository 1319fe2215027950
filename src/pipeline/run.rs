//! `svcgen pipeline run`.

use clap::Args;

/// Flags of `svcgen pipeline run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The use-case folder (default: the nearest folder with connections.json).
    #[arg(value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// Runs `svcgen pipeline run`.
pub fn run(args: RunArgs) -> anyhow::Result<String> {
    let _ = args;
    anyhow::bail!("svcgen pipeline run is not built yet")
}
