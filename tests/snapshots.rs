//! Snapshot tests of every file `svcgen new` writes, for the defaults and
//! for a customised three-method service. A change to any template shows
//! up here as a reviewable diff (`cargo insta review`).

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
    let listing: Vec<String> = files.iter().map(|path| relative(&root, path)).collect();
    insta::assert_snapshot!(format!("{label}__file_list"), listing.join("\n"));
    for path in &files {
        if path.ends_with("Cargo.lock") {
            // ~1,500 lines of versions: checked by `cargo build --locked` in
            // tests/generated_project.rs and by the lockfile unit tests.
            continue;
        }
        let name = relative(&root, path).replace('/', "__");
        let contents = std::fs::read_to_string(path).expect("read generated file");
        insta::assert_snapshot!(format!("{label}__{name}"), contents);
    }
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .expect("inside the project")
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn default_project() {
    snapshot_project("default", &["new", "demo-svc", "--no-input"], "demo-svc");
}

#[test]
fn three_methods_with_custom_ports_host_package_and_service() {
    snapshot_project("custom", &common::custom_new_args(), common::CUSTOM_DIR);
}
