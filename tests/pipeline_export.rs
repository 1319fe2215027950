//! `svcgen pipeline export` and `svcgen pipeline compose`: a use case of two
//! generated services and a hand-made three-node fan-in, every field of
//! blueprint, dockerinfo and metadata checked, the exported protos and the
//! ZIP's entries, the orchestrator's models (tests/conformance/
//! blueprint_check.py), each refusal (exit status, one line naming the
//! rule, nothing written), the compose file parsed and checked, and the
//! `--include` folders of `pipeline run` and `pipeline submit`.

mod common;

use common::{assert_orchestrator_accepts, ok, read, refused, svcgen, tree, write};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

// ------------------------------------------------------------- fixtures

/// `uc`: init, two generated services, one connection (the README's steps).
fn two_services(parent: &Path) -> PathBuf {
    ok(parent, &["pipeline", "init", "uc"]);
    ok(
        parent,
        &[
            "new",
            "uc/services/producer",
            "--method",
            "Produce",
            "--no-input",
        ],
    );
    ok(
        parent,
        &[
            "new",
            "uc/services/consumer",
            "--method",
            "Consume",
            "--no-input",
        ],
    );
    ok(
        parent,
        &[
            "pipeline",
            "connect",
            "producer.Produce",
            "consumer.Consume",
            "--dir",
            "uc",
        ],
    );
    parent.join("uc")
}

/// A copy of tests/fixtures/fan_in at `parent/fan_in_demo`.
fn fan_in(parent: &Path) -> PathBuf {
    let from = Path::new(MANIFEST_DIR).join("tests/fixtures/fan_in");
    let root = parent.join("fan_in_demo");
    for entry in walkdir::WalkDir::new(&from) {
        let entry = entry.expect("walk the fan-in fixture");
        let target = root.join(entry.path().strip_prefix(&from).expect("under"));
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).expect("create");
        } else {
            fs::write(&target, fs::read(entry.path()).expect("read")).expect("write");
        }
    }
    root
}

fn json_file(root: &Path, path: &str) -> Value {
    serde_json::from_str(&read(root, path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Checks `pipeline_id` is a uuid4 and `creation_date` has the platform's
/// format, then replaces both with fixed values for comparison.
fn pin_id_and_date(mut blueprint: Value) -> Value {
    let id = blueprint["pipeline_id"].as_str().expect("pipeline_id");
    let parts: Vec<&str> = id.split('-').collect();
    let lengths: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    assert_eq!(lengths, [8, 4, 4, 4, 12], "uuid: {id}");
    assert!(parts[2].starts_with('4'), "a version-4 uuid: {id}");
    assert!(
        id.chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{id}"
    );
    let date = blueprint["creation_date"].as_str().expect("creation_date");
    let shape: String = date
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(
        shape, "9999-99-99 99:99:99.999999",
        "%Y-%m-%d %H:%M:%S.%f: {date}"
    );
    blueprint["pipeline_id"] = json!("ID");
    blueprint["creation_date"] = json!("DATE");
    blueprint
}

fn signature(op: &str, input: &str, output: &str) -> Value {
    json!({
        "operation_name": op,
        "output_message_name": output,
        "input_message_name": input,
        "output_message_stream": false,
        "input_message_stream": false
    })
}

fn target(container: &str, op: &str) -> Value {
    json!({"container_name": container, "operation_signature": {"operation_name": op}})
}

fn node(dir: &str, image: &str, node_type: &str, operations: Vec<Value>) -> Value {
    json!({
        "proto_uri": format!("microservice/{dir}1.proto"),
        "image": image,
        "node_type": node_type,
        "container_name": format!("{dir}1"),
        "operation_signature_list": operations
    })
}

/// The entry names of a ZIP, in order, with their contents.
fn zip_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut archive = zip::ZipArchive::new(file).expect("a ZIP");
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).expect("entry");
            assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).expect("inflate");
            (entry.name().expect("a UTF-8 name").to_string(), bytes)
        })
        .collect()
}

// ------------------------------------------------------ two generated services

#[test]
fn two_generated_services_export_like_the_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let uc = two_services(tmp.path());
    let services_before = tree(&uc.join("services"));
    let out = ok(tmp.path(), &["pipeline", "export", "uc", "--zip"]);
    assert!(out.contains("uc/export.zip"), "{out}");
    common::assert_unchanged(&uc.join("services"), &services_before, "export");

    let export = uc.join("export");
    let names: Vec<String> = tree(&export).into_keys().collect();
    assert_eq!(
        names,
        [
            "blueprint.json",
            "dockerinfo.json",
            "generation_metadata.json",
            "microservice",
            "microservice/consumer1.proto",
            "microservice/producer1.proto"
        ]
    );
    let text = read(&export, "blueprint.json");
    assert!(
        text.starts_with("{\n    \"nodes\": [\n        {\n            \"proto_uri\""),
        "{text}"
    );

    let blueprint = pin_id_and_date(json_file(&export, "blueprint.json"));
    let expected = json!({
        "nodes": [
            node("consumer", "uc-consumer:latest", "DataSink", vec![json!({
                "connected_to": [],
                "operation_signature": signature("Consume", "ProduceResponse", "ConsumeResponse")
            })]),
            node("producer", "uc-producer:latest", "DataSource", vec![json!({
                "connected_to": [target("consumer1", "Consume")],
                "operation_signature": signature("Produce", "ProduceRequest", "ProduceResponse")
            })]),
        ],
        "name": "Uc",
        "pipeline_id": "ID",
        "creation_date": "DATE",
        "type": "pipeline-topology/v2",
        "version": "2.0"
    });
    assert_eq!(blueprint, expected);
    assert_eq!(
        json_file(&export, "dockerinfo.json"),
        json!({"docker_info_list": [
            {"container_name": "consumer1", "ip_address": "consumer", "port": "8080"},
            {"container_name": "producer1", "ip_address": "producer", "port": "8080"}
        ]})
    );
    assert_eq!(
        json_file(&export, "generation_metadata.json"),
        json!({
            "use_case_name": "uc",
            "use_case_directory": "uc",
            "source_path": "../../use-cases/uc",
            "services": [
                {"service_name": "consumer", "container_name": "consumer1", "image_name": "uc-consumer:latest"},
                {"service_name": "producer", "container_name": "producer1", "image_name": "uc-producer:latest"}
            ]
        })
    );

    let consumer = read(&export, "microservice/consumer1.proto");
    assert!(
        consumer.contains("  rpc Consume(ProduceResponse) returns (ConsumeResponse);\n"),
        "{consumer}"
    );
    assert!(
        consumer.contains("// Mirrors producer.ProduceResponse so the portal can connect them.\n"),
        "{consumer}"
    );
    assert!(
        consumer
            .contains("message ProduceResponse {\n  string summary = 1;\n  uint32 steps = 2;\n}\n"),
        "{consumer}"
    );
    let producer = read(&export, "microservice/producer1.proto");
    assert!(
        producer.contains("  rpc Produce(ProduceRequest) returns (ProduceResponse);\n"),
        "{producer}"
    );
    for (name, proto) in [("consumer", &consumer), ("producer", &producer)] {
        for gone in [
            "GetLastResult",
            "message Empty",
            "message LastResult",
            "\nimport ",
        ] {
            assert!(
                !proto.contains(gone),
                "{name}1.proto still has {gone:?}:\n{proto}"
            );
        }
        let markers = proto
            .lines()
            .filter(|l| l.trim_start().starts_with("// svcgen:"));
        assert_eq!(markers.count(), 0, "svcgen's markers go: {proto}");
        let rpcs = proto
            .lines()
            .filter(|l| l.trim_start().starts_with("rpc "))
            .count();
        assert_eq!(rpcs, 1, "{name}1.proto: {proto}");
    }
    assert!(
        !consumer.contains("ConsumeRequest"),
        "the replaced input goes: {consumer}"
    );
    assert!(
        read(&uc, "services/consumer/proto/consumer.proto").contains("rpc Consume(ConsumeRequest)")
    );

    let entries = zip_entries(&uc.join("export.zip"));
    let entry_names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        entry_names,
        [
            "blueprint.json",
            "dockerinfo.json",
            "microservice/consumer1.proto",
            "microservice/producer1.proto"
        ]
    );
    for (name, bytes) in &entries {
        assert_eq!(
            bytes,
            &fs::read(export.join(name)).unwrap(),
            "{name} in the ZIP"
        );
    }
    assert_orchestrator_accepts(&export);
}

#[test]
fn export_again_replaces_the_earlier_export_and_takes_out_and_zip_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let uc = two_services(tmp.path());
    ok(tmp.path(), &["pipeline", "export", "uc"]);
    let first = json_file(&uc.join("export"), "blueprint.json");
    write(
        &uc,
        "export/microservice/stale1.proto",
        "syntax = \"proto3\";\n",
    );
    ok(&uc, &["pipeline", "export"]);
    assert!(!uc.join("export/microservice/stale1.proto").exists());
    assert_ne!(
        first["pipeline_id"],
        json_file(&uc.join("export"), "blueprint.json")["pipeline_id"]
    );
    assert!(!uc.join("export.zip").exists(), "no ZIP unless asked");

    ok(
        tmp.path(),
        &[
            "pipeline",
            "export",
            "uc",
            "--out",
            "elsewhere/out",
            "--zip",
            "portal.zip",
        ],
    );
    assert!(tmp.path().join("elsewhere/out/blueprint.json").is_file());
    assert_eq!(zip_entries(&tmp.path().join("portal.zip")).len(), 4);
    let leftovers: Vec<String> = tree(tmp.path())
        .into_keys()
        .filter(|p| p.contains(".svcgen-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    refused(
        tmp.path(),
        tmp.path(),
        &["pipeline", "export", "uc", "--zip", "uc/services"],
        1,
        &["cannot write the ZIP to uc/services: it is a folder"],
    );
    write(&uc, "mine/notes.txt", "keep");
    refused(
        tmp.path(),
        tmp.path(),
        &["pipeline", "export", "uc", "--out", "uc/mine"],
        1,
        &["refusing to replace", "notes.txt"],
    );
}

#[test]
fn refuses_a_zip_inside_the_export_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let uc = two_services(tmp.path());
    for (first, zip) in [
        (false, "uc/export/portal.zip"),
        (true, "uc/export/portal.zip"),
        (true, "./uc/services/../export/microservice/p.zip"),
        (true, "uc/export"),
    ] {
        if first {
            ok(tmp.path(), &["pipeline", "export", "uc"]);
        }
        let err = refused(
            tmp.path(),
            tmp.path(),
            &["pipeline", "export", "uc", "--zip", zip],
            1,
            &[&format!("cannot write the ZIP to {zip}: it")],
        );
        if zip != "uc/export" {
            assert!(err.contains("inside the export folder uc/export"), "{err}");
        }
    }
    let blueprint = read(&uc.join("export"), "blueprint.json");
    ok(
        &uc,
        &[
            "pipeline",
            "export",
            "--out",
            "portal/export",
            "--zip",
            "portal/export.zip",
        ],
    );
    assert_eq!(zip_entries(&uc.join("portal/export.zip")).len(), 4);
    assert_eq!(read(&uc.join("export"), "blueprint.json"), blueprint);
}

// ------------------------------------------------------ fan-in

#[test]
fn hand_made_fan_in_exports_every_field() {
    let tmp = tempfile::tempdir().unwrap();
    let uc = fan_in(tmp.path());
    ok(tmp.path(), &["pipeline", "export", "fan_in_demo", "--zip"]);
    let export = uc.join("export");
    let blueprint = pin_id_and_date(json_file(&export, "blueprint.json"));
    let to_sink = || vec![target("c_sink1", "Combine")];
    let expected = json!({
        "nodes": [
            node("a_source", "fan_in_demo-a-source:latest", "DataSource", vec![
                json!({"connected_to": to_sink(), "operation_signature": signature("Measure", "MeasureRequest", "Reading")}),
                json!({"connected_to": to_sink(), "operation_signature": signature("Resample", "MeasureRequest", "Reading")}),
            ]),
            node("b_source", "fan_in_demo-b-source:latest", "DataSource", vec![
                json!({"connected_to": to_sink(), "operation_signature": signature("Read", "ReadRequest", "Reading")}),
            ]),
            node("c_sink", "fan_in_demo-c-sink:latest", "DataSink", vec![
                json!({"connected_to": [], "operation_signature": signature("Combine", "Reading", "Summary")}),
            ]),
        ],
        "name": "Fan In Demo",
        "pipeline_id": "ID",
        "creation_date": "DATE",
        "type": "pipeline-topology/v2",
        "version": "2.0"
    });
    assert_eq!(blueprint, expected);
    assert_eq!(
        json_file(&export, "dockerinfo.json"),
        json!({"docker_info_list": [
            {"container_name": "a_source1", "ip_address": "a-source", "port": "8080"},
            {"container_name": "b_source1", "ip_address": "b-source", "port": "9000"},
            {"container_name": "c_sink1", "ip_address": "c-sink", "port": "8082"}
        ]})
    );
    assert_eq!(
        json_file(&export, "generation_metadata.json")["services"],
        json!([
            {"service_name": "a-source", "container_name": "a_source1", "image_name": "fan_in_demo-a-source:latest"},
            {"service_name": "b-source", "container_name": "b_source1", "image_name": "fan_in_demo-b-source:latest"},
            {"service_name": "c-sink", "container_name": "c_sink1", "image_name": "fan_in_demo-c-sink:latest"}
        ])
    );
    // A source is copied with each rpc alone on its line (a trailing comment
    // moves above it); the sink's input mirrors the sources' output, with
    // the enum it uses, and its own request (and its comment) goes.
    let a_source = read(&uc, "services/a_source/proto/a_source.proto");
    assert_eq!(
        read(&export, "microservice/a_source1.proto"),
        a_source.replace(
            "  rpc Resample(MeasureRequest) returns (Reading); // same output, so both can feed the sink\n",
            "  // same output, so both can feed the sink\n  rpc Resample(MeasureRequest) returns (Reading);\n"
        )
    );
    assert_ne!(read(&export, "microservice/a_source1.proto"), a_source);
    assert_eq!(
        read(&export, "microservice/c_sink1.proto"),
        "syntax = \"proto3\";\n\npackage sink;\n\nmessage Summary {\n  double total = 1;\n  uint32 count = 2;\n}\n\n\
         service CSink {\n  rpc Combine(Reading) returns (Summary);\n}\n\n\
         enum Unit {\n  UNIT_UNSPECIFIED = 0;\n  WATT = 1;\n}\n\n\
         // Mirrors a_source.Reading so the portal can connect them.\n// One measurement.\n\
         message Reading {\n  double value = 1;\n  Unit unit = 2;\n}\n"
    );
    let entries = zip_entries(&uc.join("export.zip"));
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "blueprint.json",
            "dockerinfo.json",
            "microservice/a_source1.proto",
            "microservice/b_source1.proto",
            "microservice/c_sink1.proto"
        ]
    );
    assert_orchestrator_accepts(&export);
}

// ------------------------------------------------------ refusals

/// Edits a fresh fan-in copy with `edit`, then expects export to refuse it.
fn export_refused(edit: impl FnOnce(&Path), code: i32, needles: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let uc = fan_in(tmp.path());
    edit(&uc);
    refused(
        tmp.path(),
        tmp.path(),
        &["pipeline", "export", "fan_in_demo", "--zip"],
        code,
        needles,
    );
}

fn edit_file(root: &Path, path: &str, from: &str, to: &str) {
    let text = read(root, path);
    assert!(text.contains(from), "{path} lacks {from:?}");
    write(root, path, &text.replacen(from, to, 1));
}

const CONNECTIONS: &str = "connections.json";
const A_PROTO: &str = "services/a_source/proto/a_source.proto";

#[test]
fn refuses_a_cycle() {
    export_refused(
        |uc| {
            edit_file(uc, CONNECTIONS, "\n    ]", ",\n      {\"from_service\": \"c_sink\", \"from_method\": \"Combine\", \"to_service\": \"b_source\", \"to_method\": \"Read\"}\n    ]");
        },
        1,
        &[
            "node `c_sink`, operation `Combine`",
            "cycle (b_source.Read -> c_sink.Combine -> b_source.Read)",
        ],
    );
}

#[test]
fn nodes_feeding_each_other_through_different_operations_export() {
    // The orchestrator's tasks are node operations: b_source.Read ->
    // c_sink.Combine -> b_source.Calibrate has no cycle.
    let tmp = tempfile::tempdir().unwrap();
    let uc = fan_in(tmp.path());
    ok(
        tmp.path(),
        &[
            "pipeline",
            "connect",
            "c_sink.Combine",
            "b_source.Calibrate",
            "--dir",
            "fan_in_demo",
        ],
    );
    ok(tmp.path(), &["pipeline", "export", "fan_in_demo"]);
    let export = uc.join("export");
    let blueprint = json_file(&export, "blueprint.json");
    let b = &blueprint["nodes"][1];
    assert_eq!(b["container_name"], "b_source1");
    assert_eq!(b["node_type"], "MLModel");
    let ops: Vec<(&str, &str)> = b["operation_signature_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| {
            (
                op["operation_signature"]["operation_name"]
                    .as_str()
                    .unwrap(),
                op["operation_signature"]["input_message_name"]
                    .as_str()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(ops, [("Read", "ReadRequest"), ("Calibrate", "Summary")]);
    assert_eq!(
        blueprint["nodes"][2]["operation_signature_list"][0]["connected_to"],
        json!([target("b_source1", "Calibrate")])
    );
    assert_orchestrator_accepts(&export);
}

#[test]
fn refuses_an_unknown_node() {
    export_refused(
        |uc| {
            edit_file(
                uc,
                CONNECTIONS,
                "\"to_service\": \"c-sink\"",
                "\"to_service\": \"d-sink\"",
            )
        },
        1,
        &[
            "node `d-sink`",
            "unknown node",
            "b_source.Read -> d-sink.Combine",
        ],
    );
}

#[test]
fn refuses_an_unknown_rpc() {
    export_refused(
        |uc| {
            edit_file(
                uc,
                CONNECTIONS,
                "\"from_method\": \"Read\"",
                "\"from_method\": \"Fetch\"",
            )
        },
        1,
        &[
            "node `b_source`, operation `Fetch`",
            "unknown rpc (the proto declares: Read, Calibrate)",
        ],
    );
}

#[test]
fn refuses_two_protos_in_a_node() {
    export_refused(
        |uc| {
            write(
                uc,
                "services/b_source/proto/extra.proto",
                "syntax = \"proto3\";\n",
            )
        },
        1,
        &[
            "node `b_source`",
            "two protos in a node (b_source.proto and extra.proto)",
        ],
    );
}

#[test]
fn refuses_a_streaming_rpc() {
    export_refused(
        |uc| {
            edit_file(
                uc,
                A_PROTO,
                "rpc Measure(MeasureRequest) returns (Reading)",
                "rpc Measure(MeasureRequest) returns (stream Reading)",
            )
        },
        1,
        &[
            "node `a_source`, operation `Measure`",
            "streaming rpc (line 21)",
        ],
    );
}

#[test]
fn refuses_a_multi_line_rpc() {
    export_refused(
        |uc| {
            edit_file(
                uc,
                A_PROTO,
                "rpc Measure(MeasureRequest) returns",
                "rpc Measure(MeasureRequest)\n      returns",
            )
        },
        1,
        &[
            "node `a_source`, operation `Measure`",
            "multi-line rpc (line 21)",
            "rpc Measure(MeasureRequest) returns (Reading);",
        ],
    );
}

#[test]
fn refuses_an_rpc_with_an_options_block() {
    export_refused(
        |uc| {
            edit_file(
                uc,
                A_PROTO,
                "rpc Measure(MeasureRequest) returns (Reading);",
                "rpc Measure(MeasureRequest) returns (Reading) {}",
            )
        },
        1,
        &[
            "node `a_source`, operation `Measure`",
            "rpc with an options block (line 21)",
        ],
    );
}

#[test]
fn refuses_an_import_it_cannot_find() {
    export_refused(
        |uc| {
            edit_file(
                uc,
                A_PROTO,
                "package sensors.a;\n",
                "package sensors.a;\nimport \"google/protobuf/empty.proto\";\n",
            )
        },
        1,
        &[
            "node `a_source`",
            "imports \"google/protobuf/empty.proto\", found in none of",
            "--include DIR",
            "self-contained",
        ],
    );
}

#[test]
fn refuses_an_include_that_is_not_a_folder() {
    let tmp = tempfile::tempdir().unwrap();
    fan_in(tmp.path());
    write(tmp.path(), "labels.proto", "syntax = \"proto3\";\n");
    for include in ["nowhere", "labels.proto"] {
        refused(
            tmp.path(),
            tmp.path(),
            &["pipeline", "export", "fan_in_demo", "--include", include],
            1,
            &[&format!("--include {include} is not a directory")],
        );
    }
}

#[test]
fn refuses_upstreams_sending_different_messages() {
    export_refused(
        |uc| {
            edit_file(
                uc,
                "services/b_source/proto/b_source.proto",
                "rpc Read(ReadRequest) returns (Reading)",
                "rpc Read(ReadRequest) returns (CalibrateResponse)",
            )
        },
        1,
        &[
            "node `c_sink`, operation `Combine`",
            "different messages",
            "a_source.Measure",
            "b_source.Read",
        ],
    );
}

#[test]
fn refuses_a_duplicate_ip_address_and_a_bad_port() {
    export_refused(
        |uc| {
            edit_file(
                uc,
                CONNECTIONS,
                "\"ip_address\": \"b-source\"",
                "\"ip_address\": \"a-source\"",
            )
        },
        1,
        &["node `b_source`", "duplicate ip_address `a-source`"],
    );
    export_refused(
        |uc| edit_file(uc, CONNECTIONS, "\"port\": \"9000\"", "\"port\": 70000"),
        1,
        &[
            "node `b_source`",
            "port 70000 must be a number from 1 to 65535",
        ],
    );
}

#[test]
fn refuses_an_unmapped_node_and_a_missing_use_case() {
    export_refused(
        |uc| {
            write(
                uc,
                "services/d_extra/proto/d_extra.proto",
                "syntax = \"proto3\";\n",
            )
        },
        1,
        &["node `d_extra`", "not in service_mapping"],
    );
    let tmp = tempfile::tempdir().unwrap();
    refused(
        tmp.path(),
        tmp.path(),
        &["pipeline", "export", "nowhere"],
        1,
        &["nowhere has no connections.json"],
    );
}

#[test]
fn bad_usage_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let output = svcgen(tmp.path(), &["pipeline", "export", "a", "b"]);
    assert_eq!(output.status.code(), Some(2), "{}", common::stderr(&output));
    assert!(tree(tmp.path()).is_empty());
}

// ------------------------------------------------------ compose

#[test]
fn compose_runs_every_node_on_the_platform_network() {
    let tmp = tempfile::tempdir().unwrap();
    let uc = two_services(tmp.path());
    ok(
        tmp.path(),
        &[
            "new",
            "uc/services/scorer",
            "--method",
            "Score",
            "--http-port",
            "9000",
            "--grpc-port",
            "9001",
            "--grpc-host",
            "scorer.internal",
            "--no-input",
        ],
    );
    ok(
        tmp.path(),
        &[
            "pipeline",
            "connect",
            "consumer.Consume",
            "scorer.Score",
            "--dir",
            "uc",
        ],
    );
    let out = ok(tmp.path(), &["pipeline", "compose", "uc"]);
    assert!(out.contains("uc/docker-compose.yml (3 services)"), "{out}");
    // Host ports in pipeline order, services in that order in the file.
    let text = read(&uc, "docker-compose.yml");
    let at = |name: &str| text.find(&format!("\n  \"{name}\":\n")).expect(name);
    assert!(
        at("producer") < at("consumer") && at("consumer") < at("scorer.internal"),
        "{text}"
    );
    let parsed = common::run_conformance_script("yaml_to_json.py", &uc.join("docker-compose.yml"));
    assert!(parsed.status.success(), "{}", common::stderr(&parsed));
    let compose: Value = serde_json::from_slice(&parsed.stdout).expect("JSON");
    let service = |name: &str, dir: &str, http: (u16, u16), grpc: (u16, u16)| {
        json!({
            "image": format!("uc-{name}:latest"),
            "build": {"context": format!("./services/{dir}"), "dockerfile": "Dockerfile"},
            "ports": [format!("{}:{}", http.0, http.1), format!("{}:{}", grpc.0, grpc.1)],
            "environment": [
                format!("PORT={}", http.1),
                format!("GRPC_PORT={}", grpc.1),
                format!("GRPC_HOST={name}"),
                "SERVICE_API_KEY",
                "DATA_PORT_AUTH"
            ]
        })
    };
    assert_eq!(
        compose,
        json!({
            "services": {
                "producer": service("producer", "producer", (8080, 8080), (50051, 50051)),
                "consumer": service("consumer", "consumer", (8081, 8080), (50052, 50051)),
                "scorer.internal": service("scorer.internal", "scorer", (8082, 9000), (50053, 9001)),
            },
            "networks": {"default": {"name": "ai-effect-services", "external": true}}
        })
    );
    // Elsewhere, the build contexts are relative to the file's folder.
    ok(&uc, &["pipeline", "compose", "--out", "deploy/compose.yml"]);
    let text = read(&uc, "deploy/compose.yml");
    assert!(
        text.contains("      context: \"../services/consumer\"\n"),
        "{text}"
    );
    // Each build context holds the Dockerfile; the images are the export's.
    for dir in ["consumer", "producer", "scorer"] {
        assert!(uc.join("services").join(dir).join("Dockerfile").is_file());
    }
    ok(tmp.path(), &["pipeline", "export", "uc"]);
    let blueprint = json_file(&uc.join("export"), "blueprint.json");
    let images: Vec<&str> = blueprint["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        images,
        [
            "uc-consumer:latest",
            "uc-producer:latest",
            "uc-scorer.internal:latest"
        ]
    );
}

#[test]
fn compose_refuses_a_node_without_a_dockerfile() {
    let tmp = tempfile::tempdir().unwrap();
    fan_in(tmp.path());
    refused(
        tmp.path(),
        tmp.path(),
        &["pipeline", "compose", "fan_in_demo"],
        1,
        &["node `a_source`", "no Dockerfile"],
    );
}

#[test]
fn refuses_mirrors_that_do_not_fit() {
    export_refused(
        |uc| {
            edit_file(
                uc,
                "services/c_sink/proto/c_sink.proto",
                "message Summary {",
                "message Reading {\n  string other = 1;\n}\n\nmessage Summary {",
            )
        },
        1,
        &[
            "node `c_sink`, operation `Combine`",
            "its input must be named `Reading` like the output of `a_source`",
            "a different `Reading` is already in the exported proto",
        ],
    );
    export_refused(
        |uc| {
            edit_file(
                uc,
                "services/b_source/proto/b_source.proto",
                "  Unit unit = 2;\n",
                "  Unit unit = 2;\n  string sensor = 3;\n",
            )
        },
        1,
        &[
            "node `c_sink`, operation `Combine`",
            "`a_source.Measure` and `b_source.Read` both send Reading but define it differently",
        ],
    );
}

#[test]
fn imports_are_inlined_from_beside_the_proto_or_include_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let uc = fan_in(tmp.path());
    let sink = "services/c_sink/proto/c_sink.proto";
    edit_file(
        &uc,
        sink,
        "package sink;\n",
        "package sink;\n\nimport \"units/scale.proto\";\nimport \"labels.proto\";\n",
    );
    edit_file(
        &uc,
        sink,
        "  uint32 count = 2;\n",
        "  uint32 count = 2;\n  units.Scale scale = 3;\n  Label label = 4;\n",
    );
    write(
        &uc,
        "services/c_sink/proto/units/scale.proto",
        "syntax = \"proto3\";\npackage units;\n\nmessage Unused {}\n\n// How readings are scaled.\nmessage Scale {\n  double factor = 1;\n  units.Base base = 2;\n}\n\nenum Base {\n  BASE_UNSPECIFIED = 0;\n}\n",
    );
    write(
        &uc,
        "shared/labels.proto",
        "syntax = \"proto3\";\npackage sink;\n\nmessage Label { string text = 1; }\n",
    );
    let services_before = tree(&uc.join("services"));
    refused(
        tmp.path(),
        tmp.path(),
        &["pipeline", "export", "fan_in_demo"],
        1,
        &[
            "node `c_sink`",
            "imports \"labels.proto\", found in none of",
            "--include DIR",
        ],
    );
    ok(
        tmp.path(),
        &[
            "pipeline",
            "export",
            "fan_in_demo",
            "--include",
            "fan_in_demo/shared",
        ],
    );
    common::assert_unchanged(&uc.join("services"), &services_before, "export");
    let exported = read(&uc.join("export"), "microservice/c_sink1.proto");
    assert_eq!(
        exported,
        "syntax = \"proto3\";\n\npackage sink;\n\n\
         // How readings are scaled.\nmessage Scale {\n  double factor = 1;\n  Base base = 2;\n}\n\n\
         enum Base {\n  BASE_UNSPECIFIED = 0;\n}\n\n\
         message Label { string text = 1; }\n\n\
         message Summary {\n  double total = 1;\n  uint32 count = 2;\n  Scale scale = 3;\n  Label label = 4;\n}\n\n\
         service CSink {\n  rpc Combine(Reading) returns (Summary);\n}\n\n\
         enum Unit {\n  UNIT_UNSPECIFIED = 0;\n  WATT = 1;\n}\n\n\
         // Mirrors a_source.Reading so the portal can connect them.\n// One measurement.\n\
         message Reading {\n  double value = 1;\n  Unit unit = 2;\n}\n"
    );
    assert_orchestrator_accepts(&uc.join("export"));
}

#[test]
fn run_and_submit_take_include_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let uc = fan_in(tmp.path());
    let sink = "services/c_sink/proto/c_sink.proto";
    edit_file(
        &uc,
        sink,
        "package sink;\n",
        "package sink;\n\nimport \"labels.proto\";\n",
    );
    edit_file(
        &uc,
        sink,
        "  uint32 count = 2;\n",
        "  uint32 count = 2;\n  Label label = 3;\n",
    );
    write(
        &uc,
        "shared/labels.proto",
        "syntax = \"proto3\";\npackage sink;\n\nmessage Label { string text = 1; }\n",
    );
    // Nothing listens on port 1: past the export, each command fails reaching it.
    let nowhere = [
        "--at",
        "a_source=http://127.0.0.1:1",
        "--at",
        "b_source=http://127.0.0.1:1",
        "--at",
        "c_sink=http://127.0.0.1:1",
    ];
    let commands: [(&[&str], &str); 2] = [
        (
            &["pipeline", "run", "fan_in_demo"],
            "cannot reach http://127.0.0.1:1/control/execute",
        ),
        (
            &[
                "pipeline",
                "submit",
                "fan_in_demo",
                "--api",
                "http://127.0.0.1:1",
            ],
            "cannot reach http://127.0.0.1:1/workflows",
        ),
    ];
    for (command, unreachable) in commands {
        let mut args = command.to_vec();
        if command[1] == "run" {
            args.extend(nowhere);
        }
        refused(
            tmp.path(),
            &uc,
            &args,
            1,
            &[
                "node `c_sink`",
                "imports \"labels.proto\", found in none of",
            ],
        );
        args.extend(["--include", "fan_in_demo/shared"]);
        let output = svcgen(tmp.path(), &args);
        let err = common::stderr(&output);
        assert_eq!(output.status.code(), Some(1), "svcgen {args:?}: {err}");
        assert!(!err.contains("found in none of"), "svcgen {args:?}: {err}");
        assert!(err.contains(unreachable), "svcgen {args:?}: {err}");
    }
}

#[test]
fn statements_sharing_lines_are_split_or_refused() {
    // Rpcs and definitions sharing lines with what the export keeps: the
    // kept text stays, each rpc alone on its line, inside its service.
    let tmp = tempfile::tempdir().unwrap();
    let uc = fan_in(tmp.path());
    let sink = "services/c_sink/proto/c_sink.proto";
    write(
        &uc,
        sink,
        "syntax = \"proto3\";\n\npackage sink;\n\n\
         // Nothing.\nmessage Empty {} message Summary { double total = 1; uint32 count = 2; }\n\
         message LastResult { string json = 1; } enum Level { LOW = 0; }\n\
         /* Replaced by Reading. */ message CombineRequest { string label = 1; }\n\n\
         service CSink { rpc Combine(CombineRequest) returns (Summary); // combines\n  \
         rpc GetLastResult(Empty) returns (LastResult); }\n",
    );
    ok(tmp.path(), &["pipeline", "export", "fan_in_demo"]);
    let exported = read(&uc.join("export"), "microservice/c_sink1.proto");
    assert_eq!(
        exported,
        "syntax = \"proto3\";\n\npackage sink;\n\n\
         message Summary { double total = 1; uint32 count = 2; }\n\
         enum Level { LOW = 0; }\n\n\
         service CSink {\n  // combines\n  rpc Combine(Reading) returns (Summary);\n}\n\n\
         enum Unit {\n  UNIT_UNSPECIFIED = 0;\n  WATT = 1;\n}\n\n\
         // Mirrors a_source.Reading so the portal can connect them.\n// One measurement.\n\
         message Reading {\n  double value = 1;\n  Unit unit = 2;\n}\n"
    );
    assert_orchestrator_accepts(&uc.join("export"));

    let tmp = tempfile::tempdir().unwrap();
    let uc = fan_in(tmp.path());
    edit_file(
        &uc,
        sink,
        "service CSink {\n  rpc Combine(CombineRequest) returns (Summary);\n}\n",
        "service CSink { rpc Combine(CombineRequest) returns (Summary); }\n",
    );
    ok(tmp.path(), &["pipeline", "export", "fan_in_demo"]);
    let exported = read(&uc.join("export"), "microservice/c_sink1.proto");
    assert!(
        exported.contains("\nservice CSink {\n  rpc Combine(Reading) returns (Summary);\n}\n"),
        "{exported}"
    );

    // Two rpcs on one line, two dropped definitions on one (last) line.
    export_refused(
        |uc| {
            edit_file(
                uc,
                sink,
                "service CSink {\n  rpc Combine(CombineRequest) returns (Summary);\n}\n",
                "service CSink { rpc Combine(CombineRequest) returns (Summary); rpc GetLastResult(CombineRequest) returns (Summary); }\n",
            )
        },
        1,
        &["node `c_sink`, operation `Combine`: rpc Combine shares line 16 with rpc GetLastResult; the platform's importer reads one rpc per line"],
    );
    export_refused(
        |uc| {
            edit_file(
                uc,
                sink,
                "  rpc Combine(CombineRequest) returns (Summary);\n}\n",
                "  rpc Combine(CombineRequest) returns (Summary);\n  rpc GetLastResult(Empty) returns (LastResult);\n}\nmessage Empty {} message LastResult {}",
            )
        },
        1,
        &["node `c_sink`: `message Empty` and `message LastResult` share a line in fan_in_demo/services/c_sink/proto/c_sink.proto and the export must change one of them; put each on its own line"],
    );
}
