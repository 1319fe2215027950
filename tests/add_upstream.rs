//! End-to-end tests of `svcgen add-upstream` on projects made by `svcgen
//! new`: an upstream made by svcgen, a platform-style Python producer whose
//! proto imports a shared one, every refusal (exit status, one-line
//! message, and a tree left exactly as it was), `--dry-run`, and rustfmt on
//! the regenerated files. Fast: nothing here builds a generated project
//! (tests/generated_project.rs does that).

use std::fs;
use std::path::{Path, PathBuf};

mod common;

use common::{
    assert_owned_hashes_match, assert_unchanged, legacy_project, manifest, new_project, ok,
    owned_paths, read, refused, tree, tree_changes, write,
};

/// What `svcgen add-upstream` prints for the producer's `Produce` rpc.
const FETCH_PRODUCE: &str = "let result: crate::svcgen::upstreams::producer::producer::ProduceResponse = ctx.fetch(&ctx.inputs()[0]).await?;";

/// `producer` (`--method Produce`) and `consumer` (`--method Consume`),
/// side by side in `parent`; returns their roots.
fn producer_and_consumer(parent: &Path) -> (PathBuf, PathBuf) {
    let producer = new_project(parent, "producer", &["--method", "Produce"]);
    (producer, new_consumer(parent))
}

/// `consumer` (`--method Consume`) in `parent`, the project these tests add
/// upstreams to; returns its root.
fn new_consumer(parent: &Path) -> PathBuf {
    new_project(parent, "consumer", &["--method", "Consume"])
}

/// The producer's proto as seen from the consumer's root.
const PRODUCER_PROTO: &str = "../producer/proto/producer.proto";

/// `[[upstreams]]` as (name, service, file, files).
fn manifest_upstreams(root: &Path) -> Vec<(String, String, String, Vec<String>)> {
    let table = manifest(root);
    let Some(upstreams) = table.get("upstreams") else {
        return Vec::new();
    };
    let text = |value: &toml::Value, key: &str| {
        value[key]
            .as_str()
            .unwrap_or_else(|| panic!("[[upstreams]] {key}"))
            .to_string()
    };
    upstreams
        .as_array()
        .expect("[[upstreams]]")
        .iter()
        .map(|u| {
            let files = u["files"]
                .as_array()
                .expect("[[upstreams]] files")
                .iter()
                .map(|f| f.as_str().expect("a file").to_string())
                .collect();
            (text(u, "name"), text(u, "service"), text(u, "file"), files)
        })
        .collect()
}

/// One `[[upstreams]]` entry, as [`manifest_upstreams`] gives it.
fn upstream_entry(
    name: &str,
    service: &str,
    file: &str,
    files: &[&str],
) -> (String, String, String, Vec<String>) {
    (
        name.to_string(),
        service.to_string(),
        file.to_string(),
        files.iter().map(|f| f.to_string()).collect(),
    )
}

/// The `.proto` files directly in `root/proto/` (the platform's export
/// reads `proto/*.proto`, not recursively, and needs exactly one).
fn protos_directly_in_proto(root: &Path) -> Vec<String> {
    let mut protos: Vec<String> = fs::read_dir(root.join("proto"))
        .expect("ls proto/")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".proto"))
        .collect();
    protos.sort();
    protos
}

/// `UPSTREAMS` as build.rs declares it: one `<folder>/<file>` per line.
fn build_rs_upstreams(root: &Path) -> Vec<String> {
    let build = read(root, "build.rs");
    let start = build
        .find("const UPSTREAMS: &str = \"")
        .unwrap_or_else(|| panic!("no UPSTREAMS in build.rs:\n{build}"));
    let rest = &build[start + "const UPSTREAMS: &str = \"".len()..];
    let end = rest.find("\";").expect("the end of UPSTREAMS");
    rest[..end]
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The `upstreams: [..],` line of src/svcgen.rs's service! table, if any.
fn svcgen_rs_upstreams(root: &Path) -> Option<String> {
    read(root, "src/svcgen.rs")
        .lines()
        .find(|line| line.trim_start().starts_with("upstreams:"))
        .map(str::to_string)
}

/// The paths `before` → `after` changed, as `tree_changes` words them, sorted.
fn sorted_changes(before: &common::Tree, after: &common::Tree) -> Vec<String> {
    let mut changes = tree_changes(before, after);
    changes.sort();
    changes
}

fn to_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

// ------------------------------------------------ an upstream made by svcgen

#[test]
fn adds_a_producer_made_by_svcgen() {
    let work = tempfile::tempdir().expect("temp dir");
    let (producer, consumer) = producer_and_consumer(work.path());
    let producer_before = tree(&producer);
    let before = tree(&consumer);

    let out = ok(&consumer, &["add-upstream", PRODUCER_PROTO]);

    // The copied proto is the producer's, byte for byte.
    let copied = "proto/upstream/producer/producer.proto";
    assert_eq!(
        fs::read(consumer.join(copied)).expect("the copied proto"),
        fs::read(producer.join("proto/producer.proto")).expect("the producer's proto"),
    );
    // Exactly these paths changed: nothing else, in particular not the
    // consumer's own proto, and nothing in the producer.
    assert_eq!(
        sorted_changes(&before, &tree(&consumer)),
        [
            "added proto/upstream",
            "added proto/upstream/producer",
            "added proto/upstream/producer/producer.proto",
            "changed build.rs",
            "changed src/svcgen.rs",
            "changed svcgen.toml",
        ]
    );
    assert_unchanged(
        &producer,
        &producer_before,
        "add-upstream (in the producer)",
    );
    assert_eq!(protos_directly_in_proto(&consumer), ["consumer.proto"]);

    assert_eq!(
        manifest_upstreams(&consumer),
        [upstream_entry(
            "producer",
            "producer.Producer",
            "producer.proto",
            &["producer.proto"]
        )]
    );
    assert_eq!(build_rs_upstreams(&consumer), ["producer/producer.proto"]);
    assert_eq!(
        svcgen_rs_upstreams(&consumer).as_deref(),
        Some("        upstreams: [producer],")
    );

    // The report names the upstream and the exact line to write.
    assert!(
        out.starts_with("Added upstream `producer` (producer.Producer) to `consumer`\n"),
        "{out}"
    );
    assert!(out.contains(FETCH_PRODUCE), "{out}");
    assert!(
        out.contains("created  proto/upstream/producer/producer.proto"),
        "{out}"
    );
    assert!(
        !out.contains(&*work.path().to_string_lossy()),
        "temp path in output: {out}"
    );

    // The manifest hashes every svcgen-owned file as it now is; the copied
    // protos are the user's to update, never svcgen-owned.
    assert_owned_hashes_match(&consumer);
    let owned = owned_paths(&consumer);
    assert!(owned.contains(&"build.rs".to_string()), "{owned:?}");
    assert!(owned.contains(&"src/svcgen.rs".to_string()), "{owned:?}");
    let upstream_owned: Vec<&String> = owned
        .iter()
        .filter(|path| path.starts_with("proto/"))
        .collect();
    assert!(upstream_owned.is_empty(), "{upstream_owned:?}");
}

#[test]
fn add_method_afterwards_keeps_the_upstream() {
    let work = tempfile::tempdir().expect("temp dir");
    let (producer, consumer) = producer_and_consumer(work.path());
    ok(&consumer, &["add-upstream", PRODUCER_PROTO]);
    let copied = read(&consumer, "proto/upstream/producer/producer.proto");

    ok(&consumer, &["add-method", "Extra"]);

    assert_eq!(build_rs_upstreams(&consumer), ["producer/producer.proto"]);
    let svcgen_rs = read(&consumer, "src/svcgen.rs");
    assert!(
        svcgen_rs.contains("        upstreams: [producer],\n"),
        "{svcgen_rs}"
    );
    assert!(svcgen_rs.contains("\"Extra\": Long =>"), "{svcgen_rs}");
    assert_eq!(
        manifest_upstreams(&consumer),
        [upstream_entry(
            "producer",
            "producer.Producer",
            "producer.proto",
            &["producer.proto"]
        )]
    );
    assert_eq!(
        read(&consumer, "proto/upstream/producer/producer.proto"),
        copied
    );
    assert_eq!(copied, read(&producer, "proto/producer.proto"));
    assert_eq!(protos_directly_in_proto(&consumer), ["consumer.proto"]);
    assert_owned_hashes_match(&consumer);
}

#[test]
fn path_from_elsewhere_gives_the_same_project() {
    let work = tempfile::tempdir().expect("temp dir");
    let producer = new_project(work.path(), "producer", &["--method", "Produce"]);
    let inside = new_consumer(&work.path().join("a"));
    let with_path = new_consumer(&work.path().join("b"));

    let out_inside = ok(
        &inside,
        &["add-upstream", "../../producer/proto/producer.proto"],
    );
    // From elsewhere: PROTO relative to the current directory, --path too.
    let elsewhere = work.path().join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    let out_path = ok(
        &elsewhere,
        &[
            "add-upstream",
            "../producer/proto/producer.proto",
            "--path",
            "../b/consumer",
        ],
    );
    assert!(
        fs::read_dir(&elsewhere).expect("ls").next().is_none(),
        "nothing written where svcgen ran"
    );
    assert_eq!(out_path, out_inside);
    assert!(out_path.contains(FETCH_PRODUCE), "{out_path}");
    assert_eq!(
        sorted_changes(&tree(&inside), &tree(&with_path)),
        Vec::<String>::new(),
        "the two consumers differ"
    );
    assert_eq!(
        read(&with_path, "proto/upstream/producer/producer.proto"),
        read(&producer, "proto/producer.proto")
    );
    assert_owned_hashes_match(&with_path);

    // An absolute PROTO and --path work as well.
    let third = new_consumer(&work.path().join("c"));
    let proto = producer.join("proto/producer.proto");
    ok(
        &elsewhere,
        &["add-upstream", to_str(&proto), "--path", to_str(&third)],
    );
    assert_eq!(
        sorted_changes(&tree(&inside), &tree(&third)),
        Vec::<String>::new()
    );
}

// ------------------------------------------ a platform-style Python producer

const COMMON_PROTO: &str = r#"syntax = "proto3";

package common;

import "google/protobuf/timestamp.proto";

// A record every service of the platform exchanges.
message DataRecord {
  string id = 1;
  repeated double values = 2;
  google.protobuf.Timestamp created_at = 3;
}
"#;

const DATA_GENERATOR_PROTO: &str = r#"syntax = "proto3";

package data_generator;

import "common.proto";

message GenerateDataRequest {
  int32 count = 1;
}

message GenerateDataResponse {
  repeated common.DataRecord records = 1;
}

service DataGeneratorService {
  rpc GenerateData(GenerateDataRequest) returns (GenerateDataResponse);
}
"#;

/// The layout of the AI-Effect platform's use cases, in `parent`:
/// `common/proto/common.proto`, imported as `common.proto` by
/// `services/data_generator/proto/data_generator.proto`.
fn platform_producer(parent: &Path) {
    write(parent, "common/proto/common.proto", COMMON_PROTO);
    write(
        parent,
        "services/data_generator/proto/data_generator.proto",
        DATA_GENERATOR_PROTO,
    );
}

/// The data generator's proto and the folder of its common imports, from a consumer made
/// in the same parent.
const GENERATOR_PROTO: &str = "../services/data_generator/proto/data_generator.proto";
const COMMON_DIR: &str = "../common/proto";

#[test]
fn a_python_producer_needs_include_for_its_common_imports() {
    let work = tempfile::tempdir().expect("temp dir");
    platform_producer(work.path());
    let consumer = new_consumer(work.path());

    // Its import is not beside it: refused, naming the file and the flag.
    for args in [
        &["add-upstream", GENERATOR_PROTO][..],
        &["add-upstream", GENERATOR_PROTO, "--dry-run"],
        &["add-upstream", GENERATOR_PROTO, "--include", "../services"],
    ] {
        refused(
            &consumer,
            work.path(),
            args,
            1,
            &["data_generator.proto", "common.proto", "--include"],
        );
    }
    // An --include that is not a folder.
    refused(
        &consumer,
        work.path(),
        &["add-upstream", GENERATOR_PROTO, "--include", "../nowhere"],
        1,
        &["--include", "../nowhere", "not a directory"],
    );

    let before = tree(&consumer);
    let out = ok(
        &consumer,
        &["add-upstream", GENERATOR_PROTO, "--include", COMMON_DIR],
    );
    let dir = "proto/upstream/data_generator";
    assert_eq!(
        read(&consumer, &format!("{dir}/data_generator.proto")),
        DATA_GENERATOR_PROTO
    );
    assert_eq!(
        read(&consumer, &format!("{dir}/common.proto")),
        COMMON_PROTO
    );
    // Only those two: the well-known types are built into protox.
    assert_eq!(
        sorted_changes(&before, &tree(&consumer)),
        [
            "added proto/upstream",
            "added proto/upstream/data_generator",
            "added proto/upstream/data_generator/common.proto",
            "added proto/upstream/data_generator/data_generator.proto",
            "changed build.rs",
            "changed src/svcgen.rs",
            "changed svcgen.toml",
        ]
    );
    assert_eq!(
        manifest_upstreams(&consumer),
        [upstream_entry(
            "data_generator",
            "data_generator.DataGeneratorService",
            "data_generator.proto",
            &["data_generator.proto", "common.proto"]
        )]
    );
    assert_eq!(
        build_rs_upstreams(&consumer),
        ["data_generator/data_generator.proto"]
    );
    assert_eq!(
        svcgen_rs_upstreams(&consumer).as_deref(),
        Some("        upstreams: [data_generator],")
    );
    assert!(
        out.contains("let result: crate::svcgen::upstreams::data_generator::data_generator::GenerateDataResponse = ctx.fetch(&ctx.inputs()[0]).await?;"),
        "{out}"
    );
    assert_eq!(protos_directly_in_proto(&consumer), ["consumer.proto"]);
    assert_owned_hashes_match(&consumer);
}

#[test]
fn name_chooses_the_folder_and_the_module() {
    let work = tempfile::tempdir().expect("temp dir");
    platform_producer(work.path());
    let consumer = new_consumer(work.path());
    // From the consumer's parent: PROTO and --include relative to it.
    ok(
        work.path(),
        &[
            "add-upstream",
            "services/data_generator/proto/data_generator.proto",
            "--include",
            "common/proto",
            "--name",
            "generator",
            "--path",
            "consumer",
        ],
    );
    let dir = "proto/upstream/generator";
    assert_eq!(
        read(&consumer, &format!("{dir}/data_generator.proto")),
        DATA_GENERATOR_PROTO
    );
    assert_eq!(
        read(&consumer, &format!("{dir}/common.proto")),
        COMMON_PROTO
    );
    assert!(!consumer.join("proto/upstream/data_generator").exists());
    assert_eq!(manifest_upstreams(&consumer)[0].0, "generator");
    assert_eq!(
        build_rs_upstreams(&consumer),
        ["generator/data_generator.proto"]
    );
    assert_eq!(
        svcgen_rs_upstreams(&consumer).as_deref(),
        Some("        upstreams: [generator],")
    );
    assert_owned_hashes_match(&consumer);
}

// ---------------------------------------------------------------- refusals

/// A proto in `parent/upstreams/` with `text`; returns its path as the
/// consumer (a sibling of `upstreams/`) names it.
fn upstream_proto(parent: &Path, file: &str, text: &str) -> String {
    write(parent, &format!("upstreams/{file}"), text);
    format!("../upstreams/{file}")
}

#[test]
fn refuses_a_proto_that_does_not_compile_or_serves_nothing() {
    let work = tempfile::tempdir().expect("temp dir");
    let consumer = new_consumer(work.path());

    let broken = upstream_proto(
        work.path(),
        "broken.proto",
        "syntax = \"proto3\";\npackage broken;\nmessage {\n",
    );
    refused(
        &consumer,
        work.path(),
        &["add-upstream", &broken],
        1,
        &["broken.proto", "does not compile"],
    );
    let unknown_type = upstream_proto(
        work.path(),
        "unknown_type.proto",
        "syntax = \"proto3\";\npackage u;\nmessage A { Missing m = 1; }\nservice S { rpc X(A) returns (A); }\n",
    );
    refused(
        &consumer,
        work.path(),
        &["add-upstream", &unknown_type],
        1,
        &["unknown_type.proto", "does not compile", "Missing"],
    );

    let none = upstream_proto(
        work.path(),
        "no_service.proto",
        "syntax = \"proto3\";\npackage nothing;\nmessage A {}\n",
    );
    refused(
        &consumer,
        work.path(),
        &["add-upstream", &none],
        1,
        &["no_service.proto", "declares no service"],
    );
}

#[test]
fn several_services_need_service() {
    let work = tempfile::tempdir().expect("temp dir");
    let consumer = new_consumer(work.path());
    let two = upstream_proto(
        work.path(),
        "two.proto",
        "syntax = \"proto3\";\npackage two;\nmessage A {}\nmessage B {}\nservice S1 { rpc X(A) returns (A); }\nservice S2 { rpc Y(A) returns (B); }\n",
    );
    refused(
        &consumer,
        work.path(),
        &["add-upstream", &two],
        1,
        &["two.proto", "2 services", "two.S1", "two.S2", "--service"],
    );
    refused(
        &consumer,
        work.path(),
        &["add-upstream", &two, "--service", "S3"],
        1,
        &["no service `S3`", "two.S1", "two.S2"],
    );

    let out = ok(&consumer, &["add-upstream", &two, "--service", "S2"]);
    assert_eq!(
        manifest_upstreams(&consumer),
        [upstream_entry("two", "two.S2", "two.proto", &["two.proto"])]
    );
    // Only S2's rpc is listed.
    assert!(
        out.contains("let result: crate::svcgen::upstreams::two::two::B = ctx.fetch(&ctx.inputs()[0]).await?;"),
        "{out}"
    );
    assert!(!out.contains("two::two::A ="), "{out}");
    assert_owned_hashes_match(&consumer);

    // The other service of the same proto, by its qualified name, needs
    // another name: the folder `two` is taken.
    refused(
        &consumer,
        work.path(),
        &["add-upstream", &two, "--service", "two.S1"],
        1,
        &["upstream named `two`", "--name"],
    );
}

#[test]
fn refuses_a_message_with_the_qualified_name_of_one_of_the_projects_own() {
    let work = tempfile::tempdir().expect("temp dir");
    let consumer = new_consumer(work.path());
    let clash = upstream_proto(
        work.path(),
        "clash.proto",
        "syntax = \"proto3\";\npackage consumer;\nmessage ConsumeResponse {}\nservice Other { rpc Make(ConsumeResponse) returns (ConsumeResponse); }\n",
    );
    for args in [
        &["add-upstream", &clash][..],
        &["add-upstream", &clash, "--dry-run"],
        &["add-upstream", &clash, "--name", "other"],
    ] {
        refused(
            &consumer,
            work.path(),
            args,
            1,
            &[
                "consumer.ConsumeResponse",
                "proto/consumer.proto",
                "different packages",
            ],
        );
    }
}

#[test]
fn refuses_the_same_upstream_twice_or_a_name_taken() {
    let work = tempfile::tempdir().expect("temp dir");
    let (_producer, consumer) = producer_and_consumer(work.path());
    platform_producer(work.path());
    ok(&consumer, &["add-upstream", PRODUCER_PROTO]);

    // The same command again: the name is taken.
    refused(
        &consumer,
        work.path(),
        &["add-upstream", PRODUCER_PROTO],
        1,
        &["upstream named `producer`", "producer.Producer", "--name"],
    );
    // Under another name: the service is already consumed.
    refused(
        &consumer,
        work.path(),
        &[
            "add-upstream",
            PRODUCER_PROTO,
            "--name",
            "again",
            "--dry-run",
        ],
        1,
        &["already consumes producer.Producer", "`producer`"],
    );
    // Another upstream under a name already used.
    refused(
        &consumer,
        work.path(),
        &[
            "add-upstream",
            GENERATOR_PROTO,
            "--include",
            COMMON_DIR,
            "--name",
            "producer",
        ],
        1,
        &["upstream named `producer`", "--name"],
    );
    // Under its own name it goes in, beside the first.
    ok(
        &consumer,
        &["add-upstream", GENERATOR_PROTO, "--include", COMMON_DIR],
    );
    assert_eq!(
        build_rs_upstreams(&consumer),
        [
            "producer/producer.proto",
            "data_generator/data_generator.proto"
        ]
    );
    assert_eq!(
        svcgen_rs_upstreams(&consumer).as_deref(),
        Some("        upstreams: [producer, data_generator],")
    );
    assert_owned_hashes_match(&consumer);
}

#[test]
fn refuses_invalid_names_with_exit_2() {
    let work = tempfile::tempdir().expect("temp dir");
    let (_producer, consumer) = producer_and_consumer(work.path());
    for (name, rule) in [
        ("Bad-Name", "snake_case"),
        ("9lives", "snake_case"),
        ("", "snake_case"),
        ("type", "keyword"),
        // Reserved from Rust 2024 on.
        ("gen", "keyword"),
        ("std", "reserved"),
    ] {
        refused(
            &consumer,
            work.path(),
            &["add-upstream", PRODUCER_PROTO, "--name", name],
            2,
            &[&format!("\"{name}\""), rule],
        );
    }
    // Checked first: exit 2 even outside a project, and with no such proto.
    let empty = tempfile::tempdir().expect("temp dir");
    refused(
        empty.path(),
        empty.path(),
        &["add-upstream", "missing.proto", "--name", "Bad-Name"],
        2,
        &["\"Bad-Name\"", "snake_case"],
    );
    // A file stem that is no valid name needs --name (exit 1: the user gave
    // no invalid name).
    let stem = upstream_proto(
        work.path(),
        "2fa.proto",
        "syntax = \"proto3\";\npackage tfa;\nmessage A {}\nservice S { rpc X(A) returns (A); }\n",
    );
    refused(
        &consumer,
        work.path(),
        &["add-upstream", &stem],
        1,
        &["--name"],
    );
    ok(&consumer, &["add-upstream", &stem, "--name", "two_factor"]);
    assert!(consumer
        .join("proto/upstream/two_factor/2fa.proto")
        .is_file());
}

#[test]
fn refuses_a_proto_path_that_is_not_a_file() {
    let work = tempfile::tempdir().expect("temp dir");
    let (_producer, consumer) = producer_and_consumer(work.path());
    for proto in ["../producer/proto", "../producer/proto/missing.proto"] {
        refused(
            &consumer,
            work.path(),
            &["add-upstream", proto],
            1,
            &[proto, "is not a file"],
        );
    }
}

#[test]
fn refuses_an_existing_upstream_folder() {
    let work = tempfile::tempdir().expect("temp dir");
    let (_producer, consumer) = producer_and_consumer(work.path());
    write(
        &consumer,
        "proto/upstream/producer/notes.txt",
        "copied by hand\n",
    );
    for args in [
        &["add-upstream", PRODUCER_PROTO][..],
        &["add-upstream", PRODUCER_PROTO, "--dry-run"],
    ] {
        refused(
            &consumer,
            work.path(),
            args,
            1,
            &["proto/upstream/producer", "already exists", "--name"],
        );
    }
    // An empty folder is in the way too.
    fs::remove_file(consumer.join("proto/upstream/producer/notes.txt")).expect("rm");
    refused(
        &consumer,
        work.path(),
        &["add-upstream", PRODUCER_PROTO],
        1,
        &["proto/upstream/producer", "already exists"],
    );
    // A file where the folder of every upstream goes: the write fails
    // midway, and nothing is left of it.
    fs::remove_dir_all(consumer.join("proto/upstream")).expect("rm -r");
    write(&consumer, "proto/upstream", "not a folder\n");
    refused(
        &consumer,
        work.path(),
        &["add-upstream", PRODUCER_PROTO],
        1,
        &["cannot write", "proto/upstream", "not a directory"],
    );
    fs::remove_file(consumer.join("proto/upstream")).expect("rm");
    // Another name is free.
    ok(
        &consumer,
        &["add-upstream", PRODUCER_PROTO, "--name", "prod"],
    );
    assert!(consumer
        .join("proto/upstream/prod/producer.proto")
        .is_file());
    assert_owned_hashes_match(&consumer);
}

/// Not only the messages are compared with the project's own proto, the
/// service too: the runtime's descriptor index keeps the first service of a name (the
/// project's own), so `ctx.fetch` would never find the upstream's rpcs.
#[test]
fn refuses_an_upstream_service_with_the_projects_own_qualified_name() {
    let work = tempfile::tempdir().expect("temp dir");
    let consumer = new_consumer(work.path());
    let same = upstream_proto(
        work.path(),
        "same_service.proto",
        "syntax = \"proto3\";\npackage consumer;\nmessage Thing {}\nservice Consumer { rpc Make(Thing) returns (Thing); }\n",
    );
    refused(
        &consumer,
        work.path(),
        &["add-upstream", &same],
        1,
        &["consumer.Consumer"],
    );
}

/// An rpc answering a well-known type gets no handler line under the
/// upstream's module: prost maps `google.protobuf.*` to `::prost_types`
/// (and `Empty` to `()`), never to a module of the upstream.
#[test]
fn a_well_known_response_type_is_not_put_under_the_upstreams_module() {
    let work = tempfile::tempdir().expect("temp dir");
    let consumer = new_consumer(work.path());
    let wk = upstream_proto(
        work.path(),
        "wk.proto",
        "syntax = \"proto3\";\npackage wk;\nimport \"google/protobuf/timestamp.proto\";\nmessage Req {}\nservice Wk { rpc Now(Req) returns (google.protobuf.Timestamp); }\n",
    );
    let out = ok(&consumer, &["add-upstream", &wk]);
    assert!(!out.contains("upstreams::wk::google::protobuf"), "{out}");
}

#[test]
fn refuses_a_project_made_by_svcgen_0_1_0() {
    let work = tempfile::tempdir().expect("temp dir");
    new_project(work.path(), "producer", &["--method", "Produce"]);
    let legacy = legacy_project(&work.path().join("legacy"));
    let proto = work.path().join("producer/proto/producer.proto");
    for args in [
        &["add-upstream", to_str(&proto)][..],
        &["add-upstream", to_str(&proto), "--dry-run"],
    ] {
        refused(
            &legacy,
            work.path(),
            args,
            1,
            &["src/svcgen/", "svcgen 0.1.0", "svcgen add-method"],
        );
    }
}

#[test]
fn refuses_outside_a_project() {
    let work = tempfile::tempdir().expect("temp dir");
    new_project(work.path(), "producer", &["--method", "Produce"]);
    let empty = work.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    refused(
        &empty,
        work.path(),
        &["add-upstream", "../producer/proto/producer.proto"],
        1,
        &["no svcgen.toml", "--path"],
    );
}

// ---------------------------------------------------------------- dry run

#[test]
fn dry_run_writes_nothing_and_diffs_every_change() {
    let work = tempfile::tempdir().expect("temp dir");
    let (producer, consumer) = producer_and_consumer(work.path());
    let before = tree(&consumer);
    let shown = ok(&consumer, &["add-upstream", PRODUCER_PROTO, "--dry-run"]);
    assert_unchanged(&consumer, &before, "--dry-run");
    assert!(
        !shown.contains(&*work.path().to_string_lossy()),
        "temp path in output: {shown}"
    );
    assert!(
        shown.starts_with("Would add upstream `producer` (producer.Producer) to `consumer`"),
        "{shown}"
    );
    assert!(
        shown.ends_with("Nothing was written (--dry-run).\n"),
        "{shown}"
    );

    // The copied proto is a new file, shown whole.
    assert!(
        shown.contains("--- /dev/null\n+++ b/proto/upstream/producer/producer.proto\n"),
        "{shown}"
    );
    for line in read(&producer, "proto/producer.proto").lines() {
        assert!(
            shown.contains(&format!("\n+{line}\n")),
            "{line:?} not shown"
        );
    }
    assert!(shown.contains("\n+producer/producer.proto\n"), "{shown}");
    assert!(
        shown.contains("\n+        upstreams: [producer],\n"),
        "{shown}"
    );
    assert!(shown.contains("\n+[[upstreams]]\n"), "{shown}");
    assert!(shown.contains("\n+name = \"producer\"\n"), "{shown}");

    // The diff names exactly the files the real run changes or creates.
    let mut diffed: Vec<String> = shown
        .lines()
        .filter_map(|line| line.strip_prefix("+++ b/"))
        .map(str::to_string)
        .collect();
    diffed.sort();
    ok(&consumer, &["add-upstream", PRODUCER_PROTO]);
    let after = tree(&consumer);
    let mut changed: Vec<String> = tree_changes(&before, &after)
        .into_iter()
        .filter_map(|c| c.split_once(' ').map(|(_, path)| path.to_string()))
        .filter(|path| after.get(path).is_some_and(Option::is_some))
        .collect();
    changed.sort();
    assert_eq!(diffed, changed);
    assert_eq!(
        diffed,
        [
            "build.rs",
            "proto/upstream/producer/producer.proto",
            "src/svcgen.rs",
            "svcgen.toml"
        ]
    );
}

// -------------------------------------------------------------- formatting

/// `rustfmt --check` with rustfmt's defaults (an empty config, so no
/// rustfmt.toml around counts) on `files` of `root`.
fn assert_rustfmt_clean(root: &Path, files: &[&str]) {
    let output = common::rustfmt_check(root, files);
    assert!(
        output.status.success(),
        "rustfmt would reformat {files:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn regenerated_files_with_two_upstreams_are_already_formatted() {
    let work = tempfile::tempdir().expect("temp dir");
    let (_producer, consumer) = producer_and_consumer(work.path());
    platform_producer(work.path());
    ok(&consumer, &["add-upstream", PRODUCER_PROTO]);
    ok(
        &consumer,
        &["add-upstream", GENERATOR_PROTO, "--include", COMMON_DIR],
    );
    assert_eq!(manifest_upstreams(&consumer).len(), 2);
    assert_rustfmt_clean(&consumer, &["build.rs", "src/svcgen.rs"]);

    // And with names as long as allowed, the table line past 100 columns.
    let long = new_project(work.path(), "long", &["--method", "Consume"]);
    let first = "a".repeat(64);
    let second = "b".repeat(64);
    ok(&long, &["add-upstream", PRODUCER_PROTO, "--name", &first]);
    ok(
        &long,
        &[
            "add-upstream",
            GENERATOR_PROTO,
            "--include",
            COMMON_DIR,
            "--name",
            &second,
        ],
    );
    assert_rustfmt_clean(&long, &["build.rs", "src/svcgen.rs"]);
}

#[test]
fn refuses_a_proto_file_name_that_build_rs_cannot_list() {
    let work = tempfile::tempdir().expect("temp dir");
    let consumer = new_consumer(work.path());
    let quoted = upstream_proto(
        work.path(),
        "we\"ird.proto",
        "syntax = \"proto3\";\npackage up;\nmessage A {}\nservice S { rpc X(A) returns (A); }\n",
    );
    refused(
        &consumer,
        work.path(),
        &["add-upstream", &quoted, "--name", "up"],
        1,
        &[
            "\"we\\\"ird.proto\"",
            "quotes, backslashes or control characters",
        ],
    );
}
