//! End-to-end tests of `svcgen add-method` on projects made by `svcgen new`:
//! every refusal (exit status, one-line message, and a tree left exactly as
//! it was), finding the project, user edits surviving byte for byte, the
//! equivalence with a project generated with all its methods at once, and
//! the `--dry-run` diff; and the conversion of a project made by svcgen
//! 0.1.0 (runtime in `src/svcgen/`, tests/fixtures/svcgen-0.1.0/). Fast: nothing here builds a generated project
//! (tests/generated_project.rs does that).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use similar::{ChangeTag, TextDiff};

mod common;

const PROTO: &str = "proto/demo_svc.proto";
const MARKERS: [&str; 3] = [
    "// svcgen:messages",
    "// svcgen:rpcs",
    "// svcgen:last-result",
];

use common::{
    add_runtime_dependency, assert_owned_hashes_match, assert_unchanged, legacy_fixture,
    legacy_project, manifest, manifest_methods, new_project, ok, owned_paths, read, refused,
    relative, runtime_dependency_line, tree, tree_changes, write, Tree,
};

/// The canonical project: `svcgen new demo-svc --method TrainModel`.
fn demo(parent: &Path) -> PathBuf {
    new_project(parent, "demo-svc", &["--method", "TrainModel"])
}

/// The line of `text` that is the marker (with its indentation).
fn marker_line<'a>(text: &'a str, marker: &str) -> &'a str {
    text.lines()
        .find(|line| line.trim() == marker)
        .unwrap_or_else(|| panic!("no {marker} in {text}"))
}

// ---------------------------------------------------------------- refusals

#[test]
fn refuses_a_method_that_exists_in_any_spelling() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = new_project(
        work.path(),
        "demo-svc",
        &["--method", "TrainModel", "--quick-method", "ExportONNX"],
    );
    for (name, existing) in [
        ("TrainModel", "TrainModel"),
        ("train_model", "TrainModel"),
        ("train-model", "TrainModel"),
        ("ExportONNX", "ExportONNX"),
        ("ExportOnnx", "ExportONNX"),
        ("export_onnx", "ExportONNX"),
    ] {
        refused(
            &root,
            &root,
            &["add-method", name],
            1,
            &[&format!("`{name}`"), existing, "pick another name"],
        );
        // --quick, --dry-run and --force do not get around it.
        refused(
            &root,
            &root,
            &["add-method", name, "--quick", "--dry-run", "--force"],
            1,
            &[&format!("`{name}`"), existing],
        );
    }
}

#[test]
fn refuses_invalid_names_with_exit_2() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = demo(work.path());
    refused(
        &root,
        &root,
        &["add-method", "9lives"],
        2,
        &["\"9lives\"", "must not start with a digit"],
    );
    refused(
        &root,
        &root,
        &["add-method", "fn"],
        2,
        &["\"fn\"", "keyword"],
    );
    // Checked before the project is looked for: exit 2 even outside one.
    let empty = tempfile::tempdir().expect("temp dir");
    refused(
        empty.path(),
        empty.path(),
        &["add-method", "fn"],
        2,
        &["keyword"],
    );
}

#[test]
fn refuses_a_missing_or_doubled_proto_marker_naming_the_line_to_restore() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = demo(work.path());
    let original = read(&root, PROTO);
    for marker in MARKERS {
        let line = marker_line(&original, marker);
        let without = original.replace(&format!("{line}\n"), "");
        assert_ne!(without, original);
        write(&root, PROTO, &without);
        refused(
            &root,
            &root,
            &["add-method", "ScoreBatch"],
            1,
            &[
                PROTO,
                &format!("`{marker}`"),
                "missing",
                // The exact line, indentation included.
                &format!("restore the line `{line}`"),
            ],
        );

        let doubled = original.replace(&format!("{line}\n"), &format!("{line}\n{line}\n"));
        write(&root, PROTO, &doubled);
        refused(
            &root,
            &root,
            &["add-method", "ScoreBatch", "--dry-run"],
            1,
            &[PROTO, &format!("`{marker}`"), "appears 2 times"],
        );
    }
    // With the markers back, the same command works.
    write(&root, PROTO, &original);
    ok(&root, &["add-method", "ScoreBatch"]);
}

#[test]
fn refuses_without_a_readable_current_manifest() {
    let work = tempfile::tempdir().expect("temp dir");
    let empty = work.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    let looked_for = ["no svcgen.toml", "svcgen new", "--path"];
    refused(
        &empty,
        &empty,
        &["add-method", "ScoreBatch"],
        1,
        &looked_for,
    );

    let elsewhere = work.path().join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    let empty_arg = empty.to_str().expect("utf-8 temp path");
    refused(
        &elsewhere,
        work.path(),
        &["add-method", "ScoreBatch", "--path", empty_arg],
        1,
        &looked_for,
    );

    // A project whose manifest is broken in various ways.
    let root = demo(work.path());
    let newer = read(&root, "svcgen.toml").replace("schema = 2", "schema = 3");
    let cases: [(&[u8], &[&str]); 5] = [
        (b"[[[ not toml", &["svcgen.toml", "not valid TOML"]),
        (b"\xff\xfe\x00garbage", &["svcgen.toml", "cannot read"]),
        (
            b"[service]\nname = \"demo-svc\"\n",
            &["svcgen.toml", "no `schema`"],
        ),
        (
            b"schema = 2\n[service]\nname = \"demo-svc\"\n",
            &["svcgen.toml", "not a valid svcgen manifest"],
        ),
        (
            newer.as_bytes(),
            &["svcgen.toml", "schema 3", "newer", "upgrade svcgen"],
        ),
    ];
    for (contents, needles) in cases {
        fs::write(root.join("svcgen.toml"), contents).expect("write manifest");
        refused(&root, &root, &["add-method", "ScoreBatch"], 1, needles);
        refused(
            &root,
            &root,
            &["add-method", "ScoreBatch", "--dry-run", "--force"],
            1,
            needles,
        );
    }
}

/// Edits the svcgen-owned file `path` by hand and checks the whole --force
/// story of `add-method ScoreBatch`: refused, with and without --dry-run,
/// the tree unchanged; `--dry-run --force` writes nothing but shows the
/// `.orig` to come; `--force` keeps the edited bytes as `<path>.orig`.
fn edit_refuse_then_force(root: &Path, path: &str) {
    let edited = format!("{}// my tweak\n", read(root, path));
    write(root, path, &edited);
    let needles = ["edited by hand", path, "--force", ".orig"];
    refused(root, root, &["add-method", "ScoreBatch"], 1, &needles);
    refused(
        root,
        root,
        &["add-method", "ScoreBatch", "--dry-run"],
        1,
        &[path],
    );

    let orig = format!("{path}.orig");
    let before = tree(root);
    let shown = ok(root, &["add-method", "ScoreBatch", "--dry-run", "--force"]);
    assert_unchanged(root, &before, "--dry-run --force");
    assert!(shown.contains(&format!("+++ b/{orig}")), "{shown}");

    let out = ok(root, &["add-method", "ScoreBatch", "--force"]);
    assert!(out.contains(&orig), "{out}");
    assert_eq!(
        fs::read(root.join(&orig)).expect("orig"),
        edited.as_bytes(),
        "the .orig must be the edited file, byte for byte"
    );
}

#[test]
fn an_owned_file_edited_by_hand_is_refused_then_kept_as_orig_under_force() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = demo(work.path());
    let reference = new_project(
        &work.path().join("ref"),
        "demo-svc",
        &["--method", "TrainModel", "--method", "ScoreBatch"],
    );
    // src/svcgen.rs: an owned file that add-method also has to change.
    let owned = "src/svcgen.rs";
    edit_refuse_then_force(&root, owned);
    assert_eq!(
        read(&root, owned),
        read(&reference, owned),
        "--force rewrites the file to svcgen's version"
    );
    assert!(root.join("src/methods/score_batch.rs").is_file());
    assert_owned_hashes_match(&root);
}

#[test]
fn a_vendored_runtime_file_edited_by_hand_is_refused_then_kept_as_orig_under_force() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = demo(work.path());
    // add-method has nothing to change in the runtime: the edit alone is
    // what makes it refuse.
    let tasks = "svcgen-runtime/src/tasks.rs";
    let original = read(&root, tasks);
    assert_eq!(original, read(&runtime_crate(), "src/tasks.rs"));
    edit_refuse_then_force(&root, tasks);
    assert_eq!(
        read(&root, tasks),
        original,
        "--force puts back the runtime's file"
    );
    assert!(root.join("src/methods/score_batch.rs").is_file());
    assert_owned_hashes_match(&root);
}

#[test]
fn force_refuses_to_overwrite_an_existing_orig() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = demo(work.path());
    let mod_rs = "src/methods/mod.rs";
    write(&root, mod_rs, &format!("{}// mine\n", read(&root, mod_rs)));
    write(&root, "src/methods/mod.rs.orig", "an older backup\n");
    refused(
        &root,
        &root,
        &["add-method", "ScoreBatch", "--force"],
        1,
        &["src/methods/mod.rs.orig", "already exists"],
    );
}

#[test]
fn refuses_when_the_new_handler_file_already_exists() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = demo(work.path());
    write(
        &root,
        "src/methods/score_batch.rs",
        "// written by hand before add-method\n",
    );
    for args in [
        &["add-method", "ScoreBatch"][..],
        &["add-method", "score-batch", "--force"],
        &["add-method", "ScoreBatch", "--dry-run"],
    ] {
        refused(
            &root,
            &root,
            args,
            1,
            &[
                "src/methods/score_batch.rs",
                "already exists",
                "move it away",
            ],
        );
    }
}

#[test]
fn refuses_a_message_or_rpc_the_user_already_wrote_in_the_proto() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = demo(work.path());
    let proto = read(&root, "proto/demo_svc.proto");
    let by_hand = "message ScoreBatchRequest {\n  string batch = 1;\n}\n\n// svcgen:messages";
    write(
        &root,
        "proto/demo_svc.proto",
        &proto.replacen("// svcgen:messages", by_hand, 1),
    );
    refused(
        &root,
        &root,
        &["add-method", "ScoreBatch"],
        1,
        &[
            "proto/demo_svc.proto",
            "already defines message `ScoreBatchRequest`",
            "line",
        ],
    );
}

#[test]
fn running_the_same_add_method_twice_refuses_the_second_time() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = demo(work.path());
    ok(&root, &["add-method", "ScoreBatch", "--quick"]);
    refused(
        &root,
        &root,
        &["add-method", "ScoreBatch", "--quick"],
        1,
        &["`ScoreBatch`", "pick another name"],
    );
    refused(
        &root,
        &root,
        &["add-method", "score_batch"],
        1,
        &["`score_batch`", "ScoreBatch"],
    );
}

// ------------------------------------------------------- finding the project

#[test]
fn finds_the_project_from_a_subdirectory_or_with_path() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = demo(work.path());

    let out = ok(&root.join("src/methods"), &["add-method", "ScoreBatch"]);
    assert!(out.contains("Added long method `ScoreBatch`"), "{out}");
    assert!(root.join("src/methods/score_batch.rs").is_file());
    assert!(!root.join("src/methods/src").exists());

    let elsewhere = work.path().join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    let root_arg = root.to_str().expect("utf-8 temp path");
    ok(
        &elsewhere,
        &["add-method", "ExportOnnx", "--path", root_arg],
    );
    assert!(root.join("src/methods/export_onnx.rs").is_file());
    // A relative --path, resolved from the current directory.
    ok(
        work.path(),
        &["add-method", "Rank", "--quick", "--path", "demo-svc"],
    );
    assert!(root.join("src/methods/rank.rs").is_file());
    assert!(
        fs::read_dir(&elsewhere).expect("ls").next().is_none(),
        "nothing written where svcgen ran"
    );
    assert_eq!(
        manifest_methods(&root),
        [
            ("TrainModel", "long", 3),
            ("ScoreBatch", "long", 4),
            ("ExportOnnx", "long", 5),
            ("Rank", "quick", 6),
        ]
        .map(|(n, k, t)| (n.to_string(), k.to_string(), t))
    );
    assert_owned_hashes_match(&root);
}

// ------------------------------------------------------------ user edits

#[test]
fn user_edits_survive_byte_for_byte() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = demo(work.path());
    let handler = "src/methods/train_model.rs";

    // The user's work: a handler body and a request field.
    let original_handler = read(&root, handler);
    let body_start = original_handler
        .find("pub async fn train_model(")
        .expect("handler fn");
    let edited_handler = format!(
        "{}pub async fn train_model(ctx: TaskContext) -> Result<TrainModelResponse, HandlerError> {{\n    let _ = (ctx, Duration::ZERO);\n    Ok(TrainModelResponse {{ summary: \"mine\".into(), steps: 42 }})\n}}\n",
        &original_handler[..body_start]
    );
    write(&root, handler, &edited_handler);
    let proto = read(&root, PROTO);
    let field = "  string dataset_uri = 1; // where to read the data";
    let edited_proto = proto.replace(
        "message TrainModelRequest {}",
        &format!("message TrainModelRequest {{\n{field}\n}}"),
    );
    assert_ne!(edited_proto, proto);
    write(&root, PROTO, &edited_proto);
    let state = read(&root, "src/state.rs");
    let user_files: Vec<(String, Vec<u8>)> = tree(&root)
        .into_iter()
        .filter_map(|(path, bytes)| Some((path, bytes?)))
        .filter(|(path, _)| {
            path != "src/svcgen.rs"
                && !path.starts_with("svcgen-runtime/")
                && path != "src/methods/mod.rs"
                && path != "build.rs"
                && !path.starts_with("tests/svcgen_")
                && path != PROTO
                && path != "svcgen.toml"
        })
        .collect();
    assert!(user_files.len() >= 8, "{user_files:?}");

    ok(&root, &["add-method", "ScoreBatch"]);
    let after_long = read(&root, PROTO);
    ok(&root, &["add-method", "export_result", "--quick"]);
    let after_quick = read(&root, PROTO);

    // Every user-owned file is exactly as the user left it.
    for (path, bytes) in &user_files {
        assert_eq!(
            &fs::read(root.join(path)).expect("read"),
            bytes,
            "{path} changed"
        );
    }
    assert_eq!(read(&root, handler), edited_handler);
    assert_eq!(read(&root, "src/state.rs"), state);

    // The proto only gained lines: the old text is all there, in order.
    assert!(after_quick.contains(&format!("{field}\n")));
    let long_lines = inserted_lines(&edited_proto, &after_long);
    let quick_lines = inserted_lines(&after_long, &after_quick);
    for line in [
        "message ScoreBatchRequest {}",
        "message ScoreBatchResponse {",
        "    ScoreBatchResponse score_batch = 4;",
        "  rpc ScoreBatch(ScoreBatchRequest) returns (ScoreBatchResponse);",
    ] {
        assert!(
            long_lines.contains(&line.to_string()),
            "{line:?} not inserted: {long_lines:#?}"
        );
    }
    for line in [
        "message ExportResultRequest {}",
        "message ExportResultResponse {",
        "    ExportResultResponse export_result = 5;",
        "  rpc ExportResult(ExportResultRequest) returns (ExportResultResponse);",
    ] {
        assert!(
            quick_lines.contains(&line.to_string()),
            "{line:?} not inserted: {quick_lines:#?}"
        );
    }
    // Each insertion sits above its marker; each marker is still there once.
    for marker in MARKERS {
        assert_eq!(
            after_quick.lines().filter(|l| l.trim() == marker).count(),
            1,
            "{marker}"
        );
    }
    let position = |needle: &str| after_quick.find(needle).expect(needle);
    assert!(position("message ExportResultResponse {") < position("// svcgen:messages"));
    assert!(position("message ScoreBatchRequest {}") < position("message ExportResultRequest {}"));
    assert!(position("export_result = 5;") < position("// svcgen:last-result"));
    assert!(position("rpc ExportResult(") < position("// svcgen:rpcs"));
    assert!(position("rpc ScoreBatch(") < position("rpc ExportResult("));

    // The manifest records both, with kind and the next tags, and hashes
    // every owned file as it now is.
    assert_eq!(
        manifest_methods(&root),
        [
            ("TrainModel", "long", 3),
            ("ScoreBatch", "long", 4),
            ("ExportResult", "quick", 5),
        ]
        .map(|(n, k, t)| (n.to_string(), k.to_string(), t))
    );
    assert_owned_hashes_match(&root);
    let table = read(&root, "src/svcgen.rs");
    assert!(table.contains("\"ExportResult\": Quick =>"), "{table}");
    assert!(table.contains("\"ScoreBatch\": Long =>"), "{table}");
    let modules = read(&root, "src/methods/mod.rs");
    assert!(modules.contains("pub mod export_result;"), "{modules}");
    assert!(modules.contains("pub mod score_batch;"), "{modules}");
}

/// The lines `new` adds to `old`, asserting it removes or changes none.
fn inserted_lines(old: &str, new: &str) -> Vec<String> {
    let diff = TextDiff::from_lines(old, new);
    let mut inserted = Vec::new();
    let mut kept = String::new();
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Equal => kept.push_str(change.value()),
            ChangeTag::Insert => inserted.push(change.value().trim_end_matches('\n').to_string()),
            ChangeTag::Delete => panic!("add-method removed the line {:?}", change.value()),
        }
    }
    assert_eq!(kept, old, "the old proto is not kept byte for byte");
    inserted
}

#[test]
fn a_crlf_checkout_is_grown_in_its_own_line_ends() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = demo(work.path());
    // As git with autocrlf would check it out: every text file in CRLF.
    for (path, bytes) in tree(&root) {
        if let Some(bytes) = bytes {
            let text = String::from_utf8(bytes).expect("text");
            write(&root, &path, &text.replace('\n', "\r\n"));
        }
    }
    let handler = read(&root, "src/methods/train_model.rs");
    ok(&root, &["add-method", "ScoreBatch"]);
    let proto = read(&root, PROTO);
    assert!(
        !proto.replace("\r\n", "").contains('\n'),
        "mixed line ends: {proto:?}"
    );
    assert!(proto.contains("  rpc ScoreBatch(ScoreBatchRequest) returns (ScoreBatchResponse);\r\n"));
    assert_eq!(read(&root, "src/methods/train_model.rs"), handler);
    let backups: Vec<String> = tree(&root)
        .into_keys()
        .filter(|path| path.ends_with(".orig"))
        .collect();
    assert!(
        backups.is_empty(),
        "line ends are not hand edits: {backups:?}"
    );
    assert_owned_hashes_match(&root);
}

// ------------------------------------------- same as generating it at once

/// Grows a project with add-method and compares it with the same project
/// generated with every method by `svcgen new`.
/// `first`: the `new` flags for the methods the project starts with (empty:
/// svcgen's default `Process` method, which the fresh project then names).
fn assert_grown_equals_fresh(name: &str, flags: &[&str], first: &[&str], added: &[(&str, bool)]) {
    let work = tempfile::tempdir().expect("temp dir");
    let mut grown_args: Vec<&str> = flags.to_vec();
    grown_args.extend_from_slice(first);
    let grown = new_project(&work.path().join("grown"), name, &grown_args);

    let mut fresh_args = grown_args.clone();
    if first.is_empty() {
        fresh_args.extend_from_slice(&["--method", "Process"]);
    }
    for (method, quick) in added {
        let mut args = vec!["add-method", method];
        if *quick {
            args.push("--quick");
        }
        ok(&grown, &args);
        fresh_args.push(if *quick { "--quick-method" } else { "--method" });
        fresh_args.push(method);
    }
    let fresh = new_project(&work.path().join("fresh"), name, &fresh_args);

    let added: Vec<&str> = added.iter().map(|(method, _)| *method).collect();
    assert_owned_files_equal(&grown, &fresh, &added);
    // Nothing besides the user files written once at creation (README,
    // Cargo.toml, ...) differs, and no file is missing on either side.
    let grown_files = tree(&grown);
    let fresh_files = tree(&fresh);
    assert_eq!(
        grown_files.keys().collect::<Vec<_>>(),
        fresh_files.keys().collect::<Vec<_>>()
    );
}

/// The owned files, the proto, the manifest and the handlers of the
/// `added` methods are the same, byte for byte, in `grown` and `fresh`.
fn assert_owned_files_equal(grown: &Path, fresh: &Path, added: &[&str]) {
    let owned = owned_paths(fresh);
    assert_eq!(owned_paths(grown), owned);
    assert!(
        owned.contains(&"src/methods/mod.rs".to_string()),
        "{owned:?}"
    );
    let proto = fresh_proto_path(fresh);
    let mut compared: Vec<String> = owned;
    compared.push(proto);
    compared.push("svcgen.toml".to_string());
    for method in added {
        let handler = format!("src/methods/{}.rs", snake(method));
        compared.push(handler);
    }
    for path in &compared {
        assert!(
            fs::read(grown.join(path)).expect("grown file")
                == fs::read(fresh.join(path)).expect("fresh file"),
            "{path} differs between the grown and the fresh project:\n{}",
            TextDiff::from_lines(&read(grown, path), &read(fresh, path))
                .unified_diff()
                .header("grown", "fresh")
        );
    }
}

fn fresh_proto_path(root: &Path) -> String {
    let table = manifest(root);
    table["service"]["proto_file"]
        .as_str()
        .expect("proto_file")
        .to_string()
}

fn snake(method: &str) -> String {
    use heck::ToSnakeCase;
    method.to_snake_case()
}

#[test]
fn add_method_gives_the_owned_files_and_proto_of_a_fresh_project() {
    assert_grown_equals_fresh(
        "demo-svc",
        &[],
        &["--method", "TrainModel"],
        &[("ScoreBatch", false), ("ExportONNX", true)],
    );
    assert_grown_equals_fresh(
        "Report_Builder",
        &common::CUSTOM_FLAGS,
        &["--quick-method", "Lookup"],
        &[
            ("TrainModel", false),
            ("score_batch", true),
            ("Rank", false),
        ],
    );
    // From a project made without any --method (the default demo method).
    assert_grown_equals_fresh("plain", &[], &[], &[("ScoreBatch", true)]);
}

// ---------------------------------------------------------------- dry run

#[test]
fn dry_run_writes_nothing_and_diffs_every_change() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = demo(work.path());
    let before = tree(&root);
    let shown = ok(&root, &["add-method", "ScoreBatch", "--dry-run"]);
    assert_unchanged(&root, &before, "--dry-run");
    assert!(
        !shown.contains(&*work.path().to_string_lossy()),
        "temp path in output"
    );

    // The diff names exactly the files the real run changes or creates.
    let diffed: Vec<String> = shown
        .lines()
        .filter_map(|line| line.strip_prefix("+++ b/"))
        .map(str::to_string)
        .collect();
    let new_files: Vec<&str> = shown
        .lines()
        .zip(shown.lines().skip(1))
        .filter(|(from, _)| *from == "--- /dev/null")
        .filter_map(|(_, to)| to.strip_prefix("+++ b/"))
        .collect();
    ok(&root, &["add-method", "ScoreBatch"]);
    let after = tree(&root);
    let mut changed: Vec<String> = tree_changes(&before, &after)
        .into_iter()
        .filter_map(|c| c.split_once(' ').map(|(_, path)| path.to_string()))
        .filter(|path| after.get(path).is_some_and(Option::is_some))
        .collect();
    changed.sort();
    let mut diffed_sorted = diffed.clone();
    diffed_sorted.sort();
    assert_eq!(diffed_sorted, changed);
    assert_eq!(new_files, ["src/methods/score_batch.rs"]);
    assert!(diffed.contains(&PROTO.to_string()) && diffed.contains(&"svcgen.toml".to_string()));
    assert!(shown.contains(
        "+  rpc ScoreBatch(ScoreBatchRequest) returns (ScoreBatchResponse);\n   // svcgen:rpcs\n"
    ));
}

#[test]
fn dry_run_diff_snapshot() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = demo(work.path());
    let shown = ok(&root, &["add-method", "ScoreBatch", "--dry-run"]);
    insta::assert_snapshot!("dry_run_score_batch", redact_hashes(&shown));
}

/// `text` with every quoted SHA-256 replaced by `"<sha256>"`. The snapshot
/// still shows which `[owned]` hashes change, but not their values: those
/// change with every edit of a template or of the runtime (whose hashes
/// are context lines of the diff), and `assert_owned_hashes_match` checks
/// them after a real run.
fn redact_hashes(text: &str) -> String {
    let is_hash = |part: &str| part.len() == 64 && part.bytes().all(|b| b.is_ascii_hexdigit());
    text.split('"')
        .map(|part| if is_hash(part) { "<sha256>" } else { part })
        .collect::<Vec<_>>()
        .join("\"")
}

// ------------------------------------ converting a project of svcgen 0.1.0
//
// svcgen 0.1.0 wrote the runtime into src/svcgen/ (manifest schema 1); the
// committed project in tests/fixtures/svcgen-0.1.0/ is what it made. Every
// test works on a copy (common::legacy_project).

/// The workspace crate that svcgen vendors into every project.
fn runtime_crate() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("svcgen-runtime")
}

/// The files of the runtime crate's library (its manifest, README, docs and
/// sources; not its tests), relative path → bytes.
fn runtime_library(crate_dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for top in ["Cargo.toml", "README.md", "docs", "src"] {
        for entry in walkdir::WalkDir::new(crate_dir.join(top)) {
            let entry = entry.expect("walk the runtime crate");
            if entry.file_type().is_file() {
                let bytes = fs::read(entry.path()).expect("read");
                files.insert(relative(crate_dir, entry.path()), bytes);
            }
        }
    }
    files
}

/// Everything under `dir` that is a file, relative path → bytes.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_of(tree(dir))
}

/// The files of `tree` (its directories left out).
fn files_of(tree: Tree) -> BTreeMap<String, Vec<u8>> {
    tree.into_iter()
        .filter_map(|(path, bytes)| Some((path, bytes?)))
        .collect()
}

/// Whether svcgen 0.1.0 owned `path` and the new layout no longer has it.
fn legacy_only(path: &str) -> bool {
    path.starts_with("src/svcgen/") || path == "tests/svcgen_runtime.rs"
}

#[test]
fn the_legacy_fixture_is_an_untouched_svcgen_0_1_0_project() {
    let fixture = legacy_fixture();
    assert_eq!(manifest(&fixture)["schema"].as_integer(), Some(1));
    assert_eq!(
        manifest_methods(&fixture),
        [("TrainModel".to_string(), "long".to_string(), 3)]
    );
    // As svcgen 0.1.0 wrote it: every owned file matches its hash.
    assert_owned_hashes_match(&fixture);
    let owned = owned_paths(&fixture);
    for path in [
        "src/svcgen/mod.rs",
        "src/svcgen/tasks.rs",
        "tests/svcgen_runtime.rs",
    ] {
        assert!(
            owned.contains(&path.to_string()),
            "{path} not owned: {owned:?}"
        );
    }
    assert!(!fixture.join("svcgen-runtime").exists());
    assert!(!fixture.join("src/svcgen.rs").exists());
    assert!(
        !fixture.join("Cargo.lock").exists(),
        "the fixture has no lock"
    );
    assert!(
        !read(&fixture, "Cargo.toml").contains("svcgen-runtime"),
        "the fixture must not depend on the runtime crate yet"
    );
}

#[test]
fn converting_refuses_until_cargo_toml_depends_on_the_runtime() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = legacy_project(work.path());
    let line = runtime_dependency_line();
    let needles = [
        "Cargo.toml",
        &format!("`{line}`"),
        "[dependencies]",
        "src/svcgen/",
    ];
    for args in [
        &["add-method", "ScoreBatch"][..],
        &["add-method", "ScoreBatch", "--dry-run"],
        &["add-method", "ScoreBatch", "--force"],
        &["add-method", "Rank", "--quick"],
    ] {
        refused(&root, &root, args, 1, &needles);
    }

    // Under [dev-dependencies] it is not enough: src/svcgen.rs needs it.
    let cargo_toml = read(&root, "Cargo.toml");
    write(
        &root,
        "Cargo.toml",
        &cargo_toml.replacen(
            "[dev-dependencies]\n",
            &format!("[dev-dependencies]\n{line}\n"),
            1,
        ),
    );
    refused(&root, &root, &["add-method", "ScoreBatch"], 1, &needles);
}

#[test]
fn converting_replaces_src_svcgen_with_the_vendored_runtime_and_keeps_user_files() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = legacy_project(work.path());
    add_runtime_dependency(&root);
    let legacy_owned = owned_paths(&root);
    let before = tree(&root);

    let out = ok(&root, &["add-method", "ScoreBatch"]);
    let after = tree(&root);

    // The old runtime is gone, its directory too.
    assert!(!root.join("src/svcgen").exists(), "src/svcgen/ is left");
    assert!(!root.join("tests/svcgen_runtime.rs").exists());
    let left: Vec<&String> = after.keys().filter(|path| legacy_only(path)).collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        legacy_owned.iter().filter(|path| legacy_only(path)).count() > 10,
        "{legacy_owned:?}"
    );

    // The new layout's files are there.
    for path in [
        "src/svcgen.rs",
        "svcgen-runtime/Cargo.toml",
        "svcgen-runtime/src/lib.rs",
        "tests/svcgen_methods.rs",
        "tests/end_to_end.rs",
        "src/methods/score_batch.rs",
    ] {
        assert!(root.join(path).is_file(), "{path} missing");
    }
    // The vendored runtime is the workspace crate's library, byte for byte,
    // and nothing else.
    let vendored = files_under(&root.join("svcgen-runtime"));
    let library = runtime_library(&runtime_crate());
    assert_eq!(
        vendored.keys().collect::<Vec<_>>(),
        library.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &library {
        assert!(
            vendored[path] == *bytes,
            "svcgen-runtime/{path} differs from the crate's"
        );
    }

    // Every user file is as it was, byte for byte.
    let user_files: Vec<&String> = before
        .iter()
        .filter(|(path, bytes)| {
            bytes.is_some()
                && !legacy_owned.contains(path)
                && *path != PROTO
                && *path != "svcgen.toml"
        })
        .map(|(path, _)| path)
        .collect();
    for path in [
        "src/main.rs",
        "src/lib.rs",
        "src/state.rs",
        "src/methods/train_model.rs",
        "Cargo.toml",
        "Dockerfile",
        "README.md",
    ] {
        assert!(
            user_files.contains(&&path.to_string()),
            "{path}: {user_files:?}"
        );
    }
    for path in user_files {
        assert!(after.get(path) == before.get(path), "{path} changed");
    }
    // The proto only gained the new method's lines.
    let proto_before = String::from_utf8(before[PROTO].clone().expect("proto")).expect("utf-8");
    let inserted = inserted_lines(&proto_before, &read(&root, PROTO));
    assert!(
        inserted.contains(
            &"  rpc ScoreBatch(ScoreBatchRequest) returns (ScoreBatchResponse);".to_string()
        ),
        "{inserted:#?}"
    );

    // The manifest is schema 2 and hashes the new owned files.
    assert_eq!(manifest(&root)["schema"].as_integer(), Some(2));
    assert_eq!(
        manifest_methods(&root),
        [("TrainModel", "long", 3), ("ScoreBatch", "long", 4)].map(|(n, k, t)| (
            n.to_string(),
            k.to_string(),
            t
        ))
    );
    assert_owned_hashes_match(&root);
    let owned = owned_paths(&root);
    assert!(!owned.iter().any(|path| legacy_only(path)), "{owned:?}");
    assert!(
        owned.contains(&"svcgen-runtime/src/lib.rs".to_string()),
        "{owned:?}"
    );
    let backups: Vec<&String> = after
        .keys()
        .filter(|path| path.ends_with(".orig"))
        .collect();
    assert!(
        backups.is_empty(),
        "nothing was edited by hand: {backups:?}"
    );

    // What is left for the user to do.
    assert!(
        out.contains("COPY svcgen-runtime ./svcgen-runtime"),
        "{out}"
    );
    assert!(out.contains("Cargo.lock"), "{out}");
}

#[test]
fn a_converted_project_has_the_owned_files_of_a_fresh_one() {
    let work = tempfile::tempdir().expect("temp dir");
    let converted = legacy_project(&work.path().join("converted"));
    add_runtime_dependency(&converted);
    ok(&converted, &["add-method", "ScoreBatch"]);
    let fresh = new_project(
        &work.path().join("fresh"),
        "demo-svc",
        &["--method", "TrainModel", "--method", "ScoreBatch"],
    );

    assert_owned_files_equal(&converted, &fresh, &["ScoreBatch"]);
    // The user file the conversion creates is svcgen new's too.
    assert_eq!(
        read(&converted, "tests/end_to_end.rs"),
        read(&fresh, "tests/end_to_end.rs")
    );
    // The same files on both sides, but Cargo.lock: the fixture has none,
    // and a conversion never writes one.
    let converted_paths: Vec<String> = tree(&converted).into_keys().collect();
    let fresh_paths: Vec<String> = tree(&fresh)
        .into_keys()
        .filter(|path| path != "Cargo.lock")
        .collect();
    assert_eq!(converted_paths, fresh_paths);
}

#[test]
fn converting_dry_run_writes_nothing_and_diffs_every_change() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = legacy_project(work.path());
    add_runtime_dependency(&root);
    let before = tree(&root);
    let shown = ok(&root, &["add-method", "ScoreBatch", "--dry-run"]);
    assert_unchanged(&root, &before, "--dry-run");

    ok(&root, &["add-method", "ScoreBatch"]);
    let (before, after) = (files_of(before), files_under(&root));
    // Every file the real run deletes, writes or creates is in the diff,
    // and the diff shows nothing else.
    let mut expected: Vec<String> = Vec::new();
    for (path, bytes) in &before {
        match after.get(path) {
            None => expected.push(format!("--- a/{path}\n+++ /dev/null\n")),
            Some(now) if now != bytes => expected.push(format!("--- a/{path}\n+++ b/{path}\n")),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|path| !before.contains_key(*path)) {
        expected.push(format!("--- /dev/null\n+++ b/{path}\n"));
    }
    for header in &expected {
        assert!(
            shown.contains(header),
            "{header:?} not in the diff: {shown}"
        );
    }
    let headers = shown
        .lines()
        .filter(|line| line.starts_with("+++ "))
        .count();
    assert_eq!(headers, expected.len(), "{expected:#?}");
    assert!(expected.len() > 30, "{expected:#?}");
}

#[test]
fn a_hand_edited_legacy_file_blocks_the_conversion_until_force_keeps_it() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = legacy_project(work.path());
    add_runtime_dependency(&root);
    edit_refuse_then_force(&root, "src/svcgen/tasks.rs");
    // src/svcgen/ now holds only the user's version; the rest converted.
    assert_eq!(
        files_under(&root.join("src/svcgen"))
            .into_keys()
            .collect::<Vec<_>>(),
        ["tasks.rs.orig"]
    );
    assert!(!root.join("tests/svcgen_runtime.rs").exists());
    for path in [
        "src/svcgen.rs",
        "svcgen-runtime/src/tasks.rs",
        "src/methods/score_batch.rs",
    ] {
        assert!(root.join(path).is_file(), "{path} missing");
    }
    assert_eq!(manifest(&root)["schema"].as_integer(), Some(2));
    assert_owned_hashes_match(&root);
}

#[test]
fn a_conversion_that_fails_midway_leaves_the_project_as_it_was() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = legacy_project(work.path());
    add_runtime_dependency(&root);
    // A directory where add-method stages tests/svcgen_methods.rs (a hidden
    // file beside it) makes the write fail after svcgen-runtime/ has been
    // staged, in directories that did not exist before.
    let blocker = "tests/.svcgen_methods.rs.svcgen-new";
    fs::create_dir(root.join(blocker)).expect("mkdir");
    refused(
        &root,
        &root,
        &["add-method", "ScoreBatch"],
        1,
        &["cannot write", blocker],
    );
    assert!(!root.join("svcgen-runtime").exists());

    fs::remove_dir(root.join(blocker)).expect("rmdir");
    ok(&root, &["add-method", "ScoreBatch"]);
    assert_owned_hashes_match(&root);
}
