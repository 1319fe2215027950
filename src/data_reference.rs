//! The orchestrator's DataReference: where a task's input or output is.
//!
//! Accepts exactly what the platform's orchestrator accepts (its pydantic
//! model): a known `protocol`; a non-blank `uri` of the protocol's shape; a
//! `format` from its list, or any string for `grpc`; a non-negative
//! `size_bytes`; an `algorithm:value` checksum; an object of `metadata`.
//! Serialised the way the orchestrator sends it on: every field, absent
//! optional ones as `null`, `metadata` as `{}` when there is none.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cli::Usage;

/// Protocols the orchestrator knows.
const PROTOCOLS: [&str; 9] = [
    "s3", "http", "https", "nfs", "grpc", "mqtt", "villas", "inline", "file",
];

/// Formats the orchestrator knows (any string is allowed for `grpc`).
const FORMATS: [&str; 6] = ["json", "csv", "parquet", "protobuf", "binary", "xml"];

/// A reference to data, as the orchestrator passes it between tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataReference {
    /// How to reach the data (`grpc` for a service's result).
    pub protocol: String,
    /// Where the data is (`host:port` for `grpc`).
    pub uri: String,
    /// What the data is (for `grpc`, the rpc that returns it).
    pub format: String,
    /// A schema for the data.
    #[serde(default)]
    pub schema_uri: Option<String>,
    /// The data's size in bytes.
    #[serde(default, deserialize_with = "lax_size")]
    pub size_bytes: Option<u64>,
    /// `algorithm:value`.
    #[serde(default)]
    pub checksum: Option<String>,
    /// Free-form details (`task_id`: the producing task's poll id).
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl DataReference {
    /// Reads and checks one reference from JSON.
    pub fn from_value(value: Value) -> anyhow::Result<DataReference> {
        let reference: DataReference = serde_json::from_value(value)
            .context("not a DataReference (protocol, uri and format are strings)")?;
        reference.check()?;
        Ok(reference)
    }

    /// Reads and checks one reference given as JSON text (an `--input`).
    pub fn parse(text: &str) -> anyhow::Result<DataReference> {
        let value: Value =
            serde_json::from_str(text).with_context(|| format!("--input {text}: not JSON"))?;
        DataReference::from_value(value).with_context(|| format!("--input {text}"))
    }

    /// The orchestrator's rules for one reference.
    pub fn check(&self) -> anyhow::Result<()> {
        if !PROTOCOLS.contains(&self.protocol.as_str()) {
            bail!(
                "protocol {:?} is not one of {}",
                self.protocol,
                PROTOCOLS.join(", ")
            );
        }
        if self.uri.trim().is_empty() {
            bail!("uri must not be blank");
        }
        if self.protocol != "grpc" && !FORMATS.contains(&self.format.as_str()) {
            bail!(
                "format {:?} is not one of {} (any string only for grpc)",
                self.format,
                FORMATS.join(", ")
            );
        }
        if let Some(checksum) = &self.checksum {
            check_checksum(checksum)?;
        }
        check_uri(&self.protocol, &self.uri)
    }

    /// One line for a report: `grpc 127.0.0.1:50051 Produce`.
    pub fn summary(&self) -> String {
        format!("{} {} {}", self.protocol, self.uri, self.format)
    }
}

/// Every `--input` of a command as a DataReference; a malformed one is a
/// usage error.
pub fn parse_inputs(texts: &[String]) -> anyhow::Result<Vec<DataReference>> {
    texts
        .iter()
        .map(|text| DataReference::parse(text).map_err(|e| Usage(format!("{e:#}")).into()))
        .collect()
}

/// `algorithm:value`, both parts non-empty.
fn check_checksum(checksum: &str) -> anyhow::Result<()> {
    match checksum.split_once(':') {
        Some((alg, val)) if !alg.is_empty() && !val.is_empty() => Ok(()),
        _ => bail!("checksum {checksum:?} must be algorithm:value"),
    }
}

/// The uri's shape for its protocol.
fn check_uri(protocol: &str, uri: &str) -> anyhow::Result<()> {
    let prefixes: &[&str] = match protocol {
        "s3" => &["s3://"],
        "http" => &["http://"],
        "https" => &["https://"],
        "mqtt" => &["mqtt://", "mqtts://"],
        _ => &[],
    };
    if !prefixes.is_empty() && !prefixes.iter().any(|p| uri.starts_with(p)) {
        bail!("a {protocol} uri must start with {}", prefixes.join(" or "));
    }
    if protocol == "nfs" && !uri.contains(':') {
        bail!("an nfs uri must be host:path");
    }
    if protocol == "inline" && !is_base64(uri) {
        bail!("an inline uri must be base64");
    }
    Ok(())
}

/// Standard base64 with its padding, as a strict decoder accepts it.
fn is_base64(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    let padding = text.len() - body.len();
    padding <= 2
        && text.len().is_multiple_of(4)
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// `size_bytes`: a non-negative integer (an integral float or a digit
/// string is taken too, as the orchestrator's lax parsing does).
fn lax_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => lax_int(&v)
            .and_then(|n| u64::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("size_bytes {v} is not a non-negative integer"))
            }),
    }
}

/// An integer from a JSON integer, an integral float or a digit string
/// (what the orchestrator's lax integer fields take).
pub fn lax_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_a_services_output_and_fills_the_defaults() {
        let r = DataReference::from_value(
            json!({"protocol": "grpc", "uri": "p:1", "format": "Produce", "metadata": {"task_id": "t.x"}}),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"protocol": "grpc", "uri": "p:1", "format": "Produce", "schema_uri": null,
                   "size_bytes": null, "checksum": null, "metadata": {"task_id": "t.x"}})
        );
    }

    #[test]
    fn refuses_what_the_orchestrator_refuses() {
        for bad in [
            json!({"protocol": "ftp", "uri": "x", "format": "json"}),
            json!({"protocol": "grpc", "uri": " ", "format": "X"}),
            json!({"protocol": "s3", "uri": "bucket/x", "format": "csv"}),
            json!({"protocol": "http", "uri": "http://x", "format": "Produce"}),
            json!({"protocol": "inline", "uri": "abc", "format": "json"}),
            json!({"protocol": "nfs", "uri": "path", "format": "json"}),
            json!({"protocol": "grpc", "uri": "p:1", "format": "X", "size_bytes": -1}),
            json!({"protocol": "grpc", "uri": "p:1", "format": "X", "checksum": "abc"}),
            json!({"protocol": "grpc", "uri": "p:1", "format": "X", "metadata": null}),
            json!({"protocol": "grpc", "uri": "p:1"}),
            json!([1]),
        ] {
            assert!(DataReference::from_value(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn takes_lax_sizes_and_valid_inline_data() {
        let r = DataReference::from_value(
            json!({"protocol": "inline", "uri": "aGk=", "format": "json", "size_bytes": "2"}),
        )
        .unwrap();
        assert_eq!(r.size_bytes, Some(2));
    }

    #[test]
    fn inputs_are_parsed_in_order_and_a_bad_one_is_bad_usage() {
        let good = r#"{"protocol": "file", "uri": "/d/x.csv", "format": "csv"}"#.to_string();
        let read = parse_inputs(&[good.clone(), good]).unwrap();
        assert_eq!(read.len(), 2);
        let error = parse_inputs(&[r#"{"protocol": "ftp"}"#.to_string()]).unwrap_err();
        assert!(error.is::<Usage>(), "{error:#}");
    }
}
