//! Command-line interface (clap derive): the commands, their flags, and the
//! order in which `--method`/`--quick-method` were given.

use crate::spec::MethodKind;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;

/// Generates Rust services (HTTP control + gRPC data) for orchestrated pipelines.
#[derive(Debug, Parser)]
#[command(name = "svcgen", version, about, propagate_version = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// svcgen's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new service project at PATH (the crate is named after its last component).
    New(NewArgs),
    /// Add a method to the project around the current directory (or --path).
    AddMethod(AddMethodArgs),
    /// Let this service consume another one: copy its proto and compile a typed client.
    AddUpstream(AddUpstreamArgs),
    /// Run one task on a running service: execute, follow its progress, print its output.
    Exec(crate::exec::ExecArgs),
    /// Work with a use case: a folder of services/ and connections.json.
    Pipeline(crate::pipeline::PipelineArgs),
}

/// A usage error found after parsing (a malformed `--input`, a bad `NODE=URL`):
/// svcgen exits 2 for it, as for clap's own usage errors.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `text` on one line: each line trimmed, blank lines dropped, the rest
/// joined by a space (an error chain, an answer or a progress message
/// quoted in a one-line message).
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Flags of `svcgen add-upstream`.
#[derive(Debug, Args)]
pub struct AddUpstreamArgs {
    /// The upstream service's .proto file.
    #[arg(value_name = "PROTO")]
    pub proto: PathBuf,

    /// A folder its imports are resolved from, besides its own (repeatable).
    #[arg(long = "include", value_name = "DIR")]
    pub includes: Vec<PathBuf>,

    /// The upstream's name in this project (snake_case) [default: the proto's file stem].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// The service to consume, when the proto declares several.
    #[arg(long, value_name = "S")]
    pub service: Option<String>,

    /// The project directory (default: the nearest svcgen.toml from the current directory up).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,

    /// Print a unified diff of every change and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Flags of `svcgen add-method`.
#[derive(Debug, Args)]
pub struct AddMethodArgs {
    /// The method name: UpperCamelCase kept as given; snake/kebab-case converted.
    #[arg(value_name = "M")]
    pub method: String,

    /// A quick method: execute waits for it and answers `complete`.
    #[arg(long)]
    pub quick: bool,

    /// The project directory (default: the nearest svcgen.toml from the current directory up).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,

    /// Print a unified diff of every change and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Rewrite svcgen-owned files edited by hand, keeping each edited version as <file>.orig.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `svcgen new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Directory to create; the crate name is the kebab-case of its last component.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,

    /// Add a long-running method (repeatable), e.g. TrainModel or train_model.
    #[arg(long = "method", value_name = "M")]
    pub methods: Vec<String>,

    /// Add a quick method that completes within the request (repeatable).
    #[arg(long = "quick-method", value_name = "M")]
    pub quick_methods: Vec<String>,

    /// Default HTTP (control) port [default: 8080].
    #[arg(long, value_name = "N")]
    pub http_port: Option<u16>,

    /// Default gRPC (data) port [default: 50051].
    #[arg(long, value_name = "N")]
    pub grpc_port: Option<u16>,

    /// Default advertised gRPC host [default: the crate name].
    #[arg(long, value_name = "H")]
    pub grpc_host: Option<String>,

    /// Proto package, may be dotted (acme.pipeline.v1) [default: the snake_case crate name].
    #[arg(long, value_name = "P")]
    pub proto_package: Option<String>,

    /// Proto service name [default: the UpperCamelCase crate name].
    #[arg(long, value_name = "S")]
    pub proto_service: Option<String>,

    /// Print the files that would be written, and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Write into an existing non-empty directory, overwriting only svcgen's files.
    #[arg(long)]
    pub force: bool,

    /// Never prompt; use defaults for what was not given.
    #[arg(long)]
    pub no_input: bool,

    /// All methods with their kinds, in command-line order (filled by [`parse`]).
    #[arg(skip)]
    pub ordered_methods: Vec<(String, MethodKind)>,
}

/// Parses the process arguments; on a usage error prints clap's message and exits 2.
pub fn parse() -> Cli {
    parse_from(std::env::args_os())
}

/// Parses `args` like [`parse`] (first item is the program name).
pub fn parse_from<I, T>(args: I) -> Cli
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command().get_matches_from(args);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Command::New(new), Some(sub)) = (&mut cli.command, matches.subcommand_matches("new")) {
        new.ordered_methods = ordered(sub, new);
    }
    cli
}

/// Merges `--method` and `--quick-method` values by their position on the command line.
fn ordered(sub: &clap::ArgMatches, new: &NewArgs) -> Vec<(String, MethodKind)> {
    let indices =
        |id: &str| -> Vec<usize> { sub.indices_of(id).map(|i| i.collect()).unwrap_or_default() };
    let mut all: Vec<(usize, String, MethodKind)> = Vec::new();
    let long = indices("methods");
    for (i, m) in new.methods.iter().enumerate() {
        all.push((
            long.get(i).copied().unwrap_or(i),
            m.clone(),
            MethodKind::Long,
        ));
    }
    let quick = indices("quick_methods");
    for (i, m) in new.quick_methods.iter().enumerate() {
        let at = quick
            .get(i)
            .copied()
            .unwrap_or(usize::MAX - new.quick_methods.len() + i);
        all.push((at, m.clone(), MethodKind::Quick));
    }
    all.sort_by_key(|(at, _, _)| *at);
    all.into_iter().map(|(_, m, k)| (m, k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn methods_keep_command_line_order() {
        let cli = parse_from([
            "svcgen",
            "new",
            "x",
            "--quick-method",
            "A",
            "--method",
            "B",
            "--quick-method",
            "C",
        ]);
        let Command::New(n) = cli.command else {
            panic!("expected `new`")
        };
        assert_eq!(
            n.ordered_methods,
            vec![
                ("A".to_string(), MethodKind::Quick),
                ("B".to_string(), MethodKind::Long),
                ("C".to_string(), MethodKind::Quick),
            ]
        );
    }

    #[test]
    fn one_line_trims_and_joins_lines_and_drops_blank_ones() {
        assert_eq!(one_line("a: b\n  c  d \n\n\te\n"), "a: b c  d e");
        assert_eq!(one_line(" \n "), "");
    }
}
