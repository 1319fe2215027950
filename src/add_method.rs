//! The `svcgen add-method` command: grows an existing project by one method
//! without touching the user's code. Every check runs before the first
//! write; the writes then go in as one unit (see [`crate::write::apply`]).

use std::fmt::Write as _;

use anyhow::{anyhow, bail, Context, Result};

use crate::cli::AddMethodArgs;
use crate::layout::{self, Owner};
use crate::names;
use crate::project::Project;
use crate::proto_edit;
use crate::regenerate::{self, Step};
use crate::render;
use crate::spec::{MethodKind, MethodSpec, ServiceSpec};
use crate::write::{self, Change};

/// Runs `svcgen add-method`; returns the text to print on success.
pub fn run(args: AddMethodArgs) -> Result<String> {
    let kind = if args.quick {
        MethodKind::Quick
    } else {
        MethodKind::Long
    };
    // The name on its own breaks no rule (exit 2 otherwise) ...
    names::validate_methods(&[args.method.as_str()])?;
    let project = Project::find(args.path.as_deref())?;
    // ... and fits beside the methods already there (a refusal: exit 1).
    let spec = extended_spec(&project, &args.method, kind)?;
    let method = spec
        .methods
        .last()
        .context("internal error: the new method is missing from the spec")?;

    let plan = plan(&project, &spec, method, args.force)?;
    if args.dry_run {
        return Ok(dry_run_report(&project, method, &plan));
    }
    let report = success_report(&project, method, &plan);
    let changes: Vec<Change> = plan.steps.into_iter().map(|step| step.change).collect();
    write::apply(&project.root, &changes)?;
    Ok(report)
}

/// The project's spec with the new method appended (next free tag).
fn extended_spec(project: &Project, raw: &str, kind: MethodKind) -> Result<ServiceSpec> {
    let manifest = &project.manifest;
    let existing: Vec<&str> = manifest.methods.iter().map(|m| m.name.as_str()).collect();
    let canonical = names::canonical_method(raw)?;
    if let Some(same) = existing.iter().find(|name| **name == canonical) {
        bail!("cannot add method `{raw}`: method `{same}` already exists in this project; pick another name");
    }
    let mut all = existing.clone();
    all.push(raw);
    if let Err(err) = names::validate_methods(&all) {
        bail!(
            "cannot add method `{raw}`: {err} (existing methods: {}); pick another name",
            existing.join(", ")
        );
    }
    ServiceSpec::new(manifest.spec_input(&[(raw.to_string(), kind)]))
        .map_err(|err| anyhow!("cannot add method `{raw}` to this project: {err}"))
}

/// What add-method will write, decided before anything is written, in the
/// order it is written (backups first, the manifest last).
struct Plan {
    steps: Vec<Step>,
    /// Owned files that were edited by hand and are rewritten under --force.
    backed_up: Vec<String>,
    /// The project was converted from the runtime in `src/svcgen/`.
    converted: bool,
}

fn plan(project: &Project, spec: &ServiceSpec, method: &MethodSpec, force: bool) -> Result<Plan> {
    let renderer = render::Renderer::new(spec)?;
    let files = renderer.files()?;
    // Schema 1: the runtime still lives in src/svcgen/ (svcgen 0.1.0).
    let converted = project.manifest.schema < 2;
    if converted {
        check_runtime_dependency(project)?;
    }

    let owned = regenerate::owned(project, &files, force)?;
    let backed_up = owned.backed_up;
    let mut steps = owned.steps;

    // The new handler: created, never over an existing file.
    let handler = layout::handler_path(method);
    if project.read(&handler)?.is_some() {
        bail!("{handler} already exists; move it away (svcgen never overwrites a handler) and run add-method again");
    }
    let contents = regenerate::rendered(&files, &handler)?.to_string();
    steps.push(Step::write(handler.clone(), contents, None));

    // Converting: the user-owned tests the new layout adds, when missing
    // (the other user-owned files the 0.1.0 layout had already).
    if converted {
        for file in files.iter().filter(|file| file.owner == Owner::User) {
            if file.path.starts_with("tests/") && project.read(&file.path)?.is_none() {
                steps.push(Step::write(file.path.clone(), file.contents.clone(), None));
            }
        }
    }

    // The proto: new lines above the markers, every other byte kept.
    let proto = layout::proto_path(spec);
    let text = project.read(&proto)?.with_context(|| {
        format!("{proto} is missing; svcgen.toml says the service's proto is there")
    })?;
    proto_edit::check_free(&text, &proto, method)?;
    let contents = proto_edit::insert(&text, &renderer.proto_insertions(method)?, &proto)?;
    steps.push(Step::write(proto, contents, Some(text)));

    // The manifest, last: the new method and the new owned-file hashes.
    steps.push(regenerate::manifest(project, &files)?);

    Ok(Plan {
        steps,
        backed_up,
        converted,
    })
}

/// A project made with the runtime in `src/svcgen/` can be converted only
/// once its (user-owned) Cargo.toml depends on the vendored runtime crate:
/// svcgen never edits that file, so the user adds the one line.
fn check_runtime_dependency(project: &Project) -> Result<()> {
    let text = project
        .read("Cargo.toml")?
        .context("Cargo.toml is missing from the project")?;
    let manifest: toml::Table = toml::from_str(&text).context("Cargo.toml is not valid TOML")?;
    let has_runtime = manifest
        .get("dependencies")
        .and_then(|deps| deps.get("svcgen-runtime"))
        .is_some();
    if !has_runtime {
        bail!(
            "this project keeps the svcgen runtime in src/svcgen/ (made by svcgen 0.1.0); svcgen now vendors it as the svcgen-runtime crate: add `{}` under [dependencies] in Cargo.toml (svcgen never edits that file), then run this command again to convert the project",
            layout::runtime_dependency()
        );
    }
    Ok(())
}

fn dry_run_report(project: &Project, method: &MethodSpec, plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Would add {} method `{}` to `{}` ({} files):",
        method.kind.as_str(),
        method.name,
        project.manifest.service.name,
        plan.steps.len()
    );
    out.push_str(&regenerate::diff(&plan.steps));
    let _ = writeln!(out, "\nNothing was written (--dry-run).");
    out
}

fn success_report(project: &Project, method: &MethodSpec, plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Added {} method `{}` to `{}`",
        method.kind.as_str(),
        method.name,
        project.manifest.service.name
    );
    out.push_str(&regenerate::listing(&plan.steps));
    for path in &plan.backed_up {
        let _ = writeln!(out, "  your edited {path} is kept as {path}.orig");
    }
    if plan.converted {
        let _ = writeln!(
            out,
            "\nConverted from the runtime in src/svcgen/ to the svcgen-runtime crate ({}/).",
            layout::RUNTIME_DIR
        );
        let _ = writeln!(
            out,
            "  Dockerfile: add `COPY {0} ./{0}` before `COPY src ./src`",
            layout::RUNTIME_DIR
        );
        let _ = writeln!(
            out,
            "  Cargo.lock: run `cargo build` once to record the crate (the Docker build uses --locked)"
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Next:");
    let _ = writeln!(
        out,
        "  write the body of {} and the fields of {} in proto/{}.proto",
        layout::handler_path(method),
        method.response_message,
        project.manifest.service.proto_package.replace('.', "_")
    );
    let _ = writeln!(out, "  cargo test");
    out
}
