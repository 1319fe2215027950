//! `svcgen pipeline init`.

use clap::Args;

/// Flags of `svcgen pipeline init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The use-case folder (default: the nearest folder with connections.json).
    #[arg(value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// Runs `svcgen pipeline init`.
pub fn run(args: InitArgs) -> anyhow::Result<String> {
    let _ = args;
    anyhow::bail!("svcgen pipeline init is not built yet")
}
