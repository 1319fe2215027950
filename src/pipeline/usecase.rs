//! A use case on disk: `connections.json` and `services/<node_dir>/proto/*.proto`,
//! loaded and checked against the platform's rules.
//!
//! Interface used by other pipeline modules (keep these signatures):
//! [`UseCase::locate`], [`UseCase::load`], the public fields of [`UseCase`],
//! [`Node`], [`Rpc`] and [`Connection`].

use std::path::{Path, PathBuf};

/// A loaded, validated use case.
#[derive(Debug, Clone)]
pub struct UseCase {
    /// The use-case folder.
    pub dir: PathBuf,
    /// `pipeline.name` from connections.json.
    pub name: String,
    /// The nodes, in `service_mapping` order.
    pub nodes: Vec<Node>,
    /// The connections, in file order.
    pub connections: Vec<Connection>,
}

/// One pipeline node: a folder under `services/`.
#[derive(Debug, Clone)]
pub struct Node {
    /// The folder name under services/ (snake_case).
    pub dir_name: String,
    /// `service_mapping.<node>.ip_address`: compose service name and gRPC host.
    pub ip_address: String,
    /// `service_mapping.<node>.port`: the HTTP control port.
    pub port: u16,
    /// The node's one proto file.
    pub proto: PathBuf,
    /// Its rpcs in proto order.
    pub rpcs: Vec<Rpc>,
}

/// One unary rpc of a node's proto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rpc {
    /// The rpc name.
    pub name: String,
    /// Its input message name.
    pub input: String,
    /// Its output message name.
    pub output: String,
}

/// One entry of `connections`, with node names resolved to `dir_name`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Source node (dir_name).
    pub from_node: String,
    /// Source rpc, or every operation of the source when absent.
    pub from_method: Option<String>,
    /// Target node (dir_name).
    pub to_node: String,
    /// Target rpc.
    pub to_method: String,
}

impl UseCase {
    /// The use-case folder: `dir` if given, else the nearest folder holding
    /// `connections.json` from the current directory up.
    pub fn locate(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
        let _ = dir;
        anyhow::bail!("not built yet")
    }

    /// Loads and validates the use case in `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<UseCase> {
        let _ = dir;
        anyhow::bail!("not built yet")
    }
}
