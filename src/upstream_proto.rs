//! Reads an upstream service's `.proto` for `svcgen add-upstream`: parses
//! it with protox (the compiler generated projects use), resolves its
//! imports relative to its own folder and any `--include` folders, picks
//! the service, and collects every file to copy with the import path it is
//! known by.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// A parsed upstream proto, ready to be copied into a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamProto {
    /// The file that declares the service, as imports name it (relative to
    /// its include root): the file `build.rs` compiles.
    pub file: String,
    /// The chosen service, qualified by its package: `pkg.Service`.
    pub service: String,
    /// Every file to copy, the file itself first, then its imports: import
    /// path and text. Well-known types (`google/protobuf/*`) are built into
    /// protox and not copied.
    pub files: Vec<(String, String)>,
    /// Every message the files define, qualified (`pkg.Message`).
    pub messages: Vec<String>,
    /// The service's rpcs: name and qualified response type.
    pub rpcs: Vec<(String, String)>,
}

/// Parses `proto` (with `includes` as extra import roots) and picks its
/// service: the only one, or the one named `service` (simple or qualified).
pub fn load(proto: &Path, includes: &[PathBuf], service: Option<&str>) -> Result<UpstreamProto> {
    let shown = proto.display();
    if !proto.is_file() {
        bail!("{shown} is not a file; pass the path of the upstream service's .proto");
    }
    let (_, name) = folder_and_name(proto)?;
    let roots = import_roots(proto, includes)?;
    let hint = "; imports are resolved from its folder and each --include DIR";
    let compiler = compile(&roots, name, proto, hint)?;

    let set = compiler.file_descriptor_set();
    let main = set
        .file
        .iter()
        .find(|file| file.name() == name)
        .with_context(|| {
            format!("internal error: {name} is missing from its own descriptor set")
        })?;
    let package = main.package().to_string();
    let qualify = |simple: &str| match package.as_str() {
        "" => simple.to_string(),
        package => format!("{package}.{simple}"),
    };
    let services: Vec<String> = main.service.iter().map(|s| qualify(s.name())).collect();
    let rpcs_of = |qualified: &str| -> Vec<(String, String)> {
        main.service
            .iter()
            .find(|s| qualify(s.name()) == qualified)
            .map(|s| {
                s.method
                    .iter()
                    .map(|m| {
                        let output = m.output_type().trim_start_matches('.').to_string();
                        (m.name().to_string(), output)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let service = match (service, services.as_slice()) {
        (_, []) => {
            bail!("{shown} declares no service: an upstream must serve its results over gRPC")
        }
        (None, [only]) => only.clone(),
        (None, many) => bail!(
            "{shown} declares {} services ({}); pick one with --service",
            many.len(),
            many.join(", ")
        ),
        (Some(wanted), all) => all
            .iter()
            .find(|s| *s == wanted || s.rsplit('.').next() == Some(wanted))
            .cloned()
            .with_context(|| {
                format!(
                    "{shown} has no service `{wanted}`; it declares {}",
                    all.join(", ")
                )
            })?,
    };

    let mut files = Vec::new();
    let mut messages = Vec::new();
    for meta in compiler.files() {
        let Some(descriptor) = set.file.iter().find(|file| file.name() == meta.name()) else {
            continue;
        };
        messages.extend(qualified_messages(descriptor));
        // Files without a path are protox's built-in well-known types.
        let Some(path) = meta.path() else { continue };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        files.push((meta.name().to_string(), text));
    }
    // The service's own file first, then its imports in a stable order.
    files.sort_by(|a, b| (a.0 != name, &a.0).cmp(&(b.0 != name, &b.0)));
    messages.sort();
    Ok(UpstreamProto {
        file: name.to_string(),
        rpcs: rpcs_of(&service),
        service,
        files,
        messages,
    })
}

/// The qualified names of the messages `proto` (and its imports) define.
pub fn messages_of(proto: &Path) -> Result<Vec<String>> {
    let (dir, name) = folder_and_name(proto)?;
    let compiler = compile(&[dir.to_path_buf()], name, proto, "")?;
    let set = compiler.file_descriptor_set();
    Ok(set.file.iter().flat_map(qualified_messages).collect())
}

/// The folders `proto`'s imports are resolved from, in order: its own
/// folder, then each `--include` folder (refused unless a folder).
pub fn import_roots(proto: &Path, includes: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut roots = vec![folder(proto).to_path_buf()];
    for include in includes {
        if !include.is_dir() {
            bail!("--include {} is not a directory", include.display());
        }
        roots.push(include.clone());
    }
    Ok(roots)
}

/// The folder holding `proto` (`.` for a bare file name).
fn folder(proto: &Path) -> &Path {
    proto
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The folder `proto` is in (its first import root) and its file name.
fn folder_and_name(proto: &Path) -> Result<(&Path, &str)> {
    let dir = folder(proto);
    let name = proto
        .file_name()
        .and_then(|name| name.to_str())
        .with_context(|| format!("{}: the file name is not UTF-8", proto.display()))?;
    Ok((dir, name))
}

/// Compiles `name` (`proto`, shown in errors followed by `hint`) with its
/// imports resolved from `roots`.
fn compile(roots: &[PathBuf], name: &str, proto: &Path, hint: &str) -> Result<protox::Compiler> {
    let shown = proto.display();
    let mut compiler = protox::Compiler::new(roots)
        .with_context(|| format!("cannot use the import folders of {shown}"))?;
    compiler.include_imports(true);
    compiler.open_file(name).map_err(|err| {
        anyhow::anyhow!(
            "{shown} does not compile as a proto: {}{hint}",
            crate::cli::one_line(&err.to_string())
        )
    })?;
    Ok(compiler)
}

/// `package.Message` for every top-level message of `file`.
fn qualified_messages(
    file: &protox::prost_reflect::prost_types::FileDescriptorProto,
) -> impl Iterator<Item = String> + '_ {
    let prefix = match file.package() {
        "" => String::new(),
        package => format!("{package}."),
    };
    file.message_type
        .iter()
        .map(move |m| format!("{prefix}{}", m.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    const COMMON: &str =
        "syntax = \"proto3\";\npackage common;\nmessage Record { string id = 1; }\n";
    const PRODUCER: &str = "syntax = \"proto3\";\npackage data_generator;\nimport \"common.proto\";\nimport \"google/protobuf/empty.proto\";\nmessage GenerateDataResponse { repeated common.Record records = 1; }\nservice DataGeneratorService {\n  rpc GenerateData(google.protobuf.Empty) returns (GenerateDataResponse);\n}\n";

    #[test]
    fn resolves_imports_from_include_folders_and_skips_well_known_types() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared/proto");
        write(&shared, "common.proto", COMMON);
        let proto = write(
            &dir.path().join("services/gen/proto"),
            "gen.proto",
            PRODUCER,
        );
        let err = load(&proto, &[], None).unwrap_err().to_string();
        assert!(
            err.contains("does not compile") && err.contains("common.proto"),
            "{err}"
        );

        let loaded = load(&proto, &[shared], None).unwrap();
        assert_eq!(loaded.service, "data_generator.DataGeneratorService");
        assert_eq!(loaded.file, "gen.proto");
        let names: Vec<&str> = loaded.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["gen.proto", "common.proto"]);
        assert_eq!(loaded.files[1].1, COMMON);
        assert!(loaded
            .messages
            .contains(&"data_generator.GenerateDataResponse".to_string()));
    }

    #[test]
    fn picks_the_service_or_names_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        let none = write(
            dir.path(),
            "none.proto",
            "syntax = \"proto3\";\nmessage A {}\n",
        );
        let err = load(&none, &[], None).unwrap_err().to_string();
        assert!(err.contains("declares no service"), "{err}");

        let two = write(
            dir.path(),
            "two.proto",
            "syntax = \"proto3\";\nmessage A {}\nservice S1 { rpc X(A) returns (A); }\nservice S2 { rpc Y(A) returns (A); }\n",
        );
        let err = load(&two, &[], None).unwrap_err().to_string();
        assert!(
            err.contains("2 services (S1, S2)") && err.contains("--service"),
            "{err}"
        );
        assert_eq!(load(&two, &[], Some("S2")).unwrap().service, "S2");
        let err = load(&two, &[], Some("S3")).unwrap_err().to_string();
        assert!(err.contains("no service `S3`"), "{err}");

        let broken = write(
            dir.path(),
            "broken.proto",
            "syntax = \"proto3\";\nmessage {\n",
        );
        let err = load(&broken, &[], None).unwrap_err().to_string();
        assert!(
            err.contains("does not compile") && !err.contains('\n'),
            "{err}"
        );
    }
}
