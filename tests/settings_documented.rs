//! Every environment variable the runtime reads is documented, with its
//! default, in the README svcgen writes and in the contract: an operator
//! reads those, not the runtime's source.

use std::collections::BTreeSet;
use std::path::Path;

mod common;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The all-caps string literals of the runtime's configuration and logging
/// code: the names of the variables it reads.
fn variables_read() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in [
        "svcgen-runtime/src/config.rs",
        "svcgen-runtime/src/logging.rs",
    ] {
        let source = std::fs::read_to_string(Path::new(MANIFEST_DIR).join(file))
            .unwrap_or_else(|err| panic!("reading {file}: {err}"));
        let code = source.split("#[cfg(test)]").next().unwrap_or_default();
        for literal in code.split('"').skip(1).step_by(2) {
            let is_name = literal.len() >= 4
                && literal
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if is_name {
                names.insert(literal.to_string());
            }
        }
    }
    names
}

/// The first cell of each row of the table under `heading`.
fn documented(text: &str, heading: &str) -> BTreeSet<String> {
    let section = text
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("no {heading:?} section"));
    section
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| line.split('|').nth(1))
        .map(|cell| cell.trim().trim_matches('`').to_string())
        .collect()
}

#[test]
fn every_variable_the_runtime_reads_is_in_the_readme_and_the_contract() {
    let read = variables_read();
    for expected in [
        "PORT",
        "HOST",
        "SERVICE_API_KEY",
        "METHOD_TIMEOUT_SECS",
        "MAX_CONNECTIONS",
        "RUST_LOG",
    ] {
        assert!(
            read.contains(expected),
            "the scan missed {expected}: {read:?}"
        );
    }
    let work = tempfile::tempdir().expect("temp dir");
    let project = common::new_project(work.path(), "demo-svc", &[]);
    let readme = common::read(&project, "README.md");
    let contract =
        std::fs::read_to_string(Path::new(MANIFEST_DIR).join("svcgen-runtime/docs/contract.md"))
            .expect("the contract");
    for (doc, table) in [
        (
            "the generated README",
            documented(&readme, "## Configuration"),
        ),
        ("the contract", documented(&contract, "## 6. Configuration")),
    ] {
        let missing: Vec<&String> = read.difference(&table).collect();
        assert!(missing.is_empty(), "{doc} does not document {missing:?}");
    }
}
