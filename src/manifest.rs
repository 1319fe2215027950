//! The `svcgen.toml` manifest: what `svcgen new` decided (names, ports,
//! methods with their kinds and LastResult tags) and the SHA-256 of every
//! svcgen-owned file, so later commands can tell hand edits apart.

use std::fmt::Write;

use sha2::{Digest, Sha256};

use crate::render::{Owner, RenderedFile};
use crate::spec::ServiceSpec;

/// The manifest's file name, at the project root.
pub const FILE_NAME: &str = "svcgen.toml";

/// The manifest format this svcgen writes and understands.
pub const SCHEMA: u32 = 1;

/// SHA-256 (hex) of `contents` with CRLF line ends turned into LF, so a
/// checkout with Windows line ends still matches.
pub fn content_hash(contents: &str) -> String {
    let normalised = contents.replace("\r\n", "\n");
    Sha256::digest(normalised.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// The manifest text for `spec`, hashing the owned files among `files`.
pub fn render(spec: &ServiceSpec, files: &[RenderedFile]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by svcgen; `svcgen add-method` updates it. Keep it in version control."
    );
    let _ = writeln!(out, "schema = {SCHEMA}");
    let _ = writeln!(out, "svcgen_version = \"{}\"", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out);
    let _ = writeln!(out, "[service]");
    let _ = writeln!(out, "name = \"{}\"", spec.crate_name);
    let _ = writeln!(out, "proto_package = \"{}\"", spec.proto_package);
    let _ = writeln!(out, "proto_service = \"{}\"", spec.proto_service);
    let _ = writeln!(out, "proto_file = \"proto/{}.proto\"", spec.proto_file);
    let _ = writeln!(out, "http_port = {}", spec.http_port);
    let _ = writeln!(out, "grpc_port = {}", spec.grpc_port);
    let _ = writeln!(out, "grpc_host = \"{}\"", spec.grpc_host);
    for method in &spec.methods {
        let _ = writeln!(out);
        let _ = writeln!(out, "[[methods]]");
        let _ = writeln!(out, "name = \"{}\"", method.name);
        let _ = writeln!(out, "kind = \"{}\"", method.kind.as_str());
        let _ = writeln!(out, "tag = {}", method.tag);
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "# SHA-256 of each svcgen-owned file (LF line ends): a mismatch means a hand edit."
    );
    let _ = writeln!(out, "[owned]");
    let mut owned: Vec<&RenderedFile> = files
        .iter()
        .filter(|file| file.owner == Owner::Svcgen)
        .collect();
    owned.sort_by(|a, b| a.path.cmp(&b.path));
    for file in owned {
        let path = file.path.to_string_lossy().replace('\\', "/");
        let _ = writeln!(out, "\"{path}\" = \"{}\"", content_hash(&file.contents));
    }
    out
}
