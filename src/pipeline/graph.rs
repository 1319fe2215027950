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
    operation_rpcs(node, &usecase.connections)
        .map(|rpc| Operation {
            rpc,
            connected_to: targets(&usecase.connections, node, &rpc.name),
        })
        .collect()
}

/// The rpcs of `node` that are operations, in proto order (see [`operations`]).
fn operation_rpcs<'a>(
    node: &'a Node,
    connections: &'a [Connection],
) -> impl Iterator<Item = &'a Rpc> + 'a {
    let from = connections
        .iter()
        .filter(|c| c.from_node == node.dir_name)
        .filter_map(|c| c.from_method.as_deref());
    let to = connections
        .iter()
        .filter(|c| c.to_node == node.dir_name)
        .map(|c| c.to_method.as_str());
    let named: Vec<&str> = from.chain(to).collect();
    node.rpcs
        .iter()
        .filter(move |rpc| named.is_empty() || named.contains(&rpc.name.as_str()))
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
/// in folder order; nodes feeding each other (through different
/// operations) in folder order.
pub fn node_order(usecase: &UseCase) -> Vec<&Node> {
    let mut placed: Vec<&Node> = Vec::with_capacity(usecase.nodes.len());
    while placed.len() < usecase.nodes.len() {
        let unplaced = |node: &&Node| !placed.iter().any(|p| p.dir_name == node.dir_name);
        let ready = usecase.nodes.iter().filter(unplaced).find(|node| {
            usecase
                .connections
                .iter()
                .filter(|c| c.to_node == node.dir_name)
                .all(|c| placed.iter().any(|p| p.dir_name == c.from_node))
        });
        match ready.or_else(|| usecase.nodes.iter().find(unplaced)) {
            Some(node) => placed.push(node),
            None => break,
        }
    }
    placed
}

/// Refuses a cycle among the operations, as the orchestrator does (its
/// tasks are `container:operation` pairs, so two nodes may feed each other
/// through different operations); with none, some operation has no
/// upstream: the start task.
pub fn check_acyclic(nodes: &[Node], connections: &[Connection]) -> Result<()> {
    let ops: Vec<(&str, &str)> = nodes
        .iter()
        .flat_map(|n| {
            operation_rpcs(n, connections).map(move |rpc| (n.dir_name.as_str(), rpc.name.as_str()))
        })
        .collect();
    let index = |node: &str, rpc: &str| ops.iter().position(|&op| op == (node, rpc));
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for c in connections {
        let Some(to) = index(&c.to_node, &c.to_method) else {
            continue;
        };
        for &(node, rpc) in &ops {
            if node == c.from_node && c.from_method.as_deref().is_none_or(|m| m == rpc) {
                edges.extend(index(node, rpc).map(|from| (from, to)));
            }
        }
    }
    let mut state = vec![Visit::New; ops.len()];
    let mut path = Vec::new();
    for start in 0..ops.len() {
        if visit(start, &edges, &mut state, &mut path) {
            return Err(cycle_error(&ops, connections, &path));
        }
    }
    Ok(())
}

/// Whether connection `c` links operation `from` to operation `to`.
fn links(c: &Connection, from: (&str, &str), to: (&str, &str)) -> bool {
    c.from_node == from.0
        && c.from_method.as_deref().is_none_or(|m| m == from.1)
        && c.to_node == to.0
        && c.to_method == to.1
}

/// The cycle through the operations `path` (back to its first), reported
/// at its connection that comes last in the file (the one just added, for
/// `connect`).
fn cycle_error(ops: &[(&str, &str)], connections: &[Connection], path: &[usize]) -> anyhow::Error {
    let hops: Vec<(usize, usize)> = (0..path.len())
        .map(|k| (path[k], path[(k + 1) % path.len()]))
        .collect();
    let last = connections
        .iter()
        .rposition(|c| hops.iter().any(|&(a, b)| links(c, ops[a], ops[b])))
        .unwrap_or(0);
    let closing = &connections[last];
    let from = hops
        .iter()
        .position(|&(a, b)| links(closing, ops[a], ops[b]))
        .unwrap_or(0);
    let mut ring: Vec<String> = (0..path.len())
        .map(|k| {
            let (node, rpc) = ops[path[(from + 1 + k) % path.len()]];
            format!("{node}.{rpc}")
        })
        .collect();
    ring.push(ring[0].clone());
    let (node, rpc) = ops[hops[from].0];
    violation(
        node,
        Some(rpc),
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
            grpc_port: 50051,
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
            "node `c`, operation `Z`: the connection to `a.X` makes a cycle (a.X -> b.Y -> c.Z -> a.X); a pipeline must be acyclic with a start node"
        );
        assert!(check_acyclic(&nodes, &connections[..2]).is_ok());
        // A whole-node source (b) feeds from each of its operations.
        let nodes = vec![node("a", &["X", "W"]), node("b", &["Y"])];
        let connections = vec![link("a", Some("X"), "b", "Y"), link("b", None, "a", "X")];
        let err = check_acyclic(&nodes, &connections).unwrap_err().to_string();
        assert!(
            err.starts_with("node `b`, operation `Y`: the connection to `a.X` makes a cycle (a.X -> b.Y -> a.X)"),
            "{err}"
        );
    }

    #[test]
    fn nodes_may_feed_each_other_through_different_operations() {
        // As on the platform: the tasks a:X -> b:Y and b:Z -> a:W are acyclic.
        let uc = usecase(
            vec![node("b", &["Y", "Z"]), node("a", &["X", "W"])],
            vec![
                link("a", Some("X"), "b", "Y"),
                link("b", Some("Z"), "a", "W"),
            ],
        );
        check_acyclic(&uc.nodes, &uc.connections).unwrap();
        let order: Vec<&str> = node_order(&uc)
            .iter()
            .map(|n| n.dir_name.as_str())
            .collect();
        assert_eq!(order, ["b", "a"], "every node, in folder order");
        assert_eq!(names(&operations(&uc, &uc.nodes[1])), ["X->[b.Y]", "W->[]"]);
    }
}
