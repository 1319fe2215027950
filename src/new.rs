//! The `svcgen new` command: validate every name, check the target, ask for
//! what is missing, render the project in memory, then write it (or, with
//! `--dry-run`, only list it) and print what to do next.

use crate::cli::NewArgs;
use crate::layout;
use crate::names;
use crate::prompt::{self, Given};
use crate::render::{self, RenderedFile};
use crate::spec::ServiceSpec;
use crate::write::{self, Change, TargetState};
use anyhow::{bail, Result};
use std::fmt::Write as _;
use std::path::Path;

/// Runs `svcgen new`; returns the text to print on success.
pub fn run(args: NewArgs) -> Result<String> {
    let interactive = prompt::may_prompt(args.no_input);
    run_with(args, interactive)
}

/// Like [`run`], with prompting decided by the caller.
pub fn run_with(args: NewArgs, interactive: bool) -> Result<String> {
    let crate_name = names::crate_name_from_path(&args.path)?;
    let given = Given {
        methods: args.ordered_methods.clone(),
        http_port: args.http_port,
        grpc_port: args.grpc_port,
        grpc_host: args.grpc_host.clone(),
        proto_package: args.proto_package.clone(),
        proto_service: args.proto_service.clone(),
    };
    // Every name is checked before the disk is looked at or anything asked:
    // without prompts the whole spec can be validated up front.
    let (state, spec) = if interactive {
        check_given(&given)?;
        let state = check_target(&args)?;
        let spec = ServiceSpec::new(prompt::complete(&crate_name, given, true)?)?;
        (state, spec)
    } else {
        let spec = ServiceSpec::new(prompt::complete(&crate_name, given, false)?)?;
        (check_target(&args)?, spec)
    };
    let files = render::render(&spec)?;
    let path = &args.path;
    // Which files are already there (only a non-empty target has any).
    let replaced: Vec<bool> = files
        .iter()
        .map(|f| state == TargetState::NonEmpty && write::exists(path, &f.path))
        .collect();
    if args.dry_run {
        return Ok(dry_run_report(&spec, path, &files, &replaced));
    }
    match state {
        TargetState::NonEmpty => {
            let changes: Vec<Change> = files
                .iter()
                .map(|f| Change::write(f.path.clone(), f.contents.clone()))
                .collect();
            write::apply(path, &changes)?;
        }
        TargetState::Missing | TargetState::Empty => write::write_fresh(path, &files)?,
    }
    let mut report = success_report(&spec, path, &files, &replaced);
    report.push_str(&crate::pipeline::mapping::after_new(path));
    Ok(report)
}

/// What is at the target, refusing a non-empty one without `--force`.
fn check_target(args: &NewArgs) -> Result<TargetState> {
    let state = write::inspect_target(&args.path)?;
    if state == TargetState::NonEmpty && !args.force {
        bail!(
            "destination `{}` already exists and is not empty; use --force to overwrite svcgen's files in it (nothing else is touched)",
            args.path.display()
        );
    }
    Ok(state)
}

/// Validates each given value on its own (the full cross-checks run in
/// [`ServiceSpec::new`]).
fn check_given(given: &Given) -> Result<(), names::InvalidName> {
    if !given.methods.is_empty() {
        let raw: Vec<&str> = given.methods.iter().map(|(m, _)| m.as_str()).collect();
        names::validate_methods(&raw)?;
    }
    if let Some(p) = &given.proto_package {
        names::proto_package(p)?;
    }
    if let Some(s) = &given.proto_service {
        names::proto_service(s)?;
    }
    if let Some(h) = &given.grpc_host {
        names::grpc_host(h)?;
    }
    if let (Some(http), Some(grpc)) = (given.http_port, given.grpc_port) {
        crate::spec::check_ports(http, grpc)?;
    }
    Ok(())
}

fn dry_run_report(
    spec: &ServiceSpec,
    path: &Path,
    files: &[RenderedFile],
    replaced: &[bool],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Would create service `{}` at {} ({} files):",
        spec.crate_name,
        path.display(),
        files.len()
    );
    for (file, replaced) in files.iter().zip(replaced) {
        let note = if *replaced { "  (overwrite)" } else { "" };
        let _ = writeln!(out, "  {}{note}", file.path);
    }
    let _ = writeln!(out, "Dry run: nothing was written.");
    out
}

fn success_report(
    spec: &ServiceSpec,
    path: &Path,
    files: &[RenderedFile],
    replaced: &[bool],
) -> String {
    let mut out = String::new();
    let replaced = replaced.iter().filter(|r| **r).count();
    let _ = write!(
        out,
        "Created service `{}` at {} ({} files",
        spec.crate_name,
        path.display(),
        files.len()
    );
    if replaced > 0 {
        let _ = write!(out, ", {replaced} overwritten");
    }
    let _ = writeln!(out, ")");
    let has = |p: &str| files.iter().any(|f| f.path == p);

    let mut yours: Vec<(String, String)> = Vec::new();
    for m in &spec.methods {
        let file = layout::handler_path(m);
        if has(&file) {
            yours.push((file, format!("{} ({} method)", m.name, m.kind.as_str())));
        }
    }
    let proto = layout::proto_path(spec);
    if has(&proto) {
        yours.push((proto, "request/response message fields".to_string()));
    }
    if has("src/state.rs") {
        yours.push((
            "src/state.rs".into(),
            "shared state built once at start-up".into(),
        ));
    }
    if !yours.is_empty() {
        let width = yours.iter().map(|(f, _)| f.len()).max().unwrap_or(0);
        let _ = writeln!(out, "\nYour code goes in:");
        for (file, what) in &yours {
            let _ = writeln!(out, "  {file:<width$}  {what}");
        }
    }
    let _ = writeln!(out, "\nNext:");
    let _ = writeln!(out, "  cd {}", shell_quote(&path.display().to_string()));
    let _ = writeln!(out, "  cargo run");
    let _ = writeln!(out, "  cargo test");
    out
}

/// Quotes `s` for a POSIX shell when it contains anything unusual.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./+:@%,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("./out/svc"), "./out/svc");
        assert_eq!(shell_quote("my dir/svc"), "'my dir/svc'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
