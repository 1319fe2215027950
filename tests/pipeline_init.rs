//! Starting and wiring a use case: `svcgen new` into `services/`,
//! `svcgen pipeline init` and `svcgen pipeline connect`, their output in
//! the platform's `connections.json` format, and their refusals.

mod common;

use common::{manifest, ok, read, refused, write};
use serde_json::{json, Value};
use std::path::Path;

fn connections(uc: &Path) -> Value {
    serde_json::from_str(&read(uc, "connections.json")).expect("connections.json is JSON")
}

fn new_service(parent: &Path, path: &str, method: &str, extra: &[&str]) {
    let mut args = vec!["new", path, "--method", method];
    args.extend_from_slice(extra);
    args.push("--no-input");
    ok(parent, &args);
}

#[test]
fn new_places_a_service_in_a_use_case_folder() {
    let tmp = tempfile::tempdir().unwrap();
    new_service(
        tmp.path(),
        "my-usecase/services/data_analyzer",
        "Analyze",
        &[],
    );
    let root = tmp.path().join("my-usecase/services/data_analyzer");
    let table = manifest(&root);
    assert_eq!(table["service"]["name"].as_str(), Some("data-analyzer"));
    assert_eq!(
        table["service"]["grpc_host"].as_str(),
        Some("data-analyzer")
    );
    assert_eq!(
        table["service"]["proto_file"].as_str(),
        Some("proto/data_analyzer.proto")
    );
    assert!(read(&root, "Dockerfile").contains("GRPC_HOST=data-analyzer"));
}

#[test]
fn init_starts_an_empty_use_case() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(tmp.path(), &["pipeline", "init", "energy_use-case"]);
    assert!(
        out.contains("Started use case \"Energy Use Case\""),
        "{out}"
    );
    let uc = tmp.path().join("energy_use-case");
    assert!(uc.join("services").is_dir());
    assert_eq!(
        read(&uc, "connections.json"),
        "{\n  \"pipeline\": {\n    \"name\": \"Energy Use Case\",\n    \"service_mapping\": {},\n    \"connections\": []\n  }\n}\n"
    );
}

#[test]
fn init_in_the_current_folder_with_a_name() {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["pipeline", "init", "--name", "Grid Pipeline"]);
    assert_eq!(
        connections(tmp.path()),
        json!({"pipeline": {"name": "Grid Pipeline", "service_mapping": {}, "connections": []}})
    );
}

#[test]
fn init_maps_the_services_already_there() {
    let tmp = tempfile::tempdir().unwrap();
    new_service(tmp.path(), "uc/services/producer", "Produce", &[]);
    new_service(
        tmp.path(),
        "uc/services/report_builder",
        "Build",
        &["--http-port", "9000", "--grpc-host", "reports.internal"],
    );
    write(
        &tmp.path().join("uc"),
        "services/python_node/proto/python_node.proto",
        "syntax = \"proto3\";\n",
    );
    write(
        &tmp.path().join("uc"),
        "services/no_proto/README.md",
        "not a node\n",
    );
    let out = ok(tmp.path(), &["pipeline", "init", "uc"]);
    assert!(out.contains("Mapped: producer -> producer:8080, python_node -> python-node:8080, report_builder -> reports.internal:9000"), "{out}");
    assert_eq!(
        connections(&tmp.path().join("uc"))["pipeline"]["service_mapping"],
        json!({
            "producer": {"ip_address": "producer", "port": 8080},
            "python_node": {"ip_address": "python-node", "port": 8080},
            "report_builder": {"ip_address": "reports.internal", "port": 9000}
        })
    );
}

#[test]
fn init_refuses_an_existing_use_case_or_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["pipeline", "init", "uc"]);
    refused(
        tmp.path(),
        tmp.path(),
        &["pipeline", "init", "uc"],
        1,
        &["already has a connections.json"],
    );
    write(tmp.path(), "afile", "x");
    refused(
        tmp.path(),
        tmp.path(),
        &["pipeline", "init", "afile"],
        1,
        &["not a folder"],
    );
    refused(
        tmp.path(),
        tmp.path(),
        &["pipeline", "init", "x", "--name", " "],
        2,
        &["--name must not be empty"],
    );
}

#[test]
fn connect_adds_the_connection_and_maps_new_nodes() {
    let tmp = tempfile::tempdir().unwrap();
    let uc = tmp.path().join("uc");
    new_service(tmp.path(), "uc/services/producer", "Produce", &[]);
    new_service(
        tmp.path(),
        "uc/services/consumer",
        "Consume",
        &["--method", "Audit"],
    );
    new_service(
        tmp.path(),
        "uc/services/auditor",
        "Inspect",
        &["--http-port", "9100"],
    );
    // Written by hand, without the services (init would map them).
    write(
        &uc,
        "connections.json",
        "{\"pipeline\": {\"name\": \"Uc\", \"service_mapping\": {}, \"connections\": []}}",
    );
    let out = ok(
        tmp.path(),
        &[
            "pipeline",
            "connect",
            "producer.Produce",
            "consumer.Consume",
            "--dir",
            "uc",
        ],
    );
    assert!(
        out.contains("Connected producer.Produce -> consumer.Consume"),
        "{out}"
    );
    assert!(
        out.contains(
            "Mapped: auditor -> auditor:9100, consumer -> consumer:8080, producer -> producer:8080"
        ),
        "{out}"
    );
    // From inside the use case, by ip_address, and a whole-node source.
    let text = read(&uc, "connections.json")
        .replacen(
            "\"name\": \"Uc\",",
            "\"name\": \"Uc\",\n    \"description\": \"kept\",",
            1,
        )
        .replacen(
            "\"to_method\": \"Consume\"",
            "\"to_method\": \"Consume\",\n        \"note\": {\"kept\": true}",
            1,
        );
    write(&uc, "connections.json", &text);
    ok(
        &uc.join("services"),
        &["pipeline", "connect", "consumer", "auditor.Inspect"],
    );
    assert_eq!(
        connections(&uc),
        json!({"pipeline": {
            "name": "Uc",
            "description": "kept",
            "service_mapping": {
                "auditor": {"ip_address": "auditor", "port": 9100},
                "consumer": {"ip_address": "consumer", "port": 8080},
                "producer": {"ip_address": "producer", "port": 8080}
            },
            "connections": [
                {"from_service": "producer", "from_method": "Produce", "to_service": "consumer", "to_method": "Consume", "note": {"kept": true}},
                {"from_service": "consumer", "to_service": "auditor", "to_method": "Inspect"}
            ]
        }})
    );
    // The consumer's every operation feeds the auditor: Consume (named as a
    // target) only, as the platform's export reads it.
    ok(tmp.path(), &["pipeline", "export", "uc"]);
    let blueprint: Value = serde_json::from_str(&read(&uc, "export/blueprint.json")).unwrap();
    let consumer = &blueprint["nodes"][1];
    assert_eq!(consumer["node_type"], "MLModel");
    let ops: Vec<&str> = consumer["operation_signature_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| {
            op["operation_signature"]["operation_name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(ops, ["Consume"]);
}

#[test]
fn connect_refuses_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["pipeline", "init", "uc"]);
    new_service(tmp.path(), "uc/services/producer", "Produce", &[]);
    new_service(tmp.path(), "uc/services/consumer", "Consume", &[]);
    ok(
        tmp.path(),
        &[
            "pipeline",
            "connect",
            "producer.Produce",
            "consumer.Consume",
            "--dir",
            "uc",
        ],
    );
    let root = tmp.path();
    let connect = |from: &'static str, to: &'static str| -> Vec<&'static str> {
        vec!["pipeline", "connect", from, to, "--dir", "uc"]
    };
    refused(
        root,
        root,
        &connect("producer.Produce", "consumer.Consume"),
        1,
        &[
            "node `producer`, operation `Produce`",
            "duplicate connection to `consumer.Consume`",
        ],
    );
    refused(
        root,
        root,
        &connect("consumer.Consume", "producer.Produce"),
        1,
        &[
            "node `consumer`, operation `Consume`",
            "makes a cycle (producer.Produce -> consumer.Consume -> producer.Produce)",
        ],
    );
    refused(
        root,
        root,
        &connect("producer.Produce", "producer.Produce"),
        1,
        &["makes a cycle (producer.Produce -> producer.Produce)"],
    );
    refused(
        root,
        root,
        &connect("nobody.Run", "consumer.Consume"),
        1,
        &["node `nobody`", "unknown node"],
    );
    refused(
        root,
        root,
        &connect("producer.Produce", "consumer.Eat"),
        1,
        &[
            "node `consumer`, operation `Eat`",
            "unknown rpc (the proto declares: Consume)",
        ],
    );
    refused(
        root,
        root,
        &connect("producer.GetLastResult", "consumer.Consume"),
        1,
        &["operation `GetLastResult`", "internal to svcgen's runtime"],
    );
    refused(
        root,
        root,
        &connect("producer", "consumer.Consume"),
        1,
        &["some of its connections name from_method and some do not"],
    );
    refused(
        root,
        root,
        &connect("producer.Produce", "consumer"),
        2,
        &["invalid endpoint \"consumer\"", "NODE.Rpc"],
    );
    refused(
        root,
        root,
        &connect("producer.", "consumer.Consume"),
        2,
        &["invalid endpoint"],
    );
    refused(
        root,
        root,
        &["pipeline", "connect", "a.B", "c.D", "--dir", "elsewhere"],
        1,
        &["elsewhere has no connections.json", "svcgen pipeline init"],
    );
}

#[test]
fn new_in_a_use_case_maps_the_node() {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["pipeline", "init", "uc"]);
    let uc = tmp.path().join("uc");
    let out = ok(
        tmp.path(),
        &[
            "new",
            "uc/services/report_builder",
            "--method",
            "Build",
            "--http-port",
            "9000",
            "--grpc-host",
            "reports",
            "--no-input",
        ],
    );
    assert!(
        out.contains("Mapped report_builder -> reports:9000 in uc/connections.json"),
        "{out}"
    );
    // From inside services/, and a dry run maps nothing.
    let out = ok(
        &uc.join("services"),
        &["new", "scorer", "--method", "Score", "--no-input"],
    );
    assert!(out.contains("Mapped scorer -> scorer:8080 in "), "{out}");
    let out = ok(
        tmp.path(),
        &["new", "uc/services/dry", "--dry-run", "--no-input"],
    );
    assert!(!out.contains("Mapped"), "{out}");
    assert_eq!(
        connections(&uc)["pipeline"]["service_mapping"],
        json!({
            "report_builder": {"ip_address": "reports", "port": 9000},
            "scorer": {"ip_address": "scorer", "port": 8080}
        })
    );
    // A broken connections.json does not stop `new`: the project is written.
    write(&uc, "connections.json", "{");
    let out = ok(tmp.path(), &["new", "uc/services/late", "--no-input"]);
    assert!(out.contains("note: late is not mapped in "), "{out}");
    assert!(
        out.contains("uc/connections.json is not in the platform's format"),
        "{out}"
    );
    assert!(uc.join("services/late/svcgen.toml").is_file());
    assert_eq!(read(&uc, "connections.json"), "{");
}
