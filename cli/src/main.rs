//! `orchestrator`: the command-line tool of the internal developer platform orchestrator.

mod catalog;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

/// Exit codes: 0 success, 1 the input has errors (findings), 2 usage or I/O error.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Catalog { command } => catalog::run(command),
    }
}
