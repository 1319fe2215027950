//! Renders a whole project in memory from a validated [`ServiceSpec`]: the
//! embedded Tera templates, one handler per method, rustfmt on the Rust
//! files, and the `svcgen.toml` manifest with the owned-file hashes.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use include_dir::{include_dir, Dir};
use serde::Serialize;

use crate::lockfile;
use crate::manifest;
use crate::spec::{MethodSpec, ServiceSpec};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The tested lock of a reference project: not a template, used as data.
const REFERENCE_LOCK: &str = "reference/Cargo.lock";

/// The per-method handler template, rendered once per method.
const HANDLER_TEMPLATE: &str = "src/methods/method.rs.tera";

/// The oldest Rust the generated project builds with (tonic 0.14 needs 1.88).
pub const RUST_VERSION: &str = "1.88";

/// Who may change a generated file later (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    /// Rewritten by svcgen from the manifest; hashed to detect hand edits.
    Svcgen,
    /// The proto: svcgen only inserts at its markers.
    Shared,
    /// Written once, never touched again.
    User,
}

/// One file of a rendered project, path relative to the project root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: PathBuf,
    pub contents: String,
    pub owner: Owner,
}

/// What the templates see: the spec plus names derived from it.
#[derive(Serialize)]
struct TemplateContext<'a> {
    #[serde(flatten)]
    spec: &'a ServiceSpec,
    rust_version: &'static str,
    service_server_mod: &'a str,
    service_server: String,
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
            service_server_mod: server_mod,
            service_server: format!("{}Server", spec.service_trait),
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
        let spec = self.spec;
        let mut files = Vec::new();
        for name in self.tera.get_template_names() {
            if name == HANDLER_TEMPLATE || is_partial(name) {
                continue;
            }
            let contents = self.render(name, None)?;
            files.push(finish(output_path(name, spec), contents)?);
        }
        for method in &spec.methods {
            let contents = self.render(HANDLER_TEMPLATE, Some(method))?;
            files.push(finish(handler_path(method), contents)?);
        }
        files.push(RenderedFile {
            path: PathBuf::from("Cargo.lock"),
            contents: lockfile::for_crate(reference_lock()?, &spec.crate_name)?,
            owner: Owner::User,
        });
        files.push(RenderedFile {
            path: PathBuf::from(manifest::FILE_NAME),
            contents: manifest::render(spec, &files),
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

/// Partials (`_name.tera`) are pieces of other templates, not files.
fn is_partial(template: &str) -> bool {
    template
        .rsplit('/')
        .next()
        .is_some_and(|file| file.starts_with('_'))
}

/// The path (relative to the project root) a handler file is written to.
pub fn handler_path(method: &MethodSpec) -> String {
    format!("src/methods/{}.rs", method.handler)
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

/// Where a template's output goes: its own path without `.tera`, except
/// for the few files whose real names cannot sit in `templates/` (cargo
/// drops folders holding a `Cargo.toml`; dotfiles are easy to lose).
fn output_path(template: &str, spec: &ServiceSpec) -> String {
    match template {
        "proto/service.proto.tera" => format!("proto/{}.proto", spec.proto_file),
        "dockerignore.tera" => ".dockerignore".to_string(),
        "gitignore.tera" => ".gitignore".to_string(),
        other => other.trim_end_matches(".tera").to_string(),
    }
}

/// The owner of a generated file, by its path (DESIGN §5).
pub fn owner_of(path: &str) -> Owner {
    let svcgen_test = path
        .strip_prefix("tests/svcgen_")
        .is_some_and(|rest| rest.ends_with(".rs"));
    if path.starts_with("src/svcgen/")
        || path == "src/methods/mod.rs"
        || path == "build.rs"
        || svcgen_test
    {
        Owner::Svcgen
    } else if path.starts_with("proto/") {
        Owner::Shared
    } else {
        Owner::User
    }
}

fn finish(path: String, contents: String) -> Result<RenderedFile> {
    let contents = if path.ends_with(".rs") {
        rustfmt(&path, contents)?
    } else {
        contents
    };
    Ok(RenderedFile {
        owner: owner_of(&path),
        path: PathBuf::from(path),
        contents,
    })
}

/// Formats Rust source the way `cargo fmt` will, so that formatting a new
/// project never changes a file svcgen owns. Without rustfmt on PATH the
/// source is kept as rendered.
fn rustfmt(path: &str, source: String) -> Result<String> {
    let child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return Ok(source);
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(source.as_bytes())
            .with_context(|| format!("piping {path} to rustfmt"))?;
    }
    let output = child
        .wait_with_output()
        .with_context(|| format!("running rustfmt on {path}"))?;
    if !output.status.success() {
        bail!(
            "internal error: the rendered {path} is not valid Rust: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).with_context(|| format!("rustfmt output for {path}"))
}
