//! `svcgen pipeline submit`.

use clap::Args;

/// Flags of `svcgen pipeline submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The use-case folder (default: the nearest folder with connections.json).
    #[arg(value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// Runs `svcgen pipeline submit`.
pub fn run(args: SubmitArgs) -> anyhow::Result<String> {
    let _ = args;
    anyhow::bail!("svcgen pipeline submit is not built yet")
}
