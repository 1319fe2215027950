//! `connections.json` as the platform writes it: `pipeline.name`,
//! `service_mapping` (node folder → `ip_address` and `port`) and
//! `connections`. Read and written back keeping the order of the mapping
//! and any key svcgen does not use (`description`, `start_service`, ...).

use anyhow::{Context, Result};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The file name inside a use-case folder.
pub const FILE_NAME: &str = "connections.json";

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionsFile {
    /// `pipeline`.
    pub pipeline: Pipeline,
    /// Any other top-level key, kept as it was.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `pipeline`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pipeline {
    /// `pipeline.name`.
    pub name: String,
    /// Other keys (`description`, `start_service`, ...), kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
    /// `service_mapping`, in file order.
    #[serde(default)]
    pub service_mapping: ServiceMapping,
    /// `connections`, in file order.
    #[serde(default)]
    pub connections: Vec<RawConnection>,
}

/// One `service_mapping` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mapping {
    /// The compose service name / host name the orchestrator calls.
    pub ip_address: String,
    /// The HTTP control port, a number (or a string of digits) in the file.
    pub port: Value,
    /// Other keys, kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One `connections` entry as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawConnection {
    /// Source node: its folder name or its ip_address.
    pub from_service: String,
    /// Source rpc; absent: every operation of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_method: Option<String>,
    /// Target node: its folder name or its ip_address.
    pub to_service: String,
    /// Target rpc.
    pub to_method: String,
    /// Other keys, kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `service_mapping` with its entries in file order.
#[derive(Debug, Clone, Default)]
pub struct ServiceMapping(pub Vec<(String, Mapping)>);

impl ServiceMapping {
    /// The entry for the node folder `dir_name`.
    pub fn get(&self, dir_name: &str) -> Option<&Mapping> {
        self.0.iter().find(|(k, _)| k == dir_name).map(|(_, m)| m)
    }
}

impl Serialize for ServiceMapping {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ServiceMapping {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = ServiceMapping;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of node folder -> {ip_address, port}")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<ServiceMapping, A::Error> {
                let mut entries: Vec<(String, Mapping)> = Vec::new();
                while let Some((key, value)) = access.next_entry::<String, Mapping>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(serde::de::Error::custom(format!(
                            "service_mapping names `{key}` twice"
                        )));
                    }
                    entries.push((key, value));
                }
                Ok(ServiceMapping(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

impl ConnectionsFile {
    /// An empty pipeline named `name`.
    pub fn empty(name: &str) -> ConnectionsFile {
        ConnectionsFile {
            pipeline: Pipeline {
                name: name.to_string(),
                extra: BTreeMap::new(),
                service_mapping: ServiceMapping::default(),
                connections: Vec::new(),
            },
            extra: BTreeMap::new(),
        }
    }

    /// Reads `<dir>/connections.json`.
    pub fn read(dir: &Path) -> Result<ConnectionsFile> {
        let path = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (start a use case with `svcgen pipeline init`)",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not in the platform's format ({{\"pipeline\": {{\"name\", \"service_mapping\", \"connections\"}}}})",
                path.display()
            )
        })
    }

    /// The file's text: pretty JSON, two-space indent, final newline.
    pub fn render(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_unknown_keys() {
        let text = r#"{"pipeline": {"name": "P", "description": "d", "start_service": "b",
          "service_mapping": {"zeta": {"ip_address": "z", "port": 8080},
                              "alpha": {"ip_address": "a", "port": "9000"}},
          "connections": [{"from_service": "z", "to_service": "a", "to_method": "M", "why": [1]}]}}"#;
        let file: ConnectionsFile = serde_json::from_str(text).unwrap();
        let keys: Vec<_> = file
            .pipeline
            .service_mapping
            .0
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["zeta", "alpha"]);
        let out = file.render();
        assert!(
            out.find("\"zeta\"").unwrap() < out.find("\"alpha\"").unwrap(),
            "{out}"
        );
        assert!(out.contains("\"start_service\": \"b\""), "{out}");
        assert!(out.contains("\"port\": \"9000\""), "{out}");
        assert!(!out.contains("from_method"), "{out}");
        let again: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            again["pipeline"]["connections"][0]["why"],
            serde_json::json!([1])
        );
    }

    #[test]
    fn refuses_a_node_mapped_twice() {
        let text = r#"{"pipeline": {"name": "P", "service_mapping": {
            "a": {"ip_address": "a", "port": 1}, "a": {"ip_address": "b", "port": 2}}}}"#;
        let err = serde_json::from_str::<ConnectionsFile>(text).unwrap_err();
        assert!(err.to_string().contains("names `a` twice"), "{err}");
    }
}
