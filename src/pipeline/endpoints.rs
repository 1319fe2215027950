//! Where each node of a pipeline is called: `http://<ip_address>:<port>`
//! from dockerinfo, as the orchestrator calls it, unless `--at NODE=URL`
//! says otherwise (NODE: the node's folder, container or ip_address).

use std::collections::BTreeMap;

use anyhow::{anyhow, Context};
use serde::Deserialize;
use serde_json::Value;

use super::usecase::UseCase;
use crate::cli::Usage;
use crate::control_client::check_base_url;

/// dockerinfo.json.
#[derive(Deserialize)]
struct DockerInfo {
    docker_info_list: Vec<Entry>,
}

/// One container of dockerinfo.json.
#[derive(Deserialize)]
struct Entry {
    container_name: String,
    ip_address: String,
    port: String,
}

/// One `--at NODE=URL`.
#[derive(Debug, Clone)]
pub struct At {
    /// The node's folder, container name or ip_address.
    pub node: String,
    /// Its control address.
    pub url: String,
}

/// Parses `NODE=URL`.
pub fn parse_at(text: &str) -> Result<At, String> {
    let (node, url) = text
        .split_once('=')
        .ok_or_else(|| format!("{text}: expected NODE=URL"))?;
    check_base_url(url).map_err(|e| format!("{e:#}"))?;
    Ok(At {
        node: node.trim().to_string(),
        url: url.trim_end_matches('/').to_string(),
    })
}

/// Each container's control address.
#[derive(Debug, Clone)]
pub struct Endpoints {
    by_container: BTreeMap<String, String>,
}

impl Endpoints {
    /// The addresses in `dockerinfo`, overridden by `at`.
    pub fn new(dockerinfo: &Value, usecase: &UseCase, at: &[At]) -> anyhow::Result<Endpoints> {
        let info = DockerInfo::deserialize(dockerinfo)
            .context("dockerinfo has no readable docker_info_list")?;
        let mut by_container = BTreeMap::new();
        for entry in &info.docker_info_list {
            let port: u16 = entry
                .port
                .trim()
                .parse()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| {
                    anyhow!(
                        "dockerinfo: port {:?} of {} is not a port number",
                        entry.port,
                        entry.container_name
                    )
                })?;
            let url = format!("http://{}:{port}", entry.ip_address);
            by_container.insert(entry.container_name.clone(), url);
        }
        for one in at {
            let container = container_of(&one.node, &info, usecase)?;
            by_container.insert(container, one.url.clone());
        }
        Ok(Endpoints { by_container })
    }

    /// The address of `container`, if dockerinfo lists it.
    pub fn url(&self, container: &str) -> Option<&str> {
        self.by_container.get(container).map(String::as_str)
    }
}

/// The container `--at` names; an unknown name is a usage error.
fn container_of(node: &str, info: &DockerInfo, usecase: &UseCase) -> anyhow::Result<String> {
    let folder_host = usecase
        .nodes
        .iter()
        .find(|n| n.dir_name == node)
        .map(|n| n.ip_address.as_str());
    info.docker_info_list
        .iter()
        .find(|e| {
            e.container_name == node
                || e.ip_address == node
                || Some(e.ip_address.as_str()) == folder_host
        })
        .map(|e| e.container_name.clone())
        .ok_or_else(|| {
            let known: Vec<&str> = usecase.nodes.iter().map(|n| n.dir_name.as_str()).collect();
            Usage(format!(
                "--at {node}=…: no such node (the nodes are {})",
                known.join(", ")
            ))
            .into()
        })
}

#[cfg(test)]
mod tests {
    use super::parse_at;

    #[test]
    fn at_is_node_equals_an_http_url() {
        let at = parse_at("producer=http://127.0.0.1:8080/").expect("valid");
        assert_eq!(
            (at.node.as_str(), at.url.as_str()),
            ("producer", "http://127.0.0.1:8080")
        );
        for bad in [
            "producer",
            "producer=127.0.0.1:8080",
            "producer=https://x:1",
            "p=http://",
        ] {
            assert!(parse_at(bad).is_err(), "{bad}");
        }
    }
}
