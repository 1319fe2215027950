//! `svcgen pipeline`: a use case in the platform's folder convention
//! (`services/<node_dir>/` per node, `connections.json`), and the commands
//! that start, wire, export, compose, submit and run it.

pub mod compose;
pub mod connect;
pub mod connections_file;
pub mod endpoints;
pub mod export;
pub mod export_doc;
pub mod export_proto;
pub mod export_write;
pub mod graph;
pub mod init;
pub mod mapping;
pub mod orchestrator_api;
pub mod proto_inline;
pub mod proto_text;
pub mod run;
pub mod run_report;
pub mod services;
pub mod submit;
pub mod task_graph;
pub mod usecase;

use clap::{Args, Subcommand};

/// `svcgen pipeline <command>`.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The pipeline command to run.
    #[command(subcommand)]
    pub command: PipelineCommand,
}

/// The pipeline commands.
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Start a use case: a folder with services/ and connections.json.
    Init(init::InitArgs),
    /// Connect one node's rpc to another's: `svcgen pipeline connect A.Produce B.Consume`.
    Connect(connect::ConnectArgs),
    /// Write the platform's import files (blueprint, dockerinfo, protos, zip).
    Export(export::ExportArgs),
    /// Write a docker compose file running every node of the use case.
    Compose(compose::ComposeArgs),
    /// Submit the use case to a running orchestrator and follow it to the end.
    Submit(submit::SubmitArgs),
    /// Run the use case against services already running, as the orchestrator would.
    Run(run::RunArgs),
}

/// Runs a pipeline command.
pub fn run(args: PipelineArgs) -> anyhow::Result<String> {
    match args.command {
        PipelineCommand::Init(a) => init::run(a),
        PipelineCommand::Connect(a) => connect::run(a),
        PipelineCommand::Export(a) => export::run(a),
        PipelineCommand::Compose(a) => compose::run(a),
        PipelineCommand::Submit(a) => submit::run(a),
        PipelineCommand::Run(a) => run::run(a),
    }
}
