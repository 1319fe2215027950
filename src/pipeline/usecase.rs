//! A use case on disk: `connections.json` and `services/<node_dir>/proto/*.proto`,
//! loaded and checked against the platform's rules.
//!
//! Interface used by other pipeline modules (keep these signatures):
//! [`UseCase::locate`], [`UseCase::load`], the public fields of [`UseCase`],
//! [`Node`], [`Rpc`] and [`Connection`].
//!
//! Every rule broken is reported as one line naming the node, the operation
//! when there is one, and the rule (see [`violation`]).

use super::connections_file::{ConnectionsFile, Mapping, RawConnection, FILE_NAME};
use super::graph;
use super::proto_text::{is_identifier, ProtoText, RpcText};
use super::services::{self, ServiceDir};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// Rpcs svcgen generates into every service for its own use: never
/// pipeline operations, never exported.
pub const INTERNAL_RPCS: &[&str] = &["GetLastResult"];

/// A loaded, validated use case.
#[derive(Debug, Clone)]
pub struct UseCase {
    /// The use-case folder.
    pub dir: PathBuf,
    /// `pipeline.name` from connections.json.
    pub name: String,
    /// The nodes, sorted by folder name (the platform's export order).
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
    /// The gRPC data port (svcgen.toml's, else [`services::DEFAULT_GRPC_PORT`]).
    pub grpc_port: u16,
    /// The node's one proto file.
    pub proto: PathBuf,
    /// Its rpcs in proto order, svcgen's internal ones ([`INTERNAL_RPCS`]) left out.
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

/// A broken rule, as one line: ``node `b`, operation `Run`: rule``.
pub fn violation(
    node: &str,
    operation: Option<&str>,
    rule: impl std::fmt::Display,
) -> anyhow::Error {
    match operation {
        Some(op) => anyhow!("node `{node}`, operation `{op}`: {rule}"),
        None => anyhow!("node `{node}`: {rule}"),
    }
}

impl UseCase {
    /// The use-case folder: `dir` if given, else the nearest folder holding
    /// `connections.json` from the current directory up.
    pub fn locate(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
        if let Some(dir) = dir {
            if !dir.join(FILE_NAME).is_file() {
                bail!(
                    "{} has no {FILE_NAME}; start a use case there with `svcgen pipeline init {}`",
                    dir.display(),
                    dir.display()
                );
            }
            return Ok(dir.to_path_buf());
        }
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        cwd.ancestors()
            .find(|d| d.join(FILE_NAME).is_file())
            .map(Path::to_path_buf)
            .with_context(|| {
                format!(
                    "no {FILE_NAME} in {} or any folder above; pass the use-case folder or start one with `svcgen pipeline init DIR`",
                    cwd.display()
                )
            })
    }

    /// Loads and validates the use case in `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<UseCase> {
        UseCase::check(dir, ConnectionsFile::read(dir)?)
    }

    /// Validates the use case in `dir` as if its connections.json were `file`.
    pub fn check(dir: &Path, file: ConnectionsFile) -> Result<UseCase> {
        let mut nodes = Vec::new();
        for service in services::scan(dir)? {
            if let Some(node) = node(&service, &file)? {
                nodes.push(node);
            }
        }
        if nodes.is_empty() {
            bail!(
                "{} has no node: no folder under services/ holds a proto/*.proto",
                dir.display()
            );
        }
        check_unique_hosts(&nodes)?;
        let connections = file
            .pipeline
            .connections
            .iter()
            .map(|raw| resolve(raw, &nodes))
            .collect::<Result<Vec<_>>>()?;
        check_connections(&connections)?;
        graph::check_acyclic(&nodes, &connections)?;
        Ok(UseCase {
            dir: dir.to_path_buf(),
            name: file.pipeline.name,
            nodes,
            connections,
        })
    }
}

/// The node of `service`; `None` for a folder without a proto (the
/// platform's export skips those too).
fn node(service: &ServiceDir, file: &ConnectionsFile) -> Result<Option<Node>> {
    let name = &service.dir_name;
    let proto = match service.protos.as_slice() {
        [] => return Ok(None),
        [one] => one.clone(),
        [first, second, ..] => {
            return Err(violation(
                name,
                None,
                format!(
                    "two protos in a node ({} and {}); the platform takes exactly one proto/*.proto per node (move other files to a subfolder)",
                    file_name(first),
                    file_name(second)
                ),
            ))
        }
    };
    let mapping = file.pipeline.service_mapping.get(name).ok_or_else(|| {
        violation(name, None, format!("not in service_mapping of {FILE_NAME}; add it with `svcgen pipeline connect` or by hand"))
    })?;
    let (ip_address, port) = address(name, mapping)?;
    let text = std::fs::read_to_string(&proto)
        .with_context(|| format!("cannot read {}", proto.display()))?;
    let parsed = ProtoText::parse(&text)
        .map_err(|e| violation(name, None, format!("{}: {e}", proto.display())))?;
    let rpcs = rpcs(name, &parsed)?;
    Ok(Some(Node {
        dir_name: name.clone(),
        ip_address,
        port,
        grpc_port: service.grpc_port(),
        proto,
        rpcs,
    }))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether `name` may be a docker image or compose service name (or part of
/// one): lowercase letters, digits, '-', '.', '_', starting with a letter or
/// digit.
pub fn is_docker_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_'))
}

/// The checked `ip_address` and `port` of a mapping.
fn address(name: &str, mapping: &Mapping) -> Result<(String, u16)> {
    let ip = mapping.ip_address.clone();
    if !is_docker_name(&ip) {
        return Err(violation(
            name,
            None,
            format!("ip_address {ip:?} must be a host name: lowercase letters, digits, '-', '.', '_' (it is also the compose service name and part of the image name)"),
        ));
    }
    let port = match &mapping.port {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    }
    .and_then(|p| u16::try_from(p).ok())
    .filter(|p| *p > 0)
    .ok_or_else(|| {
        violation(
            name,
            None,
            format!("port {} must be a number from 1 to 65535", mapping.port),
        )
    })?;
    Ok((ip, port))
}

/// The node's operations-to-be: every rpc but svcgen's internal ones, each
/// unary and written on one line.
fn rpcs(name: &str, proto: &ProtoText) -> Result<Vec<Rpc>> {
    for pair in proto.rpcs.windows(2) {
        if pair[0].span.end > pair[1].span.start {
            let (other, op) = if INTERNAL_RPCS.contains(&pair[1].name.as_str()) {
                (&pair[1], &pair[0])
            } else {
                (&pair[0], &pair[1])
            };
            return Err(violation(
                name,
                Some(&op.name),
                format!(
                    "rpc {} shares line {} with rpc {}; the platform's importer reads one rpc per line",
                    op.name, pair[1].line, other.name
                ),
            ));
        }
    }
    let mut out = Vec::new();
    for rpc in &proto.rpcs {
        if INTERNAL_RPCS.contains(&rpc.name.as_str()) {
            continue;
        }
        check_rpc(name, rpc)?;
        out.push(Rpc {
            name: rpc.name.clone(),
            input: rpc.input.clone(),
            output: rpc.output.clone(),
        });
    }
    if out.is_empty() {
        return Err(violation(
            name,
            None,
            "its proto declares no rpc to run as a pipeline operation",
        ));
    }
    Ok(out)
}

fn check_rpc(name: &str, rpc: &RpcText) -> Result<()> {
    let op = Some(rpc.name.as_str());
    if rpc.input_stream || rpc.output_stream {
        return Err(violation(
            name,
            op,
            format!(
                "streaming rpc (line {}); the orchestrator calls only unary rpcs",
                rpc.line
            ),
        ));
    }
    let shape = if rpc.has_body {
        Some("rpc with an options block")
    } else if !rpc.one_line {
        Some("multi-line rpc")
    } else {
        None
    };
    if let Some(shape) = shape {
        return Err(violation(
            name,
            op,
            format!(
                "{shape} (line {}); the platform's importer reads only the one-line form `rpc {}({}) returns ({});`",
                rpc.line, rpc.name, rpc.input, rpc.output
            ),
        ));
    }
    for ty in [&rpc.input, &rpc.output] {
        if !is_identifier(ty) {
            return Err(violation(
                name,
                op,
                format!("message type `{ty}` (line {}) must be a plain name of a message in this proto (no package or nesting)", rpc.line),
            ));
        }
    }
    Ok(())
}

fn check_unique_hosts(nodes: &[Node]) -> Result<()> {
    for (i, node) in nodes.iter().enumerate() {
        if let Some(other) = nodes[..i].iter().find(|n| n.ip_address == node.ip_address) {
            return Err(violation(
                &node.dir_name,
                None,
                format!(
                    "duplicate ip_address `{}` (node `{}` has it too); each node is its own service on the ai-effect-services network",
                    node.ip_address, other.dir_name
                ),
            ));
        }
    }
    Ok(())
}

/// `raw` with its services resolved to node folders (by folder name, then
/// by ip_address) and its rpcs checked.
fn resolve(raw: &RawConnection, nodes: &[Node]) -> Result<Connection> {
    let from = find_node(&raw.from_service, nodes, raw)?;
    let to = find_node(&raw.to_service, nodes, raw)?;
    if let Some(method) = &raw.from_method {
        check_method(from, method)?;
    }
    check_method(to, &raw.to_method)?;
    Ok(Connection {
        from_node: from.dir_name.clone(),
        from_method: raw.from_method.clone(),
        to_node: to.dir_name.clone(),
        to_method: raw.to_method.clone(),
    })
}

fn find_node<'a>(name: &str, nodes: &'a [Node], raw: &RawConnection) -> Result<&'a Node> {
    nodes
        .iter()
        .find(|n| n.dir_name == name)
        .or_else(|| nodes.iter().find(|n| n.ip_address == name))
        .ok_or_else(|| {
            let known: Vec<&str> = nodes.iter().map(|n| n.dir_name.as_str()).collect();
            violation(
                name,
                None,
                format!(
                    "unknown node in the connection {} (nodes: {}); a node is a folder under services/ with a proto",
                    describe(raw),
                    known.join(", ")
                ),
            )
        })
}

fn describe(raw: &RawConnection) -> String {
    format!(
        "{}.{} -> {}.{}",
        raw.from_service,
        raw.from_method.as_deref().unwrap_or("*"),
        raw.to_service,
        raw.to_method
    )
}

fn check_method(node: &Node, method: &str) -> Result<()> {
    if node.rpcs.iter().any(|r| r.name == method) {
        return Ok(());
    }
    let rule = if INTERNAL_RPCS.contains(&method) {
        "internal to svcgen's runtime, not a pipeline operation".to_string()
    } else {
        let known: Vec<&str> = node.rpcs.iter().map(|r| r.name.as_str()).collect();
        format!("unknown rpc (the proto declares: {})", known.join(", "))
    };
    Err(violation(&node.dir_name, Some(method), rule))
}

/// No connection twice, and a source node's connections either all name
/// their `from_method` or none does (the platform's export would drop the
/// ones without it).
fn check_connections(connections: &[Connection]) -> Result<()> {
    for (i, c) in connections.iter().enumerate() {
        let op = c.from_method.as_deref();
        if connections[..i].contains(c) {
            return Err(violation(
                &c.from_node,
                op,
                format!("duplicate connection to `{}.{}`", c.to_node, c.to_method),
            ));
        }
        let mixed = connections.iter().any(|o| {
            o.from_node == c.from_node && o.from_method.is_some() != c.from_method.is_some()
        });
        if mixed {
            return Err(violation(
                &c.from_node,
                op,
                "some of its connections name from_method and some do not; name it in all (the platform's export drops the others)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_docker_name;

    #[test]
    fn docker_names_are_lowercase_host_names() {
        for ok in ["producer", "a-source", "uc_2.v1", "9lives"] {
            assert!(is_docker_name(ok), "{ok}");
        }
        for bad in ["", "Producer", "-a", ".a", "_a", "a b", "a/b", "é"] {
            assert!(!is_docker_name(bad), "{bad}");
        }
    }
}
