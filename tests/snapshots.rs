//! Snapshot tests of every file `svcgen new` renders, for the defaults and
//! for a customised three-method service. A change to any template shows
//! up here as a reviewable diff (`cargo insta review`). The vendored
//! runtime (`svcgen-runtime/`) is not a rendering: it is checked to be the
//! workspace crate byte for byte instead.

use std::path::Path;

mod common;

/// Generates a project with `args` and snapshots each of its files.
fn snapshot_project(label: &str, args: &[&str], created: &str) {
    let work = tempfile::tempdir().expect("temp dir");
    common::svcgen_ok(work.path(), args);
    let root = work.path().join(created);
    let mut files: Vec<_> = walkdir::WalkDir::new(&root)
        .into_iter()
        .map(|entry| entry.expect("walk"))
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| entry.into_path())
        .collect();
    files.sort();
    let listing: Vec<String> = files
        .iter()
        .map(|path| common::relative(&root, path))
        .collect();
    insta::assert_snapshot!(format!("{label}__file_list"), listing.join("\n"));
    for path in &files {
        if path.ends_with("Cargo.lock") {
            // ~1,200 lines of versions: checked by `cargo build --locked` in
            // tests/generated_project.rs and by the lockfile unit tests.
            continue;
        }
        if path.starts_with(root.join("svcgen-runtime")) {
            assert_vendored(&root, path);
            continue;
        }
        let name = common::relative(&root, path).replace('/', "__");
        let mut contents = std::fs::read_to_string(path).expect("read generated file");
        if path.ends_with("svcgen.toml") {
            contents = redact_runtime_hashes(&contents);
        }
        insta::assert_snapshot!(format!("{label}__{name}"), contents);
    }
}

/// The manifest with the hashes of the vendored runtime's files replaced:
/// they change with every runtime edit, and `assert_vendored` plus the
/// add-method tests (which check every `[owned]` hash against the files)
/// already pin them. The paths stay, so the list of owned files is reviewed.
fn redact_runtime_hashes(manifest: &str) -> String {
    manifest
        .lines()
        .map(|line| match line.split_once(" = ") {
            Some((path, _)) if path.starts_with("\"svcgen-runtime/") => {
                format!("{path} = \"<sha256 of the workspace crate's file>\"\n")
            }
            _ => format!("{line}\n"),
        })
        .collect()
}

/// A vendored runtime file is the workspace crate's file, byte for byte.
fn assert_vendored(root: &Path, path: &Path) {
    let relative = path
        .strip_prefix(root.join("svcgen-runtime"))
        .expect("inside svcgen-runtime/");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("svcgen-runtime");
    let original = std::fs::read(workspace.join(relative)).expect("the workspace crate's file");
    let vendored = std::fs::read(path).expect("the vendored file");
    assert!(
        original == vendored,
        "{} differs from the workspace crate",
        relative.display()
    );
}

#[test]
fn default_project() {
    snapshot_project("default", &["new", "demo-svc", "--no-input"], "demo-svc");
}

#[test]
fn three_methods_with_custom_ports_host_package_and_service() {
    snapshot_project("custom", &common::custom_new_args(), common::CUSTOM_DIR);
}
