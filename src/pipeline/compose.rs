//! `svcgen pipeline compose`.

use clap::Args;

/// Flags of `svcgen pipeline compose`.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// The use-case folder (default: the nearest folder with connections.json).
    #[arg(value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// Runs `svcgen pipeline compose`.
pub fn run(args: ComposeArgs) -> anyhow::Result<String> {
    let _ = args;
    anyhow::bail!("svcgen pipeline compose is not built yet")
}
