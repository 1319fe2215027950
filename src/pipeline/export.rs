//! `svcgen pipeline export`: the platform's import files for a use case —
//! `blueprint.json`, `dockerinfo.json`, `generation_metadata.json`,
//! `microservice/<node_dir>1.proto` — and the portal's import ZIP.
//!
//! The documents have the structure and values of the platform's own export
//! tool on the same input (pipeline id and date aside); the protos are made
//! ready for the portal (see [`super::export_proto`]).
//!
//! Interface used by other pipeline modules (keep it): [`build`] turns a
//! loaded use case into the exported documents in memory.

use super::export_doc::{self, ExportFile};
use super::export_write;
use super::usecase::UseCase;
use clap::Args;
use std::path::PathBuf;

/// Flags of `svcgen pipeline export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The use-case folder (default: the nearest folder with connections.json).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The folder to write [default: DIR/export]; an earlier export there is replaced.
    #[arg(long, value_name = "OUT")]
    pub out: Option<PathBuf>,

    /// A folder the nodes' proto imports are found in, besides each proto's own (repeatable).
    #[arg(long = "include", value_name = "DIR")]
    pub includes: Vec<PathBuf>,

    /// Also write the portal's import ZIP (blueprint, dockerinfo, microservice/) [default: OUT.zip].
    #[arg(long, value_name = "PATH", num_args = 0..=1)]
    pub zip: Option<Option<PathBuf>>,
}

/// The exported documents, validated, not yet written.
#[derive(Debug, Clone)]
pub struct Exported {
    /// blueprint.json.
    pub blueprint: serde_json::Value,
    /// dockerinfo.json.
    pub dockerinfo: serde_json::Value,
    /// Every file of the export folder, rendered, in the platform's key
    /// order: the three documents, then `microservice/*.proto` by name.
    pub files: Vec<ExportFile>,
}

/// Builds and validates the export of `usecase`, imports resolved beside
/// each node's proto and in `includes`.
pub fn build(usecase: &UseCase, includes: &[PathBuf]) -> anyhow::Result<Exported> {
    export_doc::build(usecase, includes)
}

/// Runs `svcgen pipeline export`.
pub fn run(args: ExportArgs) -> anyhow::Result<String> {
    let dir = UseCase::locate(args.dir.as_deref())?;
    let usecase = UseCase::load(&dir)?;
    let exported = build(&usecase, &args.includes)?;
    let out = args.out.unwrap_or_else(|| dir.join("export"));
    let zip = args
        .zip
        .map(|path| path.unwrap_or_else(|| out.with_extension("zip")));
    export_write::write(&exported, &out, zip.as_deref())?;
    let mut report = format!(
        "Exported {} ({} nodes) to {}:\n",
        usecase.name,
        usecase.nodes.len(),
        out.display()
    );
    for file in &exported.files {
        report.push_str(&format!("  {}\n", file.path));
    }
    if let Some(zip) = zip {
        report.push_str(&format!(
            "Portal-ready ZIP (Solutions > Import ZIP): {}\n",
            zip.display()
        ));
    }
    Ok(report)
}
