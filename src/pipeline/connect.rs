//! `svcgen pipeline connect`.

use clap::Args;

/// Flags of `svcgen pipeline connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The use-case folder (default: the nearest folder with connections.json).
    #[arg(value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// Runs `svcgen pipeline connect`.
pub fn run(args: ConnectArgs) -> anyhow::Result<String> {
    let _ = args;
    anyhow::bail!("svcgen pipeline connect is not built yet")
}
