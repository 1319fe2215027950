//! The `svcgen.toml` manifest: what `svcgen new` decided (names, ports,
//! methods with their kinds and LastResult tags) and the SHA-256 of every
//! svcgen-owned file, so later commands can tell hand edits apart.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::spec::{MethodKind, ServiceSpec, SpecInput, UpstreamSpec, FIRST_METHOD_TAG};

/// The manifest's file name, at the project root.
pub const FILE_NAME: &str = crate::layout::MANIFEST_FILE;

/// The manifest format this svcgen writes. Schema 1 is a project whose
/// runtime lives in `src/svcgen/` (svcgen 0.1.0); `add-method` converts it.
pub const SCHEMA: u32 = 2;

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

/// `value` as a TOML basic string, quotes included: `"`, `\` and the
/// control characters TOML forbids in one (U+0000 to U+001F, U+007F) are
/// escaped, every other character is kept as it is, so an ordinary value
/// reads the same as it did between plain quotes.
fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{0}'..='\u{1f}' | '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The manifest text for `spec`, with the hash of each svcgen-owned file in
/// `owned` (path, contents). Every string is written with [`toml_string`].
pub fn render<'a>(spec: &ServiceSpec, owned: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let q = toml_string;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by svcgen; `svcgen add-method` updates it. Keep it in version control."
    );
    let _ = writeln!(out, "schema = {SCHEMA}");
    let _ = writeln!(out, "svcgen_version = {}", q(env!("CARGO_PKG_VERSION")));
    let _ = writeln!(out);
    let _ = writeln!(out, "[service]");
    let _ = writeln!(out, "name = {}", q(&spec.crate_name));
    let _ = writeln!(out, "proto_package = {}", q(&spec.proto_package));
    let _ = writeln!(out, "proto_service = {}", q(&spec.proto_service));
    let proto_file = format!("proto/{}.proto", spec.proto_file);
    let _ = writeln!(out, "proto_file = {}", q(&proto_file));
    let _ = writeln!(out, "http_port = {}", spec.http_port);
    let _ = writeln!(out, "grpc_port = {}", spec.grpc_port);
    let _ = writeln!(out, "grpc_host = {}", q(&spec.grpc_host));
    for method in &spec.methods {
        let _ = writeln!(out);
        let _ = writeln!(out, "[[methods]]");
        let _ = writeln!(out, "name = {}", q(&method.name));
        let _ = writeln!(out, "kind = {}", q(method.kind.as_str()));
        let _ = writeln!(out, "tag = {}", method.tag);
    }
    for upstream in &spec.upstreams {
        let _ = writeln!(out);
        let _ = writeln!(out, "[[upstreams]]");
        let _ = writeln!(out, "name = {}", q(&upstream.name));
        let _ = writeln!(out, "service = {}", q(&upstream.service));
        let _ = writeln!(out, "file = {}", q(&upstream.file));
        let files: Vec<String> = upstream.files.iter().map(|f| q(f)).collect();
        let _ = writeln!(out, "files = [{}]", files.join(", "));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "# SHA-256 of each svcgen-owned file (LF line ends): a mismatch means a hand edit."
    );
    let _ = writeln!(out, "[owned]");
    let mut owned: Vec<(&str, &str)> = owned.collect();
    owned.sort();
    for (path, contents) in owned {
        let _ = writeln!(out, "{} = {}", q(path), q(&content_hash(contents)));
    }
    out
}

/// A parsed `svcgen.toml` (its `schema` checked by [`Manifest::parse`]).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Manifest {
    /// 1: the runtime is in `src/svcgen/`; 2: it is the `svcgen-runtime` crate.
    pub schema: u32,
    pub service: ServiceSection,
    #[serde(default)]
    pub methods: Vec<MethodEntry>,
    /// `[[upstreams]]`: the services whose protos `add-upstream` copied in.
    #[serde(default)]
    pub upstreams: Vec<UpstreamSpec>,
    /// Owned file (relative path) → SHA-256 of its LF-normalised content.
    #[serde(default)]
    pub owned: BTreeMap<String, String>,
}

/// `[service]`: what `svcgen new` was given, after validation.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ServiceSection {
    pub name: String,
    pub proto_package: String,
    pub proto_service: String,
    pub http_port: u16,
    pub grpc_port: u16,
    pub grpc_host: String,
}

/// `[[methods]]`: one method, its kind and its LastResult tag.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MethodEntry {
    pub name: String,
    pub kind: MethodKind,
    pub tag: u32,
}

/// Just the schema number, read first so that a newer manifest is refused
/// with a clear message rather than a parse error about some new field.
#[derive(serde::Deserialize)]
struct SchemaOnly {
    schema: Option<u32>,
}

impl Manifest {
    /// Parses the manifest text read from `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Manifest> {
        let shown = path.display();
        let schema = toml::from_str::<SchemaOnly>(text)
            .with_context(|| format!("{shown} is not valid TOML"))?
            .schema
            .with_context(|| {
                format!("{shown} has no `schema` number; it was not written by svcgen")
            })?;
        if schema > SCHEMA {
            bail!(
                "{shown} has schema {schema}, newer than this svcgen understands ({SCHEMA}); upgrade svcgen (cargo install svcgen)"
            );
        }
        toml::from_str(text).with_context(|| format!("{shown} is not a valid svcgen manifest"))
    }

    /// The spec input that reproduces this project, plus `extra` methods
    /// appended with the next free tags.
    pub fn spec_input(&self, extra: &[(String, MethodKind)]) -> SpecInput {
        let mut methods: Vec<(String, MethodKind)> = self
            .methods
            .iter()
            .map(|m| (m.name.clone(), m.kind))
            .collect();
        let mut tags: Vec<u32> = self.methods.iter().map(|m| m.tag).collect();
        let next = tags
            .iter()
            .copied()
            .max()
            .map_or(FIRST_METHOD_TAG, |max| max + 1);
        for ((name, kind), tag) in extra.iter().zip(next..) {
            methods.push((name.clone(), *kind));
            tags.push(tag);
        }
        SpecInput {
            crate_name: self.service.name.clone(),
            methods,
            http_port: self.service.http_port,
            grpc_port: self.service.grpc_port,
            grpc_host: Some(self.service.grpc_host.clone()),
            proto_package: Some(self.service.proto_package.clone()),
            proto_service: Some(self.service.proto_service.clone()),
            tags: Some(tags),
            upstreams: self.upstreams.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::input;
    use crate::spec::MethodKind;

    #[test]
    fn ordinary_strings_are_only_quoted() {
        for value in [
            "demo-svc",
            "acme.reports.v1",
            "proto/x.proto",
            "0.2.0",
            "é ü ✓",
        ] {
            assert_eq!(toml_string(value), format!("\"{value}\""));
        }
    }

    #[test]
    fn quotes_backslashes_and_control_characters_are_escaped() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(
            toml_string("\n\r\t\u{8}\u{c}\u{0}\u{1b}\u{7f}"),
            r#""\n\r\t\b\f\u0000\u001B\u007F""#
        );
        for value in ["\"", "\\", "\\\"", "x\u{1}y\u{7f}", "tab\there", "\u{85}"] {
            let text = format!("v = {}\n", toml_string(value));
            let table: toml::Table = toml::from_str(&text).unwrap();
            assert_eq!(table["v"].as_str(), Some(value), "{text}");
        }
    }

    #[test]
    fn upstream_file_names_with_spaces_and_accents_survive_write_then_read() {
        let mut i = input(&[("Process", MethodKind::Long)]);
        i.upstreams.push(UpstreamSpec {
            name: "scorer".into(),
            file: "my scorer/café.proto".into(),
            service: "acme.Scorer".into(),
            files: vec!["my scorer/café.proto".into(), "plain/types.proto".into()],
        });
        let spec = ServiceSpec::new(i).unwrap();
        let owned = [(
            "proto/upstream/scorer/my scorer/café.proto",
            "syntax = \"proto3\";\n",
        )];
        let text = render(&spec, owned.iter().copied());
        let manifest = Manifest::parse(&text, Path::new("svcgen.toml")).unwrap();
        assert_eq!(manifest.upstreams, spec.upstreams);
        assert_eq!(manifest.service.name, spec.crate_name);
        assert_eq!(manifest.service.grpc_host, spec.grpc_host);
        assert_eq!(manifest.methods[0].name, "Process");
        assert_eq!(
            manifest.owned.get(owned[0].0),
            Some(&content_hash(owned[0].1))
        );
    }

    #[test]
    fn upstream_file_names_with_quotes_backslashes_or_newlines_are_refused() {
        for file in [r#"we"ird.proto"#, r"we\ird.proto", "two\nlines.proto"] {
            let mut i = input(&[("Process", MethodKind::Long)]);
            i.upstreams.push(UpstreamSpec {
                name: "scorer".into(),
                file: "scorer.proto".into(),
                service: "acme.Scorer".into(),
                files: vec!["scorer.proto".into(), file.into()],
            });
            let err = ServiceSpec::new(i).unwrap_err().to_string();
            assert!(err.contains(&format!("{file:?}")), "{err}");
            assert!(
                err.contains("quotes, backslashes or control characters"),
                "{err}"
            );
        }
    }
}
