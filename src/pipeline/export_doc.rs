//! The export's documents built from a use case, as the platform's export
//! tool builds them: nodes in folder order, one operation per connected rpc
//! (every rpc when none is connected), `<node_dir>1` container names,
//! `<use_case_dir>-<ip_address>:latest` images, the port as a string.

use super::export::Exported;
use super::export_proto::{self, ExportedProto};
use super::graph;
use super::usecase::{Node, UseCase};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One file of the export folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    /// Relative path (`blueprint.json`, `microservice/a1.proto`).
    pub path: String,
    /// Its bytes.
    pub contents: Vec<u8>,
}

#[derive(Serialize)]
struct Blueprint {
    nodes: Vec<BlueprintNode>,
    name: String,
    pipeline_id: String,
    creation_date: String,
    #[serde(rename = "type")]
    kind: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct BlueprintNode {
    proto_uri: String,
    image: String,
    node_type: &'static str,
    container_name: String,
    operation_signature_list: Vec<Operation>,
}

#[derive(Serialize)]
struct Operation {
    connected_to: Vec<Target>,
    operation_signature: Signature,
}

#[derive(Serialize)]
struct Target {
    container_name: String,
    operation_signature: OperationName,
}

#[derive(Serialize)]
struct OperationName {
    operation_name: String,
}

#[derive(Serialize)]
struct Signature {
    operation_name: String,
    output_message_name: String,
    input_message_name: String,
    output_message_stream: bool,
    input_message_stream: bool,
}

#[derive(Serialize)]
struct DockerInfo {
    docker_info_list: Vec<DockerEntry>,
}

#[derive(Serialize)]
struct DockerEntry {
    container_name: String,
    ip_address: String,
    port: String,
}

#[derive(Serialize)]
struct Metadata {
    use_case_name: String,
    use_case_directory: String,
    source_path: String,
    services: Vec<MetadataService>,
}

#[derive(Serialize)]
struct MetadataService {
    service_name: String,
    container_name: String,
    image_name: String,
}

/// The container name of a node: `<node_dir>1`.
pub fn container_name(node: &Node) -> String {
    format!("{}1", node.dir_name)
}

/// The image of a node: `<use_case_dir>-<ip_address>:latest` (what docker
/// compose names the image it builds for that service in that folder).
pub fn image(use_case_dir: &str, node: &Node) -> String {
    format!("{use_case_dir}-{}:latest", node.ip_address)
}

/// Builds and validates every document and proto of the export, imports
/// resolved beside each proto and in `includes`.
pub fn build(usecase: &UseCase, includes: &[PathBuf]) -> Result<Exported> {
    let dir_name = use_case_dir_name(usecase)?;
    let protos = export_proto::read_all(usecase, includes)?;
    let mut exported = BTreeMap::new();
    for node in &usecase.nodes {
        exported.insert(
            node.dir_name.clone(),
            export_proto::export(usecase, node, &protos)?,
        );
    }
    let blueprint = blueprint(usecase, &dir_name, &exported);
    let dockerinfo = dockerinfo(usecase);
    let metadata = metadata(usecase, &dir_name);
    let mut files = vec![
        json_file("blueprint.json", &blueprint)?,
        json_file("dockerinfo.json", &dockerinfo)?,
        json_file("generation_metadata.json", &metadata)?,
    ];
    for node in &usecase.nodes {
        files.push(ExportFile {
            path: format!("microservice/{}.proto", container_name(node)),
            contents: exported[&node.dir_name].text.clone().into_bytes(),
        });
    }
    files[3..].sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Exported {
        blueprint: serde_json::to_value(&blueprint)?,
        dockerinfo: serde_json::to_value(&dockerinfo)?,
        files,
    })
}

/// The use-case folder's own name, checked: images are named after it.
pub fn use_case_dir_name(usecase: &UseCase) -> Result<String> {
    let full = usecase
        .dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", usecase.dir.display()))?;
    let name = full
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no usable folder name", full.display()))?
        .to_string();
    if !super::usecase::is_docker_name(&name) {
        bail!(
            "use-case folder `{name}`: images are named `{name}-<ip_address>:latest` and docker image names take only lowercase letters, digits, '-', '_' and '.'; rename the folder"
        );
    }
    Ok(name)
}

fn blueprint(
    usecase: &UseCase,
    dir_name: &str,
    protos: &BTreeMap<String, ExportedProto>,
) -> Blueprint {
    let nodes = usecase
        .nodes
        .iter()
        .map(|node| BlueprintNode {
            proto_uri: format!("microservice/{}.proto", container_name(node)),
            image: image(dir_name, node),
            node_type: graph::node_type(usecase, node).as_str(),
            container_name: container_name(node),
            operation_signature_list: operations(usecase, node, &protos[&node.dir_name]),
        })
        .collect();
    Blueprint {
        nodes,
        name: title_case(&dir_name.replace('_', " ")),
        pipeline_id: uuid::Uuid::new_v4().to_string(),
        creation_date: now(),
        kind: "pipeline-topology/v2",
        version: "2.0",
    }
}

fn operations(usecase: &UseCase, node: &Node, proto: &ExportedProto) -> Vec<Operation> {
    graph::operations(usecase, node)
        .into_iter()
        .map(|op| Operation {
            connected_to: op
                .connected_to
                .iter()
                .map(|(to_node, to_method)| Target {
                    container_name: format!("{to_node}1"),
                    operation_signature: OperationName {
                        operation_name: to_method.to_string(),
                    },
                })
                .collect(),
            operation_signature: Signature {
                operation_name: op.rpc.name.clone(),
                output_message_name: op.rpc.output.clone(),
                input_message_name: proto
                    .inputs
                    .get(&op.rpc.name)
                    .unwrap_or(&op.rpc.input)
                    .clone(),
                output_message_stream: false,
                input_message_stream: false,
            },
        })
        .collect()
}

fn dockerinfo(usecase: &UseCase) -> DockerInfo {
    DockerInfo {
        docker_info_list: usecase
            .nodes
            .iter()
            .map(|node| DockerEntry {
                container_name: container_name(node),
                ip_address: node.ip_address.clone(),
                port: node.port.to_string(),
            })
            .collect(),
    }
}

fn metadata(usecase: &UseCase, dir_name: &str) -> Metadata {
    Metadata {
        use_case_name: dir_name.to_string(),
        use_case_directory: dir_name.to_string(),
        source_path: format!("../../use-cases/{dir_name}"),
        services: usecase
            .nodes
            .iter()
            .map(|node| MetadataService {
                service_name: node.ip_address.clone(),
                container_name: container_name(node),
                image_name: image(dir_name, node),
            })
            .collect(),
    }
}

/// Pretty JSON with a four-space indent (as the platform writes it) and a final newline.
fn json_file(path: &str, value: &impl Serialize) -> Result<ExportFile> {
    let mut contents = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut contents, formatter);
    value
        .serialize(&mut serializer)
        .with_context(|| format!("cannot render {path}"))?;
    contents.push(b'\n');
    Ok(ExportFile {
        path: path.to_string(),
        contents,
    })
}

/// Python's `str.title()`: a letter after a non-letter is upper-cased, any
/// other letter lower-cased (`my-use case2x` → `My-Use Case2X`).
pub fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut after_letter = false;
    for c in s.chars() {
        if after_letter {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        after_letter = c.is_alphabetic();
    }
    out
}

/// The current UTC time as `%Y-%m-%d %H:%M:%S.%f`.
fn now() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_timestamp(since.as_secs(), since.subsec_micros())
}

/// `secs` after the Unix epoch (UTC) and `micros` as `%Y-%m-%d %H:%M:%S.%f`.
pub fn format_timestamp(secs: u64, micros: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{micros:06}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_case_is_pythons() {
        assert_eq!(title_case("germany-node"), "Germany-Node");
        assert_eq!(
            title_case("file based energy pipeline"),
            "File Based Energy Pipeline"
        );
        assert_eq!(title_case("uc2x ab"), "Uc2X Ab");
    }

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(0, 0), "1970-01-01 00:00:00.000000");
        assert_eq!(
            format_timestamp(951_782_400 + 3661, 42),
            "2000-02-29 01:01:01.000042"
        );
        assert_eq!(
            format_timestamp(1_795_000_000, 5),
            "2026-11-18 11:06:40.000005"
        );
    }
}
