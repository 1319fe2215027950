//! The layout of a generated project, in one table: every file svcgen
//! writes, where its contents come from, who owns it, and whether there is
//! one per project or one per method. `new`, `add-method` and the manifest
//! all read it, so a file's path and owner are decided here and nowhere else.

use serde::Serialize;

use crate::spec::{MethodSpec, ServiceSpec};

/// How a generated project gets the `svcgen-runtime` crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// A verbatim copy of the crate in `svcgen-runtime/`, depended on by path.
    Vendored,
    /// A version requirement on the published crate; nothing is copied.
    #[allow(dead_code)] // the other position of the switch below
    Published,
}

/// The one switch: make it [`Runtime::Published`] once `svcgen-runtime` is
/// on crates.io (and refresh `templates/reference/Cargo.lock`).
pub const RUNTIME: Runtime = Runtime::Vendored;

/// The directory the runtime is vendored into, at the project root.
pub const RUNTIME_DIR: &str = "svcgen-runtime";

/// The `[dependencies]` line that brings in the runtime.
pub fn runtime_dependency() -> String {
    let version = svcgen_runtime::source::VERSION;
    match RUNTIME {
        Runtime::Vendored => {
            format!("svcgen-runtime = {{ version = \"{version}\", path = \"{RUNTIME_DIR}\" }}")
        }
        Runtime::Published => format!("svcgen-runtime = \"{version}\""),
    }
}

/// The contract document a project's README and `src/svcgen.rs` cite: the
/// vendored copy, or the published crate's docs.
pub fn contract_doc() -> String {
    match RUNTIME {
        Runtime::Vendored => format!("{RUNTIME_DIR}/docs/contract.md"),
        Runtime::Published => format!(
            "https://docs.rs/svcgen-runtime/{}/svcgen_runtime/contract/",
            svcgen_runtime::source::VERSION
        ),
    }
}

/// Who may change a generated file later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    /// Rewritten by svcgen; hashed in the manifest to detect hand edits.
    Svcgen,
    /// The proto: svcgen only inserts at its markers.
    Shared,
    /// Written once, never touched again.
    User,
}

/// Where a file's contents come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A Tera template under `templates/` (embedded in svcgen).
    Template(&'static str),
    /// The runtime crate's own files, byte for byte.
    Runtime,
    /// The tested reference `Cargo.lock`, its root renamed.
    Lockfile,
    /// `svcgen.toml`, rendered last: it hashes the svcgen-owned files.
    Manifest,
    /// An upstream service's proto files, copied by `add-upstream` (never
    /// rendered: they come from the command's input).
    UpstreamProto,
}

/// Where a file goes, relative to the project root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// This exact path.
    Fixed(&'static str),
    /// `proto/<proto_file>.proto`.
    Proto,
    /// `src/methods/<handler>.rs`: one per method.
    Handler,
    /// `svcgen-runtime/<path>`: one per runtime file (when vendored).
    RuntimeFile,
    /// `proto/upstream/<name>/<file>`: one per copied file of each upstream.
    UpstreamFile,
}

/// One row of the layout.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub destination: Destination,
    pub source: Source,
    pub owner: Owner,
}

const fn row(destination: Destination, source: Source, owner: Owner) -> Entry {
    Entry {
        destination,
        source,
        owner,
    }
}

use Destination::{Fixed, Handler, Proto, RuntimeFile, UpstreamFile};
use Owner::{Shared, Svcgen, User};
use Source::{Lockfile, Manifest, Runtime as RuntimeSource, Template, UpstreamProto};

/// Every file of a generated project.
pub const LAYOUT: &[Entry] = &[
    row(Fixed("Cargo.toml"), Template("Cargo.toml.tera"), User),
    row(Fixed("Cargo.lock"), Lockfile, User),
    row(Fixed("build.rs"), Template("build.rs.tera"), Svcgen),
    row(Proto, Template("proto/service.proto.tera"), Shared),
    row(UpstreamFile, UpstreamProto, Shared),
    row(Fixed("src/main.rs"), Template("src/main.rs.tera"), User),
    row(Fixed("src/lib.rs"), Template("src/lib.rs.tera"), User),
    row(
        Fixed("src/svcgen.rs"),
        Template("src/svcgen.rs.tera"),
        Svcgen,
    ),
    row(Fixed("src/state.rs"), Template("src/state.rs.tera"), User),
    row(
        Fixed("src/methods/mod.rs"),
        Template("src/methods/mod.rs.tera"),
        Svcgen,
    ),
    row(Handler, Template("src/methods/method.rs.tera"), User),
    row(RuntimeFile, RuntimeSource, Svcgen),
    row(
        Fixed("tests/svcgen_methods.rs"),
        Template("tests/svcgen_methods.rs.tera"),
        Svcgen,
    ),
    row(
        Fixed("tests/end_to_end.rs"),
        Template("tests/end_to_end.rs.tera"),
        User,
    ),
    row(Fixed("Dockerfile"), Template("Dockerfile.tera"), User),
    row(Fixed(".dockerignore"), Template("dockerignore.tera"), User),
    row(Fixed(".gitignore"), Template("gitignore.tera"), User),
    row(Fixed("README.md"), Template("README.md.tera"), User),
    row(Fixed(MANIFEST_FILE), Manifest, User),
];

/// The manifest's file name, at the project root.
pub const MANIFEST_FILE: &str = "svcgen.toml";

impl Entry {
    /// The paths this row produces for `spec`.
    pub fn paths(&self, spec: &ServiceSpec) -> Vec<String> {
        match self.destination {
            Fixed(path) => vec![path.to_string()],
            Proto => vec![proto_path(spec)],
            Handler => spec.methods.iter().map(handler_path).collect(),
            RuntimeFile => runtime_files()
                .map(|file| format!("{RUNTIME_DIR}/{}", file.path))
                .collect(),
            UpstreamFile => spec
                .upstreams
                .iter()
                .flat_map(|upstream| {
                    let dir = upstream_dir(&upstream.name);
                    upstream
                        .files
                        .iter()
                        .map(move |file| format!("{dir}/{file}"))
                })
                .collect(),
        }
    }
}

/// The runtime files a project gets: all of them when vendored, none once
/// the crate is published.
pub fn runtime_files() -> impl Iterator<Item = &'static svcgen_runtime::source::File> {
    let files: &[svcgen_runtime::source::File] = match RUNTIME {
        Runtime::Vendored => svcgen_runtime::source::FILES,
        Runtime::Published => &[],
    };
    files.iter()
}

/// `proto/<proto_file>.proto`: the only proto directly in `proto/`.
pub fn proto_path(spec: &ServiceSpec) -> String {
    format!("proto/{}.proto", spec.proto_file)
}

/// `proto/upstream/<name>`: where an upstream's proto files are copied.
/// Not directly in `proto/`: the platform's export reads `proto/*.proto`
/// as this service's own proto and needs exactly one there.
pub fn upstream_dir(name: &str) -> String {
    format!("proto/upstream/{name}")
}

/// `src/methods/<handler>.rs`.
pub fn handler_path(method: &MethodSpec) -> String {
    format!("src/methods/{}.rs", method.handler)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::input;
    use crate::spec::MethodKind;

    fn spec() -> ServiceSpec {
        ServiceSpec::new(input(&[
            ("TrainModel", MethodKind::Long),
            ("ExportONNX", MethodKind::Quick),
        ]))
        .unwrap()
    }

    #[test]
    fn every_path_has_exactly_one_row() {
        let spec = spec();
        let mut all: Vec<String> = LAYOUT.iter().flat_map(|e| e.paths(&spec)).collect();
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count, "a path is produced by two rows");
    }

    #[test]
    fn owners_follow_the_table() {
        let spec = spec();
        let files = crate::render::render(&spec).unwrap();
        let owner = |path: &str| files.iter().find(|f| f.path == path).map(|f| f.owner);
        assert_eq!(owner("src/svcgen.rs"), Some(Owner::Svcgen));
        assert_eq!(owner("src/methods/mod.rs"), Some(Owner::Svcgen));
        assert_eq!(owner("svcgen-runtime/src/lib.rs"), Some(Owner::Svcgen));
        assert_eq!(owner("proto/demo_svc.proto"), Some(Owner::Shared));
        assert_eq!(owner("src/methods/export_onnx.rs"), Some(Owner::User));
        assert_eq!(owner("tests/end_to_end.rs"), Some(Owner::User));
        assert_eq!(owner("src/methods/other.rs"), None);
    }

    #[test]
    fn the_runtime_dependency_is_one_line() {
        let line = runtime_dependency();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("svcgen-runtime = "), "{line}");
    }
}
