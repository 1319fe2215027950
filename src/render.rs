//! Renders a whole project in memory from a validated [`ServiceSpec`],
//! following the [`layout`](crate::layout) table: the embedded Tera
//! templates, one handler per method, the vendored runtime, the lock file,
//! and last the `svcgen.toml` manifest with the owned-file hashes.
//!
//! No formatter runs: the templates are written in the exact form `cargo
//! fmt` gives them, for names of any allowed length (tests/formatting.rs
//! checks this with rustfmt). What svcgen writes therefore depends only on
//! its version and its inputs, not on the tools installed or the directory
//! it runs in, and rendering costs no process spawn.

use anyhow::{Context, Result};
use include_dir::{include_dir, Dir};
use serde::Serialize;

use crate::layout::{self, Destination, Owner, Source, LAYOUT};
use crate::lockfile;
use crate::manifest;
use crate::spec::{MethodSpec, ServiceSpec};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The tested lock of a reference project: not a template, used as data.
const REFERENCE_LOCK: &str = "reference/Cargo.lock";

/// The oldest Rust the generated project builds with (tonic 0.14 needs 1.88).
pub const RUST_VERSION: &str = "1.88";

/// One file of a rendered project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Relative to the project root, `/`-separated.
    pub path: String,
    pub contents: String,
    pub owner: Owner,
}

/// What the templates see: the spec plus names derived from it.
#[derive(Serialize)]
struct TemplateContext<'a> {
    #[serde(flatten)]
    spec: &'a ServiceSpec,
    rust_version: &'static str,
    runtime_dependency: String,
    runtime_vendored: bool,
    /// Where the project's docs point for the contracts.
    contract_doc: String,
    service_client_mod: String,
    service_client: String,
}

/// Renders every file of the project for `spec`, sorted by path.
pub fn render(spec: &ServiceSpec) -> Result<Vec<RenderedFile>> {
    Renderer::new(spec)?.files()
}

/// The proto text a method adds above each of the three markers: exactly
/// what `render` puts there for that method, so adding a method later gives
/// the same proto as generating it from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoInsertions {
    /// Above `// svcgen:messages`: the request and response messages.
    pub messages: String,
    /// Above `// svcgen:last-result`: the LastResult oneof case.
    pub last_result: String,
    /// Above `// svcgen:rpcs`: the rpc line.
    pub rpc: String,
}

/// The templates, parsed once, and the context every one of them sees for
/// one spec.
pub struct Renderer<'a> {
    spec: &'a ServiceSpec,
    tera: tera::Tera,
    context: tera::Context,
}

impl<'a> Renderer<'a> {
    pub fn new(spec: &'a ServiceSpec) -> Result<Renderer<'a>> {
        let server_mod = spec.service_rust_mod.as_str();
        let context = TemplateContext {
            spec,
            rust_version: RUST_VERSION,
            runtime_dependency: layout::runtime_dependency(),
            runtime_vendored: layout::RUNTIME == layout::Runtime::Vendored,
            contract_doc: layout::contract_doc(),
            service_client_mod: format!(
                "{}_client",
                server_mod.strip_suffix("_server").unwrap_or(server_mod)
            ),
            service_client: format!("{}Client", spec.service_trait),
        };
        Ok(Renderer {
            spec,
            tera: load_templates()?,
            context: tera::Context::from_serialize(&context)
                .context("building template context")?,
        })
    }

    /// Every file of the project, sorted by path.
    pub fn files(&self) -> Result<Vec<RenderedFile>> {
        let mut files = Vec::new();
        let mut manifest_path = None;
        for entry in LAYOUT {
            let file = |path: String, contents: String| RenderedFile {
                path,
                contents,
                owner: entry.owner,
            };
            match (entry.source, entry.destination) {
                (Source::Template(template), Destination::Handler) => {
                    for method in &self.spec.methods {
                        let contents = self.render(template, Some(method))?;
                        files.push(file(layout::handler_path(method), contents));
                    }
                }
                (Source::Template(template), _) => {
                    for path in entry.paths(self.spec) {
                        files.push(file(path, self.render(template, None)?));
                    }
                }
                (Source::Runtime, _) => {
                    for runtime_file in layout::runtime_files() {
                        let path = format!("{}/{}", layout::RUNTIME_DIR, runtime_file.path);
                        files.push(file(path, runtime_file.contents.to_string()));
                    }
                }
                (Source::Lockfile, _) => {
                    let lock = lockfile::for_crate(reference_lock()?, &self.spec.crate_name)?;
                    for path in entry.paths(self.spec) {
                        files.push(file(path, lock.clone()));
                    }
                }
                (Source::Manifest, _) => manifest_path = entry.paths(self.spec).pop(),
                // Copied by add-upstream from its input, never rendered.
                (Source::UpstreamProto, _) => {}
            }
        }
        let path = manifest_path.context("internal error: the layout has no manifest")?;
        let owned = files
            .iter()
            .filter(|file| file.owner == Owner::Svcgen)
            .map(|file| (file.path.as_str(), file.contents.as_str()));
        let contents = manifest::render(self.spec, owned);
        files.push(RenderedFile {
            path,
            contents,
            owner: Owner::User,
        });
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The proto insertions of `method` (one of the spec's methods).
    pub fn proto_insertions(&self, method: &MethodSpec) -> Result<ProtoInsertions> {
        Ok(ProtoInsertions {
            messages: self.render("proto/_messages.tera", Some(method))?,
            last_result: self.render("proto/_last_result.tera", Some(method))?,
            rpc: self.render("proto/_rpc.tera", Some(method))?,
        })
    }

    /// Renders `template`, with `m` bound to `method` when given.
    fn render(&self, template: &str, method: Option<&MethodSpec>) -> Result<String> {
        let rendered = match method {
            None => self.tera.render(template, &self.context),
            Some(method) => {
                let mut context = self.context.clone();
                context.insert("m", method);
                self.tera.render(template, &context)
            }
        };
        rendered.with_context(|| format!("rendering template {template}"))
    }
}

fn load_templates() -> Result<tera::Tera> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    let mut templates = Vec::new();
    collect(&TEMPLATES, &mut templates)?;
    tera.add_raw_templates(templates)
        .context("parsing the embedded templates")?;
    Ok(tera)
}

/// The Cargo.lock of the reference project (see [`lockfile`]).
pub fn reference_lock() -> Result<&'static str> {
    TEMPLATES
        .get_file(REFERENCE_LOCK)
        .and_then(|file| file.contents_utf8())
        .context("internal error: the embedded reference Cargo.lock is missing")
}

fn collect(dir: &'static Dir<'static>, out: &mut Vec<(&'static str, &'static str)>) -> Result<()> {
    for file in dir.files() {
        let name = file.path().to_str().context("template path is not UTF-8")?;
        if !name.ends_with(".tera") {
            continue;
        }
        let text = file
            .contents_utf8()
            .with_context(|| format!("template {name} is not UTF-8"))?;
        out.push((name, text));
    }
    for sub in dir.dirs() {
        collect(sub, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::input;
    use crate::spec::MethodKind;

    #[test]
    fn every_template_is_used_by_the_layout_or_as_a_proto_partial() {
        let used: Vec<&str> = LAYOUT
            .iter()
            .filter_map(|entry| match entry.source {
                Source::Template(template) => Some(template),
                _ => None,
            })
            .collect();
        let mut templates = Vec::new();
        collect(&TEMPLATES, &mut templates).unwrap();
        for (name, _) in templates {
            let partial = name.starts_with("proto/_");
            assert!(
                used.contains(&name) || partial,
                "{name} is not in the layout"
            );
        }
    }

    #[test]
    fn the_vendored_runtime_is_the_workspace_crate_byte_for_byte() {
        let spec = ServiceSpec::new(input(&[("Process", MethodKind::Long)])).unwrap();
        let files = render(&spec).unwrap();
        let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("svcgen-runtime");
        let vendored: Vec<&RenderedFile> = files
            .iter()
            .filter(|file| file.path.starts_with("svcgen-runtime/"))
            .collect();
        assert!(vendored.len() > 10, "{} runtime files", vendored.len());
        for file in vendored {
            let relative = file.path.trim_start_matches("svcgen-runtime/");
            let on_disk = std::fs::read_to_string(crate_dir.join(relative)).unwrap();
            assert!(file.contents == on_disk, "{} differs", file.path);
            assert_eq!(file.owner, Owner::Svcgen, "{}", file.path);
        }
    }
}
