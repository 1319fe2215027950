//! svcgen's entry point: parses the command line, runs the command, prints
//! its output, and maps errors to one `error: …` line and an exit status
//! (0 success, 2 bad usage or an invalid name, 1 anything else).

mod add_method;
mod add_upstream;
mod cli;
mod control_client;
mod data_reference;
mod deadline;
mod diff;
mod exec;
mod http_json;
mod layout;
mod lockfile;
mod manifest;
mod names;
mod new;
mod pipeline;
mod progress;
mod project;
mod prompt;
mod proto_edit;
mod regenerate;
mod render;
mod run_ids;
mod spec;
mod task_run;
mod upstream_proto;
mod write;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::parse();
    let result = match cli.command {
        cli::Command::New(args) => new::run(args),
        cli::Command::AddMethod(args) => add_method::run(args),
        cli::Command::AddUpstream(args) => add_upstream::run(args),
        cli::Command::Exec(args) => exec::run(args),
        cli::Command::Pipeline(args) => pipeline::run(args),
    };
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {}", cli::one_line(&format!("{err:#}")));
            ExitCode::from(exit_code(&err))
        }
    }
}

/// 2 when any error in the chain is an invalid name or a usage error, else 1.
fn exit_code(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|e| e.is::<names::InvalidName>() || e.is::<cli::Usage>())
    {
        2
    } else {
        1
    }
}
