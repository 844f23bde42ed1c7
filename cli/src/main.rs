//! `orchestrator`: the command-line tool of the internal developer platform orchestrator.

mod api;
mod asl_tool;
mod audit;
mod bundle;
mod catalog;
mod history;
mod plan;
mod report;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "orchestrator",
    version,
    about = "Internal developer platform orchestrator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with a catalog repository: validate it, render forms, check CODEOWNERS.
    Catalog {
        #[command(subcommand)]
        command: catalog::CatalogCommand,
    },
    /// Compile bundles to Step Functions state machines; draw their component graphs.
    Bundle {
        #[command(subcommand)]
        command: bundle::BundleCommand,
    },
    /// Run and test Amazon States Language definitions offline, with Step Functions
    /// Local's mocked service integrations.
    Asl {
        #[command(subcommand)]
        command: asl_tool::AslCommand,
    },
    /// Run the orchestrator in local mode: API, worker and scheduler in one process.
    Serve(serve::ServeArgs),
    /// Print a token that local mode accepts.
    DevToken(serve::DevTokenArgs),
    /// Show what a request for an item would do (every call, rendered, secrets as ***),
    /// with no side effect. Exit 0 for a good plan, 1 when it shows errors, 2 on usage errors.
    Plan(plan::PlanArgs),
    /// Read the audit log through the API (admins).
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Lead time figures of a period (how long requests took, where the time went, what
    /// automation saved) as Markdown or CSV, read through the API.
    Report(report::ReportArgs),
    /// Fill local mode with generated data for trying the product out.
    Sandbox {
        #[command(subcommand)]
        command: history::SandboxCommand,
    },
}

/// Exit codes: 0 success, 1 the input has errors (findings), 2 usage or I/O error.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Catalog { command } => catalog::run(command),
        Command::Bundle { command } => bundle::run(command),
        Command::Asl { command } => asl_tool::run(command),
        Command::Serve(args) => serve::serve(args),
        Command::DevToken(args) => serve::token(args),
        Command::Plan(args) => plan::plan(args),
        Command::Audit { command } => audit::run(command),
        Command::Report(args) => report::report(args),
        Command::Sandbox { command } => history::run(command),
    }
}
