//! `svcgen pipeline connect A.Produce B.Consume`: adds a connection to
//! `connections.json` (mapping any node folder not mapped yet), after
//! checking the whole use case with it: known nodes and rpcs, no duplicate,
//! no cycle.

use super::connections_file::{ConnectionsFile, RawConnection, FILE_NAME};
use super::mapping;
use super::usecase::UseCase;
use crate::cli::Usage;
use crate::write::{self, Change};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Flags of `svcgen pipeline connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The source: NODE.Rpc (or NODE alone: every operation of the node).
    #[arg(value_name = "FROM")]
    pub from: String,

    /// The target: NODE.Rpc.
    #[arg(value_name = "TO")]
    pub to: String,

    /// The use-case folder (default: the nearest folder with connections.json).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// One end of a connection as typed: a node (folder or ip_address) and maybe an rpc.
#[derive(Debug, Clone, PartialEq, Eq)]
struct End {
    node: String,
    rpc: Option<String>,
}

/// Runs `svcgen pipeline connect`.
pub fn run(args: ConnectArgs) -> anyhow::Result<String> {
    let from = parse_end(&args.from, false)?;
    let to = parse_end(&args.to, true)?;
    let dir = UseCase::locate(args.dir.as_deref())?;
    let mut file = ConnectionsFile::read(&dir)?;
    let mapped = mapping::map_unmapped(&dir, &mut file)?;
    file.pipeline.connections.push(RawConnection {
        from_service: from.node,
        from_method: from.rpc,
        to_service: to.node,
        to_method: to.rpc.unwrap_or_default(),
        extra: Default::default(),
    });
    UseCase::check(&dir, file.clone())?;
    write::apply(&dir, &[Change::write(FILE_NAME, file.render())])?;
    let mut out = format!(
        "Connected {} -> {} in {}\n",
        args.from,
        args.to,
        dir.join(FILE_NAME).display()
    );
    if !mapped.is_empty() {
        out.push_str(&format!("Mapped: {}\n", mapped.join(", ")));
    }
    Ok(out)
}

/// `NODE.Rpc` (the rpc after the last dot), or `NODE` when `rpc_required` is false.
fn parse_end(text: &str, rpc_required: bool) -> Result<End> {
    let bad = |why: &str| -> anyhow::Error {
        Usage(format!(
            "invalid endpoint {text:?}: {why} (expected NODE.Rpc, e.g. producer.Produce)"
        ))
        .into()
    };
    let (node, rpc) = match text.rsplit_once('.') {
        Some((node, rpc)) => (node, Some(rpc)),
        None if rpc_required => return Err(bad("the target needs an rpc")),
        None => (text, None),
    };
    if node.is_empty() {
        return Err(bad("the node is empty"));
    }
    if let Some(rpc) = rpc {
        if !super::proto_text::is_identifier(rpc) {
            return Err(bad("the rpc must be a name"));
        }
    }
    Ok(End {
        node: node.to_string(),
        rpc: rpc.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let end = parse_end("reports.internal.Run", true).unwrap();
        assert_eq!(end.node, "reports.internal");
        assert_eq!(end.rpc.as_deref(), Some("Run"));
        assert_eq!(parse_end("a", false).unwrap().rpc, None);
        assert!(parse_end("a", true).is_err());
        assert!(parse_end(".Run", true).is_err());
        assert!(parse_end("a.", true).is_err());
    }
}
