//! The `svcgen add-upstream` command: lets this service consume another
//! one. It copies the upstream's proto (and the files it imports) into
//! `proto/upstream/<name>/`, records it in `svcgen.toml`, and regenerates
//! the svcgen-owned `build.rs` and `src/svcgen.rs` so that the project
//! compiles a typed client and handlers can call `ctx.fetch`. Every check
//! runs before the first write; the writes go in as one unit.

use std::fmt::Write as _;

use anyhow::{anyhow, bail, Context, Result};
use heck::ToSnakeCase;

use crate::cli::AddUpstreamArgs;
use crate::layout;
use crate::names;
use crate::project::Project;
use crate::regenerate::{self, Step};
use crate::render;
use crate::spec::{ServiceSpec, UpstreamSpec};
use crate::upstream_proto::{self, UpstreamProto};
use crate::write::{self, Change};

/// Runs `svcgen add-upstream`; returns the text to print on success.
pub fn run(args: AddUpstreamArgs) -> Result<String> {
    if let Some(name) = &args.name {
        names::upstream_name(name)?;
    }
    let project = Project::find(args.path.as_deref())?;
    if project.manifest.schema < 2 {
        bail!("this project keeps the svcgen runtime in src/svcgen/ (made by svcgen 0.1.0); convert it first: `svcgen add-method` explains how");
    }
    let proto = upstream_proto::load(&args.proto, &args.includes, args.service.as_deref())?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => default_name(&proto)?,
    };
    let upstream = UpstreamSpec {
        name: name.clone(),
        file: proto.file.clone(),
        service: proto.service.clone(),
        files: proto.files.iter().map(|(path, _)| path.clone()).collect(),
    };
    let spec = extended_spec(&project, upstream)?;
    check_no_clash(&project, &spec, &name, &proto)?;

    let steps = plan(&project, &spec, &name, &proto)?;
    if args.dry_run {
        let mut out = format!(
            "Would add upstream `{name}` ({}) to `{}` ({} files):\n",
            proto.service,
            project.manifest.service.name,
            steps.len()
        );
        out.push_str(&regenerate::diff(&steps));
        out.push_str("\nNothing was written (--dry-run).\n");
        return Ok(out);
    }
    let report = success_report(&project, &name, &proto, &steps);
    let changes: Vec<Change> = steps.into_iter().map(|step| step.change).collect();
    write::apply(&project.root, &changes)?;
    Ok(report)
}

/// The proto's file stem in snake_case, checked like `--name`.
fn default_name(proto: &UpstreamProto) -> Result<String> {
    let stem = proto.file.rsplit('/').next().unwrap_or(&proto.file);
    let stem = stem.strip_suffix(".proto").unwrap_or(stem).to_snake_case();
    names::upstream_name(&stem)
        .map_err(|err| anyhow!("{err}; pass --name to choose the upstream's name"))
}

/// The project's spec with `upstream` appended.
fn extended_spec(project: &Project, upstream: UpstreamSpec) -> Result<ServiceSpec> {
    let manifest = &project.manifest;
    let name = upstream.name.clone();
    if let Some(same) = manifest.upstreams.iter().find(|u| u.name == name) {
        bail!(
            "this project already has an upstream named `{name}` ({}); pick another with --name",
            same.service
        );
    }
    if let Some(same) = manifest
        .upstreams
        .iter()
        .find(|u| u.service == upstream.service)
    {
        bail!(
            "this project already consumes {} as upstream `{}`",
            upstream.service,
            same.name
        );
    }
    let mut input = manifest.spec_input(&[]);
    input.upstreams.push(upstream);
    ServiceSpec::new(input).map_err(|err| anyhow!("cannot add upstream `{name}`: {err}"))
}

/// Refuses the upstream `name` when its messages would clash with this
/// project's own (same qualified name: `ctx.fetch` finds rpcs by their
/// response type) or its folder is already taken.
fn check_no_clash(
    project: &Project,
    spec: &ServiceSpec,
    name: &str,
    proto: &UpstreamProto,
) -> Result<()> {
    let own = layout::proto_path(spec);
    let own_proto = upstream_proto::messages_of(&project.root.join(&own))
        .with_context(|| format!("reading this project's own {own}"))?;
    let own_service = format!("{}.{}", spec.proto_package, spec.proto_service);
    if proto.service == own_service {
        bail!(
            "the upstream's service {own_service} has the same qualified name as this project's own; the two protos must use different packages"
        );
    }
    if let Some(clash) = proto.messages.iter().find(|m| own_proto.contains(m)) {
        bail!(
            "the upstream's message {clash} has the same qualified name as one of this project's own in {own}; the two protos must use different packages"
        );
    }
    let dir = layout::upstream_dir(name);
    if write::exists(&project.root, &dir) {
        bail!("{dir} already exists; move it away, or pick another name with --name");
    }
    Ok(())
}

/// The copied files, the regenerated svcgen-owned files, the manifest last.
fn plan(
    project: &Project,
    spec: &ServiceSpec,
    name: &str,
    proto: &UpstreamProto,
) -> Result<Vec<Step>> {
    let files = render::Renderer::new(spec)?.files()?;
    let owned = regenerate::owned(project, &files, false)?;
    let mut steps = owned.steps;
    let dir = layout::upstream_dir(name);
    for (path, text) in &proto.files {
        steps.push(Step::write(format!("{dir}/{path}"), text.clone(), None));
    }
    steps.push(regenerate::manifest(project, &files)?);
    Ok(steps)
}

fn success_report(project: &Project, name: &str, proto: &UpstreamProto, steps: &[Step]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Added upstream `{name}` ({}) to `{}`",
        proto.service, project.manifest.service.name
    );
    out.push_str(&regenerate::listing(steps));
    let _ = writeln!(out);
    let _ = writeln!(out, "Next, in a handler, fetch an input it produced:");
    // GetLastResult's envelope is for ctx.fetch's own fallback, not a type
    // to ask for.
    // Well-known types come from prost-types, not from the upstream's module.
    let rpcs = proto.rpcs.iter().filter(|(rpc, response)| {
        rpc != "GetLastResult" && !response.starts_with("google.protobuf.")
    });
    for (rpc, response) in rpcs {
        let _ = writeln!(
            out,
            "  let result: {} = ctx.fetch(&ctx.inputs()[0]).await?;  // {rpc}",
            rust_path(name, response)
        );
    }
    let _ = writeln!(out, "  cargo build");
    out
}

/// The Rust path of the message `qualified` (`pkg.sub.Message`) generated
/// for the upstream `name`: packages become modules, the message name gets
/// prost's UpperCamelCase.
fn rust_path(name: &str, qualified: &str) -> String {
    let mut segments: Vec<&str> = qualified.split('.').collect();
    let message = segments.pop().unwrap_or_default();
    let mut path = format!("crate::svcgen::upstreams::{name}");
    for segment in segments {
        path.push_str("::");
        path.push_str(&names::sanitize_identifier(&names::prost_snake(segment)));
    }
    path.push_str("::");
    path.push_str(&names::prost_upper_camel(message));
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_paths_follow_prost() {
        assert_eq!(
            rust_path("producer", "acme.v1.ProduceResponse"),
            "crate::svcgen::upstreams::producer::acme::v1::ProduceResponse"
        );
        assert_eq!(
            rust_path("gen", "GenerateDataResponse"),
            "crate::svcgen::upstreams::gen::GenerateDataResponse"
        );
        assert_eq!(
            rust_path("x", "pkg.HTTPResult"),
            "crate::svcgen::upstreams::x::pkg::HttpResult"
        );
    }
}
