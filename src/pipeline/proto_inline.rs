//! A node's proto made self-contained for the portal: each imported file is
//! found (beside the proto, then in each `--include` folder), made
//! self-contained itself, and the messages and enums the proto needs from
//! it are copied in where its `import` line was; references written with
//! the imported package (`common.EnergyRecord`) lose the prefix. The
//! service's own files are never changed.

use super::proto_text::{Definition, Import, ProtoText};
use super::usecase::violation;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// How deep imports may nest before svcgen gives up (an import cycle).
const MAX_DEPTH: usize = 16;

/// `text` (the proto of node `node`, at `path`) with every import inlined.
pub fn self_contained(node: &str, path: &Path, text: &str, includes: &[PathBuf]) -> Result<String> {
    let roots = crate::upstream_proto::import_roots(path, includes)?;
    inline(node, text, &roots, 0)
}

fn inline(node: &str, text: &str, roots: &[PathBuf], depth: usize) -> Result<String> {
    let own = ProtoText::parse(text).map_err(|e| violation(node, None, e))?;
    if own.imports.is_empty() {
        return Ok(text.to_string());
    }
    if depth >= MAX_DEPTH {
        return Err(violation(
            node,
            None,
            "its imports nest too deep (an import cycle?)",
        ));
    }
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut inlined: BTreeSet<String> = BTreeSet::new();
    for import in &own.imports {
        let file = resolve(node, &import.path, roots)?;
        let source = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let flat = inline(node, &source, roots, depth + 1)?;
        let imported = ProtoText::parse(&flat)
            .map_err(|e| violation(node, None, format!("{}: {e}", file.display())))?;
        edits.extend(unqualify(&own, imported.package.as_deref(), &imported));
        let needed = needed(&own, &imported, &inlined);
        let mut block = String::new();
        for definition in needed {
            if own.definition(&definition.name).is_some() {
                return Err(violation(
                    node,
                    None,
                    format!(
                        "its proto defines `{}` and imports another from \"{}\"; the exported proto can hold only one",
                        definition.name, import.path
                    ),
                ));
            }
            inlined.insert(definition.name.clone());
            block.push_str(&own_text(&imported, definition));
            block.push('\n');
        }
        // Imports sharing a line share its replacement.
        match edits.iter_mut().find(|(range, _)| *range == import.span) {
            Some((_, earlier)) => earlier.push_str(&block),
            None => {
                check_import_line(node, &own, import)?;
                edits.push((import.span.clone(), block));
            }
        }
    }
    Ok(apply(text, edits))
}

/// Refuses an import whose line holds more than imports and a comment: the
/// line is replaced by what the imports bring.
fn check_import_line(node: &str, own: &ProtoText, import: &Import) -> Result<()> {
    let mut rest = own.text[import.span.clone()].to_string();
    for other in own.imports.iter().rev().filter(|i| i.span == import.span) {
        let at = other.statement.start - import.span.start..other.statement.end - import.span.start;
        rest.replace_range(at, "");
    }
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with("//") {
        return Ok(());
    }
    Err(violation(
        node,
        None,
        format!(
            "its proto has `import \"{}\"` on a line with `{rest}`; put the import on its own line",
            import.path
        ),
    ))
}

/// The file `import` names, in the first of `roots` holding it.
fn resolve(node: &str, import: &str, roots: &[PathBuf]) -> Result<PathBuf> {
    roots
        .iter()
        .map(|root| root.join(import))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            let searched: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
            violation(
                node,
                None,
                format!(
                    "its proto imports \"{import}\", found in none of {}; pass the folder holding it with --include DIR (the exported proto must be self-contained)",
                    searched.join(", ")
                ),
            )
        })
}

/// Edits turning `package.Name` (or `.package.Name`) into `Name` in `own`,
/// for every top-level name of `imported`.
fn unqualify(
    own: &ProtoText,
    package: Option<&str>,
    imported: &ProtoText,
) -> Vec<(Range<usize>, String)> {
    let Some(package) = package else {
        return Vec::new();
    };
    own.names
        .iter()
        .filter_map(|(range, name)| {
            let bare = name
                .trim_start_matches('.')
                .strip_prefix(package)?
                .strip_prefix('.')?;
            imported
                .definition(bare)
                .map(|_| (range.clone(), bare.to_string()))
        })
        .collect()
}

/// The definitions of `imported` that `own` uses, with those they use, in
/// `imported`'s order, less the ones already inlined.
fn needed<'a>(
    own: &ProtoText,
    imported: &'a ProtoText,
    inlined: &BTreeSet<String>,
) -> Vec<&'a Definition> {
    let package = imported.package.as_deref().unwrap_or("");
    let bare = |name: &str| -> String {
        let name = name.trim_start_matches('.');
        match name.strip_prefix(package).and_then(|n| n.strip_prefix('.')) {
            Some(rest) if !package.is_empty() => rest.to_string(),
            _ => name.to_string(),
        }
    };
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let mut queue: Vec<String> = own.names.iter().map(|(_, n)| bare(n)).collect();
    while let Some(name) = queue.pop() {
        if let Some(definition) = imported.definition(&name) {
            if wanted.insert(name) {
                queue.extend(definition.uses.iter().map(|u| bare(u)));
            }
        }
    }
    imported
        .definitions
        .iter()
        .filter(|d| wanted.contains(&d.name) && !inlined.contains(&d.name))
        .collect()
}

/// A definition's text with references to its own package made bare.
fn own_text(imported: &ProtoText, definition: &Definition) -> String {
    let span = definition.source_range(&imported.text);
    let edits: Vec<(Range<usize>, String)> =
        unqualify(imported, imported.package.as_deref(), imported)
            .into_iter()
            .filter(|(r, _)| r.start >= span.start && r.end <= span.end)
            .map(|(r, with)| (r.start - span.start..r.end - span.start, with))
            .collect();
    format!("{}\n", apply(&imported.text[span], edits))
}

/// `text` with the (non-overlapping) edits made; an edit found twice is
/// made once.
fn apply(text: &str, mut edits: Vec<(Range<usize>, String)>) -> String {
    edits.sort_by(|a, b| (b.0.start, &b.1).cmp(&(a.0.start, &a.1)));
    edits.dedup();
    let mut out = text.to_string();
    for (range, with) in edits {
        out.replace_range(range, &with);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inlines_what_is_used_and_unqualifies_it() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(
            shared.join("common.proto"),
            "syntax = \"proto3\";\npackage common;\n\nmessage Unused {}\n\n// A record.\nmessage Record {\n  common.Kind kind = 1;\n}\n\nenum Kind { KIND_UNSPECIFIED = 0; }\n",
        )
        .unwrap();
        let proto = dir.path().join("svc/proto/svc.proto");
        let text = "syntax = \"proto3\";\npackage svc;\nimport \"common.proto\";\n\nmessage Out {\n  repeated common.Record records = 1; // common.Record\n}\n";
        let flat = self_contained("svc", &proto, text, &[shared]).unwrap();
        assert_eq!(
            flat,
            "syntax = \"proto3\";\npackage svc;\n// A record.\nmessage Record {\n  Kind kind = 1;\n}\n\nenum Kind { KIND_UNSPECIFIED = 0; }\n\n\nmessage Out {\n  repeated Record records = 1; // common.Record\n}\n"
        );
        let err = self_contained("svc", &proto, text, &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("imports \"common.proto\", found in none of"),
            "{err}"
        );
        assert!(err.to_string().contains("--include DIR"), "{err}");
    }

    #[test]
    fn imports_sharing_a_line_are_inlined_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "a.proto",
            "syntax = \"proto3\";\npackage a;\nmessage A { int32 x = 1; }\n",
        );
        write(
            "b.proto",
            "syntax = \"proto3\";\npackage b;\nmessage B {} message C { b.B b = 1; }\n",
        );
        let proto = dir.path().join("svc.proto");
        let text = "syntax = \"proto3\";\nimport \"a.proto\"; import \"b.proto\"; // both\nmessage Out { a.A a = 1; b.C c = 2; }\n";
        let flat = self_contained("svc", &proto, text, &[]).unwrap();
        assert_eq!(
            flat,
            "syntax = \"proto3\";\nmessage A { int32 x = 1; }\n\nmessage B {}\n\nmessage C { B b = 1; }\n\nmessage Out { A a = 1; C c = 2; }\n"
        );
        let text = "syntax = \"proto3\";\nimport \"a.proto\"; message Out { a.A a = 1; }\n";
        let err = self_contained("svc", &proto, text, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "node `svc`: its proto has `import \"a.proto\"` on a line with `message Out { a.A a = 1; }`; put the import on its own line"
        );
    }
}
