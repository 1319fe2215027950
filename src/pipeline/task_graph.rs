//! The tasks of a pipeline, read from its blueprint the way the
//! orchestrator's parser reads them: one task per operation of a node
//! (`container_name:operation_name`), an edge per `connected_to` entry;
//! every edge must name an existing operation, some task must have no
//! dependency, and there must be no cycle. Tasks run one at a time in the
//! order the orchestrator's queue would take them: the start tasks in
//! blueprint order, then each task once its last dependency completed.

use std::collections::{BTreeSet, HashMap, VecDeque};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::Value;

/// The parts of a blueprint the task graph is made of.
#[derive(Deserialize)]
struct Blueprint {
    nodes: Vec<BlueprintNode>,
}

#[derive(Deserialize)]
struct BlueprintNode {
    container_name: String,
    operation_signature_list: Vec<Operation>,
}

#[derive(Deserialize)]
struct Operation {
    operation_signature: OperationName,
    #[serde(default)]
    connected_to: Vec<Target>,
}

#[derive(Deserialize)]
struct Target {
    container_name: String,
    operation_signature: OperationName,
}

#[derive(Deserialize)]
struct OperationName {
    operation_name: String,
}

/// One task: a node's operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNode {
    /// The node's container name.
    pub container: String,
    /// The operation (rpc) to run.
    pub method: String,
    /// Tasks fed by this one's output (indices, without repeats).
    pub next: Vec<usize>,
    /// How many distinct tasks feed this one.
    pub dependencies: usize,
}

impl TaskNode {
    /// `container:operation`, the orchestrator's node key.
    pub fn key(&self) -> String {
        node_key(&self.container, &self.method)
    }
}

/// `container:operation`, the orchestrator's key of a node's operation.
fn node_key(container: &str, operation: &str) -> String {
    format!("{container}:{operation}")
}

/// Every task of a blueprint, in the order they run.
#[derive(Debug, Clone)]
pub struct TaskGraph {
    /// The tasks; `next` indices point into this list, always forward.
    pub tasks: Vec<TaskNode>,
}

impl TaskGraph {
    /// Reads and checks the graph of `blueprint`.
    pub fn from_blueprint(blueprint: &Value) -> anyhow::Result<TaskGraph> {
        let blueprint =
            Blueprint::deserialize(blueprint).context("the blueprint has no readable nodes")?;
        let mut tasks = Vec::new();
        let mut index = HashMap::new();
        for node in &blueprint.nodes {
            for op in &node.operation_signature_list {
                let key = node_key(&node.container_name, &op.operation_signature.operation_name);
                index.insert(key, tasks.len());
                tasks.push(TaskNode {
                    container: node.container_name.clone(),
                    method: op.operation_signature.operation_name.clone(),
                    next: Vec::new(),
                    dependencies: 0,
                });
            }
        }
        let edges = edges(&blueprint, &index)?;
        for (from, to) in edges {
            tasks[from].next.push(to);
            tasks[to].dependencies += 1;
        }
        let order = run_order(&tasks)?;
        Ok(TaskGraph {
            tasks: renumbered(tasks, &order),
        })
    }
}

/// The order the tasks run in (the orchestrator's queue order), or why
/// there is none.
fn run_order(tasks: &[TaskNode]) -> anyhow::Result<Vec<usize>> {
    let mut waiting: Vec<usize> = tasks.iter().map(|t| t.dependencies).collect();
    let mut queue: VecDeque<usize> = (0..tasks.len()).filter(|&i| waiting[i] == 0).collect();
    if queue.is_empty() {
        bail!("the pipeline has no start node (every operation has an upstream)");
    }
    let mut order = Vec::with_capacity(tasks.len());
    while let Some(i) = queue.pop_front() {
        order.push(i);
        for &next in &tasks[i].next {
            waiting[next] -= 1;
            if waiting[next] == 0 {
                queue.push_back(next);
            }
        }
    }
    if order.len() < tasks.len() {
        let stuck: Vec<String> = (0..tasks.len())
            .filter(|i| !order.contains(i))
            .map(|i| tasks[i].key())
            .collect();
        bail!("the pipeline has a cycle through {}", stuck.join(", "));
    }
    Ok(order)
}

/// `tasks` listed in `order`, their `next` indices renumbered to match.
fn renumbered(tasks: Vec<TaskNode>, order: &[usize]) -> Vec<TaskNode> {
    let mut position = vec![0; tasks.len()];
    for (at, &i) in order.iter().enumerate() {
        position[i] = at;
    }
    let mut slots: Vec<Option<TaskNode>> = tasks.into_iter().map(Some).collect();
    order
        .iter()
        .filter_map(|&i| slots[i].take())
        .map(|mut task| {
            task.next = task.next.iter().map(|&n| position[n]).collect();
            task
        })
        .collect()
}

/// Every distinct edge, in blueprint order; an edge to an unknown
/// operation is refused as the orchestrator refuses it.
fn edges(
    blueprint: &Blueprint,
    index: &HashMap<String, usize>,
) -> anyhow::Result<Vec<(usize, usize)>> {
    let mut seen = BTreeSet::new();
    let mut edges = Vec::new();
    for node in &blueprint.nodes {
        for op in &node.operation_signature_list {
            let from =
                index[&node_key(&node.container_name, &op.operation_signature.operation_name)];
            for target in &op.connected_to {
                let key = node_key(
                    &target.container_name,
                    &target.operation_signature.operation_name,
                );
                let Some(&to) = index.get(&key) else {
                    bail!(
                        "invalid connection target {key}: no such node operation in the blueprint"
                    );
                };
                if seen.insert((from, to)) {
                    edges.push((from, to));
                }
            }
        }
    }
    Ok(edges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, ops: Value) -> Value {
        json!({"container_name": name, "operation_signature_list": ops})
    }

    fn op(name: &str, to: &[(&str, &str)]) -> Value {
        let to: Vec<Value> = to
            .iter()
            .map(
                |(c, o)| json!({"container_name": c, "operation_signature": {"operation_name": o}}),
            )
            .collect();
        json!({"operation_signature": {"operation_name": name}, "connected_to": to})
    }

    #[test]
    fn fan_in_runs_after_both_sources() {
        let bp = json!({"nodes": [
            node("sink1", json!([op("Sink", &[])])),
            node("a1", json!([op("A", &[("sink1", "Sink")])])),
            node("b1", json!([op("B", &[("sink1", "Sink"), ("sink1", "Sink")])])),
        ]});
        let graph = TaskGraph::from_blueprint(&bp).unwrap();
        let keys: Vec<String> = graph.tasks.iter().map(TaskNode::key).collect();
        assert_eq!(keys, ["a1:A", "b1:B", "sink1:Sink"]);
        assert_eq!(graph.tasks[2].dependencies, 2);
        assert_eq!(graph.tasks[0].next, [2]);
        assert_eq!(graph.tasks[1].next, [2]);
    }

    #[test]
    fn refuses_what_the_orchestrator_refuses() {
        let unknown = json!({"nodes": [node("a1", json!([op("A", &[("b1", "B")])]))]});
        let err = TaskGraph::from_blueprint(&unknown).unwrap_err().to_string();
        assert!(err.contains("b1:B"), "{err}");
        let cycle = json!({"nodes": [
            node("s1", json!([op("S", &[])])),
            node("a1", json!([op("A", &[("b1", "B")])])),
            node("b1", json!([op("B", &[("a1", "A")])])),
        ]});
        let err = TaskGraph::from_blueprint(&cycle).unwrap_err().to_string();
        assert!(err.contains("cycle"), "{err}");
        let no_start = json!({"nodes": [node("a1", json!([op("A", &[("a1", "A")])]))]});
        let err = TaskGraph::from_blueprint(&no_start)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no start node"), "{err}");
    }
}
