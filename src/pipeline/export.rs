//! `svcgen pipeline export`: the platform's import files for a use case.
//!
//! Interface used by other pipeline modules (keep it): [`build`] turns a
//! loaded use case into the exported documents in memory.

use super::usecase::UseCase;
use clap::Args;

/// Flags of `svcgen pipeline export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The use-case folder (default: the nearest folder with connections.json).
    #[arg(value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// The exported documents, validated, not yet written.
#[derive(Debug, Clone)]
pub struct Exported {
    /// blueprint.json.
    pub blueprint: serde_json::Value,
    /// dockerinfo.json.
    pub dockerinfo: serde_json::Value,
}

/// Builds and validates the export of `usecase`.
pub fn build(usecase: &UseCase) -> anyhow::Result<Exported> {
    let _ = usecase;
    anyhow::bail!("not built yet")
}

/// Runs `svcgen pipeline export`.
pub fn run(args: ExportArgs) -> anyhow::Result<String> {
    let _ = args;
    anyhow::bail!("svcgen pipeline export is not built yet")
}
