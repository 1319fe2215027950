//! The pipeline as a graph, the way the platform reads it: which rpcs of a
//! node become operations, where each operation sends its result, each
//! node's type, and the acyclic-with-a-start-node rule.

use super::usecase::{violation, Connection, Node, Rpc, UseCase};
use anyhow::Result;

/// A node's role, from its edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeType {
    /// No incoming connection (an isolated node too).
    DataSource,
    /// Incoming and outgoing connections.
    MLModel,
    /// Incoming connections only.
    DataSink,
}

impl NodeType {
    /// The blueprint's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::DataSource => "DataSource",
            NodeType::MLModel => "MLModel",
            NodeType::DataSink => "DataSink",
        }
    }
}

/// One operation of a node and the (node, rpc) pairs it feeds.
#[derive(Debug, Clone)]
pub struct Operation<'a> {
    /// The rpc.
    pub rpc: &'a Rpc,
    /// Targets, in connection order.
    pub connected_to: Vec<(&'a str, &'a str)>,
}

/// The type of `node`.
pub fn node_type(usecase: &UseCase, node: &Node) -> NodeType {
    let incoming = usecase
        .connections
        .iter()
        .any(|c| c.to_node == node.dir_name);
    let outgoing = usecase
        .connections
        .iter()
        .any(|c| c.from_node == node.dir_name);
    match (incoming, outgoing) {
        (false, _) => NodeType::DataSource,
        (true, false) => NodeType::DataSink,
        (true, true) => NodeType::MLModel,
    }
}

/// The operations of `node`: the rpcs connections name on it (as source
/// or target), or every rpc when none is named; each with the targets of
/// the connections from it (or from the whole node, when those name no
/// `from_method`).
pub fn operations<'a>(usecase: &'a UseCase, node: &'a Node) -> Vec<Operation<'a>> {
    let from = usecase
        .connections
        .iter()
        .filter(|c| c.from_node == node.dir_name)
        .filter_map(|c| c.from_method.as_deref());
    let to = usecase
        .connections
        .iter()
        .filter(|c| c.to_node == node.dir_name)
        .map(|c| c.to_method.as_str());
    let named: Vec<&str> = from.chain(to).collect();
    node.rpcs
        .iter()
        .filter(|rpc| named.is_empty() || named.contains(&rpc.name.as_str()))
        .map(|rpc| Operation {
            rpc,
            connected_to: targets(&usecase.connections, node, &rpc.name),
        })
        .collect()
}

fn targets<'a>(connections: &'a [Connection], node: &Node, rpc: &str) -> Vec<(&'a str, &'a str)> {
    connections
        .iter()
        .filter(|c| c.from_node == node.dir_name)
        .filter(|c| c.from_method.as_deref().is_none_or(|m| m == rpc))
        .map(|c| (c.to_node.as_str(), c.to_method.as_str()))
        .collect()
}

/// The nodes in pipeline order: each after every node that feeds it, ties
/// in folder order (the use case must be acyclic, as a loaded one is).
pub fn node_order(usecase: &UseCase) -> Vec<&Node> {
    let mut placed: Vec<&Node> = Vec::with_capacity(usecase.nodes.len());
    while placed.len() < usecase.nodes.len() {
        let ready = usecase.nodes.iter().find(|node| {
            !placed.iter().any(|p| p.dir_name == node.dir_name)
                && usecase
                    .connections
                    .iter()
                    .filter(|c| c.to_node == node.dir_name)
                    .all(|c| placed.iter().any(|p| p.dir_name == c.from_node))
        });
        match ready {
            Some(node) => placed.push(node),
            None => break,
        }
    }
    placed
}

/// Refuses a cycle among the nodes (a node feeding itself included); with
/// none, some node has no incoming connection: the start node.
pub fn check_acyclic(nodes: &[Node], connections: &[Connection]) -> Result<()> {
    let index = |name: &str| nodes.iter().position(|n| n.dir_name == name);
    let edges: Vec<(usize, usize)> = connections
        .iter()
        .filter_map(|c| Some((index(&c.from_node)?, index(&c.to_node)?)))
        .collect();
    let mut state = vec![Visit::New; nodes.len()];
    let mut path = Vec::new();
    for start in 0..nodes.len() {
        if visit(start, &edges, &mut state, &mut path) {
            return Err(cycle_error(nodes, connections, &path));
        }
    }
    Ok(())
}

/// The cycle through the nodes `path` (back to its first), reported at its
/// connection that comes last in the file (the one just added, for `connect`).
fn cycle_error(nodes: &[Node], connections: &[Connection], path: &[usize]) -> anyhow::Error {
    let name = |i: usize| nodes[i].dir_name.as_str();
    let hops: Vec<(usize, usize)> = (0..path.len())
        .map(|k| (path[k], path[(k + 1) % path.len()]))
        .collect();
    let last = connections
        .iter()
        .rposition(|c| {
            hops.iter()
                .any(|&(a, b)| c.from_node == name(a) && c.to_node == name(b))
        })
        .unwrap_or(0);
    let closing = &connections[last];
    let from = hops
        .iter()
        .position(|&(a, b)| closing.from_node == name(a) && closing.to_node == name(b))
        .unwrap_or(0);
    let mut ring: Vec<&str> = (0..path.len())
        .map(|k| name(path[(from + 1 + k) % path.len()]))
        .collect();
    ring.push(ring[0]);
    violation(
        &closing.from_node,
        closing.from_method.as_deref(),
        format!(
            "the connection to `{}.{}` makes a cycle ({}); a pipeline must be acyclic with a start node",
            closing.to_node,
            closing.to_method,
            ring.join(" -> ")
        ),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    OnPath,
    Done,
}

/// Depth-first from `at` over `edges` (from, to); true when a cycle is
/// found, with `path` left holding its nodes in order.
fn visit(at: usize, edges: &[(usize, usize)], state: &mut [Visit], path: &mut Vec<usize>) -> bool {
    if state[at] != Visit::New {
        return false;
    }
    state[at] = Visit::OnPath;
    path.push(at);
    for &(_, to) in edges.iter().filter(|e| e.0 == at) {
        if state[to] == Visit::OnPath {
            let start = path.iter().position(|&n| n == to).unwrap_or(0);
            path.drain(..start);
            return true;
        }
        if visit(to, edges, state, path) {
            return true;
        }
    }
    path.pop();
    state[at] = Visit::Done;
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn node(name: &str, rpcs: &[&str]) -> Node {
        Node {
            dir_name: name.to_string(),
            ip_address: name.to_string(),
            port: 8080,
            proto: PathBuf::from(format!("{name}.proto")),
            rpcs: rpcs
                .iter()
                .map(|r| Rpc {
                    name: r.to_string(),
                    input: format!("{r}Request"),
                    output: format!("{r}Response"),
                })
                .collect(),
        }
    }

    fn link(from: &str, method: Option<&str>, to: &str, to_method: &str) -> Connection {
        Connection {
            from_node: from.to_string(),
            from_method: method.map(str::to_string),
            to_node: to.to_string(),
            to_method: to_method.to_string(),
        }
    }

    fn usecase(nodes: Vec<Node>, connections: Vec<Connection>) -> UseCase {
        UseCase {
            dir: PathBuf::from("uc"),
            name: "uc".to_string(),
            nodes,
            connections,
        }
    }

    fn names(ops: &[Operation]) -> Vec<String> {
        ops.iter()
            .map(|op| {
                let targets: Vec<String> = op
                    .connected_to
                    .iter()
                    .map(|(n, m)| format!("{n}.{m}"))
                    .collect();
                format!("{}->[{}]", op.rpc.name, targets.join(","))
            })
            .collect()
    }

    #[test]
    fn operations_types_and_order_follow_the_platform() {
        let uc = usecase(
            vec![
                node("a", &["Pull", "Push", "Idle"]),
                node("b", &["Mix", "Other"]),
                node("c", &["Sink"]),
                node("d", &["Alone", "Too"]),
            ],
            vec![
                link("b", None, "c", "Sink"),
                link("a", Some("Push"), "b", "Mix"),
            ],
        );
        let ops = |i: usize| names(&operations(&uc, &uc.nodes[i]));
        assert_eq!(ops(0), ["Push->[b.Mix]"]);
        assert_eq!(ops(1), ["Mix->[c.Sink]"], "named as a target only");
        assert_eq!(ops(2), ["Sink->[]"]);
        assert_eq!(ops(3), ["Alone->[]", "Too->[]"], "unconnected: every rpc");
        let types: Vec<&str> = uc
            .nodes
            .iter()
            .map(|n| node_type(&uc, n).as_str())
            .collect();
        assert_eq!(types, ["DataSource", "MLModel", "DataSink", "DataSource"]);
        let order: Vec<&str> = node_order(&uc)
            .iter()
            .map(|n| n.dir_name.as_str())
            .collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_whole_node_source_feeds_from_every_operation() {
        let uc = usecase(
            vec![node("a", &["One", "Two"]), node("b", &["In"])],
            vec![link("a", None, "b", "In")],
        );
        assert_eq!(
            names(&operations(&uc, &uc.nodes[0])),
            ["One->[b.In]", "Two->[b.In]"]
        );
    }

    #[test]
    fn cycles_are_named_at_their_latest_connection() {
        let nodes = vec![node("a", &["X"]), node("b", &["Y"]), node("c", &["Z"])];
        let connections = vec![
            link("a", Some("X"), "b", "Y"),
            link("b", Some("Y"), "c", "Z"),
            link("c", Some("Z"), "a", "X"),
        ];
        let err = check_acyclic(&nodes, &connections).unwrap_err().to_string();
        assert_eq!(
            err,
            "node `c`, operation `Z`: the connection to `a.X` makes a cycle (a -> b -> c -> a); a pipeline must be acyclic with a start node"
        );
        assert!(check_acyclic(&nodes, &connections[..2]).is_ok());
    }
}
